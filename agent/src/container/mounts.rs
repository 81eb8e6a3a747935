//! The mounts of a container's filesystem, made by its init inside its own mount namespace:
//! the defaults every container gets, the request's mounts, masked and read-only paths.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::{
    container::mount_options::MountOptions, init::SetupFailure, spec::MountSpec, syscall::Syscall,
};

/// Character devices created in a container's `/dev` tmpfs: name, major, minor.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks every Linux userland expects in `/dev`: link name, target.
const DEV_LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// The mounts a container gets unless its request mounts the same destination, as the
/// defaults of containerd's OCI spec.
pub fn default_mounts() -> Vec<MountSpec> {
    let m = |dest: &str, fs_type: &str, source: &str, options: &[&str]| MountSpec {
        destination: dest.into(),
        fs_type: fs_type.to_string(),
        source: source.to_string(),
        options: MountOptions::parse(options),
    };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup2",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// The full, ordered mount list: the request's mounts in their order, with each default the
/// request does not replace placed before them, or right after the requested mount of its
/// parent directory (so a requested `/dev` tmpfs does not hide the default `/dev/pts`).
pub fn plan(requested: &[MountSpec]) -> Vec<MountSpec> {
    let mut list: Vec<MountSpec> = requested.to_vec();
    let mut front = 0;
    for default in default_mounts() {
        if requested
            .iter()
            .any(|m| m.destination == default.destination)
        {
            continue;
        }
        let parent_at = list.iter().rposition(|m| {
            default.destination.starts_with(&m.destination) && m.destination != default.destination
        });
        match parent_at {
            Some(i) if i >= front => list.insert(i + 1, default),
            _ => {
                list.insert(front, default);
                front += 1;
            }
        }
    }
    list
}

/// Joins a container path onto the rootfs.
pub fn in_rootfs(rootfs: &Path, path: &Path) -> PathBuf {
    rootfs.join(path.strip_prefix("/").unwrap_or(path))
}

/// Makes one mount under `rootfs`, creating its destination when missing.
///
/// TODO: destinations are joined lexically, so a symlink in the image can point a mount
/// outside the rootfs (into the guest, never the host); resolve them in the rootfs once the
/// guest kernel's `openat2(RESOLVE_IN_ROOT)` is relied on.
pub fn mount_one(sys: &dyn Syscall, rootfs: &Path, m: &MountSpec) -> Result<(), SetupFailure> {
    let dest = in_rootfs(rootfs, &m.destination);
    let step = |what: &str| format!("{what} {}", m.destination.display());
    let flags = m.options.ms_flags();
    let bind = m.options.is_bind() || m.fs_type == "bind";

    if bind && !sys.is_dir(Path::new(&m.source)) && sys.exists(Path::new(&m.source)) {
        sys.create_file(&dest)
            .map_err(SetupFailure::io(step("create mount point")))?;
    } else {
        sys.create_dir_all(&dest)
            .map_err(SetupFailure::io(step("create mount point")))?;
    }

    if bind {
        let bind_flags = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        sys.mount(Some(&m.source), &dest, None, bind_flags, None)
            .map_err(SetupFailure::io(format!(
                "bind mount {} on {}",
                m.source,
                m.destination.display()
            )))?;
        // A bind mount ignores other flags; they take effect on a remount.
        let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            let remount = extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            sys.mount(None, &dest, None, remount, None)
                .map_err(SetupFailure::io(step("remount")))?;
        }
    } else {
        let fs_type = if m.fs_type == "cgroup" {
            "cgroup2"
        } else {
            m.fs_type.as_str()
        };
        let source = if m.source.is_empty() {
            fs_type
        } else {
            m.source.as_str()
        };
        sys.mount(Some(source), &dest, Some(fs_type), flags, m.options.data())
            .map_err(SetupFailure::io(format!(
                "mount {fs_type} on {}",
                m.destination.display()
            )))?;
    }

    let propagation = m.options.ms_propagation();
    if !propagation.is_empty() {
        sys.mount(None, &dest, None, propagation, None)
            .map_err(SetupFailure::io(step("set propagation of")))?;
    }
    Ok(())
}

/// Fills a fresh `/dev` tmpfs with the basic devices and links. Existing entries are kept.
pub fn populate_dev(sys: &dyn Syscall, rootfs: &Path) -> Result<(), SetupFailure> {
    let dev = in_rootfs(rootfs, Path::new("/dev"));
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        match sys.mknod_char(&path, 0o666, major, minor) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(SetupFailure::io(format!("create /dev/{name}"))(e));
            }
            _ => {}
        }
    }
    for (name, target) in DEV_LINKS {
        match sys.symlink(Path::new(target), &dev.join(name)) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(SetupFailure::io(format!("link /dev/{name}"))(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Hides paths (after `pivot_root`): a directory gets an empty read-only tmpfs, a file gets
/// `/dev/null`. Paths that do not exist are skipped.
pub fn mask_paths(sys: &dyn Syscall, paths: &[PathBuf]) -> Result<(), SetupFailure> {
    for path in paths.iter().filter(|p| sys.exists(p)) {
        let step = format!("mask {}", path.display());
        if sys.is_dir(path) {
            sys.mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None)
        } else {
            sys.mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None)
        }
        .map_err(SetupFailure::io(step))?;
    }
    Ok(())
}

/// Makes paths read-only (after `pivot_root`) by binding each onto itself and remounting.
pub fn readonly_paths(sys: &dyn Syscall, paths: &[PathBuf]) -> Result<(), SetupFailure> {
    let rec_bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    let ro = rec_bind
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    for path in paths.iter().filter(|p| sys.exists(p)) {
        let step = format!("make {} read-only", path.display());
        let p = path.to_str().unwrap_or_default();
        sys.mount(Some(p), path, None, rec_bind, None)
            .and_then(|()| sys.mount(None, path, None, ro, None))
            .map_err(SetupFailure::io(step))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "mounts_tests.rs"]
mod tests;
