"""Comparison, bootstrap intervals, rule attribution and segments, each checked an independent way."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.backtest import fetch_decisions
from riskconsole.compare import CI_METRICS, DAILY_FIELDS, bootstrap, daily_matrix, metrics_from_sums
from riskconsole.config import Business
from riskconsole.errors import RiskConsoleError
from riskconsole.metrics import RuleSet, decide
from riskconsole.report import Baseline, run_backtest
from conftest import BASE_DATASET, assert_same

RULES = [
    {"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
    {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"},
    {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"},
    {"name": "shared_device", "when": "device_users_1d >= 3", "action": "review"},
]


@pytest.fixture
def pair(tiny_ws):
    base = {"name": "base", "params": {"burst": 3, "big": 300}, "rules": RULES[:3]}
    (tiny_ws.strategies_dir / "base.yaml").write_text(yaml.safe_dump(base))
    return tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", tiny_ws.strategies_dir / "base.yaml"


def _decisions(ws, path) -> pd.DataFrame:
    con = ws.connect_safe()
    bt = run_backtest(ws, path, con=con)
    out = fetch_decisions(con, bt.compiled, bt.frame, bt.dataset, bt.window).to_pandas()
    con.close()
    return out


def test_compare_equals_two_separate_backtests(pair):
    ws, cand, base = pair
    report = run_backtest(ws, cand, baseline=Baseline(base, bootstrap=200)).report
    alone_c, alone_b = run_backtest(ws, cand).report, run_backtest(ws, base).report
    compare = report["compare"]
    for key in ("tp", "fp", "fn", "tn", "review_cases", "unlabeled_flagged"):
        assert compare["candidate"][key] == alone_c["overall"][key] == report["overall"][key]
        assert compare["baseline"][key] == alone_b["overall"][key]
        assert compare["delta"][key] == alone_c["overall"][key] - alone_b["overall"][key]
    assert_same(report["rules"], alone_c["rules"])
    # changed decisions, recomputed from each strategy's own decisions
    both = _decisions(ws, base).merge(_decisions(ws, cand), on="id", suffixes=("_b", "_c"))
    moved = both[both.action_b != both.action_c]
    expected = moved.groupby(["action_b", "action_c"]).agg(
        events=("id", "size"), fraud=("label_c", lambda s: int((s == 1).sum())),
        amount=("amount_c", "sum")).reset_index()
    got = pd.DataFrame(compare["changed"]).set_index(["before", "after"])
    assert len(got) == len(expected)
    for row in expected.itertuples():
        assert got.loc[(row.action_b, row.action_c), "events"] == row.events
        assert got.loc[(row.action_b, row.action_c), "fraud"] == row.fraud
        assert got.loc[(row.action_b, row.action_c), "amount"] == pytest.approx(row.amount)
    interval = compare["intervals"]["delta"]["recall"]
    assert interval[0] <= compare["delta"]["recall"] <= interval[1]


def test_different_populations_need_permission(pair):
    ws, cand, _ = pair
    other = {"name": "web_only", "population": "channel = 'web'", "rules": RULES[1:2], "params": {"burst": 2}}
    (ws.strategies_dir / "web_only.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(RiskConsoleError, match="different populations"):
        run_backtest(ws, cand, baseline=Baseline(ws.strategies_dir / "web_only.yaml"))
    report = run_backtest(ws, cand, baseline=Baseline(ws.strategies_dir / "web_only.yaml", bootstrap=50,
                                                     allow_different_population=True)).report
    assert report["compare"]["different_population"]
    assert any("different populations" in w for w in report["compare"]["warnings"])
    web = run_backtest(ws, ws.strategies_dir / "web_only.yaml").report["overall"]
    assert report["compare"]["baseline"]["tp"] == web["tp"]  # outside its population the baseline allows


def test_leave_one_out_equals_a_rerun_without_the_rule(pair):
    ws, cand, _ = pair
    report = run_backtest(ws, cand).report
    strategy = yaml.safe_load(cand.read_text())
    for row in report["attribution"]["leave_one_out"]:
        reduced = {**strategy, "rules": [r for r in strategy["rules"] if r["name"] != row["name"]]}
        path = ws.strategies_dir / f"without_{row['name']}.yaml"
        path.write_text(yaml.safe_dump(reduced))
        again = run_backtest(ws, path).report["overall"]
        for key in ("recall", "precision", "net_benefit", "review_cases"):
            assert row[f"{key}_without"] == pytest.approx(again[key]), (row["name"], key)
            assert row[f"{key}_added"] == pytest.approx(report["overall"][key] - again[key])


def test_leave_one_out_from_hit_groups_equals_overall_without_each_rule():
    """The per-rule correction (only the groups a rule hits) gives what `overall` over every group gives with the
    rule switched off, for every key; a removal that changes no decision gives exactly zero."""
    from dataclasses import replace

    from riskconsole.attribution import LOO_KEYS, leave_one_out
    from riskconsole.backtest import Groups
    from riskconsole.metrics import overall

    rng = np.random.default_rng(5)
    n, r = 3_000, 9
    hits = rng.random((n, r)) < rng.uniform(0.02, 0.4, r)
    hits[:, 8] = hits[:, 0]  # hits only where the allow rule 0 already decides: it adds nothing
    groups = Groups(rng.integers(0, 30, n), rng.integers(-1, 2, n).astype(np.int8), hits, rng.integers(1, 50, n),
                    rng.gamma(2.0, 80.0, n), [None] * 30)
    rules = RuleSet([f"r{i}" for i in range(r)], ["allow", "block", "review", "block", "review", "review", "allow",
                                                  "block", "review"], [True] * 6 + [False] + [True] * 2)
    business = Business(review_capacity=60)
    full = overall(groups, decide(hits, rules), business)
    rows = leave_one_out(groups, rules, business)
    assert [row["name"] for row in rows] == ["r0", "r1", "r2", "r3", "r4", "r5", "r7", "r8"]
    for row in rows:
        i = int(row["name"][1:])
        without = replace(rules, enabled=[e and j != i for j, e in enumerate(rules.enabled)])
        want = overall(groups, decide(hits, without), business)
        for key in LOO_KEYS:
            assert row[f"{key}_without"] == pytest.approx(want[key], rel=1e-12), (i, key)
            assert row[f"{key}_added"] == pytest.approx(full[key] - want[key], rel=1e-9, abs=1e-6), (i, key)
    assert all(rows[-1][f"{key}_added"] == 0 for key in LOO_KEYS)


def test_overlap_is_the_jaccard_of_hit_sets(pair):
    ws, cand, _ = pair
    report = run_backtest(ws, cand).report
    decisions = _decisions(ws, cand)
    sets = {name: set(decisions.id[[name in m for m in decisions.matched_rules]])
            for name in report["attribution"]["overlap"]["rules"]}
    names = report["attribution"]["overlap"]["rules"]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            union = sets[a] | sets[b]
            expected = len(sets[a] & sets[b]) / len(union) if union else 0.0
            assert report["attribution"]["overlap"]["jaccard"][i][j] == pytest.approx(expected, abs=1e-6)
    removal = [r["name"] for r in report["rules"] if r["action"] != "allow" and r["unique_tp"] == 0]
    assert report["attribution"]["removal_candidates"] == removal


@pytest.mark.parametrize("by", ["channel", "amount:3"])
def test_segments_equal_backtests_restricted_to_each_segment(pair, by):
    ws, cand, base = pair
    report = run_backtest(ws, cand, by=by, baseline=Baseline(base, bootstrap=50)).report
    strategy = yaml.safe_load(cand.read_text())
    decisions = _decisions(ws, cand)
    rows = report["segments"]["rows"]
    assert sum(r["population"] for r in rows) == report["overall"]["population"] == len(decisions)
    expected = _segment_numbers(decisions, _segment_of(ws, decisions, by))
    assert {r["segment"] for r in rows} == set(expected), "one row per segment, none missing"
    for row in rows:
        for key, value in expected[row["segment"]].items():
            assert row[key] == pytest.approx(value), (row["segment"], key)
        if by == "channel":  # and a re-run whose population is the segment gives the same numbers
            path = ws.strategies_dir / "segment.yaml"
            path.write_text(yaml.safe_dump({**strategy, "population": f"channel = '{row['segment']}'"}))
            alone = run_backtest(ws, path).report["overall"]
            for key in ("population", "tp", "fp", "review_cases", "net_benefit"):
                assert row[key] == pytest.approx(alone[key]), (row["segment"], key)
    compared = report["compare"]["segments"]
    assert {r["segment"] for r in compared["rows"]} == {r["segment"] for r in rows}
    for row in compared["rows"]:
        assert row["delta"]["recall"] is None or row["delta"]["recall"] == pytest.approx(
            (row["candidate"]["recall"] or 0) - (row["baseline"]["recall"] or 0))


def _segment_of(ws, decisions: pd.DataFrame, by: str) -> np.ndarray:
    """Each decision's segment label, computed here: the channel, or the quantile bucket of its amount."""
    if by == "channel":
        con = duckdb.connect(str(ws.db_path), read_only=True)
        channel = dict(con.execute("SELECT CAST(event_id AS VARCHAR), channel FROM frame").fetchall())
        con.close()
        return np.array([channel[i] for i in decisions["id"]])
    amount = decisions["amount"].to_numpy(dtype=float)
    edges = np.quantile(amount, [1 / 3, 2 / 3])  # quantile_cont = numpy's linear interpolation
    bucket = np.searchsorted(edges, amount, side="right")  # amount < edge[0] -> 0, ...
    bounds = ["-inf", *[f"{e:,.4g}" for e in edges], "+inf"]
    return np.array([f"{b + 1:02d}: {bounds[b]} … {bounds[b + 1]}" for b in bucket])


