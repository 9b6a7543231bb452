"""Caught money's acceptance region: a compound Poisson sum of the reference's amounts (docs/monitor.md)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from riskconsole.backtest import Groups
from riskconsole.metrics import BLOCK, REVIEW, decide
from riskconsole.monitor import daily_kpis
from riskconsole.monitor_amounts import Z99, amount_pool, smoothed
from riskconsole.monitor_region import compound_limits, compound_pmf, tail_of
from riskconsole.session import Session
from test_monitor import BUSINESS, RULES, _periods, panjer_tails


def test_the_region_is_the_compound_sums_quantiles_by_panjers_recursion():
    """Whole amounts (10, 25, 70, 400) and expected counts from 0.05 to 40: the FFT's edges are the first sum whose
    lower tail reaches `tail` and the last whose upper tail does, by Panjer's recursion on the whole-number grid (no
    Fourier transform). The FFT's grid step here is 0.947 (1/100 of the amounts' root mean square) and each amount
    is split over its two grid neighbours, so the sum is smeared by a few steps: the edges agree within 2 steps
    (measured: at most 1.7, where the exact tail at the edge is within 4% of `tail`)."""
    values, weights = np.array([10.0, 25.0, 70.0, 400.0]), np.array([5.0, 3.0, 1.5, 0.5])
    for lam in (0.05, 0.4, 3.0, 40.0):
        for tail in (tail_of(4), 1e-3):
            low, high = compound_limits(lam, values, weights, tail)
            at, _ = compound_pmf(lam, values, weights, tail)
            cdf, sf = panjer_tails(lam, values, weights, 1.0, int(lam * 400 + 40 * 400))
            first, last = int(np.argmax(cdf >= tail)), int(np.flatnonzero(sf >= tail)[-1])
            step = at[1] - at[0]
            assert step == pytest.approx(0.947, abs=1e-3)
            assert abs(low - first) <= 2 * step and abs(high - last) <= 2 * step, (lam, tail, low, first, high, last)


def test_the_region_holds_a_monte_carlo_of_lognormal_sums():
    """Skewed amounts (500 lognormal draws, σ 1.2) and 400,000 simulated days (seed 7) per expected count: the share
    of days below the low edge and above the high edge is the region's tail, 1e-3 here (the band's 3.2e-5 needs ~10⁸
    days), within 5 standard errors of a binomial share (±0.00025); the normal band mean ± 3.09 spreads is not."""
    rng = np.random.default_rng(7)
    values, weights = rng.lognormal(np.log(100), 1.2, 500), np.ones(500)
    tail = 1e-3
    for lam in (0.4, 5.0, 60.0):
        low, high = compound_limits(lam, values, weights, tail)
        n = rng.poisson(lam, 400_000)
        sums = np.bincount(np.repeat(np.arange(n.size), n), weights=values[rng.integers(0, 500, n.sum())],
                           minlength=n.size)
        slack = 5 * (tail / n.size) ** 0.5
        assert (sums > high).mean() <= tail + slack and (sums >= high * 0.98).mean() >= tail - slack, lam
        if low > 0:
            assert (sums < low).mean() <= tail + slack and (sums <= low * 1.02).mean() >= tail - slack, lam
        normal = lam * values.mean() + 3.09 * (lam * (values ** 2).mean()) ** 0.5
        assert (sums > normal).mean() > 2 * tail, lam  # the normal band's tail is heavier than it says


def test_smoothing_keeps_the_mean_and_widens_the_log_spread_to_its_upper_bound():
    """The smoothed pool's mean is the pool's; its log amounts' variance is σ² ν / χ²₀.₀₁(ν): for 10 amounts the 99%
    bound's χ² quantile is 2.088 (ν = 9; tables), Wilson-Hilferty's 2.07."""
    rng = np.random.default_rng(3)
    values, weights = rng.lognormal(4.0, 0.7, 10), np.ones(10)
    spread, w = smoothed(values, weights)
    assert (spread @ w) / w.sum() == pytest.approx(values.mean(), rel=1e-9)
    logs = np.log(values)
    s2 = logs.var(ddof=1)
    smoothed_var = (np.log(spread) ** 2 @ w) / w.sum() - ((np.log(spread) @ w) / w.sum()) ** 2
    assert smoothed_var == pytest.approx(s2 * 9 / 9 + s2 * (9 / 2.07 - 1), rel=0.02)  # ddof: n σ²/n - the variance
    assert 9 / 2.088 == pytest.approx(9 / 2.07, rel=0.01) and Z99 == pytest.approx(2.3263, abs=1e-4)


def _one_catch_days(ref_catches: int, window_amount: float) -> Groups:
    """28 reference days of 30 orders at 50 each with `ref_catches` blocked frauds of 100, then one window day with
    one blocked fraud of `window_amount`."""
    rows = []
    for d in range(29):
        catch = (d < 28 and d < ref_catches) or d == 28
        rows.append((d, 0, [False, False, False], 30 - catch, 50.0 * (30 - catch)))
        if catch:
            rows.append((d, 1, [True, False, False], 1, window_amount if d == 28 else 100.0))
    return Groups(np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=np.int8),
                  np.array([r[2] for r in rows]), np.array([r[3] for r in rows]), np.array([r[4] for r in rows]),
                  [date(2026, 1, 5) + timedelta(days=i) for i in range(29)])


def test_a_reference_that_caught_nothing_gives_a_region_from_its_events_amounts_not_zero_to_zero():
    """A reference whose strategy caught no fraud had the band [0, 0], so any catch alerted. Its pool is then the
    amounts of what the strategy flagged there, or, when it flagged nothing, of all its events (50 each); its caught
    count is the rule of three's 3/28 a day. One catch of 120 is an ordinary day; a catch of 40,000 (800 ordinary
    orders' worth) is not."""
    for amount, alerts in ((120.0, False), (40_000.0, True)):
        g = _one_catch_days(0, amount)
        action = decide(g.hits, RULES)
        ref = g.day < 28
        pool = amount_pool(g.label[ref], action[ref], g.count[ref], g.amount[ref], BUSINESS.review_catch_rate)
        assert pool.source == "events" and (pool.values @ pool.weights) / pool.weights.sum() == pytest.approx(50)
        rows, state = daily_kpis(g, action, BUSINESS, _periods(g.days[0], 28, 29), RULES, pool)
        cell = rows[-1]["fraud_amount_stopped"]
        assert cell["value"] == amount and cell["alert"] is alerts, cell
        assert cell["expected"][1] > 120
        assert state["table"]["fraud_amount_stopped"]["caught"][28] == pytest.approx(3 / 28)


