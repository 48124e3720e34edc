//! The driver of one gateway: the tasks that move bytes between the
//! transport and the [`Session`], the wake-ups of whoever waits, and the
//! connection's life from start to exit.
//!
//! Handles lock [`Driver::lock`] to queue items and take received ones
//! (quinn-style: the session is a plain struct behind a mutex); the reader
//! task feeds decoded frames into the session, the writer task writes what
//! the session queued. Wake-ups go through `event-listener` events so that
//! async and blocking callers wait the same way. The driver knows nothing of
//! the handles (`Gateway`, `Channel`) built on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::Event;
use execnet_proto::{Event as SessionEvent, Loss, Session};
use execnet_transport::{BoxedReader, BoxedWriter, Process, Signal, StderrTail};
use execnet_wire::Decoder;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::{self, wait_bounded};

/// How many bytes of the stream's start are kept to quote in errors.
const FIRST_BYTES: usize = 64;
/// How much the reader asks the decoder for at least, per read.
const READ_CHUNK: usize = 256 * 1024;
/// A read shorter than this is followed by [`READ_YIELDS`] yields of the
/// driver thread before the next read.
const SMALL_READ: usize = 4096;
/// See [`SMALL_READ`]. Tuning: none, 1, 2 and 4 were measured; 2 gave the
/// most frames per read (about 15 instead of 4 on the small-items workload)
/// at no cost to the round trip.
const READ_YIELDS: usize = 2;

/// One gateway's connection: its session, its process, its tasks.
pub(crate) struct Driver {
    state: Mutex<State>,
    /// Wakes the writer task: bytes queued, or the writer should close.
    tx_event: Event,
    /// Connection-level changes: hello arrived, connection lost, exited.
    conn_event: Event,
    pub(crate) process: Option<Box<dyn Process>>,
    pub(crate) stderr_tail: StderrTail,
    pub(crate) description: String,
    /// The gateway id, for what is logged.
    id: String,
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

/// Where the gateway is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Working (or lost, which the session knows).
    Open,
    /// `exit()` runs: the worker was asked to stop; the writer closes the
    /// stream once the outbox is empty.
    Exiting,
    /// `exit()` has finished: the process is reaped.
    Exited,
}

/// Whether the reader task still reads the worker's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    Reading,
    /// It saw the end of the stream (or an error) and stopped.
    Ended,
}

