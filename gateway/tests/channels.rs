//! Channel behaviour under load and in the less common shapes: many
//! channels from many threads, flow control against a consumer that does
//! not read, execution models, byte-stream adapters.

use std::time::Duration;

mod support;

use execnet_gateway::{Channel, Error, Gateway, Options, Value, XSpec};
use futures_lite::future::block_on;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use support::open;

#[test]
fn hundred_concurrent_channels_from_many_threads() {
    let gw = open("popen");
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let gw = gw.clone();
            std::thread::spawn(move || {
                let channels: Vec<_> = (0..10)
                    .map(|_| {
                        block_on(gw.remote_exec("for x in channel:\n    channel.send(x + 1)"))
                            .expect("exec")
                    })
                    .collect();
                for round in 0..20i64 {
                    for (i, ch) in channels.iter().enumerate() {
                        block_on(ch.send(&(t * 1000 + i as i64 * 100 + round))).expect("send");
                    }
                    for (i, ch) in channels.iter().enumerate() {
                        let v: i64 = block_on(ch.receive()).expect("reply");
                        assert_eq!(v, t * 1000 + i as i64 * 100 + round + 1);
                    }
                }
                for ch in &channels {
                    block_on(ch.close()).expect("close");
                    block_on(ch.wait_close(Some(Duration::from_secs(30)))).expect("ends");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread ok");
    }
    // The worker's exec threads wind down right after their channels close.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = block_on(gw.remote_status()).expect("status");
        if status.numexecuting == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A remote that sends far more than the window to a consumer that does not
/// read is held back by credit: it gets no further than about one window.
#[test]
fn flow_control_holds_back_a_producer_until_the_consumer_reads() {
    let window = 1 << 20;
    let options = Options::default().window(window);
    let gw = block_on(Gateway::open_with(
        XSpec::parse("popen").expect("spec"),
        options,
    ))
    .expect("opens");
    block_on(async {
        let progress = gw.new_channel();
        let ch = gw
            .remote_exec(
                "progress = channel.receive()\n\
                 chunk = b'x' * 65536\n\
                 for i in range(200):\n    channel.send(chunk)\n    progress.send(i)",
            )
            .await
            .expect("exec");
        ch.send(&progress).await.expect("send");
        // Wait until the producer stalls: no progress for a while.
        let mut last = -1i64;
        loop {
            match progress
                .receive_timeout::<i64>(Duration::from_millis(500))
                .await
            {
                Ok(i) => last = i,
                Err(Error::Timeout(_)) => break,
                Err(e) => panic!("{e}"),
            }
        }
        // 64 KiB items against a 1 MiB window: 16 items (plus the one that
        // crosses zero) can be outstanding.
        assert!((14..=18).contains(&last), "producer got to item {last}");
        // Reading everything lets it finish, and nothing is lost.
        let mut total = 0;
        for _ in 0..200 {
            let chunk: serde_bytes::ByteBuf = ch.receive().await.expect("chunk");
            total += chunk.len();
        }
        assert_eq!(total, 200 * 65536);
        ch.wait_close(Some(Duration::from_secs(30)))
            .await
            .expect("done");
    });
}

#[test]
fn a_stalled_channel_does_not_stall_another() {
    let gw = open("popen");
    block_on(async {
        let flood = gw
            .remote_exec("while True:\n    channel.send(b'y' * 1048576)")
            .await
            .expect("exec");
        let echo = gw
            .remote_exec("for x in channel:\n    channel.send(x)")
            .await
            .expect("exec");
        for i in 0..200 {
            echo.send(&i).await.expect("send");
            assert_eq!(echo.receive::<i32>().await.expect("echo"), i);
        }
        drop(flood);
    });
}

#[test]
fn main_thread_only_runs_execs_on_the_main_thread_in_turn() {
    let gw = open("popen//execmodel=main_thread_only");
    block_on(async {
        let a = gw
            .remote_exec("import threading\nchannel.send(threading.current_thread() is threading.main_thread())")
            .await
            .expect("exec");
        assert!(a.receive::<bool>().await.expect("item"));
        let status = gw.remote_status().await.expect("status");
        assert_eq!(status.execmodel, "main_thread_only");
    });
}

#[test]
fn thread_execmodel_runs_execs_concurrently() {
    let gw = open("popen");
    block_on(async {
        // Two execs that each wait for the other: only concurrent execution finishes.
        let a = gw
            .remote_exec(
                "other = channel.receive()\nother.send('from a')\nchannel.send(other.receive())",
            )
            .await
            .expect("exec");
        let b = gw
            .remote_exec(
                "other = channel.receive()\nother.send('from b')\nchannel.send(other.receive())",
            )
            .await
            .expect("exec");
        let link_a = gw.new_channel();
        let link_b = gw.new_channel();
        a.send(&link_a).await.expect("send");
        b.send(&link_b).await.expect("send");
        // Relay between the two execs through this side.
        let from_a: String = link_a.receive().await.expect("a");
        let from_b: String = link_b.receive().await.expect("b");
        link_a.send(&from_b).await.expect("relay");
        link_b.send(&from_a).await.expect("relay");
        assert_eq!(a.receive::<String>().await.expect("a done"), "from b");
        assert_eq!(b.receive::<String>().await.expect("b done"), "from a");
        // Both execs may have ended and freed every channel by now (the
        // worker keeps none alive once its code drops them).
        let status = gw.remote_status().await.expect("status");
        assert_eq!(status.execmodel, "thread");
        assert!(status.numchannels <= 4, "{status:?}");
    });
}

#[test]
fn reader_and_writer_adapters_are_makefile() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "f = channel.makefile('r')\n\
                 data = f.read(11)\n\
                 w = channel.makefile('w')\n\
                 w.write(data.upper())\n\
                 w.close()",
            )
            .await
            .expect("exec");
        let mut writer = ch.writer();
        writer.write_all(b"hello ").await.expect("write");
        writer.write_all(b"world").await.expect("write");
        let mut text = String::new();
        ch.reader().read_to_string(&mut text).await.expect("read");
        assert_eq!(text, "HELLO WORLD");
    });
}

