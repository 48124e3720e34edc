//! The multiplexing session: a sans-IO state machine.
//!
//! It holds the channel table, allocates channel ids, applies close
//! semantics and per-channel credit flow control. It does no IO and reads no
//! clock: bytes come in through [`Session::handle_input`] (whole decoded
//! frames), bytes to send are taken with [`Session::poll_transmit`], and what
//! changed is reported by [`Session::poll_event`]. Both ends of a connection
//! can be a `Session` (the opener and, for tests or a Rust worker, the
//! worker), so two sessions can be driven against each other in memory.
//!
//! The canonical drive loop:
//!
//! ```
//! use execnet_gateway::session::{Event, Recv, Role, Session, SessionConfig};
//! use execnet_wire::{Decoder, Item};
//!
//! let mut opener = Session::new(Role::Opener, SessionConfig::default());
//! let mut worker = Session::new(Role::Worker, SessionConfig::default());
//! let (mut to_worker, mut to_opener) = (Decoder::default(), Decoder::default());
//! let ch = opener.exec("for x in channel: pass").unwrap();
//! opener.send(ch, Item::encode("hi").unwrap()).unwrap();
//! // Move bytes both ways until nothing is left to send.
//! loop {
//!     let mut bytes = Vec::new();
//!     opener.poll_transmit(&mut bytes);
//!     to_worker.feed(&bytes);
//!     while let Some(frame) = to_worker.next_frame().unwrap() {
//!         worker.handle_input(frame).unwrap();
//!     }
//!     let mut back = Vec::new();
//!     worker.poll_transmit(&mut back);
//!     to_opener.feed(&back);
//!     while let Some(frame) = to_opener.next_frame().unwrap() {
//!         opener.handle_input(frame).unwrap();
//!     }
//!     if bytes.is_empty() && back.is_empty() { break }
//! }
//! while let Some(event) = worker.poll_event() {
//!     if let Event::Channel(id) = event { assert_eq!(id, ch) }
//! }
//! let Recv::Item(item) = worker.recv(ch) else { panic!("no item") };
//! assert_eq!(item.decode::<String>().unwrap(), "hi");
//! ```

use std::collections::{HashMap, VecDeque};

use execnet_wire::{
    encode_frame_limited, Call, EncodeError, Frame, Hello, Item, ItemQueue, Message, Value,
    DEFAULT_MAX_FRAME, DEFAULT_WINDOW, MAGIC, PROTOCOL_VERSION,
};

/// How many channels may be open at once when the peer brings them into
/// existence by naming them inside items; naming more is a protocol error.
/// (A channel takes about a hundred bytes here, and a peer names one in
/// three; channels this end opens are not limited.)
pub const MAX_CHANNELS: usize = 1 << 16;

/// Which end of the connection a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the gateway: allocates odd channel ids.
    Opener,
    /// The worker: allocates even channel ids.
    Worker,
}

/// Settings of one end.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The receive window this end grants the peer per channel, in bytes.
    pub window: u64,
    /// The largest frame body this end accepts.
    pub max_frame: u32,
    /// The `info` Dict of this end's `Hello`.
    pub info: Value,
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
}

/// The result of a receive attempt.
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
    Lost(String),
}

/// The result of a send attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Send {
    /// Queued for transmission.
    Sent,
    /// No credit: wait for [`Event::Channel`] and try again. The item is
    /// handed back.
    Blocked(Item),
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer sent something the protocol does not allow.
    #[error("protocol violation by the peer: {0}")]
    Protocol(String),
    /// Sending on a channel that is closed.
    #[error("cannot send on channel {0}: it is closed")]
    SendClosed(u32),
    /// The connection has ended.
    #[error("the connection is lost: {0}")]
    Lost(String),
    /// The item cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
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
    /// Bytes taken by the application and not yet returned with `Credit`.
    unreturned: u64,
    /// The application's handles are gone.
    released: bool,
}

