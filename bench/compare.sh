#!/usr/bin/env bash
# Side-by-side benchmark: execnet-rs (`execnet bench`, release build) and
# Python execnet from PyPI, in one run, against the same interpreter.
# Writes bench/RESULTS.md and bench/ratios.svg. When /usr/sbin/sshd exists
# (and SSH is not 0), the same workloads also run over ssh against a
# throwaway sshd (stock session limits) on a free loopback port with
# generated keys, so ssh startup and 8 gateways to one host are compared too.
# bench/spawn_bench.py measures the spawner (gateways forked from one
# interpreter start per place): fresh-process groups, later gateways, forked
# against direct, and over ssh 8/32/64 gateways to one host.
#
# It also runs the workloads from Python (bench/python_bench.py): our package
# serving `import execnet` against Python execnet, same interpreter (PY=0
# skips that).
#
#   bench/compare.sh [PYTHON]        # default /usr/bin/python3
#   REPEATS=3 SSH=0 PY_ROUNDS=3 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-/usr/bin/python3}"
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
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
EXECNET_RS=0 "$VENV/bin/python" bench/execnet_bench.py --python "$PYTHON" --repeats "$REPEATS" > "$out/execnet.json"

ssh_files=()
if [ "${SSH:-1}" != 0 ] && [ -x /usr/sbin/sshd ]; then
    d="$out/sshd"
    mkdir -p "$d"
    [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$d/user_key"
    cp "$d/user_key.pub" "$d/authorized_keys"
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "[127.0.0.1]:$port $(cat "$d/host_key.pub")" > "$d/known_hosts"
    cat > "$d/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile none
AuthorizedKeysFile $d/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
LogLevel ERROR
CONF
    /usr/sbin/sshd -D -e -f "$d/sshd_config" 2> "$d/sshd.log" &
    sshd_pid=$!
    trap 'kill $sshd_pid 2>/dev/null; rm -rf "$out"' EXIT
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    ssh_args="-p $port -i $d/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile=$d/known_hosts -o StrictHostKeyChecking=yes $(id -un)@127.0.0.1"
    spec="ssh=$ssh_args//python=$PYTHON"
    target/release/execnet bench --spec "$spec" --repeats "$REPEATS" --json > "$out/ours-ssh.json"
    EXECNET_RS=0 "$VENV/bin/python" bench/execnet_bench.py --spec "$spec" --repeats "$REPEATS" > "$out/execnet-ssh.json"
    ssh_files=("$out/ours-ssh.json" "$out/execnet-ssh.json")
    # The spawner over ssh (stock MaxSessions/MaxStartups): 8, 32, 64.
    "$VENV/bin/python" bench/spawn_bench.py target/release/execnet "$spec" \
        --repeats "$REPEATS" --big > "$out/spawn-ssh.json"
fi
# The spawner locally: a Group in a fresh process, the next gateway to a
# warm place, a forked gateway against a direct one.
"$VENV/bin/python" bench/spawn_bench.py target/release/execnet "popen//python=$PYTHON" \
    --repeats "$REPEATS" > "$out/spawn.json"
spawn_files=(--spawn "$out/spawn.json")
[ -f "$out/spawn-ssh.json" ] && spawn_files+=("$out/spawn-ssh.json")

# From Python: the same workloads with `import execnet` served by our
# package (installed into the same venv; EXECNET_RS=0 gives Python execnet).
if [ "${PY:-1}" != 0 ]; then
    "$VENV/bin/pip" install --quiet --force-reinstall --no-deps ./python
    "$VENV/bin/python" bench/python_bench.py "$out/ours-py.json" "$out/execnet-py.json" \
        --rounds "${PY_ROUNDS:-3}" -- --python "$PYTHON" --repeats "$REPEATS"
    py_files=(--python "$out/ours-py.json" "$out/execnet-py.json"
        "Driver interpreter $("$VENV/bin/python" -c 'import sys; print(sys.executable, sys.version.split()[0])'); ${PY_ROUNDS:-3} rounds of $REPEATS repeats.")
else
    py_files=()
fi

version=$(EXECNET_RS=0 "$VENV/bin/python" -c 'import execnet; print(execnet.__version__)')
pyver=$("$PYTHON" -c 'import platform; print(platform.python_version())')
"$PYTHON" bench/report.py "$out/ours.json" "$out/execnet.json" \
    "Python execnet $version; worker interpreter $PYTHON ($pyver); $REPEATS repeats, medians. Load average (1/5/15 min) at the start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?") ($(nproc) CPUs); other work on the machine moves both columns." \
    "${ssh_files[@]}" "${py_files[@]}" "${spawn_files[@]}"
cat bench/RESULTS.md
