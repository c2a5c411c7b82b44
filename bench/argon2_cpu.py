"""CPU per argon2id verification (t=2, m=19 MiB, p=1): ours (argon2-cffi, as
this venv built it) beside the peer's (@node-rs/argon2 in bench/peer, the
RustCrypto implementation), each pinned to one core, alternated.

    python bench/argon2_cpu.py [--rounds 3] [--verifies 100]

CPU, not wall-clock time (getrusage of each process: user and system time
and minor page faults per verification), so other load moves it less; the
peer's verification runs on libuv's thread pool, which getrusage counts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys

from argon2 import PasswordHasher

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer", "node_modules", "@node-rs", "argon2")
PASSWORD = "itscom-demo1"

NODE = """
const { hash, verify } = require(process.argv[1]);
(async () => {
  const h = await hash(process.argv[2], { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 2 });
  for (let i = 0; i < 5; i++) await verify(h, process.argv[2]);
  const a = process.resourceUsage();
  for (let i = 0; i < Number(process.argv[3]); i++) await verify(h, process.argv[2]);
  const b = process.resourceUsage();
  console.log([b.userCPUTime - a.userCPUTime, b.systemCPUTime - a.systemCPUTime,
               b.minorPageFault - a.minorPageFault].join(" "));
})();
"""


def ours(verifies: int) -> tuple[float, float, float]:
    hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    stored = hasher.hash(PASSWORD)
    for _ in range(5):
        hasher.verify(stored, PASSWORD)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(verifies):
        hasher.verify(stored, PASSWORD)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return ((after.ru_utime - before.ru_utime) * 1e3 / verifies, (after.ru_stime - before.ru_stime) * 1e3 / verifies,
            (after.ru_minflt - before.ru_minflt) / verifies)


def peer(verifies: int) -> tuple[float, float, float]:
    out = subprocess.run(["taskset", "-c", "0", "node", "-e", NODE, PEER, PASSWORD, str(verifies)],
                         check=True, capture_output=True, text=True).stdout.split()
    user, system, faults = (float(value) for value in out)
    return user / 1e3 / verifies, system / 1e3 / verifies, faults / verifies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verifies", type=int, default=100)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    has_peer = os.path.isdir(PEER) and shutil.which("node") and shutil.which("taskset")
    print("ms of CPU per argon2id verification (user + system; minor page faults)")
    for _ in range(args.rounds):
        runs = [("ours (argon2-cffi)", ours)] + ([("peer (@node-rs/argon2)", peer)] if has_peer else [])
        for name, measure in runs:
            user, system, faults = measure(args.verifies)
            print(f"  {name:24} {user + system:6.2f} = {user:6.2f} + {system:5.2f}   {faults:6.0f} faults")
    if not has_peer:
        print("(no peer: run `npm ci` in bench/peer)", file=sys.stderr)


if __name__ == "__main__":
    main()
