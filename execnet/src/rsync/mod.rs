//! Send a directory tree to one or many gateways, as execnet's `RSync` does.
//!
//! # Brief overview
//!
//! - [`RSync::new`] takes the source directory; [`RSync::add_target`] a
//!   gateway and a destination directory on its side (relative paths are
//!   relative to the worker's working directory, e.g. its `chdir=`; a
//!   leading `~` is the remote user's home).
//! - [`RSync::send`] walks the source once, streaming it to every target as
//!   it goes, and brings them all up to date at the same time: files, directories (with their permission
//!   bits), symlinks, and with [`TargetOptions::delete`] the removal of what
//!   the source does not have. A file whose size and modification time match
//!   is left alone; one whose size matches but whose time differs is compared
//!   by checksum (SHA-256) on both sides and only sent when it differs.
//!   Contents travel in chunks of 1 MiB under the channel's flow control, so
//!   memory stays bounded on both sides whatever the file sizes.
//! - Hooks, called inside `send` on the thread that polls it: a
//!   [`filter`](RSync::filter) per path, a report per file sent
//!   ([`on_send_file`](RSync::on_send_file)), execnet's progress
//!   [`callback`](RSync::callback), and a per-target
//!   [`on_finished`](TargetOptions::on_finished). A hook that returns an
//!   error stops the send and that error comes back from it.
//! - A `send` uses up its targets (as in execnet): a second `send` without
//!   new targets is [`RsyncError::NoTargets`].
//!
//! The receiving end is a small stdlib-only Python program run with
//! `remote_exec` (one channel per target), so nothing needs to be installed
//! on the far side. The same engine serves the blocking API
//! ([`crate::blocking::RSync`]) and `execnet rsync SRC SPEC:DEST`.
//!
//! # What is synced, and how
//!
//! - Regular files, with their permission bits and modification time
//!   (nanoseconds). A file that exists at the destination is replaced
//!   whole (written next to it, then renamed into place), so a reader sees
//!   the old or the new contents; a new file is written under its name.
//! - Directories, created as needed; their permission bits are copied with
//!   the owner's `rwx` added (as execnet does), so that later syncs can write
//!   into them.
//! - Symlinks are never followed (except the source root itself): a relative
//!   link is copied as it is; an absolute link that points below the source
//!   root is rewritten to point to the same place below the destination; any
//!   other link (absolute outside the tree, dangling) is copied as it is.
//! - Sockets, FIFOs and device files are skipped (listed in
//!   [`SendReport::skipped`]).
//! - Something of another kind at the destination (a directory where the
//!   source has a file, …) is replaced.
//! - With `delete`, entries at the destination that the source does not
//!   list, including those the filter excluded, are removed; without it,
//!   nothing is removed.
//!
//! # Example
//!
//! ```
//! use execnet::rsync::{RSync, TargetOptions};
//! use execnet::Gateway;
//!
//! # let tmp = std::env::temp_dir().join(format!("rsync-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(tmp.join("src/sub")).unwrap();
//! # std::fs::write(tmp.join("src/sub/hello.txt"), "hello").unwrap();
//! # let (source, dest) = (tmp.join("src"), tmp.join("dest"));
//! # futures_lite::future::block_on(async {
//! let gw = Gateway::open("popen").await?;
//! let mut rsync = RSync::new(&source).filter(|path| Ok(!path.ends_with(".git")));
//! rsync.add_target(&gw, &dest, TargetOptions::new().delete(true)).await?;
//! let report = rsync.send().await?;
//! assert_eq!(report.targets[0].files_sent, 1);
//! assert_eq!(std::fs::read_to_string(dest.join("sub/hello.txt"))?, "hello");
//! gw.exit().await?;
//! # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
//! # std::fs::remove_dir_all(&tmp).unwrap();
//! ```

mod error;
mod protocol;
mod target;
mod walk;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::{Channel, Gateway, RemoteCode, Value};

pub use error::{HookError, HookResult, Incomplete, RsyncError, TargetError};

/// The receiving end, run in the worker once per target.
const REMOTE_SOURCE: &str = include_str!("remote.py");

