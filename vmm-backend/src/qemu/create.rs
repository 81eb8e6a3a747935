//! Creating a guest: state directory, virtiofsd helpers, QEMU, QMP, `cont`.
//!
//! Everything started is recorded in [`Started`]; a failure at any step unwinds it in reverse
//! order (QEMU, helpers, state directory) before the error is returned. A create future
//! dropped half-way unwinds through `Drop` (children are killed on drop).

use std::{
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    time::Duration,
};

use qapi::qmp;
use tokio::{
    process::Child,
    sync::oneshot,
    time::{timeout_at, Instant},
};

use crate::{
    guest::pvh,
    qemu::{
        cmdline::{
            AgentChannelOpts, BalloonOpts, BlockOpts, ConsoleOpts, ControlOpts, CpuOpts,
            KernelBootOpts, MachineOpts, MemoryOpts, NetOpts, QemuCommandLine, VirtioFsOpts,
        },
        config::MachineType,
        kernel_params::{guest_cmdline, page_reporting_param, AGENT_PORT_NAME},
        logs,
        process::{self, ExitLogs},
        qmp::QmpConnection,
        validate::validate,
        virtiofsd::{self, Virtiofsd, VirtiofsdOpts, VirtiofsdSandbox},
        vm::QemuVm,
    },
    Accelerator, BootTimings, VmError, VmSpec,
};

/// What `create` needs besides the spec.
#[derive(Debug, Clone)]
pub struct CreateParams {
    /// QEMU binary.
    pub qemu: PathBuf,
    /// virtiofsd binary, when one was found.
    pub virtiofsd: Option<PathBuf>,
    /// Machine type.
    pub machine: MachineType,
    /// Accelerator.
    pub accel: Accelerator,
    /// Host TSC kHz for `tsc_early_khz=` under TCG.
    pub tsc_khz: Option<u64>,
    /// TCG translation cache size in MiB.
    pub tcg_tb_mib: u32,
    /// Whether guests get a free-page-reporting balloon.
    pub free_page_reporting: bool,
    /// Whether the PVH `vmlinux` beside a `vmlinuz` is booted instead of it.
    pub pvh_boot: bool,
}

/// The files of a VM inside its state directory.
#[derive(Debug, Clone)]
pub struct StatePaths {
    dir: PathBuf,
}

impl StatePaths {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What a create has started so far, unwound on failure.
struct Started {
    dir: Option<PathBuf>,
    helpers: Vec<Virtiofsd>,
    qemu: Option<Child>,
}

impl Started {
    async fn unwind(mut self) {
        if let Some(mut qemu) = self.qemu.take() {
            let _ = qemu.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), qemu.wait()).await;
        }
        for mut helper in std::mem::take(&mut self.helpers) {
            virtiofsd::kill(&mut helper).await;
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove VM state dir");
            }
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Only reached when a create future is dropped mid-way: children die through
        // kill_on_drop; the directory goes here.
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Creates and boots a guest; see [`crate::Hypervisor::create`].
pub async fn create(params: &CreateParams, mut spec: VmSpec) -> Result<QemuVm, VmError> {
    let t0 = Instant::now();
    validate(&spec)?;
    if !spec.shared_dirs.is_empty() && params.virtiofsd.is_none() {
        return Err(VmError::VmmMissing {
            binary: "virtiofsd".into(),
            hint: "install virtiofsd (cargo install virtiofsd, or Debian's virtiofsd package) \
                   and set qemu.virtiofsd in /etc/lightpod/config.toml"
                .into(),
        });
    }
    // The parent (the sandbox's directory) may be created here; the state dir itself must be
    // new, since everything in it is removed with the VM.
    if let Some(parent) = spec.state_dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| VmError::Io {
            context: format!("create {}", parent.display()),
            source: e,
        })?;
    }
    match std::fs::create_dir(&spec.state_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(VmError::InvalidSpec(format!(
                "state dir {} already exists (clean it up with cleanup_state_dir)",
                spec.state_dir.display()
            )))
        }
        Err(e) => {
            let context = format!("create {}", spec.state_dir.display());
            return Err(VmError::Io { context, source: e });
        }
    }
    let mut started = Started {
        dir: Some(spec.state_dir.clone()),
        helpers: Vec::new(),
        qemu: None,
    };
    let taps: Vec<Option<OwnedFd>> = spec
        .net_devices
        .iter_mut()
        .map(|n| n.tap_fd.take())
        .collect();
    match boot(params, &spec, &taps, &mut started, t0).await {
        Ok(vm) => {
            started.dir = None;
            Ok(vm)
        }
        Err(e) => {
            started.unwind().await;
            Err(e)
        }
    }
}

