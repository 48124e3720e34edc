//! The multiplexing session: a sans-IO state machine.
//!
//! It holds the channel table, allocates channel ids, applies close
//! semantics and per-channel credit flow control. It does no IO and reads no
//! clock: whole decoded frames come in through [`Session::handle_input`],
//! bytes to send are taken with [`Session::poll_transmit`], and what changed
//! is reported by [`Session::poll_event`]. Both ends of a connection can be
//! a `Session` (the opener and, for tests or a Rust worker, the worker), so
//! two sessions can be driven against each other in memory
//! ([`Pair`](crate::Pair) does that).

use std::collections::{HashMap, VecDeque};

use execnet_wire::{
    encode_frame_limited, Call, Frame, Hello, Item, ItemQueue, Message, Value, DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW, MAGIC, PROTOCOL_VERSION,
};

use crate::error::{Loss, PeerMisbehaved, SessionError};

/// How many channels may be open at once when the peer brings them into
/// existence by naming them inside items; naming more is a protocol error.
/// (A channel takes about a hundred bytes here, and a peer names one in
/// three; channels this end opens are not limited.)
pub const MAX_CHANNELS: usize = 1 << 16;

/// Which end of the connection a session is.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Role, Session, SessionConfig};
///
/// let mut opener = Session::new(Role::Opener, SessionConfig::default());
/// let mut worker = Session::new(Role::Worker, SessionConfig::default());
/// assert_eq!(opener.open_channel() % 2, 1);
/// assert_eq!(worker.open_channel() % 2, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the gateway: allocates odd channel ids.
    Opener,
    /// The worker: allocates even channel ids.
    Worker,
}

/// Settings of one end: the defaults, changed with the builder methods.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Role, Session, SessionConfig};
/// use execnet_wire::Value;
///
/// let config = SessionConfig::default()
///     .window(1 << 20)
///     .max_frame(16 << 20)
///     .info(Value::Dict(vec![(Value::Str("id".into()), Value::Str("gw0".into()))]));
/// assert_eq!(config.window, 1 << 20);
/// let session = Session::new(Role::Opener, config);
/// assert_eq!(session.config().max_frame, 16 << 20);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The receive window this end grants the peer per channel, in bytes
    /// (default [`DEFAULT_WINDOW`], 8 MiB).
    pub window: u64,
    /// The largest frame body this end accepts, in bytes (default
    /// [`DEFAULT_MAX_FRAME`], 256 MiB); the peer learns it from the `Hello`
    /// and never sends a larger frame. The IO layer's decoder must use the
    /// same limit.
    pub max_frame: u32,
    /// The `info` Dict of this end's `Hello` (default: empty).
    pub info: Value,
}

impl SessionConfig {
    /// The receive window this end grants per channel, in bytes.
    pub fn window(mut self, bytes: u64) -> Self {
        self.window = bytes;
        self
    }

    /// The largest frame body this end accepts, in bytes.
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }

    /// The `info` Dict of this end's `Hello`.
    pub fn info(mut self, info: Value) -> Self {
        self.info = info;
        self
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            max_frame: DEFAULT_MAX_FRAME,
            info: Value::Dict(Vec::new()),
        }
    }
}

/// What the peer said in its `Hello`.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Pair, SessionConfig};
///
/// let mut pair = Pair::new(SessionConfig::default(), SessionConfig::default().window(1 << 20));
/// assert!(pair.opener.peer().is_none());
/// pair.drive().unwrap();
/// assert_eq!(pair.opener.peer().map(|hello| hello.window), Some(1 << 20));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PeerHello {
    /// The peer's receive window per channel.
    pub window: u64,
    /// The largest frame the peer accepts.
    pub max_frame: u32,
    /// The peer's `info` Dict.
    pub info: Value,
}

