"""Start a throwaway sshd on a free loopback port with generated keys and
print the ssh arguments that reach it (for ``--gx ssh=ARGS``), then wait;
it stops when this process gets SIGTERM or its stdin closes.

    python throwaway_sshd.py DIR [PATH]

DIR holds the keys, config and log. PATH, if given, is the PATH of the
sessions (so that ``python`` and ``python3`` there are the interpreters a
test expects). Used by execnet-tests.sh; not part of the package.
"""

import getpass
import os
import signal
import socket
import subprocess
import sys
import time

SSHD = "/usr/sbin/sshd"


def main():
    d = os.path.abspath(sys.argv[1])
    session_path = sys.argv[2] if len(sys.argv) > 2 else None
    os.makedirs(d, exist_ok=True)
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(d, name)], check=True)
    with open(os.path.join(d, "user_key.pub")) as f:
        user_pub = f.read()
    auth = os.path.join(d, "authorized_keys")
    with open(auth, "w") as f:
        f.write(user_pub)
    os.chmod(auth, 0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(d, "host_key.pub")) as f:
        host_pub = f.read()
    with open(os.path.join(d, "known_hosts"), "w") as f:
        f.write("[127.0.0.1]:%d %s" % (port, host_pub))
    config = [
        "Port %d" % port,
        "ListenAddress 127.0.0.1",
        "HostKey %s/host_key" % d,
        "PidFile none",
        "AuthorizedKeysFile %s" % auth,
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "MaxSessions 64",
        "MaxStartups 64",
        "LogLevel ERROR",
    ]
    if session_path:
        config.append("SetEnv PATH=%s" % session_path)
    with open(os.path.join(d, "sshd_config"), "w") as f:
        f.write("\n".join(config) + "\n")
    if os.getuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    log = open(os.path.join(d, "sshd.log"), "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", os.path.join(d, "sshd_config")],
                            stderr=log)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit("sshd did not start; see %s/sshd.log" % d)
            time.sleep(0.02)
    print("-p %d -i %s/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile=%s/known_hosts "
          "-o StrictHostKeyChecking=yes %s@127.0.0.1" % (port, d, d, getpass.getuser()),
          flush=True)

    def stop(*_):
        proc.terminate()
        proc.wait(10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        sys.stdin.read()
    finally:
        stop()


if __name__ == "__main__":
    main()
