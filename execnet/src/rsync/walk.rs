//! Reading the source tree: what to sync, in the order the receiving end
//! needs it (a directory before anything in it).
//!
//! Filesystem calls run on the `blocking` thread pool, one directory at a
//! time; the filter hook runs on the thread that polls the send.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use blocking::unblock;

use super::{FilterFn, RsyncError};

/// The source tree, flattened.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// Every entry, directories before their contents.
    pub entries: Vec<Entry>,
    /// The regular files; `Entry::File` holds an index into this.
    pub files: Vec<FileInfo>,
    /// Directories, the root included.
    pub dirs: usize,
    /// Symlinks.
    pub links: usize,
    /// Sockets, FIFOs and devices (relative paths), not synced.
    pub skipped: Vec<PathBuf>,
}

#[derive(Debug)]
pub(crate) enum Entry {
    /// A directory (`rel` empty for the root) and the names it holds.
    Dir {
        rel: PathBuf,
        mode: u32,
        names: Vec<OsString>,
    },
    /// A regular file: its index in `Tree::files`.
    File(usize),
    /// A symlink. `inside`: the target is absolute and below the source
    /// root, and `target` is the path below the root it points to.
    Link {
        rel: PathBuf,
        target: PathBuf,
        inside: bool,
    },
}

#[derive(Debug)]
pub(crate) struct FileInfo {
    /// The path relative to the source root.
    pub rel: PathBuf,
    /// The permission bits.
    pub mode: u32,
    /// The modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    pub size: u64,
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

/// Read the tree at `source` (which must be a directory, or a symlink to
/// one), asking `filter` about every path below it.
pub(crate) async fn walk(
    source: &Path,
    mut filter: Option<&mut Box<FilterFn>>,
) -> Result<Tree, RsyncError> {
    let root = source.to_path_buf();
    let meta = unblock(move || fs::metadata(&root))
        .await
        .map_err(|error| source_error(source, error))?;
    if !meta.is_dir() {
        return Err(source_error(
            source,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let abs_source = normalize(&std::path::absolute(source).map_err(|e| source_error(source, e))?);
    let mut tree = Tree::default();
    // Directories still to read: (relative path, mode); popped last first.
    let mut pending = vec![(PathBuf::new(), meta.mode() & 0o7777)];
    while let Some((rel, mode)) = pending.pop() {
        tree.dirs += 1;
        let dir = source.join(&rel);
        let listed = dir.clone();
        let listing = unblock(move || list(&listed))
            .await
            .map_err(|error| source_error(&dir, error))?;
        let mut kept = Vec::with_capacity(listing.len());
        for entry in listing {
            let path = entry.path();
            if let Some(filter) = filter.as_mut() {
                if !filter(&path).map_err(RsyncError::Hook)? {
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
        let mut contents = Vec::new();
        let mut subdirs = Vec::new();
        for (name, path, kind) in looked {
            let child = rel.join(&name);
            match kind.map_err(|error| source_error(&path, error))? {
                Kind::Vanished => continue,
                Kind::Special => {
                    tree.skipped.push(child);
                    continue;
                }
                Kind::Dir { mode } => subdirs.push((child, mode)),
                Kind::File {
                    mode,
                    mtime_ns,
                    size,
                } => {
                    contents.push(Entry::File(tree.files.len()));
                    tree.files.push(FileInfo {
                        rel: child,
                        mode,
                        mtime_ns,
                        size,
                    });
                }
                Kind::Link(target) => {
                    tree.links += 1;
                    let (target, inside) = match below(&target, &abs_source) {
                        Some(inner) => (inner, true),
                        None => (target, false),
                    };
                    contents.push(Entry::Link {
                        rel: child,
                        target,
                        inside,
                    });
                }
            }
            names.push(name);
        }
        tree.entries.push(Entry::Dir { rel, mode, names });
        tree.entries.append(&mut contents);
        // Reversed, so that they are popped (and sent) in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(tree)
}

fn source_error(path: &Path, error: io::Error) -> RsyncError {
    RsyncError::Source {
        path: path.to_path_buf(),
        error,
    }
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
}
