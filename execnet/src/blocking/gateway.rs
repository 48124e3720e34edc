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
    pub fn open(spec: &str) -> Result<Gateway> {
        block_on(crate::Gateway::open(spec)).map(Gateway::from)
    }

    /// Open a gateway from a parsed spec, with options.
    pub fn open_with(spec: XSpec, options: Options) -> Result<Gateway> {
        block_on(crate::Gateway::open_with(spec, options)).map(Gateway::from)
    }

    /// The gateway id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The spec it was opened with.
    pub fn spec(&self) -> &XSpec {
        self.inner.spec()
    }

    /// The local child process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// Run Python source in the worker; see [`crate::Gateway::remote_exec`].
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
    pub fn new_channel(&self) -> Channel {
        Channel::from(self.inner.new_channel())
    }

    /// Facts about the worker's interpreter.
    pub fn rinfo(&self) -> Result<RInfo> {
        block_on(self.inner.rinfo())
    }

    /// Channels and execs in the worker.
    pub fn remote_status(&self) -> Result<RemoteStatus> {
        block_on(self.inner.remote_status())
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Stop the worker (bounded) and reap it; idempotent.
    pub fn exit(&self) -> Result<()> {
        block_on(self.inner.exit())
    }

    /// Kill the worker at once and reap it.
    pub fn kill(&self) -> Result<()> {
        block_on(self.inner.kill())
    }

    /// The async handle of the same gateway.
    pub fn as_async(&self) -> &crate::Gateway {
        &self.inner
    }

    /// Turn into the async handle.
    pub fn into_async(self) -> crate::Gateway {
        self.inner
    }
}

impl From<crate::Gateway> for Gateway {
    fn from(inner: crate::Gateway) -> Self {
        Gateway { inner }
    }
}
