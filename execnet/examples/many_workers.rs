//! Many workers at once: a group of gateways runs the same code, and the
//! results are printed as they arrive, from whichever worker is first.
//!
//! ```text
//! cargo run -p execnet --example many_workers [N]
//! ```

use std::time::Duration;

use execnet::blocking::Group;

const SOURCE: &str = "
import os, random, time
# Each worker takes a different time; the queue yields whoever is done.
time.sleep(random.random() / 5)
channel.send((channel.gateway.id, os.getpid()))
";

fn main() -> execnet::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(4);
    let group = Group::new();
    // Open the gateways in parallel, one thread each.
    std::thread::scope(|s| {
        let opening: Vec<_> = (0..n)
            .map(|_| s.spawn(|| group.make_gateway("popen")))
            .collect();
        opening
            .into_iter()
            .try_for_each(|t| t.join().expect("no panic").map(drop))
    })?;
    let mch = group.remote_exec(SOURCE)?;
    for (index, item) in mch.receive_queue() {
        let (id, pid): (String, u32) = execnet::from_value(item?)?;
        println!("channel {index}: gateway {id} has pid {pid}");
    }
    group.terminate(Some(Duration::from_secs(2)));
    Ok(())
}
