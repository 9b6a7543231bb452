"""What each rule adds on top of the whole strategy: unique catches, leave-one-out, overlap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.config import Business
from riskconsole.metrics import ALLOW, RuleSet, decide, money_parts, overall_from_sums, parts

LOO_KEYS = ("recall", "precision", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked",
            "review_cases", "tp", "fp")


def leave_one_out(g: Groups, rules: RuleSet, business: Business, action: np.ndarray | None = None) -> list[dict]:
    """For each enabled rule: the strategy's metrics without it, minus the metrics with it (what it adds).

    Without a rule, only the groups it hits can change decision: the counts are corrected by those groups
    alone (integers: exact) and the money sums are summed anew over the changed decisions (a correction of a
    float total would leave 1e-12 where the answer is 0), so no rule re-decides every group; a rule whose
    removal changes nothing gets the full metrics exactly."""
    action = decide(g.hits, rules) if action is None else action
    rate = business.review_catch_rate
    whole = parts(action, g.label, g.count, g.amount, rate)
    sums = {k: v.sum() for k, v in whole.items()}
    reviews = np.bincount(g.day, weights=whole["reviews"], minlength=len(g.days))
    full = overall_from_sums(sums, reviews, business)
    out = []
    for i, name in enumerate(rules.names):
        if not rules.enabled[i]:
            continue
        without = replace(rules, enabled=[e and j != i for j, e in enumerate(rules.enabled)])
        hit = np.flatnonzero(g.hits[:, i])
        after = decide(g.hits[hit], without)
        moved = after != action[hit]
        reduced = full
        if moved.any():
            rows = hit[moved]
            label, count, amount = g.label[rows], g.count[rows], g.amount[rows]
            new, old = parts(after[moved], label, count, amount, rate), parts(action[rows], label, count, amount, rate)
            changed = action.copy()
            changed[rows] = after[moved]
            delta = {k: sums[k] + (new[k].sum() - old[k].sum()) for k in sums}
            delta.update({k: v.sum() for k, v in money_parts(changed, g.label, g.amount, rate).items()})
            by_day = reviews + np.bincount(g.day[rows], weights=new["reviews"] - old["reviews"], minlength=len(g.days))
            reduced = overall_from_sums(delta, by_day, business)
        out.append({"name": name, "action": rules.actions[i], **{
            f"{key}_without": reduced[key] for key in LOO_KEYS}, **{
            f"{key}_added": None if full[key] is None or reduced[key] is None else full[key] - reduced[key]
            for key in LOO_KEYS}})
    return out


def overlap(g: Groups, rules: RuleSet) -> dict:
    """Jaccard of the sets each block/review rule's condition flags, weighted by event counts."""
    deciding = [i for i, a in enumerate(rules.actions) if a in ("block", "review") and rules.enabled[i]]
    hits = g.hits[:, deciding]
    weighted = hits * g.count[:, None]
    # integer sums over the groups each rule hits, not a float matmul: BLAS threads spin on a busy machine
    both = np.array([weighted[hits[:, k]].sum(axis=0) for k in range(len(deciding))],
                    dtype=np.int64).reshape(len(deciding), len(deciding))
    sizes = np.diag(both)
    union = sizes[:, None] + sizes[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, both / union, 0.0)
    return {"rules": [rules.names[i] for i in deciding], "jaccard": np.round(jaccard, 6).tolist(),
            "shared_events": both.astype(np.int64).tolist()}


def attribution(g: Groups, rules: RuleSet, business: Business, rule_rows: list[dict],
                action: np.ndarray | None = None) -> dict:
    """Leave-one-out, overlap, and the rules that catch nothing on their own (removal candidates); `action` is
    the strategy's decision per group where the caller has it."""
    action = decide(g.hits, rules) if action is None else action
    caught_somewhere = (action != ALLOW) & (g.label == 1)
    removal = [r["name"] for r in rule_rows
               if r["enabled"] and r["action"] in ("block", "review") and r["unique_tp"] == 0]
    return {"leave_one_out": leave_one_out(g, rules, business, action), "overlap": overlap(g, rules),
            "removal_candidates": removal, "caught": int(g.count[caught_somewhere].sum())}