/// What `remote_exec` runs: compiles the receiving end once per worker
/// (about 2 ms each time otherwise) and calls it.
const STUB_SOURCE: &str = include_str!("stub.py");

/// The file name of the stub in tracebacks.
const STUB_FILENAME: &str = "<execnet rsync stub>";

/// The worker's `sys.modules` key of the compiled receiving end: it
/// changes with the source, so a worker never runs another build's.
fn remote_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let digest = Sha256::digest(REMOTE_SOURCE.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("_execnet_rsync_{hex}")
    })
}

/// Sends a directory tree to one or many gateways; see the [module
/// docs](self) for what is synced and how.
///
/// The hooks mirror execnet's `RSync`, whose subclasses override `filter`
/// and `_report_send_file`: set them when building the `RSync`.
pub struct RSync {
    source: PathBuf,
    /// Used by the walk; the other hooks by the targets.
    filter: Option<Box<FilterFn>>,
    hooks: Hooks,
    targets: Vec<target::Target>,
}

/// The hooks the targets call.
#[derive(Default)]
pub(crate) struct Hooks {
    send_file: Option<Box<SendFileFn>>,
    callback: Option<Box<CallbackFn>>,
}

type FilterFn = dyn FnMut(&Path) -> HookResult<bool> + Send;
type SendFileFn = dyn FnMut(&Gateway, &Path) -> HookResult<()> + Send;
type CallbackFn = dyn FnMut(Event<'_>) -> HookResult<()> + Send;
type FinishedFn = dyn FnOnce() -> HookResult<()> + Send;

impl Hooks {
    fn report_send_file(&mut self, gateway: &Gateway, path: &Path) -> HookResult<()> {
        match &mut self.send_file {
            Some(hook) => hook(gateway, path),
            None => Ok(()),
        }
    }

    fn event(&mut self, event: Event<'_>) -> HookResult<()> {
        match &mut self.callback {
            Some(hook) => hook(event),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for RSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RSync")
            .field("source", &self.source)
            .field("filter", &self.filter.is_some())
            .field("on_send_file", &self.hooks.send_file.is_some())
            .field("callback", &self.hooks.callback.is_some())
            .field("targets", &self.targets)
            .finish()
    }
}

impl RSync {
    /// An `RSync` of the directory `source_dir` (a trailing `/` makes no
    /// difference), with no hooks and no targets yet.
    pub fn new(source_dir: impl Into<PathBuf>) -> RSync {
        let mut source: PathBuf = source_dir.into();
        // `a/b/` and `a/b` are the same source (execnet normalizes it too).
        let trimmed = source.components().collect::<PathBuf>();
        if !trimmed.as_os_str().is_empty() {
            source = trimmed;
        }
        RSync {
            source,
            filter: None,
            hooks: Hooks::default(),
            targets: Vec::new(),
        }
    }

    /// The source directory (execnet's `_sourcedir`).
    pub fn source_dir(&self) -> &Path {
        &self.source
    }

    /// Sync only the paths for which `filter` returns `true` (execnet's
    /// overridable `filter(path)`). It sees each entry below the source as
    /// the source directory joined with the entry's relative path (never the
    /// source directory itself), once per [`send`](RSync::send) however many
    /// targets there are; an excluded directory is not looked into.
    pub fn filter<F>(mut self, filter: F) -> RSync
    where
        F: FnMut(&Path) -> HookResult<bool> + Send + 'static,
    {
        self.filter = Some(Box::new(filter));
        self
    }

    /// Call `report` before the contents of a file go to a target (execnet's
    /// `_report_send_file(gateway, modified_rel_path)`), with the target's
    /// gateway and the file's path relative to the source. Files found
    /// unchanged, by metadata or by checksum, are not reported.
    pub fn on_send_file<F>(mut self, report: F) -> RSync
    where
        F: FnMut(&Gateway, &Path) -> HookResult<()> + Send + 'static,
    {
        self.hooks.send_file = Some(Box::new(report));
        self
    }

    /// Progress: execnet's `callback(command, size, channel)`, as
    /// [`Event`]s. For each target: [`Event::List`] once every entry was
    /// compared, then an [`Event::Ack`] per file the target received, and
    /// [`Event::Sent`] as chunks leave.
    pub fn callback<F>(mut self, callback: F) -> RSync
    where
        F: FnMut(Event<'_>) -> HookResult<()> + Send + 'static,
    {
        self.hooks.callback = Some(Box::new(callback));
        self
    }

    /// Add a target: `dest_dir` on `gateway`'s side (created if missing;
    /// relative to the worker's working directory unless absolute; a
    /// leading `~` is the remote user's home). The receiving end starts now
    /// and waits for [`send`](RSync::send); dropping the `RSync` before that
    /// ends it.
    ///
    /// Fails with [`RsyncError::Target`] when the gateway cannot run code
    /// (it has exited or died), and with [`RsyncError::Destination`] for an
    /// empty `dest_dir`.
    pub async fn add_target(
        &mut self,
        gateway: &Gateway,
        dest_dir: impl AsRef<Path>,
        options: TargetOptions,
    ) -> Result<(), RsyncError> {
        let dest = dest_dir.as_ref().to_path_buf();
        if dest.as_os_str().is_empty() {
            return Err(RsyncError::Destination(
                "the destination directory is empty; use \".\" for the worker's \
                 working directory"
                    .into(),
            ));
        }
        let code = RemoteCode::new(STUB_SOURCE).filename(STUB_FILENAME).call(
            "rsync_receive",
            [
                ("source", Value::from(REMOTE_SOURCE)),
                ("key", Value::from(remote_key())),
                ("dest", Value::Bytes(dest.as_os_str().as_bytes().to_vec())),
                ("delete", Value::Bool(options.delete)),
            ],
        );
        let channel = gateway
            .remote_exec_code(code)
            .await
            .map_err(|e| RsyncError::Target(TargetError::new(gateway, &dest, e)))?;
        self.targets.push(target::Target {
            gateway: gateway.clone(),
            channel,
            dest,
            finished: options.finished,
        });
        Ok(())
    }

    /// How many targets the next [`send`](RSync::send) goes to.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// Bring every target up to date with the source, all at once; the
    /// targets are used up (execnet's `send()`). The source is walked once,
    /// and the targets compare while the walk goes on.
    ///
    /// - No targets: [`RsyncError::NoTargets`] (execnet's
    ///   `send(raises=False)` is this call with that error ignored).
    /// - The source directory itself cannot be read (missing, not a
    ///   directory, not listable): [`RsyncError::Source`], before anything
    ///   was sent; the targets stay for another try.
    /// - A target fails (its gateway died, the far side raised, e.g. a
    ///   permission error), or something in the source cannot be read (a
    ///   file, a directory, a link): the other targets and entries go on;
    ///   then [`RsyncError::Incomplete`] says which. What could not be read
    ///   is left alone at the targets, even with `delete`.
    /// - A hook fails (the filter too): every target stops, and the hook's
    ///   error is returned as [`RsyncError::Hook`].
    pub async fn send(&mut self) -> Result<SendReport, RsyncError> {
        if self.targets.is_empty() {
            return Err(RsyncError::NoTargets);
        }
        let root = walk::open_root(&self.source).await?;
        let targets = std::mem::take(&mut self.targets);
        let tree = walk::Tree::default();
        // A few batches of entries may wait per target; the walk waits for
        // the slowest target beyond that.
        let (sinks, queues): (Vec<_>, Vec<_>) =
            targets.iter().map(|_| async_channel::bounded(4)).unzip();
        let hooks = Mutex::new(&mut self.hooks);
        let source = self.source.as_path();
        let walk = walk::stream(root, source, self.filter.as_mut(), &tree, sinks);
        let runs = targets
            .into_iter()
            .zip(queues)
            .map(|(t, entries)| target::run(t, entries, &tree, source, &hooks));
        let (walked, outcomes) =
            futures_lite::future::try_zip(walk, futures_util::future::try_join_all(runs))
                .await
                .map_err(RsyncError::Hook)?;
        let mut report = SendReport {
            files: walked.files,
            dirs: walked.dirs,
            links: walked.links,
            bytes: walked.bytes,
            skipped: walked.skipped,
            targets: Vec::new(),
        };
        let mut failed = Vec::new();
        let mut unreadable = walked.unreadable;
        for outcome in outcomes {
            match outcome.result {
                Ok(target) => report.targets.push(target),
                Err(e) => failed.push(e),
            }
            for (path, error) in outcome.unreadable {
                if !unreadable.iter().any(|(p, _)| *p == path) {
                    unreadable.push((path, error));
                }
            }
        }
        if failed.is_empty() && unreadable.is_empty() {
            Ok(report)
        } else {
            Err(RsyncError::Incomplete(Box::new(Incomplete {
                report,
                failed,
                unreadable,
            })))
        }
    }
}

/// Per-target options of [`RSync::add_target`]: execnet's `delete=` and
/// `finishedcallback=`.
#[derive(Default)]
pub struct TargetOptions {
    delete: bool,
    finished: Option<Box<FinishedFn>>,
}

impl fmt::Debug for TargetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetOptions")
            .field("delete", &self.delete)
            .field("on_finished", &self.finished.is_some())
            .finish()
    }
}

impl TargetOptions {
    /// No delete, no finished hook.
    pub fn new() -> TargetOptions {
        TargetOptions::default()
    }

    /// Remove entries at the destination that the source does not list
    /// (those the filter excluded too).
    pub fn delete(mut self, delete: bool) -> TargetOptions {
        self.delete = delete;
        self
    }

    /// Call `finished` once this target is complete (execnet's
    /// `finishedcallback`), inside [`RSync::send`].
    pub fn on_finished<F>(mut self, finished: F) -> TargetOptions
    where
        F: FnOnce() -> HookResult<()> + Send + 'static,
    {
        self.finished = Some(Box::new(finished));
        self
    }
}

/// Progress of a send, given to [`RSync::callback`]. execnet's callback
/// receives the first two as `("list", bytes, channel)` and
/// `("ack", bytes, channel)`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The target compared every entry: it wants `files` files of `bytes`
    /// bytes in all (their sizes when the source was read). Comes once per
    /// target, before its first `Ack`.
    List {
        /// The target's channel.
        channel: &'a Channel,
        /// How many files it asked for.
        files: u64,
        /// Their total size.
        bytes: u64,
    },
    /// The target has file `path` in place (`bytes`: what was sent, or its
    /// size when only the checksum was compared; 0 if it could not be read).
    Ack {
        /// The target's channel.
        channel: &'a Channel,
        /// The file, relative to the source.
        path: &'a Path,
        /// Its size.
        bytes: u64,
    },
    /// `bytes` more of `path`'s contents were handed to the target's channel.
    Sent {
        /// The target's channel.
        channel: &'a Channel,
        /// The file, relative to the source.
        path: &'a Path,
        /// The size of this chunk.
        bytes: u64,
    },
}

