//! Gateways forked from a warm spawner (gateway/src/spawn/): one spawner per
//! place; every fork its own process, process group and random state; one
//! gateway's end touches no other; the spawner goes after its linger, is
//! replaced when it died, and never outlives the opener. Over ssh: one
//! connection carries any number of gateways.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use execnet_gateway::{Gateway, Options, XSpec};
use futures_lite::future::block_on;
use support::procs::eventually;
use support::sshd::Sshd;

/// Process `pid` runs (exists and is no zombie waiting for its reaper).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// A place of its own for one test (other tests of this binary run at the
/// same time and share the plain "popen" place).
fn own_place(extra: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "popen//env:PYTHONPATH=/nonexistent/execnet-spawn-test-{}-{}{extra}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The worker's pid, parent pid and process group.
fn ids(gw: &Gateway) -> (u32, u32, u32) {
    block_on(async {
        let ch = gw
            .remote_exec("import os; channel.send((os.getpid(), os.getppid(), os.getpgrp()))")
            .await
            .expect("exec");
        ch.receive().await.expect("ids")
    })
}

fn open_many(spec: &str, n: usize) -> Vec<Gateway> {
    block_on(async {
        let opens = (0..n).map(|_| Gateway::open(spec));
        futures::future::join_all(opens)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("every gateway opens")
    })
}

#[test]
fn gateways_to_one_place_are_forks_of_one_spawner() {
    let gateways = open_many(&own_place(""), 4);
    let ids: Vec<(u32, u32, u32)> = gateways.iter().map(ids).collect();
    let spawner = ids[0].1;
    assert_ne!(spawner, std::process::id(), "a fork, not our child");
    assert!(support::procs::is_our_child(spawner), "the spawner is ours");
    for (gw, &(pid, ppid, pgid)) in gateways.iter().zip(&ids) {
        assert_eq!(ppid, spawner, "one spawner for the place");
        assert_eq!(pgid, pid, "each worker leads its own process group");
        assert_eq!(gw.pid(), Some(pid), "pid() is the worker's");
        assert_eq!(block_on(gw.rinfo()).expect("rinfo").pid, pid);
    }
    let mut pids: Vec<u32> = ids.iter().map(|i| i.0).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 4, "four workers");
    for gw in &gateways {
        block_on(gw.exit()).expect("exit");
    }
}

#[test]
fn every_fork_draws_its_own_random_numbers() {
    let gateways = open_many(&own_place(""), 4);
    let mut draws: Vec<(u64, Vec<u8>)> = gateways
        .iter()
        .map(|gw| {
            block_on(async {
                let ch = gw
                    .remote_exec(
                        "import os, random; channel.send((random.getrandbits(64), os.urandom(8)))",
                    )
                    .await
                    .expect("exec");
                ch.receive().await.expect("draw")
            })
        })
        .collect();
    draws.sort();
    draws.dedup_by(|a, b| a.0 == b.0 || a.1 == b.1);
    assert_eq!(draws.len(), 4, "no two forks share a random state");
    for gw in &gateways {
        block_on(gw.exit()).expect("exit");
    }
}

#[test]
fn ending_one_fork_touches_neither_the_others_nor_the_spawner() {
    let place = own_place("");
    let gateways = open_many(&place, 3);
    let spawner = ids(&gateways[0]).1;
    block_on(gateways[0].kill()).expect("kill");
    block_on(gateways[1].exit()).expect("exit");
    // The third still works, and the next gateway is a fork of the same spawner.
    let ch = block_on(gateways[2].remote_exec("channel.send(7 * 6)")).expect("exec");
    assert_eq!(block_on(ch.receive::<i64>()).expect("item"), 42);
    assert!(running(spawner));
    let next = block_on(Gateway::open(&place)).expect("opens");
    assert_eq!(ids(&next).1, spawner);
    block_on(next.exit()).expect("exit");
    block_on(gateways[2].exit()).expect("exit");
}

#[test]
fn spawn_direct_starts_an_interpreter_of_its_own() {
    let gw = block_on(Gateway::open("popen//spawn=direct")).expect("opens");
    let (pid, ppid, pgid) = ids(&gw);
    assert_eq!(ppid, std::process::id());
    assert_eq!(pgid, pid);
    block_on(gw.exit()).expect("exit");
}

