//! Frame bodies (`WIRE.md`, sections 2-6): messages encoded by postcard.

use serde::Serialize;

use crate::codec::{put, read, varint_len, writer};
use crate::item::skip_value;
use crate::{DecodeError, EncodeError, Item, Message, DEFAULT_MAX_FRAME};

/// The tag of `ChannelData`, the one message on the hot path.
const CHANNEL_DATA: u8 = 5;
/// The number of message tags (0 to 9).
const MESSAGE_TAGS: u64 = 10;

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
///
/// # Examples
///
/// ```
/// use execnet_wire::{encode_frame_limited, EncodeError, Item, Message};
///
/// let msg = Message::ChannelData { channel: 1, data: Item::encode(&vec![0u8; 100]).unwrap() };
/// let mut out = Vec::new();
/// assert!(matches!(
///     encode_frame_limited(&msg, &mut out, 64),
///     Err(EncodeError::FrameTooLarge { max: 64, .. })
/// ));
/// assert!(out.is_empty());
/// ```
pub fn encode_frame_limited(
    msg: &Message,
    out: &mut Vec<u8>,
    max_frame: u32,
) -> Result<u32, EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match body(msg, out, max_frame) {
        Ok(()) => {
            // At most `max_frame`: the sink refuses to write more.
            let n = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
            out[start..start + 4].copy_from_slice(&n.to_le_bytes());
            Ok(n)
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

fn body(msg: &Message, out: &mut Vec<u8>, max_frame: u32) -> Result<(), EncodeError> {
    let too_large = || EncodeError::FrameTooLarge {
        len: encoded_len(msg),
        max: max_frame,
    };
    if let Message::ChannelData { channel, data } = msg {
        // The item is in its wire form already: copy it after the header
        // (postcard would write the very same bytes, element by element).
        if encoded_len(msg) > u64::from(max_frame) {
            return Err(too_large());
        }
        let mut w = writer(out, usize::MAX);
        put(&mut w, &CHANNEL_DATA)
            .and_then(|()| put(&mut w, channel))
            .map_err(|_| too_large())?;
        data.write_to(out);
        return Ok(());
    }
    match msg.serialize(&mut writer(out, max_frame as usize)) {
        Ok(()) => Ok(()),
        Err(postcard::Error::SerializeBufferFull) => Err(too_large()),
        // A value postcard's serializer refused: say why, typed.
        Err(e) => Err(value_fields(msg)
            .into_iter()
            .find_map(|(v, depth)| crate::item_ser::encode_value(v, depth, usize::MAX).err())
            .unwrap_or_else(|| EncodeError::Value(crate::ValueError::Custom(e.to_string())))),
    }
}

/// The `Value`s a message carries outside `ChannelData`, each with the
/// depth it sits at.
fn value_fields(msg: &Message) -> Vec<(&crate::Value, usize)> {
    match msg {
        Message::Hello(h) => vec![(&h.info, 0)],
        Message::Reconfigure { settings } => vec![(settings, 0)],
        Message::ChannelExec { call, .. } => call
            .iter()
            .flat_map(|call| call.kwargs.iter().map(|(_, v)| (v, 1)))
            .collect(),
        // Listed one by one: a new message with a Value must be added here.
        Message::Status { .. }
        | Message::Terminate
        | Message::ChannelData { .. }
        | Message::ChannelClose { .. }
        | Message::ChannelCloseError { .. }
        | Message::ChannelLastMessage { .. }
        | Message::Credit { .. } => Vec::new(),
    }
}

/// The body length `msg` encodes to (its flow-control cost), without
/// encoding it. For a message that cannot be encoded (too deep, unhashable
/// keys) the result is 0.
///
/// # Examples
///
/// ```
/// use execnet_wire::{encoded_len, Message};
///
/// assert_eq!(encoded_len(&Message::Credit { channel: 1, bytes: 1 << 20 }), 5);
/// ```
pub fn encoded_len(msg: &Message) -> u64 {
    match msg {
        Message::ChannelData { channel, data } => {
            (1 + varint_len(u64::from(*channel)) + data.len()) as u64
        }
        other => postcard::experimental::serialized_size(other).map_or(0, |n| n as u64),
    }
}

/// Decodes one frame body (without its length prefix) into a message; the
/// body must hold exactly one message. A `ChannelData` item is checked
/// (`WIRE.md` section 8) and kept in its wire form.
///
/// # Examples
///
/// ```
/// use execnet_wire::{decode_message, DecodeError, Message};
///
/// assert_eq!(decode_message(&[6, 3]), Ok(Message::ChannelClose { channel: 3 }));
/// assert_eq!(
///     decode_message(&[6, 3, 0]),
///     Err(DecodeError::TrailingBytes { offset: 2, extra: 1 })
/// );
/// ```
pub fn decode_message(body: &[u8]) -> Result<Message, DecodeError> {
    if body.first() == Some(&CHANNEL_DATA) {
        // The hot path: check the item where it lies, copy it once.
        let (channel, at) = read(body, 0, |r| {
            r.byte()?;
            Ok::<_, DecodeError>((r.varint_u32()?, r.pos()))
        })?;
        let data = Item::parse(&body[at..], at)?;
        return Ok(Message::ChannelData { channel, data });
    }
    let tag = read(body, 0, |r| r.varint())?;
    if tag >= MESSAGE_TAGS {
        return Err(DecodeError::UnknownMessageTag { tag, offset: 0 });
    }
    let (decoded, end) = read(body, 0, |r| (r.postcard::<Message>(), r.pos()));
    match decoded {
        Ok(msg) if end < body.len() => {
            drop(msg);
            Err(DecodeError::TrailingBytes {
                offset: end,
                extra: body.len() - end,
            })
        }
        Ok(msg) => Ok(msg),
        Err(e) => Err(decode_failure(body, e, end)),
    }
}

/// Says, typed and with the offset, why postcard refused `body` (it stopped
/// at byte `end`).
fn decode_failure(body: &[u8], e: postcard::Error, end: usize) -> DecodeError {
    let at_last = || {
        let offset = end.saturating_sub(1);
        (body.get(offset).copied().unwrap_or(0), offset)
    };
    match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::UnexpectedEnd {
            offset: body.len(),
            needed: 1,
        },
        postcard::Error::DeserializeBadVarint => DecodeError::BadVarint { offset: end },
        postcard::Error::DeserializeBadUtf8 => DecodeError::InvalidUtf8 { offset: end },
        postcard::Error::DeserializeBadOption => {
            let (byte, offset) = at_last();
            DecodeError::BadOption { byte, offset }
        }
        // A Value inside refused (postcard keeps no reason): walk the values
        // again to say what and where.
        _ => diagnose_values(body).unwrap_or(DecodeError::ValueOverBudget {
            budget: crate::DEFAULT_VALUE_BUDGET,
        }),
    }
}

/// The first error in the values of a `Hello`, `Reconfigure` or
/// `ChannelExec` body, walked as `WIRE.md` section 4 lays them out.
fn diagnose_values(body: &[u8]) -> Option<DecodeError> {
    let walked: Result<(), DecodeError> = read(body, 0, |r| {
        let mut channels: Vec<u32> = Vec::new();
        match r.varint()? {
            // Hello: magic, version, window, max_frame, then info.
            0 => {
                for _ in 0..4 {
                    r.byte()?;
                }
                r.varint_u32()?;
                r.varint()?;
                r.varint_u32()?;
                skip_value(r, 0, &mut channels)?;
            }
            2 => {
                skip_value(r, 0, &mut channels)?;
            }
            // ChannelExec: channel, source, filename, then the call.
            4 => {
                r.varint_u32()?;
                r.str()?;
                if r.byte()? == 1 {
                    r.str()?;
                }
                if r.byte()? == 1 {
                    r.str()?;
                    for _ in 0..r.count(3)? {
                        r.str()?;
                        skip_value(r, 1, &mut channels)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    });
    walked.err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hello, Value};

    fn frame(msg: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(msg, &mut out).expect("encodes");
        out
    }

    fn data(v: Value) -> Message {
        Message::ChannelData {
            channel: 1,
            data: Item::from_value(&v).expect("encodes"),
        }
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
            data(Value::Dict(vec![(
                Value::Tuple(vec![Value::from(u128::MAX), Value::from(-5)]),
                Value::List(vec![Value::Bytes(vec![1; 300]), Value::Float(1.0)]),
            )])),
        ];
        for msg in msgs {
            assert_eq!(frame(&msg).len() as u64 - 4, encoded_len(&msg), "{msg:?}");
        }
    }

    #[test]
    fn too_large_leaves_out_untouched() {
        let msg = data(Value::Bytes(vec![0; 100]));
        let mut out = vec![9, 9];
        let err = encode_frame_limited(&msg, &mut out, 50);
        assert_eq!(err, Err(EncodeError::FrameTooLarge { len: 104, max: 50 }));
        assert_eq!(out, [9, 9]);
        assert_eq!(encode_frame_limited(&msg, &mut out, 104), Ok(104));
        let hello = Message::Hello(Hello::new(1, 2, Value::Str("x".repeat(100))));
        let mut out = Vec::new();
        assert_eq!(
            encode_frame_limited(&hello, &mut out, 50),
            Err(EncodeError::FrameTooLarge {
                len: encoded_len(&hello),
                max: 50
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn unhashable_refused_both_ways() {
        let set = Value::Set(vec![Value::Tuple(vec![Value::List(vec![])])]);
        assert_eq!(
            Item::from_value(&set),
            Err(EncodeError::Unhashable {
                found: "list",
                place: "set element"
            })
        );
        // In a Hello (through postcard) the error is as precise.
        let mut out = Vec::new();
        let hello = Message::Hello(Hello::new(1, 2, set));
        assert_eq!(
            encode_frame(&hello, &mut out),
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
        assert_eq!(
            decode_message(&[2, 10, 1, 8, 0, 0]),
            Err(DecodeError::Unhashable {
                found: "list",
                offset: 3
            })
        );
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            decode_message(&[42]),
            Err(DecodeError::UnknownMessageTag { tag: 42, offset: 0 })
        );
        assert_eq!(
            decode_message(&[5, 1, 99]),
            Err(DecodeError::UnknownValueTag { tag: 99, offset: 2 })
        );
        assert_eq!(
            decode_message(&[5, 1, 1, 2]),
            Err(DecodeError::BadBool { byte: 2, offset: 3 })
        );
        assert_eq!(
            decode_message(&[5, 1, 7, 1, 0xff]),
            Err(DecodeError::InvalidUtf8 { offset: 3 })
        );
        assert_eq!(
            decode_message(&[5, 1, 8, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::CountTooLarge {
                count: u64::from(u32::MAX),
                remaining: 0,
                offset: 3
            })
        );
        assert_eq!(
            decode_message(&[5, 1, 4, 0]),
            Err(DecodeError::UnexpectedEnd {
                offset: 4,
                needed: 7
            })
        );
        assert_eq!(
            decode_message(&[3, 0]),
            Err(DecodeError::TrailingBytes {
                offset: 1,
                extra: 1
            })
        );
        assert_eq!(
            decode_message(&[]),
            Err(DecodeError::UnexpectedEnd {
                offset: 0,
                needed: 1
            })
        );
        assert_eq!(
            decode_message(&[2, 99]),
            Err(DecodeError::UnknownValueTag { tag: 99, offset: 1 })
        );
        assert!(matches!(
            decode_message(&[4, 1, 1, 0xff]),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        assert!(matches!(
            decode_message(&[1, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::BadVarint { .. })
        ));
    }
}
