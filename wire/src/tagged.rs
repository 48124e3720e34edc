//! `Value` in compact formats (postcard, bincode, ...): the wire's tagged
//! enum, so that postcard encodes a `Value` to exactly the bytes of
//! `WIRE.md` section 6.
//!
//! A self-describing format (JSON, our own `to_value`) gets the value's
//! natural shape instead (`ser.rs`, `visit.rs`); a format that is not
//! self-describing cannot carry a dynamic value any other way. Both
//! directions keep the depth limit, and decoding keeps a memory budget:
//! every element costs `size_of::<Value>()` bytes however short it was
//! on the wire.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::item::{tag, DEFAULT_VALUE_BUDGET};
use crate::value::unhashable_part;
use crate::{ChannelRef, Complex, Int, Value, MAX_DEPTH};

const NAME: &str = "Value";
const VARIANTS: &[&str] = &[
    "None",
    "Bool",
    "Int",
    "BigInt",
    "Float",
    "Complex",
    "Bytes",
    "Str",
    "List",
    "Tuple",
    "Dict",
    "Set",
    "FrozenSet",
    "Channel",
];
const TOO_DEEP: &str = "value nests deeper than the limit of containers";

/// Serializes a value at `depth` as the tagged enum.
pub(crate) struct Tagged<'a>(pub(crate) &'a Value, pub(crate) usize);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Tagged(v, depth) = *self;
        let variant = |t: u8| (u32::from(t), VARIANTS[usize::from(t)]);
        let items = |t: u8, items: &[Value], hashed: bool, s: S| {
            if depth >= MAX_DEPTH {
                return Err(ser::Error::custom(TOO_DEEP));
            }
            let (i, name) = variant(t);
            let seq = TaggedSeq {
                items,
                depth: depth + 1,
                hashed,
            };
            s.serialize_newtype_variant(NAME, i, name, &seq)
        };
        match v {
            Value::None => s.serialize_unit_variant(NAME, 0, "None"),
            Value::Bool(b) => s.serialize_newtype_variant(NAME, 1, "Bool", b),
            Value::Int(n) => match n.to_i64() {
                Some(small) => s.serialize_newtype_variant(NAME, 2, "Int", &small),
                None => {
                    let bytes = n.to_signed_bytes_le();
                    s.serialize_newtype_variant(NAME, 3, "BigInt", serde_bytes::Bytes::new(&bytes))
                }
            },
            Value::Float(x) => s.serialize_newtype_variant(NAME, 4, "Float", x),
            Value::Complex(c) => s.serialize_newtype_variant(NAME, 5, "Complex", &(c.re, c.im)),
            Value::Bytes(b) => {
                s.serialize_newtype_variant(NAME, 6, "Bytes", serde_bytes::Bytes::new(b))
            }
            Value::Str(x) => s.serialize_newtype_variant(NAME, 7, "Str", x),
            Value::List(v) => items(tag::LIST, v, false, s),
            Value::Tuple(v) => items(tag::TUPLE, v, false, s),
            Value::Set(v) => items(tag::SET, v, true, s),
            Value::FrozenSet(v) => items(tag::FROZENSET, v, true, s),
            Value::Dict(pairs) => {
                if depth >= MAX_DEPTH {
                    return Err(ser::Error::custom(TOO_DEEP));
                }
                let map = TaggedMap {
                    pairs,
                    depth: depth + 1,
                };
                s.serialize_newtype_variant(NAME, 10, "Dict", &map)
            }
            Value::Channel(c) => s.serialize_newtype_variant(NAME, 13, "Channel", &c.id()),
        }
    }
}

struct TaggedSeq<'a> {
    items: &'a [Value],
    depth: usize,
    hashed: bool,
}

fn hashable<E: ser::Error>(v: &Value) -> Result<(), E> {
    match unhashable_part(v) {
        Some(found) => Err(E::custom(format!(
            "a {found} cannot be a dict key or set element (unhashable in Python)"
        ))),
        None => Ok(()),
    }
}

impl Serialize for TaggedSeq<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        for item in self.items {
            if self.hashed {
                hashable(item)?;
            }
            seq.serialize_element(&Tagged(item, self.depth))?;
        }
        seq.end()
    }
}

