//! The native gateway: opening, remote_exec, exit and join for the
//! Python-level `execnet.Gateway` (execnet_rs/gateway.py), which holds one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_listener::Event;
use execnet::{Options, RemoteCode, XSpec};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::channel::Channel;
use crate::convert;
use crate::errors;
use crate::wait::{wait, wait_forever, wait_until};

/// A finished-or-not flag that futures can wait for.
#[derive(Default)]
struct Done {
    flag: AtomicBool,
    event: Event,
}

impl Done {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        loop {
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// One engine gateway, as the Python layer drives it.
#[pyclass(module = "execnet_rs._core", name = "NativeGateway", frozen)]
pub struct NativeGateway {
    inner: execnet::Gateway,
    /// Set once `exit` started; done when the worker is gone and reaped.
    exit: Mutex<Option<Arc<Done>>>,
}

/// Open a gateway from a spec string with the given id; `via` or
/// `installvia` is the native gateway the spec's `via=` / `installvia=`
/// names. Blocks (GIL released, Ctrl-C honoured) until the worker's hello.
#[pyfunction]
#[pyo3(signature = (spec, id, via = None, installvia = None))]
pub(crate) fn open_gateway(
    py: Python<'_>,
    spec: &str,
    id: String,
    via: Option<Py<NativeGateway>>,
    installvia: Option<Py<NativeGateway>>,
) -> PyResult<NativeGateway> {
    let spec = XSpec::parse(spec)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("bad spec: {e}")))?;
    let options = Options::default();
    let via = via.map(|g| g.get().inner.clone());
    let installvia = installvia.map(|g| g.get().inner.clone());
    let opened = wait_forever(py, async move {
        match (via, installvia) {
            (Some(master), _) => execnet::Gateway::open_via(spec, id, &master, options).await,
            (None, Some(master)) => {
                execnet::Gateway::open_installvia(spec, id, &master, options).await
            }
            (None, None) => execnet::Gateway::open_with_id(spec, id, options).await,
        }
    })?;
    match opened {
        Ok(inner) => Ok(NativeGateway {
            inner,
            exit: Mutex::new(None),
        }),
        Err(e) => Err(errors::from_engine(py, e)),
    }
}

impl std::fmt::Debug for NativeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl NativeGateway {
    /// The engine gateway.
    pub(crate) fn engine(&self) -> &execnet::Gateway {
        &self.inner
    }

    fn exit_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Done>>> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl NativeGateway {
    /// The gateway id.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// The local child process (interpreter or ssh client), if any.
    #[getter]
    fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// The spec the engine opened, as a string.
    #[getter]
    fn spec(&self) -> String {
        self.inner.spec().to_string()
    }

    /// Run Python `source` in the worker; the channel's `gateway` is
    /// `pygateway` (the Python-level gateway).
    fn remote_exec(&self, py: Python<'_>, source: &str, pygateway: Py<PyAny>) -> PyResult<Channel> {
        let gw = self.inner.clone();
        let source = source.to_owned();
        match wait_forever(py, async move { gw.remote_exec(&source).await })? {
            Ok(ch) => Ok(Channel::new(ch, pygateway)),
            Err(e) => Err(errors::from_engine_send(py, e)),
        }
    }

    /// Run `source` compiled under `file_name` (tracebacks show that file's
    /// lines) and then, if `call` is given, `call(channel, **kwargs)`
    /// (execnet's `remote_exec(module)` and `remote_exec(function, **kw)`).
    #[pyo3(signature = (source, file_name, call, kwargs, pygateway))]
    fn remote_exec_code(
        &self,
        py: Python<'_>,
        source: &str,
        file_name: Option<String>,
        call: Option<String>,
        kwargs: &Bound<'_, PyDict>,
        pygateway: Py<PyAny>,
    ) -> PyResult<Channel> {
        let mut code = RemoteCode::new(source);
        if let Some(name) = file_name {
            code = code.filename(name);
        }
        if let Some(function) = call {
            let mut args = Vec::with_capacity(kwargs.len());
            for (key, value) in kwargs.iter() {
                let key: String = key.extract()?;
                args.push((key, convert::to_value(&value)?));
            }
            code = code.call(function, args);
        }
        let gw = self.inner.clone();
        match wait_forever(py, async move { gw.remote_exec_code(code).await })? {
            Ok(ch) => Ok(Channel::new(ch, pygateway)),
            Err(e) => Err(errors::from_engine_send(py, e)),
        }
    }

    /// A new channel, to be sent to the worker inside an item.
    fn newchannel(&self, pygateway: Py<PyAny>) -> Channel {
        Channel::new(self.inner.new_channel(), pygateway)
    }

    /// `{"numchannels", "numexecuting", "execmodel"}` from the worker.
    fn remote_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let gw = self.inner.clone();
        let status = wait_forever(py, async move { gw.remote_status().await })?
            .map_err(|e| errors::from_engine_send(py, e))?;
        let d = PyDict::new(py);
        d.set_item("numchannels", status.numchannels)?;
        d.set_item("numexecuting", status.numexecuting)?;
        d.set_item("execmodel", status.execmodel)?;
        Ok(d)
    }

