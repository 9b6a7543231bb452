"""Benchmark: `explain` for many events in one call (issue 13 item 5): events/s, CPU, load, vs pred_contrib.

Usage:
    python bench/bench_explain.py --workspace /tmp/d1m_copy [--events 10000] [--detector lgbm_orders] [--repeat 3]

Picks --events event ids spread over the frame, runs `explain_many` once to warm up (model files, the
numba kernel's cache), then --repeat times with the fast TreeSHAP and once with LightGBM's `pred_contrib`
(the reference path), and prints wall and CPU seconds (all threads), events/s and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskconsole.detectors import boosting  # noqa: E402
from riskconsole.detectors.explain import explain_many  # noqa: E402
from riskconsole.workspace import Workspace  # noqa: E402


def run(ws, ids, detectors) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = explain_many(ws, ids, detectors)
    assert len(out["events"]) == len(ids), out["missing"][:3]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--detector", action="append", help="default: every trained detector")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also time pred_contrib (slow: ~1k rows/s)")
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    con = ws.connect_safe()
    column = ws.dataset().columns.id
    ids = [r[0] for r in con.execute(f'SELECT CAST("{column}" AS VARCHAR) FROM frame ORDER BY hash(_pos) '
                                     f"LIMIT {args.events}").fetchall()]
    con.close()
    run(ws, ids[:1000], args.detector)
    print(f"{len(ids):,} events, detectors: {', '.join(args.detector or ['all'])}")
    for i in range(args.repeat):
        wall, cpu = run(ws, ids, args.detector)
        print(f"fast TreeSHAP  run {i + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU -> {len(ids) / wall:8,.0f} events/s "
              f"({len(ids) / cpu:,.0f} per CPU-second), load {os.getloadavg()[0]:.1f}")
    if args.reference:
        boosting.FAST_SHAP_ROWS = 10**12
        wall, cpu = run(ws, ids, args.detector)
        print(f"pred_contrib         : {wall:6.2f} s wall, {cpu:6.2f} s CPU -> {len(ids) / wall:8,.0f} events/s "
              f"({len(ids) / cpu:,.0f} per CPU-second), load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
