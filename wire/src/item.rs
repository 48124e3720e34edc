//! `Item`: one channel item as it travels, the bytes of an encoded `Value`.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{read, Buf, Reader};
use crate::{ChannelRef, DecodeError, EncodeError, Value, ValueError, MAX_DEPTH};

/// The least budget a [`Value`] decoded from an item gets, in bytes
/// (64 MiB); see [`Item::value_budget`].
pub const DEFAULT_VALUE_BUDGET: usize = 64 << 20;

/// A received top-level `bytes` or `str` at least this long is kept as its
/// bare payload, so that taking it moves the buffer (no copy).
const PAYLOAD_MIN: usize = 4096;

/// One channel item in its wire form: the encoding of a [`Value`]
/// (`WIRE.md` section 6), checked to be well-formed.
///
/// An item is what a `ChannelData` message carries. Received items stay in
/// this form until the application takes them, so a queue of items costs
/// what their bytes cost, whatever they hold; then [`Item::decode`] builds
/// the application's Rust type straight from the bytes (no `Value` tree in
/// between), or [`Item::to_value`] builds a [`Value`] within a budget.
/// Sending goes the other way: [`Item::encode`] writes any `Serialize` type
/// as the bytes its `Value` would encode to.
///
/// Channels inside an item are listed by [`Item::channels`], so that the
/// gateway can attach its live channel handles before decoding.
///
/// # Examples
///
/// ```
/// use execnet_wire::{Item, Value};
///
/// let item = Item::encode(&(1u8, "a", vec![2.5])).unwrap();
/// assert_eq!(*item.encoded(), [9, 3, 2, 2, 7, 1, b'a', 8, 1, 4, 0, 0, 0, 0, 0, 0, 4, 64]);
///
/// // Straight into a Rust type, leniently as Python would (a tuple into a Vec).
/// let back: (u8, String, Vec<f64>) = item.decode().unwrap();
/// assert_eq!(back, (1, "a".to_owned(), vec![2.5]));
/// // Or as a Value.
/// assert_eq!(item.to_value().unwrap().repr(), "(1, 'a', [2.5])");
///
/// // Bytes from a peer are checked before they become an item.
/// assert!(Item::from_bytes(vec![8, 1]).is_err());
/// ```
#[derive(Clone)]
pub struct Item {
    form: Form,
    channels: Vec<ChannelRef>,
}

#[derive(Clone)]
pub(crate) enum Form {
    /// The encoding of a value (inline when short).
    Encoded(Buf),
    /// A long top-level `bytes` (tag 6) or `str` (tag 7, checked UTF-8):
    /// the payload alone, which becomes the receiver's `Vec<u8>` or `String`.
    Payload(u8, Vec<u8>),
}

