//! Terminating groups leaves no process behind (after the group parts of
//! execnet's testing/test_termination.py).

use std::time::{Duration, Instant};

use execnet_multichannel::Group;
use futures_lite::future::block_on;

#[path = "../../gateway/tests/support/procs.rs"]
mod procs;
use procs::alive;

/// Remote code that cannot be stopped politely: SIGTERM ignored, and a busy
/// loop inside one C call that holds the GIL, so the worker cannot even act
/// on the exit request.
const STUCK: &str = "
import os, signal
try:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
except ValueError:
    # Not the main thread: set the process-wide disposition through libc.
    import ctypes
    ctypes.CDLL(None).signal(int(signal.SIGTERM), int(signal.SIG_IGN))
channel.send(os.getpid())
while 1:
    sum(range(1 << 62))
";

/// Whether `pid` ignores SIGTERM (bit 15 of /proc/PID/status SigIgn).
fn ignores_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    let mask = u64::from_str_radix(mask.trim(), 16).expect("hex mask");
    mask & (1 << (15 - 1)) != 0
}

/// Poll until no pid of `pids` exists, up to `limit`.
fn wait_gone(pids: &[u32], limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn terminate_kills_16_stuck_workers_within_bounds() {
    let group = Group::new();
    block_on(async {
        let opened =
            futures_util::future::join_all((0..16).map(|_| group.make_gateway("popen"))).await;
        for gw in opened {
            gw.expect("opens");
        }
        let mch = group.remote_exec(STUCK).await.expect("exec");
        let pids: Vec<u32> = mch.receive_each().await.expect("pids");
        assert_eq!(pids.len(), 16);
        for &pid in &pids {
            assert!(ignores_sigterm(pid), "worker {pid} should ignore SIGTERM");
        }
        let timeout = Duration::from_secs(1);
        let start = Instant::now();
        group.terminate(Some(timeout)).await;
        let took = start.elapsed();
        eprintln!("terminate of 16 stuck workers took {took:?}");
        // Generous: "never hangs past ~2 x timeout" on a busy 2-core box.
        assert!(took < timeout * 2 + Duration::from_secs(3), "took {took:?}");
        // The workers really were stuck: terminate had to wait out the
        // timeout before it could signal them.
        assert!(took >= timeout, "took {took:?}: the workers were not stuck");
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        assert!(left.is_empty(), "still there after terminate: {left:?}");
        assert_eq!(group.len(), 0);
        drop(mch);
    });
}

#[test]
fn terminate_while_remote_waits_in_receive() {
    let group = Group::new();
    block_on(async {
        let gw = group.make_gateway("popen").await.expect("opens");
        let pid: u32 = gw
            .remote_exec("import os; channel.send(os.getpid())")
            .await
            .expect("exec")
            .receive()
            .await
            .expect("pid");
        let waiting = gw.remote_exec("channel.receive()").await.expect("exec");
        group.terminate(None).await;
        assert!(!alive(pid), "worker {pid} still there");
        assert!(gw.is_closed());
        assert!(group.is_empty());
        drop(waiting);
    });
}

#[test]
fn terminate_empty_and_twice_and_reuse() {
    let group = Group::new();
    block_on(async {
        group.terminate(Some(Duration::from_secs(1))).await;
        let gw = group.make_gateway("popen").await.expect("opens");
        let pid = gw.pid().expect("pid");
        group.terminate(Some(Duration::from_secs(1))).await;
        group.terminate(Some(Duration::from_secs(1))).await;
        assert!(!alive(pid));
        // The group stays usable; ids keep counting.
        let again = group.make_gateway("popen").await.expect("opens again");
        assert_eq!(again.id(), "gw1");
        let ch = again.remote_exec("channel.send(7)").await.expect("exec");
        assert_eq!(ch.receive::<i64>().await.expect("item"), 7);
        group.terminate(None).await;
    });
}

#[test]
fn dropped_group_leaves_no_process() {
    let pids: Vec<u32> = {
        let group = Group::new();
        block_on(async {
            group.make_gateway("popen").await.expect("opens");
            group.make_gateway("popen").await.expect("opens");
            let mch = group
                .remote_exec("import os; channel.send(os.getpid()); channel.receive()")
                .await
                .expect("exec");
            mch.receive_each().await.expect("pids")
        })
    };
    let left = wait_gone(&pids, Duration::from_secs(20));
    assert!(
        left.is_empty(),
        "still there after the group was dropped: {left:?}"
    );
}

#[test]
fn dropped_group_terminates_gateways_held_elsewhere() {
    let group = Group::new();
    let gw = block_on(group.make_gateway("popen")).expect("opens");
    let pid = gw.pid().expect("pid");
    drop(group);
    let left = wait_gone(&[pid], Duration::from_secs(20));
    assert!(left.is_empty(), "worker {pid} survived its group");
    assert!(gw.is_closed());
}
