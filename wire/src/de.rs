//! `Value` to Rust data: `from_value` and the deserializer behind it.

use std::cell::Cell;

use serde::de::value::U32Deserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::ser::{COMPLEX_NAME, INT_NAME, VALUE_NAME};
use crate::value::set_channel_attachment;
use crate::{Int, Value, ValueError, CHANNEL_NEWTYPE_NAME};

thread_local! {
    /// A whole `Value` handed from our deserializer to `Value`'s visitor, so
    /// that `from_value::<Value>` keeps what serde's data model cannot say
    /// (tuple vs list, sets, complex, big ints, channels).
    pub(crate) static RAW_VALUE: Cell<Option<Value>> = const { Cell::new(None) };
}

/// Converts a [`Value`] into any `DeserializeOwned` type. Receiving is
/// lenient where Python is: a tuple, set or frozenset into a `Vec`, a list
/// into a Rust tuple (the length must match), an int into `f64`, bytes into
/// `Vec<u8>`; sets and frozensets into `HashSet`/`BTreeSet`. An integer
/// outside the target type's range is an error, never wrapped.
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
    T::deserialize(ValueDeserializer(value))
}

fn mismatch(expected: impl Into<String>, found: &Value) -> ValueError {
    ValueError::Mismatch {
        expected: expected.into(),
        found: found.describe(),
    }
}

/// The deserializer behind [`from_value`]: consumes one value.
struct ValueDeserializer(Value);

fn visit_items<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = items.len();
    let mut access = Items(items.into_iter());
    let out = visitor.visit_seq(&mut access)?;
    if access.0.len() > 0 {
        return Err(de::Error::invalid_length(len, &"fewer elements"));
    }
    Ok(out)
}

fn byte_items(bytes: Vec<u8>) -> Vec<Value> {
    bytes
        .into_iter()
        .map(|b| Value::from(i64::from(b)))
        .collect()
}

