//! A terminal device as the channel (the Xen console, `/dev/hvc0`), in raw mode so ttrpc's
//! binary frames pass untouched.

use std::{
    fs, io,
    os::{fd::OwnedFd, unix::fs::OpenOptionsExt},
    path::Path,
};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

/// Opens the terminal non-blocking, without making it our controlling terminal, and puts it
/// in raw mode.
pub fn open_raw(path: &Path) -> io::Result<OwnedFd> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    let mut termios = tcgetattr(&file)?;
    cfmakeraw(&mut termios);
    tcsetattr(&file, SetArg::TCSANOW, &termios)?;
    Ok(file.into())
}
