"""Champion/challenger: two strategies on the same events, the decisions that change, and honest intervals.

Both strategies run in ONE pass: the union of their rule conditions is one mask, grouped by
(day, label, mask); each strategy's decisions come from its own columns. Intervals on the deltas
come from a paired bootstrap that resamples whole days (fraud arrives in bursts, so resampling
single events would understate the noise), vectorized over day-level aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from riskconsole.backtest import (Groups, Runner, Window, action_case, known_label, matched_rules, population_filters,
                                  run_groups, run_query)
from riskconsole.errors import RiskConsoleError
from riskconsole.metrics import ALLOW, BLOCK, PARTS, REVIEW, RuleSet, decide, overall, parts, percentile, rates
from riskconsole.segments import compare_segments, segment_rows
from riskconsole.sqlbuild import alias, exp, fill, ident, lit, render
from riskconsole.strategy import CompiledRule, CompiledStrategy, Frame, source

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    import pyarrow as pa  # type names only: a backtest reads DuckDB's results as numpy (issue 14)
    from riskconsole.config import Business, Dataset

ACTION_NAMES = {ALLOW: "allow", REVIEW: "review", BLOCK: "block"}
CI_METRICS = ("precision", "recall", "f1", "amount_recall", "alert_rate", "net_benefit", "fraud_amount_stopped",
              "good_amount_blocked", "review_cases")
DAILY_FIELDS = PARTS


@dataclass
class Joint:
    """Grouped events with the union of both strategies' conditions, and each side's decisions."""

    groups: Groups
    candidate: np.ndarray   # action per group
    baseline: np.ndarray
    candidate_cols: list[int]
    baseline_cols: list[int]
    in_candidate: np.ndarray  # group is in the candidate's population
    in_baseline: np.ndarray
    population_cols: tuple[int, int] | None = None  # hit columns of each side's population (when they differ)

    def side_groups(self, which: str) -> Groups:
        """Groups restricted to one side's population, with only that side's rule columns."""
        g = self.groups
        keep = self.in_candidate if which == "candidate" else self.in_baseline
        cols = self.candidate_cols if which == "candidate" else self.baseline_cols
        seg = g.segment[keep] if g.segment is not None else None
        return Groups(g.day[keep], g.label[keep], g.hits[keep][:, cols], g.count[keep], g.amount[keep], g.days, seg)


def _union(candidate: CompiledStrategy, baseline: CompiledStrategy) -> tuple[CompiledStrategy, list[int], list[int]]:
    """One pseudo-strategy whose rules are the distinct conditions of both; column indices of each side."""
    rules: list[CompiledRule] = []
    index: dict[str, int] = {}

    def column(rule: CompiledRule) -> int:
        key = render(rule.condition)
        if key not in index:
            index[key] = len(rules)
            rules.append(CompiledRule(f"c{len(rules)}", "review", True, rule.condition))
        return index[key]

    cand_cols = [column(r) for r in candidate.rules]
    base_cols = [column(r) for r in baseline.rules]
    detectors = sorted(set(candidate.detectors) | set(baseline.detectors))
    union = CompiledStrategy(candidate.strategy, {}, rules, candidate.population, detectors)
    return union, cand_cols, base_cols


def same_population(candidate: CompiledStrategy, baseline: CompiledStrategy) -> bool:
    """Whether both decide the same events (same population filter)."""
    render_or_none = [render(c.population) if c.population is not None else None for c in (candidate, baseline)]
    return render_or_none[0] == render_or_none[1]


def joint_groups(con: Runner, candidate: CompiledStrategy, baseline: CompiledStrategy,
                 frame: Frame, dataset: Dataset, window: Window, allow_different_population: bool = False,
                 segment: exp.Expression | None = None,
                 classes: tuple[exp.Expression, exp.Expression] | None = None) -> Joint:
    """Run both strategies in one SQL pass (split by observability class too with `classes`: see `run_groups`).

    With different populations (only when allowed), the pass covers their union and each strategy
    allows the events outside its own population.
    """
    union, cand_cols, base_cols, pop_cols = joint_union(candidate, baseline, allow_different_population)
    groups = run_groups(con, union, frame, dataset, window, segment, classes)
    return joint_of(groups, candidate, baseline, cand_cols, base_cols, pop_cols)


def joint_union(candidate: CompiledStrategy, baseline: CompiledStrategy, allow_different_population: bool = False
                ) -> tuple[CompiledStrategy, list[int], list[int], tuple[int, int] | None]:
    """The pseudo-strategy whose grouped pass serves both sides (`_union`, with each side's population as a column
    when they differ), and the hit columns of each side and of their populations."""
    same = same_population(candidate, baseline)
    if not same and not allow_different_population:
        raise RiskConsoleError(
            f"'{candidate.name}' and '{baseline.name}' decide different populations; a comparison would mix "
            "different events (pass --allow-different-population to compare anyway)")
    union, cand_cols, base_cols = _union(candidate, baseline)
    pop_cols = None
    if not same:
        union, pop_cols = _with_populations(union, candidate, baseline)
    return union, cand_cols, base_cols, pop_cols


def joint_of(groups: Groups, candidate: CompiledStrategy, baseline: CompiledStrategy, cand_cols: list[int],
             base_cols: list[int], pop_cols: tuple[int, int] | list[int] | None) -> Joint:
    """The comparison from the union's grouped pass."""
    pop_cols = tuple(pop_cols) if pop_cols is not None else None
    sides = side_actions(groups.hits, candidate, baseline, cand_cols, base_cols, pop_cols)
    return Joint(groups, sides[0], sides[1], cand_cols, base_cols, sides[2], sides[3], pop_cols)


