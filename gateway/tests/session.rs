//! Deterministic tests of the sans-IO session: two sessions (an opener and a
//! worker) driven against each other in memory, no processes, no clock.

use execnet_gateway::session::{Event, Recv, Role, Send, Session, SessionConfig};
use execnet_wire::{encode_frame, ChannelRef, Decoder, Frame, Item, Message, Value};

/// An opener and a worker session wired back to back.
struct Pair {
    opener: Session,
    worker: Session,
    to_worker: Decoder,
    to_opener: Decoder,
    worker_events: Vec<Event>,
    opener_events: Vec<Event>,
}

impl Pair {
    fn new() -> Self {
        Self::with_windows(1 << 20, 1 << 20)
    }

    fn with_windows(opener_window: u64, worker_window: u64) -> Self {
        let config = |window| SessionConfig {
            window,
            ..SessionConfig::default()
        };
        let mut pair = Pair {
            opener: Session::new(Role::Opener, config(opener_window)),
            worker: Session::new(Role::Worker, config(worker_window)),
            to_worker: Decoder::default(),
            to_opener: Decoder::default(),
            worker_events: Vec::new(),
            opener_events: Vec::new(),
        };
        pair.drive();
        assert!(pair.opener.peer().is_some() && pair.worker.peer().is_some());
        pair
    }

    /// Move bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        loop {
            let mut a = Vec::new();
            self.opener.poll_transmit(&mut a);
            self.to_worker.feed(&a);
            while let Some(frame) = self.to_worker.next_frame().expect("valid frames") {
                self.worker.handle_input(frame).expect("worker accepts");
            }
            let mut b = Vec::new();
            self.worker.poll_transmit(&mut b);
            self.to_opener.feed(&b);
            while let Some(frame) = self.to_opener.next_frame().expect("valid frames") {
                self.opener.handle_input(frame).expect("opener accepts");
            }
            while let Some(e) = self.worker.poll_event() {
                self.worker_events.push(e);
            }
            while let Some(e) = self.opener.poll_event() {
                self.opener_events.push(e);
            }
            if a.is_empty() && b.is_empty() {
                break;
            }
        }
    }
}

fn int(i: i64) -> Item {
    Item::encode(&i).expect("encodes")
}

#[test]
fn opener_and_worker_allocate_disjoint_ids() {
    let mut pair = Pair::new();
    let a = pair.opener.open_channel();
    let b = pair.opener.open_channel();
    let c = pair.worker.open_channel();
    assert_eq!((a % 2, b % 2, c % 2), (1, 1, 0));
    assert_ne!(a, b);
    assert_ne!(c, 0);
}

#[test]
fn exec_reaches_the_worker_and_items_flow_in_order() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("channel.send(1)").expect("exec");
    pair.drive();
    assert!(pair.worker_events.contains(&Event::Exec {
        channel: ch,
        source: "channel.send(1)".into(),
        filename: None,
        call: None,
    }));
    for i in 0..10 {
        assert_eq!(pair.worker.send(ch, int(i)).expect("send"), Send::Sent);
    }
    pair.drive();
    for i in 0..10 {
        assert_eq!(pair.opener.recv(ch), Recv::Item(int(i)));
    }
    assert_eq!(pair.opener.recv(ch), Recv::Empty);
}

#[test]
fn close_gives_pending_items_then_eof_and_refuses_sends() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.worker.send(ch, int(7)).expect("send");
    pair.worker.close(ch, None).expect("close");
    pair.drive();
    assert!(pair.opener.is_closed(ch));
    assert_eq!(pair.opener.recv(ch), Recv::Item(int(7)));
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert!(pair.opener.send(ch, int(1)).is_err());
}

#[test]
fn close_with_error_reports_the_error_once_then_eof() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("raise ValueError").expect("exec");
    pair.drive();
    pair.worker
        .close(ch, Some("Traceback...\nValueError: 42"))
        .expect("close");
    pair.drive();
    assert_eq!(
        pair.opener.recv(ch),
        Recv::Error("Traceback...\nValueError: 42".into())
    );
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert_eq!(pair.opener.take_remote_error(ch), None);
}