impl Item {
    /// Encodes `value` as the bytes of the [`Value`] that
    /// [`to_value`](crate::to_value) would make of it, without building that
    /// `Value`; the item may be at most [`DEFAULT_MAX_FRAME`](crate::DEFAULT_MAX_FRAME)
    /// bytes.
    ///
    /// Fails with [`EncodeError::Unhashable`] for a dict key or set element
    /// Python cannot hash, [`EncodeError::TooDeep`] past
    /// [`MAX_DEPTH`] nested containers, [`EncodeError::Value`] when the
    /// value's `Serialize` fails.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Item, EncodeError> {
        Item::encode_limited(value, crate::DEFAULT_MAX_FRAME as usize)
    }

    /// As [`Item::encode`], refusing an item longer than `limit` bytes
    /// ([`EncodeError::FrameTooLarge`]) before writing more than that.
    pub fn encode_limited<T: Serialize + ?Sized>(
        value: &T,
        limit: usize,
    ) -> Result<Item, EncodeError> {
        let (bytes, channels) = crate::item_ser::encode(value, limit)?;
        Ok(Item {
            form: Form::Encoded(bytes),
            channels,
        })
    }

    /// The item of a `bytes` value holding `data` (what
    /// `Item::encode(serde_bytes::Bytes::new(data))` gives).
    pub fn bytes(data: &[u8]) -> Item {
        let mut encoded = Buf::default();
        encoded.extend(&[tag::BYTES]);
        let mut n = data.len() as u64;
        while n >= 0x80 {
            encoded.extend(&[(n as u8) | 0x80]);
            n >>= 7;
        }
        encoded.extend(&[n as u8]);
        encoded.extend(data);
        Item {
            form: Form::Encoded(encoded),
            channels: Vec::new(),
        }
    }

    /// Encodes a [`Value`] (as [`Item::encode`] does, a little faster).
    pub fn from_value(value: &Value) -> Result<Item, EncodeError> {
        let (bytes, channels) =
            crate::item_ser::encode_value(value, 0, crate::DEFAULT_MAX_FRAME as usize)?;
        Ok(Item {
            form: Form::Encoded(bytes),
            channels,
        })
    }

    /// Checks that `bytes` are the encoding of exactly one [`Value`]
    /// (`WIRE.md` sections 6 and 8: tags, lengths, UTF-8, depth, hashable
    /// keys) and makes them an item. Nothing is allocated but the list of
    /// channels found.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Item, DecodeError> {
        let channels = check(&bytes, 0)?;
        Ok(Item {
            form: Form::Encoded(Buf::Heap(bytes)),
            channels,
        })
    }

    /// As [`Item::from_bytes`], for bytes that start at byte `base` of a
    /// frame body (error offsets count from the body's start); copies them.
    pub(crate) fn parse(bytes: &[u8], base: usize) -> Result<Item, DecodeError> {
        let channels = check(bytes, base)?;
        let form = match payload(bytes) {
            Some((t, payload)) => Form::Payload(t, payload.to_vec()),
            None => Form::Encoded(Buf::from_slice(bytes)),
        };
        Ok(Item { form, channels })
    }

    /// An item made of bytes this crate checked before (a queued item).
    pub(crate) fn from_checked(bytes: &[u8], has_channels: bool) -> Item {
        let channels = if has_channels {
            check(bytes, 0).unwrap_or_default()
        } else {
            Vec::new()
        };
        Item {
            form: Form::Encoded(Buf::from_slice(bytes)),
            channels,
        }
    }

    #[cfg(test)]
    pub(crate) fn form(&self) -> &Form {
        &self.form
    }

    /// The encoded bytes (`WIRE.md` section 6).
    pub fn encoded(&self) -> Cow<'_, [u8]> {
        match &self.form {
            Form::Encoded(bytes) => Cow::Borrowed(bytes.as_slice()),
            Form::Payload(..) => {
                let mut out = Vec::with_capacity(self.len());
                self.write_to(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// The encoded bytes, moved out.
    pub fn into_encoded(self) -> Vec<u8> {
        match self.form {
            Form::Encoded(bytes) => bytes.into_vec(),
            Form::Payload(..) => self.encoded().into_owned(),
        }
    }

    /// Appends the encoded bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.form {
            Form::Encoded(bytes) => out.extend_from_slice(bytes.as_slice()),
            Form::Payload(t, payload) => {
                out.push(*t);
                let mut n = payload.len() as u64;
                while n >= 0x80 {
                    out.push((n as u8) | 0x80);
                    n >>= 7;
                }
                out.push(n as u8);
                out.extend_from_slice(payload);
            }
        }
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        match &self.form {
            Form::Encoded(bytes) => bytes.len(),
            Form::Payload(_, payload) => {
                1 + crate::codec::varint_len(payload.len() as u64) + payload.len()
            }
        }
    }

    /// Whether the item has no bytes (never true: the smallest value, `None`,
    /// is one byte).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channels named inside the item, each once, by id. Items encoded
    /// from Rust data carry the attachments their channel handles set;
    /// received items carry ids only.
    pub fn channels(&self) -> &[ChannelRef] {
        &self.channels
    }

    /// The channel list, to set attachments (e.g. live handles) that
    /// [`Item::decode`] then hands to channel types by id.
    pub fn channels_mut(&mut self) -> &mut [ChannelRef] {
        &mut self.channels
    }

    /// How many bytes a [`Value`] decoded from this item may take: the
    /// larger of [`DEFAULT_VALUE_BUDGET`] and four times the item's length.
    ///
    /// Every element of a `Value` takes at least
    /// `size_of::<Value>()` bytes however few bytes it had on the wire (a
    /// `None` is one byte), so a hostile peer could otherwise make a 128 MiB
    /// item cost 4 GiB as a `Value`.
    pub fn value_budget(&self) -> usize {
        DEFAULT_VALUE_BUDGET.max(self.len().saturating_mul(4))
    }

    /// Decodes the item into `T`, straight from the bytes, as
    /// [`from_value`](crate::from_value) would convert its `Value` (the same
    /// leniency, the same errors). A `Value` inside `T` gets
    /// [`Item::value_budget`].
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ValueError> {
        self.decode_with_budget(self.value_budget())
    }

    /// As [`Item::decode`], with a budget of `value_budget` bytes for the
    /// `Value`s inside `T` ([`ValueError::OverBudget`] beyond it).
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::{Item, Value, ValueError};
    ///
    /// let item = Item::encode(&vec![(); 1000]).unwrap(); // a thousand Nones, 1003 bytes
    /// assert_eq!(item.decode::<Vec<()>>().unwrap().len(), 1000); // typed: free
    /// assert_eq!(
    ///     item.decode_with_budget::<Value>(4096),
    ///     Err(ValueError::OverBudget { budget: 4096 }) // 32 bytes per Value
    /// );
    /// ```
    pub fn decode_with_budget<T: DeserializeOwned>(
        &self,
        value_budget: usize,
    ) -> Result<T, ValueError> {
        crate::item_de::decode(&self.encoded(), &self.channels, value_budget)
    }

    /// The item as a [`Value`], within [`Item::value_budget`].
    pub fn to_value(&self) -> Result<Value, ValueError> {
        crate::item_de::to_value(&self.encoded(), &self.channels, self.value_budget())
    }

    /// As [`Item::decode`], consuming the item: a long `bytes` or `str` item
    /// becomes the `Vec<u8>`/`ByteBuf`/`String`/`Value` without a copy.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::Item;
    ///
    /// let item = Item::bytes(&[7; 100_000]);
    /// let bytes: serde_bytes::ByteBuf = item.into_decoded().unwrap();
    /// assert_eq!(bytes.len(), 100_000);
    /// ```
    pub fn into_decoded<T: DeserializeOwned>(self) -> Result<T, ValueError> {
        let budget = self.value_budget();
        self.into_decoded_with_budget(budget)
    }

    /// As [`Item::decode_with_budget`], consuming the item (see
    /// [`Item::into_decoded`]).
    pub fn into_decoded_with_budget<T: DeserializeOwned>(
        self,
        value_budget: usize,
    ) -> Result<T, ValueError> {
        match self.form {
            Form::Payload(t, payload) => crate::item_de::decode_payload(t, payload, value_budget),
            Form::Encoded(bytes) => {
                crate::item_de::decode(bytes.as_slice(), &self.channels, value_budget)
            }
        }
    }

    /// The item as a [`Value`], consuming it.
    pub fn into_value(self) -> Result<Value, ValueError> {
        match &self.form {
            Form::Encoded(bytes) => {
                crate::item_de::to_value(bytes.as_slice(), &self.channels, self.value_budget())
            }
            Form::Payload(..) => self.into_decoded(),
        }
    }
}

