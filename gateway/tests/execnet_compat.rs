//! Behaviours from Python execnet's own test suite (`testing/test_channel.py`,
//! `testing/test_gateway.py`, `testing/test_termination.py`) that apply to
//! popen gateways, re-stated for this crate. Most of them exercise the
//! remote side: the Python code run by `remote_exec` sees execnet's channel
//! API, so what execnet's tests check from the local Python side is checked
//! here from inside the worker and reported back over a channel.
//!
//! Each test names the execnet test it mirrors.

use std::sync::mpsc;
use std::time::Duration;

mod support;

use execnet_gateway::{Channel, Error, Value};
use futures_lite::future::block_on;
use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use support::open;
use support::procs::alive;

/// How long anything that should happen may take before a test fails.
const LIMIT: Duration = Duration::from_secs(10);

/// Mirrors test_gateway.py::test_remote_exec_no_explicit_close: remote code
/// may not close its own exec channel; the attempt raises in the worker and
/// reaches us as a remote error that says so.
#[test]
fn remote_close_of_the_exec_channel_is_an_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw.remote_exec("channel.close()").await.expect("exec");
        let err = ch.wait_close(Some(LIMIT)).await.expect_err("raises");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("explicit"), "{remote}");
    });
}

/// Mirrors test_channel.py::test_waitclose_timeouterror, run on the remote
/// side: `waitclose(timeout)` raises `channel.TimeoutError` while the
/// channel is open and returns once we close it.
#[test]
fn remote_waitclose_times_out_then_returns_after_our_close() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "sub = channel.receive()\n\
                 try:\n    sub.waitclose(0.05)\n\
                 except sub.TimeoutError as e:\n    channel.send(('timeout', isinstance(e, IOError)))\n\
                 sub.waitclose(10)\n\
                 channel.send(('closed', sub.isclosed()))",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        let first: (String, bool) = ch.receive().await.expect("timeout report");
        assert_eq!(first, ("timeout".to_string(), true));
        sub.close().await.expect("close");
        let second: (String, bool) = ch.receive().await.expect("closed report");
        assert_eq!(second, ("closed".to_string(), true));
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_receive_timeout on the remote
/// side: `receive(timeout)` raises `channel.TimeoutError` when nothing
/// comes, and a later receive still gets the item.
#[test]
fn remote_receive_timeout_raises_timeout_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "try:\n    channel.receive(timeout=0.05)\n\
                 except channel.TimeoutError:\n    channel.send('timed out')\n\
                 channel.send(channel.receive(timeout=10) + 1)",
            )
            .await
            .expect("exec");
        assert_eq!(ch.receive::<String>().await.expect("report"), "timed out");
        ch.send(&41).await.expect("send");
        assert_eq!(ch.receive::<i32>().await.expect("answer"), 42);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_gateway.py::test_remote_exec_error_after_close and
/// test_channel.py::test_channel_finish_and_then_EOFError from the remote
/// side: after we close a channel, the worker sees `isclosed()`, its
/// receives raise EOFError (every time), and its sends raise IOError.
#[test]
fn remote_sees_our_close_as_closed_eof_and_send_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "sub = channel.receive()\n\
                 channel.send(sub.isclosed())\n\
                 sub.waitclose(10)\n\
                 eofs = 0\n\
                 for _ in range(3):\n\
                 \x20   try:\n        sub.receive()\n    except EOFError:\n        eofs += 1\n\
                 try:\n    sub.send(1)\n    sent = True\nexcept IOError:\n    sent = False\n\
                 channel.send((sub.isclosed(), eofs, sent))",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        assert!(!ch.receive::<bool>().await.expect("open at first"));
        sub.close().await.expect("close");
        let (closed, eofs, sent): (bool, i32, bool) = ch.receive().await.expect("report");
        assert!(closed, "isclosed() after our close");
        assert_eq!(eofs, 3, "every receive after the close raises EOFError");
        assert!(!sent, "send after our close raises IOError");
    });
}

/// Mirrors test_channel.py::test_channel_iter, iterated on the remote side:
/// `for item in channel` ends when we close, after every item we sent.
#[test]
fn remote_iteration_ends_at_our_close() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "result = channel.gateway.newchannel()\n\
                 channel.send(result)\n\
                 result.send([x * 10 for x in channel])",
            )
            .await
            .expect("exec");
        let result: Channel = ch.receive().await.expect("result channel");
        for i in 0..20 {
            ch.send(&i).await.expect("send");
        }
        ch.close().await.expect("close");
        let got: Vec<i32> = result.receive().await.expect("collected");
        assert_eq!(got, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        ch.wait_close(Some(LIMIT)).await.expect("loop ended");
    });
}

