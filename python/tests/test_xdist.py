"""What pytest-xdist needs from execnet beyond the API itself, each in the
way xdist's workermanage.py, remote.py, looponfail.py and dsession.py use
it; and, when pytest-xdist is installed, `pytest -n` itself on this engine."""

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

import execnet_rs as execnet

import remote_helpers
from conftest import pid_alive, run_python


# ---------------------------------------------------------------- XSpec as xdist handles it

def test_xspec_as_nodemanager_builds_it(group, tmp_path):
    """NodeManager: prefix execmodel, set chdir when absent, allocate_id,
    then makegateway with the spec whose attributes it wrote."""
    spec = execnet.XSpec("popen")
    if getattr(spec, "execmodel", None) != "main_thread_only":
        spec = execnet.XSpec("execmodel=main_thread_only//%s" % spec)
    assert spec.execmodel == "main_thread_only" and spec.popen is True
    assert spec._samefilesystem()
    assert spec.chdir is None
    spec.chdir = str(tmp_path)
    assert not spec._samefilesystem()
    group.allocate_id(spec)
    assert spec.id == "gw0"
    # str() is the string it was made from: the attributes written later
    # do not change it, and it parses back to an equal spec
    assert str(spec) == "execmodel=main_thread_only//popen"
    assert execnet.XSpec(str(spec)) == execnet.XSpec("execmodel=main_thread_only//popen")
    gw = group.makegateway(spec)
    assert gw.id == "gw0" and gw.spec is spec
    cwd = gw.remote_exec("import os; channel.send(os.getcwd())").receive(timeout=20)
    assert cwd == str(tmp_path)
    assert gw.remote_status().execmodel == "main_thread_only"


def test_xspec_hash_eq_as_rsync_bookkeeping_uses_them():
    """NodeManager keeps a set of (spec, source) already rsynced."""
    seen = {(execnet.XSpec("ssh=host//chdir=x"), "root")}
    assert (execnet.XSpec("ssh=host//chdir=x"), "root") in seen
    assert (execnet.XSpec("ssh=host//chdir=y"), "root") not in seen
    spec = execnet.XSpec("popen//via=p")
    assert spec.via == "p" and spec.popen is True
    spec.via = None
    assert spec.via is None


# ---------------------------------------------------------------- execmodel main_thread_only

def test_group_main_thread_only_runs_execs_on_the_main_thread():
    group = execnet.Group(execmodel="main_thread_only")
    try:
        assert group.execmodel.backend == "main_thread_only"
        gw = group.makegateway("popen")
        assert gw.execmodel.backend == "main_thread_only"
        ch = gw.remote_exec(
            "import threading\n"
            "channel.send(threading.current_thread() is threading.main_thread())\n"
            "channel.send(channel.gateway.execmodel.backend)")
        assert ch.receive(timeout=20) is True
        assert ch.receive(timeout=20) == "main_thread_only"
        # xdist's worker builds its queue from the gateway's execmodel
        ch = gw.remote_exec(
            "m = channel.gateway.execmodel\n"
            "lock, ev = m.RLock(), m.Event()\n"
            "with lock:\n"
            "    ev.set()\n"
            "channel.send(ev.is_set())")
        assert ch.receive(timeout=20) is True
    finally:
        group.terminate(5)


def test_rinfo_first_then_module_then_rinfo_while_busy(group):
    """WorkerController.setup: ``_rinfo()`` before the first remote_exec
    (cached), then the long-running remote module; pytest-cov asks for
    ``_rinfo()`` again while the main thread is busy with it."""
    gw = group.makegateway("execmodel=main_thread_only//popen")
    info = gw._rinfo()
    assert info.executable == sys.executable
    assert info.pid > 0 and info.cwd == os.getcwd()
    assert tuple(info.version_info) == tuple(sys.version_info[:5])
    ch = gw.remote_exec(remote_helpers)  # holds the main thread until closed
    ch.send("x")
    assert ch.receive(timeout=20) == ("module", "x")
    # answered from the cache: no second exec that would be refused
    assert gw._rinfo() is info
    ch.close()


