//! The shared token of the socket server: where it comes from (a file, the
//! environment, fresh random bytes) and what makes it fit to guard a server
//! that runs code (private to its owner, long enough not to be guessed).

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The least a token must hold, by the estimate of [`Token::strength_bits`]:
/// the server answers every guess, so a short token falls to guessing (the
/// six letters of `secret` in about a second).
pub const MIN_TOKEN_BITS: u32 = 128;

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
/// let fresh = Token::generate()?;
/// assert_eq!(fresh.as_str().len(), 64);
/// assert_eq!(fresh.strength_bits(), 256);
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Token(pub(crate) Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token cannot be used. Each message says what to do about it.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::handshake::TokenError;
/// use execnet::Token;
///
/// let err = Token::new("secret").unwrap().check_strength("EXECNET_TOKEN").unwrap_err();
/// assert!(matches!(err, TokenError::Weak { .. }));
/// assert!(err.to_string().contains("at least 128"), "{err}");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file cannot be read (missing, no permission, …).
    #[error("cannot read the token file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("the token file {} is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Group or others may read or write the file, as OpenSSH refuses a
    /// private key: a reader may run code wherever the token is accepted, a
    /// writer chooses the token.
    #[error(
        "the token file {} is open to others (mode {mode:04o}): whoever can read it can run \
         code wherever it is accepted, and whoever can write it chooses the token; \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Loose {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to another user, who can change it at will.
    #[error(
        "the token file {} belongs to user id {owner}, not to this user (id {user}): its owner \
         can change the token at will; use a token file of your own (mode 600)",
        path.display()
    )]
    NotOwned {
        /// The file.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
        /// Ours.
        user: u32,
    },
    /// Too short to resist guessing.
    #[error(
        "the token from {source_name} is too weak to guard a server that runs code: about \
         {bits} bits, at least {MIN_TOKEN_BITS} are needed (32 random hex digits; \
         `execnet serve --token-file F` writes a fresh 256-bit token to F when it does not \
         exist, or use `openssl rand -hex 32`)"
    )]
    Weak {
        /// Where the token came from (`"token file /x"`, `"EXECNET_TOKEN"`).
        source_name: String,
        /// Its estimated strength.
        bits: u32,
    },
    /// A fresh token could not be made or written.
    #[error("cannot create the token file {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl Token {
    /// A token from text; `None` if it is empty (after trimming). Its
    /// strength is not checked here: see [`Token::check_strength`].
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.as_bytes().to_vec()))
    }

    /// A fresh random token: 256 bits from the OS, as 64 hex digits.
    pub fn generate() -> io::Result<Token> {
        let bytes: [u8; 32] = super::handshake::random()?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Token(hex.into_bytes()))
    }

    /// The token as text (to write into a token file).
    pub fn as_str(&self) -> &str {
        // Built from &str or hex only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// How many bits of guessing the token's text can resist at most: its
    /// length times what each character can carry in the smallest usual
    /// alphabet that holds them all (4 bits for hex digits, 6 for base64,
    /// 6.5 for any printable text). An estimate from above: a word or a
    /// pattern holds far less.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use execnet::Token;
    ///
    /// assert_eq!(Token::new(&"ab12".repeat(8)).unwrap().strength_bits(), 128); // 32 hex digits
    /// assert!(Token::new("secret").unwrap().strength_bits() < 40);
    /// ```
    pub fn strength_bits(&self) -> u32 {
        let all = |f: fn(&u8) -> bool| self.0.iter().all(f);
        // Bits per character, in tenths.
        let tenths: u64 = if all(u8::is_ascii_digit) {
            33
        } else if all(u8::is_ascii_hexdigit) {
            40
        } else if all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(b)) {
            60
        } else {
            65
        };
        let bits = self.0.len() as u64 * tenths / 10;
        u32::try_from(bits).unwrap_or(u32::MAX)
    }

    /// Whether the token is long enough ([`MIN_TOKEN_BITS`]); `source_name`
    /// says where it came from, for the error.
    pub fn check_strength(&self, source_name: &str) -> Result<(), TokenError> {
        let bits = self.strength_bits();
        if bits < MIN_TOKEN_BITS {
            return Err(TokenError::Weak {
                source_name: source_name.to_string(),
                bits,
            });
        }
        Ok(())
    }

    /// Read the token in the file `path`, which must be this user's and
    /// closed to others (as OpenSSH requires of a private key), and hold a
    /// strong enough token.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::os::unix::fs::PermissionsExt;
    /// use execnet::{handshake::TokenError, Token};
    ///
    /// let path = std::env::temp_dir().join(format!("execnet-doc-read-{}", std::process::id()));
    /// std::fs::write(&path, format!("{}\n", Token::generate()?.as_str()))?;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    /// let err = Token::from_file(&path).unwrap_err();
    /// assert!(matches!(err, TokenError::Loose { mode: 0o644, .. }));
    /// assert!(err.to_string().contains("chmod 600"));
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    /// assert_eq!(Token::from_file(&path)?.strength_bits(), 256);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        use std::os::unix::fs::MetadataExt;
        let unreadable = |source| TokenError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        // Check the file that is read (one open), not a name that could
        // change in between.
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        let user = rustix::process::geteuid().as_raw();
        if meta.uid() != user {
            return Err(TokenError::NotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                user,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TokenError::Loose {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(unreadable)?;
        let token = Token::new(&text).ok_or_else(|| TokenError::Empty {
            path: path.to_path_buf(),
        })?;
        token.check_strength(&format!("token file {}", path.display()))?;
        Ok(token)
    }

    /// Read the token in `path` ([`Token::from_file`]); if `path` does not
    /// exist, write a fresh 256-bit one there (mode 0600), say so in the log
    /// (info), and return it.
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
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_or_create(path: &Path) -> Result<Token, TokenError> {
        use std::os::unix::fs::OpenOptionsExt;
        match Token::from_file(path) {
            Err(TokenError::Unreadable { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                let create = |source| TokenError::Create {
                    path: path.to_path_buf(),
                    source,
                };
                let token = Token::generate().map_err(create)?;
                // create_new: never through a file (or link) someone else
                // put there meanwhile.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(create)?;
                std::io::Write::write_all(&mut file, format!("{}\n", token.as_str()).as_bytes())
                    .map_err(create)?;
                log::info!(
                    "created the token file {} with a fresh random 256-bit token (mode 600); \
                     clients give it with token_file= or EXECNET_TOKEN",
                    path.display()
                );
                Ok(token)
            }
            other => other,
        }
    }

    /// The token in `EXECNET_TOKEN`, if set: `None` when unset (or empty),
    /// an error when too weak.
    pub fn from_env() -> Result<Option<Token>, TokenError> {
        let Ok(text) = std::env::var("EXECNET_TOKEN") else {
            return Ok(None);
        };
        let Some(token) = Token::new(&text) else {
            return Ok(None); // set to nothing: as if unset
        };
        token.check_strength("EXECNET_TOKEN")?;
        Ok(Some(token))
    }

    /// The client's token: the file `token_file` if given
    /// ([`Token::from_file`]: private, strong enough), else `EXECNET_TOKEN`
    /// ([`Token::from_env`]), else none.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::os::unix::fs::OpenOptionsExt;
    /// use execnet::Token;
    ///
    /// let path = std::env::temp_dir().join(format!("execnet-doc-client-{}", std::process::id()));
    /// let secret = "0123456789abcdef".repeat(4);
    /// let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    /// std::io::Write::write_all(&mut file, secret.as_bytes())?;
    /// let token = Token::for_client(path.to_str())?.expect("from the file");
    /// assert_eq!(token.as_str(), secret);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_client(token_file: Option<&str>) -> Result<Option<Token>, TokenError> {
        match token_file {
            Some(path) => Token::from_file(Path::new(path)).map(Some),
            None => Token::from_env(),
        }
    }
}
