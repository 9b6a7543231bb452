"""Benchmark (issue 15): a keyed distinct-count window on DuckDB, as DuckDB's DISTINCT window aggregate and as the
sweep the Spark engine runs (`streams.distinct_sweep`), over a loaded workspace's events; both must agree.

Run by hand, not in CI (a loaded demo workspace first):
    .venv/bin/python bench/bench_distinct.py --workspace /tmp/ws2m
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import sqlglot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskconsole.config import Feature  # noqa: E402
from riskconsole.streams import distinct_sweep  # noqa: E402
from riskconsole.workspace import Workspace, memory_limit  # noqa: E402

PAIRS = (("merchant_id", "user_id"), ("influencer_id", "device_id"), ("device_id", "user_id"))
WINDOW_US = 7 * 86400 * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    con = duckdb.connect(config={"memory_limit": memory_limit()})
    con.execute(f"ATTACH '{ws.db_path}' AS src (READ_ONLY)")
    con.execute("CREATE TABLE b AS SELECT merchant_id, influencer_id, user_id, device_id, epoch_us(ts) AS _t, "
                "row_number() OVER (ORDER BY ts, event_id) AS _pos FROM src.events")
    print("| key, distinct column (busiest key's rows) | DuckDB distinct window | the sweep on DuckDB | equal |")
    print("| --- | --- | --- | --- |")
    for key, x in PAIRS:
        busiest = con.execute(f"SELECT max(c) FROM (SELECT count(*) AS c FROM b WHERE {key} IS NOT NULL "
                              f"GROUP BY {key})").fetchone()[0]
        started = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE w AS SELECT _pos, coalesce(count(DISTINCT {x}) OVER (PARTITION BY {key} "
                    f"ORDER BY _t RANGE BETWEEN {WINDOW_US} PRECEDING AND 1 PRECEDING), 0) AS v FROM b "
                    f"WHERE {key} IS NOT NULL")
        window = time.perf_counter() - started
        query = distinct_sweep(sqlglot.parse_one(f"SELECT {key}, _t, {x} AS __x0 FROM b WHERE {key} IS NOT NULL"),
                               sqlglot.parse_one(f"SELECT {key}, _t, _pos FROM b WHERE {key} IS NOT NULL"), (key,),
                               [Feature(name="v", count_distinct=x, by=key, window="7d")])
        started = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE s AS {query.sql(dialect='duckdb')}")
        sweep = time.perf_counter() - started
        differ = con.execute("SELECT count(*) FROM (SELECT * FROM w EXCEPT ALL SELECT * FROM s)").fetchone()[0]
        print(f"| {key}, {x} ({busiest:,}) | {window:.1f} s | {sweep:.1f} s | {differ == 0} |")


if __name__ == "__main__":
    main()
