"""What labels cannot say yet: an early precision estimate from scores, and clusters of unflagged anomalies.

**Label-free precision (confidence-based performance estimation, as NannyML's CBPE).** A detector's
score is calibrated on the reference (labels known by the window's end): the fraud rate of each of
20 score bins, smoothed towards the reference's overall rate. A window day's estimated precision is
the mean calibrated probability of its flagged events. Where early labels (those already in) say
something else by more than 3 standard errors of their own count, the day is flagged: either the
scores no longer mean what they did, or the flagged traffic changed (an attack the model does not
know). Early labels over-represent fraud when fraud is confirmed faster than good orders are
cleared, so read a gap on the youngest days with the day's label coverage.

**Attack discovery.** Among the window's events that the strategy allows and an anomaly detector
scores in its top `HIGH` share, the attribute values shared by many of them (pairs of text
columns, extended by a third value most of the cluster and few others share) are counted per day and compared
with the reference's rate of the same values among its own allowed high-score events. The densest
clusters with a lift of at least `MIN_LIFT` are returned, each with a `when` a rule can use.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
from sqlglot import exp

from riskconsole.backtest import Groups, Window, action_case, population_filters, run_groups
from riskconsole.metrics import ALLOW, RuleSet, decide
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.strategy import source

BINS = 20
PRIOR = 20.0  # pseudo-events pulling a thin bin's fraud rate towards the overall rate
MIN_LABELLED = 10
HIGH = 0.95
MIN_EVENTS = 10
MIN_LIFT = 2.0
CLUSTERS = 5
MAX_VALUES = 40  # a text column with more distinct values is an id, not an attribute


def _scored(compiled, detector: str):
    return replace(compiled, detectors=list(dict.fromkeys([*compiled.detectors, detector])))


def precision_estimate(con, compiled, frame, dataset, span: Window, in_ref: np.ndarray, in_win: np.ndarray,
                       detector: str) -> dict:
    """`estimate` of monitor.json: calibration of `detector` on the reference and each window day's estimate."""
    joined = _scored(compiled, detector)
    bucket = fill("least(greatest(CAST(floor(coalesce(:s, 0) * :n) AS INTEGER), 0), :m)",
                  s=ident(detector), n=lit(BINS), m=lit(BINS - 1))
    g = run_groups(con, joined, frame, dataset, span, bucket)
    action = decide(g.hits, RuleSet.of(compiled))
    b = g.segment.astype(int)
    ref = in_ref[g.day]
    fraud = np.bincount(b[ref & (g.label == 1)], weights=g.count[ref & (g.label == 1)], minlength=BINS)
    labelled = np.bincount(b[ref & (g.label >= 0)], weights=g.count[ref & (g.label >= 0)], minlength=BINS)
    base = fraud.sum() / max(labelled.sum(), 1)
    calibrated = (fraud + PRIOR * base) / (labelled + PRIOR)
    return {"detector": detector, "method": "CBPE: mean calibrated score of flagged events",
            "calibration": [{"bin": f"{i / BINS:.2f} … {(i + 1) / BINS:.2f}", "labelled": int(labelled[i]),
                             "fraud_rate": round(float(calibrated[i]), 6)} for i in range(BINS)],
            "daily": _daily_estimate(g, action, b, calibrated, in_win)}


def _daily_estimate(g: Groups, action: np.ndarray, b: np.ndarray, calibrated: np.ndarray,
                    in_win: np.ndarray) -> list[dict]:
    flagged = action != ALLOW
    n = len(g.days)
    events = np.bincount(g.day[flagged], weights=g.count[flagged], minlength=n)
    expected = np.bincount(g.day[flagged], weights=g.count[flagged] * calibrated[b[flagged]], minlength=n)
    tp = np.bincount(g.day[flagged & (g.label == 1)], weights=g.count[flagged & (g.label == 1)], minlength=n)
    fp = np.bincount(g.day[flagged & (g.label == 0)], weights=g.count[flagged & (g.label == 0)], minlength=n)
    rows = []
    for d in np.flatnonzero(in_win & (events > 0)):
        estimate = expected[d] / events[d]
        known = tp[d] + fp[d]
        early = tp[d] / known if known else None
        se = np.sqrt(max(estimate * (1 - estimate), 1e-6) / known) if known else None
        rows.append({"day": g.days[d].isoformat(), "flagged": int(events[d]), "estimated_precision": round(float(estimate), 6),
                     "early_precision": None if early is None else round(float(early), 6), "labelled_flagged": int(known),
                     "disagree": bool(known >= MIN_LABELLED and abs(early - estimate) > 3 * se)})
    return rows


