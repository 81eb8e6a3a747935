//! The QMP connection to one QEMU process, through the `qapi` crate's typed commands.
//!
//! One task reads the socket: it routes replies to the commands waiting for them and keeps
//! the last `SHUTDOWN` event, which tells a guest power-off from a reset or a host quit.

use std::{path::Path, time::Duration};

use futures::StreamExt;
use qapi::{
    futures::{QapiService, QmpStreamTokio},
    qmp,
};
use tokio::{io::WriteHalf, net::UnixStream, sync::watch, time::Instant};

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket did not accept a connection before the deadline.
    #[error("connect to QMP socket {path}")]
    Connect {
        /// The socket.
        path: std::path::PathBuf,
        /// The last error seen.
        #[source]
        source: std::io::Error,
    },
    /// The greeting or capabilities negotiation failed.
    #[error("negotiate QMP capabilities")]
    Negotiate(#[source] std::io::Error),
    /// A command failed or its reply was lost.
    #[error("QMP command {command}: {message}")]
    Command {
        /// The command's QMP name.
        command: &'static str,
        /// QEMU's error or the I/O error.
        message: String,
    },
    /// A command got no reply in time.
    #[error("QMP command {0} timed out")]
    Timeout(&'static str),
}

/// The `SHUTDOWN` event as QEMU sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownEvent {
    /// Whether the guest caused it.
    pub guest: bool,
    /// QEMU's reason (`guest-shutdown`, `guest-reset`, `guest-panic`, `host-qmp-quit`, …).
    pub reason: String,
}

impl ShutdownEvent {
    /// Whether the guest powered itself off (as opposed to a reset, panic or host action).
    pub fn is_guest_poweroff(&self) -> bool {
        self.guest && self.reason == "guest-shutdown"
    }
}

/// What the reader task has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QmpState {
    /// The last `SHUTDOWN` event.
    pub shutdown: Option<ShutdownEvent>,
    /// Whether the connection has ended (QEMU exited or closed it).
    pub closed: bool,
}

type Writer = QmpStreamTokio<WriteHalf<UnixStream>>;

/// A negotiated QMP connection.
pub struct QmpConnection {
    service: QapiService<Writer>,
    state: watch::Receiver<QmpState>,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for QmpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpConnection")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl QmpConnection {
    /// Connects to `path`, retrying until `deadline` while QEMU creates the socket, and
    /// negotiates capabilities.
    pub async fn connect(path: &Path, deadline: Instant) -> Result<Self, QmpError> {
        let socket = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(QmpError::Connect {
                        path: path.to_path_buf(),
                        source: e,
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        let (read, write) = tokio::io::split(socket);
        let negotiate = async {
            QmpStreamTokio::open_split(read, write)
                .await?
                .negotiate()
                .await
        };
        let stream = tokio::time::timeout_at(deadline, negotiate)
            .await
            .map_err(|_| QmpError::Negotiate(std::io::ErrorKind::TimedOut.into()))?
            .map_err(QmpError::Negotiate)?;
        let (service, mut events) = stream.into_parts();

        let (tx, state) = watch::channel(QmpState::default());
        let reader = tokio::spawn(async move {
            // The events stream also routes command replies, so it must be polled throughout.
            while let Some(event) = events.next().await {
                match event {
                    Ok(qmp::Event::SHUTDOWN { data, .. }) => {
                        let reason = serde_json::to_value(data.reason)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        let event = ShutdownEvent {
                            guest: data.guest,
                            reason,
                        };
                        tracing::debug!(?event, "QMP shutdown event");
                        tx.send_modify(|s| s.shutdown = Some(event));
                    }
                    Ok(other) => tracing::trace!(event = ?other, "QMP event"),
                    Err(e) => {
                        tracing::debug!(error = %e, "QMP stream ended with an error");
                        break;
                    }
                }
            }
            tx.send_modify(|s| s.closed = true);
        });
        Ok(QmpConnection {
            service,
            state,
            reader,
        })
    }

    /// Runs `command`, giving up after `timeout`.
    pub async fn execute<C>(&self, command: C, timeout: Duration) -> Result<C::Ok, QmpError>
    where
        C: qapi::Command,
        Writer: futures::Sink<qapi::Execute<C, u32>, Error = std::io::Error> + Unpin,
    {
        let name = C::NAME;
        match tokio::time::timeout(timeout, self.service.execute(command)).await {
            Err(_) => Err(QmpError::Timeout(name)),
            Ok(Err(e)) => Err(QmpError::Command {
                command: name,
                message: e.to_string(),
            }),
            Ok(Ok(ok)) => Ok(ok),
        }
    }

    /// A receiver of the reader's state (last shutdown event, connection closed).
    pub fn state(&self) -> watch::Receiver<QmpState> {
        self.state.clone()
    }
}

impl Drop for QmpConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
