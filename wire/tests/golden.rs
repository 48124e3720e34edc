//! Golden bytes: every example of `WIRE.md`, section 7.

use execnet_wire::{
    decode_message, encode_frame, Call, ChannelRef, Decoder, Hello, Int, Item, Message, Value,
};

fn data(channel: u32, data: Value) -> Message {
    Message::ChannelData {
        channel,
        data: Item::from_value(&data).expect("encodes"),
    }
}

fn cases() -> Vec<(Message, &'static str)> {
    let big = |s: &str| Value::Int(s.parse::<Int>().expect("decimal"));
    vec![
        (Message::Terminate, "01 00 00 00 03"),
        (Message::Status { channel: 1 }, "02 00 00 00 01 01"),
        (Message::ChannelClose { channel: 3 }, "02 00 00 00 06 03"),
        (
            Message::ChannelLastMessage { channel: 300 },
            "03 00 00 00 08 ac 02",
        ),
        (
            Message::Credit {
                channel: 1,
                bytes: 1048576,
            },
            "05 00 00 00 09 01 80 80 40",
        ),
        (data(1, Value::from(42)), "04 00 00 00 05 01 02 54"),
        (data(1, Value::from(-1)), "04 00 00 00 05 01 02 01"),
        (data(2, Value::None), "03 00 00 00 05 02 00"),
        (data(1, Value::Bool(true)), "04 00 00 00 05 01 01 01"),
        (
            data(1, big("18446744073709551616")),
            "0d 00 00 00 05 01 03 09 00 00 00 00 00 00 00 00 01",
        ),
        (
            data(1, big("-9223372036854775809")),
            "0d 00 00 00 05 01 03 09 ff ff ff ff ff ff ff 7f ff",
        ),
        (
            data(1, Value::Float(1.5)),
            "0b 00 00 00 05 01 04 00 00 00 00 00 00 f8 3f",
        ),
        (
            data(1, Value::from("hé")),
            "07 00 00 00 05 01 07 03 68 c3 a9",
        ),
        (
            data(1, Value::Bytes(vec![0, 0xff])),
            "06 00 00 00 05 01 06 02 00 ff",
        ),
        (
            data(1, Value::Tuple(vec![Value::from(1), Value::from("a")])),
            "09 00 00 00 05 01 09 02 02 02 07 01 61",
        ),
        (
            data(
                1,
                Value::Dict(vec![(Value::from("k"), Value::List(vec![]))]),
            ),
            "09 00 00 00 05 01 0a 01 07 01 6b 08 00",
        ),
        (
            data(1, Value::Channel(ChannelRef::new(4))),
            "04 00 00 00 05 01 0d 04",
        ),
        (
            Message::ChannelExec {
                channel: 1,
                source: "x=1".into(),
                filename: None,
                call: None,
            },
            "08 00 00 00 04 01 03 78 3d 31 00 00",
        ),
        (
            Message::ChannelExec {
                channel: 3,
                source: "def f(channel, n): pass".into(),
                filename: Some("m.py".into()),
                call: Some(Call {
                    function: "f".into(),
                    kwargs: vec![("n".into(), Value::from(2))],
                }),
            },
            "28 00 00 00 04 03 17 64 65 66 20 66 28 63 68 61 6e 6e 65 6c 2c 20 6e 29 3a 20 70 61 73 73 01 04 6d 2e 70 79 01 01 66 01 01 6e 02 04",
        ),
        (
            Message::ChannelCloseError {
                channel: 1,
                error: "E".into(),
            },
            "04 00 00 00 07 01 01 45",
        ),
        (
            Message::Hello(Hello::new(8388608, 268435456, Value::Dict(vec![]))),
            "11 00 00 00 00 45 58 4e 54 01 80 80 80 04 80 80 80 80 01 0a 00",
        ),
    ]
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

#[test]
fn encode_matches_golden_bytes() {
    for (msg, frame) in cases() {
        let mut out = vec![0xaa]; // encode_frame appends
        let n = encode_frame(&msg, &mut out).expect("encodes");
        assert_eq!(&out[1..], hex(frame), "{msg:?}");
        assert_eq!(n as usize, out.len() - 5, "{msg:?}");
    }
}

/// postcard, through the derived `Serialize`/`Deserialize` of the message
/// types, writes and reads the very same bodies.
#[test]
fn postcard_matches_golden_bytes() {
    for (msg, frame) in cases() {
        let body = &hex(frame)[4..];
        assert_eq!(postcard::to_stdvec(&msg).expect("encodes"), body, "{msg:?}");
        assert_eq!(
            postcard::from_bytes::<Message>(body).expect("decodes"),
            msg,
            "{frame}"
        );
    }
}

/// Rust data encodes straight to the same item bytes as its `Value`.
#[test]
fn rust_data_matches_golden_items() {
    let item = |v: &dyn erased::Encode| v.item();
    assert_eq!(item(&42u8), Item::from_value(&Value::from(42)).unwrap());
    assert_eq!(item(&()), Item::from_value(&Value::None).unwrap());
    assert_eq!(*item(&1.5f64).encoded(), [4, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
    assert_eq!(*item(&"hé").encoded(), [7, 3, 0x68, 0xc3, 0xa9]);
    assert_eq!(
        *item(&(1u8, "a")).encoded(),
        hex("09 02 02 02 07 01 61")[..]
    );
    assert_eq!(item(&(u128::from(u64::MAX) + 1)).encoded()[..2], [3, 9]);
}

mod erased {
    use execnet_wire::Item;

    pub trait Encode {
        fn item(&self) -> Item;
    }

    impl<T: serde::Serialize> Encode for T {
        fn item(&self) -> Item {
            Item::encode(self).expect("encodes")
        }
    }
}

#[test]
fn decode_matches_golden_messages() {
    for (msg, frame) in cases() {
        let bytes = hex(frame);
        assert_eq!(decode_message(&bytes[4..]).as_ref(), Ok(&msg), "{frame}");
        let mut d = Decoder::default();
        d.feed(&bytes);
        let got = d.next_frame().expect("valid").expect("complete");
        assert_eq!(got.message, msg);
        assert_eq!(got.len as usize, bytes.len() - 4);
        assert_eq!(d.finish(), Ok(()));
    }
}

/// Every frame printed in WIRE.md section 7 is pinned above, so the page and
/// the tests cannot drift apart.
#[test]
fn wire_md_examples_are_all_pinned() {
    let doc = include_str!("../WIRE.md");
    let section = doc
        .split("## 7. Golden examples")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("section 7");
    let pinned: Vec<Vec<u8>> = cases().iter().map(|(_, f)| hex(f)).collect();
    let mut seen = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let frame = line.rsplit('`').nth(1).expect("frame column");
        assert!(
            pinned.contains(&hex(frame)),
            "WIRE.md example not pinned: {line}"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        pinned.len(),
        "WIRE.md and golden.rs list different examples"
    );
}
