//! [`Gateway`]: a connection to one worker process.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use execnet_proto::{Session, SessionError};
use execnet_wire::{from_value, Value};
use execnet_xspec::XSpec;
use serde::Deserialize;

use crate::channel::Channel;
use crate::code::RemoteCode;
use crate::driver::Driver;
use crate::error::Result;
use crate::registry::Registry;
use crate::runtime;

/// How a gateway is opened and closed: the defaults, changed with the
/// builder methods.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use std::time::Duration;
/// use execnet::{Gateway, Options, XSpec};
///
/// # futures_lite::future::block_on(async {
/// let options = Options::default()
///     .bootstrap_timeout(Duration::from_secs(5))
///     .exit_timeout(Duration::from_millis(500))
///     .window(1 << 20)            // 1 MiB of credit per channel
///     .max_frame(16 << 20)        // no item over 16 MiB either way
///     .forward_stderr(false);     // keep remote print() to ourselves
/// let gw = Gateway::open_with(XSpec::parse("popen")?, options).await?;
/// gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// How long to wait for the worker's hello (default 30 s).
    pub bootstrap_timeout: Duration,
    /// How long `exit()` waits for the worker to stop before signalling it
    /// (default 2 s).
    pub exit_timeout: Duration,
    /// The receive window this end grants per channel, in bytes (default
    /// 8 MiB): how much a peer may send on one channel before the items are
    /// taken.
    pub window: u64,
    /// The largest frame this end accepts, in bytes (default 256 MiB,
    /// [`DEFAULT_MAX_FRAME`](execnet_wire::DEFAULT_MAX_FRAME)). One item
    /// travels in one frame, so this is the largest item the worker can send
    /// here: it learns the limit from our hello, and its `channel.send` of a
    /// larger item raises. A frame that announces more ends the connection
    /// ([`Error::PeerMisbehaved`](crate::Error::PeerMisbehaved)) before
    /// anything is allocated for it. Items we send are bounded by the
    /// worker's own limit (256 MiB) the same way: sending a larger one is
    /// [`Error::Encode`](crate::Error::Encode).
    pub max_frame: u32,
    /// Forward the worker's stderr (remote `print()`) to ours (default on).
    pub forward_stderr: bool,
    /// How long a place's spawner stays up after its last gateway ended
    /// (default 3 s), so that the next gateway to the same place is again a
    /// fork; the spec key `spawn_linger=SECONDS` overrides it. See the
    /// README's "Spawner" section.
    pub spawn_linger: Duration,
    /// Let `socket=` gateways use a server that requires no token (`execnet
    /// serve --insecure-no-auth`; default off, as the spec key
    /// `insecure_no_auth`). Such a server proves nothing about itself: an
    /// impostor listening at its address would receive, and could run or
    /// read, the code we send.
    pub insecure_no_auth: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bootstrap_timeout: Duration::from_secs(30),
            exit_timeout: Duration::from_secs(2),
            window: execnet_wire::DEFAULT_WINDOW,
            max_frame: execnet_wire::DEFAULT_MAX_FRAME,
            forward_stderr: true,
            spawn_linger: Duration::from_secs(3),
            insecure_no_auth: false,
        }
    }
}

impl Options {
    /// How long to wait for the worker's hello.
    pub fn bootstrap_timeout(mut self, timeout: Duration) -> Self {
        self.bootstrap_timeout = timeout;
        self
    }

    /// How long `exit()` waits for the worker to stop before signalling it.
    pub fn exit_timeout(mut self, timeout: Duration) -> Self {
        self.exit_timeout = timeout;
        self
    }

    /// The receive window this end grants per channel, in bytes.
    pub fn window(mut self, bytes: u64) -> Self {
        self.window = bytes;
        self
    }

    /// The largest frame (and so the largest item) this end accepts.
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Forward the worker's stderr (remote `print()`) to ours.
    pub fn forward_stderr(mut self, on: bool) -> Self {
        self.forward_stderr = on;
        self
    }

