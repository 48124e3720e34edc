//! `socket=HOST:PORT` gateways: connect, authenticate, then the usual bootstrap.

use execnet_transport::{Connection, TcpTransport, TransportError};

use crate::auth::{client_handshake, AuthError, Token, HANDSHAKE_TIMEOUT};
use crate::bootstrap::wait_bounded;
use crate::error::{Error, Result, Step};

/// Connect to the socket server at `addr` and pass its handshake with `token`.
pub(crate) async fn connect(
    addr: &str,
    token: Option<&Token>,
    gateway: &str,
) -> Result<Connection> {
    let fail = |step, message: String| Error::Bootstrap {
        gateway: gateway.to_string(),
        step,
        message,
    };
    let mut conn = TcpTransport::new(addr).open().await.map_err(|e| {
        // an unknown host is its own step (execnet's HostNotFound)
        let step = match e {
            TransportError::Resolve { .. } => Step::Host,
            _ => Step::Connect,
        };
        fail(step, e.to_string())
    })?;
    let shake = client_handshake(&mut conn.reader, &mut conn.writer, token);
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

/// The client token of a spec (`token_file=` or `EXECNET_TOKEN`).
pub(crate) fn client_token(token_file: Option<&str>, gateway: &str) -> Result<Option<Token>> {
    Token::for_client(token_file).map_err(|e| Error::Bootstrap {
        gateway: gateway.to_string(),
        step: Step::Auth,
        message: format!("authentication failed: cannot read the token: {e}"),
    })
}
