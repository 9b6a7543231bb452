"""Benchmark (issue 9): a count_distinct window feature, DuckDB's DISTINCT window aggregate against the list form
it replaced (`array_length(list_distinct(array_agg(x) OVER w))`, which holds each row's whole window as a list).

    .venv/bin/python bench/bench_count_distinct.py [--rows 2000000] [--hot 0.01] [--memory-limit 2GB]

`--hot` is the share of rows on one key (a parcel locker, a kiosk device): K rows in one window cost the list form
O(K^2) values. Prints wall and CPU seconds of each form, or the out-of-memory error.
"""

from __future__ import annotations

import argparse
import time

import duckdb

WINDOW = "OVER (PARTITION BY k ORDER BY _t RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING)"  # 7 days
FORMS = {"distinct": f"coalesce(count(DISTINCT u) {WINDOW}, 0)",
         "list": f"coalesce(array_length(list_distinct(array_agg(u) {WINDOW})), 0)"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--hot", type=float, default=0.01, help="share of rows on one key")
    parser.add_argument("--memory-limit", default="2GB")
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    every = max(1, round(1 / args.hot)) if args.hot > 0 else 0
    hot = f"CASE WHEN i % {every} = 0 THEN -1 ELSE hash(i) % 200000 END" if every else "hash(i) % 200000"
    # one row every 0.3 s: 2M rows span about 7 days, so the hot key's window holds most of its rows
    con.execute(f"CREATE TABLE t AS SELECT i AS _pos, {hot} AS k, hash(i * 7) % 500000 AS u, "
                f"(i * 300000)::BIGINT AS _t FROM range({args.rows}) r(i)")
    for name, form in FORMS.items():
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            total = con.execute(f"SELECT sum(c) FROM (SELECT {form} AS c FROM t)").fetchone()[0]
        except duckdb.OutOfMemoryException as err:
            print(f"{name}: out of memory at {args.memory_limit} ({str(err).splitlines()[0][:80]})")
            continue
        print(f"{name}: sum {total:,}, {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
