//! execnet gateways: start a worker with nothing installed on the far side,
//! run code in it, and talk to that code over multiplexed channels.
//!
//! # Brief overview
//!
//! - [`Gateway`] is a connection to a fresh Python interpreter. Opening one
//!   starts `python3 -c LOADER`, ships the stdlib-only worker
//!   ([`WORKER`]) over the process's own stdin, and waits for its hello.
//! - [`Gateway::remote_exec`] runs Python source in the worker and returns a
//!   [`Channel`]; the remote code sees execnet's `channel` API.
//! - The sans-IO session of `execnet-proto` multiplexes the channels
//!   (channel table, close semantics, credit flow control); one driver per
//!   gateway moves its bytes, on a library-owned background thread, so the
//!   async API works on any executor.
//! - A spec's kind picks the [`Transport`]: a local command (`popen`), the
//!   system ssh client (`ssh=`), or, with the `socket` feature (on by
//!   default), a `SocketTransport` to an `execnet serve` server that first
//!   passes its HMAC `handshake`. [`Gateway::from_transport`] takes any
//!   other.
//!
//! # Example
//!
//! ```
//! # use execnet_gateway as execnet;
//! use execnet::Gateway;
//!
//! # futures_lite::future::block_on(async {
//! let gw = Gateway::open("popen").await?;
//! let ch = gw.remote_exec("import sys; channel.send(sys.version_info[0])").await?;
//! assert_eq!(ch.receive::<u32>().await?, 3);
//! gw.exit().await?;
//! # Ok::<_, execnet::Error>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod bootstrap;
mod callback;
mod channel;
mod code;
mod code_cache;
mod driver;
mod error;
mod gateway;
mod open;
mod registry;
mod route;
mod runtime;
#[cfg(feature = "socket")]
mod socket;
mod spawn;
mod stderr;
mod stream;

pub use bootstrap::{python_command, worker_argv, LOADER, WORKER};
pub use channel::Channel;
pub use code::RemoteCode;
pub use error::{Error, RemoteError, Result};
pub use execnet_proto::PeerMisbehaved;
pub use execnet_transport as transport;
pub use execnet_transport::{Step, Transport};
pub use execnet_wire::{from_value, to_value, Item, Value};
pub use execnet_xspec::XSpec;
pub use gateway::{Gateway, Options, RInfo, RemoteStatus};
#[cfg(feature = "socket")]
pub use socket::{
    handshake::{self, Token},
    SocketTransport,
};
