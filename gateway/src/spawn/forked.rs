//! [`ForkedProcess`]: a worker the spawner forked, as the driver sees its
//! process. The spawner reaps it and tells us its exit status; signals go
//! through the spawner, which knows whether the pid is still the worker's.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use execnet_transport::{BoxFuture, Process, Signal};

use super::spawner::Spawner;

/// A forked worker: its gid at the spawner and its pid.
pub(crate) struct ForkedProcess {
    pub(super) spawner: Arc<Spawner>,
    pub(super) gid: u32,
    /// The worker's pid (in the spawner's pid namespace).
    pub(super) pid: u32,
}

impl fmt::Debug for ForkedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForkedProcess")
            .field("pid", &self.pid)
            .field("local", &self.spawner.local)
            .finish_non_exhaustive()
    }
}

impl ForkedProcess {
    fn status(&self) -> Option<ExitStatus> {
        self.spawner.exit_status(self.gid).map(ExitStatus::from_raw)
    }
}

impl Process for ForkedProcess {
    /// A local fork's own pid; for a remote one the local process behind its
    /// stream (the ssh client the spawner runs under), as for a direct ssh
    /// gateway.
    fn pid(&self) -> Option<u32> {
        if self.spawner.local {
            Some(self.pid)
        } else {
            self.spawner.process_pid()
        }
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.status().is_none() {
            self.spawner.signal(self.gid, self.pid, signal, false);
        }
        Ok(())
    }

    fn wait(&self) -> BoxFuture<'_, io::Result<ExitStatus>> {
        Box::pin(async move {
            loop {
                let listener = self.spawner.listen();
                if let Some(status) = self.status() {
                    return Ok(status);
                }
                if self.spawner.is_lost() {
                    return Ok(self.orphan_wait().await);
                }
                listener.await;
            }
        })
    }

    fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        Ok(self.status())
    }

    fn kill_group(&self) -> io::Result<()> {
        // After the worker's exit the spawner has killed its group already.
        if self.status().is_none() {
            self.spawner.signal(self.gid, self.pid, Signal::Kill, true);
        }
        Ok(())
    }
}

impl ForkedProcess {
    /// The spawner died before this worker: nobody reports its exit any
    /// more. A local worker, now init's child, is watched until its pid is
    /// gone; a remote one lost its stream with the spawner and exits.
    async fn orphan_wait(&self) -> ExitStatus {
        if self.spawner.local {
            while std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                async_io::Timer::after(Duration::from_millis(20)).await;
            }
        }
        ExitStatus::from_raw(0)
    }
}

impl Drop for ForkedProcess {
    fn drop(&mut self) {
        self.spawner.release(self.gid);
    }
}
