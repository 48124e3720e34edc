//! The state one gateway's handles and driver tasks share, and the driver.
//!
//! Handles lock [`Shared::state`] to queue items and take received ones
//! (quinn-style: the session is a plain struct behind a mutex); the driver's
//! reader task feeds decoded frames into the session, its writer task writes
//! what the session queued. Wake-ups go through `event-listener` events so
//! that async and blocking callers wait the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use event_listener::Event;
use execnet_transport::{BoxedReader, BoxedWriter, Process, StderrTail};
use execnet_wire::Decoder;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::channel::ChannelInner;
use crate::session::{self, Session};

/// How many bytes of the stream's start are kept to quote in errors.
const FIRST_BYTES: usize = 64;
/// How much the reader asks the decoder for at least, per read.
const READ_CHUNK: usize = 256 * 1024;

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Wakes the writer task: bytes queued, or the writer should close.
    pub(crate) tx_event: Event,
    /// Connection-level changes: hello arrived, connection lost, exited.
    pub(crate) conn_event: Event,
    pub(crate) process: Option<Box<dyn Process>>,
    pub(crate) stderr_tail: StderrTail,
    pub(crate) description: String,
    /// The write half, while the writer task does not hold it: a thread
    /// that queued bytes may write them itself (no hand-off, lower latency).
    writer: Mutex<WriterSlot>,
}

/// The stream's write half and bytes taken from the session but not yet
/// written (they go out before anything queued later).
#[derive(Default)]
struct WriterSlot {
    writer: Option<BoxedWriter>,
    pending: Vec<u8>,
    written: usize,
}

pub(crate) struct State {
    pub(crate) session: Session,
    pub(crate) chan_events: HashMap<u32, Arc<Event>>,
    /// The live handle of each channel the application holds.
    pub(crate) handles: HashMap<u32, Weak<ChannelInner>>,
    /// Channels whose items go to a callback; `true` once it has finished.
    pub(crate) callbacks: HashMap<u32, bool>,
    pub(crate) first_bytes: Vec<u8>,
    pub(crate) reader_done: bool,
    /// Ask the writer to close the stream once the outbox is empty.
    pub(crate) close_writer: bool,
    /// `exit()` has finished (process reaped).
    pub(crate) exited: bool,
    pub(crate) exiting: bool,
}

impl Shared {
    pub(crate) fn new(
        session: Session,
        process: Option<Box<dyn Process>>,
        stderr_tail: StderrTail,
        description: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                session,
                chan_events: HashMap::new(),
                handles: HashMap::new(),
                callbacks: HashMap::new(),
                first_bytes: Vec::new(),
                reader_done: false,
                close_writer: false,
                exited: false,
                exiting: false,
            }),
            tx_event: Event::new(),
            conn_event: Event::new(),
            process,
            stderr_tail,
            description,
            writer: Mutex::new(WriterSlot::default()),
        })
    }

    /// Write what the session queued from the calling thread, if the writer
    /// is free and the stream takes it all without waiting. `false`: the
    /// writer task must do it.
    fn try_write_now(&self) -> bool {
        let Ok(mut guard) = self.writer.try_lock() else {
            return false;
        };
        let slot = &mut *guard;
        let Some(writer) = slot.writer.as_mut() else {
            return false;
        };
        if slot.written < slot.pending.len() {
            return false;
        }
        slot.pending.clear();
        slot.written = 0;
        self.lock().session.poll_transmit(&mut slot.pending);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while slot.written < slot.pending.len() {
            match writer
                .as_mut()
                .poll_write(&mut cx, &slot.pending[slot.written..])
            {
                Poll::Ready(Ok(n)) if n > 0 => slot.written += n,
                _ => return false,
            }
        }
        matches!(writer.as_mut().poll_flush(&mut cx), Poll::Ready(Ok(())))
    }

    fn writer_slot(&self) -> MutexGuard<'_, WriterSlot> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent-enough session
        // (every operation completes its table update before it can fail).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Process the session's events (after a change made under `state`) and
    /// wake whoever waits; call after releasing the lock with what
    /// [`State::take_wakeups`] returned.
    pub(crate) fn wake(&self, wakeups: Wakeups) {
        for event in wakeups.channels {
            event.notify(usize::MAX);
        }
        if wakeups.conn {
            self.conn_event.notify(usize::MAX);
        }
        if wakeups.transmit && !self.try_write_now() {
            self.tx_event.notify(usize::MAX);
        }
    }

    /// Mark the connection as lost and wake everybody.
    pub(crate) fn lose(&self, reason: &str) {
        let wakeups = {
            let mut st = self.lock();
            st.session.connection_lost(reason);
            st.close_writer = true;
            let mut w = st.take_wakeups();
            w.conn = true;
            w.transmit = true;
            // Wake every channel, also those without session events.
            w.channels.extend(st.chan_events.values().cloned());
            w
        };
        self.wake(wakeups);
    }
}

