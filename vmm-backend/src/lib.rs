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
//!
//! Guest assembly ([`guest`]) builds the initramfs that holds the agent and the kernel
//! modules it needs, cached by content hash.

pub mod guest;
pub mod qemu;
mod spec;

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
