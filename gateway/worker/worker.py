"""The Python worker of execnet-rs (wire format version 1, see wire/WIRE.md).

loader.py reads this source from the stream and runs it; framed messages
follow on the same stream. Stdlib only, Python >= 3.8, one file.

Threads: one reader thread decodes frames and dispatches them (queues items,
runs callbacks, answers Status, schedules execs). Execs run on the main
thread when it is idle (execnet's "primary thread"), else each in a new
thread; with execmodel "main_thread_only" they run one after another on the
main thread. Sending needs no writer thread: a sender appends its frame to an
output deque and, if no other thread is writing, writes everything queued in
one write/writev; a sender that finds another thread writing leaves its frame
to that thread.
"""

import os
import sys
import _thread
# The C modules behind queue, collections and weakref, imported directly:
# the public modules pull in threading, heapq, keyword, operator and more,
# which costs milliseconds at every start, and their classes are the same
# objects (queue.SimpleQueue is _queue.SimpleQueue). CPython has had all three
# since 3.7. On an interpreter without them (PyPy, GraalPy) the public modules
# serve: same classes, slower start. loader.py likewise prefers
# _frozen_importlib_external (always loaded in CPython) over importlib.util.
try:
    from _queue import SimpleQueue
    from _collections import deque
    from _weakref import ref as _weakref
except ImportError:  # not CPython
    from queue import SimpleQueue
    from collections import deque
    from weakref import ref as _weakref
from struct import Struct, error as _StructError
from io import FileIO
from time import monotonic as _monotonic
try:
    from select import poll as _poll, POLLIN as _POLLIN
except ImportError:  # no poll(): the reader thread does all the reading
    _poll = _POLLIN = None

MAGIC = b"EXNT"           # opens every Hello
PROTOCOL_VERSION = 1      # the wire version this worker speaks
WINDOW = 8 << 20          # receive window granted per channel
MAX_FRAME = 256 << 20     # largest frame body we accept
HALF = WINDOW // 2        # return credit once this much was taken
MAX_DEPTH = 200
CAP = 256 << 10           # reader buffer
GRACE = 0.002             # seconds the reading role waits for the thread that held it last
DOZE = 50                 # GRACE waits in a row under another leader before the reader thread sleeps
_NEVER = float("-inf")
BULK = 64 << 10           # bytes/str payloads this large are written without a copy
BURST_GAP = 20e-6         # a send this soon after the last one is in a burst: it joins the next write
BURST_BATCH = 256         # a burst writes itself out once this many frames wait
INTERRUPT_TEXT = "keyboard-interrupted"
MAIN_THREAD_ONLY_DEADLOCK_TEXT = (
    "concurrent remote_exec would cause deadlock for main_thread_only execmodel")
MAIN_THREAD_ONLY_GRACE = 1.0  # seconds a busy main thread has to finish (execnet's too)

# Wire tags (WIRE.md). Messages and values number their kinds separately, so
# one byte means a message at the start of a frame and a value type inside
# one (0x06 is ChannelClose there and Bytes here). Ints serve the decoders'
# comparisons; the one-byte bytes (B_ for messages, T_ for values) are built
# once here, so building frames costs no more than a literal would.
(M_HELLO, M_STATUS, M_RECONFIGURE, M_TERMINATE, M_EXEC, M_DATA, M_CLOSE,
 M_CLOSE_ERROR, M_LAST_MESSAGE, M_CREDIT) = range(10)
(V_NONE, V_BOOL, V_INT, V_BIGINT, V_FLOAT, V_COMPLEX, V_BYTES, V_STR, V_LIST,
 V_TUPLE, V_DICT, V_SET, V_FROZENSET, V_CHANNEL) = range(14)
B_HELLO, B_DATA, B_CLOSE, B_CLOSE_ERROR, B_LAST_MESSAGE, B_CREDIT = (bytes((t,)) for t in (
    M_HELLO, M_DATA, M_CLOSE, M_CLOSE_ERROR, M_LAST_MESSAGE, M_CREDIT))
(T_NONE, T_BOOL, T_INT, T_BIGINT, T_FLOAT, T_COMPLEX, T_BYTES, T_STR, T_LIST,
 T_TUPLE, T_DICT, T_SET, T_FROZENSET, T_CHANNEL) = (bytes((t,)) for t in range(14))

_TRUE, _FALSE = T_BOOL + b"\x01", T_BOOL + b"\x00"

_u32 = Struct("<I")
_p32 = _u32.pack
_f64 = Struct("<d")
_c128 = Struct("<dd")
_VB = [bytes((i,)) for i in range(128)]
_SMALL = [bytes((V_INT, ((i << 1) ^ (i >> 63)) & 0xFF)) for i in range(-64, 64)]
_writev = getattr(os, "writev", None)
_allocate_lock = _thread.allocate_lock
_start = _thread.start_new_thread
_get_ident = _thread.get_ident
_write = os.write
_os_exit = os._exit


def _varint(n):
    if n < 128:
        return _VB[n]
    if n < 16384:
        return bytes(((n & 127) | 128, n >> 7))
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _frame(body):
    return _p32(len(body)) + body


# ---------------------------------------------------------------- errors

class DataFormatError(Exception):
    pass


class DumpError(DataFormatError):
    """An item cannot be sent."""


class LoadError(DataFormatError):
    """Bytes that do not decode (a protocol error)."""


class RemoteError(Exception):
    """Exception containing a stringified error from the other side."""

    def __init__(self, formatted):
        super().__init__()
        self.formatted = formatted

    def __str__(self):
        return self.formatted

    def __repr__(self):
        return "%s: %s" % (self.__class__.__name__, self.formatted)

    def warn(self):
        if self.formatted != INTERRUPT_TEXT:
            try:
                sys.stderr.write("[%d] Warning: unhandled %r\n" % (os.getpid(), self))
            except Exception:
                pass


class TimeoutError(IOError):
    """Exception indicating that a timeout was reached."""


# Tracebacks name these as execnet's own (execnet.gateway_base.DumpError),
# not after the module the loader runs the worker as.
for _cls in (DataFormatError, DumpError, LoadError, RemoteError, TimeoutError):
    _cls.__module__ = "execnet.gateway_base"
del _cls


_format_lock = _allocate_lock()


def _errortext(exc, filename=None, source=None):
    """The traceback text of `exc` as the remote code's author wants it:
    their frames and the error, none of the worker's own frames (the exec
    machinery around their code, the encoder under a failed send). With
    `source`, lines of `filename` are shown from it: the file need not exist
    on this side."""
    try:
        import traceback
        import linecache
        with _format_lock:
            # the lines are looked up while the TracebackException is built
            saved = linecache.cache.get(filename)
            if source is not None:
                linecache.cache[filename] = (len(source), None,
                                             source.splitlines(True), filename)
            try:
                te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
            finally:
                if source is not None:
                    if saved is None:
                        linecache.cache.pop(filename, None)
                    else:
                        linecache.cache[filename] = saved
        seen = set()
        todo = [te]
        while todo:  # this exception and those chained to it
            t = todo.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            t.stack = traceback.StackSummary.from_list(
                [f for f in t.stack if f.filename != _OWN_FILE])
            todo.extend(x for x in (t.__cause__, t.__context__) if x is not None)
        text = "".join(te.format())
        if exc.__traceback__ is not None and not text.startswith("Traceback"):
            # only worker frames were dropped (a SyntaxError from compiling
            # the user's source): the header still says this is a traceback,
            # as execnet's texts do
            text = "Traceback (most recent call last):\n" + text
        return text
    except Exception:
        try:
            return "%s: %s" % (type(exc).__name__, exc)
        except Exception:
            return type(exc).__name__


_OWN_FILE = _errortext.__code__.co_filename


# ---------------------------------------------------------------- encoding

def _e_none(x, out, d):
    out.append(T_NONE)


def _e_bool(x, out, d):
    out.append(_TRUE if x else _FALSE)


def _e_int(x, out, d):
    if -64 <= x < 64:
        out.append(_SMALL[x + 64])
    elif -0x8000000000000000 <= x <= 0x7FFFFFFFFFFFFFFF:
        out.append(T_INT + _varint(((x << 1) ^ (x >> 63))))
    else:
        n = ((x if x >= 0 else ~x).bit_length() + 8) >> 3
        out.append(T_BIGINT + _varint(n))
        out.append(x.to_bytes(n, "little", signed=True))


