use std::io;
use thiserror::Error;

/// Why a transport could not be opened.
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
}
