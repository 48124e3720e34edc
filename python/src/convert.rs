//! Python objects to wire values and back.
//!
//! One walk over the Python object builds the [`Value`] the engine encodes
//! (and one walk over a received `Value` builds the Python object); there is
//! no intermediate format in between. Exact built-in types are tested first,
//! in the order items usually come (int, str, bytes, None, ...); subclasses
//! of the value types (IntEnum, a str subclass, OrderedDict, namedtuple, ...)
//! travel as their base type, as the worker does for its own sends.

use execnet::{Complex, Int, Value};
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
const MAX_DEPTH: usize = 200;

/// A Python object as a wire value. `size` grows by the bytes of string and
/// bytes payloads, so the caller can tell a bulk item from a small one.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>, size: &mut usize) -> PyResult<Value> {
    encode(obj, 0, size)
}

fn encode(obj: &Bound<'_, PyAny>, depth: usize, size: &mut usize) -> PyResult<Value> {
    if obj.is_exact_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return str_value(s, size);
    }
    if let Ok(b) = obj.cast_exact::<PyBytes>() {
        let bytes = b.as_bytes();
        *size += bytes.len();
        return Ok(Value::Bytes(bytes.to_vec()));
    }
    if obj.is_none() {
        return Ok(Value::None);
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        return Ok(Value::Tuple(items(t.iter(), depth, size)?));
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        return Ok(Value::List(items(l.iter(), depth, size)?));
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return dict_value(d, depth, size);
    }
    if let Ok(ch) = obj.cast_exact::<Channel>() {
        return ch.get().as_value();
    }
    subclass_value(obj, depth, size)
}

/// Subclasses of the value types, bytearray and memoryview (as bytes), sets,
/// frozensets and complex numbers; anything else is a `DumpError`.
fn subclass_value(obj: &Bound<'_, PyAny>, depth: usize, size: &mut usize) -> PyResult<Value> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(c) = obj.cast::<PyComplex>() {
        return Ok(Value::Complex(Complex::new(c.real(), c.imag())));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return str_value(s, size);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        *size += bytes.len();
        return Ok(Value::Bytes(bytes.to_vec()));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(Value::Tuple(items(t.iter(), depth, size)?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(Value::List(items(l.iter(), depth, size)?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_value(d, depth, size);
    }
    if let Ok(s) = obj.cast::<PySet>() {
        return Ok(Value::Set(items(s.iter(), depth, size)?));
    }
    if let Ok(s) = obj.cast::<PyFrozenSet>() {
        return Ok(Value::FrozenSet(items(s.iter(), depth, size)?));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        let bytes = b.to_vec();
        *size += bytes.len();
        return Ok(Value::Bytes(bytes));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes: Vec<u8> = obj
            .call_method0("tobytes")?
            .cast_into::<PyBytes>()?
            .as_bytes()
            .to_vec();
        *size += bytes.len();
        return Ok(Value::Bytes(bytes));
    }
    if let Ok(ch) = obj.cast::<Channel>() {
        return ch.get().as_value();
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

fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    match obj.extract::<i64>() {
        Ok(n) => Ok(Value::Int(Int::from(n))),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            let big: BigInt = obj.extract()?;
            Ok(Value::Int(Int::from(big)))
        }
        Err(e) => Err(e),
    }
}

fn str_value(s: &Bound<'_, PyString>, size: &mut usize) -> PyResult<Value> {
    match s.to_cow() {
        Ok(text) => {
            *size += text.len();
            Ok(Value::Str(text.into_owned()))
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

fn items<'py>(
    iter: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    depth: usize,
    size: &mut usize,
) -> PyResult<Vec<Value>> {
    let mut out = Vec::with_capacity(iter.len());
    let mut depth_inner = None;
    for item in iter {
        let d = match depth_inner {
            Some(d) => d,
            None => *depth_inner.insert(enter(item.py(), depth)?),
        };
        out.push(encode(&item, d, size)?);
    }
    Ok(out)
}

fn dict_value(d: &Bound<'_, PyDict>, depth: usize, size: &mut usize) -> PyResult<Value> {
    let inner = enter(d.py(), depth)?;
    let mut pairs = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        pairs.push((encode(&k, inner, size)?, encode(&v, inner, size)?));
    }
    Ok(Value::Dict(pairs))
}

/// A received value as a Python object; channels inside it become
/// [`Channel`] objects of `gateway` (the Python-level gateway).
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    value: Value,
    gateway: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // `Value` implements `Drop` (deep values drop without recursion), so
    // payloads are taken out of a `&mut` rather than moved out by value.
    let mut value = value;
    Ok(match &mut value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(n) => match n.to_i64() {
            Some(small) => small.into_pyobject(py)?.into_any(),
            None => n.to_bigint().into_pyobject(py)?.into_any(),
        },
        Value::Float(x) => PyFloat::new(py, *x).into_any(),
        Value::Complex(c) => PyComplex::from_doubles(py, c.re, c.im).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let objs = python_items(py, std::mem::take(items), gateway)?;
            PyList::new(py, objs)?.into_any()
        }
        Value::Tuple(items) => {
            let objs = python_items(py, std::mem::take(items), gateway)?;
            PyTuple::new(py, objs)?.into_any()
        }
        Value::Dict(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in std::mem::take(pairs) {
                let key = to_python(py, k, gateway)?;
                let value = to_python(py, v, gateway)?;
                dict.set_item(key, value)
                    .map_err(|e| errors::load_error(py, format!("bad dict key: {e}")))?;
            }
            dict.into_any()
        }
        Value::Set(items) => {
            let objs = python_items(py, std::mem::take(items), gateway)?;
            PySet::new(py, &objs)
                .map_err(|e| errors::load_error(py, format!("bad set element: {e}")))?
                .into_any()
        }
        Value::FrozenSet(items) => {
            let objs = python_items(py, std::mem::take(items), gateway)?;
            PyFrozenSet::new(py, &objs)
                .map_err(|e| errors::load_error(py, format!("bad frozenset element: {e}")))?
                .into_any()
        }
        Value::Channel(c) => {
            let inner: execnet::Channel = execnet::from_value(Value::Channel(c.clone()))
                .map_err(|e| errors::load_error(py, e.to_string()))?;
            Bound::new(py, Channel::new(inner, gateway.clone_ref(py)))?.into_any()
        }
        other => {
            return Err(errors::load_error(
                py,
                format!("a {} value has no Python type here", other.type_name()),
            ))
        }
    })
}

fn python_items<'py>(
    py: Python<'py>,
    items: Vec<Value>,
    gateway: &Py<PyAny>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    items
        .into_iter()
        .map(|v| to_python(py, v, gateway))
        .collect()
}
