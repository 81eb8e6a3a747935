//! Our own description of a container, translated from an OCI runtime spec.
//!
//! Front ends hand `sandbox` an OCI `config.json` (containerd's bundle, or one the CLI made);
//! [`ContainerSpec::from_oci`] validates it and keeps what a guest needs. Bad input fails
//! here, before any VM or mount is touched, with an error naming the field.

use std::{collections::HashMap, path::PathBuf};

use oci_spec::runtime::{LinuxResources, Mount, Process, Spec};

/// Why an OCI spec cannot be run by lightpod.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// A required field is absent.
    #[error("OCI spec has no {0}")]
    Missing(&'static str),
    /// A field has a value lightpod cannot honour.
    #[error("OCI spec field {field}: {reason}")]
    Invalid {
        /// Dotted path of the field (`process.cwd`, `mounts[2].type`).
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A container as lightpod runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Container id (unique in its sandbox).
    pub id: String,
    /// Host directory of the root filesystem (already mounted by the caller).
    pub rootfs: PathBuf,
    /// Mount the root filesystem read-only in the guest.
    pub readonly_rootfs: bool,
    /// Hostname inside the container; empty keeps the guest's.
    pub hostname: String,
    /// The container's first process.
    pub process: ProcessSpec,
    /// Mounts in the order the spec lists them.
    pub mounts: Vec<MountSpec>,
    /// cgroup limits.
    pub resources: ResourceSpec,
    /// `linux.sysctl`.
    pub sysctls: HashMap<String, String>,
    /// `linux.maskedPaths`.
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<String>,
    /// The pod sandbox container whose hostname and IPC this container shares (a CRI
    /// application container); `None` for a container of its own.
    pub pod_sandbox_id: Option<String>,
    /// The existing network namespace the spec joins (`linux.namespaces`, type `network`,
    /// with a path): CNI's pod network. `None` when the spec makes a new one or has none.
    pub network_namespace: Option<PathBuf>,
}

/// A process to run in a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessSpec {
    /// argv; the first element is resolved through `PATH` in the guest.
    pub args: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// Give the process a terminal.
    pub terminal: bool,
    /// Resource limits: (OCI name, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
    /// Set `no_new_privs`.
    pub no_new_privileges: bool,
    /// Capability names (`CAP_CHOWN`); `None` keeps the full set.
    pub capabilities: Option<Vec<String>>,
    /// Initial terminal size (columns, rows).
    pub console_size: Option<(u32, u32)>,
    /// The caller will feed stdin.
    pub stdin: bool,
    /// File mode creation mask.
    pub umask: Option<u32>,
}

/// Where a mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host file or directory, bind-mounted into the container through the share.
    Host(PathBuf),
    /// A filesystem the guest kernel creates (proc, tmpfs, …); the string is its source.
    Guest(String),
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    /// Filesystem type in the guest (`bind` for host sources).
    pub fs_type: String,
    /// Where the content comes from.
    pub source: MountSource,
    /// Mount options as in the OCI spec (`ro`, `nosuid`, `rbind`, `size=64m`, …).
    pub options: Vec<String>,
}

/// cgroup limits of a container; zero means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceSpec {
    /// `memory.max` in bytes.
    pub memory_limit_bytes: i64,
    /// CFS quota in µs per period.
    pub cpu_quota_us: i64,
    /// CFS period in µs.
    pub cpu_period_us: u64,
    /// cgroup v1 style CPU shares.
    pub cpu_shares: u64,
    /// `pids.max`.
    pub pids_limit: i64,
}

/// Filesystem types the guest kernel mounts itself; everything else must be a bind.
const GUEST_FS_TYPES: &[&str] = &[
    "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "ramfs", "shm",
];

impl ContainerSpec {
    /// Translates and validates an OCI runtime spec. `rootfs` is the host directory that
    /// holds the root filesystem (containerd mounts it for the shim; the spec's `root.path`
    /// is relative to the bundle and only used when `rootfs` is `None`).
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming the first field that lightpod cannot honour.
    pub fn from_oci(
        id: &str,
        spec: &Spec,
        rootfs: Option<PathBuf>,
    ) -> Result<ContainerSpec, SpecError> {
        validate_id(id)?;
        let root = spec.root().as_ref();
        let rootfs = match (rootfs, root) {
            (Some(path), _) => path,
            (None, Some(root)) => root.path().clone(),
            (None, None) => return Err(SpecError::Missing("root.path")),
        };
        let process = spec
            .process()
            .as_ref()
            .ok_or(SpecError::Missing("process"))?;
        let linux = spec.linux().as_ref();

        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| translate_mount(i, m))
            .collect::<Result<Vec<_>, _>>()?;

        let resources = linux
            .and_then(|l| l.resources().as_ref())
            .map(ResourceSpec::from_oci)
            .unwrap_or_default();

        Ok(ContainerSpec {
            id: id.to_string(),
            rootfs,
            readonly_rootfs: root.and_then(|r| r.readonly()).unwrap_or(false),
            hostname: spec.hostname().clone().unwrap_or_default(),
            process: ProcessSpec::from_oci(process)?,
            mounts,
            resources,
            sysctls: linux.and_then(|l| l.sysctl().clone()).unwrap_or_default(),
            masked_paths: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default(),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default(),
            pod_sandbox_id: None,
            network_namespace: linux.and_then(network_namespace),
        })
    }
}