def text_columns(frame, dataset, con, compiled, reference: Window) -> list[str]:
    """Text and boolean columns with few distinct values (attributes a rule can name)."""
    roles = dataset.columns
    skip = {roles.id, roles.time, *roles.entities}
    candidates = [c for c in frame.visible if c in frame.columns and c not in skip
                  and frame.columns[c].split("(")[0] in ("VARCHAR", "BOOLEAN")]
    if not candidates:
        return []
    query = exp.select(*[fill("approx_count_distinct(:c)", c=ident(c)) for c in candidates]).from_(
        source(compiled, frame).subquery("src"))
    for condition in population_filters(compiled, dataset, reference):
        query = query.where(condition)
    counts = con.execute(render(query)).fetchall()[0]
    return [c for c, k in zip(candidates, counts) if k and 1 < k <= MAX_VALUES]


def clusters(con, compiled, frame, dataset, span: Window, window: Window, reference: Window, detector: str,
             ref_days: int, win_days: int) -> list[dict]:
    """The densest groups of allowed, high-anomaly window events sharing attribute values, against the reference."""
    columns = text_columns(frame, dataset, con, compiled, reference)
    if not columns:
        return []
    joined = _scored(compiled, detector)
    time = ident(dataset.columns.time)
    query = exp.select(alias(fill(":t >= CAST(:w AS TIMESTAMP)", t=time, w=lit(window.start.isoformat(sep=" "))),
                             "in_window"),
                       *[alias(fill("CAST(:c AS VARCHAR)", c=ident(c)), c) for c in columns]).from_(
        source(joined, frame).subquery("src"))
    for condition in population_filters(joined, dataset, span):
        query = query.where(condition)
    query = query.where(fill(":a = 'allow'", a=action_case(compiled))).where(
        fill("coalesce(:s, 0) >= :h", s=ident(detector), h=lit(HIGH)))
    query = query.where(fill("NOT (:t >= CAST(:re AS TIMESTAMP) AND :t < CAST(:ws AS TIMESTAMP))", t=time,
                             re=lit(reference.end.isoformat(sep=" ")), ws=lit(window.start.isoformat(sep=" "))))
    rows = con.sql(render(query)).to_arrow_table().to_pandas()
    if rows.empty:
        return []
    in_win = rows.pop("in_window").to_numpy(dtype=bool)
    return _densest(rows, in_win, ref_days, win_days)


def _densest(rows, in_win: np.ndarray, ref_days: int, win_days: int) -> list[dict]:
    import pandas as pd

    codes = {c: pd.factorize(rows[c]) for c in rows.columns}  # (codes, values); a missing value is -1
    found = []
    for a, b in combinations(rows.columns, 2):
        (ca, va), (cb, vb) = codes[a], codes[b]
        ok = (ca >= 0) & (cb >= 0)
        key = ca.astype(np.int64) * len(vb) + cb
        size = len(va) * len(vb)
        win = np.bincount(key[ok & in_win], minlength=size)
        ref = np.bincount(key[ok & ~in_win], minlength=size)
        for k in np.flatnonzero(win >= MIN_EVENTS):
            usual = ref[k] / max(ref_days, 1)
            lift = (win[k] / win_days) / max(usual, 0.5 / max(ref_days, 1))
            if lift >= MIN_LIFT:
                found.append((win[k] * np.log(lift), {a: va[k // len(vb)], b: vb[k % len(vb)]}))
    found.sort(key=lambda f: -f[0])
    out, seen = [], []
    for _, values in found:
        members = np.logical_and.reduce([rows[c].to_numpy() == v for c, v in values.items()]) & in_win
        if any((members & s).sum() > 0.5 * members.sum() for s in seen):
            continue
        seen.append(members)
        values = _extend(rows[members], rows[in_win], values)
        shared = np.logical_and.reduce([rows[c].to_numpy() == v for c, v in values.items()])
        count, usual = int((shared & in_win).sum()), float((shared & ~in_win).sum()) / max(ref_days, 1)
        lift = (count / win_days) / max(usual, 0.5 / max(ref_days, 1))
        out.append(_cluster(values, count, usual, lift, win_days))
        if len(out) == CLUSTERS:
            break
    return out


def _extend(members, everyone, values: dict) -> dict:
    """Add the third attribute value at least 80% of the cluster shares and at most 60% of all the window's
    high-score events do (shared and distinctive; the most shared such value)."""
    best = None
    for column in members.columns:
        if column in values:
            continue
        share = members[column].value_counts(normalize=True)
        if not len(share) or share.iloc[0] < 0.8:
            continue
        overall = float((everyone[column] == share.index[0]).mean())
        if overall <= 0.6 and (best is None or share.iloc[0] > best[2]):
            best = (column, share.index[0], share.iloc[0])
    return {**values, best[0]: best[1]} if best else values


def _cluster(values: dict, count: int, usual: float, lift: float, win_days: int) -> dict:
    when = render(exp.and_(*[exp.EQ(this=ident(c), expression=lit(v if v not in ("true", "false") else v == "true"))
                             for c, v in values.items()]))
    text = ", ".join(f"{c} = {v}" for c, v in values.items())
    return {"values": values, "when": when, "events": count, "per_day": round(count / win_days, 3),
            "usual_per_day": round(usual, 3), "lift": round(float(lift), 2),
            "summary": f"{text}: {count:,} events, {lift:,.1f}× the usual rate"}
