//! The standard benchmark workloads, as run by `execnet bench`: startup,
//! round trip, small messages and bulk each way, a group of gateways. (The
//! project's design notes define them; `bench/compare.sh` runs both sides.)
//!
//! The remote snippets are the same ones `bench/execnet_bench.py` runs
//! through Python's execnet, so the two sets of figures compare like with
//! like. Every figure is the median over `repeats` runs.

use std::time::{Duration, Instant};

use execnet::{Gateway, Group, Result};

/// Echo every item back.
pub const ECHO: &str = "for item in channel:\n    channel.send(item)\n";
/// Receive a count, then send that many small ints.
pub const SEND_INTS: &str = "n = channel.receive()\nfor i in range(n):\n    channel.send(i)\n";
/// Count what arrives until the channel closes, then send the count.
pub const COUNT_ITEMS: &str =
    "n = 0\nwhile True:\n    x = channel.receive()\n    if x is None:\n        break\n    n += 1\nchannel.send(n)\n";
/// Receive a count, then send that many 1 MiB bytes items.
pub const SEND_BULK: &str =
    "n = channel.receive()\ndata = b'x' * 1048576\nfor i in range(n):\n    channel.send(data)\n";
/// Sum the lengths of what arrives until None, then send the sum.
pub const COUNT_BYTES: &str = "n = 0\nwhile True:\n    x = channel.receive()\n    if x is None:\n        break\n    n += len(x)\nchannel.send(n)\n";

/// The worker's own codec, timed inside the worker (no channel, no IO):
/// nanoseconds per item to encode and to decode a small int and a small
/// record, the medians of `rounds` rounds. The worker's functions are
/// reached through its gateway class, so this measures the code that
/// serves the channels, and a slower encoder or decoder shows here first.
pub const WORKER_CODEC: &str = r#"
import time
g = type(channel.gateway)._status.__globals__
enc, dec, gw = g["_enc"], g["_decode_all"], channel.gateway
rounds, n = channel.receive()
record = {"id": 12345, "name": "test_module.py::test_case[3]", "ok": True,
          "took": 0.0125, "tags": ("slow", "io"), "lines": [10, 20, 30]}
out = {}
for name, item in (("int", 42), ("record", record)):
    m = []
    enc(item, m, 0)
    data = memoryview(b"".join(m))
    te, td = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            m = []
            enc(item, m, 0)
            b"".join(m)
        te.append((time.perf_counter() - t) / n * 1e9)
        t = time.perf_counter()
        for _ in range(n):
            dec(data, 0, gw)
        td.append((time.perf_counter() - t) / n * 1e9)
    out[name] = (sorted(te)[rounds // 2], sorted(td)[rounds // 2])
channel.send(out)
"#;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The gateway spec (`popen`, `popen//python=/usr/bin/python3`, `ssh=…`).
    pub spec: String,
    /// How often each workload runs; figures are medians.
    pub repeats: usize,
    /// Round trips per run of the round-trip workload.
    pub round_trips: usize,
    /// Small items per run of the small-messages workloads.
    pub small_items: usize,
    /// 1 MiB items per run of the bulk workloads.
    pub bulk_mib: usize,
    /// Gateways in the group workload.
    pub group_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            spec: "popen".into(),
            repeats: 5,
            round_trips: 1000,
            small_items: 10_000,
            bulk_mib: 100,
            group_size: 8,
        }
    }
}

/// The figures, named as in `execnet bench --json`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Open a gateway and receive the first `remote_exec` result (ms).
    pub startup_ms: f64,
    /// One small int through an echo loop (µs, median of all round trips).
    pub rtt_us: f64,
    /// Small ints to the worker (items/s).
    pub small_to_per_s: f64,
    /// Small ints from the worker (items/s).
    pub small_from_per_s: f64,
    /// 1 MiB bytes items to the worker (MiB/s).
    pub bulk_to_mib_s: f64,
    /// 1 MiB bytes items from the worker (MiB/s).
    pub bulk_from_mib_s: f64,
    /// Open the group's gateways and get one result from each (ms).
    pub group8_start_ms: f64,
    /// Terminate the group (ms).
    pub group8_terminate_ms: f64,
    /// The worker encoding a small int, inside the worker (ns per item).
    #[serde(default)]
    pub worker_encode_int_ns: f64,
    /// The worker decoding a small int (ns per item).
    #[serde(default)]
    pub worker_decode_int_ns: f64,
    /// The worker encoding a small record (a dict of six fields: ints, a
    /// str, a bool, a float, a tuple, a list) (ns per item).
    #[serde(default)]
    pub worker_encode_record_ns: f64,
    /// The worker decoding that record (ns per item).
    #[serde(default)]
    pub worker_decode_record_ns: f64,
}

