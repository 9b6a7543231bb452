"""Time loading a workspace's decision events (read, type, quarantine, publish) on DuckDB and on Spark.

    RISKCONSOLE_MEMORY_LIMIT=2GB python bench/bench_spark_load.py /tmp/d1m --engine duckdb [--csv|--jsonl] [--rows N]
    python bench/tree_cpu.py .venv/bin/python bench/bench_spark_load.py /tmp/d1m --engine spark --master local[2]

Only reads the workspace (its dataset.yaml and events source); everything written goes to a temporary folder.
`--csv` (`--jsonl`) first writes the events (or their first `--rows`) as one CSV (JSON Lines) file and loads that
instead (both engines read the same file). DuckDB: `ingest.load_part` into an in-memory database. Spark: `spark_load.load_part`, the events
written by day and DuckDB's `events` and `quarantine` read from them, as `load --engine spark` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from riskconsole import ingest
from riskconsole.sources import check_dataset, column_types
from riskconsole.workspace import Workspace, memory_limit


def _part(ws: Workspace, args: argparse.Namespace, tmp: Path):
    checked = check_dataset(ws)
    part = checked.parts[0]
    if args.csv or args.jsonl or args.rows or args.copies > 1:
        con = duckdb.connect()
        fmt = "json" if args.jsonl else "csv"
        out = tmp / ("events.jsonl" if args.jsonl else "events.csv")
        limit = f" LIMIT {int(args.rows)}" if args.rows else ""
        options = "(FORMAT json)" if args.jsonl else "(HEADER)"
        rows = "SELECT * FROM read_parquet($f)"
        if args.copies > 1:  # the rows K times, each copy's ids made its own (`<id>-<k>`)
            ids = ", ".join(f"concat({c}, '-', k) AS {c}" for c in part.unique)
            rows = f"SELECT * EXCLUDE (k) REPLACE ({ids}) FROM read_parquet($f), range({args.copies}) AS t(k)"
        con.execute(f"COPY ({rows}{limit}) TO '{out}' {options}", {"f": part.files})
        part = dataclasses.replace(part, files=[str(out)], fmt=fmt, types=column_types(con, fmt, [str(out)]),
                                   source=str(out))
    return checked, part


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace")
    parser.add_argument("--engine", choices=("duckdb", "spark"), required=True)
    parser.add_argument("--csv", action="store_true")
    parser.add_argument("--jsonl", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--copies", type=int, default=1, help="write the events K times (ids made unique)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-spark-load-") as folder:
        tmp = Path(folder)
        checked, part = _part(Workspace(Path(args.workspace)), args, tmp)
        con = duckdb.connect(str(tmp / "db.duckdb"), config={"memory_limit": memory_limit()})
        con.execute("SET TimeZone = 'UTC'")
        started = time.perf_counter()
        if args.engine == "duckdb":
            read, loaded, warnings = ingest.load_part(con, checked, part, lambda m: None)
        else:
            from riskconsole.config import SparkSettings
            from riskconsole.engines.spark import start
            from riskconsole.engines.spark_load import SparkLoader

            spark = start(SparkSettings(master=args.master, driver_memory=args.driver_memory))
            up = time.perf_counter()
            print(f"spark session: {up - started:.1f} s", file=sys.stderr)
            started = up
            loader = SparkLoader(Workspace(tmp), checked.dataset, "bench", spark)
            read, loaded, warnings = loader(con, checked, part, lambda m: print(m, file=sys.stderr))
        seconds = time.perf_counter() - started
        events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        print(f"{args.engine} {part.fmt} {len(part.files)} file(s): read {read:,} loaded {loaded:,} "
              f"(events {events:,}) warnings {len(warnings)} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
