//! `execnet rsync`: send a directory to gateways.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use execnet::rsync::{Event, RSync, RsyncError, TargetOptions, TargetReport};
use execnet::{Error, Group};

use super::open;
use super::{report, FAILED, OK, USAGE};

const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Redraw the progress line at most this often.
const REDRAW: Duration = Duration::from_millis(100);

/// Send a local directory to one or more gateways (execnet's RSync).
///
/// Each target is a gateway spec and a directory on the gateway's side,
/// `SPEC:DEST`, split at the LAST ':' (specs may contain ':' themselves:
/// `socket=HOST:PORT`, `env:NAME=VALUE`). A relative DEST is relative to the
/// worker's working directory (its chdir=, the home directory over ssh); a
/// leading `~` is the remote user's home. For a DEST with a ':' in it, name
/// the directory with chdir= and give `.` as DEST.
///
/// Files, directories (with their permission bits), symlinks and file times
/// are copied; files that are already there unchanged are not sent again
/// (same size and time, or same SHA-256). All targets are synced at once.
/// On a terminal, a progress line shows on stderr; at the end one line per
/// target says what was sent.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every target is up to date, 1 when a \
    gateway failed to open or a target failed (the cause goes to stderr, prefixed \
    with the gateway id) or a source file could not be read, 2 for a bad command \
    line, a bad spec, or a SRC that is not a readable directory.\n\n\
    Examples:\n  \
    execnet rsync src popen:/tmp/copy\n  \
    execnet rsync --delete project ssh=build-host:work/project\n  \
    execnet rsync -v data 'socket=10.0.0.5:8888//token_file=tok:/srv/data' popen:/tmp/d2\n  \
    execnet rsync src 'popen//chdir=/data/a:b:.'     # DEST with a ':' in it"
)]
pub(super) struct RsyncArgs {
    /// The local directory to send (its contents go into each DEST).
    #[arg(value_name = "SRC")]
    source: PathBuf,
    /// A target: gateway spec, ':', directory there. Repeat for more.
    #[arg(value_name = "SPEC:DEST", required = true)]
    targets: Vec<String>,
    /// Remove what SRC does not have from each DEST.
    #[arg(long)]
    delete: bool,
    /// Print each file as it is sent: `ID <= PATH`.
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// Split `SPEC:DEST` at the last ':'.
fn split_target(target: &str) -> Result<(&str, &str), String> {
    match target.rsplit_once(':') {
        None => Err(format!(
            "target {target:?} is not SPEC:DEST (e.g. popen:/tmp/copy, ssh=host:work)"
        )),
        Some(("", _)) => Err(format!("target {target:?} has no gateway spec before ':'")),
        Some((_, "")) => Err(format!(
            "target {target:?} has no directory after the last ':' \
             (SPEC:. is the worker's working directory)"
        )),
        Some(split) => Ok(split),
    }
}

pub(super) fn run(args: RsyncArgs) -> u8 {
    match std::fs::metadata(&args.source) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            eprintln!(
                "execnet rsync: {} is not a directory",
                args.source.display()
            );
            return USAGE;
        }
        Err(e) => {
            eprintln!("execnet rsync: cannot read {}: {e}", args.source.display());
            return USAGE;
        }
    }
    let mut specs = Vec::new();
    let mut dests = Vec::new();
    for target in &args.targets {
        match split_target(target) {
            Ok((spec, dest)) => {
                specs.push(spec.to_string());
                dests.push(PathBuf::from(dest));
            }
            Err(message) => {
                eprintln!("execnet rsync: {message}");
                return USAGE;
            }
        }
    }
    let Some(planned) = open::plan_or_report(specs) else {
        return USAGE;
    };
    futures_lite::future::block_on(rsync(planned, dests, &args))
}

