"""execnet.Gateway on the execnet-rs engine."""

from __future__ import annotations

import inspect
import linecache
import textwrap
import types

from . import _core


class RInfo:
    """Facts about a worker, as attributes (``_rinfo()``, ``remote_status()``)."""

    def __init__(self, kwargs):
        self.__dict__.update(kwargs)

    def __repr__(self):
        info = ", ".join("%s=%s" % item for item in sorted(self.__dict__.items()))
        return "<RInfo %r>" % info


RemoteStatus = RInfo

_RINFO_SOURCE = """\
import os, sys
channel.send(dict(
    executable=sys.executable,
    version_info=tuple(sys.version_info[:5]),
    platform=sys.platform,
    cwd=os.getcwd(),
    pid=os.getpid(),
))
"""


class Gateway:
    """A connection to a Python interpreter (a local child, a host over ssh,
    a socket server); make one with ``execnet.makegateway(spec)`` or a
    ``Group``. Users may set their own attributes on it."""

    def __init__(self, native, spec, group):
        self._gw = native
        self.spec = spec
        self.id = native.id
        self._group = group
        self.execmodel = group.execmodel

    @property
    def remoteaddress(self):
        """The address of the far side: the ssh arguments, or host:port."""
        address = self.spec.ssh or self.spec.socket or self.spec.vagrant_ssh
        if not address:
            raise AttributeError("a %s gateway has no remote address" % self._kind())
        return address

    def _kind(self):
        spec = self.spec
        return "ssh" if spec.ssh else "socket" if spec.socket else "popen"

    def __repr__(self):
        state = "receive-live" if self.hasreceiver() else "not-receiving"
        return "<%s id=%r %s, %s model>" % (
            self.__class__.__name__, self.id, state, self.execmodel.backend)

    def exit(self):
        """Start the worker's exit and leave the group; does not wait (the
        group's ``terminate`` or ``join`` does)."""
        self._group_exit(self._group._exit_timeout)

    def _group_exit(self, timeout):
        if self._group._unregister(self):
            self._gw.exit(timeout)

    def join(self, timeout=None):
        """Wait until the gateway has ended (after ``exit``, or its worker
        died); at most ``timeout`` seconds."""
        self._gw.join(timeout)

    def hasreceiver(self):
        """Whether the gateway still receives (its connection is up)."""
        return not self._gw.is_closed()

    def reconfigure(self, py2str_as_py3str=True, py3str_as_py2str=False):
        """Kept for execnet compatibility: str and bytes always stay apart."""

    def _rinfo(self, update=False):
        """The worker's executable, version_info, platform, cwd and pid
        (cached; ``update=True`` asks again)."""
        if update or not hasattr(self, "_cache_rinfo"):
            channel = self.remote_exec(_RINFO_SOURCE)
            try:
                self._cache_rinfo = RInfo(channel.receive())
            finally:
                channel.waitclose()
        return self._cache_rinfo

    def remote_status(self):
        """The worker's numchannels, numexecuting and execmodel."""
        return RemoteStatus(self._gw.remote_status())

    def newchannel(self):
        """A new channel, to send to the worker inside an item."""
        return self._gw.newchannel(self)

    def remote_exec(self, source, **kwargs):
        """Run ``source`` in the worker and return the channel connected to
        it. ``source`` is a string of Python code (dedented), a module (its
        whole source runs), or a self-contained function taking ``channel``
        first, which is called there with ``**kwargs``. The code sees the
        global ``channel`` and ``__name__ == "__channelexec__"``."""
        call_name = None
        file_name = None
        if isinstance(source, types.ModuleType):
            file_name = inspect.getsourcefile(source)
            if file_name:
                linecache.updatecache(file_name)
            source = inspect.getsource(source)
        elif isinstance(source, types.FunctionType):
            call_name = source.__name__
            file_name = inspect.getsourcefile(source)
            source = _source_of_function(source)
        else:
            source = textwrap.dedent(str(source))
        if kwargs and not call_name:
            raise TypeError("can't pass kwargs to non-function remote_exec")
        if call_name is None and file_name is None:
            return self._gw.remote_exec(source, self)
        return self._gw.remote_exec_code(source, file_name, call_name, kwargs, self)

    def remote_init_threads(self, num=None):
        """Kept for execnet compatibility; does nothing."""


def _source_of_function(function):
    """The source of a function for ``remote_exec``: it must take
    ``channel`` first, have no closure and use no globals but builtins.
    Blank lines keep its line numbers those of its file."""
    if function.__name__ == "<lambda>":
        raise ValueError("can't evaluate lambda functions'")
    params = inspect.getfullargspec(function).args
    if not params or params[0] != "channel":
        raise ValueError("expected first function argument to be `channel`")
    if function.__closure__ is not None:
        raise ValueError("functions with closures can't be passed")
    try:
        source = inspect.getsource(function)
    except OSError as e:
        raise ValueError("can't find source file for %s" % function) from e
    source = textwrap.dedent(source)
    used = _find_non_builtin_globals(source, function.__code__)
    if used:
        raise ValueError("the use of non-builtin globals isn't supported", used)
    return "\n" * (function.__code__.co_firstlineno - 1) + source


def _find_non_builtin_globals(source, code):
    """Names the function reads that are neither its locals nor builtins."""
    import ast
    import builtins

    local = set(code.co_varnames)
    return [
        node.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Name) and node.id not in local
        and node.id not in builtins.__dict__
    ]


# ---------------------------------------------------------------- the old constructors

def PopenGateway(python=None):
    """A gateway to a local child interpreter (``python``: its command,
    default ``sys.executable``), in the default group."""
    from .multi import default_group

    spec = "popen" if python is None else "popen//python=%s" % python
    return default_group.makegateway(spec)


def SshGateway(sshaddress, remotepython=None, ssh_config=None):
    """A gateway to ``remotepython`` (default ``python3``) on the host
    ``sshaddress`` over ssh, in the default group."""
    from .multi import default_group

    spec = "ssh=%s" % sshaddress
    if remotepython is not None:
        spec += "//python=%s" % remotepython
    if ssh_config is not None:
        spec += "//ssh_config=%s" % ssh_config
    return default_group.makegateway(spec)


class _SocketGatewayFactory:
    """``SocketGateway(host, port)`` connects to a socket server;
    ``SocketGateway.new_remote(gateway, hostport=None)`` first starts one
    inside ``gateway`` (port 0: any free port)."""

    def __call__(self, host, port):
        from .multi import default_group

        return default_group.makegateway("socket=%s:%s" % (_host(host), port))

    def new_remote(self, gateway, hostport=None):
        """Start a socket server inside ``gateway``, listening on
        ``hostport`` (``(host, port)``, default ``("127.0.0.1", 0)``), and
        return a gateway connected to it; the server's token is handled
        here."""
        host, port = hostport if hostport is not None else ("127.0.0.1", 0)
        group = gateway._group
        if group is None or gateway not in group:
            raise ValueError("%r has exited: it cannot start a socket server" % (gateway,))
        return group.makegateway("socket=%s:%d//installvia=%s" % (_host(host), int(port), gateway.id))

    def __repr__(self):
        return "<function SocketGateway>"


def _host(host):
    host = str(host)
    return "[%s]" % host if ":" in host and not host.startswith("[") else host


SocketGateway = _SocketGatewayFactory()
