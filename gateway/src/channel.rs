//! [`Channel`]: one ordered, bidirectional stream of items with the worker.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};
use execnet_wire::{ChannelRef, EncodeError, Item, Value};
use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, RemoteError, Result};
use crate::gateway::Gateway;
use crate::session::{self, Recv, SessionError};
use crate::shared::{State, Wakeups};

/// One end of a channel: send items to the other end, receive its items.
///
/// Cheap to clone (clones are the same end). When the last handle is
/// dropped while the channel is open, the other end is told (its receives
/// end), as in execnet. A `Channel` is a [`Stream`] of items that ends at
/// end-of-channel, and it can itself be sent inside an item.
///
/// # Examples
///
/// ```
/// # futures_lite::future::block_on(async {
/// let gw = execnet_gateway::Gateway::open("popen").await?;
/// let ch = gw.remote_exec("for x in channel: channel.send(x * 2)").await?;
/// ch.send(&21).await?;
/// assert_eq!(ch.receive::<i32>().await?, 42);
/// ch.close().await?;
/// ch.wait_close(None).await?;
/// # Ok::<_, execnet_gateway::Error>(()) }).unwrap();
/// ```
pub struct Channel {
    pub(crate) inner: Arc<ChannelInner>,
    /// The pending wait of the `Stream` / `AsyncRead` / `AsyncWrite` impls.
    listener: Option<EventListener>,
    read_buf: Vec<u8>,
    read_pos: usize,
}

pub(crate) struct ChannelInner {
    gateway: Gateway,
    id: u32,
    event: Arc<Event>,
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        let shared = self.gateway.shared();
        let wakeups = {
            let mut st = shared.lock();
            // Only the registered handle releases: a newer handle for the
            // same id may have replaced us while our count dropped to zero.
            let ours = st
                .handles
                .get(&self.id)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self));
            if !ours {
                return;
            }
            st.handles.remove(&self.id);
            let has_callback = st.callbacks.get(&self.id) == Some(&false);
            st.session.release(self.id, has_callback);
            if !has_callback {
                st.chan_events.remove(&self.id);
            }
            st.take_wakeups()
        };
        shared.wake(wakeups);
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

pub(crate) fn session_error(e: SessionError, channel: u32) -> Error {
    match e {
        SessionError::SendClosed(id) => Error::SendClosed(id),
        SessionError::Lost(reason) => Error::ConnectionLost(reason),
        SessionError::Encode(e) => Error::Encode(e),
        other => Error::ConnectionLost(format!("channel {channel}: {other}")),
    }
}

impl Channel {
    fn from_inner(inner: Arc<ChannelInner>) -> Self {
        Self {
            inner,
            listener: None,
            read_buf: Vec::new(),
            read_pos: 0,
        }
    }

    /// The handle of channel `id` of `gateway`, creating it if needed.
    pub(crate) fn attach(gateway: &Gateway, id: u32) -> Channel {
        let mut st = gateway.shared().lock();
        Self::attach_locked(gateway, &mut st, id)
    }

    fn attach_locked(gateway: &Gateway, st: &mut State, id: u32) -> Channel {
        if let Some(inner) = st.handles.get(&id).and_then(Weak::upgrade) {
            return Self::from_inner(inner);
        }
        let inner = Arc::new(ChannelInner {
            gateway: gateway.clone(),
            id,
            event: st.chan_event(id),
        });
        st.handles.insert(id, Arc::downgrade(&inner));
        Self::from_inner(inner)
    }

    /// The channel id (odd: opened here; even: opened by the worker).
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The gateway this channel belongs to.
    pub fn gateway(&self) -> Gateway {
        self.inner.gateway.clone()
    }

    /// Whether the channel has ended (closed by either end, or the
    /// connection lost). Items may still be waiting to be received.
    pub fn is_closed(&self) -> bool {
        self.inner
            .gateway
            .shared()
            .lock()
            .session
            .is_closed(self.inner.id)
    }

    /// Send one item; waits while the other end's window is full.
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
    /// # futures_lite::future::block_on(async {
    /// use execnet_gateway::Gateway;
    /// use execnet_wire::Item;
    ///
    /// let gw = Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send(len(channel.receive()))").await?;
    /// ch.send_item(Item::bytes(b"four")).await?;
    /// assert_eq!(ch.receive::<usize>().await?, 4);
    /// # Ok::<_, execnet_gateway::Error>(()) }).unwrap();
    /// ```
    pub async fn send_item(&self, mut item: Item) -> Result<()> {
        let shared = self.inner.gateway.shared();
        self.check_channels(&item)?;
        loop {
            let listener = {
                let mut st = shared.lock();
                match st.session.send(self.inner.id, item) {
                    Ok(session::Send::Sent) => {
                        let w = st.take_wakeups();
                        drop(st);
                        shared.wake(w);
                        return Ok(());
                    }
                    Ok(session::Send::Blocked(back)) => item = back,
                    Err(e) => return Err(session_error(e, self.inner.id)),
                }
                self.inner.event.listen()
            };
            listener.await;
        }
    }

