//! One host connection over a byte device, as tokio's `AsyncRead`/`AsyncWrite`.

use std::{
    io,
    os::fd::OwnedFd,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::{
    io::{unix::AsyncFd, AsyncRead, AsyncWrite, Interest, ReadBuf},
    sync::oneshot,
};

use crate::fdio;

/// The device while one host connection lasts. At end of file or on an error it closes the
/// device at once (a virtio port has a single opener) and tells the listener, which then
/// reopens it; later writes of the old connection fail with `BrokenPipe` and never reach a
/// new host.
#[derive(Debug)]
pub struct DeviceStream {
    fd: Option<AsyncFd<OwnedFd>>,
    closed: Option<oneshot::Sender<()>>,
}

impl DeviceStream {
    /// Wraps an open, non-blocking device; the receiver resolves when the connection ends.
    pub fn new(fd: OwnedFd) -> io::Result<(DeviceStream, oneshot::Receiver<()>)> {
        let (tx, rx) = oneshot::channel();
        Ok((
            DeviceStream {
                fd: Some(fdio::register(fd, Interest::READABLE | Interest::WRITABLE)?),
                closed: Some(tx),
            },
            rx,
        ))
    }

    fn close(&mut self) {
        self.fd = None;
        if let Some(closed) = self.closed.take() {
            let _ = closed.send(());
        }
    }
}

impl Drop for DeviceStream {
    fn drop(&mut self) {
        self.close();
    }
}

/// What one non-blocking attempt gave.
enum Attempt {
    Done(io::Result<usize>),
    WouldBlock,
}

impl AsyncRead for DeviceStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let Some(fd) = this.fd.as_ref() else {
                return Poll::Ready(Ok(()));
            };
            let mut guard = ready!(fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let attempt = match guard.try_io(|inner| fdio::read(inner.get_ref(), unfilled)) {
                Ok(result) => Attempt::Done(result),
                Err(_would_block) => Attempt::WouldBlock,
            };
            match attempt {
                Attempt::WouldBlock => continue,
                Attempt::Done(Ok(0)) => {
                    this.close();
                    return Poll::Ready(Ok(()));
                }
                Attempt::Done(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Attempt::Done(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Attempt::Done(Err(e)) => {
                    this.close();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsyncWrite for DeviceStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let Some(fd) = this.fd.as_ref() else {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            };
            let mut guard = ready!(fd.poll_write_ready(cx))?;
            let attempt = match guard.try_io(|inner| fdio::write(inner.get_ref(), data)) {
                Ok(result) => Attempt::Done(result),
                Err(_would_block) => Attempt::WouldBlock,
            };
            match attempt {
                Attempt::WouldBlock => continue,
                Attempt::Done(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Attempt::Done(Err(e)) => {
                    this.close();
                    return Poll::Ready(Err(e));
                }
                Attempt::Done(Ok(n)) => return Poll::Ready(Ok(n)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn end_of_file_closes_and_notifies() {
        let (ours, mut theirs) = UnixStream::pair().expect("pair");
        ours.set_nonblocking(true).expect("nonblocking");
        let (mut stream, closed) = DeviceStream::new(ours.into()).expect("stream");

        stream.write_all(b"hello").await.expect("write");
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut theirs, &mut got).expect("read");
        assert_eq!(&got, b"hello");

        std::io::Write::write_all(&mut theirs, b"back").expect("write");
        drop(theirs);
        let mut back = Vec::new();
        stream.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, b"back");
        closed
            .await
            .expect("the listener is told the connection ended");
        let err = stream
            .write_all(b"late")
            .await
            .expect_err("writes after the end fail");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
