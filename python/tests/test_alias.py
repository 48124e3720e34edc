"""The import alias: `import execnet` gives execnet_rs, unless EXECNET_RS=0."""

import importlib.util
import os

import pytest

from conftest import run_python

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("_execnet_rs_alias") is None,
    reason="needs the package installed (pip install ./python): the alias is a .pth hook",
)


def test_import_execnet_gives_ours():
    out = run_python("""
        import execnet, execnet_rs, execnet.gateway_base, execnet.multi
        from execnet import gateway_base, Group
        print(execnet.__file__)
        print(execnet is execnet_rs, gateway_base is execnet_rs.gateway_base, Group is execnet_rs.Group)
        print(execnet.__spec__.name, execnet.multi is execnet_rs.multi)
        """)
    assert out.returncode == 0, out.stderr
    file, same, spec = out.stdout.splitlines()
    assert file.endswith(os.path.join("execnet_rs", "__init__.py"))
    assert same == "True True True"
    assert spec == "execnet_rs True"


def test_execnet_rs_0_turns_it_off():
    out = run_python("""
        import sys
        try:
            import execnet
        except ImportError:
            print("no execnet")
        else:
            print(execnet.__file__)
        print("execnet_rs" in sys.modules, "_execnet_rs_alias" in sys.modules)
        """, env={"EXECNET_RS": "0"})
    assert out.returncode == 0, out.stderr
    first, loaded = out.stdout.splitlines()
    assert "execnet_rs" not in first
    assert loaded == "False False"


def test_interpreter_start_does_not_load_the_package():
    out = run_python("""
        import sys
        print("execnet_rs" in sys.modules, "_execnet_rs_alias" in sys.modules)
        """)
    assert out.stdout.split() == ["False", "True"]


def test_popen_workers_inherit_it():
    out = run_python("""
        import execnet
        gw = execnet.makegateway()
        print(gw.remote_exec("import execnet; channel.send(execnet.__file__)").receive())
        """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(os.path.join("execnet_rs", "__init__.py"))
    off = run_python("""
        import execnet_rs
        gw = execnet_rs.makegateway()
        print(gw.remote_exec("import os, sys\\n"
                             "try:\\n import execnet\\n"
                             "except ImportError: execnet = None\\n"
                             # without execnet installed, the worker's own
                             # stand-in module answers (it has no file)
                             "f = getattr(execnet, '__file__', 'none')\\n"
                             "channel.send((os.environ.get('EXECNET_RS'), f))").receive())
        """, env={"EXECNET_RS": "0"})
    assert off.returncode == 0, off.stderr
    assert off.stdout.startswith("('0', ")
    assert "execnet_rs" not in off.stdout
