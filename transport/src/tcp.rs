use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
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
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{TcpTransport, Transport};
/// use futures_lite::AsyncReadExt;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// std::thread::spawn(move || {
///     let (mut peer, _) = listener.accept().unwrap();
///     std::io::Write::write_all(&mut peer, b"hello").unwrap();
/// });
/// let mut conn = TcpTransport::new(addr.to_string()).connect().await?;
/// let mut got = String::new();
/// conn.reader.read_to_string(&mut got).await?;
/// assert_eq!(got, "hello");
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct TcpTransport {
    addr: String,
}

impl TcpTransport {
    /// A transport to `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// Connect now. Host names are resolved on a thread of the `blocking`
    /// pool (the system resolver blocks), never on the caller's executor.
    pub async fn open(&self) -> Result<Connection, TransportError> {
        let addr = self.addr.clone();
        let connect_err = |source| TransportError::Connect {
            addr: addr.clone(),
            source,
        };
        let addrs = resolve(&self.addr)
            .await
            .map_err(|source| TransportError::Resolve {
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

/// The addresses of `addr` (`host:port`, `[v6]:port`): a literal address
/// at once, a name through the system resolver off this thread.
async fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(literal) = addr.parse::<SocketAddr>() {
        return Ok(vec![literal]);
    }
    let addr = addr.to_string();
    blocking::unblock(move || Ok(addr.to_socket_addrs()?.collect())).await
}

impl Transport for TcpTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(self.open())
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
