//! The `execnet` binary on real popen gateways: output lines, JSON, exit
//! codes and stderr.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

fn execnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(args)
        .output()
        .expect("the execnet binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

fn lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

/// A file in the temp dir that is removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("execnet-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn exec_prints_id_and_repr_per_item() {
    let out = execnet(&[
        "exec",
        "-c",
        "channel.send([1, 'a', None])\nchannel.send((2,))",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), ["gw0: [1, 'a', None]", "gw0: (2,)"]);
}

#[test]
fn exec_n_opens_that_many_gateways() {
    let out = execnet(&[
        "exec",
        "-n",
        "3",
        "-c",
        "import os; channel.send(os.getpid())",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let ids: BTreeSet<&str> = lines.iter().filter_map(|l| l.split(": ").next()).collect();
    assert_eq!(ids, BTreeSet::from(["gw0", "gw1", "gw2"]));
    let pids: BTreeSet<&str> = lines.iter().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(pids.len(), 3, "three processes: {lines:?}");
}

#[test]
fn exec_gw_specs_with_ids_and_items_in_order() {
    let out = execnet(&[
        "exec",
        "--gw",
        "popen//id=first",
        "--gw",
        "popen",
        "-c",
        "for i in range(3): channel.send(i)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = lines(&out);
    for id in ["first", "gw0"] {
        let of_it: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{id}: ")))
            .collect();
        let expected: Vec<String> = (0..3).map(|i| format!("{id}: {i}")).collect();
        assert_eq!(of_it, expected.iter().collect::<Vec<_>>(), "{lines:?}");
    }
}

#[test]
fn exec_json_lines() {
    let out = execnet(&[
        "exec",
        "--json",
        "-c",
        "channel.send({'b': b'hi', 't': (1.5, None, True), 's': 'x\"y'})\n\
         channel.send({1: 'one'})\n\
         channel.send(-2**100)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert_eq!(
        first,
        serde_json::json!({"gateway": "gw0", "item": {
            "b": [104, 105], "t": [1.5, null, true], "s": "x\"y"}})
    );
    let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
    assert_eq!(
        second,
        serde_json::json!({"gateway": "gw0", "item": [[1, "one"]]})
    );
    // A big int is a JSON number written exactly, digit for digit.
    let third: serde_json::Value = serde_json::from_str(&lines[2]).expect("JSON");
    assert!(third["item"].is_number(), "{}", lines[2]);
    assert_eq!(
        lines[2],
        r#"{"gateway": "gw0", "item": -1267650600228229401496703205376}"#
    );
}

#[test]
fn exec_remote_error_fails_with_prefixed_traceback() {
    let out = execnet(&[
        "exec",
        "-n",
        "2",
        "-c",
        "channel.send(1)\ndef f():\n    raise ValueError('boom')\nf()",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let mut lines = lines(&out);
    lines.sort();
    assert_eq!(lines, ["gw0: 1", "gw1: 1"]);
    let err = stderr(&out);
    for id in ["gw0", "gw1"] {
        assert!(err.contains(&format!("{id}: Traceback")), "{err}");
        assert!(err.contains(&format!("{id}: ValueError: boom")), "{err}");
    }
    assert!(
        err.lines()
            .all(|l| l.starts_with("gw0: ") || l.starts_with("gw1: ")),
        "every line prefixed: {err}"
    );
}

#[test]
fn exec_bad_spec_is_a_usage_error() {
    let out = execnet(&[
        "exec",
        "--gw",
        "popen",
        "--gw",
        "popen//nice=abc",
        "-c",
        "channel.send(1)",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "", "nothing runs");
    let err = stderr(&out);
    assert!(err.starts_with("gw1: "), "{err}");
    assert!(
        err.contains("popen//nice=abc") && err.contains("nice"),
        "{err}"
    );
}

#[test]
fn exec_missing_interpreter_names_gateway_and_step() {
    let out = execnet(&[
        "exec",
        "--gw",
        "popen//python=/nonexistent/python3",
        "--gw",
        "popen",
        "-c",
        "channel.send('still runs')",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // The other gateway did its work.
    assert_eq!(lines(&out), ["gw1: 'still runs'"]);
    let err = stderr(&out);
    assert!(err.starts_with("gw0: "), "{err}");
    assert!(err.contains("spawn failed"), "{err}");
    assert!(err.contains("/nonexistent/python3"), "{err}");
    assert!(!err.contains("gw1"), "{err}");
}

#[test]
fn exec_runs_a_file() {
    let file = TempFile::new(
        "script.py",
        "import sys\nchannel.send(sys.version_info[0])\n",
    );
    let path = file.0.to_str().expect("utf-8 path");
    let out = execnet(&["exec", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), ["gw0: 3"]);

    let out = execnet(&["exec", "/nonexistent/script.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/script.py"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_needs_exactly_one_of_code_and_file() {
    assert_eq!(execnet(&["exec"]).status.code(), Some(2));
    let file = TempFile::new("both.py", "channel.send(1)\n");
    let path = file.0.to_str().expect("utf-8 path");
    assert_eq!(
        execnet(&["exec", "-c", "channel.send(1)", path])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn exec_without_a_terminal_draws_no_progress_line() {
    let out = execnet(&["exec", "-n", "6", "-c", "channel.send(1)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out).len(), 6);
    assert_eq!(stderr(&out), "");
}

#[test]
fn exec_progress_line_on_a_terminal() {
    // `script` runs the command with a pseudo-terminal as its stderr.
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(script) = script else {
        eprintln!("skipped: no `script` command to give execnet a terminal");
        return;
    };
    let command = format!(
        "{} exec -n 5 -c 'channel.send(1)' >/dev/null",
        env!("CARGO_BIN_EXE_execnet")
    );
    let out = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let term = String::from_utf8_lossy(&out.stdout);
    assert!(term.contains("opening gateways: 0/5 ready"), "{term:?}");
    assert!(term.contains("opening gateways: 5/5 ready"), "{term:?}");
    assert!(term.ends_with("\r\x1b[K"), "the line is cleared: {term:?}");
}

#[test]
fn rinfo_text_and_json() {
    let out = execnet(&["rinfo", "popen//id=a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("a: popen//id=a\n"), "{text}");
    for key in ["executable:", "version:    3.", "platform:", "cwd:", "pid:"] {
        assert!(text.contains(key), "{key} in {text}");
    }

    let out = execnet(&["rinfo", "--json", "popen", "popen//chdir=/"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let infos: Vec<serde_json::Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0]["gateway"], "gw0");
    assert_eq!(infos[1]["gateway"], "gw1");
    assert_eq!(infos[1]["spec"], "popen//chdir=/");
    assert_eq!(infos[1]["cwd"], "/");
    assert!(infos[0]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with('3')));
    assert!(infos[0]["pid"].is_u64() && infos[0]["pid"] != infos[1]["pid"]);
}

#[test]
fn rinfo_failure_exits_non_zero() {
    let out = execnet(&["rinfo", "popen//python=/nonexistent/python3"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).starts_with("gw0: "), "{}", stderr(&out));
}

#[test]
fn help_on_every_command_with_examples() {
    let top = execnet(&["--help"]);
    assert!(top.status.success());
    let top = stdout(&top);
    // The commands listed in the top-level help (serve and bench appear
    // there only once they work): each has --help with examples.
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .collect();
    assert!(
        commands.contains(&"exec") && commands.contains(&"rinfo"),
        "{top}"
    );
    for command in commands {
        let out = execnet(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help");
        let help = stdout(&out);
        assert!(help.contains("Examples:"), "{help}");
        assert!(help.contains(&format!("execnet {command}")), "{help}");
    }
}

#[test]
fn exec_with_a_mistyped_key_runs_nothing_and_suggests_the_key() {
    for (spec, known) in [
        ("popn", "popen"),
        ("shh=build-host", "ssh"),
        ("popen//chdri=x", "chdir"),
    ] {
        let out = execnet(&["exec", "--gw", spec, "-c", "channel.send(1)"]);
        assert_eq!(out.status.code(), Some(2), "{spec}");
        assert_eq!(stdout(&out), "", "{spec}: nothing runs");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("did you mean \"{known}\"?")),
            "{spec}: {err}"
        );
    }
}

#[test]
fn exec_a_failed_start_says_each_cause_once() {
    // An "interpreter" that complains on stderr and exits.
    let python = TempFile::new(
        "broken-python",
        "#!/bin/sh\necho 'broken-python: marker-4711 cannot start' >&2\nexit 3\n",
    );
    std::fs::set_permissions(
        &python.0,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let spec = format!("popen//python={}", python.0.display());
    let out = execnet(&["exec", "--gw", &spec, "-c", "channel.send(1)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("marker-4711").count(), 1, "{err}");
    assert!(err.contains("exited with status 3"), "{err}");
    assert!(err.lines().all(|l| l.starts_with("gw0: ")), "{err}");

    // ssh's own message: once, not forwarded and then quoted twice.
    let out = execnet(&[
        "exec",
        "--gw",
        "ssh=nonexistent.invalid",
        "-c",
        "channel.send(1)",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.matches("Could not resolve hostname").count(),
        1,
        "{err}"
    );
}

#[test]
fn exec_forwards_remote_stderr_with_the_gateway_id() {
    let out = execnet(&[
        "exec",
        "--gw",
        "popen//id=loud",
        "-c",
        "import sys\nsys.stderr.write('from-remote\\n')\nsys.stderr.flush()\nchannel.send(1)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "[loud] from-remote\n");
}
