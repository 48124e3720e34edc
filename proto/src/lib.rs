//! The execnet protocol session: channels, close semantics and credit flow
//! control over the frames of [`execnet_wire`], as a sans-IO state machine.
//!
//! # Brief overview
//!
//! A gateway's byte stream carries many channels. [`Session`] is one end of
//! that stream: it allocates channel ids (odd for the [`Role::Opener`], even
//! for the [`Role::Worker`]), queues items within the credit the peer
//! granted, keeps received items until they are taken, and applies execnet's
//! close semantics (close, close with an error, last message, connection
//! lost). It does no IO, spawns nothing and reads no clock, so it depends on
//! the wire crate alone, and the same code can drive it from an async task
//! (the gateway's driver), a test, a fuzzer, or another worker
//! implementation.
//!
//! - [`Session::handle_input`] takes each decoded frame from the peer;
//!   a broken rule is a [`PeerMisbehaved`].
//! - [`Session::poll_transmit`] hands out the bytes to write,
//!   [`Session::poll_event`] what changed. The call order is written down at
//!   [`Session`], "Driving a session".
//! - [`Pair`] drives two sessions against each other in memory.
//!
//! # Example
//!
//! ```
//! use execnet_proto::{Loss, Pair, Recv};
//! use execnet_wire::Item;
//!
//! let mut pair = Pair::default();
//! let ch = pair.opener.exec("channel.send(channel.receive())").unwrap();
//! pair.drive().unwrap(); // the Hellos cross: now each side knows the other's window
//! pair.opener.send(ch, Item::encode("ping").unwrap()).unwrap();
//! pair.drive().unwrap();
//! let Recv::Item(item) = pair.worker.recv(ch) else { panic!("an item") };
//! assert_eq!(item.decode::<String>().unwrap(), "ping");
//!
//! // The worker dies: every channel ends with the reason.
//! pair.disconnect(Loss::ended("the worker was killed"));
//! assert_eq!(pair.opener.recv(ch), Recv::Lost(Loss::ended("the worker was killed")));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod error;
mod pair;
mod session;
mod session_fuzz;

pub use error::{Loss, PeerMisbehaved, SessionError};
pub use pair::{DriveError, Pair};
pub use session::{
    Event, PeerHello, Recv, Role, SendOutcome, Session, SessionConfig, MAX_CHANNELS,
};
#[doc(hidden)]
pub use session_fuzz::fuzz_session;
