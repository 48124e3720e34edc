//! Values nested far deeper than anything can travel (a million levels,
//! built by the program itself): every operation returns an error or cuts
//! the output short, and none overflows the stack. Run in debug builds,
//! on the test harness's 2 MiB threads, where recursion would fail first.

use execnet_wire::{
    decode_message, encode_frame, from_value, to_value, ChannelRef, DecodeError, EncodeError,
    Hello, Item, Message, Value, ValueError, MAX_DEPTH,
};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

const DEEP: usize = 1_000_000;

/// A million containers, of every kind in turn, a channel at the bottom.
fn deep() -> Value {
    let mut v = Value::Channel(ChannelRef::new(4));
    for i in 0..DEEP {
        v = match i % 4 {
            0 => Value::List(vec![v, Value::None]),
            1 => Value::Tuple(vec![Value::from(i), v]),
            2 => Value::Dict(vec![(Value::from("k"), v)]),
            _ => Value::List(vec![v]),
        };
    }
    v
}

/// Tuples all the way down: hashable-looking, as a dict key would be.
fn deep_tuple() -> Value {
    let mut v = Value::List(vec![]);
    for _ in 0..DEEP {
        v = Value::Tuple(vec![v]);
    }
    v
}

#[test]
fn dropping_cloning_comparing_printing() {
    let v = deep();
    let w = v.clone();
    assert!(v == w);
    assert!(v != Value::None);
    let repr = v.repr();
    assert!(
        repr.len() < 10_000 && repr.contains("..."),
        "{}",
        repr.len()
    );
    assert_eq!(v.to_string(), repr);
    let debug = format!("{v:?}");
    assert!(
        debug.len() < 10_000 && debug.contains("..."),
        "{}",
        debug.len()
    );
    let mut seen = Vec::new();
    let mut v = v;
    v.visit_channels_mut(&mut |c| seen.push(c.id()));
    assert_eq!(seen, [4]);
    assert!(!deep_tuple().is_hashable());
    drop(v);
    drop(w);
}

#[test]
fn converting_refuses() {
    assert_eq!(to_value(&deep()), Err(ValueError::TooDeep));
    assert_eq!(from_value::<Value>(deep()), Err(ValueError::TooDeep));
    assert_eq!(
        from_value::<serde_json::Value>(deep()),
        Err(ValueError::TooDeep)
    );
    assert!(from_value::<Vec<Value>>(deep()).is_err());
    let err = serde_json::to_string(&deep()).unwrap_err();
    assert!(err.to_string().contains("deeper"), "{err}");
}

#[test]
fn encoding_refuses() {
    assert_eq!(Item::from_value(&deep()), Err(EncodeError::TooDeep));
    assert_eq!(Item::encode(&deep()), Err(EncodeError::TooDeep));
    let key = Value::Dict(vec![(deep_tuple(), Value::None)]);
    assert!(matches!(
        Item::from_value(&key),
        Err(EncodeError::Unhashable { .. } | EncodeError::TooDeep)
    ));
    // Through postcard and Value's own Serialize (a Hello's info).
    let hello = Message::Hello(Hello::new(1, 2, deep()));
    let mut out = Vec::new();
    assert_eq!(encode_frame(&hello, &mut out), Err(EncodeError::TooDeep));
    assert!(out.is_empty());
    assert!(postcard::to_stdvec(&deep()).is_err());
}

/// A value as deep as asked that exists only while it is serialized: Rust
/// data of any depth is refused before the stack runs out.
struct Endless(usize);

impl Serialize for Endless {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(1))?;
        if self.0 > 0 {
            seq.serialize_element(&Endless(self.0 - 1))?;
        }
        seq.end()
    }
}

#[test]
fn rust_data_of_any_depth_is_refused() {
    assert_eq!(to_value(&Endless(DEEP)), Err(ValueError::TooDeep));
    assert_eq!(Item::encode(&Endless(DEEP)), Err(EncodeError::TooDeep));
    assert!(to_value(&Endless(MAX_DEPTH - 1)).is_ok());
    assert!(Item::encode(&Endless(MAX_DEPTH - 1)).is_ok());
}

#[test]
fn decoding_refuses() {
    // A million nested lists on the wire: refused at the 201st, no recursion.
    let mut body = vec![5, 1];
    body.extend(std::iter::repeat_n([8u8, 1], DEEP).flatten());
    body.push(0);
    assert_eq!(
        decode_message(&body),
        Err(DecodeError::TooDeep {
            offset: 2 + 2 * MAX_DEPTH
        })
    );
    // The same in a Hello's info, which postcard decodes through Value's
    // own Deserialize.
    let mut hello = vec![0, b'E', b'X', b'N', b'T', 1, 1, 1];
    hello.extend(std::iter::repeat_n([8u8, 1], DEEP).flatten());
    hello.push(0);
    assert!(matches!(
        decode_message(&hello),
        Err(DecodeError::TooDeep { .. })
    ));
    assert!(postcard::from_bytes::<Value>(&body[2..]).is_err());
    assert!(Item::from_bytes(body[2..].to_vec()).is_err());
}
