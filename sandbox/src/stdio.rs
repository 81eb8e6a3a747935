//! Copies a guest process's stdio between the agent and host readers/writers (a terminal,
//! containerd's FIFOs, a CRI log pipe).

use lightpod_proto::agent as pb;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{agent::AgentClient, error::SandboxError};

/// Largest chunk moved per agent call: big enough to amortise a round trip through the
/// channel, small enough to keep ttrpc messages far below their 4 MiB limit.
const CHUNK: usize = 256 * 1024;

/// Which output stream of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output (also the terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// Copies one output stream of a process into `writer` until the process closes it.
/// Returns the number of bytes copied.
///
/// # Errors
///
/// The agent call or the write failed.
pub async fn copy_output<W: AsyncWrite + Unpin>(
    agent: &AgentClient,
    container_id: &str,
    exec_id: &str,
    stream: OutputStream,
    writer: &mut W,
) -> Result<u64, SandboxError> {
    let mut req = pb::ReadOutputRequest::new();
    req.container_id = container_id.to_string();
    req.exec_id = exec_id.to_string();
    req.stream = match stream {
        OutputStream::Stdout => pb::OutputStream::STDOUT,
        OutputStream::Stderr => pb::OutputStream::STDERR,
    }
    .into();
    req.max_bytes = CHUNK as u32;

    let mut copied = 0u64;
    loop {
        let chunk = agent.read_output(&req).await?;
        if !chunk.data.is_empty() {
            writer
                .write_all(&chunk.data)
                .await
                .map_err(|source| SandboxError::Io {
                    context: format!("write {stream:?} of {container_id}"),
                    source,
                })?;
            writer.flush().await.map_err(|source| SandboxError::Io {
                context: format!("flush {stream:?} of {container_id}"),
                source,
            })?;
            copied += chunk.data.len() as u64;
        }
        if chunk.eof {
            return Ok(copied);
        }
    }
}

/// Copies `reader` into a process's stdin, then closes it. Returns the bytes copied.
///
/// # Errors
///
/// The read or the agent call failed.
pub async fn copy_stdin<R: AsyncRead + Unpin>(
    agent: &AgentClient,
    container_id: &str,
    exec_id: &str,
    reader: &mut R,
) -> Result<u64, SandboxError> {
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|source| SandboxError::Io {
                context: format!("read stdin for {container_id}"),
                source,
            })?;
        if n == 0 {
            break;
        }
        let mut offset = 0;
        while offset < n {
            let mut req = pb::WriteStdinRequest::new();
            req.container_id = container_id.to_string();
            req.exec_id = exec_id.to_string();
            req.data = buf[offset..n].to_vec();
            let written = agent.write_stdin(&req).await?.written as usize;
            if written == 0 {
                // The process closed its stdin; what is left has nowhere to go.
                return Ok(copied + offset as u64);
            }
            offset += written.min(n - offset);
        }
        copied += n as u64;
    }
    let mut req = pb::ProcessRef::new();
    req.container_id = container_id.to_string();
    req.exec_id = exec_id.to_string();
    agent.close_stdin(&req).await?;
    Ok(copied)
}
