//! [`Gateway`]: a connection to one worker process.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use execnet_transport::{CommandTransport, Connection, Signal, SshTransport, Transport};
use execnet_wire::{from_value, Value};
use execnet_xspec::{Kind, XSpec};
use serde::Deserialize;

use crate::bootstrap::{self, wait_bounded, Cause};
use crate::channel::Channel;
use crate::code::RemoteCode;
use crate::error::{Error, Result, Step};
use crate::runtime;
use crate::session::{Role, Session, SessionConfig};
use crate::shared::{read_loop, write_loop, Shared};

/// Ids `gw0`, `gw1`, … for gateways opened outside a group.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// How a gateway is opened and closed.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to wait for the worker's hello.
    pub bootstrap_timeout: Duration,
    /// How long `exit()` waits for the worker to stop before signalling it.
    pub exit_timeout: Duration,
    /// The receive window this end grants per channel, in bytes.
    pub window: u64,
    /// Forward the worker's stderr (remote `print()`) to ours.
    pub forward_stderr: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bootstrap_timeout: Duration::from_secs(30),
            exit_timeout: Duration::from_secs(2),
            window: execnet_wire::DEFAULT_WINDOW,
            forward_stderr: true,
        }
    }
}

/// What `rinfo()` reports about the worker's interpreter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RInfo {
    /// `sys.executable`.
    pub executable: String,
    /// The Python version, `"3.11.7"`.
    pub version: String,
    /// `sys.platform`.
    pub platform: String,
    /// The worker's working directory.
    pub cwd: String,
    /// The worker's process id.
    pub pid: u32,
    /// `sys.version_info[:3]`.
    pub version_info: (u32, u32, u32),
}

/// What `remote_status()` reports.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RemoteStatus {
    /// Channels open in the worker.
    pub numchannels: usize,
    /// `remote_exec` calls running now.
    pub numexecuting: usize,
    /// `"thread"` or `"main_thread_only"`.
    pub execmodel: String,
}

const RINFO_SOURCE: &str = "import sys, os
channel.send({
    'executable': sys.executable,
    'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
    'version_info': tuple(sys.version_info[:3]),
    'platform': sys.platform,
    'cwd': os.getcwd(),
    'pid': os.getpid(),
})
";

/// A connection to a fresh Python interpreter, local or remote.
///
/// Cheap to clone; when the last clone (and the last channel) is dropped,
/// the worker is asked to exit in the background and its process is reaped.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let gw = execnet_gateway::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("channel.send(6 * 7)").await?;
/// assert_eq!(ch.receive::<i64>().await?, 42);
/// gw.exit().await?;
/// # Ok::<_, execnet_gateway::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<GatewayInner>,
}

pub(crate) struct GatewayInner {
    pub(crate) shared: Arc<Shared>,
    spec: XSpec,
    id: String,
    options: Options,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("id", &self.inner.id)
            .field("spec", &self.inner.spec.to_string())
            .field("pid", &self.pid())
            .finish()
    }
}

impl Drop for GatewayInner {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let timeout = self.options.exit_timeout;
        runtime::detach(async move {
            exit_shared(&shared, timeout).await;
        });
    }
}

impl Gateway {
    /// Open a gateway from a spec string (`"popen"`,
    /// `"popen//python=python3.11"`, `"popen//chdir=work//id=a"`,
    /// `"ssh=-p 2222 user@host//chdir=work"`, `"socket=127.0.0.1:8888"`).
    pub async fn open(spec: &str) -> Result<Gateway> {
        Self::open_with(XSpec::parse(spec)?, Options::default()).await
    }

