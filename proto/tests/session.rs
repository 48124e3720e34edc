//! Deterministic tests of the sans-IO session: two sessions (an opener and a
//! worker) driven against each other in memory, no processes, no clock.

use execnet_proto::{
    DriveError, Event, Loss, Pair, PeerMisbehaved, Recv, Role, SendOutcome, Session, SessionConfig,
};
use execnet_wire::{ChannelRef, Frame, Item, Message, Value};

/// A pair whose Hellos have crossed.
fn connected(opener_window: u64, worker_window: u64) -> Pair {
    let mut pair = Pair::new(
        SessionConfig::default().window(opener_window),
        SessionConfig::default().window(worker_window),
    );
    pair.drive().expect("the Hellos cross");
    assert!(pair.opener.peer().is_some() && pair.worker.peer().is_some());
    pair
}

fn drive(pair: &mut Pair) {
    pair.drive().expect("both sides follow the protocol");
}

fn int(i: i64) -> Item {
    Item::encode(&i).expect("encodes")
}

#[test]
fn opener_and_worker_allocate_disjoint_ids() {
    let mut pair = connected(1 << 20, 1 << 20);
    let a = pair.opener.open_channel();
    let b = pair.opener.open_channel();
    let c = pair.worker.open_channel();
    assert_eq!((a % 2, b % 2, c % 2), (1, 1, 0));
    assert_ne!(a, b);
    assert_ne!(c, 0);
}

#[test]
fn exec_reaches_the_worker_and_items_flow_in_order() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("channel.send(1)").expect("exec");
    drive(&mut pair);
    assert!(pair.worker_events.contains(&Event::Exec {
        channel: ch,
        source: "channel.send(1)".into(),
        filename: None,
        call: None,
    }));
    for i in 0..10 {
        assert_eq!(
            pair.worker.send(ch, int(i)).expect("send"),
            SendOutcome::Sent
        );
    }
    drive(&mut pair);
    for i in 0..10 {
        assert_eq!(pair.opener.recv(ch), Recv::Item(int(i)));
    }
    assert_eq!(pair.opener.recv(ch), Recv::Empty);
}

#[test]
fn close_gives_pending_items_then_eof_and_refuses_sends() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.worker.send(ch, int(7)).expect("send");
    pair.worker.close(ch, None).expect("close");
    drive(&mut pair);
    assert!(pair.opener.is_closed(ch));
    assert_eq!(pair.opener.recv(ch), Recv::Item(int(7)));
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert!(pair.opener.send(ch, int(1)).is_err());
}

#[test]
fn close_with_error_reports_the_error_once_then_eof() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("raise ValueError").expect("exec");
    drive(&mut pair);
    pair.worker
        .close(ch, Some("Traceback...\nValueError: 42"))
        .expect("close");
    drive(&mut pair);
    assert_eq!(
        pair.opener.recv(ch),
        Recv::Error("Traceback...\nValueError: 42".into())
    );
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
    assert_eq!(pair.opener.take_remote_error(ch), None);
}

#[test]
fn remote_error_is_taken_once_across_wait_and_recv() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.worker.close(ch, Some("boom")).expect("close");
    drive(&mut pair);
    assert_eq!(pair.opener.take_remote_error(ch).as_deref(), Some("boom"));
    assert_eq!(pair.opener.recv(ch), Recv::Eof);
}

#[test]
fn credit_blocks_a_sender_until_the_receiver_takes_items() {
    // The worker grants 1000 bytes per channel.
    let mut pair = connected(1 << 20, 1000);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    let item = Item::bytes(&[0; 300]);
    let mut sent = 0;
    while let SendOutcome::Sent = pair.opener.send(ch, item.clone()).expect("send") {
        sent += 1;
        assert!(sent < 100, "the window never closed");
    }
    // 300-byte items against a 1000-byte window: 4 go out (the last one
    // drives the credit below zero), the fifth waits.
    assert_eq!(sent, 4);
    drive(&mut pair);
    assert!(!pair.opener.can_send(ch));
    // The worker takes two items: that returns at least half its window.
    for _ in 0..2 {
        assert!(matches!(pair.worker.recv(ch), Recv::Item(_)));
    }
    drive(&mut pair);
    assert!(pair.opener.can_send(ch));
    assert!(pair.opener_events.contains(&Event::Channel(ch)));
}