macro_rules! de_int {
    ($($method:ident $visit:ident $t:ty, $conv:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0 {
                Value::Int(n) => match n.$conv().and_then(|x| <$t>::try_from(x).ok()) {
                    Some(x) => visitor.$visit(x),
                    None => Err(ValueError::OutOfRange {
                        value: n.to_string(),
                        target: stringify!($t),
                    }),
                },
                other => Err(mismatch(stringify!($t), &other)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(n) => visit_int(n, visitor),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Complex(c) => visit_items(vec![Value::Float(c.re), Value::Float(c.im)], visitor),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Str(s) => visitor.visit_string(s),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_items(items, visitor),
            Value::Dict(pairs) => visit_pairs(pairs, visitor),
            Value::Channel(c) => visitor.visit_u32(c.id()),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(mismatch("bool", &other)),
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
        match self.0 {
            // Narrowing is what asking for an f32 means.
            #[allow(clippy::cast_possible_truncation)]
            Value::Float(x) => visitor.visit_f32(x as f32),
            #[allow(clippy::cast_possible_truncation)]
            Value::Int(n) => visitor.visit_f32(n.to_f64() as f32),
            other => Err(mismatch("f32", &other)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Float(x) => visitor.visit_f64(x),
            Value::Int(n) => visitor.visit_f64(n.to_f64()),
            other => Err(mismatch("f64", &other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        if let Value::Str(s) = &self.0 {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return visitor.visit_char(c);
            }
        }
        Err(mismatch("a str of one character", &self.0))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Str(s) => visitor.visit_string(s),
            other => Err(mismatch("str", &other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(items) | Value::Tuple(items) => visit_items(items, visitor),
            other => Err(mismatch("bytes", &other)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::None => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            other => Err(mismatch("None", &other)),
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
                RAW_VALUE.with(|slot| slot.set(Some(self.0)));
                let result = visitor.visit_unit();
                RAW_VALUE.with(Cell::take);
                result
            }
            CHANNEL_NEWTYPE_NAME => match self.0 {
                Value::Channel(mut c) => {
                    set_channel_attachment(c.take_attachment());
                    let result = visitor.visit_newtype_struct(U32Deserializer::new(c.id()));
                    set_channel_attachment(None);
                    result
                }
                other => Err(mismatch("Channel", &other)),
            },
            INT_NAME => match self.0 {
                Value::Int(n) => visit_int(n, visitor),
                other => Err(mismatch("int", &other)),
            },
            COMPLEX_NAME => {
                let (re, im) = match self.0 {
                    Value::Complex(c) => (c.re, c.im),
                    Value::Float(x) => (x, 0.0),
                    Value::Int(n) => (n.to_f64(), 0.0),
                    other => return Err(mismatch("complex", &other)),
                };
                let parts = Value::Tuple(vec![Value::Float(re), Value::Float(im)]);
                visitor.visit_newtype_struct(ValueDeserializer(parts))
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_items(items, visitor),
            Value::Bytes(b) => visit_items(byte_items(b), visitor),
            other => Err(mismatch("a sequence (list, tuple, set)", &other)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let items = match self.0 {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => items,
            Value::Bytes(b) => byte_items(b),
            Value::Complex(c) => vec![Value::Float(c.re), Value::Float(c.im)],
            other => return Err(mismatch(format!("tuple of {len} elements"), &other)),
        };
        if items.len() != len {
            return Err(ValueError::Mismatch {
                expected: format!("tuple of {len} elements"),
                found: format!("{} elements", items.len()),
            });
        }
        visit_items(items, visitor)
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
        match self.0 {
            Value::Dict(pairs) => visit_pairs(pairs, visitor),
            other => Err(mismatch("dict", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Dict(pairs) => visit_pairs(pairs, visitor),
            Value::List(items) | Value::Tuple(items) => visit_items(items, visitor),
            other => Err(mismatch(format!("dict for struct {name}"), &other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Str(s) => visitor.visit_enum(Variant {
                name: Value::Str(s),
                payload: None,
            }),
            Value::Dict(mut pairs) if pairs.len() == 1 => match pairs.pop() {
                Some((name, payload)) => visitor.visit_enum(Variant {
                    name,
                    payload: Some(payload),
                }),
                None => Err(ValueError::Custom("empty dict".into())),
            },
            other => Err(mismatch(
                format!("str or one-key dict for enum {name}"),
                &other,
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Int(n) => match n.to_u64() {
                Some(i) => visitor.visit_u64(i),
                None => Err(mismatch("an identifier", &Value::Int(n))),
            },
            other => Err(mismatch("an identifier (str)", &other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }
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

fn visit_pairs<'de, V: Visitor<'de>>(
    pairs: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = pairs.len();
    let mut access = Pairs {
        iter: pairs.into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() > 0 {
        return Err(de::Error::invalid_length(len, &"fewer entries"));
    }
    Ok(out)
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        match self.0.next() {
            Some(v) => seed.deserialize(ValueDeserializer(v)).map(Some),
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
                seed.deserialize(ValueDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.value.take() {
            Some(v) => seed.deserialize(ValueDeserializer(v)),
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
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = ValueError;
    type Variant = Payload;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Payload), ValueError> {
        let name = seed.deserialize(ValueDeserializer(self.name))?;
        Ok((name, Payload(self.payload)))
    }
}

struct Payload(Option<Value>);

impl Payload {
    fn required(self, what: &str) -> Result<Value, ValueError> {
        self.0.ok_or_else(|| ValueError::Mismatch {
            expected: what.to_owned(),
            found: "a unit variant (a bare str)".to_owned(),
        })
    }
}

impl<'de> VariantAccess<'de> for Payload {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(mismatch("no payload for a unit variant", &other)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(ValueDeserializer(self.required("a variant payload")?))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        ValueDeserializer(self.required("a tuple variant payload")?).deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        ValueDeserializer(self.required("a struct variant payload")?)
            .deserialize_struct("", fields, visitor)
    }
}