def test_remote_exec_module_keeps_its_file_name_and_main_guard(gw):
    ch = gw.remote_exec(remote_helpers)
    ch.send(2)
    assert ch.receive(timeout=20) == ("module", 2)
    ch.close()
    # the whole module ran as __channelexec__: its functions were defined
    ch = gw.remote_exec(
        "import sys\n"
        "channel.send(__name__)")
    assert ch.receive(timeout=20) == "__channelexec__"


def test_remote_exec_function_with_kwargs_as_looponfail_does(gw):
    ch = gw.remote_exec(remote_helpers.double, factor=10)
    ch.send(4)
    assert ch.receive(timeout=20) == 40
    ch.close()


# ---------------------------------------------------------------- events and how a worker ended

def _collect_until_end(ch, marker):
    events, done = [], threading.Event()

    def process_from_remote(item):
        if item is marker:
            events.append(("END", ch._getremoteerror()))
            done.set()
        else:
            events.append(item)

    ch.setcallback(process_from_remote, endmarker=marker)
    return events, done


class _Marker:
    """Like xdist's ``Marker.END``: an endmarker compared by identity."""


def test_events_then_endmarker_then_clean_end(gw):
    marker = _Marker()
    ch = gw.remote_exec(
        "channel.send(('workerready', {}))\n"
        "channel.send(('workerfinished', {'workeroutput': {}}))")
    events, done = _collect_until_end(ch, marker)
    assert done.wait(20)
    assert events == [("workerready", {}), ("workerfinished", {"workeroutput": {}}),
                      ("END", None)]


def test_worker_crash_reaches_the_callback_as_eof_error(gw):
    """xdist's "replacing crashed worker": the endmarker arrives and
    ``_getremoteerror()`` is an EOFError instance."""
    marker = _Marker()
    ch = gw.remote_exec(
        "import os\n"
        "channel.send(('workerready', {}))\n"
        "channel.receive()\n"
        "os._exit(1)")
    events, done = _collect_until_end(ch, marker)
    ch.send(("runtests", {"indices": [0]}))
    assert done.wait(20)
    assert events[0] == ("workerready", {})
    end, err = events[-1]
    assert end == "END" and isinstance(err, EOFError)
    # the gateway is down: sending raises OSError (as execnet's does), as
    # does a new remote_exec; the shutdown that xdist sends tolerates it
    with pytest.raises(OSError):
        ch.send(("shutdown", {}))
    with pytest.raises(OSError):
        gw.remote_exec("pass")


def test_remote_exception_reaches_the_callback_as_remote_error(gw):
    marker = _Marker()
    ch = gw.remote_exec("raise KeyboardInterrupt")
    events, done = _collect_until_end(ch, marker)
    assert done.wait(20)
    end, err = events[-1]
    assert isinstance(err, execnet.RemoteError)
    assert "KeyboardInterrupt" in err.formatted or err.formatted == "keyboard-interrupted"


def test_syntax_error_text_is_a_traceback(gw):
    ch = gw.remote_exec("def foo()\n return 1\n")
    with pytest.raises(execnet.RemoteError) as info:
        ch.receive(timeout=20)
    text = info.value.formatted
    assert text.startswith("Traceback (most recent call last):\n")
    assert "SyntaxError" in text and '"<remote exec>", line 1' in text


def test_channel_received_by_the_worker_and_dropped_ends_here(gw):
    """A channel sent to the worker inside an item, used and dropped there,
    closes on this side (execnet frees it at once)."""
    ch = gw.remote_exec("c = channel.receive()\nc.send(1)\ndel c")
    sub = gw.newchannel()
    ch.send(sub)
    assert sub.receive(timeout=20) == 1
    sub.waitclose(20)
    with pytest.raises(EOFError):
        sub.receive(timeout=20)


# ---------------------------------------------------------------- proxies

def test_via_proxy_gateway_as_px_and_tx_make_it(group):
    """``--px popen//id=p --tx 2*popen//via=p``: the proxy runs no worker
    code of its own; the workers are forks of one spawner its worker
    started."""
    proxy = group.makegateway(execnet.XSpec("popen//id=p"))
    specs = [execnet.XSpec("execmodel=main_thread_only//popen//via=p") for _ in range(2)]
    for spec in specs:
        group.allocate_id(spec)
    gws = [group.makegateway(spec) for spec in specs]
    assert [gw.id for gw in gws] == ["gw0", "gw1"]
    proxy_pid = proxy._rinfo().pid
    parents = set()
    for gw in gws:
        parents.add(gw.remote_exec("import os; channel.send(os.getppid())").receive(timeout=20))
    assert len(parents) == 1
    (spawner,) = parents
    with open("/proc/%d/stat" % spawner) as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == proxy_pid
    group.terminate(5)
    assert len(group) == 0


