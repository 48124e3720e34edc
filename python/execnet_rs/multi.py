"""Groups of gateways and channels used together."""

from __future__ import annotations

import atexit
import sys
import threading
import weakref

from . import _core
from .gateway import Gateway
from .gateway_base import NO_ENDMARKER_WANTED
from .gateway_base import get_execmodel
from .xspec import XSpec

#: How long ``Gateway.exit`` lets a worker finish before it is signalled.
DEFAULT_EXIT_TIMEOUT = 2.0


class Group:
    """Gateways with unique ids (``gw0``, ``gw1``, ... unless the spec says
    ``id=``), in creation order: ``len(group)``, iteration, ``group["gw0"]``,
    ``group[0]``, ``"gw0" in group``. Its gateways are terminated at
    interpreter exit at the latest."""

    defaultspec = "popen"

    def __init__(self, xspecs=(), execmodel="thread"):
        self._gateways = []
        self._gateways_to_join = []
        self._autoidcounter = 0
        self._opening = set()  # ids of gateways being opened
        self._lock = threading.RLock()
        self._exit_timeout = DEFAULT_EXIT_TIMEOUT
        self.set_execmodel(execmodel)
        for xspec in xspecs:
            self.makegateway(xspec)
        _groups.add(self)

    @property
    def execmodel(self):
        """The execution model of this side (an ExecModel)."""
        return self._execmodel

    @property
    def remote_execmodel(self):
        """The execution model new gateways' workers get, unless their spec
        says ``execmodel=``."""
        return self._remote_execmodel

    def set_execmodel(self, execmodel, remote_execmodel=None):
        """Set the execution model of this side and, unless
        ``remote_execmodel`` says otherwise, of new gateways' workers
        (``thread`` or ``main_thread_only``); only before the first gateway."""
        if self._gateways:
            raise ValueError("can not set execution models if gateways have been created already")
        self._execmodel = get_execmodel(execmodel)
        self._remote_execmodel = get_execmodel(remote_execmodel or execmodel)

    def __repr__(self):
        return "<Group %r>" % [gw.id for gw in self]

    def __getitem__(self, key):
        with self._lock:
            if isinstance(key, int):
                return self._gateways[key]
            for gw in self._gateways:
                if gw == key or gw.id == key:
                    return gw
        raise KeyError(key)

    def __contains__(self, key):
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self):
        return len(self._gateways)

    def __iter__(self):
        with self._lock:
            return iter(list(self._gateways))

    def makegateway(self, spec=None):
        """Open a gateway from ``spec`` (an XSpec or a string such as
        ``popen//python=python3.12``, ``ssh=host//chdir=work``,
        ``socket=host:port``; default ``self.defaultspec``) and add it.

        popen starts ``sys.executable`` unless ``python=`` says otherwise.
        Keys: ``id``, ``python``, ``chdir``, ``nice``, ``env:NAME=value``,
        ``dont_write_bytecode``, ``execmodel``, ``via``, ``installvia``,
        ``ssh_config``; an unknown key is an error that names it."""
        if not spec:
            spec = self.defaultspec
        if not isinstance(spec, XSpec):
            spec = XSpec(spec)
        with self._lock:
            self.allocate_id(spec)
            if spec.id in self or spec.id in self._opening:
                raise ValueError("already have gateway with id %r" % (spec.id,))
            self._opening.add(spec.id)
        try:
            if spec.execmodel is None:
                spec.execmodel = self.remote_execmodel.backend
            via = self[spec.via]._gw if spec.via else None
            installvia = self[spec.installvia]._gw if spec.installvia else None
            native = _core.open_gateway(
                spec._engine_spec(default_python=sys.executable or None),
                spec.id, via=via, installvia=installvia)
            gw = Gateway(native, spec, self)
            with self._lock:
                self._gateways.append(gw)
        finally:
            with self._lock:
                self._opening.discard(spec.id)
        return gw

    def allocate_id(self, spec):
        """Give ``spec`` the next free automatic id (``gwN``) unless it has one."""
        with self._lock:
            if spec.id is None:
                while True:
                    id = "gw" + str(self._autoidcounter)
                    self._autoidcounter += 1
                    if id not in self and id not in self._opening:
                        break
                spec.id = id

    def _unregister(self, gateway):
        with self._lock:
            try:
                self._gateways.remove(gateway)
            except ValueError:
                return False
            self._gateways_to_join.append(gateway)
            return True

    def terminate(self, timeout=None):
        """Exit every gateway (those opened ``via=`` another first), wait
        for them, kill what has not ended after ``timeout`` seconds (default
        2) and reap it all. Returns when no worker process of the group is
        left."""
        exit_timeout = self._exit_timeout if timeout is None else max(0.0, float(timeout))
        while True:
            with self._lock:
                gateways = list(self._gateways)
                if not gateways and not self._gateways_to_join:
                    return
            masters = {gw.spec.via for gw in gateways if gw.spec.via}
            for gw in gateways:
                if gw.id not in masters:
                    gw._group_exit(exit_timeout)
            with self._lock:
                joining, self._gateways_to_join = self._gateways_to_join, []
            _core.join_all([gw._gw for gw in joining], None)

    def _cleanup_atexit(self):
        self.terminate(timeout=1.0)

    def remote_exec(self, source, **kwargs):
        """``remote_exec`` on every gateway; the channels as a MultiChannel."""
        return MultiChannel([gw.remote_exec(source, **kwargs) for gw in self])


class MultiChannel:
    """Channels used together."""

    def __init__(self, channels):
        self._channels = channels

    def __len__(self):
        return len(self._channels)

    def __iter__(self):
        return iter(self._channels)

    def __getitem__(self, key):
        return self._channels[key]

    def __contains__(self, chan):
        return chan in self._channels

    def send_each(self, item):
        """Send ``item`` on every channel."""
        for ch in self._channels:
            ch.send(item)

    def receive_each(self, withchannel=False):
        """One item from every channel, in order; ``withchannel=True`` gives
        ``(channel, item)`` pairs."""
        out = []
        for ch in self._channels:
            item = ch.receive()
            out.append((ch, item) if withchannel else item)
        return out

    def make_receive_queue(self, endmarker=NO_ENDMARKER_WANTED):
        """A ``queue.Queue`` that gets ``(channel, item)`` for every item of
        every channel as it arrives (and ``(channel, endmarker)`` when a
        channel ends, if ``endmarker`` is given). Made once per MultiChannel."""
        try:
            return self._queue
        except AttributeError:
            pass
        import queue

        self._queue = q = queue.Queue()
        for ch in self._channels:
            def put(item, channel=ch):
                q.put((channel, item))

            if endmarker is NO_ENDMARKER_WANTED:
                ch.setcallback(put)
            else:
                ch.setcallback(put, endmarker=endmarker)
        return q

    def waitclose(self):
        """Wait until every channel is closed; the first remote error is
        raised after all have closed."""
        first = None
        for ch in self._channels:
            try:
                ch.waitclose()
            except ch.RemoteError as e:
                if first is None:
                    first = e
        if first is not None:
            raise first


_groups = weakref.WeakSet()


@atexit.register
def _terminate_all_groups():
    for group in list(_groups):
        try:
            group._cleanup_atexit()
        except BaseException:  # noqa: BLE001 -- interpreter exit: nothing to report to
            pass


default_group = Group()
makegateway = default_group.makegateway
set_execmodel = default_group.set_execmodel
