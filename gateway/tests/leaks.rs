//! Opening and closing many gateways leaves nothing behind: no child
//! process, no zombie, no file descriptor, no thread. One test in this
//! binary, so that nothing else runs in the process while it counts.

use std::time::Duration;

use execnet_gateway::Gateway;
use futures_lite::future::block_on;

mod support;
use support::procs::{children, eventually, fds, threads};

#[test]
fn two_hundred_gateways_leave_nothing_behind() {
    // Warm up the library's global threads (driver, reactor, reaper).
    let gw = block_on(Gateway::open("popen")).expect("opens");
    block_on(gw.exit()).expect("exit");
    assert!(eventually(Duration::from_secs(10), || children().is_empty()));
    let (fds_before, threads_before) = (fds(), threads());

    for round in 0..40 {
        let gws: Vec<Gateway> = (0..5)
            .map(|_| block_on(Gateway::open("popen")).expect("opens"))
            .collect();
        for (i, gw) in gws.into_iter().enumerate() {
            let ch = block_on(gw.remote_exec("channel.send(1)")).expect("exec");
            assert_eq!(block_on(ch.receive::<i32>()).expect("item"), 1);
            match (round + i) % 3 {
                0 => block_on(gw.exit()).expect("exit"),
                1 => block_on(gw.kill()).expect("kill"),
                _ => drop(gw), // exits in the background
            }
        }
    }
    assert!(
        eventually(Duration::from_secs(20), || children().is_empty()),
        "child processes left: {:?}",
        children()
    );
    assert!(
        eventually(Duration::from_secs(10), || fds() <= fds_before),
        "fds: {} before, {} after",
        fds_before,
        fds()
    );
    assert!(
        eventually(Duration::from_secs(10), || threads() <= threads_before),
        "threads: {} before, {} after",
        threads_before,
        threads()
    );
}
