//! The socket server handshake (`wire/WIRE.md`, "Socket server
//! handshake"): a mutual HMAC-SHA256 challenge–response over a shared
//! token, before the server starts any worker.
//!
//! The messages and their MACs are here, sans-IO, with the client's half of
//! the conversation ([`client_handshake`]); the server's half lives with the
//! server in `execnet-server`, built from the same pieces.

use std::io;
use std::path::Path;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

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

/// A shared secret: the token file's contents without surrounding whitespace.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::Token;
///
/// let token = Token::new("  s3cret\n").expect("not empty");
/// assert_eq!(token.as_str(), "s3cret");
/// assert!(Token::new(" \n").is_none());
/// assert_eq!(Token::generate()?.as_str().len(), 64);
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token from text; `None` if it is empty (after trimming).
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.as_bytes().to_vec()))
    }

    /// A fresh random token (64 hex digits).
    pub fn generate() -> io::Result<Token> {
        let bytes: [u8; 32] = random()?;
        Ok(Token(hex(&bytes).into_bytes()))
    }

    /// The token as text (to write into a token file).
    pub fn as_str(&self) -> &str {
        // Built from &str or hex only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Read the token in `path`; if `path` does not exist, write a fresh one
    /// there (mode 0600) and return it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// let path = std::env::temp_dir().join(format!("execnet-doc-token-{}", std::process::id()));
    /// let made = execnet::Token::load_or_create(&path)?;
    /// let read = execnet::Token::load_or_create(&path)?;
    /// assert_eq!(made.as_str(), read.as_str());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn load_or_create(path: &Path) -> io::Result<Token> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::read_to_string(path) {
            Ok(text) => Token::new(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("token file {} is empty", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let token = Token::generate()?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                std::io::Write::write_all(&mut file, format!("{}\n", token.as_str()).as_bytes())?;
                Ok(token)
            }
            Err(e) => Err(e),
        }
    }

    /// The client's token: the file `token_file` if given, else
    /// `EXECNET_TOKEN`, else none.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use execnet::Token;
    ///
    /// let path = std::env::temp_dir().join(format!("execnet-doc-client-{}", std::process::id()));
    /// std::fs::write(&path, "s3cret\n")?;
    /// let token = Token::for_client(path.to_str())?.expect("from the file");
    /// assert_eq!(token.as_str(), "s3cret");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn for_client(token_file: Option<&str>) -> io::Result<Option<Token>> {
        if let Some(path) = token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("token_file={path}: {e}")))?;
            return Token::new(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("token_file={path} is empty"),
                )
            });
        }
        Ok(std::env::var("EXECNET_TOKEN")
            .ok()
            .and_then(|t| Token::new(&t)))
    }

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fresh random bytes from the operating system.
fn random<const N: usize>() -> io::Result<[u8; N]> {
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

/// The client side: answer the server's challenge and check its proof.
///
/// # Examples
///
/// A server that requires no token (`execnet serve --insecure-no-auth`):
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::handshake::{client_handshake, ServerHello};
///
/// let hello = ServerHello::new(false)?.to_bytes();
/// let (mut from_server, mut to_server) = (&hello[..], Vec::new());
/// futures_lite::future::block_on(client_handshake(&mut from_server, &mut to_server, None))?;
/// assert!(to_server.is_empty(), "nothing to prove");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub async fn client_handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    token: Option<&Token>,
) -> Result<(), AuthError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut hello = [0u8; SERVER_HELLO_LEN];
    reader
        .read_exact(&mut hello)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                AuthError::Protocol("the server closed the connection before its hello".into())
            }
            _ => AuthError::Io(e),
        })?;
    let hello = ServerHello::parse(&hello)?;
    if !hello.auth_required {
        return Ok(());
    }
    let Some(token) = token else {
        return Err(AuthError::Refused(
            "the server requires a token: give token_file= or set EXECNET_TOKEN".into(),
        ));
    };
    let answer = ClientAnswer::new(token, &hello.nonce)?;
    writer.write_all(&answer.to_bytes()).await?;
    writer.flush().await?;
    let mut proof = [0u8; MAC_LEN];
    reader
        .read_exact(&mut proof)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                AuthError::Refused("the server rejected our token (wrong token?)".into())
            }
            _ => AuthError::Io(e),
        })?;
    token
        .mac(SERVER_LABEL, &hello.nonce, &answer.nonce)
        .verify_slice(&proof)
        .map_err(|_| AuthError::Refused("the server does not know our token".into()))
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
    fn a_server_that_is_not_execnet_is_named() {
        let mut stream = &b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"[..];
        let err =
            futures_lite::future::block_on(client_handshake(&mut stream, &mut Vec::new(), None))
                .expect_err("not a server of ours");
        assert!(
            err.to_string().contains("not an execnet socket server"),
            "{err}"
        );
    }
}
