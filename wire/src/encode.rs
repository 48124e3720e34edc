//! Frame encoding (`WIRE.md`, sections 2-6).

use crate::value::unhashable_part;
use crate::{EncodeError, Message, Value, DEFAULT_MAX_FRAME, MAX_DEPTH};

/// Appends `msg` as one frame (length prefix and body) to `out` and returns
/// the body length `N`, the message's flow-control cost. The body may be at
/// most [`DEFAULT_MAX_FRAME`] bytes; use [`encode_frame_limited`] with the
/// peer's announced `max_frame`.
///
/// On error `out` is left as it was.
///
/// # Examples
///
/// ```
/// use execnet_wire::{encode_frame, Message};
///
/// let mut out = Vec::new();
/// let n = encode_frame(&Message::ChannelClose { channel: 3 }, &mut out).unwrap();
/// assert_eq!(n, 2);
/// assert_eq!(out, [2, 0, 0, 0, 6, 3]);
/// ```
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) -> Result<u32, EncodeError> {
    encode_frame_limited(msg, out, DEFAULT_MAX_FRAME)
}

/// As [`encode_frame`], with a body of at most `max_frame` bytes
/// ([`EncodeError::FrameTooLarge`] otherwise, found before copying more than
/// `max_frame` bytes of payload).
pub fn encode_frame_limited(
    msg: &Message,
    out: &mut Vec<u8>,
    max_frame: u32,
) -> Result<u32, EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut enc = Encoder {
        out,
        body_start: start + 4,
        max: u64::from(max_frame),
    };
    let result = enc.message(msg);
    let len = enc.out.len() - enc.body_start;
    let failure = match result {
        Ok(()) => match u32::try_from(len) {
            Ok(n) if n <= max_frame => {
                enc.out[start..start + 4].copy_from_slice(&n.to_le_bytes());
                return Ok(n);
            }
            _ => EncodeError::FrameTooLarge {
                len: len as u64,
                max: max_frame,
            },
        },
        Err(Stop::TooLarge) => EncodeError::FrameTooLarge {
            len: encoded_len(msg),
            max: max_frame,
        },
        Err(Stop::Error(e)) => e,
    };
    enc.out.truncate(start);
    Err(failure)
}

/// The body length `msg` encodes to (its flow-control cost), without
/// encoding it. For a message that cannot be encoded (too deep, unhashable
/// keys) the result is only an estimate.
pub fn encoded_len(msg: &Message) -> u64 {
    let n = match msg {
        Message::Hello(h) => {
            4 + varint_len(u64::from(h.version))
                + varint_len(h.window)
                + varint_len(u64::from(h.max_frame))
                + value_len(&h.info, 0)
        }
        Message::Status { channel }
        | Message::ChannelClose { channel }
        | Message::ChannelLastMessage { channel } => varint_len(u64::from(*channel)),
        Message::Reconfigure { settings } => value_len(settings, 0),
        Message::Terminate => 0,
        Message::ChannelExec {
            channel,
            source,
            filename,
            call,
        } => {
            varint_len(u64::from(*channel))
                + bytes_len(source.len())
                + 1
                + filename.as_ref().map_or(0, |f| bytes_len(f.len()))
                + 1
                + call.as_ref().map_or(0, |c| {
                    bytes_len(c.function.len())
                        + varint_len(c.kwargs.len() as u64)
                        + c.kwargs
                            .iter()
                            .map(|(k, v)| bytes_len(k.len()) + value_len(v, 1))
                            .sum::<u64>()
                })
        }
        Message::ChannelCloseError { channel, error } => {
            varint_len(u64::from(*channel)) + bytes_len(error.len())
        }
        Message::ChannelData { channel, data } => {
            varint_len(u64::from(*channel)) + value_len(data, 0)
        }
        Message::Credit { channel, bytes } => varint_len(u64::from(*channel)) + varint_len(*bytes),
    };
    1 + n
}

pub(crate) fn varint_len(v: u64) -> u64 {
    u64::from((64 - (v | 1).leading_zeros()).div_ceil(7))
}

