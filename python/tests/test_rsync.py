"""execnet.RSync on the engine's rsync, as execnet and pytest-xdist use it."""

import fnmatch
import os
import re

import pytest

import execnet_rs as execnet


@pytest.fixture
def tree(tmp_path):
    source = tmp_path / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (source / "sub" / "deeper" / "c.py").write_text("print('c')\n")
    (source / "empty").mkdir()
    os.symlink("a.txt", source / "rel-link")
    os.symlink(str(source / "sub"), source / "abs-inside")
    os.symlink("/nonexistent/elsewhere", source / "dangling")
    return source


class Recording(execnet.RSync):
    """Counts what was sent, per gateway, through the overridable hook."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent = []

    def _report_send_file(self, gateway, modified_rel_path):
        self.sent.append((gateway.id, modified_rel_path))


def test_files_dirs_links_to_two_targets(tree, tmp_path, group):
    gw1 = group.makegateway("popen//id=one")
    gw2 = group.makegateway("popen//id=two")
    dest1, dest2 = tmp_path / "d1", tmp_path / "d2"
    finished = []
    rsync = Recording(tree, verbose=False)
    rsync.add_target(gw1, dest1, finishedcallback=lambda: finished.append(1))
    rsync.add_target(gw2, str(dest2), finishedcallback=lambda: finished.append(2))
    rsync.send()
    assert sorted(finished) == [1, 2]
    for dest in (dest1, dest2):
        assert (dest / "a.txt").read_text() == "alpha"
        assert (dest / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 40
        assert (dest / "sub" / "deeper" / "c.py").read_text() == "print('c')\n"
        assert (dest / "empty").is_dir()
        assert os.readlink(dest / "rel-link") == "a.txt"
        # a link into the tree points into the copy
        assert os.readlink(dest / "abs-inside") == str(dest / "sub")
        assert os.readlink(dest / "dangling") == "/nonexistent/elsewhere"
    files = {"a.txt", "sub/b.bin", "sub/deeper/c.py"}
    assert {p for g, p in rsync.sent if g == "one"} == files
    assert {p for g, p in rsync.sent if g == "two"} == files


def test_unchanged_files_are_not_sent_again(tree, tmp_path, gw):
    dest = tmp_path / "dest"
    first = Recording(tree, verbose=False)
    first.add_target(gw, dest)
    first.send()
    assert len(first.sent) == 3
    again = Recording(tree, verbose=False)
    again.add_target(gw, dest)
    again.send()
    assert again.sent == []
    # a changed file is sent; a touched but equal one is compared by checksum
    (tree / "a.txt").write_text("ALPHA")
    os.utime(tree / "sub" / "deeper" / "c.py", (1, 1))
    third = Recording(tree, verbose=False)
    third.add_target(gw, dest)
    third.send()
    assert [p for _, p in third.sent] == ["a.txt"]
    assert (dest / "a.txt").read_text() == "ALPHA"


def test_delete_removes_what_the_source_lacks(tree, tmp_path, gw):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "stale.txt").write_text("old")
    (dest / "stale-dir").mkdir()
    keep = execnet.RSync(tree, verbose=False)
    keep.add_target(gw, dest)
    keep.send()
    assert (dest / "stale.txt").exists()
    delete = execnet.RSync(tree, verbose=False)
    delete.add_target(gw, dest, delete=True)
    delete.send()
    assert not (dest / "stale.txt").exists()
    assert not (dest / "stale-dir").exists()
    assert (dest / "a.txt").exists()


class HostRSyncLike(execnet.RSync):
    """What pytest-xdist's HostRSync does: ignore patterns in filter, a
    report built from _sourcedir and _verbose and the gateway's spec."""

    def __init__(self, sourcedir, *, ignores=(), verbose=True):
        self._ignores = [re.compile(fnmatch.translate(x)) for x in ignores]
        super().__init__(sourcedir=sourcedir, verbose=verbose)

    def filter(self, path):
        name = os.path.basename(path)
        return not any(c.match(name) or c.match(str(path)) for c in self._ignores)

    def _report_send_file(self, gateway, modified_rel_path):
        if self._verbose > 0:
            path = os.path.basename(self._sourcedir) + "/" + modified_rel_path
            print("%s:%s <= %s" % (gateway.spec, gateway.spec.chdir, path))


