//! Guest kernels: finding the host's newest one, and reading the release of a bzImage.

use std::{
    cmp::Ordering,
    path::{Path, PathBuf},
};

use crate::guest::GuestImageError;

/// Offset of the setup header's `HdrS` magic in a bzImage (x86 boot protocol, 2.00+).
const HDRS_OFFSET: usize = 0x202;
/// Offset of `kernel_version`: a pointer to the version string, minus 0x200.
const KERNEL_VERSION_OFFSET: usize = 0x20E;

/// A kernel installed on the host, with its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKernel {
    /// The image (`/boot/vmlinuz-<release>`).
    pub kernel: PathBuf,
    /// Its release (`uname -r` once booted).
    pub release: String,
    /// `/lib/modules/<release>`.
    pub modules_dir: PathBuf,
}

/// The newest `/boot/vmlinuz-*` whose `/lib/modules/<release>` exists.
///
/// # Errors
///
/// [`GuestImageError::NoKernel`] when there is none.
pub fn find_host_kernel() -> Result<HostKernel, GuestImageError> {
    find_kernel_in(Path::new("/boot"), Path::new("/lib/modules"))
}

/// [`find_host_kernel`] over other directories.
///
/// # Errors
///
/// [`GuestImageError::NoKernel`] when no kernel in `boot` has modules in `modules_root`.
pub fn find_kernel_in(boot: &Path, modules_root: &Path) -> Result<HostKernel, GuestImageError> {
    let no_kernel = || GuestImageError::NoKernel {
        boot: boot.to_path_buf(),
    };
    let entries = std::fs::read_dir(boot).map_err(|_| no_kernel())?;
    let mut found: Vec<HostKernel> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let release = name.strip_prefix("vmlinuz-")?.to_string();
            let modules_dir = modules_root.join(&release);
            modules_dir.is_dir().then(|| HostKernel {
                kernel: entry.path(),
                release,
                modules_dir,
            })
        })
        .collect();
    found.sort_by(|a, b| version_cmp(&a.release, &b.release));
    found.pop().ok_or_else(no_kernel)
}

/// The release of a kernel image: from the bzImage setup header when it has one, else from
/// a `vmlinuz-<release>` / `vmlinux-<release>` file name.
///
/// # Errors
///
/// Fails when the file cannot be read or carries no release.
pub fn kernel_release(kernel: &Path) -> Result<String, GuestImageError> {
    let bytes = read_head(kernel)?;
    if let Some(release) = bzimage_release(&bytes) {
        return Ok(release);
    }
    let name = kernel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ["vmlinuz-", "vmlinux-"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .ok_or_else(|| GuestImageError::KernelRelease {
            path: kernel.to_path_buf(),
        })
}

/// The first 64 KiB of a file: enough for the setup code and its version string.
fn read_head(path: &Path) -> Result<Vec<u8>, GuestImageError> {
    use std::io::Read;
    let missing = |source| GuestImageError::MissingInput {
        what: "kernel",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(missing)?;
    let mut bytes = Vec::new();
    file.take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(missing)?;
    Ok(bytes)
}

/// The release in a bzImage's setup header: `kernel_version` at 0x20E points (plus 0x200)
/// at a NUL-terminated string like `6.1.0-57-cloud-amd64 (debian-kernel@…) #1 SMP …`.
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(HDRS_OFFSET..HDRS_OFFSET + 4)? != b"HdrS" {
        return None;
    }
    let ptr = image.get(KERNEL_VERSION_OFFSET..KERNEL_VERSION_OFFSET + 2)?;
    let offset = usize::from(u16::from_le_bytes([ptr[0], ptr[1]])) + 0x200;
    let rest = image.get(offset..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// Compares kernel releases as versions: digit runs by value, other runs as text.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_run(a, true);
                let (nb, rb) = split_run(b, true);
                let (na, nb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
            _ => {
                let (ta, ra) = split_run(a, false);
                let (tb, rb) = split_run(b, false);
                let ord = ta.cmp(tb);
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (ra, rb);
            }
        }
    }
}

/// Splits off the leading run of digits (`digits`) or non-digits.
fn split_run(s: &[u8], digits: bool) -> (&str, &[u8]) {
    let n = s
        .iter()
        .position(|c| c.is_ascii_digit() != digits)
        .unwrap_or(s.len())
        .max(1);
    (std::str::from_utf8(&s[..n]).unwrap_or_default(), &s[n..])
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