#[test]
fn one_item_larger_than_the_window_still_goes_through() {
    let mut pair = connected(1 << 20, 100);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    let big = Item::bytes(&[1; 10_000]);
    assert_eq!(
        pair.opener.send(ch, big.clone()).expect("send"),
        SendOutcome::Sent
    );
    drive(&mut pair);
    assert_eq!(pair.worker.recv(ch), Recv::Item(big));
}

#[test]
fn a_blocked_channel_does_not_stall_another() {
    let mut pair = connected(1 << 20, 500);
    let slow = pair.opener.exec("").expect("exec");
    let fast = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    while let SendOutcome::Sent = pair
        .opener
        .send(slow, Item::bytes(&[0; 200]))
        .expect("send")
    {}
    for i in 0..100 {
        assert_eq!(
            pair.opener.send(fast, int(i)).expect("send"),
            SendOutcome::Sent
        );
        drive(&mut pair);
        assert_eq!(pair.worker.recv(fast), Recv::Item(int(i)));
    }
}

#[test]
fn release_closes_the_channel_for_the_peer() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.opener.release(ch, false);
    drive(&mut pair);
    assert_eq!(pair.worker.recv(ch), Recv::Eof);
    assert!(pair.worker.send(ch, int(1)).is_err());
}

#[test]
fn release_with_callback_sends_last_message_and_keeps_receiving() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.opener.release(ch, true);
    drive(&mut pair);
    // The worker's receives end, but it may still send.
    assert_eq!(pair.worker.recv(ch), Recv::Eof);
    assert_eq!(
        pair.worker.send(ch, int(5)).expect("send"),
        SendOutcome::Sent
    );
    drive(&mut pair);
    assert_eq!(pair.opener.recv(ch), Recv::Item(int(5)));
}

#[test]
fn channels_inside_items_come_into_existence() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    let sub = pair.opener.open_channel();
    drive(&mut pair);
    let item = Item::encode(&(1, ChannelRef::new(sub))).expect("encodes");
    pair.opener.send(ch, item.clone()).expect("send");
    drive(&mut pair);
    assert_eq!(pair.worker.recv(ch), Recv::Item(item));
    assert!(pair.worker.has_channel(sub));
    pair.worker
        .send(sub, int(9))
        .expect("send on the received channel");
    drive(&mut pair);
    assert_eq!(pair.opener.recv(sub), Recv::Item(int(9)));
}

#[test]
fn connection_lost_ends_every_channel() {
    let mut pair = connected(1 << 20, 1 << 20);
    let a = pair.opener.exec("").expect("exec");
    let b = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.opener.connection_lost(Loss::ended("worker killed"));
    for ch in [a, b] {
        assert_eq!(
            pair.opener.recv(ch),
            Recv::Lost(Loss::ended("worker killed"))
        );
        assert!(pair.opener.send(ch, int(1)).is_err());
    }
    assert!(pair.opener.exec("x").is_err());
}

#[test]
fn status_and_terminate_reach_the_worker() {
    let mut pair = connected(1 << 20, 1 << 20);
    let st = pair.opener.status_request().expect("status");
    pair.opener.terminate();
    drive(&mut pair);
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
    assert_eq!(
        err,
        PeerMisbehaved::FirstNotHello {
            got: "ChannelClose"
        }
    );
    assert!(err.to_string().contains("Hello"), "{err}");
}

#[test]
fn data_after_close_from_the_same_sender_is_a_protocol_error() {
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.worker.close(ch, None).expect("close");
    drive(&mut pair);
    // The worker session itself refuses to send now; a broken peer might.
    assert!(pair.worker.send(ch, int(1)).is_err());
    let frame = Frame {
        message: Message::ChannelData {
            channel: ch,
            data: int(1),
        },
        len: 3,
    };
    assert_eq!(
        pair.opener.handle_input(frame),
        Err(PeerMisbehaved::DataAfterClose { channel: ch })
    );
}

