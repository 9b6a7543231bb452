"""Where a monitored count or rate alerts: the band widened to the exact Poisson or binomial tail (docs/monitor.md).

A day's value alerts when it is outside its band *and* as unlikely as the band's k spreads under an exact Poisson
(counts) or binomial (rates) at the expected value: the band is symmetric, a small count is skewed. Both tests
together accept an interval of values, so the monitor draws that interval, the acceptance region, and a point
outside it is an alert on every face (a count expected 0.3 times a day has a band up to 2.5, but 2 hits are
then an ordinary day: the region reaches 4).

The tails are summed from a pmf built by its ratio of successive terms (no scipy.special import, ~0.5 s), over
the mean ± 40 standard deviations + 40: every term left out is below e^-800 of the largest.
"""

from __future__ import annotations

from math import ceil, erfc, floor, log, sqrt

import numpy as np


def tail_of(k: float) -> float:
    """The normal's one-sided tail beyond k standard deviations (3.2e-5 at 4)."""
    return erfc(k / sqrt(2)) / 2


def _limits(j: np.ndarray, logs: np.ndarray, tail: float) -> tuple[int, int]:
    """(largest j with P(X <= j) < tail, else the first j - 1; smallest j with P(X >= j) < tail, else the last
    j + 1) from log pmf values up to a constant."""
    w = np.exp(logs - logs.max())
    w /= w.sum()
    below, above = np.cumsum(w), np.cumsum(w[::-1])[::-1]
    low, high = np.flatnonzero(below < tail), np.flatnonzero(above < tail)
    return (int(j[low[-1]]) if low.size else int(j[0]) - 1, int(j[high[0]]) if high.size else int(j[-1]) + 1)


def poisson_limits(lam: float, tail: float) -> tuple[int, int]:
    """For X ~ Poisson(lam): (the largest x with P(X <= x) < tail, or -1; the smallest x with P(X >= x) < tail)."""
    if lam <= 0:
        return -1, 1
    spread = 40 * sqrt(lam) + 40
    j = np.arange(max(0, floor(lam - spread)), ceil(lam + spread) + 1, dtype=float)
    return _limits(j, np.concatenate([[0.0], np.cumsum(log(lam) - np.log(j[1:]))]), tail)  # P(j)/P(j-1) = lam/j


def binomial_limits(n: int, p: float, tail: float) -> tuple[int, int]:
    """For X ~ Binomial(n, p), 0 < p < 1: (the largest x with P(X <= x) < tail, or -1; the smallest x with
    P(X >= x) < tail, or n + 1)."""
    spread = 40 * sqrt(n * p * (1 - p)) + 40
    j = np.arange(max(0, floor(n * p - spread)), min(n, ceil(n * p + spread)) + 1, dtype=float)
    steps = np.log((n - j[1:] + 1) / j[1:]) + log(p / (1 - p))  # P(j)/P(j-1) = (n - j + 1)/j · p/(1 - p)
    return _limits(j, np.concatenate([[0.0], np.cumsum(steps)]), tail)


def count_region(lam: np.ndarray, low: np.ndarray, high: np.ndarray, days: np.ndarray,
                 k: float) -> tuple[np.ndarray, np.ndarray]:
    """Each of `days`' band (`low`, `high`) widened to the counts that do not alert under a Poisson at `lam`.

    A count alerts below `low` only if P(X <= x) < tail, above `high` only if P(X >= x) < tail, so the integers
    accepted are those from min(low, x_lo + 1) to max(high, x_hi - 1)."""
    tail = tail_of(k)
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    for i in np.flatnonzero(days):
        x_lo, x_hi = poisson_limits(float(lam[i]), tail)
        low[i], high[i] = np.minimum(low[i], x_lo + 1), np.maximum(high[i], x_hi - 1)  # a NaN band stays NaN
    return low, high


def rate_region(den: np.ndarray, rate: np.ndarray, low: np.ndarray, high: np.ndarray, days: np.ndarray,
                k: float) -> tuple[np.ndarray, np.ndarray]:
    """Each of `days`' band of a rate widened to the rates x/n that do not alert under a Binomial(n, `rate`).

    The edges sit half an event beyond the last accepted count, (x_lo + 0.5)/n and (x_hi - 0.5)/n, so a rate
    computed in floating point is never on the wrong side; a day with no denominator accepts everything."""
    tail = tail_of(k)
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    for i in np.flatnonzero(days):
        n = int(round(float(den[i])))
        if n <= 0:
            low[i], high[i] = 0.0, 1.0
            continue
        x_lo, x_hi = binomial_limits(n, float(rate[i]), tail)
        low[i], high[i] = np.minimum(low[i], (x_lo + 0.5) / n), np.maximum(high[i], (x_hi - 0.5) / n)
    return low, high
