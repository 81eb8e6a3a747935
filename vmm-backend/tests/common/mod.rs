//! Fixtures of the QEMU integration tests: a test initramfs whose `/init` is a busybox shell
//! script (no agent needed), and the checks that a VM left nothing behind.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use lightpod_vmm::{
    guest::{self, ExtraFile, ModuleIndex, GUEST_MODULES},
    qemu::{cleanup::HostProcesses, cleanup::ProcessTable, MachineType, QemuConfig},
    Vm, VmExit, VmSpec,
};
use tokio::io::AsyncBufReadExt;

/// The guest side of the tests. It loads the modules, finds the agent port by name, and then
/// follows the mode given as `lightpod.test=<mode>` on the kernel command line:
/// - `echo`: echoes one line (the host writes first: a port drops what the guest writes
///   while no host is connected), waits for `bye`, powers off;
/// - `share`: like echo, plus reads and writes files on the virtio-fs share `lightpod`, and
///   reads a file under a bind mount the host adds after boot;
/// - `devices`: like echo, plus reports the MAC of `eth0` and the read-only flag and first
///   bytes of `/dev/vda`;
/// - `hang`: never powers off; `panic`: init exits, so the kernel panics.
///
/// With `lightpod.probe=1` it powers off at once, as the agent does.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/lightpod/modules.load); do insmod "$m" || echo "test-init: insmod $m failed"; done
grep -q 'lightpod.probe=1' /proc/cmdline && poweroff -f
mode=$(sed -n 's/.*lightpod.test=\([a-z]*\).*/\1/p' /proc/cmdline)
[ "$mode" = panic ] && exit 1
port=""
for i in $(seq 1 400); do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && [ "$(cat "$p/name")" = lightpod.agent ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] && [ -e "$port" ] && break
  sleep 0.05
done
echo "test-init: mode=$mode port=$port"
if [ "$mode" = hang ]; then while true; do sleep 10; done; fi
exec 3<>"$port"
read -r line <&3
echo "echo:$line" >&3
if [ "$mode" = share ]; then
  mount -t virtiofs lightpod /mnt || echo "test-init: virtiofs mount failed"
  echo "host-file:$(cat /mnt/from-host.txt)" >&3
  echo guest-wrote > /mnt/from-guest.txt
  sync
  echo written >&3
  read -r line <&3
  echo "late:$(cat /mnt/late/marker.txt)" >&3
fi
if [ "$mode" = devices ]; then
  echo "mac:$(cat /sys/class/net/eth0/address)" >&3
  echo "blk:$(cat /sys/block/vda/ro):$(head -c 12 /dev/vda)" >&3
fi
read -r line <&3
echo "test-init: powering off after $line"
poweroff -f
"#;

/// What every QEMU test needs; `None` (with the reason printed) when the host lacks it.
pub struct TestEnv {
    /// The guest kernel.
    pub kernel: PathBuf,
    /// The test initramfs.
    pub initrd: PathBuf,
    /// virtiofsd, when installed.
    pub virtiofsd: Option<PathBuf>,
}

/// Guest kernel of the tests; `e2e/run.sh` sets it to lightpod's own (everything built in).
const KERNEL_ENV: &str = "LIGHTPOD_E2E_KERNEL";
/// Set by `e2e/run.sh`: a host that lacks what the tests need fails them instead of skipping.
const REQUIRE_ENV: &str = "LIGHTPOD_E2E_REQUIRE";

/// Builds the test initramfs inside `dir` (the test's own temporary directory). Without what
/// it needs the test is skipped with the reason, unless `LIGHTPOD_E2E_REQUIRE=1`.
pub fn env(test: &str, dir: &Path) -> Option<TestEnv> {
    match build_env(dir) {
        Ok(env) => Some(env),
        Err(reason) if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") => {
            panic!("{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure, not a skip)")
        }
        Err(reason) => {
            eprintln!("SKIP {test}: {reason}");
            None
        }
    }
}

/// The configured test kernel (no modules: lightpod's kernel has its drivers built in), else
/// the host's newest kernel with its modules.
fn test_kernel() -> Result<(PathBuf, String, Vec<guest::ResolvedModule>), String> {
    if let Some(kernel) = std::env::var_os(KERNEL_ENV).map(PathBuf::from) {
        let release = guest::kernel_release(&kernel)
            .map_err(|e| format!("{KERNEL_ENV}={}: {e}", kernel.display()))?;
        let modules_dir = Path::new("/lib/modules").join(&release);
        let modules = if modules_dir.join("modules.dep").exists() {
            ModuleIndex::load(&modules_dir)
                .and_then(|index| index.resolve(GUEST_MODULES))
                .map_err(|e| format!("guest modules: {e}"))?
        } else {
            Vec::new()
        };
        return Ok((kernel, release, modules));
    }
    let kernel = guest::find_host_kernel()
        .map_err(|e| format!("no guest kernel ({KERNEL_ENV} unset): {e}"))?;
    let modules = ModuleIndex::load(&kernel.modules_dir)
        .and_then(|index| index.resolve(GUEST_MODULES))
        .map_err(|e| format!("guest modules: {e}"))?;
    Ok((kernel.kernel, kernel.release, modules))
}

