//! [`Channel`]: one ordered, bidirectional stream of items with the worker.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};
use execnet_proto::{Recv, SendOutcome};
use execnet_wire::{ChannelRef, EncodeError, Item, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::driver::State;
use crate::error::{Error, RemoteError, Result};
use crate::gateway::Gateway;
use crate::registry::{Callback, Entries};
use crate::runtime::wait_until;

/// How long a receive looks for an item (yielding the thread) before it
/// parks; see `Channel::spin_receive`.
const SPIN: Duration = Duration::from_micros(50);
/// The largest last item after which a receive spins.
const SPIN_MAX_ITEM: u32 = 16 * 1024;
/// How many waits of a channel skip the spin after one found nothing.
const SPIN_BACKOFF: u32 = 8;

/// One end of a channel: send items to the other end, receive its items.
///
/// Cheap to clone (clones are the same end). When the last handle is
/// dropped while the channel is open, the other end is told (its receives
/// end), as in execnet. A `Channel` is a [`Stream`](futures_core::Stream) of items that ends at
/// end-of-channel, and it can itself be sent inside an item.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// # futures_lite::future::block_on(async {
/// let gw = execnet::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("for x in channel: channel.send(x * 2)").await?;
/// ch.send(&21).await?;
/// assert_eq!(ch.receive::<i32>().await?, 42);
/// ch.close().await?;
/// ch.wait_close(None).await?;
/// # Ok::<_, execnet::Error>(()) }).unwrap();
/// ```
pub struct Channel {
    pub(crate) inner: Arc<ChannelInner>,
    /// The pending wait of the `Stream` / `AsyncRead` / `AsyncWrite` impls.
    pub(crate) listener: Option<EventListener>,
    pub(crate) read_buf: Vec<u8>,
    pub(crate) read_pos: usize,
}

pub(crate) struct ChannelInner {
    pub(crate) gateway: Gateway,
    pub(crate) id: u32,
    pub(crate) event: Arc<Event>,
    /// A callback owns the items (mirrors the registry, so that a receive
    /// need not lock it: set once, never cleared).
    pub(crate) has_callback: AtomicBool,
    /// How many more waits park without spinning first (see
    /// `Channel::spin_receive`): set after a spin found nothing.
    pub(crate) spin_skip: AtomicU32,
    /// The size of the last item received (see `Channel::spin_receive`).
    pub(crate) last_len: AtomicU32,
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        let driver = self.gateway.driver();
        let wakeups = {
            let mut st = driver.lock();
            let mut reg = self.gateway.registry().lock();
            // Only the registered handle releases: a newer handle for the
            // same id may have replaced us while our count dropped to zero.
            if !reg.remove_if(self.id, self) {
                return;
            }
            let has_callback = reg.callback(self.id) == Some(Callback::Running);
            st.session.release(self.id, has_callback);
            if !has_callback {
                st.drop_chan_event(self.id);
            }
            st.take_wakeups()
        };
        driver.wake(wakeups);
    }
}

impl Clone for Channel {
    fn clone(&self) -> Self {
        Self::from_inner(self.inner.clone())
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closed = self.is_closed();
        write!(
            f,
            "<Channel id={} of {} {}>",
            self.inner.id,
            self.inner.gateway.id(),
            if closed { "closed" } else { "open" }
        )
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id && self.inner.gateway.same(&other.inner.gateway)
    }
}

impl Eq for Channel {}

/// A failed encoding: a Rust value that would not convert is a data-format
/// error, as it always was; the rest cannot be sent.
fn encode_error(e: EncodeError) -> Error {
    match e {
        EncodeError::Value(e) => Error::Value(e),
        e => Error::Encode(e),
    }
}

impl Channel {
    pub(crate) fn from_inner(inner: Arc<ChannelInner>) -> Self {
        Self {
            inner,
            listener: None,
            read_buf: Vec::new(),
            read_pos: 0,
        }
    }

