//! `execnet.Channel`: the engine's channel with execnet's Python API.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use execnet::{ChannelRef, Error, Item, Value};
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::convert;
use crate::errors;
use crate::wait::{wait, wait_forever, wait_released};

/// Items at least this large are encoded and written with the GIL released.
const BULK: usize = 64 * 1024;

/// Communication channel between two Python interpreters: `send` items to
/// the other end, `receive` its items, iterate, close, wait for the close.
#[pyclass(module = "execnet", name = "Channel", frozen)]
pub struct Channel {
    inner: execnet::Channel,
    /// The Python-level `Gateway` this channel belongs to.
    gateway: Py<PyAny>,
    /// The handle a callback set through this object uses to close the
    /// channel when it raises; emptied when this object goes, so that the
    /// callback never keeps the channel open (the other end learns that the
    /// last handle is gone, as in execnet).
    callback_handle: Mutex<Option<CallbackHandle>>,
    /// With a callback: set once the callback has had every item (the
    /// engine's end of deliveries came through), so that `isclosed()`
    /// turns true only after the last item's callback ran, as in execnet
    /// (its receiver thread runs callbacks and closes in one order).
    drained: Mutex<Option<Arc<AtomicBool>>>,
    /// `close()` was called through this object.
    closed_here: AtomicBool,
}

/// A channel handle that its owner can take away.
type CallbackHandle = Arc<Mutex<Option<execnet::Channel>>>;

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let slot = self
            .callback_handle
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = slot.take() {
            handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    }
}

impl Channel {
    pub(crate) fn new(inner: execnet::Channel, gateway: Py<PyAny>) -> Channel {
        Channel {
            inner,
            gateway,
            callback_handle: Mutex::new(None),
            drained: Mutex::new(None),
            closed_here: AtomicBool::new(false),
        }
    }

    /// This channel as a reference to send inside an item (it carries the
    /// handle, which `send` checks belongs to the same gateway).
    pub(crate) fn as_ref(&self) -> PyResult<ChannelRef> {
        match &execnet::to_value(&self.inner) {
            Ok(Value::Channel(c)) => Ok(c.clone()),
            Ok(other) => Err(Python::attach(|py| {
                errors::dump_error(py, format!("a channel became a {}", other.type_name()))
            })),
            Err(e) => Err(Python::attach(|py| errors::dump_error(py, e.to_string()))),
        }
    }

    fn timeout(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Duration>> {
        match timeout {
            None => Ok(None),
            Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t))),
            Some(t) if t.is_finite() => Ok(Some(Duration::ZERO)),
            Some(_) => Err(errors::timeout_error(
                py,
                format!("bad timeout {timeout:?}"),
            )),
        }
    }

    fn receive_inner<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = Self::timeout(py, timeout)?;
        let ch = self.inner.clone();
        let got = wait(py, async move { ch.receive_item(None).await }, limit)?;
        match got {
            Some(Ok(item)) => convert::item_to_python(py, &item, &self.gateway),
            Some(Err(e)) => Err(errors::from_engine(py, e)),
            None => Err(errors::timeout_error(
                py,
                format!("no item after {} seconds", timeout.unwrap_or_default()),
            )),
        }
    }
}

/// What `setcallback(..., endmarker=...)` was given.
pub(crate) enum Endmarker {
    NotGiven,
    Given(Py<PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Endmarker {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Endmarker::Given(obj.to_owned().unbind()))
    }
}

static FILE_CLASSES: PyOnceLock<(Py<PyType>, Py<PyType>)> = PyOnceLock::new();

#[pymethods]
impl Channel {
    /// The exception raised for errors of the remote code.
    #[classattr]
    #[allow(non_snake_case)]
    fn RemoteError(py: Python<'_>) -> PyResult<Py<PyType>> {
        Ok(errors::class(py, "RemoteError")?.unbind())
    }

    /// The exception raised when `receive` or `waitclose` time out.
    #[classattr]
    #[allow(non_snake_case)]
    fn TimeoutError(py: Python<'_>) -> PyResult<Py<PyType>> {
        Ok(errors::class(py, "TimeoutError")?.unbind())
    }

