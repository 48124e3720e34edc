"""Make the source trees of the rsync benchmark (once; reused if present).

  many:  1,000 files in 10 directories, 100 MiB in all
  small: 10,000 files of 1 KiB in 100 directories
  big:   one file of 100 MiB
"""

import os
import sys

MIB = 1 << 20


def write(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MIB)
            f.write(rng(n))
            left -= n


def make(root):
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return
    rng = os.urandom
    per = (100 * MIB) // 1000
    for i in range(1000):
        write(os.path.join(root, "many", "d%02d" % (i // 100), "f%04d" % i), per, rng)
    for i in range(10000):
        write(os.path.join(root, "small", "d%03d" % (i // 100), "f%05d" % i), 1024, rng)
    write(os.path.join(root, "big", "big.bin"), 100 * MIB, rng)
    open(done, "w").close()


if __name__ == "__main__":
    make(sys.argv[1])