struct TaggedMap<'a> {
    pairs: &'a [(Value, Value)],
    depth: usize,
}

impl Serialize for TaggedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.pairs.len()))?;
        for (k, v) in self.pairs {
            hashable(k)?;
            map.serialize_entry(&Tagged(k, self.depth), &Tagged(v, self.depth))?;
        }
        map.end()
    }
}

/// Deserializes a tagged value within the default budget.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let budget = Budget::default();
    TaggedSeed {
        depth: 0,
        budget: &budget,
    }
    .deserialize(d)
}

/// `Call::kwargs`: `(name, value)` pairs whose values sit one container
/// deep (the arguments), as the Python worker counts them.
pub(crate) mod kwargs {
    use super::*;

    type Kwargs = Vec<(String, Value)>;

    pub(crate) fn serialize<S: Serializer>(kwargs: &Kwargs, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return kwargs.serialize(s);
        }
        let mut seq = s.serialize_seq(Some(kwargs.len()))?;
        for (name, value) in kwargs {
            seq.serialize_element(&(name, Tagged(value, 1)))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kwargs, D::Error> {
        if d.is_human_readable() {
            return <Kwargs as serde::Deserialize>::deserialize(d);
        }
        let budget = Budget::default();
        d.deserialize_seq(KwargsVisitor(&budget))
    }

    struct KwargsVisitor<'b>(&'b Budget);

    impl<'de> Visitor<'de> for KwargsVisitor<'_> {
        type Value = Kwargs;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("keyword arguments")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kwargs, A::Error> {
            let mut kwargs = Vec::with_capacity(room(seq.size_hint()));
            while let Some(pair) = seq.next_element_seed(PairSeed(self.0))? {
                kwargs.push(pair);
            }
            Ok(kwargs)
        }
    }

    struct PairSeed<'b>(&'b Budget);

    impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
        type Value = (String, Value);

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_tuple(2, self)
        }
    }

    impl<'de> Visitor<'de> for PairSeed<'_> {
        type Value = (String, Value);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a name and a value")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let missing = || de::Error::custom("a keyword argument needs a name and a value");
            let name: String = seq.next_element()?.ok_or_else(missing)?;
            self.0
                .charge(name.len() + std::mem::size_of::<(String, Value)>())?;
            let seed = TaggedSeed {
                depth: 1,
                budget: self.0,
            };
            let value = seq.next_element_seed(seed)?.ok_or_else(missing)?;
            Ok((name, value))
        }
    }
}

struct Budget {
    total: usize,
    left: Cell<usize>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            total: DEFAULT_VALUE_BUDGET,
            left: Cell::new(DEFAULT_VALUE_BUDGET),
        }
    }
}

impl Budget {
    fn charge<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.left.get().checked_sub(n) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "decoding the value needs more than its budget of {} bytes",
                self.total
            ))),
        }
    }
}

#[derive(Clone, Copy)]
struct TaggedSeed<'b> {
    depth: usize,
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for TaggedSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_enum(NAME, VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for TaggedSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an execnet value (a tag and its payload)")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (t, payload): (u32, _) = data.variant()?;
        let container = (u32::from(tag::LIST)..=u32::from(tag::FROZENSET)).contains(&t);
        if container && self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let inner = TaggedSeed {
            depth: self.depth + 1,
            budget: self.budget,
        };
        let items = |hashed: bool| ItemsSeed { inner, hashed };
        Ok(match u8::try_from(t).unwrap_or(u8::MAX) {
            tag::NONE => {
                payload.unit_variant()?;
                Value::None
            }
            tag::BOOL => Value::Bool(payload.newtype_variant()?),
            tag::INT => Value::from(payload.newtype_variant::<i64>()?),
            tag::BIG_INT => {
                let bytes: ByteBuf = payload.newtype_variant()?;
                self.budget.charge(bytes.len() + 48)?;
                Value::Int(Int::from_signed_bytes_le(&bytes))
            }
            tag::FLOAT => Value::Float(payload.newtype_variant()?),
            tag::COMPLEX => {
                let (re, im): (f64, f64) = payload.newtype_variant()?;
                Value::Complex(Complex::new(re, im))
            }
            tag::BYTES => {
                let bytes: ByteBuf = payload.newtype_variant()?;
                self.budget.charge(bytes.len())?;
                Value::Bytes(bytes.into_vec())
            }
            tag::STR => {
                let s: String = payload.newtype_variant()?;
                self.budget.charge(s.len())?;
                Value::Str(s)
            }
            tag::LIST => Value::List(payload.newtype_variant_seed(items(false))?),
            tag::TUPLE => Value::Tuple(payload.newtype_variant_seed(items(false))?),
            tag::SET => Value::Set(payload.newtype_variant_seed(items(true))?),
            tag::FROZENSET => Value::FrozenSet(payload.newtype_variant_seed(items(true))?),
            tag::DICT => Value::Dict(payload.newtype_variant_seed(PairsSeed { inner })?),
            tag::CHANNEL => Value::Channel(ChannelRef::new(payload.newtype_variant()?)),
            _ => {
                return Err(de::Error::custom(format_args!("unknown value tag {t}")));
            }
        })
    }
}