async fn boot(
    params: &CreateParams,
    spec: &VmSpec,
    taps: &[Option<OwnedFd>],
    started: &mut Started,
    t0: Instant,
) -> Result<QemuVm, VmError> {
    let deadline = t0 + spec.boot_timeout;
    let paths = StatePaths {
        dir: spec.state_dir.clone(),
    };

    let mut filesystems = Vec::new();
    for dir in &spec.shared_dirs {
        let socket = paths.file(&format!("vfs-{}.sock", dir.tag));
        let opts = VirtiofsdOpts {
            socket: socket.clone(),
            shared_dir: dir.host_path.clone(),
            readonly: dir.readonly,
            sandbox: VirtiofsdSandbox::for_current_user(),
        };
        let binary = params
            .virtiofsd
            .as_deref()
            .unwrap_or(Path::new("virtiofsd"));
        let log = paths.file(&format!("vfs-{}.log", dir.tag));
        let pid_file = paths.file(&format!("vfs-{}.pid", dir.tag));
        let remaining = deadline.saturating_duration_since(Instant::now());
        let daemon = virtiofsd::spawn(binary, &opts, &log, &pid_file, remaining).await?;
        started.helpers.push(daemon);
        filesystems.push(VirtioFsOpts {
            socket,
            tag: dir.tag.clone(),
        });
    }

    let mut nets = Vec::new();
    let mut inherit = Vec::new();
    for (device, tap) in spec.net_devices.iter().zip(taps) {
        let Some(tap) = tap else {
            return Err(VmError::InvalidSpec(format!(
                "net device {} has no open tap descriptor",
                device.tap_name
            )));
        };
        inherit.push(tap.as_raw_fd());
        nets.push(NetOpts {
            fd: tap.as_raw_fd(),
            mac: device.mac.clone(),
            mtu: device.mtu,
        });
    }

    let line = QemuCommandLine {
        machine: MachineOpts {
            machine: params.machine,
            accel: params.accel,
            tcg_tb_mib: params.tcg_tb_mib,
        },
        cpu: CpuOpts {
            accel: params.accel,
            vcpus: spec.vcpus,
        },
        memory: MemoryOpts {
            mib: spec.memory_mib,
        },
        boot: KernelBootOpts {
            kernel: boot_kernel(params.pvh_boot, &spec.kernel, &spec.id),
            initrd: spec.initrd.clone(),
            cmdline: guest_cmdline(params.accel, params.tsc_khz, &kernel_params(params, spec)),
        },
        console: ConsoleOpts {
            log: paths.file("console.log"),
        },
        agent: AgentChannelOpts {
            socket: paths.file("agent.sock"),
            port_name: AGENT_PORT_NAME.into(),
        },
        filesystems,
        nets,
        blocks: spec
            .block_devices
            .iter()
            .map(|b| BlockOpts {
                path: b.path.clone(),
                readonly: b.readonly,
            })
            .collect(),
        balloon: params.free_page_reporting.then_some(BalloonOpts),
        control: ControlOpts {
            qmp_socket: paths.file("qmp.sock"),
            pid_file: paths.file("qemu.pid"),
            name: format!("lightpod-{}", spec.id),
        },
    };
    let args = line.args();
    tracing::debug!(vm = %spec.id, args = ?args, "starting QEMU");
    let stderr_log = paths.file("qemu.log");
    let child = process::spawn_qemu(&params.qemu, &args, &stderr_log, &inherit).map_err(|e| {
        VmError::SpawnVmm {
            binary: params.qemu.display().to_string(),
            source: e,
        }
    })?;
    let qemu_pid = child.id().unwrap_or_default();
    started.qemu = Some(child);
    let vmm_spawned = t0.elapsed();

    let logs = ExitLogs {
        stderr: stderr_log,
        console: paths.file("console.log"),
    };
    let ready = control_ready(&paths, started, deadline, spec.boot_timeout, &logs).await?;
    let (qmp, vmm_ready) = (ready, t0.elapsed());

    let remaining = deadline.saturating_duration_since(Instant::now());
    if let Err(e) = qmp.execute(qmp::cont {}, remaining).await {
        return Err(exited_error(started, &logs)
            .await
            .unwrap_or(VmError::Control(e.to_string())));
    }
    let guest_started = t0.elapsed();

    let timings = BootTimings {
        vmm_spawned: Some(vmm_spawned),
        vmm_ready: Some(vmm_ready),
        guest_started: Some(guest_started),
        accelerator: Some(params.accel),
    };
    tracing::info!(
        vm = %spec.id,
        backend = "qemu",
        machine = params.machine.qemu_name(),
        accelerator = %params.accel,
        kernel = %line.boot.kernel.display(),
        vmm_spawned_ms = vmm_spawned.as_millis() as u64,
        vmm_ready_ms = vmm_ready.as_millis() as u64,
        guest_started_ms = guest_started.as_millis() as u64,
        "VM booted"
    );

    let (kill_tx, kill_rx) = oneshot::channel();
    let Some(child) = started.qemu.take() else {
        return Err(VmError::Control("QEMU child lost".into()));
    };
    let exit = process::watch_exit(child, kill_rx, qmp.state(), logs);
    let helpers = std::mem::take(&mut started.helpers);
    Ok(QemuVm::new(
        spec.id.clone(),
        spec.state_dir.clone(),
        paths.file("agent.sock"),
        qemu_pid,
        timings,
        qmp,
        exit,
        helpers,
        kill_tx,
    ))
}

