"""XSpec: a gateway specification such as ``ssh=host//python=python3//id=a``."""

from __future__ import annotations


class XSpec:
    """A spec string read into attributes: ``popen``, ``ssh``, ``socket``,
    ``python``, ``chdir``, ``nice``, ``id``, ``via``, ``installvia``,
    ``execmodel``, ``dont_write_bytecode``, ``ssh_config``, ``env`` (a dict of
    the ``env:NAME=value`` parts) and any other key; a key that is absent
    reads as None and a bare key as True. Attributes can be set.

    ``str(spec)`` is the string it was made from, so ``XSpec(str(spec)) ==
    spec``; specs hash and compare by that string.
    """

    chdir = None
    dont_write_bytecode = None
    execmodel = None
    id = None
    installvia = None
    nice = None
    popen = None
    python = None
    socket = None
    ssh = None
    ssh_config = None
    token_file = None
    vagrant_ssh = None
    via = None

    def __init__(self, string):
        if not isinstance(string, str):
            raise TypeError("XSpec() needs a str, not %s" % type(string).__name__)
        self._spec = string
        self.env = {}
        for part in string.split("//"):
            key, eq, value = part.partition("=")
            if not key:
                raise ValueError("empty key in spec %r (part %r)" % (string, part))
            if key[0] == "_":
                raise AttributeError("%r not a valid XSpec key" % key)
            if key in self.__dict__ or (key.startswith("env:") and key[4:] in self.env):
                raise ValueError("duplicate key: %r in %r" % (key, string))
            if key.startswith("env:"):
                self.env[key[4:]] = value if eq else True
            else:
                setattr(self, key, value if eq else True)

    def __getattr__(self, name):
        if name[:1] == "_":
            raise AttributeError(name)
        return None

    def __repr__(self):
        return "<XSpec %r>" % (self._spec,)

    def __str__(self):
        return self._spec

    def __hash__(self):
        return hash(self._spec)

    def __eq__(self, other):
        return self._spec == getattr(other, "_spec", None)

    def __ne__(self, other):
        return not self == other

    def _samefilesystem(self):
        return self.popen is not None and self.chdir is None

    def _engine_spec(self, default_python=None):
        """The spec as the engine reads it, from the attributes as they are
        now (a group sets ``id`` and ``execmodel`` after parsing)."""
        parts = []
        for key, value in self.__dict__.items():
            if key[:1] == "_" or key == "env" or value is None or value is False:
                continue
            if key == "socket" and value is True and self.installvia:
                # `socket//installvia=gw`: a server on any free loopback port
                value = "127.0.0.1:0"
            parts.append(key if value is True else "%s=%s" % (key, value))
        for name, value in self.env.items():
            parts.append("env:%s=%s" % (name, "" if value is True else value))
        transport = self.ssh or self.socket or self.vagrant_ssh
        if default_python and not transport and not self.via and not self.python:
            # python= is a command line (split as a shell splits it)
            import shlex

            parts.append("python=%s" % shlex.quote(default_python))
        return "//".join(parts) if parts else "popen"