    /// Channel values inside an outgoing item must be of this gateway.
    fn check_channels(&self, item: &Item) -> Result<()> {
        let shared = self.inner.gateway.shared();
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
            let st = shared.lock();
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
    pub async fn receive<T: DeserializeOwned>(&self) -> Result<T> {
        let item = self.receive_item(None).await?;
        Ok(item.into_decoded()?)
    }

    /// [`Channel::receive`], giving up with `Error::Timeout` after `timeout`
    /// (the item, if it comes later, stays receivable).
    pub async fn receive_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        let item = self.receive_item(Some(timeout)).await?;
        Ok(item.into_decoded()?)
    }

    /// [`Channel::receive`] (or, with a timeout, [`Channel::receive_timeout`])
    /// giving the item as the [`Value`] it holds, built straight from its
    /// bytes within [`Item::value_budget`] (`Error::Value(OverBudget)`
    /// beyond it, see [`Channel::receive`]).
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
    /// # futures_lite::future::block_on(async {
    /// use execnet_gateway::{Gateway, Value};
    ///
    /// let gw = Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("channel.send([None] * 3000000)").await?;
    /// let item = ch.receive_item(None).await?;
    /// assert!(item.len() < 4 << 20); // 3 million Nones are 3 MB on the wire
    /// // As Values they take 96 MB, over the default budget: allow 128 MiB.
    /// let value: Value = item.into_decoded_with_budget(128 << 20)?;
    /// assert_eq!(value.type_name(), "list");
    /// # Ok::<_, execnet_gateway::Error>(()) }).unwrap();
    /// ```
    pub async fn receive_item(&self, timeout: Option<Duration>) -> Result<Item> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let listener = match self.try_receive(true)? {
                Some(item) => return Ok(item),
                None => self.inner.event.listen(),
            };
            // Check again: the item may have come between try and listen.
            if let Some(item) = self.try_receive(true)? {
                return Ok(item);
            }
            if !wait_until(listener, deadline).await {
                // One last look, so an item that raced the timer is not missed.
                if let Some(item) = self.try_receive(true)? {
                    return Ok(item);
                }
                return Err(Error::Timeout(timeout.unwrap_or_default()));
            }
        }
    }

    /// Take an item if one is there. `check_callback`: refuse when a
    /// callback owns the items.
    fn try_receive(&self, check_callback: bool) -> Result<Option<Item>> {
        let shared = self.inner.gateway.shared();
        let mut st = shared.lock();
        if check_callback && st.callbacks.contains_key(&self.inner.id) {
            return Err(Error::CallbackSet(self.inner.id));
        }
        let result = match st.session.recv(self.inner.id) {
            Recv::Item(mut item) => {
                attach_channels(&self.inner.gateway, &mut st, &mut item);
                Ok(Some(item))
            }
            Recv::Empty => Ok(None),
            Recv::Eof => Err(Error::Closed),
            Recv::Error(text) => Err(Error::Remote(RemoteError::new(text))),
            Recv::Lost(reason) => Err(Error::ConnectionLost(reason)),
        };
        let w = st.take_wakeups();
        drop(st);
        shared.wake(w);
        result
    }

    /// Close this end: the other end's receives end after the items sent
    /// so far. Items already here stay receivable.
    pub async fn close(&self) -> Result<()> {
        self.close_inner(None)
    }

    /// Close this end with an error: the other end's next receive raises
    /// `RemoteError` carrying `message`.
    pub async fn close_with_error(&self, message: &str) -> Result<()> {
        self.close_inner(Some(message))
    }

    pub(crate) fn close_inner(&self, error: Option<&str>) -> Result<()> {
        let shared = self.inner.gateway.shared();
        let w = {
            let mut st = shared.lock();
            st.session
                .close(self.inner.id, error)
                .map_err(|e| session_error(e, self.inner.id))?;
            st.take_wakeups()
        };
        shared.wake(w);
        self.inner.event.notify(usize::MAX);
        Ok(())
    }

    /// Wait until the channel has ended (items may remain receivable) and
    /// its callback, if any, has finished. `Error::Remote` if the other end
    /// raised (reported once across `receive` and `wait_close`),
    /// `Error::Timeout` after `timeout`.
    pub async fn wait_close(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let listener = {
                let shared = self.inner.gateway.shared();
                let mut st = shared.lock();
                let id = self.inner.id;
                let callback_running = st.callbacks.get(&id) == Some(&false);
                if st.session.is_closed(id) && !callback_running {
                    if let Some(text) = st.session.take_remote_error(id) {
                        return Err(Error::Remote(RemoteError::new(text)));
                    }
                    if let Some(reason) = st.session.lost_reason() {
                        if !st.session.is_terminating() && !st.session.is_remote_closed(id) {
                            return Err(Error::ConnectionLost(reason.to_string()));
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
    /// `wait_close`), `Some(Error::ConnectionLost)` if the connection died
    /// first, `None` while it is open or when it ended cleanly. execnet's
    /// `channel._getremoteerror()`.
    pub fn end_error(&self) -> Option<Error> {
        let shared = self.inner.gateway.shared();
        let mut st = shared.lock();
        let id = self.inner.id;
        if !st.session.is_closed(id) {
            return None;
        }
        if let Some(text) = st.session.take_remote_error(id) {
            return Some(Error::Remote(RemoteError::new(text)));
        }
        match st.session.lost_reason() {
            Some(reason) if !st.session.is_terminating() && !st.session.is_remote_closed(id) => {
                Some(Error::ConnectionLost(reason.to_string()))
            }
            _ => None,
        }
    }

    /// Deliver every item (those already queued first) to `callback`, on a
    /// library thread; afterwards `receive` fails with `Error::CallbackSet`.
    /// `endmarker`, if given, is delivered once when the channel ends
    /// (closed, errored, or connection lost).
    ///
    /// Items arrive as [`Value`]s, each within its budget (see
    /// [`Channel::receive`]); an item that would take more ends the
    /// deliveries as a panicking callback does: the channel is closed with
    /// an error naming the cause, and the endmarker follows.
    pub fn set_callback<F>(&self, callback: F, endmarker: Option<Value>) -> Result<()>
    where
        F: FnMut(Value) + Send + 'static,
    {
        let id = self.inner.id;
        let shared = self.inner.gateway.shared().clone();
        {
            let mut st = shared.lock();
            if st.callbacks.contains_key(&id) {
                return Err(Error::CallbackSet(id));
            }
            st.callbacks.insert(id, false);
        }
        let gateway = self.inner.gateway.clone();
        let event = self.inner.event.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("execnet-callback-{id}"))
            .spawn(move || run_callback(gateway, id, event, callback, endmarker));
        if let Err(e) = spawned {
            shared.lock().callbacks.remove(&id);
            return Err(Error::Io(e));
        }
        Ok(())
    }

    /// A reader of the channel's items as one byte stream (execnet's
    /// `makefile('r')`): `Bytes` items are read as they are, `Str` items as
    /// UTF-8; end-of-channel is end-of-file.
    pub fn reader(&self) -> Channel {
        self.clone()
    }

    /// A writer that sends every write as one `Bytes` item (execnet's
    /// `makefile('w')`); closing it closes the channel.
    pub fn writer(&self) -> Channel {
        self.clone()
    }

    fn poll_listener(&mut self, cx: &mut Context<'_>) -> Poll<()> {
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

/// Wait for `listener`, or until `deadline` if there is one; `false` when
/// the deadline passed first.
async fn wait_until(listener: EventListener, deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            listener.await;
            true
        }
        Some(deadline) => {
            futures_lite::future::or(
                async {
                    listener.await;
                    true
                },
                async {
                    async_io::Timer::at(deadline).await;
                    false
                },
            )
            .await
        }
    }
}

/// Give every channel value inside a received item a live handle (found by
/// id when the item is decoded).
fn attach_channels(gateway: &Gateway, st: &mut State, item: &mut Item) {
    for c in item.channels_mut() {
        let handle = Channel::attach_locked(gateway, st, c.id());
        let attachment: Arc<dyn Any + Send + Sync> = handle.inner.clone();
        c.set_attachment(Some(attachment));
    }
}

fn run_callback<F>(
    gateway: Gateway,
    id: u32,
    event: Arc<Event>,
    mut callback: F,
    end: Option<Value>,
) where
    F: FnMut(Value) + Send + 'static,
{
    let shared = gateway.shared().clone();
    // Whatever happens to the callback (even a panic), the channel's
    // callback is marked finished so wait_close never hangs.
    let _finished = CallbackFinished {
        gateway: gateway.clone(),
        id,
        event: event.clone(),
    };
    // As execnet does when a callback raises: close the channel with the
    // error, and deliver nothing more.
    let give_up = |why: &str| {
        let shared = gateway.shared();
        let w = {
            let mut st = shared.lock();
            let _ = st.session.close(id, Some(why));
            st.take_wakeups()
        };
        shared.wake(w);
    };
    let mut deliver = |value: Value| -> bool {
        let call = std::panic::AssertUnwindSafe(|| callback(value));
        if std::panic::catch_unwind(call).is_ok() {
            return true;
        }
        give_up("the receiving callback panicked");
        false
    };
    loop {
        let (next, wakeups): (Option<Item>, Wakeups) = {
            let mut st = shared.lock();
            match st.session.recv(id) {
                Recv::Item(mut item) => {
                    attach_channels(&gateway, &mut st, &mut item);
                    (Some(item), st.take_wakeups())
                }
                Recv::Empty => {
                    let listener = event.listen();
                    drop(st);
                    futures_lite::future::block_on(listener);
                    continue;
                }
                Recv::Error(_) => {
                    // The callback takes items only: the error stays for
                    // wait_close to report, as in execnet.
                    st.session.restore_remote_error(id);
                    (None, st.take_wakeups())
                }
                _ => (None, st.take_wakeups()),
            }
        };
        shared.wake(wakeups);
        match next.map(Item::into_value) {
            Some(Ok(value)) => {
                if !deliver(value) {
                    return;
                }
            }
            // A callback takes Values; one this large cannot be made (a
            // peer could make a small frame expand 30-fold).
            Some(Err(e)) => {
                give_up(&format!("the receiving callback cannot take an item: {e}"));
                break;
            }
            None => break,
        }
    }
    if let Some(end) = end {
        deliver(end);
    }
}

/// Marks a channel's callback as finished when dropped (also on unwind).
struct CallbackFinished {
    gateway: Gateway,
    id: u32,
    event: Arc<Event>,
}

impl Drop for CallbackFinished {
    fn drop(&mut self) {
        let shared = self.gateway.shared();
        let w = {
            let mut st = shared.lock();
            st.callbacks.insert(self.id, true);
            if st
                .handles
                .get(&self.id)
                .is_none_or(|w| w.strong_count() == 0)
            {
                st.session.release(self.id, false);
                st.chan_events.remove(&self.id);
            }
            st.take_wakeups()
        };
        shared.wake(w);
        self.event.notify(usize::MAX);
    }
}

impl Stream for Channel {
    type Item = Result<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.try_receive(true) {
                Ok(Some(item)) => return Poll::Ready(Some(item.into_value().map_err(Error::from))),
                Ok(None) => {}
                Err(Error::Closed) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl futures_io::AsyncRead for Channel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            if self.read_pos < self.read_buf.len() {
                let n = buf.len().min(self.read_buf.len() - self.read_pos);
                let start = self.read_pos;
                buf[..n].copy_from_slice(&self.read_buf[start..start + n]);
                self.read_pos += n;
                return Poll::Ready(Ok(n));
            }
            match self.try_receive(true) {
                Ok(Some(item)) => {
                    let value = item
                        .into_value()
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    let bytes = match value.into_bytes() {
                        Ok(b) => b,
                        Err(other) => {
                            other
                                .into_string()
                                .map(String::into_bytes)
                                .map_err(|other| {
                                    std::io::Error::new(
                                        std::io::ErrorKind::InvalidData,
                                        format!(
                                            "channel item is {}, not bytes or str",
                                            other.type_name()
                                        ),
                                    )
                                })?
                        }
                    };
                    self.read_buf = bytes;
                    self.read_pos = 0;
                    continue;
                }
                Ok(None) => {}
                Err(Error::Closed) => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl futures_io::AsyncWrite for Channel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let shared = self.inner.gateway.shared().clone();
            let outcome = {
                let mut st = shared.lock();
                let r = st
                    .session
                    .send(self.inner.id, Item::bytes(buf))
                    .map_err(|e| session_error(e, self.inner.id));
                (r, st.take_wakeups())
            };
            shared.wake(outcome.1);
            match outcome.0 {
                Ok(session::Send::Sent) => return Poll::Ready(Ok(buf.len())),
                Ok(session::Send::Blocked(_)) => {}
                Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
            if self.poll_listener(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.close_inner(None).map_err(std::io::Error::other))
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
