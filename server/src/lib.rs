//! The execnet socket server (`execnet serve`): fresh Python workers over
//! TCP for clients that pass an HMAC-SHA256 challenge–response over a
//! shared token.
//!
//! # Brief overview
//!
//! - [`Server`] listens (loopback by default in the CLI), runs the
//!   [`server_handshake`] with every connection (bounded in time; at most
//!   [`MAX_PENDING`] at once, beyond that one evicted at random), and only then
//!   starts a worker (`python3 -c LOADER`) whose stdin/stdout it relays.
//!   A connection that fails the handshake is closed with nothing run.
//! - The handshake's messages and the client's half live in
//!   `execnet::handshake` (a `socket=` gateway needs them); this
//!   crate adds the server's half. A program that only opens popen or ssh
//!   gateways compiles neither (`execnet` without its `socket` feature).
//!
//! # Example
//!
//! ```
//! # mod execnet { pub mod server { pub use execnet_server::*; } pub use execnet_gateway::{handshake, Gateway, SocketTransport, Token, XSpec}; }
//! use execnet::{Gateway, SocketTransport, Token, XSpec};
//! use execnet::server::Server;
//!
//! # futures_lite::future::block_on(async {
//! let token = Token::generate()?;
//! let server = Server::bind("127.0.0.1:0", Some(token.clone()))?;
//! let addr = server.local_addr()?.to_string();
//! std::thread::spawn(move || futures_lite::future::block_on(server.run()));
//!
//! let transport = SocketTransport::new(addr.clone(), Some(token));
//! let gw = Gateway::from_transport(transport, XSpec::parse(&format!("socket={addr}"))?, "gw0").await?;
//! let ch = gw.remote_exec("channel.send('served')").await?;
//! assert_eq!(ch.receive::<String>().await?, "served");
//! gw.exit().await?;
//! # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod fuzz;
mod handshake;
mod server;

#[doc(hidden)]
pub use fuzz::fuzz_handshake;
pub use handshake::server_handshake;
pub use server::{raise_fd_limit, Server, MAX_PENDING};
