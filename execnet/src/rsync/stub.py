# Runs the receiving end (remote.py, passed as `source`), compiled once per
# worker: later targets on the same worker reuse it from sys.modules, under
# a key that changes with the source.
def rsync_receive(channel, source, key, **kwargs):
    import sys

    module = sys.modules.get(key)
    if module is None:
        import linecache
        import types

        filename = "<execnet rsync>"
        code = compile(source, filename, "exec")
        # Tracebacks show the receiving end's lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(key)
        exec(code, module.__dict__)
        sys.modules[key] = module
    module.rsync_receive(channel, **kwargs)
