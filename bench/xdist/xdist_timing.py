"""A pytest plugin for the controller of a `pytest -n N` run that records
when the workers are ready and how long the controller spent inside execnet
while it set them up; written as JSON to $XDIST_TIMING_OUT at the end.

    XDIST_TIMING_T0=<time.time() before the process started>
    XDIST_TIMING_OUT=<file> python -m pytest -p xdist_timing -n 8 ...

Times are seconds since XDIST_TIMING_T0. "engine" is the time spent in
the execnet calls pytest-xdist makes per worker while it sets them up, one
after the other on the controller's main thread: makegateway (start the
interpreter, bootstrap, handshake), gw._rinfo() and gw.remote_exec(module);
whatever execnet is imported (ours or Python's).
"""

import json
import os
import time

_T0 = float(os.environ.get("XDIST_TIMING_T0", time.time()))
_state = {"engine": 0.0, "calls": 0, "ready": [], "setup_start": None, "setup_end": None}


def _timed(cls, name):
    original = getattr(cls, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if _state["setup_end"] is None:
                _state["engine"] += time.perf_counter() - start
                _state["calls"] += 1

    wrapper.__wrapped__ = original
    setattr(cls, name, wrapper)


def pytest_configure(config):
    if not getattr(config.option, "numprocesses", None) and not config.getoption("tx", None):
        return
    import execnet

    _timed(type(execnet.default_group), "makegateway")
    gateway_cls = type(execnet.default_group).__module__.rsplit(".", 1)[0] + ".gateway"
    import importlib

    gw_cls = importlib.import_module(gateway_cls).Gateway
    _timed(gw_cls, "_rinfo")
    _timed(gw_cls, "remote_exec")
    _state["execnet"] = execnet.__file__


def pytest_xdist_setupnodes(config, specs):
    _state["setup_start"] = time.time() - _T0


def pytest_testnodeready(node):
    if _state["setup_end"] is None:
        # setup_nodes has returned once the first worker reports ready
        # (xdist processes events only after setting up every node)
        _state["setup_end"] = time.time() - _T0
    _state["ready"].append(time.time() - _T0)


def pytest_unconfigure(config):
    out = os.environ.get("XDIST_TIMING_OUT")
    if out and _state["ready"]:
        _state["end"] = time.time() - _T0
        with open(out, "w") as f:
            json.dump(_state, f)
