//! The body of the `session_input` fuzz target, a library function so that
//! stable tests run it too.

use execnet_wire::{ChannelRef, Decoder, Frame, Hello, Item, Message, Value};

use crate::error::Loss;
use crate::pair::{DriveError, Pair};
use crate::session::{Role, SessionConfig};

/// The largest frame the fuzzed session accepts (kept small so that the
/// fuzzer reaches the limit).
const MAX_FRAME: u32 = 1 << 16;

/// Drive one session of a [`Pair`] with an arbitrary sequence of input from
/// an impostor peer (raw bytes through a frame decoder, and messages built
/// directly from the data), interleaved with local API calls, calls of the
/// real peer, and [`Pair::drive`]. Never panics on any input, except on a
/// bug: every byte either session transmits must decode as valid frames.
pub fn fuzz_session(data: &[u8]) {
    let mut input = Input(data);
    let setup = input.byte();
    let role = if setup & 1 == 0 {
        Role::Opener
    } else {
        Role::Worker
    };
    let other = match role {
        Role::Opener => Role::Worker,
        Role::Worker => Role::Opener,
    };
    let fuzzed = SessionConfig::default()
        .window(1 + u64::from(input.byte()) * 257)
        .max_frame(MAX_FRAME);
    let peer = SessionConfig::default()
        .window(u64::from(input.byte()) * 131)
        .max_frame(MAX_FRAME);
    let mut pair = match role {
        Role::Opener => Pair::new(fuzzed, peer),
        Role::Worker => Pair::new(peer, fuzzed),
    };
    let mut impostor = Decoder::new(MAX_FRAME);
    if setup & 2 == 0 {
        // Most runs start past the Hello gate.
        drive(&mut pair);
    }
    while !input.is_empty() {
        let op = input.byte();
        let channel = u32::from(input.byte() % 12);
        let session = pair.session(role);
        match op % 16 {
            0 => {
                let n = usize::from(input.byte());
                impostor.feed(input.take(n));
                loop {
                    match impostor.next_frame() {
                        Ok(Some(frame)) => {
                            if let Err(e) = session.handle_input(frame) {
                                session.connection_lost(Loss::misbehaved("impostor", e));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            session.connection_lost(Loss::misbehaved("impostor", e));
                            break;
                        }
                    }
                }
            }
            1 => {
                let message = message(&mut input, channel);
                let len = u32::from(input.byte()) * 64;
                if let Err(e) = session.handle_input(Frame { message, len }) {
                    session.connection_lost(Loss::misbehaved("impostor", e));
                }
            }
            2 => {
                session.open_channel();
            }
            3 => {
                let n = usize::from(input.byte()) * 32;
                let _ = session.send(channel, Item::bytes(&vec![0; n]));
            }
            4 => {
                let _ = session.recv(channel);
            }
            5 => {
                let error = (input.byte() & 1 == 0).then_some("boom");
                let _ = session.close(channel, error);
            }
            6 => session.release(channel, input.byte() & 1 == 0),
            7 => {
                let _ = session.exec("pass");
            }
            8 => {
                let _ = session.status_request();
            }
            9 => session.terminate(),
            10 => session.connection_lost(Loss::ended("gone")),
            11 => {
                let _ = (
                    session.is_closed(channel),
                    session.is_finished(channel),
                    session.can_send(channel),
                    session.is_remote_closed(channel),
                    session.take_remote_error(channel),
                );
            }
            12 => {
                pair.opener_events.clear();
                pair.worker_events.clear();
            }
            13 => {
                // The real peer acts on the same channel.
                let peer = pair.session(other);
                match input.byte() % 4 {
                    0 => {
                        let n = usize::from(input.byte()) * 16;
                        let _ = peer.send(channel, Item::bytes(&vec![1; n]));
                    }
                    1 => {
                        let _ = peer.recv(channel);
                    }
                    2 => {
                        let _ = peer.close(channel, None);
                    }
                    _ => {
                        let _ = peer.exec("pass");
                    }
                }
            }
            _ => drive(&mut pair),
        }
    }
    drive(&mut pair);
}

/// Move bytes between the two sessions. Invalid frames are a bug; a side
/// refusing its peer's message (after the impostor confused it) ends the
/// connection, as the IO layer would.
fn drive(pair: &mut Pair) {
    match pair.drive() {
        Ok(_) => {}
        Err(DriveError::Refused { error, .. }) => pair.disconnect(Loss::misbehaved("peer", error)),
        Err(e) => panic!("a session sent an invalid frame: {e}"),
    }
}

fn message(input: &mut Input<'_>, channel: u32) -> Message {
    match input.byte() % 10 {
        0 => Message::Hello(Hello {
            version: u32::from(input.byte() % 3),
            ..Hello::default()
        }),
        1 => Message::Status { channel },
        2 => Message::Reconfigure {
            settings: Value::Dict(vec![]),
        },
        3 => Message::Terminate,
        4 => Message::ChannelExec {
            channel,
            source: "pass".into(),
            filename: None,
            call: None,
        },
        5 => {
            let data = match input.byte() % 3 {
                0 => Value::Bytes(vec![1; usize::from(input.byte())]),
                1 => Value::List(vec![Value::Channel(ChannelRef::new(u32::from(
                    input.byte(),
                )))]),
                _ => Value::None,
            };
            let data = Item::from_value(&data).unwrap_or_else(|_| Item::bytes(&[]));
            Message::ChannelData { channel, data }
        }
        6 => Message::ChannelClose { channel },
        7 => Message::ChannelCloseError {
            channel,
            error: "remote boom".into(),
        },
        8 => Message::ChannelLastMessage { channel },
        _ => {
            let mut word = [0u8; 8];
            let bytes = input.take(8);
            word[..bytes.len()].copy_from_slice(bytes);
            Message::Credit {
                channel,
                bytes: u64::from_le_bytes(word),
            }
        }
    }
}

/// The fuzz data, consumed from the front; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_inputs_do_not_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![1, 255, 255],
            vec![0, 3, 7, 2, 1, 3, 1, 200, 4, 1, 5, 1, 0, 13, 1],
            vec![2, 0, 0, 0, 9, 5, 0, 0, 0, 9, 1, 2, 3, 4, 5],
        ];
        // Every op on every channel, with both roles, and a few sweeps.
        for setup in 0..4u8 {
            let mut all = vec![setup, 5, 9];
            for op in 0..16u8 {
                for channel in [1u8, 2, 3] {
                    all.extend_from_slice(&[op, channel, op.wrapping_mul(37), 8, 1, 2]);
                }
            }
            inputs.push(all);
        }
        let mut x: u32 = 12345;
        for _ in 0..200 {
            let len = (x % 300) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            inputs.push(data);
        }
        for input in &inputs {
            fuzz_session(input);
        }
    }
}
