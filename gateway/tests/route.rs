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
