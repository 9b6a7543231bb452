"""Entity-level strategies on engine spark (DESIGN §3.2, §7; issue 15): the entity frame Spark builds equals
DuckDB's row for row, and a backtest over it writes DuckDB's report.json.

The workspace of test_entities (merchants decided daily: windows, count_distinct, a label feature, a stream
window, a lookup, a derived feature and a graph feature; labels from the merchants table or from events). Spark
runs in the test run's one session (`spark` of conftest.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml

import test_entities
from conftest import assert_same
from riskconsole.report import Baseline
from riskconsole.session import Session
from test_spark_engine import assert_same_rows

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module", params=[True, False], ids=["table-label", "event-label"])
def entity_ws(request, tmp_path_factory):
    """test_entities' workspace; with its labels from the merchants table, its `spark.store` at a file:// URI taken
    for a store this machine cannot open as a folder (an object store), as one is."""
    from riskconsole.engines import spark_store
    from riskconsole.ingest import load

    root = tmp_path_factory.mktemp("entities")
    ws, _ = test_entities.make_ws(root / "ws", table_label=request.param)
    if not request.param:
        yield ws
        return
    dataset = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**dataset, "spark": {"store": f"file://{root / 'store'}"}}))
    load(ws)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(spark_store, "_local_path", lambda base: None)
        yield ws


def test_the_entity_frame_built_on_spark_equals_duckdbs(entity_ws, spark, monkeypatch):
    """Spark's entity frame is DuckDB's row for row. With the store elsewhere (table-label), the frame built on Spark
    is copied there (under <version>/entities/) and a later session reads it back through a local copy instead of
    building it again."""
    from riskconsole import entities

    level = entity_ws.strategy(entity_ws.strategies_dir / "mw.yaml").level
    with Session(entity_ws) as duck:
        want = duck.entities(level)
    with Session(entity_ws, engine="spark", spark=spark) as session:
        got = session.entities(level)
        assert not session.spark_engine(frame=False).built  # an entity frame needs only the export
        store = session.spark_engine(frame=False).store
    assert (got.features, got.elsewhere, got.label_from) == (want.features, want.elsewhere, want.label_from)
    assert got.table.column_names == want.table.column_names and got.frame.columns == want.frame.columns
    again = None  # the frame read back from a store elsewhere (table-label)
    elsewhere = "store" in (yaml.safe_load(entity_ws.dataset_path.read_text()).get("spark") or {})
    assert (store.local is None) == elsewhere
    if elsewhere:
        folder = Path(store.base.removeprefix("file://")) / "entities"  # store: the data version's folder
        assert [p.suffix for p in folder.iterdir()] == [".parquet"]
        monkeypatch.setattr(entities, "build", lambda *a, **k: pytest.fail("built again"))
        with Session(entity_ws, engine="spark", spark=spark) as session:
            again = session.entities(level).table
    con = duckdb.connect()
    try:
        con.register("duck", want.table)
        con.register("spark", got.table)
        assert con.execute("SELECT count(*) FROM spark").fetchall()[0][0] == want.table.num_rows > 100
        assert_same_rows(con, "duck", "spark")
        if again is not None:
            con.register("again", again)
            assert_same_rows(con, "duck", "again")
        nonzero = con.execute("SELECT count(*) FILTER (merchant_fraud_4d > 0), count(*) FILTER (merchant_refunds_3d "
                              "> 0), count(*) FILTER (merchant_ring_3d > 1), count(*) FILTER (merchant_users_2d > 1), "
                              "count(*) FILTER (merchant_tier IS NOT NULL), count(*) FILTER (__label = 1) "
                              "FROM spark").fetchall()[0]
        assert all(nonzero), nonzero  # the features under test are not all empty
    finally:
        con.close()


def test_an_entity_backtest_on_spark_writes_duckdbs_report(entity_ws, spark, monkeypatch):
    """A comparison with a baseline, `--by merchant_tier` and 50 resamples: the grouped queries run on Spark over
    the Spark-built entity frame; report.json, the decisions table and a sweep are DuckDB's."""
    from riskconsole.backtest import Window
    from riskconsole.engines.spark_entities import EntityRunner

    path = entity_ws.strategies_dir / "mw.yaml"
    base = entity_ws.strategies_dir / "mw_base.yaml"
    base.write_text(path.read_text().replace("name: mw", "name: mw_base").replace("k: 6", "k: 9"))
    baseline = Baseline(base, bootstrap=50)
    # a list with added/expires times, replayed at each period's start (test_entities counts its periods by hand)
    (entity_ws.root / "lists").mkdir(exist_ok=True)
    (entity_ws.root / "lists" / "watched.csv").write_text(
        "value,added,expires\n101,2026-03-04 00:00,\n103,,2026-03-06\n104,2026-03-03 12:00,2026-03-07\n")
    listed = entity_ws.strategies_dir / "mw_listed.yaml"
    listed.write_text(path.read_text().replace("name: mw", "name: mw_listed") + "- action: block\n  name: watched\n"
                      "  when: merchant_id IN LIST watched\n")
    with Session(entity_ws) as duck:
        want = duck.backtest(path, baseline=baseline, by="merchant_tier").report
        run = duck.backtest(path)
        want_rows, want_sweep = duck.decisions(run), duck.sweep(path, "k", [3, 6, 9], Window())
        listed_run = duck.backtest(listed)
        want_listed, want_listed_report = duck.decisions(listed_run), listed_run.report
    ran, arrow = [], EntityRunner.arrow
    monkeypatch.setattr(EntityRunner, "arrow", lambda self, query, strategy: ran.append(strategy) or
                        arrow(self, query, strategy))
    with Session(entity_ws, engine="spark", spark=spark) as session:
        got = session.backtest(path, baseline=baseline, by="merchant_tier").report
        got_rows = session.decisions(session.backtest(path))
        got_sweep = session.sweep(path, "k", [3, 6, 9], Window())
        listed_run = session.backtest(listed)
        got_listed, got_listed_report = session.decisions(listed_run), listed_run.report
    assert ran.count("mw") >= 4  # the grouped passes, the decisions and the sweep ran on Spark's entity frame
    assert got_rows.schema == want_rows.schema and got_rows.equals(want_rows)
    assert got_rows.num_rows == want["overall"]["population"] > 40  # one row per entity-period
    assert_same(got_sweep, want_sweep)
    assert got_listed.schema == want_listed.schema and got_listed.equals(want_listed)
    since = {101: (datetime(2026, 3, 4), datetime.max), 103: (datetime.min, datetime(2026, 3, 6)),
             104: (datetime(2026, 3, 3, 12), datetime(2026, 3, 7))}  # the list's [added, expires) by hand
    dated = [m in since and since[m][0] <= t < since[m][1] for m, t in
             zip(got_listed["merchant_id"].to_pylist(), got_listed["time"].to_pylist())]
    assert 0 < sum(dated) < len(dated)
    assert ["watched" in r for r in got_listed["matched_rules"].to_pylist()] == dated
    assert_same(json.loads(json.dumps(got_listed_report, default=str)),
                json.loads(json.dumps(want_listed_report, default=str)))
    assert got["overall"]["flagged"] > 0 and got["compare"]["changed"] and got["level"]["entity"] == "merchant_id"
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(want, default=str)))