/// Something that changed, for the IO layer to act on.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Event, Pair};
///
/// let mut pair = Pair::default();
/// let ch = pair.opener.status_request().unwrap();
/// pair.opener.terminate();
/// pair.drive().unwrap();
/// // The Hello wakes the channels opened before it (senders wait for it).
/// assert_eq!(pair.opener_events, [Event::Hello, Event::Channel(ch)]);
/// assert_eq!(pair.worker_events, [Event::Hello, Event::StatusRequest { channel: ch }, Event::Terminate]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The peer's `Hello` arrived.
    Hello,
    /// Channel `id` changed: an item arrived, it closed, or credit came back.
    Channel(u32),
    /// The peer asked this end to run code (worker role only).
    Exec {
        /// The channel the code talks on.
        channel: u32,
        /// The source.
        source: String,
        /// The file name to compile it under, if the opener gave one.
        filename: Option<String>,
        /// The function to call afterwards, with its keyword arguments.
        call: Option<Call>,
    },
    /// The peer asked for a status reply on `channel` (worker role only).
    StatusRequest {
        /// Where to reply.
        channel: u32,
    },
    /// The peer asked this end to terminate (worker role only).
    Terminate,
    /// The peer closed `channel` with an error that nobody will ever read:
    /// the application released the channel before taking it, or the
    /// error arrived after the release. Python execnet warns `unhandled
    /// RemoteError` then; so should the IO layer, once.
    UnreadError {
        /// The channel.
        channel: u32,
        /// The error text (the remote traceback).
        error: String,
    },
}

/// The result of a receive attempt.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Pair, Recv};
/// use execnet_wire::Item;
///
/// let mut pair = Pair::default();
/// let ch = pair.opener.exec("").unwrap();
/// pair.drive().unwrap();
/// assert_eq!(pair.opener.recv(ch), Recv::Empty); // nothing yet
/// let none = Item::encode(&()).unwrap();
/// pair.worker.send(ch, none.clone()).unwrap();
/// pair.worker.close(ch, Some("Traceback ...")).unwrap();
/// pair.drive().unwrap();
/// assert_eq!(pair.opener.recv(ch), Recv::Item(none));
/// assert_eq!(pair.opener.recv(ch), Recv::Error("Traceback ...".into())); // once
/// assert_eq!(pair.opener.recv(ch), Recv::Eof);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Recv {
    /// The next item, in its wire form (decode it with [`Item::decode`]).
    Item(Item),
    /// Nothing yet; wait for [`Event::Channel`].
    Empty,
    /// The channel ended without error (or the error was reported already).
    Eof,
    /// The peer closed the channel with this error (reported once).
    Error(String),
    /// The connection ended while the channel was open.
    Lost(Loss),
}

/// What became of an item given to [`Session::send`].
///
/// # Examples
///
/// ```
/// use execnet_proto::{Pair, SendOutcome, SessionConfig};
/// use execnet_wire::Item;
///
/// // The worker grants 1000 bytes of credit per channel.
/// let mut pair = Pair::new(SessionConfig::default(), SessionConfig::default().window(1000));
/// pair.drive().unwrap();
/// let ch = pair.opener.exec("").unwrap();
/// let item = Item::bytes(&[0; 600]);
/// assert_eq!(pair.opener.send(ch, item.clone()).unwrap(), SendOutcome::Sent);
/// assert_eq!(pair.opener.send(ch, item.clone()).unwrap(), SendOutcome::Sent); // overdraws once
/// assert_eq!(pair.opener.send(ch, item.clone()).unwrap(), SendOutcome::Blocked(item));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum SendOutcome {
    /// Queued for transmission.
    Sent,
    /// No credit: wait for [`Event::Channel`] and try again. The item is
    /// handed back.
    Blocked(Item),
}

#[derive(Debug, Clone, PartialEq)]
enum Remote {
    Open,
    Closed,
    Error(String),
    /// The peer sends no more but still receives.
    LastMessage,
}

#[derive(Debug)]
struct Chan {
    /// Received items in their wire form: the queue costs their bytes,
    /// whatever they hold (at most the window plus one item).
    items: ItemQueue,
    remote: Remote,
    /// We closed our end (close() or release()).
    local_closed: bool,
    /// The remote error was handed out already.
    error_reported: bool,
    /// Send credit; may go negative by one item.
    credit: i64,
    /// Receive credit: the bytes the peer may still send here (our window,
    /// less what arrived, plus what we returned). The peer may send while
    /// its view of this is above zero, so an item that arrives when it is
    /// not is past the window: a protocol violation.
    granted: i64,
    /// Bytes taken by the application and not yet returned with `Credit`.
    unreturned: u64,
    /// The application's handles are gone.
    released: bool,
}

impl Chan {
    fn new(credit: u64, window: u64) -> Self {
        Self {
            items: ItemQueue::new(),
            remote: Remote::Open,
            local_closed: false,
            error_reported: false,
            credit: i64::try_from(credit).unwrap_or(i64::MAX),
            granted: i64::try_from(window).unwrap_or(i64::MAX),
            unreturned: 0,
            released: false,
        }
    }

