"""Benchmark (issue 2): feature build and a 20-rule backtest against hand-written DuckDB floors.

Run by hand, not in CI:
    .venv/bin/python bench/bench_backtest.py --events 10000000 --workspace /tmp/rc-bench-10m

Each phase runs in its own process so peak memory (ru_maxrss) is per phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STRATEGY = HERE / "strategy_20.yaml"
SCORED = HERE / "strategy_score.yaml"  # the same 20 rules plus `lgbm_orders >= $cut`

# The demo's window features written by hand as one query (same frames as riskconsole/features.py);
# label features as plain delayed windows, which ignore label_time (cheaper and less exact than ours).
HAND_FEATURES = """
CREATE OR REPLACE TEMP TABLE hand AS
WITH b AS (SELECT *, epoch_us(ts) AS t FROM events)
SELECT *,
  count(*) OVER (PARTITION BY payment_id ORDER BY t RANGE BETWEEN 600000000 PRECEDING AND 1 PRECEDING) AS pay_orders_10m,
  count(*) OVER (PARTITION BY payment_id ORDER BY t RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING) AS pay_orders_1h,
  count(*) OVER (PARTITION BY device_id ORDER BY t RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING) AS device_orders_1h,
  count(*) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING) AS user_orders_1h,
  count(*) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING) AS user_orders_24h,
  count(*) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING) AS user_orders_30d,
  avg(amount) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING) AS user_amount_30d,
  max(amount) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN 2592000000000 PRECEDING AND 1 PRECEDING) AS user_max_amount_30d,
  array_length(list_distinct(array_agg(user_id) OVER (PARTITION BY device_id ORDER BY t RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING))) AS device_users_7d,
  array_length(list_distinct(array_agg(user_id) OVER (PARTITION BY address_id ORDER BY t RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING))) AS address_users_7d,
  array_length(list_distinct(array_agg(device_id) OVER (PARTITION BY payment_id ORDER BY t RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING))) AS payment_devices_7d,
  sum(is_fraud) OVER (PARTITION BY merchant_id ORDER BY t RANGE BETWEEN 3024000000000 PRECEDING AND 604800000001 PRECEDING) AS merchant_fraud_28d,
  count(is_fraud) OVER (PARTITION BY merchant_id ORDER BY t RANGE BETWEEN 3024000000000 PRECEDING AND 604800000001 PRECEDING) AS merchant_labels_28d,
  count(*) OVER (PARTITION BY influencer_id ORDER BY t RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING) AS influencer_orders_1h,
  avg(account_age_days) OVER (PARTITION BY influencer_id ORDER BY t RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING) AS influencer_buyer_age_24h
FROM b
"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_features(root: Path) -> dict:
    from riskconsole.features import build_frame
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    con = ws.connect()
    dataset = ws.dataset()
    con.execute("BEGIN")
    started = time.perf_counter()
    build_frame(con, dataset, "data/dataset.yaml")
    ours = time.perf_counter() - started
    con.execute("ROLLBACK")
    started = time.perf_counter()
    con.execute(HAND_FEATURES)
    hand = time.perf_counter() - started
    con.close()
    return {"features_ours_s": ours, "features_hand_s": hand, "ratio": ours / hand, "peak_mb": peak_mb()}


def phase_backtest(root: Path) -> dict:
    import yaml

    from riskconsole.report import run_backtest
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    rules = yaml.safe_load(STRATEGY.read_text())["rules"]
    params = yaml.safe_load(STRATEGY.read_text())["params"]
    cases = []
    for rule in rules:
        when = rule["when"]
        for key, value in params.items():
            when = when.replace(f"${key}", str(value))
        cases.append(f"sum(CASE WHEN {when} THEN 1 ELSE 0 END)")
    floor_sql = f"SELECT {', '.join(cases)} FROM frame"
    con = ws.connect_safe()
    times = {"floor": [], "ours": []}
    for _ in range(3):
        started = time.perf_counter()
        con.execute(floor_sql).fetchall()
        times["floor"].append(time.perf_counter() - started)
        started = time.perf_counter()
        report = run_backtest(ws, STRATEGY, con=con).report
        times["ours"].append(time.perf_counter() - started)
    con.close()
    floor, ours = sorted(times["floor"])[1], sorted(times["ours"])[1]
    return {"backtest_ours_s": ours, "floor_s": floor, "ratio": ours / floor, "peak_mb": peak_mb(),
            "population": report["overall"]["population"], "rules": len(report["rules"])}


def phase_detectors(root: Path) -> dict:
    from riskconsole.detectors import train_detector
    from riskconsole.scaffold import copy_demo_files
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    copy_demo_files(ws)
    started = time.perf_counter()
    result = train_detector(ws, ws.detectors_dir / "lgbm_orders.yaml")
    return {"train_and_score_s": time.perf_counter() - started, "scored": result.card["events_scored"],
            "scoring_s": result.card["scoring_seconds"], "peak_mb": peak_mb()}


def _median(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def phase_compare(root: Path) -> dict:
    from riskconsole.backtest import make_window
    from riskconsole.report import Baseline, run_backtest
    from riskconsole.sweep import sweep
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    con = ws.connect_safe()
    plain = _median(lambda: run_backtest(ws, SCORED, con=con))
    compared = _median(lambda: run_backtest(ws, SCORED, con=con, baseline=Baseline(STRATEGY, bootstrap=1000)))
    con.close()
    values = [round(i / 200, 4) for i in range(200)]
    result = {}
    swept = _median(lambda: result.update(sweep(ws, SCORED, "cut", values, make_window())))
    return {"plain_s": plain, "baseline_1000_bootstrap_s": compared, "compare_ratio": compared / plain,
            "sweep_200_s": swept, "sweep_method": result["method"], "sweep_ratio": swept / plain,
            "peak_mb": peak_mb()}


def phase_demo(root: Path, events: int) -> dict:
    from riskconsole.scaffold import build_demo_workspace
    from riskconsole.workspace import Workspace

    started = time.perf_counter()
    result = build_demo_workspace(Workspace(root), n_events=events, train=False)
    return {"demo_s": time.perf_counter() - started, "loaded": result.loaded, "peak_mb": peak_mb()}


def run_phase(name: str, root: Path, events: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--workspace", str(root), "--events",
                          str(events)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workspace", default="/tmp/rc-bench")
    parser.add_argument("--phase")
    parser.add_argument("--phases", default="features,backtest,detectors,compare",
                        help="which phases to run (comma-separated)")
    args = parser.parse_args()
    root = Path(args.workspace)
    if args.phase:
        fn = {"demo": lambda: phase_demo(root, args.events), "features": lambda: phase_features(root),
              "backtest": lambda: phase_backtest(root), "detectors": lambda: phase_detectors(root),
              "compare": lambda: phase_compare(root)}[args.phase]
        print(json.dumps(fn()))
        return
    results = {}
    if not (root / "data" / "console.duckdb").exists():
        results["demo"] = run_phase("demo", root, args.events)
    phases = args.phases.split(",")
    for name in ("features", "backtest", "detectors", "compare"):
        if name in phases:
            results[name] = run_phase(name, root, args.events)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
