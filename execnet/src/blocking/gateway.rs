use futures_lite::future::block_on;

use crate::blocking::Channel;
use crate::{Options, RInfo, RemoteStatus, Result, XSpec};

/// A blocking handle to a gateway; see [`crate::Gateway`].
///
/// # Examples
///
/// ```
/// let gw = execnet::blocking::Gateway::open("popen")?;
/// let info = gw.rinfo()?;
/// assert!(info.version.starts_with('3'));
/// gw.exit()?;
/// # Ok::<_, execnet::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Gateway {
    inner: crate::Gateway,
}

impl Gateway {
    /// Open a gateway from a spec string; see [`crate::Gateway::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen//id=job//chdir=/tmp")?;
    /// assert_eq!(gw.id(), "job");
    /// assert_eq!(gw.rinfo()?.cwd, "/tmp");
    /// gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn open(spec: &str) -> Result<Gateway> {
        block_on(crate::Gateway::open(spec)).map(Gateway::from)
    }

    /// Open a gateway from a parsed spec, with options.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use execnet::{blocking::Gateway, Options, XSpec};
    ///
    /// let options = Options::default().bootstrap_timeout(Duration::from_secs(10));
    /// let gw = Gateway::open_with(XSpec::parse("popen")?, options)?;
    /// gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn open_with(spec: XSpec, options: Options) -> Result<Gateway> {
        block_on(crate::Gateway::open_with(spec, options)).map(Gateway::from)
    }

    /// The gateway id.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen//id=w1")?;
    /// assert_eq!(gw.id(), "w1");
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The spec it was opened with.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// assert_eq!(gw.spec().kind(), &execnet::xspec::Kind::Popen);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn spec(&self) -> &XSpec {
        self.inner.spec()
    }

    /// The local child process, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("import os; channel.send(os.getpid())")?;
    /// assert_eq!(Some(ch.receive::<u32>()?), gw.pid());
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// Run Python source in the worker; see [`crate::Gateway::remote_exec`].
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.send(channel.receive().upper())")?;
    /// ch.send("shout")?;
    /// assert_eq!(ch.receive::<String>()?, "SHOUT");
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn remote_exec(&self, source: &str) -> Result<Channel> {
        block_on(self.inner.remote_exec(source)).map(Channel::from)
    }

    /// Run [`RemoteCode`](crate::RemoteCode) in the worker: source compiled
    /// under a file name, then optionally `function(channel, **kwargs)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet::{blocking::Gateway, to_value, RemoteCode};
    ///
    /// let gw = Gateway::open("popen")?;
    /// let code = RemoteCode::new("def add(channel, a, b):\n    channel.send(a + b)\n")
    ///     .call("add", [("a", to_value(&1)?), ("b", to_value(&2)?)]);
    /// assert_eq!(gw.remote_exec_code(code)?.receive::<i64>()?, 3);
    /// gw.exit()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote_exec_code(&self, code: impl Into<crate::RemoteCode>) -> Result<Channel> {
        block_on(self.inner.remote_exec_code(code)).map(Channel::from)
    }

    /// A new channel, to send to the worker inside an item.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let side = gw.new_channel();
    /// let ch = gw.remote_exec("channel.receive().send('on the side')")?;
    /// ch.send(&side)?;
    /// assert_eq!(side.receive::<String>()?, "on the side");
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn new_channel(&self) -> Channel {
        Channel::from(self.inner.new_channel())
    }

    /// Facts about the worker's interpreter.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let info = gw.rinfo()?;
    /// assert_eq!(Some(info.pid), gw.pid());
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn rinfo(&self) -> Result<RInfo> {
        block_on(self.inner.rinfo())
    }

    /// Channels and execs in the worker.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let status = gw.remote_status()?;
    /// assert_eq!(status.numexecuting, 0);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn remote_status(&self) -> Result<RemoteStatus> {
        block_on(self.inner.remote_status())
    }

    /// Whether the connection has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// gw.exit()?;
    /// assert!(gw.is_closed());
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Stop the worker (bounded) and reap it; idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.receive()")?;
    /// gw.exit()?; // the waiting code is stopped too
    /// assert!(ch.receive::<i64>().is_err());
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn exit(&self) -> Result<()> {
        block_on(self.inner.exit())
    }

    /// Kill the worker at once and reap it.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// gw.kill()?;
    /// assert!(gw.is_closed());
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn kill(&self) -> Result<()> {
        block_on(self.inner.kill())
    }

    /// The async handle of the same gateway.
    pub fn as_async(&self) -> &crate::Gateway {
        &self.inner
    }

    /// Turn into the async handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let async_gw: execnet::Gateway = gw.into_async();
    /// futures_lite::future::block_on(async_gw.exit())?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn into_async(self) -> crate::Gateway {
        self.inner
    }
}

impl From<crate::Gateway> for Gateway {
    fn from(inner: crate::Gateway) -> Self {
        Gateway { inner }
    }
}
