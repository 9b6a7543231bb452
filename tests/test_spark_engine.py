"""Engine spark (DESIGN §7, issue 15): the frame Spark builds equals DuckDB's, row for row, and a backtest on Spark
writes DuckDB's report.json.

One small workspace holds every kind of feature (windows, stddev, first_seen, compound key, by-less, stream,
label, lookups: key, as-of and range, graph, derived). Spark runs in the test run's one session (`spark` of
conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from sqlglot import exp

import test_streams
import test_tables
from conftest import BASE_DATASET, assert_same, write_workspace
from riskconsole.config import Dataset
from riskconsole.engines import choose
from riskconsole.errors import ConfigError, RiskConsoleError
from riskconsole.ingest import load
from riskconsole.session import Session

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
    {"name": "user_failed_1h", "count": "*", "from": "logins", "by": "user_id", "window": "1h", "where": "success = 0"},
    {"name": "all_failed_10m", "count": "*", "from": "logins", "window": "10m", "where": "NOT (success = 1)"},
    {"name": "user_big_1d", "sum": "amount", "by": "user_id", "window": "1d", "where": "amount > 50"},
    # keyed distinct counts, minima, maxima and deviations: sweeps on Spark, DuckDB's own windows (docs/scale.md)
    {"name": "pair_merchants_1d", "count_distinct": "merchant_id", "by": ["user_id", "device_id"], "window": "1d"},
    {"name": "user_min_amount_1d", "min": "amount", "by": "user_id", "window": "1d", "where": "amount > 20"},
    {"name": "device_max_amount_2h", "max": "amount", "by": "device_id", "window": "2h"},
    {"name": "device_login_users_1d", "count_distinct": "user_id", "from": "logins", "by": "device_id",
     "window": "1d"},
    {"name": "user_spend_sd_1d", "stddev": "spend", "from": "logins", "by": "user_id", "window": "1d"},
    {"name": "all_users_1h", "count_distinct": "user_id", "window": "1h"},  # by-less: a sweep per time bucket
    {"name": "all_login_devices_10m", "count_distinct": "device_id", "from": "logins", "window": "10m"},
    {"name": "user_fraud_2d", "sum": "label", "by": "user_id", "window": "2d", "label_delay": "1d"},
    {"name": "user_fraud_rate_3d", "avg": "label", "by": "user_id", "window": "3d", "label_delay": "12h"},
    {"name": "user_ring_size_2d", "graph": "component_size", "node": "user_id", "links": ["device_id"], "window": "2d"},
    {"name": "user_ring_degree_2d", "graph": "degree", "node": "user_id", "links": ["device_id"], "window": "2d"},
    {"name": "user_ring_fraud_3d", "graph": "fraud_share", "node": "user_id", "links": ["device_id", "ip_num"],
     "window": "3d", "max_degree": 4, "label_delay": "1d"},
    {"name": "merchant_category", "lookup": "merchants.category"},
    {"name": "merchant_since", "lookup": "merchants.updated_at"},
    {"name": "device_kind", "lookup": "devices.kind"},
    {"name": "ip_country", "lookup": "ip_ranges.country"},
    {"name": "days_since_update", "sql": "date_diff('day', merchant_since, ts)"},
    {"name": "seconds_since_login", "sql": "date_diff('second', user_last_login_2d, ts)"},
    {"name": "amount_vs_user", "sql": "amount / nullif(user_amount_1d, 0)"},
    # a zero divisor: DuckDB's Infinity (the first order of an hour), where Spark's ANSI divide failed the build
    {"name": "amount_per_order_1h", "sql": "amount / user_orders_1h"},
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
        {"name": "first_big", "when": "amount_per_order_1h > 1e308 AND amount > 150", "action": "review"},
    ],
}
BASE = {"name": "base", "rules": [{"name": "burst", "when": "user_orders_1h >= 3", "action": "block"}]}


def hidden_outcomes(events):
    """What production did (DESIGN §6.2): orders over 150 blocked, a third of those let through at random
    (propensity 0.3); the label of every third blocked, unexplored order never arrived."""
    import numpy as np

    blocked = (events["amount"] > 150).to_numpy()
    explored = blocked & (np.arange(len(events)) % 3 == 1)
    events["prod_action"] = np.where(blocked, " Block", "allow")  # DuckDB's lower(trim(...)) reads it as block
    events["explore"] = np.where(explored, "true", "0")
    events["propensity"] = np.where(explored, 0.3, np.nan)
    events["is_fraud"] = events["is_fraud"].astype("Int64")
    events.loc[blocked & ~explored & (np.arange(len(events)) % 3 == 0), "is_fraud"] = pd_na()
    return events


def pd_na():
    import pandas as pd

    return pd.NA


@pytest.fixture(scope="module")
def mixed_ws(tmp_path_factory):
    events = hidden_outcomes(test_tables.make_events())
    root = tmp_path_factory.mktemp("spark")
    dataset = {**BASE_DATASET, "tables": test_tables.TABLES, "streams": {"logins": test_streams.STREAM},
               "features": FEATURES}
    dataset["columns"] = {**BASE_DATASET["columns"], "prod_action": "prod_action", "explore": "explore",
                          "propensity": "propensity"}
    ws = write_workspace(root, events, dataset, strategies={"mixed": STRATEGY, "base": BASE})
    test_tables.workspace(root, events, test_tables.make_merchants(events))  # the tables' files
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    test_streams.make_logins(events).to_csv(root / "data" / "logins.csv", index=False)
    load(ws)
    return ws


@pytest.fixture(scope="module")
def spark_session(mixed_ws, spark):
    """A Session on engine spark, its frame built once for the module."""
    with Session(mixed_ws, engine="spark", spark=spark) as session:
        session.spark_engine()
        yield session


@pytest.fixture
def spark_queries(spark_session, monkeypatch) -> list[str]:
    """The strategies whose queries the Spark engine ran during a test (proof that a result came from Spark)."""
    engine, ran = spark_session.spark_engine(), []
    arrow = engine.arrow

    def counted(query, strategy):
        ran.append(strategy)
        return arrow(query, strategy)

    monkeypatch.setattr(engine, "arrow", counted)
    return ran


def test_sweep_and_optimize_on_spark_give_duckdbs_points(mixed_ws, spark_session, spark_queries):
    from riskconsole.backtest import Window

    path, window = mixed_ws.strategies_dir / "mixed.yaml", Window()
    with Session(mixed_ws) as duck:
        want = duck.sweep(path, "burst", [1, 2, 3, 5], window)
        want_best = duck.optimize(path, {"burst": "1:4:1"}, window, max_overflow_days=40)
    got = spark_session.sweep(path, "burst", [1, 2, 3, 5], window)
    got_best = spark_session.optimize(path, {"burst": "1:4:1"}, window, max_overflow_days=40)
    assert spark_queries.count("mixed") == 2  # one grouped pass each
    assert got["method"] == "grid" and len({p["flagged"] for p in got["points"]}) > 1
    assert_same(got, want)
    assert_same(got_best, want_best)


def _rounded(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table with every DOUBLE rounded to 9 decimals (an avg may differ in its last bits by summation order)."""
    types = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    cols = [f'round("{c}", 9) AS "{c}"' if t == "DOUBLE" else f'"{c}"' for c, t in types]
    return f"SELECT {', '.join(cols)} FROM {table}"


def assert_same_rows(con: duckdb.DuckDBPyConnection, ours: str, theirs: str) -> None:
    """`ours EXCEPT ALL theirs` and `theirs EXCEPT ALL ours` are empty, every DOUBLE rounded to 9 decimals first."""
    a, b = _rounded(con, ours), _rounded(con, theirs)
    for left, right in ((a, b), (b, a)):
        extra = con.execute(f"SELECT * FROM ({left} EXCEPT ALL {right}) LIMIT 3").fetchall()
        assert not extra, extra


