//! `execnet rsync` on real popen gateways: what arrives, the output lines,
//! SPEC:DEST splitting, exit codes and errors.

mod support;

use std::fs;
use std::process::{Command, Output};

use support::{tree, TempDir};

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

fn source(tmp: &TempDir) -> String {
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("pkg/sub")).unwrap();
    fs::write(src.join("pkg/a.py"), "a = 1\n").unwrap();
    fs::write(src.join("pkg/sub/b.txt"), "b".repeat(5000)).unwrap();
    src.display().to_string()
}

#[test]
fn syncs_to_each_target_and_says_what_it_sent() {
    let tmp = TempDir::new("cli-basic");
    let src = source(&tmp);
    let d1 = tmp.path().join("d1").display().to_string();
    let d2 = tmp.path().join("d2").display().to_string();
    // The second spec has ':' in it; the split is at the last one.
    let out = execnet(&[
        "rsync",
        &src,
        &format!("popen:{d1}"),
        &format!("popen//env:GREETING=a:b:{d2}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            format!("gw0 -> {d1}: 2 of 2 files sent (4.9 KiB)"),
            format!("gw1 -> {d2}: 2 of 2 files sent (4.9 KiB)"),
        ]
    );
    // Not a terminal: no progress line.
    assert_eq!(stderr(&out), "");
    assert_eq!(tree(tmp.path().join("d1").as_path()), tree(src.as_ref()));
    assert_eq!(tree(tmp.path().join("d2").as_path()), tree(src.as_ref()));

    // Again: nothing to send.
    let out = execnet(&["rsync", &src, &format!("popen:{d1}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("gw0 -> {d1}: 0 of 2 files sent (0 B)\n")
    );
}

#[test]
fn verbose_lists_files_and_delete_removes_extras() {
    let tmp = TempDir::new("cli-verbose");
    let src = source(&tmp);
    let dest = tmp.mkdir("dest");
    fs::write(dest.join("extra"), "x").unwrap();
    let target = format!("popen:{}", dest.display());
    let out = execnet(&["rsync", "-v", &src, &target]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[..2], ["gw0 <= pkg/a.py", "gw0 <= pkg/sub/b.txt"]);
    assert!(dest.join("extra").exists());

    let out = execnet(&["rsync", "--delete", "-q", &src, &target]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(!dest.join("extra").exists());
    assert_eq!(tree(&dest), tree(src.as_ref()));
}

#[test]
fn a_relative_dest_is_below_the_workers_directory() {
    let tmp = TempDir::new("cli-chdir");
    let src = source(&tmp);
    let work = tmp.path().join("odd:name");
    // A directory with ':' in its name: chdir= names it, `.` is the DEST.
    let out = execnet(&["rsync", &src, &format!("popen//chdir={}:.", work.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&work), tree(src.as_ref()));

    // A leading `~` is the remote user's home.
    let home = tmp.mkdir("home");
    let spec = format!("popen//env:HOME={}:~/copy", home.display());
    let out = execnet(&["rsync", &src, &spec]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&home.join("copy")), tree(src.as_ref()));
}

#[test]
fn bad_command_lines_exit_2_with_the_cause() {
    let tmp = TempDir::new("cli-usage");
    let src = source(&tmp);
    let missing = tmp.path().join("missing").display().to_string();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["rsync", &missing, "popen:/tmp/x"], "cannot read"),
        (vec!["rsync", &src, "popen"], "is not SPEC:DEST"),
        (
            vec!["rsync", &src, "popen:"],
            "no directory after the last ':'",
        ),
        (vec!["rsync", &src, "popn:/tmp/x"], "did you mean"),
        (vec!["rsync", &src], "SPEC:DEST"),
    ];
    for (args, expected) in cases {
        let out = execnet(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let out = execnet(&["rsync", &file.display().to_string(), "popen:/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn failures_exit_1_naming_the_gateway_and_the_others_still_sync() {
    let tmp = TempDir::new("cli-fail");
    let src = source(&tmp);
    let blocker = tmp.path().join("a-file");
    fs::write(&blocker, "").unwrap();
    let good = tmp.path().join("good");
    let out = execnet(&[
        "rsync",
        &src,
        "popen//python=/nonexistent/python3:/tmp/never",
        &format!("popen:{}/sub", blocker.display()),
        &format!("popen:{}", good.display()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("gw0: cannot open gateway")),
        "{err}"
    );
    let failed = format!("gw1: rsync to {}/sub failed:", blocker.display());
    assert!(err.lines().any(|l| l == failed), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("gw1: NotADirectoryError")),
        "{err}"
    );
    assert_eq!(
        stdout(&out),
        format!("gw2 -> {}: 2 of 2 files sent (4.9 KiB)\n", good.display())
    );
    assert_eq!(tree(&good), tree(src.as_ref()));
}

#[test]
fn help_explains_the_split_and_shows_examples() {
    let out = execnet(&["rsync", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(help.contains("split at the LAST ':'"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("--delete"), "{help}");
}
