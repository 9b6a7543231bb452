"""The amounts a day's caught money is a sum of, learned from the reference (docs/monitor.md, "Caught money").

A day's caught money (`fraud_amount_stopped`) is a sum over the day's caught frauds of each one's amount, × the
review catch rate where it was reviewed: a random number of skewed amounts. Its acceptance region
(`monitor_region.money_region`) is that of a compound Poisson sum, whose amounts are drawn from the pool built here:

- the reference's caught frauds (label 1, blocked or reviewed), each at its amount × its catch weight (1 blocked,
  the review catch rate reviewed);
- with fewer than `MIN_POOL` of them, the reference's frauds, caught or not (a catch is a fraud; one the strategy let
  through at its whole amount);
- with fewer frauds than that, the events the strategy flagged there, whatever their label, at their catch weights;
- with fewer of those, every event of the reference at its whole amount.

The amounts are then smoothed in log space (`smoothed`), so that a pool of a few amounts does not say that no catch
can be larger than the largest of them.

Events without an amount (or with 0) add nothing to a sum and are left out of the pool; `per_tp` turns the expected
count of caught frauds into the expected count of caught events with an amount.

The amounts come from one grouped pass over the reference with the amount's bin as the segment (`amount_bin`:
bins 2% wide, each at its events' mean amount, so the pool's mean is exact and a sum's spread is off by < 0.1%).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import sqrt

import numpy as np

from riskconsole.metrics import BLOCK, REVIEW, RuleSet, decide

MIN_POOL = 10  # amounts below which a pool is too small to stand for a catch's (the next, wider pool is taken)
Z99 = 2.3263  # the standard normal's 99% quantile
BINS_PER_E = 50  # amount bins per factor e: each bin 2% wide
NODES = 15  # Gauss-Hermite nodes of the smoothing kernel (to ±4.5 standard deviations)
MISSING = "(missing)"  # the segment of an event without an amount (`groups_query` writes NULL segments so)


@dataclass(frozen=True)
class AmountPool:
    """The amounts a caught event brings, with how many reference events brought each, and where they come from."""

    values: np.ndarray   # money a caught event adds: its amount × its catch weight (1 blocked, catch rate reviewed)
    weights: np.ndarray  # reference events at that value
    caught: float        # the reference's caught frauds with an amount
    source: str          # "caught frauds", "frauds", "flagged events" or "events": what the pool is (`MIN_POOL`)

    def per_tp(self, tp: float) -> float:
        """Caught frauds with an amount per caught fraud (`tp`, the reference's; 1 when none had an amount): what
        turns an expected count of caught frauds into the expected count of the sum's terms."""
        return self.caught / tp if tp > 0 and self.caught > 0 else 1.0


def amount_pool(label: np.ndarray, action: np.ndarray, count: np.ndarray, amount: np.ndarray,
                catch_rate: float) -> AmountPool | None:
    """The pool from groups of reference events that have an amount (each group's events at its mean amount); None
    when no event has one."""
    weight = np.where(action == BLOCK, 1.0, np.where(action == REVIEW, catch_rate, 0.0))
    has = (count > 0) & (amount != 0)  # an event without an amount adds nothing to a sum
    fraud = has & (label == 1)
    caught = fraud & (weight > 0)
    pools = (("caught frauds", caught, weight), ("frauds", fraud, np.where(caught, weight, 1.0)),
             ("flagged events", has & (weight > 0), weight), ("events", has, np.ones_like(weight)))
    source, keep, w = next((p for p in pools if count[p[1]].sum() >= MIN_POOL), pools[-1])
    if not keep.any():
        return None
    values, weights = binned(*smoothed(amount[keep] / count[keep] * w[keep], count[keep].astype(float)))
    return AmountPool(values, weights, float(count[caught].sum()), source)


def binned(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pool gathered into the amount bins of `amount_bin` (2% wide), each at its weighted mean: the same mean,
    at most ~1,500 values whatever the smoothing spread (the sum's FFT and bounds cost grows with them)."""
    key = np.sign(values) * (np.floor(np.log(np.abs(values)) * BINS_PER_E) + 10 ** 6)
    bins, at = np.unique(key, return_inverse=True)
    total = np.bincount(at, weights=weights, minlength=bins.size)
    return np.bincount(at, weights=weights * values, minlength=bins.size) / total, total


def smoothed(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The amounts smoothed in log space (a smoothed bootstrap): each positive amount v becomes v·exp(bz - b²/2),
    z standard normal on `NODES` Gauss-Hermite nodes, so the mean stays exact and the log amounts' spread grows from
    σ (their weighted standard deviation over n amounts) to its upper 99% confidence bound, σ·√(ν / χ²₀.₀₁(ν)),
    ν = n - 1 (Wilson-Hilferty's χ² quantile): b² = σ²(ν / χ²₀.₀₁(ν) - 1). The tail then reaches past the largest
    amount seen as far as n amounts leave open: ×2.1 the spread for 10 caught frauds, ×1.02 for 10,000. Negative
    amounts are kept as they are."""
    from numpy.polynomial.hermite_e import hermegauss

    positive = values > 0
    logs, w = np.log(values[positive]), weights[positive]
    n = float(w.sum())
    if n < 2:
        return values, weights
    sigma2, nu = float(w @ (logs - (w @ logs) / n) ** 2) / n * n / (n - 1), n - 1
    chi2 = nu * max(1 - 2 / (9 * nu) - Z99 * sqrt(2 / (9 * nu)), 0.2) ** 3  # χ² quantile; ≥ 0.008ν below ν = 3
    b = sqrt(sigma2 * (nu / chi2 - 1))
    z, gh = hermegauss(NODES)
    gh = gh / gh.sum()
    factor = np.exp(b * z) / (gh @ np.exp(b * z))  # exp(bz - b²/2), its mean 1 on the nodes themselves
    return (np.concatenate([(values[positive, None] * factor).ravel(), values[~positive]]),
            np.concatenate([(w[:, None] * gh).ravel(), weights[~positive]]))


def amount_bin(column: str):
    """An event's amount bin as a SQL expression (NULL without an amount): floor(50 ln |amount|), positive and
    negative amounts in separate ranges."""
    from riskconsole.sqlbuild import fill, ident

    a = fill("CAST(:a AS DOUBLE)", a=ident(column))
    return fill("CASE WHEN :a > 0 THEN 1000000 + floor(ln(:a) * :k) WHEN :a < 0 THEN -1000000 - floor(ln(-:a) * :k) "
                "END", a=a, k=BINS_PER_E)


def reference_amounts(runner, compiled, frame, dataset, periods, rules: RuleSet,
                      catch_rate: float) -> AmountPool | None:
    """The pool from one grouped pass over the reference (labels known by the window's end), by amount bin, counting
    rows (an entity frame's money rows weigh 0 as decisions but each is a caught amount)."""
    from riskconsole.backtest import Window, run_groups

    if not dataset.columns.amount:
        return None
    reference = Window(periods.reference.start, periods.reference.end, periods.window.end)
    g = run_groups(runner, compiled, replace(frame, weight=None), dataset, reference,
                   amount_bin(dataset.columns.amount))
    keep = g.segment != MISSING
    return amount_pool(g.label[keep], decide(g.hits[keep], rules), g.count[keep], g.amount[keep], catch_rate)
