//! The channel to the host: a stream of ttrpc connections over a virtio-serial port or a
//! console, for `ttrpc::asynchronous::transport::Listener::new`.
//!
//! A byte device has no `accept`: one connection lasts as long as the host keeps its end.
//! When the host goes (read end of file, `POLLHUP`), the connection ends, the device is
//! closed and reopened, and a new connection is yielded once a host is back.

mod console;
mod port;
mod stream;

use std::{io, path::Path, time::Duration};

use futures_util::stream::unfold;
use ttrpc::asynchronous::transport::Listener;

use crate::{channel::stream::DeviceStream, cmdline::ChannelSpec};

/// How long to wait for the virtio port to appear while its driver probes.
const PORT_WAIT: Duration = Duration::from_secs(10);

/// How often to look whether a host is connected, while none is.
const HOST_POLL: Duration = Duration::from_millis(50);

/// Opening the channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The virtio port did not appear in time.
    #[error(
        "no virtio-serial port named {name:?} under /sys/class/virtio-ports after {waited:?} \
         (is virtio_console loaded and the port on the VMM command line?)"
    )]
    PortMissing {
        /// Port name looked for.
        name: String,
        /// How long the agent waited.
        waited: Duration,
    },
    /// The device could not be opened or set up.
    #[error("open {0}")]
    Open(String, #[source] io::Error),
    /// The development unix socket could not be bound.
    #[error("listen on unix socket {0}")]
    Bind(String, #[source] io::Error),
}

/// Which device the connections run over.
#[derive(Debug, Clone)]
enum Device {
    Port(std::path::PathBuf),
    Console(std::path::PathBuf),
}

impl Device {
    fn open(&self) -> io::Result<std::os::fd::OwnedFd> {
        match self {
            Device::Port(path) => port::open(path),
            Device::Console(path) => console::open_raw(path),
        }
    }
}

/// Opens the channel and returns the stream of host connections.
///
/// # Errors
///
/// The device does not exist (after a bounded wait for virtio ports) or cannot be opened.
pub async fn listen(spec: &ChannelSpec) -> Result<Listener, ChannelError> {
    let device = match spec {
        ChannelSpec::VirtioPort(name) => Device::Port(port::find(name, PORT_WAIT).await?),
        ChannelSpec::Console(path) => {
            // Outside a guest (development) the terminal is someone's, and stays theirs.
            if crate::boot::power::is_pid1() {
                console::take_over();
            }
            Device::Console(path.clone())
        }
        ChannelSpec::Unix(path) => return bind_unix(path),
    };
    // Fail early, with a clear error, if the device cannot be opened at all.
    let first = device
        .open()
        .map_err(|e| ChannelError::Open(describe(&device), e))?;
    tracing::info!(device = %describe(&device), "agent channel open");

    let state = (
        device,
        Some(first),
        None::<tokio::sync::oneshot::Receiver<()>>,
    );
    let connections = unfold(state, |(device, mut fd, previous)| async move {
        if let Some(previous) = previous {
            // The device allows one opener: wait until the last connection closed it.
            let _ = previous.await;
            tracing::info!("host disconnected; waiting for it to come back");
        }
        loop {
            let opened = match fd.take() {
                Some(fd) => Ok(fd),
                None => device.open(),
            };
            match opened {
                Ok(fd) => {
                    wait_for_host(&fd).await;
                    let (stream, closed) = match DeviceStream::new(fd) {
                        Ok(pair) => pair,
                        Err(err) => {
                            tracing::warn!(%err, "registering the channel failed; retrying");
                            tokio::time::sleep(HOST_POLL).await;
                            continue;
                        }
                    };
                    tracing::debug!("host connected");
                    return Some((Ok::<_, io::Error>(stream), (device, None, Some(closed))));
                }
                Err(err) => {
                    tracing::warn!(device = %describe(&device), %err, "reopening the channel failed; retrying");
                    tokio::time::sleep(HOST_POLL * 10).await;
                }
            }
        }
    });
    Ok(Listener::new(connections))
}

/// Waits until a host holds the other end: a virtio port reports `POLLHUP` while nobody is
/// connected on the VMM side. Polled, because the readiness of tokio never forgets a hang-up.
async fn wait_for_host(fd: &std::os::fd::OwnedFd) {
    while port::hung_up(fd) {
        tokio::time::sleep(HOST_POLL).await;
    }
}

fn describe(device: &Device) -> String {
    match device {
        Device::Port(path) | Device::Console(path) => path.display().to_string(),
    }
}

fn bind_unix(path: &Path) -> Result<Listener, ChannelError> {
    let shown = path.display().to_string();
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ChannelError::Bind(shown, e)),
        _ => {}
    }
    let listener = Listener::bind(format!("unix://{shown}"))
        .map_err(|e| ChannelError::Bind(shown.clone(), e))?;
    tracing::info!(socket = %shown, "agent channel listening (development mode)");
    Ok(listener)
}