/// What the driver's lock guards.
pub(crate) struct State {
    pub(crate) session: Session,
    /// The wake-up event of each channel somebody waits on.
    chan_events: HashMap<u32, Arc<Event>>,
    /// The first bytes the worker sent, to quote when its hello is missing.
    pub(crate) first_bytes: Vec<u8>,
    phase: Phase,
    reader: Reader,
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        id: &str,
        process: Option<Box<dyn Process>>,
        stderr_tail: StderrTail,
        description: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                session,
                chan_events: HashMap::new(),
                first_bytes: Vec::new(),
                phase: Phase::Open,
                reader: Reader::Reading,
            }),
            tx_event: Event::new(),
            conn_event: Event::new(),
            process,
            stderr_tail,
            description,
            id: id.to_string(),
            writer: Mutex::new(WriterSlot::default()),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent-enough session
        // (every operation completes its table update before it can fail).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reap the process whenever it exits, even if nobody calls exit(); then
    /// kill what its code left in the worker's process group.
    pub(crate) fn watch_process(self: &Arc<Self>) {
        if self.process.is_none() {
            return;
        }
        let driver = self.clone();
        runtime::detach(async move {
            if let Some(p) = &driver.process {
                let _ = p.wait().await;
                let _ = p.kill_group();
            }
            driver.conn_event.notify(usize::MAX);
        });
    }

    /// Start the reader and writer tasks on the stream, whose frames are
    /// limited to `max_frame` bytes.
    pub(crate) fn start(
        self: &Arc<Self>,
        reader: BoxedReader,
        writer: BoxedWriter,
        max_frame: u32,
    ) {
        runtime::detach(read_loop(self.clone(), reader, max_frame));
        runtime::detach(write_loop(self.clone(), writer));
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
        let _ = self.lock().session.poll_transmit(&mut slot.pending);
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

    /// Wake whoever waits on what changed; call after releasing the lock
    /// with what [`State::take_wakeups`] returned.
    pub(crate) fn wake(&self, wakeups: Wakeups) {
        for (channel, error) in wakeups.unread_errors {
            // As Python execnet's `Warning: unhandled RemoteError`: an error
            // nobody can receive any more is said once, not lost.
            log::warn!(
                "{}: channel {channel} was closed with an error nobody received: unhandled RemoteError:\n{}",
                self.id,
                error.trim_end()
            );
        }
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
    pub(crate) fn lose(&self, loss: Loss) {
        let wakeups = {
            let mut st = self.lock();
            st.session.connection_lost(loss);
            let mut w = st.take_wakeups();
            w.conn = true;
            w.transmit = true;
            // Wake every channel, also those without session events.
            w.channels.extend(st.chan_events.values().cloned());
            w
        };
        self.wake(wakeups);
    }

    /// Wait until the worker's hello arrived (`true`) or the connection
    /// ended (`false`).
    pub(crate) async fn wait_hello(&self) -> bool {
        loop {
            let listener = {
                let st = self.lock();
                if st.session.peer().is_some() {
                    return true;
                }
                if st.session.is_lost() {
                    return false;
                }
                self.conn_event.listen()
            };
            listener.await;
        }
    }

    /// The exit sequence: ask the worker to stop, wait for it (bounded by
    /// `timeout`), then SIGTERM and SIGKILL what is left and reap it; every
    /// channel ends. Safe to run many times and concurrently: later calls
    /// wait for the first to finish.
    pub(crate) async fn exit(self: &Arc<Self>, timeout: Duration) {
        let first = {
            let mut st = self.lock();
            let first = st.phase == Phase::Open;
            if first {
                st.phase = Phase::Exiting;
            }
            st.session.terminate();
            first
        };
        self.tx_event.notify(usize::MAX);
        if !first {
            self.wait_for(|st| st.phase == Phase::Exited).await;
            return;
        }
        match &self.process {
            Some(process) => {
                let mut exited = wait_bounded(process.wait(), timeout).await.is_some();
                if !exited && !timeout.is_zero() {
                    let _ = process.signal(Signal::Terminate);
                    let grace = timeout.min(Duration::from_secs(1));
                    exited = wait_bounded(process.wait(), grace).await.is_some();
                }
                if !exited {
                    let _ = process.signal(Signal::Kill);
                    let _ = wait_bounded(process.wait(), Duration::from_secs(5)).await;
                }
                // What the worker's code started goes with it, before exit
                // returns: the watcher does the same, but a program that
                // exits right after exit() may end before the watcher runs.
                let _ = process.kill_group();
            }
            None => {
                // No process to reap: give the worker the time to close
                // its end of the stream.
                let ended = self.wait_for(|st| st.reader == Reader::Ended);
                let _ = wait_bounded(ended, timeout).await;
            }
        }
        self.lose(Loss::ended("the gateway was exited"));
        self.lock().phase = Phase::Exited;
        self.conn_event.notify(usize::MAX);
    }

    /// Wait until `done` holds for the state (checked at every connection
    /// event).
    async fn wait_for(&self, done: impl Fn(&State) -> bool) {
        loop {
            let listener = {
                if done(&self.lock()) {
                    return;
                }
                self.conn_event.listen()
            };
            listener.await;
        }
    }
}

/// Who to wake after a change.
#[derive(Default)]
pub(crate) struct Wakeups {
    channels: Vec<Arc<Event>>,
    /// Remote errors no handle will ever receive, to log.
    unread_errors: Vec<(u32, String)>,
    conn: bool,
    transmit: bool,
}

impl State {
    /// Drain the session's events into the set of things to wake.
    pub(crate) fn take_wakeups(&mut self) -> Wakeups {
        let mut w = Wakeups::default();
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Channel(id) => {
                    if let Some(e) = self.chan_events.get(&id) {
                        w.channels.push(e.clone());
                    }
                }
                SessionEvent::Hello => w.conn = true,
                SessionEvent::UnreadError { channel, error } => {
                    w.unread_errors.push((channel, error));
                }
                // Requests only a worker receives: the opener's session
                // refuses them in handle_input, so none is ever queued here.
                SessionEvent::Exec { .. }
                | SessionEvent::StatusRequest { .. }
                | SessionEvent::Terminate => {}
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

    /// Forget channel `id`'s wake-up event (nobody can wait on it any more).
    pub(crate) fn drop_chan_event(&mut self, id: u32) {
        self.chan_events.remove(&id);
    }
}

/// Read frames from the worker into the session until the stream ends.
async fn read_loop(driver: Arc<Driver>, mut reader: BoxedReader, max_frame: u32) {
    let mut decoder = Decoder::new(max_frame);
    let mut first_bytes: Vec<u8> = Vec::new();
    let loss = loop {
        let buf = decoder.read_buf(READ_CHUNK);
        let n = match reader.read(buf).await {
            Ok(0) => break end_of_stream(&driver, &decoder).await,
            Ok(n) => n,
            Err(e) => {
                break Loss::ended(format!("reading from {} failed: {e}", driver.description))
            }
        };
        let fresh_start = first_bytes.len() < FIRST_BYTES;
        if fresh_start {
            let take = (FIRST_BYTES - first_bytes.len()).min(n);
            first_bytes.extend_from_slice(&buf[..take]);
        }
        decoder.commit(n);
        let mut st = driver.lock();
        if fresh_start {
            st.first_bytes.clone_from(&first_bytes);
        }
        let mut failure = None;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(e) = st.session.handle_input(frame) {
                        failure = Some(Loss::misbehaved(&driver.description, e));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(Loss::misbehaved(&driver.description, e));
                    break;
                }
            }
        }
        let wakeups = st.take_wakeups();
        drop(st);
        driver.wake(wakeups);
        if let Some(loss) = failure {
            break loss;
        }
        if n < SMALL_READ {
            // A short read: the worker writes item by item. Let the threads
            // just woken (a receiver, the worker) run before reading again,
            // so the next read finds several items and every wake-up on
            // both sides serves more of them.
            for _ in 0..READ_YIELDS {
                std::thread::yield_now();
            }
        }
    };
    driver.lock().reader = Reader::Ended;
    driver.lose(loss);
}

