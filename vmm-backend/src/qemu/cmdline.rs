//! The QEMU command line, built from one typed struct per option group.
//!
//! Each group renders its own arguments; [`QemuCommandLine`] puts them in a fixed order. No
//! group knows about another except through the ids they share (memory backend, chardevs).

use std::path::PathBuf;

use crate::{qemu::config::MachineType, Accelerator};

/// QEMU's `-sandbox` (seccomp) policy.
const SECCOMP: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// Id of the memory backend object that holds guest RAM.
const MEMORY_ID: &str = "ram";

/// How virtio devices attach to the machine: `-device virtio-X-device` (virtio-mmio, microvm)
/// or `-device virtio-X-pci` (q35).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioTransport {
    /// virtio-mmio, discovered by the guest through microvm's ACPI tables.
    Mmio,
    /// virtio-pci.
    Pci,
}

impl VirtioTransport {
    /// The transport a machine type uses.
    pub fn for_machine(machine: MachineType) -> Self {
        match machine {
            MachineType::Microvm => VirtioTransport::Mmio,
            MachineType::Q35 => VirtioTransport::Pci,
        }
    }

    /// QEMU's device name of a virtio device (`serial`, `net`, `blk`, …) on this transport.
    fn device(self, kind: &str) -> String {
        match self {
            VirtioTransport::Mmio => format!("{kind}-device"),
            VirtioTransport::Pci => format!("{kind}-pci"),
        }
    }
}

/// `-machine`, `-accel` and the options every guest gets.
#[derive(Debug, Clone)]
pub struct MachineOpts {
    /// Machine type.
    pub machine: MachineType,
    /// Accelerator.
    pub accel: Accelerator,
    /// Size of TCG's translation cache in MiB (`-accel tcg,tb-size=`); unused under KVM.
    pub tcg_tb_mib: u32,
}

impl MachineOpts {
    fn render(&self, args: &mut Vec<String>) {
        let mut machine = format!("{},memory-backend={MEMORY_ID}", self.machine.qemu_name());
        if self.machine == MachineType::Microvm {
            // The guest console is the ISA serial port; ACPI lets the guest find the
            // virtio-mmio devices without `virtio_mmio.device=` parameters.
            machine.push_str(",isa-serial=on,acpi=on,x-option-roms=off");
        }
        push(args, &["-machine", &machine]);
        // TCG's translation cache is anonymous host memory that fills as the guest runs new
        // code; QEMU's default (1 GiB) lets one idle guest keep tens of MiB of it. A small
        // cache is flushed and refilled instead.
        let accel = match self.accel {
            Accelerator::Kvm => "kvm".to_string(),
            Accelerator::Tcg => format!("tcg,tb-size={}", self.tcg_tb_mib),
        };
        push(args, &["-accel", &accel]);
        // Nothing the guest does not ask for: no default devices, no config files, no
        // window, and a guest reset ends QEMU instead of rebooting.
        push(
            args,
            &[
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ],
        );
    }
}

/// `-cpu` and `-smp`.
#[derive(Debug, Clone)]
pub struct CpuOpts {
    /// Accelerator: `host` under KVM, `max` under TCG.
    pub accel: Accelerator,
    /// Number of vCPUs.
    pub vcpus: u32,
}

impl CpuOpts {
    fn render(&self, args: &mut Vec<String>) {
        let model = match self.accel {
            Accelerator::Kvm => "host",
            Accelerator::Tcg => "max",
        };
        push(args, &["-cpu", model, "-smp", &self.vcpus.to_string()]);
    }
}

/// Guest RAM: a shared memfd, so vhost-user devices (virtiofsd) can map it.
#[derive(Debug, Clone)]
pub struct MemoryOpts {
    /// Size in MiB.
    pub mib: u32,
}

impl MemoryOpts {
    fn render(&self, args: &mut Vec<String>) {
        let size = format!("{}M", self.mib);
        let backend = format!("memory-backend-memfd,id={MEMORY_ID},size={size},share=on");
        push(args, &["-m", &size, "-object", &backend]);
    }
}

