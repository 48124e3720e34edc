//! The soak: open and close many gateways, each with many channels, and
//! report what is left at the end (RSS, fds, threads, child processes).
//! Not run in CI; see the README's "Soak" section.
//!
//! ```text
//! cargo run --release -p execnet --example soak -- --cycles 10000 --channels 50
//! ```
//!
//! Options: `--cycles N` (gateways opened in total, default 1000),
//! `--channels N` (channels per gateway, default 20), `--parallel N`
//! (gateways open at once, default 4). A cycle ends its gateway in turn by
//! `exit()`, by dropping every handle, or (one in five) by `kill()`. Exit
//! status 1 when anything is left behind.

use std::time::{Duration, Instant};

use execnet::Gateway;
use futures_lite::future::block_on;

struct Args {
    cycles: usize,
    channels: usize,
    parallel: usize,
}

fn args() -> Args {
    let mut args = Args {
        cycles: 1000,
        channels: 20,
        parallel: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.as_str(), value) {
            ("--cycles", Some(v)) => args.cycles = v,
            ("--channels", Some(v)) => args.channels = v,
            ("--parallel", Some(v)) => args.parallel = v.max(1),
            _ => {
                eprintln!("usage: soak [--cycles N] [--channels N] [--parallel N]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Our child processes (zombies included).
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(me)
        })
        .collect()
}

/// One gateway's life: open, echo on every channel, end it.
async fn cycle(n: usize, channels: usize) -> execnet::Result<()> {
    let gw = Gateway::open("popen").await?;
    let mut chans = Vec::with_capacity(channels);
    for _ in 0..channels {
        chans.push(
            gw.remote_exec("for x in channel:\n    channel.send(x + 1)")
                .await?,
        );
    }
    for (i, ch) in chans.iter().enumerate() {
        ch.send(&i).await?;
    }
    for (i, ch) in chans.iter().enumerate() {
        let back: usize = ch.receive().await?;
        assert_eq!(back, i + 1);
    }
    match n % 5 {
        0 => gw.kill().await?,
        1 | 3 => gw.exit().await?,
        _ => {
            drop(chans);
            drop(gw); // exits in the background
        }
    }
    Ok(())
}

fn main() {
    let args = args();
    // Warm up the library's global threads before the baseline.
    block_on(cycle(1, 1)).expect("a first gateway");
    let (rss0, fds0, threads0) = (
        status_kib("VmRSS:"),
        count("/proc/self/fd"),
        count("/proc/self/task"),
    );
    let start = Instant::now();
    let mut done = 0;
    while done < args.cycles {
        let batch = args.parallel.min(args.cycles - done);
        let handles: Vec<_> = (0..batch)
            .map(|k| {
                let (n, channels) = (done + k, args.channels);
                std::thread::spawn(move || block_on(cycle(n, channels)))
            })
            .collect();
        for h in handles {
            if let Err(e) = h.join().expect("cycle thread") {
                eprintln!("cycle failed: {e}");
                std::process::exit(1);
            }
        }
        done += batch;
        if done % 500 < batch {
            println!(
                "{done} gateways, {:.0?}: RSS {} KiB, fds {}, threads {}",
                start.elapsed(),
                status_kib("VmRSS:"),
                count("/proc/self/fd"),
                count("/proc/self/task")
            );
        }
    }
    // Dropped gateways exit in the background: give them a bounded moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (!children().is_empty() || count("/proc/self/fd") > fds0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss, fds, threads, left) = (
        status_kib("VmRSS:"),
        count("/proc/self/fd"),
        count("/proc/self/task"),
        children(),
    );
    println!(
        "soak: {} gateways x {} channels in {:.1?}",
        args.cycles,
        args.channels,
        start.elapsed()
    );
    println!("  RSS      {rss0} KiB -> {rss} KiB");
    println!("  fds      {fds0} -> {fds}");
    println!("  threads  {threads0} -> {threads}");
    println!("  children left: {}", left.len());
    if !left.is_empty() || fds > fds0 || threads > threads0 {
        eprintln!("soak: something was left behind: children {left:?}");
        std::process::exit(1);
    }
}
