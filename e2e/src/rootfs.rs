//! A busybox root filesystem made from Debian's `busybox-static`, built once per machine and
//! copied for each test that needs one (tests write into their copy).

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};

const BUSYBOX: &str = "/bin/busybox";

/// Builds the shared base root filesystem if needed and returns its path.
pub fn busybox_base() -> anyhow::Result<PathBuf> {
    let base = crate::cache_dir().join("busybox-rootfs");
    let done = base.join(".complete");
    if done.exists() {
        return Ok(base);
    }
    // Several test binaries may race to build it: build aside, then rename into place.
    let staging = crate::cache_dir().join(format!("busybox-rootfs.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    build(&staging).context("build the busybox root filesystem")?;
    fs::write(staging.join(".complete"), "")?;
    if fs::rename(&staging, &base).is_err() {
        // Someone else won the race; theirs is as good as ours.
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(base)
}

/// A private copy of the busybox root filesystem under `parent`.
pub fn busybox_copy(parent: &Path) -> anyhow::Result<PathBuf> {
    let base = busybox_base()?;
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

fn build(root: &Path) -> anyhow::Result<()> {
    let output = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .with_context(|| format!("{BUSYBOX} (apt-get install busybox-static)"))?;
    if !output.status.success() {
        bail!("{BUSYBOX} --list-full failed");
    }
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "var",
        "home",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    for applet in String::from_utf8_lossy(&output.stdout).lines() {
        let link = root.join(applet.trim_start_matches('/'));
        if link.exists() || applet.ends_with("/busybox") {
            continue;
        }
        symlink("/bin/busybox", &link).with_context(|| format!("link {}", link.display()))?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    Ok(())
}
