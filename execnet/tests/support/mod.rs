//! Helpers of the rsync tests: temp dirs, tree snapshots, the test sshd.

#![allow(dead_code)]

#[path = "../../../gateway/tests/support/sshd.rs"]
pub mod sshd;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// A directory under the system temp dir, removed (read-only parts too)
/// when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "execnet-rsync-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A new directory `name` inside.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(&path).expect("create dir");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        make_writable(&self.0);
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

/// What is at a path, as a sync should reproduce it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Node {
    /// A directory's permission bits, with the owner's rwx (which the
    /// receiving end always adds).
    Dir(u32),
    File {
        mode: u32,
        mtime_ns: i128,
        contents: Vec<u8>,
    },
    /// A link's target; one below the tree's root is written `$ROOT/...`.
    Link(PathBuf),
}

/// Everything below `root` (the root itself as ""), never following links.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path).expect("lstat");
    let mode = meta.mode() & 0o7777;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&path).expect("readlink");
        let target = match target.strip_prefix(root) {
            Ok(inner) if !inner.as_os_str().is_empty() => Path::new("$ROOT").join(inner),
            _ => target,
        };
        out.insert(rel.to_path_buf(), Node::Link(target));
    } else if meta.is_dir() {
        out.insert(rel.to_path_buf(), Node::Dir(mode | 0o700));
        for entry in fs::read_dir(&path).expect("read_dir") {
            walk(root, &rel.join(entry.expect("entry").file_name()), out);
        }
    } else {
        out.insert(
            rel.to_path_buf(),
            Node::File {
                mode,
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                contents: fs::read(&path).expect("read"),
            },
        );
    }
}

/// Set a file's modification time.
pub fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let time = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    fs::File::options()
        .write(true)
        .open(path)
        .expect("open for set_times")
        .set_times(fs::FileTimes::new().set_modified(time))
        .expect("set mtime");
}
