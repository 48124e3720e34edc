"""The receiving end of execnet's rsync.

Runs in the worker, one exec per target: `rsync_receive(channel, dest,
delete)`. The sending side streams the source tree (directories before
their contents), this end compares each file with what is already at `dest`
and asks only for those that differ; their contents then arrive in chunks.

Messages (sender -> here):
  ("tree", [entry, ...])    entries, in tree order, as the sender walks:
      (0, rel, mode, names)             a directory and the names in it
      (1, dir, first, names, meta)      the regular files of directory
                                        `dir`, numbered from `first`; `meta`
                                        holds per file its mode (u32), mtime
                                        in ns (i64) and size (u64),
                                        little-endian
      (2, rel, target, inside)          a symlink; `inside`: target is a
                                        path below the source root
  ("end",)                  no more entries
  ("part", i, data)         a chunk of file i; more follow
  ("files", [(i, data), ...])   the last (or only) chunk of each file i
  ("same", [i, ...])        these files have the content we have: only
                            their metadata is brought over
  ("gone", [i, ...])        these files could not be read: left alone
Replies (here -> sender):
  ("want", [(i, digest or None), ...])   send these; the digest (sha256 of
                                         our copy) lets the sender answer
                                         "same"
  ("compared",)             every entry was compared
  ("ack", [i, ...])         these files are in place
  ("done", stats)           everything is in place; the exec then returns

Paths travel as bytes (any file name survives); `rel` is relative to the
source root, b"" for the root itself; `names` are joined by NUL, which no
file name holds (packed so that a big directory decodes quickly here).

A file that exists is replaced by writing a temporary file next to it and
renaming it into place: a reader sees the old or the new contents, never
half, and a read-only file is replaced like any other. A new file is
written under its own name (cheaper); if the transfer stops, it is
removed, and one left behind by a crash has the wrong time, so the next
sync sends it again.
"""

import hashlib
import os
import shutil
import stat
import struct

_CHUNK = 1 << 20
_META = struct.Struct("<IqQ")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                return h.digest()
            h.update(block)


def _remove(path):
    """Remove whatever is at `path` (a tree too); never follows symlinks."""
    st = _lstat(path)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    try:
        shutil.rmtree(path)
    except OSError:
        # Read-only directories inside: make them writable and try again.
        os.chmod(path, 0o700)
        for root, dirs, _files in os.walk(path):
            for name in dirs:
                sub = os.path.join(root, name)
                if not os.path.islink(sub):
                    os.chmod(sub, 0o700)
        shutil.rmtree(path)