/// Mirrors test_channel.py::test_channel_endmarker_callback on the remote
/// side: a callback set in the worker gets every item we send, then the
/// endmarker once when we close.
#[test]
fn remote_setcallback_gets_items_then_endmarker() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "import queue\n\
                 q = queue.Queue()\n\
                 sub = channel.receive()\n\
                 sub.setcallback(q.put, endmarker='END')\n\
                 try:\n    sub.receive()\n    raised = False\n\
                 except IOError:\n    raised = True\n\
                 items = []\n\
                 while True:\n\
                 \x20   x = q.get(timeout=10)\n    items.append(x)\n    if x == 'END':\n        break\n\
                 channel.send((raised, items))",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        for i in 0..5 {
            sub.send(&i).await.expect("send");
        }
        sub.close().await.expect("close");
        let (raised, items): (bool, Vec<Value>) = ch.receive().await.expect("report");
        assert!(raised, "receive() with a callback set raises IOError");
        let mut expected: Vec<Value> = (0..5i64).map(|i| Value::Int(i.into())).collect();
        expected.push(Value::Str("END".into()));
        assert_eq!(items, expected);
    });
}

/// Mirrors test_channel.py::test_channel_callback_error: a callback that
/// raises in the worker closes its channel with the error; we see it as a
/// remote error carrying the exception, and the worker sees `isclosed()`.
#[test]
fn remote_callback_that_raises_closes_the_channel_with_the_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "def f(item):\n    raise ValueError(4242)\n\
                 ch = channel.gateway.newchannel()\n\
                 ch.setcallback(f)\n\
                 channel.send(ch)\n\
                 channel.receive()\n\
                 channel.send(ch.isclosed())",
            )
            .await
            .expect("exec");
        let sub: Channel = ch.receive().await.expect("sub");
        sub.send(&1).await.expect("send");
        let err = sub.wait_close(Some(LIMIT)).await.expect_err("errored");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("ValueError"), "{remote}");
        assert!(remote.formatted().contains("4242"), "{remote}");
        ch.send(&1).await.expect("send");
        assert!(ch.receive::<bool>().await.expect("isclosed"));
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_multipass: the exec channel sent
/// to us arrives as the same channel, and sent back it is the worker's own.
#[test]
fn exec_channel_passes_back_and_forth_as_itself() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "channel.send(channel)\n\
                 x = channel.receive()\n\
                 channel.send(x is channel)",
            )
            .await
            .expect("exec");
        let same: Channel = ch.receive().await.expect("channel");
        assert_eq!(same.id(), ch.id());
        ch.send(&same).await.expect("send back");
        assert!(ch.receive::<bool>().await.expect("identity"));
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_passing_over_channel, many times:
/// channels made by the worker arrive usable and distinct, each carries its
/// own items, and they end when the remote code ends.
#[test]
fn many_channels_created_remotely() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "chans = [channel.gateway.newchannel() for _ in range(50)]\n\
                 channel.send(chans)\n\
                 for i, c in enumerate(chans):\n    c.send(i)\n\
                 for i, c in enumerate(chans):\n    c.send(c.receive() + i)\n    c.close()",
            )
            .await
            .expect("exec");
        let chans: Vec<Channel> = ch.receive().await.expect("channels");
        assert_eq!(chans.len(), 50);
        let mut ids: Vec<u32> = chans.iter().map(Channel::id).collect();
        assert!(ids.iter().all(|id| id % 2 == 0), "{ids:?}");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 50, "distinct ids");
        for (i, c) in chans.iter().enumerate() {
            assert_eq!(c.receive::<usize>().await.expect("index"), i);
        }
        for (i, c) in chans.iter().enumerate() {
            c.send(&1000).await.expect("send");
            assert_eq!(c.receive::<usize>().await.expect("reply"), 1000 + i);
            assert!(matches!(c.receive::<Value>().await, Err(Error::Closed)));
        }
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_pass_in_structure, with channels
/// crossing in both directions inside one structure.
#[test]
fn channels_in_a_structure_cross_both_ways() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "mine = channel.gateway.newchannel()\n\
                 channel.send({'theirs': mine})\n\
                 ins, outs = channel.receive()\n\
                 outs.send(ins.receive() + mine.receive())",
            )
            .await
            .expect("exec");
        let theirs: std::collections::HashMap<String, Channel> = ch.receive().await.expect("dict");
        let ins = gw.new_channel();
        let outs = gw.new_channel();
        ch.send(&(&ins, &outs)).await.expect("send");
        ins.send(&1).await.expect("send");
        theirs["theirs"].send(&2).await.expect("send");
        assert_eq!(outs.receive::<i32>().await.expect("sum"), 3);
    });
}

