//! The directory a sandbox shares into its guest, and the host mounts placed in it.
//!
//! Each sandbox has one shared directory (virtio-fs tag [`SHARE_TAG`], mounted in the guest
//! at [`GUEST_SHARE_DIR`]). A container's root filesystem and its host-path volumes are
//! bind-mounted under `<share>/<container>/` on the host, so they appear in the guest
//! without a new device per container. The mounts go through [`HostMounts`] so the logic
//! can be tested without root.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::SandboxError;

/// virtio-fs tag of the sandbox's shared directory.
pub const SHARE_TAG: &str = "lightpod";

/// Where the agent mounts the shared directory in the guest.
pub const GUEST_SHARE_DIR: &str = "/run/lightpod/shared";

/// Host mount operations the sandbox needs.
pub trait HostMounts: Send + Sync {
    /// Bind-mounts `source` (file or directory, recursively) onto `target`, read-only if asked.
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> Result<(), SandboxError>;
    /// Detaches whatever is mounted at `target`.
    fn unmount(&self, target: &Path) -> Result<(), SandboxError>;
}

/// The real mounts, through mount(2).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelMounts;

impl HostMounts for KernelMounts {
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> Result<(), SandboxError> {
        let err = |source| SandboxError::Mount {
            action: "bind-mount into the share",
            path: target.display().to_string(),
            source,
        };
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err)?;
        if readonly {
            // A bind mount ignores MS_RDONLY on creation; it takes a remount to apply it.
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
                let _ = umount2(target, MntFlags::MNT_DETACH);
                return Err(err(e));
            }
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SandboxError> {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(source) => Err(SandboxError::Mount {
                action: "unmount",
                path: target.display().to_string(),
                source,
            }),
        }
    }
}

/// Paths of a sandbox's shared directory, on the host and in the guest.
#[derive(Debug, Clone)]
pub struct ShareLayout {
    host_root: PathBuf,
}

impl ShareLayout {
    /// The layout of the share whose host directory is `host_root`.
    pub fn new(host_root: PathBuf) -> ShareLayout {
        ShareLayout { host_root }
    }

    /// Host directory of the share.
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }

    /// Host directory holding one container's mounts.
    pub fn container_dir(&self, container: &str) -> PathBuf {
        self.host_root.join(container)
    }

    /// Host mount point of a container's root filesystem.
    pub fn rootfs(&self, container: &str) -> PathBuf {
        self.container_dir(container).join("rootfs")
    }

    /// Guest path of a container's root filesystem.
    pub fn guest_rootfs(&self, container: &str) -> String {
        format!("{GUEST_SHARE_DIR}/{container}/rootfs")
    }

    /// Host mount point of a container's `index`-th volume.
    pub fn volume(&self, container: &str, index: usize) -> PathBuf {
        self.container_dir(container)
            .join("mounts")
            .join(index.to_string())
    }

    /// Guest path of a container's `index`-th volume.
    pub fn guest_volume(&self, container: &str, index: usize) -> String {
        format!("{GUEST_SHARE_DIR}/{container}/mounts/{index}")
    }
}

/// The host mounts made for one container, undone in reverse order.
#[derive(Debug, Default)]
pub struct ContainerMounts {
    targets: Vec<PathBuf>,
}

