//! [`MultiChannel`] and its [`ReceiveQueue`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use execnet_gateway::{Channel, Error, Result, Value};
use futures_core::Stream;
use futures_lite::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Channels used together: send to each, receive from each, wait for all.
///
/// Usually made by [`Group::remote_exec`](crate::Group::remote_exec); any
/// channels (of one gateway or many) can be combined with
/// [`MultiChannel::new`].
///
/// # Examples
///
/// ```
/// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{from_value, to_value, Error, Gateway, Options, RemoteCode, Result, Value, XSpec}; }
/// use execnet::Gateway;
/// use execnet::MultiChannel;
///
/// # futures_lite::future::block_on(async {
/// let gw = Gateway::open("popen").await?;
/// let mch = MultiChannel::new(vec![
///     gw.remote_exec("channel.send(channel.receive() + 1)").await?,
///     gw.remote_exec("channel.send(channel.receive() + 2)").await?,
/// ]);
/// mch.send_each(&40).await?;
/// assert_eq!(mch.receive_each::<i64>().await?, [41, 42]);
/// mch.wait_close(None).await?;
/// gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultiChannel {
    channels: Vec<Channel>,
}

impl MultiChannel {
    /// Combine `channels`; their order is the order of
    /// [`receive_each`](MultiChannel::receive_each) and the index in
    /// [`receive_queue`](MultiChannel::receive_queue) items.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use execnet::{Gateway, MultiChannel};
    ///
    /// let (a, b) = (Gateway::open("popen").await?, Gateway::open("popen").await?);
    /// let mch = MultiChannel::new(vec![a.remote_exec("pass").await?, b.remote_exec("pass").await?]);
    /// assert_eq!(mch.len(), 2);
    /// assert!(mch.channels()[1].gateway().same(&b));
    /// mch.wait_close(None).await?;
    /// # a.exit().await?;
    /// # b.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn new(channels: Vec<Channel>) -> MultiChannel {
        MultiChannel { channels }
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

