"""Param tuning: slider ranges, reports at any param setting, and trade-off curves (all on the evaluator)."""

from __future__ import annotations

import math

import numpy as np

from riskconsole.evaluator import Evaluator
from riskconsole.metrics import decide, overall
from riskconsole.report import build_report, rule_set
from riskconsole.strategy import Frame, compile_strategy
from riskconsole.config import Dataset, Strategy

CURVE_POINTS = 25


def param_range(value: object) -> tuple[float, float, float] | None:
    """(min, max, step) for a numeric param's slider; None for non-numeric params."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        top = max(10, 2 * abs(value), abs(value) + 10)
        return (min(0, value), top, 1)
    if 0 <= value <= 1:
        return (0.0, 1.0, 0.01)
    magnitude = 10 ** math.floor(math.log10(abs(value))) if value else 1.0
    return (min(0.0, value), round(max(2 * abs(value), magnitude), 6), magnitude / 10)


def tuned_report(evaluator: Evaluator, strategy: Strategy, frame: Frame, dataset: Dataset, label: str,
                 overrides: dict) -> dict:
    """The full report at a param setting, reusing every cached rule condition."""
    compiled = compile_strategy(strategy, frame, label, overrides)
    return build_report(compiled, evaluator.groups(compiled), dataset, evaluator.window)


def curve(evaluator: Evaluator, strategy: Strategy, frame: Frame, dataset: Dataset, label: str, param: str,
          overrides: dict, points: int = CURVE_POINTS) -> list[dict]:
    """Overall metrics over the slider range of `param` (other params as in `overrides`)."""
    bounds = param_range({**strategy.params, **overrides}[param])
    if bounds is None:
        return []
    lo, hi, step = bounds
    values = np.unique(np.round(np.linspace(lo, hi, points) / step) * step)
    typed = [int(v) if isinstance(strategy.params[param], int) else float(v) for v in values]
    variants = [compile_strategy(strategy, frame, label, {**overrides, param: v}) for v in typed]
    evaluator.prefetch([r.condition for c in variants for r in c.rules], variants[0])  # one pass for all
    out = []
    for value, compiled in zip(typed, variants):
        groups = evaluator.groups(compiled)
        metrics = overall(groups, decide(groups.hits, rule_set(compiled)), dataset.business)
        out.append({"value": value, **metrics})
    return out
