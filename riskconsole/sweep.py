"""Sweeps and optimization over a strategy's params: the trade-off curve, the best setting, the frontier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from riskconsole.backtest import Window
from riskconsole.config import parse_scalar
from riskconsole.errors import RiskConsoleError
from riskconsole.escape import printable
from riskconsole.limits import MAX_SWEEP_POINTS, check_grid
from riskconsole.export import json_bytes, table_csv_bytes
from riskconsole.optimize import choose, curve, default_values, frontier
from riskconsole.strategy import require_params

MAX_POINTS = MAX_SWEEP_POINTS  # kept: the name callers know


def parse_values(text: str) -> list:
    """`a:b:step` (both ends included) or `v1,v2,...` (YAML scalars); at most `MAX_SWEEP_POINTS`, counted first.

    Raises:
        RiskConsoleError: one line naming `--values`.
    """
    text, shown = text.strip(), printable(text.strip())[:80]
    if ":" in text and "," not in text:
        return _range_values(text, shown)
    items = text.split(",")
    if not text:
        raise RiskConsoleError(f"--values {shown}: no values given")
    empty = next((i for i, v in enumerate(items) if not v.strip()), None)
    if empty is not None:  # `1,,2` is a typo, not two values: say so rather than sweep fewer points
        raise RiskConsoleError(f"--values {shown}: value {empty + 1} is empty (write v1,v2,... with no empty item)")
    if len(items) > MAX_POINTS:
        raise RiskConsoleError(f"--values {shown}: {len(items):,} values is too many (at most {MAX_POINTS:,})")
    return [parse_scalar(v, f"--values {shown}") for v in items]


def _range_values(text: str, shown: str) -> list:
    try:
        start, stop, step = (float(p) for p in text.split(":"))
    except ValueError:
        raise RiskConsoleError(f"--values {shown}: write start:stop:step with numbers, e.g. 0.5:0.95:0.05") from None
    if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
        raise RiskConsoleError(f"--values {shown}: need finite numbers, start <= stop and a positive step")
    span = (stop - start) / step  # a float: may be huge or inf, so compared before int() and range()
    if not span < MAX_POINTS:
        raise RiskConsoleError(f"--values {shown}: {span + 1:,.0f} points is too many (at most {MAX_POINTS:,})")
    count = int(np.floor(span + 1e-9)) + 1
    if count > MAX_POINTS:
        raise RiskConsoleError(f"--values {shown}: {count:,} points is too many (at most {MAX_POINTS:,})")
    values = [round(start + i * step, 10) for i in range(count)]
    integral = all(float(p).is_integer() for p in (start, step))
    return [int(v) for v in values] if integral else values


def _run(session, strategy_path: str | Path, grid: dict[str, list], window: Window,
         overrides: dict | None) -> tuple[list[dict], str, str]:
    strategy = session.strategy(strategy_path)
    frame, dataset = session.view(strategy)
    with session.cursor(strategy) as cur:
        runner = session.runner(cur, strategy_path, overrides, strategy)  # DuckDB, or Spark: grouped rows come back
        points, method = curve(runner, strategy, frame, dataset, session.ws.rel(strategy_path), window, grid, overrides)
    return points, method, strategy.name


def sweep(session, strategy_path: str | Path, param: str, values: list, window: Window,
          overrides: dict | None = None) -> dict:
    """Overall metrics of the strategy at each value of `param` (one SQL pass)."""
    points, method, name = _run(session, strategy_path, {param: values}, window, overrides)
    points = [{"value": p.pop(param), **p} for p in points]
    best = max((p for p in points if p["net_benefit"] is not None), key=lambda p: p["net_benefit"], default=None)
    return {"strategy": name, "param": param, "method": method, "points": points,
            "best_net_benefit": best and {"value": best["value"], "net_benefit": best["net_benefit"]}}


def optimize(session, strategy_path: str | Path, values: dict[str, str | None], window: Window,
             overrides: dict | None = None, max_overflow_days: int = 0, min_precision: float | None = None) -> dict:
    """Param values that maximise net benefit within review capacity (and a precision floor), and the frontier."""
    strategy = session.strategy(strategy_path)
    label = session.ws.rel(strategy_path)
    require_params(strategy, values, label, "--param")
    grid = {p: _grid_values(spec, strategy.params[p]) for p, spec in values.items()}
    check_grid(grid, label)  # before anything is compiled or combined
    points, method, name = _run(session, strategy_path, grid, window, overrides)
    decision = choose(points, max_overflow_days, min_precision)
    return {"strategy": name, "params": list(grid), "method": method,
            "constraints": {"max_overflow_days": max_overflow_days, "min_precision": min_precision},
            **decision, "current": {p: strategy.params[p] for p in grid}, "frontier": frontier(points),
            "points": points}


def _grid_values(spec: str | list | None, current: object) -> list:
    """One param's values: `--values` text, a list (the console), or by default a range around `current`."""
    if isinstance(spec, str) and spec.strip():
        return parse_values(spec)
    return list(spec) if spec else default_values(current)


def sweep_files(result: dict) -> dict[str, bytes]:
    """sweep.json and sweep.csv (or optimize.json and optimize.csv)."""
    stem = "sweep" if "param" in result else "optimize"
    return {f"{stem}.json": json_bytes(result), f"{stem}.csv": table_csv_bytes(result["points"])}
