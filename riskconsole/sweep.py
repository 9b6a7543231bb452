"""Backtest one strategy over many values of a param: the trade-off curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from riskconsole.backtest import Window, run_groups
from riskconsole.errors import RiskConsoleError
from riskconsole.export import json_bytes, table_csv_bytes
from riskconsole.metrics import decide, overall
from riskconsole.report import rule_set
from riskconsole.strategy import compile_strategy, frame_of
from riskconsole.workspace import Workspace

MAX_POINTS = 10_000
POINT_KEYS = ("population", "flagged", "tp", "fp", "fn", "precision", "recall", "f1", "amount_recall",
              "alert_rate", "fraud_amount_stopped", "good_amount_blocked", "review_cases", "review_cost",
              "net_benefit", "review_overflow_days", "max_daily_reviews")


def parse_values(text: str) -> list:
    """`a:b:step` (both ends included) or `v1,v2,...` (YAML scalars)."""
    text = text.strip()
    if ":" in text and "," not in text:
        try:
            start, stop, step = (float(p) for p in text.split(":"))
        except ValueError:
            raise RiskConsoleError(f"--values {text}: write start:stop:step with numbers, e.g. 0.5:0.95:0.05") from None
        if step <= 0 or stop < start:
            raise RiskConsoleError(f"--values {text}: need start <= stop and a positive step")
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        if count > MAX_POINTS:
            raise RiskConsoleError(f"--values {text}: {count:,} points is too many (at most {MAX_POINTS:,})")
        values = [round(start + i * step, 10) for i in range(count)]
        integral = all(float(p).is_integer() for p in (start, step))
        return [int(v) for v in values] if integral else values
    values = [yaml.safe_load(v) for v in text.split(",") if v.strip()]
    if not values:
        raise RiskConsoleError(f"--values {text}: no values given")
    return values


def sweep(ws: Workspace, strategy_path: str | Path, param: str, values: list, window: Window,
          overrides: dict | None = None) -> dict:
    """Overall metrics of the strategy at each value of `param`."""
    dataset = ws.dataset()
    strategy = ws.strategy(strategy_path)
    label = ws.rel(strategy_path)
    if param not in strategy.params:
        raise RiskConsoleError(f"{label}: --param {param}: the strategy has no param '{param}' "
                               f"(defined: {', '.join(strategy.params) or 'none'})")
    con = ws.connect_safe()
    points = []
    try:
        frame = frame_of(con, dataset)
        for value in values:
            compiled = compile_strategy(strategy, frame, label, {**(overrides or {}), param: value}, con=con)
            groups = run_groups(con, compiled, frame, dataset, window)
            metrics = overall(groups, decide(groups.hits, rule_set(compiled)), dataset.business)
            points.append({"value": value, **{k: metrics[k] for k in POINT_KEYS}})
    finally:
        con.close()
    best = max((p for p in points if p["net_benefit"] is not None), key=lambda p: p["net_benefit"], default=None)
    return {"strategy": strategy.name, "param": param, "points": points,
            "best_net_benefit": best and {"value": best["value"], "net_benefit": best["net_benefit"]}}


def sweep_files(result: dict) -> dict[str, bytes]:
    """sweep.json and sweep.csv."""
    return {"sweep.json": json_bytes(result), "sweep.csv": table_csv_bytes(result["points"])}