#[test]
fn a_worker_that_sends_an_exec_is_refused_by_name() {
    let mut pair = connected(1 << 20, 1 << 20);
    pair.worker
        .exec("import os")
        .expect("the worker session queues it");
    let err = pair.drive().expect_err("the opener refuses");
    assert_eq!(
        err,
        DriveError::Refused {
            by: Role::Opener,
            error: PeerMisbehaved::OpenerOnly {
                message: "ChannelExec"
            },
        }
    );
    // The IO layer ends the connection with the typed reason.
    let ch = pair.opener.exec("").expect("still open until told");
    let DriveError::Refused { error, .. } = err else {
        unreachable!()
    };
    pair.disconnect(Loss::misbehaved("worker", error.clone()));
    assert_eq!(
        pair.opener.recv(ch),
        Recv::Lost(Loss::Misbehaved {
            peer: "worker".into(),
            error
        })
    );
}

#[test]
fn a_peer_of_another_protocol_version_is_refused_with_both_versions() {
    let mut session = Session::new(Role::Opener, SessionConfig::default());
    let hello = execnet_wire::Hello {
        version: 99,
        ..execnet_wire::Hello::default()
    };
    let err = session
        .handle_input(Frame {
            message: Message::Hello(hello),
            len: 20,
        })
        .expect_err("refused");
    assert_eq!(
        err,
        PeerMisbehaved::VersionMismatch {
            theirs: 99,
            ours: execnet_wire::PROTOCOL_VERSION
        }
    );
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
    let mut pair = connected(1 << 20, 1 << 20);
    for m in messages {
        let _ = pair.opener.handle_input(Frame { message: m, len: 1 });
    }
}

