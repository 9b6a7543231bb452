"""A stream of N two-row CSV files on Spark (one row of each quarantined): the load's staging pass (`load_part`, its
tally) and the quarantine's read, timed. Run from outside the source tree (Spark's workers import riskconsole from
their working directory first):

    cd /tmp && PYTHONPATH=<tree> <tree>/.venv/bin/python <tree>/bench/bench_spark_tiny_files.py 12000 --master 'local[2]'
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import yaml

HEADER = "event_id,ts,is_fraud,label_ts,amount,user_id,device_id\n"
DATASET = {"source": "data/in/events/*.csv", "features": [],
           "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "label_time": "label_ts",
                       "amount": "amount", "entities": ["user_id", "device_id"]},
           "streams": {"logins": {"source": "data/in/logins/*.csv", "columns": {"time": "login_time"}}}}


def workspace(root: Path, n: int) -> None:
    """The workspace: five events and a stream of `n` files (kept between runs)."""
    if (root / "data" / "in" / "logins" / f"l{n - 1:05d}.csv").exists():
        return
    (root / "data" / "in" / "events").mkdir(parents=True, exist_ok=True)
    (root / "data" / "in" / "logins").mkdir(parents=True, exist_ok=True)
    (root / "data" / "in" / "events" / "e.csv").write_text(
        HEADER + "".join(f"e{i},2026-03-01 10:00:00,0,,10,{i % 3},1\n" for i in range(5)))
    for f in range(n):
        (root / "data" / "in" / "logins" / f"l{f:05d}.csv").write_text(
            f"uid,login_time,spend\nu{f},2026-03-01 10:00:00,1\nu{f}x,notatime,1\n")
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(DATASET))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=int)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--memory", default="512m", help="spark.driver.memory (the tests' 512m by default)")
    parser.add_argument("--root", default="/tmp/bench-spark-tiny-files")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    from pyspark.sql import SparkSession

    from riskconsole.engines.spark_load import load_part
    from riskconsole.sources import check_dataset
    from riskconsole.workspace import Workspace

    root = Path(args.root) / str(args.files)
    workspace(root, args.files)
    conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC",
            "spark.driver.memory": args.memory,
            "spark.sql.shuffle.partitions": "8", "spark.default.parallelism": "2"}
    builder = SparkSession.builder.master(args.master).appName("bench-tiny-files")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("OFF")
    t = time.perf_counter()
    checked = check_dataset(Workspace(root))
    print(f"check {time.perf_counter() - t:.1f} s")
    part = next(p for p in checked.parts if p.kind == "stream")
    for _ in range(args.repeat):
        t = time.perf_counter()
        loaded = load_part(spark, checked, part)
        tally = time.perf_counter() - t
        tasks = loaded.cached[0].rdd.getNumPartitions()
        t = time.perf_counter()
        rows = loaded.quarantine.toArrow().num_rows
        print(f"{args.files:,} files: load_part {tally:.1f} s ({tasks} staging tasks, read {loaded.read:,}), "
              f"quarantine {time.perf_counter() - t:.1f} s ({rows:,} rows)")
        for data in loaded.cached:
            data.unpersist()
    spark.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
