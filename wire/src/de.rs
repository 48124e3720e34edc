//! `Value` to Rust data: `from_value` and the deserializer behind it.

use std::cell::Cell;
use std::mem;

use serde::de::value::{SeqDeserializer, U32Deserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::deep::{depth_exceeds, is_container};
use crate::ser::{CHANNEL_NEWTYPE_NAME, COMPLEX_NAME, INT_NAME, VALUE_NAME};
use crate::value::Stash;
use crate::{ChannelRef, Complex, Int, Value, ValueError, MAX_DEPTH};

thread_local! {
    /// A whole `Value` handed from our deserializers to `Value`'s visitor,
    /// so that receiving a `Value` keeps what serde's data model cannot say
    /// (tuple vs list, sets, complex, big ints, channels). Set and taken
    /// within one call.
    pub(crate) static RAW_VALUE: Cell<Option<Value>> = const { Cell::new(None) };
}

/// Converts a [`Value`] into any `DeserializeOwned` type. Receiving is
/// lenient where Python is: a tuple, set or frozenset into a `Vec`, a list
/// into a Rust tuple (the length must match), an int into `f64`, bytes into
/// `Vec<u8>`; sets and frozensets into `HashSet`/`BTreeSet`. An integer
/// outside the target type's range is an error, never wrapped, and so is a
/// value nested deeper than [`MAX_DEPTH`] containers
/// ([`ValueError::TooDeep`], whatever the depth).
///
/// # Examples
///
/// ```
/// use execnet_wire::{from_value, to_value, Value, ValueError};
///
/// let v = to_value(&(300u16, "abc")).unwrap();
/// let back: (u16, String) = from_value(v.clone()).unwrap();
/// assert_eq!(back, (300, "abc".to_owned()));
/// let err = from_value::<(u8, String)>(v).unwrap_err();
/// assert_eq!(err.to_string(), "int 300 out of range for u8");
/// let err = from_value::<i32>(Value::from("abc")).unwrap_err();
/// assert_eq!(err.to_string(), "expected i32, found str 'abc'");
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(ValueDeserializer(value, 0))
}

/// The deserializer behind [`from_value`]: consumes one value that sits
/// inside `.1` containers.
struct ValueDeserializer(Value, usize);

/// A value's payload, moved out of it (`Value` implements `Drop`, so it
/// cannot be destructured by value).
enum Owned {
    None,
    Bool(bool),
    Int(Int),
    Float(f64),
    Complex(Complex),
    Bytes(Vec<u8>),
    Str(String),
    /// List, Tuple, Set, FrozenSet: the elements, and whether it was a
    /// list or tuple (what a struct accepts).
    Items(Vec<Value>, Kind),
    Dict(Vec<(Value, Value)>),
    Channel(ChannelRef),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Tuple,
    Set,
    FrozenSet,
}

impl Owned {
    fn of(mut v: Value) -> Owned {
        match &mut v {
            Value::None => Owned::None,
            Value::Bool(b) => Owned::Bool(*b),
            Value::Int(n) => Owned::Int(mem::replace(n, Int::from(0u8))),
            Value::Float(x) => Owned::Float(*x),
            Value::Complex(c) => Owned::Complex(*c),
            Value::Bytes(b) => Owned::Bytes(mem::take(b)),
            Value::Str(s) => Owned::Str(mem::take(s)),
            Value::List(v) => Owned::Items(mem::take(v), Kind::List),
            Value::Tuple(v) => Owned::Items(mem::take(v), Kind::Tuple),
            Value::Set(v) => Owned::Items(mem::take(v), Kind::Set),
            Value::FrozenSet(v) => Owned::Items(mem::take(v), Kind::FrozenSet),
            Value::Dict(pairs) => Owned::Dict(mem::take(pairs)),
            Value::Channel(c) => Owned::Channel(mem::replace(c, ChannelRef::new(0))),
        }
    }

    /// Back to a value, to describe it in an error.
    fn into_value(self) -> Value {
        match self {
            Owned::None => Value::None,
            Owned::Bool(b) => Value::Bool(b),
            Owned::Int(n) => Value::Int(n),
            Owned::Float(x) => Value::Float(x),
            Owned::Complex(c) => Value::Complex(c),
            Owned::Bytes(b) => Value::Bytes(b),
            Owned::Str(s) => Value::Str(s),
            Owned::Items(v, Kind::List) => Value::List(v),
            Owned::Items(v, Kind::Tuple) => Value::Tuple(v),
            Owned::Items(v, Kind::Set) => Value::Set(v),
            Owned::Items(v, Kind::FrozenSet) => Value::FrozenSet(v),
            Owned::Dict(pairs) => Value::Dict(pairs),
            Owned::Channel(c) => Value::Channel(c),
        }
    }
}

