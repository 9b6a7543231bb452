"""Why a monitored metric moved: its change split by segment and by rule into mix and rate effects.

Attribution: for an alerting metric-day, value = Σ_s w_s·r_s over the segments s of a column (w: the
segment's share of the metric's denominator, or its event count for count metrics; r: the segment's
own rate). The change against the reference splits per segment into a mix effect (w₁−w₀)·(r₀+r₁)/2
and a rate effect (r₁−r₀)·(w₀+w₁)/2, whose sum is exactly w₁r₁ − w₀r₀, so the contributions of one
column sum to the change. Segments are ranked as Adtributor does: explanatory power (the share of the
change a segment explains) and surprise (Jensen–Shannon divergence of its share of the metric between
reference and day).
"""

from __future__ import annotations

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.config import Business
from riskconsole.metrics import RuleSet
from riskconsole.monitor import RATIOS, denominator, json_number, kpis, monitor_parts

TOP = 3


def decompose(w0: np.ndarray, r0: np.ndarray, w1: np.ndarray, r1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mix and rate effects per segment; mix + rate = w1·r1 − w0·r0 exactly (a segment absent on one side is
    pure mix: its missing rate is taken from the other side)."""
    r0 = np.where(w0 > 0, r0, r1)
    r1 = np.where(w1 > 0, r1, r0)
    r0, r1 = np.nan_to_num(r0), np.nan_to_num(r1)
    mix = (w1 - w0) * (r0 + r1) / 2
    rate = (r1 - r0) * (w0 + w1) / 2
    return mix, rate


def _segment_sums(p: dict, g: Groups, keys: np.ndarray, names: np.ndarray, day_mask: np.ndarray) -> dict:
    """Sums of every part per segment (rows: names) over the groups on the chosen days."""
    keep = day_mask[g.day]
    index = np.searchsorted(names, keys[keep])
    return {k: np.bincount(index, weights=v[keep], minlength=len(names)) for k, v in p.items()}


def attribute(metric: str, ref: dict, cur: dict, ref_days: int, business: Business) -> dict:
    """Contributions per segment of one metric: reference and current sums per segment → mix, rate, total.

    For ratio metrics w is the segment's share of the denominator and r its own ratio; for count metrics
    w is the segment's events per day and r the metric per event.
    """
    def sides(sums: dict, days: int) -> tuple[np.ndarray, np.ndarray, float]:
        value = kpis(sums, business)[metric]
        if metric in RATIOS:
            den = denominator(metric, sums)
            w = den / den.sum() if den.sum() else np.zeros_like(den)
            total = float(kpis({k: v.sum() for k, v in sums.items()}, business)[metric])
            return w, value, total
        n = sums["population"] / days
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.asarray(value, dtype=float) / days / n
        return n, r, float(np.nansum(np.asarray(value, dtype=float))) / days

    w0, r0, v0 = sides(ref, ref_days)
    w1, r1, v1 = sides(cur, 1)
    mix, rate = decompose(w0, r0, w1, r1)
    return {"reference": v0, "value": v1, "change": v1 - v0, "mix": mix, "rate": rate,
            "share0": _share(w0, r0), "share1": _share(w1, r1)}


def _share(w: np.ndarray, r: np.ndarray) -> np.ndarray:
    x = np.clip(np.nan_to_num(w * r), 0, None)
    return x / x.sum() if x.sum() > 0 else x


def surprise(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Adtributor's surprise: each segment's term of the Jensen–Shannon divergence between shares p and q."""
    from riskconsole.drift import js_terms

    return js_terms(p, q)


def contributions(by: str, names: np.ndarray, result: dict) -> list[dict]:
    """Rows of one column's contributions, ranked by surprise among segments that explain the change."""
    change = result["change"]
    s = surprise(result["share0"], result["share1"])
    rows = []
    for i, name in enumerate(names):
        total = float(result["mix"][i] + result["rate"][i])
        power = total / change if change else 0.0
        rows.append({"by": by, "segment": str(name), "mix": float(result["mix"][i]), "rate": float(result["rate"][i]),
                     "contribution": total, "explanatory_power": round(power, 6), "surprise": round(float(s[i]), 6)})
    rows.sort(key=lambda r: (-(r["explanatory_power"] > 0.05), -r["surprise"], -abs(r["contribution"])))
    return rows


def deciding_rule(g: Groups, action: np.ndarray, rules: RuleSet) -> np.ndarray:
    """Per group, the rule that decided it (first matching rule of the final action), or '(not flagged)'."""
    out = np.full(len(g.count), "(not flagged)", dtype=object)
    for code, name in ((1, "review"), (2, "block")):
        mask = rules.mask(name)
        for i in reversed(np.flatnonzero(mask)):
            out[(action == code) & g.hits[:, i]] = rules.names[i]
    return out


def attribution(alerts: list[tuple[int, str]], views: list[tuple[str, Groups, np.ndarray]], action_of,
                business: Business, rules: RuleSet, in_ref: np.ndarray) -> list[dict]:
    """One entry per alerting (day index, metric): contributions for every view (a `--by` column or rules)."""
    out = []
    ref_days = max(int(in_ref.sum()), 1)
    prepared = []
    for by, g, keys in views:
        keys_s = keys.astype(str)
        names = np.unique(keys_s)
        p = monitor_parts(g, action_of(g), business, rules)
        prepared.append((by, g, keys_s, names, p, _segment_sums(p, g, keys_s, names, in_ref)))
    for day, metric in alerts:
        entry = None
        for by, g, keys_s, names, p, ref in prepared:
            on_day = np.zeros(len(g.days), dtype=bool)
            on_day[day] = True
            cur = _segment_sums(p, g, keys_s, names, on_day)
            result = attribute(metric, ref, cur, ref_days, business)
            if entry is None:
                entry = {"day": g.days[day].isoformat(), "metric": metric, "reference": json_number(result["reference"]),
                         "value": json_number(result["value"]), "change": json_number(result["change"]), "contributions": []}
            entry["contributions"] += contributions(by, names, result)
        out.append(entry)
    return out


def top_segments(entry: dict) -> list[str]:
    """The alert's `top`: the best segments of the column with the most surprise among explaining segments."""
    best, best_score = [], -1.0
    for by in dict.fromkeys(c["by"] for c in entry["contributions"]):
        rows = [c for c in entry["contributions"] if c["by"] == by and c["explanatory_power"] > 0.05]
        score = sum(r["surprise"] for r in rows[:TOP])
        if by != "rule" and score > best_score:
            best, best_score = [f"{r['by']} = {r['segment']}" for r in rows[:TOP]], score
    if not best:
        rows = [c for c in entry["contributions"] if c["explanatory_power"] > 0.05]
        best = [f"{r['by']} = {r['segment']}" for r in rows[:TOP]]
    return best
