//! What the library has to say goes through the `log` facade, once: an
//! error nobody received, what a worker wrote to stderr (when not
//! forwarded), what it said while it started. Nothing here is printed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use execnet_gateway::{Gateway, Options, XSpec};
use futures_lite::future::block_on;

/// Every record logged in this test binary: (level, target, message).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn capture() {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Trace);
}

type Record = (log::Level, String, String);

/// The records so far whose message contains `needle`.
fn logged_now(needle: &str) -> Vec<Record> {
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, _, m)| m.contains(needle))
        .cloned()
        .collect()
}

/// [`logged_now`], waiting up to 10 s for at least one.
fn logged(needle: &str) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = logged_now(needle);
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_error_nobody_received_is_a_warning_when_its_channel_goes() {
    capture();
    let gw = block_on(Gateway::open("popen")).expect("opens");
    let ch = block_on(gw.remote_exec("raise ValueError('nobody-reads-this')")).expect("exec");
    let read = block_on(gw.remote_exec("raise ValueError('somebody-read-this')")).expect("exec");
    assert!(block_on(read.receive::<i64>()).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ch.is_closed() {
        assert!(Instant::now() < deadline, "the code did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        logged_now("nobody-reads-this").is_empty(),
        "not before it goes"
    );
    drop(ch);
    drop(read);
    let found = logged("nobody-reads-this");
    assert_eq!(found.len(), 1, "{found:?}");
    let (level, _, message) = &found[0];
    assert_eq!(*level, log::Level::Warn);
    assert!(message.contains("unhandled RemoteError"), "{message}");
    assert!(
        message.contains("ValueError: nobody-reads-this"),
        "{message}"
    );
    assert!(message.starts_with(&format!("{}: ", gw.id())), "{message}");
    block_on(gw.exit()).expect("exit");
    assert!(logged_now("somebody-read-this").is_empty());
}

#[test]
fn stderr_not_forwarded_is_logged_line_by_line_with_the_gateway_id() {
    capture();
    let spec = XSpec::parse("popen//id=quiet").expect("spec");
    let gw = block_on(Gateway::open_with(
        spec,
        Options::default().forward_stderr(false),
    ))
    .expect("opens");
    let ch = block_on(gw.remote_exec(
        "import sys\nsys.stderr.write('line-one\\nline-two\\n')\nsys.stderr.flush()\nchannel.send(1)",
    ))
    .expect("exec");
    assert_eq!(block_on(ch.receive::<i64>()).expect("item"), 1);
    for line in ["line-one", "line-two"] {
        let found = logged(line);
        assert_eq!(found.len(), 1, "{found:?}");
        let (level, target, message) = &found[0];
        assert_eq!(
            (*level, target.as_str()),
            (log::Level::Info, "execnet_gateway::stderr")
        );
        assert_eq!(message, &format!("quiet: {line}"));
    }
    block_on(gw.exit()).expect("exit");
}

#[test]
fn what_an_interpreter_says_while_starting_is_logged_not_forwarded() {
    capture();
    // An interpreter that says something on stderr before the worker runs.
    let dir = std::env::temp_dir().join(format!("execnet-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let python = dir.join("chatty-python");
    std::fs::write(
        &python,
        "#!/bin/sh\necho 'chatty: starting up' >&2\nexec python3 \"$@\"\n",
    )
    .expect("script");
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let gw = block_on(Gateway::open(&format!(
        "popen//id=chatty//python={}",
        python.display()
    )))
    .expect("opens");
    let found = logged("chatty: starting up");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, log::Level::Warn);
    assert!(found[0].2.starts_with("chatty: "), "{:?}", found[0]);
    block_on(gw.exit()).expect("exit");
    let _ = std::fs::remove_dir_all(&dir);
}
