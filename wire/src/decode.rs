//! Decoding of one frame body (`WIRE.md`, sections 3-6).

use crate::value::unhashable_part;
use crate::{Call, ChannelRef, Complex, DecodeError, Hello, Int, Message, Value, MAX_DEPTH};

/// Decodes one frame body (without its length prefix) into a message; the
/// body must hold exactly one message.
///
/// # Examples
///
/// ```
/// use execnet_wire::{decode_message, Message};
///
/// assert_eq!(decode_message(&[6, 3]), Ok(Message::ChannelClose { channel: 3 }));
/// assert!(decode_message(&[6, 3, 0]).is_err());
/// ```
pub fn decode_message(body: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf: body, pos: 0 };
    let msg = r.message()?;
    if r.pos < body.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.pos,
            extra: body.len() - r.pos,
        });
    }
    Ok(msg)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn message(&mut self) -> Result<Message, DecodeError> {
        let offset = self.pos;
        let tag = self.varint()?;
        Ok(match tag {
            0 => {
                let magic = self.take(4)?;
                let magic = [magic[0], magic[1], magic[2], magic[3]];
                Message::Hello(Hello {
                    magic,
                    version: self.varint_u32()?,
                    window: self.varint()?,
                    max_frame: self.varint_u32()?,
                    info: self.value(0)?,
                })
            }
            1 => Message::Status {
                channel: self.varint_u32()?,
            },
            2 => Message::Reconfigure {
                settings: self.value(0)?,
            },
            3 => Message::Terminate,
            4 => Message::ChannelExec {
                channel: self.varint_u32()?,
                source: self.str()?,
                filename: match self.option()? {
                    false => None,
                    true => Some(self.str()?),
                },
                call: match self.option()? {
                    false => None,
                    true => Some(self.call()?),
                },
            },
            5 => Message::ChannelData {
                channel: self.varint_u32()?,
                data: self.value(0)?,
            },
            6 => Message::ChannelClose {
                channel: self.varint_u32()?,
            },
            7 => Message::ChannelCloseError {
                channel: self.varint_u32()?,
                error: self.str()?,
            },
            8 => Message::ChannelLastMessage {
                channel: self.varint_u32()?,
            },
            9 => Message::Credit {
                channel: self.varint_u32()?,
                bytes: self.varint()?,
            },
            _ => return Err(DecodeError::UnknownMessageTag { tag, offset }),
        })
    }

    /// An `Option`'s tag: `00` none, `01` some.
    fn option(&mut self) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(DecodeError::BadOption { byte, offset }),
        }
    }

    fn call(&mut self) -> Result<Call, DecodeError> {
        let function = self.str()?;
        // each pair takes at least 3 bytes: an empty name and a None
        let n = self.count(3)?;
        let mut kwargs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?;
            kwargs.push((name, self.value(1)?));
        }
        Ok(Call { function, kwargs })
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.buf.len(),
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::UnexpectedEnd {
                offset: self.pos,
                needed: 1,
            }),
        }
    }

    /// A varint of at most `max_bytes` bytes whose last byte is at most `last_max`.
    fn varint_bounded(&mut self, max_bytes: u32, last_max: u8) -> Result<u64, DecodeError> {
        let offset = self.pos;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            if i == max_bytes - 1 && b > last_max {
                return Err(DecodeError::BadVarint { offset });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint { offset })
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_bounded(10, 0x01),
        }
    }

    fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        let v = self.varint_bounded(5, 0x0f)?;
        // Cannot fail: 4 x 7 bits plus at most 4 bits.
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }

    /// A count of items each taking at least `min_each` bytes, checked
    /// against the bytes left before anything is allocated.
    fn count(&mut self, min_each: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let count = self.varint()?;
        let remaining = self.remaining();
        if count > (remaining / min_each) as u64 {
            return Err(DecodeError::CountTooLarge {
                count,
                remaining,
                offset,
            });
        }
        // Fits: it is at most `remaining`.
        Ok(count as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let offset = self.pos;
        let b = self.bytes()?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 { offset }),
        }
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        let mut word = [0; 8];
        word.copy_from_slice(b);
        Ok(f64::from_le_bytes(word))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let tag = self.varint()?;
        let container = matches!(tag, 8..=12);
        if container && depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep { offset });
        }
        Ok(match tag {
            0 => Value::None,
            1 => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                byte => {
                    return Err(DecodeError::BadBool {
                        byte,
                        offset: self.pos - 1,
                    })
                }
            },
            2 => Value::Int(Int::from(unzigzag(self.varint()?))),
            3 => Value::Int(Int::from_signed_bytes_le(self.bytes()?)),
            4 => Value::Float(self.f64()?),
            5 => Value::Complex(Complex {
                re: self.f64()?,
                im: self.f64()?,
            }),
            6 => Value::Bytes(self.bytes()?.to_vec()),
            7 => Value::Str(self.str()?),
            8 => Value::List(self.items(depth, false)?),
            9 => Value::Tuple(self.items(depth, false)?),
            10 => {
                let n = self.count(2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.hashable(depth)?;
                    pairs.push((key, self.value(depth + 1)?));
                }
                Value::Dict(pairs)
            }
            11 => Value::Set(self.items(depth, true)?),
            12 => Value::FrozenSet(self.items(depth, true)?),
            13 => Value::Channel(ChannelRef::new(self.varint_u32()?)),
            _ => return Err(DecodeError::UnknownValueTag { tag, offset }),
        })
    }

    fn items(&mut self, depth: usize, hashed: bool) -> Result<Vec<Value>, DecodeError> {
        let n = self.count(1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(if hashed {
                self.hashable(depth)?
            } else {
                self.value(depth + 1)?
            });
        }
        Ok(items)
    }

    fn hashable(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        let v = self.value(depth + 1)?;
        match unhashable_part(&v) {
            Some(found) => Err(DecodeError::Unhashable { found, offset }),
            None => Ok(v),
        }
    }
}

pub(crate) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{varint_len, zigzag};

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut frame = Vec::new();
            let msg = Message::Credit {
                channel: 0,
                bytes: v,
            };
            crate::encode_frame(&msg, &mut frame).expect("encodes");
            let out = &frame[6..];
            assert_eq!(out.len() as u64, varint_len(v));
            assert_eq!(Reader { buf: out, pos: 0 }.varint(), Ok(v));
        }
        let eleven = [0x80; 10].iter().chain(&[0]).copied().collect::<Vec<_>>();
        assert_eq!(
            Reader {
                buf: &eleven,
                pos: 0
            }
            .varint(),
            Err(DecodeError::BadVarint { offset: 0 })
        );
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader {
            buf: &overflow,
            pos: 0
        }
        .varint()
        .is_err());
        let u32_overflow = [0xff, 0xff, 0xff, 0xff, 0x10];
        assert!(Reader {
            buf: &u32_overflow,
            pos: 0
        }
        .varint_u32()
        .is_err());
        let u32_max = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            Reader {
                buf: &u32_max,
                pos: 0
            }
            .varint_u32(),
            Ok(u32::MAX)
        );
        // Non-minimal but within the length limit is accepted (as postcard does).
        assert_eq!(
            Reader {
                buf: &[0x80, 0x00],
                pos: 0
            }
            .varint(),
            Ok(0)
        );
    }

    #[test]
    fn zigzag_roundtrip() {
        for n in [0, -1, 1, -2, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
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
    }
}
