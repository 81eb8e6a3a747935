//! Sizing a pod's VM from what its containers ask for.
//!
//! containerd's CRI plugin writes the pod's summed container limits onto the pod sandbox's
//! OCI spec (kubelet sends them in `PodSandboxConfig.linux.resources` since Kubernetes
//! 1.23). The VM then gets its configured memory (`vm.memory_mib`: the guest kernel, the
//! agent, page cache) plus the containers' memory limits, and as many vCPUs as their CPU
//! limit rounds up to, at least `vm.vcpus`. Explicit `lightpod.io/` annotations win over
//! both.

use std::collections::HashMap;

use crate::config::{ConfigError, VmConfig};

/// Sum of the memory limits of the pod's containers, in bytes.
pub const SANDBOX_MEMORY_ANNOTATION: &str = "io.kubernetes.cri.sandbox-memory";
/// The pod's CPU quota per period, in microseconds.
pub const SANDBOX_CPU_QUOTA_ANNOTATION: &str = "io.kubernetes.cri.sandbox-cpu-quota";
/// The period of the pod's CPU quota, in microseconds.
pub const SANDBOX_CPU_PERIOD_ANNOTATION: &str = "io.kubernetes.cri.sandbox-cpu-period";

const MIB: u64 = 1024 * 1024;

/// `vm` grown to hold the pod whose sandbox spec carries `annotations`.
///
/// # Errors
///
/// A CRI resource annotation is not a number, or the pod asks more than the host has.
pub fn for_pod(
    vm: &VmConfig,
    annotations: &HashMap<String, String>,
    host_cpus: u32,
    host_memory_mib: u32,
) -> Result<VmConfig, ConfigError> {
    let number = |key: &str| -> Result<Option<i64>, ConfigError> {
        match annotations.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ConfigError::Invalid {
                    key: key.to_string(),
                    value: v.clone(),
                    reason: "must be a whole number".into(),
                }),
        }
    };
    let mut sized = vm.clone();

    if let Some(bytes) = number(SANDBOX_MEMORY_ANNOTATION)?.filter(|b| *b > 0) {
        let containers_mib = (bytes as u64).div_ceil(MIB);
        let total = u64::from(vm.memory_mib) + containers_mib;
        if total > u64::from(host_memory_mib) {
            return Err(ConfigError::Invalid {
                key: SANDBOX_MEMORY_ANNOTATION.into(),
                value: bytes.to_string(),
                reason: format!(
                    "the pod's containers ask {containers_mib} MiB; with the VM's own {} MiB \
                     (vm.memory_mib) that is more than the host's {host_memory_mib} MiB",
                    vm.memory_mib
                ),
            });
        }
        sized.memory_mib = total as u32;
    }

    let quota = number(SANDBOX_CPU_QUOTA_ANNOTATION)?.filter(|q| *q > 0);
    let period = number(SANDBOX_CPU_PERIOD_ANNOTATION)?.filter(|p| *p > 0);
    if let (Some(quota), Some(period)) = (quota, period) {
        let cpus = (quota as u64).div_ceil(period as u64);
        if cpus > u64::from(host_cpus) {
            return Err(ConfigError::Invalid {
                key: SANDBOX_CPU_QUOTA_ANNOTATION.into(),
                value: quota.to_string(),
                reason: format!(
                    "the pod's CPU limit is {cpus} CPUs ({quota} µs per {period} µs), more \
                     than the host's {host_cpus}"
                ),
            });
        }
        sized.vcpus = sized.vcpus.max(cpus as u32);
    }
    Ok(sized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_vm_grows_with_the_pod() {
        let base = VmConfig::default();
        let cases = [
            (
                "no CRI resources",
                annotations(&[]),
                base.memory_mib,
                base.vcpus,
            ),
            (
                "memory limits are added to the VM's own",
                annotations(&[(SANDBOX_MEMORY_ANNOTATION, "134217728")]),
                base.memory_mib + 128,
                base.vcpus,
            ),
            (
                "a CPU limit rounds up to whole vCPUs",
                annotations(&[
                    (SANDBOX_CPU_QUOTA_ANNOTATION, "150000"),
                    (SANDBOX_CPU_PERIOD_ANNOTATION, "100000"),
                ]),
                base.memory_mib,
                2,
            ),
            (
                "no limit (0) changes nothing",
                annotations(&[
                    (SANDBOX_MEMORY_ANNOTATION, "0"),
                    (SANDBOX_CPU_QUOTA_ANNOTATION, "0"),
                    (SANDBOX_CPU_PERIOD_ANNOTATION, "100000"),
                ]),
                base.memory_mib,
                base.vcpus,
            ),
        ];
        for (name, annotations, memory, vcpus) in cases {
            let sized = for_pod(&base, &annotations, 4, 8192).expect(name);
            assert_eq!((sized.memory_mib, sized.vcpus), (memory, vcpus), "{name}");
        }
    }

    #[test]
    fn a_pod_larger_than_the_host_is_refused_naming_why() {
        let base = VmConfig::default();
        let memory = for_pod(
            &base,
            &annotations(&[(SANDBOX_MEMORY_ANNOTATION, &(64u64 << 30).to_string())]),
            2,
            8192,
        )
        .expect_err("64 GiB on an 8 GiB host");
        assert!(memory.to_string().contains("8192 MiB"), "{memory}");
        let cpu = for_pod(
            &base,
            &annotations(&[
                (SANDBOX_CPU_QUOTA_ANNOTATION, "800000"),
                (SANDBOX_CPU_PERIOD_ANNOTATION, "100000"),
            ]),
            2,
            8192,
        )
        .expect_err("8 CPUs on a 2-CPU host");
        assert!(cpu.to_string().contains("8 CPUs"), "{cpu}");
        let garbage = for_pod(
            &base,
            &annotations(&[(SANDBOX_MEMORY_ANNOTATION, "lots")]),
            2,
            8192,
        )
        .expect_err("not a number");
        assert!(
            garbage.to_string().contains(SANDBOX_MEMORY_ANNOTATION),
            "{garbage}"
        );
    }
}
