use std::time::Duration;

use futures_lite::future::block_on;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::blocking::{Channel, Gateway};
use crate::{Options, Result, Value, XSpec};

/// A blocking group of gateways; see [`crate::Group`].
///
/// `Send + Sync`: open gateways from many threads at once (they open in
/// parallel). Dropping it terminates its gateways in the background.
///
/// # Examples
///
/// ```
/// use execnet::blocking::Group;
///
/// let group = Group::new();
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| group.make_gateway("popen"));
///     }
/// });
/// let ids: Vec<String> = group.gateways().iter().map(|gw| gw.id().to_string()).collect();
/// assert_eq!(ids.len(), 3);
/// let pids: Vec<u32> = group.remote_exec("import os; channel.send(os.getpid())")?.receive_each()?;
/// assert_eq!(pids.len(), 3);
/// group.terminate(Some(std::time::Duration::from_secs(2)));
/// assert_eq!(group.len(), 0);
/// # Ok::<_, execnet::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Group {
    inner: crate::Group,
}

impl Group {
    /// An empty group; see [`crate::Group::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// assert!(group.is_empty());
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn new() -> Group {
        Group::default()
    }

    /// An empty group whose gateways open with `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use execnet::{blocking::Group, Options};
    ///
    /// let group = Group::with_options(Options::default().exit_timeout(Duration::from_millis(500)));
    /// group.make_gateway("popen")?;
    /// group.terminate(None); // waits at most about 500 ms before killing
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn with_options(options: Options) -> Group {
        Group::from(crate::Group::with_options(options))
    }

    /// Open a gateway and add it to the group; see
    /// [`crate::Group::make_gateway`].
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// let gw = group.make_gateway("popen")?;
    /// assert_eq!(gw.id(), "gw0");
    /// let sub = group.make_gateway("popen//via=gw0")?; // started by gw0's worker
    /// assert_eq!(sub.id(), "gw1");
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn make_gateway(&self, spec: &str) -> Result<Gateway> {
        block_on(self.inner.make_gateway(spec)).map(Gateway::from)
    }

    /// [`Group::make_gateway`] with a parsed spec.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// let gw = group.make_gateway_from("popen//id=from-spec".parse()?)?;
    /// assert_eq!(gw.id(), "from-spec");
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn make_gateway_from(&self, spec: XSpec) -> Result<Gateway> {
        block_on(self.inner.make_gateway_from(spec)).map(Gateway::from)
    }

    /// The member with id `id`, if it is open.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen//id=a")?;
    /// assert!(group.get("a").is_some() && group.get("b").is_none());
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn get(&self, id: &str) -> Option<Gateway> {
        self.inner.get(id).map(Gateway::from)
    }

    /// The open members, in creation order.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// group.make_gateway("popen")?;
    /// let ids: Vec<String> = group.gateways().iter().map(|g| g.id().to_string()).collect();
    /// assert_eq!(ids, ["gw0", "gw1"]);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn gateways(&self) -> Vec<Gateway> {
        self.inner
            .gateways()
            .into_iter()
            .map(Gateway::from)
            .collect()
    }

    /// How many members are open.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// let gw = group.make_gateway("popen")?;
    /// assert_eq!(group.len(), 1);
    /// gw.exit()?;
    /// assert_eq!(group.len(), 0); // an exited gateway leaves its group
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no member is open.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Run `source` on every member.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// group.make_gateway("popen")?;
    /// let mch = group.remote_exec("channel.send(1)")?;
    /// assert_eq!(mch.receive_each::<i64>()?, [1, 1]);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn remote_exec(&self, source: &str) -> Result<MultiChannel> {
        block_on(self.inner.remote_exec(source)).map(MultiChannel::from)
    }

    /// Run [`RemoteCode`](crate::RemoteCode) on every member; see
    /// [`crate::Group::remote_exec_code`].
    pub fn remote_exec_code(&self, code: impl Into<crate::RemoteCode>) -> Result<MultiChannel> {
        block_on(self.inner.remote_exec_code(code)).map(MultiChannel::from)
    }

    /// Exit every member, kill what has not stopped within `timeout`, reap
    /// everything; see [`crate::Group::terminate`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// group.remote_exec("import time\nwhile True: time.sleep(1)")?;
    /// group.terminate(Some(Duration::from_millis(200)));
    /// assert_eq!(group.len(), 0);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn terminate(&self, timeout: Option<Duration>) {
        block_on(self.inner.terminate(timeout));
    }

    /// The async group.
    pub fn as_async(&self) -> &crate::Group {
        &self.inner
    }

    /// Turn into the async group.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// let async_group: execnet::Group = group.into_async();
    /// futures_lite::future::block_on(async_group.terminate(None));
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn into_async(self) -> crate::Group {
        self.inner
    }
}

impl From<crate::Group> for Group {
    fn from(inner: crate::Group) -> Self {
        Group { inner }
    }
}

/// Blocking channels used together; see [`crate::MultiChannel`].
///
/// # Examples
///
/// ```
/// use execnet::blocking::{Gateway, MultiChannel};
///
/// let gw = Gateway::open("popen")?;
/// let mch = MultiChannel::new(vec![
///     gw.remote_exec("channel.send(channel.receive() * 2)")?,
///     gw.remote_exec("channel.send(channel.receive() * 3)")?,
/// ]);
/// mch.send_each(&7)?;
/// assert_eq!(mch.receive_each::<i64>()?, [14, 21]);
/// mch.wait_close(None)?;
/// # Ok::<_, execnet::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MultiChannel {
    channels: Vec<Channel>,
    inner: crate::MultiChannel,
}