#[test]
fn close_with_error_reaches_remote_code_as_remote_error() {
    let gw = open("popen");
    block_on(async {
        // The remote waits in receive(); our error ends it there.
        let probe = gw
            .remote_exec(
                "sub = channel.receive()\n\
                 try:\n    sub.receive()\nexcept sub.RemoteError as e:\n    channel.send(str(e))",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        probe.send(&sub).await.expect("send");
        sub.close_with_error("stop now").await.expect("close");
        let text: String = probe.receive().await.expect("message");
        assert!(text.contains("stop now"), "{text}");
    });
}

#[test]
fn values_received_as_value_keep_python_kinds() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("channel.send({'a': {1, 2}, 'b': (None,)})")).expect("exec");
    let v: Value = block_on(ch.receive()).expect("item");
    assert_eq!(v.repr(), "{'a': {1, 2}, 'b': (None,)}");
}

/// `Options::max_frame` bounds what the worker may send: it learns the
/// limit from our hello and refuses a larger item in `channel.send`; smaller
/// items still flow.
#[test]
fn max_frame_bounds_the_items_the_worker_sends() {
    let options = Options::default().max_frame(1 << 20);
    let gw = block_on(Gateway::open_with(
        XSpec::parse("popen").expect("spec"),
        options,
    ))
    .expect("opens");
    block_on(async {
        let ch = gw
            .remote_exec(
                "channel.send(b'x' * 1000)\n\
                 try:\n    channel.send(b'x' * (2 << 20))\n\
                 except Exception as e:\n    channel.send(str(e))\n",
            )
            .await
            .expect("exec");
        let small: serde_bytes::ByteBuf = ch.receive().await.expect("a small item passes");
        assert_eq!(small.len(), 1000);
        let refusal: String = ch.receive().await.expect("the worker says why");
        assert!(refusal.contains("at most 1048576"), "{refusal}");
        gw.exit().await.expect("exit");
    });
}

/// Serializing a channel with another format (here JSON) writes its id and
/// keeps nothing: once its handles are dropped, its gateway goes away (the
/// worker exits), and a channel deserialized elsewhere is an error, never
/// the handle of some other channel.
#[test]
fn a_channel_serialized_with_serde_json_keeps_nothing_alive() {
    let gw = open("popen");
    let pid = gw.pid().expect("a local worker");
    let ch = gw.new_channel();
    let json = serde_json::to_string(&(&ch, 5)).expect("serializes");
    assert_eq!(json, format!("[{},5]", ch.id()));
    let err = serde_json::from_str::<Channel>("7").expect_err("no handle to attach");
    assert!(err.to_string().contains("without a gateway"), "{err}");
    // Through our own formats a channel still travels with its handle.
    let v = execnet_gateway::to_value(&ch).expect("converts");
    let back: Channel = execnet_gateway::from_value(v).expect("converts back");
    assert_eq!(back, ch);
    drop((back, ch, gw));
    assert!(
        support::procs::eventually(Duration::from_secs(20), || !support::procs::children()
            .contains(&pid)),
        "the worker of a dropped gateway is still running: something keeps the gateway alive"
    );
}

#[test]
fn end_error_reports_how_a_channel_ended_also_inside_its_callback() {
    let gw = open("popen");
    let ch =
        block_on(gw.remote_exec("channel.send(1)\nraise ValueError('ended badly')")).expect("exec");
    assert!(ch.end_error().is_none(), "open: nothing to report yet");
    let (tx, rx) = std::sync::mpsc::channel();
    let probe = ch.clone();
    ch.set_callback(
        move |item| {
            // At the endmarker the callback is still running: end_error
            // must not wait for it.
            if item == Value::from("END") {
                let _ = tx.send(probe.end_error());
            }
        },
        Some(Value::from("END")),
    )
    .expect("callback");
    let at_end = rx.recv_timeout(Duration::from_secs(20)).expect("endmarker");
    match at_end {
        Some(Error::Remote(e)) => assert!(e.formatted().contains("ValueError: ended badly")),
        other => panic!("expected the remote error, got {other:?}"),
    }
    assert!(ch.end_error().is_none(), "reported once");
    block_on(ch.wait_close(Some(Duration::from_secs(10)))).expect("no second report");

    let clean = block_on(gw.remote_exec("pass")).expect("exec");
    block_on(clean.wait_close(Some(Duration::from_secs(10)))).expect("clean end");
    assert!(clean.end_error().is_none());
}