def test_subclass_as_pytest_xdist_writes_it(tree, tmp_path, group, capsys):
    dest = tmp_path / "work"
    gw = group.makegateway("execmodel=main_thread_only//popen//chdir=%s" % dest)
    (tree / "junk.pyc").write_bytes(b"x")
    rsync = HostRSyncLike(tree, ignores=["*.pyc", "deeper"], verbose=1)
    assert rsync._sourcedir == str(tree) and rsync._verbose == 1
    # relative to the worker's working directory (its chdir)
    rsync.add_target(gw, os.path.basename(str(tree)), delete=True)
    rsync.send()
    copy = dest / "source"
    assert (copy / "a.txt").exists() and (copy / "sub" / "b.bin").exists()
    assert not (copy / "junk.pyc").exists()
    assert not (copy / "sub" / "deeper").exists()
    out = capsys.readouterr().out
    assert "<= source/a.txt" in out and "junk.pyc" not in out


def test_default_report_prints_unless_not_verbose(tree, tmp_path, gw, capsys):
    rsync = execnet.RSync(tree)
    rsync.add_target(gw, tmp_path / "d1")
    rsync.send()
    assert "a.txt" in capsys.readouterr().out
    quiet = execnet.RSync(tree, verbose=False)
    quiet.add_target(gw, tmp_path / "d2")
    quiet.send()
    assert capsys.readouterr() == ("", "")


def test_callback_gets_list_and_acks(tree, tmp_path, gw):
    seen = []
    rsync = execnet.RSync(tree, callback=lambda *a: seen.append(a), verbose=False)
    rsync.add_target(gw, tmp_path / "dest")
    rsync.send()
    lists = [(size, ch) for cmd, size, ch in seen if cmd == "list"]
    acks = sorted(size for cmd, size, _ in seen if cmd == "ack")
    assert [size for size, _ in lists] == [5 + 10240 + 11]
    assert acks == [5, 11, 10240]
    assert lists[0][1].gateway is gw


def test_send_without_targets(tree):
    rsync = execnet.RSync(tree)
    with pytest.raises(OSError, match="no targets"):
        rsync.send()
    assert rsync.send(raises=False) is None


def test_targets_are_used_up_by_a_send(tree, tmp_path, gw):
    rsync = execnet.RSync(tree, verbose=False)
    rsync.add_target(gw, tmp_path / "dest")
    rsync.send()
    with pytest.raises(OSError):
        rsync.send()


def test_a_hook_exception_comes_out_of_send(tree, tmp_path, gw):
    class Boom(Exception):
        pass

    class Failing(execnet.RSync):
        def filter(self, path):
            if path.endswith("b.bin"):
                raise Boom(path)
            return True

    rsync = Failing(tree, verbose=False)
    rsync.add_target(gw, tmp_path / "dest")
    with pytest.raises(Boom, match="b.bin"):
        rsync.send()


def test_a_dead_target_is_an_oserror_and_the_others_finish(tree, tmp_path, group):
    alive = group.makegateway("popen")
    doomed = group.makegateway("popen")
    pid = doomed._rinfo().pid
    rsync = execnet.RSync(tree, verbose=False)
    rsync.add_target(doomed, tmp_path / "d-doomed")
    rsync.add_target(alive, tmp_path / "d-alive")
    os.kill(pid, 9)
    doomed.join(20)
    with pytest.raises(OSError, match=doomed.id):
        rsync.send()
    assert (tmp_path / "d-alive" / "a.txt").read_text() == "alpha"


def test_adding_a_gone_gateway_is_an_oserror(tree, tmp_path, group):
    gw = group.makegateway("popen")
    gw.exit()
    gw.join(20)
    rsync = execnet.RSync(tree, verbose=False)
    with pytest.raises(OSError):
        rsync.add_target(gw, tmp_path / "dest")


def test_over_ssh(tree, tmp_path, sshd, group):
    gw = group.makegateway("ssh=%s//python=python3" % sshd)
    rsync = Recording(tree, verbose=False)
    rsync.add_target(gw, tmp_path / "over-ssh")
    rsync.send()
    assert (tmp_path / "over-ssh" / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 40
    assert len(rsync.sent) == 3