    /// The handle of channel `id` of `gateway`, creating it if needed;
    /// `st` is the gateway's locked driver state.
    pub(crate) fn attach_locked(gateway: &Gateway, st: &mut State, id: u32) -> Channel {
        let mut reg = gateway.registry().lock();
        Self::attach_registered(gateway, st, &mut reg, id)
    }

    /// [`Channel::attach_locked`] with the registry locked too.
    fn attach_registered(gateway: &Gateway, st: &mut State, reg: &mut Entries, id: u32) -> Channel {
        if let Some(inner) = reg.handle(id) {
            return Self::from_inner(inner);
        }
        let inner = Arc::new(ChannelInner {
            gateway: gateway.clone(),
            id,
            event: st.chan_event(id),
            has_callback: AtomicBool::new(reg.callback(id).is_some()),
            spin_skip: AtomicU32::new(0),
            last_len: AtomicU32::new(0),
        });
        reg.insert(id, &inner);
        Self::from_inner(inner)
    }

    /// The channel id (odd: opened here; even: opened by the worker).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ours = gw.remote_exec("pass").await?;
    /// assert_eq!(ours.id() % 2, 1); // opened on this side
    /// let ch = gw.remote_exec("channel.send(channel.gateway.newchannel())").await?;
    /// let theirs: execnet::Channel = ch.receive().await?;
    /// assert_eq!(theirs.id() % 2, 0); // opened by the worker
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The gateway this channel belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("pass").await?;
    /// assert_eq!(ch.gateway().id(), gw.id());
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn gateway(&self) -> Gateway {
        self.inner.gateway.clone()
    }

