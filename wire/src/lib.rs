//! The execnet wire format: [`Value`], the protocol [`Message`]s, the frame
//! codec and a sans-IO [`Decoder`].
//!
//! # Brief overview
//!
//! Everything that crosses a gateway's byte stream is a *frame*: a `u32`
//! little-endian body length, then one [`Message`] encoded with postcard's
//! conventions (varints, zigzag, enum tags as varints). Channel items are
//! [`Value`]s, execnet's self-describing type set (`None`, `bool`, `int` of
//! any size, `float`, `complex`, `bytes`, `str`, `list`, `tuple`, `dict`,
//! `set`, `frozenset`, channels). `wire/WIRE.md` specifies every byte.
//!
//! - [`encode_frame`] / [`encode_frame_limited`] append a frame to a reusable
//!   buffer and return the body length (the flow-control cost).
//! - [`Decoder`] takes bytes as they arrive and pops [`Frame`]s; it checks
//!   the announced length before making room, and reports malformed input as
//!   a [`DecodeError`], never by panicking. No IO, no clock.
//! - [`to_value`] / [`from_value`] convert between any serde type and
//!   [`Value`]; [`Value::repr`] prints a value as Python's `repr()`.
//!
//! # Example
//!
//! ```
//! use execnet_wire::{encode_frame, from_value, to_value, Decoder, Message};
//!
//! // Encode an item for channel 1.
//! let data = to_value(&(1u32, "two", vec![3.5])).unwrap();
//! let mut out = Vec::new();
//! let cost = encode_frame(&Message::ChannelData { channel: 1, data }, &mut out).unwrap();
//! assert_eq!(cost as usize, out.len() - 4);
//!
//! // Decode it on the other side, in whatever pieces the bytes arrive.
//! let mut decoder = Decoder::default();
//! decoder.feed(&out[..5]);
//! assert!(decoder.next_frame().unwrap().is_none());
//! decoder.feed(&out[5..]);
//! let frame = decoder.next_frame().unwrap().unwrap();
//! let Message::ChannelData { channel, data } = frame.message else { panic!() };
//! assert_eq!(channel, 1);
//! assert_eq!(data.repr(), "(1, 'two', [3.5])");
//! let item: (u32, String, Vec<f64>) = from_value(data).unwrap();
//! assert_eq!(item, (1, "two".to_owned(), vec![3.5]));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod de;
mod decode;
mod decoder;
mod encode;
mod error;
mod int;
mod message;
mod repr;
mod ser;
mod value;
mod visit;

pub use de::from_value;
pub use decode::decode_message;
pub use decoder::{fuzz_decode, quote_bytes, Decoder, Frame};
pub use encode::{encode_frame, encode_frame_limited, encoded_len};
pub use error::{DecodeError, EncodeError, ValueError};
pub use int::{Int, ParseIntError};
pub use message::{
    Call, Hello, Message, DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAGIC, MAX_DEPTH, PROTOCOL_VERSION,
};
pub use ser::{to_value, CHANNEL_NEWTYPE_NAME};
pub use value::{
    stash_channel_attachment, take_channel_attachment, Attachment, ChannelRef, Complex, Value,
};
