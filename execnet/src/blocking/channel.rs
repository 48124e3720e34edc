use std::fmt;
use std::time::Duration;

use futures_lite::future::block_on;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::blocking::Gateway;
use crate::{Item, Result, Value};

/// A blocking handle to a channel; see [`crate::Channel`].
///
/// It is an `Iterator` of the items, ending at end-of-channel, and it can be
/// sent and received inside items like the async one.
///
/// # Examples
///
/// ```
/// let gw = execnet::blocking::Gateway::open("popen")?;
/// let ch = gw.remote_exec("for i in range(3): channel.send(i)")?;
/// let items: Vec<i64> = ch.map(|item| execnet::from_value(item?).map_err(execnet::Error::from))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(items, [0, 1, 2]);
/// # Ok::<_, execnet::Error>(())
/// ```
#[derive(Clone)]
pub struct Channel {
    inner: crate::Channel,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for Channel {}

impl Channel {
    /// The channel id.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("pass")?;
    /// assert_eq!(ch.id() % 2, 1); // odd: opened on this side
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// The gateway of this channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("pass")?;
    /// assert_eq!(ch.gateway().id(), gw.id());
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn gateway(&self) -> Gateway {
        Gateway::from(self.inner.gateway())
    }

    /// Send one item; blocks while the other end's window is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.send(sorted(channel.receive()))")?;
    /// ch.send(&vec![3, 1, 2])?;
    /// assert_eq!(ch.receive::<Vec<i64>>()?, [1, 2, 3]);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, item: &T) -> Result<()> {
        block_on(self.inner.send(item))
    }

    /// Receive the next item; blocks until it comes.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.send(('ok', 2.5, None))")?;
    /// let (status, value, nothing): (String, f64, Option<i64>) = ch.receive()?;
    /// assert_eq!((status.as_str(), value, nothing), ("ok", 2.5, None));
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn receive<T: DeserializeOwned>(&self) -> Result<T> {
        block_on(self.inner.receive())
    }

    /// Receive with a timeout (`Error::Timeout`; the item stays receivable).
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use std::time::Duration;
    ///
    /// let ch = gw.remote_exec("channel.receive()")?;
    /// let err = ch.receive_timeout::<i64>(Duration::from_millis(50)).unwrap_err();
    /// assert!(matches!(err, execnet::Error::Timeout(_)));
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn receive_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        block_on(self.inner.receive_timeout(timeout))
    }

    /// Send an item already in wire form; see [`crate::Channel::send_item`].
    pub fn send_item(&self, item: Item) -> Result<()> {
        block_on(self.inner.send_item(item))
    }

    /// The next item, undecoded; see [`crate::Channel::receive_item`].
    pub fn receive_item(&self, timeout: Option<Duration>) -> Result<Item> {
        block_on(self.inner.receive_item(timeout))
    }

    /// Close this end.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec("out = channel.receive(); out.send(len(list(channel)))")?;
    /// ch.send(&answer)?;
    /// ch.send(&"a")?;
    /// ch.send(&"b")?;
    /// ch.close()?; // ends the remote iteration
    /// assert_eq!(answer.receive::<i64>()?, 2);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn close(&self) -> Result<()> {
        block_on(self.inner.close())
    }

    /// Close this end with an error for the other end.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec(r#"
    /// out = channel.receive()
    /// try:
    ///     channel.receive()
    /// except channel.RemoteError as e:
    ///     out.send(str(e))
    /// "#)?;
    /// ch.send(&answer)?;
    /// ch.close_with_error("stop")?;
    /// assert_eq!(answer.receive::<String>()?, "stop");
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn close_with_error(&self, message: &str) -> Result<()> {
        block_on(self.inner.close_with_error(message))
    }

    /// Wait until the channel has ended (and its callback finished).
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use std::time::Duration;
    ///
    /// let ch = gw.remote_exec("raise KeyError('missing')")?;
    /// let err = ch.wait_close(Some(Duration::from_secs(10))).unwrap_err();
    /// assert!(err.to_string().contains("KeyError: 'missing'"));
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn wait_close(&self, timeout: Option<Duration>) -> Result<()> {
        block_on(self.inner.wait_close(timeout))
    }

    /// Whether the channel has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.receive()")?;
    /// assert!(!ch.is_closed());
    /// ch.send(&0)?;
    /// ch.wait_close(None)?;
    /// assert!(ch.is_closed());
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Deliver every item to `callback` on a library thread; see
    /// [`crate::Channel::set_callback`].
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use std::sync::mpsc;
    ///
    /// let ch = gw.remote_exec("for word in ['a', 'b']: channel.send(word)")?;
    /// let (tx, rx) = mpsc::channel();
    /// ch.set_callback(move |item| tx.send(item.repr()).unwrap(), None)?;
    /// ch.wait_close(None)?; // also waits for the callback
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["'a'", "'b'"]);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn set_callback<F>(&self, callback: F, endmarker: Option<Value>) -> Result<()>
    where
        F: FnMut(Value) + Send + 'static,
    {
        self.inner.set_callback(callback, endmarker)
    }

    /// A `std::io::Read` over the channel's bytes/str items (`makefile('r')`).
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use std::io::BufRead;
    ///
    /// let ch = gw.remote_exec("channel.send('line 1\\nline 2\\n')")?;
    /// let lines: Vec<String> = std::io::BufReader::new(ch.reader()).lines().collect::<Result<_, _>>()?;
    /// assert_eq!(lines, ["line 1", "line 2"]);
    /// # gw.exit()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn reader(&self) -> impl std::io::Read {
        futures_lite::io::BlockOn::new(self.inner.reader())
    }

    /// A `std::io::Write` sending each write as a bytes item (`makefile('w')`).
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// use std::io::Write;
    ///
    /// let answer = gw.new_channel();
    /// let ch = gw.remote_exec("out = channel.receive(); out.send(b''.join(channel).decode())")?;
    /// ch.send(&answer)?;
    /// let mut w = ch.writer();
    /// write!(w, "{} + {} = {}", 1, 2, 3)?;
    /// drop(w);
    /// ch.close()?;
    /// assert_eq!(answer.receive::<String>()?, "1 + 2 = 3");
    /// # gw.exit()?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> impl std::io::Write {
        futures_lite::io::BlockOn::new(self.inner.writer())
    }

    /// The async handle of the same channel.
    pub fn as_async(&self) -> &crate::Channel {
        &self.inner
    }

    /// Turn into the async handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let gw = execnet::blocking::Gateway::open("popen")?;
    /// let ch = gw.remote_exec("channel.send(1)")?;
    /// let async_ch: execnet::Channel = ch.into_async();
    /// let back = execnet::blocking::Channel::from(async_ch);
    /// assert_eq!(back.receive::<i64>()?, 1);
    /// # gw.exit()?;
    /// # Ok::<_, execnet::Error>(())
    /// ```
    pub fn into_async(self) -> crate::Channel {
        self.inner
    }
}

impl From<crate::Channel> for Channel {
    fn from(inner: crate::Channel) -> Self {
        Channel { inner }
    }
}

impl From<Channel> for crate::Channel {
    fn from(ch: Channel) -> Self {
        ch.inner
    }
}

impl Iterator for Channel {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        match block_on(self.inner.receive::<Value>()) {
            Ok(value) => Some(Ok(value)),
            Err(crate::Error::Closed) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        crate::Channel::deserialize(deserializer).map(Channel::from)
    }
}
