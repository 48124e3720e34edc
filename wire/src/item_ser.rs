//! Rust data straight to item bytes: what `to_value` then encoding the
//! `Value` would give, in one pass and without the `Value`.

use std::fmt;

use serde::ser::{self, Serialize};

use crate::codec::{put, varint_len, writer, Buf, Full, Writer};
use crate::item::tag;
use crate::ser::{BIGINT_NAME, CHANNEL_NEWTYPE_NAME, COMPLEX_NAME, FROZENSET_NAME, SET_NAME};
use crate::value::Stash;
use crate::{to_value, ChannelRef, EncodeError, Int, Value, ValueError, MAX_DEPTH};

/// Encodes `value`; at most `limit` bytes.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    limit: usize,
) -> Result<(Buf, Vec<ChannelRef>), EncodeError> {
    let mut bytes = Buf::default();
    let mut enc = Enc {
        w: writer(&mut bytes, limit),
        channels: Vec::new(),
    };
    let result = value.serialize(ItemSerializer::new(&mut enc, 0));
    let channels = once_each(std::mem::take(&mut enc.channels));
    let written = enc.w.output.written();
    match result {
        Ok(()) => Ok((bytes, channels)),
        Err(Error::Full) => Err(EncodeError::FrameTooLarge {
            // The encoder stops at the limit: this much at least.
            len: written as u64 + 1,
            max: u32::try_from(limit).unwrap_or(u32::MAX),
        }),
        Err(Error::Encode(e)) => Err(e),
        Err(Error::Value(e)) => Err(EncodeError::Value(e)),
    }
}

/// Encodes a [`Value`] that sits `depth` containers deep as [`encode`]
/// would (the same bytes, the same errors), walking it directly rather than
/// through serde.
pub(crate) fn encode_value(
    value: &Value,
    depth: usize,
    limit: usize,
) -> Result<(Buf, Vec<ChannelRef>), EncodeError> {
    let mut bytes = Buf::default();
    let mut enc = Enc {
        w: writer(&mut bytes, limit),
        channels: Vec::new(),
    };
    let result = enc.value(value, depth, None);
    let channels = once_each(std::mem::take(&mut enc.channels));
    let written = enc.w.output.written();
    match result {
        Ok(()) => Ok((bytes, channels)),
        Err(Error::Full) => Err(EncodeError::FrameTooLarge {
            len: written as u64 + 1,
            max: u32::try_from(limit).unwrap_or(u32::MAX),
        }),
        Err(Error::Encode(e)) => Err(e),
        Err(Error::Value(e)) => Err(EncodeError::Value(e)),
    }
}

/// Each channel once, by id; an attached reference wins over a bare one.
fn once_each(mut channels: Vec<ChannelRef>) -> Vec<ChannelRef> {
    if channels.len() > 1 {
        channels.sort_by_key(|c| (c.id(), c.attachment().is_none()));
        channels.dedup_by_key(|c| c.id());
    }
    channels
}

/// Why encoding stopped.
#[derive(Debug)]
pub(crate) enum Error {
    Full,
    Encode(EncodeError),
    Value(ValueError),
}

impl From<Full> for Error {
    fn from(_: Full) -> Error {
        Error::Full
    }
}

impl From<ValueError> for Error {
    fn from(e: ValueError) -> Error {
        Error::Value(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("the item outgrew its limit"),
            Error::Encode(e) => e.fmt(f),
            Error::Value(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error::Value(ValueError::Custom(msg.to_string()))
    }
}

/// The output, and the channels met on the way (with their attachments).
struct Enc<'a> {
    w: Writer<'a, Buf>,
    channels: Vec<ChannelRef>,
}

impl Enc<'_> {
    fn out(&mut self) -> &mut Vec<u8> {
        self.w.output.out.heap()
    }

    fn tag(&mut self, t: u8) -> Result<(), Error> {
        Ok(put(&mut self.w, &t)?)
    }

    fn int(&mut self, n: &Int) -> Result<(), Error> {
        match n.to_i64() {
            Some(small) => {
                self.tag(tag::INT)?;
                Ok(put(&mut self.w, &small)?)
            }
            None => {
                self.tag(tag::BIG_INT)?;
                Ok(put(
                    &mut self.w,
                    serde_bytes::Bytes::new(&n.to_signed_bytes_le()),
                )?)
            }
        }
    }