impl Event<'_> {
    /// The channel of the target this event is about (its gateway:
    /// `channel().gateway()`).
    pub fn channel(&self) -> &Channel {
        match self {
            Event::List { channel, .. }
            | Event::Ack { channel, .. }
            | Event::Sent { channel, .. } => channel,
        }
    }
}

/// What a [`RSync::send`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendReport {
    /// Regular files in the source (after the filter).
    pub files: usize,
    /// Directories in the source, the root included.
    pub dirs: usize,
    /// Symlinks in the source.
    pub links: usize,
    /// The total size of the source's files.
    pub bytes: u64,
    /// Entries skipped because they are not files, directories or symlinks
    /// (sockets, FIFOs, devices).
    pub skipped: Vec<PathBuf>,
    /// Each target that completed, in the order they were added.
    pub targets: Vec<TargetReport>,
}

/// What one target of a [`RSync::send`] received.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TargetReport {
    /// The gateway's id.
    pub gateway: String,
    /// The destination directory, as given to [`RSync::add_target`].
    pub dest_dir: PathBuf,
    /// Files whose contents were sent.
    pub files_sent: u64,
    /// The bytes of those contents.
    pub bytes_sent: u64,
    /// Files that differed in modification time only: the checksums matched,
    /// nothing was sent, their metadata was updated.
    pub files_same: u64,
    /// Directories created.
    pub dirs_created: u64,
    /// Symlinks created or changed.
    pub links_made: u64,
    /// Entries removed because the source does not have them (`delete`).
    pub deleted: u64,
}
