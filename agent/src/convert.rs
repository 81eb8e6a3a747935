//! The RPC edge: protobuf requests checked and turned into the agent's own types (`spec`).

use std::path::{Component, Path, PathBuf};

use lightpod_proto::agent as pb;

use crate::{
    container::{
        caps::Capability,
        mount_options::MountOptions,
        rlimits::{Rlimit, RlimitKind},
    },
    spec::{
        ContainerSetup, ContainerSpec, MountSpec, ProcessSpec, Resources, StorageDriver,
        StorageSpec, WindowSize,
    },
};

/// `cpu.max` period used when the host gives a quota without one (the kernel's default).
const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

/// Why a request was refused before anything was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A required field is empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// An id is not usable as a directory name.
    #[error("{field} {value:?} must be 1 to 128 characters of [A-Za-z0-9_.-] and not . or ..")]
    BadId {
        /// Which id.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A path that must be absolute and plain is not.
    #[error("{field} {path:?} must be an absolute path without ..")]
    BadPath {
        /// Which field.
        field: &'static str,
        /// The value given.
        path: String,
    },
    /// A capability name is unknown.
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A resource limit name is unknown.
    #[error("unknown rlimit {0:?}")]
    UnknownRlimit(String),
    /// A storage driver is unknown.
    #[error("unknown storage driver {0:?} (expected virtiofs or block)")]
    UnknownDriver(String),
    /// A sysctl key is malformed.
    #[error("bad sysctl key {0:?}")]
    BadSysctl(String),
    /// A numeric field is out of range.
    #[error("{field} {value} is out of range")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: i64,
    },
}

/// Checks a container or exec id: it names directories and cgroups.
pub fn check_id(field: &'static str, value: &str) -> Result<(), SpecError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SpecError::BadId {
            field,
            value: value.to_string(),
        })
    }
}

/// Checks that `path` is absolute and has no `..` component.
pub fn abs_path(field: &'static str, path: &str) -> Result<PathBuf, SpecError> {
    let p = Path::new(path);
    let plain = p.is_absolute() && p.components().all(|c| c != Component::ParentDir);
    if plain {
        Ok(p.to_path_buf())
    } else {
        Err(SpecError::BadPath {
            field,
            path: path.to_string(),
        })
    }
}

/// Converts `CreateContainer`.
pub fn container(req: &pb::CreateContainerRequest) -> Result<ContainerSpec, SpecError> {
    check_id("container_id", &req.container_id)?;
    if req.rootfs.is_empty() {
        return Err(SpecError::Missing("rootfs"));
    }
    let process = req.process.as_ref().ok_or(SpecError::Missing("process"))?;

    let mut sysctls: Vec<(String, String)> = req
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctls.sort();
    for (key, _) in &sysctls {
        let valid = !key.is_empty()
            && key
                .split(['.', '/'])
                .all(|part| !part.is_empty() && part != "..");
        if !valid {
            return Err(SpecError::BadSysctl(key.clone()));
        }
    }

    let setup = ContainerSetup {
        rootfs: abs_path("rootfs", &req.rootfs)?,
        readonly_rootfs: req.readonly_rootfs,
        mounts: req.mounts.iter().map(mount).collect::<Result<_, _>>()?,
        hostname: req.hostname.clone(),
        sysctls,
        masked_paths: paths("masked_paths", &req.masked_paths)?,
        readonly_paths: paths("readonly_paths", &req.readonly_paths)?,
    };
    Ok(ContainerSpec {
        id: req.container_id.clone(),
        setup,
        storages: req.storages.iter().map(storage).collect::<Result<_, _>>()?,
        resources: req
            .resources
            .as_ref()
            .map(resources)
            .transpose()?
            .unwrap_or_default(),
        process: process_spec(process)?,
        pod_sandbox_id: if req.pod_sandbox_id.is_empty() {
            None
        } else {
            check_id("pod_sandbox_id", &req.pod_sandbox_id)?;
            Some(req.pod_sandbox_id.clone())
        },
    })
}

fn paths(field: &'static str, list: &[String]) -> Result<Vec<PathBuf>, SpecError> {
    list.iter().map(|p| abs_path(field, p)).collect()
}