fn bytes_len(n: usize) -> u64 {
    varint_len(n as u64) + n as u64
}

fn value_len(v: &Value, depth: usize) -> u64 {
    let items_len = |items: &[Value]| -> u64 {
        if depth >= MAX_DEPTH {
            return 0;
        }
        varint_len(items.len() as u64) + items.iter().map(|x| value_len(x, depth + 1)).sum::<u64>()
    };
    1 + match v {
        Value::None => 0,
        Value::Bool(_) => 1,
        Value::Int(n) => match n.to_i64() {
            Some(small) => varint_len(zigzag(small)),
            None => bytes_len(n.to_signed_bytes_le().len()),
        },
        Value::Float(_) => 8,
        Value::Complex(_) => 16,
        Value::Bytes(b) => bytes_len(b.len()),
        Value::Str(s) => bytes_len(s.len()),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items_len(items)
        }
        Value::Dict(pairs) if depth < MAX_DEPTH => {
            varint_len(pairs.len() as u64)
                + pairs
                    .iter()
                    .map(|(k, v)| value_len(k, depth + 1) + value_len(v, depth + 1))
                    .sum::<u64>()
        }
        Value::Dict(_) => 0,
        Value::Channel(c) => varint_len(u64::from(c.id())),
    }
}

pub(crate) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

enum Stop {
    /// The body outgrew the limit; the caller measures it.
    TooLarge,
    Error(EncodeError),
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    body_start: usize,
    max: u64,
}

