"""The standard workloads from Python, execnet-rs's package against Python
execnet, same interpreter, same snippets, one run.

Runs bench/execnet_bench.py in alternating child interpreters: with
EXECNET_RS=0 (``import execnet`` is Python execnet 2.x) and without (it is
execnet_rs, through the package's import alias), ROUNDS times each, and
writes the median of each workload over the rounds to two JSON files.

    python bench/python_bench.py OURS.json EXECNET.json [--rounds 3] [-- ARGS]

ARGS go to execnet_bench.py (e.g. --python /usr/bin/python3 --repeats 3).
The interpreter running this must have both packages installed.
"""

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(use_ours, args):
    env = dict(os.environ)
    env["EXECNET_RS"] = "1" if use_ours else "0"
    probe = subprocess.run([sys.executable, "-c", "import execnet; print(execnet.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    if ("execnet_rs" in probe) != use_ours:
        sys.exit("python_bench: EXECNET_RS=%s imports %s" % (env["EXECNET_RS"], probe.strip()))
    out = subprocess.run([sys.executable, os.path.join(HERE, "execnet_bench.py")] + args,
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    rounds = 3
    if "--rounds" in argv:
        i = argv.index("--rounds")
        rounds = int(argv[i + 1])
        del argv[i:i + 2]
    ours_path, theirs_path = argv
    ours, theirs = [], []
    for r in range(rounds):
        sys.stderr.write("python bench: round %d of %d\n" % (r + 1, rounds))
        ours.append(run(True, extra))
        theirs.append(run(False, extra))

    def median(results):
        return {k: statistics.median(r[k] for r in results) for k in results[0]}

    json.dump(median(ours), open(ours_path, "w"))
    json.dump(median(theirs), open(theirs_path, "w"))


if __name__ == "__main__":
    main()
