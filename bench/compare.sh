#!/usr/bin/env bash
# Side-by-side benchmark: execnet-rs (`execnet bench`, release build) and
# Python execnet from PyPI, in one run, against the same interpreter.
# Writes bench/RESULTS.md and bench/ratios.svg.
#
#   bench/compare.sh [PYTHON]        # default /usr/bin/python3
#   REPEATS=3 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-/usr/bin/python3}"
REPEATS="${REPEATS:-5}"
VENV=bench/.venv

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "execnet>=2,<3"
fi
cargo build --release -p execnet --bin execnet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target/release/execnet bench --spec "popen//python=$PYTHON" --repeats "$REPEATS" --json > "$out/ours.json"
"$VENV/bin/python" bench/execnet_bench.py --python "$PYTHON" --repeats "$REPEATS" > "$out/execnet.json"
version=$("$VENV/bin/python" -c 'import execnet; print(execnet.__version__)')
pyver=$("$PYTHON" -c 'import platform; print(platform.python_version())')
"$PYTHON" bench/report.py "$out/ours.json" "$out/execnet.json" \
    "Python execnet $version; worker interpreter $PYTHON ($pyver); $REPEATS repeats, medians."
cat bench/RESULTS.md
