"""Engine spark (DESIGN §7, issue 15): the frame Spark builds equals DuckDB's, row for row, and a backtest on Spark
writes DuckDB's report.json.

One small workspace holds every kind of feature (windows, stddev, first_seen, compound key, by-less, stream,
label, lookups: key, as-of and range, graph (computed by DuckDB at load, joined on Spark), derived). Spark runs in the test run's one session (`spark` of test_functions).
"""

from __future__ import annotations

import json

import duckdb
import pytest
import yaml

import test_streams
import test_tables
from conftest import BASE_DATASET, assert_same, write_workspace
from riskconsole.config import Dataset
from riskconsole.engines import choose
from riskconsole.errors import ConfigError, RiskConsoleError
from riskconsole.ingest import load
from riskconsole.session import Session
from test_functions import spark  # noqa: E402,F401 - the one Spark session of the test run

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
FEATURES = [
    *BASE_DATASET["features"],  # window count, avg and count_distinct by one key
    {"name": "pair_orders_1h", "count": "*", "by": ["user_id", "device_id"], "window": "1h"},
    {"name": "all_orders_30m", "count": "*", "window": "30m"},
    {"name": "all_max_amount_1h", "max": "amount", "window": "1h"},
    {"name": "user_amount_sd_1d", "stddev": "amount", "by": "user_id", "window": "1d"},
    {"name": "new_device_for_user", "first_seen": "device_id", "by": "user_id", "window": "2d"},
    {"name": "user_logins_1h", "count": "*", "from": "logins", "by": "user_id", "window": "1h"},
    {"name": "user_spend_1d", "avg": "spend", "from": "logins", "by": "user_id", "window": "1d"},
    {"name": "user_last_login_2d", "max": "login_time", "from": "logins", "by": "user_id", "window": "2d"},
    {"name": "all_logins_10m", "count": "*", "from": "logins", "window": "10m"},
    {"name": "user_fraud_2d", "sum": "label", "by": "user_id", "window": "2d", "label_delay": "1d"},
    {"name": "user_fraud_rate_3d", "avg": "label", "by": "user_id", "window": "3d", "label_delay": "12h"},
    {"name": "user_ring_size_2d", "graph": "component_size", "node": "user_id", "links": ["device_id"], "window": "2d"},
    {"name": "user_ring_degree_2d", "graph": "degree", "node": "user_id", "links": ["device_id"], "window": "2d"},
    {"name": "merchant_category", "lookup": "merchants.category"},
    {"name": "merchant_since", "lookup": "merchants.updated_at"},
    {"name": "device_kind", "lookup": "devices.kind"},
    {"name": "ip_country", "lookup": "ip_ranges.country"},
    {"name": "days_since_update", "sql": "date_diff('day', merchant_since, ts)"},
    {"name": "seconds_since_login", "sql": "date_diff('second', user_last_login_2d, ts)"},
    {"name": "amount_vs_user", "sql": "amount / nullif(user_amount_1d, 0)"},
]
STRATEGY = {
    "name": "mixed", "params": {"burst": 2},
    "rules": [
        {"name": "trusted", "when": "device_kind = 'k0' AND amount < 40", "action": "allow"},
        {"name": "burst", "when": "user_orders_1h >= $burst OR pair_orders_1h >= 2", "action": "block"},
        {"name": "bad_history", "when": "user_fraud_2d >= 1 AND dayofweek(ts) IN (0, 6)", "action": "review"},
        {"name": "fresh_login", "when": "seconds_since_login < 600 AND ip_country IN ('c1', 'c4')", "action": "review"},
        {"name": "toys_spike", "when": "merchant_category = 'toys' AND amount_vs_user > 1.5", "action": "block"},
        {"name": "crowded", "when": "all_orders_30m > 3 AND upper(channel) = 'LIVE'", "action": "review"},
        {"name": "ring", "when": "user_ring_size_2d >= 4 AND new_device_for_user = 1", "action": "review"},
    ],
}
BASE = {"name": "base", "rules": [{"name": "burst", "when": "user_orders_1h >= 3", "action": "block"}]}


@pytest.fixture(scope="module")
def mixed_ws(tmp_path_factory):
    events = test_tables.make_events()
    root = tmp_path_factory.mktemp("spark")
    dataset = {**BASE_DATASET, "tables": test_tables.TABLES, "streams": {"logins": test_streams.STREAM},
               "features": FEATURES}
    ws = write_workspace(root, events, dataset, strategies={"mixed": STRATEGY, "base": BASE})
    test_tables.workspace(root, events, test_tables.make_merchants(events))  # the tables' files
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    test_streams.make_logins(events).to_csv(root / "data" / "logins.csv", index=False)
    load(ws)
    return ws


@pytest.fixture(scope="module")
def spark_session(mixed_ws, spark):  # noqa: F811
    """A Session on engine spark, its frame built once for the module."""
    with Session(mixed_ws, engine="spark", spark=spark) as session:
        session.spark_engine()
        yield session