def _segment_numbers(decisions: pd.DataFrame, segment: np.ndarray) -> dict[str, dict]:
    """Population, confusion, money and reviews per segment, straight from the decisions table (DESIGN §6)."""
    business = BASE_DATASET["business"]
    out = {}
    for name in np.unique(segment):
        d = decisions[segment == name]
        flagged, fraud, good = d.action != "allow", d.label == 1, d.label == 0
        block, review = d.action == "block", d.action == "review"
        stopped = d.amount[block & fraud].sum() + business["review_catch_rate"] * d.amount[review & fraud].sum()
        good_blocked = d.amount[block & good].sum()
        tp, fp = int((flagged & fraud).sum()), int((flagged & good).sum())
        out[str(name)] = {
            "population": len(d), "flagged": int(flagged.sum()), "tp": tp, "fp": fp,
            "fn": int((~flagged & fraud).sum()), "unlabeled_total": int(d.label.isna().sum()),
            "review_cases": int(review.sum()), "fraud_amount_stopped": stopped, "good_amount_blocked": good_blocked,
            "precision": tp / (tp + fp) if tp + fp else None,
            "net_benefit": stopped - business["good_block_cost"] * good_blocked
            - business["review_cost"] * review.sum(),
        }
    return out


def test_day_sums_and_the_metrics_rebuilt_from_them(pair):
    """`daily_matrix` equals per-day sums of the decisions table; `metrics_from_sums` applies DESIGN §6 to them."""
    ws, cand, _ = pair
    bt = run_backtest(ws, cand)
    business = Business(**BASE_DATASET["business"])
    matrix = daily_matrix(bt.groups, decide(bt.groups.hits, RuleSet.of(bt.compiled)), business)
    d = _decisions(ws, cand)
    flagged, fraud, good = d.action != "allow", d.label == 1, d.label == 0
    block, review, amt = d.action == "block", d.action == "review", d.amount
    unknown = d.label.isna()
    parts = {"population": 1, "flagged": flagged, "blocked": block, "tp": flagged & fraud, "fp": flagged & good,
             "fn": ~flagged & fraud, "tn": ~flagged & good, "unlabeled_flagged": flagged & unknown,
             "unlabeled_total": unknown, "fraud_amount": amt * fraud, "caught_amount": amt * (flagged & fraud),
             "stopped": amt * (block & fraud) + business.review_catch_rate * amt * (review & fraud),
             "good_blocked": amt * (block & good), "reviews": review}
    day = d.time.dt.strftime("%Y-%m-%d")
    expected = pd.DataFrame({k: pd.Series(v, index=d.index).astype(float) if not isinstance(v, int) else 1.0
                             for k, v in parts.items()}).groupby(day).sum()
    assert [day.isoformat() for day in bt.groups.days] == expected.index.tolist()
    assert set(DAILY_FIELDS) == set(parts)
    for i, field in enumerate(DAILY_FIELDS):
        np.testing.assert_allclose(matrix[:, i], expected[field].to_numpy(), err_msg=field)
    t = expected.sum()
    precision, recall = t.tp / (t.tp + t.fp), t.tp / (t.tp + t.fn)
    hand = {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall),
            "amount_recall": t.caught_amount / t.fraud_amount, "alert_rate": t.flagged / t.population,
            "net_benefit": t.stopped - business.good_block_cost * t.good_blocked - business.review_cost * t.reviews,
            "fraud_amount_stopped": t.stopped, "good_amount_blocked": t.good_blocked, "review_cases": t.reviews,
            "review_cost": business.review_cost * t.reviews,
            "label_coverage": 1 - t.unlabeled_total / t.population}
    got = metrics_from_sums(matrix.sum(axis=0), business)
    assert set(CI_METRICS) <= set(got)
    for key, value in hand.items():
        assert float(got[key]) == pytest.approx(value), key


