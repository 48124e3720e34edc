//! The commands of the `execnet` binary. Private to the binary: the library
//! exposes none of this.

mod bench;
mod exec;
mod json;
mod logger;
mod open;
mod rinfo;
mod rsync;
mod serve;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit code: every gateway opened and no remote code raised.
const OK: u8 = 0;
/// Exit code: remote code raised, or a gateway failed to open or died.
const FAILED: u8 = 1;
/// Exit code: bad command line (clap's own code for usage errors), bad spec,
/// unreadable FILE.
const USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "execnet",
    version,
    about = "Run Python code in fresh interpreters (local, ssh, socket) and see what it sends back.",
    after_help = "Examples:\n  \
        execnet exec -c \"import platform; channel.send(platform.python_version())\"\n  \
        execnet exec -n 4 -c \"import os; channel.send(os.getpid())\"\n  \
        execnet rinfo popen popen//python=python3.12\n  \
        execnet rsync src popen:/tmp/copy ssh=build-host:work"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Exec(ExecArgs),
    Rinfo(RinfoArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Rsync(rsync::RsyncArgs),
}

/// Run Python code on one or more gateways and print what each sends.
///
/// The code sees the name `channel` (execnet's channel API); every item it
/// sends is printed as it arrives, one line per item: `ID: REPR`, with REPR
/// as Python's repr() writes it (or a JSON line with --json). A remote
/// traceback, or why a gateway could not be opened, goes to stderr with
/// every line prefixed by the gateway id.
#[derive(Debug, Args)]
#[command(
    after_help = "JSON lines (--json): {\"gateway\": \"gw0\", \"item\": ITEM} with ITEM as \
    None null, bool, int as an exact JSON number (any size), float as a number \
    (NaN, inf as the strings \"NaN\", \"Infinity\", \"-Infinity\"), complex as \
    {\"real\": x, \"imag\": y}, str as a string, bytes as an array of byte values, \
    list/tuple/set/frozenset as arrays, dict as an object when every key is a str, \
    else as an array of [key, value] pairs, a channel as {\"channel\": ID}.\n\n\
    Exit status: 0 when all went well, 1 when remote code raised or a gateway \
    failed to open or died, 2 for a bad command line, a bad spec, or an \
    unreadable FILE.\n\n\
    Examples:\n  \
    execnet exec -c \"import sys; channel.send(sys.version_info[:2])\"\n  \
    execnet exec -n 8 -c \"import os; channel.send(os.getpid())\"\n  \
    execnet exec --gw popen//python=python3.11 --gw popen//id=other script.py\n  \
    execnet exec --json -c \"channel.send({'answer': 42})\""
)]
struct ExecArgs {
    /// A gateway spec (e.g. `popen`, `popen//python=python3.12//chdir=/tmp`,
    /// `ssh=host`); repeat for more gateways. Specs may refer to earlier ones
    /// (via=, installvia=).
    #[arg(long = "gw", value_name = "SPEC")]
    specs: Vec<String>,
    /// Also open N popen gateways (default: one popen gateway when no --gw is given).
    #[arg(short = 'n', value_name = "N")]
    popen: Option<usize>,
    /// The Python code to run.
    #[arg(
        short = 'c',
        value_name = "CODE",
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    code: Option<String>,
    /// A file with the Python code to run.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print JSON lines `{"gateway": ID, "item": ITEM}` instead of `ID: REPR`.
    #[arg(long)]
    json: bool,
}

/// Print facts about the interpreters behind gateway specs.
///
/// For each gateway: the spec, then the interpreter's executable, version,
/// platform, working directory and process id.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every gateway answered, 1 when one failed, \
    2 for a bad spec.\n\n\
    Examples:\n  \
    execnet rinfo\n  \
    execnet rinfo popen//python=python3.11 ssh=build-host\n  \
    execnet rinfo --json popen popen//chdir=/tmp"
)]
struct RinfoArgs {
    /// Gateway specs (default: `popen`).
    #[arg(value_name = "SPEC")]
    specs: Vec<String>,
    /// Print one JSON object per gateway and line:
    /// `{"gateway", "spec", "executable", "version", "platform", "cwd", "pid"}`.
    #[arg(long)]
    json: bool,
}

/// Parse the command line and run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(_) => logger::init("execnet serve", log::LevelFilter::Info),
        _ => logger::init("execnet", log::LevelFilter::Warn),
    }
    let code = match cli.command {
        Command::Exec(args) => exec::run(args),
        Command::Rinfo(args) => rinfo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Rsync(args) => rsync::run(args),
    };
    ExitCode::from(code)
}

/// Prefix every line of `text` with `id: ` and write it to stderr.
fn report(id: &str, text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for line in text.trim_end().lines() {
        let _ = writeln!(stderr, "{id}: {line}");
    }
}
