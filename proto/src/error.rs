//! The errors of the session: what a local call can run into, how a peer can
//! break the protocol, and why a connection ended.

use execnet_wire::{DecodeError, EncodeError};
use thiserror::Error;

/// Why a local session operation failed. (How the peer can fail is
/// [`PeerMisbehaved`], what [`Session::handle_input`](crate::Session::handle_input)
/// returns.)
///
/// Deliberately exhaustive, like [`Loss`]: the IO layer converts each
/// variant into its own error type, and a new one must not slip through a
/// catch-all arm.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Pair, SessionError};
/// use execnet_wire::Item;
///
/// let mut pair = Pair::default();
/// let ch = pair.opener.exec("").unwrap();
/// pair.opener.close(ch, None).unwrap();
/// let item = Item::encode(&()).unwrap();
/// assert_eq!(pair.opener.send(ch, item), Err(SessionError::SendClosed(ch)));
/// ```
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SessionError {
    /// Sending on (or closing with data for) a channel that is closed.
    #[error("cannot send on channel {0}: it is closed")]
    SendClosed(u32),
    /// The connection has ended.
    #[error("{0}")]
    Lost(Loss),
    /// The item cannot be encoded (too large for the peer's frame limit,
    /// unhashable key, too deep).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// How a peer broke the protocol (`WIRE.md`: the session rules). Each variant
/// names one rule, so that a caller can tell a wrong version from garbage
/// without reading the message.
///
/// # Examples
///
/// ```
/// use execnet_proto::PeerMisbehaved;
/// use execnet_wire::{Decoder, DecodeError};
///
/// // A decoder's error is one way a peer misbehaves.
/// let mut decoder = Decoder::new(1024);
/// decoder.feed(&u32::MAX.to_le_bytes());
/// let err: PeerMisbehaved = decoder.next_frame().unwrap_err().into();
/// assert!(matches!(err, PeerMisbehaved::Decode(DecodeError::FrameTooLarge { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// Bytes that are not valid frames: the decoder's typed error.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The first message was not a `Hello`.
    #[error("the first message must be a Hello, got {got}")]
    FirstNotHello {
        /// The kind of message that came instead, e.g. `"ChannelData"`.
        got: &'static str,
    },
    /// A `Hello` without execnet's magic bytes.
    #[error("the Hello has magic {magic:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// What the peer sent.
        magic: [u8; 4],
        /// [`MAGIC`](execnet_wire::MAGIC).
        expected: [u8; 4],
    },
    /// The peer speaks another protocol version.
    #[error("the peer speaks protocol version {theirs}, this end speaks {ours}")]
    VersionMismatch {
        /// The peer's version.
        theirs: u32,
        /// [`PROTOCOL_VERSION`](execnet_wire::PROTOCOL_VERSION).
        ours: u32,
    },
    /// A second `Hello`.
    #[error("a second Hello")]
    SecondHello,
    /// An item on a channel after the same peer closed it.
    #[error("data on channel {channel} after its sender closed it")]
    DataAfterClose {
        /// The channel.
        channel: u32,
    },
    /// An item names a channel that would take the table past
    /// [`MAX_CHANNELS`](crate::MAX_CHANNELS) open channels.
    #[error("an item names channel {channel} beyond the limit of {max} open channels")]
    TooManyChannels {
        /// The channel named.
        channel: u32,
        /// The limit.
        max: usize,
    },
    /// The peer sent an item on a channel whose credit window it had used
    /// up (`WIRE.md` section 5): it ignores flow control, and holding on
    /// would let it grow our memory without bound.
    #[error(
        "channel {channel}: an item of {bytes} bytes arrived after the peer had used up \
         the {window}-byte credit window; {over} bytes past the window"
    )]
    CreditOverrun {
        /// The channel.
        channel: u32,
        /// The window this end grants per channel.
        window: u64,
        /// The cost of the item that overran it.
        bytes: u64,
        /// How far past the window the peer would be with this item.
        over: u64,
    },
    /// The worker sent a message that only the opener may send
    /// (`ChannelExec`, `Status`, `Terminate`).
    #[error("the worker sent {message}, which only the opener may send")]
    OpenerOnly {
        /// The kind of message, e.g. `"ChannelExec"`.
        message: &'static str,
    },
}

/// Why a connection ended; every channel of the session reports it.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Loss, PeerMisbehaved};
///
/// let loss = Loss::misbehaved("python3", PeerMisbehaved::SecondHello);
/// assert_eq!(loss.to_string(), "python3 broke the protocol: a second Hello");
/// assert_eq!(Loss::ended("the gateway was exited").to_string(), "the gateway was exited");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Loss {
    /// The byte stream ended or failed, or this end closed it: the IO
    /// layer's account of what happened (`"python3: the worker's stream
    /// ended"`).
    #[error("{0}")]
    Ended(String),
    /// The peer broke the protocol, so this end dropped the connection.
    #[error("{peer} broke the protocol: {error}")]
    Misbehaved {
        /// Who the peer is, for messages (`"python3"`, `"ssh host"`).
        peer: String,
        /// What it did.
        error: PeerMisbehaved,
    },
}

impl Loss {
    /// The stream ended or failed, as `reason` says.
    pub fn ended(reason: impl Into<String>) -> Loss {
        Loss::Ended(reason.into())
    }

    /// `peer` broke the protocol with `error`.
    pub fn misbehaved(peer: impl Into<String>, error: impl Into<PeerMisbehaved>) -> Loss {
        Loss::Misbehaved {
            peer: peer.into(),
            error: error.into(),
        }
    }
}
