"""The standard workloads through Python's execnet, for side-by-side figures.

Runs the same remote snippets as `execnet bench` (execnet/src/cli/workloads.rs) and
prints one JSON object with the same keys. Usage:

    python execnet_bench.py [--python /usr/bin/python3] [--repeats 5]
"""

import argparse
import json
import statistics
import sys
import time

import execnet

ECHO = "for item in channel:\n    channel.send(item)\n"
SEND_INTS = "n = channel.receive()\nfor i in range(n):\n    channel.send(i)\n"
COUNT_ITEMS = ("n = 0\nwhile True:\n    x = channel.receive()\n    if x is None:\n"
               "        break\n    n += 1\nchannel.send(n)\n")
SEND_BULK = ("n = channel.receive()\ndata = b'x' * 1048576\nfor i in range(n):\n"
             "    channel.send(data)\n")
COUNT_BYTES = ("n = 0\nwhile True:\n    x = channel.receive()\n    if x is None:\n"
               "        break\n    n += len(x)\nchannel.send(n)\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--round-trips", type=int, default=1000)
    ap.add_argument("--small-items", type=int, default=10000)
    ap.add_argument("--bulk-mib", type=int, default=100)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--spec", default=None, help="gateway spec (default popen//python=PYTHON)")
    args = ap.parse_args()
    spec = args.spec or "popen//python=%s" % args.python
    reps = max(1, args.repeats)
    out = {}

    def progress(what):
        sys.stderr.write("execnet (python): %s\n" % what)
        sys.stderr.flush()

    progress("startup")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        gw = execnet.makegateway(spec)
        ch = gw.remote_exec("channel.send(1)")
        ch.receive()
        times.append((time.perf_counter() - start) * 1000)
        gw.exit()
    out["startup_ms"] = statistics.median(times)

    gw = execnet.makegateway(spec)
    progress("round trip")
    rtts = []
    for _ in range(reps):
        ch = gw.remote_exec(ECHO)
        ch.send(0)
        ch.receive()
        for i in range(args.round_trips):
            start = time.perf_counter()
            ch.send(i)
            ch.receive()
            rtts.append((time.perf_counter() - start) * 1e6)
        ch.close()
    out["rtt_us"] = statistics.median(rtts)

    progress("small messages")
    to, frm = [], []
    for _ in range(reps):
        ch = gw.remote_exec(COUNT_ITEMS)
        start = time.perf_counter()
        for i in range(args.small_items):
            ch.send(i)
        ch.send(None)
        n = ch.receive()
        to.append(n / (time.perf_counter() - start))
        ch = gw.remote_exec(SEND_INTS)
        start = time.perf_counter()
        ch.send(args.small_items)
        for _ in range(args.small_items):
            ch.receive()
        frm.append(args.small_items / (time.perf_counter() - start))
    out["small_to_per_s"] = statistics.median(to)
    out["small_from_per_s"] = statistics.median(frm)

    progress("bulk")
    to, frm = [], []
    data = b"x" * 1048576
    for _ in range(reps):
        ch = gw.remote_exec(COUNT_BYTES)
        start = time.perf_counter()
        for _ in range(args.bulk_mib):
            ch.send(data)
        ch.send(None)
        n = ch.receive()
        to.append((n >> 20) / (time.perf_counter() - start))
        ch = gw.remote_exec(SEND_BULK)
        start = time.perf_counter()
        ch.send(args.bulk_mib)
        for _ in range(args.bulk_mib):
            ch.receive()
        frm.append(args.bulk_mib / (time.perf_counter() - start))
    out["bulk_to_mib_s"] = statistics.median(to)
    out["bulk_from_mib_s"] = statistics.median(frm)
    gw.exit()

    progress("group")
    starts, terms = [], []
    for _ in range(reps):
        group = execnet.Group()
        start = time.perf_counter()
        for _ in range(args.group_size):
            group.makegateway(spec)
        mch = group.remote_exec("channel.send(1)")
        mch.receive_each()
        starts.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        group.terminate(timeout=10)
        terms.append((time.perf_counter() - start) * 1000)
    out["group8_start_ms"] = statistics.median(starts)
    out["group8_terminate_ms"] = statistics.median(terms)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
