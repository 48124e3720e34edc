//! The native side of `execnet.RSync` (execnet_rs/rsync.py): the engine's
//! [`execnet::rsync::RSync`] with its hooks calling back into the Python
//! object, so that a subclass's `filter` and `_report_send_file` (as
//! pytest-xdist's `HostRSync` has them) and execnet's `callback` and
//! `finishedcallback` run where execnet runs them: inside `send()`, on the
//! thread that called it.
//!
//! The hooks hold the Python object weakly (its `weakref.ref`), so that an
//! `RSync` the program drops is freed although its native half refers back
//! to it. A hook that raises stops the send; the exception comes out of
//! `send()` unchanged.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use execnet::rsync::{Event, HookError, RSync, RsyncError, TargetOptions};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::channel::Channel;
use crate::gateway::NativeGateway;
use crate::wait::wait_forever;

/// One `execnet.RSync`'s engine half.
#[pyclass(module = "execnet_rs._core", name = "NativeRSync", frozen)]
pub struct NativeRSync {
    /// Taken out while a call runs (the engine's calls need `&mut`).
    inner: Mutex<Option<RSync>>,
    /// What a fresh engine RSync is made of (after an interrupted call,
    /// whose RSync went with the dropped future).
    sourcedir: String,
    owner: Py<PyAny>,
    with_callback: bool,
}

impl std::fmt::Debug for NativeRSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRSync").finish_non_exhaustive()
    }
}

/// A Python exception as a hook's error, to be raised again by `send()`.
fn hook_error(err: PyErr) -> HookError {
    Box::new(err)
}

/// The Python `RSync` behind `owner` (a `weakref.ref`), if it still exists.
fn owner_of<'py>(py: Python<'py>, owner: &Py<PyAny>) -> Option<Bound<'py, PyAny>> {
    let obj = owner.bind(py).call0().ok()?;
    (!obj.is_none()).then_some(obj)
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The engine RSync with its hooks on `owner()`.
fn build(py: Python<'_>, sourcedir: &str, owner: &Py<PyAny>, with_callback: bool) -> RSync {
    let filter_owner = owner.clone_ref(py);
    let report_owner = owner.clone_ref(py);
    let event_owner = owner.clone_ref(py);
    let mut rsync = RSync::new(sourcedir)
        .filter(move |path| {
            Python::attach(|py| {
                let Some(obj) = owner_of(py, &filter_owner) else {
                    return Ok(true);
                };
                obj.call_method1("filter", (path_str(path),))
                    .and_then(|keep| keep.is_truthy())
                    .map_err(hook_error)
            })
        })
        .on_send_file(move |gateway, rel_path| {
            Python::attach(|py| {
                let Some(obj) = owner_of(py, &report_owner) else {
                    return Ok(());
                };
                obj.call_method1("_native_report", (gateway.id(), path_str(rel_path)))
                    .map(drop)
                    .map_err(hook_error)
            })
        });
    if with_callback {
        rsync = rsync.callback(move |event| {
            let (command, size) = match event {
                Event::List { bytes, .. } => ("list", bytes),
                Event::Ack { bytes, .. } => ("ack", bytes),
                // execnet's callback knows no per-chunk progress
                _ => return Ok(()),
            };
            Python::attach(|py| {
                let Some(obj) = owner_of(py, &event_owner) else {
                    return Ok(());
                };
                let channel = event.channel();
                let gateway_id = channel.gateway().id().to_owned();
                let pygateway = obj
                    .call_method1("_gateway_of", (gateway_id.as_str(),))
                    .map_err(hook_error)?
                    .unbind();
                let channel =
                    Py::new(py, Channel::new(channel.clone(), pygateway)).map_err(hook_error)?;
                obj.call_method1("_native_event", (command, size, gateway_id, channel))
                    .map(drop)
                    .map_err(hook_error)
            })
        });
    }
    rsync
}

