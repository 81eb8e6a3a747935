//! A task process's stdio wired to the host paths its front end gave: containerd's FIFOs
//! (shim v2), or plain files.
//!
//! Output FIFOs are opened read-write, as containerd's own shims do: opening never waits
//! for a reader, and a reader that goes away and comes back (containerd restarting) does
//! not turn writes into `EPIPE`. The stdin FIFO is opened for reading with a blocking open,
//! which returns once the writer (ctr, containerd) has opened its end: a non-blocking
//! open could read end-of-file before the writer arrived and close the process's stdin.

use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{io::AsyncWrite, net::unix::pipe, task::JoinHandle};

use crate::{
    agent::AgentClient,
    error::chain,
    stdio::{copy_output, copy_stdin, OutputStream},
};

use super::error::TaskError;

/// How long `CloseIO` waits for the stdin copy to reach the writer's end of file by itself
/// before it closes the process's stdin regardless.
const STDIN_DRAIN: Duration = Duration::from_secs(2);

/// Host paths of a process's stdio; `None` where the process has no such stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    /// FIFO the process's stdin is read from.
    pub stdin: Option<PathBuf>,
    /// FIFO or file (`file://` URI) its stdout goes to.
    pub stdout: Option<PathBuf>,
    /// FIFO or file its stderr goes to (unused with a terminal: the terminal is stdout).
    pub stderr: Option<PathBuf>,
    /// The process has a terminal.
    pub terminal: bool,
}

impl StdioPaths {
    /// Paths as front ends receive them: empty strings mean "no stream", `file://` URIs
    /// name regular files.
    pub fn from_strings(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> StdioPaths {
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        StdioPaths {
            stdin: path(stdin),
            stdout: path(stdout),
            stderr: path(stderr),
            terminal,
        }
    }
}

type OutputSink = Box<dyn AsyncWrite + Send + Unpin>;

/// The output sinks of a process, opened before it starts so a bad path fails the request.
pub(super) struct OpenedOutput {
    stdout: Option<OutputSink>,
    stderr: Option<OutputSink>,
}

/// No output sinks: the process's output is read and dropped.
pub(super) fn no_output() -> OpenedOutput {
    OpenedOutput {
        stdout: None,
        stderr: None,
    }
}

/// Opens the output paths of `paths`.
pub(super) fn open_output(paths: &StdioPaths) -> Result<OpenedOutput, TaskError> {
    let stdout = paths
        .stdout
        .as_deref()
        .map(|p| open_sink("stdout", p))
        .transpose()?;
    let stderr = match &paths.stderr {
        Some(p) if !paths.terminal => Some(open_sink("stderr", p)?),
        _ => None,
    };
    Ok(OpenedOutput { stdout, stderr })
}

fn open_sink(stream: &'static str, path: &Path) -> Result<OutputSink, TaskError> {
    let err = |source| TaskError::OpenFifo {
        stream,
        path: path.display().to_string(),
        source,
    };
    let text = path.to_string_lossy();
    if let Some(file) = text.strip_prefix("file://") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(err)?;
        return Ok(Box::new(tokio::fs::File::from_std(file)));
    }
    if text.contains("://") {
        return Err(TaskError::InvalidRequest(format!(
            "{stream} {text}: only FIFOs and file:// URIs are supported"
        )));
    }
    let sender = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .map_err(err)?;
    Ok(Box::new(sender))
}

/// A second handle on the process's error stream (its terminal when it has one), opened
/// with its other stdio, through which lightpod tells whoever reads the output (`ctr`, the
/// CRI log, `kubectl logs`) why the process ended when it could not say so itself. It keeps
/// the stream open until the process's exit is recorded: containerd stops reading at end of
/// file, so a stream opened only once the copies had ended would find no reader.
pub(super) fn open_notice(paths: &StdioPaths) -> Option<std::fs::File> {
    let target = if paths.terminal {
        paths.stdout.as_ref()
    } else {
        paths.stderr.as_ref()
    };
    let path = target?;
    let text = path.to_string_lossy();
    let opened = match text.strip_prefix("file://") {
        Some(file) => std::fs::OpenOptions::new().append(true).open(file),
        // Read-write, as the output copies open it: never waits for, or needs, a reader.
        None => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path),
    };
    match opened {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::debug!(path = %text, error = %e, "open the notice stream");
            None
        }
    }
}

/// Writes `line` to a notice stream from [`open_notice`]; best effort, never blocks.
pub(super) fn write_notice(stream: &mut std::fs::File, line: &str) {
    use std::io::Write;

    if let Err(e) = stream.write_all(format!("{line}\n").as_bytes()) {
        tracing::debug!(error = %e, "write a notice to the process's output");
    }
}

/// The copy tasks of a started process.
#[derive(Default)]
pub(super) struct ProcessIo {
    outputs: Vec<JoinHandle<()>>,
    stdin: Option<(PathBuf, JoinHandle<()>)>,
}

