//! The socket server (`execnet serve`): for each authenticated TCP connection
//! a fresh worker (`python3 -c LOADER`) whose stdin/stdout are relayed to it.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use async_executor::{Executor, Task};

use async_io::Async;
use execnet_gateway::handshake::{AuthError, Token, HANDSHAKE_TIMEOUT};

use crate::handshake::server_handshake;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// At most this many connections may be in the handshake at once; a new one
/// beyond that evicts the oldest (a flood of silent clients cannot exhaust
/// the server, nor keep good clients out).
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
/// assert!(execnet::server::MAX_PENDING >= 16);
/// ```
pub const MAX_PENDING: usize = 32;

/// Handshake tasks in progress, by connection number, oldest first.
type Pending = VecDeque<(u64, Task<()>)>;

/// A listening socket server.
///
/// # Examples
///
/// ```no_run
/// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{handshake, Gateway, SocketTransport, Token, XSpec}; }
/// use execnet::server::Server;
/// use execnet::Token;
///
/// # futures_lite::future::block_on(async {
/// let server = Server::bind("127.0.0.1:0", Some(Token::generate()?))?;
/// println!("listening on {}", server.local_addr()?);
/// server.run().await
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Server {
    listener: Async<TcpListener>,
    token: Option<Token>,
    python: Vec<String>,
}

impl Server {
    /// Listen on `addr` (`host:port`; port 0 picks a free one). `token: None`
    /// accepts unauthenticated clients (`--insecure-no-auth`).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
    /// use execnet::{server::Server, Token};
    ///
    /// let server = Server::bind("127.0.0.1:0", Some(Token::generate()?))?;
    /// assert_ne!(server.local_addr()?.port(), 0); // the port the system picked
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn bind(addr: &str, token: Option<Token>) -> io::Result<Server> {
        let listener = Async::<TcpListener>::bind(
            std::net::ToSocketAddrs::to_socket_addrs(addr)?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?,
        )?;
        Ok(Server {
            listener,
            token,
            python: vec!["python3".into()],
        })
    }

    /// The interpreter command started for each connection (default `python3`).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
    /// use execnet::{server::Server, Token};
    ///
    /// let server = Server::bind("127.0.0.1:0", Some(Token::generate()?))?
    ///     .python(vec!["python3.11".into(), "-X".into(), "utf8".into()]);
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn python(mut self, command: Vec<String>) -> Self {
        if !command.is_empty() {
            self.python = command;
        }
        self
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Accept connections forever. Each is served by a task of this future
    /// (so it runs on whatever executor polls it); a failing client is
    /// logged (one line on stderr) and dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
    /// use execnet::{server::Server, Gateway, SocketTransport, Token, XSpec};
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = Token::generate()?;
    /// let server = Server::bind("127.0.0.1:0", Some(token.clone()))?;
    /// let addr = server.local_addr()?.to_string();
    /// std::thread::spawn(move || futures_lite::future::block_on(server.run()));
    ///
    /// // A client with the wrong token is refused before anything runs.
    /// let wrong = SocketTransport::new(addr.clone(), Token::new("guess"));
    /// let spec = XSpec::parse(&format!("socket={addr}"))?;
    /// let err = Gateway::from_transport(wrong, spec.clone(), "gw0").await.unwrap_err();
    /// assert!(err.to_string().contains("authentication failed"), "{err}");
    ///
    /// let gw = Gateway::from_transport(SocketTransport::new(addr, Some(token)), spec, "gw1").await?;
    /// gw.exit().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn run(self) -> io::Result<()> {
        let executor = Arc::new(Executor::new());
        executor.run(self.accept_loop(executor.clone())).await
    }

    async fn accept_loop(self, executor: Arc<Executor<'static>>) -> io::Result<()> {
        // Handshakes in progress, oldest first. When the limit is reached the
        // oldest is dropped (cancelled, its connection closed) to make room:
        // a flood of silent connections cannot lock good clients out for
        // longer than it takes them to answer one round trip.
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let token = Arc::new(self.token);
        let python = Arc::new(self.python);
        let mut next_id: u64 = 0;
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: say so, keep serving.
                    eprintln!("execnet serve: accept failed: {e}");
                    async_io::Timer::after(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            next_id += 1;
            let id = next_id;
            let mut queue = pending.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= MAX_PENDING {
                if let Some((_, oldest)) = queue.pop_front() {
                    drop(oldest);
                    eprintln!(
                        "execnet serve: too many pending handshakes; dropped the oldest to admit {peer}"
                    );
                }
            }
            let (queue_ref, token, python) = (pending.clone(), token.clone(), python.clone());
            // Spawned while the queue is locked, so the task finds itself in
            // it when its handshake ends.
            let task = executor.spawn(async move {
                let mut stream = stream;
                let auth = wait_bounded(
                    server_handshake(&mut stream, (*token).as_ref()),
                    HANDSHAKE_TIMEOUT,
                )
                .await;
                {
                    // No longer pending: take our handle out so eviction
                    // cannot cancel a served connection.
                    let mut queue = queue_ref.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(pos) = queue.iter().position(|(i, _)| *i == id) {
                        if let Some((_, me)) = queue.remove(pos) {
                            me.detach();
                        }
                    }
                }
                let failure = match auth {
                    Some(Ok(())) => None,
                    Some(Err(AuthError::Refused(m))) => Some(format!("authentication failed: {m}")),
                    Some(Err(e)) => Some(format!("handshake failed: {e}")),
                    None => Some(format!("handshake timed out after {HANDSHAKE_TIMEOUT:?}")),
                };
                if let Some(failure) = failure {
                    eprintln!("execnet serve: {peer}: {failure}; closed, nothing run");
                    return;
                }
                if let Err(e) = serve_worker(stream, &python).await {
                    eprintln!("execnet serve: {peer}: worker: {e}");
                }
            });
            queue.push_back((id, task));
        }
    }
}

/// Start a worker and relay bytes between it and `stream` until it exits.
async fn serve_worker(stream: Async<TcpStream>, python: &[String]) -> io::Result<()> {
    let _ = stream.get_ref().set_nodelay(true);
    let mut cmd = async_process::Command::new(&python[0]);
    cmd.args(&python[1..])
        .arg("-c")
        .arg(execnet_gateway::LOADER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("no pipes"));
    };
    let stream = Arc::new(stream);
    let inbound = async {
        let _ = futures_lite::io::copy(&mut &*stream, &mut stdin).await;
        let _ = stdin.close().await;
        drop(stdin);
        // The worker sees EOF and exits; the outbound side ends then.
        std::future::pending::<()>().await;
    };
    let outbound = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if (&*stream).write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
    };
    futures_lite::future::or(inbound, outbound).await;
    let _ = child.kill();
    child.status().await?;
    Ok(())
}

/// `future`'s output, or `None` after `limit`.
async fn wait_bounded<F: std::future::Future>(
    future: F,
    limit: std::time::Duration,
) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}
