//! `execnet bench`: the standard workloads, a table or one JSON object.

use std::io::IsTerminal;

use super::workloads::{self as bench, Config};

use clap::Args;

use super::{FAILED, OK};

/// Run the standard workloads and print the figures.
///
/// Startup (open a gateway and get the first result), round trip (one
/// small int through an echo loop), small messages (10,000 ints each way),
/// bulk (100 MiB as 1 MiB bytes items each way), and a group of 8 gateways
/// started and terminated. Figures are medians over --repeats runs. Use a
/// release build (`cargo run --release -p execnet -- bench`);
/// `bench/compare.sh` runs the same workloads through Python execnet too.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    execnet bench\n  \
    execnet bench --spec popen//python=/usr/bin/python3 --json\n  \
    execnet bench --spec ssh=build-host --repeats 3")]
pub(super) struct BenchArgs {
    /// The gateway spec to measure.
    #[arg(long, value_name = "SPEC", default_value = "popen")]
    spec: String,
    /// Runs per workload (figures are medians).
    #[arg(long, value_name = "N", default_value_t = 5)]
    repeats: usize,
    /// Print one JSON object: startup_ms, rtt_us, small_to_per_s,
    /// small_from_per_s, bulk_to_mib_s, bulk_from_mib_s, group8_start_ms,
    /// group8_terminate_ms, and the worker codec figures worker_encode_int_ns,
    /// worker_decode_int_ns, worker_encode_record_ns, worker_decode_record_ns.
    #[arg(long)]
    json: bool,
    /// Spawner workload (bench/spawn_bench.py runs it in a fresh process
    /// each time): open a Group of N gateways at once, one result each;
    /// print {"ms": …, "failed": …}.
    #[arg(long, value_name = "N", hide = true)]
    group_once: Option<usize>,
    /// Spawner workload: with one gateway open, open K more one after
    /// another; print {"ms": median per gateway}.
    #[arg(long, value_name = "K", hide = true)]
    next_gateways: Option<usize>,
    /// Spawner workload: forked and direct gateways measured in turns
    /// (round trip, bulk each way; --repeats rounds); print one JSON object.
    #[arg(long, hide = true)]
    fork_vs_direct: bool,
}

pub(super) fn run(args: BenchArgs) -> u8 {
    if let Some(n) = args.group_once {
        let (ms, failed) = futures_lite::future::block_on(bench::group_once(&args.spec, n));
        println!("{{\"ms\": {ms}, \"failed\": {failed}}}");
        return if failed == 0 { OK } else { FAILED };
    }
    if let Some(k) = args.next_gateways {
        let measured = futures_lite::future::block_on(bench::next_gateways(&args.spec, k));
        return print_json(measured.map(|ms| format!("{{\"ms\": {ms}}}")));
    }
    if args.fork_vs_direct {
        let measured =
            futures_lite::future::block_on(bench::fork_vs_direct(&args.spec, args.repeats));
        return print_json(measured.map(|m| m.to_json()));
    }
    let config = Config {
        spec: args.spec,
        repeats: args.repeats,
        ..Config::default()
    };
    let live = std::io::stderr().is_terminal();
    let progress = |what: &str| {
        if live {
            eprint!("\rexecnet bench: {what}…\x1b[K");
        } else {
            eprintln!("execnet bench: {what}");
        }
    };
    let result = futures_lite::future::block_on(bench::run(&config, progress));
    if live {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("spec: {} (medians of {} runs)", config.spec, config.repeats);
                print!("{}", report.to_table());
            }
            OK
        }
        Err(e) => {
            eprintln!("execnet bench: {e}");
            FAILED
        }
    }
}

/// A spawner workload's JSON on stdout, or its error on stderr.
fn print_json(measured: execnet::Result<String>) -> u8 {
    match measured {
        Ok(json) => {
            println!("{json}");
            OK
        }
        Err(e) => {
            eprintln!("execnet bench: {e}");
            FAILED
        }
    }
}
