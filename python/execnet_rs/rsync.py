"""execnet.RSync on the engine's rsync (execnet::rsync)."""

from __future__ import annotations

import os
import weakref

from . import _core


class RSync:
    """Send a directory tree to one or many gateways at once: files (with
    their permission bits and modification times), directories, symlinks
    (one that points into the tree is rewritten to point into the copy),
    and with ``delete=True`` the removal of what the source does not have.
    A file whose size and modification time match is not sent again; one
    whose time differs is compared by checksum first.

    ``callback(command, size, channel)``, if given, is called with
    ``("list", total bytes to send, channel)`` once per target and
    ``("ack", file size, channel)`` per file a target received. Subclasses
    may override ``filter(path)`` (whether to sync the path: the source
    directory joined with the entry's relative path) and
    ``_report_send_file(gateway, modified_rel_path)`` (called before a
    file's contents go to a target; by default it prints when ``verbose``).
    The hooks run inside ``send()``, on its thread; an exception raised by
    one stops the send and comes out of it.
    """

    def __init__(self, sourcedir, callback=None, verbose=True):
        self._sourcedir = str(sourcedir)
        self._verbose = verbose
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable, not %r" % (callback,))
        self._callback = callback
        self._gateways = {}  # gateway id -> Gateway, of the targets
        self._native = _core.NativeRSync(
            os.fspath(self._sourcedir), weakref.ref(self), callback is not None)

    def filter(self, path):
        """Whether to sync ``path`` (everything, unless a subclass says)."""
        return True

    def _report_send_file(self, gateway, modified_rel_path):
        if self._verbose:
            print("%s <= %s" % (gateway, modified_rel_path))

    def add_target(self, gateway, destdir, finishedcallback=None, **options):
        """Add ``destdir`` on ``gateway``'s side (relative to the worker's
        working directory unless absolute) as a target of the next
        ``send()``; ``finishedcallback()`` is called when it is complete.
        The option ``delete=True`` removes what the source does not have."""
        unknown = set(options) - {"delete"}
        if unknown:
            raise TypeError("add_target() got unexpected options %s" % ", ".join(sorted(unknown)))
        if finishedcallback is not None and not callable(finishedcallback):
            raise TypeError("finishedcallback must be callable")
        self._gateways[gateway.id] = gateway
        self._native.add_target(gateway._gw, os.fspath(destdir), finishedcallback,
                                bool(options.get("delete", False)))

    def send(self, raises=True):
        """Sync the source to every target added since the last send (they
        are used up). Without targets: ``OSError`` if ``raises``, else
        nothing. A target that fails (its gateway died, a permission error
        there) lets the others finish, then raises ``OSError`` naming it."""
        if self._native.target_count() == 0:
            if raises:
                raise OSError("no targets available, maybe you are trying call send() twice?")
            return
        # a trailing "/" makes no difference
        self._sourcedir = os.path.dirname(os.path.join(self._sourcedir, "x"))
        try:
            self._native.send()
        finally:
            self._gateways.clear()

    # called by the native half

    def _gateway_of(self, gateway_id):
        return self._gateways.get(gateway_id)

    def _native_report(self, gateway_id, modified_rel_path):
        self._report_send_file(self._gateways.get(gateway_id), modified_rel_path)

    def _native_event(self, command, size, gateway_id, channel):
        self._callback(command, size, channel)
