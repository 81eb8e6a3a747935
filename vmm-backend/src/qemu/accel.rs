//! Which accelerator a guest runs under: KVM where it really runs a Linux guest, TCG otherwise.
//!
//! The decision has two stages. The host facts ([`HostFacts`]) rule KVM out cheaply: no usable
//! `/dev/kvm`, the `kvm_pvm` nested module (it emulates guest kernel code and cannot run a
//! Linux userland), or a CPU without `vmx`/`svm`. Where they do not, a short boot probe
//! decides: the real guest kernel and initramfs boot under KVM with `lightpod.probe=1`, on
//! which the agent powers the guest off at once; a clean power-off within the time limit
//! means KVM serves. The verdict is cached per host boot (see [`super::probe_cache`]).

use std::{fs::OpenOptions, path::Path};

use serde::Serialize;

use crate::{qemu::config::AcceleratorChoice, Accelerator};

/// Kernel command line parameter on which the agent powers the guest off right after boot.
pub const PROBE_PARAM: &str = "lightpod.probe=1";

/// What the host says about KVM, gathered once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// `Ok` when `/dev/kvm` opens read-write, else the error text.
    pub kvm_device: Result<(), String>,
    /// Whether the `kvm_pvm` module is loaded (`/sys/module/kvm_pvm`).
    pub kvm_pvm: bool,
    /// `vmx` or `svm` when `/proc/cpuinfo` lists it.
    pub hardware_virt: Option<String>,
}

impl HostFacts {
    /// Reads the facts of this host.
    pub fn gather() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let kvm_device = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map(drop)
            .map_err(|e| format!("/dev/kvm: {e}"));
        HostFacts::from_parts(kvm_device, Path::new("/sys/module"), &cpuinfo)
    }

    /// Builds the facts from their sources: the result of opening `/dev/kvm`, the directory of
    /// loaded modules (`/sys/module`; `/proc/modules` does not exist everywhere) and the text
    /// of `/proc/cpuinfo`.
    pub fn from_parts(kvm_device: Result<(), String>, sys_module: &Path, cpuinfo: &str) -> Self {
        HostFacts {
            kvm_device,
            kvm_pvm: sys_module.join("kvm_pvm").exists(),
            hardware_virt: cpu_virt_flag(cpuinfo).map(str::to_string),
        }
    }
}

/// The `vmx` or `svm` flag of the first CPU in `/proc/cpuinfo`, if any.
fn cpu_virt_flag(cpuinfo: &str) -> Option<&'static str> {
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))?
        .split_once(':')?
        .1;
    flags.split_whitespace().find_map(|f| match f {
        "vmx" => Some("vmx"),
        "svm" => Some("svm"),
        _ => None,
    })
}

/// Outcome of the first, cheap stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticVerdict {
    /// Settled, with the reason.
    Settled(Accelerator, String),
    /// KVM looks usable; a boot probe must confirm it.
    NeedsBootProbe,
}

/// Decides what the configuration and the host facts settle without booting anything.
pub fn static_verdict(choice: AcceleratorChoice, facts: &HostFacts) -> StaticVerdict {
    match choice {
        AcceleratorChoice::Kvm => {
            return StaticVerdict::Settled(Accelerator::Kvm, "forced by configuration".into())
        }
        AcceleratorChoice::Tcg => {
            return StaticVerdict::Settled(Accelerator::Tcg, "forced by configuration".into())
        }
        AcceleratorChoice::Auto => {}
    }
    if let Err(e) = &facts.kvm_device {
        return StaticVerdict::Settled(Accelerator::Tcg, format!("KVM unusable: {e}"));
    }
    if facts.kvm_pvm {
        return StaticVerdict::Settled(
            Accelerator::Tcg,
            "KVM unusable: /dev/kvm is the kvm_pvm nested module, which cannot run a Linux guest"
                .into(),
        );
    }
    if facts.hardware_virt.is_none() {
        return StaticVerdict::Settled(
            Accelerator::Tcg,
            "KVM unusable: the CPU has no vmx/svm flag in /proc/cpuinfo".into(),
        );
    }
    StaticVerdict::NeedsBootProbe
}

/// Everything `lightpod doctor` shows about the accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceleratorProbe {
    /// The accelerator guests run under.
    pub chosen: Accelerator,
    /// Why, in one sentence.
    pub reason: String,
    /// What the configuration asked for.
    pub requested: AcceleratorChoice,
    /// The host facts the decision started from.
    pub facts: HostFacts,
    /// How the boot probe went: `None` when it was not needed or has not run yet.
    pub boot_probe: Option<BootProbeVerdict>,
    /// Host TSC frequency in kHz, passed to TCG guests as `tsc_early_khz`.
    pub host_tsc_khz: Option<u64>,
}

/// Result of booting the guest under KVM once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BootProbeVerdict {
    /// Whether the guest booted and powered off cleanly under KVM.
    pub kvm_works: bool,
    /// What happened (exit, timeout, error).
    pub detail: String,
    /// Whether this verdict came from the per-boot cache.
    pub cached: bool,
}

impl AcceleratorProbe {
    /// Combines the static stage with the boot probe's verdict, when there is one.
    pub fn new(
        requested: AcceleratorChoice,
        facts: HostFacts,
        boot_probe: Option<BootProbeVerdict>,
        host_tsc_khz: Option<u64>,
    ) -> Self {
        let (chosen, reason) = match (static_verdict(requested, &facts), &boot_probe) {
            (StaticVerdict::Settled(accel, reason), _) => (accel, reason),
            (StaticVerdict::NeedsBootProbe, Some(v)) if v.kvm_works => (
                Accelerator::Kvm,
                format!("a guest boots under KVM ({})", v.detail),
            ),
            (StaticVerdict::NeedsBootProbe, Some(v)) => (
                Accelerator::Tcg,
                format!(
                    "KVM unusable: the probe guest did not boot under it ({})",
                    v.detail
                ),
            ),
            (StaticVerdict::NeedsBootProbe, None) => (
                Accelerator::Kvm,
                "hardware virtualisation present; the boot probe runs with the first guest".into(),
            ),
        };
        AcceleratorProbe {
            chosen,
            reason,
            requested,
            facts,
            boot_probe,
            host_tsc_khz,
        }
    }

    /// Whether the decision still waits for a boot probe.
    pub fn needs_boot_probe(&self) -> bool {
        self.boot_probe.is_none()
            && static_verdict(self.requested, &self.facts) == StaticVerdict::NeedsBootProbe
    }
}

#[cfg(test)]
#[path = "accel_tests.rs"]
mod tests;
