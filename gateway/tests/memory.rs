//! Bounded memory under a flood: a producer faster than its consumer is held
//! back by credit, on either side, and nothing is lost once the consumer
//! reads. RSS is process-wide, so the tests of this binary take turns.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use execnet_gateway::{Error, Gateway, Value};
use execnet_wire::{ValueError, DEFAULT_VALUE_BUDGET};
use futures_lite::future::block_on;

mod support;
use serde_bytes::ByteBuf;
use support::procs::rss_kib;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;
/// The flood: 1 GiB as 128 items of 8 MiB.
const ITEM: u64 = 8 * MIB;
const ITEMS: u64 = 128;
/// The allowed RSS growth while the consumer does not read.
const BOUND_KIB: u64 = 64 * 1024;

/// Wait until `progress` has not moved for `quiet`; its last value.
fn until_stalled(quiet: Duration, limit: Duration, mut progress: impl FnMut() -> u64) -> u64 {
    let deadline = Instant::now() + limit;
    let mut last = progress();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = progress();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return last;
        }
    }
    panic!("the producer did not stall within {limit:?} (at {last})");
}

#[test]
fn a_remote_flood_at_a_consumer_that_does_not_read_keeps_our_memory_bounded() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let before = rss_kib("self");
    let (progress, ch) = block_on(async {
        let progress = gw.new_channel();
        let ch = gw
            .remote_exec(&format!(
                "progress = channel.receive()\n\
                 chunk = b'x' * {ITEM}\n\
                 for i in range({ITEMS}):\n    channel.send(chunk)\n    progress.send(i + 1)"
            ))
            .await
            .expect("exec");
        ch.send(&progress).await.expect("send");
        (progress, ch)
    });
    let mut sent = 0u64;
    let stalled_at = until_stalled(Duration::from_millis(700), Duration::from_secs(30), || {
        while let Ok(i) = block_on(progress.receive_timeout::<u64>(Duration::from_millis(1))) {
            sent = i;
        }
        sent
    });
    let grown = rss_kib("self").saturating_sub(before);
    println!(
        "flood in: producer stalled after {stalled_at} items of {} MiB; our RSS grew {} KiB",
        ITEM / MIB,
        grown
    );
    assert!(stalled_at < ITEMS, "the producer was not held back");
    assert!(grown < BOUND_KIB, "RSS grew by {grown} KiB");
    // Now read: everything arrives, in full.
    let mut total = 0u64;
    let mut max_grown = grown;
    for n in 0..ITEMS {
        let item: ByteBuf = block_on(ch.receive()).expect("item");
        total += item.len() as u64;
        if n % 16 == 0 {
            max_grown = max_grown.max(rss_kib("self").saturating_sub(before));
        }
    }
    assert_eq!(total, ITEM * ITEMS);
    assert!(matches!(
        block_on(ch.receive::<ByteBuf>()),
        Err(Error::Closed)
    ));
    println!(
        "flood in: drained {} MiB, RSS growth peaked at {max_grown} KiB",
        total / MIB
    );
    assert!(
        max_grown < BOUND_KIB,
        "RSS grew by {max_grown} KiB while draining"
    );
    block_on(gw.exit()).expect("exit");
}

#[test]
fn our_flood_at_a_remote_that_does_not_read_keeps_the_worker_bounded() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let pid = gw.pid().expect("pid").to_string();
    // The remote waits for a go on `go`, then reads and counts everything.
    let (go, ch) = block_on(async {
        let go = gw.new_channel();
        let ch = gw
            .remote_exec(
                "go = channel.receive()\n\
                 go.receive()\n\
                 total = 0\n\
                 for item in channel:\n    total += len(item)\n\
                 go.send(total)",
            )
            .await
            .expect("exec");
        ch.send(&go).await.expect("send");
        (go, ch)
    });
    // Let the worker settle before the baseline.
    block_on(gw.remote_status()).expect("status");
    let before = rss_kib(&pid);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sender = {
        let (ch, sent) = (ch.clone(), sent.clone());
        std::thread::spawn(move || {
            let chunk = ByteBuf::from(vec![b'y'; ITEM as usize]);
            for _ in 0..ITEMS {
                block_on(ch.send(&chunk)).expect("send");
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            block_on(ch.close()).expect("close");
        })
    };
    let stalled_at = until_stalled(Duration::from_millis(700), Duration::from_secs(30), || {
        sent.load(std::sync::atomic::Ordering::Relaxed)
    });
    let grown = rss_kib(&pid).saturating_sub(before);
    println!(
        "flood out: our sends stalled after {stalled_at} items of {} MiB; the worker's RSS grew {} KiB",
        ITEM / MIB,
        grown
    );
    assert!(stalled_at < ITEMS, "the sender was not held back");
    assert!(grown < BOUND_KIB, "worker RSS grew by {grown} KiB");
    block_on(go.send(&"go")).expect("go");
    sender.join().expect("sender");
    let total: u64 = block_on(go.receive_timeout(Duration::from_secs(60))).expect("total");
    assert_eq!(total, ITEM * ITEMS);
    block_on(gw.exit()).expect("exit");
}

