//! The library's own background executor.
//!
//! Every gateway needs a task that moves bytes between its transport and its
//! session, whatever executor (if any) the user runs. Those tasks run on one
//! process-wide thread driving an `async-executor` with the `async-io`
//! reactor, started on first use. User futures only wait on events that these
//! tasks signal, so the library works under tokio, smol, `block_on`, or plain
//! threads alike.

use std::future::Future;
use std::sync::OnceLock;

use async_executor::{Executor, Task};

static EXECUTOR: OnceLock<Executor<'static>> = OnceLock::new();

fn executor() -> &'static Executor<'static> {
    EXECUTOR.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("execnet-driver".into())
            .spawn(|| {
                let ex = executor();
                async_io::block_on(ex.run(std::future::pending::<()>()));
            });
        if let Err(e) = started {
            // Without a driver thread nothing can work; say so loudly.
            eprintln!("execnet: cannot start the driver thread: {e}");
        }
        Executor::new()
    })
}

/// Run `future` in the background on the driver thread.
pub(crate) fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    executor().spawn(future)
}

/// Run `future` in the background and forget its handle.
pub(crate) fn detach<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    spawn(future).detach();
}
