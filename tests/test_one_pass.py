"""A backtest scans the frame once, outcome blocks included (issue 14): the §6.2 groups come from the same grouped
query as the metrics, split by observability class, and equal an independent pandas group-by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskconsole import backtest
from riskconsole.backtest import make_window, run_groups
from riskconsole.outcomes import observability_class, run_outcomes
from riskconsole.report import Baseline
from riskconsole.session import Session
from tests.conftest import write_workspace
from test_outcomes import ROLES, STRATEGIES, WALK, _dataset, _events

RULES = {"trusted": lambda f: (f["merchant_id"] == 100) & (f["amount"] < 30),
         "big": lambda f: f["amount"] > 150.0, "burst": lambda f: f["user_orders_1h"] >= 2,
         "shared": lambda f: (f["device_users_1d"] >= 3) & (f["channel"] == "web")}


@pytest.fixture(scope="module")
def outcome_ws(tmp_path_factory):
    from riskconsole.ingest import load

    ws = write_workspace(tmp_path_factory.mktemp("one_pass"), _events(), _dataset(**ROLES),
                         {**STRATEGIES, "walk": WALK})
    load(ws)
    return ws


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """The strategies whose queries ran (the window's min/max of time run as 'frame' and are not scans of rules)."""
    ran = []

    def counting(real):
        def counted(con, query, strategy):
            if strategy != "frame":
                ran.append(strategy)
            return real(con, query, strategy)
        return counted

    for name in ("run_query", "fetch_columns", "fetch_row"):  # an Arrow table, numpy columns (the grouped pass), a row
        monkeypatch.setattr(backtest, name, counting(getattr(backtest, name)))
    return ran


@pytest.mark.parametrize("baseline, by", [(None, None), ("prod", None), (None, "channel"), ("prod", "channel")])
def test_a_backtest_with_outcome_roles_scans_once(outcome_ws, scans, baseline, by):
    with Session(outcome_ws) as session:
        report = session.backtest(outcome_ws.strategies_dir / "walk.yaml", by=by, baseline=Baseline(
            outcome_ws.strategies_dir / f"{baseline}.yaml", bootstrap=20) if baseline else None).report
    assert "bounds" in report["overall"] and report["overall"]["observability"]["unobservable"] > 0
    assert scans == ["walk"]


def _independent(ws, window_from: str | None = None) -> dict:
    """(day, label, class, rule hits) -> [events, amount, positive amount, sum 1/p, sum amount/p], by pandas."""
    import duckdb

    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        f = con.execute("SELECT * FROM frame").df()
    if window_from:
        f = f[f["ts"] >= pd.Timestamp(window_from)]
    explored = f["explore"].astype(str).str.strip().isin(["1", "true"])
    cls = np.where(explored, 2, np.where(f["prod_action"].str.strip().str.lower() == "block", 1, 0))
    inverse = np.where(explored, 1.0 / f["propensity"].astype(float), 0.0)
    amount = f["amount"].astype(float).fillna(0.0)
    table = pd.DataFrame({"day": f["ts"].dt.date, "y": f["is_fraud"].fillna(-1).astype(int), "cls": cls,
                          **{name: rule(f).fillna(False).astype(bool) for name, rule in RULES.items()},
                          "n": 1, "amt": amount, "pos": amount.clip(lower=0), "w": inverse, "wamt": inverse * amount})
    sums = table.groupby(["day", "y", "cls", *RULES])[["n", "amt", "pos", "w", "wamt"]].sum()
    return {(day, y, c, tuple(hits)): row.to_numpy(float) for (day, y, c, *hits), row in sums.iterrows()}


def _folded(o) -> dict:
    return {(o.days[o.day[i]], int(o.label[i]), int(o.cls[i]), tuple(bool(b) for b in o.hits[i])):
            np.array([o.count[i], o.amount[i], o.amount_pos[i], o.weight[i], o.weighted_amount[i]])
            for i in range(len(o.count))}


@pytest.mark.parametrize("window_from", [None, "2026-03-03"])
def test_outcome_groups_of_the_one_pass_equal_an_independent_group_by(outcome_ws, window_from):
    with Session(outcome_ws) as session, session.cursor() as cur:
        compiled = session.compile(outcome_ws.strategies_dir / "walk.yaml")
        got = _folded(run_outcomes(cur, compiled, session.frame, session.dataset, make_window(window_from)))
    want = _independent(outcome_ws, window_from)
    assert got.keys() == want.keys() and {k[2] for k in got} == {0, 1, 2}
    for key in want:  # money sums are exact sums of each event's value rounded to 6 decimals (1/0.3 -> 3.333333)
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=5e-7 * want[key][0] + 1e-9)


