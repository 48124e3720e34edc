"""Gateway: opening, remote_exec, rinfo, status, exit/join, old constructors."""

import os
import sys
import threading
import time

import pytest

import execnet_rs as execnet
from conftest import pid_alive


def test_makegateway_defaults(gw):
    assert gw.id == "gw0"
    assert gw.spec.id == "gw0" and gw.spec.popen
    assert str(gw.spec) == "popen"
    assert gw.execmodel.backend == "thread"
    assert gw.hasreceiver()
    assert repr(gw) == "<Gateway id='gw0' receive-live, thread model>"
    with pytest.raises(AttributeError):
        gw.remoteaddress


def test_popen_starts_sys_executable_unless_python_says(group):
    gw = group.makegateway("popen")
    info = gw._rinfo()
    assert info.executable == sys.executable
    assert info.version_info[:3] == tuple(sys.version_info[:3])
    assert info.platform == sys.platform
    assert info.pid != os.getpid()
    assert info.cwd == os.getcwd()
    other = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    gw2 = group.makegateway("popen//python=%s" % other)
    assert gw2.remote_exec("import sys; channel.send(sys.executable)").receive() != sys.executable or other == sys.executable


def test_python_is_a_command_line_split_as_execnet_splits_it(group, tmp_path):
    """python= is split like shlex.split: quotes and backslashes keep a
    path with a space whole; words after it are arguments."""
    spaced = tmp_path / "my env"
    spaced.mkdir()
    (spaced / "python").symlink_to(sys.executable)
    check = "import sys; channel.send((sys.executable, sys.flags.ignore_environment))"
    gw = group.makegateway('popen//python="%s" -E' % (spaced / "python"))
    assert gw.remote_exec(check).receive(timeout=20) == (str(spaced / "python"), 1)
    gw = group.makegateway("popen//python=%s" % str(spaced / "python").replace(" ", "\\ "))
    assert gw.remote_exec(check).receive(timeout=20) == (str(spaced / "python"), 0)
    with pytest.raises(ValueError, match="quote"):
        group.makegateway("popen//python='%s" % (spaced / "python"))


def test_rinfo_is_cached_until_update(gw):
    first = gw._rinfo()
    assert gw._rinfo() is first
    again = gw._rinfo(update=True)
    assert again is not first and again.pid == first.pid
    assert "pid=%d" % first.pid in repr(first)


def test_remote_status(gw):
    ch = gw.remote_exec("channel.send('running')\nchannel.receive()")
    assert ch.receive() == "running"
    status = gw.remote_status()
    assert status.execmodel == "thread"
    assert status.numexecuting == 1
    assert status.numchannels >= 1
    ch.send(None)
    ch.waitclose(10)


def test_remote_exec_dedents_and_names(gw):
    ch = gw.remote_exec("""
        import sys
        channel.send((__name__, "channel" in globals()))
    """)
    assert ch.receive() == ("__channelexec__", True)


def test_kwargs_only_with_a_function(gw):
    with pytest.raises(TypeError, match="kwargs"):
        gw.remote_exec("pass", x=1)


def test_users_may_set_attributes(gw):
    gw.my_data = {"x": 1}
    assert gw.my_data == {"x": 1}


def test_chdir_nice_env(group, tmp_path):
    target = tmp_path / "made" / "here"
    gw = group.makegateway("popen//chdir=%s//nice=3//env:EXECNET_T=yes" % target)
    cwd, nice, env = gw.remote_exec(
        "import os; channel.send((os.getcwd(), os.nice(0), os.environ.get('EXECNET_T')))"
    ).receive()
    assert cwd == str(target)
    assert nice >= 3
    assert env == "yes"
    assert not gw.spec._samefilesystem()


def test_exit_then_join(group):
    gw = group.makegateway()
    pid = gw._rinfo().pid
    gw.exit()
    assert gw not in group
    gw.join(10)
    assert not gw.hasreceiver()
    assert not pid_alive(pid)
    gw.exit()  # again: nothing happens


def test_exit_returns_at_once_while_the_worker_is_busy(group):
    """execnet's test_exit_blocked_worker_execution_gateway, without its
    internal thread pool: exit() from another thread returns although
    the worker's main thread sleeps; terminate then ends the worker."""
    gw = group.makegateway()
    ch = gw.remote_exec("import time; channel.send(1); time.sleep(30)")
    assert ch.receive(timeout=20) == 1
    done = threading.Event()
    threading.Thread(target=lambda: (gw.exit(), done.set()), daemon=True).start()
    assert done.wait(5)
    group.terminate(0.5)
    assert not gw.hasreceiver()


def test_join_without_exit_returns_when_the_worker_dies(group):
    gw = group.makegateway()
    gw.remote_exec("import os; os._exit(0)")
    gw.join(20)
    assert not gw.hasreceiver()


def test_worker_death_ends_receives(gw):
    ch = gw.remote_exec("import os\nchannel.receive()\nos._exit(1)")
    waiter = gw.remote_exec("channel.receive()")
    ch.send(1)
    with pytest.raises(EOFError):
        waiter.receive(timeout=20)
    with pytest.raises(EOFError):
        waiter.waitclose(20)


def test_missing_interpreter_is_a_clear_error(group):
    with pytest.raises(OSError, match="no-such-python"):
        group.makegateway("popen//python=/no-such-python")
    assert len(group) == 0


def test_old_constructors():
    gw = execnet.PopenGateway()
    try:
        assert gw in execnet.default_group
        assert gw.remote_exec("channel.send(1)").receive() == 1
        other = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        gw2 = execnet.PopenGateway(python=other)
        assert gw2.spec.python == other
        sock = execnet.SocketGateway.new_remote(gw)
        assert sock.spec.socket.startswith("127.0.0.1:")
        worker_pid = gw._rinfo().pid
        ppid = sock.remote_exec("import os; channel.send(os.getppid())").receive()
        assert ppid == worker_pid  # the socket worker is a child of gw's worker
        sock.exit()
        gw2.exit()
    finally:
        gw.exit()
        execnet.default_group.terminate(5)


def test_socket_gateway_new_remote_any_port(group):
    gw = group.makegateway()
    sock = execnet.SocketGateway.new_remote(gw, ("127.0.0.1", 0))
    assert sock.remote_exec("channel.send(6 * 7)").receive() == 42
    assert sock.remoteaddress.startswith("127.0.0.1:")


def test_spec_typo_is_an_error_naming_the_key(group):
    with pytest.raises(ValueError, match="chdri"):
        group.makegateway("popen//chdri=/tmp")
    assert len(group) == 0


def test_workers_do_not_hold_our_inheritable_fds(group):
    """A pipe made inheritable for a child of ours ends when we close our
    end, though gateways (a direct worker, forks of a spawner) run: as with
    execnet, whose workers start with close_fds."""
    import select

    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        for spec in ("popen//spawn=direct", "popen", "popen"):
            assert group.makegateway(spec).remote_exec("channel.send(1)").receive() == 1
        os.close(w)
        w = None
        readable, _, _ = select.select([r], [], [], 10)
        assert readable and os.read(r, 1) == b"", "a worker holds the pipe's write end"
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
