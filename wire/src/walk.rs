//! Reading and writing an [`Item`]'s encoding one element at a time, for
//! bindings that build their own objects (the Python package builds Python
//! objects straight from the bytes, and bytes straight from Python objects).
//!
//! serde cannot tell a list from a tuple or a set, so a binding that must
//! keep those apart walks the tags itself: [`ItemReader`] yields a
//! [`ItemToken`] per element in encoding order (a container's token gives its
//! length, its elements follow), and [`ItemWriter`] writes the same tokens.

use crate::codec::varint_len;
use crate::item::tag;
use crate::{ChannelRef, DecodeError, EncodeError, Item, ValueError};

/// One element of an item's encoding (`WIRE.md` section 6).
///
/// A container's token carries its length; that many elements follow it
/// (for a `Dict`, that many key/value pairs: twice as many elements).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ItemToken<'a> {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits in an `i64`.
    Int(i64),
    /// Any other int: two's complement, little-endian, minimal length
    /// (Python's `int.to_bytes(n, "little", signed=True)`).
    BigInt(&'a [u8]),
    /// A float.
    Float(f64),
    /// A complex number: real, imaginary.
    Complex(f64, f64),
    /// A bytes string.
    Bytes(&'a [u8]),
    /// A str.
    Str(&'a str),
    /// A list of this many elements.
    List(usize),
    /// A tuple of this many elements.
    Tuple(usize),
    /// A dict of this many key/value pairs.
    Dict(usize),
    /// A set of this many elements.
    Set(usize),
    /// A frozenset of this many elements.
    FrozenSet(usize),
    /// A channel, by id (its handle, if any, is in [`Item::channels`]).
    Channel(u32),
}

/// Yields the [`ItemToken`]s of an item, in encoding order.
///
/// An item was checked when it was made (tags, lengths, UTF-8, depth at
/// most [`MAX_DEPTH`](crate::MAX_DEPTH), hashable keys), so a walk over it
/// meets no error in practice; the reader still reports one rather than
/// panic if it did. Nothing is allocated: byte strings and strs are
/// borrowed from the item.
///
/// # Examples
///
/// ```
/// use execnet_wire::{Item, ItemToken};
///
/// let item = Item::from_bytes(vec![9, 2, 2, 84, 7, 1, b'a']).unwrap(); // (42, 'a')
/// let mut r = item.reader();
/// assert_eq!(r.next_token().unwrap(), ItemToken::Tuple(2));
/// assert_eq!(r.next_token().unwrap(), ItemToken::Int(42));
/// assert_eq!(r.next_token().unwrap(), ItemToken::Str("a"));
/// assert!(r.is_done());
/// ```
#[derive(Debug)]
pub struct ItemReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// A long top-level bytes/str kept as its bare payload: its one token.
    payload: Option<ItemToken<'a>>,
}

impl Item {
    /// A reader over this item's elements (see [`ItemReader`]).
    pub fn reader(&self) -> ItemReader<'_> {
        match self.payload_parts() {
            Some((t, payload)) => {
                let token = if t == tag::STR {
                    match std::str::from_utf8(payload) {
                        Ok(s) => ItemToken::Str(s),
                        // Checked when the item was made; never here.
                        Err(_) => ItemToken::Bytes(payload),
                    }
                } else {
                    ItemToken::Bytes(payload)
                };
                ItemReader {
                    bytes: &[],
                    pos: 0,
                    payload: Some(token),
                }
            }
            None => ItemReader {
                bytes: self.encoded_slice().unwrap_or(&[]),
                pos: 0,
                payload: None,
            },
        }
    }
}

