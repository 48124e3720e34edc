//! What can go wrong in an rsync.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, Gateway};

use super::SendReport;

/// What a hook returns when it fails: any error, handed back by
/// [`RSync::send`](super::RSync::send) as [`RsyncError::Hook`] unchanged (so
/// a caller can downcast it to its own type).
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a hook returns.
pub type HookResult<T> = Result<T, HookError>;

/// Why an rsync failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RsyncError {
    /// `send` without targets: none were added, or the last `send` used
    /// them up.
    #[error(
        "rsync has no targets: add_target() first (each send() uses up the targets added before it)"
    )]
    NoTargets,
    /// The source directory could not be read: nothing was sent and the
    /// targets are kept.
    #[error("rsync: cannot read the source {}: {error}", path.display())]
    Source {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A destination that cannot be used.
    #[error("rsync: {0}")]
    Destination(String),
    /// The receiving end could not be started on a target's gateway.
    #[error("rsync: cannot start on {0}")]
    Target(TargetError),
    /// A hook returned this error; the send stopped.
    #[error("rsync stopped by a hook: {0}")]
    Hook(HookError),
    /// Some targets failed or some source files could not be read; the rest
    /// was synced.
    #[error("{0}")]
    Incomplete(Box<Incomplete>),
}

/// The details of [`RsyncError::Incomplete`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Incomplete {
    /// What was done: the targets that completed.
    pub report: SendReport,
    /// The targets that failed, in the order they were added.
    pub failed: Vec<TargetError>,
    /// What in the source could not be read (files, directories, links;
    /// not what vanished meanwhile, which is simply not synced); the
    /// targets keep what they had under those names.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rsync incomplete")?;
        let mut sep = ": ";
        for failed in &self.failed {
            write!(f, "{sep}{failed}")?;
            sep = "; ";
        }
        for (path, error) in &self.unreadable {
            write!(f, "{sep}cannot read {}: {error}", path.display())?;
            sep = "; ";
        }
        Ok(())
    }
}

/// A target that failed: its gateway, its destination, and why.
#[derive(Debug)]
pub struct TargetError {
    gateway: String,
    dest_dir: PathBuf,
    cause: Cause,
}

#[derive(Debug)]
pub(crate) enum Cause {
    /// The gateway or the receiving end reported this.
    Gateway(Error),
    /// The receiving end sent something that is not this protocol.
    Protocol(String),
}

impl TargetError {
    pub(crate) fn new(gateway: &Gateway, dest_dir: &Path, error: Error) -> TargetError {
        TargetError::with_cause(gateway, dest_dir, Cause::Gateway(error))
    }

    pub(crate) fn with_cause(gateway: &Gateway, dest_dir: &Path, cause: Cause) -> TargetError {
        TargetError {
            gateway: gateway.id().to_string(),
            dest_dir: dest_dir.to_path_buf(),
            cause,
        }
    }

    /// The target's gateway id.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The target's destination directory.
    pub fn dest_dir(&self) -> &Path {
        &self.dest_dir
    }

    /// The gateway's error: [`Error::ConnectionLost`] when the gateway died,
    /// [`Error::Remote`] (with the far side's traceback) when the receiving
    /// end raised, e.g. for a permission error. `None` when the far side
    /// broke the protocol.
    pub fn error(&self) -> Option<&Error> {
        match &self.cause {
            Cause::Gateway(e) => Some(e),
            Cause::Protocol(_) => None,
        }
    }

    /// Whether the gateway's connection was lost (the worker died or the
    /// gateway was exited) while this target was being synced.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self.cause, Cause::Gateway(Error::ConnectionLost(_)))
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): ", self.gateway, self.dest_dir.display())?;
        match &self.cause {
            // The last line of the traceback says it; the rest is in error().
            Cause::Gateway(Error::Remote(e)) => {
                write!(f, "the receiving end raised {}", e.summary())
            }
            Cause::Gateway(e) => write!(f, "{e}"),
            Cause::Protocol(message) => {
                write!(f, "the receiving end broke the protocol: {message}")
            }
        }
    }
}

impl std::error::Error for TargetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Gateway(e) => Some(e),
            Cause::Protocol(_) => None,
        }
    }
}
