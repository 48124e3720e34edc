//! The native core of the `execnet_rs` Python package: execnet's `Channel`
//! and a gateway handle on the execnet-rs engine, value conversion, and
//! waiting that releases the GIL and honours Ctrl-C. The rest of execnet's
//! API (Gateway, Group, XSpec, MultiChannel, ...) is Python in
//! `execnet_rs/`, calling into this module.
//!
//! No unsafe code here: the FFI is PyO3's (its macros keep their unsafe
//! glue inside PyO3's own spans, so `forbid` holds for this crate too).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod channel;
mod convert;
mod errors;
mod gateway;
mod rsync;
mod serial;
mod wait;

use pyo3::prelude::*;

/// `execnet_rs._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<channel::Channel>()?;
    m.add_class::<gateway::NativeGateway>()?;
    m.add_class::<rsync::NativeRSync>()?;
    m.add_function(wrap_pyfunction!(gateway::open_gateway, m)?)?;
    m.add_function(wrap_pyfunction!(gateway::join_all, m)?)?;
    m.add_function(wrap_pyfunction!(serial::dumps, m)?)?;
    m.add_function(wrap_pyfunction!(serial::loads, m)?)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
