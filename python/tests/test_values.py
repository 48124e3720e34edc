"""Values: execnet's type set both ways, what cannot travel, dumps/loads."""

import collections
import enum
import io

import pytest

import execnet_rs as execnet

ECHO = "for item in channel:\n    channel.send(item)\n"

SAMPLES = [
    None, True, False, 0, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, -8192, -8193, 2**31, 2**63 - 1, -2**63, 2**63, -2**63 - 1,
    2**200, -(3**150), 0.0, -1.5, float("inf"), 1e300, 3 + 4j, -0.5j, b"", b"\x00\xff",
    "", "é€😀", "x" * 100000, b"y" * 300000, [], [1, [2, [3]]], (), (1,), (1, "a", None),
    {}, {1: 2, "a": [3], (1, 2): {"x": None}, None: frozenset({1})}, set(), {1, 2, "x"},
    frozenset(), frozenset({(1, 2), "z"}),
]


@pytest.fixture
def echo(gw):
    ch = gw.remote_exec(ECHO)
    yield ch
    ch.close()


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__ + ":" + repr(v)[:20])
def test_round_trip(echo, value):
    echo.send(value)
    got = echo.receive()
    assert got == value
    assert type(got) is type(value)


def test_nan_round_trip(echo):
    echo.send(float("nan"))
    got = echo.receive()
    assert got != got


def test_dict_order_is_kept(echo):
    d = {k: k * 2 for k in (5, 1, 9, 3)}
    echo.send(d)
    assert list(echo.receive().items()) == list(d.items())


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("value, expected", [
    (Color.RED, 1),
    (Name("n"), "n"),
    (Point(1, 2), (1, 2)),
    (collections.OrderedDict(a=1), {"a": 1}),
    (bytearray(b"ab"), b"ab"),
    (memoryview(b"cd"), b"cd"),
    (collections.defaultdict(list, b=[1]), {"b": [1]}),
])
def test_subclasses_travel_as_their_base_type(echo, value, expected):
    echo.send(value)
    got = echo.receive()
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("value, name", [
    (object(), "object"),
    ([1, lambda: 1], "function"),
    ({"k": Exception("x")}, "Exception"),
    (ValueError, "type"),
])
def test_unsendable_raises_dump_error_naming_the_type(echo, value, name):
    with pytest.raises(execnet.DumpError, match=name):
        echo.send(value)
    # the channel is still usable
    echo.send(1)
    assert echo.receive() == 1


def test_dump_error_is_a_data_format_error():
    assert issubclass(execnet.DumpError, execnet.DataFormatError)
    assert issubclass(execnet.LoadError, execnet.DataFormatError)


def test_too_deep_raises_dump_error(echo):
    deep = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(execnet.DumpError, match="deeper"):
        echo.send(deep)
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(execnet.DumpError):
        echo.send(cyclic)


def test_lone_surrogate_raises_dump_error(echo):
    with pytest.raises(execnet.DumpError, match="unicode"):
        echo.send("\ud800")


def test_worker_side_unsendable_is_a_remote_error(gw):
    ch = gw.remote_exec("channel.send(object())")
    with pytest.raises(execnet.RemoteError, match="DumpError"):
        ch.receive()


def test_channels_travel_inside_items_both_ways(gw):
    ch = gw.remote_exec("""
        (inner,) = channel.receive()
        inner.send("via inner")
        mine = channel.gateway.newchannel()
        channel.send({"ch": [mine]})
        mine.send(mine.receive() + 1)
    """)
    inner = gw.newchannel()
    ch.send((inner,))
    assert inner.receive(timeout=10) == "via inner"
    got = ch.receive(timeout=10)["ch"][0]
    assert isinstance(got, execnet.Channel)
    assert got.gateway is gw
    got.send(41)
    assert got.receive(timeout=10) == 42
    ch.waitclose(10)


def test_channel_of_another_gateway_cannot_be_sent(group):
    a = group.makegateway()
    b = group.makegateway()
    ch = a.remote_exec(ECHO)
    with pytest.raises(execnet.DumpError, match="another gateway"):
        ch.send(b.newchannel())


@pytest.mark.parametrize("value", [v for v in SAMPLES if not isinstance(v, float) or v == v])
def test_dumps_loads(value):
    data = execnet.dumps(value)
    assert isinstance(data, bytes)
    assert execnet.loads(data) == value
    f = io.BytesIO()
    execnet.dump(f, value)
    execnet.dump(f, "second")
    f.seek(0)
    assert execnet.load(f) == value
    assert execnet.load(f) == "second"


