"""What labels cannot say yet: an early precision estimate from scores, and clusters of unflagged anomalies.

**Label-free precision (confidence-based performance estimation, as NannyML's CBPE).** A detector's
score is calibrated on the reference (labels known by the window's end): the fraud rate of each of
20 score bins, smoothed towards the reference's overall rate. A window day's estimated precision is
the mean calibrated probability of its flagged events. Where early labels (those already in) say
something else by more than 3 standard errors of their own count, the day is flagged: either the
scores no longer mean what they did, or the flagged traffic changed (an attack the model does not
know). Early labels over-represent fraud when fraud is confirmed faster than good orders are
cleared, so read a gap on the youngest days with the day's label coverage.

**Attack discovery.** The pool is the window's and the reference's events the strategy allows and some
detector scores in its top reference decile (PyOD's anomaly score, and LightGBM's). Attributes are the text
and boolean columns and the numeric columns the detectors read, binned on the reference (drift's bins: the
nine most frequent values, or deciles, a numeric bin reading as a range like "account_age_days < 52"). Every
pair of attribute values is counted per day; its count over the window's last k days (for every k: the
onset is not known) is compared with the reference's count scaled by the pool's volume, with a one-sided
test of two Poisson rates (binomial, given both counts) and a quasi-Poisson dispersion. The `BEAM` most significant pairs are extended by the value that raises the
significance most, up to `MAX_VALUES` values. A group is returned only if it beats the Bonferroni threshold
over every (group, onset) tried at family-wise `ALPHA` = 1% per run, has `MIN_EVENTS` events and at least
`MIN_LIFT` times its usual rate; those listed are ordered by lift (how many times the usual rate), each
with a `when` a rule can use.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sqlglot import exp

from riskconsole.backtest import Groups
from riskconsole.metrics import ALLOW
from riskconsole.sqlbuild import fill, ident, lit, render

BINS = 20
PRIOR = 20.0  # pseudo-events pulling a thin bin's fraud rate towards the overall rate
MIN_LABELLED = 10
MIN_EVENTS = 5  # fewer events than this make no rule worth backtesting, however unusual
MIN_LIFT = 2.0  # and a group must at least double its usual rate (an effect worth a rule, not only a p-value)
ALPHA = 0.01  # chance of any false cluster in one run, over every (group, onset day) tried (Bonferroni)
BEAM = 20  # the most significant pairs extended further
MAX_VALUES = 4
FLOOR = 0.5  # a group never seen in the reference counts as half an event there
CLUSTERS = 5


def _scored(compiled, detector: str):
    return replace(compiled, detectors=list(dict.fromkeys([*compiled.detectors, detector])))


def score_bucket(detector: str) -> exp.Expression:
    """The calibration bin (0 .. BINS-1) of a score in [0, 1]."""
    return fill("least(greatest(CAST(floor(coalesce(:s, 0) * :n) AS INTEGER), 0), :m)",
                s=ident(detector), n=lit(BINS), m=lit(BINS - 1))


def precision_estimate(coded, detector: str, in_ref: np.ndarray, in_win: np.ndarray) -> dict:
    """`estimate` of monitor.json: calibration of `detector` on the reference and each window day's estimate,
    from the monitor's one coded pass (`coded.extra`: `label` known by the window's end, `bucket` of the score)."""
    n = coded.day.size
    g = Groups(coded.day, coded.extra["label"].astype(np.int8), np.zeros((n, 0), bool), np.ones(n), np.zeros(n),
               coded.days)
    action = np.where(coded.allowed, ALLOW, ALLOW + 1)
    b = coded.extra["bucket"]
    ref = in_ref[g.day]
    fraud = np.bincount(b[ref & (g.label == 1)], minlength=BINS).astype(float)
    labelled = np.bincount(b[ref & (g.label >= 0)], minlength=BINS).astype(float)
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


def cluster_columns(frame, dataset, inputs: list[str]) -> list[str]:
    """Attributes a cluster may name: the events' own text and boolean columns, and their numeric columns the
    workspace's detectors read (`inputs`) plus the amount; never the id, time or entity columns, nor computed
    features: a feature aggregates history (velocities, labels maturing), so its joint distribution with the
    other columns moves with time by construction, which `drift` reports; nor the outcome roles (`prod_action`,
    `explore`, `propensity`): they record what production did to the event, which a drafted rule could not read
    once it replaces production."""
    roles = dataset.columns
    skip = {roles.id, roles.time, *roles.entities, *(f.name for f in dataset.features),
            *(c for c in (roles.prod_action, roles.explore, roles.propensity) if c)}
    own = [c for c in frame.visible if c in frame.columns and c not in skip]
    text = [c for c in own if frame.columns[c].split("(")[0] in ("VARCHAR", "BOOLEAN")]
    numeric = [c for c in dict.fromkeys([roles.amount, *inputs]) if c in own and c not in text]
    return text + numeric


def rate_z(window, reference, exposure):
    """How unusual `window` events are against `reference` events when the window's exposure is `exposure` times
    the reference's: the conditional test of two Poisson rates (given the total n, the window's count is
    binomial with p0 = exposure / (1 + exposure)), as the signed root of its likelihood-ratio statistic,
    one-sided (0 unless the window's rate is higher). It carries the reference's own sampling noise: a group
    seen 0 times in the reference is not "infinitely" unusual at 9. It ranks groups; on a few events its
    normal tail is too small (10x at 9 vs 0), so the decision uses `binomial_tail`, exact."""
    w, r = np.asarray(window, float), np.asarray(reference, float)
    n = w + r
    p0 = exposure / (1 + exposure)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 2 * (np.where(w > 0, w * np.log(w / (n * p0)), 0.0) + np.where(r > 0, r * np.log(r / (n * (1 - p0))), 0.0))
    return np.where(w > n * p0, np.sqrt(np.maximum(g, 0.0)), 0.0)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space."""
    from math import lgamma, log

    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    j = np.arange(k, n + 1, dtype=float)
    logs = (lgamma(n + 1) - np.array([lgamma(x + 1) + lgamma(n - x + 1) for x in j]) + j * log(p)
            + (n - j) * log(1 - p))
    top = logs.max()
    return float(min(1.0, np.exp(top) * np.exp(logs - top).sum()))


def poisson_tail(x: int, lam: float, upper: bool) -> float:
    """P(X >= x) (`upper`) or P(X <= x) for X ~ Poisson(lam), summed exactly in log space (scipy's `gammainc`
    and `gammaincc`, without the 0.5 s import of scipy.special). Terms further than 40·√lam + 40 from the mode
    and `x` are left out: each is below e^-800 of the largest summed term (the log-ratio falls as -d²/2·lam)."""
    from math import ceil, floor, lgamma, log, sqrt

    if (upper and x <= 0) or (not upper and lam <= 0 and x >= 0):
        return 1.0
    if lam <= 0 or x < 0:
        return 0.0
    spread = 40 * sqrt(lam) + 40
    lo, hi = (x, floor(max(x, lam) + spread)) if upper else (max(0, ceil(min(x, lam) - spread)), x)
    j = np.arange(lo, hi + 1, dtype=float)
    logs = j * log(lam) - lam - np.array([lgamma(v + 1) for v in j])
    top = logs.max()
    return float(min(1.0, np.exp(top) * np.exp(logs - top).sum()))


def z_threshold(tests: int, alpha: float = ALPHA) -> float:
    """The z a cluster must reach so that, over `tests` (cell, onset day) pairs tried, the chance of any false
    cluster in one run is at most `alpha` (Bonferroni)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / max(tests, 1))


class _Scan:
    """Per-day counts of cells against the reference: for each cell the most significant onset (the window's
    last k days, for every k, as in a prospective space-time scan).

    The usual count of a group over the last k days is its reference count scaled by the pool's volume and by
    how much each of its values grew on its own (a log-linear model with the main effects of the window): a
    column that drifts as a whole is drift, reported there; a group is unusual when its values turn up
    *together* more often than they did, which is what a new attack pattern does."""

    def __init__(self, codes: dict, widths: dict, day: np.ndarray, n_days: int, in_ref: np.ndarray,
                 in_win: np.ndarray) -> None:
        volume = np.bincount(day, minlength=n_days).astype(float)  # the pool's size each day
        self.n_days, self.in_ref = n_days, in_ref
        self.win = np.flatnonzero(in_win)[::-1]  # window days, newest first
        self.growth = np.cumsum(volume[self.win]) / max(volume[in_ref].sum(), 1.0)  # pool, last k days vs reference
        self.ref_share = volume[in_ref] / max(volume[in_ref].sum(), 1.0)  # each reference day's share of it
        self.ratio = {}  # each value's own growth over the pool's, per k
        for column, codes_c in codes.items():
            counts = np.bincount(codes_c * n_days + day, minlength=widths[column] * n_days).reshape(-1, n_days)
            ref = np.maximum(counts[:, in_ref].sum(axis=1), FLOOR)
            own = np.cumsum(counts[:, self.win], axis=1) / ref[:, None]
            # where the pool has no event in the last k days (growth 0) no value grew: 1, not 0/0 (those k have no
            # events to count, so `best` gives them z = 0 either way)
            self.ratio[column] = np.divide(own, self.growth[None, :], out=np.ones_like(own),
                                           where=self.growth[None, :] > 0)

    def best(self, counts: np.ndarray, factor: np.ndarray) -> tuple[np.ndarray, ...]:
        """(z, onset k, window events in it, expected, reference events, dispersion) of each row of counts[cell, day];
        `factor[cell, k]` is the product of the cell's values' own growth.

        Events are not independent (a live stream or a viral post brings many at once), so the Poisson
        statistic is divided by the dispersion of these cells' daily counts over the reference (quasi-Poisson:
        observed squared deviation over expected, pooled over the table's cells and the reference days,
        never below 1)."""
        on_ref = counts[:, self.in_ref]
        ref = on_ref.sum(axis=1)
        usual = ref[:, None] * self.ref_share[None, :]
        dispersion = max(float(((on_ref - usual) ** 2).sum() / max(usual.sum(), 1e-9)), 1.0)
        observed = np.cumsum(counts[:, self.win], axis=1)
        exposure = self.growth[None, :] * factor
        expected = np.maximum(ref, FLOOR)[:, None] * exposure
        z = rate_z(observed, ref[:, None], exposure) / np.sqrt(dispersion)
        z[(observed < MIN_EVENTS) | (observed < MIN_LIFT * expected)] = 0.0
        k = np.argmax(z, axis=1)
        rows = np.arange(counts.shape[0])
        return z[rows, k], k, observed[rows, k], expected[rows, k], ref, dispersion


def clusters(coded, columns: list[str], scores: list[str], in_ref: np.ndarray, in_win: np.ndarray) -> list[dict]:
    """The most significant groups of allowed, high-score events sharing attribute values, against the reference.

    `coded` is drift's one pass (`drift.Coded`): every event's day, bins and decision. An event is high-score when
    one of `scores` puts it in that score's top reference decile.
    """
    binned = {b.column: b for b in coded.bins}
    columns = [c for c in columns if c in binned and any(binned[c].condition(j) for j in range(len(binned[c].labels)))]
    if not columns or not scores:
        return []
    high = np.zeros(coded.day.size, bool)
    for score in scores:
        high |= coded.codes[score] == len(binned[score].labels) - 1
    days = np.flatnonzero(in_ref | in_win)
    pool = coded.allowed & high & np.isin(coded.day, days)
    everyone = {c: coded.codes[c][pool] for c in columns}, coded.day[pool]
    if coded.who is not None:  # one event per (entity, day): a buyer's burst of orders is one observation
        rows = np.flatnonzero(pool)
        order = np.lexsort((coded.day[rows], coded.who[rows]))
        first = np.ones(order.size, bool)
        first[1:] = (np.diff(coded.who[rows][order]) != 0) | (np.diff(coded.day[rows][order]) != 0)
        pool = np.zeros_like(pool)
        pool[np.sort(rows[order[first]])] = True
    day = coded.day[pool]
    codes = {c: coded.codes[c][pool] for c in columns}
    usable = {c: np.array([binned[c].condition(j) is not None for j in range(len(binned[c].labels))]) for c in columns}
    scan = _Scan(codes, {c: len(u) for c, u in usable.items()}, day, len(coded.days), in_ref, in_win)
    found, tests = _pairs(codes, usable, day, scan)
    beam = []
    for z, cells, dispersion in found[:BEAM]:
        members = np.logical_and.reduce([codes[c] == j for c, j in cells])
        beam.append(_extend(members, codes, usable, day, scan, z, cells, dispersion))
        tests += beam[-1][3]
    beam.sort(key=lambda f: -f[0])
    limit = z_threshold(tests)
    out, seen = [], []
    for z, cells, dispersion, _ in beam:
        if z < limit:
            break
        members = np.logical_and.reduce([codes[c] == j for c, j in cells])
        if any((members & s).sum() > 0.5 * members.sum() for s in seen):
            continue
        seen.append(members)
        cluster = _cluster(z, dispersion, cells, binned, members, day, scan, coded.days, tests, limit, everyone)
        if cluster["p_value"] > ALPHA:
            continue
        out.append(cluster)
    # significance decides what is listed; the order is by how many times its usual rate a group runs (the
    # effect a reviewer acts on: a large group drifting to 2x outranks a new pattern at 15x on z alone)
    out.sort(key=lambda c: (-c["lift"], c["group"]))
    return out[:CLUSTERS]


def _pairs(codes: dict, usable: dict, day: np.ndarray, scan: _Scan) -> tuple[list, int]:
    """Every pair of attribute values: (z, cells) sorted by z, and how many (cell, onset) tests that was."""
    n = scan.n_days
    width = max(len(u) for u in usable.values())
    shifted = {c: codes[c] * (width * n) + day for c in codes}  # key = a * width * n + b * n + day
    scaled = {c: codes[c] * n for c in codes}
    found, tests = [], 0
    names = list(codes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            counts = np.bincount(shifted[a] + scaled[b], minlength=width * width * n).reshape(width * width, n)
            ok = usable[a][:, None] & usable[b][None, :]
            ok = np.pad(ok, ((0, width - ok.shape[0]), (0, width - ok.shape[1]))).ravel()
            tests += int(ok.sum()) * len(scan.win)
            factor = scan.ratio[a][:, None, :] * scan.ratio[b][None, :, :]
            factor = np.pad(factor, ((0, width - factor.shape[0]), (0, width - factor.shape[1]), (0, 0)),
                            constant_values=1.0).reshape(width * width, -1)
            z, *_, dispersion = scan.best(counts, factor)
            for cell in np.flatnonzero(ok & (z > 0)):
                found.append((float(z[cell]), ((a, int(cell // width)), (b, int(cell % width))), dispersion))
    found.sort(key=lambda f: -f[0])
    return found, tests


def _extend(members: np.ndarray, codes: dict, usable: dict, day: np.ndarray, scan: _Scan, z: float,
            cells: tuple, dispersion: float) -> tuple[float, tuple, float, int]:
    """Add the attribute value that makes the group most significant, while it does (up to `MAX_VALUES`)."""
    tests = 0
    while len(cells) < MAX_VALUES:
        best = None
        taken = {c for c, _ in cells}
        for column in codes:
            if column in taken:
                continue
            width = len(usable[column])
            sub = codes[column][members] * scan.n_days + day[members]
            counts = np.bincount(sub, minlength=width * scan.n_days).reshape(width, scan.n_days)
            tests += int(usable[column].sum()) * len(scan.win)
            zz, *_, phi = scan.best(counts, _factor(scan, cells)[None, :] * scan.ratio[column])
            zz[~usable[column]] = 0.0
            j = int(np.argmax(zz))
            if zz[j] > z and (best is None or zz[j] > best[0]):
                best = (float(zz[j]), column, j, phi)
        if best is None:
            break
        z, cells, dispersion = best[0], (*cells, (best[1], best[2])), best[3]
        members = members & (codes[best[1]] == best[2])
    return z, cells, dispersion, tests


def _factor(scan: _Scan, cells: tuple) -> np.ndarray:
    return np.prod([scan.ratio[c][j] for c, j in cells], axis=0)


def _cluster(z: float, dispersion: float, cells: tuple, binned: dict, members: np.ndarray, day: np.ndarray, scan: _Scan, days: list,
             tests: int, limit: float, everyone: tuple) -> dict:
    counts = np.bincount(day[members], minlength=scan.n_days)[None, :]
    _, k, observed, expected, ref = (float(v[0]) for v in scan.best(counts, _factor(scan, cells)[None, :])[:5])
    k = int(k)
    since = days[int(scan.win[k])]
    conditions = [binned[c].condition(j) for c, j in cells]
    when = render(exp.and_(*[cond for _, cond in conditions]))
    group = ", ".join(text for text, _ in conditions)
    window_days = len(scan.win)
    all_codes, all_days = everyone
    in_window = np.isin(all_days, scan.win) & np.logical_and.reduce([all_codes[c] == j for c, j in cells])
    events = int(in_window.sum())
    events_since = int((in_window & np.isin(all_days, scan.win[:k + 1])).sum())
    daily_expected = np.zeros(scan.n_days)  # the usual count each window day, at the whole window's factors
    volume = np.bincount(day, minlength=scan.n_days)
    daily_expected[scan.win] = max(ref, FLOOR) * volume[scan.win] / max(volume[scan.in_ref].sum(), 1) * \
        _factor(scan, cells)[-1]
    per_day = observed / (k + 1)
    usual = expected / (k + 1)
    lift = observed / expected
    exposure = expected / max(ref, FLOOR)
    w_eff, r_eff = int(observed / dispersion), int(round(ref / dispersion))  # quasi-Poisson: fewer effective events
    p = min(1.0, binomial_tail(w_eff, w_eff + r_eff, exposure / (1 + exposure)) * tests)
    return {"group": group, "values": {c: text for (c, _), (text, _) in zip(cells, conditions)}, "when": when,
            "events": events, "since": since.isoformat(), "events_since": events_since,
            "entity_days_since": int(observed),
            "expected_since": round(expected, 3), "per_day": round(per_day, 3), "usual_per_day": round(usual, 3),
            "lift": round(lift, 2), "z": round(z, 2), "dispersion": round(dispersion, 3), "z_needed": round(limit, 2), "p_value": float(f"{p:.3g}"),
            "reference_events": int(ref), "window_days": window_days,
            "daily": [{"day": days[d].isoformat(), "entity_days": int(counts[0, d]),
                       "expected": round(float(daily_expected[d]), 3)} for d in sorted(scan.win)],
            "summary": f"{group}: {events_since:,} events since {since.isoformat()}, {lift:,.1f}× the usual rate "
                       f"(p = {p:.2g} after {tests:,} tests)"}