def _set_meta(path, mode, mtime=None):
    """Set the mode (and time) of the regular file at `path` through a
    descriptor, so that a symlink put there meanwhile is not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except PermissionError:
        # Not readable to us (a write-only file): by name, then.
        os.chmod(path, mode)
        if mtime is not None:
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
        return
    try:
        os.chmod(fd, mode)
        if mtime is not None:
            os.utime(fd, ns=(mtime, mtime))
    finally:
        os.close(fd)


def _check_name(name):
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise ValueError("rsync: refusing file name %r" % (name,))


def _split(names):
    """The names of a NUL-joined list, each one checked."""
    if not names:
        return []
    split = names.split(b"\0")
    if b"/" in names or b"" in split or b"." in split or b".." in split:
        raise ValueError("rsync: refusing file names %r" % (names[:200],))
    return split


def rsync_receive(channel, dest, delete):
    dest = os.path.abspath(os.path.expanduser(os.fsdecode(dest)))
    wanted = {}  # file number -> (path, mode, mtime_ns, new)
    writing = {}  # file number -> (fd or None once closed, path written)
    stats = {"files": 0, "same": 0, "dirs": 0, "links": 0, "deleted": 0}
    tmp_prefix = ".execnet-rsync.%d.%d." % (os.getpid(), channel.id)
    ended = False

    # Directories seen so far: relative path -> local path. A directory's
    # entry comes before anything in it, so every other entry's parent must
    # be here already; then only its last name needs checking.
    dirs = {b"": dest}

    def path_of(rel):
        parent, _, name = rel.rpartition(b"/")
        base = dirs.get(parent)
        if base is None:
            raise ValueError("rsync: %r comes before its directory" % (rel,))
        _check_name(name)
        return os.path.join(base, os.fsdecode(name))

    def on_dir(rel, mode, names):
        path = path_of(rel) if rel else dest
        dirs[rel] = path
        if rel:
            st = _lstat(path)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                _remove(path)
                st = None
            if st is None:
                os.mkdir(path)
                stats["dirs"] += 1
        else:
            # The root may be a symlink to a directory: the user named it.
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                os.unlink(path)
                st = None
            if st is None:
                os.makedirs(path)
                stats["dirs"] += 1
        # Directories stay writable for us, or the next sync could not
        # write into them.
        mode = stat.S_IMODE(mode) | 0o700
        if st is None or stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
        if delete:
            keep = set(map(os.fsdecode, _split(names)))
            for name in os.listdir(path):
                if name not in keep:
                    _remove(os.path.join(path, name))
                    stats["deleted"] += 1

    def on_files(parent, first, names, meta):
        """Compare the files of a directory; the ones to ask for."""
        base = dirs.get(parent)
        if base is None:
            raise ValueError("rsync: files of %r come before it" % (parent,))
        names = _split(names)
        if len(meta) != _META.size * len(names):
            raise ValueError("rsync: %d names but %d bytes of metadata" % (len(names), len(meta)))
        prefix = os.path.join(base, "")
        lstat, fsdecode, is_reg, imode = os.lstat, os.fsdecode, stat.S_ISREG, stat.S_IMODE
        wants = []
        for number, name, (mode, mtime, size) in zip(
            range(first, first + len(names)), names, _META.iter_unpack(meta)
        ):
            path = prefix + fsdecode(name)
            try:
                st = lstat(path)
            except FileNotFoundError:
                st = None
            digest = None
            if st is not None and is_reg(st.st_mode):
                if st.st_size == size:
                    if st.st_mtime_ns == mtime:
                        if imode(st.st_mode) != mode:
                            _set_meta(path, mode)
                        continue
                    digest = _digest(path)
            elif st is not None:
                _remove(path)
            if number in wanted:
                raise ValueError("rsync: file number %d listed twice" % (number,))
            wanted[number] = (path, mode, mtime, st is None or not is_reg(st.st_mode))
            wants.append((number, digest))
        return wants

    def on_link(rel, target, inside):
        path = path_of(rel)
        target = os.fsdecode(target)
        if inside:
            target = os.path.join(dest, target)
        st = _lstat(path)
        if st is not None:
            if stat.S_ISLNK(st.st_mode) and os.readlink(path) == target:
                return
            _remove(path)
        os.symlink(target, path)
        stats["links"] += 1

    def same(number):
        """File `number` has our content: bring its metadata over."""
        asked(number)
        path, mode, mtime, _new = wanted.pop(number)
        _set_meta(path, stat.S_IMODE(mode), mtime)
        stats["same"] += 1

    def asked(number):
        if number not in wanted:
            raise ValueError("rsync: file %r was not asked for" % (number,))

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW

    def create(number):
        """Open file `number` for writing: under its own name if it is new,
        else under a temporary name next to it."""
        path, _mode, _mtime, new = wanted[number]
        if new:
            try:
                return os.open(path, flags, 0o600), path
            except FileExistsError:
                pass  # something appeared meanwhile: replace it whole
        tmp = os.path.join(os.path.dirname(path), tmp_prefix + str(number))
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            # Left behind by a run that died; ours now.
            os.unlink(tmp)
            fd = os.open(tmp, flags, 0o600)
        return fd, tmp

    def write(number, data, last):
        asked(number)
        entry = writing.get(number)
        if entry is None:
            entry = writing[number] = create(number)
        fd, written = entry
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if last:
            path, mode, mtime, _new = wanted[number]
            os.chmod(fd, stat.S_IMODE(mode))
            os.utime(fd, ns=(mtime, mtime))
            writing[number] = (None, written)
            os.close(fd)
            if written != path:
                os.replace(written, path)
            del writing[number], wanted[number]
            stats["files"] += 1

    def forget(number):
        """File `number` could not be read on the sending side: what we
        have under its name stays."""
        asked(number)
        entry = writing.pop(number, None)
        if entry is not None:
            os.close(entry[0])
            os.unlink(entry[1])
        del wanted[number]

    try:
        while True:
            msg = channel.receive()
            tag = msg[0]
            if tag == "tree":
                wants = []
                for entry in msg[1]:
                    kind = entry[0]
                    if kind == 1:
                        wants.extend(on_files(*entry[1:]))
                    elif kind == 0:
                        on_dir(*entry[1:])
                    elif kind == 2:
                        on_link(*entry[1:])
                    else:
                        raise ValueError("rsync: unknown entry kind %r" % (kind,))
                if wants:
                    channel.send(("want", wants))
            elif tag == "part":
                write(msg[1], msg[2], False)
            elif tag == "files":
                done = []
                for number, data in msg[1]:
                    write(number, data, True)
                    done.append(number)
                channel.send(("ack", done))
            elif tag == "same":
                for number in msg[1]:
                    same(number)
                channel.send(("ack", msg[1]))
            elif tag == "gone":
                for number in msg[1]:
                    forget(number)
                channel.send(("ack", msg[1]))
            elif tag == "end":
                ended = True
                channel.send(("compared",))
            else:
                raise ValueError("rsync: unknown message %r" % (tag,))
            if ended and not wanted:
                channel.send(("done", stats))
                return
    finally:
        # Stopped half way (the sender went away, or an error): no
        # temporary or partly written new file is left behind.
        for fd, tmp in writing.values():
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.unlink(tmp)
            except OSError:
                pass