/// Mirrors test_gateway.py::test_threads_race_sending: several threads in
/// the remote code send on one channel at once; nothing is lost or
/// reordered within a thread.
#[test]
fn remote_threads_send_concurrently_on_one_channel() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "import threading\n\
                 def run(t):\n    for i in range(200):\n        channel.send((t, i, 'x' * 100))\n\
                 ts = [threading.Thread(target=run, args=(t,)) for t in range(5)]\n\
                 for t in ts: t.start()\n\
                 for t in ts: t.join()",
            )
            .await
            .expect("exec");
        let mut next = [0i32; 5];
        for _ in 0..1000 {
            let (t, i, pad): (usize, i32, String) = ch.receive_timeout(LIMIT).await.expect("item");
            assert_eq!(pad.len(), 100);
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [200; 5]);
        assert!(matches!(ch.receive::<Value>().await, Err(Error::Closed)));
    });
}

/// Mirrors test_channel.py::test_channel_file_read and
/// test_channel_file_readline_remote on the remote side: `makefile('r')`
/// reads across item boundaries, by count and by line.
#[test]
fn remote_makefile_read_and_readline_span_items() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "f = channel.makefile('r')\n\
                 channel.send(f.read(2))\n\
                 channel.send(f.read(5))\n\
                 channel.send(f.readline())\n\
                 channel.send(f.readline())",
            )
            .await
            .expect("exec");
        for part in ["xy", "abc", "de12", "3\n45", "\n"] {
            ch.send(part).await.expect("send");
        }
        let got: Vec<String> = vec![
            ch.receive().await.expect("read 2"),
            ch.receive().await.expect("read 5"),
            ch.receive().await.expect("line 1"),
            ch.receive().await.expect("line 2"),
        ];
        assert_eq!(got, ["xy", "abcde", "123\n", "45\n"]);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_file_write: `makefile('w')` writes
/// arrive as items of the type written, and closing the file (without
/// proxyclose) leaves the channel usable.
#[test]
fn remote_makefile_write_sends_items_and_close_keeps_the_channel() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "f = channel.makefile()\n\
                 f.write('hello world\\n')\n\
                 f.close()\n\
                 channel.send(42)",
            )
            .await
            .expect("exec");
        let first: Value = ch.receive().await.expect("written");
        assert_eq!(first, Value::Str("hello world\n".into()));
        assert_eq!(ch.receive::<i32>().await.expect("then 42"), 42);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_file_proxyclose: with
/// `proxyclose=True` closing the file closes the exec channel, which is an
/// explicit close inside remote_exec: the text arrives, then an error.
#[test]
fn remote_makefile_proxyclose_is_an_explicit_close() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "f = channel.makefile(proxyclose=True)\n\
                 f.write('hello world')\n\
                 f.close()\n\
                 channel.send(42)",
            )
            .await
            .expect("exec");
        assert_eq!(ch.receive::<String>().await.expect("text"), "hello world");
        let err = ch.receive::<Value>().await.expect_err("then the error");
        assert!(err.as_remote().is_some(), "{err:?}");
    });
}

/// Mirrors test_channel.py::test_channel_file_read_empty and
/// test_channel_file_readline_remote on our side: the reader of a channel
/// that ended without items is at EOF at once; lines split across items.
#[test]
fn our_reader_reads_lines_and_empty_channels() {
    let gw = open("popen");
    block_on(async {
        let empty = gw.remote_exec("pass").await.expect("exec");
        let mut buf = Vec::new();
        let n = empty.reader().read_to_end(&mut buf).await.expect("read");
        assert_eq!(n, 0);

        let ch = gw
            .remote_exec("channel.send('123\\n45')")
            .await
            .expect("exec");
        ch.wait_close(Some(LIMIT)).await.expect("done");
        let mut lines = BufReader::new(ch.reader());
        let mut line = String::new();
        lines.read_line(&mut line).await.expect("line 1");
        assert_eq!(line, "123\n");
        line.clear();
        lines.read_line(&mut line).await.expect("line 2");
        assert_eq!(line, "45");
        line.clear();
        assert_eq!(lines.read_line(&mut line).await.expect("eof"), 0);
    });
}