/// A virtio balloon that only reports free pages: the guest tells QEMU which of its pages
/// it freed (free page reporting), and QEMU gives them back to the host. Memory the guest
/// touched once at boot (the compressed kernel, the initramfs archive) stops costing host
/// memory. The balloon itself is never inflated.
#[derive(Debug, Clone)]
pub struct BalloonOpts;

impl BalloonOpts {
    fn render(&self, transport: VirtioTransport, args: &mut Vec<String>) {
        let device = format!(
            "{},id=balloon,free-page-reporting=on",
            transport.device("virtio-balloon")
        );
        push(args, &["-device", &device]);
    }
}

/// Direct kernel boot.
#[derive(Debug, Clone)]
pub struct KernelBootOpts {
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initramfs.
    pub initrd: PathBuf,
    /// Full kernel command line.
    pub cmdline: String,
}

impl KernelBootOpts {
    fn render(&self, args: &mut Vec<String>) {
        push(
            args,
            &[
                "-kernel",
                &path(&self.kernel),
                "-initrd",
                &path(&self.initrd),
            ],
        );
        push(args, &["-append", &self.cmdline]);
    }
}

/// The first serial port (`ttyS0`, the guest console), written to a file.
#[derive(Debug, Clone)]
pub struct ConsoleOpts {
    /// Host file the console output goes to.
    pub log: PathBuf,
}

impl ConsoleOpts {
    fn render(&self, args: &mut Vec<String>) {
        let chardev = format!("file,id=console,path={}", opt_path(&self.log));
        push(args, &["-chardev", &chardev, "-serial", "chardev:console"]);
    }
}

/// The agent channel: a virtio-serial port named after the contract in ARCHITECTURE.md,
/// backed by a unix socket on which QEMU listens.
#[derive(Debug, Clone)]
pub struct AgentChannelOpts {
    /// Host socket.
    pub socket: PathBuf,
    /// Name of the port in the guest (`/sys/class/virtio-ports/*/name`).
    pub port_name: String,
}

impl AgentChannelOpts {
    fn render(&self, transport: VirtioTransport, args: &mut Vec<String>) {
        let chardev = format!(
            "socket,id=agent,path={},server=on,wait=off",
            opt_path(&self.socket)
        );
        let serial = format!("{},id=vserial", transport.device("virtio-serial"));
        let port = format!(
            "virtserialport,bus=vserial.0,chardev=agent,name={}",
            self.port_name
        );
        push(
            args,
            &["-chardev", &chardev, "-device", &serial, "-device", &port],
        );
    }
}

/// One virtio-fs device, served by a virtiofsd listening on `socket`.
#[derive(Debug, Clone)]
pub struct VirtioFsOpts {
    /// virtiofsd's vhost-user socket.
    pub socket: PathBuf,
    /// Tag the guest mounts it by.
    pub tag: String,
}

impl VirtioFsOpts {
    fn render(&self, index: usize, transport: VirtioTransport, args: &mut Vec<String>) {
        let chardev = format!("socket,id=vfs{index},path={}", opt_path(&self.socket));
        let device = format!(
            "{},chardev=vfs{index},tag={}",
            transport.device("vhost-user-fs"),
            self.tag
        );
        push(args, &["-chardev", &chardev, "-device", &device]);
    }
}

/// One network device on a tap file descriptor that QEMU inherits.
#[derive(Debug, Clone)]
pub struct NetOpts {
    /// Descriptor number of the tap file in the QEMU process.
    pub fd: i32,
    /// Guest MAC address.
    pub mac: String,
    /// MTU the device announces to the guest.
    pub mtu: u32,
}

impl NetOpts {
    fn render(&self, index: usize, transport: VirtioTransport, args: &mut Vec<String>) {
        // vhost=off: these hosts have no vhost-net, and QEMU's userspace path works anywhere.
        let netdev = format!("tap,id=net{index},fd={},vhost=off", self.fd);
        let device = format!(
            "{},netdev=net{index},mac={},host_mtu={}",
            transport.device("virtio-net"),
            self.mac,
            self.mtu
        );
        push(args, &["-netdev", &netdev, "-device", &device]);
    }
}

