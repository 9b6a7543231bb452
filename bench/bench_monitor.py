"""Time `Session.monitor` over 90 days (+28 of reference) of a demo workspace: CPU (every thread) and wall, twice.

    python bench/bench_monitor.py WORKSPACE [STRATEGY]     # e.g. a 1M demo, strategies/baseline.yaml

Imports and the session's first query happen before the clock starts; run 2 is the same call again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from riskconsole.session import Session
from riskconsole.workspace import Workspace


def main() -> None:
    ws = Workspace(Path(sys.argv[1]))
    strategy = sys.argv[2] if len(sys.argv) > 2 else "baseline.yaml"
    with Session(ws) as session:
        session.day_range()
        for run in (1, 2):
            cpu, wall = time.process_time(), time.time()
            session.monitor(ws.strategies_dir / strategy, "2026-01-31", "2026-04-30")
            print(f"run {run}: cpu {time.process_time() - cpu:.2f} s, wall {time.time() - wall:.2f} s", flush=True)


if __name__ == "__main__":
    main()
