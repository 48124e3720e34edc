//! Faults mid-stream: the worker killed (SIGKILL) during a bulk transfer,
//! during receives, during `exit()`; the worker closing its own protocol
//! stream. Every waiter gets `ConnectionLost` promptly and later calls fail
//! rather than block.
//!
//! The figures (time from the kill to the waiter's error) are printed; run
//! with `--nocapture` to see them. The bound asserted is a generous
//! "does not hang", not a speed claim.

use std::time::{Duration, Instant};

mod support;

use execnet_gateway::{Error, Gateway, Value};
use futures_lite::future::block_on;
use support::open;

/// A waiter must see a dead worker well within this.
const PROMPT: Duration = Duration::from_secs(5);

fn kill9(pid: u32) -> Instant {
    // The worker may have exited on its own already (during exit()); then
    // `kill` finds nothing, which is fine.
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill runs");
    Instant::now()
}

fn is_lost<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::ConnectionLost(_)))
}

/// After the connection died: every call errors, none blocks.
fn later_calls_fail(gw: &Gateway, ch: &execnet_gateway::Channel) {
    let start = Instant::now();
    block_on(async {
        assert!(gw.is_closed());
        assert!(gw.remote_exec("pass").await.is_err());
        assert!(gw.rinfo().await.is_err());
        assert!(gw.remote_status().await.is_err());
        assert!(ch.send(&1).await.is_err());
        assert!(ch.receive::<Value>().await.is_err());
        assert!(ch
            .receive_timeout::<Value>(Duration::from_secs(30))
            .await
            .is_err());
        let fresh = gw.new_channel();
        assert!(fresh.send(&1).await.is_err());
        assert!(fresh.receive::<Value>().await.is_err());
        gw.exit().await.expect("exit after death");
    });
    assert!(
        start.elapsed() < PROMPT,
        "later calls took {:?}",
        start.elapsed()
    );
    let pid = gw.pid().expect("pid");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn killed_during_a_bulk_transfer_to_us() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    let ch =
        block_on(gw.remote_exec("while True:\n    channel.send(b'z' * 1048576)")).expect("exec");
    // Take a few items so the transfer is really going.
    for _ in 0..8 {
        let item: serde_bytes::ByteBuf = block_on(ch.receive()).expect("item");
        assert_eq!(item.len(), 1 << 20);
    }
    let killed = kill9(pid);
    // Items already here may still come; then the loss.
    let result = loop {
        match block_on(ch.receive::<serde_bytes::ByteBuf>()) {
            Ok(_) => assert!(killed.elapsed() < PROMPT, "items keep coming"),
            other => break other,
        }
    };
    let took = killed.elapsed();
    println!("bulk receive: ConnectionLost {took:?} after SIGKILL");
    assert!(is_lost(&result), "{result:?}");
    assert!(took < PROMPT, "took {took:?}");
    later_calls_fail(&gw, &ch);
}

#[test]
fn killed_during_a_bulk_transfer_from_us() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    // The remote reads one item and then stops: our sends stall on credit.
    let ch =
        block_on(gw.remote_exec("channel.receive()\nimport time\ntime.sleep(1000)")).expect("exec");
    let chunk = serde_bytes::ByteBuf::from(vec![7u8; 1 << 20]);
    let sender = {
        let ch = ch.clone();
        std::thread::spawn(move || loop {
            if let Err(e) = block_on(ch.send(&chunk)) {
                return (e, Instant::now());
            }
        })
    };
    // Wait until the sender is blocked: the worker holds about a window.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sender.is_finished() && Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.contains("State:\tS") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let killed = kill9(pid);
    let (err, when) = sender.join().expect("sender thread");
    let took = when.saturating_duration_since(killed);
    println!("blocked send: {err} {took:?} after SIGKILL");
    assert!(matches!(err, Error::ConnectionLost(_)), "{err:?}");
    assert!(took < PROMPT, "took {took:?}");
    later_calls_fail(&gw, &ch);
}

#[test]
fn killed_while_many_wait() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    let channels: Vec<_> = (0..6)
        .map(|_| block_on(gw.remote_exec("channel.receive()")).expect("exec"))
        .collect();
    // Four receivers, one wait_close, one receive_timeout with a long limit,
    // each on its own thread; and a callback with an endmarker.
    let mut waiters = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        let ch = ch.clone();
        waiters.push(std::thread::spawn(move || {
            let result = match i {
                4 => block_on(ch.wait_close(None)).map(|_| Value::None),
                5 => block_on(ch.receive_timeout::<Value>(Duration::from_secs(60))),
                _ => block_on(ch.receive::<Value>()),
            };
            (result, Instant::now())
        }));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let cb = block_on(gw.remote_exec("channel.receive()")).expect("exec");
    cb.set_callback(
        move |v| {
            let _ = tx.send((v, Instant::now()));
        },
        Some(Value::Str("end".into())),
    )
    .expect("callback");
    // Let every waiter start waiting.
    std::thread::sleep(Duration::from_millis(200));
    let killed = kill9(pid);
    let mut worst = Duration::ZERO;
    for w in waiters {
        let (result, when) = w.join().expect("waiter");
        assert!(is_lost(&result), "{result:?}");
        worst = worst.max(when.saturating_duration_since(killed));
    }
    let (end, when) = rx.recv_timeout(PROMPT).expect("the endmarker comes");
    assert_eq!(end, Value::Str("end".into()));
    worst = worst.max(when.saturating_duration_since(killed));
    println!("7 waiters: slowest saw the loss {worst:?} after SIGKILL");
    assert!(worst < PROMPT, "took {worst:?}");
    later_calls_fail(&gw, &channels[0]);
}

