//! Starting a worker: the interpreter command, the bootstrap bytes, the
//! opener's hello info, and turning a failed start into an error that says
//! which step failed and quotes what came back.

use std::time::Duration;

use execnet_proto::Loss;
use execnet_transport::{BoxedReader, BoxedWriter, Process, StderrTail, Step, Transport};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use execnet_wire::{quote_bytes, Int, Value};
use execnet_xspec::XSpec;

use crate::code_cache::{self, Program, MAX_CODE};
use crate::error::Error;
use crate::runtime::wait_bounded;

/// The loader passed as `python -c LOADER`: reads the worker source from the
/// stream and runs it.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// // Anything that starts `python3 -c LOADER` with its stdin/stdout as the
/// // stream can carry a gateway.
/// assert!(execnet::LOADER.contains("import"));
/// assert!(!execnet::LOADER.contains('\''), "safe inside single quotes");
/// ```
pub const LOADER: &str = include_str!("../worker/loader.py");
/// The Python worker source, shipped over the stream at start-up.
pub const WORKER: &str = include_str!("../worker/worker.py");

/// The interpreter command of a spec: `python=` as a command line, split
/// as a shell (and execnet) splits it (`python=python3.11`,
/// `python=/opt/py/bin/python -X dev`, `python="/opt/my py/python"`), or
/// the version shorthand (`python=3.11` runs `python3.11`); `python3` by
/// default.
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::{python_command, XSpec};
///
/// let argv = |spec: &str| python_command(&XSpec::parse(spec).unwrap());
/// assert_eq!(argv("popen"), ["python3"]);
/// assert_eq!(argv("popen//python=3.12"), ["python3.12"]);
/// assert_eq!(argv("popen//python=/opt/py/bin/python -X dev"), ["/opt/py/bin/python", "-X", "dev"]);
/// assert_eq!(argv(r#"popen//python="/opt/my py/python" -E"#), ["/opt/my py/python", "-E"]);
/// ```
pub fn python_command(spec: &XSpec) -> Vec<String> {
    let python = spec.python().unwrap_or("python3").trim();
    // a parsed spec has a well-formed python= (XSpec::parse checks it)
    let words = execnet_xspec::split_command(python)
        .unwrap_or_else(|_| python.split_whitespace().map(str::to_string).collect());
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
///
/// # Examples
///
/// ```
/// # use execnet_gateway as execnet;
/// use execnet::{worker_argv, XSpec, LOADER};
///
/// let argv = worker_argv(&XSpec::parse("popen//python=3.11")?);
/// assert_eq!(argv, ["python3.11", "-c", LOADER]);
/// # Ok::<_, execnet_xspec::ParseError>(())
/// ```
pub fn worker_argv(spec: &XSpec) -> Vec<String> {
    let mut argv = python_command(spec);
    argv.push("-c".to_string());
    argv.push(LOADER.to_string());
    argv
}

/// What the loader writes first: this tag and its Python's bytecode magic.
const GREETING: &[u8; 4] = b"EXNL";
/// What the loader writes before the compiled worker it was asked for.
const CODE_TAG: &[u8; 4] = b"EXNC";
/// Whether `command` (an interpreter command line, [`python_command`]) may
/// compile the worker for the cache, which then serves every later gateway
/// with the same bytecode magic, local or remote.
///
/// What a `python=` command answers is not to be trusted in general: it may
/// be a wrapper into a container, over ssh, or onto one of many hosts, and
/// one compromised target would plant its code in every later gateway. So
/// only a Python installed on this machine compiles for the cache: a single
/// word (no arguments that could run a script instead) that resolves, as
/// the spawn does (PATH, symlinks), to an executable binary (ELF or Mach-O,
/// not a script that could run anything) named like an interpreter
/// (`python3`, `python3.12`, `pypy3`). Other commands get the worker as
/// source and compile it themselves, every time.
pub(crate) fn compiles_honestly(command: &[String]) -> bool {
    let [program] = command else {
        return false;
    };
    let Some(path) = resolve_program(program) else {
        return false;
    };
    let Ok(real) = std::fs::canonicalize(&path) else {
        return false;
    };
    let named_like_python = real
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("python").or_else(|| n.strip_prefix("pypy")))
        .is_some_and(|rest| {
            let rest = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
            rest.len() <= 8 && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        });
    named_like_python && is_native_binary(&real)
}

/// Where `program` is, found as `execvp` would: as given when it holds a
/// `/`, else in the first directory of `PATH` holding an executable file of
/// that name.
fn resolve_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

