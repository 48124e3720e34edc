//! Python objects to channel items and back, with no `Value` in between.
//!
//! Sending walks the Python object once and writes its wire encoding
//! ([`ItemWriter`]); receiving walks the item's encoding ([`ItemReader`])
//! and builds the Python objects. So a received item costs what its Python
//! objects cost, as in execnet (a 10-million-int list arrives as a list of
//! 10 million ints), and is not subject to the engine's `Value` budget.
//! Exact built-in types are tested first, in the order items usually come
//! (int, str, bytes, None, ...); subclasses of the value types (IntEnum, a
//! str subclass, OrderedDict, namedtuple, ...) travel as their base type, as
//! the worker does for its own sends.

use execnet::Value;
use execnet_wire::{ChannelRef, Item, ItemReader, ItemToken, ItemWriter};
use num_bigint::BigInt;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList,
    PyMemoryView, PySet, PyString, PyTuple,
};

use crate::channel::Channel;
use crate::errors;

/// How deeply values may nest (the wire's limit too).
const MAX_DEPTH: usize = execnet_wire::MAX_DEPTH;

/// A Python object as a channel item. `size` grows by the bytes of string
/// and bytes payloads, so the caller can tell a bulk item from a small one.
pub(crate) fn to_item(obj: &Bound<'_, PyAny>, size: &mut usize) -> PyResult<Item> {
    let mut w = ItemWriter::new();
    encode(obj, 0, &mut w, size)?;
    *size += w.len();
    w.finish()
        .map_err(|e| errors::dump_error(obj.py(), format!("can't serialize: {e}")))
}

/// A Python object as a [`Value`] (the keyword arguments of a remote call
/// travel inside the exec message as Values).
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mut size = 0;
    to_item(obj, &mut size)?
        .into_value()
        .map_err(|e| errors::dump_error(obj.py(), e.to_string()))
}

fn encode(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    w: &mut ItemWriter,
    size: &mut usize,
) -> PyResult<()> {
    if obj.is_exact_instance_of::<PyInt>() {
        return int_token(obj, w);
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return str_token(s, w);
    }
    if let Ok(b) = obj.cast_exact::<PyBytes>() {
        w.token(ItemToken::Bytes(b.as_bytes()));
        return Ok(());
    }
    if obj.is_none() {
        w.token(ItemToken::None);
        return Ok(());
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        w.token(ItemToken::Bool(b.is_true()));
        return Ok(());
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        w.token(ItemToken::Float(f.value()));
        return Ok(());
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        w.token(ItemToken::Tuple(t.len()));
        return items(t.iter(), depth, w, size);
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        return list_items(l, depth, w, size);
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return dict_items(d, depth, w, size);
    }
    if let Ok(ch) = obj.cast_exact::<Channel>() {
        w.channel(ch.get().as_ref()?);
        return Ok(());
    }
    subclass_token(obj, depth, w, size)
}

/// Subclasses of the value types, bytearray and memoryview (as bytes), sets,
/// frozensets and complex numbers; anything else is a `DumpError`.
fn subclass_token(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    w: &mut ItemWriter,
    size: &mut usize,
) -> PyResult<()> {
    if let Ok(b) = obj.cast::<PyBool>() {
        w.token(ItemToken::Bool(b.is_true()));
        return Ok(());
    }
    if obj.is_instance_of::<PyInt>() {
        return int_token(obj, w);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        w.token(ItemToken::Float(f.value()));
        return Ok(());
    }
    if let Ok(c) = obj.cast::<PyComplex>() {
        w.token(ItemToken::Complex(c.real(), c.imag()));
        return Ok(());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return str_token(s, w);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        w.token(ItemToken::Bytes(b.as_bytes()));
        return Ok(());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        w.token(ItemToken::Tuple(t.len()));
        return items(t.iter(), depth, w, size);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return list_items(l, depth, w, size);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_items(d, depth, w, size);
    }
    if let Ok(s) = obj.cast::<PySet>() {
        // Snapshot: the set may change while we encode (other threads).
        let elems: Vec<_> = s.iter().collect();
        w.token(ItemToken::Set(elems.len()));
        return items(elems.into_iter(), depth, w, size);
    }
    if let Ok(s) = obj.cast::<PyFrozenSet>() {
        w.token(ItemToken::FrozenSet(s.len()));
        return items(s.iter(), depth, w, size);
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        w.token(ItemToken::Bytes(&b.to_vec()));
        return Ok(());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        w.token(ItemToken::Bytes(bytes.as_bytes()));
        return Ok(());
    }
    if let Ok(ch) = obj.cast::<Channel>() {
        w.channel(ch.get().as_ref()?);
        return Ok(());
    }
    Err(errors::dump_error(
        obj.py(),
        format!("can't serialize {}", type_repr(obj)),
    ))
}