#[test]
fn killed_during_exit() {
    // A worker that cannot finish its exit: the remote code ignores SIGTERM
    // and holds the worker's write lock, which Terminate waits for.
    let gw = block_on(Gateway::open("popen//execmodel=main_thread_only")).expect("opens");
    let pid = gw.pid().expect("pid");
    let ch = block_on(gw.remote_exec(
        "import signal, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         channel.send('ready')\n\
         channel.gateway._wio.acquire()\n\
         while 1: time.sleep(0.01)",
    ))
    .expect("exec");
    assert_eq!(block_on(ch.receive::<String>()).expect("ready"), "ready");
    let exiting = {
        let gw = gw.clone();
        std::thread::spawn(move || {
            let r = block_on(gw.exit_timeout(Duration::from_secs(30)));
            (r, Instant::now())
        })
    };
    // Kill while exit() waits (the worker itself gives up on its own after
    // about a second of a lost opener).
    std::thread::sleep(Duration::from_millis(50));
    let killed = kill9(pid);
    let (result, when) = exiting.join().expect("exit thread");
    let took = when.saturating_duration_since(killed);
    println!("exit(): returned {took:?} after SIGKILL");
    result.expect("exit succeeds");
    assert!(took < PROMPT, "took {took:?}");
    assert!(block_on(ch.receive::<Value>()).is_err());
    later_calls_fail(&gw, &ch);
}

#[test]
fn worker_closing_its_output_stream_is_a_loss() {
    let gw = open("popen");
    block_on(async {
        let waiter = gw.remote_exec("channel.receive()").await.expect("exec");
        let closer = gw
            .remote_exec("import os\nos.close(channel.gateway._out)")
            .await
            .expect("exec");
        let start = Instant::now();
        let result = waiter.receive::<Value>().await;
        println!(
            "worker closed its output: loss seen after {:?}",
            start.elapsed()
        );
        assert!(is_lost(&result), "{result:?}");
        assert!(start.elapsed() < PROMPT);
        drop(closer);
    });
    let ch = gw.new_channel();
    later_calls_fail(&gw, &ch);
}

#[test]
fn worker_closing_its_input_stream_is_a_loss() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("import os\nos.close(channel.gateway._in)\nchannel.send('closed')\nchannel.receive()")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<String>().await.expect("item"), "closed");
        // The worker's reader fails on its next read: send it something.
        let _ = ch.send(&1).await;
        let start = Instant::now();
        let result = ch.receive::<Value>().await;
        println!(
            "worker closed its input: loss seen after {:?}",
            start.elapsed()
        );
        // The worker takes a failed read as "the opener is gone": its exec
        // threads may end their channels (a clean close) before it exits.
        assert!(
            matches!(result, Err(Error::ConnectionLost(_) | Error::Closed)),
            "{result:?}"
        );
        assert!(start.elapsed() < PROMPT);
        // Then the connection itself is lost.
        let fresh = gw.new_channel();
        let lost = fresh.receive::<Value>().await;
        assert!(is_lost(&lost), "{lost:?}");
        assert!(start.elapsed() < PROMPT);
    });
    let ch = gw.new_channel();
    later_calls_fail(&gw, &ch);
}

/// Programs that remote code started go with the gateway: the worker leads
/// its own process group, and the group is killed once the worker is gone.
#[test]
fn processes_started_by_remote_code_end_with_the_gateway() {
    for how in ["exit", "kill"] {
        let gw = block_on(Gateway::open("popen")).expect("opens");
        let ch = block_on(gw.remote_exec(
            "import subprocess\n\
             p = subprocess.Popen(['sleep', '1000'])\n\
             channel.send(p.pid)",
        ))
        .expect("exec");
        let pid: u32 = block_on(ch.receive()).expect("pid");
        let proc_dir = format!("/proc/{pid}");
        assert!(std::path::Path::new(&proc_dir).exists());
        match how {
            "exit" => block_on(gw.exit()).expect("exit"),
            _ => block_on(gw.kill()).expect("kill"),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        // Gone, or a zombie waiting for init to reap it (it is not our child).
        let alive = || {
            std::fs::read_to_string(format!("{proc_dir}/stat"))
                .map(|s| {
                    !s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !alive(),
            "{how}: the remote code's `sleep` (pid {pid}) outlived the gateway"
        );
    }
}

/// A worker that dies says how: its exit status, or the signal that
/// killed it (the process is ours, so we know).
#[test]
fn a_dead_worker_says_its_exit_status_or_signal() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("import os; os._exit(3)")).expect("exec");
    let err = block_on(ch.receive::<Value>()).expect_err("the worker died");
    assert!(matches!(err, Error::ConnectionLost(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("the worker's stream ended"), "{text}");
    assert!(text.contains("exited with status 3"), "{text}");

    let gw = open("popen");
    let ch = block_on(gw.remote_exec("channel.receive()")).expect("exec");
    kill9(gw.pid().expect("pid"));
    let err = block_on(ch.receive::<Value>()).expect_err("the worker died");
    let text = err.to_string();
    assert!(text.contains("killed by signal 9 (SIGKILL)"), "{text}");

    // Writing to the dead worker (a broken pipe, found before or after the
    // end of its stream) says the same.
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("import time; time.sleep(60)")).expect("exec");
    kill9(gw.pid().expect("pid"));
    let _ = block_on(ch.send(&serde_bytes::ByteBuf::from(vec![0u8; 4 << 20])));
    let err = block_on(ch.receive::<Value>()).expect_err("the worker died");
    let text = err.to_string();
    assert!(text.contains("killed by signal 9 (SIGKILL)"), "{text}");
}
