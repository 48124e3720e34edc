//! `socket=HOST:PORT` gateways: a TCP connection that passes the socket
//! server's handshake, then carries the usual bootstrap. Compiled with the
//! `socket` feature (on by default), which brings the handshake's HMAC.

pub mod handshake;
mod token;

use execnet_transport::{BoxFuture, Connection, Step, TcpTransport, Transport, TransportError};

use crate::runtime::wait_bounded;
use handshake::{client_handshake, AuthError, ClientPolicy, Token, HANDSHAKE_TIMEOUT};

/// A connection to an execnet socket server (`execnet serve`) that proves
/// it knows the server's token before anything else.
///
/// # Examples
///
/// ```no_run
/// # use execnet_gateway as execnet;
/// use execnet::{Gateway, SocketTransport, Token, XSpec};
///
/// # futures_lite::future::block_on(async {
/// let token = Token::new("7f3a5c0e9b1d4f6a8c2e0b9d7f5a3c1e");
/// let transport = SocketTransport::new("127.0.0.1:8888", token);
/// let gw = Gateway::from_transport(transport, XSpec::parse("socket=127.0.0.1:8888")?, "gw0").await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct SocketTransport {
    addr: String,
    policy: ClientPolicy,
}

impl SocketTransport {
    /// A transport to the server at `addr` (`host:port`, `[v6]:port`),
    /// answering its challenge with `token`. A server that requires no
    /// token is refused unless [`SocketTransport::insecure_no_auth`] says
    /// otherwise.
    pub fn new(addr: impl Into<String>, token: Option<Token>) -> Self {
        Self {
            addr: addr.into(),
            policy: ClientPolicy::new(token),
        }
    }

    /// Accept a server that requires no token (`execnet serve
    /// --insecure-no-auth`; the spec key `insecure_no_auth`): it proves
    /// nothing about itself, so an impostor at its address would get the
    /// code we send. Off by default.
    pub fn insecure_no_auth(mut self, on: bool) -> Self {
        self.policy.insecure_no_auth = on;
        self
    }

    /// Connect and pass the handshake (bounded by [`HANDSHAKE_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{SocketTransport, Token};
    /// use execnet::handshake::ServerHello;
    ///
    /// // A stand-in server that requires no token and sends only its hello.
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?.to_string();
    /// std::thread::spawn(move || {
    ///     for _ in 0..2 {
    ///         let (mut peer, _) = listener.accept().unwrap();
    ///         std::io::Write::write_all(&mut peer, &ServerHello::new(false).unwrap().to_bytes()).unwrap();
    ///         std::thread::sleep(std::time::Duration::from_millis(100));
    ///     }
    /// });
    /// // Refused unless we opt in: such a server proves nothing about itself.
    /// let err = SocketTransport::new(addr.clone(), None).open().await.unwrap_err();
    /// assert!(err.to_string().contains("insecure_no_auth"), "{err}");
    /// let conn = SocketTransport::new(addr.clone(), None).insecure_no_auth(true).open().await?;
    /// assert_eq!(conn.description, format!("socket {addr}"));
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn open(&self) -> Result<Connection, TransportError> {
        let addr = &self.addr;
        let fail = |step, message: String| TransportError::Failed { step, message };
        let mut conn = TcpTransport::new(addr.clone()).open().await?;
        let shake = client_handshake(&mut conn.reader, &mut conn.writer, &self.policy);
        match wait_bounded(shake, HANDSHAKE_TIMEOUT).await {
            Some(Ok(())) => Ok(conn),
            Some(Err(AuthError::Refused(m))) => Err(fail(
                Step::Auth,
                format!("authentication failed at socket server {addr}: {m}"),
            )),
            Some(Err(AuthError::Unauthenticated(m))) => {
                Err(fail(Step::Auth, format!("socket server {addr}: {m}")))
            }
            Some(Err(e)) => Err(fail(Step::Handshake, format!("socket server {addr}: {e}"))),
            None => Err(fail(
                Step::Handshake,
                format!(
                    "socket server {addr} did not finish the handshake within {HANDSHAKE_TIMEOUT:?}"
                ),
            )),
        }
    }
}

impl Transport for SocketTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(self.open())
    }
}