    /// `v` at `depth` containers; `hashed`: it is a dict key or set element.
    fn value(
        &mut self,
        v: &Value,
        depth: usize,
        hashed: Option<&'static str>,
    ) -> Result<(), Error> {
        let unhashable = |found| match hashed {
            Some(place) => Err(Error::Encode(EncodeError::Unhashable { found, place })),
            None => Ok(()),
        };
        let container = crate::deep::is_container(v);
        if container && depth >= MAX_DEPTH {
            return Err(Error::Encode(EncodeError::TooDeep));
        }
        match v {
            Value::None => self.tag(tag::NONE),
            Value::Bool(b) => {
                self.tag(tag::BOOL)?;
                Ok(put(&mut self.w, b)?)
            }
            Value::Int(n) => self.int(n),
            Value::Float(x) => {
                self.tag(tag::FLOAT)?;
                self.f64(*x)
            }
            Value::Complex(c) => {
                self.tag(tag::COMPLEX)?;
                self.f64(c.re)?;
                self.f64(c.im)
            }
            Value::Bytes(b) => {
                self.tag(tag::BYTES)?;
                Ok(put(&mut self.w, serde_bytes::Bytes::new(b))?)
            }
            Value::Str(s) => self.str(s),
            Value::List(items) => {
                unhashable("list")?;
                self.items(tag::LIST, items, depth, None)
            }
            // A tuple is as hashable as its elements.
            Value::Tuple(items) => self.items(tag::TUPLE, items, depth, hashed),
            Value::Set(items) => {
                unhashable("set")?;
                self.items(tag::SET, items, depth, Some("set element"))
            }
            Value::FrozenSet(items) => {
                self.items(tag::FROZENSET, items, depth, Some("frozenset element"))
            }
            Value::Dict(pairs) => {
                unhashable("dict")?;
                self.open(tag::DICT, Some(pairs.len()))?;
                for (k, x) in pairs {
                    self.value(k, depth + 1, Some("dict key"))?;
                    self.value(x, depth + 1, None)?;
                }
                Ok(())
            }
            Value::Channel(c) => {
                self.channels.push(c.clone());
                self.tag(tag::CHANNEL)?;
                Ok(put(&mut self.w, &c.id())?)
            }
        }
    }

    fn items(
        &mut self,
        t: u8,
        items: &[Value],
        depth: usize,
        hashed: Option<&'static str>,
    ) -> Result<(), Error> {
        self.open(t, Some(items.len()))?;
        for item in items {
            self.value(item, depth + 1, hashed)?;
        }
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), Error> {
        self.tag(tag::STR)?;
        Ok(put(&mut self.w, s)?)
    }

    fn f64(&mut self, x: f64) -> Result<(), Error> {
        Ok(put(&mut self.w, &x)?)
    }

    /// Writes a container's tag and count; returns where the count starts
    /// (to correct it if the elements turn out to be another number).
    fn open(&mut self, t: u8, len: Option<usize>) -> Result<usize, Error> {
        self.tag(t)?;
        let at = self.w.output.written();
        if let Some(n) = len {
            put(&mut self.w, &(n as u64))?;
        }
        Ok(at)
    }

    /// Puts the real count in place: `announced` was written at `at` (or
    /// nothing, when the length was not known up front).
    fn close(&mut self, at: usize, announced: Option<usize>, count: usize) -> Result<(), Error> {
        if announced == Some(count) {
            return Ok(());
        }
        let old = announced.map_or(0, |n| varint_len(n as u64));
        let mut fixed = Vec::with_capacity(10);
        put(&mut writer(&mut fixed, usize::MAX), &(count as u64))?;
        if self.w.output.written() - old + fixed.len() > self.w.output.limit {
            return Err(Error::Full);
        }
        let start = self.w.output.start + at;
        self.out().splice(start..start + old, fixed);
        Ok(())
    }
}

/// Where a value is being written: dict keys and set elements must be
/// hashable in Python (`Some(place)`), and a set's newtype marks the
/// sequence that follows.
#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Set,
    FrozenSet,
}