def _e_float(x, out, d):
    out.append(T_FLOAT + _f64.pack(x))


def _e_complex(x, out, d):
    out.append(T_COMPLEX + _c128.pack(x.real, x.imag))


def _e_bytes(x, out, d):
    n = len(x)
    out.append(T_BYTES + _VB[n] if n < 128 else T_BYTES + _varint(n))
    out.append(x)


def _e_bytelike(x, out, d):
    _e_bytes(bytes(x), out, d)


def _e_str(x, out, d):
    try:
        b = x.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DumpError("can't serialize a str that is not valid unicode: %s" % e) from None
    n = len(b)
    out.append(T_STR + _VB[n] if n < 128 else T_STR + _varint(n))
    out.append(b)


def _e_seq(tag):
    def enc(x, out, d):
        if d >= MAX_DEPTH:
            raise DumpError("can't serialize values nested deeper than %d" % MAX_DEPTH)
        out.append(tag + _varint(len(x)))
        d += 1
        for v in x:
            t = type(v)
            if t is int or t is str:
                (_e_int if t is int else _e_str)(v, out, d)
            else:
                _enc(v, out, d)
    return enc


def _e_dict(x, out, d):
    if d >= MAX_DEPTH:
        raise DumpError("can't serialize values nested deeper than %d" % MAX_DEPTH)
    out.append(T_DICT + _varint(len(x)))
    d += 1
    for k, v in x.items():
        _enc(k, out, d)
        _enc(v, out, d)


def _e_channel(x, out, d):
    out.append(T_CHANNEL + _varint(x.id))


_ENC = {
    type(None): _e_none, bool: _e_bool, int: _e_int, float: _e_float,
    complex: _e_complex, bytes: _e_bytes, str: _e_str,
    list: _e_seq(T_LIST), tuple: _e_seq(T_TUPLE), dict: _e_dict,
    set: _e_seq(T_SET), frozenset: _e_seq(T_FROZENSET),
    bytearray: _e_bytelike, memoryview: _e_bytelike,
}
# subclasses of these (IntEnum, numpy.float64, namedtuple, OrderedDict, ...)
_ENC_BASES = (bool, int, float, complex, bytes, str, tuple, list, dict,
              frozenset, set, bytearray)


def _enc(x, out, d):
    t = type(x)
    f = _ENC.get(t)
    if f is None:
        if t is Channel:
            f = _e_channel
        else:
            for base in _ENC_BASES:
                if isinstance(x, base):
                    f = _ENC[base]
                    break
            else:
                raise DumpError("can't serialize %s" % (t,))
    f(x, out, d)


# ---------------------------------------------------------------- decoding

def _rdvar(m, p, limit):
    """Read a varint at m[p]; `limit` is 5 (u32) or 10 (u64)."""
    v = 0
    shift = 0
    for _ in range(limit):
        x = m[p]
        p += 1
        v |= (x & 127) << shift
        if x < 128:
            if v >> (32 if limit == 5 else 64):
                raise LoadError("varint overflows u%d" % (32 if limit == 5 else 64))
            return v, p
        shift += 7
    raise LoadError("overlong varint")


def _rdcount(m, p):
    x = m[p]
    if x < 128:
        n, p = x, p + 1
    else:
        n, p = _rdvar(m, p, 10)
    if n > len(m) - p:
        raise LoadError("length/count %d larger than the %d bytes left" % (n, len(m) - p))
    return n, p


def _dec(m, p, d, gw):
    """Decode one Value at m[p] (m: a memoryview of exactly one frame body)."""
    t = m[p]
    p += 1
    if t == V_INT:
        x = m[p]
        if x < 128:
            return (x >> 1) ^ -(x & 1), p + 1
        v, p = _rdvar(m, p, 10)
        return (v >> 1) ^ -(v & 1), p
    if t == V_STR or t == V_BYTES:
        n, p = _rdcount(m, p)
        q = p + n
        if t == V_STR:
            return str(m[p:q], "utf-8"), q
        return bytes(m[p:q]), q
    if t == V_NONE:
        return None, p
    if V_LIST <= t <= V_FROZENSET:
        if d >= MAX_DEPTH:
            raise LoadError("values nested deeper than %d" % MAX_DEPTH)
        n, p = _rdcount(m, p)
        d += 1
        if t == V_DICT:
            r = {}
            for _ in range(n):
                k, p = _dec(m, p, d, gw)
                v, p = _dec(m, p, d, gw)
                try:
                    r[k] = v
                except TypeError:
                    raise LoadError("unhashable dict key of type %s" % type(k).__name__) from None
            return r, p
        r = []
        ap = r.append
        for _ in range(n):
            v, p = _dec(m, p, d, gw)
            ap(v)
        if t == V_LIST:
            return r, p
        if t == V_TUPLE:
            return tuple(r), p
        try:
            return (set(r) if t == V_SET else frozenset(r)), p
        except TypeError:
            raise LoadError("unhashable set element") from None
    if t == V_BOOL:
        x = m[p]
        if x > 1:
            raise LoadError("bool byte %d" % x)
        return x == 1, p + 1
    if t == V_FLOAT:
        return _f64.unpack_from(m, p)[0], p + 8
    if t == V_BIGINT:
        n, p = _rdcount(m, p)
        q = p + n
        return int.from_bytes(m[p:q], "little", signed=True), q
    if t == V_COMPLEX:
        re, im = _c128.unpack_from(m, p)
        return complex(re, im), p + 16
    if t == V_CHANNEL:
        cid, p = _rdvar(m, p, 5)
        return gw._getchannel(cid), p
    raise LoadError("unknown value tag %d" % t)


def _rdoption(m, p):
    """Whether the option<T> at m[p] holds a T (its byte is 1, not 0)."""
    x = m[p]
    if x > 1:
        raise LoadError("option byte %d is neither 0 nor 1" % x)
    return x == 1


def _decode_all(m, p, gw):
    v, p = _dec(m, p, 0, gw)
    if p != len(m):
        raise LoadError("%d trailing bytes after the message" % (len(m) - p))
    return v


# ---------------------------------------------------------------- channels

NO_ENDMARKER_WANTED = object()
_END = object()


class _Callback:
    __slots__ = ("callback", "endmarker", "taken")

    def __init__(self, callback, endmarker):
        self.callback = callback
        self.endmarker = endmarker
        self.taken = 0


