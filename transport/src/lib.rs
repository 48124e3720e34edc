//! Byte transports for execnet gateways.
//!
//! # Brief overview
//!
//! A gateway talks to its worker over one ordered byte stream. This crate
//! makes such streams and knows the process behind them:
//!
//! - [`CommandTransport`] starts a local command (the Python interpreter for a
//!   `popen` gateway) with piped stdin/stdout, and captures its stderr;
//! - [`SshTransport`] runs the system OpenSSH client (`ssh=`), sharing one
//!   connection per destination, and [`SshFailure`] reads why it failed;
//! - [`TcpTransport`] connects to a socket server;
//! - [`Transport`] is the public trait: anything that yields a [`Connection`]
//!   (an `AsyncRead` + `AsyncWrite` pair, plus optionally the [`Process`]
//!   behind it and its stderr) can carry a gateway — a serial line, a
//!   container exec, a QUIC stream; [`Transport::diagnose`] explains a
//!   start that failed, as a [`Diagnosis`] naming the failed [`Step`];
//! - [`StderrTail`] keeps the last few KiB of a process's stderr so that
//!   bootstrap errors can quote what the process said.
//!
//! Every child process started here is reaped: after it exits, after it is
//! killed, and when its handle is dropped (async-process reaps dropped
//! children in the background), so no zombie is ever left.
//!
//! # Example
//!
//! ```
//! use execnet_transport::{CommandTransport, Transport};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! futures_lite::future::block_on(async {
//!     let cmd = async_process::Command::new("cat");
//!     let conn = CommandTransport::new(cmd, "cat").connect().await?;
//!     let (mut reader, mut writer) = (conn.reader, conn.writer);
//!     writer.write_all(b"ping").await?;
//!     drop(writer); // closes cat's stdin

//!     let mut echoed = Vec::new();
//!     reader.read_to_end(&mut echoed).await?;
//!     assert_eq!(echoed, b"ping");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod command;
mod error;
mod process;
mod ssh;
mod stderr;
mod tcp;

pub use command::CommandTransport;
pub use error::{Diagnosis, Step, TransportError};
pub use process::{signal_process, ChildProcess, Process, Signal};
pub use ssh::{shell_quote, SshFailure, SshTransport};
pub use stderr::StderrTail;
pub use tcp::TcpTransport;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitStatus;

/// A boxed byte stream read half.
pub type BoxedReader = Pin<Box<dyn futures_io::AsyncRead + Send>>;
/// A boxed byte stream write half.
pub type BoxedWriter = Pin<Box<dyn futures_io::AsyncWrite + Send>>;
/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An open byte stream to a worker, and what is known about the far end.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{Connection, StderrTail};
///
/// // Any byte stream pair can be a connection; no process behind this one.
/// let (reader, writer) = (futures_lite::io::empty(), futures_lite::io::sink());
/// let conn = Connection {
///     reader: Box::pin(reader),
///     writer: Box::pin(writer),
///     stderr: None,
///     stderr_tail: StderrTail::new(),
///     process: None,
///     description: "an empty stream".into(),
/// };
/// assert!(conn.process.is_none());
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct Connection {
    /// Bytes from the worker.
    pub reader: BoxedReader,
    /// Bytes to the worker.
    pub writer: BoxedWriter,
    /// The worker's (or the ssh client's) stderr, if captured; the gateway
    /// pumps it into [`Connection::stderr_tail`] (quoted when the start
    /// fails) and, once the worker runs, forwards or logs it as its options
    /// say.
    pub stderr: Option<BoxedReader>,
    /// The last bytes of stderr, filled by whoever pumps [`Connection::stderr`].
    pub stderr_tail: StderrTail,
    /// The local process behind the stream, if there is one.
    pub process: Option<Box<dyn Process>>,
    /// What this connection is, for error messages ("python3", "ssh host").
    pub description: String,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("description", &self.description)
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

/// Something that can open a byte stream to a process running the execnet
/// bootstrap (a `python -c LOADER` reading from the stream).
///
/// Implement it for your own carrier and hand it to the gateway
/// (`Gateway::from_transport`). The gateway calls [`Transport::connect`]
/// once, writes the worker source and the frames to
/// [`Connection::writer`] and reads frames from [`Connection::reader`]. If
/// the worker's hello does not come, it asks [`Transport::diagnose`] what the
/// process's exit status and stderr mean.
///
/// # Examples
///
/// A worker started through `sh`, the way one would wrap it in
/// `docker exec -i` or `kubectl exec -i`:
///
/// ```
/// use execnet_transport::{BoxFuture, CommandTransport, Connection, Transport, TransportError};
///
/// #[derive(Debug)]
/// struct Shell;
///
/// impl Transport for Shell {
///     fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>> {
///         Box::pin(async {
///             let mut cmd = async_process::Command::new("sh");
///             cmd.args(["-c", "exec cat"]);
///             CommandTransport::new(cmd, "cat under sh").connect().await
///         })
///     }
/// }
///
/// # futures_lite::future::block_on(async {
/// let conn = Shell.connect().await?;
/// assert_eq!(conn.description, "cat under sh");
/// # Ok::<_, TransportError>(()) }).unwrap();
/// ```
pub trait Transport: Send + fmt::Debug + 'static {
    /// Open the stream (spawn the process, connect the socket, …).
    fn connect(&mut self) -> BoxFuture<'_, Result<Connection, TransportError>>;

    /// Explain a start that failed before the worker's hello, from the
    /// process's exit status (if it exited) and the tail of its stderr.
    /// `None`: nothing specific to say; the gateway then reports the exit
    /// status, what the stream sent and the stderr. The default says
    /// nothing; [`SshTransport`] tells a refused key from an unknown host.
    fn diagnose(&self, status: Option<ExitStatus>, stderr: &str) -> Option<Diagnosis> {
        let _ = (status, stderr);
        None
    }
}
