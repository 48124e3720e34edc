//! `to_value` / `from_value`: the mapping of API.md, leniency, errors, and
//! the channel protocol.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use execnet_wire::{from_value, to_value, ChannelRef, Complex, Int, Item, Value, ValueError};
use serde::{Deserialize, Serialize};

fn s(x: &str) -> Value {
    Value::from(x)
}

fn i(x: i64) -> Value {
    Value::from(x)
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Pair(u8, bool);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(u32, u32),
    Named { name: String },
}

#[test]
fn mapping_of_rust_types() {
    assert_eq!(to_value(&()).unwrap(), Value::None);
    assert_eq!(to_value(&None::<i32>).unwrap(), Value::None);
    assert_eq!(to_value(&Some(5u8)).unwrap(), i(5));
    assert_eq!(to_value(&Unit).unwrap(), Value::None);
    assert_eq!(to_value(&'é').unwrap(), s("é"));
    assert_eq!(
        to_value(&(1, "a")).unwrap(),
        Value::Tuple(vec![i(1), s("a")])
    );
    assert_eq!(
        to_value(&Pair(1, true)).unwrap(),
        Value::Tuple(vec![i(1), Value::Bool(true)])
    );
    assert_eq!(
        to_value(&vec![1, 2]).unwrap(),
        Value::List(vec![i(1), i(2)])
    );
    assert_eq!(
        to_value(&[1, 2][..]).unwrap(),
        Value::List(vec![i(1), i(2)])
    );
    assert_eq!(
        to_value(&serde_bytes::ByteBuf::from(vec![0u8, 1])).unwrap(),
        Value::Bytes(vec![0, 1])
    );
    assert_eq!(
        to_value(&Point { x: 1, y: None }).unwrap(),
        Value::Dict(vec![(s("x"), i(1)), (s("y"), Value::None)])
    );
    let map: BTreeMap<i32, &str> = [(1, "a")].into();
    assert_eq!(to_value(&map).unwrap(), Value::Dict(vec![(i(1), s("a"))]));
    let set: BTreeSet<u8> = [2, 1].into();
    assert_eq!(to_value(&set).unwrap(), Value::List(vec![i(1), i(2)]));
    assert_eq!(to_value(&Shape::Empty).unwrap(), s("Empty"));
    assert_eq!(
        to_value(&Shape::Circle(1.5)).unwrap(),
        Value::Dict(vec![(s("Circle"), Value::Float(1.5))])
    );
    assert_eq!(
        to_value(&Shape::Rect(1, 2)).unwrap(),
        Value::Dict(vec![(s("Rect"), Value::Tuple(vec![i(1), i(2)]))])
    );
    assert_eq!(
        to_value(&Shape::Named { name: "n".into() }).unwrap(),
        Value::Dict(vec![(s("Named"), Value::Dict(vec![(s("name"), s("n"))]))])
    );
    assert_eq!(
        to_value(&u128::MAX).unwrap(),
        Value::Int(Int::from(u128::MAX))
    );
    assert_eq!(
        to_value(&i128::MIN).unwrap(),
        Value::Int(Int::from(i128::MIN))
    );
}

#[test]
fn rust_types_come_back() {
    fn back<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(x: T) {
        let v = to_value(&x).unwrap();
        assert_eq!(from_value::<T>(v).unwrap(), x);
    }
    back(Point {
        x: -3,
        y: Some("y".into()),
    });
    back(Unit);
    back(Pair(7, false));
    back(Shape::Empty);
    back(Shape::Circle(2.0));
    back(Shape::Rect(3, 4));
    back(Shape::Named { name: "q".into() });
    back(Some(Some(1u8)));
    back('x');
    back(u128::MAX);
    back(i128::MIN);
    back([1u8, 2, 3]);
    back(serde_bytes::ByteBuf::from(vec![9u8; 3]));
    back(Complex::new(1.0, -2.0));
    back(Int::from(u128::MAX));
    back("1".repeat(60).parse::<Int>().unwrap());
}

#[test]
fn receiving_is_lenient_where_python_is() {
    let tuple = Value::Tuple(vec![i(1), i(2)]);
    assert_eq!(from_value::<Vec<i32>>(tuple.clone()).unwrap(), [1, 2]);
    assert_eq!(
        from_value::<(i32, i32)>(Value::List(vec![i(1), i(2)])).unwrap(),
        (1, 2)
    );
    assert_eq!(from_value::<f64>(i(3)).unwrap(), 3.0);
    assert_eq!(
        from_value::<Vec<u8>>(Value::Bytes(vec![1, 2])).unwrap(),
        [1, 2]
    );
    let set = Value::Set(vec![i(1), i(2)]);
    assert_eq!(
        from_value::<HashSet<i32>>(set.clone()).unwrap(),
        [1, 2].into()
    );
    assert_eq!(
        from_value::<BTreeSet<i32>>(Value::FrozenSet(vec![i(3)])).unwrap(),
        [3].into()
    );
    assert_eq!(from_value::<Vec<i32>>(set).unwrap(), [1, 2]);
    assert_eq!(
        from_value::<Complex>(Value::Complex(Complex::new(1.0, 2.0))).unwrap(),
        Complex::new(1.0, 2.0)
    );
    assert_eq!(from_value::<Option<i32>>(Value::None).unwrap(), None);
}

