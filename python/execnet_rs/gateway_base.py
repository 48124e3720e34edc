"""Names execnet keeps in ``execnet.gateway_base``: the channel and its file
objects, execution models, the exceptions and the serializer functions.

Programs such as pytest-xdist refer to some of these (``ExecModel`` in type
annotations, ``dumps``/``DumpError``); the rest of the machinery of
execnet's module of this name lives in the native engine here.
"""

from __future__ import annotations

from ._core import Channel
from ._core import dumps as _dumps
from ._core import loads as _loads
from ._errors import INTERRUPT_TEXT
from ._errors import DataFormatError
from ._errors import DumpError
from ._errors import LoadError
from ._errors import RemoteError
from ._errors import TimeoutError

__all__ = [
    "INTERRUPT_TEXT",
    "MAIN_THREAD_ONLY_DEADLOCK_TEXT",
    "NO_ENDMARKER_WANTED",
    "Channel",
    "ChannelFile",
    "ChannelFileRead",
    "ChannelFileWrite",
    "DataFormatError",
    "DumpError",
    "ExecModel",
    "LoadError",
    "RemoteError",
    "TimeoutError",
    "dump",
    "dumps",
    "get_execmodel",
    "load",
    "loads",
]

#: The error (``RemoteError.formatted``) of a ``remote_exec`` refused by a
#: ``main_thread_only`` worker whose main thread is still busy with another.
MAIN_THREAD_ONLY_DEADLOCK_TEXT = (
    "concurrent remote_exec would cause deadlock for main_thread_only execmodel")

#: Passed as ``endmarker`` it means "no endmarker" (the default).
NO_ENDMARKER_WANTED = object()


# ---------------------------------------------------------------- values

def dumps(obj):
    """Serialize ``obj`` to bytes: None, bool, int (any size), float,
    complex, bytes, str, and lists, tuples, dicts, sets and frozensets of
    those. Subclasses of these types are serialized as the base type (an
    IntEnum member as its int); anything else raises ``DumpError``."""
    return _dumps(obj)


def loads(bytestring, py2str_as_py3str=False, py3str_as_py2str=False):
    """Deserialize bytes made by ``dumps``; ``LoadError`` for anything else.
    The two flags exist for execnet compatibility: str and bytes always stay
    apart here."""
    return _loads(bytes(bytestring))


def dump(byteio, obj):
    """Write ``dumps(obj)`` to the binary file ``byteio``."""
    byteio.write(_dumps(obj))


def load(io, py2str_as_py3str=False, py3str_as_py2str=False):
    """Read one value written by ``dump`` from the binary file ``io``."""
    head = _read_exact(io, 4)
    body = _read_exact(io, int.from_bytes(head, "little"))
    return _loads(head + body)


def _read_exact(io, n):
    chunks = []
    while n:
        chunk = io.read(n)
        if not chunk:
            raise LoadError("the stream ended inside a dumped value (%d bytes missing)" % n)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- execution models

class ExecModel:
    """How a side runs concurrent work: its threads, locks, events, queues."""

    backend = None

    def __repr__(self):
        return "<ExecModel %r>" % self.backend


class ThreadExecModel(ExecModel):
    """Native threads (execnet's default)."""

    backend = "thread"

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
        import _thread

        return _thread.get_ident()

    def sleep(self, delay):
        import time

        time.sleep(delay)

    def start(self, func, args=()):
        import _thread

        _thread.start_new_thread(func, args)

    def fdopen(self, fd, mode, bufsize=1, closefd=True):
        import os

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


class MainThreadOnlyExecModel(ThreadExecModel):
    """Remote code runs on the worker's main thread, one exec at a time."""

    backend = "main_thread_only"


class _GreenExecModel(ExecModel):
    """eventlet/gevent on this side (the worker side runs threads)."""


    def _import(self, name):
        import importlib

        return importlib.import_module(name)


class EventletExecModel(_GreenExecModel):
    backend = "eventlet"

    @property
    def queue(self):
        return self._import("eventlet.queue")

    @property
    def subprocess(self):
        return self._import("eventlet.green.subprocess")

    @property
    def socket(self):
        return self._import("eventlet.green.socket")

    def get_ident(self):
        return self._import("eventlet.green.thread").get_ident()

    def sleep(self, delay):
        self._import("eventlet").sleep(delay)

    def start(self, func, args=()):
        self._import("eventlet").spawn_n(func, *args)

    def fdopen(self, fd, mode, bufsize=1, closefd=True):
        return self._import("eventlet.green.os").fdopen(fd, mode, bufsize, closefd=closefd)

    def Lock(self):
        return self._import("eventlet.green.threading").RLock()

    def RLock(self):
        return self._import("eventlet.green.threading").RLock()

    def Event(self):
        return self._import("eventlet.green.threading").Event()


class GeventExecModel(_GreenExecModel):
    backend = "gevent"

    @property
    def queue(self):
        return self._import("gevent.queue")

    @property
    def subprocess(self):
        return self._import("gevent.subprocess")

    @property
    def socket(self):
        return self._import("gevent.socket")

    def get_ident(self):
        return self._import("gevent.thread").get_ident()

    def sleep(self, delay):
        self._import("gevent").sleep(delay)

    def start(self, func, args=()):
        self._import("gevent").spawn(func, *args)

    def fdopen(self, fd, mode, bufsize=1, closefd=True):
        fileobject = self._import("gevent.fileobject")
        return fileobject.FileObjectThread(fd, mode, bufsize, closefd=closefd)

    def Lock(self):
        return self._import("gevent.lock").RLock()

    def RLock(self):
        return self._import("gevent.lock").RLock()

    def Event(self):
        return self._import("gevent.event").Event()


_MODELS = {
    "thread": ThreadExecModel,
    "main_thread_only": MainThreadOnlyExecModel,
    "eventlet": EventletExecModel,
    "gevent": GeventExecModel,
}


def get_execmodel(backend):
    """The ExecModel named ``backend`` (an ExecModel is returned as is)."""
    if isinstance(backend, ExecModel):
        return backend
    try:
        return _MODELS[backend]()
    except (KeyError, TypeError):
        raise ValueError("unknown execmodel %r" % (backend,)) from None


# ---------------------------------------------------------------- channel files

class ChannelFile:
    """A file-like view of a channel (see ``Channel.makefile``)."""

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
    """Every ``write`` sends its argument as one item."""

    def write(self, out):
        self.channel.send(out)

    def writelines(self, lines):
        for line in lines:
            self.channel.send(line)

    def flush(self):
        pass


class ChannelFileRead(ChannelFile):
    """Reads the channel's str (or bytes) items as one stream."""

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
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def readline(self):
        if self._buffer is not None:
            newline = b"\n" if isinstance(self._buffer, bytes) else "\n"
            i = self._buffer.find(newline)
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