impl ProcessSpec {
    /// Translates and validates an OCI `process` (also the body of an exec request).
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming the first field that lightpod cannot honour.
    pub fn from_oci(process: &Process) -> Result<ProcessSpec, SpecError> {
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            return Err(invalid("process.args", "must name the program to run"));
        }
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(invalid(
                "process.cwd",
                format!("{cwd:?} is not an absolute path"),
            ));
        }
        for (i, var) in process.env().iter().flatten().enumerate() {
            if !var.contains('=') {
                return Err(invalid(
                    format!("process.env[{i}]"),
                    format!("{var:?} is not KEY=value"),
                ));
            }
        }
        let user = process.user();
        let rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| (r.typ().to_string(), r.soft(), r.hard()))
            .collect();
        let capabilities = process.capabilities().as_ref().map(|caps| {
            let mut names: Vec<String> = caps
                .bounding()
                .iter()
                .flatten()
                .map(|c| format!("CAP_{c}"))
                .collect();
            names.sort();
            names
        });
        Ok(ProcessSpec {
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            terminal: process.terminal().unwrap_or(false),
            rlimits,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            capabilities,
            console_size: process
                .console_size()
                .map(|b| (b.width() as u32, b.height() as u32)),
            stdin: false,
            umask: user.umask(),
        })
    }
}

/// The path of the network namespace a spec's `linux.namespaces` joins, if any.
fn network_namespace(linux: &oci_spec::runtime::Linux) -> Option<PathBuf> {
    linux
        .namespaces()
        .iter()
        .flatten()
        .find(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        .and_then(|ns| ns.path().clone())
        .filter(|path| !path.as_os_str().is_empty())
}

impl ResourceSpec {
    /// The limits of an OCI `linux.resources` (also the body of a shim v2 `Update`);
    /// negative values, which the spec uses for "unlimited", become zero.
    pub fn from_oci(resources: &LinuxResources) -> ResourceSpec {
        let memory = resources.memory().as_ref();
        let cpu = resources.cpu().as_ref();
        ResourceSpec {
            memory_limit_bytes: memory.and_then(|m| m.limit()).unwrap_or(0).max(0),
            cpu_quota_us: cpu.and_then(|c| c.quota()).unwrap_or(0).max(0),
            cpu_period_us: cpu.and_then(|c| c.period()).unwrap_or(0),
            cpu_shares: cpu.and_then(|c| c.shares()).unwrap_or(0),
            pids_limit: resources
                .pids()
                .as_ref()
                .map(|p| p.limit())
                .unwrap_or(0)
                .max(0),
        }
    }
}

/// Whether `id` is a container id lightpod accepts (as containerd does: letters, digits,
/// `-`, `_`, `.`).
pub(crate) fn validate_id(id: &str) -> Result<(), SpecError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("{id:?}: use 1-128 letters, digits, '-', '_' or '.', not starting with '.'"),
        ))
    }
}

fn translate_mount(index: usize, mount: &Mount) -> Result<MountSpec, SpecError> {
    let field = |name: &str| format!("mounts[{index}].{name}");
    let destination = mount.destination().to_string_lossy().into_owned();
    if !destination.starts_with('/') {
        return Err(invalid(
            field("destination"),
            format!("{destination:?} is not absolute"),
        ));
    }
    let options = mount.options().clone().unwrap_or_default();
    let is_bind = options.iter().any(|o| o == "bind" || o == "rbind");
    let fs_type = mount.typ().clone().unwrap_or_else(|| {
        if is_bind {
            "bind".into()
        } else {
            String::new()
        }
    });

    if is_bind || fs_type == "bind" {
        let source = mount
            .source()
            .clone()
            .ok_or_else(|| invalid(field("source"), "a bind mount needs a source"))?;
        if !source.is_absolute() {
            return Err(invalid(
                field("source"),
                format!("{} is not absolute", source.display()),
            ));
        }
        if !source.exists() {
            return Err(invalid(
                field("source"),
                format!("{} does not exist on the host", source.display()),
            ));
        }
        // Mounts made inside the container cannot travel out of the VM to the host.
        if options.iter().any(|o| o == "shared" || o == "rshared") {
            return Err(invalid(
                field("options"),
                format!(
                    "{} asks for shared (Bidirectional) propagation, which cannot reach the \
                     host from inside a VM; use HostToContainer (rslave) or None",
                    destination
                ),
            ));
        }
        return Ok(MountSpec {
            destination,
            fs_type: "bind".into(),
            source: MountSource::Host(source),
            options,
        });
    }

    if !GUEST_FS_TYPES.contains(&fs_type.as_str()) {
        return Err(invalid(
            field("type"),
            format!(
                "{fs_type:?} is not supported; use a bind mount or one of {}",
                GUEST_FS_TYPES.join(", ")
            ),
        ));
    }
    let source = mount
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fs_type.clone());
    Ok(MountSpec {
        destination,
        fs_type,
        source: MountSource::Guest(source),
        options,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
