//! The server's half of the socket handshake (`wire/WIRE.md`, "Socket
//! server handshake"): send the challenge, check the client's proof, prove
//! that we know the token too. The messages are those of
//! [`execnet_gateway::handshake`], where the client's half lives.

use std::io;

use execnet_gateway::handshake::{
    AuthError, ClientAnswer, ServerHello, Token, CLIENT_ANSWER_LEN, REFUSAL,
};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// The server side: send the challenge, check the answer, prove we know the
/// token too. `token: None` (`--insecure-no-auth`) accepts everybody. A
/// wrong proof gets [`REFUSAL`] before the caller closes, so that the client
/// can tell it from a dropped handshake.
///
/// # Examples
///
/// Both halves over a socket pair:
///
/// ```
/// # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{handshake, Gateway, SocketTransport, Token, XSpec}; }
/// use execnet::handshake::{client_handshake, ClientPolicy};
/// use execnet::server::server_handshake;
/// use execnet::Token;
///
/// let token = Token::generate()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (mut a, b) = (async_io::Async::new(a)?, async_io::Async::new(b)?);
/// let (server, client) = futures_lite::future::block_on(futures_lite::future::zip(
///     server_handshake(&mut a, Some(&token)),
///     client_handshake(&mut &b, &mut &b, &ClientPolicy::new(Some(token.clone()))),
/// ));
/// assert!(server.is_ok() && client.is_ok());
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn server_handshake<S>(stream: &mut S, token: Option<&Token>) -> Result<(), AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello = ServerHello::new(token.is_some())?;
    stream.write_all(&hello.to_bytes()).await?;
    stream.flush().await?;
    let Some(token) = token else {
        return Ok(());
    };
    let mut answer = [0u8; CLIENT_ANSWER_LEN];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                AuthError::Refused("the client closed before answering".into())
            }
            _ => AuthError::Io(e),
        })?;
    let answer = ClientAnswer::parse(&answer)?;
    if let Err(e) = answer.verify(token, &hello.nonce) {
        // Best effort: the refusal is a courtesy, the close is what counts.
        let _ = stream.write_all(REFUSAL).await;
        let _ = stream.flush().await;
        return Err(e);
    }
    stream
        .write_all(&token.server_proof(&hello.nonce, &answer.nonce))
        .await?;
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use execnet_gateway::handshake::{client_handshake, ClientPolicy};

    use super::*;

    type Outcome = Result<(), AuthError>;

    /// Run both sides over a socket pair.
    fn run(server: Option<&Token>, client: Option<&Token>) -> (Outcome, Outcome) {
        run_with(server, ClientPolicy::new(client.cloned()))
    }

    fn run_with(server: Option<&Token>, client: ClientPolicy) -> (Outcome, Outcome) {
        let (s, c) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let s = async_io::Async::new(s).expect("async");
        let c = async_io::Async::new(c).expect("async");
        futures_lite::future::block_on(futures_lite::future::zip(
            async move {
                let mut s = s;
                server_handshake(&mut s, server).await
            },
            async move {
                let r = client_handshake(&mut &c, &mut &c, &client).await;
                drop(c);
                r
            },
        ))
    }

    #[test]
    fn same_token_passes_both_ways() {
        let t = Token::generate().expect("random");
        let (s, c) = run(Some(&t), Some(&t));
        assert!(s.is_ok(), "{s:?}");
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn wrong_or_missing_token_is_refused() {
        let a = Token::new("alpha").expect("token");
        let b = Token::new("beta").expect("token");
        let (s, c) = run(Some(&a), Some(&b));
        assert!(matches!(s, Err(AuthError::Refused(_))), "{s:?}");
        assert!(matches!(c, Err(AuthError::Refused(_))), "{c:?}");
        let said = c.map_err(|e| e.to_string()).unwrap_err();
        assert!(said.contains("wrong token?"), "{said}");
        let (s, c) = run(Some(&a), None);
        assert!(matches!(c, Err(AuthError::Refused(_))), "{c:?}");
        assert!(s.is_err());
    }

    #[test]
    fn no_auth_server_is_refused_unless_the_client_opts_in() {
        // The downgrade: an impostor with no token, a client with one.
        let t = Token::generate().expect("random");
        for client in [Some(&t), None] {
            let (_, c) = run(None, client);
            assert!(matches!(c, Err(AuthError::Unauthenticated(_))), "{c:?}");
            let said = c.map_err(|e| e.to_string()).unwrap_err();
            assert!(said.contains("add insecure_no_auth"), "{said}");
        }
        let (s, c) = run_with(None, ClientPolicy::new(None).insecure_no_auth(true));
        assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
    }
}