/// Who to wake after a change.
#[derive(Default)]
pub(crate) struct Wakeups {
    channels: Vec<Arc<Event>>,
    conn: bool,
    transmit: bool,
}

impl State {
    /// Drain the session's events into the set of things to wake.
    pub(crate) fn take_wakeups(&mut self) -> Wakeups {
        let mut w = Wakeups::default();
        while let Some(event) = self.session.poll_event() {
            match event {
                session::Event::Channel(id) => {
                    if let Some(e) = self.chan_events.get(&id) {
                        w.channels.push(e.clone());
                    }
                }
                session::Event::Hello => w.conn = true,
                // Worker-role events do not occur on the opener.
                _ => {}
            }
        }
        w.transmit = self.session.has_transmit();
        w
    }

    /// The wake-up event of channel `id`, created on first use.
    pub(crate) fn chan_event(&mut self, id: u32) -> Arc<Event> {
        self.chan_events
            .entry(id)
            .or_insert_with(|| Arc::new(Event::new()))
            .clone()
    }
}

/// Read frames from the worker into the session until the stream ends.
pub(crate) async fn read_loop(shared: Arc<Shared>, mut reader: BoxedReader, max_frame: u32) {
    let mut decoder = Decoder::new(max_frame);
    let mut first_bytes: Vec<u8> = Vec::new();
    let reason = loop {
        let buf = decoder.read_buf(READ_CHUNK);
        let n = match reader.read(buf).await {
            Ok(0) => break end_reason(&shared, &decoder),
            Ok(n) => n,
            Err(e) => break format!("reading from {} failed: {e}", shared.description),
        };
        let fresh_start = first_bytes.len() < FIRST_BYTES;
        if fresh_start {
            let take = (FIRST_BYTES - first_bytes.len()).min(n);
            first_bytes.extend_from_slice(&buf[..take]);
        }
        decoder.commit(n);
        let mut st = shared.lock();
        if fresh_start {
            st.first_bytes.clone_from(&first_bytes);
        }
        let mut failure = None;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(e) = st.session.handle_input(frame) {
                        failure = Some(e.to_string());
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let wakeups = st.take_wakeups();
        drop(st);
        shared.wake(wakeups);
        if let Some(reason) = failure {
            break format!("{}: {reason}", shared.description);
        }
    };
    shared.lock().reader_done = true;
    shared.lose(&reason);
}

fn end_reason(shared: &Shared, decoder: &Decoder) -> String {
    let terminating = shared.lock().session.is_terminating();
    if terminating {
        return "the gateway was exited".into();
    }
    let mut reason = format!("{}: the worker's stream ended", shared.description);
    if let Err(e) = decoder.finish() {
        reason.push_str(&format!(" ({e})"));
    }
    reason
}

/// Write what the session queues until the connection ends or the writer is
/// asked to close; then close the stream (the worker sees EOF). Threads that
/// queue bytes write them themselves while this task waits (see
/// `Shared::try_write_now`); it takes over when the stream would block.
pub(crate) async fn write_loop(shared: Arc<Shared>, writer: BoxedWriter) {
    shared.writer_slot().writer = Some(writer);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut writer = loop {
        let listener = shared.tx_event.listen();
        let Some(mut writer) = shared.writer_slot().writer.take() else {
            return;
        };
        buf.clear();
        {
            let mut slot = shared.writer_slot();
            let from = slot.written;
            buf.extend_from_slice(&slot.pending[from..]);
            slot.pending.clear();
            slot.written = 0;
        }
        let stop = {
            let mut st = shared.lock();
            st.session.poll_transmit(&mut buf);
            buf.is_empty() && (st.close_writer || st.session.lost_reason().is_some())
        };
        if stop {
            break writer;
        }
        if buf.is_empty() {
            shared.writer_slot().writer = Some(writer);
            listener.await;
            continue;
        }
        let result = async {
            writer.write_all(&buf).await?;
            writer.flush().await
        }
        .await;
        if let Err(e) = result {
            shared.lose(&format!("writing to {} failed: {e}", shared.description));
            break writer;
        }
        shared.writer_slot().writer = Some(writer);
    };
    let _ = writer.close().await;
}
