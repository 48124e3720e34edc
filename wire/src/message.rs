//! The messages of the protocol (`WIRE.md`, section 4).
//!
//! The message types derive serde's traits, and postcard encodes them: the
//! variant order gives the tags, struct fields follow in order, integers
//! are varints, `[u8; 4]` is four raw bytes. A [`Value`] encodes as the
//! tagged enum of `WIRE.md` section 6 (its `Serialize` impl does that for
//! compact formats), an [`Item`] is a value already in that form.

use serde::{Deserialize, Serialize};

use crate::{Item, Value};

/// The magic bytes that open every `Hello`: `EXNT`.
pub const MAGIC: [u8; 4] = *b"EXNT";
/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The default receive window per channel, in bytes (8 MiB).
pub const DEFAULT_WINDOW: u64 = 8 * 1024 * 1024;
/// The default largest frame body accepted, in bytes (256 MiB). A
/// [`Decoder`](crate::Decoder) takes its limit as an argument
/// ([`Decoder::new`](crate::Decoder::new)); each side announces its own in
/// its [`Hello`], and the other side never sends a larger frame.
pub const DEFAULT_MAX_FRAME: u32 = 256 * 1024 * 1024;
/// How deep containers may nest inside a value (a container counts one level).
pub const MAX_DEPTH: usize = 200;

/// One protocol message; the variant order gives the wire tags 0 to 9.
///
/// Encode with [`encode_frame`](crate::encode_frame), decode with
/// [`Decoder`](crate::Decoder) or [`decode_message`](crate::decode_message);
/// `postcard::to_stdvec(&message)` gives the same body bytes.
///
/// # Examples
///
/// ```
/// use execnet_wire::{decode_message, encode_frame, Item, Message};
///
/// let msg = Message::ChannelData { channel: 3, data: Item::encode("hi").unwrap() };
/// assert_eq!(msg.tag(), 5);
/// assert_eq!((msg.name(), msg.channel()), ("ChannelData", Some(3)));
/// let mut frame = Vec::new();
/// encode_frame(&msg, &mut frame).unwrap();
/// assert_eq!(frame, [6, 0, 0, 0, 5, 3, 7, 2, b'h', b'i']);
/// assert_eq!(decode_message(&frame[4..]), Ok(msg));
/// ```
///
/// Deliberately exhaustive: a new message changes the protocol (and its
/// version), and every `match` on messages (the session, the codec) must
/// then fail to compile until it handles it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Tag 0: each side's first frame.
    Hello(Hello),
    /// Tag 1: the opener asks for the worker's status, answered on `channel`.
    Status {
        /// The channel the answer goes to.
        channel: u32,
    },
    /// Tag 2: settings for the rest of the session (a Dict).
    Reconfigure {
        /// The settings.
        settings: Value,
    },
    /// Tag 3: the worker stops.
    Terminate,
    /// Tag 4: run `source` with `channel` bound to the worker's end.
    ChannelExec {
        /// The channel.
        channel: u32,
        /// The code (Python source for the Python worker).
        source: String,
        /// The file name the code is compiled under, shown in tracebacks
        /// (`None`: the worker's default, `<remote exec>`).
        filename: Option<String>,
        /// A function `source` defines, called after it ran as
        /// `function(channel, **kwargs)`.
        call: Option<Call>,
    },
    /// Tag 5: one item on a channel.
    ChannelData {
        /// The channel.
        channel: u32,
        /// The item, in its wire form.
        data: Item,
    },
    /// Tag 6: the sender closed its end.
    ChannelClose {
        /// The channel.
        channel: u32,
    },
    /// Tag 7: the sender closed its end with an error.
    ChannelCloseError {
        /// The channel.
        channel: u32,
        /// The error text (a formatted traceback).
        error: String,
    },
    /// Tag 8: the sender will send no more items but still receives.
    ChannelLastMessage {
        /// The channel.
        channel: u32,
    },
    /// Tag 9: flow-control credit returned to the sender.
    Credit {
        /// The channel.
        channel: u32,
        /// Bytes of credit.
        bytes: u64,
    },
}