    /// The channel id (odd: opened here, even: opened by the worker).
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id()
    }

    /// The gateway this channel belongs to.
    #[getter]
    fn gateway(&self, py: Python<'_>) -> Py<PyAny> {
        self.gateway.clone_ref(py)
    }

    /// Send `item` to the other end; blocks (GIL released) while the other
    /// end's receive window is full. `OSError` when the channel is closed,
    /// `DumpError` for an item that cannot travel.
    fn send(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut size = 0;
        let item = convert::to_item(item, &mut size)?;
        let ch = self.inner.clone();
        let fut = async move { ch.send_item(item).await };
        let sent = if size >= BULK {
            wait_released(py, fut)?
        } else {
            wait_forever(py, fut)?
        };
        match sent {
            Ok(()) => Ok(()),
            Err(Error::SendClosed(_)) => Err(PyOSError::new_err(format!(
                "cannot send to {}",
                self.repr()
            ))),
            Err(e) => Err(errors::from_engine_send(py, e)),
        }
    }

    /// Receive the next item; `timeout` in seconds (None: wait forever)
    /// raises `channel.TimeoutError`. At the end of the channel: `EOFError`,
    /// or the `RemoteError` of the remote code (once).
    #[pyo3(signature = (timeout = None))]
    fn receive<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        self.receive_inner(py, timeout)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.receive_inner(py, None) {
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyEOFError>(py) => {
                Err(PyStopIteration::new_err(()))
            }
            other => other,
        }
    }

    /// Same as `__next__` (execnet's Python 2 name).
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__next__(py)
    }

    /// Close this end; with `error`, the other end's receive raises a
    /// `RemoteError` with its text. Items already here stay receivable.
    #[pyo3(signature = (error = None))]
    fn close(&self, py: Python<'_>, error: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.closed_here.store(true, Ordering::SeqCst);
        let ch = self.inner.clone();
        let result = match error {
            None => wait_forever(py, async move { ch.close().await })?,
            Some(err) => {
                let text = err.str()?.to_cow()?.into_owned();
                wait_forever(py, async move { ch.close_with_error(&text).await })?
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_connection_lost() => Ok(()),
            Err(e) => Err(errors::from_engine(py, e)),
        }
    }

    /// Wait until the other end closed (items may still be queued here).
    /// Raises the remote code's `RemoteError`, `EOFError` when the
    /// connection was lost, `channel.TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (timeout = None))]
    fn waitclose(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let limit = Self::timeout(py, timeout)?;
        let ch = self.inner.clone();
        // The engine's own timer is not needed: our wait has the deadline.
        let got = wait(py, async move { ch.wait_close(None).await }, limit)?;
        match got {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(errors::from_engine(py, e)),
            None => Err(errors::timeout_error(
                py,
                format!("Timeout after {} seconds", timeout.unwrap_or_default()),
            )),
        }
    }

    /// Whether the channel is closed (it may still hold items).
    fn isclosed(&self) -> bool {
        if !self.inner.is_closed() {
            return false;
        }
        match &*self.drained.lock().unwrap_or_else(PoisonError::into_inner) {
            // a callback still has items to run: not closed yet for it
            Some(drained) => {
                drained.load(Ordering::SeqCst) || self.closed_here.load(Ordering::SeqCst)
            }
            None => true,
        }
    }

    /// The remote error (or `EOFError` for a lost connection) this channel
    /// ended with, once; None while it is open or when it ended cleanly.
    fn _getremoteerror(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.inner.end_error() {
            Some(Error::Remote(e)) => errors::remote_error_value(py, e.formatted()),
            Some(Error::ConnectionLost(reason)) => Ok(py
                .get_type::<pyo3::exceptions::PyEOFError>()
                .call1((reason,))?
                .unbind()),
            Some(lost @ Error::PeerMisbehaved { .. }) => Ok(py
                .get_type::<pyo3::exceptions::PyEOFError>()
                .call1((lost.to_string(),))?
                .unbind()),
            _ => Ok(py.None()),
        }
    }

    /// Deliver every item (those already queued first) to `callback`, on a
    /// receiver thread that holds the GIL only while the callback runs;
    /// afterwards `receive()` raises. With `endmarker`, the callback gets it
    /// once when the channel ends. If the callback raises, the channel is
    /// closed with the error's traceback and no more items are delivered.
    #[pyo3(signature = (callback, endmarker = Endmarker::NotGiven))]
    fn setcallback(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        endmarker: Endmarker,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let gateway = this.gateway.clone_ref(py);
        let handle: CallbackHandle = Arc::new(Mutex::new(Some(this.inner.clone())));
        let me = handle.clone();
        let end = match endmarker {
            Endmarker::NotGiven => None,
            Endmarker::Given(obj) => Some(obj),
        };
        // The engine always ends the deliveries with None: it tells
        // isclosed() that the callback has had every item.
        let drained = Arc::new(AtomicBool::new(false));
        let drained_by_callback = drained.clone();
        let mut failed = false;
        let deliver = move |item: Option<Item>| {
            if item.is_none() {
                drained_by_callback.store(true, Ordering::SeqCst);
            }
            if failed {
                return;
            }
            Python::attach(|py| {
                let item = match item {
                    Some(item) => convert::item_to_python(py, &item, &gateway),
                    None => match &end {
                        Some(obj) => Ok(obj.clone_ref(py).into_bound(py)),
                        None => return,
                    },
                };
                let outcome = item.and_then(|item| callback.bind(py).call1((item,)));
                if let Err(err) = outcome {
                    failed = true;
                    close_after_callback_error(py, &me, err);
                }
            });
        };
        let set = this.inner.set_item_callback(deliver);
        if set.is_ok() {
            *this
                .callback_handle
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(handle);
            *this.drained.lock().unwrap_or_else(PoisonError::into_inner) = Some(drained);
        }
        set.map_err(|e| match e {
            Error::CallbackSet(_) => {
                PyOSError::new_err(format!("{} has callback already registered", this.repr()))
            }
            other => errors::from_engine(py, other),
        })
    }

    /// A file-like object over the channel: mode "w" sends each write as
    /// an item, mode "r" reads the str/bytes items back. With `proxyclose`,
    /// closing the file closes the channel.
    #[pyo3(signature = (mode = "w", proxyclose = false))]
    fn makefile<'py>(
        slf: &Bound<'py, Self>,
        mode: &str,
        proxyclose: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (write, read) = FILE_CLASSES.get_or_try_init(py, || -> PyResult<_> {
            let m = py.import("execnet_rs.gateway_base")?;
            Ok((
                m.getattr("ChannelFileWrite")?
                    .cast_into::<PyType>()?
                    .unbind(),
                m.getattr("ChannelFileRead")?
                    .cast_into::<PyType>()?
                    .unbind(),
            ))
        })?;
        let cls = match mode {
            "w" => write,
            "r" => read,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "mode {other:?} not available"
                )))
            }
        };
        cls.bind(py).call1((slf, proxyclose))
    }

    /// Kept for execnet compatibility: str and bytes always stay apart here.
    #[pyo3(signature = (py2str_as_py3str = true, py3str_as_py2str = false))]
    fn reconfigure(&self, py2str_as_py3str: bool, py3str_as_py2str: bool) {
        let _ = (py2str_as_py3str, py3str_as_py2str);
    }

    fn __repr__(&self) -> String {
        self.repr()
    }

    fn __hash__(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.id().hash(&mut h);
        self.inner.gateway().id().hash(&mut h);
        h.finish()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Channel>() {
            Ok(other) => self.inner == other.get().inner,
            Err(_) => false,
        }
    }
}

impl Channel {
    fn repr(&self) -> String {
        let state = if self.inner.is_closed() {
            "closed"
        } else {
            "open"
        };
        format!("<Channel id={} {}>", self.inner.id(), state)
    }
}

/// execnet's rule when a callback raises: the channel is closed with the
/// error's traceback, which the other end receives as a `RemoteError`.
fn close_after_callback_error(py: Python<'_>, me: &CallbackHandle, err: PyErr) {
    let text = traceback_text(py, &err);
    let channel = me.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match channel {
        Some(inner) => {
            let _ = py.detach(|| futures_lite::future::block_on(inner.close_with_error(&text)));
        }
        // Nobody holds the channel any more: the error has nowhere to go
        // but Python's hook for unraisable exceptions.
        None => err.write_unraisable(py, None),
    }
}

/// The traceback of `err` as Python prints it.
pub(crate) fn traceback_text(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        join_lines(py, &lines)
    })();
    formatted.unwrap_or_else(|_| err.to_string())
}

fn join_lines(py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<String> {
    let empty = pyo3::types::PyString::new(py, "");
    empty.call_method1("join", (lines,))?.extract()
}