/// A top-level `bytes` or `str` long enough to keep as its bare payload
/// (`bytes` holds one checked value).
fn payload(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let t = *bytes.first()?;
    if bytes.len() <= PAYLOAD_MIN || !(t == tag::BYTES || t == tag::STR) {
        return None;
    }
    read(&bytes[1..], 1, |r| r.count(1).ok().map(|_| r.pos())).map(|start| (t, &bytes[1 + start..]))
}

impl PartialEq for Item {
    /// Same encoding (attachments are not compared).
    fn eq(&self, other: &Item) -> bool {
        match (&self.form, &other.form) {
            (Form::Encoded(a), Form::Encoded(b)) => a.as_slice() == b.as_slice(),
            (Form::Payload(t, a), Form::Payload(u, b)) => t == u && a == b,
            _ => self.encoded() == other.encoded(),
        }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Item({})",
            crate::item_de::describe(&self.encoded(), &self.channels)
        )
    }
}

impl Serialize for Item {
    /// As the [`Value`] it holds (in a compact format such as postcard, that
    /// is these very bytes; the frame codec copies them without this).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.to_value().map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Item {
    /// As a [`Value`] (within its budget), then encoded.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Item::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<Value> for Item {
    type Error = EncodeError;

    /// As [`Item::from_value`]; a long `bytes` or `str` moves its buffer into
    /// the item instead of copying it.
    fn try_from(mut value: Value) -> Result<Item, EncodeError> {
        let limit = crate::DEFAULT_MAX_FRAME as usize;
        let payload = match &mut value {
            Value::Bytes(b) if b.len() > PAYLOAD_MIN && b.len() < limit => {
                Some((tag::BYTES, std::mem::take(b)))
            }
            Value::Str(s) if s.len() > PAYLOAD_MIN && s.len() < limit => {
                Some((tag::STR, std::mem::take(s).into_bytes()))
            }
            _ => None,
        };
        match payload {
            Some((t, payload)) => Ok(Item {
                form: Form::Payload(t, payload),
                channels: Vec::new(),
            }),
            None => Item::from_value(&value),
        }
    }
}

