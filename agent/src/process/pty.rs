//! Pseudo-terminals of container processes.
//!
//! The container init allocates the terminal from the container's own devpts instance (so
//! `tty` inside names a path the container can see), makes its slave the controlling
//! terminal and stdio, and passes the master to the agent, which reads output from it, writes
//! stdin to it and resizes it.

use std::{
    fs::OpenOptions,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::{fs::OpenOptionsExt, net::UnixStream},
    },
};

use nix::{fcntl::OFlag, pty};

use crate::{
    init::{wire, SetupFailure},
    spec::WindowSize,
};

/// Sets a terminal's window size (`TIOCSWINSZ`); the kernel signals the foreground process
/// group with `SIGWINCH`.
pub fn set_window_size(fd: impl AsFd, size: WindowSize) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call;
    // the descriptor is borrowed and stays open for its duration.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Init side: allocates a terminal in the current root, sends its master to the agent and makes
/// the slave the process's stdin, stdout, stderr and controlling terminal. The caller has
/// already called `setsid`.
pub fn attach_new_terminal(
    control: &mut UnixStream,
    size: Option<WindowSize>,
) -> Result<(), SetupFailure> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master =
        pty::posix_openpt(flags).map_err(|e| SetupFailure::io("open /dev/ptmx")(e.into()))?;
    pty::grantpt(&master).map_err(|e| SetupFailure::io("grantpt")(e.into()))?;
    pty::unlockpt(&master).map_err(|e| SetupFailure::io("unlockpt")(e.into()))?;
    let slave_path = pty::ptsname_r(&master).map_err(|e| SetupFailure::io("ptsname")(e.into()))?;
    let slave: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)
        .map_err(SetupFailure::io(format!("open {slave_path}")))?
        .into();
    if let Some(size) = size {
        set_window_size(&master, size).map_err(SetupFailure::io("set terminal size"))?;
    }

    let master = OwnedFd::from(master);
    wire::send_pty_master(control, &master).map_err(SetupFailure::io("send terminal to agent"))?;
    drop(master);

    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of this single-threaded process; the
        // source descriptor is open and owned by `slave`.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(SetupFailure::io("attach terminal to stdio")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    drop(slave);
    // SAFETY: TIOCSCTTY takes an integer argument; fd 0 is the terminal slave just installed.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(SetupFailure::io("set controlling terminal")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
