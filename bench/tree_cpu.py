"""Run a command and print the CPU seconds (user + sys) of its whole process tree: pytest, its xdist workers, their
JVMs and PySpark's Python workers, whose CPU `time` does not see (a JVM is never waited for by its parent).

    python bench/tree_cpu.py .venv/bin/python -m pytest tests/test_functions.py -n 2 --dist loadfile

Every process under the command is read from /proc every 0.5 s and its last seen utime + stime kept, so a process
living under half a second may be missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks of the process itself)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # fields from the 3rd on (the name may hold spaces)
            found[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def main() -> int:
    started = time.time()
    proc = subprocess.Popen(sys.argv[1:])
    ticks: dict[int, int] = {}
    while proc.poll() is None:
        table = processes()
        tree = {proc.pid}
        for _ in range(8):  # descendants a few generations down (pytest -> worker -> JVM -> python daemon -> worker)
            tree |= {pid for pid, (parent, _) in table.items() if parent in tree}
        for pid in tree & table.keys():
            ticks[pid] = max(ticks.get(pid, 0), table[pid][1])
        time.sleep(0.5)
    print(f"tree CPU {sum(ticks.values()) / TICK:.1f} s (user + sys, {len(ticks)} processes), wall "
          f"{time.time() - started:.1f} s, exit {proc.returncode}", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
