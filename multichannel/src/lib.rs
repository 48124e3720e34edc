//! execnet groups of gateways and multi-channels: many workers at once.
//!
//! # Brief overview
//!
//! - A [`Group`] holds gateways under ids (`gw0`, `gw1`, … or the spec's
//!   `id=`). [`Group::make_gateway`] opens one; called concurrently (e.g.
//!   with `join`), gateways open in parallel. [`Group::remote_exec`] runs the
//!   same source on every member, [`Group::terminate`] stops them all within
//!   a bound, and dropping a `Group` terminates its gateways.
//! - A [`MultiChannel`] is a list of channels used together:
//!   [`send_each`](MultiChannel::send_each),
//!   [`receive_each`](MultiChannel::receive_each) (in channel order),
//!   [`wait_close`](MultiChannel::wait_close), and
//!   [`receive_queue`](MultiChannel::receive_queue), a [`ReceiveQueue`]
//!   stream of `(channel index, item)` in the order items arrive.
//!
//! Nothing here picks an executor: the futures run on any executor, or under
//! `futures_lite::future::block_on`.
//!
//! # Example
//!
//! ```
//! # mod execnet { pub use execnet_multichannel::*; pub use execnet_gateway::{from_value, to_value, Error, Gateway, Options, RemoteCode, Result, Value, XSpec}; }
//! use execnet::Group;
//! use futures_lite::StreamExt;
//!
//! # futures_lite::future::block_on(async {
//! let group = Group::new();
//! // Open two gateways at the same time.
//! let (a, b) = futures_lite::future::zip(
//!     group.make_gateway("popen"),
//!     group.make_gateway("popen//id=second"),
//! )
//! .await;
//! assert_eq!((a?.id(), b?.id()), ("gw0", "second"));
//!
//! let mch = group.remote_exec("channel.send(channel.receive() * 2)").await?;
//! mch.send_each(&21).await?;
//! assert_eq!(mch.receive_each::<i64>().await?, [42, 42]);
//!
//! // Or take items as they come, from whichever worker is first.
//! let mch = group.remote_exec("import os; channel.send(os.getpid())").await?;
//! let mut queue = mch.receive_queue();
//! let mut seen = Vec::new();
//! while let Some((index, item)) = queue.next().await {
//!     seen.push((index, execnet::from_value::<u32>(item?)?));
//! }
//! seen.sort();
//! assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
//!
//! group.terminate(Some(std::time::Duration::from_secs(2))).await;
//! assert_eq!(group.len(), 0);
//! # Ok::<_, execnet::Error>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod group;
mod multi;

pub use group::Group;
pub use multi::{MultiChannel, ReceiveQueue};
