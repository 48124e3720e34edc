//! The socket server (`execnet serve`): for each authenticated TCP connection
//! a fresh worker (`python3 -c LOADER`) whose stdin/stdout are relayed to it.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_executor::{Executor, Task};

use async_io::Async;
use execnet_gateway::handshake::{AuthError, Token, HANDSHAKE_TIMEOUT};

use crate::handshake::server_handshake;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// At most this many connections may be in the handshake at once (fewer
/// when the process may not open that many files: half its limit). A
/// pending handshake is a socket, a 69-byte buffer and a timer, so
/// thousands cost little; a connection that does not answer within
/// [`HANDSHAKE_TIMEOUT`] is dropped, so a flood of 1,000 silent
/// connections a second fills about 3,000. Beyond the bound, a new
/// connection evicts a pending one chosen at random: a flood cannot aim at
/// any one client, and a good client that needs a round trip of `t` seconds
/// survives a flood of `r` connections a second with odds of about
/// `exp(-r·t / MAX_PENDING)`.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
/// assert!(execnet::server::MAX_PENDING >= 4096);
/// ```
pub const MAX_PENDING: usize = 4096;

/// The server logs at most this many lines about failed connections per
/// [`LOG_WINDOW`], then one line counting the rest.
const LOG_LINES: u32 = 10;
/// See [`LOG_LINES`].
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Handshake tasks in progress, by connection number; any one can be
/// found, removed, or picked at random in constant time.
#[derive(Default)]
struct Pending {
    tasks: Vec<(u64, Task<()>)>,
    /// Connection number → index in `tasks`.
    index: HashMap<u64, usize>,
    /// xorshift state for picking a victim (not a secret: the flood cannot
    /// see which connection was dropped in time to matter).
    rng: u64,
}

impl Pending {
    fn insert(&mut self, id: u64, task: Task<()>) {
        self.index.insert(id, self.tasks.len());
        self.tasks.push((id, task));
    }

    fn remove_at(&mut self, pos: usize) -> Task<()> {
        let (id, task) = self.tasks.swap_remove(pos);
        self.index.remove(&id);
        if let Some((moved, _)) = self.tasks.get(pos) {
            self.index.insert(*moved, pos);
        }
        task
    }

    fn remove(&mut self, id: u64) -> Option<Task<()>> {
        let pos = *self.index.get(&id)?;
        Some(self.remove_at(pos))
    }

    fn evict_random(&mut self) -> Option<Task<()>> {
        if self.tasks.is_empty() {
            return None;
        }
        if self.rng == 0 {
            self.rng = random_seed().unwrap_or(0x9E37_79B9_7F4A_7C15) | 1;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let pos = (self.rng % self.tasks.len() as u64) as usize;
        Some(self.remove_at(pos))
    }
}

/// A random seed from the handshake's nonce source.
fn random_seed() -> Option<u64> {
    let nonce = execnet_gateway::handshake::ServerHello::new(false)
        .ok()?
        .nonce;
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&nonce[..8]);
    Some(u64::from_le_bytes(seed))
}

/// The server's log about failed connections, at most [`LOG_LINES`] lines
/// per [`LOG_WINDOW`] plus one line that counts what was left out: a flood
/// of a million bad connections writes a few lines a minute, not a million.
#[derive(Debug)]
struct Limiter {
    window: Instant,
    said: u32,
    unsaid: u64,
}

impl Limiter {
    fn new() -> Limiter {
        Limiter {
            window: Instant::now(),
            said: 0,
            unsaid: 0,
        }
    }

    /// Log `message` at `level` unless this window's lines are spent.
    fn log(&mut self, level: log::Level, message: fmt::Arguments<'_>) {
        self.roll();
        if self.said < LOG_LINES {
            self.said += 1;
            log::log!(level, "{message}");
        } else {
            self.unsaid += 1;
        }
    }

    /// Start a new window if this one is over, counting what it left out.
    fn roll(&mut self) {
        if self.window.elapsed() < LOG_WINDOW {
            return;
        }
        if self.unsaid > 0 {
            log::warn!(
                "{} more failed or dropped connections in the last {:.0?} were not logged \
                 (at most {LOG_LINES} lines per {LOG_WINDOW:?})",
                self.unsaid,
                self.window.elapsed()
            );
        }
        *self = Limiter::new();
    }
}

type SharedLimiter = Arc<Mutex<Limiter>>;

fn say(limiter: &SharedLimiter, level: log::Level, message: fmt::Arguments<'_>) {
    limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .log(level, message);
}

/// Raise this process's soft limit of open files to its hard limit, as
/// `execnet serve` does when it starts: each pending handshake and each
/// served connection holds sockets and pipes, and a soft limit of 1,024
/// would cap a flood's pending handshakes far below [`MAX_PENDING`].
/// Returns the soft limit now in force (`None`: unlimited).
///
/// # Examples
///
/// ```
/// let files = execnet_server::raise_fd_limit();
/// assert!(files.is_none_or(|n| n >= 64));
/// ```
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            log::debug!("cannot raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// How many handshakes may be pending in a process that may open `files`.
fn pending_bound(files: Option<u64>) -> usize {
    let half = files.map_or(u64::MAX, |n| n / 2);
    MAX_PENDING
        .min(usize::try_from(half).unwrap_or(usize::MAX))
        .max(16)
}

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
    max_pending: usize,
}