class Channel:
    """The worker's end of a channel, with execnet's API."""

    RemoteError = RemoteError
    TimeoutError = TimeoutError
    _executing = False
    _main_queued = False

    def __init__(self, gateway, id):
        self.gateway = gateway
        self.id = id
        # (item, delivered) pairs: `delivered` counts the bytes of every
        # item up to this one, so whoever takes it knows how much credit
        # the items taken so far are worth (see _take)
        self._items = deque()
        self._closed = False        # no more sending: we closed, or the peer closed
        self._recv_closed = False   # no more items will arrive
        self._remoteerrors = []
        self._credit = gateway._peer_window
        self._delivered = 0         # bytes of the items queued so far (the reading thread's)
        self._returned = 0          # ... of which returned as Credit
        self._held = None           # frames a callback sent without credit
        hdr = B_DATA + _varint(id)
        self._hdr = hdr
        self._pfx_int = _p32(len(hdr) + 2) + hdr
        self._pfx_int2 = _p32(len(hdr) + 3) + hdr
        self._wref = _weakref(self)

    def __repr__(self):
        return "<Channel id=%d %s>" % (self.id, "closed" if self._closed else "open")

    def __del__(self):
        gw = getattr(self, "gateway", None)
        if gw is None or gw._exiting:
            return
        tbl = gw._chans
        if tbl.get(self.id) is self._wref:
            tbl.pop(self.id, None)
        if self._closed:
            for e in self._remoteerrors:
                e.warn()
        else:
            # execnet sends nothing when the peer already sent LastMessage;
            # we send Close so the peer's callback learns the channel ended.
            tag = B_LAST_MESSAGE if (self._items is None and not self._recv_closed) else B_CLOSE
            gw._q.append(_frame(tag + _varint(self.id)))
            gw._flush()

    def _getremoteerror(self):
        try:
            return self._remoteerrors.pop(0)
        except IndexError:
            return None

    # -- public API

    def isclosed(self):
        return self._closed

    def makefile(self, mode="w", proxyclose=False):
        if mode == "w":
            return ChannelFileWrite(self, proxyclose)
        if mode == "r":
            return ChannelFileRead(self, proxyclose)
        raise ValueError("mode %r not available" % (mode,))

    def reconfigure(self, py2str_as_py3str=True, py3str_as_py2str=False):
        pass  # str/bytes are always kept apart here

    def close(self, error=None):
        if self.gateway._forked:
            raise IOError(FORKED_TEXT)
        if self._executing:
            raise IOError("cannot explicitly close channel within remote_exec")
        self._close(error)

    def _close(self, error=None):
        gw = self.gateway
        with gw._lock:
            if self._closed:
                return
            if error is None:
                frame = _frame(B_CLOSE + _varint(self.id))
            else:
                b = str(error).encode("utf-8", "replace")
                frame = _frame(B_CLOSE_ERROR + _varint(self.id) + _varint(len(b)) + b)
            if self._held:
                self._held.append((frame, 0))  # after the items it follows
            else:
                gw._q.append(frame)
            if isinstance(error, RemoteError):
                self._remoteerrors.append(error)
            self._closed = True
            self._end_locked()
        if gw._chans.get(self.id) is self._wref:
            gw._chans.pop(self.id, None)
        gw._flush()
        gw._no_longer_opened(self.id)

    def _end_locked(self):
        """Receiving ends (call with the gateway lock held); whoever waits
        for this channel looks again."""
        if not self._recv_closed:
            self._recv_closed = True
            if self._items is not None:
                self._items.append(_END)
        self.gateway._changed_locked()

    def waitclose(self, timeout=None):
        if not self._recv_closed:
            if not self.gateway._await(lambda: self._recv_closed, timeout):
                raise self.TimeoutError("Timeout after %r seconds" % (timeout,))
        error = self._getremoteerror()
        if error:
            raise error

    def send(self, item):
        if self._closed:
            raise IOError(FORKED_TEXT if self.gateway._forked else "cannot send to %r" % (self,))
        gw = self.gateway
        t = type(item)
        if t is int and -64 <= item < 64:
            frame = self._pfx_int + _SMALL[item + 64]
            cost = len(frame) - 4
        elif t is int and -8192 <= item < 8192:
            # a two-byte zigzag varint, without the general encoder
            z = (item << 1) ^ (item >> 63)
            frame = self._pfx_int2 + bytes((V_INT, (z & 127) | 128, z >> 7))
            cost = len(frame) - 4
        elif t is str or t is bytes:
            if t is str:
                try:
                    b = item.encode("utf-8")
                except UnicodeEncodeError:
                    b = None
                    _e_str(item, [], 0)  # raises DumpError
                tag = T_STR
            else:
                b, tag = item, T_BYTES
            n = len(b)
            hdr = self._hdr
            vn = _VB[n] if n < 128 else _varint(n)
            cost = len(hdr) + 1 + len(vn) + n
            if n < BULK:
                frame = b"".join((_p32(cost), hdr, tag, vn, b))
            else:
                frame = (b"".join((_p32(cost), hdr, tag, vn)), b)
        else:
            out = [b"", self._hdr]
            _enc(item, out, 0)
            cost = sum(map(len, out))
            if cost < BULK:
                out[0] = _p32(cost)
                frame = b"".join(out)
            else:
                frame = (_p32(cost), b"".join(out))
        if cost > gw._peer_max_frame:
            raise DumpError("item too large: %d bytes, the peer accepts frames of at most %d"
                            % (cost, gw._peer_max_frame))
        lock = gw._lock
        lock.acquire()
        if self._closed or self._credit <= 0:
            lock.release()
            return self._send_slow(frame, cost)
        self._credit -= cost
        q = gw._q
        now = _monotonic()
        burst = now - gw._sent_at < BURST_GAP
        gw._sent_at = now
        if burst and type(frame) is bytes:
            # a tight loop of sends: one write per batch instead of one per
            # item. The batch goes out when it is full, when this thread
            # waits for anything, or from the flusher thread as soon as it
            # gets the interpreter (at most the switch interval, 5 ms).
            q.append(frame)
            if len(q) >= BURST_BATCH:
                lock.release()
                return gw._flush()
            if gw._kicked:
                lock.release()
                return
            gw._kicked = True
            lock.release()
            return gw._kick_flusher()
        if q or type(frame) is not bytes or not gw._wio.acquire(False):
            q.append(frame)
            lock.release()
            return gw._flush()
        # fast path: nothing queued, nobody writing: write it ourselves.
        # Frames queued after we release the lock are written after ours.
        lock.release()
        try:
            n = _write(gw._out, frame)
            if n != len(frame):
                gw._write_all([memoryview(frame)[n:]])
        except OSError as e:
            gw._die(0, "execnet worker: writing to the opener failed (%s), exiting" % e)
        finally:
            gw._wio.release()
        if q:
            gw._flush()

    def _send_slow(self, frame, cost):
        """send() when the credit is used up (or the channel closed)."""
        gw = self.gateway
        lock = gw._lock
        while True:
            lock.acquire()
            if self._closed:
                lock.release()
                raise IOError("cannot send to %r" % (self,))
            if self._credit > 0:
                break
            if _get_ident() == gw._leader:
                # A callback runs on the thread reading the stream, the one
                # that would read the credit it waits for: hold the frame
                # here (in order) until credit arrives. Sending it anyway
                # would overrun the opener's window, which it refuses.
                self._hold(frame, cost)
                lock.release()
                return
            lock.release()
            gw._await(lambda: self._credit > 0 or self._closed)
        self._credit -= cost
        gw._q.append(frame)
        lock.release()
        gw._flush()

    def _hold(self, frame, cost):
        """Keep a frame until credit lets it go (call with the gateway lock
        held). While frames are held the gateway keeps the channel alive."""
        if self._held is None:
            self._held = deque()
            self.gateway._holding[self.id] = self
        self._held.append((frame, cost))

    def _release_held(self):
        """Queue the held frames the credit allows, in order (gateway lock
        held); whether any was queued."""
        held = self._held
        q = self.gateway._q
        moved = False
        while held and (self._credit > 0 or not held[0][1]):
            frame, cost = held.popleft()
            self._credit -= cost
            q.append(frame)
            moved = True
        if not held:
            self._held = None
            self.gateway._holding.pop(self.id, None)
        return moved

    def _drop_held(self):
        """The peer closed: it takes no more items. Queue the held control
        frames (our close), drop the data (gateway lock held)."""
        held = self._held
        if held is not None:
            for frame, cost in held:
                if not cost:
                    self.gateway._q.append(frame)
            self._held = None
            self.gateway._holding.pop(self.id, None)

    def receive(self, timeout=None):
        q = self._items
        if q is None:
            raise IOError("cannot receive(), channel has receiver callback")
        try:
            x = q.popleft()
        except IndexError:
            x = self._wait_item(q, timeout)
        if x is _END:
            q.appendleft(x)  # for other receivers
            raise self._getremoteerror() or EOFError()
        item, delivered = x
        if delivered - self._returned >= HALF:
            self._take(delivered)
        return item

    def _wait_item(self, q, timeout):
        gw = self.gateway
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            if not gw._await(q.__len__, None if deadline is None else deadline - _monotonic()):
                raise self.TimeoutError("no item after %r seconds" % (timeout,))
            try:
                return q.popleft()
            except IndexError:  # another receiver was faster
                pass

    def _take(self, delivered):
        """The items up to the one `delivered` counts were taken: return
        their credit. Items are taken in order, so concurrent receivers
        need no lock until credit is due (once per half window)."""
        gw = self.gateway
        with gw._lock:
            n = delivered - self._returned
            if n <= 0 or self._recv_closed:
                return
            self._returned = delivered
        gw._send_credit(self.id, n)

    def __iter__(self):
        return self

    def next(self):
        try:
            return self.receive()
        except EOFError:
            raise StopIteration from None

    __next__ = next

    def setcallback(self, callback, endmarker=NO_ENDMARKER_WANTED):
        gw = self.gateway
        with gw._rlock:
            items = self._items
            if items is None:
                raise IOError("%r has callback already registered" % (self,))
            self._items = None
            while True:
                try:
                    x = items.popleft()
                except IndexError:
                    if not (self._closed or self._recv_closed):
                        cb = gw._callbacks[self.id] = _Callback(callback, endmarker)
                        # taken from the queue, not yet returned
                        cb.taken = max(self._delivered - self._returned, 0)
                    break
                if x is _END:
                    items.appendleft(x)  # for other receivers
                    if endmarker is not NO_ENDMARKER_WANTED:
                        callback(endmarker)
                    break
                item, delivered = x
                callback(item)
                if delivered - self._returned >= HALF:
                    self._take(delivered)


