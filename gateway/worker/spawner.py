# The spawner (gateway/src/spawn/): shipped by the opener after the worker's
# source, in one program, so that everything a worker needs is compiled and
# imported once. It is a single-threaded loop; every gateway to its place is
# a fork of it that runs the worker (_serve above) on its own stream and
# reads its own Hello from the opener.
#
# Control stream: the spawner's stdin/stdout. First the opener sends one
# byte, the mode: L (local) or R (remote). Then every message is a 9-byte
# head (op: 1 byte, gid: u32 LE, length: u32 LE) and its payload.
#   opener -> spawner
#     F gid   fork a worker. "local" mode: 3 fds (stdin, stdout, stderr of
#             the new worker) came with it over the unix socket (SCM_RIGHTS).
#     D gid   bytes for the worker's stdin ("remote" mode)
#     E gid   end of the worker's stdin ("remote" mode)
#     S gid   signal the worker (payload: signal number, 1 = its whole group)
#   spawner -> opener
#     R 0     ready (payload: pid u32)
#     P gid   forked (payload: pid u32)
#     ! gid   the fork failed (payload: why, utf-8)
#     O gid   bytes from the worker's stdout; empty: its end ("remote")
#     2 gid   bytes from the worker's stderr; empty: its end ("remote")
#     X gid   the worker exited (payload: its wait status, i32 LE), sent after
#             the ends of its stdout and stderr in "remote" mode
# The spawner exits when its stdin ends (the opener closed it, or died).
# C modules directly: signal.py and socket.py import enum, functools,
# selectors & co, milliseconds of every cold start
import select
import _signal as signal
import _socket
_SHEAD = Struct("<cII")
_SCHUNK = 256 << 10
_SPAUSE = 4 << 20          # stop reading workers while this much waits for the opener


class _Spawned:
    __slots__ = ("gid", "pid", "status", "fin", "fout", "ferr", "inbuf", "eof_in")

    def __init__(self, gid):
        self.gid = gid
        self.pid = None
        self.status = None
        self.fin = self.fout = self.ferr = None
        self.inbuf = deque()
        self.eof_in = False