impl Server {
    /// Listen on `addr` (`host:port`; port 0 picks a free one). `token: None`
    /// accepts unauthenticated clients (`--insecure-no-auth`); a token
    /// weaker than [`MIN_TOKEN_BITS`](execnet_gateway::handshake::MIN_TOKEN_BITS)
    /// is refused (`InvalidInput`). Listening on an address that is not
    /// loopback is logged at warn level.
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
        if let Some(token) = &token {
            token
                .check_strength("the server's token")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let listener = Async::<TcpListener>::bind(
            std::net::ToSocketAddrs::to_socket_addrs(addr)?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?,
        )?;
        let local = listener.get_ref().local_addr()?;
        if !local.ip().is_loopback() {
            log::warn!(
                "listening on {local}, which is not a loopback address: every host that can \
                 reach it may try to guess the token, and the connections are not encrypted \
                 (anyone on the path sees the code and data). Prefer 127.0.0.1 and an ssh \
                 tunnel (ssh -L PORT:127.0.0.1:PORT host); see SECURITY.md"
            );
        }
        let max_pending =
            pending_bound(rustix::process::getrlimit(rustix::process::Resource::Nofile).current);
        Ok(Server {
            listener,
            token,
            python: vec!["python3".into()],
            max_pending,
        })
    }

    /// At most `n` handshakes pending at once (default [`MAX_PENDING`], or
    /// half the process's file limit if lower); beyond that a new
    /// connection evicts one at random.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{Gateway, SocketTransport, Token, XSpec}; }
    /// use execnet::{server::Server, Token};
    ///
    /// let server = Server::bind("127.0.0.1:0", Some(Token::generate()?))?.max_pending(100);
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
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
    /// dropped and logged through the `log` facade (target
    /// `execnet_server`), at most 10 lines per 10 s, then one line that
    /// counts the rest.
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
    /// let wrong = SocketTransport::new(addr.clone(), Token::new(&"0".repeat(64)));
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
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let limiter: SharedLimiter = Arc::new(Mutex::new(Limiter::new()));
        // Count what a window left out even when no new failure comes.
        let tally = limiter.clone();
        executor
            .spawn(async move {
                loop {
                    async_io::Timer::after(LOG_WINDOW).await;
                    tally.lock().unwrap_or_else(PoisonError::into_inner).roll();
                }
            })
            .detach();
        let token = Arc::new(self.token);
        let python = Arc::new(self.python);
        let mut next_id: u64 = 0;
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: say so, keep serving.
                    say(
                        &limiter,
                        log::Level::Warn,
                        format_args!("accept failed: {e}"),
                    );
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            next_id += 1;
            let id = next_id;
            let mut table = pending.lock().unwrap_or_else(PoisonError::into_inner);
            if table.tasks.len() >= self.max_pending {
                // Dropping the task closes its connection.
                drop(table.evict_random());
                say(
                    &limiter,
                    log::Level::Warn,
                    format_args!(
                        "{} handshakes pending: dropped one at random to admit {peer}",
                        self.max_pending
                    ),
                );
            }
            let (table_ref, token, python) = (pending.clone(), token.clone(), python.clone());
            let limiter = limiter.clone();
            // Spawned while the table is locked, so the task finds itself in
            // it when its handshake ends.
            let task = executor.spawn(async move {
                let mut stream = stream;
                let auth = wait_bounded(
                    server_handshake(&mut stream, (*token).as_ref()),
                    HANDSHAKE_TIMEOUT,
                )
                .await;
                // No longer pending: take our handle out so eviction cannot
                // cancel a served connection.
                let me = table_ref
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                if let Some(me) = me {
                    me.detach();
                }
                let failure = match auth {
                    Some(Ok(())) => None,
                    Some(Err(AuthError::Refused(m))) => Some(format!("authentication failed: {m}")),
                    Some(Err(e)) => Some(format!("handshake failed: {e}")),
                    None => Some(format!("handshake timed out after {HANDSHAKE_TIMEOUT:?}")),
                };
                if let Some(failure) = failure {
                    say(
                        &limiter,
                        log::Level::Info,
                        format_args!("{peer}: {failure}; closed, nothing run"),
                    );
                    return;
                }
                if let Err(e) = serve_worker(stream, &python).await {
                    log::warn!("{peer}: worker: {e}");
                }
            });
            table.insert(id, task);
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
async fn wait_bounded<F: std::future::Future>(future: F, limit: Duration) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_a_few_lines_per_window_then_counts_the_rest() {
        let mut limiter = Limiter::new();
        for i in 0..1_000 {
            limiter.log(log::Level::Info, format_args!("failure {i}"));
        }
        assert_eq!((limiter.said, limiter.unsaid), (LOG_LINES, 1_000 - 10));
        // The window passes: its count is said (one line), a new one opens.
        limiter.window -= LOG_WINDOW;
        limiter.log(log::Level::Info, format_args!("next"));
        assert_eq!((limiter.said, limiter.unsaid), (1, 0));
    }

    #[test]
    fn pending_handshakes_are_found_and_evicted_in_any_order() {
        let executor = Executor::new();
        let mut pending = Pending::default();
        for id in 0..100 {
            pending.insert(id, executor.spawn(async {}));
        }
        assert!(pending.remove(42).is_some());
        assert!(pending.remove(42).is_none());
        let mut evicted = 0;
        while pending.evict_random().is_some() {
            evicted += 1;
        }
        assert_eq!(evicted, 99);
        assert!(pending.index.is_empty());
    }
}
