//! Gateways to real local Python workers: the basics of opening, running
//! code, values, errors and closing.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

mod support;

use execnet_gateway::{Error, Gateway, Step, Value};
use futures_lite::future::block_on;
use futures_lite::StreamExt;
use support::open;

#[test]
fn remote_exec_sends_a_result() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let ch = gw.remote_exec("channel.send(42)").await.expect("exec");
        assert_eq!(ch.receive::<i64>().await.expect("item"), 42);
        assert!(matches!(ch.receive::<i64>().await, Err(Error::Closed)));
        gw.exit().await.expect("exit");
    });
}

#[test]
fn echo_loop_keeps_order() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("for item in channel:\n    channel.send(item)")
            .await
            .expect("exec");
        for i in 0..500 {
            ch.send(&i).await.expect("send");
        }
        for i in 0..500 {
            assert_eq!(ch.receive::<i32>().await.expect("echo"), i);
        }
        ch.close().await.expect("close");
        ch.wait_close(Some(Duration::from_secs(10)))
            .await
            .expect("remote loop ends");
    });
}

#[test]
fn name_is_channelexec() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("channel.send(__name__)")).expect("exec");
    assert_eq!(
        block_on(ch.receive::<String>()).expect("item"),
        "__channelexec__"
    );
}

#[test]
fn remote_exception_carries_the_traceback_then_eof() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("def f():\n    raise ValueError('boom 42')\nf()")
            .await
            .expect("exec");
        let err = ch.receive::<Value>().await.expect_err("remote raised");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("Traceback"), "{remote}");
        assert!(
            remote.formatted().contains("ValueError: boom 42"),
            "{remote}"
        );
        assert!(remote.formatted().contains("in f"), "{remote}");
        assert!(matches!(ch.receive::<Value>().await, Err(Error::Closed)));
    });
}

#[test]
fn syntax_error_and_system_exit_are_remote_errors() {
    let gw = open("popen");
    block_on(async {
        let ch = gw.remote_exec("def (:").await.expect("exec");
        let err = ch.wait_close(None).await.expect_err("syntax error");
        assert!(err.to_string().contains("SyntaxError"), "{err}");
        let ch = gw.remote_exec("raise SystemExit(3)").await.expect("exec");
        let err = ch.wait_close(None).await.expect_err("system exit");
        assert!(err.to_string().contains("SystemExit"), "{err}");
        // The gateway still works afterwards.
        let ch = gw.remote_exec("channel.send(1)").await.expect("exec");
        assert_eq!(ch.receive::<i32>().await.expect("item"), 1);
    });
}

#[test]
fn wait_close_reports_the_remote_error_once() {
    let gw = open("popen");
    block_on(async {
        let ch = gw.remote_exec("raise KeyError('k')").await.expect("exec");
        assert!(matches!(ch.wait_close(None).await, Err(Error::Remote(_))));
        ch.wait_close(None).await.expect("second wait is clean");
        assert!(matches!(ch.receive::<Value>().await, Err(Error::Closed)));
    });
}

#[test]
fn receive_timeout_times_out_and_can_be_retried() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("x = channel.receive()\nchannel.send(x + 1)")
            .await
            .expect("exec");
        let start = Instant::now();
        let err = ch
            .receive_timeout::<i32>(Duration::from_millis(200))
            .await
            .expect_err("nothing yet");
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        ch.send(&1).await.expect("send");
        let v = ch
            .receive_timeout::<i32>(Duration::from_secs(10))
            .await
            .expect("now it comes");
        assert_eq!(v, 2);
        let err = ch
            .wait_close(Some(Duration::from_secs(10)))
            .await
            .map(|_| ());
        assert!(err.is_ok());
    });
}

#[test]
fn sending_on_a_closed_channel_is_an_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw.remote_exec("pass").await.expect("exec");
        ch.wait_close(None).await.expect("closes");
        assert!(matches!(ch.send(&1).await, Err(Error::SendClosed(_))));
        let ch2 = gw.remote_exec("channel.receive()").await.expect("exec");
        ch2.close().await.expect("close");
        assert!(matches!(ch2.send(&1).await, Err(Error::SendClosed(_))));
    });
}

