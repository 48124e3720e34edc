//! The async API works on any executor: the library drives its gateways on
//! its own thread, user futures only wait on events. The same workload runs
//! under tokio (multi-thread runtime), under an `async-executor` with the
//! `async-io` reactor (smol's parts), and under `futures::executor::block_on`.

use std::time::Duration;

use execnet_gateway::{Error, Gateway, Value};

/// Open, run code, echo both ways, several channels at once, a timeout,
/// then exit.
async fn workload() {
    let gw = Gateway::open("popen").await.expect("opens");
    let ch = gw
        .remote_exec("for x in channel:\n    channel.send(x * 2)")
        .await
        .expect("exec");
    for i in 0..50i64 {
        ch.send(&i).await.expect("send");
        assert_eq!(ch.receive::<i64>().await.expect("echo"), i * 2);
    }
    let mut many = Vec::new();
    for k in 0..5i64 {
        let c = gw
            .remote_exec(&format!("channel.send({k})"))
            .await
            .expect("exec");
        many.push(c);
    }
    for (k, c) in many.iter().enumerate() {
        assert_eq!(c.receive::<i64>().await.expect("item"), k as i64);
    }
    let quiet = gw.remote_exec("channel.receive()").await.expect("exec");
    assert!(matches!(
        quiet
            .receive_timeout::<Value>(Duration::from_millis(50))
            .await,
        Err(Error::Timeout(_))
    ));
    let info = gw.rinfo().await.expect("rinfo");
    assert_eq!(Some(info.pid), gw.pid());
    ch.close().await.expect("close");
    ch.wait_close(Some(Duration::from_secs(10)))
        .await
        .expect("closes");
    gw.exit().await.expect("exit");
    assert!(matches!(
        quiet.receive::<Value>().await,
        Err(Error::ConnectionLost(_) | Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tokio_multi_thread() {
    workload().await;
    // Also from spawned tasks, concurrently.
    let a = tokio::spawn(workload());
    let b = tokio::spawn(workload());
    a.await.expect("task a");
    b.await.expect("task b");
}

#[test]
fn under_async_executor_and_async_io() {
    let ex = async_executor::Executor::new();
    async_io::block_on(ex.run(async {
        let a = ex.spawn(workload());
        let b = ex.spawn(workload());
        a.await;
        b.await;
    }));
}

#[test]
fn under_futures_block_on() {
    futures::executor::block_on(workload());
    // Two at once, interleaved on the one thread.
    futures::executor::block_on(futures::future::join(workload(), workload()));
}
