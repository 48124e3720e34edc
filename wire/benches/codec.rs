//! Encode + decode of one channel item, three shapes: a small int, a 1 MiB
//! bytes item, and a nested structure (a dict of 32 lists of 16 tuples).
//!
//! `codec/*` goes from a `Value` to a frame and back to a `Value` (what the
//! crate measured before items existed, so the numbers compare);
//! `typed/*` goes from Rust data to a frame and back to Rust data, the path
//! `Channel::send` and `Channel::receive::<T>` take.
//!
//! The sender's message is dropped before decoding, as it is in a real
//! exchange (the receiver is another process): keeping both 1 MiB buffers
//! alive made glibc trim and re-fault the heap every iteration, which
//! measured the allocator rather than the codec.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use execnet_wire::{encode_frame, Decoder, Item, Message, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn frame_and_back(data: Item, out: &mut Vec<u8>, decoder: &mut Decoder) -> Item {
    out.clear();
    let msg = Message::ChannelData { channel: 1, data };
    encode_frame(&msg, out).expect("encodes");
    // The sender is done with its item (the receiver is another process).
    drop(msg);
    let room = decoder.read_buf(out.len());
    room[..out.len()].copy_from_slice(out);
    decoder.commit(out.len());
    match decoder
        .next_frame()
        .expect("valid")
        .expect("complete")
        .message
    {
        Message::ChannelData { data, .. } => data,
        other => panic!("{other:?}"),
    }
}

fn value_round_trip(v: &Value, out: &mut Vec<u8>, decoder: &mut Decoder) -> Value {
    let item = Item::from_value(v).expect("encodes");
    frame_and_back(item, out, decoder)
        .into_value()
        .expect("decodes")
}

fn typed_round_trip<T: Serialize + DeserializeOwned>(
    x: &T,
    out: &mut Vec<u8>,
    decoder: &mut Decoder,
) -> T {
    let item = Item::encode(x).expect("encodes");
    frame_and_back(item, out, decoder)
        .into_decoded()
        .expect("decodes")
}

type Nested = std::collections::BTreeMap<String, Vec<(i64, String, f64)>>;

fn nested() -> Nested {
    (0..32)
        .map(|k| {
            let list = (0..16).map(|i| (i, "item".to_owned(), 0.5)).collect();
            (format!("key{k}"), list)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let small = Value::from(42);
    let bulk = Value::Bytes(vec![0xab; 1 << 20]);
    let nested_value = execnet_wire::to_value(&nested()).expect("converts");

    let mut out = Vec::new();
    let mut decoder = Decoder::default();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_int", |b| {
        b.iter(|| value_round_trip(black_box(&small), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("bytes_1mib", |b| {
        b.iter(|| value_round_trip(black_box(&bulk), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("nested_dict_32x16_tuples", |b| {
        b.iter(|| value_round_trip(black_box(&nested_value), &mut out, &mut decoder))
    });
    group.finish();

    let bulk = serde_bytes::ByteBuf::from(vec![0xab; 1 << 20]);
    let nested = nested();
    let mut group = c.benchmark_group("typed");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_int", |b| {
        b.iter(|| typed_round_trip(black_box(&42i64), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("bytes_1mib", |b| {
        b.iter(|| typed_round_trip(black_box(&bulk), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("nested_dict_32x16_tuples", |b| {
        b.iter(|| typed_round_trip(black_box(&nested), &mut out, &mut decoder))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
