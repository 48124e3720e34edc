#!/usr/bin/env bash
# pytest-xdist on this engine against Python execnet: `pytest -n 8` on a real
# project's test suite (click 8.1.8, from its sdist on PyPI), alternating
# runs, medians: all workers ready, the engine's share of that, the whole run;
# the table goes into bench/RESULTS.md (its pytest-xdist section).
#
#   bench/xdist.sh [RUNS]         # default 5 runs each
#
# Builds bench/.venv-xdist: this package (pip install ./python), pytest<9,
# pytest-xdist 3.8.0 (which brings Python execnet 2.1.2), click from its
# sdist. The workers run that venv's interpreter (xdist starts sys.executable).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
VENV=bench/.venv-xdist
PROJECT=click
VERSION=8.1.8
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "pytest<9" "pytest-xdist==3.8.0"
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" \
    "$PROJECT==$VERSION"
tar -xzf "$work/$PROJECT-$VERSION.tar.gz" -C "$work"
"$VENV/bin/python" -m pip install --quiet "$work/$PROJECT-$VERSION"
"$VENV/bin/python" bench/xdist/bench.py --python "$PWD/$VENV/bin/python" \
    --project "$work/$PROJECT-$VERSION" --tests tests --runs "$RUNS" \
    --results bench/RESULTS.md
