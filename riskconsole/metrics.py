"""Every number of a backtest report, computed in numpy from grouped events (DESIGN.md §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.glossary import METRICS
from riskconsole.strategy import CompiledStrategy

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Business

ALLOW, REVIEW, BLOCK = 0, 1, 2


@dataclass(frozen=True)
class RuleSet:
    """Names, actions and enabled flags of a strategy's rules, in strategy order."""

    names: list[str]
    actions: list[str]
    enabled: list[bool]

    @classmethod
    def of(cls, compiled: CompiledStrategy) -> RuleSet:
        """Names, actions and enabled flags of a compiled strategy's rules."""
        rules = compiled.rules
        return cls([r.name for r in rules], [r.action for r in rules], [r.enabled for r in rules])

    def mask(self, action: str) -> np.ndarray:
        """Which rules are enabled and take `action`."""
        return np.array([a == action and e for a, e in zip(self.actions, self.enabled)], dtype=bool)


def decide(hits: np.ndarray, rules: RuleSet) -> np.ndarray:
    """Final action per row of `hits`: allow beats block beats review; no match allows."""
    allow = hits[:, rules.mask("allow")].any(axis=1)
    block = hits[:, rules.mask("block")].any(axis=1) & ~allow
    review = hits[:, rules.mask("review")].any(axis=1) & ~allow & ~block
    return np.where(block, BLOCK, np.where(review, REVIEW, ALLOW)).astype(np.int8)


def ratio(num: float, den: float) -> float | None:
    """num / den, or None where the denominator is zero."""
    return float(num) / float(den) if den else None


PARTS = ("population", "flagged", "blocked", "tp", "fp", "fn", "tn", "unlabeled_flagged", "unlabeled_total",
         "fraud_amount", "caught_amount", "stopped", "good_blocked", "reviews")


def parts(action: np.ndarray, label: np.ndarray, count: np.ndarray, amount: np.ndarray,
          catch_rate: float) -> dict[str, np.ndarray]:
    """Each row's additive share of every metric: the sums every metric is built from.

    Sum them over any rows (a window, a day, a bootstrap resample, the events past a threshold) and
    `rates()` turns the sums into the report's numbers, so each formula exists once.
    """
    flagged, fraud, good, unknown = action != ALLOW, label == 1, label == 0, label == -1
    n = count.astype(np.float64)
    return {
        "population": n, "flagged": n * flagged, "blocked": n * (action == BLOCK),
        "tp": n * (flagged & fraud), "fp": n * (flagged & good), "fn": n * (~flagged & fraud),
        "tn": n * (~flagged & good), "unlabeled_flagged": n * (flagged & unknown), "unlabeled_total": n * unknown,
        "fraud_amount": amount * fraud, **money_parts(action, label, amount, catch_rate),
        "reviews": n * (action == REVIEW),
    }


def money_parts(action: np.ndarray, label: np.ndarray, amount: np.ndarray, catch_rate: float) -> dict[str, np.ndarray]:
    """The money `parts` that depend on the decision (float sums: where exact zeros matter, sum them anew
    rather than correct a total)."""
    block, review, fraud = action == BLOCK, action == REVIEW, label == 1
    return {"caught_amount": amount * ((action != ALLOW) & fraud),
            "stopped": amount * (block & fraud) + catch_rate * amount * (review & fraud),
            "good_blocked": amount * (block & (label == 0))}


