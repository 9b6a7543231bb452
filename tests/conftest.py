"""Shared fixtures: tiny workspaces whose answers are known by construction."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.workspace import Workspace

BASE_DATASET = {
    "source": "data/events.csv",
    "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "label_time": "label_ts",
                "amount": "amount", "entities": ["user_id", "device_id"]},
    "features": [
        {"name": "user_orders_1h", "count": "*", "by": "user_id", "window": "1h"},
        {"name": "user_amount_1d", "avg": "amount", "by": "user_id", "window": "1d"},
        {"name": "device_users_1d", "count_distinct": "user_id", "by": "device_id", "window": "1d"},
    ],
    "business": {"review_cost": 2.0, "review_capacity": 3, "review_catch_rate": 0.5, "good_block_cost": 0.25},
}


def write_workspace(root: Path, events: pd.DataFrame, dataset: dict | None = None,
                    strategies: dict[str, dict] | None = None, source_name: str = "events.csv") -> Workspace:
    """A workspace folder with the events as CSV (or parquet/jsonl by suffix), a dataset.yaml and strategies."""
    ws = Workspace(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "strategies").mkdir(exist_ok=True)
    dataset = dict(dataset or BASE_DATASET)
    dataset["source"] = f"data/{source_name}"
    path = root / "data" / source_name
    if source_name.endswith(".csv"):
        events.to_csv(path, index=False)
    elif source_name.endswith(".parquet"):
        events.to_parquet(path, index=False)
    else:
        events.to_json(path, orient="records", lines=True, date_format="iso")
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    for name, body in (strategies or {}).items():
        (root / "strategies" / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return ws


def random_events(n: int = 400, seed: int = 1, days: int = 6) -> pd.DataFrame:
    """Random events with repeated users/devices, ties in time, unknown labels and label times."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-03-01T00:00:00")
    seconds = np.sort(rng.integers(0, days * 86_400, n))
    seconds[5:9] = seconds[5]  # a run of simultaneous events
    ts = start + seconds.astype("timedelta64[s]")
    label = rng.choice([1.0, 0.0, np.nan], n, p=[0.2, 0.65, 0.15])
    delay = rng.integers(3_600, 4 * 86_400, n).astype("timedelta64[s]")
    label_ts = np.where(np.isnan(label), np.datetime64("NaT"), ts + delay)
    return pd.DataFrame({
        "event_id": [f"e{i:05d}" for i in range(n)],
        "ts": pd.to_datetime(ts),
        "is_fraud": pd.array(label, dtype="Int8"),
        "label_ts": pd.to_datetime(label_ts),
        "amount": np.round(rng.gamma(2.0, 60.0, n), 2),
        "user_id": rng.integers(1, 25, n),
        "device_id": rng.integers(1, 15, n),
        "merchant_id": rng.integers(100, 106, n),
        "channel": rng.choice(["web", "app", "live"], n),
    })


