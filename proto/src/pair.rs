//! Two sessions wired back to back in memory: the test, benchmark and fuzz
//! driver, and the smallest complete example of driving a [`Session`].

use execnet_wire::{DecodeError, Decoder};
use thiserror::Error;

use crate::error::{Loss, PeerMisbehaved};
use crate::session::{Event, Role, Session, SessionConfig};

/// An opener and a worker [`Session`] connected through two in-memory
/// frame decoders, with no IO and no clock: every test of the protocol runs
/// the same way every time.
///
/// Make the sessions do something (their fields are public), then
/// [`Pair::drive`] moves the bytes both ways until neither side has anything
/// left to send, collecting each side's events. Its source is the canonical
/// drive loop an IO layer follows.
///
/// # Examples
///
/// ```
/// use execnet_proto::{Event, Pair, Recv, SendOutcome};
/// use execnet_wire::Item;
///
/// let mut pair = Pair::default();
/// let ch = pair.opener.exec("print('hi')").unwrap();
/// pair.drive().unwrap();
/// assert!(pair.worker_events.contains(&Event::Exec {
///     channel: ch,
///     source: "print('hi')".into(),
///     filename: None,
///     call: None,
/// }));
///
/// // The worker answers on the same channel.
/// let sent = pair.worker.send(ch, Item::encode(&42).unwrap()).unwrap();
/// assert_eq!(sent, SendOutcome::Sent);
/// pair.drive().unwrap();
/// let Recv::Item(item) = pair.opener.recv(ch) else { panic!("an item") };
/// assert_eq!(item.decode::<i64>().unwrap(), 42);
/// ```
#[derive(Debug)]
pub struct Pair {
    /// The opening end (odd channel ids).
    pub opener: Session,
    /// The worker end (even channel ids).
    pub worker: Session,
    /// The opener's events collected by [`Pair::drive`], oldest first.
    pub opener_events: Vec<Event>,
    /// The worker's events collected by [`Pair::drive`], oldest first.
    pub worker_events: Vec<Event>,
    to_worker: Decoder,
    to_opener: Decoder,
    buf: Vec<u8>,
}

/// Why [`Pair::drive`] stopped.
///
/// # Examples
///
/// ```
/// use execnet_proto::{DriveError, Pair, PeerMisbehaved, Role};
///
/// let mut pair = Pair::default();
/// pair.drive().unwrap();
/// pair.worker.terminate(); // only the opener may send Terminate
/// let err = pair.drive().unwrap_err();
/// assert_eq!(err, DriveError::Refused { by: Role::Opener, error: PeerMisbehaved::OpenerOnly { message: "Terminate" } });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DriveError {
    /// A session sent bytes that are not valid frames: a bug of the sender.
    #[error("the {to:?}'s decoder refused what its peer sent: {error}")]
    Decode {
        /// The receiving side.
        to: Role,
        /// What the decoder found.
        error: DecodeError,
    },
    /// A session refused a message of its peer (the peer broke the
    /// protocol, e.g. after a test fed it something a real peer never sends).
    #[error("the {by:?} refused what its peer sent: {error}")]
    Refused {
        /// The refusing side.
        by: Role,
        /// Why.
        error: PeerMisbehaved,
    },
}

impl Default for Pair {
    /// Both sessions with [`SessionConfig::default`]; nothing exchanged yet
    /// (the first [`Pair::drive`] carries the `Hello`s).
    fn default() -> Pair {
        Pair::new(SessionConfig::default(), SessionConfig::default())
    }
}

impl Pair {
    /// An opener with `opener` settings and a worker with `worker` settings;
    /// each decoder takes the frame limit of the session it feeds.
    pub fn new(opener: SessionConfig, worker: SessionConfig) -> Pair {
        Pair {
            to_worker: Decoder::new(worker.max_frame),
            to_opener: Decoder::new(opener.max_frame),
            opener: Session::new(Role::Opener, opener),
            worker: Session::new(Role::Worker, worker),
            opener_events: Vec::new(),
            worker_events: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The session of `role`.
    pub fn session(&mut self, role: Role) -> &mut Session {
        match role {
            Role::Opener => &mut self.opener,
            Role::Worker => &mut self.worker,
        }
    }

    /// Move bytes both ways until neither side has anything to send; the
    /// events go to [`Pair::opener_events`] and [`Pair::worker_events`].
    /// Returns how many bytes crossed.
    ///
    /// On an error the pair stops where it was; the refusing (or decoding)
    /// side has not been told. A test that expects it may call
    /// [`Session::connection_lost`] on both sides, as an IO layer would.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::Pair;
    ///
    /// let mut pair = Pair::default();
    /// assert!(pair.drive().unwrap() > 0); // the two Hellos
    /// assert_eq!(pair.drive().unwrap(), 0); // quiet
    /// ```
    pub fn drive(&mut self) -> Result<usize, DriveError> {
        let mut moved = 0;
        loop {
            let a = self.step(Role::Opener)?;
            let b = self.step(Role::Worker)?;
            moved += a + b;
            if a == 0 && b == 0 {
                return Ok(moved);
            }
        }
    }

    /// Move what `from` has queued into its peer, and collect both sides'
    /// events; how many bytes moved.
    fn step(&mut self, from: Role) -> Result<usize, DriveError> {
        self.buf.clear();
        let (sender, receiver, decoder, to) = match from {
            Role::Opener => (
                &mut self.opener,
                &mut self.worker,
                &mut self.to_worker,
                Role::Worker,
            ),
            Role::Worker => (
                &mut self.worker,
                &mut self.opener,
                &mut self.to_opener,
                Role::Opener,
            ),
        };
        let n = sender.poll_transmit(&mut self.buf);
        decoder.feed(&self.buf);
        let result = loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(error) = receiver.handle_input(frame) {
                        break Err(DriveError::Refused { by: to, error });
                    }
                }
                Ok(None) => break Ok(n),
                Err(error) => break Err(DriveError::Decode { to, error }),
            }
        };
        while let Some(event) = self.opener.poll_event() {
            self.opener_events.push(event);
        }
        while let Some(event) = self.worker.poll_event() {
            self.worker_events.push(event);
        }
        result
    }

    /// End the connection for both sides with `loss` (what an IO layer does
    /// when the stream breaks); each side gets an event per channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_proto::{Loss, Pair, Recv};
    ///
    /// let mut pair = Pair::default();
    /// let ch = pair.opener.exec("").unwrap();
    /// pair.drive().unwrap();
    /// pair.disconnect(Loss::ended("the network broke"));
    /// assert_eq!(pair.worker.recv(ch), Recv::Lost(Loss::ended("the network broke")));
    /// ```
    pub fn disconnect(&mut self, loss: Loss) {
        self.opener.connection_lost(loss.clone());
        self.worker.connection_lost(loss);
        while let Some(event) = self.opener.poll_event() {
            self.opener_events.push(event);
        }
        while let Some(event) = self.worker.poll_event() {
            self.worker_events.push(event);
        }
    }
}
