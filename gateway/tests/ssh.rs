//! ssh gateways against a real sshd started by the test (see support/sshd.rs).

mod support;

use std::time::Instant;

use execnet_gateway::{Gateway, Step};
use futures_lite::future::block_on;
use support::bootstrap_error;
use support::sshd::{free_port, Sshd};

#[test]
fn rinfo_exec_chdir_env_over_ssh() {
    let Some(sshd) = Sshd::start("rinfo") else {
        return;
    };
    block_on(async {
        let work = sshd.dir.join("work");
        let started = Instant::now();
        let gw = Gateway::open(&sshd.spec(&format!(
            "//chdir={}//env:EXECNET_T=ok//spawn_linger=0",
            work.display()
        )))
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log()));
        eprintln!("one ssh gateway opened in {:?}", started.elapsed());
        let info = gw.rinfo().await.expect("rinfo");
        assert_eq!(info.cwd, work.display().to_string());
        let local_ssh = gw.pid().expect("the local ssh pid");
        assert_ne!(
            info.pid, local_ssh,
            "rinfo().pid is the remote worker, pid() the ssh client"
        );
        let ch = gw
            .remote_exec(
                "import os; channel.send((os.environ['EXECNET_T'], channel.receive() * 2))",
            )
            .await
            .expect("remote_exec");
        ch.send(&21).await.expect("send");
        assert_eq!(
            ch.receive::<(String, i64)>().await.expect("receive"),
            ("ok".into(), 42)
        );
        gw.exit().await.expect("exit");
        // The ssh client carries the place's spawner: it goes (reaped) when
        // the spawner's linger is over.
        assert!(
            support::procs::eventually(std::time::Duration::from_secs(10), || {
                !std::path::Path::new(&format!("/proc/{local_ssh}")).exists()
            }),
            "ssh reaped"
        );
    });
}

#[test]
fn eight_gateways_share_one_connection() {
    let Some(sshd) = Sshd::start("share") else {
        return;
    };
    block_on(async {
        let spec = sshd.spec("");
        let started = Instant::now();
        let opens = (0..8).map(|_| Gateway::open(&spec));
        let gateways: Vec<Gateway> = futures::future::join_all(opens)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log()));
        eprintln!("8 ssh gateways opened in {:?}", started.elapsed());
        assert_eq!(sshd.client_connections(), 1, "one shared ssh connection");
        let mut pids = Vec::new();
        for gw in &gateways {
            pids.push(gw.rinfo().await.expect("rinfo").pid);
        }
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 8, "eight distinct remote workers");
        for gw in &gateways {
            gw.exit().await.expect("exit");
        }
        // Opting out of the spawner and of connection sharing: its own
        // connection next to the spawner's.
        let own = Gateway::open(&sshd.spec("//spawn=direct//ssh_multiplex=no"))
            .await
            .expect("open");
        assert_eq!(sshd.client_connections(), 2);
        own.exit().await.expect("exit");
    });
}

#[test]
fn unknown_host_is_named() {
    let (step, message) = bootstrap_error(block_on(Gateway::open("ssh=nonexistent.invalid")));
    assert_eq!(step, Step::Host, "{message}");
    assert!(
        message.contains("unknown host nonexistent.invalid"),
        "{message}"
    );
    // ssh's own words, said once (not again as "its stderr says").
    assert_eq!(
        message.matches("Could not resolve hostname").count(),
        1,
        "{message}"
    );
}

#[test]
fn refused_key_says_authentication() {
    let Some(sshd) = Sshd::start("refused") else {
        return;
    };
    let spec = format!(
        "ssh={}//ssh_config={}/ssh_config",
        sshd.ssh_args_with("other_key"),
        sshd.dir.display()
    );
    let (step, message) = bootstrap_error(block_on(Gateway::open(&spec)));
    assert_eq!(step, Step::Auth, "{message}");
    assert!(message.contains("authentication refused"), "{message}");
}

#[test]
fn dead_port_names_host_and_port() {
    let port = free_port();
    let spec = format!("ssh=-p {port} -o ConnectTimeout=5 root@127.0.0.1");
    let (step, message) = bootstrap_error(block_on(Gateway::open(&spec)));
    assert_eq!(step, Step::Connect, "{message}");
    assert!(
        message.contains(&format!("127.0.0.1 port {port}")),
        "{message}"
    );
    assert_eq!(
        message.matches("Connection refused").count(),
        1,
        "{message}"
    );
}

#[test]
fn missing_remote_python_is_named() {
    let Some(sshd) = Sshd::start("nopython") else {
        return;
    };
    let (step, message) =
        bootstrap_error(block_on(Gateway::open(&sshd.spec("//python=python9.99"))));
    assert_eq!(step, Step::Interpreter, "{message}");
    assert!(message.contains("remote python was not found"), "{message}");
    assert_eq!(message.matches("python9.99").count(), 1, "{message}");
}