/// The kernel file QEMU loads: with `pvh_boot`, the ELF `vmlinux` beside lightpod's
/// `vmlinuz` when it carries the PVH entry note (QEMU refuses an ELF kernel without it);
/// otherwise the kernel as the spec names it.
fn boot_kernel(pvh_boot: bool, kernel: &Path, vm: &str) -> PathBuf {
    let given = kernel.to_path_buf();
    let Some(elf) = pvh_boot.then(|| pvh::elf_beside(&given)).flatten() else {
        return given;
    };
    match pvh::has_pvh_entry(&elf) {
        Ok(true) => elf,
        Ok(false) => {
            tracing::warn!(vm = %vm, elf = %elf.display(), kernel = %given.display(),
                "the vmlinux beside the kernel has no PVH entry note; booting the bzImage");
            given
        }
        Err(e) => {
            tracing::warn!(vm = %vm, elf = %elf.display(), error = %e,
                "cannot read the vmlinux beside the kernel; booting the bzImage");
            given
        }
    }
}

/// Connects QMP, or reports QEMU's own error when it exits first (a kernel it cannot load,
/// a bad option).
async fn control_ready(
    paths: &StatePaths,
    started: &mut Started,
    deadline: Instant,
    boot_timeout: Duration,
    logs: &ExitLogs,
) -> Result<QmpConnection, VmError> {
    let qmp_socket = paths.file("qmp.sock");
    let connect = QmpConnection::connect(&qmp_socket, deadline);
    let qemu = started.qemu.as_mut();
    let result = match qemu {
        Some(qemu) => {
            tokio::select! {
                result = connect => result,
                status = qemu.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Err(VmError::VmmExited {
                        status,
                        log: logs::vm_tail(&logs.stderr, &logs.console),
                    });
                }
            }
        }
        None => connect.await,
    };
    match result {
        Ok(qmp) => Ok(qmp),
        Err(e) => match exited_error(started, logs).await {
            Some(exited) => Err(exited),
            None if Instant::now() >= deadline => Err(VmError::Timeout(boot_timeout, "QMP")),
            None => Err(VmError::Control(e.to_string())),
        },
    }
}

/// A `VmmExited` error when QEMU has exited (or exits within a moment).
async fn exited_error(started: &mut Started, logs: &ExitLogs) -> Option<VmError> {
    let qemu = started.qemu.as_mut()?;
    let soon = Instant::now() + Duration::from_millis(500);
    let status = timeout_at(soon, qemu.wait()).await.ok()?.ok()?;
    Some(VmError::VmmExited {
        status: status.to_string(),
        log: logs::vm_tail(&logs.stderr, &logs.console),
    })
}

/// The caller's kernel parameters, after the backend's own for the devices it adds (so the
/// caller's win: the last occurrence of a parameter counts).
fn kernel_params(params: &CreateParams, spec: &VmSpec) -> Vec<String> {
    let mut all = Vec::with_capacity(spec.kernel_params.len() + 1);
    if params.free_page_reporting {
        all.push(page_reporting_param());
    }
    all.extend(spec.kernel_params.iter().cloned());
    all
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::guest::pvh::tests::{elf_with_notes, note};

    #[test]
    fn the_pvh_vmlinux_boots_only_when_on_and_valid() {
        let dir = tempfile::tempdir().unwrap();
        let bzimage = dir.path().join("vmlinuz");
        let elf = dir.path().join("vmlinux");
        std::fs::write(&bzimage, "bz").unwrap();
        assert_eq!(
            boot_kernel(true, &bzimage, "vm"),
            bzimage,
            "no vmlinux beside"
        );

        std::fs::write(&elf, "not an ELF").unwrap();
        assert_eq!(
            boot_kernel(true, &bzimage, "vm"),
            bzimage,
            "a vmlinux without the PVH note would make QEMU refuse to start"
        );

        let entry = 0x0100_0500u32.to_le_bytes();
        std::fs::write(&elf, elf_with_notes(&note(b"Xen\0", 18, &entry))).unwrap();
        assert_eq!(boot_kernel(true, &bzimage, "vm"), elf, "PVH entry found");
        assert_eq!(
            boot_kernel(false, &bzimage, "vm"),
            bzimage,
            "qemu.pvh_boot = false"
        );
    }
}
