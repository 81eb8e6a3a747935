//! The agent's own description of containers, processes and storage, converted from the
//! protobuf at the RPC edge (`convert`). The types that the container init needs are
//! serializable: they cross a pipe to it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::container::{caps::Capability, mount_options::MountOptions, rlimits::Rlimit};

/// A container as `CreateContainer` describes it.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container id; also names its cgroup.
    pub id: String,
    /// What the container init does before it runs the process.
    pub setup: ContainerSetup,
    /// Storage mounted for this container before set-up, unmounted at removal.
    pub storages: Vec<StorageSpec>,
    /// Resource limits of the container's cgroup.
    pub resources: Resources,
    /// The init process, started by `StartProcess` with exec id "".
    pub process: ProcessSpec,
    /// The container whose UTS and IPC namespaces this one joins (its pod's sandbox).
    pub pod_sandbox_id: Option<String>,
}

/// The filesystem and namespace set-up of a container, done by its init before `execve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSetup {
    /// Guest path of the root filesystem.
    pub rootfs: PathBuf,
    /// Remount the root read-only after the mounts.
    pub readonly_rootfs: bool,
    /// Mounts inside the container, in order.
    pub mounts: Vec<MountSpec>,
    /// Hostname of the container's UTS namespace; empty keeps the guest's.
    pub hostname: String,
    /// `kernel.shmmax`-style keys and their values, in a stable order.
    pub sysctls: Vec<(String, String)>,
    /// Paths hidden from the container (`/proc/kcore` …).
    pub masked_paths: Vec<PathBuf>,
    /// Paths made read-only (`/proc/sys` …).
    pub readonly_paths: Vec<PathBuf>,
}

/// One mount inside a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// Filesystem type (`tmpfs`, `proc`, `bind` …); may be empty for bind mounts.
    pub fs_type: String,
    /// Device, guest path or pseudo-filesystem name.
    pub source: String,
    /// Parsed options.
    pub options: MountOptions,
}

/// How a storage is attached to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDriver {
    /// A virtio-fs share, mounted by its tag.
    VirtioFs,
    /// A block device, mounted by its `/dev` path.
    Block,
}

/// A storage to mount in the guest (`MountStorage`, `CreateContainer.storages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSpec {
    /// Virtio-fs or block.
    pub driver: StorageDriver,
    /// Tag or device path.
    pub source: String,
    /// Filesystem type of a block device.
    pub fs_type: String,
    /// Parsed mount options.
    pub options: MountOptions,
    /// Absolute guest path.
    pub mount_point: PathBuf,
}

/// cgroup v2 limits. `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// `memory.max` in bytes.
    pub memory_max: Option<u64>,
    /// `cpu.max`: quota and period in microseconds.
    pub cpu_max: Option<(u64, u64)>,
    /// `cpu.weight` (1..=10000).
    pub cpu_weight: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<u64>,
}

/// Initial size of a process's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// A process to run in a container, with the OCI process fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// `args[0]` is the executable, looked up in the `PATH` of `env` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: PathBuf,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// Run on a pseudo-terminal.
    pub terminal: bool,
    /// Initial terminal size, when given.
    pub console_size: Option<WindowSize>,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
    /// Set `no_new_privs`.
    pub no_new_privileges: bool,
    /// Capabilities kept; `None` keeps the full set.
    pub capabilities: Option<Vec<Capability>>,
    /// Whether the host sends stdin (otherwise stdin is `/dev/null`).
    pub stdin: bool,
    /// File mode creation mask; `None` keeps the default 022.
    pub umask: Option<u32>,
}
