//! The `Hypervisor` seam of lightpod and its backends.
//!
//! A backend turns a [`VmSpec`] (kernel, initramfs, vCPUs, memory, shared directories,
//! network devices) into a running guest and hands back a byte stream to the agent inside
//! it. Nothing here knows about Kubernetes, containers or OCI: `sandbox` speaks to guests
//! only through [`Hypervisor`] and [`Vm`], and never sees a QEMU flag.
//!
//! Backends:
//! - [`qemu`]: Debian's `qemu-system-x86_64`, `-M microvm` or `q35`, driven over QMP; the
//!   accelerator is KVM when a guest really boots under it, TCG otherwise.
//! - [`xen`]: Xen PV or PVH domains through the `xl` toolstack, from a host's dom0; the agent
//!   channel is the domain's console, root filesystems arrive as block devices.
//!
//! Backends differ in what they can hand a guest: [`Hypervisor::shares_directories`] says
//! whether host directories can be shared ([`VmSpec::shared_dirs`]); a backend that cannot
//! attaches block devices to a running guest instead ([`Vm::attach_block`]).
//!
//! Guest assembly ([`guest`]) builds the initramfs that holds the agent and the kernel
//! modules it needs, cached by content hash.

pub mod guest;
pub mod qemu;
mod spec;
pub mod xen;

pub use spec::{
    Accelerator, AgentStream, BackendKind, BlockDevice, BootTimings, NetDevice, SharedDir, VmExit,
    VmSpec,
};

use std::time::Duration;

use async_trait::async_trait;

/// Why a backend could not create, boot or control a guest.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The VMM binary (QEMU, xl) is not installed or not executable.
    #[error("{binary} not found: {hint}")]
    VmmMissing {
        /// The binary that was looked for.
        binary: String,
        /// What the operator should run to get it.
        hint: String,
    },
    /// A file the guest boots from does not exist or cannot be read.
    #[error("guest {what} {path} is not readable")]
    GuestFile {
        /// "kernel", "initramfs", …
        what: &'static str,
        /// The path that was tried.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The spec asks for something the backend or host cannot give.
    #[error("invalid VM spec: {0}")]
    InvalidSpec(String),
    /// The VMM process could not be started.
    #[error("start {binary}")]
    SpawnVmm {
        /// The binary that failed to start.
        binary: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A helper process (virtiofsd, …) could not be started or died early.
    #[error("start {helper}")]
    SpawnHelper {
        /// The helper that failed.
        helper: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The VMM exited before the guest was up; `log` holds the end of its output.
    #[error("VMM exited during boot ({status}): {log}")]
    VmmExited {
        /// How the VMM process ended.
        status: String,
        /// The last lines of the VMM's stderr and the guest console.
        log: String,
    },
    /// The VMM's control channel (QMP, xl) failed.
    #[error("VMM control: {0}")]
    Control(String),
    /// The agent channel could not be opened.
    #[error("connect to the agent channel")]
    AgentChannel(#[source] std::io::Error),
    /// A step did not finish in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The guest asks for more memory than the hypervisor has free.
    #[error("the guest needs {needed_mib} MiB but the hypervisor has {free_mib} MiB free")]
    OutOfMemory {
        /// Memory the spec asks for.
        needed_mib: u32,
        /// Memory the hypervisor reports free.
        free_mib: u64,
    },
    /// The backend cannot run guests on this host at all.
    #[error("the {backend} backend cannot run here: {reason}")]
    BackendUnavailable {
        /// The backend.
        backend: BackendKind,
        /// Why, and what would fix it.
        reason: String,
    },
    /// The backend does not offer this operation.
    #[error("this backend does not support {0}")]
    Unsupported(&'static str),
    /// The guest runs, but its agent did not take up the channel in time; `log` holds the
    /// end of the guest's boot log.
    #[error("the guest agent was not ready within {waited:?}: {log}")]
    AgentNotReady {
        /// How long the backend waited.
        waited: Duration,
        /// The end of the boot log.
        log: String,
    },
    /// An I/O error on the host while preparing or cleaning up the VM.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// A hypervisor backend: creates guests.
#[async_trait]
pub trait Hypervisor: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Creates and boots a guest. On error nothing the call started is left behind: no VMM
    /// process, helper process, socket or state directory.
    async fn create(&self, spec: VmSpec) -> Result<Box<dyn Vm>, VmError>;

    /// Whether guests can mount host directories ([`VmSpec::shared_dirs`]). When they cannot,
    /// the caller hands them filesystems as block devices ([`Vm::attach_block`]).
    fn shares_directories(&self) -> bool {
        true
    }
}

/// One running guest.
#[async_trait]
pub trait Vm: Send + Sync {
    /// The id the VM was created with.
    fn id(&self) -> &str;

    /// Host pid of the VMM process (QEMU), when the backend has one.
    fn vmm_pid(&self) -> Option<u32>;

    /// Host pids of every process that belongs to this VM (VMM and helpers).
    fn host_pids(&self) -> Vec<u32>;

    /// Opens the byte stream to the agent. May be called again after the previous stream
    /// was dropped.
    async fn connect_agent(&self) -> Result<AgentStream, VmError>;

    /// Timings of the boot so far, in host monotonic time from the start of `create`.
    fn timings(&self) -> BootTimings;

    /// Attaches a block device to the running guest and returns the device's path in the
    /// guest (`/dev/xvdb`). The device stays attached until [`Vm::detach_block`] or the end
    /// of the VM.
    ///
    /// # Errors
    ///
    /// [`VmError::Unsupported`] from backends that share directories instead; otherwise the
    /// backend's failure to attach it.
    async fn attach_block(&self, device: BlockDevice) -> Result<String, VmError> {
        let _ = device;
        Err(VmError::Unsupported(
            "attaching block devices to a running guest",
        ))
    }

    /// Detaches a block device [`Vm::attach_block`] attached, by its guest path. The guest
    /// must have unmounted it.
    ///
    /// # Errors
    ///
    /// The device is unknown, or the backend failed to detach it.
    async fn detach_block(&self, guest_path: &str) -> Result<(), VmError> {
        let _ = guest_path;
        Err(VmError::Unsupported(
            "detaching block devices from a running guest",
        ))
    }

    /// Suspends every vCPU of the guest.
    async fn pause(&self) -> Result<(), VmError>;

    /// Resumes the vCPUs after [`Vm::pause`].
    async fn resume(&self) -> Result<(), VmError>;

    /// Waits until the VMM has exited, for whatever reason, and reports how.
    async fn wait(&self) -> VmExit;

    /// Stops the guest: waits up to `grace` for it to power off by itself (the agent's
    /// Shutdown call), then kills the VMM. Releases every host resource of the VM
    /// (processes, sockets, state directory). Idempotent.
    async fn stop(&self, grace: Duration) -> Result<VmExit, VmError>;
}