#[test]
fn interpreter_shaping_keys_make_their_own_place() {
    let seeded = own_place("//env:PYTHONHASHSEED=0");
    let a = block_on(Gateway::open(&seeded)).expect("opens");
    let b = block_on(Gateway::open(&seeded)).expect("opens");
    let plain = block_on(Gateway::open(&own_place(""))).expect("opens");
    assert_eq!(ids(&a).1, ids(&b).1, "one spawner for the seeded place");
    assert_ne!(ids(&a).1, ids(&plain).1, "another for the plain one");
    // PYTHONHASHSEED reached the spawner's start: str hashes are fixed.
    let hash = |gw: &Gateway| -> (i64, i64) {
        block_on(async {
            let ch = gw
                .remote_exec(
                    "import sys; channel.send((hash('execnet'), sys.flags.hash_randomization))",
                )
                .await
                .expect("exec");
            ch.receive().await.expect("hash")
        })
    };
    let (ha, randomized) = hash(&a);
    assert_eq!(randomized, 0);
    assert_eq!(hash(&b).0, ha);
    for gw in [a, b, plain] {
        block_on(gw.exit()).expect("exit");
    }
}

#[test]
fn per_gateway_settings_apply_in_each_fork() {
    let place = own_place("");
    let dir = std::env::temp_dir().join(format!("execnet-spawn-chdir-{}", std::process::id()));
    let spec = format!(
        "{place}//chdir={}//env:EXECNET_X=one//nice=2",
        dir.display()
    );
    let a = block_on(Gateway::open(&spec)).expect("opens");
    let b = block_on(Gateway::open(&format!("{place}//env:EXECNET_X=two"))).expect("opens");
    let probe = "import os; channel.send((os.getcwd(), os.environ.get('EXECNET_X'), os.nice(0)))";
    let see = |gw: &Gateway| -> (String, String, i64) {
        block_on(async { gw.remote_exec(probe).await.expect("exec").receive().await })
            .expect("probe")
    };
    let (cwd_a, x_a, nice_a) = see(&a);
    let (cwd_b, x_b, nice_b) = see(&b);
    assert_eq!(cwd_a, dir.display().to_string());
    assert_ne!(cwd_b, cwd_a);
    assert_eq!((x_a.as_str(), x_b.as_str()), ("one", "two"));
    assert_eq!(nice_a, nice_b + 2);
    assert_eq!(ids(&a).1, ids(&b).1, "one place: same spawner");
    block_on(a.exit()).expect("exit");
    block_on(b.exit()).expect("exit");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_spawner_goes_after_its_linger() {
    let place = own_place("//spawn_linger=0.2");
    let gateways = open_many(&place, 2);
    let spawner = ids(&gateways[0]).1;
    let workers: Vec<u32> = gateways.iter().map(|gw| ids(gw).0).collect();
    // the workers and the standby (the next worker, forked ahead)
    let standby = wait_for_standby(spawner, &workers);
    block_on(gateways[0].exit()).expect("exit");
    assert!(running(spawner), "a gateway to its place is left");
    block_on(gateways[1].exit()).expect("exit");
    let gone = eventually(Duration::from_secs(10), || {
        !support::procs::alive(spawner)
            && !support::procs::alive(standby)
            && workers.iter().all(|&w| !support::procs::alive(w))
    });
    assert!(
        gone,
        "spawner {spawner}, standby {standby} or workers {workers:?} left (or not reaped)"
    );
    // The next gateway to the place starts a new spawner, quietly.
    let next = block_on(Gateway::open(&place)).expect("opens");
    assert_ne!(ids(&next).1, spawner);
    block_on(next.exit()).expect("exit");
}

/// The spawner's child that is none of `workers`: the standby it forks
/// ahead for the next gateway (waited for: it is forked after an answer).
fn wait_for_standby(spawner: u32, workers: &[u32]) -> u32 {
    let mut standby = None;
    let found = eventually(Duration::from_secs(10), || {
        standby = support::procs::children_of(spawner)
            .into_iter()
            .find(|c| !workers.contains(c) && running(*c));
        standby.is_some()
    });
    assert!(
        found,
        "spawner {spawner} forked no standby besides {workers:?}"
    );
    standby.unwrap_or_default()
}

#[test]
fn the_next_gateway_is_the_standby_forked_ahead() {
    let place = own_place("");
    let first = block_on(Gateway::open(&place)).expect("opens");
    let (worker, spawner, _) = ids(&first);
    let standby = wait_for_standby(spawner, &[worker]);
    let next = block_on(Gateway::open(&place)).expect("opens");
    let (pid, ppid, pgid) = ids(&next);
    assert_eq!(pid, standby, "the next gateway runs in the standby");
    assert_eq!(
        (ppid, pgid),
        (spawner, pid),
        "a fork of the spawner, its own group"
    );
    // and a new standby waits for the one after
    let again = wait_for_standby(spawner, &[worker, pid]);
    assert_ne!(again, standby);
    block_on(next.exit()).expect("exit");
    block_on(first.exit()).expect("exit");
}

#[test]
fn a_killed_standby_is_replaced_without_an_error() {
    let place = own_place("");
    let first = block_on(Gateway::open(&place)).expect("opens");
    let (worker, spawner, _) = ids(&first);
    let standby = wait_for_standby(spawner, &[worker]);
    Command::new("kill")
        .args(["-KILL", &standby.to_string()])
        .status()
        .expect("kill runs");
    assert!(eventually(Duration::from_secs(10), || !running(standby)));
    for _ in 0..2 {
        let next = block_on(Gateway::open(&place)).expect("opens without an error");
        let (pid, ppid, _) = ids(&next);
        assert_ne!(pid, standby);
        assert_eq!(ppid, spawner, "the same spawner");
        block_on(next.exit()).expect("exit");
    }
    block_on(first.exit()).expect("exit");
}

#[test]
fn the_linger_comes_from_the_options_too() {
    let options = Options::default().spawn_linger(Duration::ZERO);
    let gw = block_on(Gateway::open_with(
        XSpec::parse(&own_place("")).expect("spec"),
        options,
    ))
    .expect("opens");
    let spawner = ids(&gw).1;
    block_on(gw.exit()).expect("exit");
    assert!(eventually(Duration::from_secs(10), || {
        !support::procs::alive(spawner)
    }));
}

#[test]
fn a_dead_spawner_is_replaced_without_an_error() {
    let place = own_place("");
    let first = block_on(Gateway::open(&place)).expect("opens");
    let spawner = ids(&first).1;
    Command::new("kill")
        .args(["-KILL", &spawner.to_string()])
        .status()
        .expect("kill runs");
    assert!(eventually(Duration::from_secs(10), || {
        !support::procs::alive(spawner)
    }));
    // The fork keeps its own stream: it still works.
    let ch = block_on(first.remote_exec("channel.send('still here')")).expect("exec");
    assert_eq!(
        block_on(ch.receive::<String>()).expect("item"),
        "still here"
    );
    let second = block_on(Gateway::open(&place)).expect("a new spawner, no error");
    assert_ne!(ids(&second).1, spawner);
    let worker = ids(&first).0;
    block_on(first.exit()).expect("exit");
    assert!(eventually(Duration::from_secs(10), || !running(worker)));
    block_on(second.exit()).expect("exit");
}

/// Run by `the_opener_killed_leaves_nothing` in a child test process: open
/// three gateways to `EXECNET_SPAWN_HELPER_SPEC`, print their spawner's and
/// workers' pids, wait to be killed.
#[test]
fn opener_helper() {
    let Ok(spec) = std::env::var("EXECNET_SPAWN_HELPER_SPEC") else {
        return; // only as a helper
    };
    let gateways = open_many(&spec, 3);
    let ids: Vec<(u32, u32, u32)> = gateways.iter().map(ids).collect();
    let local_process = gateways[0].pid().unwrap_or(0);
    let workers: Vec<u32> = ids.iter().map(|i| i.0).collect();
    // the standby too, when the spawner is on this machine
    let standby = if support::procs::alive(ids[0].1) {
        wait_for_standby(ids[0].1, &workers)
    } else {
        0
    };
    println!(
        "PIDS {} {} {} {}",
        local_process,
        ids[0].1,
        standby,
        workers
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::thread::sleep(Duration::from_secs(120));
}

/// Kill an opener with SIGKILL; every process it had (the spawner, the
/// workers, and the ssh client for ssh) ends on its own.
fn opener_killed_leaves_nothing(spec: &str) {
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "opener_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EXECNET_SPAWN_HELPER_SPEC", spec)
        .stdout(Stdio::piped())
        .spawn()
        .expect("helper starts");
    let stdout = helper.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("PIDS ").map(|(_, pids)| pids.to_string()))
        .expect("the helper printed its pids");
    let pids: Vec<u32> = line
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != 0)
        .collect();
    assert!(pids.len() >= 4, "{line}");
    assert!(pids.iter().all(|&p| running(p)), "{line}");
    helper.kill().expect("SIGKILL");
    helper.wait().expect("reaped");
    let left = || {
        pids.iter()
            .copied()
            .filter(|&p| running(p))
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(15), || left().is_empty()),
        "left running after the opener's SIGKILL: {:?} of {line}",
        left()
    );
}

