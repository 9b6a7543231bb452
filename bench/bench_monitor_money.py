"""False and true alerts of `monitor`'s caught money (`fraud_amount_stopped`) on simulated orders with skewed amounts.

    python bench/bench_monitor_money.py [--seeds N] [--volumes 30,3000,30000]

Per volume (orders a day, weekends × 1.3) and seed: 28 reference days and 28 window days of single orders, 2% fraud,
amounts lognormal (good: median 55, σ 1.0; fraud: median 100, σ 1.2), rules as tests/test_monitor.py's simulation
(a block rule hitting 50% of frauds and 1% of good orders, a review rule 30% / 3%, an allow rule 5%), every label
known. Quiet run: nothing changes, every money alert is false. Shift run: the same seed with every fraud's amount
halved on window days 3, 11, 19 and doubled on days 7, 15, 23: caught money halves or doubles there, counts do not.
Prints per volume: false money alerts / quiet window days, alerts on halved days / days, on doubled days / days.
Runs on the code on PYTHONPATH (before: main, whose daily_kpis takes no amounts).
"""

from __future__ import annotations

import argparse
import inspect
import time
from datetime import date, datetime, timedelta

import numpy as np

from riskconsole.backtest import Groups, Window
from riskconsole.config import Business
from riskconsole.metrics import RuleSet, decide
from riskconsole.monitor import Periods, daily_kpis

BUSINESS = Business(review_cost=2.0, review_capacity=10_000, review_catch_rate=0.9, good_block_cost=0.3)
RULES = RuleSet(["velocity", "big_ticket", "vip"], ["block", "review", "allow"], [True, True, True])
REF, WINDOW = 28, 28
HALVED, DOUBLED = (3, 11, 19), (7, 15, 23)


def orders(volume: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[date]]:
    """(day, label, hits, amount) of single orders over the reference and the window."""
    rng = np.random.default_rng(seed)
    first = date(2026, 1, 5)
    days = [first + timedelta(days=d) for d in range(REF + WINDOW)]
    per_day = rng.poisson([volume * (1.3 if d.weekday() >= 5 else 1.0) for d in days])
    day = np.repeat(np.arange(len(days)), per_day)
    label = (rng.random(day.size) < 0.02).astype(np.int8)
    fraud = label == 1
    hits = np.column_stack([rng.random(day.size) < np.where(fraud, 0.5, 0.01),
                            rng.random(day.size) < np.where(fraud, 0.3, 0.03), rng.random(day.size) < 0.05])
    amount = np.where(fraud, rng.lognormal(np.log(100), 1.2, day.size), rng.lognormal(np.log(55), 1.0, day.size))
    return day, label, hits, np.round(amount, 2), days


def money_cells(volume: float, seed: int, shift: bool) -> list[tuple[int, bool]]:
    """(window day, money alert) of one run."""
    day, label, hits, amount, days = orders(volume, seed)
    if shift:
        for d, factor in [(REF + d, 0.5) for d in HALVED] + [(REF + d, 2.0) for d in DOUBLED]:
            amount = np.where((day == d) & (label == 1), amount * factor, amount)
    g = Groups(day, label, hits, np.ones(day.size, dtype=np.int64), amount, days)
    start = datetime.combine(days[0], datetime.min.time())
    periods = Periods(Window(start + timedelta(days=REF), start + timedelta(days=REF + WINDOW),
                             start + timedelta(days=REF + WINDOW)), Window(start, start + timedelta(days=REF)))
    action = decide(hits, RULES)
    extra = []
    if "amounts" in inspect.signature(daily_kpis).parameters:  # this session's code: the reference's amounts
        from riskconsole.monitor_amounts import amount_pool

        from riskconsole.monitor_amounts import BINS_PER_E

        ref = day < REF  # grouped as the monitor's pass groups them: by label, decision and amount bin (2% wide)
        keys = np.column_stack([label[ref], action[ref], np.floor(np.log(amount[ref]) * BINS_PER_E)])
        groups, at = np.unique(keys, axis=0, return_inverse=True)
        extra = [amount_pool(groups[:, 0], groups[:, 1], np.bincount(at), np.bincount(at, weights=amount[ref]),
                             BUSINESS.review_catch_rate)]
    rows, _ = daily_kpis(g, action, BUSINESS, periods, RULES, *extra)
    return [((date.fromisoformat(r["day"]) - days[REF]).days, r["fraud_amount_stopped"]["alert"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--volumes", default="30,3000,30000")
    args = parser.parse_args()
    for volume in (float(v) for v in args.volumes.split(",")):
        started, quiet, halved, doubled = time.time(), [], [], []
        for seed in range(args.seeds):
            quiet += [alert for _, alert in money_cells(volume, seed, False)]
            for d, alert in money_cells(volume, seed, True):
                (halved if d in HALVED else doubled if d in DOUBLED else []).append(alert)
        print(f"{volume:g} orders/day, {args.seeds} seeds: false money alerts {sum(quiet)} / {len(quiet)} quiet days "
              f"({sum(quiet) / len(quiet):.2%}); halved caught {sum(halved)} / {len(halved)}, doubled "
              f"{sum(doubled)} / {len(doubled)} ({time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
