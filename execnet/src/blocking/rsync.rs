use std::fmt;
use std::path::{Path, PathBuf};

use futures_lite::future::block_on;

use crate::blocking::Gateway;
use crate::rsync::{Event, HookResult, RsyncError, SendReport, TargetOptions};

/// A blocking [`crate::rsync::RSync`]: send a directory tree to gateways.
/// The hooks run on the thread that calls [`send`](RSync::send).
///
/// # Examples
///
/// ```
/// use execnet::blocking::{Gateway, RSync};
/// use execnet::rsync::TargetOptions;
///
/// # let tmp = std::env::temp_dir().join(format!("rsync-blocking-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(tmp.join("src")).unwrap();
/// # std::fs::write(tmp.join("src/a.txt"), "a").unwrap();
/// # let (source, dest) = (tmp.join("src"), tmp.join("dest"));
/// let gw = Gateway::open("popen")?;
/// let mut rsync = RSync::new(&source)
///     .on_send_file(|gw, path| Ok(println!("{} <= {}", gw.id(), path.display())));
/// rsync.add_target(&gw, &dest, TargetOptions::new())?;
/// rsync.send()?;
/// assert!(dest.join("a.txt").exists());
///
/// // Unchanged files are not sent again.
/// let mut again = RSync::new(&source);
/// again.add_target(&gw, &dest, TargetOptions::new())?;
/// assert_eq!(again.send()?.targets[0].files_sent, 0);
/// gw.exit()?;
/// # std::fs::remove_dir_all(&tmp).unwrap();
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct RSync {
    inner: crate::rsync::RSync,
}

impl fmt::Debug for RSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl RSync {
    /// An `RSync` of `source_dir`; see [`crate::rsync::RSync::new`].
    pub fn new(source_dir: impl Into<PathBuf>) -> RSync {
        RSync {
            inner: crate::rsync::RSync::new(source_dir),
        }
    }

    /// The source directory.
    pub fn source_dir(&self) -> &Path {
        self.inner.source_dir()
    }

    /// Sync only the paths `filter` accepts; see
    /// [`crate::rsync::RSync::filter`].
    pub fn filter<F>(self, filter: F) -> RSync
    where
        F: FnMut(&Path) -> HookResult<bool> + Send + 'static,
    {
        RSync {
            inner: self.inner.filter(filter),
        }
    }

    /// Call `report(gateway, relative_path)` before a file's contents go to
    /// a target; see [`crate::rsync::RSync::on_send_file`].
    pub fn on_send_file<F>(self, mut report: F) -> RSync
    where
        F: FnMut(&Gateway, &Path) -> HookResult<()> + Send + 'static,
    {
        RSync {
            inner: self
                .inner
                .on_send_file(move |gw, path| report(&Gateway::from(gw.clone()), path)),
        }
    }

    /// Progress events; see [`crate::rsync::RSync::callback`]. The event's
    /// channel is the async handle (`blocking::Channel::from(ch.clone())`
    /// makes a blocking one).
    pub fn callback<F>(self, callback: F) -> RSync
    where
        F: FnMut(Event<'_>) -> HookResult<()> + Send + 'static,
    {
        RSync {
            inner: self.inner.callback(callback),
        }
    }

    /// Add a target; see [`crate::rsync::RSync::add_target`].
    pub fn add_target(
        &mut self,
        gateway: &Gateway,
        dest_dir: impl AsRef<Path>,
        options: TargetOptions,
    ) -> Result<(), RsyncError> {
        block_on(self.inner.add_target(gateway.as_async(), dest_dir, options))
    }

    /// How many targets the next `send` goes to.
    pub fn target_count(&self) -> usize {
        self.inner.target_count()
    }

    /// Bring every target up to date; see [`crate::rsync::RSync::send`].
    pub fn send(&mut self) -> Result<SendReport, RsyncError> {
        block_on(self.inner.send())
    }

    /// The async `RSync` inside.
    pub fn into_async(self) -> crate::rsync::RSync {
        self.inner
    }
}

impl From<crate::rsync::RSync> for RSync {
    fn from(inner: crate::rsync::RSync) -> Self {
        RSync { inner }
    }
}
