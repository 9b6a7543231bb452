"""Every number of a backtest report, computed in numpy from grouped events (DESIGN.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.config import Business
from riskconsole.strategy import CompiledStrategy

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


def f1(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean, None where undefined."""
    if precision is None or recall is None or precision + recall == 0:
        return None
    return 2 * precision * recall / (precision + recall)


def overall(g: Groups, action: np.ndarray, business: Business) -> dict:
    """The `overall` block: confusion, rates, money and review load."""
    n, amt, y = g.count, g.amount, g.label
    flagged, block, review = action != ALLOW, action == BLOCK, action == REVIEW
    fraud, good, unknown = y == 1, y == 0, y == -1
    tp, fp = int(n[flagged & fraud].sum()), int(n[flagged & good].sum())
    fn, tn = int(n[~flagged & fraud].sum()), int(n[~flagged & good].sum())
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    stopped = float(amt[block & fraud].sum() + business.review_catch_rate * amt[review & fraud].sum())
    good_blocked = float(amt[block & good].sum())
    review_cases = int(n[review].sum())
    review_cost = review_cases * business.review_cost
    daily_reviews = np.bincount(g.day[review], weights=n[review], minlength=len(g.days))
    population = int(n.sum())
    return {
        "population": population, "flagged": int(n[flagged].sum()), "blocked": int(n[block].sum()),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "unlabeled_flagged": int(n[flagged & unknown].sum()), "unlabeled_total": int(n[unknown].sum()),
        "precision": precision, "recall": recall, "f1": f1(precision, recall),
        "amount_recall": ratio(amt[flagged & fraud].sum(), amt[fraud].sum()),
        "alert_rate": ratio(n[flagged].sum(), population),
        "fraud_amount_stopped": stopped, "good_amount_blocked": good_blocked,
        "review_cases": review_cases, "review_cost": review_cost,
        "net_benefit": stopped - business.good_block_cost * good_blocked - review_cost,
        "review_overflow_days": int((daily_reviews > business.review_capacity).sum()),
        "review_capacity": business.review_capacity,
        "max_daily_reviews": int(daily_reviews.max()) if len(daily_reviews) else 0,
        "fraud_total": tp + fn, "fraud_amount": float(amt[fraud].sum()),
        "label_coverage": ratio(n[~unknown].sum(), population),
    }


def by_action(g: Groups, action: np.ndarray) -> dict:
    """Counts and money per final action (block, review)."""
    out = {}
    for name, code in (("block", BLOCK), ("review", REVIEW)):
        sel = action == code
        out[name] = {
            "events": int(g.count[sel].sum()),
            "tp": int(g.count[sel & (g.label == 1)].sum()), "fp": int(g.count[sel & (g.label == 0)].sum()),
            "unlabeled": int(g.count[sel & (g.label == -1)].sum()),
            "amount": float(g.amount[sel].sum()), "fraud_amount": float(g.amount[sel & (g.label == 1)].sum()),
            "good_amount": float(g.amount[sel & (g.label == 0)].sum()),
        }
    return out


def rule_table(g: Groups, action: np.ndarray, rules: RuleSet) -> list[dict]:
    """Per rule, in strategy order: hits whatever the decision, precision, recall, unique catches."""
    fraud, good = g.label == 1, g.label == 0
    total_fraud = int(g.count[fraud].sum())
    deciding = rules.mask("block") | rules.mask("review")
    n_deciding = g.hits[:, deciding].sum(axis=1)
    caught = (action != ALLOW) & fraud
    out = []
    for i, name in enumerate(rules.names):
        hit = g.hits[:, i]
        tp, fp = int(g.count[hit & fraud].sum()), int(g.count[hit & good].sum())
        unique = caught & hit & (n_deciding == 1) if deciding[i] else np.zeros_like(hit)
        out.append({
            "name": name, "action": rules.actions[i], "enabled": rules.enabled[i],
            "hits": int(g.count[hit].sum()), "tp": tp, "fp": fp,
            "unlabeled_hits": int(g.count[hit & (g.label == -1)].sum()),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, total_fraud),
            "unique_tp": int(g.count[unique].sum()),
            "hit_amount": float(g.amount[hit].sum()), "fraud_amount": float(g.amount[hit & fraud].sum()),
            "decided": {a: int(g.count[hit & (action == c)].sum())
                        for a, c in (("allow", ALLOW), ("review", REVIEW), ("block", BLOCK))},
        })
    return out


def daily(g: Groups, action: np.ndarray, business: Business) -> list[dict]:
    """One row per day of the window (days without events included)."""
    def per_day(sel: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        weights = (g.count if values is None else values)[sel]
        return np.bincount(g.day[sel], weights=weights, minlength=len(g.days))

    everything = np.ones_like(g.label, dtype=bool)
    flagged, fraud = action != ALLOW, g.label == 1
    columns = {
        "population": per_day(everything), "flagged": per_day(flagged), "blocked": per_day(action == BLOCK),
        "tp": per_day(flagged & fraud), "fp": per_day(flagged & (g.label == 0)),
        "review_cases": per_day(action == REVIEW), "unlabeled": per_day(g.label == -1),
        "fraud": per_day(fraud),
    }
    stopped = per_day((action == BLOCK) & fraud, g.amount) + \
        business.review_catch_rate * per_day((action == REVIEW) & fraud, g.amount)
    rows = []
    for i, day in enumerate(g.days):
        row = {"day": day.isoformat(), **{k: int(v[i]) for k, v in columns.items()}}
        row["fraud_amount_stopped"] = float(stopped[i])
        row["over_capacity"] = bool(columns["review_cases"][i] > business.review_capacity)
        rows.append(row)
    return rows