fn mount(m: &pb::Mount) -> Result<MountSpec, SpecError> {
    Ok(MountSpec {
        destination: abs_path("mount destination", &m.destination)?,
        fs_type: m.fs_type.clone(),
        source: m.source.clone(),
        options: MountOptions::parse(&m.options),
    })
}

/// Converts `MountStorage` (also the `storages` of `CreateContainer`).
pub fn storage(req: &pb::MountStorageRequest) -> Result<StorageSpec, SpecError> {
    let driver = match req.driver.as_str() {
        "virtiofs" | "virtio-fs" => StorageDriver::VirtioFs,
        "block" => StorageDriver::Block,
        other => return Err(SpecError::UnknownDriver(other.to_string())),
    };
    if req.source.is_empty() {
        return Err(SpecError::Missing("storage source"));
    }
    if driver == StorageDriver::Block && req.fs_type.is_empty() {
        return Err(SpecError::Missing("fs_type of a block storage"));
    }
    Ok(StorageSpec {
        driver,
        source: req.source.clone(),
        fs_type: req.fs_type.clone(),
        options: MountOptions::parse(&req.options),
        mount_point: abs_path("mount_point", &req.mount_point)?,
    })
}

/// Converts cgroup limits; 0 means no limit for every field.
pub fn resources(r: &pb::Resources) -> Result<Resources, SpecError> {
    let positive = |field, value: i64| -> Result<Option<u64>, SpecError> {
        match value {
            0 => Ok(None),
            v if v < 0 => Err(SpecError::OutOfRange { field, value: v }),
            v => Ok(Some(v as u64)),
        }
    };
    let period = if r.cpu_period_us == 0 {
        DEFAULT_CPU_PERIOD_US
    } else {
        r.cpu_period_us
    };
    Ok(Resources {
        memory_max: positive("memory_limit_bytes", r.memory_limit_bytes)?,
        // A negative quota means "unlimited" in the OCI spec, as 0 does here.
        cpu_max: (r.cpu_quota_us > 0).then_some((r.cpu_quota_us as u64, period)),
        cpu_weight: (r.cpu_shares > 0).then(|| shares_to_weight(r.cpu_shares)),
        pids_max: (r.pids_limit > 0).then_some(r.pids_limit as u64),
    })
}