/// Mirrors test_channel.py::test_channel_close_and_then_receive_error_multiple:
/// items sent before the remote code raised come first, then the error,
/// then end-of-channel.
#[test]
fn items_sent_before_a_remote_error_arrive_first() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("for i in range(3):\n    channel.send(i)\nraise ValueError('late')")
            .await
            .expect("exec");
        for i in 0..3 {
            assert_eq!(ch.receive::<i32>().await.expect("item"), i);
        }
        let err = ch.receive::<Value>().await.expect_err("error");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("ValueError: late"), "{remote}");
        assert!(matches!(ch.receive::<Value>().await, Err(Error::Closed)));
    });
}

/// Mirrors test_channel.py::test_channel_error_reporting: the message is a
/// full Python traceback naming the undefined name.
#[test]
fn name_error_is_reported_as_a_traceback() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("def foo():\n  return foobar()\nfoo()\n")
            .await
            .expect("exec");
        let err = ch.receive::<Value>().await.expect_err("raised");
        let text = err.as_remote().expect("remote").formatted().to_string();
        assert!(
            text.starts_with("Traceback (most recent call last):"),
            "{text}"
        );
        assert!(text.contains("NameError"), "{text}");
        assert!(text.contains("foobar"), "{text}");
    });
}

/// Mirrors test_channel.py::test_channel_iter (whose source is an indented
/// triple-quoted string) and test_gateway.py::test_remote_exec_channel_anonymous:
/// source whose first line is indented is dedented and runs.
#[test]
fn indented_source_is_dedented() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("    for x in range(3):\n        channel.send(x)\n")
            .await
            .expect("exec");
        let items: Vec<i32> = vec![
            ch.receive().await.expect("0"),
            ch.receive().await.expect("1"),
            ch.receive().await.expect("2"),
        ];
        assert_eq!(items, [0, 1, 2]);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// As above, for the exact shape of execnet's tests: a source that starts
/// with a newline, then indented lines (`"""\n    code\n"""`).
#[test]
fn indented_source_after_a_leading_newline_is_dedented() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec("\n    obj = channel.receive()\n    channel.send(obj)\n    ")
            .await
            .expect("exec");
        ch.send(&42).await.expect("send");
        let got = ch.receive::<i32>().await;
        assert_eq!(got.expect("echo"), 42);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_gateway.py::test_remote_exec_waitclose(_2,_noarg): code
/// that sends nothing ends cleanly, with or without a timeout.
#[test]
fn code_that_sends_nothing_ends_cleanly() {
    let gw = open("popen");
    block_on(async {
        let a = gw.remote_exec("pass").await.expect("exec");
        a.wait_close(Some(LIMIT)).await.expect("ends");
        let b = gw.remote_exec("def gccycle(): pass").await.expect("exec");
        b.wait_close(None).await.expect("ends");
        assert!(a.is_closed() && b.is_closed());
    });
}

/// Mirrors test_channel.py::test_channel_callback_after_receive (and
/// test_channel_receiver_callback): items received before the callback was
/// set are not repeated; the rest, channels included, go to the callback.
#[test]
fn callback_set_after_a_receive_gets_only_the_rest() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec(
        "channel.send(42)\nchannel.send(13)\nchannel.send(channel.gateway.newchannel())",
    ))
    .expect("exec");
    assert_eq!(block_on(ch.receive::<i32>()).expect("first"), 42);
    let (tx, rx) = mpsc::channel();
    ch.set_callback(move |v| tx.send(v).expect("collect"), None)
        .expect("callback");
    block_on(ch.wait_close(Some(LIMIT))).expect("ends");
    let got: Vec<Value> = rx.try_iter().collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], Value::Int(13i64.into()));
    assert!(matches!(got[1], Value::Channel(_)), "{got:?}");
}

