"""What each rule adds on top of the whole strategy: unique catches, leave-one-out, overlap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.config import Business
from riskconsole.metrics import ALLOW, RuleSet, decide, overall

LOO_KEYS = ("recall", "precision", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked",
            "review_cases", "tp", "fp")


def leave_one_out(g: Groups, rules: RuleSet, business: Business) -> list[dict]:
    """For each enabled rule: the strategy's metrics without it, minus the metrics with it (what it adds)."""
    full = overall(g, decide(g.hits, rules), business)
    out = []
    for i, name in enumerate(rules.names):
        if not rules.enabled[i]:
            continue
        without = replace(rules, enabled=[e and j != i for j, e in enumerate(rules.enabled)])
        reduced = overall(g, decide(g.hits, without), business)
        out.append({"name": name, "action": rules.actions[i], **{
            f"{key}_without": reduced[key] for key in LOO_KEYS}, **{
            f"{key}_added": None if full[key] is None or reduced[key] is None else full[key] - reduced[key]
            for key in LOO_KEYS}})
    return out


def overlap(g: Groups, rules: RuleSet) -> dict:
    """Jaccard of the sets each block/review rule's condition flags, weighted by event counts."""
    deciding = [i for i, a in enumerate(rules.actions) if a in ("block", "review") and rules.enabled[i]]
    hits = g.hits[:, deciding].astype(np.float64)
    both = hits.T @ (hits * g.count[:, None])
    sizes = np.diag(both)
    union = sizes[:, None] + sizes[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, both / union, 0.0)
    return {"rules": [rules.names[i] for i in deciding], "jaccard": np.round(jaccard, 6).tolist(),
            "shared_events": both.astype(np.int64).tolist()}


def attribution(g: Groups, rules: RuleSet, business: Business, rule_rows: list[dict]) -> dict:
    """Leave-one-out, overlap, and the rules that catch nothing on their own (removal candidates)."""
    caught_somewhere = (decide(g.hits, rules) != ALLOW) & (g.label == 1)
    removal = [r["name"] for r in rule_rows
               if r["enabled"] and r["action"] in ("block", "review") and r["unique_tp"] == 0]
    return {"leave_one_out": leave_one_out(g, rules, business), "overlap": overlap(g, rules),
            "removal_candidates": removal, "caught": int(g.count[caught_somewhere].sum())}