/// `<class 'module.Name'>`, as execnet names an unsendable type.
fn type_repr(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "an object of unknown type".to_owned())
}

fn int_token(obj: &Bound<'_, PyAny>, w: &mut ItemWriter) -> PyResult<()> {
    match obj.extract::<i64>() {
        Ok(n) => w.token(ItemToken::Int(n)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            let big: BigInt = obj.extract()?;
            w.token(ItemToken::BigInt(&big.to_signed_bytes_le()));
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn str_token(s: &Bound<'_, PyString>, w: &mut ItemWriter) -> PyResult<()> {
    match s.to_cow() {
        Ok(text) => {
            w.token(ItemToken::Str(&text));
            Ok(())
        }
        Err(e) => Err(errors::dump_error(
            s.py(),
            format!("can't serialize a str that is not valid unicode: {e}"),
        )),
    }
}

fn enter(py: Python<'_>, depth: usize) -> PyResult<usize> {
    if depth >= MAX_DEPTH {
        return Err(errors::dump_error(
            py,
            format!("can't serialize values nested deeper than {MAX_DEPTH}"),
        ));
    }
    Ok(depth + 1)
}

/// A container's elements, after its token (which gave their count).
fn items<'py>(
    iter: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
    w: &mut ItemWriter,
    size: &mut usize,
) -> PyResult<()> {
    let mut inner = None;
    for item in iter {
        let d = match inner {
            Some(d) => d,
            None => *inner.insert(enter(item.py(), depth)?),
        };
        encode(&item, d, w, size)?;
    }
    Ok(())
}

fn list_items(
    l: &Bound<'_, PyList>,
    depth: usize,
    w: &mut ItemWriter,
    size: &mut usize,
) -> PyResult<()> {
    // The count is written first: if another thread shrinks the list while
    // an element's conversion lets it run, the item is refused, not wrong.
    let n = l.len();
    w.token(ItemToken::List(n));
    let mut seen = 0;
    items(l.iter().take(n).inspect(|_| seen += 1), depth, w, size)?;
    if seen != n {
        return Err(errors::dump_error(
            l.py(),
            "can't serialize a list that changed size during serialization".to_owned(),
        ));
    }
    Ok(())
}

fn dict_items(
    d: &Bound<'_, PyDict>,
    depth: usize,
    w: &mut ItemWriter,
    size: &mut usize,
) -> PyResult<()> {
    let inner = enter(d.py(), depth)?;
    // A snapshot of the pairs: the dict may change while a key or value
    // converts.
    let pairs: Vec<_> = d.iter().collect();
    w.token(ItemToken::Dict(pairs.len()));
    for (k, v) in pairs {
        encode(&k, inner, w, size)?;
        encode(&v, inner, w, size)?;
    }
    Ok(())
}

/// A received item as a Python object; channels inside it become
/// [`Channel`] objects of `gateway` (the Python-level gateway).
///
/// The item was checked on arrival (depth at most `MAX_DEPTH`, hashable
/// keys, lengths within its bytes), so the recursion is bounded and every
/// container's length is backed by bytes that arrived.
pub(crate) fn item_to_python<'py>(
    py: Python<'py>,
    item: &Item,
    gateway: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut r = item.reader();
    let b = Builder {
        py,
        channels: item.channels(),
        gateway,
    };
    let obj = b.build(&mut r, 0)?;
    if !r.is_done() {
        return Err(errors::load_error(
            py,
            "bytes left after the item's value".to_owned(),
        ));
    }
    Ok(obj)
}

/// A [`Value`] as a Python object (the worker's hello info).
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    value: &Value,
    gateway: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let item = Item::from_value(value).map_err(|e| errors::load_error(py, e.to_string()))?;
    item_to_python(py, &item, gateway)
}

