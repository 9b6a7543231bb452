"""Monitor a deployed strategy: daily KPIs against a weekday-aware band, alerts, and why they moved (DESIGN §6.1).

Bands: **median/MAD with multiplicative weekday factors, widened to the reference's own tails, plus a sampling
floor.** The 28 reference days are divided by their weekday's factor and one median and one MAD (× 1.4826, the
normal-consistent scale) are taken over all of them together, so the level and the spread come from every
reference day (28 points, not the 4 a per-weekday MAD would see) and a promo day or a short attack inside the
reference moves neither (a mean and a standard deviation would). A weekday's factor is the median of that
weekday's reference values over the median of all days: a ratio's own, but for a count the traffic's (the
events' count per day), because 4 values of a bursty count a weekday are noise, and one burst on a Thursday
made every Thursday's band twice as high on the demo. Each side's spread is at least the reference's 10% tail
on that side over the normal's 1.2816: a count that bursts on more than ~3 of 28 reference days (a viral video's
new buyers tripping a review rule, a rule that blocks a ring every week) has a MAD of ~0, yet such a burst is
routine, not a change; two unusual reference days still move nothing. A seasonal decomposition (statsmodels STL)
needs several periods to separate trend from season and adds a dependency; with four weeks of reference it fits
noise. The band is never narrower than the sampling noise of the day's own volume (binomial for rates, Poisson
for counts), and a day outside it alerts only if its exact binomial (rates) or Poisson (counts) tail at the
expected value is as small as the band's: a small count is skewed, the band is not. What does not alert is one
interval a day, the acceptance region (`monitor_region.py`, `acceptance`): `expected` in monitor.json is that
region and every face draws it, so a point outside the drawn band is an alert and an alert is outside it. The
band is expected ± `BAND_K` spreads; `BAND_K` = 4 keeps the false-alert rate per metric-day under 1% on simulated
data with no change, bursts and late labels included (tests/test_monitor.py).

Caught money is a sum of a random number of skewed amounts: its exact tail is that of a compound Poisson sum, the
day's expected caught frauds drawing amounts from the reference's (`monitor_amounts.py`, `monitor_region.py`).

Labels: precision and recall alert only on mature days; caught money (it counts labelled fraud, so an immature
day's value only grows as labels arrive) alerts there only above its band.

Attribution (why an alert's metric moved) is in `contributions.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np

from riskconsole.backtest import Groups, Window, parse_moment
from riskconsole.config import Business
from riskconsole.errors import RiskConsoleError
from riskconsole.escape import printable
from riskconsole.metrics import RuleSet, decide, parts, rates
from riskconsole.monitor_amounts import AmountPool

BAND_K = 4.0
TAIL, TAIL_Z = 0.9, 1.2816  # a side's spread is at least its 10% tail over the normal's z of that tail
REFERENCE_DAYS = 28
DEFAULT_DAYS = 28
MIN_REFERENCE_DAYS = 7
MATURE = 0.8  # a day's labels are mature enough for precision/recall alerts at 80% of the reference's coverage
METRICS = ("alert_rate", "blocked", "review_cases", "review_load", "fraud_amount_stopped", "precision", "recall",
           "label_coverage")
RATIOS = {"alert_rate": ("flagged", ("population",)), "precision": ("tp", ("tp", "fp")),
          "recall": ("tp", ("tp", "fn")), "label_coverage": (None, ("population",))}
COUNTS = {"blocked": "blocked", "review_cases": "reviews", "review_load": "reviews", "fraud_amount_stopped": "stopped"}
LABELLED = ("precision", "recall")
GROWING = ("fraud_amount_stopped",)  # counts labelled fraud: an immature day's value only grows as labels arrive,
# so there only an excess is known (a shortfall is the labels still to come)
INFORMATIONAL = ("label_coverage",)  # shown with a band, never an alert: it falls on recent days by design
RULE_HITS = "rule_hits:"
METHOD = (f"median/MAD of weekday-adjusted reference days, each side at least its 10% tail, ±{BAND_K:g} spreads, "
          "widened to where an exact Poisson (counts), binomial (rates) or compound Poisson of the reference's amounts "
          "(caught money) tail is as small: outside the band is an alert")


@dataclass(frozen=True)
class Periods:
    """The monitored window and the reference it is compared with (labels known by the window's end)."""

    window: Window
    reference: Window


def span_of(periods: Periods) -> Window:
    """One window holding the reference and the window, for one grouped pass."""
    return Window(periods.reference.start, periods.window.end, periods.window.end)


def _day(moment) -> date:
    return moment.date()


def _whole_day(text: str, *, what: str, end: bool = False) -> datetime:
    """A monitor's bound: a UTC midnight (a day, or a time that is one). A time inside a day is refused: the monitor's
    numbers are per UTC day, and such a bound cut a day between the reference and the window, both counting it."""
    moment = parse_moment(text, end=end, what=what)
    if moment.time() != time():
        written = re.match(r"\s*(\d{4}-\d{2}-\d{2})\s+[A-Za-z]", str(text))  # a zone's day: that day, read in UTC
        day = written.group(1) if written else (moment - timedelta(microseconds=1) if end else moment).date()
        raise RiskConsoleError(f"{what} '{printable(str(text))[:80]}' is {moment:%Y-%m-%d %H:%M:%S} UTC, inside a "
                               f"day: the monitor watches whole UTC days; give a day (e.g. {what} {day})")
    return moment


def parse_periods(first: date, last: date, start: str | None, end: str | None, reference: str | None) -> Periods:
    """The window (default: the last 28 days of data) and the reference (default: the 28 days before it), whole UTC
    days.

    Raises:
        RiskConsoleError: a reference that overlaps the window, falls outside the data, or is malformed; a bound
            inside a day.
    """
    to = _whole_day(end, end=True, what="--to") if end else parse_moment(last.isoformat(), end=True)
    if start:
        frm = _whole_day(start, what="--from")
    else:
        frm = max(to - timedelta(days=DEFAULT_DAYS), parse_moment(first.isoformat()) + timedelta(days=REFERENCE_DAYS))
    if frm >= to:
        raise RiskConsoleError(f"--from {_day(frm)} is not before --to {_day(to - timedelta(days=1))}: the window "
                               "is empty (the window's start, --from, must come before its end, --to)")
    if reference:
        lo_text, sep, hi_text = reference.partition(":")
        if not sep or not lo_text or not hi_text:
            raise RiskConsoleError(f"--reference {reference}: write FIRST:LAST days, e.g. --reference "
                                   f"{_day(frm) - timedelta(days=28)}:{_day(frm) - timedelta(days=1)}")
        ref = Window(_whole_day(lo_text, what="--reference"), _whole_day(hi_text, end=True, what="--reference"))
    else:
        ref = Window(frm - timedelta(days=REFERENCE_DAYS), frm)
    fix = f"{_day(frm) - timedelta(days=REFERENCE_DAYS)}:{_day(frm) - timedelta(days=1)}"
    if ref.start >= ref.end:
        raise RiskConsoleError(f"--reference {reference}: its first day is after its last (e.g. --reference {fix})")
    if ref.start < to and frm < ref.end:
        raise RiskConsoleError(f"--reference {_day(ref.start)}:{_day(ref.end - timedelta(days=1))} overlaps the "
                               f"window {_day(frm)}..{_day(to - timedelta(days=1))}: end the reference before "
                               f"--from (e.g. --reference {fix})")
    if ref.start >= to:
        raise RiskConsoleError(f"--reference {_day(ref.start)}:{_day(ref.end - timedelta(days=1))} comes after the "
                               f"window: the reference is the normal to compare with, before --from (e.g. {fix})")
    return Periods(Window(frm, to, to), ref)


def check_reference(periods: Periods, first: date, last: date, ref_days_with_events: int) -> None:
    """Enough reference days with events to learn a band from.

    Raises:
        RiskConsoleError: the reference holds no or too few days with events.
    """
    if ref_days_with_events >= MIN_REFERENCE_DAYS:
        return
    ref = periods.reference
    text = f"{_day(ref.start)}:{_day(ref.end - timedelta(days=1))}"
    what = "no events" if ref_days_with_events == 0 else f"only {ref_days_with_events} days with events"
    raise RiskConsoleError(f"reference {text} holds {what} (the data spans {first}..{last}): give --reference "
                           f"FIRST:LAST with at least {MIN_REFERENCE_DAYS} days of data before --from, or a later "
                           "--from")


def check_rules(compiled, label: str) -> None:
    """A strategy with nothing that can flag an event has nothing to monitor.

    Raises:
        RiskConsoleError: no enabled block or review rule.
    """
    if not any(r.enabled and r.action in ("block", "review") for r in compiled.rules):
        raise RiskConsoleError(f"{label}: no enabled block or review rule, so nothing is flagged and there is "
                               "nothing to monitor (add a rule with `when:` and `action: block` or `review`)")


# ------------------------------------------------------------------ daily KPIs and bands

def monitor_parts(g: Groups, action: np.ndarray, business: Business, rules: RuleSet) -> dict[str, np.ndarray]:
    """`metrics.parts` of each group, plus each enabled rule's hits (`rule_hits:NAME`: condition true, whatever
    the decision)."""
    p = parts(action, g.label, g.count, g.amount, business.review_catch_rate)
    for i, name in enumerate(rules.names):
        if rules.enabled[i] and rules.actions[i] in ("block", "review"):
            p[RULE_HITS + name] = g.count * g.hits[:, i]
    return p


def day_sums(g: Groups, action: np.ndarray, business: Business, rules: RuleSet) -> dict:
    """Per-day sums of every additive part."""
    p = monitor_parts(g, action, business, rules)
    return {k: np.bincount(g.day, weights=v, minlength=len(g.days)) for k, v in p.items()}


def kpis(sums: dict, business: Business) -> dict[str, np.ndarray]:
    """Every monitored metric from summed parts (days as arrays, or one period as scalars)."""
    r = rates(sums, business)
    capacity = business.review_capacity or np.nan
    return {"alert_rate": r["alert_rate"], "blocked": np.asarray(sums["blocked"], dtype=float),
            "review_cases": r["review_cases"], "review_load": r["review_cases"] / capacity,
            "fraud_amount_stopped": r["fraud_amount_stopped"], "precision": r["precision"], "recall": r["recall"],
            "label_coverage": r["label_coverage"],
            **{k: np.asarray(v, dtype=float) for k, v in sums.items() if k.startswith(RULE_HITS)}}


def denominator(metric: str, sums: dict) -> np.ndarray | None:
    """A ratio metric's denominator from summed parts (None for count metrics)."""
    if metric in RATIOS:
        return sum(np.asarray(sums[k], dtype=float) for k in RATIOS[metric][1])
    return None


def weekday_factors(values: np.ndarray, weekdays: np.ndarray) -> np.ndarray:
    """Each weekday's median over the median of all days (1 where a weekday has fewer than 2 values or a zero
    median)."""
    factor = np.ones(7)
    overall = np.median(values) if values.size else 0.0
    if overall > 0:
        for w in range(7):
            on = values[weekdays == w]
            if on.size >= 2 and np.median(on) > 0:
                factor[w] = np.median(on) / overall
    return factor


def band(ref_values: np.ndarray, ref_weekdays: np.ndarray, weekdays: np.ndarray,
         noise: np.ndarray | None = None, k: float = BAND_K,
         factor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected, low, high) for days of given weekdays from the reference days' values.

    Median/MAD over weekday-adjusted reference values, each side's spread widened to the reference's own 10%
    tail on that side (see the module docstring); `factor` (7 weekday factors) defaults to the values' own;
    `noise` is each day's own sampling standard deviation per unit of level, a floor under the spread.
    """
    ok = np.isfinite(ref_values)
    values, wd = ref_values[ok], ref_weekdays[ok]
    if values.size == 0:
        nan = np.full(weekdays.shape, np.nan)
        return nan, nan, nan
    factor = weekday_factors(values, wd) if factor is None else factor
    adjusted = values / factor[wd]
    center = np.median(adjusted)
    deviation = adjusted - center
    mad = 1.4826 * np.median(np.abs(deviation))
    above = max(mad, np.quantile(deviation, TAIL) / TAIL_Z)
    below = max(mad, -np.quantile(deviation, 1 - TAIL) / TAIL_Z)
    expected = center * factor[weekdays]
    floor = 0.0 if noise is None else np.nan_to_num(noise)
    return (expected, expected - k * np.maximum(below * factor[weekdays], floor),
            expected + k * np.maximum(above * factor[weekdays], floor))


def sampling_noise(metric: str, expected: np.ndarray, den: np.ndarray | None, mean_amount: float,
                   level: float = 0.0) -> np.ndarray:
    """The standard deviation a day's value has from its own volume alone (binomial or Poisson).

    `level` is the reference's mean (at least 3 / reference days for counts, the rule of three): a
    median of a sparse count is 0, but its noise is not.
    """
    e = np.maximum(np.clip(np.nan_to_num(expected), 0, None), level)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in RATIOS:
            p = np.clip(e, 0, 1)
            return np.sqrt(p * (1 - p) / np.where(den > 0, den, np.nan))
        if metric == "fraud_amount_stopped":
            return np.sqrt(e * max(mean_amount, 0.0))  # compound Poisson: var = rate × E[amount²] ≈ level × mean
        if metric == "review_load":
            return np.zeros_like(e)  # review_cases carries the count's noise; load is the same count scaled
        return np.sqrt(e)


def daily_kpis(g: Groups, action: np.ndarray, business: Business, periods: Periods, rules: RuleSet,
               amounts: AmountPool | None) -> tuple[list[dict], dict]:
    """`daily` of monitor.json (window days only) and the per-day arrays behind it; `amounts` are what a caught
    event brings (`monitor_amounts.reference_amounts`; None: the data has no amount, caught money is 0)."""
    sums = day_sums(g, action, business, rules)
    values = kpis(sums, business)
    days = np.array(g.days, dtype="datetime64[D]")
    weekday = ((days.astype(np.int64) + 3) % 7).astype(np.int64)  # 0 = Monday (1970-01-01 was a Thursday)
    in_ref = _in(days, periods.reference)
    in_win = _in(days, periods.window) & (sums["population"] > 0)
    mature = values["label_coverage"] >= MATURE * np.nanmedian(values["label_coverage"][in_ref])
    mean_amount = float(sums["stopped"][in_ref].sum() / max(sums["tp"][in_ref].sum(), 1))
    table = {}
    n_ref = max(int(in_ref.sum()), 1)
    volume = weekday_factors(sums["population"][in_ref], weekday[in_ref])
    for metric in values:
        v = values[metric]
        den = denominator(metric, sums)
        factor = None if metric in RATIOS else volume  # a count follows the traffic's week
        center, _, _ = band(v[in_ref], weekday[in_ref], weekday, factor=factor)
        level = _level(metric, sums, in_ref, n_ref)
        noise = sampling_noise(metric, center, den, mean_amount, level)
        if metric == "review_load" and business.review_capacity:
            noise = sampling_noise("review_cases", center * business.review_capacity, None, 0,
                                   _level("review_cases", sums, in_ref, n_ref)) / business.review_capacity
        expected, low, high = band(v[in_ref], weekday[in_ref], weekday, noise, factor=factor)
        if metric in RATIOS:
            low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
        money = (caught_count(sums, weekday, in_ref, volume) * amounts.per_tp(sums["tp"][in_ref].sum()), amounts) \
            if metric == "fraud_amount_stopped" and amounts is not None else None
        accept_low, accept_high = acceptance(metric, Band(expected, low, high, level), sums, in_ref, in_win, mature,
                                             business.review_capacity, money)
        alert = in_win & np.isfinite(v) & ((v < accept_low) | (v > accept_high))
        table[metric] = {"value": v, "expected": expected, "low": low, "high": high, "alert": alert, "level": level,
                         "accept_low": accept_low, "accept_high": accept_high,
                         **({"caught": money[0]} if money else {})}  # caught money: each day's expected caught events
    rows = []
    for i in np.flatnonzero(in_win):
        row = {"day": g.days[i].isoformat()}
        for metric in values:
            t = table[metric]
            row[metric] = {"value": json_number(t["value"][i]),  # the acceptance region: outside it is an alert
                           "expected": [json_number(max(t["accept_low"][i], 0.0)), json_number(t["accept_high"][i])],
                           "alert": bool(t["alert"][i])}
            if metric in LABELLED or metric in GROWING:
                row[metric]["mature"] = bool(mature[i])
        rows.append(row)
    return rows, {"sums": sums, "table": table, "in_ref": in_ref, "in_win": in_win, "weekday": weekday}


def silent_days(days: list[date], population: np.ndarray, in_ref: np.ndarray, periods: Periods) -> list[str]:
    """A warning naming the window's days without an event where the reference had some: those days have no row
    in `daily`, so nothing on them can alert, while no orders at all is the largest change there is (an outage of
    the shop, or of the export)."""
    window = _in(np.array(days, dtype="datetime64[D]"), periods.window)
    silent = [d.isoformat() for d, w, n in zip(days, window, population) if w and n == 0]
    usual = float(population[in_ref].sum()) / max(int(in_ref.sum()), 1)
    if not silent or usual == 0:
        return []
    shown = ", ".join(silent[:5]) + (f" and {len(silent) - 5} more" if len(silent) > 5 else "")
    return [f"no events on {len(silent)} day{'s' * (len(silent) > 1)} of the window ({shown}), where the reference "
            f"averages {usual:,.0f} a day: a gap in the data (an outage of the shop or of its export?); those days "
            "have no row, so nothing on them alerts"]


def alerting_cells(state: dict) -> list[tuple[int, str]]:
    """(day index, metric) of every alert, in day order."""
    return sorted((int(i), m) for m in state["table"] for i in np.flatnonzero(state["table"][m]["alert"]))


def alert_rows(alerting: list[tuple[int, str]], entries: list[dict], daily: list[dict]) -> list[dict]:
    """`alerts` of monitor.json: each alerting metric-day with its band and its attribution's top segments."""
    from riskconsole.contributions import top_segments

    rows = {r["day"]: r for r in daily}
    return [{"day": entry["day"], "metric": metric, "value": rows[entry["day"]][metric]["value"],
             "expected": rows[entry["day"]][metric]["expected"], "top": top_segments(entry)}
            for (_, metric), entry in zip(alerting, entries)]


@dataclass(frozen=True)
class Band:
    """A metric's band per day: the expected value, the edges ± `BAND_K` spreads, and the reference's level (the
    floor of a count's expected value in its exact tail)."""

    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float


def acceptance(metric: str, b: Band, sums: dict, in_ref: np.ndarray, in_win: np.ndarray,
               mature: np.ndarray, capacity: float | None = None,
               money: tuple[np.ndarray, AmountPool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each day's acceptance region (low, high): the values that do not alert, which every face draws as the band.

    The band, widened where the exact tail at the expected value is not as small as the band's (a count: Poisson
    at the expected count, at least the reference's level; a rate: binomial at the expected rate, kept half an
    event of the reference's pooled denominator inside (0, 1), a Jeffreys-style pad: 400 of 400 flagged reference
    events right give 0.99875, so 14 right of 15 is no alert); then what is held back: a labelled metric on an
    immature day accepts anything, caught money there anything up to its band's top, review load anything up to
    its band's top or up to capacity, label coverage anything. Review load is review cases over `capacity`, with
    the count's level as `b.level`: its top is the count's (exact Poisson) top over capacity, so a count that is
    an ordinary day for review_cases is one for review_load too (2 reviews against a band ending at 1.31). Caught
    money, with `money` = (each day's expected caught events, the amounts one brings): the band widened to the
    exact compound Poisson region of that sum (`monitor_region.money_region`)."""
    from riskconsole.monitor_region import count_region, money_region, rate_region

    low, high = b.low, b.high
    if metric == "review_load" and capacity:  # the review count's region, over capacity
        low, high = (e / capacity for e in count_region(np.maximum(np.nan_to_num(b.expected) * capacity, b.level),
                                                        low * capacity, high * capacity, in_win, BAND_K))
    elif metric in ("blocked", "review_cases") or metric.startswith(RULE_HITS):
        low, high = count_region(np.maximum(np.nan_to_num(b.expected), b.level), low, high, in_win, BAND_K)
    elif money is not None:
        lam, pool = money
        low, high = money_region(lam, pool.values, pool.weights, low, high, in_win, BAND_K)
    elif metric in RATIOS and RATIOS[metric][0]:
        den = denominator(metric, sums)
        pad = 0.5 / (float(den[in_ref].sum()) + 1)
        low, high = rate_region(den, np.clip(np.nan_to_num(b.expected), pad, 1 - pad), low, high, in_win, BAND_K)
    anything = np.full(np.shape(low), np.inf)
    if metric in LABELLED:
        low, high = np.where(mature, low, -anything), np.where(mature, high, anything)
    if metric in GROWING:
        low = np.where(mature, low, -anything)
    if metric == "review_load":
        low, high = -anything, np.maximum(high, 1.0)  # above its band and over capacity: what the team cannot absorb
    if metric in INFORMATIONAL:
        low, high = -anything, anything
    if metric in RATIOS:
        low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
    return low, high


def caught_count(sums: dict, weekday: np.ndarray, in_ref: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Each day's expected caught frauds (`tp`): the median of the weekday-adjusted reference days × the day's
    traffic factor, at least the reference's mean (at least 3 / reference days, as a count's level)."""
    expected, _, _ = band(sums["tp"][in_ref], weekday[in_ref], weekday, factor=volume)
    return np.maximum(np.nan_to_num(expected), _level("tp", sums, in_ref, max(int(in_ref.sum()), 1)))


def _level(metric: str, sums: dict, in_ref: np.ndarray, n_ref: int) -> float:
    """The reference's pooled level of a metric (floor of the sampling noise)."""
    if metric in RATIOS:
        num, den = RATIOS[metric]
        d = sum(sums[k][in_ref].sum() for k in den)
        return float(sums[num][in_ref].sum() / d) if num and d else 0.0
    key = COUNTS.get(metric, metric)
    if key not in sums:
        return 0.0
    return max(float(sums[key][in_ref].sum()) / n_ref, 3.0 / n_ref)


def _in(days: np.ndarray, w: Window) -> np.ndarray:
    lo = np.datetime64(w.start.date(), "D")
    hi = np.datetime64((w.end - timedelta(microseconds=1)).date(), "D")
    return (days >= lo) & (days <= hi)


def json_number(value) -> float | None:
    """A finite number rounded for monitor.json, or None."""
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


# ------------------------------------------------------------------ the one core call

def build(con, compiled, frame, dataset, periods: Periods, by: list[str], label: str,
          detectors: dict | None = None, runner=None) -> dict:
    """monitor.json: daily KPIs with bands, alerts, attribution by `--by` columns and by rule, drift.

    The passes over events (the grouped KPI and segment passes, drift's bins and codes) run on `runner` (the
    DuckDB cursor `con`, or another engine, `backtest.run_query`), and so do the `--by COLUMN:N` quantile edges."""
    runner = con if runner is None else runner
    from riskconsole.backtest import run_groups
    from riskconsole.contributions import attribution, deciding_rule
    from riskconsole.backtest import action_case, known_label
    from riskconsole.discovery import cluster_columns, clusters, precision_estimate, score_bucket
    from riskconsole.monitor_amounts import reference_amounts
    from riskconsole.monitor_incidents import elevated, incidents
    from riskconsole.drift import coded, drift, drift_columns
    from riskconsole.sqlbuild import fill
    from riskconsole.overview import day_range
    from riskconsole.segments import parse_by, segment_expression

    first, last = day_range(con, dataset)
    check_rules(compiled, label)
    by_columns = [parse_by(spec, frame, dataset)[0] for spec in by]  # each exists (a did-you-mean otherwise)
    rules = RuleSet.of(compiled)
    g = run_groups(runner, compiled, frame, dataset, span_of(periods))
    ref_days = np.unique(g.day[_in(np.array(g.days, dtype="datetime64[D]"), periods.reference)[g.day]])
    check_reference(periods, first, last, len(ref_days))
    action = decide(g.hits, rules)
    amounts = reference_amounts(runner, compiled, frame, dataset, periods, rules, dataset.business.review_catch_rate)
    daily, state = daily_kpis(g, action, business := dataset.business, periods, rules, amounts)
    alerting = alerting_cells(state)
    views = [("rule", g, deciding_rule(g, action, rules))]
    if alerting:
        for spec in by:
            seg = run_groups(runner, compiled, frame, dataset, span_of(periods),
                             segment_expression(runner, spec, compiled, frame, dataset, span_of(periods)))
            views.insert(len(views) - 1, (spec, seg, seg.segment))
    entries = attribution(alerting, views, lambda x: decide(x.hits, rules), business, rules, state["in_ref"])
    alerts = alert_rows(alerting, entries, daily)
    drift_cols, kinds = drift_columns(compiled, frame, dataset, by_columns)
    detectors = detectors or {}
    scored = [d for d in fresh_scores(frame) if d in (detectors.get("anomaly"), detectors.get("supervised"))]
    cluster_cols = cluster_columns(frame, dataset, detectors.get("inputs", []))
    supervised = detectors.get("supervised") if detectors.get("supervised") in scored else None
    extra = {"label": known_label(dataset, span_of(periods)), "bucket": score_bucket(supervised)} if supervised else {}
    coded_rows = coded(runner, compiled, frame, dataset, span_of(periods), periods.reference, g.days,
                       list(dict.fromkeys([*drift_cols, *cluster_cols, *scored])),
                       fill(":a = 'allow'", a=action_case(compiled)),
                       dataset.columns.entities[0] if dataset.columns.entities else None,
                       int(g.count[state["in_ref"][g.day]].sum()), extra)
    return {"strategy": compiled.name, "window": _period(periods.window), "reference": _period(periods.reference),
            "labels_known_by": _day(periods.window.end - timedelta(microseconds=1)).isoformat(),
            "by": list(by), "method": {"band": METHOD, "band_k": BAND_K},
            "daily": daily, "alerts": alerts, "incidents": incidents(alerts, entries, elevated(state["table"], g.days, state["in_win"]),
                                                   daily[-1]["day"] if daily else None), "attribution": entries,
            "drift": drift(coded_rows, drift_cols, kinds, periods.reference, periods.window),
            "estimate": (precision_estimate(coded_rows, supervised, state["in_ref"], state["in_win"])
                         if supervised else None),
            "clusters": clusters(coded_rows, cluster_cols, scored, state["in_ref"], state["in_win"]),
            "warnings": silent_days(g.days, state["sums"]["population"], state["in_ref"], periods)}


def fresh_scores(frame) -> list[str]:
    """Detector scores the frame holds and that are not stale."""
    return [d for d in frame.scores if d not in frame.stale and d not in frame.columns]


def _period(w: Window) -> dict:
    return {"from": _day(w.start).isoformat(), "to": _day(w.end - timedelta(microseconds=1)).isoformat()}


def incident_row(incident: dict) -> dict:
    """One incident as a flat row (incidents.csv, and the tables of monitor.html/md and the Monitor page)."""
    return {"incident": incident["id"], "first_day": incident["first_day"], "last_day": incident["last_day"],
            "ongoing": incident["ongoing"], "days": incident["days"], "alerts": incident["alerts"], "rules": "; ".join(incident["rules"]),
            "top": "; ".join(incident["top"]), "metrics": "; ".join(m["metric"] for m in incident["metrics"]),
            "lead": incident["lead"], "size": incident["size"]}


def monitor_files(result: dict, formats: list[str]) -> dict[str, bytes]:
    """File name -> bytes: monitor.json always; csv tables, html and md as asked (CLI and console write these)."""
    from riskconsole.export import json_bytes, page_files, table_csv_bytes

    files = {"monitor.json": json_bytes(result)}
    if "csv" in formats:
        files["monitor_daily.csv"] = table_csv_bytes(result["daily"])
        files["alerts.csv"] = table_csv_bytes([{**{k: v for k, v in a.items() if k != "expected"}, "low": a["expected"][0],
                                                "high": a["expected"][1], "top": "; ".join(a["top"])}
                                               for a in result["alerts"]])
        files["incidents.csv"] = table_csv_bytes([incident_row(i) for i in result.get("incidents", [])])
        files["attribution.csv"] = table_csv_bytes([{"day": e["day"], "metric": e["metric"], "change": e["change"], **c}
                                                    for e in result["attribution"] for c in e["contributions"]])
        files["drift.csv"] = table_csv_bytes([{k: v for k, v in d.items() if k not in ("bins", "daily")}
                                              for d in result.get("drift", [])])
    files.update(page_files(formats, "monitor", result, "monitor_html", "monitor_markdown"))
    return files
