//! Waiting for the engine without holding the GIL, and without missing
//! Ctrl-C.
//!
//! The engine's calls are futures that the driver thread wakes. We poll one
//! first while holding the GIL (an item already queued, a send with credit
//! left: no thread switch at all); when it is pending, the GIL is released
//! and the thread parks until the waker unparks it. On Python's main thread
//! (the only one that runs signal handlers) the park is cut into slices of
//! [`SIGNAL_SLICE`]; between slices the GIL is taken for a moment to run
//! pending signal handlers, so Ctrl-C raises `KeyboardInterrupt` within
//! that slice. The future is then dropped: every engine call we wait on
//! leaves no trace when dropped (an item not taken stays queued).

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How often the main thread looks at pending signals while it waits.
const SIGNAL_SLICE: Duration = Duration::from_millis(40);

/// How often a wait looks again (yielding the CPU in between) before it parks.
const SPINS: u32 = 8;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    static IS_MAIN: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether this is Python's main thread (where signal handlers run).
fn is_main_thread(py: Python<'_>) -> bool {
    IS_MAIN.with(|cell| {
        if let Some(known) = cell.get() {
            return known;
        }
        let main = (|| -> PyResult<bool> {
            let threading = py.import("threading")?;
            let main = threading.call_method0("main_thread")?.getattr("ident")?;
            let me = threading.call_method0("get_ident")?;
            main.eq(me)
        })()
        .unwrap_or(false);
        cell.set(Some(main));
        main
    })
}

/// Run `fut` to completion: `Ok(None)` when `timeout` passed first; a
/// Python exception when a signal handler raised (KeyboardInterrupt).
pub(crate) fn wait<F>(
    py: Python<'_>,
    fut: F,
    timeout: Option<Duration>,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    wait_inner(py, fut, timeout, true)
}

/// [`wait_forever`] for work worth doing without the GIL (encoding and
/// writing a bulk item): the first poll already runs with the GIL released.
pub(crate) fn wait_released<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    match wait_inner(py, fut, None, false)? {
        Some(out) => Ok(out),
        None => unreachable_timeout(),
    }
}

/// `eager`: poll once with the GIL held before releasing it.
fn wait_inner<F>(
    py: Python<'_>,
    fut: F,
    timeout: Option<Duration>,
    eager: bool,
) -> PyResult<Option<F::Output>>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = Box::pin(fut);
    let waker = WAKER.with(Waker::clone);
    if eager {
        let mut cx = Context::from_waker(&waker);
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Ok(Some(out));
        }
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    if eager && deadline.is_some_and(|d| d <= Instant::now()) {
        return Ok(None);
    }
    let check_signals = is_main_thread(py);
    py.detach(move || {
        let mut cx = Context::from_waker(&waker);
        if !eager {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Ok(Some(out));
            }
        }
        // A reply or the next item of a stream is often microseconds away:
        // look again a few times before paying for a sleep and a wake-up.
        for _ in 0..SPINS {
            thread::yield_now();
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Ok(Some(out));
            }
        }
        let mut next_check = Instant::now() + SIGNAL_SLICE;
        loop {
            let now = Instant::now();
            let mut until = deadline;
            if check_signals {
                until = Some(until.map_or(next_check, |d| d.min(next_check)));
            }
            match until {
                Some(t) if t > now => thread::park_timeout(t - now),
                Some(_) => {}
                None => thread::park(),
            }
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Ok(Some(out));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(None);
            }
            if check_signals && next_check <= now {
                Python::attach(|py| py.check_signals())?;
                next_check = now + SIGNAL_SLICE;
            }
        }
    })
}

/// [`wait`] without a timeout.
pub(crate) fn wait_forever<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    match wait(py, fut, None)? {
        Some(out) => Ok(out),
        None => unreachable_timeout(),
    }
}

#[cold]
fn unreachable_timeout<T>() -> PyResult<T> {
    Err(pyo3::exceptions::PyRuntimeError::new_err(
        "execnet: a wait without timeout timed out",
    ))
}

/// How often [`wait_until`] looks at its condition.
const POLL: Duration = Duration::from_millis(10);

/// Wait (GIL released) until `done()` is true, looking every few
/// milliseconds, for state the engine offers no wake-up for. `false` when
/// `timeout` passed first.
pub(crate) fn wait_until(
    py: Python<'_>,
    done: impl Fn() -> bool + Send,
    timeout: Option<Duration>,
) -> PyResult<bool> {
    if done() {
        return Ok(true);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let check_signals = is_main_thread(py);
    py.detach(move || {
        let mut next_check = Instant::now() + SIGNAL_SLICE;
        loop {
            let now = Instant::now();
            let nap = deadline.map_or(POLL, |d| d.saturating_duration_since(now).min(POLL));
            thread::sleep(nap);
            if done() {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(false);
            }
            if check_signals && next_check <= now {
                Python::attach(|py| py.check_signals())?;
                next_check = now + SIGNAL_SLICE;
            }
        }
    })
}
