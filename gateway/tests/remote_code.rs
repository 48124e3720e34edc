//! `remote_exec_code`: source compiled under a file name, a function called
//! with keyword arguments (execnet's `remote_exec(module)` and
//! `remote_exec(function, **kwargs)`), and tracebacks that show the user's
//! file, lines and frames rather than the worker's.

use execnet_gateway::{to_value, Error, Gateway, RemoteCode, Value};
use futures_lite::future::block_on;

const MODULE: &str = "\
import os

def worker(channel, base, items=()):
    channel.send([base + x for x in items])

def broken(channel):
    helper()

def helper():
    raise RuntimeError('in the helper')
";

fn remote_error(result: execnet_gateway::Result<Value>) -> String {
    match result {
        Err(Error::Remote(e)) => e.formatted().to_owned(),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[test]
fn a_function_is_called_with_its_kwargs() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let code = RemoteCode::new(MODULE).filename("tasks.py").call(
            "worker",
            [
                ("base", to_value(&10).expect("int")),
                ("items", to_value(&(1, 2, 3)).expect("tuple")),
            ],
        );
        let ch = gw.remote_exec_code(code).await.expect("exec");
        assert_eq!(ch.receive::<Vec<i64>>().await.expect("item"), [11, 12, 13]);
        ch.wait_close(None).await.expect("ends without error");
        // a default argument stays a default
        let code = RemoteCode::new(MODULE).call("worker", [("base", Value::from(1))]);
        let ch = gw.remote_exec_code(code).await.expect("exec");
        assert_eq!(
            ch.receive::<Vec<i64>>().await.expect("item"),
            Vec::<i64>::new()
        );
        gw.exit().await.expect("exit");
    });
}

#[test]
fn tracebacks_name_the_file_and_show_its_lines_but_not_the_worker() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        // the file exists nowhere: its lines come from the source sent
        let code = RemoteCode::new(MODULE)
            .filename("/no/such/dir/tasks.py")
            .call("broken", Vec::<(String, Value)>::new());
        let ch = gw.remote_exec_code(code).await.expect("exec");
        let text = remote_error(ch.receive::<Value>().await);
        assert!(
            text.starts_with("Traceback (most recent call last):\n"),
            "{text}"
        );
        assert!(
            text.contains("File \"/no/such/dir/tasks.py\", line 7, in broken\n    helper()"),
            "{text}"
        );
        assert!(
            text.contains("line 10, in helper\n    raise RuntimeError('in the helper')"),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("RuntimeError: in the helper"),
            "{text}"
        );
        assert!(
            !text.contains("execnet worker"),
            "worker frames shown: {text}"
        );
        assert!(!text.contains("_execute"), "worker frames shown: {text}");
        gw.exit().await.expect("exit");
    });
}

#[test]
fn a_failed_send_shows_the_users_line_not_the_encoder() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let ch = gw
            .remote_exec("x = []\nfor _ in range(500):\n    x = [x]\nchannel.send(x)\n")
            .await
            .expect("exec");
        let text = remote_error(ch.receive::<Value>().await);
        assert!(
            text.contains("File \"<remote exec>\", line 4, in <module>"),
            "{text}"
        );
        assert!(
            text.contains("DumpError: can't serialize values nested deeper than 200"),
            "{text}"
        );
        assert!(text.lines().count() < 8, "a long traceback: {text}");
        gw.exit().await.expect("exit");
    });
}

#[test]
fn calling_a_name_the_source_does_not_define_is_a_remote_error() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let code = RemoteCode::new("x = 1\n").call("main", Vec::<(String, Value)>::new());
        let ch = gw.remote_exec_code(code).await.expect("exec");
        let text = remote_error(ch.receive::<Value>().await);
        assert!(text.contains("NameError"), "{text}");
        assert!(text.contains("'main'"), "{text}");
        gw.exit().await.expect("exit");
    });
}

#[test]
fn plain_source_converts_into_remote_code() {
    block_on(async {
        let gw = Gateway::open("popen").await.expect("opens");
        let ch = gw
            .remote_exec_code("channel.send(__name__)")
            .await
            .expect("exec");
        assert_eq!(
            ch.receive::<String>().await.expect("item"),
            "__channelexec__"
        );
        gw.exit().await.expect("exit");
    });
}