    /// Neither end will ever deliver anything more here.
    fn finished(&self) -> bool {
        self.items.is_empty() && (self.local_closed || self.remote != Remote::Open)
    }
}

/// The sans-IO multiplexing session of one connection end.
///
/// # Driving a session
///
/// The IO layer (one task per connection, or a test) owns the byte stream
/// and calls, in this order:
///
/// 1. [`Session::new`]: the session queues its `Hello` at once.
/// 2. For every frame the decoder produces (the decoder's limit is
///    [`SessionConfig::max_frame`]): [`Session::handle_input`]. An error
///    means the peer broke the protocol: stop reading, and call
///    [`Session::connection_lost`] with [`Loss::Misbehaved`]. A decode
///    error of the frame decoder is the same (`PeerMisbehaved::Decode`).
/// 3. After `handle_input`, and after every local call that can change
///    something (`exec`, `send`, `recv`, `close`, `release`,
///    `status_request`, `terminate`, `connection_lost`):
///    [`Session::poll_transmit`] and write what it returned, then
///    [`Session::poll_event`] until it returns `None` and wake whoever waits
///    on what the events name. Bytes must be written in the order they were
///    taken; events may be handled in any order.
/// 4. When the stream ends or fails: [`Session::connection_lost`] with
///    [`Loss::Ended`], then `poll_event` once more (every channel gets an
///    event). Nothing is transmitted after that.
///
/// [`Pair`](crate::Pair) is the smallest complete driver: two sessions and
/// two decoders in memory.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Event, Pair, Recv};
/// use execnet_wire::Item;
///
/// let mut pair = Pair::default();
/// let ch = pair.opener.exec("for x in channel: pass").unwrap();
/// pair.drive().unwrap(); // the Hellos and the exec cross
/// pair.opener.send(ch, Item::encode("hi").unwrap()).unwrap();
/// pair.drive().unwrap();
/// assert!(pair.worker_events.contains(&Event::Channel(ch)));
/// let Recv::Item(item) = pair.worker.recv(ch) else { panic!("an item") };
/// assert_eq!(item.decode::<String>().unwrap(), "hi");
/// ```
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: SessionConfig,
    peer: Option<PeerHello>,
    channels: HashMap<u32, Chan>,
    next_id: u32,
    outbox: Vec<u8>,
    events: VecDeque<Event>,
    lost: Option<Loss>,
    terminate_sent: bool,
}