impl TryFrom<&Value> for Item {
    type Error = EncodeError;

    fn try_from(value: &Value) -> Result<Item, EncodeError> {
        Item::from_value(value)
    }
}

/// Checks one value filling all of `bytes`; returns its channels, each
/// once (a peer may name one channel a million times in a few bytes each).
fn check(bytes: &[u8], base: usize) -> Result<Vec<ChannelRef>, DecodeError> {
    read(bytes, base, |r| {
        let mut ids = Vec::new();
        skip_value(r, 0, &mut ids)?;
        if r.remaining() > 0 {
            return Err(DecodeError::TrailingBytes {
                offset: r.offset(),
                extra: r.remaining(),
            });
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids.into_iter().map(ChannelRef::new).collect())
    })
}

/// Value tags (`WIRE.md` section 6).
pub(crate) mod tag {
    pub const NONE: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const BIG_INT: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const COMPLEX: u8 = 5;
    pub const BYTES: u8 = 6;
    pub const STR: u8 = 7;
    pub const LIST: u8 = 8;
    pub const TUPLE: u8 = 9;
    pub const DICT: u8 = 10;
    pub const SET: u8 = 11;
    pub const FROZENSET: u8 = 12;
    pub const CHANNEL: u8 = 13;
}

/// The Python type name of a value tag.
pub(crate) fn type_name(t: u64) -> &'static str {
    match t {
        0 => "NoneType",
        1 => "bool",
        2 | 3 => "int",
        4 => "float",
        5 => "complex",
        6 => "bytes",
        7 => "str",
        8 => "list",
        9 => "tuple",
        10 => "dict",
        11 => "set",
        12 => "frozenset",
        13 => "Channel",
        _ => "unknown",
    }
}

/// Walks one value without building it, checking everything `WIRE.md`
/// section 8 asks of a receiver; collects its channels. Returns the part
/// Python could not hash (`Some("list")`), if any.
///
/// The recursion is bounded: a container deeper than [`MAX_DEPTH`] is an
/// error before it is entered.
pub(crate) fn skip_value(
    r: &mut Reader<'_>,
    depth: usize,
    channels: &mut Vec<u32>,
) -> Result<Option<&'static str>, DecodeError> {
    let offset = r.offset();
    let t = r.varint()?;
    let container = (u64::from(tag::LIST)..=u64::from(tag::FROZENSET)).contains(&t);
    if container && depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep { offset });
    }
    match u8::try_from(t).unwrap_or(u8::MAX) {
        tag::NONE => {}
        tag::BOOL => {
            let byte = r.byte()?;
            if byte > 1 {
                return Err(DecodeError::BadBool {
                    byte,
                    offset: r.offset() - 1,
                });
            }
        }
        tag::INT => {
            r.zigzag()?;
        }
        tag::BIG_INT | tag::BYTES => {
            r.bytes()?;
        }
        tag::FLOAT => {
            r.f64()?;
        }
        tag::COMPLEX => {
            r.f64()?;
            r.f64()?;
        }
        tag::STR => {
            r.str()?;
        }
        tag::LIST => {
            skip_items(r, depth, channels, None)?;
            return Ok(Some("list"));
        }
        tag::TUPLE => return skip_items(r, depth, channels, None),
        tag::SET => {
            skip_items(r, depth, channels, Some(()))?;
            return Ok(Some("set"));
        }
        tag::FROZENSET => {
            skip_items(r, depth, channels, Some(()))?;
        }
        tag::DICT => {
            let n = r.count(2)?;
            for _ in 0..n {
                skip_hashable(r, depth, channels)?;
                skip_value(r, depth + 1, channels)?;
            }
            return Ok(Some("dict"));
        }
        tag::CHANNEL => channels.push(r.varint_u32()?),
        _ => return Err(DecodeError::UnknownValueTag { tag: t, offset }),
    }
    Ok(None)
}