#[test]
fn remote_error_is_taken_once_across_wait_and_recv() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.worker.close(ch, Some("boom")).expect("close");
    pair.drive();
    assert_eq!(pair.opener.take_remote_error(ch).as_deref(), Some("boom"));
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
}

#[test]
fn credit_blocks_a_sender_until_the_receiver_takes_items() {
    // The worker grants 1000 bytes per channel.
    let mut pair = Pair::with_windows(1 << 20, 1000);
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    let item = Item::bytes(&[0; 300]);
    let mut sent = 0;
    while let Send::Sent = pair.opener.send(ch, item.clone()).expect("send") {
        sent += 1;
        assert!(sent < 100, "the window never closed");
    }
    // 300-byte items against a 1000-byte window: 4 go out (the last one
    // drives the credit below zero), the fifth waits.
    assert_eq!(sent, 4);
    pair.drive();
    assert!(!pair.opener.can_send(ch));
    // The worker takes two items: that returns at least half its window.
    for _ in 0..2 {
        assert!(matches!(pair.worker.recv(ch), Recv::Item(_)));
    }
    pair.drive();
    assert!(pair.opener.can_send(ch));
    assert!(pair.opener_events.contains(&Event::Channel(ch)));
}

#[test]
fn one_item_larger_than_the_window_still_goes_through() {
    let mut pair = Pair::with_windows(1 << 20, 100);
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    let big = Item::bytes(&[1; 10_000]);
    assert_eq!(pair.opener.send(ch, big.clone()).expect("send"), Send::Sent);
    pair.drive();
    assert_eq!(pair.worker.recv(ch), Recv::Item(big));
}

#[test]
fn a_blocked_channel_does_not_stall_another() {
    let mut pair = Pair::with_windows(1 << 20, 500);
    let slow = pair.opener.exec("").expect("exec");
    let fast = pair.opener.exec("").expect("exec");
    pair.drive();
    while let Send::Sent = pair
        .opener
        .send(slow, Item::bytes(&[0; 200]))
        .expect("send")
    {}
    for i in 0..100 {
        assert_eq!(pair.opener.send(fast, int(i)).expect("send"), Send::Sent);
        pair.drive();
        assert_eq!(pair.worker.recv(fast), Recv::Item(int(i)));
    }
}

#[test]
fn release_closes_the_channel_for_the_peer() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.opener.release(ch, false);
    pair.drive();
    assert_eq!(pair.worker.recv(ch), Recv::Eof);
    assert!(pair.worker.send(ch, int(1)).is_err());
}

#[test]
fn release_with_callback_sends_last_message_and_keeps_receiving() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.opener.release(ch, true);
    pair.drive();
    // The worker's receives end, but it may still send.
    assert_eq!(pair.worker.recv(ch), Recv::Eof);
    assert_eq!(pair.worker.send(ch, int(5)).expect("send"), Send::Sent);
    pair.drive();
    assert_eq!(pair.opener.recv(ch), Recv::Item(int(5)));
}

#[test]
fn channels_inside_items_come_into_existence() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    let sub = pair.opener.open_channel();
    pair.drive();
    let item = Item::encode(&(1, ChannelRef::new(sub))).expect("encodes");
    pair.opener.send(ch, item.clone()).expect("send");
    pair.drive();
    assert_eq!(pair.worker.recv(ch), Recv::Item(item));
    assert!(pair.worker.has_channel(sub));
    pair.worker
        .send(sub, int(9))
        .expect("send on the received channel");
    pair.drive();
    assert_eq!(pair.opener.recv(sub), Recv::Item(int(9)));
}

