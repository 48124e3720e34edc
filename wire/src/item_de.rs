//! Item bytes straight into Rust data: what decoding the `Value` then
//! `from_value` would give, in one pass and without the `Value` tree.
//!
//! The item was checked when it arrived ([`Item::from_bytes`](crate::Item)),
//! so malformed bytes are not expected here; they are still errors, never
//! panics. The one thing built here whose size the peer controls is a
//! `Value` (every element takes `size_of::<Value>()` bytes, however small
//! on the wire), so that is charged against a budget before allocating.

use std::cell::Cell;

use serde::de::value::{SeqDeserializer, U32Deserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::codec::{read, Reader};
use crate::de::RAW_VALUE;
use crate::item::{skip_value, tag, type_name};
use crate::ser::{CHANNEL_NEWTYPE_NAME, COMPLEX_NAME, INT_NAME, VALUE_NAME};
use crate::value::Stash;
use crate::{ChannelRef, Complex, DecodeError, Int, Value, ValueError, MAX_DEPTH};

/// What an allocation costs beyond its bytes (the allocator's bookkeeping
/// and rounding), for the budget.
const ALLOC_OVERHEAD: usize = 16;
/// The budget for describing a value in an error message.
const DESCRIBE_BUDGET: usize = 64 * 1024;

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    channels: &[ChannelRef],
    budget: usize,
) -> Result<T, ValueError> {
    read(bytes, 0, |r| {
        let ctx = Ctx::new(channels, budget);
        T::deserialize(ItemDeserializer {
            r,
            ctx: &ctx,
            depth: 0,
        })
    })
}

/// Builds a [`Value`] straight from the bytes, within `budget`.
pub(crate) fn to_value(
    bytes: &[u8],
    channels: &[ChannelRef],
    budget: usize,
) -> Result<Value, ValueError> {
    read(bytes, 0, |r| {
        let ctx = Ctx::new(channels, budget);
        ItemDeserializer {
            r,
            ctx: &ctx,
            depth: 0,
        }
        .build()
    })
}

/// Decodes a long top-level `bytes` or `str` kept as its bare payload: the
/// payload becomes the value without a copy, and `from_value` (whose
/// leniency and errors are those of [`decode`]) takes it from there.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    t: u8,
    payload: Vec<u8>,
    budget: usize,
) -> Result<T, ValueError> {
    if payload.len().saturating_add(ALLOC_OVERHEAD) > budget {
        return Err(ValueError::OverBudget { budget });
    }
    let value = if t == tag::STR {
        // Checked when the item arrived; still an error, never a panic.
        Value::Str(String::from_utf8(payload).map_err(|e| {
            malformed(DecodeError::InvalidUtf8 {
                offset: e.utf8_error().valid_up_to(),
            })
        })?)
    } else {
        Value::Bytes(payload)
    };
    crate::from_value(value)
}

/// A short description of an item: the type and the start of its repr.
pub(crate) fn describe(bytes: &[u8], channels: &[ChannelRef]) -> String {
    read(bytes, 0, |r| {
        let ctx = Ctx::new(channels, DESCRIBE_BUDGET);
        ItemDeserializer {
            r,
            ctx: &ctx,
            depth: 0,
        }
        .describe_at(0)
    })
}

/// Shared by the deserializers of one item.
struct Ctx<'c> {
    channels: &'c [ChannelRef],
    budget: usize,
    left: Cell<usize>,
}

impl<'c> Ctx<'c> {
    fn new(channels: &'c [ChannelRef], budget: usize) -> Ctx<'c> {
        Ctx {
            channels,
            budget,
            left: Cell::new(budget),
        }
    }

    /// Takes `n` bytes of the `Value` budget, before they are allocated.
    fn charge(&self, n: usize) -> Result<(), ValueError> {
        match self.left.get().checked_sub(n) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(ValueError::OverBudget {
                budget: self.budget,
            }),
        }
    }