/// A container's elements; `hashed`: each must be hashable. Returns the
/// first unhashable part (what makes a tuple unhashable).
fn skip_items(
    r: &mut Reader<'_>,
    depth: usize,
    channels: &mut Vec<u32>,
    hashed: Option<()>,
) -> Result<Option<&'static str>, DecodeError> {
    let n = r.count(1)?;
    let mut unhashable = None;
    for _ in 0..n {
        let part = if hashed.is_some() {
            skip_hashable(r, depth, channels)?
        } else {
            skip_value(r, depth + 1, channels)?
        };
        unhashable = unhashable.or(part);
    }
    Ok(unhashable)
}

fn skip_hashable(
    r: &mut Reader<'_>,
    depth: usize,
    channels: &mut Vec<u32>,
) -> Result<Option<&'static str>, DecodeError> {
    let offset = r.offset();
    match skip_value(r, depth + 1, channels)? {
        Some(found) => Err(DecodeError::Unhashable { found, offset }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_what_a_receiver_must() {
        let err = |b: &[u8]| Item::from_bytes(b.to_vec()).unwrap_err();
        assert_eq!(
            err(&[99]),
            DecodeError::UnknownValueTag { tag: 99, offset: 0 }
        );
        assert_eq!(err(&[1, 2]), DecodeError::BadBool { byte: 2, offset: 1 });
        assert_eq!(err(&[7, 1, 0xff]), DecodeError::InvalidUtf8 { offset: 1 });
        assert_eq!(
            err(&[8, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            DecodeError::CountTooLarge {
                count: u64::from(u32::MAX),
                remaining: 0,
                offset: 1
            }
        );
        // {[]: None}
        assert_eq!(
            err(&[10, 1, 8, 0, 0]),
            DecodeError::Unhashable {
                found: "list",
                offset: 2
            }
        );
        // {(1, {}): None}: a tuple holding a dict is unhashable too.
        assert_eq!(
            err(&[11, 1, 9, 2, 2, 2, 10, 0]),
            DecodeError::Unhashable {
                found: "dict",
                offset: 2
            }
        );
        assert_eq!(
            err(&[0, 0]),
            DecodeError::TrailingBytes {
                offset: 1,
                extra: 1
            }
        );
        assert_eq!(
            err(&[4, 0]),
            DecodeError::UnexpectedEnd {
                offset: 2,
                needed: 7
            }
        );
    }

    #[test]
    fn lists_channels() {
        let item = Item::from_bytes(vec![9, 3, 13, 6, 8, 1, 13, 4, 13, 6]).expect("valid");
        let ids: Vec<u32> = item.channels().iter().map(ChannelRef::id).collect();
        assert_eq!(ids, [4, 6]);
    }

    #[test]
    fn budget_grows_with_the_item() {
        let small = Item::from_bytes(vec![0]).expect("valid");
        assert_eq!(small.value_budget(), DEFAULT_VALUE_BUDGET);
        let mut big = vec![6, 0x80, 0x80, 0x80, 0x10];
        big.resize(5 + (32 << 20), 0);
        let big = Item::from_bytes(big).expect("valid");
        assert_eq!(big.value_budget(), 4 * big.len());
    }

    #[test]
    fn long_bytes_and_str_keep_their_payload() {
        for (t, text) in [(tag::BYTES, "é".repeat(3000)), (tag::STR, "é".repeat(3000))] {
            let mut encoded = vec![t, 0xf0, 0x2e];
            encoded.extend_from_slice(text.as_bytes());
            let item = Item::parse(&encoded, 0).expect("valid");
            assert!(matches!(item.form(), Form::Payload(..)));
            assert_eq!(item.len(), encoded.len());
            assert_eq!(*item.encoded(), encoded[..]);
            let by_ref = item.to_value().expect("decodes");
            assert_eq!(item.clone().into_value().expect("decodes"), by_ref);
            // Made from the Value, the item is the same, its buffer moved.
            assert_eq!(Item::try_from(by_ref.clone()).as_ref(), Ok(&item));
            if t == tag::STR {
                assert_eq!(item.into_decoded::<String>().expect("a str"), text);
            } else {
                let b: serde_bytes::ByteBuf = item.into_decoded().expect("bytes");
                assert_eq!(b.into_vec(), text.into_bytes());
            }
        }
    }
}