def _rounded(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table with every DOUBLE rounded to 9 decimals (an avg may differ in its last bits by summation order)."""
    types = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    cols = [f'round("{c}", 9) AS "{c}"' if t == "DOUBLE" else f'"{c}"' for c, t in types]
    return f"SELECT {', '.join(cols)} FROM {table}"


def test_the_frame_built_on_spark_equals_duckdbs(mixed_ws, spark_session):
    import pyarrow.parquet as pq

    with spark_session.cursor() as cur:
        duck_frame = cur.sql("SELECT * FROM frame").to_arrow_table()
    spark_frame = pq.read_table(spark_session.spark_engine().root / "frame")
    con = duckdb.connect()
    try:
        con.register("frame", duck_frame)
        con.register("spark_frame", spark_frame)
        ours = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE frame)").fetchall()]
        theirs = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE spark_frame)").fetchall()]
        assert theirs == ours
        assert con.execute("SELECT count(*) FROM spark_frame").fetchall()[0][0] == 300
        duck, spark_rows = _rounded(con, "frame"), _rounded(con, "spark_frame")
        for a, b in ((duck, spark_rows), (spark_rows, duck)):
            extra = con.execute(f"SELECT * FROM ({a} EXCEPT ALL {b}) LIMIT 3").fetchall()
            assert not extra, extra
        nonzero = con.execute("SELECT count(*) FROM frame WHERE user_fraud_2d > 0 AND user_logins_1h > 0 "
                              "AND ip_country IS NOT NULL").fetchall()[0][0]
        assert nonzero > 0  # the features under test are not all empty
    finally:
        con.close()


def test_a_backtest_on_spark_writes_duckdbs_report(mixed_ws, spark_session):
    from riskconsole.report import Baseline

    path = mixed_ws.strategies_dir / "mixed.yaml"
    baseline = Baseline(mixed_ws.strategies_dir / "base.yaml", bootstrap=50)
    with Session(mixed_ws) as duck:
        want = duck.backtest(path, baseline=baseline, by="channel").report
    got = spark_session.backtest(path, baseline=baseline, by="channel").report
    assert got["overall"]["flagged"] > 0 and got["compare"]["changed"]
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(want, default=str)))


def test_the_spark_frame_is_cached_per_data_version(mixed_ws, spark_session, spark):  # noqa: F811
    engine = spark_session.spark_engine()
    with Session(mixed_ws, engine="spark", spark=spark) as again:
        assert again.spark_engine().root == engine.root and "frame" not in again.spark_engine().seconds


def test_the_cli_backtests_on_spark_and_says_so(mixed_ws, spark_session, tmp_path, capsys):
    """`backtest --engine spark` reuses this data version's Spark frame (the test run's session is the one found)."""
    from riskconsole.cli import main

    args = ["backtest", str(mixed_ws.strategies_dir / "mixed.yaml"), "--workspace", str(mixed_ws.root),
            "--format", "json"]
    assert main([*args, "--engine", "spark", "--out", str(tmp_path / "spark")]) == 0
    assert "computed on spark (local[*]); wrote" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "duck")]) == 0
    assert "computed on duckdb; wrote" in capsys.readouterr().out
    got, want = (json.loads((tmp_path / side / "report.json").read_text()) for side in ("spark", "duck"))
    assert_same(got, want)


def test_a_strategy_reading_a_list_is_refused_on_spark(mixed_ws, spark_session, spark):  # noqa: F811
    (mixed_ws.root / "lists").mkdir(exist_ok=True)
    (mixed_ws.root / "lists" / "blocked_users.csv").write_text("value\n3\n")
    path = mixed_ws.strategies_dir / "listed.yaml"
    path.write_text(yaml.safe_dump({"name": "listed", "rules": [
        {"name": "blocked", "when": "user_id IN LIST blocked_users", "action": "block"}]}))
    try:
        with Session(mixed_ws, engine="spark", spark=spark) as session, pytest.raises(
                RiskConsoleError, match=r"^listed: reads list 'blocked_users' \(IN LIST\): lists do not run on engine "
                                        r"spark yet \(run with --engine duckdb\)$"):
            session.backtest(path)
    finally:
        (mixed_ws.root / "lists" / "blocked_users.csv").unlink()


def test_engine_precedence_and_bad_names(monkeypatch):
    from riskconsole.cli import ENGINES as FLAG_CHOICES
    from riskconsole.config import ENGINES

    assert FLAG_CHOICES == ENGINES
    dataset = Dataset.model_validate({"source": "x.csv", "columns": {"id": "a", "time": "t"}, "engine": "spark"})
    monkeypatch.delenv("RISKCONSOLE_ENGINE", raising=False)
    assert choose(None, dataset) == "spark" and choose("duckdb", dataset) == "duckdb"
    monkeypatch.setenv("RISKCONSOLE_ENGINE", "duckdb")
    assert choose(None, dataset) == "duckdb" and choose("spark", dataset) == "spark"
    monkeypatch.setenv("RISKCONSOLE_ENGINE", "flink")
    with pytest.raises(ConfigError, match=r"^\$RISKCONSOLE_ENGINE flink: unknown engine \(engines: duckdb, spark\)$"):
        choose(None, dataset)


def test_engine_flink_in_the_dataset_is_one_line_listing_the_engines():
    from riskconsole.config import parse_model

    with pytest.raises(ConfigError) as err:
        parse_model({"source": "x.csv", "columns": {"id": "a", "time": "t"}, "engine": "flink"}, Dataset,
                    "data/dataset.yaml")
    assert str(err.value) == "data/dataset.yaml: engine: Input should be 'duckdb' or 'spark'"


def test_what_spark_cannot_render_exactly_is_refused_naming_the_engine():
    """The expression checker already refuses such functions for every engine; the Spark engine checks again."""
    from sqlglot import exp

    from riskconsole.engines.spark import render

    node = exp.DateDiff(this=exp.column("ts"), expression=exp.column("ts"), unit=exp.var("WEEK"))
    with pytest.raises(RiskConsoleError, match="rule 'r': cannot be rendered exactly for engine spark: date_diff unit"):
        render(node, "rule 'r'")


def test_missing_java_says_what_to_install(monkeypatch):
    from riskconsole.engines import spark as engine

    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert engine.missing() == ("engine spark needs Java 17 on PATH: apt-get install openjdk-17-jre-headless, "
                                "or set JAVA_HOME")
