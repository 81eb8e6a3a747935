//! Removal of a sandbox's host state, safe against mounts still in place.
//!
//! A state directory holds bind mounts of container root filesystems and host volumes.
//! Deleting it recursively while one is still mounted would delete the container's or the
//! user's files, so every removal here unmounts first and refuses if anything is left.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `dir`, deepest first, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found = mount_points_under(&text, dir);
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

fn mount_points_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or below `dir`, deepest first. Failures are logged.
pub fn unmount_under(dir: &Path) {
    for point in mounts_under(dir) {
        if let Err(e) = umount2(&point, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %point.display(), error = %e, "unmount leftover mount");
        }
    }
}

/// Unmounts everything below `dir`, then removes it, unless a mount could not be removed:
/// then the directory is kept and the remaining mount points are returned as the error.
pub fn remove_state_dir(dir: &Path) -> Result<(), Vec<PathBuf>> {
    unmount_under(dir);
    let left = mounts_under(dir);
    if !left.is_empty() {
        tracing::error!(path = %dir.display(), mounts = ?left,
            "state directory still has mounts; not removing it");
        return Err(left);
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "remove state directory");
            Ok(())
        }
    }
}

/// Why the state of an abandoned sandbox could not be cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum AbandonedError {
    /// The VM's processes or directory could not be cleaned up.
    #[error("clean up the VM")]
    Vm(#[from] lightpod_vmm::qemu::cleanup::CleanupError),
    /// The VM's Xen domain could not be destroyed.
    #[error("destroy the Xen domain")]
    XenDomain(#[from] lightpod_vmm::xen::XenCleanupError),
    /// Mounts stayed under the sandbox directory.
    #[error("mounts are left under the sandbox directory: {0:?}")]
    MountsLeft(Vec<PathBuf>),
}

/// Cleans up after the owner of sandbox `id` (a shim, a CLI) died without stopping it: kills
/// what is left of its VM, unmounts what it shared and removes its state directory. Safe on
/// a sandbox that has no state left. Returns the pids it killed.
///
/// # Errors
///
/// A process of the VM could not be killed, or a mount could not be removed.
pub fn abandoned_sandbox(config: &crate::Config, id: &str) -> Result<Vec<i32>, AbandonedError> {
    let dir = crate::sandbox_dir(config, id);
    let vm_dir = dir.join("vm");
    // A Xen VM's directory names its domain, whichever backend the configuration now names;
    // the domain goes first, then its monitor exits by itself.
    if let Some(xl) = config.xen.find_xl() {
        lightpod_vmm::xen::destroy_leftover_domain(&vm_dir, &xl)?;
    }
    // Both backends keep pid files of their processes in the VM directory.
    let killed = lightpod_vmm::qemu::cleanup::cleanup_state_dir(&vm_dir)?.killed;
    remove_state_dir(&dir).map_err(AbandonedError::MountsLeft)?;
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
40 22 0:40 / /run/lightpod/sandboxes/p/shared rw - tmpfs tmpfs rw
41 40 0:41 / /run/lightpod/sandboxes/p/shared/c/rootfs rw - overlay overlay rw
42 40 0:42 / /run/lightpod/sandboxes/p/shared/c/mounts/0 rw - ext4 /dev/vda rw
43 22 0:43 / /run/lightpod/sandboxes/p2/shared rw - tmpfs tmpfs rw
44 40 0:44 / /run/lightpod/sandboxes/p/shared/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn finds_only_mounts_below_the_directory() {
        let found = mount_points_under(MOUNTINFO, Path::new("/run/lightpod/sandboxes/p"));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            !found
                .iter()
                .any(|p| p.starts_with("/run/lightpod/sandboxes/p2")),
            "{found:?}"
        );
        assert!(found.contains(&PathBuf::from(
            "/run/lightpod/sandboxes/p/shared/with space"
        )));
    }

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }
}
