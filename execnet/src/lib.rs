//! execnet for Rust: run code in fresh Python processes — locally, over ssh,
//! behind a socket — with nothing installed on the far side, and talk to it
//! over fast, multiplexed, flow-controlled channels.
//!
//! # Brief overview
//!
//! - A [`Gateway`] is a connection to a fresh Python interpreter (`popen`: a
//!   local child process). Opening it ships our small stdlib-only worker
//!   over the process's own stdin: no install step on the far side.
//! - [`Gateway::remote_exec`] runs Python source there and returns a
//!   [`Channel`]; both sides `send` and `receive` values ([`Value`]: None,
//!   bool, any-size int, float, complex, bytes, str, list, tuple, dict, set,
//!   frozenset, channel), or any serde type. Remote code sees execnet's
//!   `channel` API, so execnet snippets run unchanged.
//! - An [`XSpec`] string (`popen//python=python3//chdir=work//id=a`) says
//!   where and how.
//! - The API is async on any executor; [`blocking`] has the same API without
//!   `async`.
//!
//! # Example (async)
//!
//! ```
//! use execnet::Gateway;
//!
//! # futures_lite::future::block_on(async {
//! let gw = Gateway::open("popen").await?;
//! let ch = gw.remote_exec("for x in channel: channel.send(x * x)").await?;
//! for i in 0..3 {
//!     ch.send(&i).await?;
//!     assert_eq!(ch.receive::<i64>().await?, i * i);
//! }
//! gw.exit().await?;
//! # Ok::<_, execnet::Error>(()) }).unwrap();
//! ```
//!
//! # Example (blocking)
//!
//! ```
//! use execnet::blocking::Gateway;
//!
//! let gw = Gateway::open("popen")?;
//! let ch = gw.remote_exec("import os; channel.send(os.getpid())")?;
//! let pid: u32 = ch.receive()?;
//! assert_eq!(Some(pid), gw.pid());
//! gw.exit()?;
//! # Ok::<_, execnet::Error>(())
//! ```
//!
//! # Features
//!
//! - `socket`: `socket=HOST:PORT` gateways (`SocketTransport`, `Token`, the
//!   `handshake` module), with their HMAC-SHA256 (hmac, sha2, getrandom).
//! - `server`: the socket server, as `execnet::server` (implies `socket`).
//! - `cli` (default): the `execnet` command line (implies `server`; brings
//!   clap and serde_json).
//!
//! With `default-features = false`, popen and ssh gateways work and none of
//! the crates above is compiled; a `socket=` spec is then an error that
//! names the feature.
//!
//! # Layers
//!
//! The facade re-exports the layer crates: [`xspec`] (the spec string),
//! [`proto`] (the sans-IO session), [`transport`] (byte streams and the
//! [`Transport`] trait), and the types of `execnet-gateway` and
//! `execnet-multichannel` at its root.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod blocking;
#[cfg(feature = "rsync")]
pub mod rsync;

#[cfg(feature = "socket")]
pub use execnet_gateway::{handshake, SocketTransport, Token};
pub use execnet_gateway::{
    Channel, Error, Gateway, Options, PeerMisbehaved, RInfo, RemoteCode, RemoteError, RemoteStatus,
    Result, Step, LOADER,
};
pub use execnet_multichannel::{Group, MultiChannel, ReceiveQueue};
pub use execnet_proto as proto;
#[cfg(feature = "server")]
pub use execnet_server as server;
pub use execnet_transport as transport;
pub use execnet_transport::Transport;
pub use execnet_wire::{
    from_value, to_value, ChannelRef, Complex, DecodeError, EncodeError, Int, Item, Value,
    ValueError,
};
pub use execnet_xspec as xspec;
pub use execnet_xspec::XSpec;
