//! Rust data to `Value` (`to_value`), and `Serialize` for this crate's types.
//!
//! `Value` serializes to any format in its natural shape (sets and tuples as
//! sequences, complex as `[re, im]`, ints beyond 128 bits as decimal strings,
//! channels as their id). So that nothing is lost on the way into a `Value`,
//! the shapes serde cannot tell apart travel in newtype structs with private
//! names, which other serializers see through.

use serde::ser::{self, Serialize, Serializer};

use crate::value::Stash;
use crate::{ChannelRef, Complex, Int, Value, ValueError, MAX_DEPTH};

/// The newtype-struct name through which channels cross serde. Only
/// [`ChannelRef`]'s `Serialize`/`Deserialize` use it (a channel handle of
/// another crate serializes *through* a `ChannelRef` carrying it as the
/// attachment); see `Stash` for how the attachment travels.
pub(crate) const CHANNEL_NEWTYPE_NAME: &str = "$execnet::Channel";

pub(crate) const SET_NAME: &str = "$execnet::Set";
pub(crate) const FROZENSET_NAME: &str = "$execnet::FrozenSet";
pub(crate) const COMPLEX_NAME: &str = "$execnet::Complex";
pub(crate) const BIGINT_NAME: &str = "$execnet::BigInt";
pub(crate) const INT_NAME: &str = "$execnet::Int";
pub(crate) const VALUE_NAME: &str = "$execnet::Value";

/// Converts any `Serialize` data into a [`Value`]: tuples and tuple structs
/// become `Tuple`, sequences `List`, maps and structs `Dict` (struct fields
/// as `Str` keys), `()`/`None`/unit structs `None`, `Some(x)` becomes `x`,
/// `serde_bytes` `Bytes`, `char` `Str`, a unit enum variant `Str(name)` and
/// other variants `Dict {name: payload}`.
///
/// Data nested deeper than [`MAX_DEPTH`] containers is refused
/// ([`ValueError::TooDeep`]) whatever its depth: it could not travel, and
/// the refusal comes before the stack runs out.
///
/// # Examples
///
/// ```
/// use execnet_wire::{to_value, Value};
///
/// let v = to_value(&(1u8, "a", vec![true])).unwrap();
/// assert_eq!(v.repr(), "(1, 'a', [True])");
/// assert_eq!(to_value(&v).unwrap(), v);
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer { depth: 0 })
}

impl Serialize for Value {
    /// Self-describing formats (JSON, [`to_value`]) get the natural shape;
    /// compact ones (postcard, bincode) the wire's tagged enum, so postcard
    /// writes exactly the bytes of `WIRE.md` section 6. Either way a value
    /// nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) is an error, not
    /// a stack overflow.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            Natural(self, 0).serialize(serializer)
        } else {
            crate::tagged::Tagged(self, 0).serialize(serializer)
        }
    }
}

/// A value at `depth`, in its natural shape.
struct Natural<'a>(&'a Value, usize);

impl Serialize for Natural<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Natural(v, depth) = *self;
        // A backstop for serializers that do not count (ours do, and stop
        // one level earlier with a typed error).
        if depth > MAX_DEPTH && crate::deep::is_container(v) {
            return Err(ser::Error::custom(ValueError::TooDeep));
        }
        let inner = depth + 1;
        match v {
            Value::None => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => n.serialize(serializer),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Complex(c) => c.serialize(serializer),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::Str(s) => serializer.serialize_str(s),
            Value::List(items) => Seq(items, inner).serialize(serializer),
            Value::Tuple(items) => {
                use ser::SerializeTuple;
                let mut t = serializer.serialize_tuple(items.len())?;
                for item in items {
                    t.serialize_element(&Natural(item, inner))?;
                }
                t.end()
            }
            Value::Dict(pairs) => serializer.collect_map(
                pairs
                    .iter()
                    .map(|(k, v)| (Natural(k, inner), Natural(v, inner))),
            ),
            Value::Set(items) => serializer.serialize_newtype_struct(SET_NAME, &Seq(items, inner)),
            Value::FrozenSet(items) => {
                serializer.serialize_newtype_struct(FROZENSET_NAME, &Seq(items, inner))
            }
            Value::Channel(c) => c.serialize(serializer),
        }
    }
}

struct Seq<'a>(&'a [Value], usize);

impl Serialize for Seq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|v| Natural(v, self.1)))
    }
}

impl Serialize for Int {
    /// As the smallest of `i64`, `u64`, `i128`, `u128` that holds it; beyond
    /// that as its decimal string (inside a private newtype struct).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(n) = self.to_i64() {
            serializer.serialize_i64(n)
        } else if let Some(n) = self.to_u64() {
            serializer.serialize_u64(n)
        } else if let Some(n) = self.to_i128() {
            serializer.serialize_i128(n)
        } else if let Some(n) = self.to_u128() {
            serializer.serialize_u128(n)
        } else {
            serializer.serialize_newtype_struct(BIGINT_NAME, &self.to_string())
        }
    }
}

impl Serialize for Complex {
    /// As the pair `(re, im)` (inside a private newtype struct).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(COMPLEX_NAME, &(self.re, self.im))
    }
}

impl Serialize for ChannelRef {
    /// As its id, in a private newtype that our serializers recognize: they
    /// take the attachment along (`to_value` keeps it in the `Value`,
    /// [`Item::encode`](crate::Item::encode) lists it); other formats write
    /// the id and the attachment stays behind.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let _stash = Stash::new(self.clone());
        serializer.serialize_newtype_struct(CHANNEL_NEWTYPE_NAME, &self.id())
    }
}

/// The serializer behind [`to_value`]; `depth` counts the containers
/// around the value it makes.
#[derive(Clone, Copy)]
struct ValueSerializer {
    depth: usize,
}

