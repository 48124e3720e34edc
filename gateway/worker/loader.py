import sys, os
if sys.version_info < (3, 8):
    sys.stderr.write("execnet: the worker needs Python >= 3.8, this is %d.%d.%d\n" % tuple(sys.version_info[:3]))
    sys.exit(1)
try:  # CPython: already loaded, no import cost
    from _frozen_importlib_external import MAGIC_NUMBER as _magic
except ImportError:  # other interpreters
    from importlib.util import MAGIC_NUMBER as _magic
# fds that came through exec (not close-on-exec) belong to the opener, not
# to the worker: closed, as execnet (Popen with close_fds) does; a pipe the
# opener made for a child of its own must end when that child ends
try:
    _fds = os.listdir("/proc/self/fd" if sys.platform.startswith("linux") else "/dev/fd")
except OSError:
    _fds = ()
for _fd in _fds:
    try:
        if int(_fd) > 2 and os.get_inheritable(int(_fd)):
            os.close(int(_fd))
    except (OSError, ValueError):
        pass
os.write(1, b"EXNL" + _magic)
def _read(n, what):
    parts = []
    while n:
        b = os.read(0, n)
        if not b:
            sys.stderr.write("execnet: the stream ended before the worker %s was complete (%d bytes missing)\n" % (what, n))
            sys.exit(1)
        parts.append(b)
        n -= len(b)
    return b"".join(parts)
_head = _read(5, "header")
_body = _read(int.from_bytes(_head[:4], "little"), "source")
if _head[4:] == b"m":
    import marshal
    _code = marshal.loads(_body)
else:
    _code = compile(_body, "<execnet worker>", "exec")
    if _head[4:] == b"S":
        import marshal
        _body = marshal.dumps(_code)
        _body = b"EXNC" + len(_body).to_bytes(4, "little") + _body
        while _body:
            _body = _body[os.write(1, _body):]
del _head, _body
exec(_code, {"__name__": "__execnet_worker__"})
