"""pytest-xdist on execnet_rs against Python execnet, side by side.

    python bench.py --project DIR [--tests tests] [--runs 5] [-n 8]

Runs `python -m pytest -n N` on the project's tests, alternating
EXECNET_RS=1 (this engine) and EXECNET_RS=0 (Python execnet), with the
plugin xdist_timing.py, and prints a Markdown table of the medians:
all workers ready (from the process start), the engine's share of that
(the controller's time in the execnet calls xdist makes to set the
workers up: alone, with a remote module that only waits, and inside the
real run, where the workers' pytest imports compete for the CPU), and the
whole run. Run by bench/xdist.sh, which builds the venv.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def one_run(python, project, tests, n, flag):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, EXECNET_RS=flag, XDIST_TIMING_OUT=out,
               PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTEST_ADDOPTS", None)
    t0 = time.time()
    env["XDIST_TIMING_T0"] = repr(t0)
    proc = subprocess.run(
        [python, "-m", "pytest", "-p", "xdist_timing", "-p", "no:cacheprovider",
         "-n", str(n), "-q", *tests],
        cwd=project, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    try:
        with open(out) as f:
            timing = json.load(f)
    finally:
        os.unlink(out)
    summary = [line for line in proc.stdout.splitlines() if " in " in line and
               ("passed" in line or "failed" in line)]
    if len(timing["ready"]) != n:
        sys.exit("only %d of %d workers were ready:\n%s" % (len(timing["ready"]), n, proc.stdout))
    return {
        "ready": max(timing["ready"]),
        "engine": timing["engine"],
        "whole": wall,
        "summary": summary[-1].strip("= ") if summary else "(no summary)",
        "execnet": timing.get("execnet"),
    }


ENGINE_SCRIPT = r"""
import importlib.util, os, sys, tempfile, time
import execnet
n = int(sys.argv[1])
d = tempfile.mkdtemp()
path = os.path.join(d, "idle_worker.py")
with open(path, "w") as f:
    f.write("if __name__ == '__channelexec__':\n    channel.receive()\n")
spec = importlib.util.spec_from_file_location("idle_worker", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
start = time.perf_counter()
group = execnet.Group(execmodel="main_thread_only")
channels = []
for _ in range(n):
    xspec = execnet.XSpec("execmodel=main_thread_only//popen")
    group.allocate_id(xspec)
    gw = group.makegateway(xspec)
    gw._rinfo()
    ch = gw.remote_exec(module)
    ch.send(("workerinput", [], {}, None))
    channels.append(ch)
elapsed = time.perf_counter() - start
group.terminate(5)
os.unlink(path)
os.rmdir(d)
print(elapsed)
"""


def engine_share(python, n, flag):
    """pytest-xdist's execnet calls for n workers (as NodeManager.setup_nodes
    and WorkerController.setup make them), alone: the remote module only
    waits, so no worker imports pytest meanwhile."""
    env = dict(os.environ, EXECNET_RS=flag)
    out = subprocess.run([python, "-c", ENGINE_SCRIPT, str(n)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


FLOOR_SCRIPT = r"""
import subprocess, sys, time
n = int(sys.argv[1])
start = time.perf_counter()
for _ in range(n):
    subprocess.run([sys.executable, "-c", "pass"], check=True)
