"""The rsync workloads through Python execnet's RSync; prints one JSON object
in the shape `cargo run --example rsync_bench` prints."""

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

import execnet

WORKLOADS = [
    ("1,000 files, 100 MiB", "many"),
    ("10,000 files of 1 KiB", "small"),
    ("1 file of 100 MiB", "big"),
]


def files(root):
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield os.path.join(dirpath, name)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trees", required=True)
    p.add_argument("--python", default="python3")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    gw = execnet.makegateway("popen//python=%s" % a.python)
    scratch = tempfile.mkdtemp(prefix="execnet-rsync-bench-py-")

    def sync(src, dest):
        rs = execnet.RSync(src, verbose=False)
        rs.add_target(gw, dest)
        t = time.perf_counter()
        rs.send()
        return time.perf_counter() - t

    results = {}
    stamp = 1_600_000_000
    for name, sub in WORKLOADS:
        src = os.path.join(a.trees, sub)
        dest = os.path.join(scratch, sub)
        first, unchanged, touched = [], [], []
        for _ in range(a.repeats):
            shutil.rmtree(dest, ignore_errors=True)
            first.append(sync(src, dest))
        for _ in range(a.repeats):
            unchanged.append(sync(src, dest))
        for _ in range(a.repeats):
            stamp += 1
            for f in files(src):
                os.utime(f, (stamp, stamp))
            touched.append(sync(src, dest))
        results[name] = {
            "first": statistics.median(first),
            "unchanged": statistics.median(unchanged),
            "touched": statistics.median(touched),
        }
    gw.exit()
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"impl": "execnet %s" % execnet.__version__, "workloads": results}))


if __name__ == "__main__":
    main()