def test_few_caught_frauds_stand_in_with_all_frauds_then_what_was_flagged_and_weights_follow_the_action():
    """Under `MIN_POOL` (10) amounts a pool gives way to the next: caught frauds, frauds (one let through at its
    whole amount), flagged events (any label), events. A reviewed amount counts × the catch rate (0.9), a blocked one
    whole; `caught` counts the caught frauds with an amount (5 caught frauds of amount 0 are none of the sum's terms:
    25 caught frauds a day are 20 terms)."""
    label, action = np.array([1, 1, 0, 0, 1]), np.array([BLOCK, REVIEW, BLOCK, 0, 0])
    count, amount = np.array([3, 2, 4, 50, 7]), np.array([300.0, 100.0, 80.0, 1000.0, 70.0])
    cases = [(1, "frauds", 5, (3 * 100 + 2 * 50 * 0.9 + 7 * 10) / 12),
             (4, "caught frauds", 20, (12 * 100 + 8 * 50 * 0.9) / 20)]
    for times, source, caught, mean in cases:
        pool = amount_pool(label, action, count * times, amount * times, 0.9)
        assert (pool.source, pool.caught) == (source, caught)
        assert (pool.values @ pool.weights) / pool.weights.sum() == pytest.approx(mean)
    pool = amount_pool(np.array([0, 0]), np.array([BLOCK, 0]), np.array([10, 50]), np.array([800.0, 1000.0]), 0.9)
    assert pool.source == "flagged events" and pool.per_tp(0) == 1.0
    assert (pool.values @ pool.weights) / pool.weights.sum() == pytest.approx(80)
    pool = amount_pool(np.array([0, 0]), np.array([BLOCK, 0]), np.array([2, 5]), np.array([800.0, 100.0]), 0.9)
    assert pool.source == "events" and (pool.values @ pool.weights) / pool.weights.sum() == pytest.approx(900 / 7)
    assert amount_pool(np.array([0]), np.array([0]), np.array([0]), np.array([0.0]), 0.9) is None
    pool = amount_pool(np.array([1, 1]), np.array([BLOCK, BLOCK]), np.array([5, 20]), np.array([0.0, 2000.0]), 0.9)
    assert pool.caught == 20 and pool.per_tp(25) == 0.8 and list(pool.values) == [100.0]  # no amount: not a term


# ------------------------------------------------------------------ end to end, through the grouped pass

FIRST = date(2026, 1, 5)