class ChannelFile:
    def __init__(self, channel, proxyclose=True):
        self.channel = channel
        self._proxyclose = proxyclose

    def isatty(self):
        return False

    def close(self):
        if self._proxyclose:
            self.channel.close()

    def __repr__(self):
        state = "closed" if self.channel.isclosed() else "open"
        return "<ChannelFile %d %s>" % (self.channel.id, state)


class ChannelFileWrite(ChannelFile):
    def write(self, out):
        self.channel.send(out)

    def writelines(self, lines):
        for line in lines:
            self.channel.send(line)

    def flush(self):
        pass


class ChannelFileRead(ChannelFile):
    def __init__(self, channel, proxyclose=True):
        super().__init__(channel, proxyclose)
        self._buffer = None

    def read(self, n=-1):
        try:
            if self._buffer is None:
                self._buffer = self.channel.receive()
            while n < 0 or len(self._buffer) < n:
                self._buffer += self.channel.receive()
        except EOFError:
            self.close()
        if self._buffer is None:
            return ""
        if n < 0:
            n = len(self._buffer)
        ret = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return ret

    def readline(self):
        if self._buffer is not None:
            i = self._buffer.find(b"\n" if isinstance(self._buffer, bytes) else "\n")
            if i != -1:
                return self.read(i + 1)
            line = self.read(len(self._buffer) + 1)
        else:
            line = self.read(1)
        while line and line[-1:] not in ("\n", b"\n"):
            c = self.read(1)
            if not c:
                break
            line += c
        return line


# ---------------------------------------------------------------- gateway

class _ExecModel:
    """What remote code finds as ``channel.gateway.execmodel``: execnet's
    execution model API (threads either way; ``backend`` says whether execs
    run in threads or on the main thread only). Modules load on first use."""

    def __init__(self, backend):
        self.backend = backend

    def __repr__(self):
        return "<ExecModel %r>" % self.backend

    @property
    def queue(self):
        import queue
        return queue

    @property
    def subprocess(self):
        import subprocess
        return subprocess

    @property
    def socket(self):
        import socket
        return socket

    def get_ident(self):
        return _get_ident()

    def sleep(self, delay):
        import time
        time.sleep(delay)

    def start(self, func, args=()):
        _start(func, args)

    def fdopen(self, fd, mode, bufsize=1, closefd=True):
        return os.fdopen(fd, mode, bufsize, encoding="utf-8", closefd=closefd)

    def Lock(self):
        import threading
        return threading.RLock()

    def RLock(self):
        import threading
        return threading.RLock()

    def Event(self):
        import threading
        return threading.Event()


class _ProtocolError(Exception):
    pass


FORKED_TEXT = ("this process was forked by remote code: its channels belong to the "
               "worker process that forked it and cannot be used here")


