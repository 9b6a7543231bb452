"""Benchmark (issue 10): an entity-level backtest (one decision per merchant per day) on a loaded demo workspace.

Run by hand, not in CI:

    .venv/bin/riskconsole demo --workspace /tmp/d1m --events 1000000
    .venv/bin/python bench/bench_entities.py --workspace /tmp/d1m

Prints, each the median of --repeat runs in fresh sessions: the entity frame's build (features as of every
merchant-day's start, labels, money over the horizon), a cold backtest (a new Session: build + grouped query +
report, what `riskconsole backtest` does after its imports), and a warm one (the Session's cached entity frame, what
the console pays per change), with the number of entity-periods.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from riskconsole.session import Session
from riskconsole.workspace import Workspace

STRATEGY = {
    "name": "bench_merchant_watch", "level": {"entity": "merchant_id", "every": "1d", "horizon": "7d"},
    "params": {"rate": 0.05},
    "rules": [{"name": "fraud_rate", "when": "merchant_fraud_rate_28d > $rate", "action": "review"},
              {"name": "many_labels", "when": "merchant_labels_28d >= 20 AND merchant_fraud_28d >= 5",
               "action": "block"}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_merchant_watch.yaml"
        path.write_text(yaml.safe_dump(STRATEGY))
        builds, colds, warms, periods, cpu = [], [], [], 0, []
        for _ in range(args.repeat):
            with Session(ws) as session:
                session.frame  # the read-only connection and the frame's columns: not the entity work
                level = session.strategy(path).level
                t0 = time.perf_counter()
                view = session.entities(level)
                builds.append(time.perf_counter() - t0)
                periods = sum(view.table.column("__w").to_pylist())
            with Session(ws) as session:
                session.frame
                t0, c0 = time.perf_counter(), time.process_time()
                session.backtest(path)
                colds.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                t0 = time.perf_counter()
                session.backtest(path, overrides={"rate": 0.1})
                warms.append(time.perf_counter() - t0)
    print(f"entity-periods (merchant-days): {periods:,}")
    for name, values in (("entity frame build", builds), ("cold backtest", colds), ("warm backtest", warms)):
        print(f"{name:>20}: median {statistics.median(values):.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"{'cold backtest CPU':>20}: median {statistics.median(cpu):.2f} s of CPU (all threads; on a busy machine the "
          "wall time above is larger)")


if __name__ == "__main__":
    main()