#[test]
fn every_value_kind_round_trips_exactly() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("for item in channel:\n    channel.send(item)")
            .await
            .expect("exec");
        let samples: Vec<Value> = vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0i64.into()),
            Value::Int(i64::MIN.into()),
            Value::Int(u64::MAX.into()),
            Value::Int(i128::MAX.into()),
            Value::Int(i128::MIN.into()),
            Value::Float(1.5),
            Value::Float(f64::INFINITY),
            Value::Complex(execnet_wire::Complex { re: 1.0, im: -2.0 }),
            Value::Bytes(vec![0, 1, 255]),
            Value::Str("héllo ✓".into()),
            Value::List(vec![Value::None, Value::Str("a".into())]),
            Value::Tuple(vec![]),
            Value::Dict(vec![(
                Value::Str("k".into()),
                Value::List(vec![Value::Int(1i64.into())]),
            )]),
            Value::Set(vec![Value::Int(1i64.into())]),
            Value::FrozenSet(vec![Value::Str("x".into())]),
            Value::Tuple(vec![
                Value::FrozenSet(vec![]),
                Value::Dict(vec![(
                    Value::Tuple(vec![Value::Int(1i64.into())]),
                    Value::Set(vec![]),
                )]),
            ]),
        ];
        for v in &samples {
            ch.send(v).await.expect("send");
            let back: Value = ch.receive().await.expect("echo");
            assert_eq!(&back, v);
        }
        let n: i128 = i128::MIN + 7;
        ch.send(&n).await.expect("send");
        assert_eq!(ch.receive::<i128>().await.expect("i128"), n);
        ch.send(&u64::MAX).await.expect("send");
        assert_eq!(ch.receive::<u64>().await.expect("u64"), u64::MAX);
        let mut map = HashMap::new();
        map.insert("a".to_string(), vec![(1u8, "x".to_string())]);
        ch.send(&map).await.expect("send");
        let back: HashMap<String, Vec<(u8, String)>> = ch.receive().await.expect("map");
        assert_eq!(back, map);
        let set: BTreeSet<i32> = [3, 1, 2].into_iter().collect();
        ch.send(&set).await.expect("send");
        assert_eq!(ch.receive::<BTreeSet<i32>>().await.expect("set"), set);
    });
}

#[test]
fn python_types_arrive_with_their_python_kind() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "channel.send((1, [2], {3: 4}, {5}, frozenset([6]), b'7', 8.5, 2**100, 1j, None, True))",
            )
            .await
            .expect("exec");
        let v: Value = ch.receive().await.expect("item");
        assert_eq!(
            v.repr(),
            "(1, [2], {3: 4}, {5}, frozenset({6}), b'7', 8.5, 1267650600228229401496703205376, 1j, None, True)"
        );
    });
}

#[test]
fn a_value_python_cannot_send_is_a_remote_error_naming_the_type() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("channel.send(ValueError())")
            .await
            .expect("exec");
        let err = ch.receive::<Value>().await.expect_err("cannot serialize");
        assert!(err.to_string().contains("ValueError"), "{err}");
    });
}

#[test]
fn a_value_rust_cannot_take_is_an_error_on_that_call() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("channel.send('abc'); channel.send(300); channel.send(5)")
            .await
            .expect("exec");
        assert!(matches!(ch.receive::<i32>().await, Err(Error::Value(_))));
        assert!(matches!(ch.receive::<u8>().await, Err(Error::Value(_))));
        assert_eq!(ch.receive::<u8>().await.expect("fits"), 5);
    });
}

#[test]
fn fifty_mib_bytes_item_round_trips() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("data = channel.receive()\nchannel.send(len(data))\nchannel.send(data)")
            .await
            .expect("exec");
        let data: Vec<u8> = (0..50 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        ch.send(&serde_bytes::Bytes::new(&data))
            .await
            .expect("send");
        assert_eq!(ch.receive::<usize>().await.expect("len"), data.len());
        let back: serde_bytes::ByteBuf = ch.receive().await.expect("bytes");
        assert!(back.as_slice() == data.as_slice());
    });
}

#[test]
fn channels_travel_inside_items_both_ways() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "a, b = channel.receive()\n\
                 a.send('to a')\n\
                 b.send('to b')\n\
                 c = channel.gateway.newchannel()\n\
                 channel.send({'c': c})\n\
                 c.send(c.receive() * 2)",
            )
            .await
            .expect("exec");
        let a = gw.new_channel();
        let b = gw.new_channel();
        ch.send(&(&a, &b)).await.expect("send channels");
        assert_eq!(a.receive::<String>().await.expect("a"), "to a");
        assert_eq!(b.receive::<String>().await.expect("b"), "to b");
        let m: HashMap<String, execnet_gateway::Channel> = ch.receive().await.expect("dict");
        let c = &m["c"];
        assert_eq!(c.id() % 2, 0, "worker-made channels have even ids");
        c.send(&21).await.expect("send");
        assert_eq!(c.receive::<i32>().await.expect("c"), 42);
    });
}

#[test]
fn dropping_the_last_handle_ends_the_remote_receive() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "sub = channel.receive()\n\
                 try:\n    sub.receive()\nexcept EOFError:\n    channel.send('eof')",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        drop(sub);
        assert_eq!(ch.receive::<String>().await.expect("item"), "eof");
    });
}

#[test]
fn channel_is_a_stream_ending_at_eof() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("for i in range(5): channel.send(i)")
            .await
            .expect("exec");
        let items: Vec<Value> = ch.map(|r| r.expect("item")).collect().await;
        assert_eq!(items.len(), 5);
        assert_eq!(items[4], Value::Int(4i64.into()));
    });
}

