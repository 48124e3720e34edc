//! Map-reduce over a group (async API): each worker counts the words of its
//! share of the lines; the counts are merged here.
//!
//! ```text
//! cargo run -p execnet --example map_reduce
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use execnet::{Group, Result};
use futures_lite::StreamExt;

const MAPPER: &str = "
from collections import Counter
counts = Counter()
for line in iter(channel.receive, None):   # the lines, until None
    counts.update(line.lower().split())
channel.send(dict(counts))
";

const TEXT: &str = "the quick brown fox
jumps over the lazy dog
the dog sleeps
a fox is quick and the dog is lazy";

fn main() -> Result<()> {
    futures_lite::future::block_on(async {
        let group = Group::new();
        let workers = 3;
        let opened =
            futures_util::future::join_all((0..workers).map(|_| group.make_gateway("popen"))).await;
        for gateway in opened {
            gateway?;
        }
        let mch = group.remote_exec(MAPPER).await?;
        // Map: deal the lines out round-robin, then tell every worker
        // that was all (`None`, as execnet programs usually do).
        for (i, line) in TEXT.lines().enumerate() {
            mch.channels()[i % workers].send(line).await?;
        }
        mch.send_each(&()).await?;
        // Reduce: merge the partial counts as they arrive.
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        let mut queue = mch.receive_queue();
        while let Some((index, item)) = queue.next().await {
            let counts: BTreeMap<String, u64> = execnet::from_value(item?)?;
            println!("worker {index} counted {} distinct words", counts.len());
            for (word, n) in counts {
                *total.entry(word).or_default() += n;
            }
        }
        for (word, n) in &total {
            println!("{word:>8} {n}");
        }
        group.terminate(Some(Duration::from_secs(2))).await;
        Ok(())
    })
}
