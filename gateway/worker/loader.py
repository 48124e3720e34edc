import sys, os
if sys.version_info < (3, 8):
    sys.stderr.write("execnet: the worker needs Python >= 3.8, this is %d.%d.%d\n" % tuple(sys.version_info[:3]))
    sys.exit(1)
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
_src = _read(int.from_bytes(_read(4, "source length"), "little"), "source")
exec(compile(_src, "<execnet worker>", "exec"), {"__name__": "__execnet_worker__"})
