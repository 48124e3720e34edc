//! One running spawner: starting it, its control stream (the message table
//! is in `gateway/worker/spawner.py`), forks, and its end.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Async;
use event_listener::{Event, EventListener};
use execnet_proto::Loss;
use execnet_transport::{
    BoxedReader, BoxedWriter, ChildProcess, Connection, Process, Signal, SshTransport, StderrTail,
    Step, Transport, TransportError,
};
use execnet_xspec::{Kind, XSpec};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::fdpass::send_with_fds;
use super::forked::ForkedProcess;
use super::outbox::{MuxWriter, Outbox};
use super::{forget, Place};
use crate::bootstrap::{self, Cause, HandshakeFailure, StartFailure};
use crate::code_cache::Program;
use crate::error::{Error, Result};
use crate::gateway::{Gateway, Options};
use crate::runtime::{self, wait_bounded};
use crate::stderr::StderrLines;

/// The pipe buffer size asked for a local fork's stream (as for popen).
const PIPE_SIZE: usize = 1 << 20;
/// Buffer of each in-memory pipe of a remote fork's stream.
const MUX_PIPE: usize = 256 << 10;
/// Largest chunk of a remote fork's input per message.
pub(super) const CHUNK: usize = 256 << 10;
/// Largest message payload accepted from a spawner.
const MAX_PAYLOAD: usize = 1 << 20;

/// Why a fork did not give a gateway.
pub(crate) enum ForkError {
    /// The spawner is gone (died, or lingered out): start another.
    Gone,
    /// The spawner could not fork (what it said).
    Failed(String),
    /// No answer in time.
    Timeout(Duration),
}

impl ForkError {
    pub(crate) fn into_error(self, id: &str) -> Error {
        let message = match self {
            ForkError::Gone => "the spawner of this place ended while forking the worker".into(),
            ForkError::Failed(why) => format!("the spawner could not fork a worker: {why}"),
            ForkError::Timeout(t) => format!("the spawner did not fork a worker within {t:?}"),
        };
        Error::Bootstrap {
            gateway: id.to_string(),
            step: Step::Interpreter,
            message,
        }
    }
}

/// A running spawner.
pub(crate) struct Spawner {
    /// Local (fd passing) or remote (streams multiplexed over the control).
    pub(super) local: bool,
    key: String,
    /// What runs the spawner ("python3", "ssh host"), for errors.
    description: String,
    /// Local: the control socket (its fds travel on it).
    socket: Option<Arc<Async<UnixStream>>>,
    /// Local: orders writes to `socket`.
    writer: async_lock::Mutex<()>,
    /// Remote: the control stream's write half.
    outbox: Option<Arc<Outbox>>,
    state: Mutex<State>,
    /// Anything changed: a fork answered, a worker exited, the spawner ended.
    event: Event,
    /// The local process running the spawner (python, or the ssh client).
    process: Option<Box<dyn Process>>,
    me: Weak<Spawner>,
}

struct State {
    next_gid: u32,
    kids: HashMap<u32, Kid>,
    /// Gateways whose worker has neither exited nor been dropped.
    live: usize,
    /// Bumped at each fork: a linger that sees another value has been
    /// overtaken by a newer gateway.
    generation: u64,
    linger: Duration,
    lost: bool,
    closing: bool,
}

#[derive(Default)]
struct Kid {
    started: Option<std::result::Result<u32, String>>,
    status: Option<i32>,
    stdout: Option<piper::Writer>,
    stderr: Option<piper::Writer>,
    /// Counted out of `live` (exited or dropped).
    released: bool,
    /// Its `ForkedProcess` is gone: forget it once it exited.
    dropped: bool,
}

/// One message head: op, gid, payload length.
pub(super) fn head(op: u8, gid: u32, len: usize) -> [u8; 9] {
    let mut h = [0u8; 9];
    h[0] = op;
    h[1..5].copy_from_slice(&gid.to_le_bytes());
    h[5..9].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    h
}

pub(super) fn message(op: u8, gid: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(9 + payload.len());
    m.extend_from_slice(&head(op, gid, payload.len()));
    m.extend_from_slice(payload);
    m
}