/// Maps cgroup v1 `cpu.shares` (2..=262144) onto cgroup v2 `cpu.weight` (1..=10000) with the
/// linear conversion the OCI runtimes and kubelet use, so a pod gets the same weight here as
/// under runc.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Converts the OCI process fields.
pub fn process_spec(p: &pb::Process) -> Result<ProcessSpec, SpecError> {
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err(SpecError::Missing("process args"));
    }
    let cwd = if p.cwd.is_empty() {
        PathBuf::from("/")
    } else {
        abs_path("cwd", &p.cwd)?
    };
    let rlimits = p
        .rlimits
        .iter()
        .map(|r| {
            let kind =
                RlimitKind::from_name(&r.kind).ok_or(SpecError::UnknownRlimit(r.kind.clone()))?;
            Ok(Rlimit {
                kind,
                soft: r.soft,
                hard: r.hard,
            })
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    let capabilities = if p.capabilities.is_empty() {
        None
    } else {
        let caps = p
            .capabilities
            .iter()
            .map(|n| Capability::from_name(n).ok_or(SpecError::UnknownCapability(n.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Some(caps)
    };
    let console_size = (p.console_width > 0 && p.console_height > 0).then(|| WindowSize {
        cols: p.console_width.min(u32::from(u16::MAX)) as u16,
        rows: p.console_height.min(u32::from(u16::MAX)) as u16,
    });
    Ok(ProcessSpec {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd,
        uid: p.uid,
        gid: p.gid,
        additional_gids: p.additional_gids.clone(),
        terminal: p.terminal,
        console_size,
        rlimits,
        no_new_privileges: p.no_new_privileges,
        capabilities,
        stdin: p.stdin,
        umask: p.has_umask.then_some(p.umask & 0o777),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busybox_request() -> pb::CreateContainerRequest {
        let mut process = pb::Process::new();
        process.args = vec!["echo".into(), "hi".into()];
        process.capabilities = vec!["CAP_KILL".into()];
        let mut rlimit = pb::Rlimit::new();
        rlimit.kind = "RLIMIT_NOFILE".into();
        rlimit.soft = 1024;
        rlimit.hard = 4096;
        process.rlimits = vec![rlimit];
        let mut req = pb::CreateContainerRequest::new();
        req.container_id = "c1".into();
        req.rootfs = "/run/lightpod/shared/c1/rootfs".into();
        req.process = Some(process).into();
        req
    }

    #[test]
    fn converts_a_minimal_container() {
        let spec = container(&busybox_request()).expect("valid request");
        assert_eq!(spec.id, "c1");
        assert_eq!(spec.process.cwd, PathBuf::from("/"), "cwd defaults to /");
        assert_eq!(spec.process.capabilities.as_ref().map(Vec::len), Some(1));
        assert_eq!(spec.process.rlimits[0].kind.name(), "RLIMIT_NOFILE");
        assert_eq!(spec.resources, Resources::default());
    }

    #[test]
    fn refuses_bad_requests() {
        type Mutation = fn(&mut pb::CreateContainerRequest);
        let cases: &[(&str, Mutation)] = &[
            ("empty id", |r| r.container_id.clear()),
            ("id with slash", |r| r.container_id = "a/b".into()),
            ("dot-dot id", |r| r.container_id = "..".into()),
            ("relative rootfs", |r| r.rootfs = "rootfs".into()),
            ("no process", |r| r.process = None.into()),
            ("empty args", |r| {
                r.process.as_mut().expect("process").args.clear()
            }),
            ("bad capability", |r| {
                r.process.as_mut().expect("process").capabilities = vec!["CAP_FLY".into()]
            }),
            ("bad rlimit", |r| {
                r.process.as_mut().expect("process").rlimits[0].kind = "RLIMIT_FOO".into()
            }),
            ("relative cwd", |r| {
                r.process.as_mut().expect("process").cwd = "tmp".into()
            }),
            ("escaping mount", |r| {
                let mut m = pb::Mount::new();
                m.destination = "/../etc".into();
                r.mounts.push(m);
            }),
            ("bad sysctl", |r| {
                r.sysctls.insert("net..x".into(), "1".into());
            }),
        ];
        for (name, mutate) in cases {
            let mut req = busybox_request();
            mutate(&mut req);
            assert!(container(&req).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn resources_zero_means_unlimited() {
        let mut r = pb::Resources::new();
        assert_eq!(resources(&r), Ok(Resources::default()));
        r.memory_limit_bytes = 64 << 20;
        r.cpu_quota_us = 50_000;
        r.cpu_shares = 1024;
        r.pids_limit = 100;
        let got = resources(&r).expect("valid");
        assert_eq!(got.memory_max, Some(64 << 20));
        assert_eq!(got.cpu_max, Some((50_000, DEFAULT_CPU_PERIOD_US)));
        assert_eq!(got.cpu_weight, Some(39));
        assert_eq!(got.pids_max, Some(100));
        r.memory_limit_bytes = -1;
        assert!(resources(&r).is_err(), "negative memory limit accepted");
    }

    #[test]
    fn shares_convert_to_weights() {
        let cases = [
            (2, 1),
            (1, 1),
            (1024, 39),
            (262_144, 10_000),
            (1 << 30, 10_000),
        ];
        for (shares, weight) in cases {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
    }

    #[test]
    fn storage_drivers() {
        let mut req = pb::MountStorageRequest::new();
        req.driver = "virtiofs".into();
        req.source = "lightpod".into();
        req.mount_point = "/run/lightpod/shared".into();
        assert_eq!(storage(&req).map(|s| s.driver), Ok(StorageDriver::VirtioFs));
        req.driver = "block".into();
        assert!(storage(&req).is_err(), "block without fs_type accepted");
        req.fs_type = "ext4".into();
        assert_eq!(storage(&req).map(|s| s.driver), Ok(StorageDriver::Block));
        req.driver = "nfs".into();
        assert!(storage(&req).is_err(), "unknown driver accepted");
    }
}