def test_loads_rejects_garbage():
    good = execnet.dumps([1, 2, 3])
    for bad in (b"", b"xx", good[:-1], good + b"\x00", b"\xff" * 20, good[:4] + b"\xfe" + good[5:]):
        with pytest.raises(execnet.LoadError):
            execnet.loads(bad)


def test_dumps_refuses_channels(gw):
    with pytest.raises(execnet.DumpError, match="Channel"):
        execnet.dumps([gw.newchannel()])


def test_gateway_base_names():
    from execnet_rs import gateway_base
    assert gateway_base.dumps is execnet.dumps
    assert gateway_base.DumpError is execnet.DumpError
    assert gateway_base.Channel is execnet.Channel
    assert gateway_base.get_execmodel("thread").backend == "thread"
    assert isinstance(gateway_base.get_execmodel("main_thread_only"), gateway_base.ExecModel)
    with pytest.raises(ValueError):
        gateway_base.get_execmodel("nope")


# Items are built into Python objects straight from their bytes, on every
# receive path: three million Nones (3 MB on the wire) would take 96 MB as
# the engine's Values, over its budget (max(64 MiB, 4 x the item)); as with
# execnet they arrive, whatever path takes them.
MANY_NONES = "channel.send([None] * 3000000)"


def test_a_ten_million_int_list_arrives_as_with_execnet(gw):
    ch = gw.remote_exec("channel.send(list(range(10**7)))")
    got = ch.receive(timeout=120)
    assert type(got) is list and len(got) == 10**7
    assert got[0] == 0 and got[-1] == 10**7 - 1 and got[123457] == 123457
    assert got == list(range(10**7))


def test_a_ten_million_int_list_travels_to_the_worker(gw):
    ch = gw.remote_exec(
        "x = channel.receive(); channel.send((len(x), x == list(range(10**7))))")
    ch.send(list(range(10**7)))
    assert ch.receive(timeout=120) == (10**7, True)


def test_many_nones_arrive_by_receive_and_iteration(gw):
    ch = gw.remote_exec(MANY_NONES)
    assert ch.receive(timeout=60) == [None] * 3000000
    ch = gw.remote_exec(MANY_NONES)
    (got,) = list(ch)
    assert len(got) == 3000000


def test_many_nones_arrive_through_a_callback(gw):
    import queue
    q = queue.Queue()
    ch = gw.remote_exec(MANY_NONES)
    ch.setcallback(q.put, endmarker="end")
    got = q.get(timeout=60)
    assert type(got) is list and len(got) == 3000000
    assert q.get(timeout=60) == "end"
    ch.waitclose(10)


def test_many_nones_arrive_through_a_receive_queue(group):
    gws = [group.makegateway("popen") for _ in range(2)]
    mch = execnet.MultiChannel([gw.remote_exec(MANY_NONES) for gw in gws])
    q = mch.make_receive_queue(endmarker="end")
    got = [q.get(timeout=60)[1] for _ in range(2 * len(gws))]
    assert sorted(len(x) for x in got if x != "end") == [3000000, 3000000]
    assert got.count("end") == 2


def test_loads_builds_what_dumps_wrote_at_any_size():
    data = execnet.dumps([None] * 3000000)
    assert len(data) < 3000020
    assert execnet.loads(data) == [None] * 3000000


def test_channels_in_received_containers_are_live(gw):
    ch = gw.remote_exec(
        "a = channel.gateway.newchannel(); b = channel.gateway.newchannel()\n"
        "channel.send({'pair': (a, b), 'set': frozenset([a])})\n"
        "a.send('via a'); b.send('via b')\n")
    got = ch.receive(timeout=10)
    a, b = got["pair"]
    assert got["set"] == frozenset([a])
    assert a.receive(timeout=10) == "via a"
    assert b.receive(timeout=10) == "via b"


class HashableList(list):
    __hash__ = object.__hash__


def test_an_unhashable_kind_as_a_key_raises_dump_error(echo):
    with pytest.raises(execnet.DumpError, match="list"):
        echo.send({HashableList([1]): 2})
    echo.send("still open")
    assert echo.receive(timeout=10) == "still open"
