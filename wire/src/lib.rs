//! The execnet wire format: [`Value`], the protocol [`Message`]s, the frame
//! codec and a sans-IO [`Decoder`].
//!
//! # Brief overview
//!
//! Everything that crosses a gateway's byte stream is a *frame*: a `u32`
//! little-endian body length, then one [`Message`] encoded by postcard (the
//! message types derive serde's traits). Channel items are [`Value`]s,
//! execnet's self-describing type set (`None`, `bool`, `int` of any size,
//! `float`, `complex`, `bytes`, `str`, `list`, `tuple`, `dict`, `set`,
//! `frozenset`, channels). `wire/WIRE.md` specifies every byte.
//!
//! - [`encode_frame`] / [`encode_frame_limited`] append a frame to a reusable
//!   buffer and return the body length (the flow-control cost).
//! - [`Decoder`] takes bytes as they arrive and pops [`Frame`]s; it checks
//!   the announced length before making room, and reports malformed input as
//!   a [`DecodeError`], never by panicking. No IO, no clock.
//! - An [`Item`] is one channel item in its wire form. [`Item::encode`] writes
//!   any `Serialize` type, [`Item::decode`] reads any `Deserialize` type
//!   straight from the bytes, with no [`Value`] in between; an [`ItemQueue`]
//!   holds received items at the cost of their bytes.
//! - [`to_value`] / [`from_value`] convert between any serde type and
//!   [`Value`]; [`Value::repr`] prints a value as Python's `repr()`.
//!
//! # Memory and depth
//!
//! Decoding a frame of `B` bytes allocates at most the frame plus a copy of
//! its item (about `2 × B` while both exist, `B` after): items stay in wire
//! form. Converting an item into the application's Rust type costs what that
//! type costs; into a [`Value`], at most [`Item::value_budget`] bytes (the
//! larger of 64 MiB and `4 × B`), checked before allocating. Values nest at
//! most [`MAX_DEPTH`] containers deep on the wire; every operation on a
//! deeper `Value` built locally is an error or cut short, never a stack
//! overflow (`Value`'s `Drop`, `Clone`, `PartialEq` and `Debug` do not
//! recurse).
//!
//! # Example
//!
//! ```
//! use execnet_wire::{encode_frame, Decoder, Item, Message};
//!
//! // Encode an item for channel 1.
//! let data = Item::encode(&(1u32, "two", vec![3.5])).unwrap();
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
//! assert_eq!(data.to_value().unwrap().repr(), "(1, 'two', [3.5])");
//! let item: (u32, String, Vec<f64>) = data.decode().unwrap();
//! assert_eq!(item, (1, "two".to_owned(), vec![3.5]));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod de;
mod decoder;
mod deep;
mod error;
mod frame;
mod int;
mod item;
mod item_de;
mod item_ser;
mod message;
mod queue;
mod repr;
mod ser;
mod tagged;
mod value;
mod visit;

pub use de::from_value;
#[doc(hidden)]
pub use decoder::fuzz_decode;
pub use decoder::{quote_bytes, Decoder, Frame};
pub use error::{DecodeError, EncodeError, ValueError};
pub use frame::{decode_message, encode_frame, encode_frame_limited, encoded_len};
pub use int::{Int, ParseIntError};
pub use item::{Item, DEFAULT_VALUE_BUDGET};
pub use message::{
    Call, Hello, Message, DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAGIC, MAX_DEPTH, PROTOCOL_VERSION,
};
pub use queue::ItemQueue;
pub use ser::to_value;
pub use value::{Attachment, ChannelRef, Complex, Value};