fn mismatch(expected: impl Into<String>, found: Owned) -> ValueError {
    ValueError::Mismatch {
        expected: expected.into(),
        found: found.into_value().describe(),
    }
}

impl ValueDeserializer {
    /// The payload, and the depth of its elements; a container deeper than
    /// [`MAX_DEPTH`] is refused.
    fn open(self) -> Result<(Owned, usize), ValueError> {
        let ValueDeserializer(v, depth) = self;
        if depth >= MAX_DEPTH && is_container(&v) {
            return Err(ValueError::TooDeep);
        }
        Ok((Owned::of(v), depth + 1))
    }
}

fn visit_items<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = items.len();
    let mut access = Items(items.into_iter(), depth);
    let out = visitor.visit_seq(&mut access)?;
    if access.0.len() > 0 {
        return Err(de::Error::invalid_length(len, &"fewer elements"));
    }
    Ok(out)
}

fn visit_pairs<'de, V: Visitor<'de>>(
    pairs: Vec<(Value, Value)>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = pairs.len();
    let mut access = Pairs {
        iter: pairs.into_iter(),
        value: None,
        depth,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() > 0 {
        return Err(de::Error::invalid_length(len, &"fewer entries"));
    }
    Ok(out)
}

/// Visits plain data (bytes as ints, complex parts as floats) as a sequence.
fn visit_plain<'de, I, V>(items: I, visitor: V) -> Result<V::Value, ValueError>
where
    I: Iterator,
    I::Item: de::IntoDeserializer<'de, ValueError>,
    V: Visitor<'de>,
{
    let mut seq = SeqDeserializer::new(items);
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
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

macro_rules! de_int {
    ($($method:ident $visit:ident $t:ty, $conv:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.open()?.0 {
                Owned::Int(n) => match n.$conv().and_then(|x| <$t>::try_from(x).ok()) {
                    Some(x) => visitor.$visit(x),
                    None => Err(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: stringify!($t),
                    }),
                },
                other => Err(mismatch(stringify!($t), other)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let (owned, inner) = self.open()?;
        match owned {
            Owned::None => visitor.visit_unit(),
            Owned::Bool(b) => visitor.visit_bool(b),
            Owned::Int(n) => visit_int(n, visitor),
            Owned::Float(x) => visitor.visit_f64(x),
            Owned::Complex(c) => visit_plain([c.re, c.im].into_iter(), visitor),
            Owned::Bytes(b) => visitor.visit_byte_buf(b),
            Owned::Str(s) => visitor.visit_string(s),
            Owned::Items(items, _) => visit_items(items, inner, visitor),
            Owned::Dict(pairs) => visit_pairs(pairs, inner, visitor),
            Owned::Channel(c) => visitor.visit_u32(c.id()),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            Owned::Bool(b) => visitor.visit_bool(b),
            other => Err(mismatch("bool", other)),
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

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            // Narrowing is what asking for an f32 means.
            #[allow(clippy::cast_possible_truncation)]
            Owned::Float(x) => visitor.visit_f32(x as f32),
            #[allow(clippy::cast_possible_truncation)]
            Owned::Int(n) => visitor.visit_f32(n.to_f64() as f32),
            other => Err(mismatch("f32", other)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            Owned::Float(x) => visitor.visit_f64(x),
            Owned::Int(n) => visitor.visit_f64(n.to_f64()),
            other => Err(mismatch("f64", other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let owned = self.open()?.0;
        if let Owned::Str(s) = &owned {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return visitor.visit_char(c);
            }
        }
        Err(mismatch("a str of one character", owned))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            Owned::Str(s) => visitor.visit_string(s),
            other => Err(mismatch("str", other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()? {
            (Owned::Bytes(b), _) => visitor.visit_byte_buf(b),
            (Owned::Items(items, Kind::List | Kind::Tuple), inner) => {
                visit_items(items, inner, visitor)
            }
            (other, _) => Err(mismatch("bytes", other)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            Owned::None => visitor.visit_unit(),
            other => Err(mismatch("None", other)),
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
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match name {
            VALUE_NAME => {
                let ValueDeserializer(v, depth) = self;
                // The value is handed over whole: it must not be deeper than
                // what could have been converted piece by piece.
                if depth_exceeds(&v, MAX_DEPTH.saturating_sub(depth)) {
                    return Err(ValueError::TooDeep);
                }
                RAW_VALUE.with(|slot| slot.set(Some(v)));
                let result = visitor.visit_unit();
                RAW_VALUE.with(Cell::take);
                result
            }
            CHANNEL_NEWTYPE_NAME => match self.open()?.0 {
                Owned::Channel(c) => {
                    let id = c.id();
                    let _stash = Stash::new(c);
                    visitor.visit_newtype_struct(U32Deserializer::new(id))
                }
                other => Err(mismatch("Channel", other)),
            },
            INT_NAME => match self.open()?.0 {
                Owned::Int(n) => visit_int(n, visitor),
                other => Err(mismatch("int", other)),
            },
            COMPLEX_NAME => {
                let (re, im) = match self.open()?.0 {
                    Owned::Complex(c) => (c.re, c.im),
                    Owned::Float(x) => (x, 0.0),
                    Owned::Int(n) => (n.to_f64(), 0.0),
                    other => return Err(mismatch("complex", other)),
                };
                let parts = Value::Tuple(vec![Value::Float(re), Value::Float(im)]);
                visitor.visit_newtype_struct(ValueDeserializer(parts, 0))
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()? {
            (Owned::Items(items, _), inner) => visit_items(items, inner, visitor),
            (Owned::Bytes(b), _) => visit_plain(b.into_iter(), visitor),
            (other, _) => Err(mismatch("a sequence (list, tuple, set)", other)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let wrong_length = |n: usize| ValueError::Mismatch {
            expected: format!("tuple of {len} elements"),
            found: format!("{n} elements"),
        };
        match self.open()? {
            (Owned::Items(items, _), inner) if items.len() == len => {
                visit_items(items, inner, visitor)
            }
            (Owned::Bytes(b), _) if b.len() == len => visit_plain(b.into_iter(), visitor),
            (Owned::Complex(c), _) if len == 2 => visit_plain([c.re, c.im].into_iter(), visitor),
            (Owned::Items(items, _), _) => Err(wrong_length(items.len())),
            (Owned::Bytes(b), _) => Err(wrong_length(b.len())),
            (Owned::Complex(_), _) => Err(wrong_length(2)),
            (other, _) => Err(mismatch(format!("tuple of {len} elements"), other)),
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

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()? {
            (Owned::Dict(pairs), inner) => visit_pairs(pairs, inner, visitor),
            (other, _) => Err(mismatch("dict", other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.open()? {
            (Owned::Dict(pairs), inner) => visit_pairs(pairs, inner, visitor),
            (Owned::Items(items, Kind::List | Kind::Tuple), inner) => {
                visit_items(items, inner, visitor)
            }
            (other, _) => Err(mismatch(format!("dict for struct {name}"), other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.open()? {
            (Owned::Str(s), inner) => visitor.visit_enum(Variant {
                name: Value::Str(s),
                payload: None,
                depth: inner,
            }),
            (Owned::Dict(mut pairs), inner) if pairs.len() == 1 => match pairs.pop() {
                Some((name, payload)) => visitor.visit_enum(Variant {
                    name,
                    payload: Some(payload),
                    depth: inner,
                }),
                None => Err(ValueError::Custom("empty dict".into())),
            },
            (other, _) => Err(mismatch(
                format!("str or one-key dict for enum {name}"),
                other,
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.open()?.0 {
            Owned::Str(s) => visitor.visit_string(s),
            Owned::Bytes(b) => visitor.visit_byte_buf(b),
            Owned::Int(n) => match n.to_u64() {
                Some(i) => visitor.visit_u64(i),
                None => Err(mismatch("an identifier", Owned::Int(n))),
            },
            other => Err(mismatch("an identifier (str)", other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }
}

struct Items(std::vec::IntoIter<Value>, usize);

impl<'de> SeqAccess<'de> for Items {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        match self.0.next() {
            Some(v) => seed.deserialize(ValueDeserializer(v, self.1)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Pairs {
    iter: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
    depth: usize,
}

impl<'de> MapAccess<'de> for Pairs {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(ValueDeserializer(k, self.depth)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.value.take() {
            Some(v) => seed.deserialize(ValueDeserializer(v, self.depth)),
            None => Err(ValueError::Custom(
                "map value asked for before its key".into(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum variant: `Str(name)` (unit) or `{name: payload}`.
struct Variant {
    name: Value,
    payload: Option<Value>,
    depth: usize,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = ValueError;
    type Variant = Payload;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Payload), ValueError> {
        let name = seed.deserialize(ValueDeserializer(self.name, self.depth))?;
        Ok((name, Payload(self.payload, self.depth)))
    }
}

struct Payload(Option<Value>, usize);

impl Payload {
    fn required(self, what: &str) -> Result<ValueDeserializer, ValueError> {
        match self.0 {
            Some(v) => Ok(ValueDeserializer(v, self.1)),
            None => Err(ValueError::Mismatch {
                expected: what.to_owned(),
                found: "a unit variant (a bare str)".to_owned(),
            }),
        }
    }
}

impl<'de> VariantAccess<'de> for Payload {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(mismatch("no payload for a unit variant", Owned::of(other))),
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
