"""Sweeps and the optimizer: one-pass and sorted-score answers equal a brute-force re-run per setting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from riskconsole.backtest import make_window
from riskconsole.cli import main
from riskconsole.detectors.training import stamp_scores
from riskconsole.errors import RiskConsoleError
from riskconsole.report import run_backtest
from riskconsole.sweep import optimize, sweep

KEYS = ("tp", "fp", "fn", "review_cases", "flagged", "review_overflow_days", "max_daily_reviews")


@pytest.fixture
def scored(tiny_ws):
    """The tiny workspace with a detector score table (`risk`), and a strategy thresholding it."""
    con = tiny_ws.connect()
    rng = np.random.default_rng(4)
    n = con.execute("SELECT count(*) FROM frame").fetchall()[0][0]
    scores = np.round(rng.random(n), 3)  # rounded: many ties at each threshold
    scores[::17] = np.nan                # and some events without a score
    con.execute("CREATE TABLE scores_risk AS SELECT unnest(range(1, ?::BIGINT + 1)) AS _pos, "
                "unnest(?::DOUBLE[]) AS risk", [n, [None if np.isnan(s) else float(s) for s in scores]])
    stamp_scores(con, "risk")  # computed for the loaded events: strategies may join it
    con.close()
    strategy = {"name": "scored", "params": {"cut": 0.8, "big": 150},
                "rules": [{"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
                          {"name": "model", "when": "risk >= $cut AND amount > 20", "action": "block"},
                          {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"},
                          {"name": "device", "when": "device_users_1d >= 3", "action": "review"}]}
    path = tiny_ws.strategies_dir / "scored.yaml"
    path.write_text(yaml.safe_dump(strategy))
    return tiny_ws, path


def _brute(ws, path, overrides, window=None):
    return run_backtest(ws, path, window, overrides).report["overall"]


@pytest.mark.parametrize("values", [
    [0.0, 0.1, 0.25, 0.5, 0.8, 0.8005, 0.95, 1.0, 1.5],          # uneven: intervals by a range join
    [round(0.05 * i, 2) for i in range(21)],                     # even: arithmetic buckets, scores on the edges
    [0.9, 0.3, 0.6],                                              # unsorted and even
])
def test_score_sweep_uses_sorted_scores_and_equals_brute_force(scored, values):
    ws, path = scored
    window = make_window("2026-03-02", "2026-03-05", "2026-03-05")
    result = sweep(ws, path, "cut", values, window)
    assert result["method"] == "sorted-scores"
    for point in result["points"]:
        expected = _brute(ws, path, {"cut": point["value"]}, window)
        for key in KEYS:
            assert point[key] == expected[key], (point["value"], key)
        for key in ("precision", "recall", "net_benefit", "amount_recall", "good_amount_blocked"):
            assert point[key] == pytest.approx(expected[key]), (point["value"], key)


def test_strict_threshold_and_review_action(scored):
    ws, path = scored
    body = yaml.safe_load(path.read_text())
    body["rules"][1] = {"name": "model", "when": "risk > $cut", "action": "review"}
    path.write_text(yaml.safe_dump(body))
    result = sweep(ws, path, "cut", [0.2, 0.5, 0.9], make_window())
    assert result["method"] == "sorted-scores"
    for point in result["points"]:
        expected = _brute(ws, path, {"cut": point["value"]})
        assert [point[k] for k in KEYS] == [expected[k] for k in KEYS]


def test_optimizer_equals_brute_force_on_a_small_grid(scored):
    ws, path = scored
    result = optimize(ws, path, {"big": "50:250:100", "cut": "0.3,0.6,0.9"}, make_window(), max_overflow_days=5)
    assert result["method"] == "grid" and len(result["points"]) == 9
    brute = []
    for big, cut in itertools.product([50, 150, 250], [0.3, 0.6, 0.9]):
        o = _brute(ws, path, {"big": big, "cut": cut})
        brute.append({"big": big, "cut": cut, **o})
        point = next(p for p in result["points"] if p["big"] == big and p["cut"] == cut)
        assert [point[k] for k in KEYS] == [o[k] for k in KEYS]
    feasible = [p for p in brute if p["review_overflow_days"] <= 5]
    if feasible:
        best = max(feasible, key=lambda p: p["net_benefit"])
        assert (result["best"]["big"], result["best"]["cut"]) == (best["big"], best["cut"])
    frontier = result["frontier"]
    for p in result["points"]:  # nothing on the frontier is beaten on both axes
        assert not any(q["net_benefit"] > p["net_benefit"] and q["review_cases"] < p["review_cases"]
                       for q in result["points"]) or p not in frontier


def test_capacity_no_setting_can_meet(scored, capsys):
    ws, path = scored
    result = optimize(ws, path, {"cut": "0.5,0.9"}, make_window(), max_overflow_days=0)
    assert not result["feasible"] and result["closest"] is not None
    code = main(["optimize", str(path), "--param", "cut", "--values", "0.5,0.9", "--workspace", str(ws.root),
                 "--out", str(ws.root / "opt")])
    _, err = capsys.readouterr()
    assert code == 1 and "no setting" in err and "closest" in err and err.count("\n") == 1
    assert (ws.root / "opt" / "optimize.json").exists()


def test_optimize_unknown_param(scored):
    ws, path = scored
    with pytest.raises(RiskConsoleError, match="no param 'nope'"):
        optimize(ws, path, {"nope": None}, make_window())
