//! `socket=HOST:PORT` gateways: a TCP connection that passes the socket
//! server's handshake, then carries the usual bootstrap. Compiled with the
//! `socket` feature (on by default), which brings the handshake's HMAC.

pub mod handshake;

use execnet_transport::{BoxFuture, Connection, Step, TcpTransport, Transport, TransportError};

use crate::runtime::wait_bounded;
use handshake::{client_handshake, AuthError, Token, HANDSHAKE_TIMEOUT};

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
/// let token = Token::new("s3cret");
/// let transport = SocketTransport::new("127.0.0.1:8888", token);
/// let gw = Gateway::from_transport(transport, XSpec::parse("socket=127.0.0.1:8888")?, "gw0").await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct SocketTransport {
    addr: String,
    token: Option<Token>,
}

impl SocketTransport {
    /// A transport to the server at `addr` (`host:port`, `[v6]:port`),
    /// answering its challenge with `token` (`None`: only a server that
    /// requires no token lets it in).
    pub fn new(addr: impl Into<String>, token: Option<Token>) -> Self {
        Self {
            addr: addr.into(),
            token,
        }
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
    ///     let (mut peer, _) = listener.accept().unwrap();
    ///     std::io::Write::write_all(&mut peer, &ServerHello::new(false).unwrap().to_bytes()).unwrap();
    ///     std::thread::sleep(std::time::Duration::from_millis(100));
    /// });
    /// let conn = SocketTransport::new(addr.clone(), None).open().await?;
    /// assert_eq!(conn.description, format!("socket {addr}"));
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn open(&self) -> Result<Connection, TransportError> {
        let addr = &self.addr;
        let fail = |step, message: String| TransportError::Failed { step, message };
        let mut conn = TcpTransport::new(addr.clone()).open().await?;
        let shake = client_handshake(&mut conn.reader, &mut conn.writer, self.token.as_ref());
        match wait_bounded(shake, HANDSHAKE_TIMEOUT).await {
            Some(Ok(())) => Ok(conn),
            Some(Err(AuthError::Refused(m))) => Err(fail(
                Step::Auth,
                format!("authentication failed at socket server {addr}: {m}"),
            )),
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
