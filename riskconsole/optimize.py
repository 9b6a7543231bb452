"""Thresholds that pay: metrics over a grid of param values in ONE SQL pass, and for a threshold on a
score, every threshold at once from sorted scores and cumulative sums.

Grid: every param setting compiles to a set of rule conditions; the distinct conditions of all
settings become one mask, grouped once; each setting's decisions are then read from its columns.
Score threshold (`score >= $p`, possibly ANDed with other terms): one pass returns the events
whose decision depends on the threshold (with their score) and aggregates everything else; each
threshold then costs a searchsorted.
"""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
from sqlglot import exp

from riskconsole.backtest import Window, window_days, population_filters, known_label, hit_column
from riskconsole.compare import rule_set_of
from riskconsole.config import Business, Dataset, Strategy
from riskconsole.errors import RiskConsoleError
from riskconsole.metrics import ALLOW, BLOCK, REVIEW, decide, overall, ratio
from riskconsole.backtest import run_groups
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.strategy import CompiledRule, CompiledStrategy, Frame, compile_strategy, source

MAX_GRID = 20_000
SENTINEL = 0.123456789012345  # a param value no real strategy uses: finds where a param lands in a rule
POINT_KEYS = ("population", "flagged", "tp", "fp", "fn", "precision", "recall", "f1", "amount_recall",
              "alert_rate", "fraud_amount_stopped", "good_amount_blocked", "review_cases", "review_cost",
              "net_benefit", "review_overflow_days", "max_daily_reviews")


def grid_points(con: duckdb.DuckDBPyConnection, strategy: Strategy, frame: Frame, dataset: Dataset, label: str,
                window: Window, grid: dict[str, list], overrides: dict | None = None) -> list[dict]:
    """Overall metrics at every combination of the grid's values, from one grouped SQL pass."""
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    if len(combos) > MAX_GRID:
        raise RiskConsoleError(f"{label}: {len(combos):,} param combinations is too many (at most {MAX_GRID:,})")
    variants = [compile_strategy(strategy, frame, label, {**(overrides or {}), **dict(zip(names, c))})
                for c in combos]
    conditions: dict[str, int] = {}
    rules: list[CompiledRule] = []
    columns = []
    for variant in variants:
        cols = []
        for rule in variant.rules:
            key = render(rule.condition)
            if key not in conditions:
                conditions[key] = len(rules)
                rules.append(CompiledRule(f"c{len(rules)}", "review", True, rule.condition))
            cols.append(conditions[key])
        columns.append(cols)
    first = variants[0]
    union = CompiledStrategy(first.strategy, {}, rules, first.population,
                             sorted({d for v in variants for d in v.detectors}))
    groups = run_groups(con, union, frame, dataset, window)
    points = []
    for combo, variant, cols in zip(combos, variants, columns):
        action = decide(groups.hits[:, cols], rule_set_of(variant))
        metrics = overall(groups, action, dataset.business)
        points.append({**dict(zip(names, combo)), **{k: metrics[k] for k in POINT_KEYS}})
    return points


# ---------------------------------------------------------------- one threshold on a score


def threshold_rule(strategy: Strategy, frame: Frame, label: str, param: str, overrides: dict | None = None):
    """If `param` is only used as `score >= $param` (or `>`), ANDed with other terms in one rule: the
    compiled strategy, that rule's index, the score column, the operator and the rest of the condition.
    Otherwise None."""
    compiled = compile_strategy(strategy, frame, label, {**(overrides or {}), param: SENTINEL})
    touched = [i for i, r in enumerate(compiled.rules) if _has_sentinel(r.condition)]
    population_uses = compiled.population is not None and _has_sentinel(compiled.population)
    if len(touched) != 1 or population_uses:
        return None
    index = touched[0]
    terms = _conjuncts(compiled.rules[index].condition)
    hits = [t for t in terms if _has_sentinel(t)]
    if len(hits) != 1:
        return None
    node = hits[0].unnest()
    if not isinstance(node, (exp.GTE, exp.GT)) or not isinstance(node.this, exp.Column) \
            or node.this.name not in frame.scores or not _is_sentinel(node.expression):
        return None
    rest = [t for t in terms if t is not hits[0]]
    rest_node = rest[0] if rest else exp.Boolean(this=True)
    for term in rest[1:]:
        rest_node = exp.And(this=rest_node, expression=term)
    return compiled, index, node.this.name, ">=" if isinstance(node, exp.GTE) else ">", rest_node


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = node.unnest()
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _is_sentinel(node: exp.Expression) -> bool:
    node = node.unnest()
    return isinstance(node, exp.Literal) and not node.is_string and float(node.this) == SENTINEL


