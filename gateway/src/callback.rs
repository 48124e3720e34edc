//! [`Channel::set_callback`]: a channel's items delivered to a function on a
//! thread of its own, as execnet's `setcallback` does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use event_listener::Event;
use execnet_proto::Recv;
use execnet_wire::{Item, Value};

use crate::channel::{attach_channels, Channel};
use crate::driver::Wakeups;
use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::registry::Callback;

impl Channel {
    /// Deliver every item (those already queued first) to `callback`, on a
    /// library thread; afterwards `receive` fails with `Error::CallbackSet`.
    /// `endmarker`, if given, is delivered once when the channel ends
    /// (closed, errored, or connection lost). A remote error is not
    /// delivered: [`Channel::wait_close`] reports it. A callback that panics
    /// closes the channel with an error, as a raising callback does in
    /// execnet.
    ///
    /// Items arrive as [`Value`]s, each within its budget (see
    /// [`Channel::receive`]); an item that would take more ends the
    /// deliveries as a panicking callback does: the channel is closed with
    /// an error naming the cause, and the endmarker follows.
    ///
    /// # Examples
    ///
    /// ```
    /// # use execnet_gateway as execnet;
    /// use std::sync::mpsc;
    /// use execnet::Value;
    ///
    /// # futures_lite::future::block_on(async {
    /// let gw = execnet::Gateway::open("popen").await?;
    /// let ch = gw.remote_exec("for i in range(3): channel.send(i)").await?;
    /// let (tx, rx) = mpsc::channel();
    /// ch.set_callback(move |item| tx.send(item).unwrap(), Some(Value::Str("end".into())))?;
    /// ch.wait_close(None).await?;
    /// let got: Vec<String> = rx.iter().take(4).map(|v| v.repr()).collect();
    /// assert_eq!(got, ["0", "1", "2", "'end'"]);
    /// # gw.exit().await?;
    /// # Ok::<_, execnet::Error>(()) }).unwrap();
    /// ```
    pub fn set_callback<F>(&self, callback: F, endmarker: Option<Value>) -> Result<()>
    where
        F: FnMut(Value) + Send + 'static,
    {
        let id = self.inner.id;
        let gateway = self.inner.gateway.clone();
        {
            let mut reg = gateway.registry().lock();
            if reg.callback(id).is_some() {
                return Err(Error::CallbackSet(id));
            }
            reg.set_callback(id, Callback::Running);
            // Receives of every handle of this channel are refused from now.
            self.inner.has_callback.store(true, Ordering::Release);
        }
        let event = self.inner.event.clone();
        let thread_gateway = gateway.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("execnet-callback-{id}"))
            .spawn(move || run_callback(thread_gateway, id, event, callback, endmarker));
        if let Err(e) = spawned {
            gateway.registry().lock().forget_callback(id);
            self.inner.has_callback.store(false, Ordering::Release);
            return Err(Error::Io(e));
        }
        Ok(())
    }
}

fn run_callback<F>(
    gateway: Gateway,
    id: u32,
    event: Arc<Event>,
    mut callback: F,
    end: Option<Value>,
) where
    F: FnMut(Value) + Send + 'static,
{
    let driver = gateway.driver().clone();
    // Whatever happens to the callback (even a panic), the channel's
    // callback is marked finished so wait_close never hangs.
    let _finished = CallbackFinished {
        gateway: gateway.clone(),
        id,
        event: event.clone(),
    };
    // As execnet does when a callback raises: close the channel with the
    // error, and deliver nothing more.
    let give_up = |why: &str| {
        let w = {
            let mut st = driver.lock();
            let _ = st.session.close(id, Some(why));
            st.take_wakeups()
        };
        driver.wake(w);
    };
    let mut deliver = |value: Value| -> bool {
        let call = std::panic::AssertUnwindSafe(|| callback(value));
        if std::panic::catch_unwind(call).is_ok() {
            return true;
        }
        give_up("the receiving callback panicked");
        false
    };
    loop {
        let (next, wakeups): (Option<Item>, Wakeups) = {
            let mut st = driver.lock();
            match st.session.recv(id) {
                Recv::Item(mut item) => {
                    let mut reg = None;
                    attach_channels(&gateway, &mut st, &mut reg, &mut item);
                    drop(reg);
                    (Some(item), st.take_wakeups())
                }
                Recv::Empty => {
                    let listener = event.listen();
                    drop(st);
                    futures_lite::future::block_on(listener);
                    continue;
                }
                Recv::Error(_) => {
                    // The callback takes items only: the error stays for
                    // wait_close to report, as in execnet.
                    st.session.restore_remote_error(id);
                    (None, st.take_wakeups())
                }
                Recv::Eof | Recv::Lost(_) => (None, st.take_wakeups()),
            }
        };
        driver.wake(wakeups);
        match next.map(Item::into_value) {
            Some(Ok(value)) => {
                if !deliver(value) {
                    return;
                }
            }
            // A callback takes Values; one this large cannot be made (a
            // peer could make a small frame expand 30-fold).
            Some(Err(e)) => {
                give_up(&format!("the receiving callback cannot take an item: {e}"));
                break;
            }
            None => break,
        }
    }
    if let Some(end) = end {
        deliver(end);
    }
}

/// Marks a channel's callback as finished when dropped (also on unwind).
struct CallbackFinished {
    gateway: Gateway,
    id: u32,
    event: Arc<Event>,
}

impl Drop for CallbackFinished {
    fn drop(&mut self) {
        let driver = self.gateway.driver();
        let w = {
            let mut st = driver.lock();
            let mut reg = self.gateway.registry().lock();
            reg.set_callback(self.id, Callback::Finished);
            if reg.is_released(self.id) {
                st.session.release(self.id, false);
                st.drop_chan_event(self.id);
            }
            st.take_wakeups()
        };
        driver.wake(w);
        self.event.notify(usize::MAX);
    }
}
