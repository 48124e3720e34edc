"""Turn benchmark JSON objects (ours, Python execnet's) into bench/RESULTS.md
and bench/ratios.svg.

Usage: report.py OURS.json EXECNET.json META [OURS_SSH.json EXECNET_SSH.json]
                 [--python OURS_PY.json EXECNET_PY.json PY_META]
                 [--spawn SPAWN.json [SPAWN_SSH.json]]   (last)
"""

import json
import sys
import platform
import datetime

# key, label, unit, higher is better, goal (ratio ours/execnet as "speed-up")
ROWS = [
    ("startup_ms", "startup (open + first result)", "ms", False, 2.0),
    ("rtt_us", "round trip", "µs", False, 2.0),
    ("small_to_per_s", "small messages to worker", "items/s", True, 3.0),
    ("small_from_per_s", "small messages from worker", "items/s", True, 3.0),
    ("bulk_to_mib_s", "bulk to worker", "MiB/s", True, 3.0),
    ("bulk_from_mib_s", "bulk from worker", "MiB/s", True, 3.0),
    ("group8_start_ms", "8 gateways: start + one result", "ms", False, 3.0),
    ("group8_terminate_ms", "8 gateways: terminate", "ms", False, 1.0),
]


def speedup(key, ours, theirs, higher):
    if not ours or not theirs:
        return 0.0
    return ours / theirs if higher else theirs / ours


# The worker's codec micro-benchmark (ours only).
CODEC = [
    ("worker_encode_int_ns", "encode a small int"),
    ("worker_decode_int_ns", "decode a small int"),
    ("worker_encode_record_ns", "encode a record (dict of six fields)"),
    ("worker_decode_record_ns", "decode that record"),
]


# The goals of the Python package issue (the same workloads, from Python).
PY_GOALS = {"startup_ms": 2.0, "small_to_per_s": 3.0, "small_from_per_s": 3.0}


def spawner_section(local, ssh):
    """The spawner's figures (bench/spawn_bench.py): ours against Python
    execnet where it has a counterpart, the issue's goals beside them."""
    lines = [
        "",
        "## Spawner",
        "",
        "Gateways forked from one warm interpreter per place (README, "
        "\"Spawner\"), measured by `bench/spawn_bench.py` in the same run, "
        "ours and Python execnet alternating, medians. A \"fresh process\" "
        "sample is a new process each time (a cold spawner for ours; execnet "
        "imported before the clock starts, its 8 gateways opened from threads). "
        "Forked against direct: three gateways of each kind open in one process, "
        "measured in turns (`execnet bench --fork-vs-direct`).",
        "",
        "| workload | execnet-rs | Python execnet | unit | ratio | goal | met |",
        "|---|---:|---:|---|---:|---:|:-:|",
    ]
    bars = []

    def row(label, o, t, unit, ratio, goal, text, also=True):
        met = "yes" if ratio >= goal and also else "no"
        lines.append("| %s | %.1f | %s | %s | %.2f× | %s | %s |"
                     % (label, o, "%.1f" % t if t is not None else "", unit, ratio, text, met))
        bars.append((label, ratio, goal))

    for name, d in (("popen", local), ("ssh", ssh)):
        if not d:
            continue
        g8, e8 = d["fresh_group8_ms"], d["execnet_group8_threads_ms"]
        row("%s: Group of 8, fresh process" % name, g8, e8, "ms", e8 / g8,
            5.0 if name == "popen" else 4.0, "≥ %d×" % (5 if name == "popen" else 4))
        nxt, st = d["next_gateway_ms"], d["execnet_startup_ms"]
        row("%s: next gateway to a warm place" % name, nxt, st, "ms", st / nxt, 4.0,
            "≤ 0.25× of one execnet start" + (", ≤ 5 ms" if name == "popen" else ""),
            nxt <= 5.0 or name != "popen")
        for key, label, unit, higher in (("rtt_us", "round trip", "µs", False),
                                         ("bulk_to_mib_s", "bulk to worker", "MiB/s", True),
                                         ("bulk_from_mib_s", "bulk from worker", "MiB/s", True)):
            o, direct = d[key], d["direct_" + key]
            ratio = o / direct if higher else direct / o
            lines.append("| %s: %s, forked (direct: %.1f) | %.1f | | %s | %.2f× of direct | ≥ 0.90× | %s |"
                         % (name, label, direct, o, unit, ratio, "yes" if ratio >= 0.9 else "no"))
        if "big64_ms" in d:
            r = d["big64_ms"] / d["big8_ms"]
            lines.append("| %s: 8 / 32 / 64 gateways, fresh process | %.0f / %.0f / %.0f | | ms | "
                         "64 took %.2f× of 8 | ≤ 2.5× | %s |"
                         % (name, d["big8_ms"], d["big32_ms"], d["big64_ms"], r,
                            "yes" if r <= 2.5 else "no"))
            lines.append("| %s: failed opens (8/32/64), lines on stderr | %d / %d / %d, %d | | | | 0 | %s |"
                         % (name, d["failed8"], d["failed32"], d["failed64"], d["stderr_lines"],
                            "yes" if d["failed32"] + d["failed64"] + d["stderr_lines"] == 0 else "no"))
    return lines, bars


