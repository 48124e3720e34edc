"""Gateways opened from Python are forks of one warm spawner per place
(the engine's, README "Spawner"); spawn=direct opts out."""

import os

import execnet_rs as execnet
from conftest import pid_alive

IDS = "import os; channel.send((os.getpid(), os.getppid(), os.getpgrp()))"


def test_gateways_to_one_place_are_forks_of_one_spawner(group):
    # A place of its own: other tests' popen spawner may linger.
    spec = "popen//env:PYTHONPATH=/nonexistent/execnet-spawn-%d" % os.getpid()
    gws = [group.makegateway(spec) for _ in range(3)]
    ids = [gw.remote_exec(IDS).receive() for gw in gws]
    spawner = ids[0][1]
    assert spawner != os.getpid()
    assert pid_alive(spawner)
    assert len({pid for pid, _, _ in ids}) == 3
    for (pid, ppid, pgid), gw in zip(ids, gws):
        assert ppid == spawner
        assert pgid == pid
        assert gw._rinfo().pid == pid
    # one ends, the others go on
    gws[0].exit()
    assert gws[1].remote_exec("channel.send(6 * 7)").receive() == 42


def test_spawn_direct_is_our_own_child(group):
    gw = group.makegateway("popen//spawn=direct")
    pid, ppid, pgid = gw.remote_exec(IDS).receive()
    assert ppid == os.getpid()
    assert pgid == pid


def test_spawn_linger_key_is_accepted(group):
    gw = group.makegateway("popen//spawn_linger=0.5")
    assert gw.spec.spawn_linger == "0.5"
    assert gw.remote_exec("channel.send(1)").receive() == 1