impl Session {
    /// A new session; its `Hello` is queued for transmission.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Role, Session, SessionConfig};
    ///
    /// let mut session = Session::new(Role::Opener, SessionConfig::default());
    /// let mut hello = Vec::new();
    /// assert!(session.poll_transmit(&mut hello) > 0); // the Hello, queued at once
    /// assert_eq!(&hello[4..9], b"\x00EXNT"); // its tag, then the magic
    /// ```
    pub fn new(role: Role, config: SessionConfig) -> Self {
        let mut session = Self {
            role,
            next_id: match role {
                Role::Opener => 1,
                Role::Worker => 2,
            },
            config,
            peer: None,
            channels: HashMap::new(),
            outbox: Vec::with_capacity(64 * 1024),
            events: VecDeque::new(),
            lost: None,
            terminate_sent: false,
        };
        let hello = Message::Hello(Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            window: session.config.window,
            max_frame: session.config.max_frame,
            info: session.config.info.clone(),
        });
        // A Hello whose info cannot be encoded is a programming error of the
        // embedding code; send an empty info rather than nothing.
        if encode_frame_limited(&hello, &mut session.outbox, u32::MAX).is_err() {
            let fallback = Message::Hello(Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
                window: session.config.window,
                max_frame: session.config.max_frame,
                info: Value::Dict(Vec::new()),
            });
            let _ = encode_frame_limited(&fallback, &mut session.outbox, u32::MAX);
        }
        session
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This end's settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The peer's `Hello`, once it arrived.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// Why the connection ended, if it did.
    pub fn loss(&self) -> Option<&Loss> {
        self.lost.as_ref()
    }

    /// Whether the connection has ended ([`Session::connection_lost`]).
    pub fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// Feed one decoded frame from the peer.
    ///
    /// An error means the peer broke the protocol; the caller should stop
    /// reading and end the connection ([`Session::connection_lost`] with
    /// [`Loss::Misbehaved`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{PeerMisbehaved, Role, Session, SessionConfig};
    /// use execnet_wire::{Decoder, Message};
    ///
    /// let mut session = Session::new(Role::Opener, SessionConfig::default());
    /// // A peer that starts with anything but its Hello breaks the protocol.
    /// let mut bytes = Vec::new();
    /// execnet_wire::encode_frame(&Message::ChannelClose { channel: 1 }, &mut bytes).unwrap();
    /// let mut decoder = Decoder::new(session.config().max_frame);
    /// decoder.feed(&bytes);
    /// let frame = decoder.next_frame().unwrap().unwrap();
    /// assert_eq!(
    ///     session.handle_input(frame),
    ///     Err(PeerMisbehaved::FirstNotHello { got: "ChannelClose" })
    /// );
    /// ```
    pub fn handle_input(&mut self, frame: Frame) -> Result<(), PeerMisbehaved> {
        let Frame { message, len } = frame;
        if self.peer.is_none() {
            return match message {
                Message::Hello(hello) => self.accept_hello(hello),
                other => Err(PeerMisbehaved::FirstNotHello { got: other.name() }),
            };
        }
        match message {
            Message::Hello(_) => return Err(PeerMisbehaved::SecondHello),
            Message::ChannelData { channel, data } => {
                self.register_channels(&data)?;
                if let Some(chan) = self.channels.get_mut(&channel) {
                    // Past the window we granted: the peer ignores credit
                    // (a correct sender stops while its credit is not above
                    // zero, and its credit is never more than `granted`).
                    if chan.granted <= 0 {
                        return Err(PeerMisbehaved::CreditOverrun {
                            channel,
                            window: self.config.window,
                            bytes: u64::from(len),
                            over: u64::from(len).saturating_add(chan.granted.unsigned_abs()),
                        });
                    }
                    chan.granted -= i64::from(len);
                }
                match self.channels.get_mut(&channel) {
                    Some(chan) if !chan.local_closed && !chan.released => {
                        if chan.remote != Remote::Open {
                            return Err(PeerMisbehaved::DataAfterClose { channel });
                        }
                        chan.items.push(data, len);
                        self.events.push_back(Event::Channel(channel));
                    }
                    // Closed or unknown here: drop the item, but give the
                    // credit back so a sender racing our close never stalls.
                    Some(_) => self.return_credit(channel, u64::from(len)),
                    None => {}
                }
            }
            Message::ChannelClose { channel } => self.remote_closed(channel, Remote::Closed),
            Message::ChannelCloseError { channel, error } => {
                self.remote_closed(channel, Remote::Error(error))
            }
            Message::ChannelLastMessage { channel } => {
                self.remote_closed(channel, Remote::LastMessage)
            }
            Message::Credit { channel, bytes } => {
                if let Some(chan) = self.channels.get_mut(&channel) {
                    let add = i64::try_from(bytes).unwrap_or(i64::MAX);
                    chan.credit = chan.credit.saturating_add(add);
                    self.events.push_back(Event::Channel(channel));
                }
            }
            Message::ChannelExec {
                channel,
                source,
                filename,
                call,
            } => {
                if self.role != Role::Worker {
                    return Err(PeerMisbehaved::OpenerOnly {
                        message: "ChannelExec",
                    });
                }
                self.ensure_channel(channel);
                self.events.push_back(Event::Exec {
                    channel,
                    source,
                    filename,
                    call,
                });
            }
            Message::Status { channel } => {
                if self.role != Role::Worker {
                    return Err(PeerMisbehaved::OpenerOnly { message: "Status" });
                }
                self.ensure_channel(channel);
                self.events.push_back(Event::StatusRequest { channel });
            }
            Message::Terminate => {
                if self.role != Role::Worker {
                    return Err(PeerMisbehaved::OpenerOnly {
                        message: "Terminate",
                    });
                }
                self.events.push_back(Event::Terminate);
            }
            // No setting is defined yet (WIRE.md): accepted and ignored.
            Message::Reconfigure { .. } => {}
        }
        Ok(())
    }

    fn accept_hello(&mut self, hello: Hello) -> Result<(), PeerMisbehaved> {
        if hello.magic != MAGIC {
            return Err(PeerMisbehaved::BadMagic {
                magic: hello.magic,
                expected: MAGIC,
            });
        }
        if hello.version != PROTOCOL_VERSION {
            return Err(PeerMisbehaved::VersionMismatch {
                theirs: hello.version,
                ours: PROTOCOL_VERSION,
            });
        }
        // Channels opened before the Hello started with the default credit;
        // correct them to the window the peer really grants.
        let delta = i64::try_from(hello.window)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(DEFAULT_WINDOW).unwrap_or(i64::MAX));
        for chan in self.channels.values_mut() {
            chan.credit = chan.credit.saturating_add(delta);
        }
        self.peer = Some(PeerHello {
            window: hello.window,
            max_frame: hello.max_frame,
            info: hello.info,
        });
        self.events.push_back(Event::Hello);
        // Senders that waited for the Hello may go now.
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        self.events.extend(ids.into_iter().map(Event::Channel));
        Ok(())
    }

    fn peer_window(&self) -> u64 {
        self.peer.as_ref().map_or(DEFAULT_WINDOW, |p| p.window)
    }

    fn ensure_channel(&mut self, id: u32) {
        let credit = self.peer_window();
        let window = self.config.window;
        self.channels
            .entry(id)
            .or_insert_with(|| Chan::new(credit, window));
    }

    /// Channel values inside an arriving item make the channel exist here,
    /// up to [`MAX_CHANNELS`] in the table: each costs memory that the
    /// peer's few bytes naming it did not pay for.
    fn register_channels(&mut self, item: &Item) -> Result<(), PeerMisbehaved> {
        for c in item.channels() {
            if !self.channels.contains_key(&c.id()) && self.channels.len() >= MAX_CHANNELS {
                return Err(PeerMisbehaved::TooManyChannels {
                    channel: c.id(),
                    max: MAX_CHANNELS,
                });
            }
            self.ensure_channel(c.id());
        }
        Ok(())
    }

    fn remote_closed(&mut self, channel: u32, how: Remote) {
        if let Some(chan) = self.channels.get_mut(&channel) {
            if chan.remote == Remote::Open {
                if let (true, Remote::Error(error)) = (chan.released, &how) {
                    // Nobody holds the channel any more to read it.
                    chan.error_reported = true;
                    let error = error.clone();
                    self.events.push_back(Event::UnreadError { channel, error });
                }
                chan.remote = how;
            }
            self.events.push_back(Event::Channel(channel));
            self.forget_if_done(channel);
        }
    }

    fn forget_if_done(&mut self, channel: u32) {
        if let Some(chan) = self.channels.get(&channel) {
            if chan.released && chan.finished() && chan.remote != Remote::Open {
                self.channels.remove(&channel);
            }
        }
    }

    /// Allocate a new channel id (odd for the opener, even for the worker).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::Pair;
    ///
    /// let mut pair = Pair::default();
    /// let sub = pair.opener.open_channel(); // to hand to the worker inside an item
    /// assert!(pair.opener.has_channel(sub));
    /// assert_ne!(sub, pair.opener.open_channel());
    /// ```
    pub fn open_channel(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(2);
            if self.next_id == 0 || self.next_id == 1 {
                self.next_id = match self.role {
                    Role::Opener => 1,
                    Role::Worker => 2,
                };
            }
            if !self.channels.contains_key(&id) {
                self.ensure_channel(id);
                return id;
            }
        }
    }

    /// Whether the channel exists in the table.
    pub fn has_channel(&self, id: u32) -> bool {
        self.channels.contains_key(&id)
    }

    /// Open a channel and ask the worker to run `source` on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Event, Pair};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("channel.send(1)").unwrap();
    /// pair.drive().unwrap();
    /// assert!(pair.worker_events.iter().any(|e| matches!(e, Event::Exec { channel, .. } if *channel == ch)));
    /// ```
    pub fn exec(&mut self, source: &str) -> Result<u32, SessionError> {
        self.exec_with(source.to_string(), None, None)
    }

    /// Open a channel and ask the worker to run `source`, compiled under
    /// `filename`, then to call `call`'s function with the channel and its
    /// keyword arguments.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Event, Pair};
    /// use execnet_wire::{Call, Value};
    ///
    /// let mut pair = Pair::default();
    /// let call = Call { function: "main".into(), kwargs: vec![("n".into(), Value::Int(3.into()))] };
    /// let ch = pair.opener.exec_with("def main(channel, n): pass".into(), Some("job.py".into()), Some(call)).unwrap();
    /// pair.drive().unwrap();
    /// let Some(Event::Exec { channel, filename, call, .. }) = pair.worker_events.last() else { panic!() };
    /// assert_eq!((*channel, filename.as_deref()), (ch, Some("job.py")));
    /// assert_eq!(call.as_ref().map(|c| c.function.as_str()), Some("main"));
    /// ```
    pub fn exec_with(
        &mut self,
        source: String,
        filename: Option<String>,
        call: Option<Call>,
    ) -> Result<u32, SessionError> {
        self.check_alive()?;
        let id = self.open_channel();
        self.queue(&Message::ChannelExec {
            channel: id,
            source,
            filename,
            call,
        })?;
        Ok(id)
    }

    /// Ask the worker for its status; the reply arrives on the returned channel.
    pub fn status_request(&mut self) -> Result<u32, SessionError> {
        self.check_alive()?;
        let id = self.open_channel();
        self.queue(&Message::Status { channel: id })?;
        Ok(id)
    }

    /// Ask the worker to exit.
    pub fn terminate(&mut self) {
        if !self.terminate_sent && self.lost.is_none() {
            self.terminate_sent = true;
            let _ = self.queue(&Message::Terminate);
        }
    }

    fn check_alive(&self) -> Result<(), SessionError> {
        match &self.lost {
            Some(loss) => Err(SessionError::Lost(loss.clone())),
            None => Ok(()),
        }
    }

    fn queue(&mut self, msg: &Message) -> Result<u32, SessionError> {
        let max = self
            .peer
            .as_ref()
            .map_or(DEFAULT_MAX_FRAME, |p| p.max_frame);
        Ok(encode_frame_limited(msg, &mut self.outbox, max)?)
    }

    /// Send one item on `channel`, if its credit allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Pair, Recv, SendOutcome};
    /// use execnet_wire::Item;
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// let job = Item::encode("job").unwrap();
    /// // Until the peer's Hello says how much it takes, sends wait.
    /// assert_eq!(pair.opener.send(ch, job.clone()).unwrap(), SendOutcome::Blocked(job.clone()));
    /// pair.drive().unwrap();
    /// assert_eq!(pair.opener.send(ch, job.clone()).unwrap(), SendOutcome::Sent);
    /// pair.drive().unwrap();
    /// assert_eq!(pair.worker.recv(ch), Recv::Item(job));
    /// // A closed channel refuses.
    /// pair.opener.close(ch, None).unwrap();
    /// assert!(pair.opener.send(ch, Item::encode(&()).unwrap()).is_err());
    /// ```
    pub fn send(&mut self, channel: u32, data: Item) -> Result<SendOutcome, SessionError> {
        self.check_alive()?;
        let chan = match self.channels.get(&channel) {
            Some(chan) if !chan.local_closed && !chan.released => chan,
            _ => return Err(SessionError::SendClosed(channel)),
        };
        if matches!(chan.remote, Remote::Closed | Remote::Error(_)) {
            return Err(SessionError::SendClosed(channel));
        }
        // Before the peer's Hello its window is unknown: sending on a guess
        // could overrun a smaller one. The Hello wakes every channel.
        if chan.credit <= 0 || self.peer.is_none() {
            return Ok(SendOutcome::Blocked(data));
        }
        let cost = self.queue(&Message::ChannelData { channel, data })?;
        if let Some(chan) = self.channels.get_mut(&channel) {
            chan.credit -= i64::from(cost);
        }
        Ok(SendOutcome::Sent)
    }

    /// Whether a send on `channel` would go out now (credit left, open).
    pub fn can_send(&self, channel: u32) -> bool {
        self.peer.is_some() && self.channels.get(&channel).is_some_and(|c| c.credit > 0)
    }

    /// Take the next item of `channel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Pair, Recv};
    /// use execnet_wire::Item;
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.drive().unwrap();
    /// pair.worker.send(ch, Item::encode(&true).unwrap()).unwrap();
    /// pair.worker.close(ch, None).unwrap();
    /// pair.drive().unwrap();
    /// let Recv::Item(item) = pair.opener.recv(ch) else { panic!("an item") }; // items first
    /// assert!(item.decode::<bool>().unwrap());
    /// assert_eq!(pair.opener.recv(ch), Recv::Eof);
    /// ```
    pub fn recv(&mut self, channel: u32) -> Recv {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return match &self.lost {
                Some(loss) => Recv::Lost(loss.clone()),
                None => Recv::Eof,
            };
        };
        if let Some((item, cost)) = chan.items.pop() {
            chan.unreturned += u64::from(cost);
            let unreturned = chan.unreturned;
            if unreturned >= self.config.window / 2 && chan.remote == Remote::Open {
                if let Some(chan) = self.channels.get_mut(&channel) {
                    chan.unreturned = 0;
                }
                self.return_credit(channel, unreturned);
            }
            return Recv::Item(item);
        }
        match &chan.remote {
            Remote::Error(message) if !chan.error_reported => {
                chan.error_reported = true;
                Recv::Error(message.clone())
            }
            Remote::Open if chan.local_closed => Recv::Eof,
            Remote::Open => match &self.lost {
                Some(loss) => Recv::Lost(loss.clone()),
                None => Recv::Empty,
            },
            _ => Recv::Eof,
        }
    }

    fn return_credit(&mut self, channel: u32, bytes: u64) {
        if bytes > 0 && self.lost.is_none() {
            if let Some(chan) = self.channels.get_mut(&channel) {
                let add = i64::try_from(bytes).unwrap_or(i64::MAX);
                chan.granted = chan.granted.saturating_add(add);
            }
            let _ = self.queue(&Message::Credit { channel, bytes });
        }
    }

    /// Whether `channel` has ended for the receiver (closed by either end or
    /// lost), pending items aside.
    pub fn is_closed(&self, channel: u32) -> bool {
        match self.channels.get(&channel) {
            Some(chan) => chan.local_closed || chan.remote != Remote::Open || self.lost.is_some(),
            None => true,
        }
    }

    /// Whether `channel` is closed and every item has been taken.
    pub fn is_finished(&self, channel: u32) -> bool {
        match self.channels.get(&channel) {
            Some(chan) => (chan.finished() || self.lost.is_some()) && chan.items.is_empty(),
            None => true,
        }
    }

    /// The remote error of `channel`, if it was closed with one.
    pub fn remote_error(&self, channel: u32) -> Option<&str> {
        match self.channels.get(&channel).map(|c| &c.remote) {
            Some(Remote::Error(message)) => Some(message),
            _ => None,
        }
    }

    /// Take the remote error of `channel` if it has not been reported yet
    /// (by [`Session::recv`] or an earlier call).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Pair, Recv};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.drive().unwrap();
    /// pair.worker.close(ch, Some("ValueError: 42")).unwrap();
    /// pair.drive().unwrap();
    /// assert_eq!(pair.opener.take_remote_error(ch).as_deref(), Some("ValueError: 42"));
    /// assert_eq!(pair.opener.recv(ch), Recv::Eof); // reported once
    /// ```
    pub fn take_remote_error(&mut self, channel: u32) -> Option<String> {
        let chan = self.channels.get_mut(&channel)?;
        match &chan.remote {
            Remote::Error(message) if !chan.error_reported => {
                chan.error_reported = true;
                Some(message.clone())
            }
            _ => None,
        }
    }

    /// Make a remote error that [`Session::recv`] handed out reportable
    /// again (once), for a consumer that only wants items.
    pub fn restore_remote_error(&mut self, channel: u32) {
        if let Some(chan) = self.channels.get_mut(&channel) {
            if matches!(chan.remote, Remote::Error(_)) {
                chan.error_reported = false;
            }
        }
    }

    /// Whether the peer closed its end of `channel` (or sends no more).
    pub fn is_remote_closed(&self, channel: u32) -> bool {
        self.channels
            .get(&channel)
            .is_none_or(|chan| chan.remote != Remote::Open)
    }

    /// Close this end of `channel`, with an error text for the peer if given.
    /// Pending items stay receivable.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Pair, Recv};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.opener.close(ch, Some("cancelled")).unwrap();
    /// pair.drive().unwrap();
    /// assert_eq!(pair.worker.recv(ch), Recv::Error("cancelled".into()));
    /// assert!(pair.worker.is_closed(ch));
    /// ```
    pub fn close(&mut self, channel: u32, error: Option<&str>) -> Result<(), SessionError> {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if chan.local_closed {
            return Ok(());
        }
        chan.local_closed = true;
        let remote_open = chan.remote == Remote::Open || chan.remote == Remote::LastMessage;
        self.events.push_back(Event::Channel(channel));
        if remote_open && self.lost.is_none() {
            match error {
                Some(error) => self.queue(&Message::ChannelCloseError {
                    channel,
                    error: error.to_string(),
                })?,
                None => self.queue(&Message::ChannelClose { channel })?,
            };
        }
        Ok(())
    }

    /// The application dropped its last handle of `channel`. With
    /// `keep_receiving` (a callback still consumes items) the peer is told
    /// that no more items come from here (`ChannelLastMessage`); otherwise
    /// the channel is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Pair, Recv};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.opener.release(ch, false); // the application dropped its last handle
    /// pair.drive().unwrap();
    /// assert_eq!(pair.worker.recv(ch), Recv::Eof);
    /// ```
    pub fn release(&mut self, channel: u32, keep_receiving: bool) {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return;
        };
        let open = !chan.local_closed && chan.remote == Remote::Open;
        if keep_receiving {
            if open && self.lost.is_none() {
                let _ = self.queue(&Message::ChannelLastMessage { channel });
            }
            return;
        }
        chan.released = true;
        if let Remote::Error(error) = &chan.remote {
            if !chan.error_reported {
                chan.error_reported = true;
                let error = error.clone();
                self.events.push_back(Event::UnreadError { channel, error });
            }
        }
        let Some(chan) = self.channels.get_mut(&channel) else {
            return;
        };
        // Items nobody will take any more: give their credit back.
        let dropped = chan.items.drain_cost();
        if open {
            chan.local_closed = true;
            if self.lost.is_none() {
                let _ = self.queue(&Message::ChannelClose { channel });
            }
        }
        if dropped > 0 && open {
            self.return_credit(channel, dropped);
        }
        self.forget_if_done(channel);
    }

    /// The byte stream ended or failed, or the peer broke the protocol:
    /// every channel ends with `loss` (the first loss reported counts).
    /// Nothing queued is sent any more.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Loss, Pair, Recv};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.opener.connection_lost(Loss::ended("python3: the worker's stream ended"));
    /// assert!(matches!(pair.opener.recv(ch), Recv::Lost(Loss::Ended(_))));
    /// assert!(pair.opener.exec("").is_err());
    /// assert!(!pair.opener.has_transmit()); // nothing more goes out
    /// ```
    pub fn connection_lost(&mut self, loss: Loss) {
        if self.lost.is_none() {
            self.lost = Some(loss);
            self.outbox.clear();
            let ids: Vec<u32> = self.channels.keys().copied().collect();
            self.events.extend(ids.into_iter().map(Event::Channel));
        }
    }

    /// Whether [`Session::terminate`] was called.
    pub fn is_terminating(&self) -> bool {
        self.terminate_sent
    }

    /// Append the bytes to send to `out`; returns how many were added (0:
    /// nothing to send now). Write them before bytes taken by a later call.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Role, Session, SessionConfig};
    /// use execnet_wire::Decoder;
    ///
    /// let mut session = Session::new(Role::Opener, SessionConfig::default());
    /// session.exec("pass").unwrap();
    /// let mut out = Vec::new();
    /// let n = session.poll_transmit(&mut out);
    /// assert_eq!(n, out.len());
    /// // Two frames: the Hello, then the exec.
    /// let mut decoder = Decoder::default();
    /// decoder.feed(&out);
    /// let names: Vec<_> = std::iter::from_fn(|| decoder.next_frame().unwrap()).map(|f| f.message.name()).collect();
    /// assert_eq!(names, ["Hello", "ChannelExec"]);
    /// assert_eq!(session.poll_transmit(&mut out), 0);
    /// ```
    #[must_use = "the bytes appended to `out` must be written to the peer"]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.outbox.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.outbox);
        } else {
            out.append(&mut self.outbox);
        }
        n
    }

    /// Whether there are bytes to send.
    pub fn has_transmit(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The next event, if any. Call until `None` after every change (see
    /// [Driving a session](Session#driving-a-session)).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Event, Pair};
    /// use execnet_wire::Item;
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.drive().unwrap();
    /// pair.worker.send(ch, Item::encode(&()).unwrap()).unwrap();
    /// pair.drive().unwrap(); // Pair calls poll_event and collects what it returns
    /// assert_eq!(pair.opener_events.last(), Some(&Event::Channel(ch)));
    /// assert_eq!(pair.opener.poll_event(), None); // drained
    /// ```
    #[must_use = "events say which waiters to wake"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many channels are in the table.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Ids of all channels in the table.
    pub fn channel_ids(&self) -> Vec<u32> {
        self.channels.keys().copied().collect()
    }
}
