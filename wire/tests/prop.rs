//! Property tests: codec round trips under random splits, serde round trips,
//! hostile input, limits.

use std::collections::HashMap;

use execnet_wire::{
    decode_message, encode_frame, encode_frame_limited, from_value, fuzz_decode, to_value, Call,
    ChannelRef, Complex, DecodeError, Decoder, EncodeError, Hello, Int, Item, Message, Value,
    DEFAULT_MAX_FRAME, MAX_DEPTH,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<i128>().prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Value::Int(Int::from_signed_bytes_le(&b))),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(re, im)| Value::Complex(Complex::new(re, im))),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Str),
        any::<u32>().prop_map(|id| Value::Channel(ChannelRef::new(id))),
    ]
}

/// Values Python can hash: scalars, and tuples/frozensets of them.
fn hashable() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Tuple),
            proptest::collection::vec(inner, 0..4).prop_map(Value::FrozenSet),
        ]
    })
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec((hashable(), inner), 0..5).prop_map(Value::Dict),
            proptest::collection::vec(hashable(), 0..5).prop_map(Value::Set),
            proptest::collection::vec(hashable(), 0..5).prop_map(Value::FrozenSet),
        ]
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<u32>(), value())
            .prop_map(|(w, m, info)| Message::Hello(Hello::new(w, m, info))),
        any::<u32>().prop_map(|channel| Message::Status { channel }),
        value().prop_map(|settings| Message::Reconfigure { settings }),
        Just(Message::Terminate),
        (
            any::<u32>(),
            ".{0,30}",
            proptest::option::of(".{0,10}"),
            proptest::option::of((
                ".{0,10}",
                proptest::collection::vec((".{0,5}", value()), 0..3)
            ))
        )
            .prop_map(|(channel, source, filename, call)| Message::ChannelExec {
                channel,
                source,
                filename,
                call: call.map(|(function, kwargs)| Call { function, kwargs }),
            }),
        (any::<u32>(), value()).prop_map(|(channel, data)| Message::ChannelData {
            channel,
            data: Item::from_value(&data).expect("hashable keys encode")
        }),
        any::<u32>().prop_map(|channel| Message::ChannelClose { channel }),
        (any::<u32>(), ".{0,30}")
            .prop_map(|(channel, error)| Message::ChannelCloseError { channel, error }),
        any::<u32>().prop_map(|channel| Message::ChannelLastMessage { channel }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(channel, bytes)| Message::Credit { channel, bytes }),
    ]
}

/// Equality that treats NaN (and -0.0) bitwise: compare the encodings.
fn bytes_of(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(msg, &mut out).expect("encodes");
    out
}

fn data(v: Value) -> Message {
    Message::ChannelData {
        channel: 1,
        data: Item::from_value(&v).expect("encodes"),
    }
}

