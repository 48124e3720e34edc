#!/usr/bin/env bash
# Our rsync engine and Python execnet's RSync, same run, same trees, same
# worker interpreter, popen gateway, release build. Writes
# bench/rsync/RESULTS.md.
#
# The two run in alternating rounds (ROUNDS, default 2) and each figure is
# the best of its rounds' medians, so load from elsewhere on the machine
# does not favour either side. It runs once with trees and copies on the
# disk (TMPDIR, default /tmp: what users see) and once on tmpfs (/dev/shm,
# if there: the engines without the disk); DIRS overrides the list.
#
#   bench/rsync/compare.sh [PYTHON]          # default /usr/bin/python3
#   REPEATS=5 ROUNDS=3 DIRS=/var/tmp bench/rsync/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${1:-/usr/bin/python3}"
REPEATS="${REPEATS:-3}"
ROUNDS="${ROUNDS:-2}"
if [ -z "${DIRS:-}" ]; then
    DIRS="${TMPDIR:-/tmp}"
    [ -d /dev/shm ] && DIRS="$DIRS /dev/shm"
fi
VENV=bench/.venv

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "execnet>=2,<3"
fi
cargo build --release -p execnet --example rsync_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cut -d' ' -f1-3 /proc/loadavg > "$out/load.start"
for dir in $DIRS; do
    trees="$dir/execnet-rsync-trees"
    "$PYTHON" bench/rsync/trees.py "$trees"
    fs=$(df -T "$dir" | awk 'NR == 2 {print $2}')
    mkdir -p "$out/$fs"
    echo "$dir" > "$out/$fs/dir"
    for round in $(seq "$ROUNDS"); do
        TMPDIR="$dir" target/release/examples/rsync_bench --trees "$trees" --python "$PYTHON" \
            --repeats "$REPEATS" > "$out/$fs/ours.$round.json"
        TMPDIR="$dir" "$VENV/bin/python" bench/rsync/execnet_rsync.py --trees "$trees" \
            --python "$PYTHON" --repeats "$REPEATS" > "$out/$fs/execnet.$round.json"
    done
    # The trees on tmpfs hold memory: do not keep them.
    [ "$fs" = tmpfs ] && rm -rf "$trees"
done

cut -d' ' -f1-3 /proc/loadavg > "$out/load.end"
pyver=$("$PYTHON" -c 'import platform; print(platform.python_version())')
"$PYTHON" - "$out" "$PYTHON ($pyver)" "$REPEATS" "$ROUNDS" > bench/rsync/RESULTS.md <<'PY'
import glob, json, os, platform, sys
out, interp, repeats, rounds = sys.argv[1:5]


def best(fs, prefix):
    runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, fs, prefix + ".*.json")))]
    merged = {"impl": runs[0]["impl"], "workloads": {}}
    for name in runs[0]["workloads"]:
        merged["workloads"][name] = {
            kind: min(r["workloads"][name][kind] for r in runs)
            for kind in ("first", "unchanged", "touched")
        }
    return merged


sections = sorted((d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))),
                  key=lambda fs: fs == "tmpfs")
load = [open(os.path.join(out, "load." + x)).read().strip() for x in ("start", "end")]
impls = best(sections[0], "ours")["impl"], best(sections[0], "execnet")["impl"]
print("# rsync: execnet-rs vs Python execnet, same run\n")
print("Made by `bench/rsync/compare.sh`: %s against %s; popen gateway, worker "
      "interpreter %s; medians of %s repeats, best of %s alternating rounds; "
      "page cache warm. *first*: into an empty directory; *unchanged*: nothing "
      "to send; *touched*: every source file has a new time but the same "
      "contents (both settle it by checksum). Source and copies on one "
      "filesystem: the disk (what users see; creating files there is slow and "
      "noisy on this machine, for both) and tmpfs (the engines without the disk)."
      % (impls[0], impls[1], interp, repeats, rounds))
for fs in sections:
    ours, theirs = best(fs, "ours"), best(fs, "execnet")
    where = open(os.path.join(out, fs, "dir")).read().strip()
    print("\n## %s (%s)\n" % (fs, where))
    print("| tree | send | execnet-rs | Python execnet | speed-up |")
    print("|---|---|---:|---:|---:|")
    for name, o in ours["workloads"].items():
        t = theirs["workloads"][name]
        for kind in ("first", "unchanged", "touched"):
            ratio = t[kind] / o[kind] if o[kind] > 0 else float("inf")
            print("| %s | %s | %.4f s | %.4f s | %.1f× |"
                  % (name, kind, o[kind], t[kind], ratio))
print("\nMachine: %s, %s, %d cores; load average (1, 5, 15 min) %s at the "
      "start, %s at the end (other work shared the machine)."
      % (platform.machine(), platform.platform(), os.cpu_count(), load[0], load[1]))
PY
cat bench/rsync/RESULTS.md