impl Chan {
    fn new(credit: u64) -> Self {
        Self {
            items: ItemQueue::new(),
            remote: Remote::Open,
            local_closed: false,
            error_reported: false,
            credit: i64::try_from(credit).unwrap_or(i64::MAX),
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
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: SessionConfig,
    peer: Option<PeerHello>,
    channels: HashMap<u32, Chan>,
    next_id: u32,
    outbox: Vec<u8>,
    events: VecDeque<Event>,
    lost: Option<String>,
    terminate_sent: bool,
}

impl Session {
    /// A new session; its `Hello` is queued for transmission.
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

    /// The peer's `Hello`, once it arrived.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// Why the connection ended, if it did.
    pub fn lost_reason(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Feed one decoded frame from the peer.
    ///
    /// An error means the peer broke the protocol; the caller should end the
    /// connection (and call [`Session::connection_lost`]).
    pub fn handle_input(&mut self, frame: Frame) -> Result<(), SessionError> {
        let Frame { message, len } = frame;
        if self.peer.is_none() {
            return match message {
                Message::Hello(hello) => self.accept_hello(hello),
                other => Err(SessionError::Protocol(format!(
                    "the first message must be a Hello, got {}",
                    other.name()
                ))),
            };
        }
        match message {
            Message::Hello(_) => {
                return Err(SessionError::Protocol("a second Hello".into()));
            }
            Message::ChannelData { channel, data } => {
                self.register_channels(&data)?;
                match self.channels.get_mut(&channel) {
                    Some(chan) if !chan.local_closed && !chan.released => {
                        if chan.remote != Remote::Open {
                            return Err(SessionError::Protocol(format!(
                                "data on channel {channel} after its sender closed it"
                            )));
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
                    return Err(SessionError::Protocol("the worker sent ChannelExec".into()));
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
                    return Err(SessionError::Protocol("the worker sent Status".into()));
                }
                self.ensure_channel(channel);
                self.events.push_back(Event::StatusRequest { channel });
            }
            Message::Terminate => {
                if self.role != Role::Worker {
                    return Err(SessionError::Protocol("the worker sent Terminate".into()));
                }
                self.events.push_back(Event::Terminate);
            }
            Message::Reconfigure { .. } => {}
            other => {
                return Err(SessionError::Protocol(format!(
                    "unexpected message {}",
                    other.name()
                )))
            }
        }
        Ok(())
    }

    fn accept_hello(&mut self, hello: Hello) -> Result<(), SessionError> {
        if hello.magic != MAGIC {
            return Err(SessionError::Protocol(format!(
                "the Hello has magic {:02x?}, expected {:02x?}",
                hello.magic, MAGIC
            )));
        }
        if hello.version != PROTOCOL_VERSION {
            return Err(SessionError::Protocol(format!(
                "the peer speaks protocol version {}, this end speaks {}",
                hello.version, PROTOCOL_VERSION
            )));
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
        Ok(())
    }

    fn peer_window(&self) -> u64 {
        self.peer.as_ref().map_or(DEFAULT_WINDOW, |p| p.window)
    }

    fn ensure_channel(&mut self, id: u32) {
        let credit = self.peer_window();
        self.channels.entry(id).or_insert_with(|| Chan::new(credit));
    }

    /// Channel values inside an arriving item make the channel exist here,
    /// up to [`MAX_CHANNELS`] in the table: each costs memory that the
    /// peer's few bytes naming it did not pay for.
    fn register_channels(&mut self, item: &Item) -> Result<(), SessionError> {
        for c in item.channels() {
            if !self.channels.contains_key(&c.id()) && self.channels.len() >= MAX_CHANNELS {
                return Err(SessionError::Protocol(format!(
                    "an item names channel {} beyond the limit of {MAX_CHANNELS} open channels",
                    c.id()
                )));
            }
            self.ensure_channel(c.id());
        }
        Ok(())
    }

    fn remote_closed(&mut self, channel: u32, how: Remote) {
        if let Some(chan) = self.channels.get_mut(&channel) {
            if chan.remote == Remote::Open {
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
    pub fn exec(&mut self, source: &str) -> Result<u32, SessionError> {
        self.exec_with(source.to_string(), None, None)
    }

    /// Open a channel and ask the worker to run `source`, compiled under
    /// `filename`, then to call `call`'s function with the channel and its
    /// keyword arguments.
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
            Some(reason) => Err(SessionError::Lost(reason.clone())),
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
    pub fn send(&mut self, channel: u32, data: Item) -> Result<Send, SessionError> {
        self.check_alive()?;
        let chan = match self.channels.get(&channel) {
            Some(chan) if !chan.local_closed && !chan.released => chan,
            _ => return Err(SessionError::SendClosed(channel)),
        };
        if matches!(chan.remote, Remote::Closed | Remote::Error(_)) {
            return Err(SessionError::SendClosed(channel));
        }
        if chan.credit <= 0 {
            return Ok(Send::Blocked(data));
        }
        let cost = self.queue(&Message::ChannelData { channel, data })?;
        if let Some(chan) = self.channels.get_mut(&channel) {
            chan.credit -= i64::from(cost);
        }
        Ok(Send::Sent)
    }

    /// Whether a send on `channel` would go out now (credit left, open).
    pub fn can_send(&self, channel: u32) -> bool {
        self.channels.get(&channel).is_some_and(|c| c.credit > 0)
    }

    /// Take the next item of `channel`.
    pub fn recv(&mut self, channel: u32) -> Recv {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return match &self.lost {
                Some(reason) => Recv::Lost(reason.clone()),
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
                Some(reason) => Recv::Lost(reason.clone()),
                None => Recv::Empty,
            },
            _ => Recv::Eof,
        }
    }

    fn return_credit(&mut self, channel: u32, bytes: u64) {
        if bytes > 0 && self.lost.is_none() {
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

    /// The byte stream ended or failed: every channel ends with `reason`.
    pub fn connection_lost(&mut self, reason: &str) {
        if self.lost.is_none() {
            self.lost = Some(reason.to_string());
            self.outbox.clear();
            let ids: Vec<u32> = self.channels.keys().copied().collect();
            self.events.extend(ids.into_iter().map(Event::Channel));
        }
    }

    /// Whether [`Session::terminate`] was called.
    pub fn is_terminating(&self) -> bool {
        self.terminate_sent
    }

    /// Append the bytes to send to `out`; returns how many were added.
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

    /// The next event, if any.
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
