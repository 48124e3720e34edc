use std::fmt;
use std::io;
use std::process::ExitStatus;

use async_lock::Mutex;

use crate::BoxFuture;

/// A signal to send to a worker's local process.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{CommandTransport, Signal};
///
/// let mut cmd = async_process::Command::new("sleep");
/// cmd.arg("60");
/// let process = CommandTransport::new(cmd, "sleep").spawn()?.process.expect("a child");
/// process.signal(Signal::Terminate)?;
/// let status = process.wait().await?;
/// assert!(!status.success());
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM: ask it to stop.
    Terminate,
    /// SIGKILL: stop it now.
    Kill,
}

/// The local process behind a transport (the interpreter, or the ssh client).
///
/// Implementations must reap the process once it exits, also when the handle
/// is dropped, so that no zombie is left.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{CommandTransport, Process};
///
/// let mut cmd = async_process::Command::new("true");
/// let conn = CommandTransport::new(cmd, "true").spawn()?;
/// let process: Box<dyn Process> = conn.process.expect("a child");
/// let status = process.wait().await?; // reaped: no zombie is left
/// assert!(status.success());
/// assert_eq!(process.try_wait()?, Some(status));
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub trait Process: Send + Sync + fmt::Debug {
    /// Its process id, if it has one.
    fn pid(&self) -> Option<u32>;
    /// Send it a signal. Does nothing once it has exited.
    fn signal(&self, signal: Signal) -> io::Result<()>;
    /// Wait until it has exited, reaping it; its exit status.
    fn wait(&self) -> BoxFuture<'_, io::Result<ExitStatus>>;
    /// Its exit status if it has exited already (reaping it), else `None`.
    fn try_wait(&self) -> io::Result<Option<ExitStatus>>;
    /// Kill whatever is left of the process's own process group (programs
    /// that the worker's code started), if it leads one. Best effort; the
    /// default does nothing.
    fn kill_group(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A child process started with `async-process`.
///
/// Dropping it kills the process (if still running) and leaves the reaping to
/// async-process's background reaper.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{ChildProcess, Process};
///
/// let child = async_process::Command::new("true").spawn()?;
/// let process = ChildProcess::new(child);
/// assert!(process.wait().await?.success());
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct ChildProcess {
    pid: u32,
    child: Mutex<async_process::Child>,
    group_leader: bool,
}

impl ChildProcess {
    /// Wrap a spawned child.
    pub fn new(child: async_process::Child) -> Self {
        Self {
            pid: child.id(),
            child: Mutex::new(child),
            group_leader: false,
        }
    }

    /// Wrap a spawned child that leads its own process group (started with
    /// `process_group(0)`): signals then reach the whole group.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
    /// # futures_lite::future::block_on(async {
    /// use std::os::unix::process::CommandExt;
    /// use execnet::transport::{ChildProcess, Process};
    ///
    /// let mut cmd = std::process::Command::new("sleep");
    /// cmd.arg("60").process_group(0);
    /// let process = ChildProcess::group_leader(async_process::Command::from(cmd).spawn()?);
    /// process.kill_group()?;
    /// assert!(!process.wait().await?.success());
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn group_leader(child: async_process::Child) -> Self {
        Self {
            group_leader: true,
            ..Self::new(child)
        }
    }
}

impl Process for ChildProcess {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        // Only signal a child we have not reaped yet: after reaping, the pid
        // may belong to somebody else. While the lock is held nobody reaps.
        let Some(mut child) = self.child.try_lock() else {
            // A waiter holds the lock: the child is still unreaped (the
            // waiter would release the lock once it reaps), so the pid is ours.
            return signal_process(self.pid, signal, self.group_leader);
        };
        if child.try_status()?.is_some() {
            return Ok(());
        }
        signal_process(self.pid, signal, self.group_leader)
    }

    fn kill_group(&self) -> io::Result<()> {
        if self.group_leader {
            signal_process(self.pid, Signal::Kill, true)
        } else {
            Ok(())
        }
    }

    fn wait(&self) -> BoxFuture<'_, io::Result<ExitStatus>> {
        Box::pin(async move { self.child.lock().await.status().await })
    }

    fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        match self.child.try_lock() {
            Some(mut child) => child.try_status(),
            None => Ok(None),
        }
    }
}

/// Signal the process `pid`, or with `group` every process of the group it
/// leads (the group id stays reserved while any member lives, so it cannot
/// name strangers). A target that is already gone is not an error.
///
/// For processes the caller started and has not reaped (a pid reused by a
/// stranger after reaping would be signalled too).
///
/// ```
/// use execnet_transport::{signal_process, Signal};
/// let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
/// signal_process(child.id(), Signal::Kill, false)?;
/// assert!(!child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn signal_process(pid: u32, signal: Signal, group: bool) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad pid"))?;
    let sig = match signal {
        Signal::Terminate => rustix::process::Signal::TERM,
        Signal::Kill => rustix::process::Signal::KILL,
    };
    let sent = if group {
        rustix::process::kill_process_group(pid, sig)
    } else {
        rustix::process::kill_process(pid, sig)
    };
    match sent {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
