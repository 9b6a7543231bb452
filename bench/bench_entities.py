"""Benchmark (issue 10): an entity-level backtest (one decision per merchant per day) on a loaded demo workspace.

Run by hand, not in CI:

    .venv/bin/riskconsole demo --workspace /tmp/d1m --events 1000000
    .venv/bin/python bench/bench_entities.py --workspace /tmp/d1m

Prints, each the median of --repeat runs in fresh sessions: the entity frame's build and save (features as of
every merchant-day's start, labels, money over the horizon; `load` does this for every entity strategy in
strategies/), a cold backtest in a new Session reading the saved frame (what `riskconsole backtest` does after its
imports), the same with no saved frame (built first), and a warm one (the Session's frame in memory, what the console
pays per change), with the number of entity-periods.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from riskconsole.entities import CACHE_DIR
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
    saved = ws.root / CACHE_DIR
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_merchant_watch.yaml"
        path.write_text(yaml.safe_dump(STRATEGY))
        runs: dict[str, list[float]] = {k: [] for k in ("build", "cold", "cold CPU", "unsaved", "unsaved CPU", "warm")}
        periods = 0
        for _ in range(args.repeat):
            shutil.rmtree(saved, ignore_errors=True)
            with Session(ws) as session:
                session.frame  # the read-only connection and the frame's columns: not the entity work
                level = session.strategy(path).level
                t0 = time.perf_counter()
                view = session.entities(level)  # built, then saved under data/cache/entities/
                runs["build"].append(time.perf_counter() - t0)
                periods = sum(view.table.column("__w").to_pylist())
            for name in ("cold", "unsaved"):
                if name == "unsaved":
                    shutil.rmtree(saved, ignore_errors=True)
                with Session(ws) as session:
                    session.frame
                    t0, c0 = time.perf_counter(), time.process_time()
                    session.backtest(path)
                    runs[name].append(time.perf_counter() - t0)
                    runs[f"{name} CPU"].append(time.process_time() - c0)
                    if name == "cold":
                        t0 = time.perf_counter()
                        session.backtest(path, overrides={"rate": 0.1})
                        runs["warm"].append(time.perf_counter() - t0)
    print(f"entity-periods (merchant-days): {periods:,}")
    titles = {"build": "entity frame build + save", "cold": "cold backtest, saved frame",
              "cold CPU": "… CPU (all threads)", "unsaved": "cold backtest, no saved frame",
              "unsaved CPU": "… CPU (all threads)", "warm": "warm backtest"}
    for key, values in runs.items():
        print(f"{titles[key]:>30}: median {statistics.median(values):.2f} s  "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
