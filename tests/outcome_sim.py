"""Simulated history where the true labels of blocked events are known (for tests/test_outcomes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from riskconsole.outcomes import EXPLORED, LET_THROUGH, PROD_BLOCKED, Outcomes


@dataclass
class History:
    """Events one per group, with the truth production hid."""

    outcomes: Outcomes       # what the backtest sees
    truth: np.ndarray        # int8 true label of every event
    score: np.ndarray        # the risk signal rules read


def simulate(seed: int, days: int = 40, per_day: int = 400, explore: float = 0.02, prod_cut: float = 0.45,
             negative_amounts: bool = False) -> History:
    """Orders with a risk score; production blocks score > prod_cut, lets `explore` of those through at random."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), per_day)
    n = day.size
    burst = rng.gamma(4.0, 0.25, days)[day]  # fraud comes in bursts: days differ
    score = rng.beta(1.2, 4.0, n)
    p_fraud = np.clip(0.02 * burst + 0.6 * score ** 2, 0, 1)
    truth = (rng.random(n) < p_fraud).astype(np.int8)
    amount = np.round(rng.gamma(2.0, 50.0, n) * (1 + truth), 2)
    if negative_amounts:
        amount = np.where(rng.random(n) < 0.05, -amount, amount)
    blocked = score > prod_cut
    explored = blocked & (rng.random(n) < explore)
    cls = np.where(explored, EXPLORED, np.where(blocked, PROD_BLOCKED, LET_THROUGH)).astype(np.int8)
    label = np.where(blocked & ~explored, -1, truth).astype(np.int8)
    hits = np.stack([score > 0.5, score > 0.3, (score > 0.8) & (amount < 60)], axis=1)  # block, review, allow
    weight = np.where(explored, 1 / max(explore, 1e-9), 0.0)
    days_list = [date(2026, 3, 1) + timedelta(days=i) for i in range(days)]
    o = Outcomes(day.astype(np.int64), label, hits, cls, np.ones(n, np.int64), amount, np.maximum(amount, 0),
                 weight, weight * amount, days_list)
    return History(o, truth, score)