    /// How long a place's spawner stays up after its last gateway ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::time::Duration;
    /// use execnet::{Gateway, Options, XSpec};
    ///
    /// # futures_lite::future::block_on(async {
    /// // The spawner goes as soon as this gateway has gone.
    /// let options = Options::default().spawn_linger(Duration::ZERO);
    /// let gw = Gateway::open_with(XSpec::parse("popen")?, options).await?;
    /// gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn spawn_linger(mut self, linger: Duration) -> Self {
        self.spawn_linger = linger;
        self
    }

    /// Let `socket=` gateways use a server that requires no token (as the
    /// spec key `insecure_no_auth` does for one spec).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// let options = execnet::Options::default().insecure_no_auth(true);
    /// assert!(options.insecure_no_auth);
    /// ```
    pub fn insecure_no_auth(mut self, on: bool) -> Self {
        self.insecure_no_auth = on;
        self
    }
}

/// What `rinfo()` reports about the worker's interpreter.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen//chdir=/tmp").await?;
/// let info: execnet::RInfo = gw.rinfo().await?;
/// assert_eq!(info.cwd, "/tmp");
/// assert!(info.executable.contains("python"));
/// # gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
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
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen//execmodel=main_thread_only").await?;
/// let status: execnet::RemoteStatus = gw.remote_status().await?;
/// assert_eq!(status.execmodel, "main_thread_only");
/// assert_eq!(status.numexecuting, 0);
/// # gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
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
/// # use execnet_gateway as execnet;
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("channel.send(6 * 7)").await?;
/// assert_eq!(ch.receive::<i64>().await?, 42);
/// gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<GatewayInner>,
}

pub(crate) struct GatewayInner {
    pub(crate) driver: Arc<Driver>,
    /// The channel handles and callbacks of this gateway.
    pub(crate) registry: Registry,
    spec: XSpec,
    id: String,
    options: Options,
    /// Unique in this process: names the gateway as a place for `via=`
    /// spawners (an address could be reused after a drop).
    pub(crate) serial: u64,
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
        let driver = self.driver.clone();
        let timeout = self.options.exit_timeout;
        runtime::detach(async move { driver.exit(timeout).await });
    }
}

impl Gateway {
    /// The handle of a gateway whose driver runs.
    pub(crate) fn new(driver: Arc<Driver>, spec: XSpec, id: String, options: Options) -> Gateway {
        Gateway {
            inner: Arc::new(GatewayInner {
                driver,
                registry: Registry::default(),
                spec,
                id,
                options,
                serial: {
                    static SERIAL: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
            }),
        }
    }

    /// The gateway id: `gw0`, … or the spec's `id=`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen//id=builder").await?;
    /// assert_eq!(gw.id(), "builder");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The spec this gateway was opened with.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen//python=python3//chdir=/tmp").await?;
    /// assert_eq!(gw.spec().chdir(), Some("/tmp"));
    /// assert_eq!(gw.spec().to_string(), "popen//python=python3//chdir=/tmp");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn spec(&self) -> &XSpec {
        &self.inner.spec
    }

