"""Time a Spark load of many Parquet files at a `file://` URI whose types Spark will not merge (a column pyarrow
wrote of its null type in every other file, DOUBLE in the rest): the files' schemas read one by one.

    cd /tmp && PYTHONPATH=<tree> <tree>/.venv/bin/python <tree>/bench/bench_spark_parquet_groups.py --files 1000

Writes the files and a workspace in a temporary folder; prints the load's wall time (the Spark session's start
excluded) and what was loaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    from riskconsole.config import SparkSettings
    from riskconsole.engines.spark import start
    from riskconsole.ingest import load
    from riskconsole.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-parquet-groups-") as folder:
        root = Path(folder) / "ws"
        (root / "data" / "in").mkdir(parents=True)
        for i in range(args.files):
            coupon = pa.array([None, None], pa.null()) if i % 2 else pa.array([1.5, None])
            pq.write_table(pa.table({
                "event_id": [f"e{2 * i}", f"e{2 * i + 1}"], "ts": ["2026-03-01 10:00:00", "2026-03-02 11:00:00"],
                "is_fraud": [0, 1], "amount": [10.0, 20.0], "user_id": [i, i], "coupon": coupon}),
                root / "data" / "in" / f"{i:05d}.parquet")
        dataset = {"source": f"file://{root}/data/in/*.parquet",
                   "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "amount": "amount"},
                   "features": []}
        (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
        spark = start(SparkSettings(master=args.master))
        started = time.perf_counter()
        result = load(Workspace(root), engine="spark", spark=spark)
        print(f"{args.files} Parquet files (merge refused) on spark: loaded {result.loaded:,} of {result.read:,} "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