# ---------------------------------------------------------------- `import execnet` on the worker

REMOTE_USES_EXECNET = """
import execnet
from execnet.gateway_base import DumpError, ExecModel, Channel
assert isinstance(channel, execnet.Channel) or type(channel).__name__ == "Channel"
try:
    execnet.dumps(object())
    refused = False
except execnet.DumpError:
    refused = True
channel.send((execnet.dumps((1, "two", None)), refused,
              isinstance(channel.gateway.execmodel, ExecModel)
              or type(channel.gateway.execmodel).__name__.endswith("ExecModel"),
              DumpError is execnet.DumpError))
"""


def test_worker_import_execnet_with_the_package(gw):
    dumped, refused, _, same = gw.remote_exec(REMOTE_USES_EXECNET).receive(timeout=20)
    assert execnet.loads(dumped) == (1, "two", None)
    assert refused and same


def test_worker_import_execnet_without_any_installed(group):
    """A worker interpreter with no execnet at all (here: the alias and
    site-packages taken away) still gets what xdist's remote code uses,
    consistent with its own channel: ``dumps`` refuses what ``send``
    refuses, and its bytes load on this side."""
    gw = group.makegateway("popen")
    ch = gw.remote_exec(
        "import sys\n"
        "sys.modules.pop('execnet', None)\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'Alias' not in type(f).__name__]\n"
        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "import execnet\n"
        "channel.send(getattr(execnet, '__file__', None))\n" + REMOTE_USES_EXECNET)
    assert ch.receive(timeout=20) is None  # the worker's own, no file
    dumped, refused, is_model, same = ch.receive(timeout=20)
    assert execnet.loads(dumped) == (1, "two", None)
    assert refused and is_model and same
    ch = gw.remote_exec(
        "import execnet\n"
        "channel.send(execnet.loads(channel.receive()))")
    ch.send(execnet.dumps({"k": [2 ** 70, -1.5, b"b", frozenset({1})]}))
    assert ch.receive(timeout=20) == {"k": [2 ** 70, -1.5, b"b", frozenset({1})]}
    ch = gw.remote_exec("import execnet\nexecnet.loads(b'garbage')")
    with pytest.raises(execnet.RemoteError, match="LoadError"):
        ch.waitclose(20)


# ---------------------------------------------------------------- hosts

def test_socket_host_not_found(group):
    with pytest.raises(execnet.HostNotFound, match="nonexistent.invalid"):
        group.makegateway("socket=nonexistent.invalid:9000")
    assert len(group) == 0


def test_socket_installvia_without_an_address(group):
    """``socket//installvia=p``: a server on a free port, as execnet does."""
    group.makegateway("popen//id=p")
    gw = group.makegateway("socket//installvia=p//id=s")
    assert gw.id == "s"
    assert gw.remote_exec("channel.send(6 * 7)").receive(timeout=20) == 42


# ---------------------------------------------------------------- pytest -n on this engine

