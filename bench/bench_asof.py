"""Benchmark (issue 15): an as-of lookup over a large versioned table on Spark, versions numbered over the whole
table (one task: Spark's "No Partition Defined for Window operation") against numbered per key (`lookups._ASOF`).

Synthetic data written by Spark itself: EVENTS events over KEYS keys, and a table of VERSIONS versions per key, each
valid from a time inside the events' span. Both queries are rendered by riskconsole's Spark dialect; the bench
checks they give the same rows, then times each (a `noop` write, so the whole plan runs).

Run by hand, not in CI:
    SPARK_LOCAL_DIRS=/tmp/sparklocal .venv/bin/python bench/bench_asof.py --events 2000000 --keys 1000000 --versions 5
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskconsole import lookups  # noqa: E402
from riskconsole.config import SparkSettings  # noqa: E402
from riskconsole.engines.spark import start  # noqa: E402
from riskconsole.engines.spark_render import render  # noqa: E402
from riskconsole.sqlbuild import alias, fill, ident  # noqa: E402
from riskconsole.streams import micros  # noqa: E402
from sqlglot import exp  # noqa: E402

# the template before per-key numbering (session 13's code): one row_number over the whole table
GLOBAL = (
    "WITH v AS (SELECT *, row_number() OVER (ORDER BY :key, :vf) AS __v FROM :tbl "
    "  WHERE :key IS NOT NULL AND :vf IS NOT NULL), "
    "u AS (SELECT 0 AS __kind, :key AS __k, :vt AS _t, __v, NULL AS _pos FROM v "
    "  UNION ALL SELECT 1, :ekey, _t, NULL, _pos FROM :base WHERE :ekey IS NOT NULL), "
    "m AS (SELECT _pos, __kind, max(__v) OVER (PARTITION BY __k ORDER BY _t, __kind "
    "  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __v FROM u) "
    "SELECT m._pos FROM m JOIN v ON m.__v = v.__v WHERE m.__kind = 1")
SPAN_US = 90 * 86400 * 1_000_000


def query(template: str) -> str:
    nodes = {"tbl": exp.to_table("table_users"), "base": exp.to_table("base")}
    key, vf = ident("user_id"), ident("valid_from")
    node = fill(template, **nodes, key=key, vf=vf, vt=micros(ident("valid_from")), ekey=ident("user_id"),
                vkey=exp.column("user_id", "v", quoted=True))
    node = node.select(alias(exp.column("tier", "v", quoted=True), "tier"), append=True)
    return render(node, "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    spark = start(SparkSettings(master=args.master))
    folder = Path(tempfile.mkdtemp(prefix="bench_asof_"))
    try:
        spark.sql(f"SELECT id AS _pos, id * {SPAN_US // args.events} AS _t, "
                  f"CAST(pmod(xxhash64(id), {args.keys}) AS BIGINT) AS user_id FROM range({args.events})") \
            .write.parquet(str(folder / "base"))
        spark.sql(f"SELECT CAST(id % {args.keys} AS BIGINT) AS user_id, "
                  f"timestamp_micros(CAST(id DIV {args.keys} AS BIGINT) * {SPAN_US // args.versions} "
                  f"+ pmod(xxhash64(id, 1), {SPAN_US // args.versions})) AS valid_from, "
                  f"CAST(pmod(xxhash64(id, 2), 5) AS INT) AS tier "
                  f"FROM range({args.keys * args.versions})").write.parquet(str(folder / "table"))
        spark.read.parquet(str(folder / "base")).createOrReplaceTempView("base")
        spark.read.parquet(str(folder / "table")).createOrReplaceTempView("table_users")
        old, new = query(GLOBAL), query(lookups._ASOF)
        differ = spark.sql(f"SELECT count(*) FROM (({old}) EXCEPT ALL ({new}))").first()[0] \
            + spark.sql(f"SELECT count(*) FROM (({new}) EXCEPT ALL ({old}))").first()[0]
        matched = spark.sql(f"SELECT count(*) FROM ({new})").first()[0]
        times: dict[str, list[float]] = {"global": [], "per key": []}
        for _ in range(args.runs):
            for name, sql in (("global", old), ("per key", new)):
                started = time.perf_counter()
                spark.sql(sql).write.format("noop").mode("overwrite").save()
                times[name].append(time.perf_counter() - started)
        print(f"{args.events:,} events, {args.keys:,} keys x {args.versions} versions, {args.master}; "
              f"{matched:,} events matched a version; rows differing: {differ}")
        print("| numbering | " + " | ".join(f"run {i + 1}" for i in range(args.runs)) + " |")
        print("| --- |" + " --- |" * args.runs)
        for name, values in times.items():
            print(f"| {name} | " + " | ".join(f"{v:.1f} s" for v in values) + " |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