impl Spawner {
    /// Start the spawner of `place` with the settings of `spec`; wait for it
    /// to be ready. A failure reads like a direct start's (the step, the
    /// exit status, ssh's diagnosis, the stderr).
    pub(crate) async fn start(
        place: &Place,
        spec: &XSpec,
        id: &str,
        options: &Options,
        linger: Duration,
        via: Option<&Gateway>,
    ) -> Result<Arc<Spawner>> {
        let local = via.is_none() && matches!(spec.kind(), Kind::Popen);
        let connect_err = |e: TransportError| Error::Bootstrap {
            gateway: id.to_string(),
            step: e.step(),
            message: e.to_string(),
        };
        let (conn, socket, mut transport) = if let Some(via) = via {
            (
                crate::route::relay_connection(spec, id, via).await?,
                None,
                None,
            )
        } else if local {
            let (conn, socket) = start_local(place, spec).map_err(connect_err)?;
            (conn, Some(socket), None)
        } else {
            let mut transport = remote_transport(place, spec, id, options)?;
            let conn = transport.connect().await.map_err(connect_err)?;
            (conn, None, Some(transport))
        };
        let Connection {
            mut reader,
            mut writer,
            stderr,
            stderr_tail,
            process,
            description,
        } = conn;
        // The spawner's (or ssh's) stderr is quoted when its start fails;
        // otherwise it is logged (what it said while starting at warn level,
        // under the id of the gateway that started it), never printed.
        let lines = StderrLines::pumped(id, false, stderr, &stderr_tail);
        // A local interpreter we trust compiles the spawner for the cache
        // (as a direct popen start compiles the worker); the same code then
        // serves every spawner with that bytecode magic, local or remote.
        let learn = local && bootstrap::compiles_honestly(&bootstrap::python_command(spec));
        let mode: &[u8] = if local { b"L" } else { b"R" };
        let ready = wait_bounded(
            async {
                bootstrap::ship_worker(&mut reader, &mut writer, learn, Program::Spawner).await?;
                if let Err(e) = async {
                    writer.write_all(mode).await?;
                    writer.flush().await
                }
                .await
                {
                    return Err(HandshakeFailure {
                        first_bytes: Vec::new(),
                        reason: format!("sending the spawner its mode failed: {e}"),
                    });
                }
                read_ready(&mut reader).await
            },
            options.bootstrap_timeout,
        )
        .await;
        let failure = match ready {
            Some(Ok(())) => None,
            Some(Err(failure)) => Some((Cause::Lost, failure)),
            None => Some((
                Cause::Timeout(options.bootstrap_timeout),
                HandshakeFailure {
                    first_bytes: Vec::new(),
                    reason: String::new(),
                },
            )),
        };
        if let Some((cause, failure)) = failure {
            drop(writer);
            let loss = (!failure.reason.is_empty()).then_some(Loss::Ended(failure.reason));
            let start = StartFailure {
                process: process.as_deref(),
                stderr: &stderr_tail,
                first_bytes: failure.first_bytes,
                loss,
                description: &description,
                transport: transport.as_deref_mut().map(|t| t as &mut dyn Transport),
            };
            let err = bootstrap::diagnose(start, id, cause).await;
            if let Some(p) = &process {
                let _ = p.signal(Signal::Kill);
                let _ = wait_bounded(p.wait(), Duration::from_secs(2)).await;
            }
            return Err(err);
        }
        lines.started();
        let spawner = Arc::new_cyclic(|me| Spawner {
            local,
            key: place.key.clone(),
            description,
            outbox: (!local).then(|| Outbox::new(writer)),
            socket,
            writer: async_lock::Mutex::new(()),
            state: Mutex::new(State {
                next_gid: 1,
                kids: HashMap::new(),
                live: 0,
                generation: 0,
                linger,
                lost: false,
                closing: false,
            }),
            event: Event::new(),
            process,
            me: me.clone(),
        });
        runtime::detach(read_loop(spawner.clone(), reader));
        Ok(spawner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether new gateways can be forked from it.
    pub(crate) fn usable(&self) -> bool {
        let st = self.lock();
        !st.lost && !st.closing
    }

    pub(crate) fn set_linger(&self, linger: Duration) {
        self.lock().linger = linger;
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lock().lost
    }

    pub(crate) fn listen(&self) -> EventListener {
        self.event.listen()
    }

    pub(crate) fn process_pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.pid())
    }

    /// The wait status of worker `gid`, once it exited.
    pub(crate) fn exit_status(&self, gid: u32) -> Option<i32> {
        self.lock().kids.get(&gid).and_then(|k| k.status)
    }

