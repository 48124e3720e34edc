//! Compiled programs (Python marshal data) by program and bytecode magic, so
//! a start skips compiling the worker (or the spawner) in the interpreter:
//! ~25 ms of a 2,000-line source on a slow machine, against ~0.4 ms to load
//! the marshal data.
//!
//! Kept in memory, and on disk so that a fresh process gets them too (the
//! way CPython keeps `__pycache__`): `$EXECNET_CODE_CACHE`, else
//! `$XDG_CACHE_HOME/execnet-rs`, else `~/.cache/execnet-rs`;
//! `EXECNET_CODE_CACHE=0` keeps them in memory only. The cache only ever
//! holds what an interpreter that [`compiles_honestly`] compiled, and the
//! disk copy is trusted no more than the user's own files: the directory and
//! each file must belong to us and be writable by nobody else (else the
//! disk is not used), each file names the source it was compiled from (a
//! hash of it, so another version of this crate never loads it) and carries
//! a checksum of its content (a torn or damaged file is ignored and
//! replaced, never shipped).
//!
//! [`compiles_honestly`]: crate::bootstrap::compiles_honestly

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::bootstrap::WORKER;

/// The largest compiled program accepted (from a loader or the disk).
pub(crate) const MAX_CODE: usize = 16 << 20;
/// What a cache file starts with, before the checksum and the code.
const FILE_TAG: &[u8; 4] = b"EXRC";

/// The spawner's loop, shipped after the worker.
const SPAWNER: &str = include_str!("../worker/spawner.py");

/// A program the loader runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Program {
    /// The worker.
    Worker,
    /// The spawner: the worker's source, then the spawner's loop (the same
    /// program locally and remotely: it reads its mode from the stream).
    Spawner,
}

impl Program {
    /// The source the loader compiles.
    pub(crate) fn source(self) -> &'static str {
        static SPAWNER_PROGRAM: OnceLock<String> = OnceLock::new();
        match self {
            Program::Worker => WORKER,
            Program::Spawner => SPAWNER_PROGRAM
                .get_or_init(|| format!("_EXECNET_SPAWNER = True\n{WORKER}\n{SPAWNER}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Program::Worker => "worker",
            Program::Spawner => "spawner",
        }
    }

    /// A digest of the source (computed once: a miss in memory looks at
    /// the disk at every start).
    fn source_digest(self) -> u64 {
        static DIGESTS: [OnceLock<u64>; 2] = [OnceLock::new(), OnceLock::new()];
        *DIGESTS[self as usize].get_or_init(|| digest(self.source().as_bytes()))
    }

    /// The cache file's name: the program, this crate's version, a hash of
    /// the source, the bytecode magic.
    fn file_name(self, magic: [u8; 4]) -> String {
        let source = self.source_digest();
        let magic: String = magic.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{source:016x}-{magic}.marshal",
            self.name(),
            env!("CARGO_PKG_VERSION")
        )
    }
}

type Memory = HashMap<(Program, [u8; 4]), Arc<Vec<u8>>>;

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

/// The compiled `program` for interpreters with bytecode `magic`, if an
/// honest interpreter compiled it before (in this process or, through the
/// disk, in an earlier one).
pub(crate) fn get(program: Program, magic: [u8; 4]) -> Option<Arc<Vec<u8>>> {
    {
        let memory = MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(code) = memory.as_ref().and_then(|m| m.get(&(program, magic))) {
            return Some(code.clone());
        }
    }
    let dir = disk_dir()?;
    let code = Arc::new(read_file(&dir.join(program.file_name(magic)))?);
    remember(program, magic, code.clone());
    Some(code)
}

/// Keep `code`, which an interpreter that compiles honestly compiled.
pub(crate) fn put(program: Program, magic: [u8; 4], code: Vec<u8>) {
    let code = Arc::new(code);
    remember(program, magic, code.clone());
    if let Some(dir) = disk_dir() {
        if let Err(e) = write_file(&dir, &program.file_name(magic), &code) {
            log::debug!(
                "execnet: could not keep the compiled {} in {}: {e}",
                program.name(),
                dir.display()
            );
        }
    }
}

fn remember(program: Program, magic: [u8; 4], code: Arc<Vec<u8>>) {
    let mut memory = MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    memory
        .get_or_insert_with(HashMap::new)
        .insert((program, magic), code);
}

