//! `Deserialize` for this crate's types: `Value`, `Int`, `Complex`, `ChannelRef`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::de::RAW_VALUE;
use crate::ser::CHANNEL_NEWTYPE_NAME;
use crate::ser::{COMPLEX_NAME, INT_NAME, VALUE_NAME};
use crate::value::Stash;
use crate::{ChannelRef, Complex, Int, Value};

impl<'de> Deserialize<'de> for Value {
    /// From a self-describing format, any value in its natural shape (see
    /// `Serialize`); from a compact one (postcard), the wire's tagged enum,
    /// at most [`MAX_DEPTH`](crate::MAX_DEPTH) containers deep and within
    /// [`DEFAULT_VALUE_BUDGET`](crate::DEFAULT_VALUE_BUDGET) bytes.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_newtype_struct(VALUE_NAME, ValueVisitor)
        } else {
            crate::tagged::deserialize(deserializer)
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(RAW_VALUE.with(Cell::take).unwrap_or(Value::None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(Value::Dict(pairs))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        deserializer.deserialize_newtype_struct(INT_NAME, IntVisitor)
    }
}

struct IntVisitor;

impl<'de> Visitor<'de> for IntVisitor {
    type Value = Int;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("int")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Int, D::Error> {
        d.deserialize_any(IntVisitor)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
        Ok(Int::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
        Ok(Int::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
        Ok(Int::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Complex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Complex, D::Error> {
        deserializer.deserialize_newtype_struct(COMPLEX_NAME, ComplexVisitor)
    }
}

struct ComplexVisitor;

impl<'de> Visitor<'de> for ComplexVisitor {
    type Value = Complex;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("complex (a pair of floats)")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Complex, D::Error> {
        let (re, im) = <(f64, f64)>::deserialize(d)?;
        Ok(Complex { re, im })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Complex, A::Error> {
        let re = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let im = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(Complex { re, im })
    }
}

impl<'de> Deserialize<'de> for ChannelRef {
    /// The id, and, from our deserializers, the attachment the gateway put
    /// on that very channel (another id never gets it); other formats give
    /// the id alone.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ChannelRef, D::Error> {
        deserializer.deserialize_newtype_struct(CHANNEL_NEWTYPE_NAME, ChannelVisitor)
    }
}

struct ChannelVisitor;

impl<'de> Visitor<'de> for ChannelVisitor {
    type Value = ChannelRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Channel")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<ChannelRef, D::Error> {
        let id = u32::deserialize(d)?;
        let mut c = ChannelRef::new(id);
        c.set_attachment(Stash::take(id));
        Ok(c)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChannelRef, E> {
        u32::try_from(v)
            .map(ChannelRef::new)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}
