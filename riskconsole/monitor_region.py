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


# ------------------------------------------------------------------ money: a sum of a random number of amounts

GRID_STEPS = 100  # grid steps per root-mean-square amount: the grid moves a sum's quantile by < 1% of its spread
MAX_GRID = 2 ** 20
CHERNOFF = np.logspace(-6, 2.5, 240)  # the θ tried in the Chernoff bounds, × 1 / the largest |amount|


def _log_mgf(theta: np.ndarray, values: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """log E[exp(θ Y)] for each θ, Y taking `values` with log probabilities `logp` (a log-sum-exp)."""
    a = np.outer(theta, values) + logp
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


def compound_span(lam: float, values: np.ndarray, p: np.ndarray, eps: float) -> tuple[float, float]:
    """(lo, hi) with P(S < lo) <= eps and P(S > hi) <= eps, S a sum of N ~ Poisson(lam) draws of Y (`values` with
    probabilities `p`): Chernoff's bounds, P(S >= t) <= exp(-θt + K(θ)) and P(S <= t) <= exp(θt + K(-θ)) for every
    θ > 0, with K(θ) = lam (E[exp(θY)] - 1) the sum's cumulant function; the best θ of a grid (any θ is a bound)."""
    theta = CHERNOFF / max(float(np.abs(values).max()), 1e-300)
    logp = np.log(p)
    with np.errstate(over="ignore"):
        up, down = (lam * np.expm1(_log_mgf(s * theta, values, logp)) for s in (1, -1))
    return float(np.max((log(eps) - down) / theta)), float(np.min((up - log(eps)) / theta))


def compound_pmf(lam: float, values: np.ndarray, weights: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid values, probabilities) of S = Y_1 + … + Y_N, N ~ Poisson(lam), each Y drawn from `values` with
    probabilities ∝ `weights` (a compound Poisson sum), exact but for the grid.

    Each value is split between its two neighbouring grid points so that its mean stays exact (a grid step is at
    most 1/`GRID_STEPS` of the amounts' root mean square); the sum's pmf is exp(lam (φ - 1)) of the amounts' discrete
    Fourier transform φ (numpy's FFT, the pgf of a compound Poisson). The FFT sums modulo its length, so the grid
    covers where S' (the sum on the grid) lies but with probability tail × 1e-6 (Chernoff's bounds, on the gridded
    amounts themselves) and values outside that range are read modulo the length: what wraps is below tail × 1e-6.
    """
    p = np.asarray(weights, dtype=float) / float(np.sum(weights))
    values = np.asarray(values, dtype=float)
    eps = tail * 1e-6
    lo, hi = compound_span(lam, values, p, eps)
    step = max(sqrt(float(p @ values ** 2)) / GRID_STEPS, (hi - lo) / (MAX_GRID / 2), 1e-12)
    x = values / step
    below = np.floor(x)
    grid = np.concatenate([below, below + 1])
    mass = np.concatenate([p * (below + 1 - x), p * (x - below)])
    lo, hi = compound_span(lam, grid[mass > 0] * step, mass[mass > 0], eps)
    first = floor(lo / step) - 1
    size = 1 << max(10, int(ceil(log((hi - lo) / step + 3, 2))))
    pmf = np.bincount((grid.astype(np.int64) % size), weights=mass, minlength=size)
    summed = np.fft.irfft(np.exp(lam * (np.fft.rfft(pmf) - 1.0)), n=size)
    at = np.arange(first, first + size)
    return at * step, np.clip(summed[at % size], 0.0, None)


def compound_limits(lam: float, values: np.ndarray, weights: np.ndarray, tail: float) -> tuple[float, float]:
    """For a compound Poisson sum S (`compound_pmf`): (the smallest s with P(S <= s) >= tail, the largest s with
    P(S >= s) >= tail), so a value below the first or above the second is as unlikely as `tail`."""
    at, prob = compound_pmf(lam, values, weights, tail)
    below, above = np.cumsum(prob), np.cumsum(prob[::-1])[::-1]
    return float(at[np.argmax(below >= tail)]), float(at[len(at) - 1 - np.argmax(above[::-1] >= tail)])


def money_region(lam: np.ndarray, values: np.ndarray, weights: np.ndarray, low: np.ndarray, high: np.ndarray,
                 days: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Each of `days`' band of a sum of amounts widened to the sums that do not alert under a compound Poisson:
    N ~ Poisson(`lam`) events, each an amount drawn from `values` with probabilities ∝ `weights`.

    A day's value alerts below `low` only if P(S <= x) < tail, above `high` only if P(S >= x) < tail (`compound_limits`,
    one computation per distinct expected count: the week has at most 7)."""
    tail = tail_of(k)
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    limits: dict[float, tuple[float, float]] = {}
    for i in np.flatnonzero(days):
        lam_i = float(lam[i])
        if lam_i not in limits:
            limits[lam_i] = compound_limits(lam_i, values, weights, tail)
        s_lo, s_hi = limits[lam_i]
        low[i], high[i] = np.minimum(low[i], s_lo), np.maximum(high[i], s_hi)
    return low, high
