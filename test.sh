#!/usr/bin/env bash
# Every test of the project: the Rust workspace, the Python worker's unit
# tests, and the Python package's tests (pytest, against the package built
# and installed with pip into .venv, so the `import execnet` alias is real).
#
#   ./test.sh                 # all of it
#   PYTHON=python3.12 ./test.sh
#   ./test.sh -k channel      # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

echo "== cargo test --workspace"
cargo test --workspace

echo "== python worker unit tests"
# Normally ~15 s. A hang (seen once under heavy load) becomes a failure
# with every thread's stack (faulthandler on SIGABRT) instead of eating
# the CI's time limit.
(cd gateway/worker && timeout -s ABRT 600 "$PYTHON" -X faulthandler -m unittest test_worker)

echo "== python package (pip install ./python into $VENV, then pytest)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# pytest-xdist: python/tests/test_xdist.py runs `pytest -n` on the package
"$VENV/bin/python" -m pip install --quiet "pytest<9" "pytest-xdist==3.8.0"
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python
# From the top: in python/ the source tree (without the built _core) would
# shadow the installed package.
"$VENV/bin/python" -m pytest python/tests "$@"
