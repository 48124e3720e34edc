"""Ctrl-C while blocked, and workers at interpreter exit."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import pid_alive

BLOCKERS = {
    "receive": "ch = gw.remote_exec('channel.receive()')\nready(gw)\nch.receive()",
    "receive_timeout": "ch = gw.remote_exec('channel.receive()')\nready(gw)\nch.receive(timeout=60)",
    "waitclose": "ch = gw.remote_exec('channel.receive()')\nready(gw)\nch.waitclose()",
    "join": "ready(gw)\ngw.join()",
    # blocked on credit: the remote code takes no items
    "send_bulk": (
        "ch = gw.remote_exec('import time; time.sleep(60)')\nready(gw)\n"
        "while True: ch.send(b'x' * (1 << 20))"
    ),
    "iteration": "ch = gw.remote_exec('channel.receive()')\nready(gw)\nfor x in ch: pass",
    # a worker that cannot finish its exit (stopped): terminate waits
    "terminate": (
        "import os, signal\nready(gw)\nos.kill(gw._rinfo().pid, signal.SIGSTOP)\n"
        "execnet.default_group.terminate(30)"
    ),
}

SCRIPT = """
import sys, time
import execnet_rs as execnet
gw = execnet.makegateway()
def ready(gw):
    print("PID", gw._rinfo().pid, flush=True)
try:
{body}
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("what", sorted(BLOCKERS))
def test_ctrl_c_interrupts_blocking_calls(what):
    body = textwrap.indent(BLOCKERS[what], "    ")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(body=body)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PID"), line + proc.stderr.read()
        worker = int(line.split()[1])
        time.sleep(0.2)  # let it block in the call
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "INTERRUPTED" in out, err
    took = float(out.split("INTERRUPTED")[1].split()[0]) - sent
    # prompt: the call looks at signals every 40 ms (a hang would take 30 s)
    assert took < 1.0, took
    print("%s: KeyboardInterrupt after %.0f ms" % (what, took * 1000))
    deadline = time.monotonic() + 10
    while pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(worker), "the worker outlived the interpreter"


def test_workers_gone_after_an_unhandled_exception():
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import execnet_rs as execnet
        gw = execnet.makegateway()
        print(gw._rinfo().pid, flush=True)
        raise SystemExit(3)
        """)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    worker = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(worker)
