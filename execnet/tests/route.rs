//! `execnet exec` with specs that name each other (via=, installvia=).

use std::process::Command;

#[test]
fn exec_through_via_and_installvia() {
    let out = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args([
            "exec",
            "--gw",
            "popen//id=a",
            "--gw",
            "popen//via=a//id=b",
            "--gw",
            "socket=127.0.0.1:0//installvia=a//id=c",
            "-c",
            "channel.send(42)",
        ])
        .output()
        .expect("execnet runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a: 42", "b: 42", "c: 42"], "stderr: {stderr}");
}
