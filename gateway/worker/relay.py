# via=: run by the via gateway's worker (remote_exec). Starts a fresh
# interpreter with the loader and relays its stdin/stdout over this channel
# as bytes items, until the interpreter's stdout ends.
import os, subprocess, sys, threading

python, loader = channel.receive()
argv = list(python) if python else [sys.executable]
proc = subprocess.Popen(argv + ["-c", loader], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, bufsize=0)


def _inbound():
    fd = proc.stdin.fileno()
    try:
        for item in channel:
            view = memoryview(item)
            while view:
                view = view[os.write(fd, view):]
    except Exception:
        pass
    finally:
        try:
            proc.stdin.close()
        except Exception:
            pass


threading.Thread(target=_inbound, daemon=True).start()
try:
    fd = proc.stdout.fileno()
    while True:
        data = os.read(fd, 256 << 10)
        if not data:
            break
        channel.send(data)
except Exception:
    proc.kill()
finally:
    proc.wait()
