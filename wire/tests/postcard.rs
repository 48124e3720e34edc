//! WIRE.md says that a serde mirror of the message types, encoded with
//! postcard, gives the same bytes as our body encoding: a third party can
//! implement the protocol with `#[derive(Serialize)]` and postcard. This
//! proves it (the crate's own message types are encoded by postcard too,
//! and must agree with both).

use execnet_wire::{encode_frame, Call, ChannelRef, Complex, Hello, Int, Item, Message, Value};
use serde::Serialize;

/// The mirror of `Value`: the variant order gives the tags.
#[derive(Serialize)]
enum MValue {
    None,
    Bool(bool),
    Int(i64),
    BigInt(#[serde(with = "serde_bytes")] Vec<u8>),
    Float(f64),
    Complex(f64, f64),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Str(String),
    List(Vec<MValue>),
    Tuple(Vec<MValue>),
    Dict(Vec<(MValue, MValue)>),
    Set(Vec<MValue>),
    FrozenSet(Vec<MValue>),
    Channel(u32),
}

/// The mirror of `Message`.
#[derive(Serialize)]
enum MMessage {
    Hello {
        magic: [u8; 4],
        version: u32,
        window: u64,
        max_frame: u32,
        info: MValue,
    },
    Status {
        channel: u32,
    },
    Reconfigure {
        settings: MValue,
    },
    Terminate,
    ChannelExec {
        channel: u32,
        source: String,
        filename: Option<String>,
        call: Option<(String, Vec<(String, MValue)>)>,
    },
    ChannelData {
        channel: u32,
        data: MValue,
    },
    ChannelClose {
        channel: u32,
    },
    ChannelCloseError {
        channel: u32,
        error: String,
    },
    ChannelLastMessage {
        channel: u32,
    },
    Credit {
        channel: u32,
        bytes: u64,
    },
}

fn mirror_value(v: &Value) -> MValue {
    let all = |items: &[Value]| items.iter().map(mirror_value).collect();
    match v {
        Value::None => MValue::None,
        Value::Bool(b) => MValue::Bool(*b),
        Value::Int(n) => match n.to_i64() {
            Some(small) => MValue::Int(small),
            None => MValue::BigInt(n.to_signed_bytes_le()),
        },
        Value::Float(x) => MValue::Float(*x),
        Value::Complex(c) => MValue::Complex(c.re, c.im),
        Value::Bytes(b) => MValue::Bytes(b.clone()),
        Value::Str(s) => MValue::Str(s.clone()),
        Value::List(items) => MValue::List(all(items)),
        Value::Tuple(items) => MValue::Tuple(all(items)),
        Value::Dict(pairs) => MValue::Dict(
            pairs
                .iter()
                .map(|(k, v)| (mirror_value(k), mirror_value(v)))
                .collect(),
        ),
        Value::Set(items) => MValue::Set(all(items)),
        Value::FrozenSet(items) => MValue::FrozenSet(all(items)),
        Value::Channel(c) => MValue::Channel(c.id()),
        other => panic!("no mirror for {other:?}"),
    }
}

fn mirror(msg: &Message) -> MMessage {
    match msg {
        Message::Hello(h) => MMessage::Hello {
            magic: h.magic,
            version: h.version,
            window: h.window,
            max_frame: h.max_frame,
            info: mirror_value(&h.info),
        },
        Message::Status { channel } => MMessage::Status { channel: *channel },
        Message::Reconfigure { settings } => MMessage::Reconfigure {
            settings: mirror_value(settings),
        },
        Message::Terminate => MMessage::Terminate,
        Message::ChannelExec {
            channel,
            source,
            filename,
            call,
        } => MMessage::ChannelExec {
            channel: *channel,
            source: source.clone(),
            filename: filename.clone(),
            call: call.as_ref().map(|c| {
                let kwargs = c.kwargs.iter().map(|(k, v)| (k.clone(), mirror_value(v)));
                (c.function.clone(), kwargs.collect())
            }),
        },
        Message::ChannelData { channel, data } => MMessage::ChannelData {
            channel: *channel,
            data: mirror_value(&data.to_value().expect("decodes")),
        },
        Message::ChannelClose { channel } => MMessage::ChannelClose { channel: *channel },
        Message::ChannelCloseError { channel, error } => MMessage::ChannelCloseError {
            channel: *channel,
            error: error.clone(),
        },
        Message::ChannelLastMessage { channel } => {
            MMessage::ChannelLastMessage { channel: *channel }
        }
        Message::Credit { channel, bytes } => MMessage::Credit {
            channel: *channel,
            bytes: *bytes,
        },
    }
}

#[test]
fn postcard_gives_the_same_bytes() {
    let everything = Value::Dict(vec![
        (Value::from("none"), Value::None),
        (Value::from(-3), Value::Bool(true)),
        (Value::from(i64::MIN), Value::Int(Int::from(u128::MAX))),
        (Value::Float(-1.25), Value::Int(Int::from(i128::MIN))),
        (
            Value::Complex(Complex::new(1.0, -2.0)),
            Value::Bytes(vec![0, 1, 255]),
        ),
        (
            Value::Tuple(vec![
                Value::from("é"),
                Value::FrozenSet(vec![Value::from(1)]),
            ]),
            Value::List(vec![Value::Set(vec![Value::from(2)]), Value::Tuple(vec![])]),
        ),
        (
            Value::Channel(ChannelRef::new(300)),
            Value::Str("x".repeat(200)),
        ),
    ]);
    let messages = [
        Message::Hello(Hello::default()),
        Message::Hello(Hello::new(u64::MAX, u32::MAX, everything.clone())),
        Message::Status { channel: 1 },
        Message::Reconfigure {
            settings: Value::Dict(vec![]),
        },
        Message::Terminate,
        Message::ChannelExec {
            channel: u32::MAX,
            source: "channel.send(1)\n".into(),
            filename: None,
            call: None,
        },
        Message::ChannelExec {
            channel: 1,
            source: "def f(channel, **kw): pass\n".into(),
            filename: Some("/src/f.py".into()),
            call: Some(Call {
                function: "f".into(),
                kwargs: vec![("a".into(), everything.clone()), ("b".into(), Value::None)],
            }),
        },
        Message::ChannelData {
            channel: 2,
            data: Item::from_value(&everything).expect("encodes"),
        },
        Message::ChannelData {
            channel: 1,
            data: Item::encode(serde_bytes::Bytes::new(&[7; 1000])).expect("encodes"),
        },
        Message::ChannelClose { channel: 3 },
        Message::ChannelCloseError {
            channel: 5,
            error: "Traceback ...".into(),
        },
        Message::ChannelLastMessage { channel: 300 },
        Message::Credit {
            channel: 1,
            bytes: 1 << 40,
        },
    ];
    for msg in &messages {
        let mut ours = Vec::new();
        encode_frame(msg, &mut ours).expect("encodes");
        let theirs = postcard::to_stdvec(&mirror(msg)).expect("postcard encodes");
        assert_eq!(ours[4..], theirs[..], "{msg:?}");
        let derived = postcard::to_stdvec(msg).expect("postcard encodes");
        assert_eq!(ours[4..], derived[..], "{msg:?}");
    }
}