#[test]
fn the_opener_killed_leaves_nothing_locally() {
    opener_killed_leaves_nothing(&own_place(""));
}

#[test]
fn thirty_two_ssh_gateways_ride_one_connection() {
    // Stock MaxSessions/MaxStartups: one connection never meets them.
    let Some(sshd) = Sshd::start_stock("spawn32") else {
        return;
    };
    let spec = sshd.spec("//spawn_linger=0");
    let gateways = open_many(&spec, 32);
    assert_eq!(sshd.client_connections(), 1, "one ssh connection");
    let ids: Vec<(u32, u32, u32)> = gateways.iter().map(ids).collect();
    let spawner = ids[0].1;
    let mut pids: Vec<u32> = ids.iter().map(|i| i.0).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 32, "32 workers");
    assert!(ids.iter().all(|i| i.1 == spawner && i.2 == i.0));
    let ssh = gateways[0].pid().expect("the local ssh client");
    // One ends; the others go on.
    block_on(gateways[0].kill()).expect("kill");
    for gw in &gateways[1..] {
        let ch = block_on(gw.remote_exec("channel.send(channel.receive() + 1)")).expect("exec");
        block_on(ch.send(&1)).expect("send");
        assert_eq!(block_on(ch.receive::<i64>()).expect("item"), 2);
    }
    for gw in &gateways {
        block_on(gw.exit()).expect("exit");
    }
    // After the linger: no spawner, no worker, no ssh client.
    let gone = eventually(Duration::from_secs(15), || {
        !support::procs::alive(ssh) && !running(spawner) && pids.iter().all(|&p| !running(p))
    });
    assert!(gone, "ssh {ssh}, spawner {spawner} or a worker left");
    assert!(eventually(Duration::from_secs(5), || sshd
        .client_connections()
        == 0));
}

