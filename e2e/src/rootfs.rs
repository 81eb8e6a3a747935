//! Private copies of the busybox root filesystem (tests write into their copy); the shared
//! base is built once per machine into [`crate::cache_dir`] by
//! [`lightpod_harness::image::busybox_rootfs`].

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};
use lightpod_harness::image::busybox_rootfs;

/// A private copy of the busybox root filesystem under `parent`.
pub fn busybox_copy(parent: &Path) -> anyhow::Result<PathBuf> {
    let base = busybox_rootfs(&crate::cache_dir()).context("build the busybox root filesystem")?;
    let dest = parent.join("rootfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&base)
        .arg(&dest)
        .status()?;
    if !status.success() {
        bail!("cp -a {} {} failed", base.display(), dest.display());
    }
    Ok(dest)
}