struct ItemSerializer<'e, 'a> {
    enc: &'e mut Enc<'a>,
    depth: usize,
    /// `Some("dict key")` etc. when the value must be hashable.
    hashed: Option<&'static str>,
    mode: Mode,
}

impl<'e, 'a> ItemSerializer<'e, 'a> {
    fn new(enc: &'e mut Enc<'a>, depth: usize) -> Self {
        ItemSerializer {
            enc,
            depth,
            hashed: None,
            mode: Mode::Plain,
        }
    }

    /// A container that Python cannot hash (list, dict, set) here.
    fn unhashable(&self, found: &'static str) -> Result<(), Error> {
        match self.hashed {
            Some(place) => Err(Error::Encode(EncodeError::Unhashable { found, place })),
            None => Ok(()),
        }
    }

    fn enter(&self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            Err(Error::Encode(EncodeError::TooDeep))
        } else {
            Ok(())
        }
    }

    fn plain_only(&self, what: &str) -> Result<(), Error> {
        match self.mode {
            Mode::Plain => Ok(()),
            Mode::Set | Mode::FrozenSet => Err(Error::Value(ValueError::Mismatch {
                expected: "a sequence".into(),
                found: what.into(),
            })),
        }
    }

    fn compound(
        self,
        t: u8,
        len: Option<usize>,
        elements: Option<&'static str>,
        keyed: Keys,
    ) -> Result<Compound<'e, 'a>, Error> {
        self.enter()?;
        let at = self.enc.open(t, len)?;
        Ok(Compound {
            enc: self.enc,
            depth: self.depth + 1,
            elements,
            at,
            announced: len,
            count: 0,
            keys: keyed,
        })
    }

    /// `{variant: payload}`: a one-pair dict whose payload the caller writes.
    fn variant(self, variant: &'static str) -> Result<ItemSerializer<'e, 'a>, Error> {
        self.unhashable("dict")?;
        self.enter()?;
        self.enc.open(tag::DICT, Some(1))?;
        self.enc.str(variant)?;
        Ok(ItemSerializer::new(self.enc, self.depth + 1))
    }

    /// A special newtype whose payload `to_value` understands best: complex
    /// numbers, big ints, channel ids (all small).
    fn special(self, name: &'static str, inner: Value) -> Result<(), Error> {
        let mismatch = |expected: &str, found: &Value| {
            Error::Value(ValueError::Mismatch {
                expected: expected.to_owned(),
                found: found.describe(),
            })
        };
        match (name, &inner) {
            (COMPLEX_NAME, Value::Tuple(parts)) => match parts.as_slice() {
                [Value::Float(re), Value::Float(im)] => {
                    self.enc.tag(tag::COMPLEX)?;
                    self.enc.f64(*re)?;
                    self.enc.f64(*im)
                }
                _ => Err(mismatch("(re, im) floats", &inner)),
            },
            (BIGINT_NAME, Value::Str(s)) => match s.parse::<Int>() {
                Ok(n) => self.enc.int(&n),
                Err(e) => Err(Error::Value(ValueError::Custom(e.to_string()))),
            },
            (CHANNEL_NEWTYPE_NAME, Value::Int(n)) => {
                let Some(id) = n.to_u64().and_then(|n| u32::try_from(n).ok()) else {
                    return Err(Error::Value(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: "a channel id (u32)",
                    }));
                };
                let mut channel = ChannelRef::new(id);
                channel.set_attachment(Stash::take(id));
                self.enc.channels.push(channel);
                self.enc.tag(tag::CHANNEL)?;
                Ok(put(&mut self.enc.w, &id)?)
            }
            (CHANNEL_NEWTYPE_NAME, _) => Err(mismatch("a u32 channel id", &inner)),
            _ => Err(mismatch(name, &inner)),
        }
    }
}

/// What a compound's fields are keyed by.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// Sequence elements.
    None,
    /// Map keys, serialized by the caller.
    Map,
    /// Struct field names, written as `Str`.
    Fields,
}

