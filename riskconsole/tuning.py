"""Param tuning: trade-off curves over a param's slider range (one SQL pass). Reports at any setting come
from `Session.interactive`."""

from __future__ import annotations

import duckdb

from riskconsole.backtest import Window
from riskconsole.strategy import Frame
from riskconsole.config import Dataset, Strategy
from riskconsole.optimize import curve as sweep_curve
from riskconsole.optimize import default_values, param_range

CURVE_POINTS = 25


def curve(con: duckdb.DuckDBPyConnection, strategy: Strategy, frame: Frame, dataset: Dataset, label: str,
          window: Window, param: str, overrides: dict, points: int = CURVE_POINTS) -> list[dict]:
    """Overall metrics over the slider range of `param` (other params as in `overrides`), in one SQL pass
    (every threshold at once when `param` is a score threshold)."""
    value = {**strategy.params, **overrides}[param]
    if param_range(value) is None:
        return []
    grid = {param: default_values(value, points)}
    rows, _ = sweep_curve(con, strategy, frame, dataset, label, window, grid, overrides)
    return [{"value": row.pop(param), **row} for row in rows]
