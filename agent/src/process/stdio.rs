//! A process's output, buffered for the host with back-pressure, and its stdin.
//!
//! Each output stream has a bounded buffer. A pump task moves bytes from the pipe (or pty
//! master) into it and stops reading while it is full, so a slow host slows the process
//! down through the pipe instead of losing output or growing the agent's memory.
//! `ReadOutput` takes from the buffer and long-polls while it is empty.
//!
//! End of file: when the pipe reports it, after every byte in it was read. A descendant
//! that inherited the pipe can keep it open after the process exits; once the process has
//! exited the pump waits at most [`EOF_GRACE`] of silence on the pipe before it reports end
//! of file anyway.

use std::{
    io,
    os::fd::OwnedFd,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::{
    io::{unix::AsyncFd, Interest},
    sync::{watch, Notify},
};

use crate::fdio;

/// Capacity of each output buffer.
pub const OUTPUT_CAPACITY: usize = 256 * 1024;

/// How long the pipe may stay silent after the process exited before end of file is
/// reported although a descendant still holds it open.
pub const EOF_GRACE: Duration = Duration::from_millis(200);

/// One buffered output stream.
#[derive(Debug)]
pub struct OutputBuffer {
    state: Mutex<OutputState>,
    /// Woken when data arrives or the stream ends.
    readable: Notify,
    /// Woken when the host took data.
    room: Notify,
}

/// Buffered bytes are `bytes[start..]`; the consumed front is dropped in bulk (one memmove)
/// once it is large, so both ends are plain memory copies.
#[derive(Debug, Default)]
struct OutputState {
    bytes: Vec<u8>,
    start: usize,
    eof: bool,
    capacity: usize,
}

impl OutputState {
    fn len(&self) -> usize {
        self.bytes.len() - self.start
    }
}

impl OutputBuffer {
    /// An empty buffer of `capacity` bytes.
    pub fn new(capacity: usize) -> OutputBuffer {
        OutputBuffer {
            state: Mutex::new(OutputState {
                capacity,
                ..Default::default()
            }),
            readable: Notify::new(),
            room: Notify::new(),
        }
    }

    /// A stream that has already ended (stderr of a terminal process).
    pub fn ended() -> OutputBuffer {
        let buffer = OutputBuffer::new(0);
        buffer.finish();
        buffer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Free space in bytes.
    pub fn room(&self) -> usize {
        let state = self.lock();
        state.capacity.saturating_sub(state.len())
    }

    /// Appends bytes (the pump never offers more than [`OutputBuffer::room`]).
    pub fn push(&self, data: &[u8]) {
        let mut state = self.lock();
        if state.start > 0 && state.start >= state.len() {
            let start = state.start;
            state.bytes.drain(..start);
            state.start = 0;
        }
        state.bytes.extend_from_slice(data);
        drop(state);
        self.readable.notify_waiters();
    }

    /// Marks the end of the stream.
    pub fn finish(&self) {
        self.lock().eof = true;
        self.readable.notify_waiters();
    }

    /// Whether the pipe reached end of file (data may still be buffered).
    pub fn is_finished(&self) -> bool {
        self.lock().eof
    }

    /// Waits until the buffer has space.
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.room() > 0 {
                return;
            }
            notified.await;
        }
    }

    /// Waits until the pipe reached end of file.
    pub async fn wait_finished(&self) {
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_finished() {
                return;
            }
            notified.await;
        }
    }

    /// Takes up to `max` bytes, waiting while the buffer is empty and the stream goes on.
    /// Returns the bytes and whether the stream has ended with nothing left after them.
    pub async fn read(&self, max: usize) -> (Vec<u8>, bool) {
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.len() > 0 || state.eof {
                    let n = max.min(state.len());
                    let data = state.bytes[state.start..state.start + n].to_vec();
                    state.start += n;
                    if state.len() == 0 {
                        // Give the memory back: most processes write little after a burst.
                        state.bytes = Vec::new();
                        state.start = 0;
                    }
                    let eof = state.eof && state.len() == 0;
                    drop(state);
                    if n > 0 {
                        self.room.notify_waiters();
                    }
                    return (data, eof);
                }
            }
            notified.await;
        }
    }
}

/// Moves bytes from `fd` into `out` until end of file (see the module documentation).
/// `exited` turns true when the process has exited.
pub async fn pump(fd: OwnedFd, out: &OutputBuffer, mut exited: watch::Receiver<bool>) {
    if let Err(err) = pump_until_eof(fd, out, &mut exited).await {
        tracing::warn!(%err, "reading process output failed; reporting end of file");
    }
    out.finish();
}

async fn pump_until_eof(
    fd: OwnedFd,
    out: &OutputBuffer,
    exited: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    fdio::set_nonblocking(&fd)?;
    let fd = fdio::register(fd, Interest::READABLE)?;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        out.wait_for_room().await;
        let want = out.room().min(chunk.len());

        let ready = if *exited.borrow() {
            match tokio::time::timeout(EOF_GRACE, fd.readable()).await {
                Ok(ready) => ready?,
                Err(_) => return Ok(()),
            }
        } else {
            tokio::select! {
                ready = fd.readable() => ready?,
                _ = exited.changed() => continue,
            }
        };
        let mut guard = ready;
        match guard.try_io(|inner| fdio::read(inner.get_ref(), &mut chunk[..want])) {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => out.push(&chunk[..n]),
            // A pty master reads EIO once every slave descriptor is closed.
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}

/// The agent's end of a process's stdin (a pipe, or the pty master).
#[derive(Debug)]
pub struct StdinPipe {
    fd: AsyncFd<OwnedFd>,
}

impl StdinPipe {
    /// Wraps the writing end.
    ///
    /// # Errors
    ///
    /// The descriptor cannot be made non-blocking or registered with the runtime.
    pub fn new(fd: OwnedFd) -> io::Result<StdinPipe> {
        fdio::set_nonblocking(&fd)?;
        Ok(StdinPipe {
            fd: fdio::register(fd, Interest::WRITABLE)?,
        })
    }

    /// Writes all of `data`, waiting while the pipe is full. Returns the bytes written, fewer
    /// than given only when the process closed its end (`EPIPE`).
    ///
    /// # Errors
    ///
    /// Writing failed for another reason.
    pub async fn write_all(&self, data: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < data.len() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|inner| fdio::write(inner.get_ref(), &data[written..])) {
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(written),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
#[path = "stdio_tests.rs"]
mod tests;