/// The peak resident memory of this process since the last reset, in KiB
/// (and resets it).
fn peak_kib_since_reset() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    peak
}

/// A peer decides how many elements its bytes hold: 4 MiB of `None`s are
/// 4 million elements, 128 MiB as `Value`s. Receiving them costs about
/// their bytes as a typed Rust value; as a `Value` they are refused within
/// the budget, and the channel goes on.
#[test]
fn a_frame_of_nones_costs_its_bytes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const NONES: usize = 4 << 20;
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let ch = block_on(gw.remote_exec(&format!(
        "for _ in range(2):\n    channel.send([None] * {NONES})\n\
         channel.send(list(range(1000000)))"
    )))
    .expect("exec");
    // Typed: the queue held the frame's bytes, the Vec<()> costs nothing.
    peak_kib_since_reset();
    let before = rss_kib("self");
    let units: Vec<()> = block_on(ch.receive()).expect("a list");
    let grown = peak_kib_since_reset().saturating_sub(before);
    assert_eq!(units.len(), NONES);
    println!("{NONES} Nones received as Vec<()>: peak RSS +{grown} KiB");
    assert!(grown < 4 * 4 * 1024, "peak RSS grew {grown} KiB");
    // As a Value: over the budget, refused before allocating it.
    let before = rss_kib("self");
    match block_on(ch.receive::<Value>()) {
        Err(Error::Value(ValueError::OverBudget { budget })) => {
            assert_eq!(budget, DEFAULT_VALUE_BUDGET)
        }
        other => panic!("{other:?}"),
    }
    let grown = peak_kib_since_reset().saturating_sub(before);
    println!("{NONES} Nones refused as a Value: peak RSS +{grown} KiB");
    assert!(grown < 4 * 4 * 1024, "peak RSS grew {grown} KiB");
    // Legitimate data still arrives as a Value.
    let Value::List(ints) = &block_on(ch.receive::<Value>()).expect("a list") else {
        panic!("not a list")
    };
    assert_eq!(
        (ints.len(), &ints[999_999]),
        (1_000_000, &Value::from(999_999))
    );
    block_on(gw.exit()).expect("exit");
}

/// A callback takes Values: an item over its Value budget ends the
/// deliveries as a panicking callback would (the channel is closed with the
/// cause), and the endmarker still comes; nothing is built past the budget.
#[test]
fn a_callback_refuses_an_item_over_the_value_budget() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let ch = block_on(
        gw.remote_exec("channel.send(1)\nchannel.send([None] * (4 << 20))\nchannel.send(2)"),
    )
    .expect("exec");
    let (tx, rx) = std::sync::mpsc::channel();
    ch.set_callback(move |v| drop(tx.send(v)), Some(Value::from("END")))
        .expect("callback");
    let got: Vec<Value> = rx.iter().take(2).collect();
    assert_eq!(got, [Value::from(1), Value::from("END")]);
    block_on(ch.wait_close(Some(Duration::from_secs(20)))).expect("closed here");
    block_on(gw.exit()).expect("exit");
}

/// A worker that ignores the credit it was granted (here the real worker,
/// told by its code to pretend it has credit without end) and floods a
/// channel nobody reads: it is stopped at the window, with an error that
/// names the channel and the overrun, and our memory stays at the window
/// plus one frame (it grew one-for-one with what was sent before).
#[test]
fn a_worker_that_ignores_credit_is_cut_off_at_the_window() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const LIES: u64 = 256;
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let before = rss_kib("self");
    let ch = block_on(gw.remote_exec(&format!(
        "chunk = b'x' * {MIB}\n\
         for i in range({LIES}):\n    channel._credit = 1 << 62\n    channel.send(chunk)"
    )))
    .expect("exec");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ch.is_closed() {
        assert!(Instant::now() < deadline, "the flood was never cut off");
        std::thread::sleep(Duration::from_millis(20));
    }
    let grown = rss_kib("self").saturating_sub(before);
    println!(
        "lying worker: {LIES} MiB sent past credit; our RSS grew {grown} KiB ({} MiB window)",
        execnet_wire::DEFAULT_WINDOW / MIB
    );
    assert!(grown < BOUND_KIB, "RSS grew by {grown} KiB");
    // What arrived within the window is there; then the cause.
    let mut items = 0;
    let err = loop {
        match block_on(ch.receive::<ByteBuf>()) {
            Ok(_) => items += 1,
            Err(e) => break e,
        }
    };
    assert!(
        items <= execnet_wire::DEFAULT_WINDOW / MIB + 1,
        "{items} items"
    );
    let Error::PeerMisbehaved { error, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(error, execnet_proto::PeerMisbehaved::CreditOverrun { channel, .. } if *channel == ch.id()),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("channel {}", ch.id())), "{text}");
    assert!(text.contains("credit window"), "{text}");
    block_on(gw.exit()).expect("exit");
}
