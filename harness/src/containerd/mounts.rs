//! Mounts an instance leaves under its directory: container root filesystems, `/dev/shm` of
//! pods, pod network namespaces.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Rounds of unmounting: a lazy unmount may reveal a mount below it.
const ROUNDS: usize = 3;

/// Mount points strictly below `dir`, from this process's mount table.
pub(super) fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mount_points(&table, dir)
}

/// Unmounts everything below `dir`, deepest first, lazily when a plain unmount fails.
pub(super) fn unmount_all_under(dir: &Path) {
    for _ in 0..ROUNDS {
        let mut points = mount_points_under(dir);
        if points.is_empty() {
            return;
        }
        points.sort();
        for point in points.iter().rev() {
            if umount2(point, MntFlags::empty()).is_err() {
                if let Err(errno) = umount2(point, MntFlags::MNT_DETACH) {
                    tracing::debug!(mount = %point.display(), %errno, "unmount failed");
                }
            }
        }
    }
}

/// The mount points (field 5 of mountinfo) strictly below `dir`.
fn parse_mount_points(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point != dir && point.starts_with(dir))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as three-digit octal escapes (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mounts_strictly_below_the_directory_count() {
        let table = "\
22 1 0:21 / /tmp/lp rw - tmpfs tmpfs rw
23 22 0:22 / /tmp/lp/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm rw - tmpfs shm rw
24 22 0:23 / /tmp/lp/root/my\\040dir rw - overlay overlay rw
25 1 0:24 / /tmp/lp2/root rw - overlay overlay rw
26 1 0:25 / /tmp/lpx rw - tmpfs tmpfs rw
";
        let points = parse_mount_points(table, Path::new("/tmp/lp"));
        assert_eq!(
            points,
            [
                PathBuf::from("/tmp/lp/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm"),
                PathBuf::from("/tmp/lp/root/my dir"),
            ],
            "the directory itself, siblings with a common prefix and other trees stay out"
        );
    }

    #[test]
    fn octal_escapes_are_decoded() {
        let cases = [
            ("/a\\040b", "/a b"),
            ("/a\\134b", "/a\\b"),
            ("/plain", "/plain"),
            ("/short\\04", "/short\\04"),
        ];
        for (field, want) in cases {
            assert_eq!(unescape(field), want, "{field}");
        }
    }
}