class WorkerGateway:
    _exiting = False
    _forked = False     # true in a child that remote code forked
    _reader_ident = None

    def __init__(self, infd, outfd):
        self._in = infd
        self._out = outfd
        # reading (see _await): the buffer, and who reads
        self._raw = FileIO(infd, "rb", closefd=False)
        self._rbuf = bytearray(CAP)
        self._rmv = memoryview(self._rbuf)
        self._rs = self._re = 0           # the unread bytes are _rbuf[_rs:_re]
        self._leader = None               # ident of the thread holding the reading role
        self._followers = []              # locks of threads waiting for what it reads
        self._want = False                # a follower wants the role from the reader thread
        self._lead_end = _NEVER           # when a thread other than the reader last led
        self._nudge = _allocate_lock()    # released to wake the reader thread early
        self._nudge.acquire()
        self._nudged = False
        self._dozing = False              # the reader thread sleeps until a leader resigns
        self._interrupted = False         # a byte is in the wake pipe
        self._busy = False                # the last read suggests more is coming
        self._poller = self._wake_r = self._wake_w = None
        if _poll is not None:
            try:
                self._wake_r, self._wake_w = os.pipe()
                os.set_blocking(self._wake_r, False)
                os.set_blocking(self._wake_w, False)
                poller = _poll()
                poller.register(infd, _POLLIN)
                poller.register(self._wake_r, _POLLIN)
                self._poller = poller
            except (OSError, ValueError):
                self._poller = None
        self._q = deque()                 # frames waiting to be written
        self._wio = _allocate_lock()      # held by the thread writing
        self._sent_at = _NEVER            # when send() last ran (bursts, see send)
        self._kick = _allocate_lock()     # released to wake the flusher thread
        self._kick.acquire()
        self._kicked = False              # the flusher thread is awake or about to be
        self._flusher_started = False
        self._pid = os.getpid()
        self._lock = _allocate_lock()     # channel state, credits, ids
        self._rlock = _thread.RLock()     # data delivery vs setcallback
        self._chans = {}                  # id -> weakref(Channel)
        self._callbacks = {}              # id -> _Callback
        self._holding = {}                # id -> Channel with held frames
        self._next_id = 2
        self._nexec = 0
        self._mainq = SimpleQueue()
        self._main_idle = True
        self._main_task = None            # main_thread_only: the exec it has
        self._peer_window = WINDOW
        self._peer_max_frame = MAX_FRAME
        self.id = "<worker>"
        self.execmodel = _ExecModel("thread")
        self._hello = self._hello_frame()   # sent first (see _serve)

    def __repr__(self):
        return "<WorkerGateway id=%r>" % (self.id,)

    # -- channels

    def newchannel(self):
        if self._forked:
            raise IOError(FORKED_TEXT)
        with self._lock:
            cid = self._next_id
            self._next_id = cid + 2 if cid < 0xFFFFFFFD else 2
        ch = Channel(self, cid)
        self._chans[cid] = ch._wref
        return ch

    def _getchannel(self, cid):
        r = self._chans.get(cid)
        ch = r() if r is not None else None
        if ch is None:
            if cid == 0:
                raise LoadError("channel id 0")
            ch = Channel(self, cid)
            self._chans[cid] = ch._wref
        return ch

    def _lookup(self, cid):
        r = self._chans.get(cid)
        return r() if r is not None else None

    def _no_longer_opened(self, cid):
        cb = self._callbacks.pop(cid, None)
        if cb is not None and cb.endmarker is not NO_ENDMARKER_WANTED:
            try:
                cb.callback(cb.endmarker)
            except Exception as e:
                self._stderr("exception in the endmarker callback of channel %d:\n%s"
                             % (cid, _errortext(e)))

    # -- writing

    def _flush(self):
        q = self._q
        wio = self._wio
        while q and wio.acquire(False):
            try:
                self._drain()
            finally:
                wio.release()

    def _kick_flusher(self):
        """Have the flusher thread write what a burst of sends queued (the
        caller set _kicked)."""
        if not self._flusher_started:
            try:
                _start(self._flusher, ())
            except Exception:
                # no thread to be had: write the batch now, as send did
                # before batching
                with self._lock:
                    self._kicked = False
                return self._flush()
            self._flusher_started = True
        self._kick.release()

    def _flusher(self):
        kick = self._kick
        lock = self._lock
        while True:
            kick.acquire()
            lock.acquire()
            self._kicked = False
            lock.release()
            self._flush()

    def _drain(self):
        q = self._q
        fd = self._out
        try:
            while q:
                f = q.popleft()
                if not q and type(f) is bytes:
                    n = os.write(fd, f)
                    if n != len(f):
                        self._write_all([memoryview(f)[n:]])
                    continue
                parts = [f] if type(f) is bytes else list(f)
                while q and len(parts) < 500:
                    f = q.popleft()
                    if type(f) is bytes:
                        parts.append(f)
                    else:
                        parts.extend(f)
                self._write_all(parts)
        except OSError as e:
            self._die(0, "execnet worker: writing to the opener failed (%s), exiting" % e)

    def _write_all(self, parts):
        fd = self._out
        if _writev is None:
            parts = [b"".join(parts)]
        while parts:
            if len(parts) == 1:
                n = os.write(fd, parts[0])
            else:
                n = _writev(fd, parts)
            i = 0
            for part in parts:
                k = len(part)
                if n < k:
                    break
                n -= k
                i += 1
            if i == len(parts):
                return
            parts = parts[i:]
            parts[0] = memoryview(parts[0])[n:]

    def _send_credit(self, cid, n):
        self._q.append(_frame(B_CREDIT + _varint(cid) + _varint(n)))
        self._flush()

    def _hello_frame(self):
        """Our Hello: what the opener learns about this interpreter."""
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = ""
        info = {"python": sys.version.split()[0], "pid": os.getpid(),
                "executable": sys.executable or "", "platform": sys.platform,
                "cwd": cwd, "execmodel": "thread"}
        out = [B_HELLO + MAGIC + _varint(PROTOCOL_VERSION), _varint(WINDOW), _varint(MAX_FRAME)]
        _enc(info, out, 0)
        return _frame(b"".join(out))

    # -- a child forked by remote code

    def _after_fork_in_child(self):
        """os.fork() in remote code: the child must not write frames into
        the parent's stream (they would interleave with the parent's), nor
        keep that stream open after the parent exits; its channels fail
        with a clear error, and it exits when the code it was running
        returns. Locks other threads held at the fork stay held in the
        child, so nothing here takes one."""
        self._forked = True
        self._exiting = True   # no Close frames from Channel.__del__
        self._poller = None
        for fd in (self._in, self._out, self._wake_r, self._wake_w):
            if fd is None:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        for r in list(self._chans.values()):
            ch = r()
            if ch is not None:
                ch._closed = ch._recv_closed = True
                ch._remoteerrors = [IOError(FORKED_TEXT)]
                ch._items = deque([_END])
        self._callbacks.clear()

    def _child_exit(self, err):
        """The code a forked child was running returned (or raised)."""
        if err is not None and err != INTERRUPT_TEXT:
            self._stderr("[%d] remote code in a forked child raised:\n%s" % (os.getpid(), err))
        self._flush_stdio()
        _os_exit(0 if err is None else 1)

    # -- exiting

    def _stderr(self, msg):
        try:
            sys.stderr.write(msg.rstrip("\n") + "\n")
            sys.stderr.flush()
        except Exception:
            pass

    def _flush_stdio(self):
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass

    def _exit_process(self, status):
        """os._exit for remote code: what a burst of sends queued is written
        first, as it would be had each send written at once (execnet's
        behaviour). A process that remote code forked exits at once."""
        if self._q and not self._forked and os.getpid() == self._pid:
            try:
                self._flush()
            except BaseException:
                pass
        _os_exit(status)

    def _die(self, code, msg=None):
        self._exiting = True
        if msg:
            self._stderr(msg)
        self._flush_stdio()
        _os_exit(code)

    def _terminate(self):
        """Flush what is queued, then exit at once."""
        self._exiting = True
        if self._wio.acquire(True, 5.0):
            try:
                if self._q:
                    self._drain()
            except BaseException:
                pass
        self._die(0)

    def _lost(self):
        """The input stream ended: the opener is gone."""
        self._exiting = True
        # deliver endmarkers, but never let a callback keep us alive
        _start(self._watchdog, (1.0,))
        with self._rlock:
            for cid in list(self._callbacks):
                self._no_longer_opened(cid)
        if self._wio.acquire(True, 0.5):
            try:
                os.set_blocking(self._out, False)
                if self._q:
                    self._drain()
            except BaseException:
                pass
        self._die(0)

    def _watchdog(self, delay):
        import time
        time.sleep(delay)
        self._die(0)

    # -- reading
    #
    # One thread at a time holds the reading role (the "leader"): it reads
    # the stream and dispatches whole frames (items to channel queues, the
    # rest to their handlers). A thread that waits for something only the
    # stream brings (an item, credit, a close) takes the role itself when
    # nobody holds it, so an answer reaches it without a hand-off between
    # threads (the cost of a round trip is mostly such wake-ups). A thread
    # that finds the role taken is a "follower": it sleeps until the leader
    # has dispatched a read (or resigned), then looks again. The reader
    # thread takes the role when nobody has held it for GRACE seconds, or at
    # once when no exec is left to take it, so Terminate, Status, callbacks'
    # items and new execs never wait longer than that; a follower asks it to
    # give the role up (through the wake pipe) when it wants to lead.

    def _await(self, ready, timeout=None):
        """Wait until ready() (called with _lock held) is true; False when
        `timeout` seconds passed first."""
        if self._q:
            self._flush()   # what a burst of sends queued goes out first
        lock = self._lock
        me = _get_ident()
        deadline = None if timeout is None else _monotonic() + max(timeout, 0.0)
        while True:
            lock.acquire()
            if ready():
                lock.release()
                return True
            leader = self._leader
            if leader is None and self._poller is not None:
                self._leader = me
                lock.release()
                return self._lead(ready, deadline)
            if deadline is not None and deadline <= _monotonic():
                lock.release()
                return False
            w = _allocate_lock()
            w.acquire()
            self._followers.append(w)
            if leader == self._reader_ident and self._poller is not None and not self._busy:
                # (while the stream is busy, the reader thread reading on
                # beats taking turns with it)
                self._want = True
                self._interrupt_locked()
            lock.release()
            if deadline is None:
                w.acquire()
            elif not w.acquire(True, max(deadline - _monotonic(), 0.0)):
                with lock:
                    if w in self._followers:
                        self._followers.remove(w)

    def _lead(self, ready, deadline):
        """Read and dispatch until ready() or the deadline; then resign."""
        try:
            while True:
                wait = None
                if deadline is not None:
                    wait = deadline - _monotonic()
                    if wait <= 0:
                        return bool(ready())
                if not self._pump(wait):
                    self._lost()
                if ready():
                    return True
        finally:
            lock = self._lock
            lock.acquire()
            self._leader = None
            self._wake_followers_locked()
            if self._busy:
                # more is coming (a full buffer, a large frame): the reader
                # thread reads on while this thread works on what it got
                self._lead_end = _NEVER
                if not self._nudged:
                    self._nudged = True
                    self._nudge.release()
            else:
                self._lead_end = _monotonic()
                if self._dozing:
                    # the reader thread sleeps: it takes the role after GRACE
                    self._dozing = False
                    if not self._nudged:
                        self._nudged = True
                        self._nudge.release()
            lock.release()

    def _wake_followers_locked(self):
        fl = self._followers
        if fl:
            self._followers = []
            for w in fl:
                w.release()

    def _changed_locked(self):
        """State that followers or the leader may wait for changed outside
        the stream (a local close): they look again."""
        self._wake_followers_locked()
        leader = self._leader
        if leader is not None and leader != _get_ident():
            self._interrupt_locked()

    def _interrupt_locked(self):
        """Wake the leader from its wait for the stream."""
        if not self._interrupted and self._wake_w is not None:
            self._interrupted = True
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass

    def _unattended(self):
        """No exec is left that would take the reading role: the reader
        thread takes it now rather than after GRACE."""
        with self._lock:
            self._lead_end = _NEVER
            if not self._nudged:
                self._nudged = True
                self._nudge.release()

    def _reader_loop(self):
        """The reader thread: holds the reading role whenever no other
        thread needs it."""
        me = self._reader_ident = _get_ident()
        lock = self._lock
        nudge = self._nudge
        alive = True
        waits = 0   # GRACE waits in a row while another thread led
        try:
            while alive:
                lock.acquire()
                leader = self._leader
                lead = leader is None and (
                    self._poller is None or _monotonic() - self._lead_end >= GRACE)
                doze = False
                if lead:
                    self._leader = me
                    waits = 0
                elif leader is not None:
                    waits += 1
                    if waits > DOZE:
                        # a thread waits for the stream and reads it: rather
                        # than look every GRACE while it does (an idle worker
                        # would wake 500 times a second), sleep until it
                        # resigns (one wake-up per DOZE * GRACE at most)
                        doze = self._dozing = True
                lock.release()
                if not lead:
                    if nudge.acquire(True, -1 if doze else GRACE):
                        waits = 0
                        with lock:
                            self._nudged = False
                    continue
                while True:
                    # with followers waiting, look up every GRACE: one that
                    # found the stream busy did not ask for the role, and
                    # must not wait for input that may never come
                    alive = self._pump(GRACE if self._followers else None)
                    if not alive:
                        break
                    if self._want:
                        with lock:
                            if self._want:
                                self._want = False
                                self._leader = None
                                self._lead_end = _monotonic()
                                self._wake_followers_locked()
                                break
        except BaseException as e:
            self._die(1, "execnet worker: internal error in the reader:\n%s" % _errortext(e))
        self._lost()

    def _pump(self, wait=None):
        """(The leader) dispatch the whole frames read already; if there are
        none, wait up to `wait` seconds (None: no limit) for the stream or
        an interruption, read once and dispatch. False at the end of the
        stream."""
        try:
            if not self._dispatch():
                if self._q:
                    self._flush()   # (a callback's burst of sends)
                poller = self._poller
                if poller is not None:
                    readable = False
                    for fd, _ in poller.poll(None if wait is None else wait * 1000.0):
                        if fd == self._wake_r:
                            try:
                                os.read(fd, 512)
                            except OSError:
                                pass
                            with self._lock:
                                self._interrupted = False
                        else:
                            readable = True
                    if not readable:
                        # nothing more came: the stream is not busy (a
                        # follower that found it busy looks again below)
                        self._busy = False
                        if self._followers:
                            with self._lock:
                                self._wake_followers_locked()
                        return True
                if not self._fill():
                    return False
                self._dispatch()
        except Exception as e:
            self._protocol_error(e)
        if self._followers:
            with self._lock:
                self._wake_followers_locked()
        return True

    def _protocol_error(self, e):
        if isinstance(e, (_ProtocolError, LoadError)):
            what = str(e)
        elif isinstance(e, (IndexError, ValueError, OverflowError, _StructError)):
            what = "truncated or malformed message (%s: %s)" % (type(e).__name__, e)
        else:
            self._die(1, "execnet worker: internal error in the reader:\n%s" % _errortext(e))
        s, e = self._rs, self._re
        if e - s >= 5:
            what += " in a frame of %d bytes with message tag %d" % (
                _u32.unpack_from(self._rbuf, s)[0], self._rbuf[s + 4])
        self._die(1, "execnet worker: protocol error: %s" % what)

    def _fill(self):
        """Read once from the stream into the buffer (blocking); False at
        the end of the stream."""
        buf = self._rbuf
        s, e = self._rs, self._re
        if s == e:
            s = e = 0
        elif CAP - e < (CAP >> 2) or (
                e - s >= 4 and s + 4 + _u32.unpack_from(buf, s)[0] > CAP):
            buf[:e - s] = buf[s:e]
            s, e = 0, e - s
        self._rs = s
        self._re = e
        k = self._raw.readinto(self._rmv[e:])
        if not k:
            if e > s:
                raise _ProtocolError("the stream ended inside a frame")
            return False
        self._re = e + k
        self._busy = e + k == CAP
        return True

    def _dispatch(self):
        """Dispatch every whole frame in the read buffer, in order; items
        for one channel that come in a row are queued together. Returns
        how many frames there were."""
        buf = self._rbuf
        mv = self._rmv
        s = self._rs
        e = self._re
        unpack = _u32.unpack_from
        count = 0
        run = None          # (item, delivered) of items in a row for channel rcid
        rcid = -1
        rch = None          # that channel when the run began
        base = d = 0        # its bytes delivered before the run, and after each item
        try:
            while e - s >= 4:
                n = unpack(buf, s)[0]
                q = s + 4 + n
                if q > e:
                    if n > MAX_FRAME:
                        raise _ProtocolError("a frame of %d bytes, more than the %d announced"
                                             % (n, MAX_FRAME))
                    if n + 4 <= CAP:
                        break
                    # a frame larger than the buffer: read it whole
                    if run:
                        self._deliver(rcid, run, rch, base)
                        run = None
                        rcid = -1
                    self._rs = s
                    self._big_frame(n)
                    count += 1
                    s = self._rs
                    e = self._re
                    continue
                p = s + 4
                if n == 4 and buf[p] == M_DATA and buf[p + 2] == V_INT and buf[p + 3] < 128:
                    # one-byte channel id and zigzag: ints in -64..63
                    cid = buf[p + 1]
                    x = buf[p + 3]
                    item = (x >> 1) ^ -(x & 1)
                    if cid >= 128:
                        cid, item = self._data(mv[p:q])
                elif n == 5 and buf[p] == M_DATA and buf[p + 1] < 128 and buf[p + 2] == V_INT \
                        and buf[p + 3] >= 128 and buf[p + 4] < 128:
                    # two-byte zigzag: ints in -8192..8191
                    cid = buf[p + 1]
                    x = (buf[p + 3] & 127) | (buf[p + 4] << 7)
                    item = (x >> 1) ^ -(x & 1)
                elif n and buf[p] == M_DATA:
                    cid, item = self._data(mv[p:q])
                else:
                    if run:
                        self._deliver(rcid, run, rch, base)
                        run = None
                        rcid = -1
                    self._rs = q
                    self._control(mv[p:q])
                    s = q
                    count += 1
                    continue
                if cid != rcid:
                    if run:
                        self._deliver(rcid, run, rch, base)
                    rcid = cid
                    r = self._chans.get(cid)
                    rch = r() if r is not None else None
                    d = base = rch._delivered if rch is not None else 0
                    run = []
                d += n
                run.append((item, d))
                s = q
                count += 1
            if run:
                self._deliver(rcid, run, rch, base)
        except BaseException:
            self._rs = s
            raise
        self._rs = s
        return count

    def _data(self, m):
        """A ChannelData body: (channel id, item)."""
        x = m[1]
        if x < 128:
            cid, p = x, 2
        else:
            cid, p = _rdvar(m, 1, 5)
        return cid, _decode_all(m, p, self)

    def _deliver(self, cid, run, rch, base):
        """Queue the items of `run` for channel `cid`, or hand them to its
        callback. `run` holds (item, delivered) pairs in order, counted
        from `base`, the bytes delivered to `rch` (the channel when the run
        began) before them."""
        with self._rlock:
            cb = self._callbacks.get(cid)
            if cb is not None:
                prev = base
                for item, dl in run:
                    self._callback(cid, cb, item, dl - prev)
                    prev = dl
                return
            r = self._chans.get(cid)
            ch = r() if r is not None else None
            if ch is None:
                return
            q = ch._items
            if q is None or ch._recv_closed:
                return
            if ch is not rch:  # a new Channel object since the run began
                shift = ch._delivered - base
                run = [(item, dl + shift) for item, dl in run]
            q.extend(run)
            ch._delivered = run[-1][1]

    def _big_frame(self, n):
        """Read the rest of a frame too large for the buffer, whose header
        starts the buffered bytes, and dispatch it."""
        s, e = self._rs, self._re
        self._busy = True
        big = bytearray(n)
        bm = memoryview(big)
        h = e - s - 4
        bm[:h] = self._rmv[s + 4:e]
        self._rs = self._re = 0
        raw = self._raw
        while h < n:
            k = raw.readinto(bm[h:])
            if not k:
                raise _ProtocolError("the stream ended inside a frame (%d of %d bytes)" % (h, n))
            h += k
        if bm[0] == M_DATA:
            cid, item = self._data(bm)
            r = self._chans.get(cid)
            ch = r() if r is not None else None
            base = ch._delivered if ch is not None else 0
            self._deliver(cid, [(item, base + n)], ch, base)
        else:
            self._control(bm)

    def _control(self, m):
        """Handle a frame other than ChannelData (m: its body)."""
        t = m[0]
        if t == M_CREDIT:
            cid, p = _rdvar(m, 1, 5)
            n, p = _rdvar(m, p, 10)
            if p != len(m):
                raise LoadError("trailing bytes after Credit")
            # (a channel whose frames are held lives on until they go)
            ch = self._holding.get(cid) or self._lookup(cid)
            if ch is not None:
                with self._lock:
                    ch._credit += n
                    moved = ch._held is not None and ch._release_held()
                if moved:
                    self._flush()
        elif t == M_EXEC:
            cid, p = _rdvar(m, 1, 5)
            n, p = _rdcount(m, p)
            source = str(m[p:p + n], "utf-8")
            p += n
            filename = call = None
            kwargs = {}
            if _rdoption(m, p):
                n, p = _rdcount(m, p + 1)
                filename = str(m[p:p + n], "utf-8")
                p += n
            else:
                p += 1
            if _rdoption(m, p):
                n, p = _rdcount(m, p + 1)
                call = str(m[p:p + n], "utf-8")
                n, p = _rdcount(m, p + n)
                for _ in range(n):
                    k, p = _rdcount(m, p)
                    name = str(m[p:p + k], "utf-8")
                    kwargs[name], p = _dec(m, p + k, 1, self)
            else:
                p += 1
            if p != len(m):
                raise LoadError("trailing bytes after ChannelExec")
            self._schedule(self._getchannel(cid), (source, filename, call, kwargs))
        elif M_CLOSE <= t <= M_LAST_MESSAGE:
            cid, p = _rdvar(m, 1, 5)
            err = None
            if t == M_CLOSE_ERROR:
                n, p = _rdcount(m, p)
                err = str(m[p:p + n], "utf-8")
                p += n
            if p != len(m):
                raise LoadError("trailing bytes after a close message")
            with self._rlock:
                self._remote_close(cid, t, err)
        elif t == M_STATUS:
            cid, p = _rdvar(m, 1, 5)
            if p != len(m):
                raise LoadError("trailing bytes after Status")
            self._status(cid)
        elif t == M_TERMINATE:
            if len(m) != 1:
                raise LoadError("trailing bytes after Terminate")
            self._terminate()
        elif t == M_RECONFIGURE:
            _decode_all(m, 1, self)  # no settings in version 1
        elif t == M_HELLO:
            raise LoadError("a second Hello")
        else:
            raise LoadError("unknown message tag %d" % t)

    def _read_hello(self):
        """The opener's Hello (the first frame); frames after it stay
        buffered for the reader."""
        try:
            while True:
                s, e = self._rs, self._re
                if e - s >= 4:
                    n = _u32.unpack_from(self._rbuf, s)[0]
                    if n + 4 > CAP:
                        raise _ProtocolError("a first frame of %d bytes is no Hello" % n)
                    if s + 4 + n <= e:
                        break
                if not self._fill():
                    self._die(1, "execnet worker: the stream ended before the opener's hello")
            m = self._rmv[s + 4:s + 4 + n]
            self._rs = s + 4 + n
            if not n or m[0] != M_HELLO:
                raise _ProtocolError("the first frame is not a Hello (message tag %d)"
                                     % (m[0] if n else -1))
            magic = bytes(m[1:5])
            if magic != MAGIC:
                raise _ProtocolError("wrong magic %r in the opener's hello (expected %r)"
                                     % (magic, MAGIC))
            version, p = _rdvar(m, 5, 10)
            if version != PROTOCOL_VERSION:
                raise _ProtocolError("the opener speaks wire version %d, this worker speaks %d"
                                     % (version, PROTOCOL_VERSION))
            window, p = _rdvar(m, p, 10)
            maxf, p = _rdvar(m, p, 10)
            info = _decode_all(m, p, self)
        except (LoadError, IndexError, ValueError, _StructError) as e:
            raise _ProtocolError("bad hello: %s" % e)
        self._peer_window = window
        self._peer_max_frame = maxf
        return info if type(info) is dict else {}

    def _apply(self, info):
        model = info.get("execmodel", "thread")
        if model not in ("thread", "main_thread_only"):
            self._die(1, "execnet worker: unsupported execmodel %r "
                      "(this worker runs 'thread' and 'main_thread_only')" % (model,))
        self.execmodel = _ExecModel(model)
        if "id" in info:
            self.id = "%s-worker" % (info["id"],)
        try:
            env = info.get("env")
            if env:
                for k, v in env.items():
                    os.environ[str(k)] = str(v)
            if info.get("dont_write_bytecode") is not None:
                sys.dont_write_bytecode = bool(info["dont_write_bytecode"])
            chdir = info.get("chdir")
            if chdir:
                os.makedirs(chdir, exist_ok=True)
                os.chdir(chdir)
            nice = info.get("nice")
            if nice and hasattr(os, "nice"):
                os.nice(int(nice))
        except Exception as e:
            self._die(1, "execnet worker: applying the opener's settings failed: %s" % (e,))

    def _callback(self, cid, cb, item, cost):
        """Run a callback for an item (reader thread, _rlock held)."""
        try:
            cb.callback(item)
        except Exception as e:
            text = _errortext(e)
            ch = self._lookup(cid)
            if ch is not None:
                ch._close(text)
            else:
                b = text.encode("utf-8", "replace")
                self._q.append(_frame(B_CLOSE_ERROR + _varint(cid) + _varint(len(b)) + b))
                self._flush()
                self._no_longer_opened(cid)
            return
        t = cb.taken + cost
        if t < HALF:
            cb.taken = t
        else:
            cb.taken = 0
            self._send_credit(cid, t)

    def _remote_close(self, cid, tag, err):
        holder = self._holding.get(cid)
        if holder is not None and tag != M_LAST_MESSAGE:
            with self._lock:
                holder._drop_held()
            self._flush()
        ch = self._lookup(cid)
        if ch is None:
            if err is not None:
                RemoteError(err).warn()
            self._no_longer_opened(cid)
            return
        with self._lock:
            if err is not None:
                ch._remoteerrors.append(RemoteError(err))
            if tag != M_LAST_MESSAGE:
                ch._closed = True
            ch._end_locked()
        if ch._closed and self._chans.get(cid) is ch._wref:
            self._chans.pop(cid, None)
        self._no_longer_opened(cid)

    def _status(self, cid):
        d = {"numchannels": len(self._chans), "numexecuting": self._nexec,
             "execmodel": self.execmodel.backend}
        out = [b"", B_DATA + _varint(cid)]
        _enc(d, out, 0)
        out[0] = _p32(sum(map(len, out)))
        self._q.append(b"".join(out))
        self._q.append(_frame(B_CLOSE + _varint(cid)))
        self._flush()

    # -- executing

    def _schedule(self, ch, task):
        # counted as executing from its arrival, as execnet counts it: a
        # status request that follows an exec sees it, started or not
        with self._lock:
            self._nexec += 1
        if self.execmodel.backend == "thread":
            with self._lock:
                idle = self._main_idle
                self._main_idle = False
            if not idle:
                _start(self._execute, (ch, task))
                return
        elif not self._claim_main(ch):
            # main_thread_only, and the main thread has an exec (queued or
            # running): waiting for it could deadlock (if it waits for this
            # one). It may just be finishing, as when the opener got its
            # last item and sent the next exec at once: give it a moment
            # (on a helper thread: the reader must go on), then refuse.
            _start(self._claim_main_soon, (ch, task))
            return
        self._mainq.put((ch, task))

    def _claim_main(self, ch):
        """Make `ch` the main thread's exec, unless it has one (queued, or
        running: an exec whose code returned counts as done, since its
        _executing is cleared before its close goes out)."""
        with self._lock:
            cur = self._main_task
            if cur is not None and (cur._main_queued or cur._executing):
                return False
            self._main_task = ch
            ch._main_queued = True
            return True

    def _claim_main_soon(self, ch, task):
        import time
        deadline = time.monotonic() + MAIN_THREAD_ONLY_GRACE
        while True:
            if self._claim_main(ch):
                self._mainq.put((ch, task))
                return
            if time.monotonic() >= deadline:
                # exactly execnet's text: programs compare the error with
                # execnet.gateway_base.MAIN_THREAD_ONLY_DEADLOCK_TEXT
                with self._lock:
                    self._nexec -= 1
                ch._close(MAIN_THREAD_ONLY_DEADLOCK_TEXT)
                return
            time.sleep(0.002)

    def _execute(self, ch, task):
        source, filename, call, kwargs = task
        filename = filename or "<remote exec>"
        err = None
        ch._executing = True
        try:
            try:
                # execnet dedents in remote_exec ("""-snippets start with a newline)
                if source.lstrip("\r\n")[:1] in (" ", "\t"):
                    import textwrap
                    source = textwrap.dedent(source)
                co = compile(source, filename, "exec")
                g = {"channel": ch, "__name__": "__channelexec__"}
                exec(co, g)
                if call is not None:
                    function = g.get(call)
                    if not callable(function):
                        raise NameError("remote_exec was asked to call %r, which the code "
                                        "does not define as a function" % (call,))
                    function(ch, **kwargs)
            finally:
                ch._executing = False
                g = co = function = None
        except EOFError:
            pass
        except KeyboardInterrupt:
            err = INTERRUPT_TEXT
            raise
        except BaseException as e:
            err = _errortext(e, filename, source)
            e = None
        finally:
            if self._forked:
                self._child_exit(err)
            self._flush_stdio()
            with self._lock:
                self._nexec -= 1
            ch._close(err)
            self._unattended()

    def _mainloop(self):
        q = self._mainq
        thread_model = self.execmodel.backend == "thread"
        try:
            while True:
                ch, task = q.get()
                # busy from queued to executing without a gap (see _schedule)
                ch._executing = True
                ch._main_queued = False
                self._execute(ch, task)
                ch = None
                if thread_model:
                    with self._lock:
                        self._main_idle = True
        except KeyboardInterrupt:
            self._die(1)