/// Mirrors test_channel.py::test_waiting_for_callbacks: wait_close returns
/// only after a slow callback has handled the last item.
#[test]
fn wait_close_waits_for_a_slow_callback() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("channel.send(42)")).expect("exec");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    ch.set_callback(
        move |v| {
            std::thread::sleep(Duration::from_millis(100));
            sink.lock().expect("lock").push(v);
        },
        None,
    )
    .expect("callback");
    block_on(ch.wait_close(Some(LIMIT))).expect("ends");
    assert_eq!(*seen.lock().expect("lock"), vec![Value::Int(42i64.into())]);
}

/// Mirrors test_channel.py::test_channel_callback_stays_active: a channel
/// whose callback is set keeps delivering after we drop our handle, while a
/// remote thread keeps sending.
#[test]
fn callback_stays_active_after_the_handle_is_dropped() {
    let gw = open("popen");
    let (tx, rx) = mpsc::channel();
    block_on(async {
        let ch = gw
            .remote_exec(
                "import threading, time\n\
                 def producer(sub):\n    for i in range(5):\n        time.sleep(0.02)\n        sub.send(i * 100)\n\
                 sub = channel.receive()\n\
                 threading.Thread(target=producer, args=(sub,)).start()\n\
                 del sub",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        sub.set_callback(move |v| tx.send(v).expect("collect"), None)
            .expect("callback");
        ch.send(&sub).await.expect("send");
        drop(sub);
    });
    let got: Vec<Value> = (0..5)
        .map(|_| rx.recv_timeout(LIMIT).expect("item"))
        .collect();
    let expected: Vec<Value> = (0..5i64).map(|i| Value::Int((i * 100).into())).collect();
    assert_eq!(got, expected);
}

/// Mirrors test_channel.py::test_channel_endmarker_callback_error: after the
/// remote code raised, the endmarker comes, and the error is still there
/// for wait_close (once).
#[test]
fn endmarker_comes_after_a_remote_error_which_wait_close_reports() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("raise ValueError()")).expect("exec");
    let (tx, rx) = mpsc::channel();
    ch.set_callback(
        move |v| tx.send(v).expect("collect"),
        Some(Value::Int(999i64.into())),
    )
    .expect("callback");
    assert_eq!(
        rx.recv_timeout(LIMIT).expect("endmarker"),
        Value::Int(999i64.into())
    );
    let err = block_on(ch.wait_close(Some(LIMIT))).expect_err("the error");
    assert!(err.to_string().contains("ValueError"), "{err}");
    block_on(ch.wait_close(Some(LIMIT))).expect("reported once");
}

/// Mirrors test_gateway.py::test_status_with_threads: two execs blocked in
/// receive count as executing; once they end the count drops to zero.
#[test]
fn remote_status_counts_blocked_execs() {
    let gw = open("popen");
    block_on(async {
        let c1 = gw
            .remote_exec("channel.send(1) ; channel.receive()")
            .await
            .expect("exec");
        let c2 = gw
            .remote_exec("channel.send(2) ; channel.receive()")
            .await
            .expect("exec");
        assert_eq!(c1.receive::<i32>().await.expect("1"), 1);
        assert_eq!(c2.receive::<i32>().await.expect("2"), 2);
        assert_eq!(gw.remote_status().await.expect("status").numexecuting, 2);
        c1.send(&1).await.expect("send");
        c2.send(&1).await.expect("send");
        c1.wait_close(Some(LIMIT)).await.expect("ends");
        c2.wait_close(Some(LIMIT)).await.expect("ends");
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let status = gw.remote_status().await.expect("status");
            if status.numexecuting == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{status:?}");
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    });
}

/// Mirrors test_termination.py::test_termination_on_remote_channel_receive
/// and test_close_initiating_remote_no_error: exit while remote code waits
/// in receive returns, the worker process is gone, and the waiting
/// channel's receive ends with an error instead of hanging.
#[test]
fn exit_while_remote_code_waits_in_receive() {
    let gw = open("popen");
    let pid = block_on(async {
        let p = gw
            .remote_exec("import os ; channel.send(os.getpid())")
            .await
            .expect("exec");
        p.receive::<u32>().await.expect("pid")
    });
    assert_eq!(Some(pid), gw.pid());
    let ch1 = block_on(gw.remote_exec("channel.receive()")).expect("exec");
    let ch2 = block_on(gw.remote_exec("channel.receive()")).expect("exec");
    let waiter = {
        let ch = ch1.clone();
        std::thread::spawn(move || block_on(ch.receive::<Value>()))
    };
    block_on(gw.exit()).expect("exit");
    assert!(!alive(pid), "worker {pid} still there");
    let got = waiter.join().expect("waiter thread");
    assert!(
        matches!(got, Err(Error::Closed | Error::ConnectionLost(_))),
        "{got:?}"
    );
    let again = block_on(ch2.receive::<Value>());
    assert!(
        matches!(again, Err(Error::Closed | Error::ConnectionLost(_))),
        "{again:?}"
    );
    // Our own exit is not a failure of the channel.
    block_on(ch2.wait_close(Some(LIMIT))).expect("wait_close after exit");
    assert!(ch1.is_closed() && ch2.is_closed());
}

