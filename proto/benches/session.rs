//! The Rust core without processes: two sessions (opener and worker)
//! driven against each other in memory, so regressions in the session,
//! codec and decoder show up without Python noise.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use execnet_proto::{Pair, Recv, SendOutcome};
use execnet_wire::Item;

fn transfer(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_pair");
    for (name, item, count) in [
        (
            "small_int",
            Item::encode(&42i64).expect("encodes"),
            1000usize,
        ),
        ("bytes_1mib", Item::bytes(&vec![7; 1 << 20]), 8),
    ] {
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("opener_to_worker", name),
            &item,
            |b, item| {
                let mut pair = Pair::default();
                let ch = pair.opener.exec("").expect("exec");
                pair.drive().expect("the exec crosses");
                b.iter(|| {
                    for _ in 0..count {
                        match pair.opener.send(ch, item.clone()) {
                            Ok(SendOutcome::Sent) => {}
                            other => panic!("send refused: {other:?}"),
                        }
                    }
                    pair.drive().expect("the items cross");
                    for _ in 0..count {
                        assert!(matches!(pair.worker.recv(ch), Recv::Item(_)));
                    }
                    pair.drive().expect("the credit crosses");
                    pair.opener_events.clear();
                    pair.worker_events.clear();
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
