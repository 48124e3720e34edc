//! `execnet.dumps` / `loads`: a value as bytes, outside any channel.
//!
//! The bytes are one wire frame carrying the value as a channel item
//! (wire/WIRE.md), so they are as safe to load as what a peer sends: no
//! code runs, sizes are checked before anything is allocated. Channels
//! cannot be dumped (they only mean something on their gateway).

use execnet_wire::{decode_message, encode_frame, Item, Message};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert;
use crate::errors;

/// Serialize `obj` (None, bool, int, float, complex, bytes, str and lists,
/// tuples, dicts, sets, frozensets of those) to bytes; `DumpError` for
/// anything else.
#[pyfunction]
pub(crate) fn dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut size = 0;
    let data = convert::to_value(obj, &mut size)?;
    let mut has_channel = false;
    let mut data = data;
    data.visit_channels_mut(&mut |_| has_channel = true);
    if has_channel {
        return Err(errors::dump_error(
            py,
            "can't serialize a Channel outside of a channel's items".to_owned(),
        ));
    }
    let data = Item::try_from(data).map_err(|e| errors::dump_error(py, e.to_string()))?;
    let mut out = Vec::with_capacity(size + 16);
    encode_frame(&Message::ChannelData { channel: 1, data }, &mut out)
        .map_err(|e| errors::dump_error(py, e.to_string()))?;
    Ok(PyBytes::new(py, &out))
}

/// Deserialize what `dumps` made; `LoadError` for anything else.
#[pyfunction]
pub(crate) fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let bad = |why: String| errors::load_error(py, why);
    if data.len() < 4 {
        return Err(bad(format!(
            "{} bytes are too short for a dumped value",
            data.len()
        )));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&data[..4]);
    let body = &data[4..];
    if u32::from_le_bytes(len) as usize != body.len() {
        return Err(bad(format!(
            "the dumped value announces {} bytes but {} follow",
            u32::from_le_bytes(len),
            body.len()
        )));
    }
    match decode_message(body).map_err(|e| bad(e.to_string()))? {
        Message::ChannelData { data, .. } => {
            if !data.channels().is_empty() {
                return Err(bad("a dumped value cannot hold a channel".to_owned()));
            }
            // Within the budget a received item gets (see SECURITY.md).
            let data = data.into_value().map_err(|e| bad(e.to_string()))?;
            convert::to_python(py, data, &py.None())
        }
        other => Err(bad(format!(
            "not a dumped value but a {} message",
            message_name(&other)
        ))),
    }
}

fn message_name(msg: &Message) -> String {
    let debug = format!("{msg:?}");
    debug.split([' ', '{', '(']).next().unwrap_or("").to_owned()
}
