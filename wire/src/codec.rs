//! The primitive encodings of `WIRE.md` section 3, done by postcard.
//!
//! postcard writes and reads every varint, zigzag integer, float, byte
//! string and message envelope. What it cannot express is a self-describing
//! value (a tag, then a payload whose shape the tag decides) read with
//! offsets for error messages, so this module wraps postcard's serializer
//! and deserializer in two small flavors:
//!
//! - [`Sink`] appends to a `Vec<u8>` and refuses to grow a frame past its
//!   limit, so an item too large for the peer fails before it is copied;
//! - [`Cursor`] reads a slice and keeps its position in a shared [`Cell`],
//!   so the value walker can report *where* a byte stream went wrong, skip
//!   a payload it has measured, and rewind to describe what it found.

use std::cell::Cell;

use postcard::de_flavors::Flavor as DeFlavor;
use postcard::ser_flavors::Flavor as SerFlavor;
use serde::{Deserialize, Serialize};

use crate::DecodeError;

/// How many bytes an item holds without a heap allocation.
pub(crate) const INLINE: usize = 22;

/// The bytes of an item: small ones (most items: an int, a short string, a
/// small tuple) inline, larger ones on the heap.
#[derive(Clone)]
pub(crate) enum Buf {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Default for Buf {
    fn default() -> Buf {
        Buf::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl Buf {
    pub(crate) fn from_slice(data: &[u8]) -> Buf {
        let mut buf = Buf::default();
        buf.extend(data);
        buf
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Buf::Heap(v) => v,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    pub(crate) fn extend(&mut self, data: &[u8]) {
        // Large items write mostly here, small ones a few bytes inline.
        if let Buf::Heap(v) = self {
            v.extend_from_slice(data);
            return;
        }
        match self {
            Buf::Inline { len, bytes } if usize::from(*len) + data.len() <= INLINE => {
                let at = usize::from(*len);
                bytes[at..at + data.len()].copy_from_slice(data);
                // Fits: at most INLINE.
                *len = (at + data.len()) as u8;
            }
            _ => self.heap().extend_from_slice(data),
        }
    }

    /// The bytes as a `Vec` (moved to the heap if they were inline).
    pub(crate) fn heap(&mut self) -> &mut Vec<u8> {
        if let Buf::Inline { len, bytes } = self {
            let mut v = Vec::with_capacity(64);
            v.extend_from_slice(&bytes[..usize::from(*len)]);
            *self = Buf::Heap(v);
        }
        match self {
            Buf::Heap(v) => v,
            // Just made a heap buffer.
            Buf::Inline { .. } => unreachable!("spilled above"),
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Buf::Inline { len, bytes } => bytes[..usize::from(len)].to_vec(),
            Buf::Heap(v) => v,
        }
    }
}

/// Where a [`Sink`] appends.
pub(crate) trait Out {
    fn written(&self) -> usize;
    fn append(&mut self, data: &[u8]);
}

impl Out for Vec<u8> {
    #[inline]
    fn written(&self) -> usize {
        self.len()
    }
    fn append(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
}

impl Out for Buf {
    fn written(&self) -> usize {
        self.len()
    }
    fn append(&mut self, data: &[u8]) {
        self.extend(data);
    }
}

/// postcard's output flavor: appends to `out`, at most `limit` bytes past
/// `start`.
pub(crate) struct Sink<'a, O: Out = Vec<u8>> {
    pub(crate) out: &'a mut O,
    pub(crate) start: usize,
    pub(crate) limit: usize,
}

impl<'a, O: Out> Sink<'a, O> {
    pub(crate) fn new(out: &'a mut O, limit: usize) -> Sink<'a, O> {
        let start = out.written();
        Sink { out, start, limit }
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> usize {
        self.out.written() - self.start
    }

    #[inline]
    fn room(&self, n: usize) -> postcard::Result<()> {
        // (Generic over the output: a Vec for frames, a Buf for items.)
        if self.written().saturating_add(n) > self.limit {
            Err(postcard::Error::SerializeBufferFull)
        } else {
            Ok(())
        }
    }
}

impl<O: Out> SerFlavor for Sink<'_, O> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.room(data.len())?;
        self.out.append(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.room(1)?;
        self.out.append(&[data]);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// postcard's serializer writing into a [`Sink`].
pub(crate) type Writer<'a, O = Vec<u8>> = postcard::Serializer<Sink<'a, O>>;

pub(crate) fn writer<O: Out>(out: &mut O, limit: usize) -> Writer<'_, O> {
    postcard::Serializer {
        output: Sink::new(out, limit),
    }
}

/// Writes a primitive with postcard: `u64` as a varint, `i64` zigzagged,
/// `f64` as 8 bytes, `&str` and `serde_bytes::Bytes` length-prefixed.
#[inline]
pub(crate) fn put<T: Serialize + ?Sized, O: Out>(w: &mut Writer<'_, O>, v: &T) -> Result<(), Full> {
    v.serialize(w).map_err(|_| Full)
}

/// The only way writing a primitive fails: the sink's limit.
#[derive(Debug)]
pub(crate) struct Full;

/// postcard's input flavor: a slice whose read position lives in a `Cell`
/// the [`Reader`] shares.
struct Cursor<'de> {
    buf: &'de [u8],
    pos: &'de Cell<usize>,
}

impl<'de> DeFlavor<'de> for Cursor<'de> {
    type Remainder = ();
    type Source = &'de [u8];

    #[inline]
    fn pop(&mut self) -> postcard::Result<u8> {
        let pos = self.pos.get();
        match self.buf.get(pos) {
            Some(&b) => {
                self.pos.set(pos + 1);
                Ok(b)
            }
            None => Err(postcard::Error::DeserializeUnexpectedEnd),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.buf.len() - self.pos.get())
    }

    #[inline]
    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        let pos = self.pos.get();
        match self.buf.get(pos..pos.saturating_add(ct)) {
            Some(taken) => {
                self.pos.set(pos + ct);
                Ok(taken)
            }
            None => Err(postcard::Error::DeserializeUnexpectedEnd),
        }
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Reads the primitives of a value encoding with postcard, knowing where it
/// is. Offsets in errors count from the start of the frame body (`base` is
/// where `buf` starts in it).
pub(crate) struct Reader<'de> {
    de: postcard::Deserializer<'de, Cursor<'de>>,
    buf: &'de [u8],
    pos: &'de Cell<usize>,
    base: usize,
}

/// Runs `f` with a [`Reader`] over `buf` (which starts at byte `base` of its
/// frame body).
pub(crate) fn read<R>(buf: &[u8], base: usize, f: impl FnOnce(&mut Reader<'_>) -> R) -> R {
    let pos = Cell::new(0);
    let mut reader = Reader {
        de: postcard::Deserializer::from_flavor(Cursor { buf, pos: &pos }),
        buf,
        pos: &pos,
        base,
    };
    f(&mut reader)
}

impl<'de> Reader<'de> {
    /// The read position, as an offset in the frame body.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos.get()
    }

    /// The read position within this reader's slice.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos.get()
    }

    /// The next byte, not consumed.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos.get()).copied()
    }

    /// Moves the read position (to one this reader reported before).
    #[inline]
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos.set(pos.min(self.buf.len()));
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos.get()
    }

