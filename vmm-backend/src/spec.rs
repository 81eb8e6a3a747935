//! Backend-neutral description of a guest and what a backend reports about it.

use std::{os::fd::OwnedFd, path::PathBuf, time::Duration};

use tokio::io::{AsyncRead, AsyncWrite};

/// Which hypervisor backend runs a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Debian's `qemu-system-x86_64`.
    Qemu,
    /// Xen through the xl/libxl toolstack.
    Xen,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Qemu => "qemu",
            BackendKind::Xen => "xen",
        })
    }
}

/// How guest code is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulator.
    Tcg,
}

impl std::fmt::Display for Accelerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        })
    }
}

/// Everything a backend needs to boot one guest.
#[derive(Debug)]
pub struct VmSpec {
    /// Unique id; names the state directory and appears in logs.
    pub id: String,
    /// Directory for the VM's sockets, console log and pid files. Created by the backend,
    /// removed by [`crate::Vm::stop`] or by a failed create.
    pub state_dir: PathBuf,
    /// Number of vCPUs (at least 1).
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest kernel image (bzImage or ELF vmlinux).
    pub kernel: PathBuf,
    /// Initramfs holding the agent.
    pub initrd: PathBuf,
    /// Kernel command line parameters added after the backend's own.
    pub kernel_params: Vec<String>,
    /// Host directories shared into the guest (virtio-fs under QEMU).
    pub shared_dirs: Vec<SharedDir>,
    /// Network devices.
    pub net_devices: Vec<NetDevice>,
    /// Block devices.
    pub block_devices: Vec<BlockDevice>,
    /// How long to wait for the VMM to come up before giving up.
    pub boot_timeout: Duration,
}

/// A host directory shared into the guest.
#[derive(Debug, Clone)]
pub struct SharedDir {
    /// Tag the guest mounts it by (`mount -t virtiofs <tag> …`).
    pub tag: String,
    /// Host directory.
    pub host_path: PathBuf,
    /// Whether the guest may only read it.
    pub readonly: bool,
}

/// A network device of the guest, backed by a host tap device.
#[derive(Debug)]
pub struct NetDevice {
    /// Host tap device name (for logs and for backends that open it by name).
    pub tap_name: String,
    /// An open `/dev/net/tun` file attached to the tap device, when the caller opened it
    /// (e.g. inside the pod's network namespace). QEMU takes it as `fd=`.
    pub tap_fd: Option<OwnedFd>,
    /// MAC address of the guest's interface, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// MTU to configure on the device.
    pub mtu: u32,
}

/// Six colon-separated pairs of hex digits: a MAC address every backend accepts.
pub(crate) fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A block device of the guest, backed by a host file or device.
#[derive(Debug, Clone)]
pub struct BlockDevice {
    /// Host path of the image or device.
    pub path: PathBuf,
    /// Whether the guest may only read it.
    pub readonly: bool,
}

/// A connected byte stream to the agent inside the guest.
pub trait AgentIo: AsyncRead + AsyncWrite + Send + Sync + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> AgentIo for T {}

/// The agent channel as handed to the caller.
pub type AgentStream = Box<dyn AgentIo>;

/// Host-side boot timings, measured from the start of `Hypervisor::create`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BootTimings {
    /// Helpers (virtiofsd) and the VMM process spawned.
    pub vmm_spawned: Option<Duration>,
    /// The VMM answers on its control channel (QMP).
    pub vmm_ready: Option<Duration>,
    /// The guest's vCPUs were released to run.
    pub guest_started: Option<Duration>,
    /// The accelerator the guest runs under.
    pub accelerator: Option<Accelerator>,
}

/// How a VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// The guest powered itself off (the agent's Shutdown, or a guest `poweroff`).
    PoweredOff,
    /// The host stopped it (`Vm::stop` after the grace period).
    Killed,
    /// The VMM process died on its own: crash, signal from elsewhere, guest panic.
    Crashed(String),
}

impl std::fmt::Display for VmExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmExit::PoweredOff => f.write_str("the guest powered off"),
            VmExit::Killed => f.write_str("the host stopped the VM"),
            VmExit::Crashed(reason) => write!(f, "the VMM died: {reason}"),
        }
    }
}
