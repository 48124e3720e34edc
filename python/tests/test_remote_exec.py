"""remote_exec with a module or a function, as execnet has it."""

import pytest

import remote_helpers


def test_module_runs_whole_with_its_file_name(gw):
    ch = gw.remote_exec(remote_helpers)
    ch.send(1)
    assert ch.receive(timeout=10) == ("module", 1)
    ch.close()


def test_function_with_kwargs(gw):
    ch = gw.remote_exec(remote_helpers.double, factor=3)
    ch.send(5)
    assert ch.receive(timeout=10) == 15
    ch = gw.remote_exec(remote_helpers.double)
    ch.send("ab")
    assert ch.receive(timeout=10) == "abab"


def test_function_traceback_names_its_file_and_line(gw):
    ch = gw.remote_exec(remote_helpers.fails)
    with pytest.raises(ch.RemoteError) as info:
        ch.receive(timeout=10)
    text = str(info.value)
    assert "remote_helpers.py" in text
    assert "line 17" in text and "in fails" in text
    assert 'raise ValueError("failing on line %d" % (x + 16))' in text
    assert "failing on line 17" in text


def test_function_rules():
    import execnet_rs.gateway as g

    with pytest.raises(ValueError, match="lambda"):
        g._source_of_function(lambda channel: None)

    def no_channel(x):
        pass

    with pytest.raises(ValueError, match="channel"):
        g._source_of_function(no_channel)
    y = 1

    def closure(channel):
        return y

    with pytest.raises(ValueError, match="closure"):
        g._source_of_function(closure)
    with pytest.raises(ValueError, match="globals"):
        g._source_of_function(remote_helpers.uses_global)


def test_nested_function_is_dedented(gw):
    def inner(channel, n):
        channel.send(n + 1)

    ch = gw.remote_exec(inner, n=41)
    assert ch.receive(timeout=10) == 42


def test_kwargs_values_travel_as_items(gw):
    def show(channel, a, b, c):
        channel.send((a, b, c))

    ch = gw.remote_exec(show, a=[1, {2: 3}], b=None, c=2**80)
    assert ch.receive(timeout=10) == ([1, {2: 3}], None, 2**80)