impl NativeRSync {
    fn take(&self) -> PyResult<RSync> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| PyOSError::new_err("this RSync is busy in another thread"))
    }

    fn put(&self, rsync: RSync) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Some(rsync);
    }

    /// After an interrupted call: a fresh engine RSync, without targets.
    fn renew(&self, py: Python<'_>) {
        self.put(build(py, &self.sourcedir, &self.owner, self.with_callback));
    }
}

#[pymethods]
impl NativeRSync {
    /// An engine RSync of `sourcedir` whose hooks call `owner()`'s
    /// `filter(path)`, `_native_report(gateway_id, rel_path)` and, when
    /// `with_callback`, `_native_event(command, size, gateway_id, channel)`
    /// (`owner`: a `weakref.ref` to the Python `RSync`).
    #[new]
    fn new(
        py: Python<'_>,
        sourcedir: String,
        owner: Py<PyAny>,
        with_callback: bool,
    ) -> NativeRSync {
        let rsync = build(py, &sourcedir, &owner, with_callback);
        NativeRSync {
            inner: Mutex::new(Some(rsync)),
            sourcedir,
            owner,
            with_callback,
        }
    }

    /// Start the receiving end on `gateway` for `destdir`; `finished` (or
    /// None) is called when this target is complete.
    #[pyo3(signature = (gateway, destdir, finished, delete))]
    fn add_target(
        &self,
        py: Python<'_>,
        gateway: &Bound<'_, NativeGateway>,
        destdir: &str,
        finished: Option<Py<PyAny>>,
        delete: bool,
    ) -> PyResult<()> {
        let mut options = TargetOptions::new().delete(delete);
        if let Some(finished) = finished {
            options = options.on_finished(move || {
                Python::attach(|py| finished.bind(py).call0().map(drop).map_err(hook_error))
            });
        }
        let engine_gateway = gateway.get().engine().clone();
        let mut rsync = self.take()?;
        let destdir = destdir.to_owned();
        let waited = wait_forever(py, async move {
            let added = rsync.add_target(&engine_gateway, &destdir, options).await;
            (rsync, added)
        });
        let (rsync, added) = match waited {
            Ok(done) => done,
            Err(interrupted) => {
                // Ctrl-C: the targets added so far went with the call
                self.renew(py);
                return Err(interrupted);
            }
        };
        self.put(rsync);
        added.map_err(|e| rsync_error(py, e))
    }

    /// How many targets the next `send` goes to.
    fn target_count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, RSync::target_count)
    }

    /// Sync the source to every target (they are used up); raises what a
    /// hook raised, `OSError` for a failed target or an unreadable source.
    fn send(&self, py: Python<'_>) -> PyResult<()> {
        let mut rsync = self.take()?;
        let result = wait_forever(py, async move {
            let sent = rsync.send().await;
            (rsync, sent)
        });
        let (rsync, sent) = match result {
            Ok(done) => done,
            Err(interrupted) => {
                // Ctrl-C: the send stopped and its targets are used up, as
                // after any send
                self.renew(py);
                return Err(interrupted);
            }
        };
        self.put(rsync);
        sent.map(drop).map_err(|e| rsync_error(py, e))
    }
}

/// An engine rsync error as the exception execnet raises: the hook's own
/// exception, `OSError` otherwise (`ValueError` for a bad destination).
fn rsync_error(_py: Python<'_>, err: RsyncError) -> PyErr {
    match err {
        RsyncError::Hook(hook) => match hook.downcast::<PyErr>() {
            Ok(pyerr) => *pyerr,
            Err(other) => PyOSError::new_err(format!("rsync stopped by a hook: {other}")),
        },
        RsyncError::Destination(message) => PyValueError::new_err(format!("rsync: {message}")),
        RsyncError::NoTargets => {
            PyOSError::new_err("no targets available, maybe you are trying call send() twice?")
        }
        other => PyOSError::new_err(other.to_string()),
    }
}
