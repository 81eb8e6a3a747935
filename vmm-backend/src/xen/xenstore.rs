//! A minimal xenstore client: reads over xenstored's unix socket, in the wire format of
//! Xen's `xs_wire.h` (a 16-byte header of type, request id, transaction id and payload
//! length, little-endian on x86, then the payload).
//!
//! lightpod only reads a few keys while a guest boots (its console's pty). Talking to the
//! socket directly costs one round trip per read, where a `xenstore-read` process per poll
//! would cost a fork and exec each, which is slow in a busy or emulated dom0.

use std::{path::Path, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

/// `XS_DIRECTORY`: list the children of a node.
const XS_DIRECTORY: u32 = 1;
/// `XS_READ`: read a node's value.
const XS_READ: u32 = 2;
/// `XS_ERROR`: the reply to a failed request; the payload is an errno name.
const XS_ERROR: u32 = 16;
/// Longest payload xenstored sends or accepts (`XENSTORE_PAYLOAD_MAX`).
const PAYLOAD_MAX: usize = 4096;

/// A xenstore request failed.
#[derive(Debug, thiserror::Error)]
pub enum XenstoreError {
    /// The socket could not be reached.
    #[error("connect to xenstored at {path}")]
    Connect {
        /// The socket.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("xenstore {op} {key}")]
    Io {
        /// The request.
        op: &'static str,
        /// The key.
        key: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// xenstored refused the request.
    #[error("xenstore {op} {key}: {errno}")]
    Refused {
        /// The request.
        op: &'static str,
        /// The key.
        key: String,
        /// The errno name xenstored answered (`EACCES`, …).
        errno: String,
    },
    /// The reply did not fit the protocol.
    #[error("xenstore {op} {key}: malformed reply")]
    Malformed {
        /// The request.
        op: &'static str,
        /// The key.
        key: String,
    },
}

/// One connection to xenstored.
#[derive(Debug)]
pub struct Xenstore {
    stream: UnixStream,
    next_id: u32,
}

impl Xenstore {
    /// Connects to xenstored's socket.
    ///
    /// # Errors
    ///
    /// The socket does not exist or refuses the connection.
    pub async fn connect(socket: &Path) -> Result<Xenstore, XenstoreError> {
        let stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| XenstoreError::Connect {
                    path: socket.display().to_string(),
                    source,
                })?;
        Ok(Xenstore { stream, next_id: 1 })
    }

    /// Reads `key`; `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// The request failed for another reason than a missing key.
    pub async fn read(&mut self, key: &str) -> Result<Option<String>, XenstoreError> {
        let reply = self.request(XS_READ, "read", key).await?;
        Ok(reply.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Lists the children of `key`; `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// The request failed for another reason than a missing key.
    pub async fn directory(&mut self, key: &str) -> Result<Option<Vec<String>>, XenstoreError> {
        let reply = self.request(XS_DIRECTORY, "directory", key).await?;
        Ok(reply.map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|name| !name.is_empty())
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect()
        }))
    }

    /// Polls `key` every `interval` until it exists, for at most `limit`.
    ///
    /// # Errors
    ///
    /// A read failed. A key still missing at the end is `Ok(None)`.
    pub async fn wait_for(
        &mut self,
        key: &str,
        interval: Duration,
        limit: Duration,
    ) -> Result<Option<String>, XenstoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(value) = self.read(key).await? {
                return Ok(Some(value));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Sends one request and reads its reply: `None` for `ENOENT`.
    async fn request(
        &mut self,
        kind: u32,
        op: &'static str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, XenstoreError> {
        let io = |source| XenstoreError::Io {
            op,
            key: key.to_string(),
            source,
        };
        let malformed = || XenstoreError::Malformed {
            op,
            key: key.to_string(),
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let message = encode(kind, id, key);
        self.stream.write_all(&message).await.map_err(io)?;

        let mut header = [0u8; 16];
        self.stream.read_exact(&mut header).await.map_err(io)?;
        let field =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (reply_kind, reply_id, len) = (field(0), field(4), field(12) as usize);
        if len > PAYLOAD_MAX {
            return Err(malformed());
        }
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await.map_err(io)?;
        // Without watches every message is the reply to the one request in flight.
        if reply_id != id {
            return Err(malformed());
        }
        if reply_kind == XS_ERROR {
            let errno = String::from_utf8_lossy(&payload)
                .trim_end_matches('\0')
                .to_string();
            if errno == "ENOENT" {
                return Ok(None);
            }
            return Err(XenstoreError::Refused {
                op,
                key: key.to_string(),
                errno,
            });
        }
        if reply_kind != kind {
            return Err(malformed());
        }
        Ok(Some(payload))
    }
}

/// A request: the header, then the key with its terminating NUL.
fn encode(kind: u32, id: u32, key: &str) -> Vec<u8> {
    let len = key.len() as u32 + 1;
    let mut message = Vec::with_capacity(16 + len as usize);
    for field in [kind, id, 0, len] {
        message.extend_from_slice(&field.to_le_bytes());
    }
    message.extend_from_slice(key.as_bytes());
    message.push(0);
    message
}

#[cfg(test)]
#[path = "xenstore_tests.rs"]
mod tests;