class _Spawner:
    def __init__(self, mode):
        self.local = mode == "local"
        self.kids = {}            # gid -> _Spawned
        self.by_pid = {}          # pid -> _Spawned
        self.fds = set()          # every fd of ours a forked worker must close
        self.rbuf = bytearray()
        self.out = deque()
        self.outlen = 0
        self.passed = deque()     # fds received, not yet used by a fork
        self.standby = None       # (pid, socket, its pipes (remote)): the next worker, forked ahead
        self.by_fd = {}           # a remote worker's pipe -> (_Spawned, 0 stdin / 1 stdout / 2 stderr)
        self.paused = False       # not reading the workers: the opener is behind (see pace)
        self.poll = select.poll()
        self.wr, self.ww = os.pipe()
        for fd in (self.wr, self.ww):
            os.set_blocking(fd, False)
            self.fds.add(fd)
        signal.set_wakeup_fd(self.ww)
        signal.signal(signal.SIGCHLD, lambda s, f: None)
        self.poll.register(self.wr, select.POLLIN)
        if self.local:
            self.sock = _socket.socket(fileno=os.dup(0))
            self.cmsg_room = _socket.CMSG_SPACE(64 * 4)
            self.ctl_in = self.ctl_out = self.sock.fileno()
            self.fds.add(self.ctl_in)
        else:
            self.sock = None
            self.ctl_in, self.ctl_out = 0, 1
        os.set_blocking(self.ctl_in, False)
        os.set_blocking(self.ctl_out, False)
        self.poll.register(self.ctl_in, select.POLLIN)
        self.polled = {self.wr: select.POLLIN, self.ctl_in: select.POLLIN}

    # -- polling

    def want(self, fd, mask):
        if fd is None:
            return
        old = self.polled.get(fd, 0)
        if mask != old:
            if mask:
                if old:
                    self.poll.modify(fd, mask)
                else:
                    self.poll.register(fd, mask)
                self.polled[fd] = mask
            else:
                self.poll.unregister(fd)
                del self.polled[fd]

    def close(self, fd):
        if fd is None:
            return
        self.want(fd, 0)
        self.by_fd.pop(fd, None)
        self.fds.discard(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    # -- to the opener

    def send(self, op, gid, payload=b""):
        self.out.append(_SHEAD.pack(op, gid, len(payload)) + payload)
        self.outlen += 9 + len(payload)
        self.flush()

    def flush(self):
        out = self.out
        while out:
            try:
                n = os.write(self.ctl_out, out[0])
            except BlockingIOError:
                break
            except OSError:
                os._exit(0)       # the opener is gone
            self.outlen -= n
            if n == len(out[0]):
                out.popleft()
            else:
                out[0] = out[0][n:]
        if self.ctl_out == self.ctl_in:
            self.want(self.ctl_in, select.POLLIN | (select.POLLOUT if out else 0))
        else:
            self.want(self.ctl_out, select.POLLOUT if out else 0)
        self.pace()

    def pace(self):
        """Read the workers' output only while the opener keeps up (each
        flush looks; every worker is touched only when that changes)."""
        paused = self.outlen >= _SPAUSE
        if paused != self.paused:
            self.paused = paused
            for k in self.kids.values():
                self.read_from(k)

    def read_from(self, k):
        mask = 0 if self.paused else select.POLLIN
        self.want(k.fout, mask)
        self.want(k.ferr, mask)

    # -- from the opener

    def read_control(self):
        try:
            if self.local:
                data, anc, _flags, _addr = self.sock.recvmsg(_SCHUNK, self.cmsg_room)
                for fd in _passed_fds(anc):
                    self.passed.append(fd)
                    self.fds.add(fd)
            else:
                data = os.read(self.ctl_in, _SCHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.opener_gone()
        buf = self.rbuf
        buf += data
        p = 0
        while len(buf) - p >= 9:
            op, gid, n = _SHEAD.unpack_from(buf, p)
            if len(buf) - p - 9 < n:
                break
            payload = bytes(buf[p + 9:p + 9 + n])
            p += 9 + n
            self.handle(op, gid, payload)
        del buf[:p]

    def handle(self, op, gid, payload):
        if op == b"F":
            self.fork(gid)
            return
        k = self.kids.get(gid)
        if k is None:
            return
        if op == b"D":
            if k.fin is not None:
                k.inbuf.append(payload)
                if len(k.inbuf) == 1:
                    # mostly the pipe takes it now: no poll round first
                    self.to_worker(k)
                    if k.inbuf:
                        self.want(k.fin, select.POLLOUT)
        elif op == b"E":
            k.eof_in = True
            if not k.inbuf:
                self.close(k.fin)
                k.fin = None
        elif op == b"S" and len(payload) == 2 and k.status is None and k.pid:
            # not reaped yet, so the pid (and its group) is still this worker's
            try:
                if payload[1]:
                    os.killpg(k.pid, payload[0])
                else:
                    os.kill(k.pid, payload[0])
            except OSError:
                pass

    def opener_gone(self):
        # the workers' own streams tell them (local: the opener's ends of
        # their pipes; remote: their stdin, closed as this process exits)
        os._exit(0)

    # -- forking

    def fork(self, gid):
        k = _Spawned(gid)
        if self.local:
            if len(self.passed) < 3:
                self.send(b"!", gid, b"the fork request came without its 3 file descriptors")
                return
            ends = [self.passed.popleft() for _ in range(3)]
            mine = []
            if self.hand_over(k, ends):
                return
        else:
            if self.hand_over(k, None):
                return
            try:
                ends, mine = _worker_pipes()
            except OSError as e:
                self.send(b"!", gid, ("no pipes for a new worker: %s" % e).encode())
                return
            self.fds.update(ends + mine)
        try:
            pid = os.fork()
        except OSError as e:
            for fd in ends + mine:
                self.close(fd)
            self.send(b"!", gid, ("fork failed: %s" % e).encode())
            return
        if pid == 0:
            self.become_worker(ends)
        for fd in ends:
            self.close(fd)
        self.started(k, pid, mine)

    def started(self, k, pid, mine):
        """Worker k runs as process pid (remote: with our ends of its pipes)."""
        k.pid = pid
        if mine:
            k.fin, k.fout, k.ferr = mine
            for role, fd in enumerate(mine):
                os.set_blocking(fd, False)
                self.by_fd[fd] = (k, role)
            self.read_from(k)
        self.kids[k.gid] = k
        self.by_pid[pid] = k
        self.send(b"P", k.gid, _p32(pid))

    # -- the standby: the next worker, forked before it is asked for
    #
    # A fork costs the spawner little (~0.5 ms) but the new process a lot
    # before it runs a line of Python (copying what it touches, the
    # interpreter's after-fork work: ~2 ms on a small VM). A standby has paid
    # that while nobody waited: it sits blocked on a socket of its own until
    # a fork request hands it its streams (local: the 3 fds, passed on;
    # remote: pipes made with it), then runs the worker. The next standby is
    # forked after the answer to the request is on its way. A standby ends
    # when its socket does, so it never outlives the spawner.

    def prefork(self):
        if self.standby is not None:
            return
        ends = mine = []
        try:
            ours, theirs_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        except OSError:
            return
        theirs = theirs_sock.detach()
        if not self.local:
            try:
                ends, mine = _worker_pipes()
            except OSError:
                ours.close()
                os.close(theirs)
                return
        self.fds.update([ours.fileno(), theirs] + ends + mine)
        try:
            pid = os.fork()
        except OSError:
            self.fds.discard(ours.fileno())
            ours.close()
            for fd in [theirs] + ends + mine:
                self.close(fd)
            return
        if pid == 0:
            self.stand_by(theirs, ends)
        for fd in [theirs] + ends:
            self.close(fd)
        self.standby = (pid, ours, mine)

    def take_standby(self):
        """The standby, no longer waiting here: (its pid, our ends of its
        pipes (remote))."""
        pid, ours, mine = self.standby
        self.standby = None
        self.fds.discard(ours.fileno())
        ours.close()
        return pid, mine

    def drop_standby(self):
        for fd in self.take_standby()[1]:
            self.close(fd)

    def hand_over(self, k, ends):
        """Give the standby (if any) the streams of worker k: true when it
        took them, and k is running."""
        if self.standby is None:
            return False
        ours = self.standby[1]
        try:
            if ends is None:
                ours.send(b"g")
            else:
                ours.sendmsg([b"g"], [(_SCM[0], _SCM[1], Struct("<3i").pack(*ends))])
        except OSError:
            # it died: forget it (reap() collects it) and fork as before
            self.drop_standby()
            return False
        pid, mine = self.take_standby()
        if ends is not None:
            for fd in ends:
                self.close(fd)
        self.started(k, pid, mine)
        return True

    def stand_by(self, sock_fd, ends):
        """In the standby: the spawner's state left behind, its own process
        group, the worker built and warmed up (all but its stream); then wait
        for the streams and run the worker."""
        try:
            _child_setup()
            if ends:
                _onto_stdio(ends)
            else:
                # stand-ins until the streams come; not the spawner's control
                # socket: the opener must see it end when the spawner does
                nul = os.open(os.devnull, os.O_RDWR)
                os.dup2(nul, 0)
                os.dup2(nul, 1)
                os.close(nul)
            self.leave_fds(keep=sock_fd)
            gw = _prepare(*_stdio_off())
            _rehearse()
            sock = _socket.socket(fileno=sock_fd)
            sock.setblocking(True)
            data, anc, _flags, _addr = sock.recvmsg(1, _socket.CMSG_SPACE(3 * 4))
            if not data:
                os._exit(0)   # the spawner ended before it needed us
            if not ends:
                fds = _passed_fds(anc)
                if len(fds) != 3:
                    raise OSError("the streams came without their 3 file descriptors")
                # onto the fds the worker was built with (as _stdio_off left
                # them: the stream on two of its own, stdout joins stderr)
                os.dup2(fds[0], gw._in, inheritable=False)
                os.dup2(fds[1], gw._out, inheritable=False)
                os.dup2(fds[2], 2)
                os.dup2(2, 1)
                for fd in fds:
                    os.close(fd)
            sock.close()
            for fd in (gw._in, gw._out, 2):
                os.set_blocking(fd, True)
            _serve(gw)
        except BaseException as e:
            _child_failed(e)
        finally:
            os._exit(1)

    def leave_fds(self, keep=None):
        """In a new worker process: close every fd of the spawner's (but
        `keep`)."""
        for fd in self.fds:
            if fd != keep:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def become_worker(self, ends):
        """In the child: the worker's stream on fds 0/1, its stderr on 2,
        none of the spawner's fds, default signal handling; then the worker."""
        try:
            _child_setup()
            _onto_stdio(ends)
            self.leave_fds()
            _run_worker()
        except BaseException as e:
            _child_failed(e)
        finally:
            os._exit(1)

    # -- relaying ("remote" mode)

    def to_worker(self, k):
        while k.inbuf:
            try:
                n = os.write(k.fin, k.inbuf[0])
            except BlockingIOError:
                return
            except OSError:
                k.inbuf.clear()   # the worker closed its stdin: drop what it will not read
                break
            if n == len(k.inbuf[0]):
                k.inbuf.popleft()
            else:
                k.inbuf[0] = k.inbuf[0][n:]
        self.want(k.fin, 0)
        if k.eof_in:
            self.close(k.fin)
            k.fin = None

    def from_worker(self, k, fd, op):
        try:
            data = os.read(fd, _SCHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.send(op, k.gid, data)
        if not data:
            self.close(fd)
            if op == b"O":
                k.fout = None
            else:
                k.ferr = None
            self.report(k)

    # -- reaping

    def reap(self):
        try:
            while os.read(self.wr, 512):
                pass
        except OSError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.standby is not None and self.standby[0] == pid:
                self.drop_standby()
                continue
            k = self.by_pid.pop(pid, None)
            if k is not None:
                # what the worker's code started goes with it (its group
                # id stays reserved while a member lives: never a stranger)
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                k.status = status
                self.report(k)

    def report(self, k):
        if k.status is None or k.fout is not None or k.ferr is not None:
            return
        self.close(k.fin)
        k.fin = None
        self.kids.pop(k.gid, None)
        self.send(b"X", k.gid, _SSTATUS.pack(k.status))

    def run(self):
        self.send(b"R", 0, _p32(os.getpid()))
        # every fork inherits what this warms (a cached thread stack, the
        # heap arena, the compiler's state): its own first thread and exec
        # are then cheap
        _rehearse()
        self.prefork()
        by_fd = self.by_fd
        while True:
            for fd, ev in self.poll.poll():
                if fd == self.wr:
                    self.reap()
                elif fd == self.ctl_in and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self.read_control()
                    # (after every request of the read is answered)
                    self.prefork()
                elif fd == self.ctl_out and ev & select.POLLOUT:
                    self.flush()
                elif fd in by_fd:
                    k, role = by_fd[fd]
                    if role == 0:
                        if k.fin is not None:
                            self.to_worker(k)
                    elif role == 1:
                        if k.fout is not None:
                            self.from_worker(k, fd, b"O")
                    elif k.ferr is not None:
                        self.from_worker(k, fd, b"2")
                if fd == self.ctl_in and ev & select.POLLOUT:
                    self.flush()


_SSTATUS = Struct("<i")
_SCM = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)


def _passed_fds(ancillary):
    """The file descriptors that came with a message (SCM_RIGHTS)."""
    fds = []
    for level, kind, blob in ancillary:
        if (level, kind) == _SCM:
            n = len(blob) - len(blob) % 4
            fds.extend(Struct("<%di" % (n // 4)).unpack(blob[:n]))
    return fds


def _worker_pipes():
    """A remote worker's pipes: (its stdin, stdout, stderr ends), (ours)."""
    made = []
    try:
        for _ in range(3):
            made.append(os.pipe())
    except OSError:
        for r, w in made:
            os.close(r)
            os.close(w)
        raise
    (i_r, i_w), (o_r, o_w), (e_r, e_w) = made
    return [i_r, o_w, e_w], [i_w, o_r, e_r]


def _onto_stdio(fds):
    """fds become 0, 1 and 2 (stdin, stdout, stderr), in that order."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)


def _child_setup():
    """In a new worker process: its own process group, default SIGCHLD, no
    signal wake-up fd of the spawner's."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _run_worker():
    """In a new worker process with its stream on fds 0/1 and stderr on 2."""
    for fd in (0, 1, 2):
        os.set_blocking(fd, True)
    _serve()


def _rehearse():
    """What a new worker's first moments cost, paid before anybody waits:
    a first thread (the C library then keeps a stack and a heap arena for
    the next one) and a first compile and exec. Once in the spawner, whose
    forks inherit it all; again in each standby, where the pages these
    touch, shared with the spawner since the fork, are copied on the first
    write."""
    import threading
    # joined to its very end: the spawner forks next, and no fork should
    # copy a thread half way out
    t = threading.Thread(target=int)
    t.start()
    t.join()
    exec(compile("channel = None", "<standby>", "exec"), {})


def _child_failed(e):
    try:
        os.write(2, ("execnet spawner: the forked worker failed: %r\n" % (e,)).encode())
    except OSError:
        pass


def _spawner_mode():
    """The opener's first byte after the program: L (local: fd 0 is a unix
    socket that passes each fork its pipes) or R (remote: forks' streams
    are multiplexed over stdin/stdout). One program serves both, so one
    compiled copy of it does too."""
    try:
        b = os.read(0, 1)
    except OSError:
        b = b""
    if b == b"L":
        return "local"
    if b == b"R":
        return "remote"
    os.write(2, ("execnet spawner: expected the mode (L or R) first, got %r\n" % (b,)).encode())
    os._exit(1)


def _spawner_main():
    # like the worker: remote print() of the spawner itself must not reach
    # the control stream; stdin/stdout stay the control stream
    mode = _spawner_mode()
    sys.argv = ["-c"]
    sys.path[:] = [p for p in sys.path if p != ""]
    import threading  # noqa: F401  (imported by the main thread, as _serve does)
    _Spawner(mode).run()


if __name__ == "__execnet_worker__":
    _spawner_main()