def main():
    spawn = None
    if "--spawn" in sys.argv:
        i = sys.argv.index("--spawn")
        spawn = sys.argv[i + 1:]
        del sys.argv[i:]
    python = None
    if "--python" in sys.argv:
        i = sys.argv.index("--python")
        python = sys.argv[i + 1:i + 4]
        del sys.argv[i:i + 4]
    ours = json.load(open(sys.argv[1]))
    theirs = json.load(open(sys.argv[2]))
    meta = sys.argv[3] if len(sys.argv) > 3 else ""
    lines = [
        "# Benchmarks: execnet-rs against Python execnet",
        "",
        "Measured in one run by `bench/compare.sh` (release build), both sides "
        "driving the same interpreter with the same remote snippets. "
        "Speed-up is how many times faster ours is (higher is better); the "
        "goal column is from the benchmark issue. Ours runs with its defaults: "
        "within one process, gateways after the first to the same place are "
        "forks of a warm spawner, so its startup and 8-gateway rows are forks; "
        "cold starts (a fresh process each sample) are in the Spawner section.",
        "",
        "Machine: %s, %s. %s" % (platform.machine(), datetime.date.today().isoformat(), meta),
        "",
        "| workload | execnet-rs | Python execnet | unit | speed-up | goal | met |",
        "|---|---:|---:|---|---:|---:|:-:|",
    ]
    bars = []
    for key, label, unit, higher, goal in ROWS:
        o, t = ours.get(key, 0.0), theirs.get(key, 0.0)
        s = speedup(key, o, t, higher)
        lines.append("| %s | %.1f | %.1f | %s | %.2f× | ≥ %.1f× | %s |"
                     % (label, o, t, unit, s, goal, "yes" if s >= goal else "no"))
        bars.append((label, s, goal))
    if len(sys.argv) > 5:
        ours_ssh = json.load(open(sys.argv[4]))
        theirs_ssh = json.load(open(sys.argv[5]))
        lines += [
            "",
            "## Over ssh",
            "",
            "The same workloads through a throwaway local sshd (loopback, generated "
            "keys); both use the system OpenSSH client. Ours shares one ssh connection "
            "per host; Python execnet opens one per gateway.",
            "",
            "| workload | execnet-rs | Python execnet | unit | speed-up |",
            "|---|---:|---:|---|---:|",
        ]
        for key, label, unit, higher, goal in ROWS:
            o, t = ours_ssh.get(key, 0.0), theirs_ssh.get(key, 0.0)
            lines.append("| %s | %.1f | %.1f | %s | %.2f× |"
                         % (label, o, t, unit, speedup(key, o, t, higher)))
    if python:
        ours_py, theirs_py = json.load(open(python[0])), json.load(open(python[1]))
        lines += [
            "",
            "## From Python",
            "",
            "The same workloads and snippets driven from Python "
            "(`bench/execnet_bench.py`) in one interpreter: `import execnet` served "
            "by this engine (the `execnet_rs` package) against Python execnet, in "
            "alternating runs, medians over the runs. %s" % python[2],
            "",
            "| workload | execnet_rs | Python execnet | unit | speed-up | goal | met |",
            "|---|---:|---:|---|---:|---:|:-:|",
        ]
        for key, label, unit, higher, _ in ROWS:
            o, t = ours_py.get(key, 0.0), theirs_py.get(key, 0.0)
            s = speedup(key, o, t, higher)
            goal = PY_GOALS.get(key)
            lines.append("| %s | %.1f | %.1f | %s | %.2f× | %s | %s |" % (
                label, o, t, unit, s, "≥ %.1f×" % goal if goal else "",
                ("yes" if s >= goal else "no") if goal else ""))
    if spawn:
        local = json.load(open(spawn[0]))
        ssh = json.load(open(spawn[1])) if len(spawn) > 1 else None
        more, more_bars = spawner_section(local, ssh)
        lines += more
        bars += more_bars
    codec = [(k, label) for k, label in CODEC if ours.get(k)]
    if codec:
        lines += [
            "",
            "## The worker's codec",
            "",
            "Timed inside our worker (`execnet bench`'s last workload): its own "
            "encoder and decoder, no channel, no IO, ns per item (lower is "
            "better). Python execnet's serializer is a different program; these "
            "figures are for spotting a regression of ours between runs.",
            "",
            "| item | ns |",
            "|---|---:|",
        ]
        lines += ["| %s | %.0f |" % (label, ours[k]) for k, label in codec]
    lines += ["", "![speed-up per workload](ratios.svg)", ""]
    # bench/xdist.sh's section (pytest-xdist on both engines) is measured on
    # its own: keep it
    try:
        old = open("bench/RESULTS.md").read()
    except FileNotFoundError:
        old = ""
    marker = "\n## pytest-xdist\n"
    if marker in old:
        lines += [old[old.index(marker) + 1:].rstrip("\n"), ""]
    open("bench/RESULTS.md", "w").write("\n".join(lines))
    open("bench/ratios.svg", "w").write(svg(bars))


def svg(bars):
    width, row, left = 720, 34, 250
    top = 40
    height = top + row * len(bars) + 30
    biggest = max([b[1] for b in bars] + [b[2] for b in bars] + [1.0])
    scale = (width - left - 70) / biggest
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="13">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="22" font-size="15" font-weight="bold">'
           'execnet-rs speed-up over Python execnet (higher is better)</text>']
    x1 = left + scale
    out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" '
               'stroke-dasharray="4,3"/>' % (x1, top - 6, x1, height - 24))
    out.append('<text x="%.1f" y="%d" fill="#555">1×</text>' % (x1 - 8, height - 8))
    for i, (label, s, goal) in enumerate(bars):
        y = top + i * row
        colour = "#2a7" if s >= goal else "#d84"
        out.append('<text x="10" y="%d">%s</text>' % (y + 17, label))
        out.append('<rect x="%d" y="%d" width="%.1f" height="22" fill="%s"/>'
                   % (left, y + 2, max(s * scale, 1), colour))
        gx = left + goal * scale
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>'
                   % (gx, y, gx, y + 26))
        out.append('<text x="%.1f" y="%d">%.2f×</text>' % (left + s * scale + 6, y + 17, s))
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    main()
