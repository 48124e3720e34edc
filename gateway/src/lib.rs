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
//! - [`session::Session`] is the sans-IO multiplexer underneath (channel
//!   table, close semantics, credit flow control); one driver task per
//!   gateway moves its bytes, on a library-owned background thread, so the
//!   async API works on any executor.
//!
//! # Example
//!
//! ```
//! use execnet_gateway::Gateway;
//!
//! # futures_lite::future::block_on(async {
//! let gw = Gateway::open("popen").await?;
//! let ch = gw.remote_exec("import sys; channel.send(sys.version_info[0])").await?;
//! assert_eq!(ch.receive::<u32>().await?, 3);
//! gw.exit().await?;
//! # Ok::<_, execnet_gateway::Error>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod auth;
mod bootstrap;
mod channel;
mod code;
mod error;
mod gateway;
mod route;
mod runtime;
pub mod server;
pub mod session;
mod session_fuzz;
mod shared;
mod socket;
mod ssh;

pub use auth::Token;
pub use bootstrap::{python_command, worker_argv, LOADER, WORKER};
pub use channel::Channel;
pub use code::RemoteCode;
pub use error::{Error, RemoteError, Result, Step};
pub use execnet_transport::Transport;
pub use execnet_wire::{from_value, to_value, Value};
pub use execnet_xspec::XSpec;
pub use gateway::{Gateway, Options, RInfo, RemoteStatus};
pub use session_fuzz::{fuzz_handshake, fuzz_session};