print(time.perf_counter() - start)
"""


def interpreter_floor(python, n):
    """n interpreter starts one after the other (`python -c pass`): what
    an engine that starts an interpreter per gateway spends at least, since
    xdist opens its gateways in turn."""
    out = subprocess.run([python, "-c", FLOOR_SCRIPT, str(n)], capture_output=True,
                         text=True, check=True).stdout
    return float(out.split()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--project", required=True)
    parser.add_argument("--tests", nargs="*", default=["tests"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=8)
    parser.add_argument("--results", help="RESULTS.md to write the table into")
    args = parser.parse_args()
    results = {"1": [], "0": []}
    load_start = os.getloadavg()
    one_run(args.python, args.project, args.tests, args.n, "1")  # warm the caches
    one_run(args.python, args.project, args.tests, args.n, "0")
    for i in range(args.runs):
        for flag in ("1", "0"):
            r = one_run(args.python, args.project, args.tests, args.n, flag)
            # the median of three: each is well under a second, so one
            # sample would mostly measure what else the machine is doing
            r["engine_alone"] = statistics.median(
                engine_share(args.python, args.n, flag) for _ in range(3))
            r["floor"] = statistics.median(
                interpreter_floor(args.python, args.n) for _ in range(3))
            results[flag].append(r)
            print("run %d %-15s ready %.3fs engine %.3fs (alone %.3fs, floor %.3fs) "
                  "whole %.3fs  %s" % (
                      i + 1, "execnet_rs" if flag == "1" else "Python execnet",
                      r["ready"], r["engine"], r["engine_alone"], r["floor"], r["whole"],
                      r["summary"]),
                file=sys.stderr)
    load_end = os.getloadavg()
    ours_mod = results["1"][0]["execnet"]
    theirs_mod = results["0"][0]["execnet"]
    assert "execnet_rs" in ours_mod and "execnet_rs" not in theirs_mod, (ours_mod, theirs_mod)
    lines = [
        "`pytest -n %d` on %s (%s), %d alternating runs each, medians; load average "
        "%s at the start, %s at the end (%d CPUs)." % (
            args.n, os.path.basename(os.path.abspath(args.project)),
            results["1"][0]["summary"], args.runs,
            " ".join("%.2f" % x for x in load_start), " ".join("%.2f" % x for x in load_end),
            os.cpu_count())
        + (" The machine was loaded by other work (load above its CPU count): every "
           "figure is slower and noisier than on an idle machine."
           if max(load_start[0], load_end[0]) > (os.cpu_count() or 1) else ""),
        "",
        "| measure | execnet_rs | Python execnet | unit | speed-up |",
        "|---|---:|---:|---|---:|",
    ]
    rows = [
        ("all %d workers ready (from the start of pytest)" % args.n, "ready"),
        ("the engine's share: xdist's execnet calls for %d workers, alone" % args.n,
         "engine_alone"),
        ("the same calls inside the run (slowed by the workers' pytest imports)", "engine"),
        ("whole run", "whole"),
    ]
    for label, key in rows:
        ours = statistics.median(r[key] for r in results["1"])
        theirs = statistics.median(r[key] for r in results["0"])
        lines.append("| %s | %.0f | %.0f | ms | %.2f× |" % (
            label, ours * 1e3, theirs * 1e3, theirs / ours))
    lines += [
        "",
        "For scale: %d bare interpreter starts one after the other (`python -c pass`, "
        "measured alongside) take %.0f ms. Python execnet starts an interpreter per "
        "worker; this engine starts one per place and forks the other workers from it "
        "(the warm spawner), so its share can be below that floor." % (
            args.n, 1e3 * statistics.median(r["floor"] for r in results["1"] + results["0"])),
    ]
    print("\n".join(lines))
    if args.results:
        write_section(args.results, lines)


SECTION = "## pytest-xdist"


def write_section(path, lines):
    """Put the table into RESULTS.md as its pytest-xdist section (replacing
    the one there; bench/report.py keeps it when it rewrites the rest)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    head = text.split("\n" + SECTION + "\n")[0].rstrip("\n")
    section = [
        SECTION,
        "",
        "pytest-xdist 3.8.0 on this engine against Python execnet 2.1.2 "
        "(`bench/xdist.sh`): all workers ready is the time from the start of "
        "pytest until the last worker reported ready; most of it is each worker "
        "importing pytest and collecting. The engine's share is the time "
        "xdist's controller spends in the execnet calls that set the workers "
        "up (makegateway, `_rinfo()`, `remote_exec(module)`): alone, with a "
        "remote module that only waits, and inside the real run. The whole run "
        "is the wall time of the pytest process.",
        "",
    ] + lines
    with open(path, "w") as f:
        f.write((head + "\n\n" if head else "") + "\n".join(section) + "\n")


if __name__ == "__main__":
    main()
