//! via= and installvia=: gateways opened through other gateways.

use execnet_gateway::{Gateway, Options, XSpec};
use futures_lite::future::block_on;

fn spec(s: &str) -> XSpec {
    XSpec::parse(s).expect("valid spec")
}

#[test]
fn via_spawns_the_worker_from_the_via_worker() {
    block_on(async {
        let master = Gateway::open("popen//id=master")
            .await
            .expect("open master");
        let master_pid = master.rinfo().await.expect("rinfo").pid;
        let sub = Gateway::open_via(
            spec("popen//via=master//chdir=/tmp"),
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