# ---------------------------------------------------------------- `import execnet` here

EXECNET_API_VERSION = "2.1.2"


class _NoChannels:
    """Stands in for the gateway while ``loads`` decodes: no channel ids."""

    def _getchannel(self, cid):
        raise LoadError("a dumped value cannot hold a channel")


def dumps(obj):
    """``obj`` as bytes, in the format of execnet_rs's ``execnet.dumps``;
    DumpError for what a channel could not send."""
    out = [B_DATA, _VB[1]]
    if type(obj) is Channel:
        raise DumpError("can't serialize a Channel outside of a channel's items")
    _enc(obj, out, 0)
    body = b"".join(out)
    if T_CHANNEL in body and _has_channel(obj, 0):
        raise DumpError("can't serialize a Channel outside of a channel's items")
    return _frame(body)


def _has_channel(x, d):
    if type(x) is Channel:
        return True
    if d < MAX_DEPTH and isinstance(x, (list, tuple, set, frozenset)):
        return any(_has_channel(v, d + 1) for v in x)
    if d < MAX_DEPTH and isinstance(x, dict):
        return any(_has_channel(k, d + 1) or _has_channel(v, d + 1) for k, v in x.items())
    return False


def loads(bytestring, py2str_as_py3str=False, py3str_as_py2str=False):
    """The value of bytes made by ``dumps``; LoadError for anything else."""
    m = memoryview(bytes(bytestring))
    if len(m) < 4 or _u32.unpack_from(m, 0)[0] != len(m) - 4:
        raise LoadError("%d bytes are not a dumped value (bad length prefix)" % len(m))
    try:
        if len(m) < 6 or m[4] != M_DATA:
            raise LoadError("not a dumped value")
        _, p = _rdvar(m, 5, 5)
        return _decode_all(m[4:], p - 4, _NoChannels())
    except (IndexError, ValueError, OverflowError, _StructError) as e:
        raise LoadError("truncated or malformed dumped value (%s)" % e) from None