/// Mirrors test_termination.py::test_exit_blocked_worker_execution_gateway:
/// exit returns while remote code sleeps (no SIGTERM handling changed).
#[test]
fn exit_returns_while_remote_code_sleeps() {
    let gw = open("popen");
    let pid = gw.pid().expect("pid");
    block_on(async {
        let ch = gw
            .remote_exec("import time\nchannel.send(1)\ntime.sleep(10.0)")
            .await
            .expect("exec");
        assert_eq!(ch.receive::<i32>().await.expect("started"), 1);
        gw.exit().await.expect("exit");
    });
    assert!(!alive(pid));
}

/// Mirrors test_termination.py::test_endmarker_delivery_on_remote_killterm:
/// the worker killed with SIGTERM while its code sleeps; a callback set
/// afterwards still gets the endmarker, and the channel reports the loss.
#[test]
fn endmarker_delivered_when_the_worker_is_terminated() {
    let gw = open("popen");
    let ch =
        block_on(gw.remote_exec("import os, time\nchannel.send(os.getpid())\ntime.sleep(100)"))
            .expect("exec");
    let pid: u32 = block_on(ch.receive()).expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    ch.set_callback(
        move |v| tx.send(v).expect("collect"),
        Some(Value::Int(999i64.into())),
    )
    .expect("callback");
    assert_eq!(
        rx.recv_timeout(LIMIT).expect("endmarker"),
        Value::Int(999i64.into())
    );
    let end = block_on(ch.wait_close(Some(LIMIT)));
    assert!(
        matches!(end, Err(Error::ConnectionLost(_))),
        "execnet reports EOFError here: {end:?}"
    );
}

/// Terminating with callbacks pending (execnet's Group.terminate with
/// channels that have callbacks): exit returns and every callback gets its
/// endmarker exactly once.
#[test]
fn exit_with_pending_callbacks_delivers_each_endmarker_once() {
    let gw = open("popen");
    let (tx, rx) = mpsc::channel();
    let mut channels = Vec::new();
    for i in 0..3i64 {
        let ch = block_on(gw.remote_exec("channel.send('up')\nchannel.receive()")).expect("exec");
        assert_eq!(block_on(ch.receive::<String>()).expect("up"), "up");
        let tx = tx.clone();
        ch.set_callback(
            move |v| tx.send((i, v)).expect("collect"),
            Some(Value::Str("END".into())),
        )
        .expect("callback");
        channels.push(ch);
    }
    drop(tx);
    block_on(gw.exit()).expect("exit");
    let mut got: Vec<(i64, Value)> = (0..3)
        .map(|_| rx.recv_timeout(LIMIT).expect("an endmarker"))
        .collect();
    for ch in &channels {
        let _ = block_on(ch.wait_close(Some(LIMIT)));
    }
    assert!(rx.try_recv().is_err(), "nothing after the endmarkers");
    got.sort_by_key(|(i, _)| *i);
    let expected: Vec<(i64, Value)> = (0..3).map(|i| (i, Value::Str("END".into()))).collect();
    assert_eq!(got, expected);
    for ch in &channels {
        assert!(ch.is_closed());
    }
}

/// Mirrors test_channel.py::test_channel_callback_error on our side: in
/// execnet a callback that raises closes its channel with the error. Here a
/// callback that panics must at least not leave wait_close hanging once the
/// channel has ended.
#[test]
fn a_panicking_callback_does_not_hang_wait_close() {
    let gw = open("popen");
    let ch = block_on(gw.remote_exec("channel.send(1)\nchannel.receive()")).expect("exec");
    ch.set_callback(|_| panic!("callback fails on purpose"), None)
        .expect("callback");
    // Let the remote code finish: the channel ends from its side.
    block_on(ch.send(&1)).expect("send");
    let end = block_on(ch.wait_close(Some(Duration::from_secs(3))));
    assert!(!matches!(end, Err(Error::Timeout(_))), "{end:?}");
}