    /// Open a gateway from a parsed spec, with options.
    pub async fn open_with(spec: XSpec, options: Options) -> Result<Gateway> {
        let id = match spec.id() {
            Some(id) => id.to_string(),
            None => format!("gw{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        };
        Self::open_with_id(spec, id, options).await
    }

    /// Open a gateway with the given id (the Group layer chooses ids).
    pub async fn open_with_id(spec: XSpec, id: String, options: Options) -> Result<Gateway> {
        // A typo ("popn", "chdri=") must not open a gateway it did not mean.
        spec.check_keys()?;
        let route = spec
            .via()
            .map(|v| format!("via={v}"))
            .or_else(|| spec.installvia().map(|v| format!("installvia={v}")));
        if let Some(route) = route {
            return Err(Error::Bootstrap {
                gateway: id,
                step: Step::Route,
                message: format!(
                    "{route} names another gateway: open it with a Group (or Gateway::open_via / open_installvia)"
                ),
            });
        }
        let transport: Box<dyn Transport> = match spec.kind() {
            Kind::Popen => {
                let argv = bootstrap::worker_argv(&spec);
                let mut cmd = std::process::Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                let program = match spec.python() {
                    Some(p) => format!("python={p}"),
                    None => argv[0].clone(),
                };
                Box::new(CommandTransport::new_group(cmd, program))
            }
            Kind::Ssh(args) => {
                let multiplex = spec
                    .get("ssh_multiplex")
                    .is_none_or(|v| !matches!(v, "no" | "false" | "0" | "off"));
                Box::new(
                    SshTransport::new(args, bootstrap::worker_argv(&spec))
                        .config(spec.ssh_config())
                        .multiplex(multiplex),
                )
            }
            Kind::Socket(addr) => {
                let addr = addr.clone();
                let token = crate::socket::client_token(spec.token_file(), &id)?;
                let conn = crate::socket::connect(&addr, token.as_ref(), &id).await?;
                return Self::from_connection(conn, spec, id, options).await;
            }
            other => {
                return Err(Error::Bootstrap {
                    gateway: id,
                    step: Step::Connect,
                    message: format!("{other:?} gateways are not supported"),
                })
            }
        };
        // Only an interpreter started here may teach the worker cache.
        let learn = matches!(spec.kind(), Kind::Popen) && spec.via().is_none();
        Self::connect_with(transport, spec, id, options, learn).await
    }

    /// Open a gateway over any [`Transport`] whose far end runs the
    /// bootstrap (`python -c LOADER`, see [`crate::LOADER`]).
    pub async fn from_transport(
        transport: impl Transport,
        spec: XSpec,
        id: impl Into<String>,
    ) -> Result<Gateway> {
        Self::from_transport_with(Box::new(transport), spec, id.into(), Options::default()).await
    }

    /// [`Gateway::from_transport`] with options.
    pub async fn from_transport_with(
        transport: Box<dyn Transport>,
        spec: XSpec,
        id: String,
        options: Options,
    ) -> Result<Gateway> {
        Self::connect_with(transport, spec, id, options, false).await
    }

    async fn connect_with(
        transport: Box<dyn Transport>,
        spec: XSpec,
        id: String,
        options: Options,
        learn: bool,
    ) -> Result<Gateway> {
        let conn = transport.connect().await.map_err(|e| Error::Bootstrap {
            gateway: id.clone(),
            step: match e {
                execnet_transport::TransportError::Spawn { .. } => Step::Spawn,
                execnet_transport::TransportError::Resolve { .. } => Step::Host,
                _ => Step::Connect,
            },
            message: e.to_string(),
        })?;
        Self::bootstrap(conn, spec, id, options, learn).await
    }

    /// Run the bootstrap over an open [`Connection`] and wait for the hello.
    pub async fn from_connection(
        conn: Connection,
        spec: XSpec,
        id: String,
        options: Options,
    ) -> Result<Gateway> {
        Self::bootstrap(conn, spec, id, options, false).await
    }

    /// `learn_code`: the far end is an interpreter this process started, so
    /// its compiled worker may be cached for later gateways.
    async fn bootstrap(
        conn: Connection,
        spec: XSpec,
        id: String,
        options: Options,
        learn_code: bool,
    ) -> Result<Gateway> {
        let Connection {
            reader,
            mut writer,
            stderr,
            stderr_tail,
            process,
            description,
        } = conn;
        let config = SessionConfig {
            window: options.window,
            info: bootstrap::hello_info(&spec, &id),
            ..SessionConfig::default()
        };
        let max_frame = config.max_frame;
        let session = Session::new(Role::Opener, config);
        let shared = Shared::new(session, process, stderr_tail.clone(), description);
        if let Some(stderr) = stderr {
            runtime::detach(stderr_tail.pump(stderr, options.forward_stderr));
        }
        if shared.process.is_some() {
            // Reap the process whenever it exits, even if nobody calls exit().
            let reaper = shared.clone();
            runtime::detach(async move {
                if let Some(p) = &reaper.process {
                    let _ = p.wait().await;
                    // The gateway is over: so is whatever its code started
                    // in the worker's process group.
                    let _ = p.kill_group();
                }
                reaper.conn_event.notify(usize::MAX);
            });
        }
        let gateway = Gateway {
            inner: Arc::new(GatewayInner {
                shared: shared.clone(),
                spec,
                id: id.clone(),
                options: options.clone(),
            }),
        };
        let mut reader = reader;
        let shipped = wait_bounded(
            bootstrap::ship_worker(&mut reader, &mut writer, learn_code),
            options.bootstrap_timeout,
        )
        .await;
        let failed = match shipped {
            Some(Ok(())) => None,
            Some(Err(failure)) => {
                shared.lock().first_bytes = failure.first_bytes;
                shared.lose(&failure.reason);
                Some(Cause::Lost)
            }
            None => Some(Cause::Timeout(options.bootstrap_timeout)),
        };
        if let Some(cause) = failed {
            let err = bootstrap::diagnose(&shared, &id, cause).await;
            exit_shared(&shared, Duration::from_millis(100)).await;
            return Err(err);
        }
        runtime::detach(read_loop(shared.clone(), reader, max_frame));
        runtime::detach(write_loop(shared.clone(), writer));
        let hello = wait_bounded(wait_hello(&shared), options.bootstrap_timeout).await;
        let cause = match hello {
            Some(true) => return Ok(gateway),
            Some(false) => Cause::Lost,
            None => Cause::Timeout(options.bootstrap_timeout),
        };
        let err = bootstrap::diagnose(&shared, &id, cause).await;
        exit_shared(&shared, Duration::from_millis(100)).await;
        Err(err)
    }

    /// The gateway id: `gw0`, … or the spec's `id=`.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The spec this gateway was opened with.
    pub fn spec(&self) -> &XSpec {
        &self.inner.spec
    }

    /// The local child process (the interpreter for popen, the ssh client
    /// for ssh), if any.
    pub fn pid(&self) -> Option<u32> {
        self.inner.shared.process.as_ref().and_then(|p| p.pid())
    }

    /// What the worker said about itself in its hello (python version, pid,
    /// executable, platform, cwd at start, execmodel).
    pub fn worker_info(&self) -> Value {
        let st = self.inner.shared.lock();
        st.session
            .peer()
            .map_or(Value::None, |peer| peer.info.clone())
    }

    /// Run Python `source` in the worker; it sees the name `channel`, the
    /// other end of the returned channel.
    pub async fn remote_exec(&self, source: &str) -> Result<Channel> {
        self.request(|session| session.exec(source))
    }

    /// Run [`RemoteCode`] in the worker: source compiled under a file name,
    /// and optionally a function it defines called as
    /// `function(channel, **kwargs)` (see [`RemoteCode`] for an example).
    pub async fn remote_exec_code(&self, code: impl Into<RemoteCode>) -> Result<Channel> {
        let RemoteCode {
            source,
            filename,
            call,
        } = code.into();
        self.request(|session| session.exec_with(source, filename, call))
    }

    /// Queue a request that opens a channel (exec, status) and hand out
    /// that channel's handle; an ended connection is `ConnectionLost`.
    fn request(
        &self,
        open: impl FnOnce(&mut Session) -> Result<u32, crate::session::SessionError>,
    ) -> Result<Channel> {
        let (id, wakeups) = {
            let mut st = self.inner.shared.lock();
            let id = open(&mut st.session).map_err(|e| crate::channel::session_error(e, 0))?;
            (id, st.take_wakeups())
        };
        let channel = Channel::attach(self, id);
        self.inner.shared.wake(wakeups);
        Ok(channel)
    }

    /// A new channel, to be sent to the worker inside an item.
    pub fn new_channel(&self) -> Channel {
        let id = self.inner.shared.lock().session.open_channel();
        Channel::attach(self, id)
    }

    /// Facts about the worker's interpreter.
    pub async fn rinfo(&self) -> Result<RInfo> {
        let ch = self.remote_exec(RINFO_SOURCE).await?;
        let info: RInfo = ch.receive().await?;
        // Let the snippet finish, so it does not linger in remote_status().
        ch.wait_close(Some(Duration::from_secs(10))).await?;
        Ok(info)
    }

    /// How many channels are open and how many execs run in the worker.
    pub async fn remote_status(&self) -> Result<RemoteStatus> {
        let ch = self.request(Session::status_request)?;
        let value: Value = ch.receive().await?;
        Ok(from_value(value)?)
    }

    /// Whether the connection has ended (exited, or the worker died).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().session.lost_reason().is_some()
    }

    /// Ask the worker to stop, wait for it (bounded), then SIGTERM and
    /// SIGKILL what is left, and reap the process. Idempotent; every open
    /// channel ends.
    pub async fn exit(&self) -> Result<()> {
        exit_shared(&self.inner.shared, self.inner.options.exit_timeout).await;
        Ok(())
    }

    /// [`Gateway::exit`] with its own timeout before signals are sent.
    pub async fn exit_timeout(&self, timeout: Duration) -> Result<()> {
        exit_shared(&self.inner.shared, timeout).await;
        Ok(())
    }

    /// Kill the worker process at once (SIGKILL) and reap it.
    pub async fn kill(&self) -> Result<()> {
        exit_shared(&self.inner.shared, Duration::ZERO).await;
        Ok(())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Whether two handles are the same gateway.
    pub fn same(&self, other: &Gateway) -> bool {
        Arc::ptr_eq(&self.inner.shared, &other.inner.shared)
    }
}

/// Wait until the worker's hello arrived (`true`) or the connection ended (`false`).
async fn wait_hello(shared: &Shared) -> bool {
    loop {
        let listener = {
            let st = shared.lock();
            if st.session.peer().is_some() {
                return true;
            }
            if st.session.lost_reason().is_some() {
                return false;
            }
            shared.conn_event.listen()
        };
        listener.await;
    }
}

/// The exit sequence; safe to run many times and concurrently.
pub(crate) async fn exit_shared(shared: &Arc<Shared>, timeout: Duration) {
    let first = {
        let mut st = shared.lock();
        let first = !st.exiting;
        st.exiting = true;
        st.session.terminate();
        st.close_writer = true;
        first
    };
    shared.tx_event.notify(usize::MAX);
    if !first {
        wait_exited(shared).await;
        return;
    }
    match &shared.process {
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
        }
        None => {
            let _ = wait_bounded(wait_reader_done(shared), timeout).await;
        }
    }
    shared.lose("the gateway was exited");
    shared.lock().exited = true;
    shared.conn_event.notify(usize::MAX);
}

async fn wait_exited(shared: &Shared) {
    loop {
        let listener = {
            if shared.lock().exited {
                return;
            }
            shared.conn_event.listen()
        };
        listener.await;
    }
}

async fn wait_reader_done(shared: &Shared) {
    loop {
        let listener = {
            if shared.lock().reader_done {
                return;
            }
            shared.conn_event.listen()
        };
        listener.await;
    }
}