def rates(sums: dict, business: Business) -> dict:
    """Ratios and money from summed `parts` (scalars or arrays of sums); NaN where undefined."""
    s = {k: np.asarray(v, dtype=np.float64) for k, v in sums.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = s["tp"] / (s["tp"] + s["fp"])
        recall = s["tp"] / (s["tp"] + s["fn"])
        review_cost = s["reviews"] * business.review_cost
        return {
            "precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall),
            "amount_recall": s["caught_amount"] / s["fraud_amount"], "alert_rate": s["flagged"] / s["population"],
            "fraud_amount_stopped": s["stopped"], "good_amount_blocked": s["good_blocked"],
            "review_cases": s["reviews"], "review_cost": review_cost,
            "net_benefit": s["stopped"] - business.good_block_cost * s["good_blocked"] - review_cost,
            "label_coverage": (s["population"] - s["unlabeled_total"]) / s["population"],
        }


def scalar(value: np.ndarray | float) -> float | None:
    """A 0-d result of `rates` as a float, None where undefined."""
    value = float(value)
    return value if np.isfinite(value) else None


def percentile(values: np.ndarray, q: list[float], axis: int = -1) -> np.ndarray:
    """`np.percentile(values, q, axis)` of finite floats, the very same floats (its default linear method: the
    same partition, indexes and interpolation), without the `np.unique` inside it, whose check for masked arrays
    imports numpy.ma (~0.03 CPU-s of every CLI backtest with outcome blocks, issue 14)."""
    arr = np.moveaxis(np.array(values, dtype=np.float64), axis, 0)
    n = arr.shape[0]
    virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
    below = np.floor(virtual)
    above = below + 1
    beyond = virtual >= n - 1
    below[beyond], above[beyond] = -1, -1
    below[virtual < 0], above[virtual < 0] = 0, 0
    below, above = below.astype(np.intp), above.astype(np.intp)
    arr.partition(np.array(sorted({0, -1, *below.tolist(), *above.tolist()}), dtype=np.int64), axis=0)
    lower, upper = arr[below], arr[above]
    gamma = np.asarray(virtual - below, dtype=virtual.dtype).reshape(virtual.shape + (1,) * (arr.ndim - 1))
    diff = upper - lower
    out = np.add(lower, diff * gamma)
    np.subtract(upper, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe", dtype=out.dtype.type)
    return out


def overflow_days(daily_reviews: np.ndarray, capacity: int) -> int:
    """Days whose review cases are strictly more than the capacity."""
    return int((np.asarray(daily_reviews) > capacity).sum())


COUNTS = ("population", "flagged", "blocked", "tp", "fp", "fn", "tn", "unlabeled_flagged", "unlabeled_total")
MONEY = ("fraud_amount_stopped", "good_amount_blocked", "review_cost", "net_benefit")


def overall_from_sums(sums: dict, daily_reviews: np.ndarray, business: Business) -> dict:
    """The `overall` block from summed `parts` and the review cases of each day."""
    r = rates(sums, business)
    out = {k: int(round(float(sums[k]))) for k in COUNTS}
    out.update({k: scalar(r[k]) for k in ("precision", "recall", "f1", "amount_recall", "alert_rate")})
    out.update({k: float(r[k]) for k in MONEY})
    out["review_cases"] = int(round(float(sums["reviews"])))
    out.update({
        "review_overflow_days": overflow_days(daily_reviews, business.review_capacity),
        "review_capacity": business.review_capacity,
        "max_daily_reviews": int(round(float(np.max(daily_reviews)))) if len(daily_reviews) else 0,
        "fraud_total": out["tp"] + out["fn"], "fraud_amount": float(sums["fraud_amount"]),
        "label_coverage": scalar(r["label_coverage"]),
    })
    return {m.key: out[m.key] for m in METRICS}  # the glossary's order and keys: one list, defined once


def overall(g: Groups, action: np.ndarray, business: Business) -> dict:
    """The `overall` block: confusion, rates, money and review load."""
    p = parts(action, g.label, g.count, g.amount, business.review_catch_rate)
    sums = {k: v.sum() for k, v in p.items()}
    daily_reviews = np.bincount(g.day, weights=p["reviews"], minlength=len(g.days))
    return overall_from_sums(sums, daily_reviews, business)


def by_action(g: Groups, action: np.ndarray) -> dict:
    """Counts and money per final action (block, review)."""
    kind = action.astype(np.int64) * 3 + (g.label.astype(np.int64) + 1)  # (action, label) of each group: 9 kinds
    n = np.bincount(kind, weights=g.count, minlength=9).reshape(3, 3).round().astype(np.int64)  # [action, label+1]
    money = np.bincount(kind, weights=g.amount, minlength=9).reshape(3, 3)
    out = {}
    for name, code in (("block", BLOCK), ("review", REVIEW)):
        sel = action == code
        out[name] = {
            "events": int(n[code].sum()), "tp": int(n[code, 2]), "fp": int(n[code, 1]), "unlabeled": int(n[code, 0]),
            "amount": float(g.amount[sel].sum()), "fraud_amount": float(money[code, 2]),
            "good_amount": float(money[code, 1]),
        }
    return out


def _alone(g: Groups, action: np.ndarray, rules: RuleSet) -> np.ndarray:
    """Per group: flagged in the final decision, and matched by exactly one enabled block or review rule."""
    deciding = rules.mask("block") | rules.mask("review")
    return (action != ALLOW) & (g.hits[:, deciding].sum(axis=1) == 1)


def unique_unlabeled(g: Groups, action: np.ndarray, rules: RuleSet) -> list[int]:
    """Per rule, in strategy order: what it alone flags (as `unique_tp` counts) whose label is unknown; 0 for a rule
    that does not block or review."""
    deciding = rules.mask("block") | rules.mask("review")
    unknown = g.count * (_alone(g, action, rules) & (g.label == -1))
    per_rule = np.einsum("g,gr->r", unknown, g.hits.astype(np.int64)).tolist()
    return [n if deciding[i] else 0 for i, n in enumerate(per_rule)]


def rule_table(g: Groups, action: np.ndarray, rules: RuleSet) -> list[dict]:
    """Per rule, in strategy order: hits whatever the decision, precision, recall, unique catches."""
    fraud, good = g.label == 1, g.label == 0
    total_fraud = int(g.count[fraud].sum())
    deciding = rules.mask("block") | rules.mask("review")
    alone = _alone(g, action, rules)
    n = g.count
    counts = np.stack([n, n * fraud, n * good, n * (g.label == -1), n * (alone & fraud),
                       *[n * (action == c) for c in (ALLOW, REVIEW, BLOCK)]])  # (columns, groups), int64
    # every rule's sums in one integer contraction over the groups (einsum's own loop, not a BLAS matmul, whose
    # threads spin on a busy machine); money likewise in float64
    per_rule = np.einsum("cg,gr->rc", counts, g.hits.astype(np.int64)).tolist()
    money = np.einsum("cg,gr->rc", np.stack([g.amount, g.amount * fraud]), g.hits.astype(np.float64)).tolist()
    out = []
    for i, name in enumerate(rules.names):
        hits, tp, fp, unlabeled, unique, *decided = per_rule[i]
        out.append({
            "name": name, "action": rules.actions[i], "enabled": rules.enabled[i],
            "hits": hits, "tp": tp, "fp": fp, "unlabeled_hits": unlabeled,
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, total_fraud),
            "unique_tp": unique if deciding[i] else 0,
            "hit_amount": money[i][0], "fraud_amount": money[i][1],
            "decided": dict(zip(("allow", "review", "block"), decided)),
        })
    return out


def daily(g: Groups, action: np.ndarray, business: Business) -> list[dict]:
    """One row per day of the window (days without events included)."""
    # every column from the (action, label) kind of each group summed per day: two bincounts, not one per column
    days = len(g.days)
    bins = g.day * 9 + action.astype(np.int64) * 3 + (g.label.astype(np.int64) + 1)
    n = np.bincount(bins, weights=g.count, minlength=days * 9).reshape(days, 3, 3)  # [day, action, label + 1]
    money = np.bincount(bins, weights=g.amount, minlength=days * 9).reshape(days, 3, 3)
    flagged = n[:, REVIEW] + n[:, BLOCK]
    columns = {
        "population": n.sum(axis=(1, 2)), "flagged": flagged.sum(axis=1), "blocked": n[:, BLOCK].sum(axis=1),
        "tp": flagged[:, 2], "fp": flagged[:, 1], "review_cases": n[:, REVIEW].sum(axis=1),
        "unlabeled": n[:, :, 0].sum(axis=1), "fraud": n[:, :, 2].sum(axis=1),
    }
    columns = {k: np.rint(v).astype(np.int64).tolist() for k, v in columns.items()}
    stopped = (money[:, BLOCK, 2] + business.review_catch_rate * money[:, REVIEW, 2]).tolist()
    rows = []
    for i, day in enumerate(g.days):
        row = {"day": day.isoformat(), **{k: int(v[i]) for k, v in columns.items()}}
        row["fraud_amount_stopped"] = float(stopped[i])
        row["over_capacity"] = bool(columns["review_cases"][i] > business.review_capacity)
        rows.append(row)
    return rows
