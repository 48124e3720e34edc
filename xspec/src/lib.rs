//! The execnet spec string: `ssh=host//python=python3//chdir=work`.
//!
//! # Brief overview
//!
//! A spec tells execnet how to start a gateway: which transport (a local
//! subprocess with `popen`, a remote one with `ssh=ARGS`, or a socket server
//! with `socket=HOST:PORT`) and how to set up the Python worker there
//! (`python=`, `chdir=`, `nice=`, `env:NAME=`, `execmodel=`, ...). This crate
//! parses such strings into [`XSpec`] and writes them back; it does no IO.
//!
//! Parts are joined by `//`; a part is `key=value`, split at the first `=`,
//! or a bare `key`, which means true. Exactly one transport part is allowed,
//! and without one a spec means `popen`. Unknown keys are kept, in order.
//! Malformed specs give a [`ParseError`] naming the part and the reason;
//! nothing panics. `Display` gives back the parsed string, so
//! `XSpec::parse(&spec.to_string()) == Ok(spec)`.
//!
//! With the `serde` feature, [`XSpec`] serializes as its spec string.
//!
//! # Example
//!
//! ```
//! use execnet_xspec::{Kind, XSpec};
//!
//! let spec = XSpec::parse("ssh=-p 2222 host//python=python3//env:MODE=a=b//id=w")?;
//! assert_eq!(spec.kind(), &Kind::Ssh("-p 2222 host".into()));
//! assert_eq!(spec.python(), Some("python3"));
//! assert_eq!(spec.env().collect::<Vec<_>>(), [("MODE", "a=b")]);
//! assert_eq!(spec.id(), Some("w"));
//! assert_eq!(XSpec::parse(&spec.to_string())?, spec);
//!
//! let err = XSpec::parse("popen//nice=fast").unwrap_err();
//! assert!(err.to_string().contains("nice=fast"));
//! # Ok::<(), execnet_xspec::ParseError>(())
//! ```
#![forbid(unsafe_code)]

mod error;
mod keys;
mod spec;
mod words;

pub use crate::error::ParseError;
pub use crate::keys::{KNOWN_KEYS, USER_KEY_PREFIX};
#[doc(hidden)]
pub use crate::spec::fuzz_parse;
pub use crate::spec::{Kind, XSpec};
pub use crate::words::split_command;