impl ContainerMounts {
    /// Bind-mounts `source` at `target`, creating `target` as a file or directory to match.
    pub fn bind(
        &mut self,
        mounts: &dyn HostMounts,
        source: &Path,
        target: &Path,
        readonly: bool,
    ) -> Result<(), SandboxError> {
        let io_err = |context: String| move |source| SandboxError::Io { context, source };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("create {}", parent.display())))?;
        }
        if source.is_dir() {
            std::fs::create_dir_all(target)
                .map_err(io_err(format!("create {}", target.display())))?;
        } else {
            std::fs::File::create(target)
                .map_err(io_err(format!("create {}", target.display())))?;
        }
        mounts.bind(source, target, readonly)?;
        self.targets.push(target.to_path_buf());
        Ok(())
    }

    /// Unmounts everything in reverse order; keeps going after a failure and returns the
    /// first one.
    pub fn release(&mut self, mounts: &dyn HostMounts) -> Result<(), SandboxError> {
        let mut first = None;
        while let Some(target) = self.targets.pop() {
            if let Err(e) = mounts.unmount(&target) {
                tracing::warn!(path = %target.display(), error = %crate::error::chain(&e), "unmount failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records mount calls instead of making them.
    #[derive(Default)]
    struct RecordingMounts {
        calls: Mutex<Vec<String>>,
        fail_unmount_of: Option<PathBuf>,
    }

    impl HostMounts for RecordingMounts {
        fn bind(&self, source: &Path, target: &Path, readonly: bool) -> Result<(), SandboxError> {
            self.calls.lock().expect("lock").push(format!(
                "bind {} {} {}",
                source.display(),
                target.display(),
                if readonly { "ro" } else { "rw" }
            ));
            Ok(())
        }
        fn unmount(&self, target: &Path) -> Result<(), SandboxError> {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("umount {}", target.display()));
            if self.fail_unmount_of.as_deref() == Some(target) {
                return Err(SandboxError::Mount {
                    action: "unmount",
                    path: target.display().to_string(),
                    source: nix::errno::Errno::EBUSY,
                });
            }
            Ok(())
        }
    }

    #[test]
    fn layout_maps_host_and_guest_paths() {
        let layout = ShareLayout::new("/run/lightpod/sandboxes/p/shared".into());
        assert_eq!(
            layout.rootfs("c1"),
            PathBuf::from("/run/lightpod/sandboxes/p/shared/c1/rootfs")
        );
        assert_eq!(layout.guest_rootfs("c1"), "/run/lightpod/shared/c1/rootfs");
        assert_eq!(
            layout.volume("c1", 2),
            PathBuf::from("/run/lightpod/sandboxes/p/shared/c1/mounts/2")
        );
        assert_eq!(
            layout.guest_volume("c1", 2),
            "/run/lightpod/shared/c1/mounts/2"
        );
    }

    #[test]
    fn binds_create_matching_targets_and_release_in_reverse() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src_dir = tmp.path().join("dir");
        let src_file = tmp.path().join("file");
        std::fs::create_dir(&src_dir).expect("mkdir");
        std::fs::write(&src_file, "x").expect("write");
        let layout = ShareLayout::new(tmp.path().join("shared"));
        let rec = RecordingMounts::default();
        let mut mounts = ContainerMounts::default();

        mounts
            .bind(&rec, &src_dir, &layout.rootfs("c"), false)
            .expect("bind dir");
        mounts
            .bind(&rec, &src_file, &layout.volume("c", 0), true)
            .expect("bind file");

        assert!(
            layout.rootfs("c").is_dir(),
            "directory source gets a directory target"
        );
        assert!(
            layout.volume("c", 0).is_file(),
            "file source gets a file target"
        );
        mounts.release(&rec).expect("release");
        let calls = rec.calls.lock().expect("lock").clone();
        assert_eq!(calls.len(), 4);
        assert!(
            calls[1].ends_with(" ro"),
            "volume bound read-only: {calls:?}"
        );
        assert_eq!(
            calls[2],
            format!("umount {}", layout.volume("c", 0).display())
        );
        assert_eq!(calls[3], format!("umount {}", layout.rootfs("c").display()));
    }

    #[test]
    fn release_goes_on_after_a_failure_and_reports_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = ShareLayout::new(tmp.path().join("shared"));
        let rec = RecordingMounts {
            fail_unmount_of: Some(layout.volume("c", 0)),
            ..Default::default()
        };
        let mut mounts = ContainerMounts::default();
        mounts
            .bind(&rec, tmp.path(), &layout.rootfs("c"), false)
            .expect("bind");
        mounts
            .bind(&rec, tmp.path(), &layout.volume("c", 0), false)
            .expect("bind");

        assert!(
            mounts.release(&rec).is_err(),
            "the failed unmount is reported"
        );
        let calls = rec.calls.lock().expect("lock").clone();
        assert_eq!(
            calls.last(),
            Some(&format!("umount {}", layout.rootfs("c").display()))
        );
    }
}
