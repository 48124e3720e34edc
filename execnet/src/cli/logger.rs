//! The command line's logger: the library says what it has to say through
//! the `log` facade; this writes it to stderr, one record per line (a record
//! of several lines keeps them).
//!
//! `exec`, `rinfo` and the rest show warnings and errors; `serve` shows its
//! info lines too (who was refused, and why). `EXECNET_LOG=LEVEL` (`off`,
//! `error`, `warn`, `info`, `debug`, `trace`) says otherwise.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr {
    prefix: &'static str,
}

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug => "debug: ",
            Level::Trace => "trace: ",
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}: {level}{}", self.prefix, record.args());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Install the logger: records at `default` and above (or at
/// `EXECNET_LOG`'s level) go to stderr, each line prefixed with `prefix`.
pub fn init(prefix: &'static str, default: LevelFilter) {
    let level = std::env::var("EXECNET_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(default);
    let logger: &'static Stderr = Box::leak(Box::new(Stderr { prefix }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