/// One raw block device.
#[derive(Debug, Clone)]
pub struct BlockOpts {
    /// Host file or device.
    pub path: PathBuf,
    /// Whether the guest may only read it.
    pub readonly: bool,
}

impl BlockOpts {
    fn render(&self, index: usize, transport: VirtioTransport, args: &mut Vec<String>) {
        let drive = format!(
            "file={},if=none,id=blk{index},format=raw,readonly={}",
            opt_path(&self.path),
            on_off(self.readonly)
        );
        let device = format!("{},drive=blk{index}", transport.device("virtio-blk"));
        push(args, &["-drive", &drive, "-device", &device]);
    }
}

/// The control channel and process bookkeeping: QMP socket, pid file, start paused.
#[derive(Debug, Clone)]
pub struct ControlOpts {
    /// QMP socket QEMU listens on.
    pub qmp_socket: PathBuf,
    /// Pid file QEMU writes.
    pub pid_file: PathBuf,
    /// Name shown in `ps` and in QEMU's messages.
    pub name: String,
}

impl ControlOpts {
    fn render(&self, args: &mut Vec<String>) {
        let qmp = format!("unix:{},server=on,wait=off", opt_path(&self.qmp_socket));
        let name = self.name.replace(',', ",,");
        let pid_file = path(&self.pid_file);
        push(args, &["-name", &name, "-qmp", &qmp, "-pidfile", &pid_file]);
        // -S: vCPUs start only on QMP `cont`, so the boot phases can be timed separately.
        push(args, &["-S"]);
        // QEMU's seccomp filter: a guest that breaks into QEMU still cannot exec, fork, gain
        // privileges or change resource limits.
        push(args, &["-sandbox", SECCOMP]);
    }
}

/// A full QEMU invocation.
#[derive(Debug, Clone)]
pub struct QemuCommandLine {
    /// Machine and global options.
    pub machine: MachineOpts,
    /// vCPUs.
    pub cpu: CpuOpts,
    /// RAM.
    pub memory: MemoryOpts,
    /// Kernel, initramfs, command line.
    pub boot: KernelBootOpts,
    /// Serial console.
    pub console: ConsoleOpts,
    /// Agent channel.
    pub agent: AgentChannelOpts,
    /// virtio-fs devices.
    pub filesystems: Vec<VirtioFsOpts>,
    /// Network devices.
    pub nets: Vec<NetOpts>,
    /// Block devices.
    pub blocks: Vec<BlockOpts>,
    /// Free page reporting, when the guest gets a balloon.
    pub balloon: Option<BalloonOpts>,
    /// QMP and pid file.
    pub control: ControlOpts,
}

impl QemuCommandLine {
    /// The arguments after the binary name.
    pub fn args(&self) -> Vec<String> {
        let transport = VirtioTransport::for_machine(self.machine.machine);
        let mut args = Vec::new();
        self.control.render(&mut args);
        self.machine.render(&mut args);
        self.cpu.render(&mut args);
        self.memory.render(&mut args);
        self.boot.render(&mut args);
        self.console.render(&mut args);
        self.agent.render(transport, &mut args);
        for (i, fs) in self.filesystems.iter().enumerate() {
            fs.render(i, transport, &mut args);
        }
        for (i, net) in self.nets.iter().enumerate() {
            net.render(i, transport, &mut args);
        }
        for (i, block) in self.blocks.iter().enumerate() {
            block.render(i, transport, &mut args);
        }
        if let Some(balloon) = &self.balloon {
            balloon.render(transport, &mut args);
        }
        args
    }
}

fn push(args: &mut Vec<String>, items: &[&str]) {
    args.extend(items.iter().map(|s| s.to_string()));
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A path inside a `key=value,…` option: QEMU escapes a comma by doubling it.
fn opt_path(p: &std::path::Path) -> String {
    path(p).replace(',', ",,")
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
#[path = "cmdline_tests.rs"]
mod tests;
