"""Channel: execnet's channel API on the engine."""

import threading
import time

import pytest

import execnet_rs as execnet


def test_send_receive_and_iterate(gw):
    ch = gw.remote_exec("for x in channel:\n    channel.send(x * 2)\n")
    for i in range(5):
        ch.send(i)
    assert [ch.receive() for _ in range(5)] == [0, 2, 4, 6, 8]
    ch.close()
    assert ch.isclosed()
    ch = gw.remote_exec("for i in range(4):\n    channel.send(i)\n")
    assert list(ch) == [0, 1, 2, 3]
    assert ch.next if hasattr(ch, "next") else True


def test_receive_timeout_keeps_the_item_receivable(gw):
    ch = gw.remote_exec("channel.send(channel.receive())")
    with pytest.raises(ch.TimeoutError):
        ch.receive(timeout=0.05)
    assert issubclass(ch.TimeoutError, OSError)
    assert ch.TimeoutError is execnet.TimeoutError
    ch.send("late")
    assert ch.receive(timeout=10) == "late"


def test_receive_after_end_raises_eof(gw):
    ch = gw.remote_exec("channel.send(1)")
    assert ch.receive() == 1
    with pytest.raises(EOFError):
        ch.receive()
    with pytest.raises(EOFError):
        ch.receive()


def test_remote_error_once_then_eof(gw):
    ch = gw.remote_exec("def fail():\n    raise ValueError('no good')\nfail()\n")
    with pytest.raises(execnet.RemoteError) as info:
        ch.receive()
    assert ch.RemoteError is execnet.RemoteError
    text = str(info.value)
    assert "ValueError: no good" in text
    assert "line 3" in text and "line 2" in text and "in fail" in text
    assert info.value.formatted == text
    with pytest.raises(EOFError):
        ch.receive()


def test_waitclose_raises_the_remote_error(gw):
    ch = gw.remote_exec("raise KeyError('k')")
    with pytest.raises(execnet.RemoteError, match="KeyError"):
        ch.waitclose(10)
    ch.waitclose(10)  # reported once


def test_waitclose_timeout(gw):
    ch = gw.remote_exec("channel.receive()")
    with pytest.raises(ch.TimeoutError):
        ch.waitclose(0.05)
    ch.send(None)
    ch.waitclose(10)


def test_close_with_error_reaches_the_remote(gw):
    ch = gw.remote_exec("""
        try:
            channel.receive()
        except channel.RemoteError as e:
            channel.gateway.newchannel  # the worker's API is there
            out = channel.gateway.newchannel()
            import sys
        """)
    ch2 = gw.remote_exec("""
        c = channel.receive()
        try:
            c.receive()
        except c.RemoteError as e:
            channel.send(str(e))
        """)
    inner = gw.newchannel()
    ch2.send(inner)
    inner.close("it broke")
    assert ch2.receive(timeout=10) == "it broke"
    ch.close()


def test_send_on_closed_channel_raises_oserror(gw):
    ch = gw.remote_exec("pass")
    ch.waitclose(10)
    with pytest.raises(OSError, match="cannot send"):
        ch.send(1)


def test_identity_hash_eq_repr(gw):
    ch = gw.remote_exec("channel.send(channel.receive())")
    assert ch.gateway is gw
    assert isinstance(ch.id, int) and ch.id % 2 == 1
    assert ch == ch and hash(ch) == hash(ch)
    other = gw.newchannel()
    assert ch != other
    assert {ch: 1}[ch] == 1
    assert repr(ch) == "<Channel id=%d open>" % ch.id
    ch.send(ch)
    back = ch.receive()
    assert back == ch and hash(back) == hash(ch)
    ch.waitclose(10)
    assert repr(ch).endswith("closed>")


def test_setcallback_gets_queued_items_then_new_ones_and_endmarker(gw):
    ch = gw.remote_exec("for i in range(3):\n    channel.send(i)\nfor x in channel:\n    channel.send(x)\n")
    assert ch.receive() == 0
    items = []
    done = threading.Event()

    got3 = threading.Event()

    def cb(item):
        items.append((item, threading.current_thread() is threading.main_thread()))
        if item == 3:
            got3.set()
        if item == "END":
            done.set()

    ch.setcallback(cb, endmarker="END")
    ch.send(3)
    assert got3.wait(10)
    ch.close()
    assert done.wait(10)
    ch.waitclose(10)
    assert [i for i, _ in items] == [1, 2, 3, "END"]
    assert not any(on_main for _, on_main in items)
    with pytest.raises(OSError, match="callback"):
        ch.receive()
    with pytest.raises(OSError, match="callback already"):
        ch.setcallback(print)


def test_setcallback_endmarker_none_and_objects(gw):
    marker = object()
    for end in (None, marker):
        ch = gw.remote_exec("channel.send(1)")
        got = []
        ch.setcallback(got.append, endmarker=end)
        ch.waitclose(10)
        assert got == [1, end] and got[1] is end


def test_setcallback_without_endmarker(gw):
    ch = gw.remote_exec("channel.send(1)")
    got = []
    ch.setcallback(got.append)
    ch.waitclose(10)
    assert got == [1]


