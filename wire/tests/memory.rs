//! What decoding costs in memory, measured as the process's peak resident
//! set (Linux: `VmHWM`, reset through `/proc/self/clear_refs`).
//!
//! A peer chooses the bytes; each byte may be a whole element (`None` is one
//! byte on the wire, at least `size_of::<Value>()` in memory). Decoding a
//! frame must cost a small multiple of the frame, whatever it holds; a
//! `Value` of it is built only within its budget; a typed receive costs
//! what the type costs. One test function, so nothing else runs in this
//! process while it measures.

use execnet_wire::{Decoder, Item, Message, Value, ValueError, DEFAULT_VALUE_BUDGET};

const MIB: usize = 1 << 20;

fn status(field: &str) -> usize {
    let text = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib * 1024
}

/// Runs `f`; returns how far the peak RSS rose above the RSS before it.
fn peak_growth<R>(f: impl FnOnce() -> R) -> (R, usize) {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = status("VmRSS:");
    let result = f();
    (result, status("VmHWM:").saturating_sub(before))
}

/// A `ChannelData` frame whose item is a list of `n` elements of `each`.
fn list_frame(n: usize, each: &[u8]) -> Vec<u8> {
    let mut body = vec![5, 1, 8];
    let mut count = n as u64;
    while count >= 0x80 {
        body.push((count as u8) | 0x80);
        count >>= 7;
    }
    body.push(count as u8);
    if each == [0] {
        body.resize(body.len() + n, 0);
    } else {
        for _ in 0..n {
            body.extend_from_slice(each);
        }
    }
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn decode(frame: Vec<u8>) -> Item {
    let mut decoder = Decoder::new(u32::MAX);
    decoder.feed(&frame);
    drop(frame);
    let message = decoder
        .next_frame()
        .expect("valid")
        .expect("complete")
        .message;
    let Message::ChannelData { data, .. } = message else {
        panic!("not data")
    };
    data
}

#[test]
fn decoding_costs_a_small_multiple_of_the_frame() {
    // 16 MiB of `None`s: 16 million elements. (Before items, decoding this
    // frame took 527 MiB, 33 times its size.)
    let b = 16 * MIB;
    let frame = list_frame(b, &[0]);
    let (item, grew) = peak_growth(|| decode(frame));
    assert!(
        grew <= 3 * b,
        "decoding a {b}-byte frame raised the peak RSS by {grew} bytes"
    );

    // As a Value it would take 512 MiB: refused within the budget, before
    // allocating it.
    let (value, grew) = peak_growth(|| item.to_value());
    assert_eq!(
        value,
        Err(ValueError::OverBudget {
            budget: DEFAULT_VALUE_BUDGET.max(4 * item.len())
        })
    );
    assert!(grew <= MIB, "a refused Value still took {grew} bytes");

    // Typed, it costs what the type costs: nothing per `()`, two bytes per
    // `Option<u8>`.
    let (units, grew) = peak_growth(|| item.decode::<Vec<()>>());
    assert_eq!(units.map(|v| v.len()), Ok(b));
    assert!(grew <= MIB, "{grew}");
    let (options, grew) = peak_growth(|| item.decode::<Vec<Option<u8>>>());
    assert_eq!(options.map(|v| v.len()), Ok(b));
    assert!(grew <= 2 * b + b / 2, "{grew}");
    drop(item);

    // Legitimate data is not refused: a million small ints as a Value
    // (about 32 MiB of Values from 2 MiB of frame).
    let frame = list_frame(1_000_000, &[2, 84]);
    let item = decode(frame);
    let (value, _) = peak_growth(|| item.to_value());
    let Ok(Value::List(ints)) = &value else {
        panic!("{value:?}")
    };
    assert_eq!((ints.len(), &ints[7]), (1_000_000, &Value::from(42)));
}