impl<'e, 'a> ser::Serializer for ItemSerializer<'e, 'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'e, 'a>;
    type SerializeTuple = Compound<'e, 'a>;
    type SerializeTupleStruct = Compound<'e, 'a>;
    type SerializeTupleVariant = Compound<'e, 'a>;
    type SerializeMap = Compound<'e, 'a>;
    type SerializeStruct = Compound<'e, 'a>;
    type SerializeStructVariant = Compound<'e, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.plain_only("bool")?;
        self.enc.tag(tag::BOOL)?;
        Ok(put(&mut self.enc.w, &v)?)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.plain_only("int")?;
        self.enc.tag(tag::INT)?;
        Ok(put(&mut self.enc.w, &v)?)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.plain_only("int")?;
        self.enc.int(&Int::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.plain_only("int")?;
        self.enc.int(&Int::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.plain_only("int")?;
        self.enc.int(&Int::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.plain_only("float")?;
        self.enc.tag(tag::FLOAT)?;
        self.enc.f64(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.plain_only("str")?;
        self.enc.str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.plain_only("bytes")?;
        self.enc.tag(tag::BYTES)?;
        Ok(put(&mut self.enc.w, serde_bytes::Bytes::new(v))?)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.plain_only("None")?;
        self.enc.tag(tag::NONE)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        match name {
            SET_NAME => {
                self.plain_only("set")?;
                self.unhashable("set")?;
                self.mode = Mode::Set;
                value.serialize(self)
            }
            FROZENSET_NAME => {
                self.plain_only("frozenset")?;
                self.mode = Mode::FrozenSet;
                value.serialize(self)
            }
            COMPLEX_NAME | BIGINT_NAME | CHANNEL_NEWTYPE_NAME => {
                self.plain_only(name)?;
                let inner = to_value(value)?;
                self.special(name, inner)
            }
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.plain_only("dict")?;
        value.serialize(self.variant(variant)?)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'e, 'a>, Error> {
        match self.mode {
            Mode::Plain => {
                self.unhashable("list")?;
                self.compound(tag::LIST, len, None, Keys::None)
            }
            Mode::Set => self.compound(tag::SET, len, Some("set element"), Keys::None),
            Mode::FrozenSet => {
                self.compound(tag::FROZENSET, len, Some("frozenset element"), Keys::None)
            }
        }
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'e, 'a>, Error> {
        self.plain_only("tuple")?;
        // A tuple is as hashable as its elements.
        let elements = self.hashed;
        self.compound(tag::TUPLE, Some(len), elements, Keys::None)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'e, 'a>, Error> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'e, 'a>, Error> {
        self.plain_only("dict")?;
        self.variant(variant)?.serialize_tuple(len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'e, 'a>, Error> {
        self.plain_only("dict")?;
        self.unhashable("dict")?;
        self.compound(tag::DICT, len, None, Keys::Map)
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'e, 'a>, Error> {
        self.plain_only("dict")?;
        self.unhashable("dict")?;
        self.compound(tag::DICT, Some(len), None, Keys::Fields)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'e, 'a>, Error> {
        self.plain_only("dict")?;
        self.variant(variant)?.serialize_struct("", len)
    }
}

/// A container being written: its elements (or pairs) follow its count.
struct Compound<'e, 'a> {
    enc: &'e mut Enc<'a>,
    /// The depth of the elements.
    depth: usize,
    /// `Some(place)`: elements must be hashable.
    elements: Option<&'static str>,
    at: usize,
    announced: Option<usize>,
    count: usize,
    keys: Keys,
}

impl Compound<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let mut s = ItemSerializer::new(self.enc, self.depth);
        s.hashed = self.elements;
        value.serialize(s)?;
        self.count += 1;
        Ok(())
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let mut s = ItemSerializer::new(self.enc, self.depth);
        s.hashed = Some("dict key");
        key.serialize(s)?;
        self.count += 1;
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(ItemSerializer::new(self.enc, self.depth))
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        debug_assert!(self.keys == Keys::Fields);
        self.enc.str(name)?;
        self.count += 1;
        self.value(value)
    }

    fn end(self) -> Result<(), Error> {
        self.enc.close(self.at, self.announced, self.count)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        Compound::end(self)
    }
}
