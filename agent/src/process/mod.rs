//! Container processes as the agent tracks them: pid, exit, buffered output, stdin, terminal.

pub mod exec;
pub mod exit;
pub mod pty;
pub mod reaper;
pub mod spawn;
pub mod stdio;

use std::{
    os::fd::OwnedFd,
    sync::{Arc, Mutex, PoisonError},
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::sync::watch;

use crate::{
    error::{AgentError, AgentResult},
    process::{
        exit::ExitInfo,
        spawn::ProcessIo,
        stdio::{OutputBuffer, StdinPipe, OUTPUT_CAPACITY},
    },
    spec::WindowSize,
};

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output, or the terminal.
    Stdout,
    /// Standard error (always at end of file with a terminal).
    Stderr,
}

/// The state of a process's stdin.
#[derive(Debug)]
enum Stdin {
    /// The process was started without stdin: it reads /dev/null.
    NotRequested,
    /// Open for writing.
    Open(Arc<StdinPipe>),
    /// Closed by `CloseStdin`.
    Closed,
}

/// A running or exited container process.
#[derive(Debug)]
pub struct Process {
    /// Guest pid.
    pub pid: Pid,
    exit: watch::Receiver<Option<ExitInfo>>,
    stdout: Arc<OutputBuffer>,
    stderr: Arc<OutputBuffer>,
    stdin: Mutex<Stdin>,
    pty: Option<OwnedFd>,
}

impl Process {
    /// Takes over a started process: starts pumping its output. `exit` must resolve once the
    /// process has been reaped (the caller adds what it knows, such as OOM kills).
    ///
    /// # Errors
    ///
    /// Its stdin cannot be registered with the runtime.
    pub fn track(
        pid: Pid,
        io: ProcessIo,
        exit: watch::Receiver<Option<ExitInfo>>,
    ) -> AgentResult<Process> {
        let io_err = |context: &str| {
            let context = context.to_string();
            move |source| AgentError::Io { context, source }
        };
        let (exited_tx, exited_rx) = watch::channel(false);
        let mut watch_exit = exit.clone();
        tokio::spawn(async move {
            let _ = watch_exit.wait_for(Option::is_some).await;
            exited_tx.send_replace(true);
        });

        let stdout = Arc::new(OutputBuffer::new(OUTPUT_CAPACITY));
        start_pump(io.stdout, &stdout, exited_rx.clone());
        let stderr = match io.stderr {
            Some(fd) => {
                let buffer = Arc::new(OutputBuffer::new(OUTPUT_CAPACITY));
                start_pump(fd, &buffer, exited_rx);
                buffer
            }
            None => Arc::new(OutputBuffer::ended()),
        };
        let stdin = match io.stdin {
            Some(fd) => Stdin::Open(Arc::new(
                StdinPipe::new(fd).map_err(io_err("register stdin"))?,
            )),
            None => Stdin::NotRequested,
        };
        Ok(Process {
            pid,
            exit,
            stdout,
            stderr,
            stdin: Mutex::new(stdin),
            pty: io.pty,
        })
    }

    /// The exit, once the process has been reaped.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        *self.exit.borrow()
    }

    /// Whether it still runs (not yet reaped).
    pub fn is_running(&self) -> bool {
        self.exit_info().is_none()
    }

    /// Waits for the exit, then for both output pipes to reach end of file, so everything the
    /// process wrote is in the agent's buffers or already read.
    pub async fn wait(&self) -> ExitInfo {
        let mut exit = self.exit.clone();
        let info = loop {
            if let Some(info) = *exit.borrow_and_update() {
                break info;
            }
            if exit.changed().await.is_err() {
                // The exit watcher is gone without an answer; the process cannot be waited.
                std::future::pending::<()>().await;
            }
        };
        self.stdout.wait_finished().await;
        self.stderr.wait_finished().await;
        info
    }

    /// Long-polls for output: at least one byte, or end of file.
    pub async fn read_output(&self, stream: Stream, max: usize) -> (Vec<u8>, bool) {
        let buffer = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        buffer.read(max).await
    }

    /// Writes to stdin; returns the bytes taken, 0 once the process closed its stdin.
    ///
    /// # Errors
    ///
    /// The process has no stdin, it was closed by the host, or writing failed.
    pub async fn write_stdin(&self, data: &[u8]) -> AgentResult<usize> {
        let pipe = match &*self.stdin.lock().unwrap_or_else(PoisonError::into_inner) {
            Stdin::Open(pipe) => Arc::clone(pipe),
            Stdin::NotRequested => {
                return Err(AgentError::WrongState(
                    "the process was started without stdin".into(),
                ))
            }
            Stdin::Closed => return Err(AgentError::WrongState("stdin is already closed".into())),
        };
        pipe.write_all(data).await.map_err(|source| AgentError::Io {
            context: "write stdin".into(),
            source,
        })
    }

    /// Closes stdin so the process reads end of file. With a terminal the master stays open
    /// (closing it would hang the terminal up); the terminal's EOF character (Ctrl-D) is
    /// sent instead, which ends input for a program reading lines.
    ///
    /// # Errors
    ///
    /// Writing the EOF character failed.
    pub async fn close_stdin(&self) -> AgentResult<()> {
        let previous = std::mem::replace(
            &mut *self.stdin.lock().unwrap_or_else(PoisonError::into_inner),
            Stdin::Closed,
        );
        if let (Stdin::Open(pipe), Some(_)) = (&previous, &self.pty) {
            pipe.write_all(&[0x04])
                .await
                .map_err(|source| AgentError::Io {
                    context: "send EOF to terminal".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Resizes the terminal.
    ///
    /// # Errors
    ///
    /// The process has no terminal, or the ioctl failed.
    pub fn resize(&self, size: WindowSize) -> AgentResult<()> {
        let pty = self
            .pty
            .as_ref()
            .ok_or_else(|| AgentError::WrongState("the process has no terminal".into()))?;
        pty::set_window_size(pty, size).map_err(|source| AgentError::Io {
            context: "resize terminal".into(),
            source,
        })
    }

    /// Sends a signal to the process.
    ///
    /// # Errors
    ///
    /// The process has exited already, or `kill` failed.
    pub fn signal(&self, signal: Signal) -> AgentResult<()> {
        if !self.is_running() {
            return Err(AgentError::WrongState(
                "the process has already exited".into(),
            ));
        }
        nix::sys::signal::kill(self.pid, signal).map_err(|e| AgentError::Io {
            context: format!("send {signal} to pid {}", self.pid),
            source: e.into(),
        })
    }
}

fn start_pump(fd: OwnedFd, buffer: &Arc<OutputBuffer>, exited: watch::Receiver<bool>) {
    let buffer = Arc::clone(buffer);
    tokio::spawn(async move { stdio::pump(fd, &buffer, exited).await });
}
