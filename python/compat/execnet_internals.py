"""A pytest plugin for running Python execnet's own test files against
execnet_rs (``pytest -p execnet_internals``, with this folder on sys.path).

execnet's test modules import some of execnet's implementation internals at
module level (``execnet.gateway_io.popen_args``, ``gateway_base.Message``,
``gateway_base.WorkerPool``, ...). execnet_rs has no such internals: its
engine is Rust. So that one such import does not keep a whole file from
being collected, this plugin gives each missing internal a stand-in that
raises ``ExecnetInternal`` (naming it) as soon as a test uses it. Tests that
use only the public API run unaffected; those that touch internals fail,
and python/COMPAT.md lists each with its reason.

Nothing here is loaded by the package itself.
"""

import sys
import types

#: (module, name) pairs of execnet internals that execnet's test files (or
#: their conftest) import at module level.
INTERNALS = {
    "gateway_base": ["WorkerPool", "ChannelFactory", "Message", "Popen2IO", "WorkerGateway",
                     "init_popen_io", "bchr", "trace", "notrace"],
    "gateway_io": ["popen_args", "ssh_args", "vagrant_ssh_args", "popen_bootstrapline",
                   "Popen2IOMaster"],
    "gateway": ["rinfo_source", "_find_non_builtin_globals"],
    "multi": ["safe_terminate"],
}


class ExecnetInternal(NotImplementedError):
    """A test used a part of Python execnet's implementation that execnet_rs
    does not have."""


class _Internal:
    """Stands in for ``execnet.<module>.<name>``: fails on use."""

    def __init__(self, qualname):
        self._qualname = qualname

    def _fail(self, *args, **kwargs):
        raise ExecnetInternal(
            "execnet.%s is an internal of Python execnet; execnet_rs does not have it"
            % self._qualname)

    __call__ = _fail

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()

    def __mro_entries__(self, bases):
        self._fail()

    def __iter__(self):
        self._fail()

    def __repr__(self):
        return "<execnet internal %s, not in execnet_rs>" % self._qualname


def install():
    """Add a stand-in for every internal execnet_rs lacks."""
    import importlib

    import execnet

    if not execnet.__name__.startswith("execnet_rs"):
        return  # Python execnet itself: it has them all
    for module_name, names in INTERNALS.items():
        full = "execnet." + module_name
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError:
            module = types.ModuleType(full, "stand-ins for Python execnet's %s" % full)
            sys.modules[full] = module
            setattr(execnet, module_name, module)
        for name in names:
            if not hasattr(module, name):
                setattr(module, name, _Internal("%s.%s" % (module_name, name)))


install()
