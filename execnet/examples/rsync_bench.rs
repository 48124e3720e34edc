//! The rsync workloads of `bench/rsync/compare.sh` through our engine:
//! for each tree, the first send into an empty directory, a send with
//! nothing changed, and a send after every source file was touched (same
//! contents, new times: settled by checksums). Prints one JSON object with
//! the median seconds of each.
//!
//! ```sh
//! python3 bench/rsync/trees.py /tmp/trees
//! cargo run --release -p execnet --example rsync_bench -- --trees /tmp/trees
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use execnet::blocking::{Gateway, RSync};
use execnet::rsync::TargetOptions;

const WORKLOADS: [(&str, &str); 3] = [
    ("1,000 files, 100 MiB", "many"),
    ("10,000 files of 1 KiB", "small"),
    ("1 file of 100 MiB", "big"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut trees = None;
    let mut python = "python3".to_string();
    let mut repeats = 3usize;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trees" => trees = args.next().map(PathBuf::from),
            "--python" => python = args.next().ok_or("--python needs a value")?,
            "--repeats" => repeats = args.next().ok_or("--repeats needs a value")?.parse()?,
            "--only" => only = args.next(),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let trees = trees.ok_or("--trees DIR is required (make it with bench/rsync/trees.py)")?;
    let gw = Gateway::open(&format!("popen//python={python}"))?;
    let scratch = std::env::temp_dir().join(format!("execnet-rsync-bench-{}", std::process::id()));
    let sync = |src: &Path, dest: &Path| -> Result<f64, Box<dyn std::error::Error>> {
        let mut rsync = RSync::new(src);
        rsync.add_target(&gw, dest, TargetOptions::new())?;
        let start = Instant::now();
        rsync.send()?;
        Ok(start.elapsed().as_secs_f64())
    };
    let mut stamp = 1_600_000_000u64;
    let mut out = Vec::new();
    for (name, sub) in WORKLOADS {
        if only.as_ref().is_some_and(|o| o != sub) {
            continue;
        }
        let src = trees.join(sub);
        let dest = scratch.join(sub);
        let (mut first, mut unchanged, mut touched) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            let _ = std::fs::remove_dir_all(&dest);
            first.push(sync(&src, &dest)?);
        }
        for _ in 0..repeats {
            unchanged.push(sync(&src, &dest)?);
        }
        for _ in 0..repeats {
            stamp += 1;
            touch_all(&src, SystemTime::UNIX_EPOCH + Duration::from_secs(stamp))?;
            touched.push(sync(&src, &dest)?);
        }
        out.push(format!(
            "\"{name}\": {{\"first\": {}, \"unchanged\": {}, \"touched\": {}}}",
            median(first),
            median(unchanged),
            median(touched)
        ));
    }
    gw.exit()?;
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "{{\"impl\": \"execnet-rs {}\", \"workloads\": {{{}}}}}",
        env!("CARGO_PKG_VERSION"),
        out.join(", ")
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn touch_all(dir: &Path, time: SystemTime) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            touch_all(&entry.path(), time)?;
        } else {
            std::fs::File::options()
                .write(true)
                .open(entry.path())?
                .set_times(std::fs::FileTimes::new().set_modified(time))?;
        }
    }
    Ok(())
}
