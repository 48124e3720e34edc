use std::fmt;
use std::io;

use thiserror::Error;

/// The step of opening a gateway that failed.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// use execnet::transport::Step;
///
/// assert_eq!(Step::Auth.to_string(), "authentication");
/// assert_eq!(Step::Interpreter.to_string(), "interpreter");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Starting the local process (interpreter or ssh client).
    Spawn,
    /// Resolving the remote host.
    Host,
    /// Connecting to the remote host or server.
    Connect,
    /// Authenticating (ssh keys, the socket server's token).
    Auth,
    /// Starting the remote interpreter (missing, too old, crashed).
    Interpreter,
    /// Exchanging the hello with the worker.
    Handshake,
    /// Routing through another gateway (`via=`, `installvia=`).
    Route,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Spawn => "spawn",
            Step::Host => "host",
            Step::Connect => "connect",
            Step::Auth => "authentication",
            Step::Interpreter => "interpreter",
            Step::Handshake => "handshake",
            Step::Route => "route",
        })
    }
}

/// Why a worker did not start, as a transport reads it from what its
/// process left behind ([`Transport::diagnose`](crate::Transport::diagnose)).
///
/// # Examples
///
/// ```
/// use execnet_transport::{Diagnosis, Step};
///
/// let d = Diagnosis::new(Step::Auth, "ssh host: authentication refused");
/// assert_eq!(d.step, Step::Auth);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The step that failed.
    pub step: Step,
    /// What happened, for the user (the gateway appends the stderr tail).
    pub message: String,
}

impl Diagnosis {
    /// A diagnosis: `step` failed, as `message` says.
    pub fn new(step: Step, message: impl Into<String>) -> Diagnosis {
        Diagnosis {
            step,
            message: message.into(),
        }
    }
}

/// Why a transport could not be opened.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{TcpTransport, TransportError};
///
/// // Nobody listens on port 1.
/// let err = TcpTransport::new("127.0.0.1:1").open().await.unwrap_err();
/// assert!(matches!(err, TransportError::Connect { .. }));
/// assert!(err.to_string().starts_with("cannot connect to 127.0.0.1:1"), "{err}");
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The program to start does not exist or cannot be executed.
    #[error("{program}: {reason}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// What the OS said ("no such file or directory", "permission denied").
        reason: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The host name of a TCP address does not resolve (unknown host, no
    /// name service).
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// The address whose host did not resolve.
        addr: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// A TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address that was tried.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Any other IO failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A step of opening the stream failed (a refused token, a carrier's
    /// own handshake), as `message` says.
    #[error("{message}")]
    Failed {
        /// The step.
        step: Step,
        /// What happened.
        message: String,
    },
}

impl TransportError {
    /// `program` could not be started: the error [`TransportError::Spawn`]
    /// with the OS error told in words a user acts on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use execnet_transport::{Step, TransportError};
    ///
    /// let e = TransportError::spawn("python9", io::Error::from(io::ErrorKind::NotFound));
    /// assert_eq!(e.step(), Step::Spawn);
    /// assert!(e.to_string().starts_with("python9: no such file or directory"), "{e}");
    /// ```
    pub fn spawn(program: impl Into<String>, source: io::Error) -> TransportError {
        let reason = match source.kind() {
            io::ErrorKind::NotFound => {
                "no such file or directory (is it installed and on PATH?)".into()
            }
            io::ErrorKind::PermissionDenied => "permission denied (is it executable?)".into(),
            _ => source.to_string(),
        };
        TransportError::Spawn {
            program: program.into(),
            reason,
            source,
        }
    }

    /// The step of opening that failed: [`Step::Spawn`] for a program that
    /// could not be started, the given step of [`TransportError::Failed`],
    /// else [`Step::Connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_transport::{Step, TransportError};
    ///
    /// let e = TransportError::Failed { step: Step::Auth, message: "wrong token".into() };
    /// assert_eq!(e.step(), Step::Auth);
    /// ```
    pub fn step(&self) -> Step {
        match self {
            TransportError::Spawn { .. } => Step::Spawn,
            TransportError::Resolve { .. } => Step::Host,
            TransportError::Connect { .. } | TransportError::Io { .. } => Step::Connect,
            TransportError::Failed { step, .. } => *step,
        }
    }
}
