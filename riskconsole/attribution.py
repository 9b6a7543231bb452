"""What each rule adds on top of the whole strategy: unique catches, leave-one-out, overlap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.metrics import ALLOW, BLOCK, MONEY, REVIEW, RuleSet, decide, money_parts, parts, rates, scalar

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Business

LOO_KEYS = ("recall", "precision", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked",
            "review_cases", "tp", "fp")
CODES = {"allow": ALLOW, "review": REVIEW, "block": BLOCK}
MONEY_PARTS = ("caught_amount", "stopped", "good_blocked")  # the parts `money_parts` gives


def leave_one_out(g: Groups, rules: RuleSet, business: Business, action: np.ndarray | None = None) -> list[dict]:
    """For each enabled rule: the strategy's metrics without it, minus the metrics with it (what it adds).

    Every rule at once: a group's decision without rule i follows from how many enabled allow / review / block
    rules hit it, less rule i; only the (group, rule) pairs whose decision moves change anything, and every sum is
    corrected by those pairs (counts: integers, exact); a rule whose removal changes nothing gets the full metrics
    exactly, so its `_added` are 0."""
    action = decide(g.hits, rules) if action is None else action
    enabled = np.flatnonzero(rules.enabled)
    if not len(enabled):
        return []
    rate, n = business.review_catch_rate, len(enabled)
    whole = parts(action, g.label, g.count, g.amount, rate)
    full = {k: v.sum() for k, v in whole.items()}
    kind = np.array([CODES[rules.actions[i]] for i in enabled])
    hits = g.hits[:, enabled]
    per_kind = np.stack([np.count_nonzero(hits[:, kind == c], axis=1) for c in (ALLOW, REVIEW, BLOCK)])
    row, col = np.nonzero(hits)  # every (group, rule) pair a rule hits
    left = per_kind[:, row] - (kind[col] == np.array([ALLOW, REVIEW, BLOCK])[:, None])
    after = np.where(left[0] > 0, ALLOW, np.where(left[2] > 0, BLOCK, np.where(left[1] > 0, REVIEW, ALLOW)))
    moved = after != action[row]
    col, row, after = col[moved], row[moved], after[moved].astype(np.int8)
    label, count, amount = g.label[row], g.count[row], g.amount[row]
    new, old = parts(after, label, count, amount, rate), parts(action[row], label, count, amount, rate)
    sums = {k: full[k] + np.bincount(col, weights=new[k] - old[k], minlength=n) for k in full}
    # money corrected the same way is exact to a few ulps of the sums involved; where they nearly cancel (the
    # rule moves more than half of a money total, e.g. the only block rule's blocked good amount) the rule's
    # money is summed anew over its changed decisions, so 0 stays exactly 0
    changed = np.zeros(n, dtype=bool)
    changed[col] = True
    ill = np.zeros(n, dtype=bool)
    for k in MONEY_PARTS:
        scale = np.abs(whole[k]).sum() + np.bincount(col, weights=np.abs(new[k]) + np.abs(old[k]), minlength=n)
        ill |= changed & (np.abs(sums[k]) * 2 < scale)
    again = np.flatnonzero(ill)
    if len(again):
        decisions = np.broadcast_to(action, (len(again), len(action))).copy()
        pick = ill[col]
        decisions[np.searchsorted(again, col[pick]), row[pick]] = after[pick]
        for k, v in money_parts(decisions, g.label, g.amount, rate).items():
            sums[k][again] = v.sum(axis=1)
    with_it, without = _loo_values(full, business), _loo_values(sums, business)
    return [{"name": rules.names[i], "action": rules.actions[i],
             **{f"{key}_without": without[key][j] for key in LOO_KEYS},
             **{f"{key}_added": None if with_it[key] is None or without[key][j] is None else
                with_it[key] - without[key][j] for key in LOO_KEYS}} for j, i in enumerate(enabled)]


def _loo_values(sums: dict, business: Business) -> dict:
    """The `LOO_KEYS` of `overall` (same formulas, same rounding) from summed parts: scalars, or lists of one value
    per rule."""
    r = rates(sums, business)
    out = {}
    for key in LOO_KEYS:
        value, convert = (sums[key], lambda v: int(round(float(v)))) if key in ("tp", "fp") else \
            (sums["reviews"], lambda v: int(round(float(v)))) if key == "review_cases" else \
            (r[key], float) if key in MONEY else (r[key], scalar)
        out[key] = convert(value) if np.ndim(value) == 0 else [convert(v) for v in value]
    return out


def overlap(g: Groups, rules: RuleSet) -> dict:
    """Jaccard of the sets each block/review rule's condition flags, weighted by event counts."""
    deciding = [i for i, a in enumerate(rules.actions) if a in ("block", "review") and rules.enabled[i]]
    hits = g.hits[:, deciding].astype(np.int64)
    # integer sums in einsum's own loop, not a float matmul: BLAS threads spin on a busy machine
    both = np.einsum("gi,gj->ij", hits, hits * g.count[:, None]).reshape(len(deciding), len(deciding))
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