    fn channel(&self, id: u32) -> ChannelRef {
        let attachment = self
            .channels
            .iter()
            .find(|c| c.id() == id && c.attachment().is_some())
            .and_then(|c| c.attachment().cloned());
        let mut c = ChannelRef::new(id);
        c.set_attachment(attachment);
        c
    }
}

fn malformed(e: DecodeError) -> ValueError {
    ValueError::Custom(format!("malformed item: {e}"))
}

/// A value's tag and what comes with it: a scalar's payload, a container's
/// count.
enum Head<'de> {
    None,
    Bool(bool),
    Int(i64),
    BigInt(&'de [u8]),
    Float(f64),
    Complex(f64, f64),
    Bytes(&'de [u8]),
    Str(&'de str),
    /// List, Tuple, Set, FrozenSet: the tag and the count.
    Items(u8, usize),
    Dict(usize),
    Channel(u32),
}

impl Head<'_> {
    fn int(&self) -> Option<Int> {
        match self {
            Head::Int(n) => Some(Int::from(*n)),
            Head::BigInt(b) => Some(Int::from_signed_bytes_le(b)),
            _ => None,
        }
    }
}

struct ItemDeserializer<'r, 'de> {
    r: &'r mut Reader<'de>,
    ctx: &'r Ctx<'r>,
    depth: usize,
}

impl<'r, 'de> ItemDeserializer<'r, 'de> {
    fn child(&mut self) -> ItemDeserializer<'_, 'de> {
        ItemDeserializer {
            r: self.r,
            ctx: self.ctx,
            depth: self.depth + 1,
        }
    }

    /// Reads the next value's head; returns it with where the value starts.
    #[inline]
    fn head(&mut self) -> Result<(Head<'de>, usize), ValueError> {
        let start = self.r.pos();
        let head = self.read_head().map_err(malformed)?;
        if matches!(head, Head::Items(..) | Head::Dict(_)) && self.depth >= MAX_DEPTH {
            return Err(ValueError::TooDeep);
        }
        Ok((head, start))
    }

    #[inline]
    fn read_head(&mut self) -> Result<Head<'de>, DecodeError> {
        let r = &mut *self.r;
        let offset = r.offset();
        let t = r.varint()?;
        Ok(match u8::try_from(t).unwrap_or(u8::MAX) {
            tag::NONE => Head::None,
            tag::BOOL => Head::Bool(r.byte()? != 0),
            tag::INT => Head::Int(r.zigzag()?),
            tag::BIG_INT => Head::BigInt(r.bytes()?),
            tag::FLOAT => Head::Float(r.f64()?),
            tag::COMPLEX => Head::Complex(r.f64()?, r.f64()?),
            tag::BYTES => Head::Bytes(r.bytes()?),
            tag::STR => Head::Str(r.str()?),
            t @ (tag::LIST | tag::TUPLE | tag::SET | tag::FROZENSET) => Head::Items(t, r.count(1)?),
            tag::DICT => Head::Dict(r.count(2)?),
            tag::CHANNEL => Head::Channel(r.varint_u32()?),
            _ => return Err(DecodeError::UnknownValueTag { tag: t, offset }),
        })
    }

    /// The value starting at `start`, described for an error message.
    fn describe_at(&mut self, start: usize) -> String {
        self.r.seek(start);
        let ctx = Ctx::new(self.ctx.channels, DESCRIBE_BUDGET);
        let mut d = ItemDeserializer {
            r: &mut *self.r,
            ctx: &ctx,
            depth: self.depth,
        };
        if let Ok(v) = d.build() {
            return v.describe();
        }
        self.r.seek(start);
        match self.read_head() {
            Ok(Head::Items(t, n)) => format!("{} of {n} elements", type_name(t.into())),
            Ok(Head::Dict(n)) => format!("dict of {n} entries"),
            Ok(Head::Str(s)) => format!("str of {} bytes", s.len()),
            Ok(Head::Bytes(b)) => format!("bytes of {} bytes", b.len()),
            Ok(Head::BigInt(b)) => format!("int of {} bytes", b.len()),
            Ok(_) => "a value".to_owned(),
            Err(e) => format!("malformed bytes ({e})"),
        }
    }

    fn mismatch(&mut self, expected: impl Into<String>, start: usize) -> ValueError {
        ValueError::Mismatch {
            expected: expected.into(),
            found: self.describe_at(start),
        }
    }

    /// Builds the next value as a [`Value`], within the budget.
    fn build(&mut self) -> Result<Value, ValueError> {
        let ctx = self.ctx;
        let offset = self.r.offset();
        let t = self.r.varint().map_err(malformed)?;
        let t = u8::try_from(t).unwrap_or(u8::MAX);
        if (tag::LIST..=tag::FROZENSET).contains(&t) && self.depth >= MAX_DEPTH {
            return Err(ValueError::TooDeep);
        }
        let r = &mut *self.r;
        Ok(match t {
            tag::NONE => Value::None,
            tag::BOOL => Value::Bool(r.byte().map_err(malformed)? != 0),
            tag::INT => Value::from(r.zigzag().map_err(malformed)?),
            tag::FLOAT => Value::Float(r.f64().map_err(malformed)?),
            tag::STR => {
                let s = r.str().map_err(malformed)?;
                charge_bytes(ctx, s.len())?;
                Value::Str(s.to_owned())
            }
            tag::BYTES => {
                let b = r.bytes().map_err(malformed)?;
                charge_bytes(ctx, b.len())?;
                Value::Bytes(b.to_vec())
            }
            tag::BIG_INT => {
                let b = r.bytes().map_err(malformed)?;
                ctx.charge(std::mem::size_of::<num_bigint::BigInt>() + b.len() + ALLOC_OVERHEAD)?;
                Value::Int(Int::from_signed_bytes_le(b))
            }
            tag::COMPLEX => {
                let re = r.f64().map_err(malformed)?;
                Value::Complex(Complex::new(re, r.f64().map_err(malformed)?))
            }
            tag::CHANNEL => Value::Channel(ctx.channel(r.varint_u32().map_err(malformed)?)),
            tag::DICT => {
                let n = r.count(2).map_err(malformed)?;
                charge_values(ctx, n.saturating_mul(2))?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.child().build()?;
                    pairs.push((k, self.child().build()?));
                }
                Value::Dict(pairs)
            }
            tag::LIST | tag::TUPLE | tag::SET | tag::FROZENSET => {
                let n = r.count(1).map_err(malformed)?;
                charge_values(ctx, n)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.child().build()?);
                }
                match t {
                    tag::LIST => Value::List(items),
                    tag::TUPLE => Value::Tuple(items),
                    tag::SET => Value::Set(items),
                    _ => Value::FrozenSet(items),
                }
            }
            _ => {
                return Err(malformed(DecodeError::UnknownValueTag {
                    tag: t.into(),
                    offset,
                }))
            }
        })
    }

    fn visit_items<V: Visitor<'de>>(
        mut self,
        n: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let mut access = Items {
            de: self.child(),
            left: n,
        };
        let out = visitor.visit_seq(&mut access)?;
        if access.left > 0 {
            return Err(de::Error::invalid_length(n, &"fewer elements"));
        }
        Ok(out)
    }

    fn visit_pairs<V: Visitor<'de>>(
        mut self,
        n: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let mut access = Pairs {
            de: self.child(),
            left: n,
        };
        let out = visitor.visit_map(&mut access)?;
        if access.left > 0 {
            return Err(de::Error::invalid_length(n, &"fewer entries"));
        }
        Ok(out)
    }
}

