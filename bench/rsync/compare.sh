#!/usr/bin/env bash
# Our rsync engine and Python execnet's RSync, same run, same trees, same
# worker interpreter, popen gateway, release build. Writes
# bench/rsync/RESULTS.md.
#
# The two run in alternating rounds (ROUNDS, default 2) and each figure is
# the best of its rounds' medians, so load from elsewhere on the machine
# does not favour either side. Trees and copies go to TMPDIR (TMPDIR=/dev/shm
# measures the engines without the disk).
#
#   bench/rsync/compare.sh [PYTHON]          # default /usr/bin/python3
#   REPEATS=5 ROUNDS=3 TMPDIR=/dev/shm bench/rsync/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${1:-/usr/bin/python3}"
REPEATS="${REPEATS:-3}"
ROUNDS="${ROUNDS:-2}"
TREES="${TREES:-${TMPDIR:-/tmp}/execnet-rsync-trees}"
VENV=bench/.venv

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "execnet>=2,<3"
fi
"$PYTHON" bench/rsync/trees.py "$TREES"
cargo build --release -p execnet --example rsync_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$ROUNDS"); do
    target/release/examples/rsync_bench --trees "$TREES" --python "$PYTHON" --repeats "$REPEATS" > "$out/ours.$round.json"
    "$VENV/bin/python" bench/rsync/execnet_rsync.py --trees "$TREES" --python "$PYTHON" --repeats "$REPEATS" > "$out/execnet.$round.json"
done

pyver=$("$PYTHON" -c 'import platform; print(platform.python_version())')
fs=$(df -T "$TREES" | awk 'NR == 2 {print $2}')
"$PYTHON" - "$out" "$PYTHON ($pyver)" "$REPEATS" "$ROUNDS" "$fs" > bench/rsync/RESULTS.md <<'PY'
import glob, json, os, platform, sys
out, interp, repeats, rounds, fs = sys.argv[1:6]


def best(prefix):
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, prefix + ".*.json")))]
    merged = {"impl": runs[0]["impl"], "workloads": {}}
    for name in runs[0]["workloads"]:
        merged["workloads"][name] = {
            kind: min(r["workloads"][name][kind] for r in runs)
            for kind in ("first", "unchanged", "touched")
        }
    return merged


ours, theirs = best("ours"), best("execnet")
print("# rsync: execnet-rs vs Python execnet, same run\n")
print("Made by `bench/rsync/compare.sh`: %s against %s; popen gateway, worker "
      "interpreter %s; medians of %s repeats, best of %s alternating rounds; "
      "source and copies on one %s filesystem, page cache warm. *first*: into "
      "an empty directory; *unchanged*: nothing to send; *touched*: every "
      "source file has a new time but the same contents (both settle it by "
      "checksum).\n"
      % (ours["impl"], theirs["impl"], interp, repeats, rounds, fs))
print("| tree | send | execnet-rs | Python execnet | speed-up |")
print("|---|---|---:|---:|---:|")
for name, o in ours["workloads"].items():
    t = theirs["workloads"][name]
    for kind in ("first", "unchanged", "touched"):
        print("| %s | %s | %.3f s | %.3f s | %.1f× |"
              % (name, kind, o[kind], t[kind], t[kind] / o[kind]))
print("\nMachine: %s, %s." % (platform.machine(), platform.platform()))
PY
cat bench/rsync/RESULTS.md
