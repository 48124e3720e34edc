//! Interpreters and workers that misbehave: each gives a clear error in
//! bounded time (quoting the peer's stderr or first bytes), never a panic or
//! a hang, and leaves no process behind.
//!
//! The "interpreters" are small shell scripts written to a temp dir and
//! named with `popen//python=<script>`; they receive `-c LOADER` like a real
//! Python and ignore it. Each script records its pid (`exec` keeps it) so a
//! test can check that exactly that process is gone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use execnet_gateway::{Error, Gateway, Options, PeerMisbehaved, Step, Value, XSpec};

use execnet_wire::{encode_frame, DecodeError, Hello, Message, DEFAULT_MAX_FRAME, DEFAULT_WINDOW};
use futures_lite::future::block_on;

mod support;
use support::bootstrap_error;
use support::procs::{eventually, is_our_child, rss_kib};

/// A fake interpreter in its own temp dir.
struct Fake {
    dir: PathBuf,
    script: PathBuf,
}

impl Fake {
    /// Write `body` (shell) as an executable script; `files` go next to it.
    fn new(name: &str, body: &str, files: &[(&str, &[u8])]) -> Fake {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "execnet-broken-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).expect("write file");
        }
        let script = dir.join("python");
        let text = format!("#!/bin/sh\necho $$ > '{}/pid'\n{body}\n", dir.display());
        std::fs::write(&script, text).expect("write script");
        let mut perms = std::fs::metadata(&script).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).expect("chmod");
        Fake { dir, script }
    }

    /// A real Python that runs the real loader (whatever its protocol with
    /// the opener), but when the loader starts the worker, writes `stream`
    /// to the protocol stream instead, closes it and waits for the opener to
    /// hang up.
    fn python(name: &str, stream: &[u8]) -> Fake {
        let fake = Fake::new(name, "exec python3 \"$0.py\" \"$@\"", &[("stream", stream)]);
        let script = format!(
            r#"import builtins, os, sys
real_exec = builtins.exec
def fake_exec(code, globs=None, *rest):
    if isinstance(globs, dict) and globs.get("__name__") == "__execnet_worker__":
        data = open({stream:?}, "rb").read()
        while data:
            data = data[os.write(1, data):]
        os.close(1)
        while os.read(0, 65536):
            pass
        os._exit(0)
    return real_exec(code, globs, *rest)
builtins.exec = fake_exec
loader = sys.argv[sys.argv.index("-c") + 1]
real_exec(compile(loader, "<loader>", "exec"), {{"__name__": "__main__"}})
"#,
            stream = fake.dir.join("stream").display().to_string()
        );
        std::fs::write(format!("{}.py", fake.script.display()), script).expect("write fake");
        fake
    }

    /// Open a gateway on this interpreter; the error and how long it took.
    fn open(&self, bootstrap_timeout: Duration) -> (Result<Gateway, Error>, Duration) {
        // The direct path: these fakes stand in for the worker itself.
        let spec = XSpec::parse(&format!(
            "popen//spawn=direct//python={}",
            self.script.display()
        ))
        .expect("spec");
        let options = Options::default()
            .bootstrap_timeout(bootstrap_timeout)
            .forward_stderr(false);
        let start = Instant::now();
        let result = block_on(Gateway::open_with(spec, options));
        (result, start.elapsed())
    }

    /// The script's pid, once it has written it.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The script's process is gone (or at least no longer our child,
    /// zombie or not) within a deadline.
    fn assert_gone(&self) {
        let pid = self.pid().expect("the script ran and wrote its pid");
        let gone = eventually(Duration::from_secs(10), || !is_our_child(pid));
        assert!(
            gone,
            "process {pid} ({}) was left behind",
            self.script.display()
        );
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn frame(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(message, &mut out).expect("encodes");
    out
}

fn hello() -> Vec<u8> {
    let info = Value::Dict(vec![(
        Value::Str("python".into()),
        Value::Str("3.99".into()),
    )]);
    frame(&Message::Hello(Hello::new(
        DEFAULT_WINDOW,
        DEFAULT_MAX_FRAME,
        info,
    )))
}

/// Fixed pseudo-random bytes (xorshift), never a valid hello.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Bounded time: a generous "does not hang" limit, not a speed claim.
const BOUND: Duration = Duration::from_secs(10);

#[test]
fn random_bytes_then_exit_are_quoted() {
    let fake = Fake::new(
        "noise-exit",
        "cat \"$(dirname \"$0\")/noise\"",
        &[("noise", &noise(4096))],
    );
    let (result, took) = fake.open(Duration::from_secs(5));
    let (_, message) = bootstrap_error(result);
    assert!(took < BOUND, "took {took:?}");
    // The first bytes, as Python writes a bytes literal.
    let quoted = execnet_wire::quote_bytes(&noise(8));
    let quoted = quoted.trim_end_matches('\'');
    assert!(
        message.contains("instead of a hello it sent") && message.contains(quoted),
        "{quoted} not in {message}"
    );
    fake.assert_gone();
}

#[test]
fn random_bytes_then_silence_are_quoted() {
    // A small length prefix, then too few bytes: a reader that waits for
    // the rest of a frame waits for ever, unless bounded.
    let mut noise_file = 32u32.to_le_bytes().to_vec();
    noise_file.extend_from_slice(&noise(8));
    let fake = Fake::new(
        "noise-hang",
        "cat \"$(dirname \"$0\")/noise\"\nexec sleep 1000",
        &[("noise", &noise_file)],
    );
    let (result, took) = fake.open(Duration::from_millis(500));
    let (_, message) = bootstrap_error(result);
    assert!(took < BOUND, "took {took:?}");
    assert!(message.contains("instead of a hello it sent"), "{message}");
    assert!(message.contains(r"\x0b\x02"), "{message}");
    fake.assert_gone();
}

#[test]
fn immediate_exit_quotes_stderr_and_status() {
    let fake = Fake::new(
        "exit",
        "echo 'fatal: this interpreter is broken (code 77)' >&2\nexit 3",
        &[],
    );
    let (result, took) = fake.open(Duration::from_secs(5));
    let (step, message) = bootstrap_error(result);
    assert!(took < BOUND, "took {took:?}");
    assert_eq!(step, Step::Interpreter, "{message}");
    assert!(message.contains("status 3"), "{message}");
    assert!(
        message.contains("fatal: this interpreter is broken (code 77)"),
        "{message}"
    );
    fake.assert_gone();
}

#[test]
fn an_echoing_interpreter_is_a_clear_error() {
    // `cat` answers only what it is sent: either it echoes the bootstrap
    // (quoted as not a hello) or it waits for the loader's greeting that
    // never comes (a timeout) -- an error either way, and bounded.
    let fake = Fake::new("cat", "exec cat", &[]);
    let (result, took) = fake.open(Duration::from_secs(1));
    let (_, message) = bootstrap_error(result);
    assert!(took < BOUND, "took {took:?}");
    assert!(
        message.contains("instead of a hello it sent") || message.contains("did not answer"),
        "{message}"
    );
    fake.assert_gone();
}

#[test]
fn a_silent_interpreter_times_out_and_is_killed() {
    let fake = Fake::new("sleep", "exec sleep 1000", &[]);
    let (result, took) = fake.open(Duration::from_millis(300));
    let (step, message) = bootstrap_error(result);
    assert_eq!(step, Step::Handshake, "{message}");
    assert!(message.contains("did not answer"), "{message}");
    assert!(took < BOUND, "took {took:?}");
    fake.assert_gone();
}

#[test]
fn a_silent_interpreter_that_ignores_sigterm_is_killed() {
    let fake = Fake::new("stubborn", "trap '' TERM\nexec sleep 1000", &[]);
    // `exec` keeps the ignored TERM disposition for sleep.
    let (result, took) = fake.open(Duration::from_millis(300));
    bootstrap_error(result);
    assert!(took < BOUND, "took {took:?}");
    fake.assert_gone();
}

/// A worker whose stream is `stream` after the real loader ran. It fails to
/// open, or opens and then ends with an error that says what was wrong;
/// every later call fails rather than blocks. The error, for a closer look.
fn broken_worker(name: &str, stream: &[u8], expect: &str) -> Error {
    let fake = Fake::python(name, stream);
    let rss_before = rss_kib("self");
    let (result, took) = fake.open(Duration::from_secs(10));
    assert!(took < BOUND, "took {took:?}");
    let err = match result {
        Err(e) => e,
        Ok(gw) => block_on(async {
            let ch = gw.remote_exec("channel.send(1)").await;
            let err = match ch {
                Ok(ch) => ch.receive::<Value>().await.expect_err("no worker here"),
                Err(e) => e,
            };
            assert!(err.is_connection_lost(), "{err:?}");
            assert!(gw.is_closed());
            assert!(gw.remote_exec("pass").await.is_err());
            gw.exit().await.expect("exit");
            err
        }),
    };
    let text = err.to_string();
    assert!(text.contains(expect), "expected {expect:?} in: {text}");
    // Nothing close to an announced 4 GiB was allocated.
    let grown = rss_kib("self").saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    fake.assert_gone();
    err
}

fn hello_then(tail: &[u8]) -> Vec<u8> {
    let mut bytes = hello();
    bytes.extend_from_slice(tail);
    bytes
}

#[test]
fn hello_then_garbage_is_a_protocol_error() {
    let mut garbage = 5u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xEE, 1, 2, 3, 4]);
    let err = broken_worker(
        "garbage-tag",
        &hello_then(&garbage),
        "unknown message tag 238",
    );
    // The typed reason, not only its text.
    assert!(
        matches!(
            err,
            Error::PeerMisbehaved {
                error: PeerMisbehaved::Decode(DecodeError::UnknownMessageTag { tag: 238, .. }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn hello_then_truncated_frame_reports_the_truncation() {
    let mut truncated = 100u32.to_le_bytes().to_vec();
    truncated.extend_from_slice(&[5, 1, 0]);
    // A stream that ends early is a loss, not a protocol violation.
    let err = broken_worker(
        "truncated",
        &hello_then(&truncated),
        "stream ended inside a frame: 7 of 104 bytes",
    );
    assert!(matches!(err, Error::ConnectionLost(_)), "{err:?}");
}

#[test]
fn a_frame_announcing_4_gib_is_refused_before_allocating() {
    let mut huge = u32::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(&[5, 1]);
    let err = broken_worker(
        "huge",
        &hello_then(&huge),
        "frame announces 4294967295 bytes",
    );
    assert!(
        matches!(
            err,
            Error::PeerMisbehaved {
                error: PeerMisbehaved::Decode(DecodeError::FrameTooLarge { len: u32::MAX, .. }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_4_gib_frame_instead_of_a_hello_is_refused() {
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"\0EXNT");
    broken_worker("huge-first", &bytes, "frame announces 4294967295 bytes");
}

#[test]
fn garbage_instead_of_a_hello_is_quoted() {
    broken_worker(
        "garbage-first",
        b"Traceback (most recent call last): oops\n",
        "instead of a hello it sent b'Traceback (most recent call last)",
    );
}

#[test]
fn a_hello_with_a_wrong_version_names_both() {
    let hello = Hello {
        version: 99,
        ..Hello::default()
    };
    broken_worker(
        "version",
        &frame(&Message::Hello(hello)),
        "protocol version 99",
    );
}

/// A stream that never moves a byte either way (a peer that neither reads
/// nor writes, with full buffers).
#[derive(Debug)]
struct Stuck;

impl futures_io::AsyncRead for Stuck {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Pending
    }
}

impl futures_io::AsyncWrite for Stuck {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Pending
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

#[derive(Debug)]
struct StuckTransport;

impl execnet_gateway::Transport for StuckTransport {
    fn connect(
        &mut self,
    ) -> execnet_transport::BoxFuture<
        '_,
        Result<execnet_transport::Connection, execnet_transport::TransportError>,
    > {
        Box::pin(async {
            Ok(execnet_transport::Connection {
                reader: Box::pin(Stuck),
                writer: Box::pin(Stuck),
                stderr: None,
                stderr_tail: execnet_transport::StderrTail::new(),
                process: None,
                description: "a stuck stream".into(),
            })
        })
    }
}

/// A peer that does not even take the worker source: the bootstrap timeout
/// covers writing it too.
#[test]
fn a_peer_that_never_reads_times_out() {
    let options = Options::default().bootstrap_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let result = block_on(Gateway::from_transport_with(
        Box::new(StuckTransport),
        XSpec::parse("popen").expect("spec"),
        "stuck".into(),
        options,
    ));
    let (step, message) = bootstrap_error(result);
    assert_eq!(step, Step::Handshake, "{message}");
    assert!(message.contains("a stuck stream"), "{message}");
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
}
