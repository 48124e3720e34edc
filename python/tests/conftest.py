"""Fixtures for the execnet_rs tests: real gateways to real interpreters."""

import os
import subprocess
import sys
import textwrap

import pytest

import execnet_rs as execnet


@pytest.fixture
def group():
    g = execnet.Group()
    yield g
    g.terminate(timeout=2)


@pytest.fixture
def gw(group):
    return group.makegateway("popen")


def run_python(code, env=None, timeout=60, **kwargs):
    """Run ``code`` in a fresh interpreter (this one's), return the
    CompletedProcess with text output."""
    full_env = dict(os.environ)
    full_env.pop("EXECNET_RS", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs)


def pid_alive(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
