//! A terminal device as the channel (the Xen console, `/dev/hvc0`), in raw mode so ttrpc's
//! binary frames pass untouched.
//!
//! A guest console is also where the kernel and the agent log, and it may still hold the
//! boot log when the agent opens it. So the agent first takes the console over
//! ([`take_over`]), then announces the channel with [`READY_MARKER`]; the host discards
//! everything before the marker as boot log and sends nothing until it has seen it, since a
//! byte arriving while the terminal is still in cooked mode would be echoed back.

use std::{
    fs, io,
    io::Write,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::OpenOptionsExt,
    },
    path::Path,
};

use nix::sys::termios::{cfmakeraw, tcflush, tcgetattr, tcsetattr, FlushArg, SetArg};

/// Written once the console carries the channel. Kept in step with the host's Xen backend
/// (ARCHITECTURE.md, "The agent channel").
pub const READY_MARKER: &[u8] = b"\n[lightpod-agent: channel ready]\n";

/// `SYSLOG_ACTION_CONSOLE_LEVEL` of syslog(2).
const SYSLOG_ACTION_CONSOLE_LEVEL: libc::c_int = 8;
/// Console log level that lets only `KERN_EMERG` messages (a panic) through.
const EMERGENCIES_ONLY: libc::c_int = 1;

/// Keeps everything but the channel off the console: kernel messages below emergency level
/// stop going to any console, and the agent's stdio (its log) moves to `/dev/kmsg`, where
/// `dmesg` in the guest still shows it.
pub fn take_over() {
    // SAFETY: CONSOLE_LEVEL reads no buffer; the level travels in `len`.
    let rc = unsafe {
        libc::klogctl(
            SYSLOG_ACTION_CONSOLE_LEVEL,
            std::ptr::null_mut(),
            EMERGENCIES_ONLY,
        )
    };
    if rc != 0 {
        tracing::warn!(err = %io::Error::last_os_error(), "cannot lower the console log level");
    }
    let null = fs::OpenOptions::new().read(true).open("/dev/null");
    let kmsg = fs::OpenOptions::new().write(true).open("/dev/kmsg");
    let log = kmsg.or_else(|_| fs::OpenOptions::new().write(true).open("/dev/null"));
    for (fd, file) in [(0, null.as_ref()), (1, log.as_ref()), (2, log.as_ref())] {
        if let Ok(file) = file {
            // SAFETY: dup2 onto a standard descriptor of this process; the source stays open
            // for the duration of the call.
            unsafe { libc::dup2(file.as_raw_fd(), fd) };
        }
    }
    tracing::info!("console taken over for the agent channel; agent log now in /dev/kmsg");
}

/// Opens the terminal non-blocking, without making it our controlling terminal, puts it in
/// raw mode, drops what arrived before, and writes [`READY_MARKER`].
pub fn open_raw(path: &Path) -> io::Result<OwnedFd> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    let mut termios = tcgetattr(&file)?;
    cfmakeraw(&mut termios);
    tcsetattr(&file, SetArg::TCSANOW, &termios)?;
    tcflush(&file, FlushArg::TCIFLUSH)?;
    write_all_nonblocking(&mut file, READY_MARKER)?;
    Ok(file.into())
}

/// Writes all of `data` to a non-blocking terminal, waiting while its output is full.
fn write_all_nonblocking(file: &mut fs::File, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match file.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use nix::pty::openpty;

    use super::*;

    #[test]
    fn the_marker_follows_raw_mode_and_earlier_input_is_dropped() {
        let pair = openpty(None, None).expect("openpty");
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd()))
            .expect("pty path");
        let mut master = fs::File::from(pair.master);
        master.write_all(b"early bytes\n").expect("write");

        let slave = open_raw(&path).expect("open");
        // Whatever the cooked terminal echoed of the early bytes comes first; the marker
        // ends what the host reads.
        let mut seen = Vec::new();
        while !seen.ends_with(READY_MARKER) {
            let mut buf = [0u8; 64];
            let n = master.read(&mut buf).expect("read");
            assert!(n > 0, "the pty closed before the marker");
            seen.extend_from_slice(&buf[..n]);
        }
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&slave, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "input from before the raw mode is flushed");
    }
}