async fn rsync(planned: Vec<open::Planned>, dests: Vec<PathBuf>, args: &RsyncArgs) -> u8 {
    let group = Group::with_options(open::options());
    let opened = open::open_all(&group, planned).await;
    let output = Arc::new(Mutex::new(Output::new(opened.len(), args)));
    let mut rsync = RSync::new(&args.source);
    {
        let output = output.clone();
        rsync = rsync.callback(move |event| {
            lock(&output).event(&event);
            Ok(())
        });
    }
    if args.verbose {
        let output = output.clone();
        rsync = rsync.on_send_file(move |gw, path| {
            lock(&output).line(&format!("{} <= {}", gw.id(), path.display()));
            Ok(())
        });
    }
    let mut failed = false;
    let mut targets = 0;
    for (o, dest) in opened.iter().zip(&dests) {
        let added = match &o.gateway {
            Ok(gateway) => {
                let options = TargetOptions::new().delete(args.delete);
                rsync
                    .add_target(gateway, dest, options)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(open::describe_failure(o, e)),
        };
        match added {
            Ok(()) => targets += 1,
            Err(message) => {
                report(&o.id, &message);
                failed = true;
            }
        }
    }
    lock(&output).targets = targets;
    if targets > 0 {
        let sent = rsync.send().await;
        lock(&output).clear();
        let (completed, incomplete) = match sent {
            Ok(report) => (report, None),
            Err(RsyncError::Incomplete(incomplete)) => {
                (incomplete.report.clone(), Some(incomplete))
            }
            Err(e) => {
                eprintln!("execnet rsync: {e}");
                failed = true;
                Default::default()
            }
        };
        if !args.quiet {
            for target in &completed.targets {
                lock(&output).line(&summary(target, completed.files, args.delete));
            }
        }
        if let Some(incomplete) = incomplete {
            failed = true;
            for target in &incomplete.failed {
                let dest = target.dest_dir().display();
                let message = match target.error() {
                    // The traceback's last line says what went wrong.
                    Some(Error::Remote(remote)) => {
                        format!("rsync to {dest} failed:\n{}", remote.formatted())
                    }
                    Some(error) => format!("rsync to {dest} failed: {error}"),
                    None => format!("rsync to {dest} failed: {target}"),
                };
                report(target.gateway(), &message);
            }
            for (path, error) in &incomplete.unreadable {
                eprintln!("execnet rsync: cannot read {}: {error}", path.display());
            }
        }
        for skipped in &completed.skipped {
            if !args.quiet {
                eprintln!(
                    "execnet rsync: skipped {} (not a file, directory or symlink)",
                    args.source.join(skipped).display()
                );
            }
        }
    }
    drop(rsync);
    group.terminate(Some(EXIT_TIMEOUT)).await;
    if failed {
        FAILED
    } else {
        OK
    }
}

fn lock(output: &Mutex<Output>) -> std::sync::MutexGuard<'_, Output> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `gw0 -> /tmp/copy: 12 of 1000 files sent (3.4 MiB), 2 deleted`.
fn summary(target: &TargetReport, files: usize, delete: bool) -> String {
    let mut line = format!(
        "{} -> {}: {} of {files} files sent ({})",
        target.gateway,
        target.dest_dir.display(),
        target.files_sent,
        human(target.bytes_sent)
    );
    if delete {
        line.push_str(&format!(", {} deleted", target.deleted));
    }
    line
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Lines on stdout and, on a terminal, the progress line on stderr.
struct Output {
    progress: bool,
    targets: usize,
    listed: usize,
    files: u64,
    files_done: u64,
    bytes: u64,
    bytes_done: u64,
    drawn: Option<Instant>,
}

impl Output {
    fn new(targets: usize, args: &RsyncArgs) -> Output {
        Output {
            progress: !args.quiet && std::io::stderr().is_terminal(),
            targets,
            listed: 0,
            files: 0,
            files_done: 0,
            bytes: 0,
            bytes_done: 0,
            drawn: None,
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        match *event {
            Event::List { files, bytes, .. } => {
                self.listed += 1;
                self.files += files;
                self.bytes += bytes;
            }
            Event::Ack { .. } => self.files_done += 1,
            Event::Sent { bytes, .. } => self.bytes_done += bytes,
            _ => {}
        }
        if self.drawn.is_none_or(|at| at.elapsed() >= REDRAW) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        if !self.progress {
            return;
        }
        let line = if self.listed < self.targets {
            format!(
                "rsync: comparing ({}/{} targets), {} sent",
                self.listed,
                self.targets,
                human(self.bytes_done)
            )
        } else {
            format!(
                "rsync: {}/{} files, {} of {}",
                self.files_done,
                self.files,
                human(self.bytes_done),
                human(self.bytes)
            )
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{line}");
        let _ = stderr.flush();
        self.drawn = Some(Instant::now());
    }

    /// Take the progress line away.
    fn clear(&mut self) {
        if self.progress && self.drawn.is_some() {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.drawn = None;
        }
    }

    /// A line on stdout, under the progress line.
    fn line(&mut self, text: &str) {
        let redraw = self.drawn.is_some();
        self.clear();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
        if redraw {
            self.draw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_last_colon() {
        assert_eq!(split_target("popen:/tmp/x"), Ok(("popen", "/tmp/x")));
        assert_eq!(
            split_target("socket=127.0.0.1:8888:dest"),
            Ok(("socket=127.0.0.1:8888", "dest"))
        );
        assert_eq!(
            split_target("popen//env:A=1:/d"),
            Ok(("popen//env:A=1", "/d"))
        );
        assert_eq!(
            split_target("popen//chdir=/a:b:."),
            Ok(("popen//chdir=/a:b", "."))
        );
        assert!(split_target("popen").unwrap_err().contains("SPEC:DEST"));
        assert!(split_target("popen:").unwrap_err().contains("no directory"));
        assert!(split_target(":/x").unwrap_err().contains("no gateway spec"));
    }

    #[test]
    fn sizes_read_like_a_human_wrote_them() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(100 << 20), "100.0 MiB");
    }
}