impl<'a> ItemReader<'a> {
    /// The next element; an error only if the bytes ended or hold something
    /// other than a value encoding (which a checked item never does).
    pub fn next_token(&mut self) -> Result<ItemToken<'a>, DecodeError> {
        if let Some(token) = self.payload.take() {
            return Ok(token);
        }
        let offset = self.pos;
        let t = self.varint()?;
        Ok(match u8::try_from(t).unwrap_or(u8::MAX) {
            tag::NONE => ItemToken::None,
            tag::BOOL => {
                let b = self.take(1)?[0];
                if b > 1 {
                    return Err(DecodeError::BadBool { byte: b, offset });
                }
                ItemToken::Bool(b == 1)
            }
            tag::INT => {
                let z = self.varint()?;
                ItemToken::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            tag::BIG_INT => ItemToken::BigInt(self.bytes()?),
            tag::FLOAT => ItemToken::Float(self.f64()?),
            tag::COMPLEX => ItemToken::Complex(self.f64()?, self.f64()?),
            tag::BYTES => ItemToken::Bytes(self.bytes()?),
            tag::STR => {
                let at = self.pos;
                let b = self.bytes()?;
                ItemToken::Str(
                    std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { offset: at })?,
                )
            }
            tag::LIST => ItemToken::List(self.count(1)?),
            tag::TUPLE => ItemToken::Tuple(self.count(1)?),
            tag::DICT => ItemToken::Dict(self.count(2)?),
            tag::SET => ItemToken::Set(self.count(1)?),
            tag::FROZENSET => ItemToken::FrozenSet(self.count(1)?),
            tag::CHANNEL => {
                let id = self.varint()?;
                ItemToken::Channel(
                    u32::try_from(id).map_err(|_| DecodeError::BadVarint { offset: offset + 1 })?,
                )
            }
            _ => return Err(DecodeError::UnknownValueTag { tag: t, offset }),
        })
    }

    /// Whether every element was read.
    pub fn is_done(&self) -> bool {
        self.payload.is_none() && self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(DecodeError::UnexpectedEnd {
                offset: self.bytes.len(),
                needed: self.pos.saturating_add(n) - self.bytes.len(),
            }),
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let offset = self.pos;
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            out |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(out);
            }
        }
        Err(DecodeError::BadVarint { offset })
    }

    fn count(&mut self, min_each: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let n = self.varint()?;
        let remaining = self.bytes.len() - self.pos;
        if n > (remaining / min_each) as u64 {
            return Err(DecodeError::CountTooLarge {
                count: n,
                remaining,
                offset,
            });
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

/// Writes an item's encoding one [`ItemToken`] at a time; [`ItemWriter::finish`]
/// checks what was written (as a received item is checked) and makes it an
/// [`Item`].
///
/// # Examples
///
/// ```
/// use execnet_wire::{ItemWriter, ItemToken};
///
/// let mut w = ItemWriter::new();
/// w.token(ItemToken::Tuple(2));
/// w.token(ItemToken::Int(42));
/// w.token(ItemToken::Str("a"));
/// let item = w.finish().unwrap();
/// assert_eq!(item.to_value().unwrap().repr(), "(42, 'a')");
/// ```
#[derive(Debug, Default)]
pub struct ItemWriter {
    buf: Vec<u8>,
    channels: Vec<ChannelRef>,
}

impl ItemWriter {
    /// An empty writer.
    pub fn new() -> ItemWriter {
        ItemWriter::default()
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends one element. A container's token must be followed by as
    /// many elements as it announces (twice as many for a `Dict`).
    pub fn token(&mut self, token: ItemToken<'_>) {
        let b = &mut self.buf;
        match token {
            ItemToken::None => b.push(tag::NONE),
            ItemToken::Bool(v) => b.extend_from_slice(&[tag::BOOL, u8::from(v)]),
            ItemToken::Int(n) => {
                b.push(tag::INT);
                varint(b, ((n << 1) ^ (n >> 63)) as u64);
            }
            ItemToken::BigInt(data) => {
                b.push(tag::BIG_INT);
                varint(b, data.len() as u64);
                b.extend_from_slice(data);
            }
            ItemToken::Float(x) => {
                b.push(tag::FLOAT);
                b.extend_from_slice(&x.to_le_bytes());
            }
            ItemToken::Complex(re, im) => {
                b.push(tag::COMPLEX);
                b.extend_from_slice(&re.to_le_bytes());
                b.extend_from_slice(&im.to_le_bytes());
            }
            ItemToken::Bytes(data) => {
                b.reserve(1 + varint_len(data.len() as u64) + data.len());
                b.push(tag::BYTES);
                varint(b, data.len() as u64);
                b.extend_from_slice(data);
            }
            ItemToken::Str(s) => {
                b.reserve(1 + varint_len(s.len() as u64) + s.len());
                b.push(tag::STR);
                varint(b, s.len() as u64);
                b.extend_from_slice(s.as_bytes());
            }
            ItemToken::List(n) => container(b, tag::LIST, n),
            ItemToken::Tuple(n) => container(b, tag::TUPLE, n),
            ItemToken::Dict(n) => container(b, tag::DICT, n),
            ItemToken::Set(n) => container(b, tag::SET, n),
            ItemToken::FrozenSet(n) => container(b, tag::FROZENSET, n),
            ItemToken::Channel(id) => {
                b.push(tag::CHANNEL);
                varint(b, u64::from(id));
            }
        }
    }

    /// Appends a channel carrying `channel`'s attachment (a live handle the
    /// gateway checks on send, see [`Item::channels`]).
    pub fn channel(&mut self, channel: ChannelRef) {
        self.token(ItemToken::Channel(channel.id()));
        self.channels.push(channel);
    }

    /// Checks the encoding (one whole value, counts that match, depth,
    /// hashable keys, at most `DEFAULT_MAX_FRAME` bytes) and makes it an item.
    pub fn finish(self) -> Result<Item, EncodeError> {
        let max = crate::DEFAULT_MAX_FRAME;
        if self.buf.len() as u64 > u64::from(max) {
            return Err(EncodeError::FrameTooLarge {
                len: self.buf.len() as u64,
                max,
            });
        }
        let mut item = Item::from_bytes(self.buf).map_err(|e| match e {
            DecodeError::TooDeep { .. } => EncodeError::TooDeep,
            DecodeError::Unhashable { found, .. } => EncodeError::Unhashable {
                found,
                place: "dict key or set element",
            },
            other => EncodeError::Value(ValueError::Custom(format!(
                "the tokens written are not one value: {other}"
            ))),
        })?;
        if !self.channels.is_empty() {
            for c in item.channels_mut() {
                if let Some(known) = self.channels.iter().find(|k| k.id() == c.id()) {
                    c.set_attachment(known.attachment().cloned());
                }
            }
        }
        Ok(item)
    }
}

fn container(b: &mut Vec<u8>, t: u8, n: usize) {
    b.push(t);
    varint(b, n as u64);
}

fn varint(b: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        b.push((n as u8) | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn tokens(item: &Item) -> Vec<String> {
        let mut r = item.reader();
        let mut out = Vec::new();
        while !r.is_done() {
            out.push(format!("{:?}", r.next_token().expect("a checked item")));
        }
        out
    }

    #[test]
    fn reads_what_the_encoder_wrote() {
        let v = Value::Dict(vec![(
            Value::Tuple(vec![Value::Int((-3).into()), Value::None]),
            Value::List(vec![
                Value::Float(1.5),
                Value::Bytes(vec![0, 255]),
                Value::Set(vec![Value::Bool(true)]),
                Value::Int(crate::Int::from(num_bigint::BigInt::from(1u8) << 70)),
            ]),
        )]);
        let item = Item::from_value(&v).expect("encodes");
        assert_eq!(
            tokens(&item),
            [
                "Dict(1)",
                "Tuple(2)",
                "Int(-3)",
                "None",
                "List(4)",
                "Float(1.5)",
                "Bytes([0, 255])",
                "Set(1)",
                "Bool(true)",
                "BigInt([0, 0, 0, 0, 0, 0, 0, 0, 64])",
            ]
        );
    }

    #[test]
    fn writes_what_the_encoder_writes() {
        let v = Value::List(vec![
            Value::Int(i64::MIN.into()),
            Value::Int(i64::MAX.into()),
            Value::Str("hé".into()),
            Value::Complex(crate::Complex::new(1.0, -2.0)),
            Value::FrozenSet(vec![Value::Channel(ChannelRef::new(5))]),
        ]);
        let mut w = ItemWriter::new();
        for t in [
            ItemToken::List(5),
            ItemToken::Int(i64::MIN),
            ItemToken::Int(i64::MAX),
            ItemToken::Str("hé"),
            ItemToken::Complex(1.0, -2.0),
            ItemToken::FrozenSet(1),
        ] {
            w.token(t);
        }
        w.channel(ChannelRef::new(5));
        let item = w.finish().expect("one value");
        assert_eq!(item, Item::from_value(&v).expect("encodes"));
        assert_eq!(item.channels().len(), 1);
    }

    #[test]
    fn long_payloads_read_as_one_token() {
        let text = "x".repeat(10_000);
        let item = Item::try_from(Value::Str(text.clone())).expect("encodes");
        let mut r = item.reader();
        assert_eq!(r.next_token(), Ok(ItemToken::Str(&text)));
        assert!(r.is_done());
    }

    #[test]
    fn finish_refuses_what_is_not_one_value() {
        let mut w = ItemWriter::new();
        w.token(ItemToken::List(2));
        w.token(ItemToken::None);
        assert!(matches!(w.finish(), Err(EncodeError::Value(_))));

        let mut w = ItemWriter::new();
        w.token(ItemToken::Dict(1));
        w.token(ItemToken::List(0));
        w.token(ItemToken::None);
        assert_eq!(
            w.finish(),
            Err(EncodeError::Unhashable {
                found: "list",
                place: "dict key or set element"
            })
        );

        let mut w = ItemWriter::new();
        for _ in 0..=crate::MAX_DEPTH {
            w.token(ItemToken::List(1));
        }
        w.token(ItemToken::None);
        assert_eq!(w.finish(), Err(EncodeError::TooDeep));
    }

    #[test]
    fn a_reader_reports_bad_bytes_rather_than_panic() {
        for bytes in [&[8, 5][..], &[99], &[2, 0x80], &[4, 0, 0], &[7, 1, 0xff]] {
            let mut r = ItemReader {
                bytes,
                pos: 0,
                payload: None,
            };
            let mut failed = false;
            for _ in 0..4 {
                if r.is_done() {
                    break;
                }
                if r.next_token().is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "{bytes:?}");
        }
    }
}
