//! Tap devices through `/dev/net/tun`.

use std::os::fd::{AsRawFd, OwnedFd};

use super::error::NetworkError;

/// Longest interface name the kernel takes (`IFNAMSIZ` minus the NUL).
const MAX_NAME: usize = 15;

/// Creates the tap device `name` in the calling thread's network namespace and returns its
/// open file. The device is not persistent: it goes when the last descriptor closes, so a
/// VMM that dies takes its tap along.
pub(super) fn create(name: &str) -> Result<OwnedFd, NetworkError> {
    let fail = |source| NetworkError::CreateTap {
        name: name.to_string(),
        source,
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(fail(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(fail)?;
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // No packet information header: QEMU's tap backend expects bare frames.
    request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call; the descriptor
    // is open and refers to /dev/net/tun.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    if rc < 0 {
        return Err(fail(std::io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(file))
}

/// The tap name for the pod interface with index `index`.
pub(super) fn name_for(index: u32) -> String {
    format!("lptap{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limit() {
        assert_eq!(name_for(3), "lptap3");
        assert!(name_for(u32::MAX).len() <= MAX_NAME);
    }

    #[test]
    fn an_overlong_name_is_refused_before_any_ioctl() {
        let err = create("a-name-far-too-long-for-linux").expect_err("too long");
        assert!(err.to_string().contains("a-name-far-too-long"), "{err}");
    }
}