def test_the_split_changes_no_metric_group_and_segments_change_no_outcome_group(outcome_ws):
    """The metric groups of the split pass are those of the plain pass to the last bit (their sums are exact
    DECIMAL sums over the classes), and a --by segment splits nothing the outcome blocks read."""
    from riskconsole.outcomes import outcomes_of
    from riskconsole.segments import segment_expression

    with Session(outcome_ws) as session, session.cursor() as cur:
        compiled = session.compile(outcome_ws.strategies_dir / "walk.yaml")
        frame, dataset, window = session.frame, session.dataset, make_window()
        segment = segment_expression(cur, "channel", compiled, frame, dataset, window)
        classes = observability_class(dataset)
        for seg in (None, segment):
            plain = run_groups(cur, compiled, frame, dataset, window, seg)
            split = run_groups(cur, compiled, frame, dataset, window, seg, classes)
            assert split.classes["n"].size > len(plain.count)
            for name in ("day", "label", "hits", "count", "amount"):
                assert np.array_equal(getattr(plain, name), getattr(split, name)), (seg, name)
            if seg is not None:
                assert (plain.segment == split.segment).all()
        once = outcomes_of(run_groups(cur, compiled, frame, dataset, window, None, classes), len(compiled.rules))
        by = outcomes_of(run_groups(cur, compiled, frame, dataset, window, segment, classes), len(compiled.rules))
    for name in ("day", "label", "hits", "cls", "count", "amount", "amount_pos", "weight", "weighted_amount"):
        assert np.array_equal(getattr(once, name), getattr(by, name)), name


def test_the_split_casts_only_explored_rows_and_sums_what_a_filter_would(outcome_ws):
    """The 1/propensity sums cast to DECIMAL inside a CASE (explored rows only) and the mask constants are BIGINT
    (no cast per row and rule): the very rows of the FILTER form they replace (issue 14: ~20% of the query's CPU)."""
    import re

    from riskconsole.backtest import groups_query
    from riskconsole.sqlbuild import render

    with Session(outcome_ws) as session, session.cursor() as cur:
        compiled = session.compile(outcome_ws.strategies_dir / "walk.yaml")
        frame, dataset, window = session.frame, session.dataset, make_window()
        sql = render(groups_query(compiled, frame, dataset, window, None, observability_class(dataset, frame.columns)))
        assert "FILTER(WHERE \"p\".\"ipw\"" not in sql and "END AS BIGINT)" not in sql
        assert sql.count("AS BIGINT) ELSE CAST(0 AS BIGINT) END") == len(compiled.rules)
        assert sql.count('CASE WHEN "p"."ipw" <> 0 THEN CAST(') == 2
        filtered = re.sub(r'SUM\(CASE WHEN "p"\."ipw" <> 0 THEN (CAST\(.*? AS DECIMAL\(38, 6\)\)) END\)',
                          r'SUM(\1) FILTER(WHERE "p"."ipw" <> 0)', sql)
        filtered = re.sub(r"THEN CAST\((\d+) AS BIGINT\) ELSE CAST\(0 AS BIGINT\) END", r"THEN \1 ELSE 0 END", filtered)
        assert filtered.count("FILTER(WHERE \"p\".\"ipw\"") == 2 and "AS BIGINT) ELSE" not in filtered
        ours, theirs = cur.sql(sql).to_arrow_table(), cur.sql(filtered).to_arrow_table()
    assert ours.num_rows > 0 and ours.to_pylist() == theirs.to_pylist()  # the old masks were INTEGER, summed the same