def _run_pytest(tmp_path, *args, timeout=300):
    env = dict(os.environ)
    env.pop("EXECNET_RS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def xdist_project(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""\
        import execnet
        def pytest_report_header(config):
            return "execnet: " + execnet.__file__
        """))
    (tmp_path / "test_a.py").write_text(textwrap.dedent("""\
        import os, pytest
        @pytest.mark.parametrize("i", range(20))
        def test_ok(i):
            assert i < 100
        def test_worker_id(worker_id):
            assert worker_id.startswith("gw")
        def test_crash():
            if os.environ.get("CRASH"):
                os._exit(1)
        """))
    return tmp_path


def test_pytest_n_runs_on_this_engine(xdist_project):
    result = _run_pytest(xdist_project, "-n", "2", "-v")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "execnet_rs" in out  # the controller's execnet is ours
    assert "22 passed" in out
    assert "[gw0]" in out and "[gw1]" in out


def test_pytest_n_replaces_a_crashed_worker(xdist_project):
    env_crash = dict(os.environ, CRASH="1")
    env_crash.pop("EXECNET_RS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"],
        cwd=xdist_project, env=env_crash, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "replacing crashed worker" in out
    assert "1 failed, 21 passed" in out
    assert "worker 'gw" in out and "crashed while running 'test_a.py::test_crash'" in out


def test_pytest_n_with_a_proxy_gateway(xdist_project):
    result = _run_pytest(xdist_project, "--px", "popen//id=p", "--tx", "2*popen//via=p",
                         "--dist", "load")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "22 passed" in out


# ---------------------------------------------------------------- programs the tests leave running

def _tagged_pids(tag):
    """Live processes whose command line contains ``tag``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if tag.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return [pid for pid in pids if pid_alive(pid)]


def _gone_within(tag, seconds):
    """Wait until no live process carries ``tag``; those left after
    ``seconds`` are killed (so a failing test leaves none) and returned."""
    deadline = time.monotonic() + seconds
    while _tagged_pids(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _tagged_pids(tag)
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    return left


def _busy_child_code(tag):
    """Remote code that starts a busy program (as a test under xdist might)
    and leaves it running."""
    return ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, '-c', 'while True: pass  # %s'])\n"
            "channel.send(p.pid)\n" % tag)


@pytest.mark.parametrize("how", ["terminate", "crash", "via"])
def test_programs_a_worker_started_end_with_it(how):
    """A program the remote code started and left running (a test's busy
    subprocess) goes when its gateway is terminated, when its worker
    crashes (xdist then replaces the worker), and behind a via= proxy.
    Python execnet leaves all three running."""
    tag = "execnet-rs-left-%s" % uuid.uuid4().hex
    group = execnet.Group()
    try:
        if how == "via":
            group.makegateway("popen//id=proxy")
            gw = group.makegateway("popen//via=proxy")
        else:
            gw = group.makegateway("popen")
        code = _busy_child_code(tag)
        if how == "crash":
            code += "channel.receive()\nimport os\nos._exit(1)\n"
        ch = gw.remote_exec(code)
        child = ch.receive(timeout=20)
        # it runs (its command line is set once the fork has exec'd)
        deadline = time.monotonic() + 20
        while _tagged_pids(tag) != [child] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _tagged_pids(tag) == [child]
        if how == "crash":
            ch.send("crash now")
            with pytest.raises(EOFError):
                ch.receive(timeout=20)
            # the controller goes on (as xdist does, replacing the worker)
            assert _gone_within(tag, 10) == []
        else:
            group.terminate(timeout=5)
            # gone when terminate returns (a controller may exit right after)
            assert _gone_within(tag, 5) == []
    finally:
        group.terminate(timeout=2)
        _gone_within(tag, 0)


def test_programs_a_worker_started_end_before_terminate_returns():
    """A controller that exits at once after terminate() (as a pytest
    controller may) leaves nothing running either."""
    tag = "execnet-rs-left-%s" % uuid.uuid4().hex
    try:
        result = run_python("""
            import os, execnet
            group = execnet.Group()
            gw = group.makegateway("popen")
            gw.remote_exec(%r).receive(timeout=20)
            group.terminate(timeout=5)
            os._exit(0)
            """ % _busy_child_code(tag))
        assert result.returncode == 0, result.stderr
        assert _gone_within(tag, 5) == []
    finally:
        _gone_within(tag, 0)


def test_pytest_n_leaves_no_program_behind(tmp_path):
    """`pytest -n 2` whose tests start busy programs and never stop them,
    one test crashing its worker: when pytest returns, none is left."""
    pytest.importorskip("xdist")
    tag = "execnet-rs-xdist-left-%s" % uuid.uuid4().hex
    (tmp_path / "test_spawn.py").write_text(textwrap.dedent("""\
        import os, subprocess, sys, pytest
        @pytest.mark.parametrize("i", range(4))
        def test_spawn(i):
            subprocess.Popen([sys.executable, "-c", "while True: pass  # %s"])
            if i == 1:
                os._exit(1)
        """ % tag))
    try:
        result = _run_pytest(tmp_path, "-n", "2")
        out = result.stdout + result.stderr
        assert "1 failed, 3 passed" in out, out
        assert "replacing crashed worker" in out
        assert _gone_within(tag, 5) == []
    finally:
        _gone_within(tag, 0)
