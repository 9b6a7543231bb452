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


# ------------------------------------------------------------------ console = backtest, with a trained detector


@pytest.fixture(scope="module")
def detector_ws(tmp_path_factory):
    """A small signal workspace with a trained LightGBM detector `lgbm` and a strategy whose rules read its score.

    The detector trains on 2026-01-01..2026-02-10, inside the data (70 days from 2026-01-01): a backtest over
    the whole data must warn that its scores are optimistic there.
    """
    import yaml

    from detector_data import detector_yaml, signal_workspace
    from riskconsole.detectors import train_detector

    root = tmp_path_factory.mktemp("console_detector") / "ws"
    ws = signal_workspace(root, n=1_500, seed=5)
    train_detector(ws, detector_yaml(root, "lgbm", "lightgbm"))
    ws.strategies_dir.mkdir(exist_ok=True)
    (ws.strategies_dir / "scored.yaml").write_text(yaml.safe_dump({
        "name": "scored", "params": {"cut": 0.5, "orders": 3},
        "rules": [{"name": "model_block", "when": "lgbm >= $cut AND amount > 20", "action": "block"},
                  {"name": "model_review", "when": "lgbm >= $cut / 4", "action": "review"},
                  {"name": "burst", "when": "user_orders_1h >= $orders", "action": "review"}]}))
    yield ws
    from riskconsole.ui import common

    common.release_connections()


def _console_and_backtest(ws, overrides: dict) -> tuple[dict, dict]:
    """The report the console pages show (ui/common.evaluate) and the CLI's (run_backtest), same window."""
    from riskconsole.ui import common

    path = ws.strategies_dir / "scored.yaml"
    session = common.current_session(ws)  # the console's shared session
    lo, hi = session.day_range()
    window = session.window(lo.isoformat(), hi.isoformat())  # the sidebar's default window
    console = common.evaluate(session, path, window, overrides)
    backtest = run_backtest(ws, path, window, overrides).report
    return console, backtest


@pytest.mark.parametrize("overrides", [{}, {"cut": 0.4}, {"cut": 0.2, "orders": 2}])  # calibrated scores
def test_console_equals_backtest_with_a_detector(detector_ws, overrides):
    console, backtest = _console_and_backtest(detector_ws, overrides)
    assert backtest["rules"][0]["hits"] > 0 and backtest["overall"]["tp"] > 0  # the score decides something
    assert_same({k: v for k, v in console.items() if k != "warnings"},
                {k: v for k, v in backtest.items() if k != "warnings"}, rel=1e-12)
    assert any("detector 'lgbm' was trained on 2026-01-01..2026-02-10" in w for w in backtest["warnings"])


def test_console_shows_the_backtest_warnings_with_a_detector(detector_ws):
    """Was a strict xfail until the console read its reports through `Session.interactive` (issue 8)."""
    console, backtest = _console_and_backtest(detector_ws, {})
    assert any("detector 'lgbm' was trained on" in w for w in console["warnings"])
    assert console["warnings"] == backtest["warnings"]
