//! Engine errors as execnet's Python exceptions.
//!
//! The exception classes are plain Python classes (`execnet_rs/_errors.py`),
//! so that they pickle, subclass and print as execnet's do; this module
//! looks them up once and raises them.

use execnet::{Error, Step};
use pyo3::exceptions::{PyEOFError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || py.import("execnet_rs._errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The exception class `name` of `execnet_rs._errors`.
pub(crate) fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(errors_module(py)?.getattr(name)?.cast_into::<PyType>()?)
}

fn make(py: Python<'_>, name: &str, message: String) -> PyErr {
    match class(py, name) {
        Ok(cls) => PyErr::from_type(cls, (message,)),
        Err(e) => e,
    }
}

/// `execnet.DumpError(message)`.
pub(crate) fn dump_error(py: Python<'_>, message: String) -> PyErr {
    make(py, "DumpError", message)
}

/// `execnet.LoadError(message)`.
pub(crate) fn load_error(py: Python<'_>, message: String) -> PyErr {
    make(py, "LoadError", message)
}

/// `execnet.TimeoutError(message)` (an `OSError`, as in execnet).
pub(crate) fn timeout_error(py: Python<'_>, message: String) -> PyErr {
    make(py, "TimeoutError", message)
}

/// `execnet.RemoteError(formatted)`: the remote traceback.
pub(crate) fn remote_error(py: Python<'_>, formatted: &str) -> PyErr {
    make(py, "RemoteError", formatted.to_owned())
}

/// The `RemoteError` instance itself (for `_getremoteerror()`).
pub(crate) fn remote_error_value(py: Python<'_>, formatted: &str) -> PyResult<Py<PyAny>> {
    Ok(class(py, "RemoteError")?.call1((formatted,))?.unbind())
}

/// An engine error of an operation that sends (`send`, `remote_exec`,
/// `remote_status`): execnet raises `OSError` when the connection is gone,
/// whereas a receive raises `EOFError`.
pub(crate) fn from_engine_send(py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::ConnectionLost(reason) => PyOSError::new_err(format!("cannot send: {reason}")),
        Error::Closed => PyOSError::new_err("cannot send: the gateway is closed"),
        other => from_engine(py, other),
    }
}

/// An engine error as the exception an execnet user expects.
pub(crate) fn from_engine(py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::Remote(e) => remote_error(py, e.formatted()),
        Error::Timeout(d) => {
            timeout_error(py, format!("no item after {} seconds", d.as_secs_f64()))
        }
        Error::Closed => PyEOFError::new_err(()),
        Error::ConnectionLost(reason) => PyEOFError::new_err(reason),
        Error::SendClosed(id) => {
            PyOSError::new_err(format!("cannot send to channel {id}: it is closed"))
        }
        Error::CallbackSet(_) => {
            PyOSError::new_err("cannot receive(), channel has receiver callback")
        }
        Error::Spec(e) => PyValueError::new_err(e.to_string()),
        Error::DuplicateId(id) => {
            PyValueError::new_err(format!("already have gateway with id {id:?}"))
        }
        Error::Bootstrap {
            step: Step::Host, ..
        } => make(py, "HostNotFound", err.to_string()),
        Error::Value(e) => load_error(py, e.to_string()),
        Error::Encode(e) => dump_error(py, e.to_string()),
        // The worker broke the protocol: the connection is gone, as when it
        // dies.
        Error::PeerMisbehaved { .. } => PyEOFError::new_err(err.to_string()),
        Error::ForeignChannel(id) => dump_error(
            py,
            format!("can't send channel {id}: it belongs to another gateway"),
        ),
        other => PyOSError::new_err(other.to_string()),
    }
}
