//! A task's root filesystem from the mounts containerd hands the shim.
//!
//! containerd's snapshotter describes the rootfs as a list of mounts (shim v2
//! `CreateTaskRequest.rootfs`): with the overlayfs snapshotter one `overlay` mount whose
//! options name the lower, upper and work directories, or one read-only `bind` of a single
//! layer. The shim mounts them, in order, on `rootfs` in the bundle; the sandbox then shares
//! that directory into the guest, so what the container writes lands in the snapshot.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::error::TaskError;

/// Longest option string mount(2) takes: one page.
const MAX_MOUNT_DATA: usize = 4096;

/// One mount of a root filesystem, as containerd describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// Filesystem type: `overlay`, `bind`, `ext4`, ….
    pub fs_type: String,
    /// Its source: `overlay`, a directory, a device.
    pub source: String,
    /// Options as mount(8) takes them: flags (`ro`, `rbind`, `nosuid`) and data
    /// (`lowerdir=…`).
    pub options: Vec<String>,
}

/// Mount flags and the filesystem-specific data string of a mount's options.
fn flags_and_data(mount: &RootfsMount) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    if mount.fs_type == "bind" {
        flags |= MsFlags::MS_BIND;
    }
    for option in &mount.options {
        match option.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "defaults" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts `mounts` in order on `target` (created if missing). On error nothing stays
/// mounted.
///
/// # Errors
///
/// A mount's option string is too long, or mount(2) refused; the error names the mount.
pub fn mount_rootfs(mounts: &[RootfsMount], target: &Path) -> Result<(), TaskError> {
    std::fs::create_dir_all(target).map_err(|source| {
        TaskError::Sandbox(crate::SandboxError::Io {
            context: format!("create the rootfs mount point {}", target.display()),
            source,
        })
    })?;
    for (index, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            unmount_rootfs(target, index);
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &RootfsMount, target: &Path) -> Result<(), TaskError> {
    let (flags, data) = flags_and_data(m);
    if data.len() >= MAX_MOUNT_DATA {
        // TODO: images with so many layers that lowerdir passes a page need the mount to be
        // made from inside the snapshot directory with relative paths.
        return Err(TaskError::InvalidRequest(format!(
            "rootfs {} mount: its options are {} bytes, more than mount(2) takes ({}): use \
             an image with fewer layers",
            m.fs_type,
            data.len(),
            MAX_MOUNT_DATA - 1
        )));
    }
    let fs_type = (!flags.contains(MsFlags::MS_BIND)).then_some(m.fs_type.as_str());
    let data = (!data.is_empty()).then_some(data.as_str());
    let fail = |source| TaskError::MountRootfs {
        fs_type: m.fs_type.clone(),
        source_path: m.source.clone(),
        target: target.display().to_string(),
        source,
    };
    mount(
        Some(m.source.as_str()),
        target,
        fs_type,
        flags & !MsFlags::MS_RDONLY | bind_ro(flags),
        data,
    )
    .map_err(fail)?;
    // A bind mount ignores MS_RDONLY when created; a remount applies it.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(e) = mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(fail(e));
        }
    }
    Ok(())
}

/// Read-only is passed at creation for filesystems, and by remount for binds.
fn bind_ro(flags: MsFlags) -> MsFlags {
    if flags.contains(MsFlags::MS_BIND) {
        MsFlags::empty()
    } else {
        flags & MsFlags::MS_RDONLY
    }
}

/// Unmounts `count` stacked mounts from `target`; a target with nothing mounted is fine.
pub fn unmount_rootfs(target: &Path, count: usize) {
    for _ in 0..count {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return,
            Err(e) => {
                tracing::warn!(path = %target.display(), error = %e, "unmount the rootfs");
                return;
            }
        }
    }
}

/// Unmounts everything stacked on `target` (the clean-up after a shim that died).
pub fn unmount_all(target: &Path) {
    unmount_rootfs(target, 16);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(fs_type: &str, options: &[&str]) -> RootfsMount {
        RootfsMount {
            fs_type: fs_type.into(),
            source: "src".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let cases = [
            (
                "overlay snapshot",
                m(
                    "overlay",
                    &["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l"],
                ),
                MsFlags::empty(),
                "index=off,workdir=/w,upperdir=/u,lowerdir=/l",
            ),
            (
                "read-only single layer",
                m("bind", &["ro", "rbind"]),
                MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY,
                "",
            ),
            (
                "filesystem with flags",
                m("ext4", &["nosuid", "nodev", "errors=remount-ro"]),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "errors=remount-ro",
            ),
        ];
        for (name, mount, flags, data) in cases {
            let (f, d) = flags_and_data(&mount);
            assert_eq!(f, flags, "{name}: flags");
            assert_eq!(d, data, "{name}: data");
        }
    }

    #[test]
    fn read_only_goes_by_remount_for_binds_only() {
        assert_eq!(
            bind_ro(MsFlags::MS_BIND | MsFlags::MS_RDONLY),
            MsFlags::empty()
        );
        assert_eq!(bind_ro(MsFlags::MS_RDONLY), MsFlags::MS_RDONLY);
    }

    #[test]
    fn option_strings_longer_than_a_page_are_refused_before_mounting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lower = format!("lowerdir={}", "/l".repeat(3000));
        let err = mount_rootfs(&[m("overlay", &[&lower])], dir.path())
            .expect_err("a 6 KiB option string cannot be mounted");
        assert!(err.to_string().contains("fewer layers"), "{err}");
    }
}