    /// Maps a postcard error of a primitive that started at `start`.
    fn fail(&self, e: postcard::Error, start: usize) -> DecodeError {
        match e {
            postcard::Error::DeserializeBadVarint => DecodeError::BadVarint {
                offset: self.base + start,
            },
            postcard::Error::DeserializeBadUtf8 => DecodeError::InvalidUtf8 {
                offset: self.base + start,
            },
            // Running out is the only other way a primitive fails.
            _ => DecodeError::UnexpectedEnd {
                offset: self.base + self.buf.len(),
                needed: 1,
            },
        }
    }

    #[inline]
    fn get<T: Deserialize<'de>>(&mut self) -> Result<T, DecodeError> {
        let start = self.pos.get();
        T::deserialize(&mut self.de).map_err(|e| self.fail(e, start))
    }

    /// Any `T`, by postcard's own rules (a message envelope).
    pub(crate) fn postcard<T: Deserialize<'de>>(&mut self) -> postcard::Result<T> {
        T::deserialize(&mut self.de)
    }

    /// One byte.
    #[inline]
    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        self.get::<u8>()
    }

    /// A varint of at most 10 bytes (a `u64`).
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        // One-byte varints (every tag, most counts) skip postcard's loop.
        match self.buf.get(self.pos.get()) {
            Some(&b) if b < 0x80 => {
                self.pos.set(self.pos.get() + 1);
                Ok(u64::from(b))
            }
            _ => self.get::<u64>(),
        }
    }

    /// A varint of at most 5 bytes (a `u32`, e.g. a channel id).
    #[inline]
    pub(crate) fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        self.get::<u32>()
    }

    /// A zigzag varint (an `i64`).
    #[inline]
    pub(crate) fn zigzag(&mut self) -> Result<i64, DecodeError> {
        self.get::<i64>()
    }

    /// 8 bytes, little-endian IEEE 754.
    #[inline]
    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        let start = self.pos.get();
        match self.get::<f64>() {
            Err(DecodeError::UnexpectedEnd { offset, .. }) => Err(DecodeError::UnexpectedEnd {
                offset,
                needed: 8 - (self.buf.len() - start).min(8),
            }),
            other => other,
        }
    }

    /// A count of items each taking at least `min_each` bytes, checked
    /// against the bytes left before anyone allocates for it.
    #[inline]
    pub(crate) fn count(&mut self, min_each: usize) -> Result<usize, DecodeError> {
        let offset = self.offset();
        let count = self.varint()?;
        let remaining = self.remaining();
        if count > (remaining / min_each.max(1)) as u64 {
            return Err(DecodeError::CountTooLarge {
                count,
                remaining,
                offset,
            });
        }
        // Fits: it is at most `remaining`.
        Ok(count as usize)
    }

    /// A length-prefixed byte string, borrowed.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'de [u8], DecodeError> {
        let n = self.count(1)?;
        let pos = self.pos.get();
        self.pos.set(pos + n);
        Ok(&self.buf[pos..pos + n])
    }

    /// A length-prefixed UTF-8 string, borrowed.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'de str, DecodeError> {
        let offset = self.offset();
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { offset })
    }
}

