use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};

use crate::{BoxFuture, Connection, StderrTail, Transport, TransportError};

/// A TCP connection to an execnet socket server.
///
/// The stream carries whatever the server expects first (the socket
/// gateway's authentication), then the worker bootstrap and frames.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    addr: String,
}

impl TcpTransport {
    /// A transport to `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// Connect now.
    pub async fn open(self) -> Result<Connection, TransportError> {
        let addr = self.addr.clone();
        let connect_err = |source| TransportError::Connect {
            addr: addr.clone(),
            source,
        };
        let addrs: Vec<_> =
            blocking_resolve(&self.addr).map_err(|source| TransportError::Resolve {
                addr: addr.clone(),
                source,
            })?;
        let mut last = None;
        for a in addrs {
            match Async::<TcpStream>::connect(a).await {
                Ok(stream) => {
                    let _ = stream.get_ref().set_nodelay(true);
                    let stream = Arc::new(stream);
                    return Ok(Connection {
                        reader: Box::pin(Half(stream.clone())),
                        writer: Box::pin(Half(stream)),
                        stderr: None,
                        stderr_tail: StderrTail::new(),
                        process: None,
                        description: format!("socket {}", self.addr),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(connect_err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")
        })))
    }
}

fn blocking_resolve(addr: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    Ok(addr.to_socket_addrs()?.collect())
}

impl Transport for TcpTransport {
    fn connect(self: Box<Self>) -> BoxFuture<'static, Result<Connection, TransportError>> {
        Box::pin((*self).open())
    }
}

/// One half of a shared TCP stream: reads and writes go to the same socket,
/// closing shuts down the write direction only.
#[derive(Debug)]
struct Half(Arc<Async<TcpStream>>);

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.0.get_ref().shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        })
    }
}
