# installvia=: a one-connection socket server run inside a gateway
# (remote_exec), execnet's SocketGateway.new_remote with authentication.
# Receives (host, port, loader); binds; sends back (port, token); accepts
# until one client passes the handshake (wire/WIRE.md, "Socket server
# handshake"), then relays between that client and a fresh worker. All
# after the reply runs in a thread and this exec returns at once, so a
# gateway whose execmodel is main_thread_only stays free for other execs.
import hashlib, hmac, os, socket, subprocess, sys, threading

host, port, loader = channel.receive()
token = os.urandom(32).hex().encode()
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(8)
srv.settimeout(60)
channel.send((srv.getsockname()[1], token.decode()))


def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        b = conn.recv(n - len(buf))
        if not b:
            raise EOFError("peer closed")
        buf += b
    return buf


def _mac(label, ns, nc):
    return hmac.new(token, label + ns + nc, hashlib.sha256).digest()


def _handshake(conn):
    conn.settimeout(3)  # HANDSHAKE_TIMEOUT, wire/WIRE.md
    ns = os.urandom(32)
    conn.sendall(b"EXNS\x01\x01" + ns)
    answer = _recv_exact(conn, 69)
    if answer[:5] != b"EXNC\x01":
        return False
    nc = answer[5:37]
    if not hmac.compare_digest(answer[37:], _mac(b"execnet client", ns, nc)):
        conn.sendall(b"EXNR\x01")  # the refusal: a wrong token, not a dropped handshake
        return False
    conn.sendall(_mac(b"execnet server", ns, nc))
    conn.settimeout(None)
    return True


def _serve(srv=srv):
    try:
        while True:
            try:
                conn, peer = srv.accept()
            except socket.timeout:
                sys.stderr.write("execnet installvia server: no client within 60 s; closed\n")
                return
            try:
                if _handshake(conn):
                    break
            except Exception:
                pass
            sys.stderr.write("execnet installvia server: %s: authentication failed; closed\n" % (peer,))
            conn.close()
    finally:
        srv.close()

    proc = subprocess.Popen([sys.executable, "-c", loader], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0)

    def _inbound():
        fd = proc.stdin.fileno()
        try:
            while True:
                data = conn.recv(256 << 10)
                if not data:
                    break
                view = memoryview(data)
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
            conn.sendall(data)
    except Exception:
        proc.kill()
    finally:
        proc.wait()
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


threading.Thread(target=_serve, daemon=True).start()