    /// Fork a worker; its stream, with the worker not yet past its hello.
    pub(crate) async fn fork(&self, id: &str, timeout: Duration) -> Result<Connection, ForkError> {
        let Some(me) = self.me.upgrade() else {
            return Err(ForkError::Gone);
        };
        let gid = {
            let mut st = self.lock();
            if st.lost || st.closing {
                return Err(ForkError::Gone);
            }
            let gid = st.next_gid;
            st.next_gid = st.next_gid.wrapping_add(1).max(1);
            st.kids.insert(gid, Kid::default());
            st.live += 1;
            st.generation += 1;
            gid
        };
        // From here on its drop counts the gateway out again.
        let mut process = ForkedProcess {
            spawner: me.clone(),
            gid,
            pid: 0,
        };
        let (reader, writer, stderr): (BoxedReader, BoxedWriter, BoxedReader) = if self.local {
            self.fork_local(gid).await.map_err(|_| ForkError::Gone)?
        } else {
            self.fork_remote(gid).await.map_err(|_| ForkError::Gone)?
        };
        let started = wait_bounded(
            async {
                loop {
                    let listener = self.listen();
                    {
                        let st = self.lock();
                        match st.kids.get(&gid).and_then(|k| k.started.clone()) {
                            Some(started) => return started.map_err(ForkError::Failed),
                            None if st.lost => return Err(ForkError::Gone),
                            None => {}
                        }
                    }
                    listener.await;
                }
            },
            timeout,
        )
        .await
        .unwrap_or(Err(ForkError::Timeout(timeout)))?;
        process.pid = started;
        let _ = id;
        Ok(Connection {
            reader,
            writer,
            stderr: Some(stderr),
            stderr_tail: StderrTail::new(),
            process: Some(Box::new(process)),
            description: format!("{} (forked worker {started})", self.description),
        })
    }

    /// Three pipes; their far ends go to the spawner with the fork request.
    async fn fork_local(&self, gid: u32) -> io::Result<(BoxedReader, BoxedWriter, BoxedReader)> {
        let socket = self
            .socket
            .as_ref()
            .ok_or_else(|| io::Error::other("no control socket"))?;
        // rustix's pipes (CLOEXEC): std::io::pipe is newer than our MSRV.
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // Bigger pipes, fewer context switches per MiB (best effort).
        let _ = rustix::pipe::fcntl_setpipe_size(&in_w, PIPE_SIZE);
        let _ = rustix::pipe::fcntl_setpipe_size(&out_r, PIPE_SIZE);
        {
            let _order = self.writer.lock().await;
            let fds = [in_r.as_fd(), out_w.as_fd(), err_w.as_fd()];
            send_with_fds(socket, &head(b'F', gid, 0), &fds).await?;
        }
        drop((in_r, out_w, err_w));
        Ok((
            Box::pin(Async::new(std::fs::File::from(out_r))?),
            Box::pin(Async::new(std::fs::File::from(in_w))?),
            Box::pin(Async::new(std::fs::File::from(err_r))?),
        ))
    }

    /// In-memory pipes fed from the control stream; the worker's stdin
    /// writes `D` messages into it.
    async fn fork_remote(&self, gid: u32) -> io::Result<(BoxedReader, BoxedWriter, BoxedReader)> {
        let outbox = self
            .outbox
            .as_ref()
            .ok_or_else(|| io::Error::other("no control stream"))?;
        let (out_reader, out_writer) = piper::pipe(MUX_PIPE);
        let (err_reader, err_writer) = piper::pipe(64 << 10);
        {
            let mut st = self.lock();
            if let Some(kid) = st.kids.get_mut(&gid) {
                kid.stdout = Some(out_writer);
                kid.stderr = Some(err_writer);
            }
        }
        outbox.push(&head(b'F', gid, 0))?;
        Ok((
            Box::pin(out_reader),
            Box::pin(MuxWriter::new(outbox.clone(), gid)),
            Box::pin(err_reader),
        ))
    }