def test_bootstrap_resamples_the_same_days_for_both_sides(pair):
    """Paired: identical sides differ by exactly 0 in every resample; a constant daily gap stays constant."""
    ws, cand, _ = pair
    bt = run_backtest(ws, cand)
    business = Business(**BASE_DATASET["business"])
    days = daily_matrix(bt.groups, decide(bt.groups.hits, RuleSet.of(bt.compiled)), business)
    same = bootstrap(days, days.copy(), business, n=200, seed=3)
    assert same["resamples"] == 200 and same["unit"] == "day"
    for metric, interval in same["delta"].items():
        assert interval == [0.0, 0.0], metric
    shifted = days.copy()
    shifted[:, DAILY_FIELDS.index("stopped")] += 10.0  # the candidate stops 10 more every day
    gap = bootstrap(shifted, days, business, n=200, seed=3)["delta"]
    assert gap["net_benefit"] == pytest.approx([10.0 * len(days)] * 2)
    assert gap["fraud_amount_stopped"] == pytest.approx([10.0 * len(days)] * 2)
    assert gap["recall"] == [0.0, 0.0]
    point = metrics_from_sums(days.sum(axis=0), business)
    for metric, (lo, hi) in same["candidate"].items():  # each side's interval brackets its point value
        assert lo <= float(point[metric]) <= hi, metric