impl ProcessIo {
    /// Starts copying a started process's output into its sinks and its stdin FIFO into
    /// the process.
    pub(super) fn start(
        agent: &AgentClient,
        id: &str,
        exec_id: &str,
        paths: &StdioPaths,
        opened: OpenedOutput,
    ) -> ProcessIo {
        let mut io = ProcessIo::default();
        // A stream without a sink is still read, into nothing: the guest keeps a bounded
        // buffer, and a process whose output nobody reads would block once it is full.
        let discard = || Some(Box::new(tokio::io::sink()) as OutputSink);
        let streams = [
            (OutputStream::Stdout, opened.stdout.or_else(discard)),
            (
                OutputStream::Stderr,
                opened
                    .stderr
                    .or_else(|| (!paths.terminal).then(discard).flatten()),
            ),
        ];
        for (stream, sink) in streams {
            if let Some(mut sink) = sink {
                let (agent, id, exec_id) = (agent.clone(), id.to_string(), exec_id.to_string());
                io.outputs.push(tokio::spawn(async move {
                    if let Err(e) = copy_output(&agent, &id, &exec_id, stream, &mut sink).await {
                        tracing::debug!(container = %id, exec = %exec_id, ?stream,
                            error = %chain(&e), "output copy ended early");
                    }
                }));
            }
        }
        if let Some(path) = &paths.stdin {
            let (agent, id, exec_id) = (agent.clone(), id.to_string(), exec_id.to_string());
            let fifo = path.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = copy_stdin_fifo(&agent, &id, &exec_id, &fifo).await {
                    tracing::debug!(container = %id, exec = %exec_id, error = %e,
                        "stdin copy ended early");
                }
            });
            io.stdin = Some((path.clone(), task));
        }
        io
    }

    /// Moves the output copies out (to be drained without holding the table), leaving stdin.
    pub(super) fn take_outputs(&mut self) -> ProcessIo {
        ProcessIo {
            outputs: std::mem::take(&mut self.outputs),
            stdin: None,
        }
    }

    /// Moves the stdin copy out (to be closed without holding the table).
    pub(super) fn take_stdin(&mut self) -> ProcessIo {
        ProcessIo {
            outputs: Vec::new(),
            stdin: self.stdin.take(),
        }
    }

    /// Waits until every output stream reached end of file (the process and everything
    /// that inherited its output closed it), or `limit` passed.
    pub(super) async fn drain_output(&mut self, limit: Duration) -> bool {
        let all = futures_join(std::mem::take(&mut self.outputs));
        tokio::time::timeout(limit, all).await.is_ok()
    }

    /// Ends the stdin copy: lets it reach end of file, else closes the process's stdin.
    pub(super) async fn close_stdin(&mut self, agent: &AgentClient, id: &str, exec_id: &str) {
        let Some((path, mut task)) = self.stdin.take() else {
            return close_guest_stdin(agent, id, exec_id).await;
        };
        if tokio::time::timeout(STDIN_DRAIN, &mut task).await.is_err() {
            task.abort();
            unblock_open(&path);
            close_guest_stdin(agent, id, exec_id).await;
        }
    }

    /// Stops every copy at once (the process is gone, or the VM is).
    pub(super) fn abort(&mut self) {
        for task in self.outputs.drain(..) {
            task.abort();
        }
        if let Some((path, task)) = self.stdin.take() {
            task.abort();
            unblock_open(&path);
        }
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        self.abort();
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

async fn close_guest_stdin(agent: &AgentClient, id: &str, exec_id: &str) {
    let mut req = lightpod_proto::agent::ProcessRef::new();
    req.container_id = id.to_string();
    req.exec_id = exec_id.to_string();
    if let Err(e) = agent.close_stdin(&req).await {
        tracing::debug!(container = %id, exec = %exec_id, error = %chain(&e), "close stdin");
    }
}

async fn copy_stdin_fifo(
    agent: &AgentClient,
    id: &str,
    exec_id: &str,
    path: &Path,
) -> Result<u64, String> {
    let fifo = path.to_path_buf();
    // Blocks until the writer opens its end (see the module documentation).
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(fifo))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("open stdin {}: {e}", path.display()))?;
    let mut reader = pipe::Receiver::from_file(file).map_err(|e| e.to_string())?;
    copy_stdin(agent, id, exec_id, &mut reader)
        .await
        .map_err(|e| chain(&e))
}

/// Releases a blocking open of `path` for reading that waits for a writer, by opening and
/// closing the writing end once. Harmless when nothing waits.
fn unblock_open(path: &Path) {
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_mean_no_stream() {
        let paths = StdioPaths::from_strings("", "/run/out", "", true);
        assert_eq!(paths.stdin, None);
        assert_eq!(paths.stdout, Some(PathBuf::from("/run/out")));
        assert_eq!(paths.stderr, None);
        assert!(paths.terminal);
    }

    #[tokio::test]
    async fn output_fifos_open_without_a_reader_and_bad_uris_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let paths = StdioPaths {
            stdout: Some(fifo.clone()),
            stderr: Some(fifo),
            terminal: true,
            ..Default::default()
        };
        let opened = open_output(&paths).expect("a FIFO without a reader opens");
        assert!(opened.stdout.is_some());
        assert!(opened.stderr.is_none(), "a terminal has no separate stderr");

        let bad = StdioPaths {
            stdout: Some("binary:///usr/bin/logger".into()),
            ..Default::default()
        };
        let err = open_output(&bad).err().expect("binary:// is refused");
        assert!(err.to_string().contains("binary://"), "{err}");

        let missing = StdioPaths {
            stderr: Some(dir.path().join("absent")),
            ..Default::default()
        };
        assert!(matches!(
            open_output(&missing).err(),
            Some(TaskError::OpenFifo {
                stream: "stderr",
                ..
            })
        ));
    }
}