def test_event_positions_on_spark_are_numbered_per_hour_with_duckdbs_numbers(spark):
    """`_pos` (a row_number over every event, by time and id) runs on Spark as one row_number per hour plus the
    events of the hours before (`streams.numbered`), since a row_number with no partition runs in one task: the
    numbers equal DuckDB's plain row_number on rows with ties at one instant, times a microsecond either side of an
    hour's edge, hours with no rows and times before 1970; Spark's row_number window is partitioned by the hour."""
    import re

    import numpy as np
    import pyarrow as pa
    from sqlglot import exp

    from riskconsole.engines.spark import render
    from riskconsole.sqlbuild import fill, ident, lit
    from riskconsole.streams import HOUR, numbered

    rng = np.random.default_rng(11)
    n = 5000
    hours = rng.choice(np.arange(-30, 400, 3), n)  # every third hour only: the others hold no row
    edge = rng.choice([0, 1, HOUR - 1, HOUR // 2, 777], n)  # a µs after an hour starts, or before it ends
    t = hours * HOUR + np.where(rng.random(n) < 0.3, 0, edge)  # many rows share an hour's first instant
    rows = pa.table({"id": rng.permutation(n) * 7 - 9000, "t": t, "x": rng.integers(0, 5, n)})
    con = duckdb.connect()
    con.register("ev", rows)
    want = dict(con.execute("SELECT id, row_number() OVER (ORDER BY t, id) FROM ev").fetchall())
    spark.createDataFrame(rows.to_pandas()).createOrReplaceTempView("ev")
    query = numbered(fill("SELECT *, t AS _t FROM ev"), ["id", "t", "x", "_t"], [ident("t"), ident("id")],
                     exp.IntDiv(this=exp.column("_t"), expression=lit(HOUR)))
    frame = spark.sql(render(query, "test"))
    got = {r["id"]: r["_pos"] for r in frame.collect()}
    assert len(got) == n and got == want
    assert frame.columns == ["id", "t", "x", "_t", "_pos"]
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"Window \[row_number\(\) windowspecdefinition\(__b#", plan), plan


def test_as_of_lookup_versions_are_numbered_per_key_on_spark(spark):
    """An as-of lookup numbers a table's versions per key (`lookups._ASOF`): a row_number over the whole table would
    run in one Spark task, which a user table of hundreds of millions of versions cannot afford. Each event gets the
    version of its key valid at its time (the latest valid_from at or before it; none before the first), on DuckDB
    and Spark alike, checked against a plain Python scan; Spark's plan moves no rows to a single partition."""
    import bisect

    import numpy as np
    import pyarrow as pa
    from sqlglot import exp

    from riskconsole import lookups
    from riskconsole.engines.spark import render
    from riskconsole.sqlbuild import alias, fill, ident
    from riskconsole.streams import micros

    rng = np.random.default_rng(5)
    n, keys = 3000, 40
    versions = pa.table({"k": np.repeat(np.arange(keys), 6), "tier": rng.integers(0, 1000, keys * 6),
                         # each key's six versions at distinct times; keys share times (ties across keys)
                         "vf": np.concatenate([rng.choice(np.arange(0, 200, 10), 6, replace=False)
                                               for _ in range(keys)]) * 1_000_000})
    versions = versions.set_column(2, "vf", pa.compute.cast(versions["vf"], pa.timestamp("us")))
    events = pa.table({"_pos": np.arange(n), "k": rng.integers(0, keys + 3, n),  # 3 keys with no version
                       "_t": rng.choice(np.arange(-5, 205, 5), n) * 1_000_000})  # on, before and after each vf
    by_key: dict[int, list[tuple[int, int]]] = {}
    for k, vf, tier in zip(versions["k"].to_pylist(), versions["vf"].cast(pa.int64()).to_pylist(),
                           versions["tier"].to_pylist()):
        by_key.setdefault(k, []).append((vf, tier))
    want = {}
    for pos, k, t in zip(events["_pos"].to_pylist(), events["k"].to_pylist(), events["_t"].to_pylist()):
        found = sorted(by_key.get(k, []))
        i = bisect.bisect_right([vf for vf, _ in found], t)
        if i:
            want[pos] = found[i - 1][1]
    query = fill(lookups._ASOF, tbl=exp.to_table("table_v"), base=exp.to_table("ev"), key=ident("k"),
                 vf=ident("vf"), vt=micros(ident("vf")), ekey=ident("k"), vkey=exp.column("k", "v", quoted=True))
    query = query.select(alias(exp.column("tier", "v", quoted=True), "tier"), append=True)
    con = duckdb.connect()
    con.register("table_v", versions)
    con.register("ev", events)
    assert dict(con.execute(query.sql(dialect="duckdb")).fetchall()) == want
    spark.createDataFrame(versions.to_pandas()).repartition(4).createOrReplaceTempView("table_v")
    spark.createDataFrame(events.to_pandas()).repartition(4).createOrReplaceTempView("ev")
    frame = spark.sql(render(query, "test"))
    assert {r["_pos"]: r["tier"] for r in frame.collect()} == want
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "SinglePartition" not in plan, plan


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
        assert_same_rows(con, "frame", "spark_frame")
        nonzero = con.execute("SELECT count(*) FILTER (user_fraud_2d > 0 AND user_logins_1h > 0 AND ip_country IS "
                              "NOT NULL), count(*) FILTER (user_ring_fraud_3d > 0), count(*) FILTER "
                              "(user_ring_size_2d > 2), count(*) FILTER (user_failed_1h > 0), count(*) FILTER "
                              "(all_failed_10m > 0), count(*) FILTER (user_big_1d > 0), count(*) FILTER "
                              "(pair_merchants_1d > 1), count(*) FILTER (user_min_amount_1d < device_max_amount_2h), "
                              "count(*) FILTER (device_login_users_1d > 1), count(*) FILTER (user_spend_sd_1d > 0), "
                              "count(*) FILTER (all_users_1h > 1), count(*) FILTER (all_login_devices_10m > 1) "
                              "FROM frame").fetchall()[0]
        assert all(nonzero), str(nonzero)  # the features under test are not all empty
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
    overall = got["overall"]  # the outcomes production hid (DESIGN §6.2) are part of the report
    assert overall["observability"]["unobservable"] > 0 and overall["estimate"]["recall"]["interval"]
    assert got["compare"]["bounds"]["delta"]["recall"][0] is not None
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(want, default=str)))


def test_the_spark_frame_is_cached_per_data_version(mixed_ws, spark_session, spark):
    engine = spark_session.spark_engine()
    with Session(mixed_ws, engine="spark", spark=spark) as again:
        assert again.spark_engine().root == engine.root and "frame" not in again.spark_engine().seconds


def test_the_cli_backtests_on_spark_and_says_so(mixed_ws, spark_session, spark, tmp_path, capsys):
    """`backtest --engine spark` reuses this data version's Spark frame (the test run's session is the one found);
    decisions.parquet is computed on Spark and is DuckDB's file."""
    import pyarrow.parquet as pq

    from riskconsole.cli import main

    args = ["backtest", str(mixed_ws.strategies_dir / "mixed.yaml"), "--workspace", str(mixed_ws.root),
            "--format", "json,parquet"]
    assert main([*args, "--engine", "spark", "--out", str(tmp_path / "spark")]) == 0
    assert "computed on spark (local[*]); wrote" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "duck")]) == 0
    assert "computed on duckdb; wrote" in capsys.readouterr().out
    got, want = (json.loads((tmp_path / side / "report.json").read_text()) for side in ("spark", "duck"))
    assert_same(got, want)
    population = want["overall"]["population"]  # the CLI's default window: the mature days (report.window.note)
    got, want = (pq.read_table(tmp_path / side / "decisions.parquet") for side in ("spark", "duck"))
    keys = [("id", "ascending")]
    assert got.num_rows == population > 0 and got.schema == want.schema and got.sort_by(keys).equals(want.sort_by(keys))
    assert (tmp_path / "spark" / "decisions.parquet").read_bytes() == (tmp_path / "duck" / "decisions.parquet").read_bytes()


def test_a_query_spark_fails_is_one_line_not_pysparks_json_log(mixed_ws, spark_session, tmp_path, capsys):
    """An integer remainder by zero fails on both engines; on Spark the CLI says so in one line, and PySpark's
    query-context logger (which printed the error and the JVM's stack trace as JSON on stderr, twice) is off."""
    import logging

    from pyspark.logger import PySparkLogger

    from riskconsole.cli import main

    path = mixed_ws.strategies_dir / "zero.yaml"
    path.write_text(yaml.safe_dump({"name": "zero", "rules": [
        {"name": "mod", "when": "user_orders_1h % (user_orders_1h - user_orders_1h) = 0", "action": "review"}]}))
    try:
        code = main(["backtest", str(path), "--workspace", str(mixed_ws.root), "--engine", "spark",
                     "--out", str(tmp_path / "zero")])
    finally:
        path.unlink()
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.count("\n") == 0 and "on spark failed: [REMAINDER_BY_ZERO]" in err, err
    assert not PySparkLogger.getLogger("SQLQueryContextLogger").isEnabledFor(logging.ERROR)


LISTS = {  # values DuckDB's TRY_CAST reads and Spark's would not ('5.0', '1e1', '0x0b', '1_9'), expiries at event times
    "blocked_users": "value,expires,note\n3,,\n5.0,2026-03-02 10:00,float text\n1e1,,\n0x0b,2026-03-03T12:00:00+02:00,\n"
                     "1_9,,\nabc,,never an id\n7,2026-02-01,expired before the data\n",
    "countries": "value\nc1\nc4\n",
    "devices": "value,added,expires\n2,,2026-03-02 13:00\n4,2026-03-02T06:00:00-03:00,\n9,,2026-03-04\n"
               "2,2026-03-03,2026-03-03 18:00\n",
    "ips": "value\n17\n3.0e2\n0x1F4\n",
    "quiet": "value\nLIVE\nweb\n",
}
LISTED = {
    "name": "listed", "population": "channel NOT IN LIST quiet",
    "rules": [
        {"name": "blocked", "when": "user_id IN LIST blocked_users", "action": "block"},
        {"name": "not_home", "when": "amount > 60 AND NOT (ip_country IN LIST countries AND user_id > 5)",
         "action": "review"},
        {"name": "device", "when": "device_id NOT IN LIST devices AND user_orders_1h >= 2", "action": "review"},
        {"name": "ip", "when": "NOT (ip_num IN LIST ips OR amount < 30)", "action": "review"},
        {"name": "vouched", "when": "device_id IN LIST devices AND amount < 50", "action": "allow"},
    ],
}


