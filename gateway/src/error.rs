use std::fmt;
use std::time::Duration;

use execnet_transport::TransportError;
use execnet_wire::{DecodeError, EncodeError, ValueError};
use execnet_xspec::ParseError;
use thiserror::Error;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An exception raised by remote code, with its full traceback.
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

/// The step of opening a gateway that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Starting the local process (interpreter or ssh client).
    Spawn,
    /// Resolving the remote host.
    Host,
    /// Connecting to the remote host or server.
    Connect,
    /// Authenticating (ssh keys, the socket server's token).
    Auth,
    /// Starting the remote interpreter (missing, too old, crashed).
    Interpreter,
    /// Exchanging the hello with the worker.
    Handshake,
    /// Routing through another gateway (`via=`, `installvia=`).
    Route,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Spawn => "spawn",
            Step::Host => "host",
            Step::Connect => "connect",
            Step::Auth => "authentication",
            Step::Interpreter => "interpreter",
            Step::Handshake => "handshake",
            Step::Route => "route",
        })
    }
}

/// Everything that can go wrong.
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
    /// The peer sent bytes that are not valid protocol.
    #[error("protocol error: {0}")]
    Decode(#[from] DecodeError),
    /// A group already has a gateway with this id.
    #[error("gateway id {0:?} is already used in this group")]
    DuplicateId(String),
    /// A channel handle of another gateway was sent.
    #[error("channel {0} belongs to another gateway")]
    ForeignChannel(u32),
    /// A transport failed outside of opening.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// An IO error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The remote error, if this is one.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }
}
