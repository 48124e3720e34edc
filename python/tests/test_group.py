"""Group and MultiChannel."""

import os
import queue
import time

import pytest

import execnet_rs as execnet
from conftest import pid_alive, run_python


def test_ids_len_iter_getitem_contains(group):
    a = group.makegateway()
    b = group.makegateway("popen//id=special")
    c = group.makegateway()
    assert [gw.id for gw in group] == ["gw0", "special", "gw1"]
    assert len(group) == 3
    assert group[0] is a and group["special"] is b and group[c] is c
    assert "gw1" in group and b in group and "nope" not in group
    with pytest.raises(KeyError):
        group["nope"]
    assert repr(group) == "<Group ['gw0', 'special', 'gw1']>"


def test_duplicate_id_is_refused_before_opening(group):
    group.makegateway("popen//id=x")
    with pytest.raises(ValueError, match="already have gateway with id 'x'"):
        group.makegateway("popen//id=x")
    assert len(group) == 1


def test_allocate_id(group):
    spec = execnet.XSpec("popen")
    group.allocate_id(spec)
    assert spec.id == "gw0"
    named = execnet.XSpec("popen//id=mine")
    group.allocate_id(named)
    assert named.id == "mine"


def test_execmodel(group):
    assert group.execmodel.backend == "thread"
    mt = execnet.Group(execmodel="main_thread_only")
    try:
        gw = mt.makegateway()
        assert gw.spec.execmodel == "main_thread_only"
        assert gw.remote_status().execmodel == "main_thread_only"
        with pytest.raises(ValueError):
            mt.set_execmodel("thread")
    finally:
        mt.terminate(5)
    g = execnet.Group()
    g.set_execmodel("thread", "main_thread_only")
    assert g.execmodel.backend == "thread" and g.remote_execmodel.backend == "main_thread_only"


def test_remote_exec_multichannel(group):
    for _ in range(3):
        group.makegateway()
    mch = group.remote_exec("import os; channel.send(os.getpid())")
    assert len(mch) == 3
    pids = mch.receive_each()
    assert len(set(pids)) == 3
    mch.waitclose()
    mch = group.remote_exec("channel.send(channel.receive() * 2)")
    mch.send_each(21)
    pairs = mch.receive_each(withchannel=True)
    assert [item for _, item in pairs] == [42, 42, 42]
    assert all(ch in mch for ch, _ in pairs)
    assert mch[0] is pairs[0][0]


def test_make_receive_queue(group):
    for _ in range(2):
        group.makegateway()
    mch = group.remote_exec("channel.send(channel.gateway.id)")
    q = mch.make_receive_queue(endmarker="END")
    assert isinstance(q, queue.Queue)
    assert mch.make_receive_queue() is q
    got = sorted((ch.gateway.id, item) for ch, item in (q.get(timeout=10) for _ in range(4)))
    assert got == [("gw0", "END"), ("gw0", "gw0-worker"), ("gw1", "END"), ("gw1", "gw1-worker")]


def test_multichannel_waitclose_raises_the_first_remote_error(group):
    for _ in range(3):
        group.makegateway()
    mch = group.remote_exec("if channel.gateway.id != 'gw0-worker':\n    raise ValueError(channel.gateway.id)")
    with pytest.raises(execnet.RemoteError, match="gw1-worker"):
        mch.waitclose()


def _parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_terminate_exits_via_gateways_before_their_master(group):
    master = group.makegateway("popen//id=m")
    sub = group.makegateway("popen//via=m//id=s")
    direct = group.makegateway("popen//via=m//id=d//spawn=direct")
    sub_pid = sub._rinfo().pid
    direct_pid = direct._rinfo().pid
    master_pid = master._rinfo().pid
    # a via= gateway is a fork of a spawner that the master's worker started
    spawner = sub.remote_exec("import os; channel.send(os.getppid())").receive()
    assert spawner != master_pid and _parent_of(spawner) == master_pid
    # with spawn=direct, a child of the master's worker
    assert direct.remote_exec("import os; channel.send(os.getppid())").receive() == master_pid
    group.terminate(2)
    assert len(group) == 0
    assert not pid_alive(master_pid)
    deadline = time.monotonic() + 10
    while any(map(pid_alive, (sub_pid, direct_pid, spawner))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(pid_alive, (sub_pid, direct_pid, spawner)))


def test_terminate_kills_what_does_not_stop(group):
    gw = group.makegateway()
    gw.remote_exec("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile 1: time.sleep(0.01)")
    pid = gw._rinfo().pid
    group.terminate(0.2)
    assert len(group) == 0
    assert not pid_alive(pid)


def test_no_worker_left_at_interpreter_exit(tmp_path):
    out = run_python("""
        import execnet_rs as execnet
        g = execnet.Group()
        pids = [g.makegateway()._rinfo().pid for _ in range(2)]
        pids.append(execnet.makegateway()._rinfo().pid)
        print(" ".join(map(str, pids)))
        """)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 3
    assert not any(pid_alive(p) for p in pids)