def dump(byteio, obj):
    """Write ``dumps(obj)`` to the binary file ``byteio``."""
    byteio.write(dumps(obj))


def load(io, py2str_as_py3str=False, py3str_as_py2str=False):
    """Read one value written by ``dump`` from the binary file ``io``."""
    head = io.read(4)
    body = io.read(_u32.unpack(head)[0]) if len(head) == 4 else b""
    return loads(head + body)


def _execnet_modules():
    """``execnet`` and ``execnet.gateway_base`` for remote code on a worker
    whose interpreter has no execnet installed: what remote code such as
    pytest-xdist's uses there (``dumps``/``loads``, the exceptions, the
    Channel and ExecModel classes in annotations), made of the worker's own
    parts, so ``execnet.dumps`` accepts exactly what ``channel.send`` does."""
    ModuleType = type(sys)
    base = ModuleType("execnet.gateway_base",
                      "execnet's names on an execnet-rs worker (no execnet installed here)")
    names = dict(
        Channel=Channel, ChannelFile=ChannelFile, ChannelFileRead=ChannelFileRead,
        ChannelFileWrite=ChannelFileWrite, DataFormatError=DataFormatError,
        DumpError=DumpError, LoadError=LoadError, RemoteError=RemoteError,
        TimeoutError=TimeoutError, ExecModel=_ExecModel, dumps=dumps, loads=loads,
        dump=dump, load=load, INTERRUPT_TEXT=INTERRUPT_TEXT,
        MAIN_THREAD_ONLY_DEADLOCK_TEXT=MAIN_THREAD_ONLY_DEADLOCK_TEXT,
        NO_ENDMARKER_WANTED=NO_ENDMARKER_WANTED)
    base.__dict__.update(names)
    top = ModuleType("execnet", base.__doc__)
    top.__dict__.update(names, gateway_base=base, __version__=EXECNET_API_VERSION)
    top.__path__ = []  # a package: `import execnet.gateway_base` works
    return {"execnet": top, "execnet.gateway_base": base}


