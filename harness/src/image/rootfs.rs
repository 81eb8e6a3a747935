//! The busybox root filesystem the images hold, made from Debian's `busybox-static`: `/bin/busybox`,
//! a symlink to it per applet, `/etc/passwd` and `/etc/group` with root and nobody, and the
//! directories a container expects.

use std::{
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use super::ImageError;

const BUSYBOX: &str = "/bin/busybox";
/// The subdirectory of the cache directory that holds the root filesystem.
const ROOTFS_DIR: &str = "busybox-rootfs";
/// Written last: a root filesystem without it is incomplete.
const COMPLETE: &str = ".complete";

/// The busybox root filesystem in `cache_dir/busybox-rootfs`, built there first if it is not
/// complete. Callers that write into a root filesystem must work on a copy of it.
///
/// # Errors
///
/// Fails when `/bin/busybox` is missing or the cache cannot be written.
pub fn busybox_rootfs(cache_dir: &Path) -> Result<PathBuf, ImageError> {
    let base = cache_dir.join(ROOTFS_DIR);
    if base.join(COMPLETE).exists() {
        return Ok(base);
    }
    // Several processes may race to build it: build aside, then rename into place.
    let staging = cache_dir.join(format!("{ROOTFS_DIR}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    build(&staging)?;
    write(&staging.join(COMPLETE), "")?;
    if fs::rename(&staging, &base).is_err() {
        // Someone else won the race; theirs is as good as ours.
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(base)
}

fn build(root: &Path) -> Result<(), ImageError> {
    let output = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(|source| ImageError::ListApplets {
            busybox: BUSYBOX,
            source,
        })?;
    if !output.status.success() {
        return Err(ImageError::AppletsFailed {
            busybox: BUSYBOX,
            status: output.status,
        });
    }
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "var",
        "home",
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(|source| ImageError::WriteRootfs { path, source })?;
    }
    let copy = root.join("bin/busybox");
    fs::copy(BUSYBOX, &copy).map_err(|source| ImageError::WriteRootfs { path: copy, source })?;
    for applet in String::from_utf8_lossy(&output.stdout).lines() {
        let link = root.join(applet.trim_start_matches('/'));
        if link.exists() || applet.ends_with("/busybox") {
            continue;
        }
        symlink("/bin/busybox", &link)
            .map_err(|source| ImageError::WriteRootfs { path: link, source })?;
    }
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    write(&root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let tmp = root.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .map_err(|source| ImageError::WriteRootfs { path: tmp, source })
}

fn write(path: &Path, text: &str) -> Result<(), ImageError> {
    fs::write(path, text).map_err(|source| ImageError::WriteRootfs {
        path: path.to_path_buf(),
        source,
    })
}
