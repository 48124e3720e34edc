//! The bodies of the `session_input` and `handshake` fuzz targets, library
//! functions so that stable tests run them too.

use execnet_wire::{ChannelRef, Decoder, Frame, Hello, Item, Message, Value};

use crate::session::{Role, Session, SessionConfig};

/// The largest frame the fuzzed session accepts (kept small so that the
/// fuzzer reaches the limit).
const MAX_FRAME: u32 = 1 << 16;

/// Drive one [`Session`] with an arbitrary sequence of peer input (raw bytes
/// through the frame decoder, and messages built directly from the data)
/// interleaved with local API calls. Never panics on any input, except on a
/// bug: every byte the session transmits must decode as valid frames.
pub fn fuzz_session(data: &[u8]) {
    let mut input = Input(data);
    let setup = input.byte();
    let role = if setup & 1 == 0 {
        Role::Opener
    } else {
        Role::Worker
    };
    let config = SessionConfig {
        window: 1 + u64::from(input.byte()) * 257,
        max_frame: MAX_FRAME,
        ..SessionConfig::default()
    };
    let mut session = Session::new(role, config);
    let mut decoder = Decoder::new(MAX_FRAME);
    let mut check = Decoder::new(u32::MAX);
    if setup & 2 == 0 {
        // Most runs start past the Hello gate.
        let hello = Hello::new(
            u64::from(input.byte()) * 131,
            MAX_FRAME,
            Value::Dict(vec![]),
        );
        feed(&mut session, Message::Hello(hello), 16);
    }
    while !input.is_empty() {
        let op = input.byte();
        let channel = u32::from(input.byte() % 12);
        match op % 16 {
            0 => {
                let n = usize::from(input.byte());
                decoder.feed(input.take(n));
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) => {
                            if session.handle_input(frame).is_err() {
                                session.connection_lost("protocol error");
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            session.connection_lost("decode error");
                            break;
                        }
                    }
                }
            }
            1 => {
                let message = message(&mut input, channel);
                let len = u32::from(input.byte()) * 64;
                feed(&mut session, message, len);
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
            10 => session.connection_lost("gone"),
            11 => {
                let _ = (
                    session.is_closed(channel),
                    session.is_finished(channel),
                    session.can_send(channel),
                    session.is_remote_closed(channel),
                    session.take_remote_error(channel),
                );
            }
            12 => while session.poll_event().is_some() {},
            _ => transmit(&mut session, &mut check),
        }
    }
    transmit(&mut session, &mut check);
}

/// The socket server's handshake, both sides, against arbitrary peer bytes
/// (with and without a token). Never panics, never waits for more than the
/// data holds (the stream ends where the data ends).
pub fn fuzz_handshake(data: &[u8]) {
    let token = crate::Token::new("fuzz-token");
    for token in [token.as_ref(), None] {
        let mut stream = FuzzStream(data);
        let _ = futures_lite::future::block_on(crate::auth::server_handshake(&mut stream, token));
        let mut reader = FuzzStream(data);
        let mut writer = FuzzStream(&[]);
        let _ = futures_lite::future::block_on(crate::auth::client_handshake(
            &mut reader,
            &mut writer,
            token,
        ));
    }
}

/// Reads `data` then EOF; accepts and drops every write.
struct FuzzStream<'a>(&'a [u8]);

impl futures_io::AsyncRead for FuzzStream<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::task::Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncWrite for FuzzStream<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn feed(session: &mut Session, message: Message, len: u32) {
    if session.handle_input(Frame { message, len }).is_err() {
        session.connection_lost("protocol error");
    }
}

/// What the session sends must always be valid frames.
fn transmit(session: &mut Session, check: &mut Decoder) {
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    check.feed(&out);
    loop {
        match check.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the session sent an invalid frame: {e}"),
        }
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
            fuzz_handshake(input);
        }
        // A well-formed client answer with a wrong MAC, and a server hello.
        let mut answer = b"EXNC\x01".to_vec();
        answer.extend_from_slice(&[7; 64]);
        fuzz_handshake(&answer);
        let mut hello = b"EXNS\x01\x01".to_vec();
        hello.extend_from_slice(&[9; 64]);
        fuzz_handshake(&hello);
    }
}
