//! A 64 MiB file goes through rsync without either side holding it: the
//! peak resident memory of this process and of the worker stays well below
//! the file's size. (Its own test binary, so that no other test's memory
//! counts.)

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use execnet::blocking::{Gateway, RSync};
use execnet::rsync::TargetOptions;
use sha2::{Digest, Sha256};

use support::TempDir;

const SIZE: usize = 64 << 20;

/// Peak resident memory (VmHWM) of a process, in bytes.
fn peak_rss(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

fn sha256(path: &Path) -> Vec<u8> {
    let mut file = File::open(path).expect("open");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return hasher.finalize().to_vec();
        }
        hasher.update(&buf[..n]);
    }
}

#[test]
fn a_big_file_goes_in_bounded_memory_on_both_sides() {
    let tmp = TempDir::new("big");
    let src = tmp.mkdir("src");
    let big = src.join("big.bin");
    {
        // Not all zeros, block by block.
        let mut file = File::create(&big).expect("create");
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..SIZE / block.len() {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            file.write_all(&block).expect("write");
        }
    }
    let gw = Gateway::open("popen").expect("open");
    let worker = gw.pid().expect("worker pid").to_string();
    let local_before = peak_rss("self");
    let worker_before = peak_rss(&worker);

    let dest = tmp.path().join("dest");
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(&gw, &dest, TargetOptions::new())
        .expect("add_target");
    let report = rsync.send().expect("send");
    assert_eq!(report.targets[0].bytes_sent, SIZE as u64);

    let local_growth = peak_rss("self").saturating_sub(local_before);
    let worker_peak = peak_rss(&worker);
    eprintln!(
        "64 MiB file: local peak grew by {} MiB, worker peak {} MiB (was {} MiB)",
        local_growth >> 20,
        worker_peak >> 20,
        worker_before >> 20
    );
    assert!(
        local_growth < (SIZE as u64) / 2,
        "this process grew by {local_growth} bytes for a {SIZE}-byte file"
    );
    assert!(
        worker_peak.saturating_sub(worker_before) < (SIZE as u64) / 2,
        "the worker grew from {worker_before} to {worker_peak} bytes for a {SIZE}-byte file"
    );
    assert_eq!(sha256(&dest.join("big.bin")), sha256(&big));
    gw.exit().expect("exit");
}
