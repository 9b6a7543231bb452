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


def threshold_curve(session, path, strategy: Strategy, window: Window, param: str, others: dict,
                    points: int = CURVE_POINTS) -> list[dict] | None:
    """The curve of a threshold param from the evaluator's sorted column (one searchsorted per point, no SQL
    once the evaluator is warm); None when `param` is not a threshold param (the caller runs the SQL pass)."""
    from riskconsole.evaluator import compiler_of
    from riskconsole.metrics import RuleSet, decide, overall
    from riskconsole.optimize import POINT_KEYS

    value = {**strategy.params, **others}[param]
    if param_range(value) is None:
        return []
    with session.cursor() as cur:
        compiled = compiler_of(session).compile(strategy, session.ws.rel(path), others, cur)
    evaluator = session._evaluator(compiled, window)
    from riskconsole.expressions import referenced_params

    index = next((i for i, r in enumerate(strategy.rules) if param in referenced_params(r.when)), None)
    found = evaluator.threshold_of(compiled, index, param) if index is not None else None
    if found is None or found.param != param:
        return None
    values = default_values(value, points)
    rules, business = RuleSet.of(compiled), session.dataset.business
    out = []
    for v, groups in zip(values, evaluator.curve_groups(compiled, found, values)):
        metrics = overall(groups, decide(groups.hits, rules), business)
        out.append({"value": v, **{k: metrics[k] for k in POINT_KEYS}})
    return out