fn check_hashable<E: de::Error>(v: &Value) -> Result<(), E> {
    match unhashable_part(v) {
        Some(found) => Err(E::custom(format_args!(
            "a {found} cannot be a dict key or set element (unhashable)"
        ))),
        None => Ok(()),
    }
}

/// How many elements to make room for up front: what the format vouches
/// for (postcard gives no hint for a count beyond the bytes left), and no
/// more than a page's worth; the budget is charged element by element.
fn room(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(4096 / std::mem::size_of::<Value>())
}

#[derive(Clone, Copy)]
struct ItemsSeed<'b> {
    inner: TaggedSeed<'b>,
    hashed: bool,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a count and that many values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::with_capacity(room(seq.size_hint()));
        loop {
            self.inner.budget.charge(std::mem::size_of::<Value>())?;
            let Some(item) = seq.next_element_seed(self.inner)? else {
                break;
            };
            if self.hashed {
                check_hashable(&item)?;
            }
            items.push(item);
        }
        Ok(items)
    }
}

struct PairsSeed<'b> {
    inner: TaggedSeed<'b>,
}

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = Vec<(Value, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_> {
    type Value = Vec<(Value, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a count and that many pairs of values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(room(map.size_hint()) / 2);
        loop {
            self.inner.budget.charge(2 * std::mem::size_of::<Value>())?;
            let Some(k) = map.next_key_seed(self.inner)? else {
                break;
            };
            check_hashable(&k)?;
            pairs.push((k, map.next_value_seed(self.inner)?));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// postcard checks a sequence's count against the bytes left (its
    /// `SeqAccess::size_hint` says `None` beyond them) but passes a map's
    /// count through unchecked; the visitors here reserve at most a page
    /// either way, so a hostile count costs nothing before the input runs
    /// out.
    #[test]
    fn hostile_counts_reserve_nothing() {
        // A Dict (tag 10) and a List (tag 8) announcing 4,294,967,295
        // entries, with nothing after.
        for t in [10u8, 8] {
            let bytes = [t, 0xff, 0xff, 0xff, 0xff, 0x0f];
            assert!(postcard::from_bytes::<Value>(&bytes).is_err());
        }
        assert_eq!(room(Some(usize::MAX)), 4096 / std::mem::size_of::<Value>());
    }

    #[test]
    fn the_budget_stops_a_wide_value() {
        // A list of 3 million Nones: 96 MB as Values, over 64 MiB.
        let mut bytes = vec![8, 0xc0, 0x8d, 0xb7, 0x01];
        bytes.resize(bytes.len() + 3_000_000, 0);
        let err = postcard::from_bytes::<Value>(&bytes).unwrap_err();
        assert_eq!(err, postcard::Error::SerdeDeCustom);
        let mut ok = vec![8, 0xa0, 0x8d, 0x06];
        ok.resize(ok.len() + 100_000, 0);
        assert!(postcard::from_bytes::<Value>(&ok).is_ok());
    }
}
