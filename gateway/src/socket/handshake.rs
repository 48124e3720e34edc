//! The socket server handshake (`wire/WIRE.md`, "Socket server
//! handshake"): a mutual HMAC-SHA256 challenge–response over a shared
//! token, before the server starts any worker.
//!
//! The messages and their MACs are here, sans-IO, with the client's half of
//! the conversation ([`client_handshake`]); the server's half lives with the
//! server in `execnet-server`, built from the same pieces.

use std::io;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

pub use super::token::{Token, TokenError, MIN_TOKEN_BITS};

type HmacSha256 = Hmac<Sha256>;

/// The first bytes the server sends.
pub const SERVER_MAGIC: &[u8; 4] = b"EXNS";
/// The first bytes of the client's answer.
pub const CLIENT_MAGIC: &[u8; 4] = b"EXNC";
/// The handshake version.
pub const VERSION: u8 = 1;
/// Flag bit of the server hello: a token is required.
const FLAG_AUTH: u8 = 1;
/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// Bytes of the server hello: magic, version, flags, nonce.
pub const SERVER_HELLO_LEN: usize = 4 + 1 + 1 + NONCE_LEN;
/// Bytes of the client answer: magic, version, nonce, MAC.
pub const CLIENT_ANSWER_LEN: usize = 4 + 1 + NONCE_LEN + MAC_LEN;

/// How long either side waits for the other to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// The MAC labels: the client's and the server's proofs differ, so neither
/// can be replayed as the other.
const CLIENT_LABEL: &[u8] = b"execnet client";
const SERVER_LABEL: &[u8] = b"execnet server";

impl Token {
    fn mac(&self, label: &[u8], server: &[u8], client: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(label);
        mac.update(server);
        mac.update(client);
        mac
    }

    /// The server's proof that it knows the token, for the nonces of one
    /// handshake.
    pub fn server_proof(
        &self,
        server_nonce: &[u8; NONCE_LEN],
        client_nonce: &[u8; NONCE_LEN],
    ) -> [u8; MAC_LEN] {
        self.mac(SERVER_LABEL, server_nonce, client_nonce)
            .finalize()
            .into_bytes()
            .into()
    }
}

/// Fresh random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut n = [0u8; N];
    getrandom::fill(&mut n).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(n)
}

/// Why a handshake failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer does not know the token (or we have none and it wants one).
    #[error("{0}")]
    Refused(String),
    /// The peer does not speak this handshake.
    #[error("{0}")]
    Protocol(String),
    /// The server closed the handshake without a word: it dropped us
    /// (overloaded, or its timeout passed), which says nothing about our
    /// token.
    #[error("{0}")]
    Closed(String),
    /// The server requires no token, and the client did not opt in to such
    /// a server ([`ClientPolicy::insecure_no_auth`]).
    #[error("{0}")]
    Unauthenticated(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The server's first message: its challenge.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::handshake::{ClientAnswer, ServerHello, Token};
///
/// // The server's challenge, the client's answer, the server's check.
/// let token = Token::new("s3cret").unwrap();
/// let hello = ServerHello::parse(&ServerHello::new(true)?.to_bytes()).unwrap();
/// assert!(hello.auth_required);
/// let answer = ClientAnswer::new(&token, &hello.nonce)?;
/// let received = ClientAnswer::parse(&answer.to_bytes()).unwrap();
/// assert!(received.verify(&token, &hello.nonce).is_ok());
/// assert!(received.verify(&Token::new("guess").unwrap(), &hello.nonce).is_err());
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The server's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Whether the client must prove that it knows the token.
    pub auth_required: bool,
}

impl ServerHello {
    /// A hello with a fresh random nonce.
    pub fn new(auth_required: bool) -> io::Result<ServerHello> {
        Ok(ServerHello {
            nonce: random()?,
            auth_required,
        })
    }

    /// Its bytes on the wire.
    pub fn to_bytes(&self) -> [u8; SERVER_HELLO_LEN] {
        let mut out = [0u8; SERVER_HELLO_LEN];
        out[..4].copy_from_slice(SERVER_MAGIC);
        out[4] = VERSION;
        out[5] = if self.auth_required { FLAG_AUTH } else { 0 };
        out[6..].copy_from_slice(&self.nonce);
        out
    }