#[test]
fn errors_say_what_was_expected_and_found() {
    let err = |r: Result<(), ValueError>| r.unwrap_err().to_string();
    assert_eq!(
        err(from_value::<i32>(s("abc")).map(drop)),
        "expected i32, found str 'abc'"
    );
    assert_eq!(
        err(from_value::<u8>(i(300)).map(drop)),
        "int 300 out of range for u8"
    );
    assert_eq!(
        err(from_value::<u64>(i(-1)).map(drop)),
        "int -1 out of range for u64"
    );
    assert_eq!(
        err(from_value::<i64>(Value::Int(Int::from(u64::MAX))).map(drop)),
        "int 18446744073709551615 out of range for i64"
    );
    assert_eq!(
        err(from_value::<(i32, i32)>(Value::List(vec![i(1)])).map(drop)),
        "expected tuple of 2 elements, found 1 elements"
    );
    assert_eq!(
        err(from_value::<String>(Value::Bytes(vec![])).map(drop)),
        "expected str, found bytes b''"
    );
    assert_eq!(
        err(from_value::<serde_bytes::ByteBuf>(s("x")).map(drop)),
        "expected bytes, found str 'x'"
    );
    assert_eq!(
        err(from_value::<bool>(Value::None).map(drop)),
        "expected bool, found None"
    );
    assert!(from_value::<Point>(Value::Dict(vec![(s("y"), Value::None)])).is_err());
    assert!(from_value::<Shape>(s("Nope")).is_err());
    assert!(from_value::<char>(s("ab")).is_err());
}

#[test]
fn every_value_converts_to_itself() {
    let channel = ChannelRef::new(5).with_attachment(Arc::new("handle"));
    let values = vec![
        Value::None,
        Value::Bool(false),
        i(-7),
        Value::Int(Int::from(u64::MAX)),
        Value::Int(Int::from(i128::MIN)),
        Value::Int(format!("-{}", "9".repeat(50)).parse().unwrap()),
        Value::Float(-0.0),
        Value::Complex(Complex::new(1.0, 2.0)),
        Value::Bytes(vec![0, 255]),
        s("s"),
        Value::List(vec![i(1), Value::Tuple(vec![])]),
        Value::Tuple(vec![i(1)]),
        Value::Dict(vec![(Value::Tuple(vec![i(1)]), Value::Set(vec![]))]),
        Value::Set(vec![Value::FrozenSet(vec![s("a")])]),
        Value::FrozenSet(vec![]),
        Value::Channel(channel),
    ];
    for v in values {
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        assert_eq!(to_value(&v).unwrap(), v);
        let nested = (3i32, v.clone());
        let back: (i32, Value) = from_value(to_value(&nested).unwrap()).unwrap();
        assert_eq!(back, nested);
        let list: Vec<Value> = from_value(Value::List(vec![v.clone(), v.clone()])).unwrap();
        assert_eq!(list, [v.clone(), v]);
    }
}

fn attachment_str(c: &ChannelRef) -> Option<&'static str> {
    c.attachment()
        .and_then(|a| a.downcast_ref::<&'static str>())
        .copied()
}

#[test]
fn channel_attachments_travel_through_serde() {
    let c = ChannelRef::new(3).with_attachment(Arc::new("live"));
    let v = to_value(&(c.clone(), 1)).unwrap();
    let Value::Tuple(items) = &v else {
        panic!("{v:?}")
    };
    let Value::Channel(inner) = &items[0] else {
        panic!()
    };
    assert_eq!(attachment_str(inner), Some("live"));
    let (back, _): (ChannelRef, i32) = from_value(v.clone()).unwrap();
    assert_eq!(back.id(), 3);
    assert_eq!(attachment_str(&back), Some("live"));
    let Value::Tuple(items) = &from_value::<Value>(v).unwrap() else {
        panic!()
    };
    let Value::Channel(inner) = &items[0] else {
        panic!()
    };
    assert_eq!(attachment_str(inner), Some("live"));
    assert!(from_value::<ChannelRef>(i(3)).is_err());
}

#[test]
fn attachments_travel_through_items_by_id() {
    let (a, b) = (ChannelRef::new(3), ChannelRef::new(5));
    let a = a.with_attachment(Arc::new("three"));
    let b = b.with_attachment(Arc::new("five"));
    let mut item = Item::encode(&(&a, vec![&b, &a])).unwrap();
    // Each channel once, by id.
    let listed: Vec<_> = item.channels().iter().map(attachment_str).collect();
    assert_eq!(listed, [Some("three"), Some("five")]);
    let (x, ys): (ChannelRef, Vec<ChannelRef>) = item.decode().unwrap();
    assert_eq!(
        [&x, &ys[0], &ys[1]].map(attachment_str),
        [Some("three"), Some("five"), Some("three")]
    );
    // Received bytes carry ids only, until someone attaches handles.
    let mut received = Item::from_bytes(item.encoded().to_vec()).unwrap();
    assert!(received.channels().iter().all(|c| c.attachment().is_none()));
    for c in received.channels_mut() {
        let name: Arc<dyn Any + Send + Sync> = Arc::new(c.id());
        c.set_attachment(Some(name));
    }
    let v = received.to_value().unwrap();
    let Value::Tuple(parts) = &v else { panic!() };
    let Value::Channel(first) = &parts[0] else {
        panic!()
    };
    assert_eq!(
        first.attachment().and_then(|a| a.downcast_ref::<u32>()),
        Some(&3)
    );
    item.channels_mut()[0].take_attachment();
}

