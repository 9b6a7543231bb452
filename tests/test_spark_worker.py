"""What riskconsole's Spark code shares within a Python process (engines/spark_worker.py): the garbage collector of a
reused Spark worker skips what the worker imported, and one in-memory DuckDB answers every cursor, in UTC.

The collector checks run in a process of their own: `gc.freeze` there would freeze this test run's objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types


def _run(code: str) -> dict:
    """`code`'s last printed line, run as a reused Spark worker (Spark sets $SPARK_REUSE_WORKER for one) in a process
    whose local time zone is Tokyo's (DuckDB's default zone)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TZ": "Asia/Tokyo", "SPARK_REUSE_WORKER": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_worker_collects_only_what_tasks_made_once_its_imports_are_frozen():
    """PySpark collects after every task of a reused worker: after `settle`, what the worker imported is frozen
    (a collection walks a small part of the objects it walked before), again after an import, not otherwise; a
    worker that is not reused freezes nothing."""
    got = _run("""
        import gc, json, os
        import pyarrow, duckdb, sqlglot
        from riskconsole.engines import spark_worker
        before = len(gc.get_objects())
        spark_worker.settle()
        frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
        spark_worker.settle()
        again = gc.get_freeze_count()
        import numpy.polynomial  # a task importing a library the worker did not hold
        spark_worker.settle()
        after_import = gc.get_freeze_count()
        os.environ.pop("SPARK_REUSE_WORKER")  # a worker serving one task: never collected, nothing to freeze
        import email.mime.text
        spark_worker.settle()
        print(json.dumps({"before": before, "frozen": frozen, "walked": walked, "again": again,
                          "after_import": after_import, "not_reused": gc.get_freeze_count()}))
    """)
    assert got["frozen"] >= 0.9 * got["before"] and got["walked"] < 0.05 * got["before"]
    assert got["again"] == got["frozen"] < got["after_import"] == got["not_reused"]


def test_the_row_rules_a_task_runs_settle_the_worker_and_read_times_in_utc():
    """The function `duck_select` hands to Spark, run as a worker runs it (in Tokyo's time zone): DuckDB's answer
    with the zone converted to UTC, as the load's connection converts it, and the worker's imports frozen."""
    got = _run("""
        import gc, json
        import pyarrow as pa
        from sqlglot import exp
        from riskconsole.engines.spark_load import _batches
        from riskconsole.sqlbuild import alias, fill, ident, render

        sql = exp.select(alias(fill("strftime(CAST(:t AS TIMESTAMPTZ), '%H:%M')", t=ident("t")), "hm")).from_("_batch")
        run = _batches(render(sql), pa.schema([("hm", pa.string())]), ["t"])
        batch = pa.RecordBatch.from_pydict({"_0": ["2026-03-01 10:00:00+02:00"]})
        out = [b.to_pydict() for b in run(iter([batch]))]
        print(json.dumps({"out": out, "frozen": gc.get_freeze_count()}))
    """)
    assert got["out"] == [{"hm": ["08:00"]}] and got["frozen"] > 0


def test_cursors_share_one_database_in_utc():
    from riskconsole.engines import spark_worker

    first, second = spark_worker.cursor(), spark_worker.cursor()
    try:
        assert second.sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
        first.execute("CREATE OR REPLACE TEMP TABLE mine AS SELECT 1 AS x")  # a cursor's temporary tables are its own
        assert second.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mine'").fetchall() == [(0,)]
    finally:
        first.close()
        second.close()


def test_workers_run_the_python_the_settings_name_else_this_one_in_local_mode(monkeypatch):
    """$PYSPARK_PYTHON wins (PySpark read it); else the session's `spark.pyspark.python` (a dataset's `spark: conf:`,
    put on a session `engines.spark.start` found — PySpark itself applies it only under spark-submit; before, the
    setting was taken as chosen and the workers ran PATH's `python3`); else, in local mode only, this interpreter."""
    from riskconsole.engines.spark_scores import _local_workers

    class Session:
        def __init__(self, master: str, conf: dict[str, str]) -> None:
            self.sparkContext = types.SimpleNamespace(master=master, pythonExec="python3")
            self.conf = types.SimpleNamespace(get=lambda key, default=None: conf.get(key, default))

    def workers(master: str, conf: dict[str, str]) -> str:
        session = Session(master, conf)
        _local_workers(session)
        return session.sparkContext.pythonExec

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    theirs = {"spark.pyspark.python": "/opt/py/bin/python"}
    assert workers("local[1]", theirs) == workers("spark://host:7077", theirs) == "/opt/py/bin/python"
    assert workers("local[*]", {}) == sys.executable and workers("spark://host:7077", {}) == "python3"
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3.11")
    assert workers("local[1]", theirs) == workers("local[1]", {}) == "python3"  # SparkContext took it at its start


def test_a_worker_removes_the_folder_it_loads_a_model_from_at_once(tmp_path, monkeypatch):
    """A Spark worker ends by `os._exit`, so a folder left for `atexit` to remove stayed on the executor's disk, one
    per worker and model (127 under /tmp after a day of test runs here). The model's files are now written to a
    temporary folder removed as soon as the detector is loaded, and the loaded detector scores as the one in the
    workspace (LightGBM with its compiled trees when tl2cgen compiled them, and a PyOD detector)."""
    import numpy as np
    from detector_data import detector_yaml, signal_workspace

    from riskconsole.detectors import load_detector, train_detector
    from riskconsole.engines import spark_scores

    ws = signal_workspace(tmp_path / "ws", n=1_500)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    monkeypatch.setattr(spark_scores, "_MODELS", {})
    rows = np.random.default_rng(0).random((50, 6)) * 10
    for name, kind in (("lgbm", "lightgbm"), ("iforest", "pyod.iforest")):
        train_detector(ws, detector_yaml(ws.root, name, kind))
        folder = ws.models_dir / name
        model = spark_scores._load(spark_scores.model_files(folder))
        assert list(scratch.iterdir()) == []
        want = load_detector(folder)[0]
        assert np.array_equal(model.score(rows), want.score(rows))
        if kind == "lightgbm":
            assert (model.compiled_ is None) == (want.compiled_ is None)
