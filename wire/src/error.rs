//! The errors of this crate: converting values, encoding and decoding.

use std::fmt;

use thiserror::Error;

/// A Rust value and a [`Value`](crate::Value) did not fit each other
/// ([`to_value`](crate::to_value), [`from_value`](crate::from_value),
/// [`Item::decode`](crate::Item::decode)).
///
/// # Examples
///
/// ```
/// use execnet_wire::{from_value, Item, Value, ValueError};
///
/// let err = from_value::<u8>(Value::from(300)).unwrap_err();
/// assert_eq!(err, ValueError::OutOfRange { value: "300".into(), target: "u8" });
/// let err = Item::encode("x").unwrap().decode::<i32>().unwrap_err();
/// assert_eq!(err.to_string(), "expected i32, found str 'x'");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ValueError {
    /// The value has another type than the one asked for.
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// What was asked for, e.g. `i32`, `tuple of 2 elements`.
        expected: String,
        /// What was there: the Python type and the start of its repr.
        found: String,
    },
    /// An integer does not fit the Rust integer type asked for.
    #[error("int {value} out of range for {target}")]
    OutOfRange {
        /// The integer, in decimal.
        value: String,
        /// The Rust type, e.g. `u8`.
        target: &'static str,
    },
    /// Containers nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH): such a
    /// value could not travel, and converting it would need unbounded stack.
    #[error("value nests deeper than {} containers", crate::MAX_DEPTH)]
    TooDeep,
    /// Decoding an item into a [`Value`](crate::Value) would take more memory
    /// than its budget (see [`Item::value_budget`](crate::Item::value_budget)).
    #[error(
        "the item would take more than its budget of {budget} bytes as a Value; \
         receive it as a typed Rust value instead (its cost is that type's), \
         or allow a larger budget"
    )]
    OverBudget {
        /// The budget, in bytes.
        budget: usize,
    },
    /// Any other error, from serde or a `Serialize`/`Deserialize` impl.
    #[error("{0}")]
    Custom(String),
}

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> ValueError {
        ValueError::Custom(msg.to_string())
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> ValueError {
        ValueError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> ValueError {
        ValueError::Mismatch {
            expected: exp.to_string(),
            found: unexp.to_string(),
        }
    }

    fn invalid_length(len: usize, exp: &dyn serde::de::Expected) -> ValueError {
        ValueError::Mismatch {
            expected: exp.to_string(),
            found: format!("{len} elements"),
        }
    }
}

/// A message or item could not be encoded.
///
/// # Examples
///
/// ```
/// use execnet_wire::{EncodeError, Item, Value};
///
/// // Python cannot hash a list: it cannot be a dict key.
/// let dict = Value::Dict(vec![(Value::List(vec![]), Value::None)]);
/// assert_eq!(
///     Item::from_value(&dict),
///     Err(EncodeError::Unhashable { found: "list", place: "dict key" })
/// );
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The body would be longer than the frame limit.
    #[error("message of {len} bytes is larger than the frame limit of {max} bytes")]
    FrameTooLarge {
        /// The body length the message needs.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A dict key or set element that Python cannot hash.
    #[error("a {found} cannot be a {place} (unhashable in Python)")]
    Unhashable {
        /// The Python type of the offending key or element, e.g. `list`.
        found: &'static str,
        /// `"dict key"`, `"set element"` or `"frozenset element"`.
        place: &'static str,
    },
    /// Containers nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("value nests deeper than {} containers", crate::MAX_DEPTH)]
    TooDeep,
    /// The Rust value could not be converted (its `Serialize` impl failed,
    /// or a channel id is out of range).
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// A byte stream that is not valid execnet wire format (see `WIRE.md`,
/// section 8). Offsets count from the first byte of the frame body (the byte
/// after the 4-byte length prefix).
///
/// To quote what the peer sent (e.g. a shell error instead of a `Hello`),
/// use [`Decoder::first_bytes`](crate::Decoder::first_bytes) and
/// [`quote_bytes`](crate::quote_bytes).
///
/// # Examples
///
/// ```
/// use execnet_wire::{decode_message, DecodeError};
///
/// // ChannelData on channel 1 holding a value with tag 99.
/// assert_eq!(
///     decode_message(&[5, 1, 99]),
///     Err(DecodeError::UnknownValueTag { tag: 99, offset: 2 })
/// );
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A frame announces a body longer than the receiver's maximum.
    #[error("frame announces {len} bytes, more than the limit of {max}")]
    FrameTooLarge {
        /// The announced body length.
        len: u32,
        /// The receiver's maximum frame size.
        max: u32,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {buffered} of {expected} bytes received")]
    Truncated {
        /// Bytes of the unfinished frame received (length prefix included).
        buffered: usize,
        /// Bytes the frame needs (length prefix included; 4 while the
        /// prefix itself is incomplete).
        expected: usize,
    },
    /// The frame body ended before the message did.
    #[error("frame body ends at byte {offset}, but the message needs {needed} more bytes")]
    UnexpectedEnd {
        /// Where the body ended.
        offset: usize,
        /// How many more bytes the field being read needs (at least).
        needed: usize,
    },
    /// A message tag this version does not know.
    #[error("unknown message tag {tag} at byte {offset}")]
    UnknownMessageTag {
        /// The tag.
        tag: u64,
        /// Where it starts.
        offset: usize,
    },
    /// A value tag this version does not know.
    #[error("unknown value tag {tag} at byte {offset}")]
    UnknownValueTag {
        /// The tag.
        tag: u64,
        /// Where it starts.
        offset: usize,
    },
    /// A varint longer than its type allows, or overflowing it.
    #[error("malformed varint at byte {offset} (too long or out of range)")]
    BadVarint {
        /// Where it starts.
        offset: usize,
    },
    /// A `str` that is not UTF-8.
    #[error("invalid UTF-8 in the string at byte {offset}")]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A bool byte other than 0 or 1.
    #[error("bool byte {byte:#04x} at byte {offset} is neither 0 nor 1")]
    BadBool {
        /// The byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// An `Option` tag byte other than 0 (none) or 1 (some).
    #[error("option byte {byte:#04x} at byte {offset} is neither 0 nor 1")]
    BadOption {
        /// The byte.
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// Containers nest deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error(
        "value at byte {offset} nests deeper than {} containers",
        crate::MAX_DEPTH
    )]
    TooDeep {
        /// Where the container that is one too deep starts.
        offset: usize,
    },
    /// A dict key or set element that Python cannot hash.
    #[error("a {found} at byte {offset} cannot be a dict key or set element (unhashable)")]
    Unhashable {
        /// Its Python type.
        found: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// Bytes left in the frame after the message.
    #[error("{extra} bytes left in the frame after the message, from byte {offset}")]
    TrailingBytes {
        /// Where the message ended.
        offset: usize,
        /// How many bytes are left.
        extra: usize,
    },
    /// A `Value` in a control message (`Hello` info, `Reconfigure`
    /// settings) would take more memory than the budget to decode.
    #[error("a value in the message would take more than {budget} bytes to decode")]
    ValueOverBudget {
        /// The budget, in bytes.
        budget: usize,
    },
    /// A count or length larger than the bytes left in the frame could hold.
    #[error("count {count} at byte {offset} is more than the {remaining} bytes left can hold")]
    CountTooLarge {
        /// The count or length read.
        count: u64,
        /// Bytes left in the frame after it.
        remaining: usize,
        /// Where the count starts.
        offset: usize,
    },
}