impl Report {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let rows = [
            ("startup", self.startup_ms, "ms"),
            ("round trip", self.rtt_us, "µs"),
            ("small messages to worker", self.small_to_per_s, "items/s"),
            (
                "small messages from worker",
                self.small_from_per_s,
                "items/s",
            ),
            ("bulk to worker", self.bulk_to_mib_s, "MiB/s"),
            ("bulk from worker", self.bulk_from_mib_s, "MiB/s"),
            ("8 gateways: start + one result", self.group8_start_ms, "ms"),
            ("8 gateways: terminate", self.group8_terminate_ms, "ms"),
            ("worker codec: encode int", self.worker_encode_int_ns, "ns"),
            ("worker codec: decode int", self.worker_decode_int_ns, "ns"),
            (
                "worker codec: encode record",
                self.worker_encode_record_ns,
                "ns",
            ),
            (
                "worker codec: decode record",
                self.worker_decode_record_ns,
                "ns",
            ),
        ];
        let mut out = String::new();
        for (name, value, unit) in rows {
            out.push_str(&format!("{name:<32} {value:>12.1} {unit}\n"));
        }
        out
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` round trips of a small int through an echo loop on `gw`, each
/// timed (µs).
async fn round_trips(gw: &Gateway, n: usize) -> Result<Vec<f64>> {
    let ch = gw.remote_exec(ECHO).await?;
    ch.send(&0).await?;
    let _: i64 = ch.receive().await?;
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        ch.send(&i).await?;
        let _: i64 = ch.receive().await?;
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    ch.close().await?;
    Ok(rtts)
}

/// `mib` 1 MiB bytes items to the worker (MiB/s).
async fn bulk_to(gw: &Gateway, mib: usize) -> Result<f64> {
    let data = serde_bytes::ByteBuf::from(vec![b'x'; 1 << 20]);
    let ch = gw.remote_exec(COUNT_BYTES).await?;
    let start = Instant::now();
    for _ in 0..mib {
        ch.send(&data).await?;
    }
    ch.send(&()).await?;
    let n: usize = ch.receive().await?;
    Ok((n >> 20) as f64 / start.elapsed().as_secs_f64())
}

/// `mib` 1 MiB bytes items from the worker (MiB/s).
async fn bulk_from(gw: &Gateway, mib: usize) -> Result<f64> {
    let ch = gw.remote_exec(SEND_BULK).await?;
    let start = Instant::now();
    ch.send(&mib).await?;
    for _ in 0..mib {
        let _: serde_bytes::ByteBuf = ch.receive().await?;
    }
    Ok(mib as f64 / start.elapsed().as_secs_f64())
}

/// Run every workload; `progress` gets a line before each.
pub async fn run(config: &Config, mut progress: impl FnMut(&str)) -> Result<Report> {
    let repeats = config.repeats.max(1);
    let mut report = Report::default();

    progress("startup");
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let gw = Gateway::open(&config.spec).await?;
        let ch = gw.remote_exec("channel.send(1)").await?;
        let _: i64 = ch.receive().await?;
        times.push(ms(start.elapsed()));
        gw.exit().await?;
    }
    report.startup_ms = median(times);

    let gw = Gateway::open(&config.spec).await?;
    progress("round trip");
    let mut rtts = Vec::new();
    for _ in 0..repeats {
        rtts.extend(round_trips(&gw, config.round_trips).await?);
    }
    report.rtt_us = median(rtts);

    progress("small messages");
    let (mut to, mut from) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let ch = gw.remote_exec(COUNT_ITEMS).await?;
        let start = Instant::now();
        for i in 0..config.small_items {
            ch.send(&i).await?;
        }
        ch.send(&()).await?;
        let n: usize = ch.receive().await?;
        to.push(n as f64 / start.elapsed().as_secs_f64());

        let ch = gw.remote_exec(SEND_INTS).await?;
        let start = Instant::now();
        ch.send(&config.small_items).await?;
        for _ in 0..config.small_items {
            let _: i64 = ch.receive().await?;
        }
        from.push(config.small_items as f64 / start.elapsed().as_secs_f64());
    }
    report.small_to_per_s = median(to);
    report.small_from_per_s = median(from);

    progress("bulk");
    let (mut to, mut from) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        to.push(bulk_to(&gw, config.bulk_mib).await?);
        from.push(bulk_from(&gw, config.bulk_mib).await?);
    }
    report.bulk_to_mib_s = median(to);
    report.bulk_from_mib_s = median(from);

    progress("worker codec");
    let ch = gw.remote_exec(WORKER_CODEC).await?;
    ch.send(&(repeats.max(3), 20_000)).await?;
    let codec: std::collections::HashMap<String, (f64, f64)> = ch.receive().await?;
    let get = |name: &str| codec.get(name).copied().unwrap_or_default();
    (report.worker_encode_int_ns, report.worker_decode_int_ns) = get("int");
    (
        report.worker_encode_record_ns,
        report.worker_decode_record_ns,
    ) = get("record");
    gw.exit().await?;

    progress("group");
    let (mut starts, mut terms) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let group = Group::new();
        let start = Instant::now();
        let opens = (0..config.group_size).map(|_| group.make_gateway(&config.spec));
        for gw in futures_util::future::join_all(opens).await {
            gw?;
        }
        let mch = group.remote_exec("channel.send(1)").await?;
        let _: Vec<i64> = mch.receive_each().await?;
        starts.push(ms(start.elapsed()));
        let start = Instant::now();
        group.terminate(Some(Duration::from_secs(10))).await;
        terms.push(ms(start.elapsed()));
    }
    report.group8_start_ms = median(starts);
    report.group8_terminate_ms = median(terms);
    Ok(report)
}

/// One Group of `n` gateways to `spec`, opened at once, one result each
/// (the spawner workloads run this in a fresh process each time): the time
/// to all results (ms), and how many gateways failed to open.
pub async fn group_once(spec: &str, n: usize) -> (f64, usize) {
    let group = Group::new();
    let start = Instant::now();
    let opens = (0..n).map(|_| group.make_gateway(spec));
    let failed = futures_util::future::join_all(opens)
        .await
        .iter()
        .filter(|r| r.is_err())
        .count();
    let received = match group.remote_exec("channel.send(1)").await {
        Ok(mch) => mch.receive_each::<i64>().await.is_ok(),
        Err(_) => false,
    };
    let took = ms(start.elapsed());
    group.terminate(Some(Duration::from_secs(10))).await;
    (took, if received { failed } else { failed.max(1) })
}

/// With one gateway to `spec` open (its place's spawner warm), open `k`
/// more one after another, each to its first result: the median (ms).
pub async fn next_gateways(spec: &str, k: usize) -> Result<f64> {
    let first = Gateway::open(spec).await?;
    let mut times = Vec::new();
    let mut opened = Vec::new();
    for _ in 0..k.max(1) {
        let start = Instant::now();
        let gw = Gateway::open(spec).await?;
        let ch = gw.remote_exec("channel.send(1)").await?;
        let _: i64 = ch.receive().await?;
        times.push(ms(start.elapsed()));
        opened.push(gw);
    }
    for gw in opened {
        gw.exit().await?;
    }
    first.exit().await?;
    Ok(median(times))
}

/// Forked gateways against directly started ones (`spawn=direct`), three
/// of each open in this process, measured in turns (round trips, then bulk
/// each way; `repeats` rounds, every other one in reverse order), so that
/// the machine's drift hits both kinds alike. Three of each: two direct
/// gateways alone differ by up to ~15% in round trip here, by where their
/// processes happen to run. Medians of each kind: (forked, direct) round
/// trip (µs), bulk to and from (MiB/s).
pub async fn fork_vs_direct(spec: &str, repeats: usize) -> Result<ForkVsDirect> {
    let direct_spec = format!("{spec}//spawn=direct");
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push((Gateway::open(spec).await?, 0));
        gateways.push((Gateway::open(&direct_spec).await?, 1));
    }
    let mut rtt: [Vec<f64>; 2] = Default::default();
    let mut to: [Vec<f64>; 2] = Default::default();
    let mut from: [Vec<f64>; 2] = Default::default();
    for _ in 0..repeats.max(1) {
        for (gw, k) in &gateways {
            rtt[*k].extend(round_trips(gw, 1000).await?);
        }
        for (gw, k) in &gateways {
            to[*k].push(bulk_to(gw, 16).await?);
            from[*k].push(bulk_from(gw, 16).await?);
        }
        gateways.reverse();
    }
    for (gw, _) in gateways {
        gw.exit().await?;
    }
    let [rtt_f, rtt_d] = rtt.map(median);
    let [to_f, to_d] = to.map(median);
    let [from_f, from_d] = from.map(median);
    Ok(ForkVsDirect {
        rtt_us: (rtt_f, rtt_d),
        bulk_to_mib_s: (to_f, to_d),
        bulk_from_mib_s: (from_f, from_d),
    })
}

/// What [`fork_vs_direct`] measured: each pair is (forked, direct).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForkVsDirect {
    /// Round trip of a small int (µs).
    pub rtt_us: (f64, f64),
    /// 1 MiB items to the worker (MiB/s).
    pub bulk_to_mib_s: (f64, f64),
    /// 1 MiB items from the worker (MiB/s).
    pub bulk_from_mib_s: (f64, f64),
}

impl ForkVsDirect {
    /// One JSON object: rtt_us, bulk_to_mib_s, bulk_from_mib_s (forked) and
    /// the same with a direct_ prefix.
    pub fn to_json(self) -> String {
        format!(
            "{{\"rtt_us\": {}, \"direct_rtt_us\": {}, \"bulk_to_mib_s\": {}, \
             \"direct_bulk_to_mib_s\": {}, \"bulk_from_mib_s\": {}, \"direct_bulk_from_mib_s\": {}}}",
            self.rtt_us.0,
            self.rtt_us.1,
            self.bulk_to_mib_s.0,
            self.bulk_to_mib_s.1,
            self.bulk_from_mib_s.0,
            self.bulk_from_mib_s.1
        )
    }
}
