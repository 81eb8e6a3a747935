//! Storage the host attaches to the guest: virtio-fs shares and block devices, mounted at
//! guest paths (`MountStorage`, and the `storages` of a container).

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::mount::{MntFlags, MsFlags};

use crate::spec::{StorageDriver, StorageSpec};

/// How long a block device may take to appear: a disk hot-plugged into a Xen guest shows up
/// once its frontend has connected, shortly after the host's attach returned.
const DEVICE_WAIT: Duration = Duration::from_secs(10);

/// Mounting or unmounting storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Something is mounted at the mount point already.
    #[error("{0} is already a mount point")]
    AlreadyMounted(PathBuf),
    /// The mount point could not be created.
    #[error("create mount point {0}")]
    CreateMountPoint(PathBuf, #[source] io::Error),
    /// `mount(2)` failed.
    #[error("mount {source_name} ({fs_type}) on {mount_point}")]
    Mount {
        /// Tag or device.
        source_name: String,
        /// Filesystem type used.
        fs_type: String,
        /// Target.
        mount_point: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The block device did not appear.
    #[error("block device {0} did not appear within {1:?}")]
    DeviceMissing(PathBuf, Duration),
    /// The blocking mount task failed.
    #[error("mount task")]
    Task(#[source] io::Error),
}

/// Whether `path` is a mount point, according to `/proc/self/mountinfo` (field 5).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo_has(&info, path)
}

fn mountinfo_has(info: &str, path: &Path) -> bool {
    let wanted = path.to_string_lossy();
    info.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|p| unescape(p) == wanted)
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mounts one storage, creating the mount point.
///
/// # Errors
///
/// The mount point is taken or cannot be created, or the mount fails.
pub async fn mount(spec: &StorageSpec) -> Result<(), StorageError> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || mount_blocking(&spec))
        .await
        .map_err(|e| StorageError::Task(io::Error::other(e)))?
}

fn mount_blocking(spec: &StorageSpec) -> Result<(), StorageError> {
    if is_mount_point(&spec.mount_point) {
        return Err(StorageError::AlreadyMounted(spec.mount_point.clone()));
    }
    fs::create_dir_all(&spec.mount_point)
        .map_err(|e| StorageError::CreateMountPoint(spec.mount_point.clone(), e))?;
    let deadline = Instant::now() + DEVICE_WAIT;
    if spec.driver == StorageDriver::Block {
        wait_for_device(Path::new(&spec.source), DEVICE_WAIT)?;
    }
    let fs_type = match spec.driver {
        StorageDriver::VirtioFs => "virtiofs",
        StorageDriver::Block => spec.fs_type.as_str(),
    };
    let flags = spec.options.ms_flags() - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let mount = || {
        nix::mount::mount(
            Some(spec.source.as_str()),
            &spec.mount_point,
            Some(fs_type),
            flags,
            spec.options.data(),
        )
    };
    let mut result = mount();
    // The node of a hot-plugged disk appears a moment before the disk opens: until its
    // driver has finished adding it, opening it fails with ENXIO.
    while spec.driver == StorageDriver::Block
        && result == Err(nix::errno::Errno::ENXIO)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
        result = mount();
    }
    result.map_err(|e| StorageError::Mount {
        source_name: spec.source.clone(),
        fs_type: fs_type.to_string(),
        mount_point: spec.mount_point.clone(),
        source: e.into(),
    })?;
    // Shared, so that containers' slave copies of it see what is mounted below it later
    // (virtio-fs submounts of host volumes with HostToContainer propagation).
    nix::mount::mount(
        None::<&str>,
        &spec.mount_point,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|e| StorageError::Mount {
        source_name: spec.source.clone(),
        fs_type: "shared propagation".to_string(),
        mount_point: spec.mount_point.clone(),
        source: e.into(),
    })?;
    tracing::info!(source = %spec.source, fs_type, mount_point = %spec.mount_point.display(), "storage mounted");
    Ok(())
}

/// Waits until `device` exists, polling: devtmpfs creates the node when the driver adds the
/// disk, and there is no cheaper event to wait on from here.
fn wait_for_device(device: &Path, limit: Duration) -> Result<(), StorageError> {
    let deadline = Instant::now() + limit;
    while !device.exists() {
        if Instant::now() >= deadline {
            return Err(StorageError::DeviceMissing(device.to_path_buf(), limit));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Unmounts mount points in reverse order, lazily so busy ones go once unused. Failures are
/// logged: the caller is tearing down and has nothing better to do with them.
pub async fn unmount_all(mount_points: &[PathBuf]) {
    let points: Vec<PathBuf> = mount_points.iter().rev().cloned().collect();
    let result = tokio::task::spawn_blocking(move || {
        for point in points {
            if let Err(err) = nix::mount::umount2(&point, MntFlags::MNT_DETACH) {
                tracing::warn!(mount_point = %point.display(), %err, "unmount failed");
            }
        }
    })
    .await;
    if let Err(err) = result {
        tracing::warn!(%err, "unmount task failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_device_only_as_long_as_allowed() {
        assert!(wait_for_device(Path::new("/dev/null"), Duration::ZERO).is_ok());
        let err = wait_for_device(Path::new("/dev/xvdz-none"), Duration::from_millis(30));
        assert!(
            matches!(err, Err(StorageError::DeviceMissing(..))),
            "{err:?}"
        );
    }

    #[test]
    fn finds_mount_points_in_mountinfo() {
        let info = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
            30 22 0:30 / /run/lightpod/shared rw - virtiofs lightpod rw\n\
            31 22 0:31 / /mnt/with\\040space rw - tmpfs tmpfs rw\n";
        let cases = [
            ("/proc", true),
            ("/run/lightpod/shared", true),
            ("/run/lightpod", false),
            ("/mnt/with space", true),
            ("/sys", false),
        ];
        for (path, want) in cases {
            assert_eq!(mountinfo_has(info, Path::new(path)), want, "{path}");
        }
    }
}
