//! Small descriptor helpers shared by the channel and process stdio.

use std::{io, os::fd::OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::{unix::AsyncFd, Interest};

/// Registers a descriptor with the tokio reactor for `interest`.
///
/// # Errors
///
/// The reactor refused it (for instance a regular file, which epoll cannot watch).
pub fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd holds one open descriptor, always returns the same number from
    // `as_raw_fd`, and closes it only when dropped, which the AsyncFd owning it controls.
    unsafe { Ok(AsyncFd::register_with_interest(fd, interest)?) }
}

/// Sets `O_NONBLOCK` on an open file description.
///
/// # Errors
///
/// `fcntl` failed.
pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// One `read(2)`.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::unistd::read(fd, buf)?)
}

/// One `write(2)`.
pub fn write(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, buf)?)
}