/// A stable 64-bit digest (FNV-1a: the same in every build, unlike std's
/// hasher, whose algorithm may change between Rust releases).
fn digest(bytes: &[u8]) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    bytes.hash(&mut h);
    h.finish()
}

/// The cache directory, created when missing; `None` when the disk is not
/// to be used (`EXECNET_CODE_CACHE=0`, no home) or is not safe to use.
/// Decided once per process.
fn disk_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("EXECNET_CODE_CACHE") {
            Some(v) if v == "0" || v.is_empty() => return None,
            Some(v) => PathBuf::from(v),
            None => match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
                Some(base) => PathBuf::from(base).join("execnet-rs"),
                None => PathBuf::from(std::env::var_os("HOME")?)
                    .join(".cache")
                    .join("execnet-rs"),
            },
        };
        if !dir.is_absolute() {
            return None;
        }
        let _ = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir);
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() && owned_and_private(&meta) => Some(dir),
            Ok(_) => {
                log::debug!(
                    "execnet: not caching compiled code in {}: it must be a directory of \
                     ours that nobody else can write to",
                    dir.display()
                );
                None
            }
            Err(_) => None,
        }
    })
    .clone()
}

/// Ours, and writable by nobody else.
fn owned_and_private(meta: &fs::Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

/// The code in a cache file, if the file is ours, private and whole.
fn read_file(path: &Path) -> Option<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let len = usize::try_from(meta.len()).ok()?;
    if !meta.is_file() || !owned_and_private(&meta) || !(12..=MAX_CODE + 12).contains(&len) {
        return None;
    }
    let mut data = Vec::with_capacity(len);
    file.read_to_end(&mut data).ok()?;
    let (head, code) = data.split_at_checked(12)?;
    let sum = u64::from_le_bytes(head[4..12].try_into().ok()?);
    if &head[..4] != FILE_TAG || digest(code) != sum {
        let _ = fs::remove_file(path);
        return None;
    }
    Some(code.to_vec())
}

/// Write a cache file whole or not at all (a private temporary file, then
/// renamed over the name).
fn write_file(dir: &Path, name: &str, code: &[u8]) -> std::io::Result<()> {
    // unique among processes (pid) and among this process's writers
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}", std::process::id()));
    let written = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut head = FILE_TAG.to_vec();
        head.extend_from_slice(&digest(code).to_le_bytes());
        file.write_all(&head)?;
        file.write_all(code)?;
        fs::rename(&tmp, dir.join(name))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("execnet-code-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("scratch dir");
        dir
    }

    #[test]
    fn a_written_file_reads_back() {
        let dir = scratch("roundtrip");
        write_file(&dir, "x.marshal", b"compiled").expect("written");
        assert_eq!(
            read_file(&dir.join("x.marshal")).as_deref(),
            Some(&b"compiled"[..])
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_ignored_and_removed() {
        let dir = scratch("damaged");
        write_file(&dir, "x.marshal", b"compiled code").expect("written");
        let path = dir.join("x.marshal");
        let mut data = fs::read(&path).expect("read");
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&path, &data).expect("damaged");
        assert_eq!(read_file(&path), None);
        assert!(!path.exists(), "the damaged file is removed");
        // cut short
        write_file(&dir, "y.marshal", b"compiled code").expect("written");
        let path = dir.join("y.marshal");
        let data = fs::read(&path).expect("read");
        fs::write(&path, &data[..data.len() - 3]).expect("cut");
        assert_eq!(read_file(&path), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_others_can_write_is_not_used() {
        let dir = scratch("loose");
        write_file(&dir, "x.marshal", b"compiled").expect("written");
        let path = dir.join("x.marshal");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o622)).expect("chmod");
        assert_eq!(read_file(&path), None);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read_file(&path).is_some());
        // a symlink to a good file is not followed
        std::os::unix::fs::symlink(&path, dir.join("link.marshal")).expect("symlink");
        assert_eq!(read_file(&dir.join("link.marshal")), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_names_differ_by_program_and_magic() {
        let m = *b"\xa7\r\r\n";
        assert_ne!(Program::Worker.file_name(m), Program::Spawner.file_name(m));
        assert_ne!(
            Program::Worker.file_name(m),
            Program::Worker.file_name(*b"\xa8\r\r\n")
        );
        assert!(Program::Worker.file_name(m).ends_with("-a70d0d0a.marshal"));
    }
}
