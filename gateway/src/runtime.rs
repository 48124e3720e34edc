//! The library's own background executor, and the timed waits built on the
//! `async-io` timer.
//!
//! Every gateway needs tasks that move bytes between its transport and its
//! session, whatever executor (if any) the user runs. Those tasks run on one
//! process-wide thread driving an `async-executor` with the `async-io`
//! reactor, started on first use. User futures only wait on events that these
//! tasks signal, so the library works under tokio, smol, `block_on`, or plain
//! threads alike.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_executor::{Executor, Task};
use event_listener::EventListener;

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
            // Without a driver thread no gateway can work: every open then
            // times out (with this cause in the log).
            log::error!("cannot start the execnet driver thread: {e}");
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

/// `future`'s output, or `None` after `limit`.
pub(crate) async fn wait_bounded<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// Wait for `listener`, or until `deadline` if there is one; `false` when
/// the deadline passed first.
pub(crate) async fn wait_until(listener: EventListener, deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            listener.await;
            true
        }
        Some(deadline) => {
            futures_lite::future::or(
                async {
                    listener.await;
                    true
                },
                async {
                    async_io::Timer::at(deadline).await;
                    false
                },
            )
            .await
        }
    }
}
