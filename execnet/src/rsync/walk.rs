//! Reading the source tree and streaming it to the targets as it is read
//! (so the far sides compare while we still walk), a directory before
//! anything in it.
//!
//! Filesystem calls run on the `blocking` thread pool, one directory at a
//! time; the filter hook runs on the thread that polls the send.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_channel::Sender;
use blocking::unblock;

use super::{FilterFn, HookError, RsyncError};
use crate::Value;

/// Roughly the bytes of entries per `("tree", ...)` message: small enough
/// that the far side starts early, large enough to be few.
const BATCH_BYTES: usize = 64 << 10;
/// Files per files entry, at most.
const GROUP_FILES: usize = 1000;

/// The regular files found so far, by number. It grows while the walk
/// runs; the targets look files up in it.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    files: Mutex<Vec<FileInfo>>,
}

impl Tree {
    /// File `index`, if the walk has found it.
    pub fn file(&self, index: usize) -> Option<FileInfo> {
        self.lock().get(index).cloned()
    }

    /// How many files the walk has found.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FileInfo>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FileInfo {
    /// The path relative to the source root.
    pub rel: PathBuf,
    pub size: u64,
}

/// What the walk found, besides the files.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub files: usize,
    pub bytes: u64,
    /// Directories, the root included.
    pub dirs: usize,
    pub links: usize,
    /// Sockets, FIFOs and devices (relative paths), not synced.
    pub skipped: Vec<PathBuf>,
    /// What could not be read (and is left alone at the targets).
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// The source root, checked and listed before any target is touched.
#[derive(Debug)]
pub(crate) struct Root {
    mode: u32,
    abs: PathBuf,
    listing: Vec<fs::DirEntry>,
}

/// Check that `source` is a readable directory (or a symlink to one) and
/// list it.
pub(crate) async fn open_root(source: &Path) -> Result<Root, RsyncError> {
    let root = source.to_path_buf();
    let opened = unblock(move || -> io::Result<(fs::Metadata, Vec<fs::DirEntry>)> {
        let meta = fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok((meta, list(&root)?))
    })
    .await;
    let (meta, listing) = opened.map_err(|error| RsyncError::Source {
        path: source.to_path_buf(),
        error,
    })?;
    let abs = std::path::absolute(source).map_err(|error| RsyncError::Source {
        path: source.to_path_buf(),
        error,
    })?;
    Ok(Root {
        mode: meta.mode() & 0o7777,
        abs: normalize(&abs),
        listing,
    })
}

/// What an entry of a directory is.
enum Kind {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        mtime_ns: i64,
        size: u64,
    },
    Link(PathBuf),
    /// A socket, FIFO or device.
    Special,
    /// Gone between the listing and the look.
    Vanished,
}