def _has_sentinel(node: exp.Expression) -> bool:
    return any(_is_sentinel(n) for n in node.find_all(exp.Literal))


def _action_sql(rules: list[tuple[str, exp.Expression]]) -> exp.Expression:
    """CASE giving the decision code (allow 0, review 1, block 2) for (action, hit) pairs."""
    def any_of(action: str) -> exp.Expression:
        node: exp.Expression = lit(False)
        for a, hit in rules:
            if a == action:
                node = exp.Or(this=node, expression=hit)
        return node

    return fill("CASE WHEN :a THEN 0 WHEN :b THEN 2 WHEN :r THEN 1 ELSE 0 END",
                a=any_of("allow"), b=any_of("block"), r=any_of("review"))


def score_curve(con: duckdb.DuckDBPyConnection, found, frame: Frame, dataset: Dataset, window: Window,
                thresholds: list[float]) -> list[dict]:
    """Overall metrics at every threshold, from one pass and cumulative sums over sorted scores."""
    compiled, index, score, op, rest = found
    rule = compiled.rules[index]
    others = [(r.action, hit_column(r.condition)) for i, r in enumerate(compiled.rules) if i != index and r.enabled]
    a0 = _action_sql(others)
    a1 = _action_sql(others + ([(rule.action, hit_column(rest))] if rule.enabled else []))
    roles = dataset.columns
    amount = fill("coalesce(CAST(:a AS DOUBLE), 0)", a=ident(roles.amount)) if roles.amount else lit(0.0)
    inner = exp.select(alias(fill("CAST(:t AS DATE)", t=ident(roles.time)), "day"),
                       alias(known_label(dataset, window), "y"), alias(amount, "amt"), alias(a0, "a0"),
                       alias(a1, "a1"), alias(fill("CAST(:s AS DOUBLE)", s=ident(score)), "s")).from_(
        source(compiled, frame).subquery("src"))
    for condition in population_filters(compiled, dataset, window):
        inner = inner.where(condition)
    moving = fill("a0 <> a1 AND s IS NOT NULL")
    query = exp.select("day", "y", "a0", alias(fill("CASE WHEN :m THEN a1 END", m=moving), "a1"),
                       alias(fill("CASE WHEN :m THEN s END", m=moving), "s"), alias(fill("count(*)"), "n"),
                       alias(fill("sum(amt)"), "amt")).from_(inner.subquery("e")).group_by("ALL")
    table = con.sql(render(query)).to_arrow_table()
    days = window_days(con, dataset, window)
    data = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    return _curve_from_groups(data, days, dataset.business, thresholds, op == ">=")


def _components(action: np.ndarray, y: np.ndarray, n: np.ndarray, amt: np.ndarray, business: Business) -> dict:
    """Additive parts of every metric for rows with the given actions."""
    flagged, fraud, good = action != ALLOW, y == 1, y == 0
    return {"flagged": n * flagged, "tp": n * (flagged & fraud), "fp": n * (flagged & good),
            "caught_amt": amt * (flagged & fraud),
            "stopped": amt * (action == BLOCK) * fraud + business.review_catch_rate * amt * (action == REVIEW) * fraud,
            "good_blocked": amt * (action == BLOCK) * good, "reviews": n * (action == REVIEW)}


def _curve_from_groups(data: dict, days: list, business: Business, thresholds: list[float],
                       inclusive: bool) -> list[dict]:
    first = np.datetime64(days[0], "D") if days else np.datetime64("1970-01-01", "D")
    day = (data["day"].astype("datetime64[D]") - first).astype(np.int64)
    y, n = data["y"].astype(np.int8), data["n"].astype(np.float64)
    amt = np.nan_to_num(data["amt"].astype(np.float64))
    a0 = data["a0"].astype(np.int8)
    moving = ~np.isnan(data["s"].astype(np.float64))
    base = _components(a0, y, n, amt, business)
    a1 = np.where(moving, np.nan_to_num(data["a1"].astype(np.float64)), a0).astype(np.int8)
    gain = {k: (v - base[k])[moving] for k, v in _components(a1, y, n, amt, business).items()}
    order = np.argsort(-data["s"].astype(np.float64)[moving], kind="stable")
    scores = data["s"].astype(np.float64)[moving][order]
    cum = {k: np.concatenate([[0.0], np.cumsum(v[order])]) for k, v in gain.items()}
    t = np.asarray(thresholds, dtype=np.float64)
    # number of moving events whose score passes each threshold (scores sorted descending)
    k = np.searchsorted(-scores, -t, side="right" if inclusive else "left")
    totals = {key: base[key].sum() + cum[key][k] for key in gain}
    daily = _daily_reviews(day[moving][order], gain["reviews"][order], np.bincount(
        day, weights=base["reviews"], minlength=len(days)), scores, t, inclusive, len(days))
    population, fraud = n.sum(), n[y == 1].sum()
    fraud_amt = amt[y == 1].sum()
    out = []
    for i, threshold in enumerate(t):
        tp, fp = totals["tp"][i], totals["fp"][i]
        precision, recall = ratio(tp, tp + fp), ratio(tp, fraud)
        reviews = totals["reviews"][i]
        out.append({"value": float(threshold), "population": int(population), "flagged": int(totals["flagged"][i]),
                    "tp": int(tp), "fp": int(fp), "fn": int(fraud - tp), "precision": precision, "recall": recall,
                    "f1": None if not precision or not recall else 2 * precision * recall / (precision + recall),
                    "amount_recall": ratio(totals["caught_amt"][i], fraud_amt),
                    "alert_rate": ratio(totals["flagged"][i], population),
                    "fraud_amount_stopped": float(totals["stopped"][i]),
                    "good_amount_blocked": float(totals["good_blocked"][i]),
                    "review_cases": int(reviews), "review_cost": reviews * business.review_cost,
                    "net_benefit": float(totals["stopped"][i] - business.good_block_cost * totals["good_blocked"][i]
                                         - reviews * business.review_cost),
                    "review_overflow_days": int((daily[i] > business.review_capacity).sum()),
                    "max_daily_reviews": int(daily[i].max()) if daily.shape[1] else 0})
    return out


