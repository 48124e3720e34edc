"""SocketGateway(host, port) against the project's own socket server."""

import os
import pathlib
import subprocess

import pytest

import execnet_rs as execnet

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cli():
    for candidate in (os.environ.get("EXECNET_CLI"), ROOT / "target" / "debug" / "execnet",
                      ROOT / "target" / "release" / "execnet"):
        if candidate and os.access(str(candidate), os.X_OK):
            return str(candidate)
    pytest.skip("the execnet CLI is not built (cargo build -p execnet); EXECNET_CLI names it")


@pytest.fixture
def server(tmp_path):
    token = tmp_path / "token"
    proc = subprocess.Popen([cli(), "serve", "--listen", "127.0.0.1:0", "--token-file", str(token)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line + proc.stderr.read()
    host, port = line.split()[-1].rsplit(":", 1)
    yield host, int(port), token
    proc.terminate()
    proc.wait(10)


def test_socket_gateway(server, monkeypatch):
    host, port, token = server
    monkeypatch.setenv("EXECNET_TOKEN", token.read_text().strip())
    gw = execnet.SocketGateway(host, port)
    try:
        assert gw.remoteaddress == "%s:%d" % (host, port)
        ch = gw.remote_exec("channel.send(channel.receive() + 1)")
        ch.send(1)
        assert ch.receive(timeout=20) == 2
    finally:
        gw.exit()
        gw.join(10)


def test_socket_gateway_with_token_file(server, group):
    host, port, token = server
    gw = group.makegateway("socket=%s:%d//token_file=%s" % (host, port, token))
    ch = gw.remote_exec("channel.send(channel.receive() * 3)")
    ch.send(14)
    assert ch.receive(timeout=20) == 42


def test_wrong_token_is_refused(server, group, tmp_path):
    host, port, _ = server
    bad = tmp_path / "bad"
    bad.write_text("0" * 64)  # strong enough, but not the server's
    bad.chmod(0o600)
    with pytest.raises(OSError, match="auth"):
        group.makegateway("socket=%s:%d//token_file=%s" % (host, port, bad))