def side_actions(hits: np.ndarray, candidate: CompiledStrategy, baseline: CompiledStrategy, cand_cols: list[int],
                 base_cols: list[int], pop_cols: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """Each side's action per row of the union's rule hits, and whether the row is in each side's population."""
    everywhere = np.ones(len(hits), dtype=bool)
    in_cand, in_base = (everywhere, everywhere) if pop_cols is None else (hits[:, pop_cols[0]], hits[:, pop_cols[1]])
    cand_action = np.where(in_cand, decide(hits[:, cand_cols], RuleSet.of(candidate)), ALLOW).astype(np.int8)
    base_action = np.where(in_base, decide(hits[:, base_cols], RuleSet.of(baseline)), ALLOW).astype(np.int8)
    return cand_action, base_action, in_cand, in_base


def _with_populations(union: CompiledStrategy, candidate: CompiledStrategy,
                      baseline: CompiledStrategy) -> tuple[CompiledStrategy, tuple[int, int]]:
    """Add each side's population as a column and scan the union of both populations."""
    true = exp.Boolean(this=True)
    pops = [c.population if c.population is not None else true for c in (candidate, baseline)]
    rules = list(union.rules) + [CompiledRule(f"population_{i}", "review", True, p) for i, p in enumerate(pops)]
    either = exp.Or(this=exp.Paren(this=pops[0]), expression=exp.Paren(this=pops[1]))
    n = len(union.rules)
    return CompiledStrategy(union.strategy, {}, rules, either, union.detectors), (n, n + 1)


def transitions(joint: Joint) -> list[dict]:
    """Events whose decision changed, by before -> after, with label counts and amounts."""
    g = joint.groups
    out = []
    for before in (ALLOW, REVIEW, BLOCK):
        for after in (ALLOW, REVIEW, BLOCK):
            sel = (joint.baseline == before) & (joint.candidate == after)
            if before == after or not sel.any():
                continue
            out.append({
                "before": ACTION_NAMES[before], "after": ACTION_NAMES[after], "events": int(g.count[sel].sum()),
                "fraud": int(g.count[sel & (g.label == 1)].sum()), "good": int(g.count[sel & (g.label == 0)].sum()),
                "unlabeled": int(g.count[sel & (g.label == -1)].sum()), "amount": float(g.amount[sel].sum()),
                "fraud_amount": float(g.amount[sel & (g.label == 1)].sum()),
                "good_amount": float(g.amount[sel & (g.label == 0)].sum()),
            })
    return out


def daily_matrix(g: Groups, action: np.ndarray, business: Business) -> np.ndarray:
    """Per-day sums of every metric part (days x DAILY_FIELDS), from which resampled metrics are rebuilt."""
    p = parts(action, g.label, g.count, g.amount, business.review_catch_rate)
    return np.stack([np.bincount(g.day, weights=p[f], minlength=len(g.days)) for f in DAILY_FIELDS], axis=1)


def metrics_from_sums(sums: np.ndarray, business: Business) -> dict[str, np.ndarray]:
    """CI metrics from summed daily parts (last axis = DAILY_FIELDS); NaN where undefined."""
    return rates({name: sums[..., i] for i, name in enumerate(DAILY_FIELDS)}, business)


def bootstrap(candidate_days: np.ndarray, baseline_days: np.ndarray, business: Business, n: int = 1000,
              seed: int = 7, level: float = 0.95) -> dict:
    """Paired day-resampling bootstrap: intervals for each side and for the deltas.

    Args:
        candidate_days, baseline_days: `daily_matrix` of each side over the same days.
        n: resamples; seed: for reproducibility; level: interval coverage.
    """
    days = candidate_days.shape[0]
    if days == 0 or n <= 0:
        return {"resamples": 0, "unit": "day", "level": level, "delta": {}, "candidate": {}, "baseline": {}}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(days, np.full(days, 1 / days), size=n).astype(float)  # n x days
    cand = metrics_from_sums(weights @ candidate_days, business)
    base = metrics_from_sums(weights @ baseline_days, business)
    tail = (1 - level) / 2 * 100
    out = {"resamples": n, "unit": "day", "level": level, "seed": seed, "delta": {}, "candidate": {}, "baseline": {}}
    for metric in CI_METRICS:
        for name, values in (("delta", cand[metric] - base[metric]), ("candidate", cand[metric]),
                             ("baseline", base[metric])):
            finite = values[np.isfinite(values)]
            out[name][metric] = [float(v) for v in percentile(finite, [tail, 100 - tail])] \
                if len(finite) >= 0.9 * n else None
    return out


def deltas(candidate: dict, baseline: dict) -> dict:
    """candidate − baseline for every numeric key of `overall` (None where either is undefined)."""
    out = {}
    for key, value in candidate.items():
        other = baseline.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(other, (int, float)):
            out[key] = value - other
        elif key in baseline:
            out[key] = None
    return out


def compare_block(joint: Joint, dataset: Dataset, bootstrap_n: int = 1000, seed: int = 7,
                  warnings: list[str] | None = None) -> dict:
    """The report's `compare` section."""
    business = dataset.business
    cand = overall(joint.groups, joint.candidate, business)
    base = overall(joint.groups, joint.baseline, business)
    population = not (joint.in_candidate.all() and joint.in_baseline.all())
    intervals = bootstrap(daily_matrix(joint.groups, joint.candidate, business),
                          daily_matrix(joint.groups, joint.baseline, business), business, bootstrap_n, seed)
    if joint.groups.segment is not None:
        rows = compare_segments(segment_rows(joint.groups, joint.candidate, business),
                                segment_rows(joint.groups, joint.baseline, business))
        worse = [r["segment"] for r in rows if {"net_benefit", "recall"} & set(r["worse_on"])]
        segments = {"rows": rows, "worse": worse,
                    "worse_means": "the candidate loses net benefit or recall in this segment"}
    else:
        segments = None
    notes = list(warnings or [])
    if population:
        notes.append("the strategies decide different populations (--allow-different-population): both are "
                     "measured on the union of their populations, each allowing the events outside its own")
    return {"baseline": base, "candidate": cand, "delta": deltas(cand, base), "changed": transitions(joint),
            "intervals": intervals, "different_population": population, "segments": segments, "warnings": notes}


def transition_events(con: duckdb.DuckDBPyConnection, candidate: CompiledStrategy, baseline: CompiledStrategy,
                      frame: Frame, dataset: Dataset, window: Window, before: str, after: str,
                      limit: int = 500) -> pa.Table:
    """Events whose decision goes from `before` (baseline) to `after` (candidate), with both rule lists."""
    roles = dataset.columns
    union = _union(candidate, baseline)[0]
    amount = ident(roles.amount) if roles.amount else lit(None)
    inner = exp.select(
        alias(fill("CAST(:i AS VARCHAR)", i=ident(roles.id)), "id"), alias(ident(roles.time), "time"),
        alias(fill("nullif(:y, -1)", y=known_label(dataset, window)), "label"), alias(amount, "amount"),
        alias(action_case(baseline), "before"), alias(action_case(candidate), "after"),
        alias(matched_rules(baseline), "baseline_rules"), alias(matched_rules(candidate), "candidate_rules"),
        *[ident(d) for d in union.detectors]).from_(source(union, frame).subquery("src"))
    for condition in population_filters(union, dataset, window) + frame.counted():
        inner = inner.where(condition)
    query = exp.select("*").from_(inner.subquery("d")).where(
        fill("before = :b AND after = :a", b=lit(before), a=lit(after))).order_by("time", "id").limit(limit)
    return run_query(con, query, candidate.name)
