//! Starting a worker: the interpreter command, the bootstrap bytes, the
//! opener's hello info, and turning a failed start into an error that says
//! which step failed and quotes what came back.

use std::time::Duration;

use execnet_wire::{quote_bytes, Int, Value};
use execnet_xspec::XSpec;

use crate::error::{Error, Step};
use crate::shared::Shared;

/// The loader passed as `python -c LOADER`: reads the worker source from the
/// stream and runs it.
pub const LOADER: &str = include_str!("../worker/loader.py");
/// The Python worker source, shipped over the stream at start-up.
pub const WORKER: &str = include_str!("../worker/worker.py");

/// The interpreter command of a spec: `python=` as a command line
/// (`python=python3.11`, `python=/opt/py/bin/python -X dev`), or the
/// version shorthand (`python=3.11` runs `python3.11`); `python3` by default.
pub fn python_command(spec: &XSpec) -> Vec<String> {
    let python = spec.python().unwrap_or("python3").trim();
    let words: Vec<String> = python.split_whitespace().map(str::to_string).collect();
    match words.as_slice() {
        [] => vec!["python3".to_string()],
        [version] if is_version(version) => vec![format!("python{version}")],
        _ => words,
    }
}

fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The full argument vector that starts a worker: the interpreter, `-c`, the loader.
pub fn worker_argv(spec: &XSpec) -> Vec<String> {
    let mut argv = python_command(spec);
    argv.push("-c".to_string());
    argv.push(LOADER.to_string());
    argv
}

/// The bytes written to the stream before any frame: the source length
/// (`u32` LE) and the worker source.
pub fn bootstrap_bytes() -> Vec<u8> {
    let len = u32::try_from(WORKER.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(4 + WORKER.len());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(WORKER.as_bytes());
    bytes
}

/// The `info` of the opener's Hello: the gateway id and the settings the
/// worker applies before running anything.
pub fn hello_info(spec: &XSpec, id: &str) -> Value {
    let s = |x: &str| Value::Str(x.to_string());
    let mut info = vec![
        (s("id"), s(id)),
        (s("execmodel"), s(spec.execmodel().unwrap_or("thread"))),
    ];
    if let Some(dir) = spec.chdir() {
        info.push((s("chdir"), s(dir)));
    }
    if let Some(nice) = spec.nice() {
        info.push((s("nice"), Value::Int(Int::from(nice))));
    }
    let env: Vec<(Value, Value)> = spec.env().map(|(k, v)| (s(k), s(v))).collect();
    if !env.is_empty() {
        info.push((s("env"), Value::Dict(env)));
    }
    if spec.dont_write_bytecode() {
        info.push((s("dont_write_bytecode"), Value::Bool(true)));
    }
    Value::Dict(info)
}

/// Build the error for a worker that did not say hello: wait a little for
/// the process to exit and its stderr to end, then say what happened.
pub(crate) async fn diagnose(shared: &Shared, gateway: &str, cause: Cause) -> Error {
    let status = match &shared.process {
        Some(p) => wait_bounded(p.wait(), Duration::from_secs(2))
            .await
            .and_then(Result::ok),
        None => None,
    };
    // Give the stderr pump a moment to collect the last words.
    for _ in 0..50 {
        if shared.stderr_tail.is_finished() {
            break;
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    let stderr = shared.stderr_tail.text();
    let (first, lost) = {
        let st = shared.lock();
        (
            st.first_bytes.clone(),
            st.session.lost_reason().map(str::to_string),
        )
    };
    let what = &shared.description;
    let mut step = Step::Handshake;
    let mut message = match cause {
        Cause::Timeout(t) => format!("{what} did not answer with the worker's hello within {t:?}"),
        Cause::Lost => match status {
            Some(status) if !status.success() || first.is_empty() => {
                step = Step::Interpreter;
                match status.code() {
                    Some(code) => format!("{what} exited with status {code}"),
                    None => format!("{what} was killed ({status})"),
                }
            }
            _ => format!(
                "{what} ended the connection before the worker's hello{}",
                lost.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        },
    };
    if !first.is_empty() && !is_frame_start(&first) {
        message.push_str(&format!(
            "; instead of a hello it sent {} (is `{what}` a Python interpreter?)",
            quote_bytes(&first)
        ));
    }
    if !stderr.is_empty() {
        message.push_str(&format!("; its stderr says:\n{stderr}"));
    }
    Error::Bootstrap {
        gateway: gateway.to_string(),
        step,
        message,
    }
}

/// Whether `bytes` look like the start of a Hello frame.
fn is_frame_start(bytes: &[u8]) -> bool {
    bytes.len() < 9 || bytes[4..9] == [0, b'E', b'X', b'N', b'T']
}

/// Why the hello did not arrive.
pub(crate) enum Cause {
    Timeout(Duration),
    Lost,
}

/// `future`'s output, or `None` after `limit`.
pub(crate) async fn wait_bounded<F: std::future::Future>(
    future: F,
    limit: Duration,
) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> XSpec {
        XSpec::parse(s).expect("valid spec")
    }

    #[test]
    fn python_shorthand_and_commands() {
        assert_eq!(python_command(&spec("popen")), ["python3"]);
        assert_eq!(python_command(&spec("popen//python=3.11")), ["python3.11"]);
        assert_eq!(python_command(&spec("popen//python=3")), ["python3"]);
        assert_eq!(
            python_command(&spec("popen//python=/usr/bin/python3 -X dev")),
            ["/usr/bin/python3", "-X", "dev"]
        );
    }

    #[test]
    fn loader_is_shell_quotable() {
        assert!(!LOADER.contains('\''));
        assert!(!WORKER.is_empty());
    }

    #[test]
    fn hello_info_carries_settings() {
        let info = hello_info(
            &spec("popen//chdir=w//nice=5//env:A=b//dont_write_bytecode//id=x"),
            "x",
        );
        let Value::Dict(pairs) = info else {
            panic!("a dict")
        };
        let keys: Vec<String> = pairs
            .iter()
            .filter_map(|(k, _)| match k {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "execmodel",
                "chdir",
                "nice",
                "env",
                "dont_write_bytecode"
            ]
        );
    }
}
