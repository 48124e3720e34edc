//! Encode + decode throughput: a small int item, a 1 MiB bytes item, and a
//! nested structure (dict of lists of tuples).

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use execnet_wire::{encode_frame, Decoder, Message, Value};

fn round_trip(msg: &Message, out: &mut Vec<u8>, decoder: &mut Decoder) -> Message {
    out.clear();
    encode_frame(msg, out).expect("encodes");
    let room = decoder.read_buf(out.len());
    room[..out.len()].copy_from_slice(out);
    decoder.commit(out.len());
    decoder
        .next_frame()
        .expect("valid")
        .expect("complete")
        .message
}

fn bench(c: &mut Criterion) {
    let small = Message::ChannelData {
        channel: 1,
        data: Value::from(42),
    };
    let bulk = Message::ChannelData {
        channel: 1,
        data: Value::Bytes(vec![0xab; 1 << 20]),
    };
    let nested = Message::ChannelData {
        channel: 1,
        data: Value::Dict(
            (0..32)
                .map(|k| {
                    let list = (0..16)
                        .map(|i| {
                            Value::Tuple(vec![
                                Value::from(i),
                                Value::from("item"),
                                Value::Float(0.5),
                            ])
                        })
                        .collect();
                    (Value::Str(format!("key{k}")), Value::List(list))
                })
                .collect(),
        ),
    };

    let mut out = Vec::new();
    let mut decoder = Decoder::default();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_int", |b| {
        b.iter(|| round_trip(black_box(&small), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("bytes_1mib", |b| {
        b.iter(|| round_trip(black_box(&bulk), &mut out, &mut decoder))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("nested_dict_32x16_tuples", |b| {
        b.iter(|| round_trip(black_box(&nested), &mut out, &mut decoder))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
