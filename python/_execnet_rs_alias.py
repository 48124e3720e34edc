"""The import alias that makes ``import execnet`` load ``execnet_rs``.

Installed next to the package with ``execnet-rs-alias.pth``, which calls
``install()`` at interpreter start unless the environment says
``EXECNET_RS=0``. Deliberately tiny and free of imports: it runs in every
interpreter start. The ``execnet`` distribution, if installed too, stays
untouched (packages that depend on it keep their dependency met); with
``EXECNET_RS=0`` it is the one ``import execnet`` finds.
"""

import sys

_NAME = "execnet"
_TARGET = "execnet_rs"


class _AliasLoader:
    def __init__(self, module):
        self._module = module

    def create_module(self, spec):
        return self._module

    def exec_module(self, module):
        # The import system stamped the alias spec on the module; the module
        # keeps its own (reloads and pickling go by its real name).
        real_spec = getattr(self._module, "__execnet_rs_spec__", None)
        if real_spec is not None:
            module.__spec__ = real_spec


class ExecnetAliasFinder:
    """Finds ``execnet`` and ``execnet.X`` as ``execnet_rs`` and ``execnet_rs.X``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _NAME and not fullname.startswith(_NAME + "."):
            return None
        import importlib
        import importlib.util

        real = _TARGET + fullname[len(_NAME):]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as e:
            if e.name == real:
                return None
            raise
        if getattr(module, "__execnet_rs_spec__", None) is None:
            module.__execnet_rs_spec__ = module.__spec__
        return importlib.util.spec_from_loader(
            fullname, _AliasLoader(module), origin=getattr(module, "__file__", None))

    def __repr__(self):
        return "<ExecnetAliasFinder execnet -> execnet_rs>"


def install():
    """Put the alias first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, ExecnetAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, ExecnetAliasFinder())


def uninstall():
    """Remove the alias (modules already imported stay imported)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, ExecnetAliasFinder)]
