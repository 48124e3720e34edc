"""XSpec: execnet's spec object."""

import pytest

from execnet_rs import XSpec


def test_attributes():
    spec = XSpec("ssh=user@host//python=python3.12//chdir=work//nice=5//id=a//env:A=1//env:B=x=y//dont_write_bytecode")
    assert spec.ssh == "user@host"
    assert spec.python == "python3.12"
    assert spec.chdir == "work"
    assert spec.nice == "5"
    assert spec.id == "a"
    assert spec.env == {"A": "1", "B": "x=y"}
    assert spec.dont_write_bytecode is True
    assert spec.popen is None and spec.socket is None and spec.via is None
    assert spec.execmodel is None and spec.installvia is None
    assert spec.anything_else is None


def test_settable_and_str_round_trip():
    spec = XSpec("popen//python=python3")
    spec.id = "gw9"
    spec.execmodel = "main_thread_only"
    assert spec.id == "gw9"
    assert str(spec) == "popen//python=python3"
    assert XSpec(str(spec)) == XSpec("popen//python=python3")
    assert repr(spec) == "<XSpec 'popen//python=python3'>"


def test_hash_and_eq():
    a, b, c = XSpec("popen"), XSpec("popen"), XSpec("popen//id=x")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert a != "popen"


def test_samefilesystem():
    assert XSpec("popen")._samefilesystem()
    assert not XSpec("popen//chdir=x")._samefilesystem()
    assert not XSpec("ssh=host")._samefilesystem()


def test_bad_specs():
    with pytest.raises(ValueError, match="duplicate"):
        XSpec("popen//id=a//id=b")
    with pytest.raises(AttributeError):
        XSpec("popen//_private=1")
    with pytest.raises(ValueError):
        XSpec("popen////id=x")
    with pytest.raises(AttributeError):
        XSpec("popen")._private