#[test]
fn callback_gets_every_item_then_the_endmarker_once() {
    let gw = open("popen");
    let (tx, rx) = std::sync::mpsc::channel();
    let ch = block_on(gw.remote_exec("for i in range(100): channel.send(i)")).expect("exec");
    ch.set_callback(
        move |v| tx.send(v).expect("collect"),
        Some(Value::Str("END".into())),
    )
    .expect("callback");
    block_on(ch.wait_close(Some(Duration::from_secs(10)))).expect("ends");
    let got: Vec<Value> = rx.try_iter().collect();
    assert_eq!(got.len(), 101, "{got:?}");
    assert_eq!(got[0], Value::Int(0i64.into()));
    assert_eq!(got[99], Value::Int(99i64.into()));
    assert_eq!(got[100], Value::Str("END".into()));
    assert!(matches!(
        block_on(ch.receive::<Value>()),
        Err(Error::CallbackSet(_))
    ));
}

#[test]
fn rinfo_and_status_describe_the_worker() {
    let gw = open("popen");
    block_on(async {
        let info = gw.rinfo().await.expect("rinfo");
        assert_eq!(Some(info.pid), gw.pid());
        assert!(info.version.starts_with("3."), "{info:?}");
        assert_eq!(info.platform, "linux");
        assert_eq!(
            info.cwd,
            std::env::current_dir().expect("cwd").to_string_lossy()
        );
        let status = gw.remote_status().await.expect("status");
        assert_eq!(status.execmodel, "thread");
        assert_eq!(status.numexecuting, 0);
    });
}

#[test]
fn spec_settings_apply_in_the_worker() {
    let dir = std::env::temp_dir().join(format!("execnet-chdir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = format!(
        "popen//chdir={}//env:EXECNET_T=yes//dont_write_bytecode//id=myid",
        dir.join("sub").display()
    );
    let gw = open(&spec);
    assert_eq!(gw.id(), "myid");
    block_on(async {
        let ch = gw
            .remote_exec(
                "import os, sys\nchannel.send((os.getcwd(), os.environ.get('EXECNET_T'), sys.dont_write_bytecode, channel.gateway.id))",
            )
            .await
            .expect("exec");
        let (cwd, env, dwb, id): (String, Option<String>, bool, String) =
            ch.receive().await.expect("item");
        assert_eq!(cwd, dir.join("sub").to_string_lossy());
        assert_eq!(env.as_deref(), Some("yes"));
        assert!(dwb);
        assert_eq!(
            id, "myid-worker",
            "execnet names the remote end <id>-worker"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn print_and_fd_1_writes_do_not_corrupt_the_stream() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec(
        "import os\nprint('hello from print')\nos.write(1, b'\\x00\\x01raw bytes')\nchannel.send('still fine')",
    ))
    .expect("exec");
    assert_eq!(
        block_on(ch.receive::<String>()).expect("item"),
        "still fine"
    );
}

#[test]
fn missing_interpreter_names_it() {
    let err = block_on(Gateway::open("popen//python=/nonexistent/python9")).expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("/nonexistent/python9"), "{text}");
    assert!(text.contains("no such file"), "{text}");
    assert!(matches!(
        err,
        Error::Bootstrap {
            step: Step::Spawn,
            ..
        }
    ));
}

#[test]
fn an_interpreter_that_is_not_python_is_quoted() {
    // `echo` answers with its arguments instead of a hello.
    let err = block_on(Gateway::open("popen//python=echo not-python")).expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("not-python"), "{text}");
}

#[test]
fn exit_is_idempotent_and_ends_channels() {
    let gw = open("popen");
    block_on(async {
        let ch = gw.remote_exec("channel.receive()").await.expect("exec");
        gw.exit().await.expect("exit");
        gw.exit().await.expect("exit again");
        assert!(gw.is_closed());
        assert!(ch.receive::<Value>().await.is_err());
        assert!(gw.remote_exec("pass").await.is_err());
    });
}

#[test]
fn exit_returns_even_when_remote_code_is_stuck() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    block_on(async {
        let _ch = gw
            .remote_exec(
                "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile 1: pass",
            )
            .await
            .expect("exec");
        gw.exit().await.expect("exit");
    });
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn killed_worker_ends_waiters_with_connection_lost() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    block_on(async {
        let ch = gw.remote_exec("channel.receive()").await.expect("exec");
        let waiter = async { ch.receive::<Value>().await };
        let killer = async {
            async_io::Timer::after(Duration::from_millis(100)).await;
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill runs");
            Ok::<Value, Error>(Value::None)
        };
        let (got, _) = futures_lite::future::zip(waiter, killer).await;
        assert!(matches!(got, Err(Error::ConnectionLost(_))), "{got:?}");
        assert!(matches!(
            ch.send(&1).await,
            Err(Error::ConnectionLost(_) | Error::SendClosed(_))
        ));
    });
}