#[test]
fn the_opener_killed_leaves_nothing_over_ssh() {
    let Some(sshd) = Sshd::start("spawnkill") else {
        return;
    };
    opener_killed_leaves_nothing(&sshd.spec(""));
}

#[test]
fn throughput_of_a_fork_over_ssh() {
    let Some(sshd) = Sshd::start("spawnbulk") else {
        return;
    };
    let gw = block_on(Gateway::open(&sshd.spec(""))).expect("opens");
    // 32 MiB each way through the multiplexed stream, intact.
    let ch = block_on(gw.remote_exec(
        "import hashlib\n\
         data = channel.receive()\n\
         channel.send(hashlib.sha256(data).hexdigest())\n\
         channel.send(data[::-1])",
    ))
    .expect("exec");
    let data: Vec<u8> = (0..32u32 << 20).map(|i| (i * 7 + i / 4099) as u8).collect();
    block_on(ch.send(&serde_bytes::Bytes::new(&data))).expect("send");
    let digest: String = block_on(ch.receive()).expect("digest");
    assert_eq!(digest.len(), 64);
    let back: serde_bytes::ByteBuf = block_on(ch.receive()).expect("bytes");
    assert_eq!(back.len(), data.len());
    assert!(
        back.iter().rev().eq(data.iter()),
        "the bytes came back reversed, intact"
    );
    block_on(gw.exit()).expect("exit");
}

/// Run by `ssh_is_quiet_and_its_stderr_lands_in_the_error` in a child test
/// process: open `EXECNET_SPAWN_QUIET_SPEC` 16 times at once (past stock
/// MaxSessions and MaxStartups), end them, then open
/// `EXECNET_SPAWN_QUIET_REFUSED` and print its error on one line.
#[test]
fn quiet_helper() {
    let (Ok(spec), Ok(refused)) = (
        std::env::var("EXECNET_SPAWN_QUIET_SPEC"),
        std::env::var("EXECNET_SPAWN_QUIET_REFUSED"),
    ) else {
        return; // only as a helper
    };
    let gateways = open_many(&spec, 16);
    for gw in &gateways {
        let ch = block_on(gw.remote_exec("channel.send(1)")).expect("exec");
        assert_eq!(block_on(ch.receive::<i64>()).expect("item"), 1);
    }
    for gw in &gateways {
        block_on(gw.exit()).expect("exit");
    }
    match block_on(Gateway::open(&refused)) {
        Ok(_) => println!("REFUSED-OPENED"),
        Err(e) => println!("REFUSED {}", e.to_string().replace('\n', " | ")),
    }
}