impl MultiChannel {
    /// Combine `channels`, in this order.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use execnet::blocking::MultiChannel;
    ///
    /// let mch = MultiChannel::new(vec![gw.remote_exec("pass")?, gw.remote_exec("pass")?]);
    /// assert_eq!(mch.len(), 2);
    /// mch.wait_close(None)?;
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn new(channels: Vec<Channel>) -> MultiChannel {
        let inner = channels.iter().map(|ch| ch.as_async().clone()).collect();
        MultiChannel { channels, inner }
    }

    /// The number of channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there are no channels.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The channels, in order.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Send `item` on every channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// group.make_gateway("popen")?;
    /// let mch = group.remote_exec("channel.send(-channel.receive())")?;
    /// mch.send_each(&5)?;
    /// assert_eq!(mch.receive_each::<i64>()?, [-5, -5]);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn send_each<T: Serialize + ?Sized>(&self, item: &T) -> Result<()> {
        block_on(self.inner.send_each(item))
    }

    /// Receive one item from every channel, in channel order.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen//id=x")?;
    /// group.make_gateway("popen//id=y")?;
    /// let mch = group.remote_exec("channel.send(channel.gateway.id)")?;
    /// assert_eq!(mch.receive_each::<String>()?, ["x-worker", "y-worker"]);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn receive_each<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        block_on(self.inner.receive_each())
    }

    /// Items from all channels as they arrive; see [`ReceiveQueue`].
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// group.make_gateway("popen")?;
    /// let mch = group.remote_exec("channel.send(channel.gateway.id)")?;
    /// let mut ids: Vec<String> = mch.receive_queue().map(|(_, item)| item.unwrap().repr()).collect();
    /// ids.sort();
    /// assert_eq!(ids, ["'gw0-worker'", "'gw1-worker'"]);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn receive_queue(&self) -> ReceiveQueue {
        ReceiveQueue {
            inner: self.inner.receive_queue(),
        }
    }

    /// Wait until every channel has ended; the first remote error wins.
    /// See [`crate::MultiChannel::wait_close`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// let mch = group.remote_exec("import time; time.sleep(0.1)")?;
    /// mch.wait_close(Some(Duration::from_secs(10)))?;
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn wait_close(&self, timeout: Option<Duration>) -> Result<()> {
        block_on(self.inner.wait_close(timeout))
    }

    /// The async multi-channel.
    pub fn as_async(&self) -> &crate::MultiChannel {
        &self.inner
    }

    /// Turn into the async multi-channel.
    pub fn into_async(self) -> crate::MultiChannel {
        self.inner
    }
}

impl From<crate::MultiChannel> for MultiChannel {
    fn from(inner: crate::MultiChannel) -> Self {
        let channels = inner
            .channels()
            .iter()
            .cloned()
            .map(Channel::from)
            .collect();
        MultiChannel { channels, inner }
    }
}

impl From<Vec<Channel>> for MultiChannel {
    fn from(channels: Vec<Channel>) -> Self {
        MultiChannel::new(channels)
    }
}

/// The items of several channels as they arrive: an `Iterator` of
/// `(channel index, item)`; see [`crate::ReceiveQueue`].
///
/// `next()` blocks until an item comes and returns `None` once every
/// channel has ended. [`recv_timeout`](ReceiveQueue::recv_timeout) bounds
/// the wait: `Err(Error::Timeout)` when nothing came in time (nothing is
/// lost), `Err(Error::Closed)` when every channel has ended.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use execnet::blocking::Group;
///
/// let group = Group::new();
/// group.make_gateway("popen")?;
/// group.make_gateway("popen")?;
/// // The worker's side of gateway gw0 is called gw0-worker, as in execnet.
/// let mch = group.remote_exec("channel.send(channel.gateway.id)")?;
/// let mut queue = mch.receive_queue();
/// let (index, item) = queue.recv_timeout(Duration::from_secs(10))?;
/// assert_eq!(item?, execnet::Value::from(format!("gw{index}-worker")));
/// let (index2, _) = queue.next().expect("the other item");
/// assert_ne!(index, index2);
/// assert!(queue.next().is_none());
/// assert!(matches!(queue.recv_timeout(Duration::from_secs(1)), Err(execnet::Error::Closed)));
/// # Ok::<_, execnet::Error>(())
/// ```
#[derive(Debug)]
pub struct ReceiveQueue {
    inner: crate::ReceiveQueue,
}

impl ReceiveQueue {
    /// The next item, waiting for it; `Err(Error::Closed)` once every
    /// channel has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// let mut queue = group.remote_exec("channel.send('x')")?.receive_queue();
    /// let (index, item) = queue.recv()?;
    /// assert_eq!((index, item?.repr()), (0, "'x'".to_string()));
    /// assert!(matches!(queue.recv(), Err(execnet::Error::Closed)));
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn recv(&mut self) -> Result<(usize, Result<Value>)> {
        block_on(self.inner.recv())
    }

    /// [`ReceiveQueue::recv`], giving up with `Err(Error::Timeout)` after
    /// `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(usize, Result<Value>)> {
        block_on(self.inner.recv_timeout(timeout))
    }

    /// How many channels have not ended yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = execnet::blocking::Group::new();
    /// group.make_gateway("popen")?;
    /// let mut queue = group.remote_exec("channel.receive()")?.receive_queue();
    /// assert_eq!(queue.open_channels(), 1);
    /// group.terminate(None);
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn open_channels(&self) -> usize {
        self.inner.open_channels()
    }

    /// The async queue.
    pub fn into_async(self) -> crate::ReceiveQueue {
        self.inner
    }
}

impl Iterator for ReceiveQueue {
    type Item = (usize, Result<Value>);

    fn next(&mut self) -> Option<Self::Item> {
        block_on(futures_lite::StreamExt::next(&mut self.inner))
    }
}