    /// Send `item` on every channel. The sends run concurrently, so one
    /// channel waiting for flow-control credit does not hold up the others;
    /// the first error in channel order is returned after all finished.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// for _ in 0..3 {
    ///     group.make_gateway("popen").await?;
    /// }
    /// let mch = group.remote_exec("channel.send(channel.receive() * 2)").await?;
    /// mch.send_each(&21).await?;
    /// assert_eq!(mch.receive_each::<i64>().await?, [42, 42, 42]);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn send_each<T: Serialize + ?Sized>(&self, item: &T) -> Result<()> {
        let value = execnet_gateway::to_value(item)?;
        let sends = self.channels.iter().map(|ch| ch.send(&value));
        let results = futures_util::future::join_all(sends).await;
        results.into_iter().collect()
    }

    /// Receive one item from every channel, in channel order. The first
    /// error (a remote error, end of channel, …) is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen//id=a").await?;
    /// group.make_gateway("popen//id=b").await?;
    /// let mch = group.remote_exec("channel.send(channel.gateway.id)").await?;
    /// // In the worker, the gateway is named after ours ("a" → "a-worker").
    /// assert_eq!(mch.receive_each::<String>().await?, ["a-worker", "b-worker"]); // channel order
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn receive_each<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let mut items = Vec::with_capacity(self.channels.len());
        for ch in &self.channels {
            items.push(ch.receive().await?);
        }
        Ok(items)
    }

    /// Items from all channels as they arrive, as `(channel index, item)`;
    /// see [`ReceiveQueue`]. The queue holds its own handles of the channels.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use futures_lite::StreamExt;
    ///
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen").await?;
    /// group.make_gateway("popen").await?;
    /// let mch = group.remote_exec("for i in range(3): channel.send(i)").await?;
    /// let mut queue = mch.receive_queue();
    /// let mut per_channel = [0, 0];
    /// while let Some((index, item)) = queue.next().await {
    ///     item?;
    ///     per_channel[index] += 1;
    /// }
    /// assert_eq!(per_channel, [3, 3]);
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn receive_queue(&self) -> ReceiveQueue {
        ReceiveQueue::new(self.channels.clone())
    }

    /// Wait until every channel has ended (concurrently; `timeout` bounds
    /// the whole wait). If remote code raised, the remote error of the first
    /// such channel in channel order is returned, even when other channels
    /// timed out or lost their connection; otherwise the first other error
    /// in channel order (`Error::Timeout`, `Error::ConnectionLost`).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen").await?;
    /// group.make_gateway("popen").await?;
    /// let mch = group.remote_exec("if channel.gateway.id == 'gw1-worker': raise ValueError('on gw1')").await?;
    /// let err = mch.wait_close(None).await.unwrap_err();
    /// assert!(err.to_string().contains("ValueError: on gw1"));
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn wait_close(&self, timeout: Option<Duration>) -> Result<()> {
        let waits = self.channels.iter().map(|ch| ch.wait_close(timeout));
        let results = futures_util::future::join_all(waits).await;
        let mut first_other = None;
        for result in results {
            match result {
                Ok(()) => {}
                Err(e @ Error::Remote(_)) => return Err(e),
                Err(e) => {
                    first_other.get_or_insert(e);
                }
            }
        }
        match first_other {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl From<Vec<Channel>> for MultiChannel {
    fn from(channels: Vec<Channel>) -> Self {
        MultiChannel::new(channels)
    }
}

impl FromIterator<Channel> for MultiChannel {
    fn from_iter<I: IntoIterator<Item = Channel>>(iter: I) -> Self {
        MultiChannel::new(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a MultiChannel {
    type Item = &'a Channel;
    type IntoIter = std::slice::Iter<'a, Channel>;

    fn into_iter(self) -> Self::IntoIter {
        self.channels.iter()
    }
}

/// The items of several channels as they arrive: a [`Stream`] of
/// `(channel index, item)`.
///
/// - Items of one channel come in their order; between channels, in the
///   order they arrived (channels with items waiting take turns).
/// - The end of a channel is not an item. When the remote code raised, its
///   [`Error::Remote`] is that channel's last item; a lost connection
///   likewise ends its channels with one `Error::ConnectionLost` (or
///   `Error::PeerMisbehaved`) item each.
/// - The stream ends when every channel has ended.
///
/// Items are taken from the channels only while the queue is polled, so
/// flow control keeps working; other receivers of the same channels compete
/// for their items.
///
/// # Examples
///
/// ```
/// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{from_value, to_value, Error, Gateway, Options, RemoteCode, Result, Value, XSpec}; }
/// use execnet::{Gateway, Value};
/// use execnet::MultiChannel;
/// use futures_lite::StreamExt;
///
/// # futures_lite::future::block_on(async {
/// let gw = Gateway::open("popen").await?;
/// let mch = MultiChannel::new(vec![
///     gw.remote_exec("channel.send('a')").await?,
///     gw.remote_exec("raise ValueError('b')").await?,
/// ]);
/// let mut items: Vec<(usize, execnet::Result<Value>)> =
///     mch.receive_queue().collect().await;
/// items.sort_by_key(|item| item.0);
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[0].1.as_ref().ok(), Some(&Value::from("a")));
/// assert!(items[1].1.as_ref().is_err_and(|e| e.to_string().contains("ValueError: b")));
/// gw.exit().await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
pub struct ReceiveQueue {
    /// `None` once that channel has ended.
    channels: Vec<Option<Channel>>,
    /// Where the next poll starts looking, so busy channels take turns.
    start: usize,
    live: usize,
}

impl fmt::Debug for ReceiveQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open: Vec<usize> = (0..self.channels.len())
            .filter(|&i| self.channels[i].is_some())
            .collect();
        f.debug_struct("ReceiveQueue")
            .field("channels", &self.channels.len())
            .field("open", &open)
            .finish()
    }
}

impl ReceiveQueue {
    /// A queue over `channels` (indices are positions in this list).
    pub fn new(channels: Vec<Channel>) -> ReceiveQueue {
        let live = channels.len();
        ReceiveQueue {
            channels: channels.into_iter().map(Some).collect(),
            start: 0,
            live,
        }
    }

    /// How many channels have not ended yet.
    pub fn open_channels(&self) -> usize {
        self.live
    }

    /// The next item; `Error::Closed` once every channel has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen").await?;
    /// let mch = group.remote_exec("channel.send('only')").await?;
    /// let mut queue = mch.receive_queue();
    /// let (index, item) = queue.recv().await?;
    /// assert_eq!((index, item?.repr()), (0, "'only'".to_string()));
    /// assert!(matches!(queue.recv().await, Err(execnet::Error::Closed)));
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn recv(&mut self) -> Result<(usize, Result<Value>)> {
        self.next().await.ok_or(Error::Closed)
    }

    /// [`ReceiveQueue::recv`], giving up with `Error::Timeout` after
    /// `timeout`. No item is lost by a timeout: it stays for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{to_value, Error, Gateway, Options, RemoteCode, Value, XSpec}; }
    /// # futures_lite::future::block_on(async {
    /// use std::time::Duration;
    ///
    /// let group = execnet::Group::new();
    /// group.make_gateway("popen").await?;
    /// let mch = group.remote_exec("channel.receive()").await?;
    /// let mut queue = mch.receive_queue();
    /// let waited = queue.recv_timeout(Duration::from_millis(50)).await;
    /// assert!(matches!(waited, Err(execnet::Error::Timeout(_))));
    /// group.terminate(None).await;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<(usize, Result<Value>)> {
        let item = futures_lite::future::or(async { Some(self.next().await) }, async {
            async_io::Timer::after(timeout).await;
            None
        })
        .await;
        match item {
            Some(Some(item)) => Ok(item),
            Some(None) => Err(Error::Closed),
            None => Err(Error::Timeout(timeout)),
        }
    }
}

impl Stream for ReceiveQueue {
    type Item = (usize, Result<Value>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let n = this.channels.len();
        for offset in 0..n {
            let index = (this.start + offset) % n;
            let Some(channel) = this.channels[index].as_mut() else {
                continue;
            };
            // Every pending channel registers our waker, so an item on any
            // of them wakes the task.
            let item = match Pin::new(channel).poll_next(cx) {
                Poll::Pending => continue,
                Poll::Ready(None) => None,
                Poll::Ready(Some(Ok(value))) => Some(Ok(value)),
                Poll::Ready(Some(Err(e))) => {
                    // An error ends the channel (a lost connection would
                    // repeat forever).
                    this.channels[index] = None;
                    this.live -= 1;
                    this.start = (index + 1) % n;
                    return Poll::Ready(Some((index, Err(e))));
                }
            };
            match item {
                Some(value) => {
                    this.start = (index + 1) % n;
                    return Poll::Ready(Some((index, value)));
                }
                None => {
                    this.channels[index] = None;
                    this.live -= 1;
                }
            }
        }
        if this.live == 0 {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}