/// Mirrors test_channel.py::test_channel__local_close_error, from the
/// worker: remote code closing a channel it made with an error message
/// ends our receive with a remote error carrying that message, after the
/// items sent before it.
#[test]
fn remote_close_with_error_on_its_own_channel() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "c = channel.gateway.newchannel()\n\
                 channel.send(c)\n\
                 c.send('before')\n\
                 c.close('went wrong 17')",
            )
            .await
            .expect("exec");
        let c: Channel = ch.receive().await.expect("channel");
        assert_eq!(c.receive::<String>().await.expect("item"), "before");
        let err = c.receive::<Value>().await.expect_err("error");
        let remote = err.as_remote().expect("a remote error");
        assert!(remote.formatted().contains("went wrong 17"), "{remote}");
        assert!(matches!(c.receive::<Value>().await, Err(Error::Closed)));
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors the waitclose docstring ("Exceptions from the other side are
/// reraised as RemoteErrors") on the remote side: our close_with_error
/// makes the worker's `waitclose()` raise `RemoteError` with our message.
#[test]
fn remote_waitclose_raises_our_close_error() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "sub = channel.receive()\n\
                 try:\n    sub.waitclose(10)\n    channel.send('no error')\n\
                 except sub.RemoteError as e:\n    channel.send('RemoteError: ' + str(e))",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        sub.close_with_error("our reason 5").await.expect("close");
        let text: String = ch.receive().await.expect("report");
        assert!(text.starts_with("RemoteError: "), "{text}");
        assert!(text.contains("our reason 5"), "{text}");
    });
}

/// Mirrors test_channel.py::test_channel_endmarker_callback on the remote
/// side, ended by dropping our last handle instead of closing.
#[test]
fn remote_callback_gets_endmarker_when_we_drop_the_channel() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "import queue\n\
                 q = queue.Queue()\n\
                 sub = channel.receive()\n\
                 sub.setcallback(q.put, endmarker=None)\n\
                 channel.send('ready')\n\
                 items = []\n\
                 while True:\n    x = q.get(timeout=10)\n    if x is None:\n        break\n    items.append(x)\n\
                 channel.send(items)",
            )
            .await
            .expect("exec");
        let sub = gw.new_channel();
        ch.send(&sub).await.expect("send");
        assert_eq!(ch.receive::<String>().await.expect("ready"), "ready");
        sub.send("only").await.expect("send");
        drop(sub);
        let items: Vec<String> = ch.receive().await.expect("items");
        assert_eq!(items, ["only"]);
    });
}

/// Mirrors test_gateway.py::test_confusion_from_os_write_stderr: writes to
/// fd 2 in remote code do not disturb the channel.
#[test]
fn fd_2_writes_do_not_corrupt_the_stream() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "import os, sys\n\
                 os.write(2, b'raw bytes to stderr\\n')\n\
                 sys.stderr.write('text to stderr\\n')\n\
                 channel.send(os.write(2, b'x'))\n\
                 channel.send('still fine')",
            )
            .await
            .expect("exec");
        assert_eq!(ch.receive::<i32>().await.expect("written"), 1);
        assert_eq!(ch.receive::<String>().await.expect("item"), "still fine");
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}

/// Mirrors test_channel.py::test_channel_multipass for a channel the worker
/// made: sent to us, then back to the worker over another channel, it is
/// the same object there and still carries items both ways.
#[test]
fn remote_made_channel_goes_out_and_comes_back_as_itself() {
    let gw = open("popen");
    block_on(async {
        let ch = gw
            .remote_exec(
                "c = channel.gateway.newchannel()\n\
                 channel.send(c)\n\
                 back = channel.receive()\n\
                 channel.send(back is c)\n\
                 c.send(c.receive() + 1)",
            )
            .await
            .expect("exec");
        let c: Channel = ch.receive().await.expect("channel");
        ch.send(&c).await.expect("send back");
        assert!(ch.receive::<bool>().await.expect("identity"));
        c.send(&1).await.expect("send");
        assert_eq!(c.receive::<i32>().await.expect("reply"), 2);
        ch.wait_close(Some(LIMIT)).await.expect("clean end");
    });
}