#[test]
fn the_peers_frame_limit_bounds_what_is_sent() {
    let mut pair = Pair::new(
        SessionConfig::default(),
        SessionConfig::default().max_frame(1000),
    );
    drive(&mut pair);
    let ch = pair.opener.exec("").expect("exec");
    let err = pair
        .opener
        .send(ch, Item::bytes(&[0; 2000]))
        .expect_err("too large for the worker");
    assert!(
        matches!(
            err,
            execnet_proto::SessionError::Encode(execnet_wire::EncodeError::FrameTooLarge {
                max: 1000,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        pair.opener.send(ch, Item::bytes(&[0; 500])),
        Ok(SendOutcome::Sent)
    );
    drive(&mut pair);
    assert!(matches!(pair.worker.recv(ch), Recv::Item(_)));
}

/// A peer names channels in a few bytes each, and each one it names costs
/// a table entry here: past `MAX_CHANNELS` open channels that is a protocol
/// error, not unbounded memory. Naming one channel many times costs nothing.
#[test]
fn a_peer_cannot_name_channels_without_limit() {
    use execnet_proto::MAX_CHANNELS;
    let mut pair = connected(1 << 20, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
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
    assert!(
        matches!(
            err,
            PeerMisbehaved::TooManyChannels {
                max: MAX_CHANNELS,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("limit of 65536"), "{err}");
    assert_eq!(pair.opener.channel_count(), MAX_CHANNELS);
    assert!(before < MAX_CHANNELS);
}

/// A `ChannelData` frame as a peer that ignores credit would send it.
fn raw_data(channel: u32, item: Item) -> Frame {
    let mut bytes = Vec::new();
    execnet_wire::encode_frame(
        &Message::ChannelData {
            channel,
            data: item,
        },
        &mut bytes,
    )
    .expect("encodes");
    let mut decoder = execnet_wire::Decoder::default();
    decoder.feed(&bytes);
    decoder
        .next_frame()
        .expect("decodes")
        .expect("one whole frame")
}

#[test]
fn a_peer_that_ignores_credit_is_stopped_at_the_window() {
    // The opener grants 1000 bytes per channel.
    let mut pair = connected(1000, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    let item = Item::bytes(&[7; 300]);
    let cost = u64::from(raw_data(ch, item.clone()).len);
    // What a correct sender may send: while its credit is above zero, so
    // the window plus less than one item.
    let mut accepted = 0u64;
    let err = loop {
        match pair.opener.handle_input(raw_data(ch, item.clone())) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "the window never closed");
    };
    assert_eq!(accepted, 1000u64.div_ceil(cost));
    assert_eq!(
        err,
        PeerMisbehaved::CreditOverrun {
            channel: ch,
            window: 1000,
            bytes: cost,
            over: (accepted + 1) * cost - 1000,
        }
    );
    let text = err.to_string();
    assert!(text.contains(&format!("channel {ch}")), "{text}");
    assert!(text.contains("1000-byte credit window"), "{text}");
    // What was accepted is all there, and no more.
    for _ in 0..accepted {
        assert_eq!(pair.opener.recv(ch), Recv::Item(item.clone()));
    }
    assert_eq!(pair.opener.recv(ch), Recv::Empty);
}

#[test]
fn credit_the_receiver_returned_lets_the_peer_go_on() {
    let mut pair = connected(1000, 1 << 20);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    let item = Item::bytes(&[7; 300]);
    for _ in 0..4 {
        pair.opener
            .handle_input(raw_data(ch, item.clone()))
            .expect("within the window");
    }
    // Taking two items returns their cost (half the window reached).
    for _ in 0..2 {
        assert!(matches!(pair.opener.recv(ch), Recv::Item(_)));
    }
    pair.opener
        .handle_input(raw_data(ch, item.clone()))
        .expect("within the credit returned");
    // A closed channel drops what arrives and returns its credit: a sender
    // racing the close is not a violator.
    pair.opener.close(ch, None).expect("close");
    for _ in 0..20 {
        pair.opener
            .handle_input(raw_data(ch, item.clone()))
            .expect("dropped, credit returned");
    }
}

#[test]
fn an_honest_worker_never_trips_the_opener_window() {
    // A small window and items of many sizes, both ways, taken slowly.
    let mut pair = connected(700, 900);
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    let mut queued: Vec<Item> = (0..200)
        .map(|i| Item::bytes(&vec![1; (i * 37) % 1500]))
        .collect();
    queued.reverse();
    let mut received = 0;
    while received < 200 {
        while let Some(item) = queued.pop() {
            match pair.worker.send(ch, item).expect("send") {
                SendOutcome::Sent => {}
                SendOutcome::Blocked(item) => {
                    queued.push(item);
                    break;
                }
            }
        }
        drive(&mut pair);
        if let Recv::Item(_) = pair.opener.recv(ch) {
            received += 1;
        }
        drive(&mut pair);
    }
}

#[test]
fn an_error_nobody_will_read_is_reported_once() {
    let mut pair = connected(1 << 20, 1 << 20);
    // Released before it was read.
    let ch = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.worker
        .close(ch, Some("ValueError: unread"))
        .expect("close");
    drive(&mut pair);
    pair.opener.release(ch, false);
    let unread = |events: &mut Vec<Event>| {
        let found: Vec<Event> = events
            .drain(..)
            .filter(|e| matches!(e, Event::UnreadError { .. }))
            .collect();
        found
    };
    pair.drive().expect("drive");
    assert_eq!(
        unread(&mut pair.opener_events),
        [Event::UnreadError {
            channel: ch,
            error: "ValueError: unread".into()
        }]
    );
    // Arriving after the release (the peer raced our close).
    let late = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.opener.release(late, false);
    pair.worker.close(late, Some("late")).expect("close");
    drive(&mut pair);
    assert_eq!(
        unread(&mut pair.opener_events),
        [Event::UnreadError {
            channel: late,
            error: "late".into()
        }]
    );
    // Read: nothing to report.
    let read = pair.opener.exec("").expect("exec");
    drive(&mut pair);
    pair.worker.close(read, Some("read")).expect("close");
    drive(&mut pair);
    assert_eq!(pair.opener.recv(read), Recv::Error("read".into()));
    pair.opener.release(read, false);
    drive(&mut pair);
    assert_eq!(unread(&mut pair.opener_events), []);
}
