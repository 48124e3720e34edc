//! via= and installvia=: gateways opened through other gateways.

use execnet_gateway::{Gateway, Options, XSpec};
use futures_lite::future::block_on;

fn spec(s: &str) -> XSpec {
    XSpec::parse(s).expect("valid spec")
}

/// The parent pid of `pid` (from /proc).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn via_gateways_are_forks_of_one_spawner_in_the_via_worker() {
    block_on(async {
        let master = Gateway::open("popen//id=m").await.expect("open master");
        let master_pid = master.rinfo().await.expect("rinfo").pid;
        let opens = (0..4).map(|i| {
            Gateway::open_via(
                spec("popen//via=m"),
                format!("sub{i}"),
                &master,
                Options::default(),
            )
        });
        let subs: Vec<Gateway> = futures::future::join_all(opens)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("every via gateway opens");
        let mut ids = Vec::new();
        for sub in &subs {
            let ch = sub
                .remote_exec("import os; channel.send((os.getpid(), os.getppid(), os.getpgrp()))")
                .await
                .expect("exec");
            ids.push(ch.receive::<(u32, u32, u32)>().await.expect("ids"));
        }
        let spawner = ids[0].1;
        assert_ne!(spawner, master_pid, "forks, not children of the via worker");
        assert_eq!(
            parent_of(spawner),
            Some(master_pid),
            "the via worker started the spawner"
        );
        for &(pid, ppid, pgid) in &ids {
            assert_eq!(ppid, spawner, "one spawner for the four: {ids:?}");
            assert_eq!(pgid, pid, "each leads its own process group");
        }
        // a large item both ways through the multiplexed relay
        let ch = subs[1]
            .remote_exec("channel.send(channel.receive())")
            .await
            .expect("exec");
        ch.send(&vec![5u8; 3_000_000]).await.expect("send");
        assert_eq!(
            ch.receive::<Vec<u8>>().await.expect("echo").len(),
            3_000_000
        );
        // spawn=direct: a child of the via worker, as before
        let direct = Gateway::open_via(
            spec("popen//via=m//spawn=direct"),
            "direct".into(),
            &master,
            Options::default(),
        )
        .await
        .expect("open direct");
        let ch = direct
            .remote_exec("import os; channel.send(os.getppid())")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<u32>().await.expect("ppid"), master_pid);
        direct.exit().await.expect("exit");
        for sub in &subs {
            sub.exit().await.expect("exit sub");
        }
        master.exit().await.expect("exit master");
        let left = || {
            std::iter::once(spawner)
                .chain(ids.iter().map(|i| i.0))
                .filter(|&p| parent_of(p).is_some())
                .collect::<Vec<_>>()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !left().is_empty() && std::time::Instant::now() < deadline {
            async_io::Timer::after(std::time::Duration::from_millis(20)).await;
        }
        assert!(left().is_empty(), "left running: {:?}", left());
    });
}

#[test]
fn via_spawns_the_worker_from_the_via_worker() {
    block_on(async {
        let master = Gateway::open("popen//id=master")
            .await
            .expect("open master");
        let master_pid = master.rinfo().await.expect("rinfo").pid;
        let sub = Gateway::open_via(
            spec("popen//via=master//chdir=/tmp//spawn=direct"),
            "sub".into(),
            &master,
            Options::default(),
        )
        .await
        .expect("open via");
        assert_eq!(sub.pid(), None, "no local process behind a via gateway");
        let ch = sub
            .remote_exec("import os; channel.send((os.getppid(), os.getcwd(), channel.receive()))")
            .await
            .expect("exec");
        ch.send(&vec![7u8; 300_000])
            .await
            .expect("send a large item through the relay");
        let (parent, cwd, echoed): (u32, String, Vec<u8>) = ch.receive().await.expect("receive");
        assert_eq!(
            parent, master_pid,
            "the sub-worker is a child of the via worker"
        );
        assert_eq!(cwd, "/tmp");
        assert_eq!(echoed.len(), 300_000);
        sub.exit().await.expect("exit sub");
        // The master is unaffected and its relay snippet has finished.
        let ch = master.remote_exec("channel.send(1)").await.expect("exec");
        assert_eq!(ch.receive::<i64>().await.expect("receive"), 1);
        master.exit().await.expect("exit master");
    });
}

#[test]
fn via_rejects_without_group() {
    let err = block_on(Gateway::open("popen//via=nobody")).expect_err("needs a group");
    assert!(err.to_string().contains("via=nobody"), "{err}");
}

#[test]
fn installvia_starts_a_server_inside_the_gateway() {
    block_on(async {
        let master = Gateway::open("popen").await.expect("open master");
        let master_pid = master.rinfo().await.expect("rinfo").pid;
        let sub = Gateway::open_installvia(
            spec("socket=127.0.0.1:0//installvia=m"),
            "sock".into(),
            &master,
            Options::default(),
        )
        .await
        .expect("open installvia");
        let ch = sub
            .remote_exec("import os; channel.send(os.getppid())")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<u32>().await.expect("receive"), master_pid);
        sub.exit().await.expect("exit");
        master.exit().await.expect("exit");
    });
}

#[test]
fn main_thread_only_master_serves_many_via_and_installvia_gateways() {
    // The relays run in threads of the master's worker: its main thread,
    // the only one a main_thread_only worker runs execs on, stays free.
    block_on(async {
        let master = Gateway::open("popen//id=m//execmodel=main_thread_only")
            .await
            .expect("open master");
        let mut subs = Vec::new();
        for i in 0..3 {
            let sub = Gateway::open_via(
                spec("popen//via=m//execmodel=main_thread_only"),
                format!("via{i}"),
                &master,
                Options::default(),
            )
            .await
            .expect("a main_thread_only master opens one via gateway after another");
            subs.push(sub);
        }
        for i in 0..2 {
            let sub = Gateway::open_installvia(
                spec("socket=127.0.0.1:0//installvia=m"),
                format!("sock{i}"),
                &master,
                Options::default(),
            )
            .await
            .expect("and installvia gateways");
            subs.push(sub);
        }
        for (i, sub) in subs.iter().enumerate() {
            let ch = sub
                .remote_exec("channel.send(channel.receive() * 2)")
                .await
                .expect("exec");
            ch.send(&(i as i64)).await.expect("send");
            assert_eq!(ch.receive::<i64>().await.expect("receive"), 2 * i as i64);
        }
        let ch = master
            .remote_exec("channel.send('free')")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<String>().await.expect("receive"), "free");
        for sub in subs {
            sub.exit().await.expect("exit sub");
        }
        master.exit().await.expect("exit master");
    });
}

#[test]
fn socket_to_an_unknown_host_fails_at_the_host_step() {
    // `.invalid` never resolves (RFC 6761): Python users get HostNotFound
    let err = block_on(Gateway::open("socket=nonexistent.invalid:9000")).expect_err("no host");
    match err {
        execnet_gateway::Error::Bootstrap { step, message, .. } => {
            assert_eq!(step, execnet_gateway::Step::Host, "{message}");
            assert!(message.contains("nonexistent.invalid"), "{message}");
        }
        other => panic!("expected a bootstrap error, got {other:?}"),
    }
    // a refused connection is the connect step
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let err = block_on(Gateway::open(&format!("socket=127.0.0.1:{port}"))).expect_err("refused");
    assert!(
        matches!(
            err,
            execnet_gateway::Error::Bootstrap {
                step: execnet_gateway::Step::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}
