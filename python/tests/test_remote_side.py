"""The remote side as execnet's remote code sees it."""

import threading
import time

import pytest

import execnet_rs as execnet


def test_globals_and_gateway(gw):
    ch = gw.remote_exec("""
        import sys
        m = channel.gateway.execmodel
        lock, rlock, event = m.RLock(), m.Lock(), m.Event()
        with lock, rlock:
            event.set()
        q = m.queue.Queue()
        m.start(q.put, ("started",))
        new = channel.gateway.newchannel()
        channel.send((
            __name__, m.backend, event.is_set(), q.get(timeout=5),
            channel.gateway.id, sys.argv, "" in sys.path, isinstance(new.id, int),
        ))
        """)
    assert ch.receive(timeout=10) == (
        "__channelexec__", "thread", True, "started", "gw0-worker", ["-c"], False, True)


def test_remote_channel_api(gw):
    ch = gw.remote_exec("""
        got = []
        done = channel.gateway.execmodel.Event()
        sub = channel.receive()
        sub.setcallback(got.append, endmarker="END")
        sub.waitclose()
        channel.send((got, channel.isclosed()))
        try:
            channel.receive(timeout=0.01)
        except channel.TimeoutError:
            channel.send("timeout")
        """)
    sub = gw.newchannel()
    ch.send(sub)
    sub.send(1)
    sub.send(2)
    sub.close()
    assert ch.receive(timeout=10) == ([1, 2, "END"], False)
    assert ch.receive(timeout=10) == "timeout"


def test_main_thread_only_refuses_a_concurrent_exec_at_once(group):
    gw = group.makegateway("popen//execmodel=main_thread_only")
    first = gw.remote_exec("import threading\nchannel.send(threading.current_thread() is threading.main_thread())\nchannel.receive()")
    assert first.receive(timeout=10) is True
    start = time.monotonic()
    second = gw.remote_exec("channel.send(1)")
    with pytest.raises(execnet.RemoteError) as info:
        second.receive(timeout=10)
    assert time.monotonic() - start < 5
    # exactly execnet's text, so programs can compare with the constant
    assert info.value.formatted == execnet.gateway_base.MAIN_THREAD_ONLY_DEADLOCK_TEXT
    assert "concurrent remote_exec would cause deadlock for main_thread_only" in str(info.value)
    first.send(None)
    first.waitclose(10)
    # the main thread is free again: the next exec runs there
    third = gw.remote_exec("channel.send('third')")
    assert third.receive(timeout=10) == "third"


def test_sequential_execs_with_main_thread_only(group):
    gw = group.makegateway("popen//execmodel=main_thread_only")
    for i in range(20):
        assert gw.remote_exec("channel.send(%d)" % i).receive(timeout=10) == i


def test_remote_print_does_not_corrupt_the_stream(gw, capfd):
    ch = gw.remote_exec("import os\nprint('hello from the worker')\nos.write(1, b'raw\\n')\nchannel.send('fine')")
    assert ch.receive(timeout=10) == "fine"
    ch.waitclose(10)
