//! Stand-in interpreters for `python=`: a Python script that speaks the
//! loader's side of the bootstrap (WIRE.md section 1) on a real
//! interpreter, then does what a test needs with the program it was sent.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Write `dir/name`, an executable script run by `python` that writes the
/// loader's greeting and reads the program: after it, `head` (the 5-byte
/// head: length, mode) and `body` are set, and `os`, `sys`, `marshal`
/// imported. `tail` is the rest of the script (what it does with them).
pub fn script(dir: &Path, name: &str, python: &Path, tail: &str) -> PathBuf {
    let path = dir.join(name);
    let source = format!(
        r#"#!{python}
import os, sys, marshal
try:
    from _frozen_importlib_external import MAGIC_NUMBER as magic
except ImportError:
    from importlib.util import MAGIC_NUMBER as magic
os.write(1, b"EXNL" + magic)
def read(n):
    parts = []
    while n:
        b = os.read(0, n)
        if not b:
            sys.exit(1)
        parts.append(b)
        n -= len(b)
    return b"".join(parts)
head = read(5)
body = read(int.from_bytes(head[:4], "little"))
{tail}"#,
        python = python.display(),
    );
    std::fs::write(&path, source).expect("write the stand-in interpreter");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