#[test]
fn ssh_is_quiet_and_its_stderr_lands_in_the_error() {
    let Some(sshd) = Sshd::start_stock("spawnquiet") else {
        return;
    };
    // A key the server does not know: ssh says so on its stderr.
    let refused = format!(
        "ssh={}//ssh_config={}/ssh_config",
        sshd.ssh_args_with("other_key"),
        sshd.dir.display()
    );
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "quiet_helper", "--nocapture", "--test-threads=1"])
        .env("EXECNET_SPAWN_QUIET_SPEC", sshd.spec("//spawn_linger=0"))
        .env("EXECNET_SPAWN_QUIET_REFUSED", &refused)
        .output()
        .expect("helper runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helper failed:\n{stdout}\n{stderr}");
    assert_eq!(stderr.trim(), "", "nothing on the opener's stderr");
    let error = stdout
        .lines()
        .find_map(|l| l.split_once("REFUSED ").map(|(_, e)| e))
        .unwrap_or_else(|| panic!("no error for the refused key:\n{stdout}"));
    // ssh's own words, in the error value.
    assert!(error.contains("Permission denied"), "{error}");
}

/// What remote code sees of its process's file descriptors: fd 0's target,
/// whether print() (fd 1) lands where stderr (fd 2) does, the fds a child
/// process would inherit, and the fds a child process really has.
fn stdio_shape(gw: &Gateway) -> (String, bool, Vec<i64>, Vec<i64>) {
    block_on(async {
        let ch = gw
            .remote_exec(
                "import os, subprocess, sys\n\
                 out, err = os.fstat(1), os.fstat(2)\n\
                 fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n\
                 inherited = [f for f in fds if f > 2 and os.path.exists('/proc/self/fd/%d' % f)\n\
                              and os.get_inheritable(f)]\n\
                 child = subprocess.run([sys.executable, '-c',\n\
                     'import os; print(sorted(int(f) for f in os.listdir(\"/proc/self/fd\")))'],\n\
                     stdout=subprocess.PIPE, close_fds=False, check=True).stdout\n\
                 channel.send((os.readlink('/proc/self/fd/0'),\n\
                               (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino),\n\
                               inherited, eval(child)))",
            )
            .await
            .expect("exec");
        ch.receive().await.expect("shape")
    })
}

fn standby_runs_its_worker_like_a_direct_start(spec: &str) {
    let direct = block_on(Gateway::open(&format!("{spec}//spawn=direct"))).expect("direct opens");
    let first = block_on(Gateway::open(spec)).expect("opens");
    let (worker, spawner, _) = ids(&first);
    let standby = wait_for_standby(spawner, &[worker]);
    let next = block_on(Gateway::open(spec)).expect("opens");
    assert_eq!(
        ids(&next).0,
        standby,
        "the next gateway runs in the standby"
    );
    let want = stdio_shape(&direct);
    assert_eq!(want.0, "/dev/null", "stdin reads nothing");
    assert!(want.1, "print() goes to stderr");
    assert_eq!(
        want.2,
        Vec::<i64>::new(),
        "no fd of ours leaks into children"
    );
    assert!(want.3.starts_with(&[0, 1, 2]), "a child has its stdio");
    for gw in [&first, &next] {
        assert_eq!(stdio_shape(gw), want, "a fork's fds are a direct worker's");
    }
    // The standby's stream works both ways, bulk included.
    let ch = block_on(next.remote_exec("channel.send(channel.receive()[::-1])")).expect("exec");
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    block_on(ch.send(&serde_bytes::Bytes::new(&data))).expect("send");
    let back: serde_bytes::ByteBuf = block_on(ch.receive()).expect("bytes");
    assert!(back.iter().rev().eq(data.iter()), "3 MiB back, reversed");
    for gw in [next, first, direct] {
        block_on(gw.exit()).expect("exit");
    }
}

#[test]
fn a_standby_runs_its_worker_like_a_direct_start() {
    standby_runs_its_worker_like_a_direct_start(&own_place(""));
}

#[test]
fn a_standby_over_ssh_runs_its_worker_like_a_direct_start() {
    let Some(sshd) = Sshd::start("spawnstdio") else {
        return;
    };
    standby_runs_its_worker_like_a_direct_start(&sshd.spec(""));
}