    /// Whether the channel has ended (closed by either end, or the
    /// connection lost). Items may still be waiting to be received.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send(1)").await?;
    /// ch.wait_close(None).await?; // the code ended: its end closed
    /// assert!(ch.is_closed());
    /// assert_eq!(ch.receive::<i64>().await?, 1); // what it sent is still here
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner
            .gateway
            .driver()
            .lock()
            .session
            .is_closed(self.inner.id)
    }

    /// Send one item; waits while the other end's window is full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("a, b = channel.receive(); channel.send(a + len(b))").await?;
    /// ch.send(&(40, vec!["x", "y"])).await?; // a Rust tuple is a Python tuple
    /// assert_eq!(ch.receive::<i64>().await?, 42);
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    ///
    /// The item is encoded straight from `T` (as its [`Value`] would be);
    /// channels inside it must be of this gateway.
    pub async fn send<T: Serialize + ?Sized>(&self, item: &T) -> Result<()> {
        let item = Item::encode(item).map_err(encode_error)?;
        self.send_item(item).await
    }

    /// [`Channel::send`] for an item that is already a [`Value`]: no serde
    /// pass over it (bindings that build `Value`s themselves, such as the
    /// Python package, send their data this way; a long `bytes` or `str`
    /// moves into the item without a copy).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::Value;
    ///
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send(type(channel.receive()).__name__)").await?;
    /// ch.send_value(Value::FrozenSet(vec![Value::Int(1.into())])).await?;
    /// assert_eq!(ch.receive::<String>().await?, "frozenset");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn send_value(&self, value: Value) -> Result<()> {
        let item = Item::try_from(value).map_err(encode_error)?;
        self.send_item(item).await
    }

    /// Send an item already in wire form (see [`Item::encode`]); waits
    /// while the other end's window is full. Channels inside it must be of
    /// this gateway.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::Item;
    ///
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send(len(channel.receive()))").await?;
    /// ch.send_item(Item::bytes(b"four")).await?;
    /// assert_eq!(ch.receive::<usize>().await?, 4);
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn send_item(&self, mut item: Item) -> Result<()> {
        let driver = self.inner.gateway.driver();
        self.check_channels(&item)?;
        loop {
            let listener = {
                let mut st = driver.lock();
                match st.session.send(self.inner.id, item)? {
                    SendOutcome::Sent => {
                        let w = st.take_wakeups();
                        drop(st);
                        driver.wake(w);
                        return Ok(());
                    }
                    SendOutcome::Blocked(back) => item = back,
                }
                self.inner.event.listen()
            };
            listener.await;
        }
    }

    /// Channel values inside an outgoing item must be of this gateway.
    fn check_channels(&self, item: &Item) -> Result<()> {
        let driver = self.inner.gateway.driver();
        let mut bad = None;
        let mut unknown = Vec::new();
        for c in item.channels() {
            match c.attachment() {
                Some(a) => match a.clone().downcast::<ChannelInner>() {
                    Ok(inner) if inner.gateway.same(&self.inner.gateway) => {}
                    _ => bad = Some(c.id()),
                },
                None => unknown.push(c.id()),
            }
        }
        if let Some(id) = bad {
            return Err(Error::ForeignChannel(id));
        }
        if !unknown.is_empty() {
            let st = driver.lock();
            if let Some(id) = unknown.into_iter().find(|id| !st.session.has_channel(*id)) {
                return Err(Error::ForeignChannel(id));
            }
        }
        Ok(())
    }

    /// Receive the next item; waits for it. `Error::Closed` at end of
    /// channel, `Error::Remote` (once) if the other end raised.
    ///
    /// The item is decoded straight into `T` from the bytes that arrived
    /// (leniently, as [`from_value`](crate::from_value) would convert its
    /// [`Value`]), so it costs what `T` costs. A `T` that is or holds a
    /// [`Value`] gets a budget: the larger of 64 MiB and four times the
    /// item's size on the wire ([`Item::value_budget`]); an item that would
    /// take more as a `Value` is `Error::Value(ValueError::OverBudget)`
    /// (and is consumed), since a peer could otherwise make a small frame
    /// expand 30-fold.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// use std::collections::HashMap;
    ///
    /// let ch = gw.remote_exec("channel.send({'a': [1, 2], 'b': []})").await?;
    /// let item: HashMap<String, Vec<u8>> = ch.receive().await?;
    /// assert_eq!(item["a"], [1, 2]);
    /// // Then the end of the channel.
    /// assert!(matches!(ch.receive::<i64>().await, Err(execnet::Error::Closed)));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn receive<T: DeserializeOwned>(&self) -> Result<T> {
        let item = self.receive_item(None).await?;
        Ok(item.into_decoded()?)
    }

    /// [`Channel::receive`], giving up with `Error::Timeout` after `timeout`
    /// (the item, if it comes later, stays receivable).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// use std::time::Duration;
    ///
    /// let ch = gw.remote_exec("channel.send(channel.receive())").await?;
    /// let early = ch.receive_timeout::<i64>(Duration::from_millis(50)).await;
    /// assert!(matches!(early, Err(execnet::Error::Timeout(_))));
    /// ch.send(&7).await?;
    /// assert_eq!(ch.receive_timeout::<i64>(Duration::from_secs(10)).await?, 7);
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn receive_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        let item = self.receive_item(Some(timeout)).await?;
        Ok(item.into_decoded()?)
    }

    /// [`Channel::receive`] (or, with a timeout, [`Channel::receive_timeout`])
    /// giving the item as the [`Value`] it holds, built straight from its
    /// bytes within [`Item::value_budget`] (`Error::Value(OverBudget)`
    /// beyond it, see [`Channel::receive`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send({1: 'a', (2, 3): frozenset()})").await?;
    /// let value = ch.receive_value(None).await?;
    /// assert_eq!(value.repr(), "{1: 'a', (2, 3): frozenset()}");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn receive_value(&self, timeout: Option<Duration>) -> Result<Value> {
        let item = self.receive_item(timeout).await?;
        Ok(item.into_value()?)
    }

    /// The next item in its wire form, undecoded (`timeout`: as
    /// [`Channel::receive_timeout`]), with this gateway's handles attached to
    /// the channels inside it: decode it later, elsewhere, or with a budget
    /// of your own for a [`Value`] ([`Item::into_decoded_with_budget`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// use execnet::Value;
    ///
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send([None] * 3000000)").await?;
    /// let item = ch.receive_item(None).await?;
    /// assert!(item.len() < 4 << 20); // 3 million Nones are 3 MB on the wire
    /// // As Values they take 96 MB, over the default budget: allow 128 MiB.
    /// let value: Value = item.into_decoded_with_budget(128 << 20)?;
    /// assert_eq!(value.type_name(), "list");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn receive_item(&self, timeout: Option<Duration>) -> Result<Item> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut first = true;
        loop {
            let listener = match self.try_receive()? {
                Some(item) => return Ok(item),
                None => self.inner.event.listen(),
            };
            // Check again: the item may have come between try and listen.
            if let Some(item) = self.try_receive()? {
                return Ok(item);
            }
            if first {
                first = false;
                if let Some(item) = self.spin_receive(deadline)? {
                    return Ok(item);
                }
            }
            if !wait_until(listener, deadline).await {
                // One last look, so an item that raced the timer is not missed.
                if let Some(item) = self.try_receive()? {
                    return Ok(item);
                }
                return Err(Error::Timeout(timeout.unwrap_or_default()));
            }
        }
    }

    /// Look for an item for a short while ([`SPIN`], and not past
    /// `deadline`), yielding the thread between looks, before the caller
    /// parks: an answer to something just sent usually comes within tens of
    /// microseconds, and catching it here saves the futex sleep and wake-up
    /// (about half the round trip on a 2-core machine). Bounded, so an
    /// executor thread is held no longer than a short computation would.
    ///
    /// Only after small items ([`SPIN_MAX_ITEM`]): a large one takes
    /// longer to arrive than the spin, and a spinning receiver takes CPU
    /// from the threads moving its bytes (bulk from the worker lost a third).
    /// Adaptive: after a spin that found nothing (items come slower than
    /// that, e.g. 1 MiB ones, or over a slow link) the next
    /// [`SPIN_BACKOFF`] waits of this channel park at once, so a spin costs
    /// little CPU where it does not pay.
    fn spin_receive(&self, deadline: Option<Instant>) -> Result<Option<Item>> {
        if self.inner.last_len.load(Ordering::Relaxed) > SPIN_MAX_ITEM {
            return Ok(None);
        }
        let skip = &self.inner.spin_skip;
        let left = skip.load(Ordering::Relaxed);
        if left > 0 {
            skip.store(left - 1, Ordering::Relaxed);
            return Ok(None);
        }
        let start = Instant::now();
        let until = deadline.map_or(start + SPIN, |d| d.min(start + SPIN));
        while Instant::now() < until {
            std::thread::yield_now();
            if let Some(item) = self.try_receive()? {
                return Ok(Some(item));
            }
        }
        skip.store(SPIN_BACKOFF, Ordering::Relaxed);
        Ok(None)
    }

    /// Take an item if one is there; refused while a callback owns the
    /// items.
    pub(crate) fn try_receive(&self) -> Result<Option<Item>> {
        if self.inner.has_callback.load(Ordering::Acquire) {
            return Err(Error::CallbackSet(self.inner.id));
        }
        let gateway = &self.inner.gateway;
        let driver = gateway.driver();
        let mut st = driver.lock();
        let mut reg = None;
        let result = match st.session.recv(self.inner.id) {
            Recv::Item(mut item) => {
                let len = u32::try_from(item.len()).unwrap_or(u32::MAX);
                self.inner.last_len.store(len, Ordering::Relaxed);
                attach_channels(gateway, &mut st, &mut reg, &mut item);
                Ok(Some(item))
            }
            Recv::Empty => Ok(None),
            Recv::Eof => Err(Error::Closed),
            Recv::Error(text) => Err(Error::Remote(RemoteError::new(text))),
            Recv::Lost(loss) => Err(loss.into()),
        };
        drop(reg);
        let w = st.take_wakeups();
        drop(st);
        driver.wake(w);
        result
    }

    /// Close this end: the other end's receives end after the items sent
    /// so far. Items already here stay receivable.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// // The answer comes back on a channel of its own: after close(), this
    /// // end takes nothing more from `ch`.
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec("out = channel.receive(); out.send(sum(channel))").await?;
    /// ch.send(&answer).await?;
    /// for x in [1, 2, 3] {
    ///     ch.send(&x).await?;
    /// }
    /// ch.close().await?; // the remote `for` loop over the channel ends here
    /// assert_eq!(answer.receive::<i64>().await?, 6);
    /// assert!(matches!(ch.send(&4).await, Err(execnet::Error::SendClosed(_))));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn close(&self) -> Result<()> {
        self.close_inner(None)
    }

    /// Close this end with an error: the other end's next receive raises
    /// `RemoteError` carrying `message`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec(r#"
    /// out = channel.receive()
    /// try:
    ///     channel.receive()
    /// except channel.RemoteError as e:
    ///     out.send("cancelled: " + str(e))
    /// "#).await?;
    /// ch.send(&answer).await?;
    /// ch.close_with_error("the job was cancelled").await?;
    /// assert_eq!(answer.receive::<String>().await?, "cancelled: the job was cancelled");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn close_with_error(&self, message: &str) -> Result<()> {
        self.close_inner(Some(message))
    }

    pub(crate) fn close_inner(&self, error: Option<&str>) -> Result<()> {
        let driver = self.inner.gateway.driver();
        let w = {
            let mut st = driver.lock();
            st.session.close(self.inner.id, error)?;
            st.take_wakeups()
        };
        driver.wake(w);
        self.inner.event.notify(usize::MAX);
        Ok(())
    }

    /// Wait until the channel has ended (items may remain receivable) and
    /// its callback, if any, has finished. `Error::Remote` if the other end
    /// raised (reported once across `receive` and `wait_close`),
    /// `Error::Timeout` after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// use std::time::Duration;
    ///
    /// let ch = gw.remote_exec("import time; time.sleep(0.1)").await?;
    /// ch.wait_close(Some(Duration::from_secs(10))).await?;
    ///
    /// let failing = gw.remote_exec("1 / 0").await?;
    /// let err = failing.wait_close(None).await.unwrap_err();
    /// assert!(err.to_string().contains("ZeroDivisionError"));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub async fn wait_close(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let listener = {
                let gateway = &self.inner.gateway;
                let mut st = gateway.driver().lock();
                let id = self.inner.id;
                let callback = gateway.registry().lock().callback(id);
                if st.session.is_closed(id) && callback != Some(Callback::Running) {
                    if let Some(text) = st.session.take_remote_error(id) {
                        return Err(Error::Remote(RemoteError::new(text)));
                    }
                    if let Some(loss) = st.session.loss() {
                        if !st.session.is_terminating() && !st.session.is_remote_closed(id) {
                            return Err(loss.clone().into());
                        }
                    }
                    return Ok(());
                }
                self.inner.event.listen()
            };
            if !wait_until(listener, deadline).await {
                return Err(Error::Timeout(timeout.unwrap_or_default()));
            }
        }
    }

    /// How the channel ended, without waiting (also while a callback still
    /// runs, e.g. from inside it at the endmarker): `Some(Error::Remote)` if
    /// the other end raised (reported once, shared with `receive` and
    /// `wait_close`), `Some(Error::ConnectionLost)` (or
    /// `Some(Error::PeerMisbehaved)`) if the connection died first, `None`
    /// while it is open or when it ended cleanly. execnet's
    /// `channel._getremoteerror()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("raise RuntimeError('late')").await?;
    /// ch.wait_close(None).await.unwrap_err(); // reports the error once...
    /// assert!(ch.end_error().is_none()); // ...so it is not reported again
    /// let ch = gw.remote_exec("raise RuntimeError('early')").await?;
    /// while !ch.is_closed() {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    /// }
    /// assert!(ch.end_error().is_some_and(|e| e.to_string().contains("early")));
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn end_error(&self) -> Option<Error> {
        let mut st = self.inner.gateway.driver().lock();
        let id = self.inner.id;
        if !st.session.is_closed(id) {
            return None;
        }
        if let Some(text) = st.session.take_remote_error(id) {
            return Some(Error::Remote(RemoteError::new(text)));
        }
        match st.session.loss() {
            Some(loss) if !st.session.is_terminating() && !st.session.is_remote_closed(id) => {
                Some(loss.clone().into())
            }
            _ => None,
        }
    }

    /// A reader of the channel's items as one byte stream (execnet's
    /// `makefile('r')`): `Bytes` items are read as they are, `Str` items as
    /// UTF-8; end-of-channel is end-of-file.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// use futures_lite::AsyncReadExt;
    ///
    /// let ch = gw.remote_exec("channel.send(b'hello, '); channel.send('world')").await?;
    /// let mut text = String::new();
    /// ch.reader().read_to_string(&mut text).await?;
    /// assert_eq!(text, "hello, world");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn reader(&self) -> Channel {
        self.clone()
    }

    /// A writer that sends every write as one `Bytes` item (execnet's
    /// `makefile('w')`); closing it closes the channel.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// use futures_lite::AsyncWriteExt;
    ///
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec("out = channel.receive(); out.send(b''.join(channel))").await?;
    /// ch.send(&answer).await?;
    /// let mut w = ch.writer();
    /// w.write_all(b"chunk 1, ").await?;
    /// w.write_all(b"chunk 2").await?;
    /// w.close().await?; // closes the channel: the remote loop ends
    /// let joined: serde_bytes::ByteBuf = answer.receive().await?;
    /// assert_eq!(joined.as_ref(), b"chunk 1, chunk 2");
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn writer(&self) -> Channel {
        self.clone()
    }

    pub(crate) fn poll_listener(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.listener.is_none() {
            self.listener = Some(self.inner.event.listen());
            // The state may have changed before we listened: look again.
            return Poll::Ready(());
        }
        match self.listener.as_mut().map(|l| Pin::new(l).poll(cx)) {
            Some(Poll::Ready(())) => {
                self.listener = None;
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }
}

/// Give every channel value inside a received item a live handle. The
/// registry is locked (after the driver state, held by the caller) at the
/// first channel found, if any: most items carry none.
pub(crate) fn attach_channels<'g>(
    gateway: &'g Gateway,
    st: &mut State,
    reg: &mut Option<MutexGuard<'g, Entries>>,
    item: &mut Item,
) {
    for c in item.channels_mut() {
        let reg = reg.get_or_insert_with(|| gateway.registry().lock());
        let handle = Channel::attach_registered(gateway, st, reg, c.id());
        let attachment: Arc<dyn Any + Send + Sync> = handle.inner.clone();
        c.set_attachment(Some(attachment));
    }
}

impl Serialize for Channel {
    /// As a [`ChannelRef`] carrying this handle: `send` makes it a channel
    /// of the same gateway at the other end; other formats write the id
    /// (and keep nothing alive).
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let handle: Arc<dyn Any + Send + Sync> = self.inner.clone();
        ChannelRef::new(self.inner.id)
            .with_attachment(handle)
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Channel {
    /// From a received item (`receive`, `from_value` of a received
    /// [`Value`]): the live handle of the channel with that id.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let channel = ChannelRef::deserialize(deserializer)?;
        let id = channel.id();
        let attachment = channel.attachment().cloned().ok_or_else(|| {
            serde::de::Error::custom(format!(
                "channel {id} arrived without a gateway (receive channels from a channel, or convert the Value it came in)"
            ))
        })?;
        let inner = attachment.downcast::<ChannelInner>().map_err(|_| {
            serde::de::Error::custom(format!("channel {id} is not an execnet channel"))
        })?;
        if inner.id != id {
            return Err(serde::de::Error::custom(format!(
                "channel {id} came with the handle of channel {}",
                inner.id
            )));
        }
        Ok(Channel::from_inner(inner))
    }
}
