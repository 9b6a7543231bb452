"""What riskconsole's Spark code shares within one Python process: an in-memory DuckDB (the driver's sniffing, types
and row rules; each task's on a worker), and on a worker a garbage collector that skips what the worker imported.

PySpark keeps a Python worker for task after task (`spark.python.worker.reuse`, on by default) and runs a full
`gc.collect()` after each one. Every function riskconsole hands to `mapInArrow` (spark_load's row rules, spark_json's
parsers, spark_scores' scorer) calls `settle()` as a task starts; the ones that run DuckDB take a `cursor()`.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

import duckdb

from riskconsole.workspace import connect_duckdb

_LOCK = threading.Lock()
_DATABASE: duckdb.DuckDBPyConnection | None = None
_FROZEN = 0  # len(sys.modules) when this process's objects were last frozen


def settle() -> None:
    """Once this worker's imports grew, collect and freeze (`gc.freeze`) what they made: PySpark's collection after
    each task then walks only what later tasks made. Those imports are hundreds of thousands of objects (pyarrow,
    DuckDB, sqlglot; after a scoring task also LightGBM, and PyOD with scipy, scikit-learn and numba), 0.1-0.2 s a
    collection: paid per task, that is per partition, it was most of a small load's time on Spark. A worker that is
    not reused (`spark.python.worker.reuse: false`; Spark then does not set $SPARK_REUSE_WORKER) serves one task and
    is never collected: nothing to do."""
    global _FROZEN
    if not os.environ.get("SPARK_REUSE_WORKER"):
        return
    with _LOCK:
        if len(sys.modules) != _FROZEN:
            gc.collect()
            gc.freeze()
            _FROZEN = len(sys.modules)


def cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on this process's one in-memory DuckDB, in UTC as the load's connection (zones convert to UTC), for
    sniffing, types and the row rules; close it after. A new in-memory database costs ~14 ms, a cursor on one
    microseconds."""
    global _DATABASE
    with _LOCK:
        if _DATABASE is None:
            _DATABASE = connect_duckdb()
            _DATABASE.execute("SET GLOBAL TimeZone = 'UTC'")  # a cursor is a connection of its own: a global setting
        return _DATABASE.cursor()