TINY_STRATEGY = {
    "name": "tiny", "params": {"burst": 2, "big": 150},
    "rules": [
        {"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
        {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"},
        {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"},
        {"name": "shared_device", "when": "device_users_1d >= 3", "action": "review"},
    ],
}


@pytest.fixture
def tiny_ws(tmp_path: Path) -> Workspace:
    """A loaded workspace over 400 random events with a 4-rule strategy."""
    from riskconsole.ingest import load

    ws = write_workspace(tmp_path / "ws", random_events(), strategies={"tiny": TINY_STRATEGY})
    load(ws)
    return ws


def assert_same(a, b, rel: float = 1e-9) -> None:
    """Deep equality where floats may differ only by summation order."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y, rel)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=rel)
    else:
        assert a == b


@pytest.fixture(scope="session")
def demo_ws(tmp_path_factory) -> Workspace:
    """A small demo workspace (40,000 orders), loaded and with both demo detectors trained."""
    from riskconsole.scaffold import build_demo_workspace

    ws = Workspace(tmp_path_factory.mktemp("demo"))
    build_demo_workspace(ws, n_events=40_000)
    return ws


def query(ws: Workspace, sql: str) -> list[tuple]:
    """Rows of a query on the workspace's database, read-only (tests look at what a load wrote)."""
    import duckdb

    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def aggregate(agg: str, values: list):
    """A window aggregate computed by hand (the brute force features are checked against)."""
    if agg == "count":
        return len(values)
    if agg == "count_distinct":
        return len(set(values))
    if agg == "sum":
        return sum(values)
    if not values:
        return None
    return float(np.mean(values)) if agg == "avg" else min(values) if agg == "min" else max(values)  # times too


def console_page(monkeypatch, root: Path, page: str, timeout: int = 60):
    """One console page (riskconsole/ui/PAGE.py) run once by Streamlit's AppTest on the workspace at `root`."""
    from streamlit.testing.v1 import AppTest

    from riskconsole.ui import common

    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(root))
    common.release_connections()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=timeout)
    at.switch_page(f"riskconsole/ui/{page}.py")
    at.run()
    return at


# ------------------------------------------------------------------ Spark: one small session per test run

# The files that use `spark`, in two units of `--dist loadfile` (one JVM each, on two workers): one unit held them
# all and was the run's longest path (856 s of tests on one core while the other worker ran out of files); a file
# using `spark` outside these units starts a JVM of its own wherever it runs. test_spark_connect (a client process
# and its Connect server's JVM, ~45 s) is in a unit to even them: alone, it went to either worker (the Spark files
# alone on two workers had 248 s of the load unit + 43 of it beside 268 of the engine unit; now ~280 beside ~280).
SPARK_UNITS = {"spark-load": ("test_spark_load.py", "test_functions.py", "test_spark_connect.py"),
               "spark-engine": ("test_spark_sources.py", "test_spark_engine.py", "test_spark_entities.py",
                                "test_spark_outcomes.py", "test_table_rename.py", "test_tables.py")}
SPARK_FILES = {name: unit for unit, names in SPARK_UNITS.items() for name in names}
# A few hundred rows per query: planning and compiling cost more than running. Interpreted expressions instead of
# generated Java (Janino compiles a class per stage), no adaptive re-planning, one shuffle partition and the JVM's
# quick compiler only (C2 compiles hot loops these queries never run long enough to repay): 40 against 70 CPU-s for
# test_functions' Spark half in the same minutes. Memory pages of 1 MB: Spark sizes a task's pages (long[]) from
# the heap (4 MB at 512m, as every hash aggregate and sort allocates them), and with them the spark-engine unit
# ran 84 full collections (39 s), its old generation full; with 1 MB pages 10 (3 s), the unit 275 -> 220 s alone
# (a 1.5 GB heap instead: 242 s, 35 full collections). The quick compiler alone gets the JVM's code cache of a
# compiler without tiers, 48 MB, which Spark's code overflows: the sweeper flushed compiled methods and C1 compiled them
# again (16 of the engine file's 75 JVM CPU-s); with 256 MB, 7 (75 -> 66 CPU-s). Production keeps Spark's defaults
# (engines/spark.py `start`).
SPARK_TEST_CONF = {
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "512m", "spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m",
    "spark.buffer.pageSize": "1m",
}


def _spark_skip_reason() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (make test installs it with the dev extra)"
    if shutil.which("java") is None:
        return "java is not on PATH (PySpark needs Java 17: apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (local[1], UI off, UTC, SPARK_TEST_CONF)."""
    reason = _spark_skip_reason()
    if reason:
        pytest.skip(reason)
    with warnings.catch_warnings():  # pyspark 4.3 warns that it does not fully support pandas 3
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession

    from riskconsole.engines.spark import QUIET_DAEMON

    builder = SparkSession.builder.master("local[1]").appName("riskconsole-tests")
    for key, value in SPARK_TEST_CONF.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.python.daemon.module", QUIET_DAEMON)  # production's in local mode
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _spark_settings_kept(request):
    """Every test that uses the run's Spark session leaves its settings as it found them. Code that starts Spark
    through riskconsole (`engines.spark.start`: the CLI, `train_detector(engine="spark")`) finds the run's session
    and applies its own settings to it, 8 shuffle partitions in local mode among them: every later test of the run
    then planned 8 tasks per shuffle, and the Spark test files took a minute longer."""
    if "spark" not in request.fixturenames:
        yield
        return
    spark = request.getfixturevalue("spark")
    before = spark.conf.getAll
    yield
    after = spark.conf.getAll
    for key in [*after.keys() - before.keys(), *(k for k, v in before.items() if after.get(k) != v)]:
        try:
            if key in before:
                spark.conf.set(key, before[key])
            else:
                spark.conf.unset(key)
        except Exception:  # noqa: BLE001 - a static setting (the application's, e.g. spark.api.mode): stays
            pass


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, except that the files using Spark are grouped in `SPARK_UNITS`: the worker that takes a unit
    starts its one JVM for all of the unit's files."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SparkTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SPARK_FILES.get(path.rsplit("/", 1)[-1], path)

    return SparkTogether(config, log)


def late_json_lines(path, n: int = 20_500) -> None:
    """JSON Lines whose first `n` rows (all DuckDB samples) type `score` BIGINT, `seen` TIMESTAMP WITH TIME ZONE,
    `ok` BOOLEAN, and leave `note` all null; then rows whose values do not fit those types, and a key not seen
    before (`extra`)."""
    rows = [{"event_id": f"e{i}", "ts": "2026-03-01 10:00:00", "is_fraud": 0, "label_ts": None, "amount": 5,
             "user_id": 1, "device_id": 1, "score": i, "seen": "2026-03-01T10:00:00Z", "ok": True, "note": None} for i in range(n)]
    late = [{"score": 20500.5}, {"score": "x7"}, {"score": 123456789012345678901234}, {"score": "17"},
            {"ok": 1.0}, {"seen": "2026-03-02 12:00:00+02:00"}, {"ok": "maybe"}, {"note": "text"}, {"note": 7},
            {"extra": 3.5}]  # a key first seen after the sampled rows
    rows += [{**rows[0], "event_id": f"late{i}", **change} for i, change in enumerate(late)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
