//! The blocking API: the same types and methods as the async API, without
//! `async`, for scripts and for users coming from Python's execnet.
//!
//! Every call runs the async version on the calling thread with
//! `futures_lite::future::block_on`; the gateways' IO runs on the library's
//! one background driver thread, so there is no runtime to set up and no
//! thread per call.
//!
//! # Examples
//!
//! ```
//! use execnet::blocking::Gateway;
//!
//! let gw = Gateway::open("popen")?;
//! let ch = gw.remote_exec("channel.send(channel.receive() + 1)")?;
//! ch.send(&41)?;
//! assert_eq!(ch.receive::<i64>()?, 42);
//! gw.exit()?;
//! # Ok::<_, execnet::Error>(())
//! ```

mod channel;
mod gateway;
mod group;
#[cfg(feature = "rsync")]
mod rsync;

pub use channel::Channel;
pub use gateway::Gateway;
pub use group::{Group, MultiChannel, ReceiveQueue};
#[cfg(feature = "rsync")]
pub use rsync::RSync;