def _daily_reviews(day: np.ndarray, gain: np.ndarray, base: np.ndarray, scores: np.ndarray, t: np.ndarray,
                   inclusive: bool, n_days: int) -> np.ndarray:
    """Review cases per (threshold, day): the base plus each day's moving events above the threshold."""
    out = np.tile(base, (len(t), 1))
    for d in np.unique(day):
        sel = day == d
        cum = np.concatenate([[0.0], np.cumsum(gain[sel])])  # scores stay sorted descending within a day
        k = np.searchsorted(-scores[sel], -t, side="right" if inclusive else "left")
        out[:, d] += cum[k]
    return out


# ---------------------------------------------------------------- the search


def default_values(value: object, points: int = 25) -> list:
    """Values to try for a param when none are given: its slider range, evenly."""
    from riskconsole.tuning import param_range

    bounds = param_range(value)
    if bounds is None:
        raise RiskConsoleError(f"param value {value!r} is not numeric: give --values")
    lo, hi, step = bounds
    grid = np.unique(np.round(np.linspace(lo, hi, points) / step) * step)
    return [int(v) for v in grid] if isinstance(value, int) else [round(float(v), 10) for v in grid]


def curve(con: duckdb.DuckDBPyConnection, strategy: Strategy, frame: Frame, dataset: Dataset, label: str,
          window: Window, grid: dict[str, list], overrides: dict | None = None) -> tuple[list[dict], str]:
    """Metrics over the grid, and the method used (`sorted-scores` for one threshold on a score)."""
    for name in grid:
        if name not in strategy.params:
            raise RiskConsoleError(f"{label}: --param {name}: the strategy has no param '{name}' "
                                   f"(defined: {', '.join(strategy.params) or 'none'})")
    if len(grid) == 1:
        (name, values), = grid.items()
        found = threshold_rule(strategy, frame, label, name, overrides)
        if found is not None and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            points = score_curve(con, found, frame, dataset, window, values)
            return [{name: p.pop("value"), **p} for p in points], "sorted-scores"
    return grid_points(con, strategy, frame, dataset, label, window, grid, overrides), "grid"


def frontier(points: list[dict]) -> list[dict]:
    """Points no other point beats on both net benefit (higher) and review cases (lower)."""
    ranked = sorted(points, key=lambda p: (p["review_cases"], -p["net_benefit"]))
    out, best = [], -np.inf
    for point in ranked:
        if point["net_benefit"] > best:
            out.append(point)
            best = point["net_benefit"]
    return out


def choose(points: list[dict], max_overflow_days: int = 0, min_precision: float | None = None) -> dict:
    """The best feasible point by net benefit; if none is feasible, say so and give the closest."""
    def feasible(p: dict) -> bool:
        precise = min_precision is None or (p["precision"] is not None and p["precision"] >= min_precision)
        return p["review_overflow_days"] <= max_overflow_days and precise

    ok = [p for p in points if feasible(p)]
    if ok:
        return {"feasible": True, "best": max(ok, key=lambda p: p["net_benefit"]), "closest": None}
    closest = min(points, key=lambda p: (p["review_overflow_days"],
                                         -(p["precision"] or 0) if min_precision else 0, -p["net_benefit"]))
    return {"feasible": False, "best": None, "closest": closest}
