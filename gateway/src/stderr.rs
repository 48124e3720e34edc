//! The worker's stderr, once the worker runs: forwarded to ours with every
//! line prefixed by the gateway id, or logged (`Options::forward_stderr`).
//! What it said before the worker's hello (an ssh banner, a Python that
//! would not start) is never forwarded: it is quoted in the error when the
//! start fails, and logged at warn level when the start succeeds.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use execnet_transport::{BoxedReader, StderrTail};

use crate::runtime;

/// The log target of the worker's stderr lines (when not forwarded) and of
/// what it said before it started.
pub(crate) const TARGET: &str = "execnet_gateway::stderr";

/// The most kept of one line without its end (longer ones go out in
/// pieces), and of what came before the start.
const MAX_PENDING: usize = 8 * 1024;

/// Splits the worker's stderr into lines and sends each where the options
/// say. Cheap to clone (the pump and the opener share it).
#[derive(Clone)]
pub(crate) struct StderrLines {
    inner: Arc<Mutex<Lines>>,
}

struct Lines {
    id: String,
    forward: bool,
    started: bool,
    /// What came before the start (its tail).
    early: Vec<u8>,
    /// The current line, not yet ended.
    partial: Vec<u8>,
}

impl StderrLines {
    /// For gateway `id`; `forward`: write the lines to our stderr (else log
    /// them at info level under [`TARGET`]).
    pub(crate) fn new(id: &str, forward: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Lines {
                id: id.to_string(),
                forward,
                started: false,
                early: Vec::new(),
                partial: Vec::new(),
            })),
        }
    }

    /// Lines for gateway `id` fed by a background pump of `stderr` (when the
    /// connection has one), which also keeps `tail`, the bytes quoted when
    /// the start fails.
    pub(crate) fn pumped(
        id: &str,
        forward: bool,
        stderr: Option<BoxedReader>,
        tail: &StderrTail,
    ) -> Self {
        let lines = Self::new(id, forward);
        if let Some(stderr) = stderr {
            let (tail, fed) = (tail.clone(), lines.clone());
            runtime::detach(async move {
                tail.pump(stderr, |bytes| fed.feed(bytes)).await;
                fed.finish();
            });
        }
        lines
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes the worker wrote to its stderr.
    pub(crate) fn feed(&self, bytes: &[u8]) {
        let mut lines = self.lock();
        if !lines.started {
            lines.early.extend_from_slice(bytes);
            let excess = lines.early.len().saturating_sub(MAX_PENDING);
            lines.early.drain(..excess);
            return;
        }
        lines.partial.extend_from_slice(bytes);
        let mut start = 0;
        let whole: Vec<u8> = std::mem::take(&mut lines.partial);
        for (i, b) in whole.iter().enumerate() {
            if *b == b'\n' {
                lines.emit(&whole[start..i]);
                start = i + 1;
            }
        }
        let rest = &whole[start..];
        if rest.len() > MAX_PENDING {
            lines.emit(rest);
        } else {
            lines.partial = rest.to_vec();
        }
    }

    /// The worker said hello: from now on its lines go out. What it said
    /// before is logged (once) at warn level.
    pub(crate) fn started(&self) {
        let mut lines = self.lock();
        lines.started = true;
        let early = std::mem::take(&mut lines.early);
        let text = String::from_utf8_lossy(&early);
        let text = text.trim();
        if !text.is_empty() {
            log::warn!(
                target: TARGET,
                "{}: while the worker started, its stderr said:\n{text}",
                lines.id
            );
        }
    }

    /// The stream ended: a last line without its end goes out too.
    pub(crate) fn finish(&self) {
        let mut lines = self.lock();
        let rest = std::mem::take(&mut lines.partial);
        if lines.started && !rest.is_empty() {
            lines.emit(&rest);
        }
    }
}

impl Lines {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if self.forward {
            // The one write to the terminal the library makes, on the user's
            // say-so (the default, as execnet's workers share our stderr):
            // remote code's own output, marked with its gateway.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "[{}] {line}", self.id);
        } else {
            log::info!(target: TARGET, "{}: {line}", self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_before_the_start_are_held_back_and_long_lines_split() {
        let lines = StderrLines::new("gw0", false);
        lines.feed(b"ssh banner\n");
        assert_eq!(lines.lock().early, b"ssh banner\n");
        lines.started();
        assert!(lines.lock().early.is_empty());
        lines.feed(b"one\ntw");
        assert_eq!(lines.lock().partial, b"tw");
        lines.feed(b"o\n");
        assert!(lines.lock().partial.is_empty());
        lines.feed(&vec![b'x'; MAX_PENDING + 1]);
        assert!(lines.lock().partial.is_empty(), "a long line goes out");
        lines.feed(&vec![b'y'; 3 * MAX_PENDING]);
        lines.finish();
        assert!(lines.lock().partial.is_empty());
        // Before the start, only the tail is kept.
        let early = StderrLines::new("gw1", false);
        early.feed(&vec![b'z'; 3 * MAX_PENDING]);
        assert_eq!(early.lock().early.len(), MAX_PENDING);
    }
}
