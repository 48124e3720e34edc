"""ssh gateways, through a throwaway local sshd."""

import execnet_rs as execnet


def test_ssh_gateway(sshd, group):
    gw = group.makegateway("ssh=%s" % sshd)
    assert gw.remoteaddress == sshd
    info = gw._rinfo()
    assert info.pid > 0
    ch = gw.remote_exec("channel.send(channel.receive() * 2)")
    ch.send([1])
    assert ch.receive(timeout=20) == [1, 1]
    assert not gw.spec._samefilesystem()


def test_ssh_gateway_old_constructor(sshd):
    gw = execnet.SshGateway(sshd, remotepython="python3")
    try:
        assert gw.spec.ssh == sshd and gw.spec.python == "python3"
        assert gw.remote_exec("import sys; channel.send(sys.version_info[0])").receive(timeout=20) == 3
    finally:
        gw.exit()
        gw.join(10)


def test_ssh_via_and_group(sshd, group):
    group.makegateway("ssh=%s//id=remote" % sshd)
    sub = group.makegateway("popen//via=remote//id=sub")
    assert sub.remote_exec("channel.send(1)").receive(timeout=20) == 1
    group.terminate(5)
    assert len(group) == 0