/// How long the end of the stream waits for our process to exit, to say
/// how it ended (it closes the stream by exiting, so this is short).
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(1);

/// Why the stream ended: an exit we asked for, or the worker went away (in
/// the middle of a frame, maybe; with its exit status or signal when the
/// process is ours).
async fn end_of_stream(driver: &Driver, decoder: &Decoder) -> Loss {
    if driver.lock().session.is_terminating() {
        return Loss::ended("the gateway was exited");
    }
    let mut reason = format!("{}: the worker's stream ended", driver.description);
    if let Err(e) = decoder.finish() {
        reason.push_str(&format!(" ({e})"));
    }
    Loss::Ended(with_exit_status(driver, reason).await)
}

/// `reason`, and how our process ended when it is ours and ends within
/// [`EXIT_STATUS_WAIT`].
async fn with_exit_status(driver: &Driver, mut reason: String) -> String {
    if let Some(process) = &driver.process {
        if let Some(Ok(status)) = wait_bounded(process.wait(), EXIT_STATUS_WAIT).await {
            reason.push_str(&format!("; {}", describe_exit(status)));
        }
    }
    reason
}

/// Why a write failed. A broken pipe is the worker gone (killed, or exited
/// while we wrote): said like the end of its stream, with its exit status
/// or signal when the process is ours, as the reader would have said it.
async fn write_failure(driver: &Driver, e: std::io::Error) -> Loss {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        return Loss::ended(format!("writing to {} failed: {e}", driver.description));
    }
    let reason = format!(
        "{}: the worker's stream ended (writing to it failed: {e})",
        driver.description
    );
    Loss::Ended(with_exit_status(driver, reason).await)
}

/// How a process ended, in words: `the process exited with status 3`,
/// `the process was killed by signal 9 (SIGKILL)`.
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the process exited with status {code}"),
        (None, Some(signal)) => match signal_name(signal) {
            Some(name) => format!("the process was killed by signal {signal} ({name})"),
            None => format!("the process was killed by signal {signal}"),
        },
        (None, None) => format!("the process ended ({status})"),
    }
}

/// The usual name of a signal number (those numbered alike on Linux, the
/// BSDs and macOS).
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// Write what the session queues until the connection ends or the gateway
/// exits; then close the stream (the worker sees EOF). Threads that queue
/// bytes write them themselves while this task waits (see
/// `Driver::try_write_now`); it takes over when the stream would block.
async fn write_loop(driver: Arc<Driver>, writer: BoxedWriter) {
    driver.writer_slot().writer = Some(writer);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut writer = loop {
        let listener = driver.tx_event.listen();
        let Some(mut writer) = driver.writer_slot().writer.take() else {
            return;
        };
        buf.clear();
        {
            let mut slot = driver.writer_slot();
            let from = slot.written;
            buf.extend_from_slice(&slot.pending[from..]);
            slot.pending.clear();
            slot.written = 0;
        }
        let stop = {
            let mut st = driver.lock();
            let _ = st.session.poll_transmit(&mut buf);
            buf.is_empty() && (st.phase != Phase::Open || st.session.is_lost())
        };
        if stop {
            break writer;
        }
        if buf.is_empty() {
            driver.writer_slot().writer = Some(writer);
            listener.await;
            continue;
        }
        let result = async {
            writer.write_all(&buf).await?;
            writer.flush().await
        }
        .await;
        if let Err(e) = result {
            driver.lose(write_failure(&driver, e).await);
            break writer;
        }
        driver.writer_slot().writer = Some(writer);
    };
    let _ = writer.close().await;
}
