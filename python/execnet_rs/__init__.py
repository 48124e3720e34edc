"""execnet's API on the execnet-rs engine.

Open gateways to fresh Python interpreters (a local child process, a host
over ssh, a socket server), run code there with ``remote_exec``, and talk to
it over channels::

    import execnet_rs as execnet
    gw = execnet.makegateway()
    ch = gw.remote_exec("channel.send(channel.receive() * 2)")
    ch.send(21)
    assert ch.receive() == 42

With this package installed, ``import execnet`` gives this module (set
``EXECNET_RS=0`` to get the ``execnet`` distribution instead);
``execnet.__file__`` shows which one is in use.
"""

from . import gateway_base
from ._core import ENGINE_VERSION as _ENGINE_VERSION
from ._errors import HostNotFound
from .gateway import Gateway
from .gateway import PopenGateway
from .gateway import SocketGateway
from .gateway import SshGateway
from .gateway_base import Channel
from .gateway_base import DataFormatError
from .gateway_base import DumpError
from .gateway_base import LoadError
from .gateway_base import RemoteError
from .gateway_base import TimeoutError
from .gateway_base import dump
from .gateway_base import dumps
from .gateway_base import load
from .gateway_base import loads
from .multi import Group
from .multi import MultiChannel
from .multi import default_group
from .multi import makegateway
from .multi import set_execmodel
from .rsync import RSync
from .xspec import XSpec

#: execnet's API version this package follows.
__version__ = "2.1.2"
#: This package's own version.
engine_version = _ENGINE_VERSION

__all__ = [
    "Channel",
    "DataFormatError",
    "DumpError",
    "Gateway",
    "Group",
    "HostNotFound",
    "LoadError",
    "MultiChannel",
    "PopenGateway",
    "RSync",
    "RemoteError",
    "SocketGateway",
    "SshGateway",
    "TimeoutError",
    "XSpec",
    "__version__",
    "default_group",
    "dump",
    "dumps",
    "gateway_base",
    "load",
    "loads",
    "makegateway",
    "set_execmodel",
]
