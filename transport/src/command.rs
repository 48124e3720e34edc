use std::io;
use std::process::Stdio;

use crate::{BoxFuture, ChildProcess, Connection, StderrTail, Transport, TransportError};

/// The pipe buffer size asked for (Linux allows unprivileged processes up to
/// 1 MiB by default).
const PIPE_SIZE: usize = 1 << 20;

/// A local command with piped stdin/stdout: the worker's stream.
///
/// Its stderr is piped too and handed out as [`Connection::stderr`], so that
/// the gateway can keep the tail for error messages and forward the rest.
/// The child is killed when its [`ChildProcess`] is dropped.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{CommandTransport, Transport};
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
///
/// let mut cmd = async_process::Command::new("tr");
/// cmd.args(["a-z", "A-Z"]);
/// let mut transport = CommandTransport::new(cmd, "tr");
/// let mut conn = transport.connect().await?;
/// conn.writer.write_all(b"shout").await?;
/// drop(conn.writer); // tr sees the end of its input
/// let mut out = String::new();
/// conn.reader.read_to_string(&mut out).await?;
/// assert_eq!(out, "SHOUT");
/// assert!(conn.process.expect("a local child").pid().is_some());
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct CommandTransport {
    command: async_process::Command,
    program: String,
    group_leader: bool,
}

impl CommandTransport {
    /// A transport that will run `command`. `program` names it in errors
    /// (e.g. the interpreter the user asked for).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
    /// use execnet::transport::CommandTransport;
    ///
    /// let mut cmd = async_process::Command::new("python3");
    /// cmd.args(["-c", "print('hi')"]);
    /// // The name says what failed in errors: "python3.99: no such file or directory".
    /// let transport = CommandTransport::new(cmd, "python3");
    /// ```
    pub fn new(command: async_process::Command, program: impl Into<String>) -> Self {
        Self {
            command,
            program: program.into(),
            group_leader: false,
        }
    }

    /// A transport that runs `command` as the leader of a new process
    /// group, so that killing the worker also kills what its code started.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
    /// # futures_lite::future::block_on(async {
    /// use execnet::transport::CommandTransport;
    ///
    /// // `sh` and the `sleep` it starts share a new process group.
    /// let mut cmd = std::process::Command::new("sh");
    /// cmd.args(["-c", "sleep 60 & wait"]);
    /// let conn = CommandTransport::new_group(cmd, "sh").spawn()?;
    /// let process = conn.process.expect("a local child");
    /// process.kill_group()?; // both go
    /// process.wait().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn new_group(mut command: std::process::Command, program: impl Into<String>) -> Self {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        Self {
            command: async_process::Command::from(command),
            program: program.into(),
            group_leader: true,
        }
    }

    /// Start the command now.
    ///
    /// # Examples
    ///
    /// ```
    /// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
    /// use execnet::transport::{CommandTransport, TransportError, Step};
    ///
    /// let cmd = async_process::Command::new("/nonexistent/python9");
    /// let err = CommandTransport::new(cmd, "python9").spawn().unwrap_err();
    /// assert_eq!(err.step(), Step::Spawn);
    /// assert!(err.to_string().starts_with("python9: no such file"), "{err}");
    /// ```
    pub fn spawn(&mut self) -> Result<Connection, TransportError> {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = self
            .command
            .spawn()
            .map_err(|source| TransportError::spawn(self.program.clone(), source))?;
        let missing = |what: &str| TransportError::Io {
            context: format!("{}: no {what} pipe", self.program),
            source: io::Error::other("pipe missing"),
        };
        let writer = child.stdin.take().ok_or_else(|| missing("stdin"))?;
        let reader = child.stdout.take().ok_or_else(|| missing("stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| missing("stderr"))?;
        // Bigger pipes mean fewer context switches per MiB of bulk data; the
        // default 64 KiB forces one switch per 64 KiB. Best effort: the
        // system limit (fs.pipe-max-size) may refuse.
        let _ = rustix::pipe::fcntl_setpipe_size(&writer, PIPE_SIZE);
        let _ = rustix::pipe::fcntl_setpipe_size(&reader, PIPE_SIZE);
        Ok(Connection {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            stderr: Some(Box::pin(stderr)),
            stderr_tail: StderrTail::new(),
            process: Some(Box::new(if self.group_leader {
                ChildProcess::group_leader(child)
            } else {
                ChildProcess::new(child)
            })),
            description: self.program.clone(),
        })
    }
}

impl Transport for CommandTransport {
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
        Box::pin(async move { self.spawn() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signal;

    #[test]
    fn missing_program_names_it() {
        let cmd = async_process::Command::new("/nonexistent/python9");
        let err = CommandTransport::new(cmd, "/nonexistent/python9")
            .spawn()
            .expect_err("spawning a missing program fails");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/python9"), "{text}");
        assert!(text.contains("no such file"), "{text}");
    }

    #[test]
    fn kill_and_wait_reaps() {
        futures_lite::future::block_on(async {
            let mut cmd = async_process::Command::new("sleep");
            cmd.arg("30");
            let conn = CommandTransport::new(cmd, "sleep")
                .spawn()
                .expect("sleep runs");
            let process = conn.process.expect("a local process");
            let pid = process.pid().expect("a pid");
            assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
            assert_eq!(process.try_wait().expect("try_wait"), None);
            process.signal(Signal::Kill).expect("kill");
            let status = process.wait().await.expect("wait");
            assert!(!status.success());
            // Reaped: the pid is gone from /proc (no zombie entry).
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
            // Signalling an exited process is harmless.
            process.signal(Signal::Terminate).expect("no-op after exit");
        });
    }
}