@pytest.fixture
def listed(mixed_ws):
    """A strategy whose rules and population read five lists (removed after the test)."""
    (mixed_ws.root / "lists").mkdir(exist_ok=True)
    for name, text in LISTS.items():
        (mixed_ws.root / "lists" / f"{name}.csv").write_text(text)
    path = mixed_ws.strategies_dir / "listed.yaml"
    path.write_text(yaml.safe_dump(LISTED, sort_keys=False))
    yield path
    for name in LISTS:
        (mixed_ws.root / "lists" / f"{name}.csv").unlink()
    path.unlink()


def test_a_strategy_reading_lists_gives_duckdbs_report_on_spark(mixed_ws, spark_session, listed, spark_queries):
    """Values typed as DuckDB types them, expiry against the event time, NULL columns as DuckDB's NULL IN."""
    with Session(mixed_ws) as duck:
        run = duck.backtest(listed)
        want, want_rows = run.report, duck.decisions(run)
    run = spark_session.backtest(listed)
    got, got_rows = run.report, spark_session.decisions(run)
    assert got_rows.schema == want_rows.schema and got_rows.equals(want_rows)  # both sorted by (time, id)
    assert got_rows.num_rows == want["overall"]["population"] and spark_queries.count("listed") >= 2
    rules = {r["name"]: r["hits"] for r in want["rules"]}
    assert all(rules.values()) and got["overall"]["population"] < 300, rules
    assert [entry["name"] for entry in got["lists"]] == ["blocked_users", "countries", "devices", "ips", "quiet"]
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(want, default=str)))


def test_list_values_are_typed_by_duckdb_for_spark(mixed_ws, listed, spark):
    """The Spark view holds DuckDB's TRY_CAST of each value (Spark's own cast reads '5.0' or '0x0b' as NULL)."""
    from sqlglot import exp

    from riskconsole.engines.spark_lists import SparkLists

    lists = SparkLists(spark, mixed_ws.lists(Dataset.model_validate(
        {"source": "x.csv", "columns": {"id": "event_id", "time": "ts"}})))
    view = lists.view("blocked_users", exp.DataType.build("BIGINT"))
    assert [r[0] for r in spark.table(view).collect()] == [3, 5, 10, 11, 19, None, 7]
    assert [r[0] for r in spark.sql("SELECT try_cast(v AS BIGINT) FROM VALUES ('5.0'), ('0x0b') AS t(v)")
            .collect()] == [None, None]


@pytest.mark.parametrize("text", ["value\n3\n5.0\n", "value,expires\n3,\n5.0,2026-03-02\n"])
def test_in_list_on_spark_keeps_duckdbs_null_and_types(tmp_path, spark, text):
    """`NOT (x IN LIST l AND y > 0)` row by row on both engines, with and without expiry: a NULL x gives NULL
    (Spark's bare IN-subquery would say false, and NOT would make it a hit), '5.0' matches 5."""
    import datetime as dt

    import pyarrow as pa

    from riskconsole.engines.spark import render
    from riskconsole.engines.spark_lists import SparkLists
    from riskconsole.lists import ListSet
    from riskconsole.sqlbuild import fill

    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "l.csv").write_text(text)
    lists = ListSet(tmp_path / "lists", "ts", tmp_path)
    rows = pa.table({"k": [1, 2, 3, 4], "x": pa.array([None, 3, 5, 6], pa.int64()), "y": [1, 1, 1, 1],
                     "ts": pa.array([dt.datetime(2026, 3, 1)] * 4, pa.timestamp("us"))})
    query = exp.select("k", exp.alias_(fill("NOT (:c AND y > 0)", c=lists.render("l", "x", "BIGINT", "t")), "v")) \
        .from_("t").order_by("k")
    con = duckdb.connect()
    lists.register(con)
    con.register("t", rows)
    want = [v for _, v in con.execute(query.sql(dialect="duckdb")).fetchall()]
    spark.createDataFrame(rows.cast(pa.schema([*rows.schema][:3] + [pa.field("ts", pa.timestamp("us", "UTC"))]))) \
        .createOrReplaceTempView("t")
    got = [r["v"] for r in spark.sql(render(SparkLists(spark, lists).rewrite(query), "t")).collect()]
    assert want == [None, False, False, True] and got == want


DETECTOR = {"name": "lgbm", "kind": "lightgbm",
            "features": ["amount", "user_orders_1h", "user_amount_sd_1d", "channel", "merchant_category", "ip_num"],
            "train": {"from": "2026-03-01", "to": "2026-03-02"}, "valid": {"from": "2026-03-03", "to": "2026-03-04"},
            "params": {"num_leaves": 7, "min_data_in_leaf": 3, "num_iterations": 40, "early_stopping_round": 100,
                       "calibration": "none"}}  # ~150 training rows: let the trees grow, keep every score apart
SCORED = {"name": "scored", "params": {"cut": 0.2},  # the hidden outcomes keep scores near 0.18-0.28
          "rules": [{"name": "model", "when": "lgbm >= $cut AND amount > 20", "action": "review"},
                    {"name": "burst", "when": "user_orders_1h >= 3", "action": "block"}]}


def test_lightgbm_scores_are_computed_on_spark_and_match_duckdbs(mixed_ws, spark_session, spark):
    """Runs last on mixed_ws (it trains a detector there): scores by mapInArrow on the executors, within 1e-6 of
    DuckDB's; a backtest and a threshold sweep (the sorted-scores pass) reading them give DuckDB's answers."""
    import numpy as np

    from riskconsole.backtest import Window
    from riskconsole.detectors import train_detector

    spark_session.close()  # its read-only connection would keep training from writing the database
    (mixed_ws.root / "detectors").mkdir(exist_ok=True)
    (mixed_ws.root / "detectors" / "lgbm.yaml").write_text(yaml.safe_dump(DETECTOR, sort_keys=False))
    (mixed_ws.strategies_dir / "scored.yaml").write_text(yaml.safe_dump(SCORED, sort_keys=False))
    train_detector(mixed_ws, mixed_ws.root / "detectors" / "lgbm.yaml")
    path, cuts = mixed_ws.strategies_dir / "scored.yaml", [0.1, 0.2, 0.3, 0.4, 0.5]
    with Session(mixed_ws) as duck:
        with duck.cursor() as cur:
            want = cur.sql("SELECT _pos, lgbm FROM scores_lgbm ORDER BY _pos").to_arrow_table()
        want_report, want_sweep = duck.backtest(path).report, duck.sweep(path, "cut", cuts, Window())
    with Session(mixed_ws, engine="spark", spark=spark) as session:
        engine = session.spark_engine()
        assert "score lgbm" in engine.seconds and "frame" not in engine.seconds  # scored here, frame reused
        got = spark.table("scores_lgbm").orderBy("_pos").toArrow()
        got_report, got_sweep = session.backtest(path).report, session.sweep(path, "cut", cuts, Window())
    assert got.column("_pos").to_pylist() == want.column("_pos").to_pylist()
    ours, theirs = (t.column("lgbm").to_numpy() for t in (got, want))
    assert np.abs(ours - theirs).max() <= 1e-6 and np.unique(theirs).size > 10
    assert got_report["rules"][0]["hits"] > 0 and got_sweep["method"] == "sorted-scores"
    assert_same(json.loads(json.dumps(got_report, default=str)), json.loads(json.dumps(want_report, default=str)))
    assert_same(got_sweep, want_sweep)


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
    from riskconsole.config import SparkSettings

    remote = SparkSettings(remote="sc://spark.example:15002", store="s3a://bucket/riskconsole")
    local = SparkSettings(remote="local[2]")
    assert engine.missing(remote) is None and engine.missing(local) == engine.missing()  # a Connect client: no Java
    found = engine.importlib.util.find_spec

    def without_google(name):  # gRPC there, protobuf's `google` package not: find_spec raises
        if name.startswith("google"):
            raise ModuleNotFoundError(f"No module named '{name.split('.')[0]}'")
        return found(name)

    monkeypatch.setattr(engine.importlib.util, "find_spec", without_google)
    assert engine.missing(remote) == engine.missing(local) == (
        "spark.remote needs PySpark's Spark Connect client: pip install 'pyspark[connect]==4.3.*'")
    assert engine.missing(SparkSettings()) == engine.missing()  # classic Spark needs no gRPC
    monkeypatch.setattr(engine.importlib.util, "find_spec", found)
    with pytest.raises(RiskConsoleError) as err:  # in seconds: PySpark's client would retry for minutes
        engine.start(SparkSettings(remote="sc://localhost:1/;token=s3cret"))
    assert str(err.value).startswith("spark.remote sc://localhost:1: no Spark Connect server answers there (")
    assert str(err.value).endswith("): start it (start-connect-server.sh), or check the host and port")
    assert "s3cret" not in str(err.value)
    conf = engine.session_conf(remote)  # a server's static settings are its own
    assert conf == {"spark.sql.session.timeZone": "UTC", "spark.sql.parser.quotedRegexColumnNames": False}
    assert "spark.driver.memory" in engine.session_conf(local)
    regex = SparkSettings(conf={"spark.sql.parser.quotedRegexColumnNames": True})  # a `name` is a name, not a pattern
    assert engine.session_conf(regex)["spark.sql.parser.quotedRegexColumnNames"] is False