def _shops(seed: int) -> pd.DataFrame:
    """56 days of a small shop (30 orders a day) and a large one (2,000), 6% fraud, amounts lognormal (fraud:
    median 100, σ 0.8; good: Gamma(2, 40)); `signal` = 1 on 60% of frauds and 2% of good orders, labels known an
    hour later. Small shop, 2026-02-15: one more caught fraud of 1,200 (a fraud in ~1,000 is that large). Large shop:
    2026-02-10 `signal` misses every fraud (caught money collapses), 2026-02-20 every fraud's amount is doubled."""
    rng = np.random.default_rng(seed)
    frames = []
    for shop, volume in (("small", 30), ("large", 2000)):
        for d in range(56):
            day = FIRST + timedelta(days=d)
            n = rng.poisson(volume)
            fraud = rng.random(n) < 0.06
            amount = np.where(fraud, rng.lognormal(np.log(100), 0.8, n), rng.gamma(2.0, 40.0, n))
            signal = (rng.random(n) < np.where(fraud, 0.6, 0.02)).astype(int)
            if shop == "large" and day == date(2026, 2, 10):
                signal[fraud] = 0
            if shop == "large" and day == date(2026, 2, 20):
                amount = np.where(fraud, amount * 2, amount)
            if shop == "small" and day == date(2026, 2, 15):
                fraud, amount, signal = np.append(fraud, True), np.append(amount, 1200.0), np.append(signal, 1)
                n += 1
            ts = pd.Timestamp(day) + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s")
            frames.append(pd.DataFrame({"ts": ts, "is_fraud": fraud.astype(int), "amount": np.round(amount, 2),
                                        "signal": signal, "shop": shop, "user_id": rng.integers(0, 10**6, n),
                                        "device_id": rng.integers(0, 10**6, n)}))
    ev = pd.concat(frames, ignore_index=True)
    ev["event_id"] = [f"e{i}" for i in range(len(ev))]
    ev["label_ts"] = ev["ts"] + pd.Timedelta(hours=1)
    return ev


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    from conftest import BASE_DATASET, write_workspace
    from riskconsole.ingest import load

    strategies = {shop: {"name": shop, "population": f"shop = '{shop}'",
                         "rules": [{"name": "signal", "when": "signal = 1", "action": "block"}]}
                  for shop in ("small", "large")}
    strategies["never"] = {"name": "never", "population": "shop = 'small'",
                           "rules": [{"name": "late", "when": f"signal = 1 AND ts >= '{date(2026, 2, 15)}'",
                                      "action": "block"}]}
    ws = write_workspace(tmp_path_factory.mktemp("shops"), _shops(11), BASE_DATASET, strategies=strategies)
    load(ws)
    return ws


def _money(ws, strategy: str) -> dict[str, dict]:
    with Session(ws) as session:
        result = session.monitor(ws.strategies_dir / f"{strategy}.yaml", start="2026-02-02", end="2026-03-01")
    return {row["day"]: row["fraud_amount_stopped"] for row in result["daily"]}


def test_a_quiet_small_shop_does_not_alert_on_money_and_a_large_shops_shifts_do(shops):
    """The small shop's 28 quiet window days, the one with a catch of 1,200 among them, do not alert on caught money.
    That day is ordinary: under the shop's own process (1.08 caught frauds a day, lognormal amounts) a day's caught
    money is that large on more than 10 × the band's 3.2e-5 of days (Monte Carlo, 400,000 days, seed 5); the normal
    band of main at 07d149f, [0, 951], alerted on it. The large shop's collapsed day (no fraud caught) and doubled day
    alert, below and above; no other of its days does."""
    small = _money(shops, "small")
    assert len(small) == 28 and not any(c["alert"] for c in small.values()), small
    value = small["2026-02-15"]["value"]
    rng = np.random.default_rng(5)
    n = rng.poisson(30 * 0.06 * 0.6, 400_000)
    sums = np.bincount(np.repeat(np.arange(n.size), n), weights=rng.lognormal(np.log(100), 0.8, n.sum()),
                       minlength=n.size)
    assert value >= 1200 and (sums >= value).mean() > 10 * tail_of(4)
    large = _money(shops, "large")
    assert large["2026-02-10"]["alert"] and large["2026-02-10"]["value"] < large["2026-02-10"]["expected"][0]
    assert large["2026-02-20"]["alert"] and large["2026-02-20"]["value"] > large["2026-02-20"]["expected"][1]
    assert [d for d, c in large.items() if c["alert"]] == ["2026-02-10", "2026-02-20"]


def test_a_rule_that_caught_nothing_in_the_reference_is_not_an_alert_on_its_first_ordinary_catch(shops):
    """`never` fires from 2026-02-15 only: its reference caught nothing (the band was [0, 0]). Its region comes from
    the reference's frauds' amounts at the rule-of-three count (3/28 a day), so its first catches, the day with the
    catch of 1,200 among them, do not alert (main at 07d149f alerted on all 10 days with a catch, against [0, 0])."""
    money = _money(shops, "never")
    assert all(c["expected"][1] > 0 for c in money.values())
    caught = {d: c for d, c in money.items() if c["value"]}
    assert caught and not any(c["alert"] for c in caught.values()), caught
