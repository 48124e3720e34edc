//! One Group across several ssh "hosts" (each its own sshd with stock
//! session limits on its own loopback port), 8 gateways each: every host's
//! gateways are forks of one spawner behind one ssh connection; a
//! MultiChannel reaches all of them, and terminate leaves nothing running.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use execnet_multichannel::Group;
use futures_lite::future::block_on;

#[path = "../../gateway/tests/support/procs.rs"]
mod procs;
#[path = "../../gateway/tests/support/sshd.rs"]
mod sshd;

/// Process `pid` runs (exists and is no zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn four_hosts_times_eight_gateways_in_one_group() {
    let hosts: Vec<sshd::Sshd> = (0..4)
        .filter_map(|i| sshd::Sshd::start_stock(&format!("host{i}")))
        .collect();
    if hosts.len() < 4 {
        return; // no sshd here (Sshd::start said why)
    }
    let group = Group::new();
    let (workers, ssh_clients) = block_on(async {
        let opens = hosts.iter().enumerate().flat_map(|(h, sshd)| {
            let group = &group;
            (0..8).map(move |g| {
                let spec = sshd.spec(&format!("//id=h{h}g{g}//spawn_linger=0"));
                async move { group.make_gateway(&spec).await }
            })
        });
        for opened in futures_util::future::join_all(opens).await {
            opened.unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(group.len(), 32);
        for sshd in &hosts {
            assert_eq!(sshd.client_connections(), 1, "one connection per host");
        }
        let mch = group
            .remote_exec("import os; channel.send((channel.gateway.id, os.getpid(), os.getppid()))")
            .await
            .expect("remote_exec on all");
        let answers: Vec<(String, u32, u32)> = mch.receive_each().await.expect("every answer");
        assert_eq!(answers.len(), 32);
        // One spawner per host, eight distinct workers under each.
        let mut per_host: HashMap<String, (HashSet<u32>, HashSet<u32>)> = HashMap::new();
        for (id, pid, ppid) in &answers {
            let host = id.split('g').next().unwrap_or_default().to_string();
            let entry = per_host.entry(host).or_default();
            entry.0.insert(*pid);
            entry.1.insert(*ppid);
        }
        assert_eq!(per_host.len(), 4, "{answers:?}");
        for (host, (pids, spawners)) in &per_host {
            assert_eq!(pids.len(), 8, "{host}: {answers:?}");
            assert_eq!(spawners.len(), 1, "{host}: one spawner");
        }
        let workers: Vec<u32> = answers.iter().flat_map(|a| [a.1, a.2]).collect();
        let ssh_clients: Vec<u32> = group.gateways().iter().filter_map(|gw| gw.pid()).collect();
        group.terminate(Some(Duration::from_secs(5))).await;
        (workers, ssh_clients)
    });
    assert!(group.is_empty());
    let left = || {
        workers
            .iter()
            .chain(&ssh_clients)
            .copied()
            .filter(|&p| running(p))
            .collect::<Vec<_>>()
    };
    assert!(
        procs::eventually(Duration::from_secs(15), || left().is_empty()),
        "left running: {:?}",
        left()
    );
    for sshd in &hosts {
        assert!(procs::eventually(Duration::from_secs(5), || sshd
            .client_connections()
            == 0));
    }
}
