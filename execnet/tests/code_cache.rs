//! The compiled-program cache on disk: a fresh process gets the worker (and
//! the spawner) compiled by an earlier one, and a cache directory or file
//! that is not private, or is damaged, is never used. Each step is a fresh
//! `execnet exec` process; a `python=` wrapper records which form of the
//! worker its loader received (`m`: compiled, from the cache; `s`: source).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../gateway/tests/support/fake_loader.rs"]
mod fake_loader;

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A real interpreter binary (not a pyenv shim script): the only kind that
/// compiles for the cache.
fn native_python() -> Option<PathBuf> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .chain(which("python3"))
        .find(|p| {
            std::fs::read(p)
                .map(|b| b.starts_with(b"\x7fELF"))
                .unwrap_or(false)
        })
}

/// A `python=` wrapper: appends the mode byte of the program its loader
/// received to `log`, then runs the loader on the real interpreter.
fn recording_wrapper(dir: &Path, python: &Path, log: &Path) -> PathBuf {
    let tail = format!(
        r#"with open({log:?}, "a") as f:
    f.write(head[4:].decode())
code = marshal.loads(body) if head[4:] == b"m" else compile(body, "<execnet worker>", "exec")
exec(code, {{"__name__": "__execnet_worker__"}})
"#,
        log = log.display().to_string(),
    );
    fake_loader::script(dir, "recording-python", python, &tail)
}

/// One fresh `execnet exec` process on `spec` with the cache in `cache`.
fn exec(cache: &Path, spec: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["exec", "--gw", spec, "-c", "channel.send(6 * 7)"])
        .env("EXECNET_CODE_CACHE", cache)
        .output()
        .expect("run execnet exec");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("42"),
        "execnet exec --gw {spec}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cache_files(cache: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".marshal"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn take_log(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    text
}

#[test]
fn a_fresh_process_uses_the_cache_only_when_it_is_private_and_whole() {
    let Some(python) = native_python() else {
        eprintln!("skipped: no python3 binary (only scripts) to compile for the cache");
        return;
    };
    let dir = std::env::temp_dir().join(format!("execnet-disk-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cache = dir.join("cache");
    let log = dir.join("modes");
    let wrapper = recording_wrapper(&dir, &python, &log);
    let honest = format!("popen//python={}//spawn=direct", python.display());
    let recorded = format!("popen//python={}//spawn=direct", wrapper.display());

    // Nothing cached yet: the wrapper gets source.
    exec(&cache, &recorded);
    assert_eq!(take_log(&log), "s");
    assert!(
        cache_files(&cache, "worker-").is_empty(),
        "a wrapper compiles nothing for the cache"
    );

    // A trusted interpreter compiles the worker; the file is private.
    exec(&cache, &honest);
    let files = cache_files(&cache, "worker-");
    assert_eq!(files.len(), 1, "one compiled worker in {}", cache.display());
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&files[0]), 0o600);

    // A fresh process serves it from the disk.
    exec(&cache, &recorded);
    assert_eq!(
        take_log(&log),
        "m",
        "a fresh process uses the compiled worker"
    );

    // A cache directory others may write to is not used.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    exec(&cache, &recorded);
    assert_eq!(
        take_log(&log),
        "s",
        "a directory others can write to is ignored"
    );
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    // Nor a file others may write to.
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o666)).expect("chmod");
    exec(&cache, &recorded);
    assert_eq!(take_log(&log), "s", "a file others can write to is ignored");
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // A damaged file is never shipped (the interpreter would fail on it):
    // it is dropped, and the next trusted start writes a good one.
    let mut data = std::fs::read(&files[0]).expect("read");
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&files[0], &data).expect("damage");
    exec(&cache, &recorded);
    assert_eq!(take_log(&log), "s", "a damaged file is ignored");
    exec(&cache, &honest);
    exec(&cache, &recorded);
    assert_eq!(take_log(&log), "m", "replaced by a good one");

    // EXECNET_CODE_CACHE=0: nothing from the disk.
    let out = Command::new(env!("CARGO_BIN_EXE_execnet"))
        .args(["exec", "--gw", &recorded, "-c", "channel.send(1)"])
        .env("EXECNET_CODE_CACHE", "0")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        take_log(&log),
        "s",
        "EXECNET_CODE_CACHE=0 turns the disk off"
    );

    // The spawner's program is cached too (a forked gateway).
    exec(&cache, &format!("popen//python={}", python.display()));
    assert_eq!(cache_files(&cache, "spawner-").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