/// Whether the file starts like a compiled program (ELF, Mach-O), as
/// opposed to a `#!` script.
fn is_native_binary(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok()
        && matches!(
            head,
            [0x7f, b'E', b'L', b'F']
                | [0xfe, 0xed, 0xfa, 0xce | 0xcf]
                | [0xce | 0xcf, 0xfa, 0xed, 0xfe]
                | [0xca, 0xfe, 0xba, 0xbe]
        )
}

/// Why the loader handshake failed: what came back, for the error message.
pub(crate) struct HandshakeFailure {
    pub(crate) first_bytes: Vec<u8>,
    pub(crate) reason: String,
}

/// Ship a program to the loader (WIRE.md section 1): read the loader's
/// greeting, then send the program as marshal data when an interpreter with
/// the same bytecode magic compiled it before ([`code_cache`]), else as
/// source.
/// `learn`: ask the loader for the compiled program to cache (only for
/// interpreters [`compiles_honestly`] trusts, since the cache feeds every
/// other gateway).
pub(crate) async fn ship_worker(
    reader: &mut BoxedReader,
    writer: &mut BoxedWriter,
    learn: bool,
    program: Program,
) -> Result<(), HandshakeFailure> {
    let mut greeting = [0u8; 8];
    if let Err(e) = reader.read_exact(&mut greeting).await {
        return Err(failure(
            reader,
            Vec::new(),
            &format!("no greeting from the loader ({e})"),
        )
        .await);
    }
    if &greeting[..4] != GREETING {
        return Err(failure(
            reader,
            greeting.to_vec(),
            "the loader's greeting is missing",
        )
        .await);
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&greeting[4..]);
    let cached = code_cache::get(program, magic);
    let (mode, body): (u8, &[u8]) = match &cached {
        Some(code) => (b'm', code.as_slice()),
        None if learn => (b'S', program.source().as_bytes()),
        None => (b's', program.source().as_bytes()),
    };
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut head = len.to_le_bytes().to_vec();
    head.push(mode);
    let sent = async {
        writer.write_all(&head).await?;
        writer.write_all(body).await?;
        writer.flush().await
    }
    .await;
    if let Err(e) = sent {
        return Err(failure(
            reader,
            greeting.to_vec(),
            &format!("sending the worker failed: {e}"),
        )
        .await);
    }
    if mode == b'S' {
        let mut head = [0u8; 8];
        if let Err(e) = reader.read_exact(&mut head).await {
            return Err(failure(
                reader,
                greeting.to_vec(),
                &format!("no compiled worker came back ({e})"),
            )
            .await);
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[4..]);
        let len = u32::from_le_bytes(len) as usize;
        if &head[..4] != CODE_TAG || len > MAX_CODE {
            return Err(failure(
                reader,
                head.to_vec(),
                "the loader answered with something else than the compiled worker",
            )
            .await);
        }
        let mut code = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut code).await {
            return Err(failure(
                reader,
                head.to_vec(),
                &format!("the compiled worker was cut short ({e})"),
            )
            .await);
        }
        code_cache::put(program, magic, code);
    }
    Ok(())
}