impl Encoder<'_> {
    fn message(&mut self, msg: &Message) -> Result<(), Stop> {
        self.out.push(msg.tag());
        match msg {
            Message::Hello(h) => {
                self.out.extend_from_slice(&h.magic);
                self.varint(u64::from(h.version));
                self.varint(h.window);
                self.varint(u64::from(h.max_frame));
                self.value(&h.info, 0)
            }
            Message::Status { channel }
            | Message::ChannelClose { channel }
            | Message::ChannelLastMessage { channel } => {
                self.varint(u64::from(*channel));
                Ok(())
            }
            Message::Reconfigure { settings } => self.value(settings, 0),
            Message::Terminate => Ok(()),
            Message::ChannelExec {
                channel,
                source,
                filename,
                call,
            } => {
                self.varint(u64::from(*channel));
                self.bytes(source.as_bytes())?;
                match filename {
                    None => self.out.push(0),
                    Some(name) => {
                        self.out.push(1);
                        self.bytes(name.as_bytes())?;
                    }
                }
                match call {
                    None => self.out.push(0),
                    Some(call) => {
                        self.out.push(1);
                        self.bytes(call.function.as_bytes())?;
                        self.varint(call.kwargs.len() as u64);
                        for (name, value) in &call.kwargs {
                            self.bytes(name.as_bytes())?;
                            self.value(value, 1)?;
                        }
                    }
                }
                Ok(())
            }
            Message::ChannelCloseError { channel, error } => {
                self.varint(u64::from(*channel));
                self.bytes(error.as_bytes())
            }
            Message::ChannelData { channel, data } => {
                self.varint(u64::from(*channel));
                self.value(data, 0)
            }
            Message::Credit { channel, bytes } => {
                self.varint(u64::from(*channel));
                self.varint(*bytes);
                Ok(())
            }
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// A length-prefixed payload, refused before copying if it cannot fit.
    fn bytes(&mut self, b: &[u8]) -> Result<(), Stop> {
        let body_len = (self.out.len() - self.body_start) as u64;
        if body_len + b.len() as u64 > self.max {
            return Err(Stop::TooLarge);
        }
        self.varint(b.len() as u64);
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn value(&mut self, v: &Value, depth: usize) -> Result<(), Stop> {
        match v {
            Value::None => self.out.push(0),
            Value::Bool(b) => self.out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(n) => match n.to_i64() {
                Some(small) => {
                    self.out.push(2);
                    self.varint(zigzag(small));
                }
                None => {
                    self.out.push(3);
                    self.bytes(&n.to_signed_bytes_le())?;
                }
            },
            Value::Float(x) => {
                self.out.push(4);
                self.out.extend_from_slice(&x.to_le_bytes());
            }
            Value::Complex(c) => {
                self.out.push(5);
                self.out.extend_from_slice(&c.re.to_le_bytes());
                self.out.extend_from_slice(&c.im.to_le_bytes());
            }
            Value::Bytes(b) => {
                self.out.push(6);
                self.bytes(b)?;
            }
            Value::Str(s) => {
                self.out.push(7);
                self.bytes(s.as_bytes())?;
            }
            Value::List(items) => self.items(8, items, depth, None)?,
            Value::Tuple(items) => self.items(9, items, depth, None)?,
            Value::Dict(pairs) => {
                self.enter(depth)?;
                self.out.push(10);
                self.varint(pairs.len() as u64);
                for (k, v) in pairs {
                    if let Some(found) = unhashable_part(k) {
                        let place = "dict key";
                        return Err(Stop::Error(EncodeError::Unhashable { found, place }));
                    }
                    self.value(k, depth + 1)?;
                    self.value(v, depth + 1)?;
                }
            }
            Value::Set(items) => self.items(11, items, depth, Some("set element"))?,
            Value::FrozenSet(items) => self.items(12, items, depth, Some("frozenset element"))?,
            Value::Channel(c) => {
                self.out.push(13);
                self.varint(u64::from(c.id()));
            }
        }
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<(), Stop> {
        if depth >= MAX_DEPTH {
            Err(Stop::Error(EncodeError::TooDeep))
        } else {
            Ok(())
        }
    }

    fn items(
        &mut self,
        tag: u8,
        items: &[Value],
        depth: usize,
        hashed: Option<&'static str>,
    ) -> Result<(), Stop> {
        self.enter(depth)?;
        self.out.push(tag);
        self.varint(items.len() as u64);
        for item in items {
            if let Some(place) = hashed {
                if let Some(found) = unhashable_part(item) {
                    return Err(Stop::Error(EncodeError::Unhashable { found, place }));
                }
            }
            self.value(item, depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_message, DecodeError, Hello};

    fn frame(msg: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(msg, &mut out).expect("encodes");
        out
    }

    #[test]
    fn encoded_len_matches() {
        let msgs = [
            Message::Terminate,
            Message::Hello(Hello::default()),
            Message::Credit {
                channel: 300,
                bytes: u64::MAX,
            },
            Message::ChannelData {
                channel: 1,
                data: Value::Dict(vec![(
                    Value::Tuple(vec![Value::from(u128::MAX), Value::from(-5)]),
                    Value::List(vec![Value::Bytes(vec![1; 300]), Value::Float(1.0)]),
                )]),
            },
        ];
        for msg in msgs {
            assert_eq!(frame(&msg).len() as u64 - 4, encoded_len(&msg), "{msg:?}");
        }
    }

    #[test]
    fn too_large_leaves_out_untouched() {
        let msg = Message::ChannelData {
            channel: 1,
            data: Value::Bytes(vec![0; 100]),
        };
        let mut out = vec![9, 9];
        let err = encode_frame_limited(&msg, &mut out, 50);
        assert_eq!(err, Err(EncodeError::FrameTooLarge { len: 104, max: 50 }));
        assert_eq!(out, [9, 9]);
        assert_eq!(encode_frame_limited(&msg, &mut out, 104), Ok(104));
    }

    #[test]
    fn unhashable_refused_both_ways() {
        let msg = Message::ChannelData {
            channel: 1,
            data: Value::Set(vec![Value::Tuple(vec![Value::List(vec![])])]),
        };
        let mut out = Vec::new();
        assert_eq!(
            encode_frame(&msg, &mut out),
            Err(EncodeError::Unhashable {
                found: "list",
                place: "set element"
            })
        );
        assert!(out.is_empty());
        // dict {[]: None}
        assert_eq!(
            decode_message(&[5, 1, 10, 1, 8, 0, 0]),
            Err(DecodeError::Unhashable {
                found: "list",
                offset: 4
            })
        );
    }
}