    /// What the worker said about itself in its hello.
    fn worker_info<'py>(
        &self,
        py: Python<'py>,
        pygateway: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        convert::to_python(py, &self.inner.worker_info(), &pygateway)
    }

    /// Whether the connection has ended (exited, or the worker died).
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Start the exit in the background: ask the worker to stop, wait
    /// `timeout` seconds, then SIGTERM, then SIGKILL, and reap. Returns at
    /// once; `join` waits for it. Idempotent.
    #[pyo3(signature = (timeout = None))]
    fn exit(&self, timeout: Option<f64>) -> PyResult<()> {
        let mut slot = self.exit_slot();
        if slot.is_some() {
            return Ok(());
        }
        let done = Arc::new(Done::default());
        let gw = self.inner.clone();
        let finished = done.clone();
        let timeout = timeout
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Duration::from_secs_f64);
        std::thread::Builder::new()
            .name(format!("execnet-exit-{}", self.inner.id()))
            .spawn(move || {
                let _ = match timeout {
                    Some(t) => futures_lite::future::block_on(gw.exit_timeout(t)),
                    None => futures_lite::future::block_on(gw.exit()),
                };
                finished.set();
            })
            .map_err(|e| {
                pyo3::exceptions::PyOSError::new_err(format!("cannot start a thread: {e}"))
            })?;
        *slot = Some(done);
        Ok(())
    }

    /// Wait until the gateway has ended: its exit finished (when `exit` was
    /// called) or its connection closed. `False` when `timeout` passed first.
    #[pyo3(signature = (timeout = None))]
    fn join(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let limit = timeout
            .filter(|t| t.is_finite())
            .map(|t| Duration::from_secs_f64(t.max(0.0)));
        let done = self.exit_slot().clone();
        match done {
            Some(done) => Ok(wait(py, async move { done.wait().await }, limit)?.is_some()),
            None => {
                let gw = self.inner.clone();
                wait_until(py, move || gw.is_closed(), limit)
            }
        }
    }

    /// Kill the worker at once (SIGKILL) and reap it.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        let gw = self.inner.clone();
        let _ = wait_forever(py, async move { gw.kill().await })?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<NativeGateway {:?}>", self.inner)
    }
}

/// Wait until every gateway in `gateways` has ended (see
/// `NativeGateway.join`), all within one `timeout`; `False` if some had not.
#[pyfunction]
#[pyo3(signature = (gateways, timeout = None))]
pub(crate) fn join_all(
    py: Python<'_>,
    gateways: Vec<Py<NativeGateway>>,
    timeout: Option<f64>,
) -> PyResult<bool> {
    let deadline = timeout
        .filter(|t| t.is_finite())
        .map(|t| std::time::Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    for gw in gateways {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if !gw.get().join(py, left.map(|d| d.as_secs_f64()))? {
            return Ok(false);
        }
    }
    Ok(true)
}
