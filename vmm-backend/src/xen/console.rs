//! The agent channel of a Xen guest: the domain's PV console, as xenconsoled's pty in dom0.
//!
//! A Xen guest without a device model has one byte stream to dom0 that needs nothing but
//! the hypervisor and xenconsoled: its console (`hvc0` in the guest). Secondary PV consoles
//! ("channels") are served by QEMU in dom0, which lightpod's Xen guests do not have. So the
//! console carries the kernel's boot messages first and the agent's ttrpc stream after:
//!
//! 1. the guest boots with `console=hvc0`; everything it prints goes to `console.log`;
//! 2. the agent takes the console over: it lowers the kernel's console log level to
//!    emergencies only, moves its own log off the console, puts the terminal in raw mode
//!    and writes [`AGENT_READY_MARKER`];
//! 3. the host, which has written nothing so far (a byte sent to a terminal still in
//!    cooked mode would be echoed back), hands the stream after the marker to ttrpc.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::OpenOptionsExt,
    },
    path::{Path, PathBuf},
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::{unix::AsyncFd, AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What the agent writes once it owns the console; the agent channel starts after it.
/// Kept in step with the agent (ARCHITECTURE.md, "The agent channel").
pub const AGENT_READY_MARKER: &[u8] = b"\n[lightpod-agent: channel ready]\n";

/// Why the channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The pty could not be opened or put in raw mode.
    #[error("open the console pty {0}")]
    Open(PathBuf, #[source] io::Error),
    /// Reading the console failed before the agent was ready.
    #[error("read the console {0}")]
    Read(PathBuf, #[source] io::Error),
    /// The console ended (the domain went away) before the marker.
    #[error("the console {0} closed before the agent was ready")]
    Closed(PathBuf),
    /// The marker did not come in time.
    #[error("the agent did not take over the console within {0:?}")]
    Timeout(Duration),
}

/// The dom0 end of a guest console: a pty slave in raw mode, non-blocking.
#[derive(Debug)]
pub struct ConsoleStream {
    fd: AsyncFd<OwnedFd>,
    /// Bytes read past the marker while looking for it, served first.
    pending: Vec<u8>,
}

impl ConsoleStream {
    /// Opens the pty at `path` in raw mode.
    ///
    /// # Errors
    ///
    /// It cannot be opened, is not a terminal, or cannot be registered with the runtime.
    pub fn open(path: &Path) -> Result<ConsoleStream, ConsoleError> {
        let fail = |e: io::Error| ConsoleError::Open(path.to_path_buf(), e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(fail)?;
        // xenconsoled makes its pty raw; set it here too, since one stray echo or CR/LF
        // translation corrupts a ttrpc frame.
        let mut termios = tcgetattr(&file).map_err(|e| fail(e.into()))?;
        cfmakeraw(&mut termios);
        tcsetattr(&file, SetArg::TCSANOW, &termios).map_err(|e| fail(e.into()))?;
        let fd = OwnedFd::from(file);
        // SAFETY: an OwnedFd holds one open descriptor, always returns the same number from
        // `as_raw_fd`, and closes it only when dropped, which the AsyncFd owning it controls.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| fail(e.into()))?;
        Ok(ConsoleStream {
            fd,
            pending: Vec::new(),
        })
    }

    /// Reads until [`AGENT_READY_MARKER`], appending everything before it to `boot_log`,
    /// for at most `limit`. Afterwards the stream carries only the agent channel.
    ///
    /// # Errors
    ///
    /// The console fails or ends, or the marker does not come within `limit`.
    pub async fn wait_for_agent(
        &mut self,
        path: &Path,
        boot_log: &Path,
        limit: Duration,
    ) -> Result<(), ConsoleError> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(boot_log)
            .ok();
        let mut scanner = MarkerScanner::default();
        let mut buf = vec![0u8; 4096];
        let scan = async {
            loop {
                let n = match self.read(&mut buf).await {
                    Ok(0) => return Err(ConsoleError::Closed(path.to_path_buf())),
                    // EIO: xenconsoled closed the master, the domain is gone.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                        return Err(ConsoleError::Closed(path.to_path_buf()))
                    }
                    Err(e) => return Err(ConsoleError::Read(path.to_path_buf(), e)),
                    Ok(n) => n,
                };
                let step = scanner.feed(&buf[..n]);
                if let Some(log) = log.as_mut() {
                    let _ = log.write_all(step.before);
                }
                if let Some(after) = step.after {
                    return Ok(after.to_vec());
                }
            }
        };
        match tokio::time::timeout(limit, scan).await {
            Ok(Ok(after)) => {
                self.pending = after;
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConsoleError::Timeout(limit)),
        }
    }
}

impl AsyncRead for ConsoleStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            buf.put_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Poll::Ready(Ok(()));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), unfilled).map_err(io::Error::from))
            {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ConsoleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsRawFd for ConsoleStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

/// Finds the marker in a stream that arrives in pieces.
#[derive(Debug, Default)]
struct MarkerScanner {
    /// How many bytes of the marker the previous pieces ended with.
    matched: usize,
}

/// What one piece held: bytes before the marker, and once it was found, the bytes after.
#[derive(Debug, PartialEq, Eq)]
struct ScanStep<'a> {
    before: &'a [u8],
    after: Option<&'a [u8]>,
}

impl MarkerScanner {
    fn feed<'a>(&mut self, piece: &'a [u8]) -> ScanStep<'a> {
        for (i, &byte) in piece.iter().enumerate() {
            // The marker's first byte recurs in it only as its last, so after a mismatch the
            // only place a new match can start is this byte.
            if byte == AGENT_READY_MARKER[self.matched] {
                self.matched += 1;
            } else {
                self.matched = usize::from(byte == AGENT_READY_MARKER[0]);
            }
            if self.matched == AGENT_READY_MARKER.len() {
                let start = (i + 1).saturating_sub(AGENT_READY_MARKER.len());
                return ScanStep {
                    before: &piece[..start],
                    after: Some(&piece[i + 1..]),
                };
            }
        }
        ScanStep {
            before: piece,
            after: None,
        }
    }
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