def test_callback_error_closes_the_channel_with_its_traceback(gw):
    ch = gw.remote_exec("""
        channel.send(1)
        try:
            channel.receive()
        except channel.RemoteError as e:
            channel.gateway._report = str(e)
        res = channel.gateway.newchannel()
        """)
    probe = gw.remote_exec("""
        import time
        for _ in range(1000):
            if hasattr(channel.gateway, "_report"):
                break
            time.sleep(0.01)
        channel.send(getattr(channel.gateway, "_report", None))
        """)

    def cb(item):
        raise ValueError("callback says no")

    ch.setcallback(cb)
    report = probe.receive(timeout=20)
    assert report is not None
    assert "ValueError: callback says no" in report


def test_callback_may_use_the_gateway(gw):
    """No engine lock is held while a callback runs: it can send, open
    channels and ask the worker things."""
    ch = gw.remote_exec("channel.send(1)\nchannel.send(channel.receive())")
    results = []
    done = threading.Event()

    def cb(item):
        if item == 1:
            results.append(gw.remote_status().numexecuting)
            echo = gw.remote_exec("channel.send(channel.receive())")
            echo.send("inner")
            results.append(echo.receive(timeout=10))
            ch.send("back")
        else:
            results.append(item)
            done.set()

    ch.setcallback(cb)
    assert done.wait(20)
    assert results[1:] == ["inner", "back"]


def test_makefile_write_and_read(gw):
    ch = gw.remote_exec("""
        result = channel.receive()
        f = channel.makefile("r")
        first = f.readline()
        rest = f.read()
        result.send((first, rest))
        """)
    result = gw.newchannel()
    ch.send(result)
    w = ch.makefile("w")
    assert not w.isatty()
    w.write("line one\n")
    w.writelines(["two ", "three"])
    w.flush()
    ch.close()
    assert result.receive(timeout=10) == ("line one\n", "two three")

    ch = gw.remote_exec("""
        f = channel.makefile("w")
        f.write("abc\\ndef")
        f.close()  # without proxyclose, the channel stays open
        """)
    r = ch.makefile("r")
    assert r.readline() == "abc\n"
    assert r.read(2) == "de"
    assert r.read() == "f"
    with pytest.raises(ValueError):
        ch.makefile("x")


def test_reconfigure_is_accepted(gw):
    ch = gw.remote_exec("channel.send(channel.receive())")
    ch.reconfigure(py2str_as_py3str=True, py3str_as_py2str=False)
    ch.send("s")
    assert ch.receive() == "s"


def test_getremoteerror_from_the_endmarker_callback(gw):
    """pytest-xdist's pattern: at the endmarker, ask how the channel ended."""
    ch = gw.remote_exec("channel.send(1)\nraise RuntimeError('x')")
    seen = []
    done = threading.Event()

    def cb(item):
        if item == "END":
            seen.append(ch._getremoteerror())
            done.set()

    ch.setcallback(cb, endmarker="END")
    assert done.wait(20)
    err = seen[0]
    assert isinstance(err, execnet.RemoteError)
    assert "RuntimeError: x" in err.formatted
    assert ch._getremoteerror() is None  # reported once
    ch.waitclose(10)


def test_getremoteerror_clean_end_and_open(gw):
    ch = gw.remote_exec("channel.receive()")
    assert ch._getremoteerror() is None
    ch.send(None)
    ch.waitclose(10)
    assert ch._getremoteerror() is None


def test_getremoteerror_after_worker_death_is_an_eof_error(gw):
    ch = gw.remote_exec("import os\nchannel.send(1)\nchannel.receive()\nos._exit(3)")
    seen = []
    done = threading.Event()

    def cb(item):
        if item == "END":
            seen.append(ch._getremoteerror())
            done.set()
        elif item == 1:
            ch.send("die")

    ch.setcallback(cb, endmarker="END")
    assert done.wait(20)
    assert isinstance(seen[0], EOFError)


def test_remote_error_pickles(gw):
    import pickle

    ch = gw.remote_exec("raise ValueError('pickled')")
    with pytest.raises(execnet.RemoteError) as info:
        ch.receive()
    back = pickle.loads(pickle.dumps(info.value))
    assert isinstance(back, execnet.RemoteError)
    assert back.formatted == info.value.formatted
    assert "ValueError: pickled" in repr(back)


def test_isclosed_only_after_the_callback_had_every_item(gw):
    """As in execnet, whose receiver thread runs the callbacks and the close
    in arrival order: a channel with a callback is not closed while its
    callback still has items to run."""
    import time

    got = []

    def slow(item):
        time.sleep(0.05)
        got.append(item)

    ch = gw.remote_exec("for i in range(5):\n    channel.send(i)")
    ch.setcallback(slow)
    deadline = time.monotonic() + 20
    while not ch.isclosed():
        assert time.monotonic() < deadline, "the channel never closed"
        time.sleep(0.005)
    assert got == [0, 1, 2, 3, 4]
    # closed here: closed at once, whatever the callback still has
    ch2 = gw.remote_exec("channel.send(1)\nchannel.receive()")
    ch2.setcallback(slow)
    ch2.close()
    assert ch2.isclosed()
