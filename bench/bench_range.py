"""Benchmark: a range lookup (`tables: … range:`, e.g. IP ranges -> country) on DuckDB and on Spark, the bucketed
equi-join of `lookups._RANGE` against the BETWEEN join it replaced (every event compared with every range).

Synthetic data: RANGES non-overlapping ranges of 1 to 16 addresses spread over the IPv4 space (an IP-to-country
table has ~140,000), and EVENTS events at random addresses. The bench checks both joins give the same rows (count
and distinct values matched), then times each: DuckDB in memory, Spark local[2] over Parquet.

Run by hand, not in CI (the BETWEEN join takes minutes at 200,000 events):
    SPARK_LOCAL_DIRS=/tmp/sparklocal .venv/bin/python bench/bench_range.py --events 200000 --ranges 138000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskconsole.config import Dataset  # noqa: E402
from riskconsole.lookups import lookup_query  # noqa: E402

# the range join before the bucketed one (riskconsole <= 5a17e14), for the comparison only
BETWEEN = (
    "WITH v AS (SELECT *, row_number() OVER (ORDER BY lo, hi) AS __v FROM table_r WHERE lo IS NOT NULL AND hi IS NOT "
    "NULL), m AS (SELECT b._pos, v.__v, row_number() OVER (PARTITION BY b._pos ORDER BY v.__v) AS __n FROM ev AS b "
    "JOIN v ON b.x BETWEEN v.lo AND v.hi) SELECT m._pos, v.val AS got FROM m JOIN v ON m.__v = v.__v WHERE m.__n = 1")


def bucketed() -> str:
    dataset = Dataset.model_validate({
        "source": "e.csv", "columns": {"id": "id", "time": "ts", "label": "is_fraud", "amount": "amount"},
        "tables": {"r": {"source": "r.csv", "range": {"value": "x", "low": "lo", "high": "hi"}}},
        "features": [{"name": "got", "lookup": "r.val"}]})
    return lookup_query(dataset, "r", dataset.features, "ev")


def data(events: int, ranges: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(0)
    lo = np.sort(rng.choice(2**32 // 16, ranges, replace=False)).astype(np.int64) * 16
    table = pa.table({"lo": lo, "hi": lo + rng.integers(0, 16, ranges), "val": [f"c{i % 200}" for i in range(ranges)]})
    return table, pa.table({"_pos": np.arange(events), "x": rng.integers(0, 2**32, events)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--ranges", type=int, default=138_000)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--skip-between", action="store_true", help="time the bucketed join only")
    args = parser.parse_args()
    table, events = data(args.events, args.ranges)
    queries = {"bucketed": bucketed()}
    if not args.skip_between:
        queries["between"] = BETWEEN
    results = {}
    if "duckdb" in args.engines:
        con = duckdb.connect()
        con.register("ranges_in", table)
        con.register("events_in", events)
        con.execute("CREATE TABLE table_r AS SELECT * FROM ranges_in; CREATE TABLE ev AS SELECT * FROM events_in")
        for name, query in queries.items():
            sql = query if isinstance(query, str) else query.sql(dialect="duckdb")
            started = time.perf_counter()
            results["duckdb", name] = con.execute(f"SELECT count(*), count(DISTINCT got) FROM ({sql})").fetchall()[0]
            print(f"duckdb {name}: {time.perf_counter() - started:.2f} s {results['duckdb', name]}", flush=True)
    if "spark" in args.engines:
        from riskconsole.config import SparkSettings
        from riskconsole.engines.spark import start
        from riskconsole.engines.spark_render import render

        spark = start(SparkSettings(master="local[2]"))
        with tempfile.TemporaryDirectory() as folder:
            pq.write_table(table, f"{folder}/r.parquet")
            pq.write_table(events, f"{folder}/e.parquet")
            spark.read.parquet(f"{folder}/r.parquet").createOrReplaceTempView("table_r")
            spark.read.parquet(f"{folder}/e.parquet").createOrReplaceTempView("ev")
            for name, query in queries.items():
                sql = query if isinstance(query, str) else render(query, "bench")
                started = time.perf_counter()
                row = spark.sql(f"SELECT count(*), count(DISTINCT got) FROM ({sql})").collect()[0]
                results["spark", name] = tuple(row)
                print(f"spark {name}: {time.perf_counter() - started:.2f} s {results['spark', name]}", flush=True)
    assert len(set(results.values())) == 1, results


if __name__ == "__main__":
    main()
