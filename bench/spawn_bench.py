"""Spawner workloads, ours against Python execnet in one run, alternating,
medians. Each sample of a "fresh" workload is a new process, so ours starts
its place's spawner cold every time (as a user's program does), and
execnet's interpreter has execnet imported before the clock starts.

    python spawn_bench.py EXECNET_BIN SPEC [--repeats 5] [--big]

Prints one JSON object:
  fresh_group8_ms / execnet_group8_threads_ms   Group of 8 in a fresh process,
        one result each (execnet opens its 8 from threads)
  next_gateway_ms / execnet_startup_ms          a further gateway to a warm
        place (ours) against one execnet start (open + first result)
  rtt_us, bulk_to_mib_s, bulk_from_mib_s  and  direct_*   a forked gateway
        against a directly started one (spawn=direct), both open in one
        process and measured in turns
  with --big: big8_ms, big32_ms, big64_ms (ours, fresh process), failed8/32/64,
        stderr_lines (what our 32/64 runs printed to stderr: ssh noise)
"""

import json
import os
import statistics
import subprocess
import sys

EXECNET_GROUP = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import execnet
spec, n = sys.argv[1], int(sys.argv[2])
group = execnet.Group()
start = time.perf_counter()
with ThreadPoolExecutor(n) as pool:
    list(pool.map(lambda _: group.makegateway(spec), range(n)))
group.remote_exec("channel.send(1)").receive_each()
took = (time.perf_counter() - start) * 1000
group.terminate(timeout=10)
print(json.dumps({"ms": took}))
"""

EXECNET_START = r"""
import json, sys, time
import execnet
spec = sys.argv[1]
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    gw = execnet.makegateway(spec)
    gw.remote_exec("channel.send(1)").receive()
    times.append((time.perf_counter() - start) * 1000)
    gw.exit()
times.sort()
print(json.dumps({"ms": times[len(times) // 2]}))
"""


def run_json(argv, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0 and not p.stdout.strip():
        sys.stderr.write("spawn_bench: %s failed:\n%s\n" % (argv[:3], p.stderr.decode()))
        raise SystemExit(1)
    return json.loads(p.stdout.decode().strip().splitlines()[-1]), p.stderr.decode()


def main():
    ours, spec = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 5
    big = "--big" in sys.argv
    py = sys.executable
    env = dict(os.environ, EXECNET_RS="0")
    samples = {}

    def add(key, value):
        samples.setdefault(key, []).append(value)

    def progress(what):
        sys.stderr.write("spawn bench: %s\n" % what)
        sys.stderr.flush()

    progress("group of 8 in a fresh process")
    for _ in range(reps):
        add("fresh_group8_ms", run_json([ours, "bench", "--spec", spec, "--group-once", "8"])[0]["ms"])
        add("execnet_group8_threads_ms", run_json([py, "-c", EXECNET_GROUP, spec, "8"], env)[0]["ms"])
    progress("next gateway to a warm place")
    for _ in range(reps):
        add("next_gateway_ms", run_json([ours, "bench", "--spec", spec, "--next-gateways", "7"])[0]["ms"])
        add("execnet_startup_ms", run_json([py, "-c", EXECNET_START, spec, "3"], env)[0]["ms"])
    progress("forked against direct: round trip and bulk")
    # both open in one process, measured in turns (execnet bench
    # --fork-vs-direct): separate runs differ by more than the two do
    got = run_json([ours, "bench", "--spec", spec, "--fork-vs-direct", "--repeats", str(reps)])[0]
    out = {k: statistics.median(v) for k, v in samples.items()}
    out.update(got)
    if big:
        progress("32 and 64 gateways")
        lines = 0
        for n in (8, 32, 64):
            for _ in range(max(1, reps // 2)):
                got, err = run_json([ours, "bench", "--spec", spec, "--group-once", str(n)])
                add("big%d_ms" % n, got["ms"])
                add("failed%d" % n, got["failed"])
                lines += len([l for l in err.splitlines() if l.strip()])
        for n in (8, 32, 64):
            out["big%d_ms" % n] = statistics.median(samples["big%d_ms" % n])
            out["failed%d" % n] = max(samples["failed%d" % n])
        out["stderr_lines"] = lines
    print(json.dumps(out))


if __name__ == "__main__":
    main()
