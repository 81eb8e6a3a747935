//! TCP connections the host opens to ports inside the guest (kubelet's port-forward), each
//! read and written through the agent API.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpStream,
    },
    sync::Mutex as AsyncMutex,
};

use crate::error::{AgentError, AgentResult};

/// Largest chunk one `ReadConnection` returns.
pub const MAX_READ: usize = 1 << 20;

/// Chunk size when the host asks for 0 bytes.
const DEFAULT_READ: usize = 64 * 1024;

#[derive(Debug)]
struct Connection {
    reader: AsyncMutex<OwnedReadHalf>,
    writer: AsyncMutex<Option<OwnedWriteHalf>>,
}

/// The open connections, by id.
#[derive(Debug, Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Connections {
    fn get(&self, id: u64) -> AgentResult<Arc<Connection>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&id)
            .cloned()
            .ok_or(AgentError::ConnectionNotFound(id))
    }

    /// Dials `127.0.0.1:port` in the guest; returns the connection's id.
    ///
    /// # Errors
    ///
    /// [`AgentError::Connect`] when nothing listens there.
    pub async fn open(&self, port: u16) -> AgentResult<u64> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| AgentError::Connect { port, source })?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = Connection {
            reader: AsyncMutex::new(reader),
            writer: AsyncMutex::new(Some(writer)),
        };
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::new(connection));
        tracing::debug!(port, id, "connection opened");
        Ok(id)
    }

    /// Long-polls for data: at least one byte, or end of file.
    ///
    /// # Errors
    ///
    /// Unknown id, or the read failed.
    pub async fn read(&self, id: u64, max: usize) -> AgentResult<(Vec<u8>, bool)> {
        let connection = self.get(id)?;
        let max = if max == 0 {
            DEFAULT_READ
        } else {
            max.min(MAX_READ)
        };
        let mut buf = vec![0u8; max];
        let n = connection
            .reader
            .lock()
            .await
            .read(&mut buf)
            .await
            .map_err(|source| AgentError::Io {
                context: format!("read connection {id}"),
                source,
            })?;
        buf.truncate(n);
        Ok((buf, n == 0))
    }

    /// Writes all of `data`, then shuts the writing side if asked.
    ///
    /// # Errors
    ///
    /// Unknown id, writing side already shut, or the write failed.
    pub async fn write(&self, id: u64, data: &[u8], close_write: bool) -> AgentResult<()> {
        let connection = self.get(id)?;
        let mut writer = connection.writer.lock().await;
        let stream = writer.as_mut().ok_or_else(|| {
            AgentError::WrongState(format!("connection {id} is closed for writing"))
        })?;
        let io_err = |source| AgentError::Io {
            context: format!("write connection {id}"),
            source,
        };
        stream.write_all(data).await.map_err(io_err)?;
        if close_write {
            stream.shutdown().await.map_err(io_err)?;
            *writer = None;
        }
        Ok(())
    }

    /// Forgets a connection, closing it.
    ///
    /// # Errors
    ///
    /// Unknown id.
    pub fn close(&self, id: u64) -> AgentResult<()> {
        let removed = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        removed.map(drop).ok_or(AgentError::ConnectionNotFound(id))
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn round_trip_through_a_loopback_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            socket.read_to_end(&mut got).await.expect("read");
            socket.write_all(&got).await.expect("echo");
        });

        let connections = Connections::default();
        let id = connections.open(port).await.expect("open");
        connections.write(id, b"ping", true).await.expect("write");
        let (data, eof) = connections.read(id, 0).await.expect("read");
        assert_eq!((data.as_slice(), eof), (&b"ping"[..], false));
        let (data, eof) = connections.read(id, 10).await.expect("read");
        assert!(data.is_empty() && eof, "server closed: eof");
        assert!(
            connections.write(id, b"x", false).await.is_err(),
            "write after close_write"
        );
        connections.close(id).expect("close");
        assert!(matches!(
            connections.close(id),
            Err(AgentError::ConnectionNotFound(_))
        ));
        server.await.expect("server");
    }
}