fn build_env(dir: &Path) -> Result<TestEnv, String> {
    let qemu = QemuConfig::default().binary;
    if !qemu.exists() {
        return Err(format!(
            "{} missing (apt-get install qemu-system-x86)",
            qemu.display()
        ));
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err("/bin/busybox missing (apt-get install busybox-static)".into());
    }
    let (kernel, release, modules) = test_kernel()?;
    let busybox = std::fs::read(busybox).map_err(|e| e.to_string())?;
    let initrd = dir.join("initrd.img");
    let extra = [ExtraFile {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: busybox,
    }];
    guest::write_initramfs(&initrd, INIT.as_bytes(), &release, &modules, &extra)
        .map_err(|e| format!("write test initramfs: {e}"))?;
    let virtiofsd = [
        "/root/.cargo/bin/virtiofsd",
        "/usr/local/lib/lightpod/virtiofsd",
        "/usr/libexec/virtiofsd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    Ok(TestEnv {
        kernel,
        initrd,
        virtiofsd,
    })
}

/// A backend configuration for the tests: the machine given, the accelerator the probe picks,
/// the probe cache inside `dir`.
pub fn config(env: &TestEnv, machine: MachineType, dir: &Path) -> QemuConfig {
    QemuConfig {
        machine,
        virtiofsd: env.virtiofsd.clone().unwrap_or_default(),
        probe_cache_dir: dir.join("probe"),
        ..QemuConfig::default()
    }
}

/// A spec with the test init in `mode`.
pub fn spec(env: &TestEnv, id: &str, state_dir: PathBuf, mode: &str) -> VmSpec {
    VmSpec {
        id: id.into(),
        state_dir,
        vcpus: 1,
        memory_mib: 256,
        kernel: env.kernel.clone(),
        initrd: env.initrd.clone(),
        kernel_params: vec![format!("lightpod.test={mode}")],
        shared_dirs: Vec::new(),
        net_devices: Vec::new(),
        block_devices: Vec::new(),
        boot_timeout: Duration::from_secs(60),
    }
}

/// Pids of live processes whose command line mentions `dir`.
pub fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(cmdline) = HostProcesses.cmdline(pid) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) && HostProcesses.alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Asserts that nothing of the VM in `state_dir` is left: no directory, no process.
pub fn assert_nothing_left(state_dir: &Path, pids: &[u32], what: &str) {
    assert!(
        !state_dir.exists(),
        "{what}: state dir {} still exists",
        state_dir.display()
    );
    for &pid in pids {
        let pid = i32::try_from(pid).unwrap_or_default();
        assert!(!HostProcesses.alive(pid), "{what}: pid {pid} still runs");
    }
    let left = processes_mentioning(state_dir);
    assert!(
        left.is_empty(),
        "{what}: processes still mention the state dir: {left:?}"
    );
}

/// Turns on log output (RUST_LOG) once.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "lightpod_vmm=info".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// RSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A bind mount that is lazily detached when dropped, also when a test fails half-way.
pub struct BindMount(PathBuf);

impl BindMount {
    /// Bind-mounts `source` on `target` (needs root).
    pub fn new(source: &Path, target: &Path) -> nix::Result<Self> {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(BindMount(target.to_path_buf()))
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        // virtiofsd holds the guest's looked-up inodes open, so a plain umount is EBUSY while
        // the guest runs; a lazy one detaches now and frees when virtiofsd lets go.
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Creates a tap device `name` through `/dev/net/tun` and returns the open file, as the
/// sandbox does inside a pod's network namespace. The device goes when the last descriptor
/// closes.
pub fn open_tap(name: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, OwnedFd};

    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which lives across the call; the
    // descriptor is open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// How long a test waits for the guest.
pub const WAIT_LIMIT: Duration = Duration::from_secs(90);

/// One line from the guest, with a time limit.
pub async fn read_line(reader: &mut (impl AsyncBufReadExt + Unpin)) -> Result<String> {
    let mut line = String::new();
    let n = tokio::time::timeout(WAIT_LIMIT, reader.read_line(&mut line))
        .await
        .context("guest did not answer in time")??;
    if n == 0 {
        bail!("agent stream closed");
    }
    Ok(line.trim_end().to_string())
}

/// Waits for the VM to exit, with a time limit.
pub async fn wait_exit(vm: &dyn Vm) -> Result<VmExit> {
    tokio::time::timeout(WAIT_LIMIT, vm.wait())
        .await
        .context("VM did not exit")
}
