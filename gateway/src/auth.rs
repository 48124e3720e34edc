//! The socket server handshake: a mutual HMAC-SHA256 challenge–response over
//! a shared token, before any worker is started (see `wire/WIRE.md`,
//! "Socket server handshake").

use std::io;
use std::path::Path;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The first bytes the server sends.
const SERVER_MAGIC: &[u8; 4] = b"EXNS";
/// The first bytes of the client's answer.
const CLIENT_MAGIC: &[u8; 4] = b"EXNC";
/// The handshake version.
const VERSION: u8 = 1;
/// Flag bit of the server hello: a token is required.
const FLAG_AUTH: u8 = 1;
const NONCE: usize = 32;
const MAC: usize = 32;
/// Server hello: magic, version, flags, nonce.
const SERVER_HELLO: usize = 4 + 1 + 1 + NONCE;
/// Client answer: magic, version, nonce, MAC.
const CLIENT_ANSWER: usize = 4 + 1 + NONCE + MAC;

/// How long a server waits for a client to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// A shared secret: the token file's contents without surrounding whitespace.
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
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Token(hex(&bytes).into_bytes()))
    }

    /// The token as text (to write into a token file).
    pub fn as_str(&self) -> &str {
        // Built from &str or hex only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Read the token in `path`; if `path` does not exist, write a fresh one
    /// there (mode 0600) and return it.
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
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut n = [0u8; NONCE];
    getrandom::fill(&mut n).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(n)
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum AuthError {
    /// The peer does not know the token (or we have none and it wants one).
    Refused(String),
    /// The peer does not speak this handshake.
    Protocol(String),
    /// Reading or writing failed.
    Io(io::Error),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Refused(m) | AuthError::Protocol(m) => f.write_str(m),
            AuthError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The server side: send the challenge, check the answer, prove we know the
/// token too. `token: None` (`--insecure-no-auth`) accepts everybody.
pub async fn server_handshake<S>(stream: &mut S, token: Option<&Token>) -> Result<(), AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ns = nonce().map_err(AuthError::Io)?;
    let mut hello = Vec::with_capacity(SERVER_HELLO);
    hello.extend_from_slice(SERVER_MAGIC);
    hello.push(VERSION);
    hello.push(if token.is_some() { FLAG_AUTH } else { 0 });
    hello.extend_from_slice(&ns);
    stream.write_all(&hello).await.map_err(AuthError::Io)?;
    stream.flush().await.map_err(AuthError::Io)?;
    let Some(token) = token else {
        return Ok(());
    };
    let mut answer = [0u8; CLIENT_ANSWER];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                AuthError::Refused("the client closed before answering".into())
            }
            _ => AuthError::Io(e),
        })?;
    if &answer[..4] != CLIENT_MAGIC || answer[4] != VERSION {
        return Err(AuthError::Protocol(format!(
            "not an execnet handshake (it began {:?})",
            String::from_utf8_lossy(&answer[..5])
        )));
    }
    let nc = &answer[5..5 + NONCE];
    let theirs = &answer[5 + NONCE..];
    token
        .mac(b"execnet client", &ns, nc)
        .verify_slice(theirs)
        .map_err(|_| AuthError::Refused("wrong token".into()))?;
    let proof = token
        .mac(b"execnet server", &ns, nc)
        .finalize()
        .into_bytes();
    stream.write_all(&proof).await.map_err(AuthError::Io)?;
    stream.flush().await.map_err(AuthError::Io)?;
    Ok(())
}

/// The client side: answer the server's challenge and check its proof.
pub async fn client_handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    token: Option<&Token>,
) -> Result<(), AuthError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut hello = [0u8; SERVER_HELLO];
    reader
        .read_exact(&mut hello)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                AuthError::Protocol("the server closed the connection before its hello".into())
            }
            _ => AuthError::Io(e),
        })?;
    if &hello[..4] != SERVER_MAGIC || hello[4] != VERSION {
        return Err(AuthError::Protocol(format!(
            "not an execnet socket server (it began {:?})",
            String::from_utf8_lossy(&hello[..5])
        )));
    }
    if hello[5] & FLAG_AUTH == 0 {
        return Ok(());
    }
    let Some(token) = token else {
        return Err(AuthError::Refused(
            "the server requires a token: give token_file= or set EXECNET_TOKEN".into(),
        ));
    };
    let ns = &hello[6..];
    let nc = nonce().map_err(AuthError::Io)?;
    let mut answer = Vec::with_capacity(CLIENT_ANSWER);
    answer.extend_from_slice(CLIENT_MAGIC);
    answer.push(VERSION);
    answer.extend_from_slice(&nc);
    answer.extend_from_slice(
        &token
            .mac(b"execnet client", ns, &nc)
            .finalize()
            .into_bytes(),
    );
    writer.write_all(&answer).await.map_err(AuthError::Io)?;
    writer.flush().await.map_err(AuthError::Io)?;
    let mut proof = [0u8; MAC];
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
        .mac(b"execnet server", ns, &nc)
        .verify_slice(&proof)
        .map_err(|_| AuthError::Refused("the server does not know our token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<(), AuthError>;

    /// Run both sides over a socket pair.
    fn run(server: Option<&Token>, client: Option<&Token>) -> (Outcome, Outcome) {
        let (s, c) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let s = async_io::Async::new(s).expect("async");
        let c = async_io::Async::new(c).expect("async");
        futures_lite::future::block_on(futures_lite::future::zip(
            async move {
                let mut s = s;
                server_handshake(&mut s, server).await
            },
            async move {
                let r = client_handshake(&mut &c, &mut &c, client).await;
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
        let (s, c) = run(Some(&a), None);
        assert!(matches!(c, Err(AuthError::Refused(_))), "{c:?}");
        assert!(s.is_err());
    }

    #[test]
    fn no_auth_server_needs_no_token() {
        let (s, c) = run(None, None);
        assert!(s.is_ok() && c.is_ok());
    }
}
