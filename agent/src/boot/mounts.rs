//! The filesystems PID 1 mounts before anything else.

use std::path::Path;

use nix::mount::MsFlags;

use crate::syscall::Syscall;

/// An early mount: target, filesystem type, flags, data.
type EarlyMount = (&'static str, &'static str, MsFlags, Option<&'static str>);

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// Mounted first: everything else, logging included, needs them.
pub const FIRST: [EarlyMount; 2] = [
    ("/proc", "proc", NOSUID_NOEXEC_NODEV, None),
    ("/dev", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
];

/// The rest of a Linux userland's mounts.
pub const REST: [EarlyMount; 6] = [
    ("/sys", "sysfs", NOSUID_NOEXEC_NODEV, None),
    (
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    ),
    (
        "/dev/shm",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        Some("mode=1777"),
    ),
    (
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        Some("mode=0755"),
    ),
    (
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        Some("mode=1777"),
    ),
    (
        "/sys/fs/cgroup",
        "cgroup2",
        NOSUID_NOEXEC_NODEV,
        Some("nsdelegate"),
    ),
];

/// Links `/dev` needs; `/dev/ptmx` points into the devpts instance above.
const DEV_LINKS: [(&str, &str); 5] = [
    ("/dev/ptmx", "pts/ptmx"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Directory through which the initramfs root is re-mounted.
const REROOT_DIR: &str = "/.lightpod-root";

/// A failed early step.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub struct EarlyMountError {
    /// What failed.
    pub step: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

fn failed(step: String) -> impl FnOnce(std::io::Error) -> EarlyMountError {
    move |source| EarlyMountError { step, source }
}

/// Makes the initramfs root a bind mount of itself, so that containers can `pivot_root` away
/// from it: the kernel refuses to pivot the initial rootfs, which has no parent mount.
///
/// # Errors
///
/// A mount, `chdir` or `chroot` failed.
pub fn reroot(sys: &dyn Syscall) -> Result<(), EarlyMountError> {
    let dir = Path::new(REROOT_DIR);
    sys.create_dir_all(dir)
        .map_err(failed(format!("create {REROOT_DIR}")))?;
    sys.mount(Some("/"), dir, None, MsFlags::MS_BIND, None)
        .map_err(failed("bind / for re-rooting".into()))?;
    sys.chdir(dir)
        .map_err(failed(format!("chdir {REROOT_DIR}")))?;
    sys.mount(
        Some(REROOT_DIR),
        Path::new("/"),
        None,
        MsFlags::MS_MOVE,
        None,
    )
    .map_err(failed("move the root bind onto /".into()))?;
    sys.chroot(Path::new("."))
        .map_err(failed("chroot into the new root".into()))?;
    sys.chdir(Path::new("/")).map_err(failed("chdir /".into()))
}

/// Mounts a table of early filesystems, creating mount points. An `EBUSY` (already mounted,
/// e.g. by the kernel) is fine.
///
/// # Errors
///
/// A mount point cannot be created or a mount fails.
pub fn mount_table(sys: &dyn Syscall, table: &[EarlyMount]) -> Result<(), EarlyMountError> {
    for (target, fs_type, flags, data) in table {
        let path = Path::new(target);
        sys.create_dir_all(path)
            .map_err(failed(format!("create {target}")))?;
        match sys.mount(Some(fs_type), path, Some(fs_type), *flags, *data) {
            Err(e) if e.raw_os_error() != Some(libc::EBUSY) => {
                return Err(failed(format!("mount {fs_type} on {target}"))(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates the `/dev` links, replacing the devtmpfs `/dev/ptmx` node.
///
/// # Errors
///
/// A link cannot be created.
pub fn dev_links(sys: &dyn Syscall) -> Result<(), EarlyMountError> {
    for (link, target) in DEV_LINKS {
        let path = Path::new(link);
        if link == "/dev/ptmx" {
            let _ = std::fs::remove_file(path);
        }
        match sys.symlink(Path::new(target), path) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(failed(format!("link {link}"))(e));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, RecordingSyscall};

    #[test]
    fn early_mounts_cover_the_boot_contract() {
        let sys = RecordingSyscall::default();
        mount_table(&sys, &FIRST).expect("first");
        mount_table(&sys, &REST).expect("rest");
        let targets: Vec<String> = sys
            .mounts()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(target.display().to_string()),
                _ => None,
            })
            .collect();
        let contract = [
            "/proc",
            "/dev",
            "/sys",
            "/dev/pts",
            "/dev/shm",
            "/run",
            "/tmp",
            "/sys/fs/cgroup",
        ];
        assert_eq!(targets, contract);
        let pts = sys
            .mounts()
            .into_iter()
            .find(|c| matches!(c, Call::Mount { target, .. } if target == Path::new("/dev/pts")));
        let Some(Call::Mount { data, .. }) = pts else {
            panic!("no devpts mount")
        };
        let data = data.unwrap_or_default();
        assert!(
            data.contains("newinstance") && data.contains("ptmxmode=0666"),
            "{data}"
        );
    }

    #[test]
    fn busy_mount_points_are_fine_other_errors_are_not() {
        let busy = RecordingSyscall::default().failing("mount", libc::EBUSY);
        assert!(
            mount_table(&busy, &FIRST).is_ok(),
            "EBUSY means mounted already"
        );
        let denied = RecordingSyscall::default().failing("mount", libc::EPERM);
        let err = mount_table(&denied, &FIRST).expect_err("EPERM is fatal");
        assert_eq!(err.step, "mount proc on /proc");
    }

    #[test]
    fn reroot_binds_moves_and_chroots() {
        let sys = RecordingSyscall::default();
        reroot(&sys).expect("reroot");
        let calls = sys.calls();
        let chroot_at = calls
            .iter()
            .position(|c| *c == Call::Chroot(".".into()))
            .expect("chroot");
        let move_at = calls
            .iter()
            .position(
                |c| matches!(c, Call::Mount { flags, .. } if flags.contains(MsFlags::MS_MOVE)),
            )
            .expect("move");
        assert!(move_at < chroot_at, "move before chroot: {calls:?}");
        assert_eq!(calls.last(), Some(&Call::Chdir("/".into())));
    }
}