/// Serializing a channel with another format neither keeps its attachment
/// alive (a gateway held by it would never be dropped) nor lets a later
/// deserialization on the thread pick it up under another id.
#[test]
fn attachments_never_outlive_the_call() {
    let live: Arc<dyn Any + Send + Sync> = Arc::new("gateway");
    let c = ChannelRef::new(7).with_attachment(live.clone());
    assert_eq!(serde_json::to_string(&c).unwrap(), "7");
    assert_eq!(
        serde_json::to_string(&vec![c.clone(), c.clone()]).unwrap(),
        "[7,7]"
    );
    drop(c);
    assert_eq!(Arc::strong_count(&live), 1, "the attachment was kept");
    // A failing serialization (a map key must be a string in JSON) leaves
    // nothing behind either.
    let c = ChannelRef::new(7).with_attachment(live.clone());
    let map: std::collections::BTreeMap<(i32, i32), ChannelRef> = [((1, 2), c)].into();
    assert!(serde_json::to_string(&map).is_err());
    drop(map);
    assert_eq!(Arc::strong_count(&live), 1, "the attachment was kept");
    let back: ChannelRef = serde_json::from_str("7").unwrap();
    assert!(back.attachment().is_none());
    // Another id never receives an attachment meant for channel 3.
    let three = ChannelRef::new(3).with_attachment(Arc::new("three"));
    let v = to_value(&three).unwrap();
    let Value::Channel(got) = &v else { panic!() };
    assert_eq!(attachment_str(got), Some("three"));
}

/// A stand-in for the gateway's channel handle: it serializes through a
/// `ChannelRef` carrying itself, and comes back from the `ChannelRef`'s
/// attachment.
#[derive(Debug)]
struct Handle(u32, Arc<dyn Any + Send + Sync>);

impl Serialize for Handle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ChannelRef::new(self.0)
            .with_attachment(self.1.clone())
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Handle, D::Error> {
        let c = ChannelRef::deserialize(d)?;
        let a = c
            .attachment()
            .cloned()
            .ok_or_else(|| serde::de::Error::custom("no attachment"))?;
        Ok(Handle(c.id(), a))
    }
}

#[test]
fn handle_protocol() {
    let v = to_value(&vec![Handle(7, Arc::new("h"))]).unwrap();
    let Value::List(items) = &v else { panic!() };
    let Value::Channel(c) = &items[0] else {
        panic!()
    };
    assert_eq!((c.id(), attachment_str(c)), (7, Some("h")));
    let back: Vec<Handle> = from_value(v).unwrap();
    assert_eq!(back[0].0, 7);
    assert_eq!(back[0].1.downcast_ref::<&str>(), Some(&"h"));
    let item = Item::encode(&vec![Handle(8, Arc::new("i"))]).unwrap();
    let back: Vec<Handle> = item.decode().unwrap();
    assert_eq!(
        (back[0].0, back[0].1.downcast_ref::<&str>()),
        (8, Some(&"i"))
    );
}

#[test]
fn natural_shape_in_other_formats() {
    let v = Value::Dict(vec![
        (s("none"), Value::None),
        (s("set"), Value::Set(vec![i(1)])),
        (s("tuple"), Value::Tuple(vec![i(2), s("x")])),
        (s("complex"), Value::Complex(Complex::new(1.0, 2.0))),
        (s("big"), Value::Int(Int::from(u128::MAX))),
        (s("huge"), Value::Int("1".repeat(40).parse().unwrap())),
        (s("channel"), Value::Channel(ChannelRef::new(4))),
    ]);
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(
        json,
        r#"{"none":null,"set":[1],"tuple":[2,"x"],"complex":[1.0,2.0],"big":340282366920938463463374607431768211455,"huge":"1111111111111111111111111111111111111111","channel":4}"#
    );
    let back: Value = serde_json::from_str(r#"{"a":[1,-2,1.5,null,true,"s"]}"#).unwrap();
    assert_eq!(back.repr(), "{'a': [1, -2, 1.5, None, True, 's']}");
    let mut pairs = v.into_pairs().unwrap();
    pairs.retain(|(k, _)| !matches!(k.as_str(), Some("big" | "huge")));
    let json_value: serde_json::Value = from_value(Value::Dict(pairs)).unwrap();
    assert_eq!(
        json_value,
        serde_json::json!({"none": null, "set": [1], "tuple": [2, "x"], "complex": [1.0, 2.0], "channel": 4})
    );
}