def _simulate_days(rng, days: int, truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """Day-level sums for two strategies flagging the same bursty fraud with known probabilities."""
    fraud = rng.poisson(rng.gamma(2.0, 10.0, days))        # bursty: gamma-mixed daily fraud counts
    good = rng.poisson(2000, days)
    both = rng.binomial(fraud, truth["both"])
    only_c = rng.binomial(fraud - both, truth["only_c"] / (1 - truth["both"]))
    only_b = rng.binomial(fraud - both - only_c, truth["only_b"] / (1 - truth["both"] - truth["only_c"]))
    fp_c, fp_b = rng.binomial(good, 0.01), rng.binomial(good, 0.01)

    def matrix(tp, fp):
        zero = np.zeros(days)
        fields = {"population": fraud + good, "flagged": tp + fp, "blocked": tp + fp, "tp": tp, "fp": fp,
                  "fn": fraud - tp, "tn": good - fp, "unlabeled_flagged": zero, "unlabeled_total": zero,
                  "fraud_amount": fraud * 100.0, "caught_amount": tp * 100.0, "stopped": tp * 100.0,
                  "good_blocked": fp * 50.0, "reviews": zero}
        return np.stack([np.asarray(fields[f], dtype=float) for f in DAILY_FIELDS], axis=1)

    return matrix(both + only_c, fp_c), matrix(both + only_b, fp_b)


def test_bootstrap_intervals_cover_the_true_delta_at_about_the_nominal_rate():
    truth = {"both": 0.5, "only_c": 0.15, "only_b": 0.1}   # recall 0.65 vs 0.60: true delta 0.05
    rng = np.random.default_rng(11)
    business = Business(review_cost=0, good_block_cost=0.3)
    hits, runs = 0, 200
    for i in range(runs):
        cand, base = _simulate_days(rng, 90, truth)
        ci = bootstrap(cand, base, business, n=400, seed=i)["delta"]["recall"]
        hits += ci[0] <= 0.05 <= ci[1]
    assert 0.88 <= hits / runs <= 0.99, hits / runs


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    cand, base = _simulate_days(rng, 30, {"both": 0.5, "only_c": 0.1, "only_b": 0.1})
    business = Business()
    assert bootstrap(cand, base, business, n=100, seed=5) == bootstrap(cand, base, business, n=100, seed=5)


def test_leave_one_out_of_the_only_block_rule_leaves_exactly_no_blocked_money():
    """Removing the one block rule leaves no blocked good amount: exactly 0, not a float total corrected to 1e-12;
    the other rules' rows equal `overall` without each of them."""
    from dataclasses import replace

    from riskconsole.attribution import leave_one_out
    from riskconsole.backtest import Groups
    from riskconsole.metrics import overall

    rng = np.random.default_rng(11)
    n = 2_000
    hits = rng.random((n, 4)) < [0.3, 0.2, 0.25, 0.05]
    groups = Groups(rng.integers(0, 20, n), rng.integers(-1, 2, n).astype(np.int8), hits, rng.integers(1, 30, n),
                    rng.gamma(2.0, 80.0, n) * 1.1, [None] * 20)
    rules = RuleSet(["blocker", "rev1", "rev2", "exempt"], ["block", "review", "review", "allow"], [True] * 4)
    business = Business()
    rows = {row["name"]: row for row in leave_one_out(groups, rules, business)}
    assert rows["blocker"]["good_amount_blocked_without"] == 0.0
    assert rows["blocker"]["fraud_amount_stopped_without"] > 0
    for i, name in enumerate(rules.names):
        without = replace(rules, enabled=[j != i for j in range(4)])
        want = overall(groups, decide(hits, without), business)
        for key in ("tp", "fp", "review_cases", "precision", "recall", "net_benefit", "good_amount_blocked"):
            assert rows[name][f"{key}_without"] == pytest.approx(want[key], rel=1e-12), (name, key)


def test_a_removal_candidate_whose_sole_hits_are_unlabelled_is_not_said_to_catch_nothing():
    """A rule whose labelled catches others make too, but which alone flags events without a label (production
    blocked them, or not labelled yet), may catch fraud there: a warning names it with how many. Groups by hand: rule
    a alone flags 3 unlabelled and 4 good events, with b 2 fraud; b alone 1 fraud; c (allow) nothing."""
    from datetime import date

    import numpy as np

    from riskconsole.backtest import Groups
    from riskconsole.metrics import RuleSet, decide, rule_table, unique_unlabeled
    from riskconsole.report import removal_warnings

    rules = RuleSet(["a", "b", "c"], ["block", "review", "allow"], [True, True, True])
    hits = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    g = Groups(day=np.zeros(5, np.int64), label=np.array([-1, 1, 1, 0, -1], np.int8), hits=hits,
               count=np.array([3, 2, 1, 4, 6], np.int64), amount=np.zeros(5), days=[date(2026, 3, 1)])
    action = decide(g.hits, rules)
    assert unique_unlabeled(g, action, rules) == [3, 0, 0]
    rows = rule_table(g, action, rules)
    assert [r["unique_tp"] for r in rows] == [0, 1, 0]
    report = {"rules": rows, "attribution": {"removal_candidates": ["a"]}}
    assert removal_warnings(report, unique_unlabeled(g, action, rules)) == [
        "removal candidate 'a' catches no labelled fraud on its own, but 3 events only it flags have no label: it may "
        "catch fraud there"]
    assert removal_warnings(report, [0, 0, 0]) == []
    assert "but 3 entity-periods only it flags" in removal_warnings(report, [3, 0, 0], "entity-periods")[0]
    assert "but 1 event only it flags has no label" in removal_warnings(report, [1, 0, 0])[0]
    assert "but 1 entity-period only it flags has no label" in removal_warnings(report, [1, 0, 0], "entity-periods")[0]


def test_a_removal_candidate_that_adds_net_benefit_is_said_to_pay():
    """'Catch no labelled fraud on their own (candidates for removal)' named a stranger's takeover rule that adds
    +517 net benefit: it blocks account takeovers another rule only reviews. The line now says what removing such a
    rule loses. Groups by hand: 'blk' (block) and 'rev' (review) flag the same 2 fraud events of 100 each, so blk has
    no unique catch (rev has 1); blocking them instead of reviewing adds (1 - catch rate) x 200 + review cost x 2."""
    from datetime import date

    from riskconsole.attribution import attribution
    from riskconsole.backtest import Groups
    from riskconsole.metrics import rule_table
    from riskconsole.share import removal_text

    rules = RuleSet(["blk", "rev", "quiet"], ["block", "review", "review"], [True, True, True])
    hits = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    g = Groups(day=np.zeros(3, np.int64), label=np.array([1, 1, 0], np.int8), hits=hits,
               count=np.array([2, 1, 5], np.int64), amount=np.array([200.0, 30.0, 500.0]), days=[date(2026, 3, 1)])
    business = Business(review_cost=3.0, review_catch_rate=0.9, good_block_cost=0.3)
    action = decide(g.hits, rules)
    rows = rule_table(g, action, rules)
    report = {"rules": rows, "attribution": attribution(g, rules, business, rows, action)}
    assert report["attribution"]["removal_candidates"] == ["blk", "quiet"]
    added = (1 - 0.9) * 200 + 3.0 * 2
    assert [r["net_benefit_added"] for r in report["attribution"]["leave_one_out"]][0] == pytest.approx(added)
    assert removal_text(report) == ("Catch no labelled fraud on their own (candidates for removal): blk, quiet; "
                                    f"but blk adds {added:+,.0f} net benefit, which removing it would lose")
    report["attribution"]["removal_candidates"] = ["quiet"]
    assert removal_text(report) == "Catch no labelled fraud on their own (candidates for removal): quiet"
