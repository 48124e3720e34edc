# via=: run by the via gateway's worker (remote_exec). Starts a fresh
# interpreter with the loader and relays its stdin/stdout as bytes items
# over a new channel, sent back first. The relaying runs in threads and this
# exec returns at once: a via gateway whose execmodel is main_thread_only
# must stay free for the next via= gateway (and for remote_exec).
import os, subprocess, sys, threading

python, loader = channel.receive()
argv = list(python) if python else [sys.executable]
proc = subprocess.Popen(argv + ["-c", loader], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, bufsize=0)
relay = channel.gateway.newchannel()


def _inbound(relay=relay, proc=proc):
    fd = proc.stdin.fileno()
    try:
        for item in relay:
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


def _outbound(relay=relay, proc=proc):
    try:
        fd = proc.stdout.fileno()
        while True:
            data = os.read(fd, 256 << 10)
            if not data:
                break
            relay.send(data)
    except Exception:
        proc.kill()
    finally:
        proc.wait()
        try:
            relay.close()
        except Exception:
            pass


channel.send(relay)
threading.Thread(target=_inbound, daemon=True).start()
threading.Thread(target=_outbound, daemon=True).start()