/// The item of Rust data, both ways: straight, and through its `Value`.
fn both_ways<T>(x: &T) -> Result<(), TestCaseError>
where
    T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let direct = Item::encode(x).expect("encodes");
    let via_value = Item::from_value(&to_value(x).expect("to_value")).expect("encodes");
    prop_assert_eq!(direct.encoded(), via_value.encoded());
    let back: T = direct.decode().expect("decodes");
    let back_via_value: T = from_value(direct.to_value().expect("to Value")).expect("from_value");
    prop_assert_eq!(format!("{back:?}"), format!("{x:?}"));
    prop_assert_eq!(format!("{back_via_value:?}"), format!("{x:?}"));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_survive_random_splits(
        msgs in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        zero_copy in any::<bool>(),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(bytes_of).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            let piece = &stream[w[0]..w[1]];
            if zero_copy {
                d.read_buf(piece.len())[..piece.len()].copy_from_slice(piece);
                d.commit(piece.len());
            } else {
                d.feed(piece);
            }
            while let Some(f) = d.next_frame().expect("valid stream") {
                prop_assert_eq!(f.len as usize, bytes_of(&f.message).len() - 4);
                got.push(f.message);
            }
        }
        prop_assert_eq!(d.finish(), Ok(()));
        prop_assert_eq!(got.len(), msgs.len());
        for (a, b) in got.iter().zip(&msgs) {
            prop_assert_eq!(bytes_of(a), bytes_of(b));
        }
    }

    #[test]
    fn values_convert_to_themselves(v in value()) {
        let want = bytes_of(&data(v.clone()));
        prop_assert_eq!(bytes_of(&data(to_value(&v).expect("to_value"))), want.clone());
        let item = Item::from_value(&v).expect("encodes");
        let direct: Value = item.decode().expect("decodes");
        prop_assert_eq!(bytes_of(&data(direct)), want.clone());
        prop_assert_eq!(bytes_of(&data(from_value::<Value>(v).expect("from_value"))), want);
        // postcard, through Value's own Serialize/Deserialize: the same bytes.
        let msg = data(item.to_value().expect("to Value"));
        let Message::ChannelData { data: expected, .. } = &msg else { unreachable!() };
        let tagged = postcard::to_stdvec(&item.to_value().expect("to Value")).expect("postcard");
        prop_assert_eq!(&tagged[..], &*expected.encoded());
        let back: Value = postcard::from_bytes(&tagged).expect("postcard decodes");
        let again = Item::from_value(&back).expect("encodes");
        prop_assert_eq!(again.encoded(), expected.encoded());
    }

    #[test]
    fn rust_data_encodes_as_its_value(
        x in (any::<Option<u16>>(), proptest::collection::vec((".{0,5}", any::<i128>()), 0..5)),
        y in proptest::collection::btree_map(any::<i32>(), any::<bool>(), 0..5),
        z in proptest::collection::vec(any::<u64>(), 0..5),
    ) {
        both_ways(&x)?;
        both_ways(&y)?;
        both_ways(&z)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_decode(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(msg in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = bytes_of(&msg);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        fuzz_decode(&bytes);
        fuzz_decode(&bytes[4..]);
    }

    #[test]
    fn vec_i64(x in proptest::collection::vec(any::<i64>(), 0..20)) {
        prop_assert_eq!(from_value::<Vec<i64>>(to_value(&x).unwrap()).unwrap(), x);
    }

    #[test]
    fn tuple_u64_string_bytes(x in (any::<u64>(), ".{0,10}", proptest::collection::vec(any::<u8>(), 0..10))) {
        let (a, b, c) = x.clone();
        let v = to_value(&(a, &b, serde_bytes::Bytes::new(&c))).unwrap();
        let back: (u64, String, serde_bytes::ByteBuf) = from_value(v).unwrap();
        prop_assert_eq!((back.0, back.1, back.2.into_vec()), x);
    }

    #[test]
    fn hashmap_string_i128(x in proptest::collection::hash_map(".{0,6}", any::<i128>(), 0..8)) {
        prop_assert_eq!(from_value::<HashMap<String, i128>>(to_value(&x).unwrap()).unwrap(), x);
    }

    #[test]
    fn nested_structs(x in any::<Option<u16>>(), names in proptest::collection::vec(".{0,5}", 0..4), f in any::<f32>()) {
        let outer = Outer {
            id: x,
            inner: names.iter().map(|n| Inner { name: n.clone(), weight: f, tags: (1, n.len() as u8) }).collect(),
            kind: if names.is_empty() { Kind::Plain } else { Kind::Sized { n: names.len() as u32 } },
        };
        let back: Outer = from_value(to_value(&outer).unwrap()).unwrap();
        prop_assert_eq!(format!("{back:?}"), format!("{outer:?}"));
        both_ways(&outer)?;
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Inner {
    name: String,
    weight: f32,
    tags: (i8, u8),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Kind {
    Plain,
    Sized { n: u32 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Outer {
    id: Option<u16>,
    inner: Vec<Inner>,
    kind: Kind,
}

#[test]
fn four_gib_announcement_fails_before_allocating() {
    let mut d = Decoder::default();
    d.feed(&[0xff, 0xff, 0xff, 0xff, 5]);
    assert_eq!(
        d.next_frame(),
        Err(DecodeError::FrameTooLarge {
            len: u32::MAX,
            max: DEFAULT_MAX_FRAME
        })
    );
    assert_eq!(
        d.next_frame().unwrap_err().to_string(),
        "frame announces 4294967295 bytes, more than the limit of 268435456"
    );
    // read_buf does not make room for a refused frame either.
    assert!(d.read_buf(16).len() < 1 << 20);
}

#[test]
fn truncated_frame_reported_by_finish() {
    let frame = bytes_of(&data(Value::from("hello")));
    let mut d = Decoder::default();
    d.feed(&frame[..frame.len() - 1]);
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(
        d.finish(),
        Err(DecodeError::Truncated {
            buffered: frame.len() - 1,
            expected: frame.len()
        })
    );
}

fn nest(depth: usize) -> Value {
    let mut v = Value::from(1);
    for _ in 0..depth {
        v = Value::List(vec![v]);
    }
    v
}

#[test]
fn depth_limit_both_ways() {
    // 200 nested containers are fine both ways.
    let ok = bytes_of(&data(nest(MAX_DEPTH)));
    assert_eq!(
        decode_message(&ok[4..]).map(|m| bytes_of(&m)),
        Ok(ok.clone())
    );
    // 201: the encoder refuses.
    assert_eq!(
        Item::from_value(&nest(MAX_DEPTH + 1)),
        Err(EncodeError::TooDeep)
    );
    // 201 by hand: the decoder refuses, at the 201st container (byte 2 + 200 x 2).
    let mut body = vec![5, 1];
    for _ in 0..=MAX_DEPTH {
        body.extend_from_slice(&[8, 1]);
    }
    body.extend_from_slice(&[2, 2]);
    assert_eq!(
        decode_message(&body),
        Err(DecodeError::TooDeep { offset: 402 })
    );
    // Hostile depth far beyond the limit fails the same way, without recursion trouble.
    let mut deep = vec![5, 1];
    deep.extend(std::iter::repeat_n([9u8, 1], 100_000).flatten());
    assert!(matches!(
        decode_message(&deep),
        Err(DecodeError::TooDeep { .. })
    ));
}

#[test]
fn fifty_mib_bytes_round_trip() {
    let payload: Vec<u8> = (0..50 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let msg = data(Value::Bytes(payload.clone()));
    let mut out = Vec::new();
    let n = encode_frame(&msg, &mut out).expect("fits the default limit");
    assert_eq!(n as usize, out.len() - 4);
    let mut d = Decoder::default();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let room = d.read_buf(64 * 1024);
        let k = room.len().min(rest.len()).min(1 << 20);
        room[..k].copy_from_slice(&rest[..k]);
        d.commit(k);
        rest = &rest[k..];
    }
    let frame = d.next_frame().expect("valid").expect("complete");
    assert_eq!(frame.len, n);
    assert!(frame.message == msg);
    let Message::ChannelData { data, .. } = frame.message else {
        panic!("not data")
    };
    let back: serde_bytes::ByteBuf = data.decode().expect("decodes");
    assert!(back.into_vec() == payload);
    // With a smaller peer limit the same item is refused on send.
    let mut small = Vec::new();
    assert!(matches!(
        encode_frame_limited(&msg, &mut small, 1 << 20),
        Err(EncodeError::FrameTooLarge { max: 1048576, .. })
    ));
    assert!(small.is_empty());
}
