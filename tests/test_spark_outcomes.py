"""Engine spark with outcome roles (DESIGN §6.2, §7): the backtest's one grouped pass, split by observability class
(two grouping sets, FILTERed sums), runs on Spark and gives DuckDB's report, outcome blocks included."""

from __future__ import annotations

import pytest

from conftest import assert_same, write_workspace
from riskconsole.ingest import load
from riskconsole.report import Baseline
from riskconsole.session import Session
from test_outcomes import ROLES, STRATEGIES, WALK, _dataset, _events

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_outcome_blocks_on_spark_equal_duckdbs(tmp_path, spark):
    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**ROLES), {**STRATEGIES, "walk": WALK})
    load(ws)
    walk, lenient, prod = (ws.strategies_dir / f"{n}.yaml" for n in ("walk", "lenient", "prod"))
    runs = [(walk, {}), (walk, {"by": "channel"}), (lenient, {"baseline": Baseline(prod, bootstrap=50)})]
    with Session(ws) as duck:
        want = [duck.backtest(path, **kwargs).report for path, kwargs in runs]
    with Session(ws, engine="spark", spark=spark) as session:
        got = [session.backtest(path, **kwargs).report for path, kwargs in runs]
    for g, w in zip(got, want):
        assert "bounds" in w["overall"] and w["overall"]["observability"]["unobservable"] > 0
        assert_same(g, w)
