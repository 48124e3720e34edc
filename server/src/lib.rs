//! The execnet socket server.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod fuzz;
mod server;

pub use fuzz::fuzz_handshake;
pub use server::{Server, MAX_PENDING};
