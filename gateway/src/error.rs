use std::fmt;
use std::time::Duration;

use execnet_proto::{Loss, PeerMisbehaved, SessionError};
use execnet_transport::Step;
use execnet_wire::{EncodeError, ValueError};
use execnet_xspec::ParseError;
use thiserror::Error;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An exception raised by remote code, with its full traceback.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("raise ValueError(42)").await?;
/// let err = ch.receive::<i64>().await.unwrap_err();
/// let remote = err.as_remote().expect("the remote code raised");
/// assert_eq!(remote.summary(), "ValueError: 42");
/// assert!(remote.formatted().starts_with("Traceback"));
/// # gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteError {
    formatted: String,
}

impl RemoteError {
    /// A remote error with this traceback text.
    pub fn new(formatted: impl Into<String>) -> Self {
        Self {
            formatted: formatted.into(),
        }
    }

    /// The remote traceback, as Python formatted it.
    pub fn formatted(&self) -> &str {
        &self.formatted
    }

    /// The last line of the traceback (`"ValueError: 42"`).
    pub fn summary(&self) -> &str {
        self.formatted
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("")
    }
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RemoteError").field(&self.summary()).finish()
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.formatted.trim_end())
    }
}

impl std::error::Error for RemoteError {}

/// Everything that can go wrong.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use std::time::Duration;
/// use execnet::Error;
///
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("channel.receive()").await?;
/// match ch.receive_timeout::<i64>(Duration::from_millis(50)).await {
///     Err(Error::Timeout(after)) => assert_eq!(after, Duration::from_millis(50)),
///     other => panic!("expected a timeout, got {other:?}"),
/// }
/// gw.exit().await?;
/// // Every waiter of an exited gateway ends.
/// assert!(matches!(ch.receive::<i64>().await, Err(Error::ConnectionLost(_) | Error::Closed)));
/// # Ok::<_, Error>(()) }).unwrap();
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote code raised; `.formatted()` is the full remote traceback.
    #[error("remote error:\n{0}")]
    Remote(RemoteError),
    /// `receive_timeout` / `wait_close` ran out of time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// End of channel: it ended with no error (Python's `EOFError`).
    #[error("the channel is closed")]
    Closed,
    /// The worker or the connection died while the channel was open.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The worker (or whatever answered) broke the protocol, so the
    /// connection was dropped; `error` says which rule it broke (a
    /// malformed frame carries the decoder's typed error).
    #[error("connection lost: {peer} broke the protocol: {error}")]
    PeerMisbehaved {
        /// Who the peer is (`"python3"`, `"ssh host"`).
        peer: String,
        /// What it did.
        error: PeerMisbehaved,
    },
    /// Sending on a channel that is closed.
    #[error("cannot send on channel {0}: it is closed")]
    SendClosed(u32),
    /// `receive` on a channel whose items go to a callback.
    #[error("channel {0} has a callback: its items go there, not to receive()")]
    CallbackSet(u32),
    /// The spec string is malformed.
    #[error("bad spec: {0}")]
    Spec(#[from] ParseError),
    /// Opening the gateway failed at `step`.
    #[error("gateway {gateway}: {step} failed: {message}")]
    Bootstrap {
        /// The gateway id (or spec).
        gateway: String,
        /// The step that failed.
        step: Step,
        /// What happened, quoting what came back.
        message: String,
    },
    /// A value could not be converted to or from the requested Rust type.
    #[error("data format: {0}")]
    Value(#[from] ValueError),
    /// An item could not be encoded (too large, unhashable key, too deep).
    #[error("cannot send: {0}")]
    Encode(#[from] EncodeError),
    /// A group already has a gateway with this id.
    #[error("gateway id {0:?} is already used in this group")]
    DuplicateId(String),
    /// A channel handle of another gateway was sent.
    #[error("channel {0} belongs to another gateway")]
    ForeignChannel(u32),
    /// An IO error (e.g. no thread for a callback).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The remote error, if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("import json; json.loads('{')").await?;
    /// let err = ch.receive::<i64>().await.unwrap_err();
    /// let remote = err.as_remote().expect("the remote code raised");
    /// assert!(remote.summary().starts_with("json.decoder.JSONDecodeError"));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the gateway's connection is over: the worker died, the
    /// stream broke, the gateway exited ([`Error::ConnectionLost`]), or the
    /// peer broke the protocol ([`Error::PeerMisbehaved`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("import os; os._exit(3)").await?;
    /// let err = ch.receive::<i64>().await.unwrap_err();
    /// assert!(err.is_connection_lost(), "{err}");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost(_) | Error::PeerMisbehaved { .. }
        )
    }
}

impl From<Loss> for Error {
    fn from(loss: Loss) -> Error {
        match loss {
            Loss::Ended(reason) => Error::ConnectionLost(reason),
            Loss::Misbehaved { peer, error } => Error::PeerMisbehaved { peer, error },
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Error {
        match e {
            SessionError::SendClosed(id) => Error::SendClosed(id),
            SessionError::Lost(loss) => loss.into(),
            SessionError::Encode(e) => Error::Encode(e),
        }
    }
}
