"""Benchmark (issue 15): does a console on Spark kept open grow its driver's memory?

    .venv/bin/python bench/bench_spark_console_memory.py --workspace /tmp/ws40k [--moves 200] [--every 25]

(the workspace loaded on Spark, its data/dataset.yaml saying `engine: spark` and its `spark:` settings; a local
master: the driver must be a JVM of this machine, which `jmap` reads.) One `Session` on engine spark answers what
the console's Tune page asks when a slider moves (`Session.interactive`: the CLI's Spark backtest at that setting),
`--moves` times, one random param of the strategy moved to 0.5-1.5 times its saved value each time (seed 1).
Every `--every` moves: the seconds per move, and the driver's live heap after a full collection (`jmap
-histo:live`), with ANTLR's share apart (Spark's SQL parser caches a DFA for every shape of SQL text it parsed).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import time

import yaml

from riskconsole.backtest import Window
from riskconsole.session import Session
from riskconsole.workspace import Workspace

_ROW = re.compile(r"\s*\d+:\s+(\d+)\s+(\d+)\s+(\S+)")


def live_heap(pid: int) -> tuple[float, float]:
    """MB live in the JVM `pid` after a full collection, and of it ANTLR's objects."""
    out = subprocess.run(["jmap", "-histo:live", str(pid)], capture_output=True, text=True, check=True).stdout
    rows = [(int(m.group(2)), m.group(3)) for m in map(_ROW.match, out.splitlines()) if m]
    return sum(b for b, _ in rows) / 2**20, sum(b for b, name in rows if "antlr" in name) / 2**20


def _driver() -> int:
    found = subprocess.run(["pgrep", "-f", "SparkSubmit"], capture_output=True, text=True).stdout.split()
    if len(found) != 1:
        raise SystemExit(f"expected one Spark driver on this machine, found {len(found)} (pgrep -f SparkSubmit)")
    return int(found[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="/tmp/ws40k")
    parser.add_argument("--strategy", default="candidate")
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    path = ws.strategies_dir / f"{args.strategy}.yaml"
    params = yaml.safe_load(path.read_text())["params"]
    rng = random.Random(1)
    with Session(ws, engine="spark") as session:
        window = Window()
        session.interactive(path, window, {})
        pid = _driver()
        print("after the first report: live %.0f MB, ANTLR %.1f MB" % live_heap(pid), flush=True)
        started = time.perf_counter()
        for i in range(1, args.moves + 1):
            name = rng.choice(sorted(params))
            value = params[name]
            moved = round(value * rng.uniform(0.5, 1.5), 2) if isinstance(value, float) else \
                max(1, int(value * rng.uniform(0.5, 1.5)))
            session.interactive(path, window, {name: moved})
            if i % args.every == 0:
                each = (time.perf_counter() - started) / args.every
                print(f"{i} moves, {each:.2f} s each: live %.0f MB, ANTLR %.1f MB" % live_heap(pid), flush=True)
                started = time.perf_counter()


if __name__ == "__main__":
    main()
