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


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A throwaway sshd on a free loopback port with generated keys; the ssh
    arguments that reach it (as ``ssh=ARGS``). Skipped without
    /usr/sbin/sshd, unless EXECNET_REQUIRE_SSHD=1 makes that a failure."""
    import getpass
    import socket
    import time

    sshd_bin = "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin):
        if os.environ.get("EXECNET_REQUIRE_SSHD") == "1":
            pytest.fail("EXECNET_REQUIRE_SSHD=1 but %s is missing" % sshd_bin)
        pytest.skip("no %s: ssh tests skipped" % sshd_bin)
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "known_hosts").write_text("[127.0.0.1]:%d %s" % (port, (d / "host_key.pub").read_text()))
    (d / "sshd_config").write_text(textwrap.dedent("""\
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {d}/host_key
        PidFile none
        AuthorizedKeysFile {d}/authorized_keys
        StrictModes no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        PermitRootLogin prohibit-password
        MaxSessions 64
        MaxStartups 64
        LogLevel ERROR
        """).format(port=port, d=d))
    if os.getuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=open(d / "sshd.log", "w"))
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("sshd did not start: %s" % (d / "sshd.log").read_text())
            time.sleep(0.02)
    args = ("-p %d -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s "
            "-o StrictHostKeyChecking=yes %s@127.0.0.1"
            % (port, d / "user_key", d / "known_hosts", getpass.getuser()))
    yield args
    proc.terminate()
    proc.wait(10)
