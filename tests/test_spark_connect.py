"""Engine spark through Spark Connect (`spark.remote`, issue 15): riskconsole as a Connect client, with no JVM of its
own. A load, the features, the detector scores and a backtest run on a Connect server PySpark starts on this machine
(`remote: local[1]`), and give what DuckDB gives.

The client runs in a process of its own: a test process may already hold a classic Spark session (the `spark`
fixture), and a local Connect server is a classic session with Connect's plugin, one per JVM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

import test_streams
import test_tables
from conftest import BASE_DATASET, SPARK_TEST_CONF, assert_same, write_workspace
from riskconsole.ingest import load
from test_spark_engine import BASE, DETECTOR, FEATURES, SCORED, STRATEGY, assert_same_rows, hidden_outcomes

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

CLIENT = """
import json, sys
from riskconsole.cli import main
from riskconsole.engines.spark import is_connect
from riskconsole.session import Session
from riskconsole.workspace import Workspace

ws, spark_ws, out = sys.argv[1:4]
codes = [main(["backtest", f"{ws}/strategies/scored.yaml", "--workspace", ws, "--engine", "spark", "--baseline",
               f"{ws}/strategies/mixed.yaml", "--format", "json", "--out", f"{out}/scored"]),
         main(["load", "--workspace", spark_ws, "--engine", "spark"])]
with Session(Workspace.resolve(ws), engine="spark") as session:
    connect = is_connect(session.spark_engine().spark)
print(json.dumps({"codes": codes, "connect": connect}))
"""


def _skip_reason() -> str | None:
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        return "engine spark needs PySpark and Java (make test installs both)"
    if importlib.util.find_spec("grpc") is None:
        return "Spark Connect needs pyspark[connect] (make test installs it with the dev extra)"
    return None


def _workspace(root: Path, events, source_name: str = "events.csv", features=FEATURES):
    dataset = {**BASE_DATASET, "tables": test_tables.TABLES, "streams": {"logins": test_streams.STREAM},
               "features": features}
    dataset["columns"] = {**BASE_DATASET["columns"], "prod_action": "prod_action", "explore": "explore",
                          "propensity": "propensity"}
    ws = write_workspace(root, events, dataset, strategies={"mixed": STRATEGY, "base": BASE, "scored": SCORED},
                         source_name=source_name)
    test_tables.workspace(root, events, test_tables.make_merchants(events))  # the tables' files
    dataset["source"] = f"data/{source_name}"
    dataset["spark"] = {"remote": "local[1]", "conf": {k: v for k, v in SPARK_TEST_CONF.items()
                                                       if k != "spark.driver.memory"}, "driver_memory": "768m"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    test_streams.make_logins(events).to_csv(root / "data" / "logins.csv", index=False)
    return ws


def test_a_connect_client_loads_scores_and_backtests_as_duckdb_does(tmp_path):
    """Through a local Connect server: a backtest reading a LightGBM detector's scores computed on the server's Python
    workers, against a baseline whose rules read every kind of feature (`mixed`), writes DuckDB's report.json (the
    compare included); a `load --engine spark` of files named
    with a space and a non-ASCII letter, its stream at a `file://` URI, gives DuckDB's events, quarantine and stream. Every store question went through
    Python's file calls (a Connect session has no JVM, and any JVM call on it raises)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from riskconsole.detectors import train_detector

    events = hidden_outcomes(test_tables.make_events())
    ws = _workspace(tmp_path / "ws", events)
    load(ws)
    (ws.root / "detectors").mkdir(exist_ok=True)
    (ws.root / "detectors" / "lgbm.yaml").write_text(yaml.safe_dump(DETECTOR, sort_keys=False))
    train_detector(ws, ws.root / "detectors" / "lgbm.yaml")
    from riskconsole.cli import main

    out = tmp_path / "out"
    assert main(["backtest", str(ws.strategies_dir / "scored.yaml"), "--workspace", str(ws.root), "--baseline",
                 str(ws.strategies_dir / "mixed.yaml"), "--format", "json", "--out", str(out / "duck_scored")]) == 0
    duck_loaded = _workspace(tmp_path / "duck load", events, "ev ü.csv", features=[])  # what is read is the question
    load(duck_loaded)
    spark_loaded = _workspace(tmp_path / "spark load", events, "ev ü.csv", features=[])
    spec = yaml.safe_load(spark_loaded.dataset_path.read_text())  # its stream at a URI: listed and sampled by
    spec["streams"]["logins"]["source"] = f"file://{spark_loaded.root}/data/logins.csv"  # the Connect server
    spark_loaded.dataset_path.write_text(yaml.safe_dump(spec, sort_keys=False))

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_TESTING": "1"}  # an ephemeral server port
    done = subprocess.run([sys.executable, "-c", CLIENT, str(ws.root), str(spark_loaded.root), str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "connect": True}, done.stdout[-3000:] + done.stderr[-3000:]
    assert "computed on spark (connect local[1])" in done.stdout
    assert "Setting default log level" not in done.stderr and " WARN " not in done.stderr  # errors only
    scored, want = (json.loads((out / f"{side}scored" / "report.json").read_text()) for side in ("", "duck_"))
    assert_same(scored, want)
    assert scored["rules"][0]["hits"] > 0 and scored["compare"]["changed"]  # the model's rule fires
    spark_scored = list((ws.root / "data" / "spark").glob("*/scores/scores_lgbm-spark-*/_riskconsole.json"))
    assert len(spark_scored) == 1  # the scores were computed by the server's Python workers, not exported by DuckDB
    con = duckdb.connect()
    try:
        for side, folder in (("duck", duck_loaded), ("spark", spark_loaded)):
            con.execute(f"ATTACH '{folder.db_path}' AS {side} (READ_ONLY)")
        assert con.execute("SELECT count(*) FROM spark.events").fetchall()[0][0] > 0
        for table in ("events", "quarantine", "stream_logins"):
            assert_same_rows(con, f"duck.{table}", f"spark.{table}")
    finally:
        con.close()
