//! The Rust core without processes: two sessions (opener and worker)
//! driven against each other in memory, so regressions in the session,
//! codec and decoder show up without Python noise.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use execnet_gateway::session::{Recv, Role, Send, Session, SessionConfig};
use execnet_wire::{Decoder, Item};

struct Pair {
    opener: Session,
    worker: Session,
    to_worker: Decoder,
    to_opener: Decoder,
    buf: Vec<u8>,
}

impl Pair {
    fn new() -> Self {
        let mut pair = Pair {
            opener: Session::new(Role::Opener, SessionConfig::default()),
            worker: Session::new(Role::Worker, SessionConfig::default()),
            to_worker: Decoder::default(),
            to_opener: Decoder::default(),
            buf: Vec::new(),
        };
        pair.pump();
        pair
    }

    fn pump(&mut self) {
        loop {
            self.buf.clear();
            self.opener.poll_transmit(&mut self.buf);
            let a = self.buf.len();
            self.to_worker.feed(&self.buf);
            while let Ok(Some(frame)) = self.to_worker.next_frame() {
                let _ = self.worker.handle_input(frame);
            }
            self.buf.clear();
            self.worker.poll_transmit(&mut self.buf);
            let b = self.buf.len();
            self.to_opener.feed(&self.buf);
            while let Ok(Some(frame)) = self.to_opener.next_frame() {
                let _ = self.opener.handle_input(frame);
            }
            while self.worker.poll_event().is_some() {}
            while self.opener.poll_event().is_some() {}
            if a == 0 && b == 0 {
                break;
            }
        }
    }
}

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
                let mut pair = Pair::new();
                let ch = pair.opener.exec("").unwrap_or(1);
                pair.pump();
                b.iter(|| {
                    for _ in 0..count {
                        match pair.opener.send(ch, item.clone()) {
                            Ok(Send::Sent) => {}
                            _ => panic!("send refused"),
                        }
                    }
                    pair.pump();
                    for _ in 0..count {
                        assert!(matches!(pair.worker.recv(ch), Recv::Item(_)));
                    }
                    pair.pump();
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, transfer);
criterion_main!(benches);
