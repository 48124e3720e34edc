"""The GIL is released while the engine waits; callbacks hold it only to run."""

import threading
import time

import execnet_rs as execnet


def test_blocking_calls_release_the_gil(gw):
    ch = gw.remote_exec("channel.send(channel.receive())")
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        waiter = threading.Thread(target=lambda: counter.append(ch.receive()))
        waiter.start()
        before = counter[0]
        deadline = time.monotonic() + 10
        while counter[0] < before + 100000 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert counter[0] >= before + 100000
        ch.send("done")
        waiter.join(10)
        assert counter[-1] == "done"
    finally:
        stop.set()
        t.join()


def test_many_threads_share_a_gateway(gw):
    results = {}

    def work(i):
        ch = gw.remote_exec("channel.send(channel.receive() ** 2)")
        ch.send(i)
        results[i] = ch.receive(timeout=20)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: i * i for i in range(16)}


def test_callback_blocking_does_not_block_other_channels(gw):
    """A callback waiting for the main thread must not hold any engine lock
    or the GIL while it waits."""
    release = threading.Event()
    seen = []
    cb_channel = gw.remote_exec("channel.send('first')\nchannel.send('second')")

    def cb(item):
        seen.append(item)
        release.wait(20)

    cb_channel.setcallback(cb)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.001)
    other = gw.remote_exec("channel.send(channel.receive() + 1)")
    other.send(1)
    assert other.receive(timeout=10) == 2
    assert seen == ["first"]
    release.set()
    cb_channel.waitclose(10)
    assert seen == ["first", "second"]


def test_send_blocks_on_credit_without_the_gil(gw):
    """A receiver that does not take items makes the sender wait (bounded
    memory); the waiting sender lets other threads run."""
    ch = gw.remote_exec("channel.receive()\nimport time\ntime.sleep(0.5)\nfor x in channel: pass")
    ch.send("start")
    sent = [0]
    payload = b"x" * (1 << 20)

    def sender():
        for _ in range(40):
            ch.send(payload)
            sent[0] += 1
        ch.close()

    t = threading.Thread(target=sender)
    t.start()
    t.join(60)
    assert sent[0] == 40
    ch.waitclose(30)