    /// The local child process (the interpreter for popen, the ssh client
    /// for ssh), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("import os; channel.send(os.getpid())").await?;
    /// assert_eq!(Some(ch.receive::<u32>().await?), gw.pid());
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.inner.driver.process.as_ref().and_then(|p| p.pid())
    }

    /// What the worker said about itself in its hello (python version, pid,
    /// executable, platform, cwd at start, execmodel), as a Dict.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let info = gw.worker_info();
    /// assert!(info.repr().contains("'execmodel': 'thread'"), "{}", info.repr());
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn worker_info(&self) -> Value {
        let st = self.inner.driver.lock();
        st.session
            .peer()
            .map_or(Value::None, |peer| peer.info.clone())
    }

    /// Run Python `source` in the worker; it sees the name `channel`, the
    /// other end of the returned channel (and `__name__ ==
    /// "__channelexec__"`). An exception in it closes the channel with the
    /// traceback: the next `receive` is [`Error::Remote`](crate::Error::Remote).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("
    ///     total = 0
    ///     for x in channel:
    ///         total += x
    ///         channel.send(total)
    /// ").await?;
    /// for x in [1, 2, 3] {
    ///     ch.send(&x).await?;
    /// }
    /// assert_eq!(ch.receive::<i64>().await?, 1);
    /// assert_eq!(ch.receive::<i64>().await?, 3);
    /// assert_eq!(ch.receive::<i64>().await?, 6);
    /// gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn remote_exec(&self, source: &str) -> Result<Channel> {
        self.request(|session| session.exec(source))
    }

    /// Run [`RemoteCode`] in the worker: source compiled under a file name,
    /// and optionally a function it defines called as
    /// `function(channel, **kwargs)` (see [`RemoteCode`] for an example).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::{to_value, RemoteCode};
    ///
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let code = RemoteCode::new("def greet(channel, name):\n    channel.send('hi ' + name)\n")
    ///     .filename("greet.py")
    ///     .call("greet", [("name", to_value("ada").unwrap())]);
    /// let ch = gw.remote_exec_code(code).await?;
    /// assert_eq!(ch.receive::<String>().await?, "hi ada");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
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
        open: impl FnOnce(&mut Session) -> Result<u32, SessionError>,
    ) -> Result<Channel> {
        let driver = &self.inner.driver;
        let (channel, wakeups) = {
            let mut st = driver.lock();
            let id = open(&mut st.session)?;
            let channel = Channel::attach_locked(self, &mut st, id);
            (channel, st.take_wakeups())
        };
        driver.wake(wakeups);
        Ok(channel)
    }

    /// A new channel, to be sent to the worker inside an item (it arrives
    /// there as a channel of the worker's gateway).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let results = gw.new_channel();
    /// let ch = gw.remote_exec("out = channel.receive(); out.send('via the new channel')").await?;
    /// ch.send(&results).await?;
    /// assert_eq!(results.receive::<String>().await?, "via the new channel");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn new_channel(&self) -> Channel {
        let mut st = self.inner.driver.lock();
        let id = st.session.open_channel();
        Channel::attach_locked(self, &mut st, id)
    }

    /// Facts about the worker's interpreter.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let info = gw.rinfo().await?;
    /// assert_eq!(Some(info.pid), gw.pid());
    /// assert_eq!(info.version_info.0, 3);
    /// assert_eq!(info.platform, "linux");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn rinfo(&self) -> Result<RInfo> {
        let ch = self.remote_exec(RINFO_SOURCE).await?;
        let info: RInfo = ch.receive().await?;
        // Let the snippet finish, so it does not linger in remote_status().
        ch.wait_close(Some(Duration::from_secs(10))).await?;
        Ok(info)
    }

    /// How many channels are open and how many execs run in the worker.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send('started'); channel.receive()").await?;
    /// ch.receive::<String>().await?;
    /// let status = gw.remote_status().await?;
    /// assert_eq!(status.numexecuting, 1);
    /// assert_eq!(status.execmodel, "thread");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn remote_status(&self) -> Result<RemoteStatus> {
        let ch = self.request(Session::status_request)?;
        let value: Value = ch.receive().await?;
        Ok(from_value(value)?)
    }

    /// Whether the connection has ended (exited, or the worker died).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// assert!(!gw.is_closed());
    /// gw.exit().await?;
    /// assert!(gw.is_closed());
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.driver.lock().session.is_lost()
    }

    /// Ask the worker to stop, wait for it (bounded by
    /// [`Options::exit_timeout`]), then SIGTERM and SIGKILL what is left, and
    /// reap the process; a local worker's process group goes too (programs
    /// its code started and left running). Idempotent; every open channel
    /// ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.receive()").await?; // waits forever
    /// gw.exit().await?;
    /// gw.exit().await?; // again: nothing left to do
    /// assert!(ch.receive::<i64>().await.is_err());
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn exit(&self) -> Result<()> {
        self.inner
            .driver
            .exit(self.inner.options.exit_timeout)
            .await;
        Ok(())
    }

    /// [`Gateway::exit`] with its own timeout before signals are sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::time::Duration;
    ///
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// // Code that ignores the request to stop is signalled after 100 ms.
    /// gw.remote_exec("import time\nwhile True: time.sleep(1)").await?;
    /// gw.exit_timeout(Duration::from_millis(100)).await?;
    /// assert!(gw.is_closed());
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn exit_timeout(&self, timeout: Duration) -> Result<()> {
        self.inner.driver.exit(timeout).await;
        Ok(())
    }

    /// Kill the worker process at once (SIGKILL) and reap it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let pid = gw.pid().expect("a local process");
    /// gw.kill().await?;
    /// assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn kill(&self) -> Result<()> {
        self.inner.driver.exit(Duration::ZERO).await;
        Ok(())
    }

    pub(crate) fn driver(&self) -> &Arc<Driver> {
        &self.inner.driver
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Whether two handles are the same gateway.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("pass").await?;
    /// assert!(ch.gateway().same(&gw));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn same(&self, other: &Gateway) -> bool {
        Arc::ptr_eq(&self.inner.driver, &other.inner.driver)
    }
}
