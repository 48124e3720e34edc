use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use futures_lite::AsyncReadExt;

use crate::BoxedReader;

/// How many bytes of stderr a [`StderrTail`] keeps.
const TAIL_BYTES: usize = 8 * 1024;

/// The last few KiB of a process's stderr, shared between the task that pumps
/// it and whoever needs to quote it in an error message.
///
/// # Examples
///
/// ```
/// # mod execnet { pub mod transport { pub use execnet_transport::*; } }
/// # futures_lite::future::block_on(async {
/// use execnet::transport::{BoxedReader, StderrTail};
///
/// let tail = StderrTail::new();
/// let stderr: BoxedReader = Box::pin(futures_lite::io::Cursor::new(b"Traceback...\nValueError: 42\n".to_vec()));
/// let mut seen = Vec::new();
/// tail.clone().pump(stderr, |bytes| seen.extend_from_slice(bytes)).await;
/// assert!(tail.is_finished());
/// assert_eq!(seen, b"Traceback...\nValueError: 42\n");
/// assert_eq!(tail.text(), "Traceback...\nValueError: 42");
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct StderrTail {
    inner: Arc<Mutex<TailState>>,
}

#[derive(Debug, Default)]
struct TailState {
    bytes: VecDeque<u8>,
    finished: bool,
}

impl StderrTail {
    /// An empty tail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes, dropping the oldest beyond the limit.
    pub fn push(&self, bytes: &[u8]) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state.bytes.extend(bytes);
        let excess = state.bytes.len().saturating_sub(TAIL_BYTES);
        state.bytes.drain(..excess);
    }

    /// The kept bytes as (lossy) text, trimmed.
    pub fn text(&self) -> String {
        let state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = state.bytes.as_slices();
        let mut all = Vec::with_capacity(a.len() + b.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        String::from_utf8_lossy(&all).trim().to_string()
    }

    /// Whether the stderr stream has ended (the pump saw EOF).
    pub fn is_finished(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished
    }

    /// Read `stderr` to its end, keeping the tail and handing every chunk
    /// read to `on_output` as well (the gateway decides what becomes of
    /// remote `print()` output; nothing here writes to the terminal). Run it
    /// as a task; it ends when the process closes its stderr.
    pub async fn pump(self, mut stderr: BoxedReader, mut on_output: impl FnMut(&[u8])) {
        let mut buf = vec![0u8; 8192];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.push(&buf[..n]);
                    on_output(&buf[..n]);
                }
            }
        }
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail() {
        let tail = StderrTail::new();
        tail.push(&vec![b'a'; TAIL_BYTES]);
        tail.push(b"the end");
        let text = tail.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("the end"));
    }

    #[test]
    fn pump_collects_until_eof() {
        let tail = StderrTail::new();
        let data: BoxedReader = Box::pin(futures_lite::io::Cursor::new(b"  oops\n".to_vec()));
        futures_lite::future::block_on(tail.clone().pump(data, |_| {}));
        assert!(tail.is_finished());
        assert_eq!(tail.text(), "oops");
    }
}