    /// Write one message (or several) to the control stream.
    async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        if let Some(outbox) = &self.outbox {
            return outbox.push(bytes);
        }
        let _order = self.writer.lock().await;
        match &self.socket {
            Some(socket) => {
                let mut s = &**socket;
                s.write_all(bytes).await
            }
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Signal worker `gid` (and with `group`, its process group) through the
    /// spawner, which knows whether the pid is still that worker's.
    pub(crate) fn signal(&self, gid: u32, pid: u32, signal: Signal, group: bool) {
        let signum: u8 = match signal {
            Signal::Terminate => 15,
            _ => 9,
        };
        if self.is_lost() {
            // Nobody reaps for the spawner any more: a local worker is init's
            // child now and its pid still its own until it exits.
            if self.local && pid != 0 {
                let _ = execnet_transport::signal_process(pid, signal, group);
            }
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let bytes = message(b'S', gid, &[signum, u8::from(group)]);
        runtime::detach(async move {
            let _ = me.send(&bytes).await;
        });
    }

    /// Gateway `gid` is gone (its worker exited, or its handle was dropped):
    /// with no gateway left, the linger starts.
    pub(crate) fn release(&self, gid: u32) {
        self.count_out(gid, true);
    }

    fn count_out(&self, gid: u32, dropped: bool) {
        let idle_since = {
            let mut st = self.lock();
            let lost = st.lost;
            let Some(kid) = st.kids.get_mut(&gid) else {
                return;
            };
            kid.dropped |= dropped;
            let newly = !kid.released;
            kid.released = true;
            if kid.dropped && (kid.status.is_some() || lost) {
                st.kids.remove(&gid);
            }
            if newly {
                st.live -= 1;
            }
            (newly && st.live == 0).then_some((st.generation, st.linger))
        };
        if let Some((generation, linger)) = idle_since {
            if let Some(me) = self.me.upgrade() {
                runtime::detach(async move {
                    if !linger.is_zero() {
                        async_io::Timer::after(linger).await;
                    }
                    me.close_if_idle(generation).await;
                });
            }
        }
    }

    /// End the spawner if no gateway came since the linger started.
    async fn close_if_idle(&self, generation: u64) {
        {
            let mut st = self.lock();
            if st.live > 0 || st.generation != generation || st.closing || st.lost {
                return;
            }
            st.closing = true;
        }
        if let Some(me) = self.me.upgrade() {
            forget(&self.key, &me);
        }
        self.close().await;
    }

    /// End the control stream: the spawner exits when it sees the end.
    async fn close(&self) {
        if let Some(outbox) = &self.outbox {
            outbox.close();
        }
        let _order = self.writer.lock().await;
        if let Some(socket) = &self.socket {
            let _ = socket.get_ref().shutdown(std::net::Shutdown::Write);
        }
    }

    /// The control stream ended: nothing more will be reported.
    fn mark_lost(&self) {
        if let Some(outbox) = &self.outbox {
            outbox.end();
        }
        {
            let mut st = self.lock();
            st.lost = true;
            st.kids.retain(|_, kid| {
                kid.stdout = None;
                kid.stderr = None;
                if kid.started.is_none() {
                    kid.started = Some(Err("the spawner ended".into()));
                }
                !kid.dropped
            });
        }
        self.event.notify(usize::MAX);
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        if let Some(socket) = &self.socket {
            let _ = socket.get_ref().shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Read the control stream until it ends; then reap the spawner's process.
async fn read_loop(spawner: Arc<Spawner>, reader: BoxedReader) {
    let mut reader = futures_lite::io::BufReader::with_capacity(CHUNK, reader);
    loop {
        let mut h = [0u8; 9];
        if reader.read_exact(&mut h).await.is_err() {
            break;
        }
        let op = h[0];
        let gid = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
        let len = u32::from_le_bytes([h[5], h[6], h[7], h[8]]) as usize;
        if len > MAX_PAYLOAD {
            break; // not our spawner's message: stop listening to it
        }
        let mut payload = vec![0u8; len];
        if reader.read_exact(&mut payload).await.is_err() {
            break;
        }
        match op {
            b'P' if len == 4 => {
                let pid = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                spawner.update(gid, |kid| kid.started = Some(Ok(pid)));
            }
            b'!' => {
                let why = String::from_utf8_lossy(&payload).into_owned();
                spawner.update(gid, |kid| kid.started = Some(Err(why)));
            }
            b'O' | b'2' => relay(&spawner, gid, op == b'O', payload).await,
            b'X' if len == 4 => {
                let status = i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                spawner.update(gid, |kid| {
                    kid.status = Some(status);
                    kid.stdout = None;
                    kid.stderr = None;
                });
                spawner.count_out(gid, false);
            }
            _ => break,
        }
    }
    spawner.mark_lost();
    forget(&spawner.key, &spawner);
    if let Some(p) = &spawner.process {
        if wait_bounded(p.wait(), Duration::from_secs(2))
            .await
            .is_none()
        {
            let _ = p.signal(Signal::Kill);
            let _ = p.wait().await;
        }
    }
}

impl Spawner {
    fn update(&self, gid: u32, f: impl FnOnce(&mut Kid)) {
        if let Some(kid) = self.lock().kids.get_mut(&gid) {
            f(kid);
        }
        self.event.notify(usize::MAX);
    }
}

/// Hand a remote worker's output to its gateway (an empty payload: the end).
async fn relay(spawner: &Spawner, gid: u32, stdout: bool, payload: Vec<u8>) {
    let take = |kid: &mut Kid| {
        if stdout {
            kid.stdout.take()
        } else {
            kid.stderr.take()
        }
    };
    let Some(mut pipe) = spawner.lock().kids.get_mut(&gid).and_then(take) else {
        return;
    };
    if payload.is_empty() || pipe.write_all(&payload).await.is_err() {
        return; // the end, or nobody reads it any more
    }
    if let Some(kid) = spawner.lock().kids.get_mut(&gid) {
        if stdout {
            kid.stdout = Some(pipe);
        } else {
            kid.stderr = Some(pipe);
        }
    }
}

/// After the loader took the spawner program: its ready message.
async fn read_ready(reader: &mut BoxedReader) -> std::result::Result<(), HandshakeFailure> {
    let mut h = [0u8; 13];
    match reader.read_exact(&mut h).await {
        Ok(()) if h[0] == b'R' && h[5..9] == 4u32.to_le_bytes() => Ok(()),
        Ok(()) => Err(HandshakeFailure {
            first_bytes: h.to_vec(),
            reason: "the spawner answered with something else than its ready message".into(),
        }),
        Err(e) => Err(HandshakeFailure {
            first_bytes: Vec::new(),
            reason: format!("the spawner ended before it was ready ({e})"),
        }),
    }
}

/// The local spawner: `python -c LOADER` with a unix socket as its
/// stdin/stdout, leading its own process group like a popen worker.
fn start_local(
    place: &Place,
    spec: &XSpec,
) -> std::result::Result<(Connection, Arc<Async<UnixStream>>), TransportError> {
    let io_err = |context: &str, source: io::Error| TransportError::Io {
        context: context.to_string(),
        source,
    };
    let argv = bootstrap::worker_argv(spec);
    let program = match spec.python() {
        Some(p) => format!("python={p}"),
        None => argv[0].clone(),
    };
    let (ours, theirs) = UnixStream::pair().map_err(|e| io_err("a socket for the spawner", e))?;
    let theirs_out = theirs
        .try_clone()
        .map_err(|e| io_err("a socket for the spawner", e))?;
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    for (k, v) in &place.env {
        cmd.env(k, v);
    }
    // Set through async-process, which would make unset ones inherited.
    let mut cmd = async_process::Command::from(cmd);
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    drop(cmd); // our copies of the spawner's ends
    let mut child = spawned.map_err(|e| TransportError::spawn(program.clone(), e))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io_err(&program, io::Error::other("no stderr pipe")))?;
    let socket = Arc::new(Async::new(ours).map_err(|e| io_err("the spawner's socket", e))?);
    let conn = Connection {
        reader: Box::pin(SocketHalf(socket.clone())),
        writer: Box::pin(SocketHalf(socket.clone())),
        stderr: Some(Box::pin(stderr)),
        stderr_tail: StderrTail::new(),
        process: Some(Box::new(ChildProcess::group_leader(child))),
        description: program,
    };
    Ok((conn, socket))
}

/// The transport to a remote place's spawner: one ssh connection of its own
/// (no ControlMaster to leave behind), or one socket connection.
fn remote_transport(
    place: &Place,
    spec: &XSpec,
    id: &str,
    options: &Options,
) -> Result<Box<dyn Transport>> {
    match spec.kind() {
        Kind::Ssh(args) => {
            let mut command = Vec::new();
            if !place.env.is_empty() {
                command.push("env".to_string());
                command.extend(place.env.iter().map(|(k, v)| format!("{k}={v}")));
            }
            command.extend(bootstrap::worker_argv(spec));
            let ssh = SshTransport::new(args, command)
                .config(spec.ssh_config())
                .multiplex(false);
            Ok(Box::new(ssh))
        }
        Kind::Socket(addr) => crate::open::socket_transport(addr, spec, id, options),
        other => Err(Error::Bootstrap {
            gateway: id.to_string(),
            step: Step::Connect,
            message: format!("{other:?} gateways have no spawner"),
        }),
    }
}

/// One half of the shared control socket, as a boxed stream half.
struct SocketHalf(Arc<Async<UnixStream>>);

impl futures_io::AsyncRead for SocketHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for SocketHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}
