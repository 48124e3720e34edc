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


def test_a_popen_gateway_starts_where_and_with_what_we_have_now(group, tmp_path, monkeypatch):
    # As with a directly started child: the current directory and the
    # environment at the time of the open, even when a spawner for the
    # same spec is still warm from before (pytest-xdist's own tests chdir
    # and set variables between the gateways they open).
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    probe = "import os; channel.send((os.getcwd(), os.environ.get('EXECNET_SPAWN_PROBE')))"
    monkeypatch.chdir(first)
    monkeypatch.setenv("EXECNET_SPAWN_PROBE", "one")
    gw1 = group.makegateway("popen")
    assert gw1.remote_exec(probe).receive() == (str(first), "one")
    monkeypatch.chdir(second)
    gw2 = group.makegateway("popen")
    assert gw2.remote_exec(probe).receive() == (str(second), "one")
    monkeypatch.setenv("EXECNET_SPAWN_PROBE", "two")
    gw3 = group.makegateway("popen")
    assert gw3.remote_exec(probe).receive() == (str(second), "two")
    # and the one opened before is left as it was
    assert gw1.remote_exec(probe).receive() == (str(first), "one")