def test_a_java_home_without_java_is_named_not_passed_over(monkeypatch, tmp_path):
    """Spark's launcher runs $JAVA_HOME/bin/java whenever JAVA_HOME is set: a stale JAVA_HOME beside PATH's java was
    a PySpark traceback (JAVA_GATEWAY_EXITED), not one line."""
    from riskconsole.engines import spark as engine

    monkeypatch.setattr(engine.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk-removed"))
    assert engine.missing() == (f"engine spark: $JAVA_HOME {tmp_path / 'jdk-removed'} has no bin/java: point "
                                "JAVA_HOME at a Java 17 installation (e.g. /usr/lib/jvm/java-17-openjdk-amd64), or "
                                "unset it to use PATH's java")
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    (tmp_path / "jdk" / "bin" / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)  # JAVA_HOME's java is enough
    assert engine.missing() is None


def test_a_java_that_cannot_start_spark_is_one_line(tmp_path):
    """An older Java (Spark 4 needs 17) exits before PySpark's gateway gets its port: one line, not a traceback."""
    import subprocess
    import sys

    java = tmp_path / "jdk11" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'UnsupportedClassVersionError: class file version 61.0' >&2\nexit 1\n")
    java.chmod(0o755)
    code = ("from riskconsole.config import SparkSettings\nfrom riskconsole.engines.spark import start\n"
            "from riskconsole.errors import RiskConsoleError\ntry:\n    start(SparkSettings(master='local[1]'))\n"
            "except RiskConsoleError as err:\n    print('ERROR', err)\n")
    env = {**__import__("os").environ, "JAVA_HOME": str(tmp_path / "jdk11"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # this checkout's riskconsole
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip() == (f"ERROR engine spark: Java ({java}) exited before Spark started (its own message "
                                   f"is above): Spark 4 needs Java 17 or later (check `{java} -version`; apt-get "
                                   "install openjdk-17-jre-headless, or set JAVA_HOME), and a Java option of "
                                   "spark.conf or spark-defaults.conf must be one the JVM takes")


def test_local_mode_gives_the_driver_a_third_of_the_machine_unless_the_dataset_says(monkeypatch):
    """Spark's own 1g heap ran out building the 1M demo's frame in local mode (every task runs in the driver)."""
    from riskconsole.config import SparkSettings
    from riskconsole.engines import spark as engine

    monkeypatch.setattr(engine.os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 6 * 2**30 // 4096
                                                               * 4}[name])  # 24 GB
    assert engine.session_conf(SparkSettings())["spark.driver.memory"] == "8g"
    assert engine.session_conf(SparkSettings(driver_memory="3g"))["spark.driver.memory"] == "3g"
    assert engine.session_conf(SparkSettings(conf={"spark.driver.memory": "2g"}))["spark.driver.memory"] == "2g"
    assert "spark.driver.memory" not in engine.session_conf(SparkSettings(master="spark://host:7077"))
    monkeypatch.setattr(engine.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else 2**30 // 4096)  # 1 GB
    assert engine.session_conf(SparkSettings())["spark.driver.memory"] == "1g"


def test_local_mode_shuffles_in_a_few_tasks_per_core_unless_the_dataset_says(monkeypatch, tmp_path):
    """Local mode's shuffles: at least 8 tasks (Spark's 200 cost minutes on a small machine), 3 per core the master
    gives Spark on a larger one (8 on a 64-core workstation kept 56 cores idle in every window); a cluster keeps
    Spark's, and a `conf:` value wins."""
    from riskconsole.config import SparkSettings
    from riskconsole.engines import spark as engine

    key = "spark.sql.shuffle.partitions"
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(engine, "CGROUP_CPU_MAX", tmp_path / "cpu.max")  # none: no container quota
    monkeypatch.setattr(engine, "CGROUP_V1_CPU", tmp_path)
    for master, tasks in [("local", 8), ("local[2]", 8), ("local[4]", 12), ("local[32]", 96), ("local[*]", 192),
                          ("local[16,3]", 48), ("local[*, 2]", 192), ("local-cluster[2,1,1024]", 8)]:
        assert engine.session_conf(SparkSettings(master=master))[key] == tasks, master
    assert engine.session_conf(SparkSettings(remote="local[4]"))[key] == 12
    for master in ("spark://host:7077", "yarn"):
        assert key not in engine.session_conf(SparkSettings(master=master))
    assert engine.session_conf(SparkSettings(master="local[32]", conf={key: 5}))[key] == 5
    assert engine.session_conf(SparkSettings(master="local[*]", conf={key: "64"}))[key] == "64"


def test_local_star_shuffles_by_the_cores_this_process_may_use_not_the_hosts(monkeypatch, tmp_path):
    """`local[*]` gives Spark the cores the JVM counts (availableProcessors: the CPUs the process may run on, capped
    by a container's quota): 3 tasks per one of those. Counting the host's cores, a container limited to 2 CPUs of a
    64-core host shuffled in 192 tasks, nearly Spark's 200 that local mode avoids."""
    from riskconsole.config import SparkSettings
    from riskconsole.engines import spark as engine

    key = "spark.sql.shuffle.partitions"
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(engine, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(engine, "CGROUP_V1_CPU", tmp_path)
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # taskset -c 0,1
    assert engine.session_conf(SparkSettings(master="local[*]"))[key] == 8
    assert engine.session_conf(SparkSettings(master="local[32]"))[key] == 96  # a count given is Spark's count
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    for quota, tasks in [("200000 100000", 8), ("1600000 100000", 48), ("150000 100000", 8), ("250000 100000", 9),
                         ("max 100000", 192), ("garbage", 192)]:  # docker --cpus 2, 16, 1.5, 2.5; none; unreadable
        (tmp_path / "cpu.max").write_text(quota + "\n")
        assert engine.session_conf(SparkSettings(master="local[*]"))[key] == tasks, quota
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    for quota, tasks in [("400000", 12), ("-1", 192)]:  # cgroup v1 (an older Docker host): --cpus 4; none
        (tmp_path / "cpu.cfs_quota_us").write_text(quota + "\n")
        assert engine.session_conf(SparkSettings(master="local[*]"))[key] == tasks, quota


def test_local_mode_runs_python_workers_from_the_quiet_daemon_a_users_daemon_winning(monkeypatch, capfd):
    """Local mode's Python workers come from `engines/spark_daemon.py` (their output reaches the user's terminal); a
    cluster's executors keep PySpark's daemon; a daemon named in the dataset's `conf:` wins. Its worker ends with code
    1 and no output where the JVM closed the socket under it (the end-to-end check: test_spark_load's ragged line),
    and leaves every other outcome as PySpark's worker gives it."""
    pytest.importorskip("pyspark")
    from riskconsole.config import SparkSettings
    from riskconsole.engines import spark as engine
    from riskconsole.engines import spark_daemon

    key = "spark.python.daemon.module"
    assert engine.session_conf(SparkSettings())[key] == "riskconsole.engines.spark_daemon"
    assert engine.session_conf(SparkSettings(remote="local[2]"))[key] == "riskconsole.engines.spark_daemon"
    assert key not in engine.session_conf(SparkSettings(master="spark://host:7077"))
    assert engine.session_conf(SparkSettings(conf={key: "mine.daemon"}))[key] == "mine.daemon"

    def worker_that(outcome):
        def run(sock, authenticated):
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return run

    for closed in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "Connection reset by peer")):
        monkeypatch.setattr(spark_daemon, "_pyspark_worker", worker_that(closed))
        assert spark_daemon.worker(None, True) == 1
    assert capfd.readouterr() == ("", "")
    for code in (0, 3):
        monkeypatch.setattr(spark_daemon, "_pyspark_worker", worker_that(code))
        assert spark_daemon.worker(None, False) == code
    monkeypatch.setattr(spark_daemon, "_pyspark_worker", worker_that(ValueError("a worker's own failure")))
    with pytest.raises(ValueError, match="a worker's own failure"):
        spark_daemon.worker(None, True)


def test_a_driver_started_here_logs_errors_only_and_a_users_log_settings_win(tmp_path, monkeypatch):
    """Spark's default profile printed seven lines (the host's loopback address, Hadoop's native library, "Setting
    default log level") before every Spark command's answer: the JVM PySpark starts gets the package's log settings
    (errors only, Spark's and Hadoop's loggers named, so Spark's shell check prints no default of its own) through
    log4j2's environment variable — not through spark.driver.extraJavaOptions, which would replace a user's own
    from spark-defaults.conf. Spark's configuration folder with a log4j2.properties of its own, or the variable
    already set, wins."""
    from riskconsole.config import SparkSettings
    from riskconsole.engines import spark as engine

    assert "spark.driver.extraJavaOptions" not in engine.session_conf(SparkSettings())
    for name in (engine.LOG_ENV, "SPARK_CONF_DIR", "SPARK_HOME"):
        monkeypatch.delenv(name, raising=False)
    engine.quiet_logs()
    assert engine.os.environ[engine.LOG_ENV] == engine.LOG_SETTINGS.as_uri()
    monkeypatch.setenv(engine.LOG_ENV, "file:///etc/mine.properties")
    engine.quiet_logs()
    assert engine.os.environ[engine.LOG_ENV] == "file:///etc/mine.properties"
    monkeypatch.delenv(engine.LOG_ENV)
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    engine.quiet_logs()
    assert engine.LOG_ENV not in engine.os.environ
    settings = dict(line.split(" = ") for line in engine.LOG_SETTINGS.read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings["rootLogger.level"] == settings["logger.spark.level"] == settings["logger.hadoop.level"] == "error"
    # a failing task's stack trace (a merge Spark refuses, read again group by group) is left to riskconsole's line
    # (the JVM is a process of its own: its stderr is not captured here; seen with bench_spark_parquet_groups.py)
    assert settings["logger.executor.name"] == "org.apache.spark.executor.Executor"
    assert settings["logger.taskset.name"] == "org.apache.spark.scheduler.TaskSetManager"
    assert settings["logger.executor.level"] == settings["logger.taskset.level"] == "fatal"


def test_a_spark_out_of_memory_error_says_how_to_give_it_more():
    from riskconsole.engines.spark_render import first_line

    err = RuntimeError("An error occurred while calling o261.localCheckpoint.\n: org.apache.spark.SparkException: "
                       "Job aborted due to stage failure\nCaused by: java.lang.OutOfMemoryError: Java heap space")
    assert "driver_memory" in first_line(err) and "out of memory" in first_line(err)
    assert first_line(RuntimeError("[UNRESOLVED_COLUMN] x\nmore")) == "[UNRESOLVED_COLUMN] x"
    failed = RuntimeError(  # a task's failure as Py4J words it: the root cause's Spark error and the file are said
        "An error occurred while calling o146.collectToPython.\n: org.apache.spark.SparkException: Job aborted due to "
        "stage failure: Task 0 failed: org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error "
        "while reading file file:///data/in/a%20b.csv.  SQLSTATE: KD001\n\tat org.apache.spark.X.y(X.scala:1)\n"
        "Caused by: org.apache.spark.SparkRuntimeException: [MALFORMED_CSV_RECORD] Malformed CSV record: line2 "
        "SQLSTATE: KD000\n\tat org.apache.spark.Y.z(Y.scala:2)")
    assert first_line(failed) == ("[MALFORMED_CSV_RECORD] Malformed CSV record: line2 (reading "
                                  "file:///data/in/a%20b.csv)")
    assert first_line(RuntimeError("An error occurred while calling o1.count.\n: java.io.IOException: disk\n\tat "
                                   "a.b(c.java:1)")) == "java.io.IOException: disk"
    worker = RuntimeError(  # its line ended at "SparkException:": what the worker's Python said was left out
        "An error occurred while calling o211.collectToPython.\n: org.apache.spark.SparkException: Job aborted due "
        "to stage failure: Task 0 in stage 1.0 failed 1 times: org.apache.spark.SparkException: \nError from python "
        "worker:\n  /usr/bin/python3: Error while finding module specification for 'riskconsole.engines.spark_daemon' "
        "(ModuleNotFoundError: No module named 'riskconsole')\nPYTHONPATH was:\n  /x/pyspark.zip\n\tat a.b(c.java:1)")
    assert first_line(worker) == (
        "a Python worker of Spark's failed: /usr/bin/python3: Error while finding module specification for "
        "'riskconsole.engines.spark_daemon' (ModuleNotFoundError: No module named 'riskconsole') (workers run "
        "$PYSPARK_PYTHON, else spark.pyspark.python, else in local mode the Python running riskconsole)")
    missing = RuntimeError("An error occurred while calling o211.collectToPython.\n: org.apache.spark.SparkException: "
                           "Job aborted: java.io.IOException: Cannot run program \"/opt/py/bin/python3\": error=2, No "
                           "such file or directory\n\tat a.b(c.java:1)")
    assert first_line(missing).startswith("a Python worker of Spark's failed: Cannot run program \"/opt/py/bin/"
                                          "python3\": error=2, No such file or directory (workers run $PYSPARK_PYTHON")

WATCH = {"name": "watch", "rules": [
    {"name": "burst", "when": "user_orders_1h >= 3", "action": "block"},
    {"name": "big", "when": "amount > 300 AND channel <> 'web'", "action": "review"},
    {"name": "crowded_device", "when": "device_users_1d >= 4", "action": "review"}]}
WATCH_DETECTOR = {"name": "lgbm", "kind": "lightgbm", "features": ["amount", "user_orders_1h", "channel"],
                  "train": {"from": "2026-03-01", "to": "2026-03-14"}, "valid": {"from": "2026-03-15", "to": "2026-03-21"},
                  "params": {"num_leaves": 7, "min_data_in_leaf": 5, "num_iterations": 30, "calibration": "none"}}


@pytest.fixture(scope="module")
def monitor_ws(tmp_path_factory):
    """42 days of orders (a 28-day reference, a 14-day window) whose last 4 days hold a burst of big 'live' orders
    of a few users, and a trained LightGBM detector (the monitor's label-free estimate and attack discovery)."""
    import numpy as np
    import pandas as pd

    from conftest import random_events
    from riskconsole.detectors import train_detector

    events = random_events(n=2400, seed=5, days=42)
    rng = np.random.default_rng(5)
    burst = events.sample(160, random_state=5).reset_index(drop=True)
    burst = burst.assign(event_id=[f"b{i:04d}" for i in range(160)], channel="live",
                         amount=np.round(rng.uniform(250, 600, 160), 2), user_id=rng.integers(30, 34, 160),
                         ts=pd.Timestamp("2026-04-08") + pd.to_timedelta(rng.integers(0, 4 * 86_400, 160), unit="s"))
    burst["label_ts"] = burst["ts"] + pd.Timedelta("2h")
    events = pd.concat([events, burst]).sort_values("ts").reset_index(drop=True)
    root = tmp_path_factory.mktemp("monitor")
    infinite = {"name": "amount_per_order_1h", "sql": "amount / user_orders_1h"}  # Infinity at a user's first order
    dataset = {**BASE_DATASET, "features": [*BASE_DATASET["features"], infinite]}
    ws = write_workspace(root, events, dataset, strategies={"watch": WATCH})
    load(ws)
    (root / "detectors").mkdir()
    (root / "detectors" / "lgbm.yaml").write_text(yaml.safe_dump(WATCH_DETECTOR, sort_keys=False))
    train_detector(ws, root / "detectors" / "lgbm.yaml")
    return ws


def test_monitor_on_spark_writes_duckdbs_monitor_json(monitor_ws, spark, tmp_path, capsys, monkeypatch):
    """`monitor --engine spark`: the grouped KPI and segment passes, drift's deciles and top values and the coded
    pass run on Spark; monitor.json is DuckDB's, number for number."""
    from riskconsole.cli import main
    from riskconsole.engines.spark import SparkEngine

    args = ["monitor", str(monitor_ws.strategies_dir / "watch.yaml"), "--workspace", str(monitor_ws.root),
            "--by", "channel", "--by", "amount:4", "--format", "json"]
    assert main([*args, "--out", str(tmp_path / "duck")]) == 0
    assert "computed on duckdb; wrote" in capsys.readouterr().out
    ran, arrow = [], SparkEngine.arrow
    monkeypatch.setattr(SparkEngine, "arrow", lambda self, query, strategy: ran.append(strategy) or
                        arrow(self, query, strategy))
    assert main([*args, "--engine", "spark", "--out", str(tmp_path / "spark")]) == 0
    assert "computed on spark (local[*]); wrote" in capsys.readouterr().out
    got, want = (json.loads((tmp_path / side / "monitor.json").read_text()) for side in ("spark", "duck"))
    assert ran.count("watch") >= 5  # KPI pass, two segment passes, deciles, top values, codes
    assert want["alerts"] and want["attribution"] and want["drift"] and want["estimate"], want["alerts"]
    assert {d["column"] for d in want["drift"]} >= {"amount", "channel", "lgbm", "user_orders_1h"}
    # drift of a feature holding Infinity: its bin edge at Infinity was written `inf`, a column's name to DuckDB
    infinite = next(d for d in want["drift"] if d["column"] == "amount_per_order_1h")
    assert infinite["daily"] and infinite["psi"] >= 0
    assert got == want


def test_deciles_and_hash_rendered_for_spark_give_duckdbs_answers(spark):
    """drift's `quantile_disc(x, [0.1, ..., 0.9])` on Spark (percentile_disc per p) picks DuckDB's elements for
    every group size 1..40 and a few larger ones, NULLs among the values; `hash` groups as DuckDB's does."""
    import numpy as np
    import pyarrow as pa

    from riskconsole.engines.spark import render
    from riskconsole.sqlbuild import fill, lit

    rng = np.random.default_rng(1)
    sizes = [*range(1, 41), 99, 100, 101, 250, 1001]
    g = np.repeat(np.arange(len(sizes)), sizes)
    x = rng.integers(0, 60, g.size).astype(float)
    rows = pa.table({"g": g, "x": pa.array(np.where(rng.random(g.size) < 0.1, np.nan, x), from_pandas=True),
                     "k": rng.integers(0, 30, g.size)})
    deciles = exp.Array(expressions=[lit(i / 10) for i in range(1, 10)])
    query = exp.select("g", exp.alias_(fill("quantile_disc(x, :p)", p=deciles), "q"),
                       exp.alias_(fill("count(DISTINCT hash(k))"), "h")).from_("t").group_by("g").order_by("g")
    con = duckdb.connect()
    con.register("t", rows)
    want = con.execute(query.sql(dialect="duckdb")).fetchall()
    spark.createDataFrame(rows).createOrReplaceTempView("t")
    got = [tuple(r) for r in spark.sql(render(query, "test")).collect()]
    assert len(want) == len(sizes) and [(a, list(q), h) for a, q, h in got] == [(a, list(q), h) for a, q, h in want]


def test_the_console_says_when_a_workspace_is_on_spark(tiny_ws, monkeypatch):
    """One line from the core (`Session.engine_note`) under each page's title; none on DuckDB."""
    from conftest import console_page

    for engine, want in (("spark", ["Engine: spark (local[*]). Backtest and Tune reports and curves, comparisons, "
                                    "Optimize, exports and the monitor are computed there (slower answers); explain, "
                                    "one event's decision and the events whose decision changed read DuckDB."]),
                         ("duckdb", [])):
        monkeypatch.setenv("RISKCONSOLE_ENGINE", engine)
        for page in ("detectors_page", "data_page"):  # the Data page builds its own header
            at = console_page(monkeypatch, tiny_ws.root, page)
            assert not at.exception
            assert [c.value for c in at.caption if c.value.startswith("Engine:")] == want, page


def test_an_entity_level_monitor_on_spark_gives_duckdbs_answer(monitor_ws, spark):
    """An entity frame has no `_pos`: its drift sample and attack discovery keep DuckDB's way (by its id, in its
    time order). On Spark the entity frame is built there and the monitor's passes read it: the same answer."""
    path = monitor_ws.strategies_dir / "users.yaml"
    path.write_text(yaml.safe_dump({"name": "users", "level": {"entity": "user_id", "every": "1d", "horizon": "2d"},
                                    "rules": [{"name": "busy", "when": "user_orders_1h >= 1", "action": "review"}]}))
    try:
        with Session(monitor_ws) as duck:
            want = duck.monitor(path, by=["user_amount_1d:3"])
        assert want["daily"] and want["drift"]
        with Session(monitor_ws, engine="spark", spark=spark) as session:
            got = session.monitor(path, by=["user_amount_1d:3"])
        assert json.loads(json.dumps(got, default=str)) == json.loads(json.dumps(want, default=str))
    finally:
        path.unlink()


def test_make_timestamp_and_strftime_rendered_for_spark_give_duckdbs_answers(spark):
    """The entity frame's period start (`make_timestamp(micros)`, a TIMESTAMP without zone) and its id
    (`strftime(t, '%Y-%m-%dT%H:%M:%S')`, whose 'T' Spark's formatter needs quoted): DuckDB's values, before 1970
    and with microseconds too."""
    import pyarrow as pa

    from riskconsole.engines.spark import render
    from riskconsole.sqlbuild import fill

    rows = pa.table({"k": [0, 1, 2, 3], "us": pa.array([0, 1_772_323_200_000_000, -86_400_000_001,
                                                        1_772_409_599_123_456], pa.int64())})
    query = fill("SELECT k, make_timestamp(us) AS t, strftime(make_timestamp(us), '%Y-%m-%dT%H:%M:%S') AS id, "
                 "strftime(make_timestamp(us), '%d/%m/%Y %H:%M:%S.%f') AS fine FROM r ORDER BY k")
    con = duckdb.connect()
    con.register("r", rows)
    want = con.execute(query.sql(dialect="duckdb")).fetchall()
    spark.createDataFrame(rows).createOrReplaceTempView("r")
    got = [tuple(r) for r in spark.sql(render(query, "test")).collect()]
    assert want[1][2] == "2026-03-01T00:00:00" and want[2][3] == "30/12/1969 23:59:59.999999"
    assert got == want


def test_quantile_edges_rendered_for_spark_match_duckdbs(spark):
    """`--by COLUMN:N` edges (`quantile_cont(x, [1/N, ...])`) rendered as Spark's exact `percentile`: the same
    order statistics interpolated, equal to DuckDB's within a relative 1e-12 (the last bit may differ: rounding
    order: 77 of 378 lists for N = 2..7), for group sizes 1..60 and larger ones, NULLs and ties among the values,
    N = 2, 3, 4, 7."""
    import numpy as np
    import pyarrow as pa

    from riskconsole.engines.spark import render
    from riskconsole.sqlbuild import fill, lit

    rng = np.random.default_rng(3)
    sizes = [*range(1, 61), 99, 100, 1001]
    g = np.repeat(np.arange(len(sizes)), sizes)
    x = np.where(rng.random(g.size) < 0.5, rng.integers(0, 30, g.size), np.round(rng.gamma(2, 80, g.size), 2))
    rows = pa.table({"g": g, "x": pa.array(np.where(rng.random(g.size) < 0.1, np.nan, x), from_pandas=True)})
    con = duckdb.connect()
    con.register("t", rows)
    spark.createDataFrame(rows).createOrReplaceTempView("t")
    exact, ns = 0, (2, 3, 4, 7)
    for n in ns:
        probs = exp.Array(expressions=[lit(i / n) for i in range(1, n)])
        query = exp.select("g", exp.alias_(fill("quantile_cont(CAST(x AS DOUBLE), :p)", p=probs), "q")).from_("t") \
            .group_by("g").order_by("g")
        want = con.execute(query.sql(dialect="duckdb")).fetchall()
        got = [tuple(r) for r in spark.sql(render(query, "test")).collect()]
        assert [a for a, _ in got] == [a for a, _ in want] and len(want) == len(sizes)
        for (_, ours), (_, theirs) in zip(got, want):
            ours, theirs = list(ours or []), list(theirs or [])
            assert ours == pytest.approx(theirs, rel=1e-12, abs=0) and len(theirs) == n - 1
            exact += ours == theirs
    assert exact > 0.7 * len(ns) * len(sizes)  # most lists are bit for bit DuckDB's (301 of 378 for N = 2..7)


def test_quantile_segments_on_spark_give_duckdbs_report(mixed_ws, spark_session, spark_queries):
    """`--by amount:4` and `--by user_amount_1d:3`: the edges are computed on Spark too; report.json is DuckDB's."""
    path = mixed_ws.strategies_dir / "mixed.yaml"
    for by in ("amount:4", "user_amount_1d:3"):
        with Session(mixed_ws) as duck:
            want = duck.backtest(path, by=by).report
        got = spark_session.backtest(path, by=by).report
        assert f"--by {by}" in spark_queries and len(want["segments"]["rows"]) >= 3, want["segments"]
        assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(want, default=str)))


def test_observability_classes_on_spark_are_duckdbs(spark):
    """The outcomes pass's per-event class and 1/propensity (`outcomes.observability_class`, read by the grouped
    pass) rendered for Spark give DuckDB's values row by row: text, integer and boolean explore flags, padded
    and capitalised actions, NULLs."""
    import pyarrow as pa

    from riskconsole.engines.spark import render
    from riskconsole.outcomes import observability_class

    rows = pa.table({"k": list(range(8)),
                     "act": ["block", " Block ", "allow", None, "BLOCK", "review", "block", "block"],
                     "ex_text": ["1", "true", "0", "TRUE", None, " 1", "yes", "false"],
                     "ex_int": pa.array([1, 0, 1, None, 0, 1, 1, 0], pa.int64()),
                     "ex_bool": pa.array([True, False, None, True, False, True, True, False]),
                     "p": [0.5, 0.25, None, 0.1, 1.0, 0.3, 0.75, 0.2]})
    con = duckdb.connect()
    con.register("t", rows)
    spark.createDataFrame(rows).createOrReplaceTempView("t")
    for explore in ("ex_text", "ex_int", "ex_bool"):
        dataset = Dataset.model_validate({"source": "x.csv", "columns": {
            "id": "k", "time": "t", "prod_action": "act", "explore": explore, "propensity": "p"}})
        cls, inverse = observability_class(dataset)
        query = exp.select("k", exp.alias_(cls, "c"), exp.alias_(inverse, "w")).from_("t").order_by("k")
        want = con.execute(query.sql(dialect="duckdb")).fetchall()
        got = [tuple(r) for r in spark.sql(render(query, "test")).collect()]
        assert got == want and {c for _, c, _ in want} == {0, 1, 2}, (explore, got, want)


PYOD = {"iforest": ("pyod.iforest", {"n_estimators": 25}), "ecod": ("pyod.ecod", {}), "hbos": ("pyod.hbos", {"n_bins": 8})}
OUTLIERS = {"name": "outliers", "rules": [
    {"name": "odd", "when": "iforest >= 0.9 OR ecod >= 0.95", "action": "review"},
    {"name": "odd_big", "when": "hbos >= 0.8 AND amount > 100", "action": "block"}]}


def test_pyod_scores_are_computed_on_spark_and_match_duckdbs(mixed_ws, spark_session, spark):
    """Runs after the LightGBM test on mixed_ws (it trains there): an isolation forest, ECOD (frozen training ECDFs)
    and HBOS, reading a feature with NULLs and a text one (frequency-encoded), score the frame by mapInArrow on the
    executors in batches of 64 rows, each batch scored alone; every score is DuckDB's (a whole-frame pass in
    chunks) within 1e-9, and a backtest reading them gives DuckDB's report."""
    import numpy as np

    from riskconsole.detectors import train_detector

    spark_session.close()  # its read-only connection would keep training from writing the database
    (mixed_ws.root / "detectors").mkdir(exist_ok=True)
    for name, (kind, params) in PYOD.items():
        body = {**DETECTOR, "name": name, "kind": kind, "params": params,
                "features": ["amount", "user_orders_1h", "user_amount_sd_1d", "channel", "ip_num"]}
        (mixed_ws.root / "detectors" / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
        train_detector(mixed_ws, mixed_ws.root / "detectors" / f"{name}.yaml")
    path = mixed_ws.strategies_dir / "outliers.yaml"
    path.write_text(yaml.safe_dump(OUTLIERS, sort_keys=False))
    with Session(mixed_ws) as duck:
        with duck.cursor() as cur:
            want = {name: cur.sql(f"SELECT _pos, {name} FROM scores_{name} ORDER BY _pos").to_arrow_table()
                    for name in PYOD}
        want_report = duck.backtest(path).report
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "64")  # 300 rows: five batches scored apart
    try:
        with Session(mixed_ws, engine="spark", spark=spark) as session:
            engine = session.spark_engine()
            got = {name: spark.table(f"scores_{name}").orderBy("_pos").toArrow() for name in PYOD}
            got_report = session.backtest(path).report
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert {f"score {name}" for name in PYOD} <= set(engine.seconds) and "frame" not in engine.seconds
    for name in PYOD:
        assert got[name].column("_pos").to_pylist() == want[name].column("_pos").to_pylist()
        ours, theirs = (t.column(name).to_numpy() for t in (got[name], want[name]))
        assert np.abs(ours - theirs).max() <= 1e-9 and np.unique(theirs).size > 10, name
    assert all(rule["hits"] for rule in want_report["rules"]), want_report["rules"]
    assert_same(json.loads(json.dumps(got_report, default=str)), json.loads(json.dumps(want_report, default=str)))


# ------------------------------------------------------------------ the console on Spark (issue 15)


@pytest.fixture
def spark_pages(mixed_ws, spark_session, spark, monkeypatch):
    """The console on engine spark over `mixed_ws`: every Spark query the pages run (strategy names), every report and
    curve the core handed them, and DuckDB's evaluator refused (a live report from it would not be Spark's)."""
    from riskconsole.engines.spark import SparkEngine
    from riskconsole.ui import common

    ran, reports, curves = [], [], []
    arrow, interactive, curve = SparkEngine.arrow, Session.interactive, Session.curve

    def counted(self, query, strategy):
        ran.append(strategy)
        return arrow(self, query, strategy)

    def reported(self, *args, **kwargs):
        reports.append(interactive(self, *args, **kwargs))
        return reports[-1]

    def traced(self, path, *args, **kwargs):
        before = len(ran)
        curves.append((Path(path).stem, curve(self, path, *args, **kwargs), len(ran) - before))
        return curves[-1][1]

    def refused(self, *args, **kwargs):
        raise AssertionError("the DuckDB evaluator answered on engine spark")

    monkeypatch.setattr(SparkEngine, "arrow", counted)
    monkeypatch.setattr(Session, "interactive", reported)
    monkeypatch.setattr(Session, "curve", traced)
    monkeypatch.setattr(Session, "_evaluator", refused)
    monkeypatch.setenv("RISKCONSOLE_ENGINE", "spark")
    for cached in (common._spark_report, common._spark_curve, common._report, common._curve):
        cached.clear()
    yield ran, reports, curves
    common.release_connections()


def _spark_cli(mixed_ws, tmp_path, capsys, *args) -> dict:
    """report.json (or sweep.json) of a CLI command run with --engine spark."""
    from riskconsole.cli import main

    out = tmp_path / f"cli{len(list(tmp_path.iterdir()))}"
    assert main([args[0], str(mixed_ws.strategies_dir / "mixed.yaml"), *args[1:], "--workspace", str(mixed_ws.root),
                 "--engine", "spark", "--out", str(out)]) == 0
    assert "computed on spark" in capsys.readouterr().out or args[0] != "backtest"
    return json.loads((out / ("report.json" if args[0] == "backtest" else "sweep.json")).read_text())


def _plain(report: dict) -> dict:
    return json.loads(json.dumps(report, default=str))


def _mixed_page(monkeypatch, mixed_ws, page: str):
    """A console page on strategy mixed (other tests of this module add strategies that sort after it)."""
    from conftest import console_page

    at = console_page(monkeypatch, mixed_ws.root, page, timeout=300)
    if at.selectbox(key="strategy").value != "mixed":
        at.selectbox(key="strategy").set_value("mixed").run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_pages_backtest_on_spark_shows_the_spark_clis_report(mixed_ws, spark_pages, tmp_path, capsys, monkeypatch):
    """The Backtest page's live report is the CLI's Spark backtest (DuckDB's evaluator refused), and the page shows
    it: population, rule hits; its title line says what runs where."""
    ran, reports, _ = spark_pages
    at = _mixed_page(monkeypatch, mixed_ws, "backtest_page")
    mixed = [r for r in reports if r["strategy"] == "mixed"]
    assert "mixed" in ran and len(mixed) == 1
    want = _spark_cli(mixed_ws, tmp_path, capsys, "backtest", "--format", "json")
    assert_same(_plain(mixed[0]), want)
    assert any(f"population {want['overall']['population']:,} events" in c.value for c in at.caption)
    rules = next(d.value for d in at.dataframe if "unique_tp" in d.value.columns)
    assert list(rules["hits"]) == [r["hits"] for r in want["rules"]] and sum(rules["hits"]) > 0
    note = next(c.value for c in at.caption if c.value.startswith("Engine:"))
    assert note.startswith("Engine: spark (local[*]). Backtest and Tune reports and curves") and "read DuckDB" in note
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_a_page_opened_while_spark_starts_says_so_then_reruns_without_a_start(mixed_ws, spark_pages, monkeypatch):
    """The launcher listens at once on Spark (`common.prewarm` starts the engine beside the server): a page whose
    session has no engine yet says under its title that Spark is starting, waits for the one start and frame, then
    draws the page; a rerun (a widget, a reload) finds the engine ready: no such spinner, no second start or build."""
    import streamlit

    from riskconsole.engines import spark as spark_module

    said, made, prepared = [], [], []
    spinner, init, prepare = streamlit.spinner, spark_module.SparkEngine.__init__, spark_module.SparkEngine.prepare

    def recorded(text, *args, **kwargs):
        said.append(text)
        return spinner(text, *args, **kwargs)

    def counted_init(self, *args, **kwargs):
        made.append(self)
        init(self, *args, **kwargs)

    def counted_prepare(self, *args, **kwargs):
        prepared.append(self)
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(streamlit, "spinner", recorded)
    monkeypatch.setattr(spark_module.SparkEngine, "__init__", counted_init)
    monkeypatch.setattr(spark_module.SparkEngine, "prepare", counted_prepare)
    at = _mixed_page(monkeypatch, mixed_ws, "backtest_page")
    assert [t for t in said if "Spark" in t] == [
        "Starting Spark (local[*]) and building the feature frame of this data version (once per load; a start "
        "after that reads it back) ..."]
    assert len(made) == len(prepared) == 1 and at.metric and at.title[0].value == "Backtest"
    said.clear()
    at.run(timeout=300)
    assert not at.exception and not said and len(made) == len(prepared) == 1 and at.metric


def test_pages_tune_on_spark_gives_the_spark_clis_numbers_one_pass_per_curve(mixed_ws, spark_pages, tmp_path, capsys,
                                                                            monkeypatch):
    """The Tune page on Spark: its report is the CLI's Spark backtest, its curve the CLI's Spark sweep over the slider
    range computed in one pass (13 points, at most the grouped query and the window's span), and a slider move is
    the CLI's backtest with --set."""
    from riskconsole.optimize import default_values

    _, reports, curves = spark_pages
    at = _mixed_page(monkeypatch, mixed_ws, "tune_page")
    values = default_values(STRATEGY["params"]["burst"])
    want = _spark_cli(mixed_ws, tmp_path, capsys, "sweep", "--param", "burst", "--values",
                      ",".join(str(v) for v in values))
    (points, queries), = [(points, queries) for stem, points, queries in curves if stem == "mixed"]
    assert len(points) == len(values) == 13 and 1 <= queries <= 2  # burst 0..12
    assert_same(points, want["points"])
    best = max(points, key=lambda p: p["net_benefit"])
    assert any(f"Best net benefit on this curve: **{best['net_benefit']:,.0f}** at `burst = {best['value']}`" in m.value
               for m in at.markdown)
    mixed = [r for r in reports if r["strategy"] == "mixed"]
    assert len(mixed) == 1  # the report at the saved values is the saved report: one Spark pass, not two
    assert_same(_plain(mixed[0]), _spark_cli(mixed_ws, tmp_path, capsys, "backtest", "--format", "json"))

    target = next(p for p in points if p["flagged"] != mixed[0]["overall"]["flagged"])  # a move that changes it
    drawn = len(curves)
    at.slider(key="tune_mixed_burst").set_value(target["value"]).run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    mixed = [r for r in reports if r["strategy"] == "mixed"]
    assert len(mixed) == 2 and len(curves) == drawn  # the moved param's curve is the one drawn: not computed again
    moved = _spark_cli(mixed_ws, tmp_path, capsys, "backtest", "--format", "json", "--set", f"burst={target['value']}")
    assert_same(_plain(mixed[1]), moved)
    assert mixed[1]["overall"]["flagged"] == target["flagged"] and mixed[1]["overall"]["tp"] == target["tp"]


def test_pages_two_users_wait_for_one_spark_start_and_frame_build(mixed_ws, spark, monkeypatch):
    """Two console users (threads) asking a fresh Session for its Spark engine at once: one engine, one prepare."""
    import threading
    import time

    from riskconsole.engines import spark as spark_module

    made, prepared = [], []
    init, prepare = spark_module.SparkEngine.__init__, spark_module.SparkEngine.prepare

    def slow_init(self, *args, **kwargs):
        time.sleep(0.3)  # a session start takes seconds: both users arrive during it
        made.append(self)
        init(self, *args, **kwargs)

    def counted_prepare(self, *args, **kwargs):
        prepared.append(self)
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(spark_module.SparkEngine, "__init__", slow_init)
    monkeypatch.setattr(spark_module.SparkEngine, "prepare", counted_prepare)
    with Session(mixed_ws, engine="spark", spark=spark) as shared:
        got = []
        users = [threading.Thread(target=lambda: got.append(shared.spark_engine())) for _ in range(2)]
        for user in users:
            user.start()
        for user in users:
            user.join()
    assert len(made) == 1 and len(prepared) == 1 and got[0] is got[1]


def test_time_windows_on_spark_are_running_totals_with_duckdbs_values(spark):
    """count, sum and avg over a time window are rendered for Spark as differences of running totals (Spark's bounded
    RANGE frame re-aggregates the whole frame per row, quadratic on a busy key): the values equal DuckDB's sliding
    windows on data with a hot key, ties at one instant, NULL values and keys, integers, decimals and doubles, and
    Spark's plan keeps no bounded frame (so no `SlidingWindowFunctionFrame`)."""
    import numpy as np
    import pyarrow as pa
    import sqlglot

    from riskconsole.engines.spark import render

    rng = np.random.default_rng(7)
    n = 4000
    k = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 40, n))  # key 0 holds most rows
    t = np.sort(rng.integers(0, 50_000, n)) * 1000  # many rows share an instant
    i = rng.integers(-50, 500, n)
    d = np.round(rng.gamma(2, 80, n), 2)
    null = rng.random(n) < 0.15
    rows = pa.table({"k": pa.array(np.where(rng.random(n) < 0.05, None, k).tolist(), pa.int64()), "_t": t,
                     "i": pa.array(np.where(null, None, i).tolist(), pa.int32()),
                     "d": pa.array(np.where(null, None, d).tolist(), pa.float64()),
                     "_pos": np.arange(n)})
    windows = {"1 PRECEDING": 3_000_000, "5000 PRECEDING": 777_000}
    exprs = []
    for end, span in windows.items():
        w = f"OVER (PARTITION BY k ORDER BY _t RANGE BETWEEN {span} PRECEDING AND {end})"
        exprs += [f"coalesce(count(*) {w}, 0)", f"coalesce(count(i) {w}, 0)", f"coalesce(sum(i) {w}, 0)",
                  f"sum(i) {w}", f"sum(CAST(d AS DECIMAL(12, 2))) {w}", f"sum(d) {w}",
                  f"avg(CAST(i AS DOUBLE)) {w}", f"avg(CAST(d AS DOUBLE)) {w}"]
    exprs.append("count(*) OVER (ORDER BY _t RANGE BETWEEN 100000 PRECEDING AND 1 PRECEDING)")  # no partition
    query = sqlglot.parse_one(f"SELECT _pos, {', '.join(f'{e} AS v{j}' for j, e in enumerate(exprs))} FROM t "
                              "ORDER BY _pos", read="duckdb")
    con = duckdb.connect()
    con.register("t", rows)
    want = con.execute(query.sql(dialect="duckdb")).fetchall()
    spark.createDataFrame(rows.to_pandas()).createOrReplaceTempView("t")
    text = render(query, "test")
    got = [tuple(r) for r in spark.sql(text).collect()]
    assert len(got) == n and "BETWEEN 777000 PRECEDING" not in text and "BETWEEN 3000000 PRECEDING" not in text
    for a, b in zip(got, want):
        for x, y in zip(a, b):
            assert (x is None and y is None) or float(x) == pytest.approx(float(y), rel=1e-12, abs=1e-9), (a, b)
    assert sum(1 for a in want if a[4] is None) > 0 and sum(1 for a in want if a[2] == 0) > 0  # empty frames occur
    plan = spark.sql(text)._jdf.queryExecution().executedPlan().toString()
    assert "unboundedpreceding" in plan and "RangeFrame, -" not in plan


