//! Early boot of the guest when the agent is PID 1 (ARCHITECTURE.md, "guest boot contract").

pub mod modules;
pub mod mounts;
pub mod power;

use std::{fs::OpenOptions, os::unix::fs::OpenOptionsExt};

use crate::{boot::mounts::EarlyMountError, syscall::Syscall};

/// First stage, before logging: re-root the initramfs, mount `/proc` and `/dev`, and give
/// PID 1 a console on stdin/stdout/stderr if the kernel could not open one (an initramfs
/// without `/dev/console`).
///
/// # Errors
///
/// A mount failed.
pub fn first_stage(sys: &dyn Syscall) -> Result<(), EarlyMountError> {
    mounts::reroot(sys)?;
    mounts::mount_table(sys, &mounts::FIRST)?;
    attach_console();
    Ok(())
}

/// Second stage: the remaining mounts and `/dev` links.
///
/// # Errors
///
/// A mount or link failed.
pub fn second_stage(sys: &dyn Syscall) -> Result<(), EarlyMountError> {
    mounts::mount_table(sys, &mounts::REST)?;
    mounts::dev_links(sys)
}

/// Sets the smallest block of free memory (2^order pages) the kernel reports to the host
/// through the balloon's free page reporting. Linux 6.1 replaces the command line's value
/// with its default (4 MiB blocks here) when the balloon driver registers, which leaves most
/// of the memory freed after boot (the initramfs archive, early allocations) with the host.
pub fn page_reporting(order: u32) {
    let path = "/sys/module/page_reporting/parameters/page_reporting_order";
    match std::fs::write(path, order.to_string()) {
        Ok(()) => tracing::debug!(order, "free page reporting order set"),
        Err(err) => tracing::info!(order, %err, "free page reporting order not set"),
    }
}

/// Opens `/dev/console` onto whichever of fds 0-2 are closed. Later descriptors (pipes of
/// container processes) must never land on 0-2.
fn attach_console() {
    // SAFETY: F_GETFD only queries the descriptor flags.
    let closed = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0;
    if !(0..=2).any(closed) {
        return;
    }
    let console = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
        .or_else(|_| OpenOptions::new().read(true).write(true).open("/dev/null"));
    let Ok(console) = console else { return };
    for fd in 0..=2 {
        if closed(fd) {
            // SAFETY: dup2 onto a closed standard descriptor of this process; the source is
            // open for the duration of the call.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&console), fd) };
        }
    }
    // `console` itself may be one of 0-2 (the lowest free number); keep it open then.
    if std::os::fd::AsRawFd::as_raw_fd(&console) <= 2 {
        std::mem::forget(console);
    }
}
