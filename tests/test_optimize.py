"""Sweeps and the optimizer: one-pass and sorted-score answers equal a brute-force re-run per setting."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.backtest import make_window
from riskconsole.cli import main
from riskconsole.detectors.training import stamp_scores
from riskconsole.errors import RiskConsoleError
from riskconsole.session import Session
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
    result = sweep(Session(ws), path, "cut", values, window)
    assert result["method"] == "sorted-scores"
    for point in result["points"]:
        expected = _brute(ws, path, {"cut": point["value"]}, window)
        for key in KEYS:
            assert point[key] == expected[key], (point["value"], key)
        for key in ("precision", "recall", "f1", "net_benefit", "amount_recall", "alert_rate", "good_amount_blocked",
                    "fraud_amount_stopped", "review_cost"):
            assert point[key] == pytest.approx(expected[key]), (point["value"], key)


def test_strict_threshold_and_review_action(scored):
    ws, path = scored
    body = yaml.safe_load(path.read_text())
    body["rules"][1] = {"name": "model", "when": "risk > $cut", "action": "review"}
    path.write_text(yaml.safe_dump(body))
    result = sweep(Session(ws), path, "cut", [0.2, 0.5, 0.9], make_window())
    assert result["method"] == "sorted-scores"
    for point in result["points"]:
        expected = _brute(ws, path, {"cut": point["value"]})
        assert [point[k] for k in KEYS] == [expected[k] for k in KEYS]


def test_optimizer_equals_brute_force_on_a_small_grid(scored):
    ws, path = scored
    # every setting overflows on all 6 days (capacity 3): the precision floor is what binds
    result = optimize(Session(ws), path, {"big": "50:250:100", "cut": "0.3,0.6,0.9"}, make_window(), max_overflow_days=6,
                      min_precision=0.25)
    assert result["method"] == "grid" and len(result["points"]) == 9
    brute = []
    for big, cut in itertools.product([50, 150, 250], [0.3, 0.6, 0.9]):
        o = _brute(ws, path, {"big": big, "cut": cut})
        brute.append({"big": big, "cut": cut, **o})
        point = next(p for p in result["points"] if p["big"] == big and p["cut"] == cut)
        assert [point[k] for k in KEYS] == [o[k] for k in KEYS]
    feasible = [p for p in brute if p["review_overflow_days"] <= 6 and p["precision"] >= 0.25]
    assert feasible and len(feasible) < len(brute), "the constraint must bind for this test to mean anything"
    best = max(feasible, key=lambda p: p["net_benefit"])
    assert result["feasible"] and (result["best"]["big"], result["best"]["cut"]) == (best["big"], best["cut"])
    assert best["net_benefit"] < max(p["net_benefit"] for p in brute)  # the unconstrained best is excluded
    frontier = result["frontier"]
    for p in result["points"]:  # nothing on the frontier is beaten on both axes
        assert not any(q["net_benefit"] > p["net_benefit"] and q["review_cases"] < p["review_cases"]
                       for q in result["points"]) or p not in frontier


# Two days of events, one rule `amount >= $cut` -> review; capacity 3 reviews a day, catch rate 0.5, review cost 2.
#   day 1: fraud 500, 400, 300, 160; good 50, 40        day 2: fraud 500, 400, 100; good 200, 60
# cut   reviews d1/d2  overflow days  tp/fp  fraud reviewed  net benefit = 0.5 x fraud reviewed - 2 x reviews
#  30        6 / 5          2         7 / 4       2360          1180 - 22 = 1158   (the unconstrained best)
# 150        4 / 3          1         6 / 1       2260          1130 - 14 = 1116   (best with one day over)
# 250        3 / 2          0         5 / 0       2100          1050 - 10 = 1040   (best with no day over)
# 450        1 / 1          0         2 / 0       1000           500 -  4 =  496
KNOWN_DAYS = {"2026-03-01": ([500, 400, 300, 160], [50, 40]), "2026-03-02": ([500, 400, 100], [200, 60])}
KNOWN_NET = {30: 1158.0, 150: 1116.0, 250: 1040.0, 450: 496.0}


@pytest.fixture
def known(tmp_path):
    """A workspace whose best setting under each constraint is known by construction (table above)."""
    from riskconsole.ingest import load
    from conftest import write_workspace

    rows = [(day, amount, label) for day, (fraud, good) in KNOWN_DAYS.items()
            for label, amounts in ((1, fraud), (0, good)) for amount in amounts]
    ts = pd.to_datetime([f"{day} 10:00:00" for day, _, _ in rows]) + pd.to_timedelta(range(len(rows)), unit="min")
    events = pd.DataFrame({"event_id": [f"k{i}" for i in range(len(rows))], "ts": ts,
                           "is_fraud": [r[2] for r in rows], "label_ts": ts + pd.Timedelta(days=1),
                           "amount": [float(r[1]) for r in rows], "user_id": range(len(rows)),
                           "device_id": range(len(rows)), "merchant_id": 101, "channel": "web"})
    strategy = {"name": "known", "params": {"cut": 100},
                "rules": [{"name": "big", "when": "amount >= $cut", "action": "review"}]}
    scored = {"name": "known_score", "params": {"cut": 0.1},  # the same rule on a score: amount / 1000
              "rules": [{"name": "big", "when": "risk >= $cut", "action": "review"}]}
    ws = write_workspace(tmp_path / "ws", events, strategies={"known": strategy, "known_score": scored})
    load(ws)
    con = ws.connect()
    con.execute("CREATE TABLE scores_risk AS SELECT _pos, amount / 1000.0 AS risk FROM frame")
    stamp_scores(con, "risk")  # computed for the loaded events: strategies may join it
    con.close()
    return ws, ws.strategies_dir / "known.yaml"


@pytest.mark.parametrize("values", [[0.03, 0.15, 0.25, 0.45], [0.45, 0.35, 0.25, 0.15, 0.05]])  # uneven; even
def test_score_curve_on_data_known_by_construction(known, values):
    """Sorted scores give the table above (days at exactly the capacity are not over it)."""
    ws, _ = known
    result = sweep(Session(ws), ws.strategies_dir / "known_score.yaml", "cut", values, make_window())
    assert result["method"] == "sorted-scores"
    by_cut = {round(p["value"] * 1000): p for p in result["points"]}
    table = {30: (2, 7, 4, 11), 50: (2, 7, 3, 10), 150: (1, 6, 1, 7), 250: (0, 5, 0, 5), 350: (0, 4, 0, 4),
             450: (0, 2, 0, 2)}  # overflow days, tp, fp, reviews
    for cut, point in by_cut.items():
        days, tp, fp, reviews = table[cut]
        assert (point["review_overflow_days"], point["tp"], point["fp"], point["review_cases"]) == table[cut], cut
        assert point["fn"] == 7 - tp and point["recall"] == pytest.approx(tp / 7)
        assert point["precision"] == pytest.approx(tp / (tp + fp))
        assert point["alert_rate"] == pytest.approx(reviews / 11)
        assert point["good_amount_blocked"] == 0 and point["review_cost"] == 2 * reviews
    for cut in set(by_cut) & set(KNOWN_NET):
        assert by_cut[cut]["net_benefit"] == pytest.approx(KNOWN_NET[cut])
        assert by_cut[cut]["fraud_amount_stopped"] == pytest.approx((KNOWN_NET[cut] + 2 * table[cut][3]))


@pytest.mark.parametrize("max_days, min_precision, best", [(0, None, 250), (1, None, 150), (2, None, 30),
                                                           (1, 0.9, 250), (2, 0.7, 150), (2, 0.6, 30),
                                                           (1, 6 / 7, 150)])  # a floor met exactly holds
def test_optimizer_finds_the_best_setting_known_by_construction(known, max_days, min_precision, best):
    ws, path = known
    result = optimize(Session(ws), path, {"cut": "30,150,250,450"}, make_window(), max_overflow_days=max_days,
                      min_precision=min_precision)
    assert result["feasible"] and result["closest"] is None
    assert result["best"]["cut"] == best and result["best"]["net_benefit"] == pytest.approx(KNOWN_NET[best])
    by_cut = {p["cut"]: p for p in result["points"]}
    assert {c: p["net_benefit"] for c, p in by_cut.items()} == pytest.approx(KNOWN_NET)
    assert {c: p["review_overflow_days"] for c, p in by_cut.items()} == {30: 2, 150: 1, 250: 0, 450: 0}
    assert {c: (p["tp"], p["fp"]) for c, p in by_cut.items()} == {30: (7, 4), 150: (6, 1), 250: (5, 0), 450: (2, 0)}


@pytest.mark.parametrize("values, max_days, min_precision, closest", [
    ("30,150", 0, None, 150),      # both overflow: fewer days over capacity beats more net benefit
    ("30,150", 2, 0.95, 150),      # both too imprecise (7/11, 6/7): fewer overflow days first
    ("30,150,450", 0, 1.1, 450),   # nothing reaches the floor: no overflow, then the most precise
])
def test_optimizer_without_a_feasible_setting_names_the_closest(known, values, max_days, min_precision, closest):
    ws, path = known
    result = optimize(Session(ws), path, {"cut": values}, make_window(), max_overflow_days=max_days,
                      min_precision=min_precision)
    assert not result["feasible"] and result["best"] is None
    assert result["closest"]["cut"] == closest
    assert result["closest"]["net_benefit"] == pytest.approx(KNOWN_NET[closest])


def test_capacity_no_setting_can_meet(scored, capsys):
    ws, path = scored
    result = optimize(Session(ws), path, {"cut": "0.5,0.9"}, make_window(), max_overflow_days=0)
    assert not result["feasible"] and result["closest"] is not None
    code = main(["optimize", str(path), "--param", "cut", "--values", "0.5,0.9", "--workspace", str(ws.root),
                 "--out", str(ws.root / "opt")])
    _, err = capsys.readouterr()
    assert code == 1 and "no setting" in err and "closest" in err and err.count("\n") == 1
    assert (ws.root / "opt" / "optimize.json").exists()


def test_optimize_unknown_param(scored):
    ws, path = scored
    with pytest.raises(RiskConsoleError, match="no param 'nope'"):
        optimize(Session(ws), path, {"nope": None}, make_window())