/// The function call a [`Message::ChannelExec`] asks for after running its
/// source: `function(channel, **kwargs)`.
///
/// # Examples
///
/// ```
/// use execnet_wire::{Call, Value};
///
/// let call = Call { function: "main".into(), kwargs: vec![("n".into(), Value::from(3))] };
/// assert_eq!(postcard::to_stdvec(&call).unwrap(), b"\x04main\x01\x01n\x02\x06");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The name of a function the source defines.
    pub function: String,
    /// Keyword arguments, in order. (Each value counts as one container
    /// deep, as it sits in the arguments.)
    #[serde(with = "crate::tagged::kwargs")]
    pub kwargs: Vec<(String, Value)>,
}

/// The handshake message each side sends first.
///
/// # Examples
///
/// ```
/// use execnet_wire::{Hello, Value, DEFAULT_MAX_FRAME, MAGIC};
///
/// let hello = Hello::new(1 << 20, DEFAULT_MAX_FRAME, Value::Dict(vec![]));
/// assert_eq!(hello.magic, MAGIC);
/// assert_eq!(Hello::default().window, execnet_wire::DEFAULT_WINDOW);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Must be [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    /// The receive window per channel the sender grants, in bytes.
    pub window: u64,
    /// The largest frame body the sender accepts.
    pub max_frame: u32,
    /// A Dict with str keys (see `WIRE.md`).
    pub info: Value,
}

impl Hello {
    /// A `Hello` with [`MAGIC`] and [`PROTOCOL_VERSION`].
    pub fn new(window: u64, max_frame: u32, info: Value) -> Hello {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            window,
            max_frame,
            info,
        }
    }
}

impl Default for Hello {
    /// [`DEFAULT_WINDOW`], [`DEFAULT_MAX_FRAME`], an empty info Dict.
    fn default() -> Hello {
        Hello::new(DEFAULT_WINDOW, DEFAULT_MAX_FRAME, Value::Dict(Vec::new()))
    }
}

impl Message {
    /// The wire tag of this message.
    pub fn tag(&self) -> u8 {
        match self {
            Message::Hello(_) => 0,
            Message::Status { .. } => 1,
            Message::Reconfigure { .. } => 2,
            Message::Terminate => 3,
            Message::ChannelExec { .. } => 4,
            Message::ChannelData { .. } => 5,
            Message::ChannelClose { .. } => 6,
            Message::ChannelCloseError { .. } => 7,
            Message::ChannelLastMessage { .. } => 8,
            Message::Credit { .. } => 9,
        }
    }

    /// The name of the message kind, e.g. `"ChannelData"`.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Status { .. } => "Status",
            Message::Reconfigure { .. } => "Reconfigure",
            Message::Terminate => "Terminate",
            Message::ChannelExec { .. } => "ChannelExec",
            Message::ChannelData { .. } => "ChannelData",
            Message::ChannelClose { .. } => "ChannelClose",
            Message::ChannelCloseError { .. } => "ChannelCloseError",
            Message::ChannelLastMessage { .. } => "ChannelLastMessage",
            Message::Credit { .. } => "Credit",
        }
    }

    /// The channel the message is about, if any (`Status` names the channel
    /// its answer goes to).
    pub fn channel(&self) -> Option<u32> {
        match self {
            Message::Hello(_) | Message::Reconfigure { .. } | Message::Terminate => None,
            Message::Status { channel }
            | Message::ChannelExec { channel, .. }
            | Message::ChannelData { channel, .. }
            | Message::ChannelClose { channel }
            | Message::ChannelCloseError { channel, .. }
            | Message::ChannelLastMessage { channel }
            | Message::Credit { channel, .. } => Some(*channel),
        }
    }
}