/// Walk the tree below `root`, asking `filter` about every path, recording
/// files in `tree`, and sending the entries to every sink (a sink whose
/// target has stopped is left out). The sinks close when the walk ends.
///
/// What cannot be read (a directory, an entry's metadata, a link) is
/// recorded and skipped, and its name stays in its directory's list, so
/// that a target keeps what it has there. Only the filter's error stops
/// the walk.
pub(crate) async fn stream(
    root: Root,
    source: &Path,
    mut filter: Option<&mut Box<FilterFn>>,
    tree: &Tree,
    sinks: Vec<Sender<Value>>,
) -> Result<Walked, HookError> {
    let mut out = Out {
        sinks,
        batch: Vec::new(),
        bytes: 0,
    };
    let mut walked = Walked::default();
    let Root {
        mode: root_mode,
        abs,
        listing,
    } = root;
    // Directories to read: (relative path, mode, listing if read already).
    let mut pending = vec![(PathBuf::new(), root_mode, Some(listing))];
    while let Some((rel, mode, listing)) = pending.pop() {
        let dir = source.join(&rel);
        let listing = match listing {
            Some(listing) => listing,
            None => {
                let listed = dir.clone();
                match unblock(move || list(&listed)).await {
                    Ok(listing) => listing,
                    Err(error) => {
                        walked.unreadable.push((dir, error));
                        continue;
                    }
                }
            }
        };
        walked.dirs += 1;
        let mut kept = Vec::with_capacity(listing.len());
        for entry in listing {
            let path = entry.path();
            if let Some(filter) = filter.as_mut() {
                if !filter(&path)? {
                    continue;
                }
            }
            kept.push((entry, path));
        }
        let looked = unblock(move || {
            kept.into_iter()
                .map(|(entry, path)| {
                    let kind = classify(&entry, &path);
                    (entry.file_name(), path, kind)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let mut names = Vec::with_capacity(looked.len());
        let mut files = Vec::new();
        let mut links = Vec::new();
        let mut subdirs = Vec::new();
        for (name, path, kind) in looked {
            match kind {
                Ok(Kind::Vanished) => continue,
                Ok(Kind::Special) => {
                    walked.skipped.push(rel.join(&name));
                    continue;
                }
                Ok(Kind::Dir { mode }) => subdirs.push((rel.join(&name), mode, None)),
                Ok(Kind::File {
                    mode,
                    mtime_ns,
                    size,
                }) => files.push((name.clone(), mode, mtime_ns, size)),
                Ok(Kind::Link(target)) => {
                    let (target, inside) = match below(&target, &abs) {
                        Some(inner) => (inner, true),
                        None => (target, false),
                    };
                    links.push(link_entry(&rel.join(&name), &target, inside));
                }
                // Listed, so that a target keeps what it has under this name.
                Err(error) => walked.unreadable.push((path, error)),
            }
            names.push(name);
        }
        out.push(dir_entry(&rel, mode, &names), names_len(&names))
            .await;
        for group in files.chunks(GROUP_FILES) {
            let first = {
                let mut known = tree.lock();
                let first = known.len();
                known.extend(group.iter().map(|(name, _, _, size)| FileInfo {
                    rel: rel.join(name),
                    size: *size,
                }));
                first
            };
            walked.files += group.len();
            walked.bytes += group.iter().map(|f| f.3).sum::<u64>();
            let (entry, bytes) = files_entry(&rel, first, group);
            out.push(entry, bytes).await;
        }
        walked.links += links.len();
        for (entry, bytes) in links {
            out.push(entry, bytes).await;
        }
        // Reversed, so that they are popped (and sent) in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    out.flush().await;
    Ok(walked)
}

/// Entries on their way to the sinks, in batches.
struct Out {
    sinks: Vec<Sender<Value>>,
    batch: Vec<Value>,
    bytes: usize,
}

impl Out {
    async fn push(&mut self, entry: Value, bytes: usize) {
        self.batch.push(entry);
        self.bytes += bytes;
        if self.bytes >= BATCH_BYTES {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = Value::List(std::mem::take(&mut self.batch));
        self.bytes = 0;
        let mut sinks = std::mem::take(&mut self.sinks);
        // The last one gets the batch itself, the others copies. A target
        // that stopped takes no more.
        let last = sinks.pop();
        for sink in sinks {
            if sink.send(batch.clone()).await.is_ok() {
                self.sinks.push(sink);
            }
        }
        if let Some(sink) = last {
            if sink.send(batch).await.is_ok() {
                self.sinks.push(sink);
            }
        }
    }
}

fn bytes(path: &Path) -> Value {
    Value::Bytes(path.as_os_str().as_bytes().to_vec())
}

/// The names joined by NUL (which no file name contains).
fn joined(names: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(name.as_ref());
    }
    out
}

fn names_len(names: &[OsString]) -> usize {
    names.iter().map(|n| n.len() + 1).sum()
}

/// `(0, rel, mode, names)`: a directory and everything listed in it.
fn dir_entry(rel: &Path, mode: u32, names: &[OsString]) -> Value {
    Value::Tuple(vec![
        Value::from(0),
        bytes(rel),
        Value::from(mode),
        Value::Bytes(joined(names.iter().map(|n| n.as_bytes()))),
    ])
}

/// `(1, dir, first, names, meta)`: the files of directory `dir`, numbered
/// from `first`, with `meta` holding mode (u32), mtime in ns (i64) and size
/// (u64), little-endian, 20 bytes per file. Also roughly its size.
fn files_entry(dir: &Path, first: usize, files: &[(OsString, u32, i64, u64)]) -> (Value, usize) {
    let names = joined(files.iter().map(|f| f.0.as_bytes()));
    let mut meta = Vec::with_capacity(files.len() * 20);
    for (_, mode, mtime_ns, size) in files {
        meta.extend_from_slice(&mode.to_le_bytes());
        meta.extend_from_slice(&mtime_ns.to_le_bytes());
        meta.extend_from_slice(&size.to_le_bytes());
    }
    let bytes_len = names.len() + meta.len();
    (
        Value::Tuple(vec![
            Value::from(1),
            bytes(dir),
            Value::from(first),
            Value::Bytes(names),
            Value::Bytes(meta),
        ]),
        bytes_len,
    )
}

/// `(2, rel, target, inside)`: a symlink.
fn link_entry(rel: &Path, target: &Path, inside: bool) -> (Value, usize) {
    (
        Value::Tuple(vec![
            Value::from(2),
            bytes(rel),
            bytes(target),
            Value::Bool(inside),
        ]),
        rel.as_os_str().len() + target.as_os_str().len() + 8,
    )
}

/// The entries of `dir`, sorted by name (so sends and reports come in a
/// stable order).
fn list(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_cached_key(fs::DirEntry::file_name);
    Ok(entries)
}

/// What `entry` (at `path`) is, not following a symlink. The look goes
/// through the open directory (`fstatat`), not the whole path again.
fn classify(entry: &fs::DirEntry, path: &Path) -> io::Result<Kind> {
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Vanished),
        Err(e) => return Err(e),
    };
    let file_type = meta.file_type();
    let mode = meta.mode() & 0o7777;
    Ok(if file_type.is_dir() {
        Kind::Dir { mode }
    } else if file_type.is_file() {
        Kind::File {
            mode,
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            size: meta.size(),
        }
    } else if file_type.is_symlink() {
        match fs::read_link(path) {
            Ok(target) => Kind::Link(target),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Kind::Vanished,
            Err(e) => return Err(e),
        }
    } else {
        Kind::Special
    })
}

/// `target`'s path below `root` when it is absolute and strictly below it
/// (both normalized the way Python's `os.path.normpath` does).
fn below(target: &Path, root: &Path) -> Option<PathBuf> {
    if !target.is_absolute() {
        return None;
    }
    let inner = normalize(target).strip_prefix(root).ok()?.to_path_buf();
    (!inner.as_os_str().is_empty()).then_some(inner)
}

/// `.` and `..` resolved by the text alone, as `os.path.normpath` does.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_by_text() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), Path::new("/a"));
        assert_eq!(normalize(Path::new("//a//b")), Path::new("/a/b"));
    }

    #[test]
    fn below_only_for_absolute_targets_strictly_inside() {
        let root = Path::new("/src/tree");
        assert_eq!(
            below(Path::new("/src/tree/sub/f"), root),
            Some(PathBuf::from("sub/f"))
        );
        assert_eq!(
            below(Path::new("/src/tree/x/../y"), root),
            Some(PathBuf::from("y"))
        );
        assert_eq!(below(Path::new("/src/tree"), root), None);
        assert_eq!(below(Path::new("/src/tree/.."), root), None);
        assert_eq!(below(Path::new("/src/treehouse/f"), root), None);
        assert_eq!(below(Path::new("/elsewhere"), root), None);
        assert_eq!(below(Path::new("sub/f"), root), None);
    }

    #[test]
    fn files_entries_pack_names_and_metadata() {
        let files = vec![
            (OsString::from("a"), 0o644, -1i64, 3u64),
            (OsString::from("bc"), 0o755, 1 << 40, 1 << 33),
        ];
        let (entry, _) = files_entry(Path::new("d/e"), 7, &files);
        let Value::Tuple(items) = &entry else {
            panic!("{entry:?}")
        };
        assert_eq!(items[1], Value::Bytes(b"d/e".to_vec()));
        assert_eq!(items[2], Value::from(7));
        assert_eq!(items[3], Value::Bytes(b"a\0bc".to_vec()));
        let Value::Bytes(meta) = &items[4] else {
            panic!()
        };
        assert_eq!(meta.len(), 40);
        assert_eq!(&meta[..4], &0o644u32.to_le_bytes());
        assert_eq!(&meta[4..12], &(-1i64).to_le_bytes());
        assert_eq!(&meta[32..40], &(1u64 << 33).to_le_bytes());
        assert_eq!(joined(std::iter::empty::<&[u8]>()), b"");
    }
}