impl ValueSerializer {
    /// The depth of the elements of a container made here.
    fn enter(self) -> Result<usize, ValueError> {
        if self.depth >= MAX_DEPTH {
            Err(ValueError::TooDeep)
        } else {
            Ok(self.depth + 1)
        }
    }
}

fn special_newtype(name: &str, mut inner: Value) -> Result<Value, ValueError> {
    let mismatch = |expected: &str, found: &Value| ValueError::Mismatch {
        expected: expected.to_owned(),
        found: found.describe(),
    };
    Ok(match (name, &mut inner) {
        (SET_NAME, Value::List(items)) => Value::Set(std::mem::take(items)),
        (FROZENSET_NAME, Value::List(items)) => Value::FrozenSet(std::mem::take(items)),
        (COMPLEX_NAME, Value::Tuple(parts)) => match parts.as_slice() {
            [Value::Float(re), Value::Float(im)] => Value::Complex(Complex::new(*re, *im)),
            _ => return Err(mismatch("(re, im) floats", &inner)),
        },
        (BIGINT_NAME, Value::Str(s)) => match s.parse::<Int>() {
            Ok(n) => Value::Int(n),
            Err(e) => return Err(ValueError::Custom(e.to_string())),
        },
        (CHANNEL_NEWTYPE_NAME, Value::Int(n)) => {
            match n.to_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(id) => {
                    let mut c = ChannelRef::new(id);
                    c.set_attachment(Stash::take(id));
                    Value::Channel(c)
                }
                None => {
                    return Err(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: "a channel id (u32)",
                    })
                }
            }
        }
        (SET_NAME | FROZENSET_NAME, _) => return Err(mismatch("a sequence", &inner)),
        (CHANNEL_NEWTYPE_NAME, _) => return Err(mismatch("a u32 channel id", &inner)),
        _ => return Err(mismatch(name, &inner)),
    })
}

fn is_special(name: &str) -> bool {
    matches!(
        name,
        SET_NAME | FROZENSET_NAME | COMPLEX_NAME | BIGINT_NAME | CHANNEL_NEWTYPE_NAME
    )
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = VariantSerializer<SeqSerializer>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = VariantSerializer<MapSerializer>;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::None)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::None)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let inner = value.serialize(self)?;
        if is_special(name) {
            special_newtype(name, inner)
        } else {
            Ok(inner)
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let payload = value.serialize(ValueSerializer {
            depth: self.enter()?,
        })?;
        Ok(Value::Dict(vec![(Value::Str(variant.to_owned()), payload)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, ValueError> {
        Ok(SeqSerializer::new(len, false, self.enter()?))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer, ValueError> {
        Ok(SeqSerializer::new(Some(len), true, self.enter()?))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqSerializer, ValueError> {
        Ok(SeqSerializer::new(Some(len), true, self.enter()?))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        let depth = self.enter()?;
        Ok(VariantSerializer {
            variant,
            inner: SeqSerializer::new(Some(len), true, ValueSerializer { depth }.enter()?),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSerializer, ValueError> {
        Ok(MapSerializer::new(len, self.enter()?))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<MapSerializer, ValueError> {
        Ok(MapSerializer::new(Some(len), self.enter()?))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        let depth = self.enter()?;
        Ok(VariantSerializer {
            variant,
            inner: MapSerializer::new(Some(len), ValueSerializer { depth }.enter()?),
        })
    }
}

/// Builds a `List` or a `Tuple`.
struct SeqSerializer {
    items: Vec<Value>,
    tuple: bool,
    /// The depth of the elements.
    depth: usize,
}

impl SeqSerializer {
    fn new(len: Option<usize>, tuple: bool, depth: usize) -> SeqSerializer {
        // The hint comes from the Rust data; cap it so a lying impl cannot
        // make us reserve absurd amounts.
        let cap = len.unwrap_or(0).min(4096);
        SeqSerializer {
            items: Vec::with_capacity(cap),
            tuple,
            depth,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let depth = self.depth;
        self.items.push(value.serialize(ValueSerializer { depth })?);
        Ok(())
    }

    fn finish(self) -> Value {
        if self.tuple {
            Value::Tuple(self.items)
        } else {
            Value::List(self.items)
        }
    }
}

impl ser::SerializeSeq for SeqSerializer {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSerializer {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSerializer {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

/// Builds a `Dict`.
struct MapSerializer {
    pairs: Vec<(Value, Value)>,
    key: Option<Value>,
    /// The depth of the keys and values.
    depth: usize,
}

impl MapSerializer {
    fn new(len: Option<usize>, depth: usize) -> MapSerializer {
        MapSerializer {
            pairs: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
            depth,
        }
    }

    fn inner(&self) -> ValueSerializer {
        ValueSerializer { depth: self.depth }
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(self.inner())?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError::Custom("map value serialized before its key".into()))?;
        let value = value.serialize(self.inner())?;
        self.pairs.push((key, value));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Dict(self.pairs))
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        let value = value.serialize(self.inner())?;
        self.pairs.push((Value::Str(key.to_owned()), value));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Dict(self.pairs))
    }
}

/// Wraps a tuple or struct variant's payload as `{variant: payload}`.
struct VariantSerializer<S> {
    variant: &'static str,
    inner: S,
}

impl<S> VariantSerializer<S> {
    fn wrap(variant: &'static str, payload: Value) -> Value {
        Value::Dict(vec![(Value::Str(variant.to_owned()), payload)])
    }
}

impl ser::SerializeTupleVariant for VariantSerializer<SeqSerializer> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.inner.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Self::wrap(self.variant, self.inner.finish()))
    }
}

impl ser::SerializeStructVariant for VariantSerializer<MapSerializer> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Self::wrap(self.variant, Value::Dict(self.inner.pairs)))
    }
}