    /// Read it from the wire.
    pub fn parse(bytes: &[u8; SERVER_HELLO_LEN]) -> Result<ServerHello, AuthError> {
        if &bytes[..4] != SERVER_MAGIC || bytes[4] != VERSION {
            return Err(AuthError::Protocol(format!(
                "not an execnet socket server (it began {:?})",
                String::from_utf8_lossy(&bytes[..5])
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[6..]);
        Ok(ServerHello {
            nonce,
            auth_required: bytes[5] & FLAG_AUTH != 0,
        })
    }
}

/// The client's answer to a [`ServerHello`] that requires the token: its own
/// nonce and its proof over both nonces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAnswer {
    /// The client's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// HMAC-SHA256 over the label, the server's and the client's nonce.
    pub mac: [u8; MAC_LEN],
}

impl ClientAnswer {
    /// The answer of a client holding `token` to the challenge `server_nonce`.
    pub fn new(token: &Token, server_nonce: &[u8; NONCE_LEN]) -> io::Result<ClientAnswer> {
        let nonce = random()?;
        let mac = token
            .mac(CLIENT_LABEL, server_nonce, &nonce)
            .finalize()
            .into_bytes()
            .into();
        Ok(ClientAnswer { nonce, mac })
    }

    /// Its bytes on the wire.
    pub fn to_bytes(&self) -> [u8; CLIENT_ANSWER_LEN] {
        let mut out = [0u8; CLIENT_ANSWER_LEN];
        out[..4].copy_from_slice(CLIENT_MAGIC);
        out[4] = VERSION;
        out[5..5 + NONCE_LEN].copy_from_slice(&self.nonce);
        out[5 + NONCE_LEN..].copy_from_slice(&self.mac);
        out
    }

    /// Read it from the wire.
    pub fn parse(bytes: &[u8; CLIENT_ANSWER_LEN]) -> Result<ClientAnswer, AuthError> {
        if &bytes[..4] != CLIENT_MAGIC || bytes[4] != VERSION {
            return Err(AuthError::Protocol(format!(
                "not an execnet handshake (it began {:?})",
                String::from_utf8_lossy(&bytes[..5])
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[5..5 + NONCE_LEN]);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&bytes[5 + NONCE_LEN..]);
        Ok(ClientAnswer { nonce, mac })
    }

    /// Check the client's proof (in constant time) against `token`.
    pub fn verify(&self, token: &Token, server_nonce: &[u8; NONCE_LEN]) -> Result<(), AuthError> {
        token
            .mac(CLIENT_LABEL, server_nonce, &self.nonce)
            .verify_slice(&self.mac)
            .map_err(|_| AuthError::Refused("wrong token".into()))
    }
}

/// What the server sends instead of its proof when the client's proof is
/// wrong, before it closes: the client can then tell a wrong token from a
/// server that dropped the handshake (overloaded, or its timeout passed).
/// Shorter than a proof, so never mistaken for one.
pub const REFUSAL: &[u8; 5] = b"EXNR\x01";

/// Whom the client lets in, besides a server that proves it knows our
/// token.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::handshake::{ClientPolicy, Token};
///
/// let strict = ClientPolicy::new(Token::new(&"ab".repeat(32)));
/// assert!(!strict.insecure_no_auth);
/// let lax = ClientPolicy::new(None).insecure_no_auth(true);
/// assert!(lax.insecure_no_auth);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientPolicy {
    /// Our token, to answer a server that requires one (and to check its
    /// proof).
    pub token: Option<Token>,
    /// Accept a server whose hello says it authenticates nobody (`execnet
    /// serve --insecure-no-auth`): such a server proves nothing about itself,
    /// so an impostor at its address would get, and could read or run, the
    /// code we send. Off by default: the spec key `insecure_no_auth` or
    /// [`Options::insecure_no_auth`](crate::Options::insecure_no_auth)
    /// turns it on.
    pub insecure_no_auth: bool,
}

impl ClientPolicy {
    /// Authenticate with `token` (if any); refuse unauthenticated servers.
    pub fn new(token: Option<Token>) -> ClientPolicy {
        ClientPolicy {
            token,
            insecure_no_auth: false,
        }
    }

    /// Whether to accept a server that requires no token.
    pub fn insecure_no_auth(mut self, on: bool) -> ClientPolicy {
        self.insecure_no_auth = on;
        self
    }
}

/// The client side: answer the server's challenge and check its proof.
///
/// A server that requires no token is accepted only with
/// [`ClientPolicy::insecure_no_auth`]; a server that closes the handshake
/// without a word is reported as such ([`AuthError::Closed`]), not as a
/// wrong token.
///
/// # Examples
///
/// A server that requires no token (`execnet serve --insecure-no-auth`):
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::handshake::{client_handshake, AuthError, ClientPolicy, ServerHello};
///
/// let hello = ServerHello::new(false)?.to_bytes();
/// let run = |policy| {
///     let (mut from_server, mut to_server) = (&hello[..], Vec::new());
///     futures_lite::future::block_on(client_handshake(&mut from_server, &mut to_server, &policy))
/// };
/// // Refused unless the client opts in.
/// assert!(matches!(run(ClientPolicy::new(None)), Err(AuthError::Unauthenticated(_))));
/// run(ClientPolicy::new(None).insecure_no_auth(true))?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub async fn client_handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    policy: &ClientPolicy,
) -> Result<(), AuthError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut hello = [0u8; SERVER_HELLO_LEN];
    let got = read_until_eof(reader, &mut hello).await?;
    if got == 0 {
        return Err(AuthError::Closed(
            "the server closed the handshake (overloaded?) before its hello".into(),
        ));
    }
    if got < SERVER_HELLO_LEN {
        // Parse what came, to name a server that is not ours.
        ServerHello::parse(&hello)?;
        return Err(AuthError::Protocol(format!(
            "the server's hello ended after {got} of {SERVER_HELLO_LEN} bytes"
        )));
    }
    let hello = ServerHello::parse(&hello)?;
    if !hello.auth_required {
        if policy.insecure_no_auth {
            return Ok(());
        }
        let held = if policy.token.is_some() {
            "we hold a token, but it asked for none: "
        } else {
            ""
        };
        return Err(AuthError::Unauthenticated(format!(
            "the server requires no token, so it proves nothing about itself ({held}an impostor \
             at its address would receive and could run the code we send); refused. To use a \
             server started with --insecure-no-auth, add insecure_no_auth to the spec"
        )));
    }
    let Some(token) = &policy.token else {
        return Err(AuthError::Refused(
            "the server requires a token: give token_file= or set EXECNET_TOKEN".into(),
        ));
    };
    let answer = ClientAnswer::new(token, &hello.nonce)?;
    writer.write_all(&answer.to_bytes()).await?;
    writer.flush().await?;
    let mut proof = [0u8; MAC_LEN];
    let got = read_until_eof(reader, &mut proof).await?;
    if got == REFUSAL.len() && proof[..got] == REFUSAL[..] {
        return Err(AuthError::Refused(
            "the server rejected our token (wrong token?)".into(),
        ));
    }
    if got == 0 {
        return Err(AuthError::Closed(format!(
            "the server closed the handshake (overloaded?) after our answer, without refusing \
             our token: a server drops handshakes it has no room for, or that take longer \
             than {HANDSHAKE_TIMEOUT:?}"
        )));
    }
    if got < MAC_LEN {
        return Err(AuthError::Protocol(format!(
            "the server's proof ended after {got} of {MAC_LEN} bytes"
        )));
    }
    token
        .mac(SERVER_LABEL, &hello.nonce, &answer.nonce)
        .verify_slice(&proof)
        .map_err(|_| AuthError::Refused("the server does not know our token".into()))
}

/// Read into `buf` until it is full or the stream ends; how many bytes came.
async fn read_until_eof<R>(reader: &mut R, buf: &mut [u8]) -> Result<usize, AuthError>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset before anything came is a close too.
            Err(e) if got == 0 && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(AuthError::Io(e)),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_keep_their_layout() {
        let hello = ServerHello::new(true).expect("random");
        let bytes = hello.to_bytes();
        assert_eq!(&bytes[..6], b"EXNS\x01\x01");
        assert_eq!(ServerHello::parse(&bytes).expect("parses"), hello);

        let token = Token::new("t").expect("token");
        let answer = ClientAnswer::new(&token, &hello.nonce).expect("random");
        let bytes = answer.to_bytes();
        assert_eq!(&bytes[..5], b"EXNC\x01");
        let parsed = ClientAnswer::parse(&bytes).expect("parses");
        assert!(parsed.verify(&token, &hello.nonce).is_ok());
        let other = Token::new("u").expect("token");
        assert!(matches!(
            parsed.verify(&other, &hello.nonce),
            Err(AuthError::Refused(_))
        ));
    }