/// The body length of a varint (what postcard writes for a `u64`).
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros()).div_ceil(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put(&mut writer(&mut out, usize::MAX), &v).expect("fits");
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(read(&out, 0, |r| r.varint()), Ok(v));
        }
        let eleven: Vec<u8> = [0x80; 10].iter().chain(&[0]).copied().collect();
        assert_eq!(
            read(&eleven, 3, |r| r.varint()),
            Err(DecodeError::BadVarint { offset: 3 })
        );
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(read(&overflow, 0, |r| r.varint()).is_err());
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0x10], 0, |r| r.varint_u32()).is_err());
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0x0f], 0, |r| r.varint_u32()),
            Ok(u32::MAX)
        );
        // Non-minimal but within the length limit is accepted (postcard does).
        assert_eq!(read(&[0x80, 0x00], 0, |r| r.varint()), Ok(0));
        assert_eq!(
            read(&[0x80], 0, |r| r.varint()),
            Err(DecodeError::UnexpectedEnd {
                offset: 1,
                needed: 1
            })
        );
    }

    #[test]
    fn zigzag_and_floats() {
        for n in [0i64, -1, 1, -2, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put(&mut writer(&mut out, usize::MAX), &n).expect("fits");
            assert_eq!(read(&out, 0, |r| r.zigzag()), Ok(n));
        }
        let mut out = Vec::new();
        put(&mut writer(&mut out, usize::MAX), &-1i64).expect("fits");
        assert_eq!(out, [1]);
        assert_eq!(
            read(&[0, 0, 0], 4, |r| r.f64()),
            Err(DecodeError::UnexpectedEnd {
                offset: 7,
                needed: 5
            })
        );
    }

    #[test]
    fn sink_refuses_past_its_limit() {
        let mut out = vec![9];
        let mut w = writer(&mut out, 3);
        assert!(put(&mut w, &300u64).is_ok());
        assert!(put(&mut w, "ab").is_err());
        assert!(out.len() <= 4, "{out:?}");
    }

    #[test]
    fn counts_and_strings() {
        assert_eq!(
            read(&[5, 1, 2], 2, |r| r.count(1)),
            Err(DecodeError::CountTooLarge {
                count: 5,
                remaining: 2,
                offset: 2
            })
        );
        assert_eq!(
            read(&[2, b'h', b'i', 7], 0, |r| r.str().map(str::to_owned)),
            Ok("hi".to_owned())
        );
        assert_eq!(
            read(&[1, 0xff], 1, |r| r.str().map(drop)),
            Err(DecodeError::InvalidUtf8 { offset: 1 })
        );
    }
}