/// Collect a little more of what the peer sent (bounded in size and time)
/// to quote it.
async fn failure(reader: &mut BoxedReader, mut first: Vec<u8>, reason: &str) -> HandshakeFailure {
    let mut buf = [0u8; 64];
    while first.len() < 64 {
        let more = wait_bounded(
            reader.read(&mut buf[..64 - first.len()]),
            Duration::from_millis(200),
        )
        .await;
        match more {
            Some(Ok(n)) if n > 0 => first.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    HandshakeFailure {
        first_bytes: first,
        reason: reason.to_string(),
    }
}

/// The `info` of the opener's Hello: the gateway id and the settings the
/// worker applies before running anything.
pub(crate) fn hello_info(spec: &XSpec, id: &str) -> Value {
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

/// What is known about a start that did not reach the worker's hello.
pub(crate) struct StartFailure<'a> {
    /// The local process behind the stream, if any.
    pub(crate) process: Option<&'a dyn Process>,
    /// Its stderr, as far as it was read.
    pub(crate) stderr: &'a StderrTail,
    /// The first bytes the stream sent.
    pub(crate) first_bytes: Vec<u8>,
    /// Why the connection ended, if it did.
    pub(crate) loss: Option<Loss>,
    /// What the stream is (`"python3"`, `"ssh host"`).
    pub(crate) description: &'a str,
    /// The transport, to read the exit status and stderr
    /// ([`Transport::diagnose`]).
    pub(crate) transport: Option<&'a mut dyn Transport>,
}

/// Why the hello did not arrive.
pub(crate) enum Cause {
    Timeout(Duration),
    Lost,
}

/// Build the error for a worker that did not say hello: wait a little for
/// the process to exit and its stderr to end, then say what happened.
pub(crate) async fn diagnose(failure: StartFailure<'_>, gateway: &str, cause: Cause) -> Error {
    let StartFailure {
        process,
        stderr,
        first_bytes: first,
        loss,
        description: what,
        transport,
    } = failure;
    // A process that did not answer in time is not about to exit: waiting
    // for its exit (or the end of its stderr) would only delay the error.
    let timed_out = matches!(cause, Cause::Timeout(_));
    let status = match process {
        Some(p) if timed_out => p.try_wait().ok().flatten(),
        Some(p) => wait_bounded(p.wait(), Duration::from_secs(2))
            .await
            .and_then(Result::ok),
        None => None,
    };
    // Give the stderr pump a moment to collect the last words.
    for _ in 0..50 {
        if timed_out || stderr.is_finished() {
            break;
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    let stderr = stderr.text();
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
                loss.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        },
    };
    if !first.is_empty() && !is_frame_start(&first) {
        message.push_str(&format!(
            "; instead of a hello it sent {} (is `{what}` a Python interpreter?)",
            quote_bytes(&first)
        ));
    }
    if let Some(diagnosis) = transport.and_then(|t| t.diagnose(status, &stderr)) {
        (step, message) = (diagnosis.step, diagnosis.message);
    }
    // Each cause said once: the lines a diagnosis quoted already are not
    // repeated.
    let rest = unquoted_lines(&stderr, &message);
    if !rest.is_empty() {
        message.push_str(&format!("; its stderr says:\n{rest}"));
    }
    Error::Bootstrap {
        gateway: gateway.to_string(),
        step,
        message,
    }
}

/// The lines of `stderr` that `message` does not quote already.
fn unquoted_lines(stderr: &str, message: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let line = line.trim();
            !line.is_empty() && !message.contains(line)
        })
        .collect();
    lines.join("\n")
}

/// Whether `bytes` look like the start of a Hello frame.
fn is_frame_start(bytes: &[u8]) -> bool {
    bytes.starts_with(GREETING) || bytes.len() < 9 || bytes[4..9] == [0, b'E', b'X', b'N', b'T']
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
        // words as execnet (Python's shlex.split) reads them
        assert_eq!(
            python_command(&spec(r#"popen//python="/u/test me/python" -e"#)),
            ["/u/test me/python", "-e"]
        );
        assert_eq!(
            python_command(&spec(r"popen//python=/hans\ alt/bin/python")),
            ["/hans alt/bin/python"]
        );
        assert_eq!(
            python_command(&spec("popen//python=sudo -u test python")),
            ["sudo", "-u", "test", "python"]
        );
        assert_eq!(python_command(&spec("popen//python=")), ["python3"]);
    }

    #[test]
    fn stderr_lines_a_diagnosis_quoted_are_not_repeated() {
        let stderr = "ssh: Could not resolve hostname nohost: Name or service not known\n";
        let message = "ssh nohost: unknown host nohost (ssh: Could not resolve hostname nohost: \
                       Name or service not known)";
        assert_eq!(unquoted_lines(stderr, message), "");
        let stderr = "Warning: something else\nssh: Could not resolve hostname nohost: Name or service not known";
        assert_eq!(unquoted_lines(stderr, message), "Warning: something else");
    }

    #[test]
    fn only_a_local_python_binary_compiles_for_the_cache() {
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let dir = std::env::temp_dir().join(format!("execnet-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let script = dir.join("python3");
        std::fs::write(&script, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let script = script.display().to_string();
        // A script named python3 (a wrapper could go anywhere), arguments
        // (`python3 script.py` runs the script), other programs: never.
        assert!(!compiles_honestly(&words(&script)));
        assert!(!compiles_honestly(&words("/bin/sh")));
        assert!(!compiles_honestly(&words("env python3")));
        assert!(!compiles_honestly(&words("/nonexistent/python3")));
        assert!(!compiles_honestly(&[]));
        // A real interpreter binary, when this machine has one there.
        for python in ["/usr/bin/python3", "/usr/local/bin/python3"] {
            let path = std::path::Path::new(python);
            if std::fs::canonicalize(path).is_ok_and(|p| is_native_binary(&p)) {
                assert!(compiles_honestly(&words(python)), "{python}");
                assert!(!compiles_honestly(&words(&format!("{python} -X dev"))));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
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
        let Value::Dict(pairs) = &info else {
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