    #[test]
    fn proofs_are_bound_to_the_nonces_and_the_side() {
        let token = Token::new("t").expect("token");
        let (a, b) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        assert_ne!(token.server_proof(&a, &b), token.server_proof(&b, &a));
        // A client proof is not a server proof.
        let answer = ClientAnswer::new(&token, &a).expect("random");
        assert_ne!(answer.mac, token.server_proof(&a, &answer.nonce));
    }

    #[test]
    fn the_wire_spec_and_the_installvia_server_say_the_same_timeout() {
        let secs = HANDSHAKE_TIMEOUT.as_secs();
        let wire = include_str!("../../../wire/WIRE.md");
        assert!(
            wire.contains(&format!("**{secs} s** (`HANDSHAKE_TIMEOUT`")),
            "WIRE.md does not say {secs} s"
        );
        let serve = include_str!("../../worker/serve.py");
        assert!(serve.contains(&format!("conn.settimeout({secs})")));
        assert!(
            serve.contains(r#"b"EXNR\x01""#),
            "the installvia server's refusal"
        );
        assert_eq!(REFUSAL, b"EXNR\x01");
    }

    #[test]
    fn a_server_that_is_not_execnet_is_named() {
        let mut stream = &b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"[..];
        let err = futures_lite::future::block_on(client_handshake(
            &mut stream,
            &mut Vec::new(),
            &ClientPolicy::new(None),
        ))
        .expect_err("not a server of ours");
        assert!(
            err.to_string().contains("not an execnet socket server"),
            "{err}"
        );
    }
}