struct Builder<'a, 'py> {
    py: Python<'py>,
    channels: &'a [ChannelRef],
    gateway: &'a Py<PyAny>,
}

impl<'py> Builder<'_, 'py> {
    fn build(&self, r: &mut ItemReader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let token = r
            .next_token()
            .map_err(|e| errors::load_error(py, e.to_string()))?;
        Ok(match token {
            ItemToken::Int(n) => n.into_pyobject(py)?.into_any(),
            ItemToken::Str(s) => PyString::new(py, s).into_any(),
            ItemToken::Bytes(b) => PyBytes::new(py, b).into_any(),
            ItemToken::None => py.None().into_bound(py),
            ItemToken::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
            ItemToken::Float(x) => PyFloat::new(py, x).into_any(),
            ItemToken::BigInt(b) => BigInt::from_signed_bytes_le(b)
                .into_pyobject(py)?
                .into_any(),
            ItemToken::Complex(re, im) => PyComplex::from_doubles(py, re, im).into_any(),
            ItemToken::List(n) => PyList::new(py, self.elements(r, n, depth)?)?.into_any(),
            ItemToken::Tuple(n) => PyTuple::new(py, self.elements(r, n, depth)?)?.into_any(),
            ItemToken::Set(n) => PySet::new(py, &self.elements(r, n, depth)?)
                .map_err(|e| errors::load_error(py, format!("bad set element: {e}")))?
                .into_any(),
            ItemToken::FrozenSet(n) => PyFrozenSet::new(py, &self.elements(r, n, depth)?)
                .map_err(|e| errors::load_error(py, format!("bad frozenset element: {e}")))?
                .into_any(),
            ItemToken::Dict(n) => {
                let inner = self.enter(depth)?;
                let dict = PyDict::new(py);
                for _ in 0..n {
                    let key = self.build(r, inner)?;
                    let value = self.build(r, inner)?;
                    dict.set_item(key, value)
                        .map_err(|e| errors::load_error(py, format!("bad dict key: {e}")))?;
                }
                dict.into_any()
            }
            ItemToken::Channel(id) => self.channel(id)?,
        })
    }

    fn enter(&self, depth: usize) -> PyResult<usize> {
        if depth >= MAX_DEPTH {
            return Err(errors::load_error(
                self.py,
                format!("values nest deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(depth + 1)
    }

    fn elements(
        &self,
        r: &mut ItemReader<'_>,
        n: usize,
        depth: usize,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let inner = self.enter(depth)?;
        // `n` is backed by at least n bytes of the item (checked on arrival).
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.build(r, inner)?);
        }
        Ok(out)
    }

    fn channel(&self, id: u32) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let found = self
            .channels
            .binary_search_by_key(&id, ChannelRef::id)
            .ok()
            .and_then(|i| self.channels.get(i))
            .or_else(|| self.channels.iter().find(|c| c.id() == id));
        let Some(c) = found else {
            return Err(errors::load_error(
                py,
                format!("channel {id} arrived without a gateway (a dumped value holds none)"),
            ));
        };
        let inner: execnet::Channel = execnet::from_value(Value::Channel(c.clone()))
            .map_err(|e| errors::load_error(py, e.to_string()))?;
        Ok(Bound::new(py, Channel::new(inner, self.gateway.clone_ref(py)))?.into_any())
    }
}
