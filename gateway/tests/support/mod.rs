//! Helpers shared by the gateway's integration tests; each test binary uses
//! part of them.
#![allow(dead_code)]

pub mod procs;
pub mod sshd;

use execnet_gateway::{Error, Gateway, Step};
use futures_lite::future::block_on;

/// A gateway opened from `spec`, or the test fails.
pub fn open(spec: &str) -> Gateway {
    block_on(Gateway::open(spec)).expect("gateway opens")
}

/// The step and message of an open that had to fail.
pub fn bootstrap_error(result: Result<Gateway, Error>) -> (Step, String) {
    match result {
        Err(Error::Bootstrap { step, message, .. }) => (step, message),
        Err(other) => panic!("expected a bootstrap error, got {other:?}"),
        Ok(gw) => panic!("expected an error, opened {gw:?}"),
    }
}