/// Charges a string's or byte string's bytes (and its allocation).
fn charge_bytes(ctx: &Ctx<'_>, n: usize) -> Result<(), ValueError> {
    if n == 0 {
        return Ok(());
    }
    ctx.charge(n.saturating_add(ALLOC_OVERHEAD))
}

/// Charges the slots of `n` values (and their allocation).
fn charge_values(ctx: &Ctx<'_>, n: usize) -> Result<(), ValueError> {
    if n == 0 {
        return Ok(());
    }
    let size = n.saturating_mul(std::mem::size_of::<Value>());
    ctx.charge(size.saturating_add(ALLOC_OVERHEAD))
}

fn visit_int<'de, V: Visitor<'de>>(n: Int, visitor: V) -> Result<V::Value, ValueError> {
    if let Some(x) = n.to_i64() {
        visitor.visit_i64(x)
    } else if let Some(x) = n.to_u64() {
        visitor.visit_u64(x)
    } else if let Some(x) = n.to_i128() {
        visitor.visit_i128(x)
    } else if let Some(x) = n.to_u128() {
        visitor.visit_u128(x)
    } else {
        // Beyond 128 bits: the decimal text, as `Int` serializes it.
        visitor.visit_string(n.to_string())
    }
}

fn pair<'de, V: Visitor<'de>>(re: f64, im: f64, visitor: V) -> Result<V::Value, ValueError> {
    let mut seq = SeqDeserializer::new([re, im].into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

fn byte_items<'de, V: Visitor<'de>>(b: &[u8], visitor: V) -> Result<V::Value, ValueError> {
    let mut seq = SeqDeserializer::new(b.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

macro_rules! de_int {
    ($($method:ident $visit:ident $t:ty, $conv:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
            // The common case first: a small int.
            if self.r.peek() == Some(tag::INT) {
                self.r.seek(self.r.pos() + 1);
                let n = self.r.zigzag().map_err(malformed)?;
                return match <$t>::try_from(n) {
                    Ok(x) => visitor.$visit(x),
                    Err(_) => Err(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: stringify!($t),
                    }),
                };
            }
            let (head, start) = self.head()?;
            match head.int() {
                Some(n) => match n.$conv().and_then(|x| <$t>::try_from(x).ok()) {
                    Some(x) => visitor.$visit(x),
                    None => Err(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: stringify!($t),
                    }),
                },
                None => Err(self.mismatch(stringify!($t), start)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ItemDeserializer<'_, 'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        let (head, _) = self.head()?;
        match head {
            Head::None => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Int(n) => visitor.visit_i64(n),
            Head::BigInt(b) => visit_int(Int::from_signed_bytes_le(b), visitor),
            Head::Float(x) => visitor.visit_f64(x),
            Head::Complex(re, im) => pair(re, im, visitor),
            Head::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Head::Str(s) => visitor.visit_borrowed_str(s),
            Head::Items(_, n) => self.visit_items(n, visitor),
            Head::Dict(n) => self.visit_pairs(n, visitor),
            Head::Channel(id) => visitor.visit_u32(id),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Bool(b), _) => visitor.visit_bool(b),
            (_, start) => Err(self.mismatch("bool", start)),
        }
    }

    de_int! {
        deserialize_i8 visit_i8 i8, to_i64;
        deserialize_i16 visit_i16 i16, to_i64;
        deserialize_i32 visit_i32 i32, to_i64;
        deserialize_i64 visit_i64 i64, to_i64;
        deserialize_i128 visit_i128 i128, to_i128;
        deserialize_u8 visit_u8 u8, to_u64;
        deserialize_u16 visit_u16 u16, to_u64;
        deserialize_u32 visit_u32 u32, to_u64;
        deserialize_u64 visit_u64 u64, to_u64;
        deserialize_u128 visit_u128 u128, to_u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            // Narrowing is what asking for an f32 means.
            #[allow(clippy::cast_possible_truncation)]
            (Head::Float(x), _) => visitor.visit_f32(x as f32),
            (head, start) => match head.int() {
                #[allow(clippy::cast_possible_truncation)]
                Some(n) => visitor.visit_f32(n.to_f64() as f32),
                None => Err(self.mismatch("f32", start)),
            },
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        if self.r.peek() == Some(tag::FLOAT) {
            self.r.seek(self.r.pos() + 1);
            return visitor.visit_f64(self.r.f64().map_err(malformed)?);
        }
        match self.head()? {
            (Head::Float(x), _) => visitor.visit_f64(x),
            (head, start) => match head.int() {
                Some(n) => visitor.visit_f64(n.to_f64()),
                None => Err(self.mismatch("f64", start)),
            },
        }
    }

    fn deserialize_char<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        let (head, start) = self.head()?;
        if let Head::Str(s) = head {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return visitor.visit_char(c);
            }
        }
        Err(self.mismatch("a str of one character", start))
    }

    fn deserialize_str<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        if self.r.peek() == Some(tag::STR) {
            self.r.seek(self.r.pos() + 1);
            return visitor.visit_borrowed_str(self.r.str().map_err(malformed)?);
        }
        match self.head()? {
            (Head::Str(s), _) => visitor.visit_borrowed_str(s),
            (_, start) => Err(self.mismatch("str", start)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Bytes(b), _) => visitor.visit_borrowed_bytes(b),
            (Head::Items(tag::LIST | tag::TUPLE, n), _) => self.visit_items(n, visitor),
            (_, start) => Err(self.mismatch("bytes", start)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::None, _) => visitor.visit_none(),
            (_, start) => {
                self.r.seek(start);
                visitor.visit_some(self)
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::None, _) => visitor.visit_unit(),
            (_, start) => Err(self.mismatch("None", start)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match name {
            VALUE_NAME => {
                let value = self.build()?;
                RAW_VALUE.with(|slot| slot.set(Some(value)));
                let result = visitor.visit_unit();
                RAW_VALUE.with(Cell::take);
                result
            }
            CHANNEL_NEWTYPE_NAME => match self.head()? {
                (Head::Channel(id), _) => {
                    let _stash = Stash::new(self.ctx.channel(id));
                    visitor.visit_newtype_struct(U32Deserializer::new(id))
                }
                (_, start) => Err(self.mismatch("Channel", start)),
            },
            INT_NAME => {
                let (head, start) = self.head()?;
                match head.int() {
                    Some(n) => visit_int(n, visitor),
                    None => Err(self.mismatch("int", start)),
                }
            }
            COMPLEX_NAME => {
                let (re, im) = match self.head()? {
                    (Head::Complex(re, im), _) => (re, im),
                    (Head::Float(x), _) => (x, 0.0),
                    (head, start) => match head.int() {
                        Some(n) => (n.to_f64(), 0.0),
                        None => return Err(self.mismatch("complex", start)),
                    },
                };
                let parts = SeqDeserializer::<_, ValueError>::new([re, im].into_iter());
                visitor.visit_newtype_struct(ComplexParts(parts))
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Items(_, n), _) => self.visit_items(n, visitor),
            (Head::Bytes(b), _) => byte_items(b, visitor),
            (_, start) => Err(self.mismatch("a sequence (list, tuple, set)", start)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let expected = || format!("tuple of {len} elements");
        let wrong_length = |n: usize| ValueError::Mismatch {
            expected: format!("tuple of {len} elements"),
            found: format!("{n} elements"),
        };
        match self.head()? {
            (Head::Items(_, n), _) if n == len => self.visit_items(n, visitor),
            (Head::Bytes(b), _) if b.len() == len => byte_items(b, visitor),
            (Head::Complex(re, im), _) if len == 2 => pair(re, im, visitor),
            (Head::Items(_, n), _) => Err(wrong_length(n)),
            (Head::Bytes(b), _) => Err(wrong_length(b.len())),
            (Head::Complex(..), _) => Err(wrong_length(2)),
            (_, start) => Err(self.mismatch(expected(), start)),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Dict(n), _) => self.visit_pairs(n, visitor),
            (_, start) => Err(self.mismatch("dict", start)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Dict(n), _) => self.visit_pairs(n, visitor),
            (Head::Items(tag::LIST | tag::TUPLE, n), _) => self.visit_items(n, visitor),
            (_, start) => Err(self.mismatch(format!("dict for struct {name}"), start)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Str(_), start) => {
                self.r.seek(start);
                visitor.visit_enum(Variant {
                    de: self,
                    payload: false,
                })
            }
            (Head::Dict(1), _) => {
                let de = self.child();
                visitor.visit_enum(Variant { de, payload: true })
            }
            (_, start) => Err(self.mismatch(format!("str or one-key dict for enum {name}"), start)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(
        mut self,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.head()? {
            (Head::Str(s), _) => visitor.visit_borrowed_str(s),
            (Head::Bytes(b), _) => visitor.visit_borrowed_bytes(b),
            (Head::Int(n), _) if n >= 0 => visitor.visit_u64(n.unsigned_abs()),
            (_, start) => Err(self.mismatch("an identifier (str)", start)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let mut ids = Vec::new();
        skip_value(self.r, self.depth, &mut ids).map_err(malformed)?;
        visitor.visit_unit()
    }
}

/// The `(re, im)` pair inside the complex newtype.
struct ComplexParts<I>(SeqDeserializer<I, ValueError>);

impl<'de, I> Deserializer<'de> for ComplexParts<I>
where
    I: Iterator<Item = f64>,
{
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ValueError> {
        let out = visitor.visit_seq(&mut self.0)?;
        self.0.end()?;
        Ok(out)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Items<'r, 'de> {
    de: ItemDeserializer<'r, 'de>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(ItemDeserializer {
            r: &mut *self.de.r,
            ctx: self.de.ctx,
            depth: self.de.depth,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Pairs<'r, 'de> {
    de: ItemDeserializer<'r, 'de>,
    left: usize,
}

impl<'de> MapAccess<'de> for Pairs<'_, 'de> {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(ItemDeserializer {
            r: &mut *self.de.r,
            ctx: self.de.ctx,
            depth: self.de.depth,
        })
        .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(ItemDeserializer {
            r: &mut *self.de.r,
            ctx: self.de.ctx,
            depth: self.de.depth,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An enum variant: a `Str` name (unit), or a one-pair dict `{name: payload}`
/// whose pair starts at the reader's position.
struct Variant<'r, 'de> {
    de: ItemDeserializer<'r, 'de>,
    payload: bool,
}

impl<'r, 'de> EnumAccess<'de> for Variant<'r, 'de> {
    type Error = ValueError;
    type Variant = Payload<'r, 'de>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Payload<'r, 'de>), ValueError> {
        let name = seed.deserialize(ItemDeserializer {
            r: &mut *self.de.r,
            ctx: self.de.ctx,
            depth: self.de.depth,
        })?;
        Ok((
            name,
            Payload {
                de: self.de,
                present: self.payload,
            },
        ))
    }
}

struct Payload<'r, 'de> {
    de: ItemDeserializer<'r, 'de>,
    present: bool,
}

impl<'r, 'de> Payload<'r, 'de> {
    fn required(self, what: &str) -> Result<ItemDeserializer<'r, 'de>, ValueError> {
        if self.present {
            Ok(self.de)
        } else {
            Err(ValueError::Mismatch {
                expected: what.to_owned(),
                found: "a unit variant (a bare str)".to_owned(),
            })
        }
    }
}

impl<'de> VariantAccess<'de> for Payload<'_, 'de> {
    type Error = ValueError;

    fn unit_variant(mut self) -> Result<(), ValueError> {
        if !self.present {
            return Ok(());
        }
        match self.de.head()? {
            (Head::None, _) => Ok(()),
            (_, start) => Err(self.de.mismatch("no payload for a unit variant", start)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(self.required("a variant payload")?)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.required("a tuple variant payload")?
            .deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.required("a struct variant payload")?
            .deserialize_struct("", fields, visitor)
    }
}