@pytest.mark.parametrize("kind", test_tables.RANGE_KINDS)
def test_a_range_lookup_on_spark_is_the_first_range_holding_the_value(spark, kind):
    """The range join as an equi-join on buckets (`lookups._RANGE`) rendered for Spark gives DuckDB's answers (a
    plain scan's, tests/test_tables.py) for every value type, and Spark's plan has no nested-loop join of the events
    with the ranges (a BETWEEN join compares every event with every range: hours for a large IP table). Spark
    refuses to cast a DATE or TIMESTAMP_NTZ to DOUBLE even in TRY_CAST: the query must still run on them."""
    from riskconsole.engines.spark import render
    from test_tables import range_case, range_lookup

    ranges, events, want = range_case(kind)
    types = {"int": "bigint", "double": "double", "double_inf": "double", "huge": "bigint", "decimal": "decimal(12,2)",
             "text": "string", "timestamp": "timestamp_ntz", "date": "date", "subnormal": "double", "empty": "bigint",
             "one_point": "bigint"}[kind]  # timestamp_ntz: what Spark reads from DuckDB's export of a TIMESTAMP
    spark.createDataFrame(ranges.to_pylist(), f"lo {types}, hi {types}, val string").repartition(3) \
        .createOrReplaceTempView("table_r")
    spark.createDataFrame(events.to_pylist(), f"_pos bigint, x {types}").repartition(3).createOrReplaceTempView("ev")
    frame = spark.sql(render(range_lookup(), "test"))
    assert {r["_pos"]: r["got"] for r in frame.collect()} == want
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"(SortMergeJoin|BroadcastHashJoin|ShuffledHashJoin) \[__b#", plan), plan  # on the bucket
    loops = [line for line in plan.splitlines() if "NestedLoopJoin" in line or "CartesianProduct" in line]
    assert not [line for line in loops if "__low" in line or "__pm" in line], plan  # only the one-row bucket width