class _ExecnetFallback:
    """The last finder on ``sys.meta_path``: an installed execnet (Python's,
    or execnet_rs through its import alias) is found first; only without one
    does ``import execnet`` get the worker's own."""

    _modules = None

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "execnet" and fullname != "execnet.gateway_base":
            return None
        if self._modules is None:
            self._modules = _execnet_modules()
        try:
            from _frozen_importlib import ModuleSpec
        except ImportError:  # not CPython
            from importlib.machinery import ModuleSpec
        return ModuleSpec(fullname, self, origin="execnet-rs worker",
                          is_package=fullname == "execnet")

    def create_module(self, spec):
        return self._modules[spec.name]

    def exec_module(self, module):
        pass


def _stdio_off():
    """Move the protocol off fds 0/1: remote print() and os.write(1, ...) go
    to stderr, remote reads of stdin see /dev/null. Returns the stream's
    new fds (in, out)."""
    infd = os.dup(0)
    outfd = os.dup(1)
    nul = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nul, 0)
    os.close(nul)
    try:
        os.dup2(2, 1)
    except OSError:
        nul = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nul, 1)
        os.close(nul)
    return infd, outfd


def _prepare(infd, outfd):
    """The worker of the stream (infd, outfd), its Hello, and the interpreter
    as remote code expects it; nothing sent yet. A spawner's standby does
    this before it has its stream (see spawner.py, stand_by)."""
    if sys.stdout is not None:
        try:
            sys.stdout.reconfigure(line_buffering=True)
        except Exception:
            pass
    # remote code sees what execnet's `python -c` bootstrap gives it: argv
    # ["-c"], and no "" on sys.path (imports must not depend on the cwd)
    sys.argv = ["-c"]
    sys.path[:] = [p for p in sys.path if p != ""]
    sys.meta_path.append(_ExecnetFallback())
    return WorkerGateway(infd, outfd)


def _serve(gw=None):
    """Run the worker: on fds 0/1, or as `gw` (from _prepare)."""
    if gw is None:
        gw = _prepare(*_stdio_off())
    gw._q.append(gw._hello)
    gw._flush()
    os._exit = gw._exit_process
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=gw._after_fork_in_child)
    # threading must first be imported by the main thread (else its idea of
    # the main thread is wrong, e.g. for asyncio in remote code)
    import threading  # noqa: F401
    try:
        info = gw._read_hello()
    except (_ProtocolError, OSError) as e:
        gw._die(1, "execnet worker: %s" % (e,))
    gw._apply(info)
    _start(gw._reader_loop, ())
    gw._mainloop()


# The spawner (spawner.py) ships this source with its own after it, and
# defines _EXECNET_SPAWNER before it: then the spawner's loop runs instead.
if __name__ == "__execnet_worker__" and "_EXECNET_SPAWNER" not in globals():
    _serve()
