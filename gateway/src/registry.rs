//! Which channels the application holds handles of, and which deliver their
//! items to a callback: the handles' bookkeeping, kept apart from the driver.
//!
//! Lock order: the driver's state first, then the registry (never the other
//! way round); several operations need both, e.g. receiving an item that
//! carries channels attaches handles for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::channel::ChannelInner;

/// What a channel's callback is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callback {
    /// It consumes the channel's items; `receive` is refused.
    Running,
    /// It has seen the end of the channel (and the endmarker went out).
    Finished,
}

#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Entries>,
}

#[derive(Default)]
pub(crate) struct Entries {
    /// The live handle of each channel the application holds.
    handles: HashMap<u32, Weak<ChannelInner>>,
    /// Channels whose items go to a callback.
    callbacks: HashMap<u32, Callback>,
}

impl Registry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    /// The live handle of channel `id`, if the application holds one.
    pub(crate) fn handle(&self, id: u32) -> Option<Arc<ChannelInner>> {
        self.handles.get(&id).and_then(Weak::upgrade)
    }

    /// Register `handle` as the live handle of channel `id`.
    pub(crate) fn insert(&mut self, id: u32, handle: &Arc<ChannelInner>) {
        self.handles.insert(id, Arc::downgrade(handle));
    }

    /// Forget the handle of `id` if it is `handle` (a newer handle for the
    /// same id may have replaced it while its count dropped to zero);
    /// whether it was.
    pub(crate) fn remove_if(&mut self, id: u32, handle: *const ChannelInner) -> bool {
        let ours = self
            .handles
            .get(&id)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), handle));
        if ours {
            self.handles.remove(&id);
        }
        ours
    }

    /// Whether no live handle of `id` is left.
    pub(crate) fn is_released(&self, id: u32) -> bool {
        self.handles.get(&id).is_none_or(|w| w.strong_count() == 0)
    }

    /// The callback state of `id`, if a callback was set.
    pub(crate) fn callback(&self, id: u32) -> Option<Callback> {
        self.callbacks.get(&id).copied()
    }

    pub(crate) fn set_callback(&mut self, id: u32, state: Callback) {
        self.callbacks.insert(id, state);
    }

    pub(crate) fn forget_callback(&mut self, id: u32) {
        self.callbacks.remove(&id);
    }
}
