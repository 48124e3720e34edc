"""Standalone tests of the Python worker (and loader), speaking the wire
format of wire/WIRE.md with an encoder/decoder written independently of the
worker's. Run: cd gateway/worker && python3 -m unittest -v test_worker
Quick figures: python3 test_worker.py bench [python ...]
"""

import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LOADER = open(os.path.join(HERE, "loader.py")).read()
WORKER = open(os.path.join(HERE, "worker.py"), "rb").read()
PY = os.environ.get("EXECNET_TEST_PYTHON", sys.executable)
MiB = 1 << 20


# ------------------------------------------------------------ test codec

class Chan:
    """A Channel value as the opener sees it."""

    def __init__(self, id):
        self.id = id

    def __eq__(self, other):
        return isinstance(other, Chan) and other.id == self.id

    def __hash__(self):
        return hash(("chan", self.id))

    def __repr__(self):
        return "Chan(%d)" % self.id


def uvar(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc(v):
    if v is None:
        return b"\x00"
    if v is True or v is False:
        return b"\x01" + (b"\x01" if v else b"\x00")
    if isinstance(v, int):
        if -(2 ** 63) <= v < 2 ** 63:
            return b"\x02" + uvar((v << 1) ^ (v >> 63))
        n = 1
        while True:
            try:
                b = v.to_bytes(n, "little", signed=True)
                break
            except OverflowError:
                n += 1
        return b"\x03" + uvar(len(b)) + b
    if isinstance(v, float):
        return b"\x04" + struct.pack("<d", v)
    if isinstance(v, complex):
        return b"\x05" + struct.pack("<dd", v.real, v.imag)
    if isinstance(v, bytes):
        return b"\x06" + uvar(len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return b"\x07" + uvar(len(b)) + b
    if isinstance(v, Chan):
        return b"\x0d" + uvar(v.id)
    if isinstance(v, dict):
        return b"\x0a" + uvar(len(v)) + b"".join(enc(k) + enc(x) for k, x in v.items())
    tag = {list: 8, tuple: 9, set: 11, frozenset: 12}[type(v)]
    return bytes([tag]) + uvar(len(v)) + b"".join(enc(x) for x in v)


class Dec:
    def __init__(self, b):
        self.b = b
        self.p = 0

    def byte(self):
        x = self.b[self.p]
        self.p += 1
        return x

    def var(self):
        v = shift = 0
        while True:
            x = self.byte()
            v |= (x & 0x7F) << shift
            shift += 7
            if x < 0x80:
                return v

    def take(self, n):
        assert self.p + n <= len(self.b), "short"
        r = bytes(self.b[self.p:self.p + n])
        self.p += n
        return r

    def value(self):
        t = self.byte()
        if t == 0:
            return None
        if t == 1:
            x = self.byte()
            assert x in (0, 1)
            return x == 1
        if t == 2:
            z = self.var()
            return (z >> 1) ^ -(z & 1)
        if t == 3:
            return int.from_bytes(self.take(self.var()), "little", signed=True)
        if t == 4:
            return struct.unpack("<d", self.take(8))[0]
        if t == 5:
            return complex(*struct.unpack("<dd", self.take(16)))
        if t == 6:
            return self.take(self.var())
        if t == 7:
            return self.take(self.var()).decode()
        if t == 13:
            return Chan(self.var())
        n = self.var()
        if t == 10:
            d = {}
            for _ in range(n):
                k = self.value()
                d[k] = self.value()
            return d
        items = [self.value() for _ in range(n)]
        return {8: list, 9: tuple, 11: set, 12: frozenset}[t](items)


NAMES = ["Hello", "Status", "Reconfigure", "Terminate", "ChannelExec", "ChannelData",
         "ChannelClose", "ChannelCloseError", "ChannelLastMessage", "Credit"]


def estr(s):
    b = s.encode()
    return uvar(len(b)) + b


def encode_msg(name, *f):
    t = NAMES.index(name)
    body = bytes([t])
    if name == "Hello":
        magic, version, window, maxf, info = f
        body += magic + uvar(version) + uvar(window) + uvar(maxf) + enc(info)
    elif name in ("Status", "ChannelClose", "ChannelLastMessage"):
        body += uvar(f[0])
    elif name == "Reconfigure":
        body += enc(f[0])
    elif name == "ChannelExec":
        ch, src, filename, call = (f + (None, None))[:4]
        body += uvar(ch) + estr(src)
        body += b"\x00" if filename is None else b"\x01" + estr(filename)
        if call is None:
            body += b"\x00"
        else:
            function, kwargs = call
            body += b"\x01" + estr(function) + uvar(len(kwargs))
            for k, v in kwargs.items():
                body += estr(k) + enc(v)
    elif name == "ChannelData":
        body += uvar(f[0]) + enc(f[1])
    elif name == "ChannelCloseError":
        s = f[1].encode()
        body += uvar(f[0]) + uvar(len(s)) + s
    elif name == "Credit":
        body += uvar(f[0]) + uvar(f[1])
    return struct.pack("<I", len(body)) + body


def decode_body(body):
    d = Dec(body)
    name = NAMES[d.byte()]
    if name == "Hello":
        f = (d.take(4), d.var(), d.var(), d.var(), d.value())
    elif name in ("Status", "ChannelClose", "ChannelLastMessage"):
        f = (d.var(),)
    elif name == "Reconfigure":
        f = (d.value(),)
    elif name == "ChannelExec":
        f = (d.var(), d.take(d.var()).decode())
        filename = d.take(d.var()).decode() if d.byte() else None
        call = None
        if d.byte():
            function = d.take(d.var()).decode()
            call = (function, {d.take(d.var()).decode(): d.value() for _ in range(d.var())})
        f += (filename, call)
    elif name == "ChannelData":
        f = (d.var(), d.value())
    elif name == "ChannelCloseError":
        f = (d.var(), d.take(d.var()).decode())
    elif name == "Credit":
        f = (d.var(), d.var())
    else:
        f = ()
    assert d.p == len(body), "trailing bytes in %s" % name
    return (name,) + f


GOLDEN = [
    (("Terminate",), "01 00 00 00 03"),
    (("Status", 1), "02 00 00 00 01 01"),
    (("ChannelClose", 3), "02 00 00 00 06 03"),
    (("ChannelLastMessage", 300), "03 00 00 00 08 ac 02"),
    (("Credit", 1, 1048576), "05 00 00 00 09 01 80 80 40"),
    (("ChannelData", 1, 42), "04 00 00 00 05 01 02 54"),
    (("ChannelData", 1, -1), "04 00 00 00 05 01 02 01"),
    (("ChannelData", 2, None), "03 00 00 00 05 02 00"),
    (("ChannelData", 1, True), "04 00 00 00 05 01 01 01"),
    (("ChannelData", 1, 2 ** 64), "0d 00 00 00 05 01 03 09 00 00 00 00 00 00 00 00 01"),
    (("ChannelData", 1, -2 ** 63 - 1), "0d 00 00 00 05 01 03 09 ff ff ff ff ff ff ff 7f ff"),
    (("ChannelData", 1, 1.5), "0b 00 00 00 05 01 04 00 00 00 00 00 00 f8 3f"),
    (("ChannelData", 1, "hé"), "07 00 00 00 05 01 07 03 68 c3 a9"),
    (("ChannelData", 1, b"\x00\xff"), "06 00 00 00 05 01 06 02 00 ff"),
    (("ChannelData", 1, (1, "a")), "09 00 00 00 05 01 09 02 02 02 07 01 61"),
    (("ChannelData", 1, {"k": []}), "09 00 00 00 05 01 0a 01 07 01 6b 08 00"),
    (("ChannelData", 1, Chan(4)), "04 00 00 00 05 01 0d 04"),
    (("ChannelExec", 1, "x=1", None, None), "08 00 00 00 04 01 03 78 3d 31 00 00"),
    (("ChannelExec", 3, "def f(channel, n): pass", "m.py", ("f", {"n": 2})),
     "28 00 00 00 04 03 17 64 65 66 20 66 28 63 68 61 6e 6e 65 6c 2c 20 6e 29 3a 20 70 61 73 73"
     " 01 04 6d 2e 70 79 01 01 66 01 01 6e 02 04"),
    (("ChannelCloseError", 1, "E"), "04 00 00 00 07 01 01 45"),
    (("Hello", b"EXNT", 1, 8388608, 268435456, {}),
     "11 00 00 00 00 45 58 4e 54 01 80 80 80 04 80 80 80 80 01 0a 00"),
]


# ------------------------------------------------------------ the client

class Worker:
    """Spawns loader + worker and speaks frames with it."""

    def __init__(self, info=None, window=8 * MiB, max_frame=256 * MiB, hello=True,
                 python=PY, reader=True):
        self.p = subprocess.Popen([python, "-c", LOADER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  bufsize=0)
        self.inbox = queue.Queue()
        self.err = []
        self.received_cost = 0
        self.credits = []
        self.t0 = time.perf_counter()
        self.hello_at = None
        self._errt = threading.Thread(target=self._stderr, daemon=True)
        self._errt.start()
        self.greeting = self._readn(8)
        if self.greeting is not None:
            assert self.greeting[:4] == b"EXNL", self.greeting
        self.write(struct.pack("<I", len(WORKER)) + b"s" + WORKER)
        if hello:
            if info is None:
                info = {"id": "gw0", "execmodel": "thread"}
            self.send("Hello", b"EXNT", 1, window, max_frame, info)
        if reader:
            threading.Thread(target=self._reader, daemon=True).start()

    def write(self, b):
        # stdin is unbuffered (raw): a write may take only part of b
        view = memoryview(b)
        while view:
            view = view[self.p.stdin.write(view):]

    def send(self, name, *f):
        self.write(encode_msg(name, *f))

    def _readn(self, n):
        chunks = []
        while n:
            b = self.p.stdout.read(n)
            if not b:
                return None
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _reader(self):
        while True:
            h = self._readn(4)
            if h is None:
                self.inbox.put(None)
                return
            n = struct.unpack("<I", h)[0]
            body = self._readn(n)
            if body is None:
                self.inbox.put(("TRUNCATED",))
                return
            msg = decode_body(body)
            if msg[0] == "Hello" and self.hello_at is None:
                self.hello_at = time.perf_counter()
            if msg[0] == "ChannelData":
                self.received_cost += n
            self.inbox.put(msg)

    def _stderr(self):
        while True:
            b = self.p.stderr.read(4096)
            if not b:
                return
            self.err.append(b)

    def stderr(self):
        if self.p.poll() is not None:
            # exited: what it wrote last may still be in the pipe
            self._errt.join(5)
        return b"".join(self.err).decode("utf-8", "replace")

    def get(self, timeout=10):
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("nothing from the worker within %ss; stderr:\n%s"
                                 % (timeout, self.stderr()))

    def hello(self):
        m = self.get()
        assert m[0] == "Hello", m
        return m

    def started(self):
        self.hello()
        return self

    def expect(self, *msg, timeout=10):
        m = self.get(timeout)
        assert m == msg, "expected %r, got %r; stderr:\n%s" % (msg, m, self.stderr())
        return m

    def data(self, ch, timeout=10):
        m = self.get(timeout)
        while m is not None and m[0] == "Credit":
            self.credits.append(m)
            m = self.get(timeout)
        assert m is not None and m[0] == "ChannelData" and m[1] == ch, \
            "expected data on %d, got %r; stderr:\n%s" % (ch, m, self.stderr())
        return m[2]

    def skip_credit(self, timeout=10):
        while True:
            m = self.get(timeout)
            if m is None or m[0] != "Credit":
                return m

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            f.close()


def child_state(pid):
    """The state letter of a process (Z: exited, not yet reaped), None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class WorkerTest(unittest.TestCase):
    def start(self, **kw):
        w = Worker(**kw)
        self.addCleanup(w.close)
        w.hello()
        return w

    def exec(self, w, ch, src):
        w.send("ChannelExec", ch, src)


class TestCodec(unittest.TestCase):
    """The test client and the worker both against WIRE.md section 7."""

    def test_client_golden(self):
        for msg, hexs in GOLDEN:
            frame = bytes.fromhex(hexs)
            self.assertEqual(encode_msg(*msg), frame, msg)
            self.assertEqual(decode_body(frame[4:]), msg)

    def worker_ns(self):
        ns = {"__name__": "not_run"}
        exec(compile(WORKER, "<execnet worker>", "exec"), ns)
        return ns

    def test_worker_golden_values(self):
        ns = self.worker_ns()

        class FakeGw:
            def _getchannel(self, cid):
                return ns["Channel"].__new__(ns["Channel"])

        for msg, hexs in GOLDEN:
            if msg[0] != "ChannelData" or isinstance(msg[2], Chan):
                continue
            frame = bytes.fromhex(hexs)
            body = frame[4:]
            out = []
            ns["_enc"](msg[2], out, 0)
            self.assertEqual(b"".join(out), body[2:], msg)
            v = ns["_decode_all"](memoryview(body), 2, FakeGw())
            self.assertEqual(v, msg[2])
            self.assertEqual(type(v), type(msg[2]))
        self.assertEqual(ns["_varint"](300), b"\xac\x02")
        self.assertEqual(ns["_varint"](1048576), b"\x80\x80\x40")

    def test_worker_decoder_rejects(self):
        ns = self.worker_ns()
        dec = lambda b: ns["_decode_all"](memoryview(b), 0, None)  # noqa: E731
        for bad in [b"\x0e", b"\x01\x02", b"\x07\x02\xff\xfe", b"\x08\x05\x00",
                    b"\x06\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                    b"\x0b\x01\x08\x00", b"\x0a\x01\x08\x00\x00", b"\x00\x00",
                    b"\x08\x01" * 201 + b"\x00", b"\x04\x00\x00", b"\x02\x80"]:
            with self.assertRaises((ns["LoadError"], IndexError, ValueError, struct.error),
                                   msg=bad):
                dec(bad)
        dec(b"\x08\x01" * 199 + b"\x08\x00")  # 200 nested containers are fine

    def test_worker_encoder_big_values(self):
        ns = self.worker_ns()
        for v in [2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1, 2 ** 64, -2 ** 64, 10 ** 40,
                  -(10 ** 40), 127, 128, -65, 64, 0, {frozenset([1, (2, 3)]): {None}}]:
            out = []
            ns["_enc"](v, out, 0)
            self.assertEqual(b"".join(out), enc(v), v)


class TestLoader(unittest.TestCase):
    def test_no_single_quote(self):
        self.assertNotIn("'", LOADER)

    def run_loader(self, data, loader=LOADER):
        p = subprocess.run([PY, "-c", loader], input=data, capture_output=True, timeout=20)
        return p.returncode, p.stderr.decode()

    def test_truncated_source(self):
        code, err = self.run_loader(struct.pack("<I", 1000) + b"s" + b"x = 1\n")
        self.assertEqual(code, 1)
        self.assertIn("execnet:", err)
        self.assertIn("ended", err)

    def test_truncated_length(self):
        code, err = self.run_loader(b"\x01\x00")
        self.assertEqual(code, 1)
        self.assertIn("ended", err)

    def test_runs_source_in_fresh_namespace(self):
        src = b"__import__('sys').stderr.write(__name__ + ' ' + str(sorted(globals())))\n"
        code, err = self.run_loader(struct.pack("<I", len(src)) + b"s" + src)
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "__execnet_worker__ ['__builtins__', '__name__']")

    def test_old_python_refused(self):
        # simulate an old interpreter by raising the version bar; nothing
        # may be read from stdin
        fake = LOADER.replace("(3, 8)", "(99, 0)")
        self.assertNotEqual(fake, LOADER)
        p = subprocess.Popen([PY, "-c", fake], stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=20)  # stdin stays open until here
        self.assertEqual(p.returncode, 1)
        v = "%d.%d.%d" % sys.version_info[:3] if PY == sys.executable else ""
        self.assertIn("execnet: the worker needs Python >= 3.8, this is " + v, err.decode())

    def test_real_old_pythons(self):
        import glob
        olds = glob.glob("/root/.pyenv/versions/[23].[0-7].*/bin/python")
        olds += [p for p in ("/usr/bin/python2", "/usr/bin/python3.6") if os.path.exists(p)]
        if not olds:
            self.skipTest("no python < 3.8 here")
        for py in olds:
            p = subprocess.run([py, "-c", LOADER], capture_output=True, input=b"")
            self.assertEqual(p.returncode, 1, py)
            self.assertIn(b"execnet: the worker needs Python >= 3.8, this is ", p.stderr)


class TestBasics(WorkerTest):
    def test_hello(self):
        w = Worker()
        self.addCleanup(w.close)
        m = w.get()
        self.assertEqual(m[:4], ("Hello", b"EXNT", 1, 8 * MiB))
        self.assertEqual(m[4], 256 * MiB)
        info = m[5]
        self.assertEqual(set(info), {"python", "pid", "executable", "platform", "cwd",
                                     "execmodel"})
        self.assertEqual(info["pid"], w.p.pid)
        self.assertEqual(info["platform"], sys.platform)
        self.assertIsInstance(info["python"], str)
        self.assertEqual(info["cwd"], os.getcwd())

    def test_wrong_magic(self):
        w = Worker(hello=False)
        self.addCleanup(w.close)
        w.hello()
        w.send("Hello", b"EXNX", 1, 100, 100, {})
        self.assertEqual(w.p.wait(10), 1)
        self.assertIn("magic", w.stderr())

    def test_wrong_version(self):
        w = Worker(hello=False)
        self.addCleanup(w.close)
        w.hello()
        w.send("Hello", b"EXNT", 2, 100, 100, {})
        self.assertEqual(w.p.wait(10), 1)
        self.assertIn("version 2", w.stderr())

    def test_echo(self):
        w = self.start()
        self.exec(w, 1, "for x in channel:\n    channel.send(x)\n")
        for i in range(100):
            w.send("ChannelData", 1, i)
            self.assertEqual(w.data(1), i)
        w.send("ChannelLastMessage", 1)
        w.expect("ChannelClose", 1)

    def test_values_roundtrip(self):
        w = self.start()
        self.exec(w, 1, "for x in channel:\n    channel.send(x)\n")
        values = [None, True, False, 0, 1, -1, 63, 64, -64, -65, 2 ** 63 - 1, -2 ** 63,
                  2 ** 64, -2 ** 64, 2 ** 64 + 1, 10 ** 100, -(10 ** 100), 1.5, -0.0,
                  float("inf"), 1 + 2j, b"", b"\x00\xff" * 100, "", "hé" * 1000,
                  [], [1, [2, [3]]], (), (1, "a", (None,)), {}, {"k": [], 1: (2,), None: {}},
                  set(), {1, 2, "x"}, frozenset(), frozenset([1, (2, frozenset([3]))]),
                  {(1, 2): frozenset(["a"])}, b"x" * (2 * MiB), "y" * (3 * MiB)]
        for v in values:
            w.send("ChannelData", 1, v)
            got = w.data(1)
            self.assertEqual(got, v)
            self.assertEqual(type(got), type(v))
        w.send("ChannelData", 1, float("nan"))
        v = w.data(1)
        self.assertNotEqual(v, v)

    def test_channels_inside_items(self):
        w = self.start()
        self.exec(w, 1, "a, b = channel.receive()\n"
                        "b.send((a.receive() + 1, a.id, b.id, a))\n")
        w.send("ChannelData", 1, (Chan(3), Chan(5)))
        w.send("ChannelData", 3, 41)
        self.assertEqual(w.data(5), (42, 3, 5, Chan(3)))

    def test_received_channel_dropped_by_the_code_closes(self):
        # the reader keeps no reference to the last item it delivered
        w = self.start()
        self.exec(w, 1, "c = channel.receive()\nc.send(1)\ndel c\n"
                        "channel.receive()\n")
        w.send("ChannelData", 1, Chan(3))
        self.assertEqual(w.data(3), 1)
        self.assertEqual(w.get(), ("ChannelClose", 3))
        w.send("ChannelData", 1, None)
        w.expect("ChannelClose", 1)

    def test_import_execnet_without_one_installed(self):
        w = self.start()
        self.exec(w, 1, "import sys\n"
                        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
                        "sys.meta_path[:] = [f for f in sys.meta_path\n"
                        "                    if 'Alias' not in type(f).__name__]\n"
                        "sys.modules.pop('execnet', None)\n"
                        "import execnet\n"
                        "from execnet.gateway_base import DumpError, ExecModel, Channel\n"
                        "b = execnet.dumps((1, 'x', [2.5, None]))\n"
                        "try:\n"
                        "    execnet.dumps(object())\n"
                        "except execnet.DumpError as e:\n"
                        "    err = str(e)\n"
                        "channel.send((b, execnet.loads(b), err, Channel is type(channel),\n"
                        "              isinstance(channel.gateway.execmodel, ExecModel)))\n")
        dumped, loaded, err, same_channel, is_model = w.data(1)
        # the bytes are one ChannelData frame for channel 1 (what
        # execnet_rs's dumps makes): the independent decoder reads them
        n = struct.unpack("<I", dumped[:4])[0]
        self.assertEqual(n, len(dumped) - 4)
        self.assertEqual(decode_body(dumped[4:]), ("ChannelData", 1, (1, "x", [2.5, None])))
        self.assertEqual(loaded, (1, "x", [2.5, None]))
        self.assertIn("can't serialize", err)
        self.assertTrue(same_channel and is_model)

    def test_newchannel_and_gateway_id(self):
        w = self.start(info={"id": "gw7", "execmodel": "thread"})
        self.exec(w, 1, "c = channel.gateway.newchannel()\n"
                        "d = channel.gateway.newchannel()\n"
                        "channel.send((c.id, d.id, channel.gateway.id, repr(c)))\n"
                        "channel.send(c)\n"
                        "c.send('hi')\n")
        ids = w.data(1)
        self.assertEqual(ids, (2, 4, "gw7-worker", "<Channel id=2 open>"))
        self.assertEqual(w.data(1), Chan(2))
        self.assertEqual(w.data(2), "hi")
        # d, then c are garbage-collected while open: ChannelClose for them
        rest = [w.get() for _ in range(3)]
        self.assertIn(("ChannelClose", 1), rest)
        self.assertIn(("ChannelClose", 2), rest)
        self.assertIn(("ChannelClose", 4), rest)

    def test_remote_exception(self):
        w = self.start()
        self.exec(w, 1, "def foo():\n    return foobar()\nfoo()\n")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertTrue(m[2].startswith("Traceback (most recent call last):"), m[2])
        self.assertIn("NameError", m[2])
        self.assertIn("foobar", m[2])
        self.assertIn('File "<remote exec>", line 2, in foo', m[2])

    def test_syntax_error(self):
        w = self.start()
        self.exec(w, 1, "def foo()\n return 1\n")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        # no frames of ours: the header execnet's texts start with, then
        # where the code is wrong, and why
        self.assertTrue(m[2].startswith('Traceback (most recent call last):\n'
                                        '  File "<remote exec>", line 1'), m[2])
        self.assertIn("def foo()", m[2])
        self.assertIn("SyntaxError", m[2])

    def test_traceback_shows_the_users_frames_and_lines_only(self):
        w = self.start()
        self.exec(w, 1, "def foo():\n    return foobar\n\nfoo()\n")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        lines = m[2].splitlines()
        self.assertEqual(lines[0], "Traceback (most recent call last):")
        self.assertEqual(lines[1:5], [
            '  File "<remote exec>", line 4, in <module>', "    foo()",
            '  File "<remote exec>", line 2, in foo', "    return foobar"], m[2])
        self.assertNotIn("execnet worker", m[2])
        self.assertNotIn("_execute", m[2])

    def test_failed_send_shows_no_encoder_frames(self):
        w = self.start()
        self.exec(w, 1, "x = []\nfor _ in range(300):\n    x = [x]\nchannel.send(x)\n")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn('File "<remote exec>", line 4, in <module>', m[2])
        self.assertIn("execnet.gateway_base.DumpError: can't serialize values nested deeper "
                      "than 200", m[2])
        self.assertLess(len(m[2].splitlines()), 8, m[2])

    def test_filename_and_function_call_with_kwargs(self):
        w = self.start()
        src = "\n\ndef work(channel, a, b=0):\n    channel.send((a, b, __name__))\n"
        w.send("ChannelExec", 1, src, "/nowhere/mod.py", ("work", {"a": [1], "b": "x"}))
        self.assertEqual(w.get(), ("ChannelData", 1, ([1], "x", "__channelexec__")))
        self.assertEqual(w.get(), ("ChannelClose", 1))

    def test_traceback_names_the_file_and_shows_its_lines(self):
        # the file does not exist on the worker's side: lines come from the source sent
        w = self.start()
        src = "\n\ndef work(channel):\n    raise ValueError('nope')\n"
        w.send("ChannelExec", 1, src, "/nowhere/mod.py", ("work", {}))
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn('File "/nowhere/mod.py", line 4, in work', m[2])
        self.assertIn("raise ValueError('nope')", m[2])
        self.assertIn("ValueError: nope", m[2])

    def test_call_of_a_name_the_code_does_not_define(self):
        w = self.start()
        w.send("ChannelExec", 1, "x = 1\n", None, ("x", {}))
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn("NameError: remote_exec was asked to call 'x'", m[2])

    def test_system_exit(self):
        w = self.start()
        self.exec(w, 1, "import sys\nsys.exit(3)\n")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn("SystemExit: 3", m[2])
        self.exec(w, 3, "channel.send('still alive')")
        self.assertEqual(w.data(3), "still alive")

    def test_a_forked_child_does_not_speak_the_protocol_and_exits(self):
        w = self.start()
        # both processes run the rest of the snippet; only the parent's send
        # may reach the opener, the child's fails with a clear error
        self.exec(w, 1, "import os, time\n"
                        "pid = os.fork()\n"
                        "if pid == 0:\n"
                        "    time.sleep(0.2)\n"
                        "channel.send(('parent' if pid else 'child', pid))\n")
        who, child = w.data(1)
        self.assertEqual(who, "parent")
        w.expect("ChannelClose", 1)
        deadline = time.monotonic() + 10
        while child_state(child) not in ("Z", None) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn(child_state(child), ("Z", None), "the forked child still runs")
        while "forked by remote code" not in w.stderr() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("forked by remote code", w.stderr())
        # the parent worker goes on serving
        self.exec(w, 3, "channel.send('still here')")
        self.assertEqual(w.data(3), "still here")

    def test_a_forked_child_that_returns_normally_exits_silently(self):
        w = self.start()
        self.exec(w, 1, "import os\npid = os.fork()\nif pid:\n    channel.send(pid)\n")
        child = w.data(1)
        w.expect("ChannelClose", 1)
        deadline = time.monotonic() + 10
        while child_state(child) not in ("Z", None) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn(child_state(child), ("Z", None), "the forked child still runs")
        self.exec(w, 3, "channel.send(3)")
        self.assertEqual(w.data(3), 3)
        self.assertNotIn("Traceback", w.stderr())

    def test_eof_error_is_normal_end(self):
        w = self.start()
        self.exec(w, 1, "channel.receive()\n")
        w.send("ChannelClose", 1)
        self._no_message(w)
        self.exec(w, 3, "raise EOFError('x')")
        w.expect("ChannelClose", 3)

    def _no_message(self, w):
        # the worker must not send anything: the opener closed the channel
        try:
            m = w.inbox.get(timeout=0.3)
        except queue.Empty:
            return None
        self.fail("unexpected %r" % (m,))

    def test_opener_close_error(self):
        w = self.start()
        self.exec(w, 1, "try:\n    channel.receive()\n"
                        "except channel.RemoteError as e:\n    r = str(e)\n"
                        "c = channel.gateway.newchannel()\n"
                        "c.send(r)\n"
                        "try:\n    channel.receive()\nexcept EOFError:\n    c.send('eof')\n"
                        "try:\n    channel.send(1)\nexcept IOError as e:\n    c.send(str(e))\n")
        w.send("ChannelCloseError", 1, "boom")
        self.assertEqual(w.data(2), "boom")
        self.assertEqual(w.data(2), "eof")
        self.assertEqual(w.data(2), "cannot send to <Channel id=1 closed>")

    def test_print_does_not_corrupt(self):
        w = self.start()
        self.exec(w, 1, "import os, sys\nprint('hello from print')\n"
                        "os.write(1, b'raw fd1 bytes\\n')\n"
                        "sys.stdout.write('no newline')\n"
                        "channel.send(sys.stdin.read())\n"
                        "channel.send(42)\n")
        self.assertEqual(w.data(1), "")
        self.assertEqual(w.data(1), 42)
        w.expect("ChannelClose", 1)
        time.sleep(0.2)
        err = w.stderr()
        self.assertIn("hello from print", err)
        self.assertIn("raw fd1 bytes", err)
        self.assertIn("no newline", err)

    def test_subprocess_output_does_not_corrupt(self):
        w = self.start()
        self.exec(w, 1, "import subprocess, sys\n"
                        "subprocess.run([sys.executable, '-c', 'print(123)'])\n"
                        "channel.send(1)\n")
        self.assertEqual(w.data(1), 1)
        time.sleep(0.2)
        self.assertIn("123", w.stderr())

    def test_settings(self):
        d = tempfile.mkdtemp()
        target = os.path.join(d, "a", "b")
        w = self.start(info={"id": "gw1", "execmodel": "thread", "chdir": target,
                             "env": {"EXECNET_X": "1"}, "dont_write_bytecode": True,
                             "nice": 1, "unknown": [1]})
        self.exec(w, 1, "import os, sys\n"
                        "channel.send((os.getcwd(), os.environ.get('EXECNET_X'), "
                        "sys.dont_write_bytecode, os.nice(0) if hasattr(os, 'nice') else 1))")
        cwd, x, dwb, nice = w.data(1)
        self.assertEqual(os.path.realpath(cwd), os.path.realpath(target))
        self.assertEqual((x, dwb), ("1", True))
        self.assertGreaterEqual(nice, 1)

    def test_status(self):
        w = self.start()
        self.exec(w, 1, "channel.receive()")
        self.exec(w, 3, "channel.receive()")
        # at once: an exec counts from its arrival, started or not (execnet's
        # test_gateway_status_busy asks right after its execs)
        w.send("Status", 7)
        d = w.data(7)
        self.assertEqual(d["execmodel"], "thread")
        self.assertEqual(d["numexecuting"], 2)
        self.assertGreaterEqual(d["numchannels"], 2)
        w.expect("ChannelClose", 7)

    def test_reconfigure_ignored(self):
        w = self.start()
        w.send("Reconfigure", {"something": 1})
        self.exec(w, 1, "channel.send(1)")
        self.assertEqual(w.data(1), 1)

    def test_terminate_with_stuck_exec(self):
        w = self.start()
        self.exec(w, 1, "channel.send(1)\nwhile 1: pass\n")
        self.exec(w, 3, "import time\nchannel.send(2)\nwhile 1: time.sleep(1)\n")
        got = sorted([w.get()[2], w.get()[2]])
        self.assertEqual(got, [1, 2])
        t = time.time()
        w.send("Terminate")
        self.assertEqual(w.p.wait(5), 0)
        self.assertLess(time.time() - t, 2)

    def test_stdin_eof_exits(self):
        w = self.start()
        self.exec(w, 1, "while 1: pass\n")
        time.sleep(0.1)
        t = time.time()
        w.p.stdin.close()
        self.assertEqual(w.p.wait(5), 0)
        self.assertLess(time.time() - t, 2)

    def test_protocol_error(self):
        w = self.start()
        w.write(struct.pack("<I", 2) + b"\x0f\x00")
        self.assertEqual(w.p.wait(5), 1)
        self.assertIn("protocol error", w.stderr())
        self.assertIn("unknown message tag 15", w.stderr())

    def test_oversized_frame(self):
        w = self.start()
        w.write(struct.pack("<I", 256 * MiB + 1))
        self.assertEqual(w.p.wait(5), 1)
        self.assertIn("268435457", w.stderr())

    def test_trailing_bytes(self):
        w = self.start()
        w.write(struct.pack("<I", 4) + b"\x05\x01\x00\x00")
        self.assertEqual(w.p.wait(5), 1)
        self.assertIn("trailing", w.stderr())

    def test_send_unserializable(self):
        w = self.start()
        self.exec(w, 1, "channel.send(ValueError())")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn("can't serialize <class 'ValueError'>", m[2])

    def test_receive_timeout(self):
        w = self.start()
        self.exec(w, 1, "try:\n    channel.receive(timeout=0.1)\n"
                        "except channel.TimeoutError as e:\n    channel.send(str(e))\n"
                        "channel.send(channel.receive(timeout=5))\n")
        self.assertEqual(w.data(1), "no item after 0.1 seconds")
        w.send("ChannelData", 1, "late")
        self.assertEqual(w.data(1), "late")

    def test_waitclose(self):
        w = self.start()
        self.exec(w, 1, "c = channel.gateway.newchannel()\nchannel.send(c)\n"
                        "try:\n    c.waitclose(0.05)\nexcept c.TimeoutError:\n"
                        "    channel.send('timeout')\n"
                        "try:\n    c.waitclose(5)\nexcept c.RemoteError as e:\n"
                        "    channel.send(('remote', str(e), c.isclosed()))\n")
        self.assertEqual(w.data(1), Chan(2))
        self.assertEqual(w.data(1), "timeout")
        w.send("ChannelCloseError", 2, "bad")
        self.assertEqual(w.data(1), ("remote", "bad", True))

    def test_close_in_exec_refused(self):
        w = self.start()
        self.exec(w, 1, "channel.close()")
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 1))
        self.assertIn("cannot explicitly close channel within remote_exec", m[2])

    def test_send_int_fast_paths(self):
        # the one- and two-byte varint paths of send() and the general
        # encoder agree at every boundary
        values = [-2**63, -8193, -8192, -8191, -65, -64, -1, 0, 63, 64, 127, 128,
                  8191, 8192, 16383, 16384, 2**63 - 1]
        w = self.start()
        self.exec(w, 1, "for v in %r:\n    channel.send(v)\n" % (values,))
        for v in values:
            self.assertEqual(w.data(1), v)
        w.expect("ChannelClose", 1)

    def test_a_burst_of_sends_arrives_while_the_sender_computes(self):
        # a tight loop of sends is written in batches; the last batch must
        # not wait for the code to block or end (the flusher thread writes
        # it while the sender still holds the interpreter)
        w = self.start()
        self.exec(w, 1, "import time\n"
                        "for i in range(50):\n"
                        "    channel.send(i)\n"
                        "end = time.monotonic() + 4\n"
                        "while time.monotonic() < end:\n"
                        "    pass\n"
                        "channel.send('done')\n")
        for i in range(50):
            self.assertEqual(w.data(1, timeout=2), i)
        self.assertEqual(w.data(1, timeout=10), "done")
        w.expect("ChannelClose", 1)

    def test_a_burst_of_sends_then_os_exit_loses_nothing(self):
        w = self.start()
        self.exec(w, 1, "import os\n"
                        "for i in range(1000):\n"
                        "    channel.send(i)\n"
                        "os._exit(0)\n")
        for i in range(1000):
            self.assertEqual(w.data(1), i)
        self.assertIsNone(w.skip_credit())
        self.assertEqual(w.p.wait(10), 0)

    def test_bursts_from_two_threads_keep_each_channels_order(self):
        w = self.start()
        self.exec(w, 1, "import threading\n"
                        "def burst(ch, tag):\n"
                        "    for i in range(3000):\n"
                        "        ch.send((tag, i))\n"
                        "a, b = channel.gateway.newchannel(), channel.gateway.newchannel()\n"
                        "channel.send((a, b))\n"
                        "ts = [threading.Thread(target=burst, args=(c, t)) for c, t in ((a, 'a'), (b, 'b'))]\n"
                        "[t.start() for t in ts]\n"
                        "[t.join() for t in ts]\n")
        a, b = (c.id for c in w.data(1))
        seen = {a: 0, b: 0}
        tags = {a: "a", b: "b"}
        while seen[a] < 3000 or seen[b] < 3000:
            m = w.skip_credit()
            self.assertIsNotNone(m, w.stderr())
            if m[0] != "ChannelData":
                continue
            cid = m[1]
            self.assertEqual(m[2], (tags[cid], seen[cid]))
            seen[cid] += 1

    def test_main_thread_only(self):
        w = self.start(info={"id": "gw0", "execmodel": "main_thread_only"})
        src = ("import threading\n"
               "channel.send(threading.current_thread() is threading.main_thread())\n"
               "channel.send(channel.receive())\n")
        self.exec(w, 1, src)
        self.assertEqual(w.data(1), True)
        # exec 3 while exec 1 holds the main thread: refused after a short
        # grace (it would wait for exec 1, which may be waiting for exec 3)
        self.exec(w, 3, src)
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 3))
        # exactly execnet's text (programs compare with its constant)
        self.assertEqual(m[2], "concurrent remote_exec would cause deadlock for "
                               "main_thread_only execmodel")
        w.send("ChannelData", 1, "one")
        self.assertEqual(w.data(1), "one")
        w.expect("ChannelClose", 1)
        # once exec 1's close is out, the main thread takes the next one
        self.exec(w, 5, src)
        self.assertEqual(w.data(5), True)
        w.send("ChannelData", 5, "five")
        self.assertEqual(w.data(5), "five")
        w.expect("ChannelClose", 5)
        # an exec sent while the previous one is finishing waits for it
        self.exec(w, 7, "channel.send(1)\nimport time\ntime.sleep(0.2)\n")
        self.assertEqual(w.data(7), 1)
        self.exec(w, 9, "channel.send(2)\n")
        w.expect("ChannelClose", 7)
        self.assertEqual(w.data(9), 2)
        w.expect("ChannelClose", 9)
        w.send("Status", 11)
        self.assertEqual(w.data(11)["execmodel"], "main_thread_only")

    def test_execmodel_api(self):
        for model in ("thread", "main_thread_only"):
            w = self.start(info={"id": "gw0", "execmodel": model})
            self.exec(w, 1, "m = channel.gateway.execmodel\n"
                            "lock, rlock, ev = m.Lock(), m.RLock(), m.Event()\n"
                            "with lock, rlock: ev.set()\n"
                            "q = m.queue.Queue(); m.start(q.put, (m.get_ident(),))\n"
                            "channel.send((m.backend, ev.is_set(), type(q.get()).__name__))\n")
            self.assertEqual(w.data(1), (model, True, "int"))
            w.expect("ChannelClose", 1)

    def test_argv_and_path(self):
        w = self.start()
        self.exec(w, 1, "import sys\nchannel.send((sys.argv, '' in sys.path))\n")
        self.assertEqual(w.data(1), (["-c"], False))

    def test_thread_model_concurrent(self):
        w = self.start()
        self.exec(w, 1, "import threading\n"
                        "channel.send(threading.current_thread() is threading.main_thread())\n"
                        "channel.send(channel.receive())\n")
        self.assertEqual(w.data(1), True)
        self.exec(w, 3, "import threading\n"
                        "channel.send(threading.current_thread() is threading.main_thread())\n")
        self.assertEqual(w.data(3), False)
        w.expect("ChannelClose", 3)
        w.send("ChannelData", 1, 5)
        self.assertEqual(w.data(1), 5)

    def test_setcallback_endmarker(self):
        w = self.start()
        self.exec(w, 1, "import queue\nq = queue.Queue()\n"
                        "ch = channel.gateway.newchannel()\n"
                        "ch.setcallback(q.put, endmarker='END')\n"
                        "channel.send(ch)\n"
                        "try:\n    ch.receive()\nexcept IOError:\n    channel.send('ioerror')\n"
                        "while True:\n    x = q.get()\n    channel.send(x)\n"
                        "    if x == 'END': break\n")
        self.assertEqual(w.data(1), Chan(2))
        self.assertEqual(w.data(1), "ioerror")
        w.send("ChannelData", 2, 1)
        w.send("ChannelData", 2, 2)
        w.send("ChannelClose", 2)
        self.assertEqual([w.data(1), w.data(1), w.data(1)], [1, 2, "END"])

    def test_setcallback_pending_items_and_lastmessage(self):
        w = self.start()
        self.exec(w, 1, "import queue, time\nq = queue.Queue()\n"
                        "ch = channel.gateway.newchannel()\n"
                        "channel.send(ch)\n"
                        "channel.receive()\n"  # items on ch are pending now
                        "ch.setcallback(q.put, endmarker=None)\n"
                        "del ch\n"  # has a callback: LastMessage
                        "while True:\n    x = q.get()\n    channel.send(x)\n"
                        "    if x is None: break\n")
        self.assertEqual(w.data(1), Chan(2))
        w.send("ChannelData", 2, "a")
        w.send("ChannelData", 2, "b")
        time.sleep(0.1)
        w.send("ChannelData", 1, "go")
        w.expect("ChannelLastMessage", 2)
        self.assertEqual(w.data(1), "a")
        self.assertEqual(w.data(1), "b")
        w.send("ChannelData", 2, "c")
        self.assertEqual(w.data(1), "c")
        w.send("ChannelClose", 2)
        self.assertEqual(w.data(1), None)

    def test_callback_error(self):
        w = self.start()
        self.exec(w, 1, "def f(item):\n    raise ValueError(42)\n"
                        "ch = channel.gateway.newchannel()\nch.setcallback(f)\n"
                        "channel.send(ch)\nchannel.receive()\nchannel.send(ch.isclosed())\n")
        self.assertEqual(w.data(1), Chan(2))
        w.send("ChannelData", 2, 1)
        m = w.get()
        self.assertEqual(m[:2], ("ChannelCloseError", 2))
        self.assertIn("ValueError: 42", m[2])
        w.send("ChannelData", 1, "go")
        self.assertEqual(w.data(1), True)

    def test_makefile(self):
        w = self.start()
        self.exec(w, 1, "f = channel.makefile('w')\nf.write('hello world\\n')\n"
                        "f.write(b'raw')\nf.flush()\n"
                        "r = channel.makefile('r')\n"
                        "channel.send(r.read(2))\nchannel.send(r.readline())\n"
                        "channel.send(r.readline())\nchannel.send(r.read(3))\n")
        self.assertEqual(w.data(1), "hello world\n")
        self.assertEqual(w.data(1), b"raw")
        w.send("ChannelData", 1, "xyab")
        w.send("ChannelData", 1, "c\nde")
        w.send("ChannelData", 1, "f\n")
        w.send("ChannelLastMessage", 1)
        self.assertEqual(w.data(1), "xy")
        self.assertEqual(w.data(1), "abc\n")
        self.assertEqual(w.data(1), "def\n")
        self.assertEqual(w.data(1), "")

    def test_iteration_and_receive_after_end(self):
        w = self.start()
        self.exec(w, 1, "c = channel.gateway.newchannel()\nchannel.send(c)\n"
                        "channel.send(list(c))\n"
                        "try:\n    c.receive()\nexcept EOFError:\n    channel.send('eof')\n")
        self.assertEqual(w.data(1), Chan(2))
        for i in range(3):
            w.send("ChannelData", 2, i)
        w.send("ChannelLastMessage", 2)
        self.assertEqual(w.data(1), [0, 1, 2])
        self.assertEqual(w.data(1), "eof")


class TestFlowControl(WorkerTest):
    def test_producer_stops_at_window(self):
        window = 8 * MiB
        w = self.start(window=window)
        self.exec(w, 1, "b = b'x' * (1 << 20)\nfor i in range(100):\n    channel.send(b)\n"
                        "channel.send('done')\n")
        time.sleep(1.0)
        item = MiB + 5
        self.assertLessEqual(w.received_cost, window + item)
        self.assertGreaterEqual(w.received_cost, window)
        before = w.received_cost
        time.sleep(0.3)
        self.assertEqual(w.received_cost, before)
        w.send("Credit", 1, 4 * MiB)
        time.sleep(0.5)
        self.assertGreater(w.received_cost, before)
        self.assertLessEqual(w.received_cost, window + 4 * MiB + item)
        w.send("Credit", 1, 200 * MiB)
        n = 0
        while True:
            v = w.data(1)
            if v == "done":
                break
            n += 1
        self.assertEqual(n, 100)
        w.expect("ChannelClose", 1)

    def test_window_smaller_than_item(self):
        w = self.start(window=10)
        self.exec(w, 1, "channel.send(b'x' * 100)\nchannel.send(b'y')\n")
        self.assertEqual(w.data(1), b"x" * 100)  # credit 10 - 103 = -93
        self._quiet(w)
        w.send("Credit", 1, 50)
        self._quiet(w)
        w.send("Credit", 1, 50)  # credit 7
        self.assertEqual(w.data(1), b"y")
        w.expect("ChannelClose", 1)

    def _quiet(self, w):
        try:
            m = w.inbox.get(timeout=0.3)
        except queue.Empty:
            return
        self.fail("unexpected %r" % (m,))

    def test_worker_returns_credit(self):
        w = self.start()
        self.exec(w, 1, "n = 0\nfor x in channel:\n    n += len(x)\nchannel.send(n)\n")
        credit = 0
        for i in range(12):
            w.send("ChannelData", 1, b"z" * MiB)
        # the opener may send at most 8 MiB without credit; the worker must
        # return credit as its code takes the items
        deadline = time.time() + 10
        while credit < 4 * MiB and time.time() < deadline:
            m = w.get()
            self.assertEqual(m[:2], ("Credit", 1))
            credit += m[2]
        self.assertGreaterEqual(credit, 4 * MiB)
        w.send("ChannelLastMessage", 1)
        m = w.skip_credit()
        self.assertEqual(m, ("ChannelData", 1, 12 * MiB))

    def test_callback_sends_are_held_until_credit_comes(self):
        # A callback runs on the reader thread, so it cannot wait for credit
        # (the credit arrives on that thread): its sends beyond the window
        # are held, in order, never sent past the opener's window.
        w = self.start(window=30)
        self.exec(w, 1, "c = channel.gateway.newchannel()\n"
                        "c.setcallback(lambda x: channel.send(b'x' * 20))\n"
                        "channel.send(c)\n"
                        "channel.receive()\n")
        self.assertEqual(w.data(1), Chan(2))        # credit 30 - 4 = 26
        for i in range(3):
            w.send("ChannelData", 2, i)
        self.assertEqual(w.data(1), b"x" * 20)      # credit 26 - 23 = 3
        self.assertEqual(w.data(1), b"x" * 20)      # credit 3 - 23 = -20
        self._quiet(w)                              # the third waits
        w.send("ChannelData", 1, "done")            # the code ends: its close
        self._quiet(w)                              # waits behind the item
        w.send("Credit", 1, 20)                     # credit 0: still nothing
        self._quiet(w)
        w.send("Credit", 1, 5)                      # credit 5
        self.assertEqual(w.data(1), b"x" * 20)
        w.expect("ChannelClose", 1)
        w.send("ChannelData", 2, 9)                 # channel 1 is closed now
        m = w.skip_credit()
        self.assertEqual(m[:2], ("ChannelCloseError", 2), m)

    def test_held_items_are_dropped_when_the_opener_closes(self):
        w = self.start(window=10)
        self.exec(w, 1, "c = channel.gateway.newchannel()\n"
                        "c.setcallback(lambda x: channel.send(b'y' * 20))\n"
                        "channel.send(c)\n"
                        "channel.waitclose()\n")
        self.assertEqual(w.data(1), Chan(2))
        for i in range(3):
            w.send("ChannelData", 2, i)
        self.assertEqual(w.data(1), b"y" * 20)      # credit 10 - 4 - 23 < 0
        self._quiet(w)                              # two more are held
        w.send("ChannelClose", 1)                   # the opener takes no more
        w.send("Credit", 1, 1000)                   # (as if sent before its close)
        self._quiet(w)                              # the held items are gone

    def test_blocked_sender_raises_on_close(self):
        w = self.start(window=1)
        self.exec(w, 1, "c = channel.gateway.newchannel()\nchannel.send(c)\n"
                        "c.send(1)\n"
                        "try:\n    c.send(2)\nexcept IOError as e:\n    channel.send(str(e))\n")
        self.assertEqual(w.data(1), Chan(2))
        self.assertEqual(w.data(2), 1)
        time.sleep(0.2)
        w.send("Credit", 1, 100)  # 'channel' itself has no credit left either
        w.send("ChannelClose", 2)
        self.assertEqual(w.data(1), "cannot send to <Channel id=2 closed>")


# ------------------------------------------------------------ figures

class FrameReader:
    """Splits frames out of big reads (cheap enough not to be the bottleneck)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""
        self.pos = 0

    def _fill(self):
        b = os.read(self.fd, 1 << 20)
        if not b:
            raise EOFError
        self.buf = self.buf[self.pos:] + b
        self.pos = 0

    def frame(self):
        while True:
            if len(self.buf) - self.pos >= 4:
                n = struct.unpack_from("<I", self.buf, self.pos)[0]
                if len(self.buf) - self.pos >= 4 + n:
                    p = self.pos + 4
                    self.pos = p + n
                    return self.buf[p:p + n]
            self._fill()

    def skip(self, count):
        unpack = struct.unpack_from
        while count:
            buf, pos, end = self.buf, self.pos, len(self.buf)
            while count and end - pos >= 4:
                q = pos + 4 + unpack("<I", buf, pos)[0]
                if q > end:
                    break
                pos = q
                count -= 1
            self.pos = pos
            if count:
                self._fill()


def bench(python):
    out = {}
    # startup
    t = []
    for _ in range(10):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"])
        t.append(time.perf_counter() - t0)
    out["bare python -c pass ms"] = min(t) * 1000
    t = []
    for _ in range(10):
        w = Worker(python=python)
        w.hello()
        t.append(w.hello_at - w.t0)
        w.send("Terminate")
        w.p.wait()
        w.close()
    out["spawn -> worker hello ms"] = min(t) * 1000
    t = []
    for _ in range(10):
        t0 = time.perf_counter()
        w = Worker(python=python, reader=False)
        w.send("ChannelExec", 1, "channel.send(1)")
        rd = FrameReader(w.p.stdout)
        rd.frame()  # hello
        assert decode_body(rd.frame()) == ("ChannelData", 1, 1)
        t.append(time.perf_counter() - t0)
        w.send("Terminate")
        w.p.wait()
        w.close()
    out["spawn -> first exec result ms"] = min(t) * 1000

    # echo: the client writes a frame and reads the answer in the same thread
    w = Worker(python=python, reader=False)
    rd = FrameReader(w.p.stdout)
    rd.frame()  # hello
    w.send("ChannelExec", 1, "for x in channel:\n    channel.send(x)\n")
    frames = [encode_msg("ChannelData", 1, i) for i in range(100)]
    for i in range(500):
        w.write(frames[i % 100])
        rd.frame()
    n = 10000
    t0 = time.perf_counter()
    for i in range(n):
        w.write(frames[i % 100])
        rd.frame()
    out["echo round trip us"] = (time.perf_counter() - t0) / n * 1e6
    w.send("Terminate")
    w.p.wait()
    w.close()

    # worker -> opener, small ints (the client only splits frames)
    n = 300000
    w = Worker(python=python, window=1 << 40, reader=False)
    rd = FrameReader(w.p.stdout)
    rd.frame()
    w.send("ChannelExec", 1, "import time\nchannel.receive()\nt=time.perf_counter()\n"
                             "for i in range(%d):\n    channel.send(i & 63)\n"
                             "channel.send(time.perf_counter() - t)\n" % n)
    w.send("ChannelData", 1, 0)
    t0 = time.perf_counter()
    rd.skip(n)
    el = time.perf_counter() - t0
    remote = decode_body(rd.frame())[2]
    out["small ints worker->opener items/s"] = n / el
    out["  (worker-side send loop alone, items/s)"] = n / remote
    w.send("Terminate")
    w.p.wait()
    w.close()

    # opener -> worker, small ints
    w = Worker(python=python)
    w.hello()
    w.send("ChannelExec", 1, "import time\nt = None\nn = 0\nfor x in channel:\n"
                             "    if t is None: t = time.perf_counter()\n    n += 1\n"
                             "channel.send((n, time.perf_counter() - t))\n")
    frames = b"".join(encode_msg("ChannelData", 1, i & 63) for i in range(n))
    t0 = time.perf_counter()
    w.write(frames)
    w.send("ChannelLastMessage", 1)
    m = w.skip_credit(60)
    el = time.perf_counter() - t0
    out["small ints opener->worker items/s"] = n / el
    w.send("Terminate")
    w.p.wait()
    w.close()

    # bulk, worker -> opener
    total = 256
    w = Worker(python=python, window=1 << 40, reader=False)
    w.send("ChannelExec", 1, "b = b'x' * (1 << 20)\nfor i in range(%d):\n"
                             "    channel.send(b)\n" % total)
    hdr = w._readn(4)
    w._readn(struct.unpack("<I", hdr)[0])  # hello
    t0 = time.perf_counter()
    got = 0
    while got < total:
        n = struct.unpack("<I", w._readn(4))[0]
        w._readn(n)
        got += 1
    el = time.perf_counter() - t0
    out["bulk 1 MiB worker->opener MiB/s"] = total / el
    w.send("Terminate")
    w.p.wait()
    w.close()

    # bulk, opener -> worker
    w = Worker(python=python)
    w.hello()
    w.send("ChannelExec", 1, "n = 0\nfor x in channel:\n    n += len(x)\nchannel.send(n)\n")
    frame = encode_msg("ChannelData", 1, b"y" * MiB)
    credit = 8 * MiB
    t0 = time.perf_counter()
    for i in range(total):
        while credit <= 0:
            m = w.get()
            if m[0] == "Credit":
                credit += m[2]
        w.write(frame)
        credit -= len(frame) - 4
    w.send("ChannelLastMessage", 1)
    m = w.skip_credit(60)
    el = time.perf_counter() - t0
    assert m == ("ChannelData", 1, total * MiB), m
    out["bulk 1 MiB opener->worker MiB/s"] = total / el
    w.send("Terminate")
    w.p.wait()
    w.close()
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["bench"]:
    for py in sys.argv[2:] or [sys.executable]:
        v = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True).stdout.strip()
        print("== %s (%s)" % (py, v))
        for k, val in bench(py).items():
            print("  %-42s %12.1f" % (k, val))
elif __name__ == "__main__":
    unittest.main()
