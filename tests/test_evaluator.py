"""The interactive evaluator gives the one-pass backtest's numbers, and re-runs only what a param touches."""

from __future__ import annotations

import pytest

from riskconsole.backtest import make_window
from riskconsole.evaluator import Evaluator
from riskconsole.report import build_report, run_backtest
from riskconsole.strategy import compile_strategy
from conftest import assert_same


@pytest.mark.parametrize("window", [make_window(), make_window("2026-03-02", "2026-03-03", "2026-03-04")])
def test_evaluator_matches_backtest(tiny_ws, window):
    path = tiny_ws.strategies_dir / "tiny.yaml"
    con = tiny_ws.connect_safe()
    for overrides in ({}, {"big": 60}, {"burst": 1, "big": 400}):
        bt = run_backtest(tiny_ws, path, window, overrides, con=con)
        evaluator = Evaluator(con, bt.dataset, bt.frame, window, bt.compiled)
        report = build_report(bt.compiled, evaluator.groups(bt.compiled), bt.dataset, window)
        assert_same(bt.report, report, rel=1e-12)
    con.close()


def test_a_param_move_reruns_only_its_rule(tiny_ws):
    path = tiny_ws.strategies_dir / "tiny.yaml"
    con = tiny_ws.connect_safe()
    bt = run_backtest(tiny_ws, path, con=con)
    evaluator = Evaluator(con, bt.dataset, bt.frame, bt.window, bt.compiled)
    evaluator.groups(bt.compiled)
    cached = len(evaluator._cache)
    moved = compile_strategy(tiny_ws.strategy(path), bt.frame, "tiny", {"big": 77})
    evaluator.groups(moved)
    assert len(evaluator._cache) == cached + 1  # only `big_live` was evaluated again
    con.close()


@pytest.mark.parametrize("rules", [3, 45])  # hashed key, and the sort fallback beyond 40 rules
def test_collapse_keeps_every_sum(rules):
    import numpy as np

    from riskconsole.evaluator import collapse

    rng = np.random.default_rng(rules)
    n = 5_000
    day, label = rng.integers(0, 30, n), rng.choice([-1, 0, 1], n)
    hits, amount = rng.random((n, rules)) < 0.1, rng.gamma(2, 50, n)
    g = collapse(day, label, hits, amount, list(range(30)))
    assert g.count.sum() == n and g.amount.sum() == pytest.approx(amount.sum())
    for r in range(rules):
        for y in (-1, 0, 1):
            sel = hits[:, r] & (label == y)
            assert g.count[g.hits[:, r] & (g.label == y)].sum() == sel.sum()
    per_day = np.bincount(g.day, weights=g.amount, minlength=30)
    assert per_day == pytest.approx(np.bincount(day, weights=amount, minlength=30))