#[test]
fn connection_lost_ends_every_channel() {
    let mut pair = Pair::new();
    let a = pair.opener.exec("").expect("exec");
    let b = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.opener.connection_lost("worker killed");
    for ch in [a, b] {
        assert_eq!(pair.opener.recv(ch), Recv::Lost("worker killed".into()));
        assert!(pair.opener.send(ch, int(1)).is_err());
    }
    assert!(pair.opener.exec("x").is_err());
}

#[test]
fn status_and_terminate_reach_the_worker() {
    let mut pair = Pair::new();
    let st = pair.opener.status_request().expect("status");
    pair.opener.terminate();
    pair.drive();
    assert!(pair
        .worker_events
        .contains(&Event::StatusRequest { channel: st }));
    assert!(pair.worker_events.contains(&Event::Terminate));
}

#[test]
fn a_first_message_that_is_not_hello_is_a_protocol_error() {
    let mut session = Session::new(Role::Opener, SessionConfig::default());
    let frame = Frame {
        message: Message::ChannelClose { channel: 1 },
        len: 2,
    };
    let err = session.handle_input(frame).expect_err("refused");
    assert!(err.to_string().contains("Hello"), "{err}");
}

#[test]
fn data_after_close_from_the_same_sender_is_a_protocol_error() {
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    pair.worker.close(ch, None).expect("close");
    pair.drive();
    let mut bytes = Vec::new();
    let len = encode_frame(
        &Message::ChannelData {
            channel: ch,
            data: int(1),
        },
        &mut bytes,
    )
    .expect("encodes");
    let frame = Frame {
        message: Message::ChannelData {
            channel: ch,
            data: int(1),
        },
        len,
    };
    assert!(pair.opener.handle_input(frame).is_err());
}

/// Arbitrary message sequences never panic the session (the body of the
/// session fuzz target, run here on a fixed set).
#[test]
fn arbitrary_messages_never_panic() {
    let messages = vec![
        Message::Credit {
            channel: 5,
            bytes: u64::MAX,
        },
        Message::ChannelClose { channel: 0 },
        Message::ChannelData {
            channel: u32::MAX,
            data: Item::from_value(&Value::Channel(ChannelRef::new(u32::MAX))).expect("encodes"),
        },
        Message::ChannelLastMessage { channel: 3 },
        Message::ChannelCloseError {
            channel: 3,
            error: String::new(),
        },
        Message::Terminate,
        Message::Status { channel: 2 },
    ];
    let mut pair = Pair::new();
    for m in messages {
        let _ = pair.opener.handle_input(Frame { message: m, len: 1 });
    }
}

/// A peer names channels in a few bytes each, and each one it names costs
/// a table entry here: past `MAX_CHANNELS` open channels that is a protocol
/// error, not unbounded memory. Naming one channel many times costs nothing.
#[test]
fn a_peer_cannot_name_channels_without_limit() {
    use execnet_gateway::session::MAX_CHANNELS;
    let mut pair = Pair::new();
    let ch = pair.opener.exec("").expect("exec");
    pair.drive();
    let refs = |ids: &mut dyn Iterator<Item = u32>| {
        let list: Vec<ChannelRef> = ids.map(ChannelRef::new).collect();
        Item::encode(&list).expect("encodes")
    };
    let data = |item: Item| Frame {
        len: item.len() as u32 + 2,
        message: Message::ChannelData {
            channel: ch,
            data: item,
        },
    };
    let same = refs(&mut std::iter::repeat_n(2, 100_000));
    assert_eq!(same.channels().len(), 1);
    pair.opener.handle_input(data(same)).expect("one channel");
    let before = pair.opener.channel_count();
    let many = refs(&mut (0..MAX_CHANNELS as u32).map(|i| 2 * i + 4));
    let err = pair.opener.handle_input(data(many)).expect_err("too many");
    assert!(err.to_string().contains("limit of 65536"), "{err}");
    assert_eq!(pair.opener.channel_count(), MAX_CHANNELS);
    assert!(before < MAX_CHANNELS);
}
