"""Benchmark (issue 15): feature build and a 20-rule backtest on Spark local mode beside DuckDB, in one run.

Run by hand, not in CI (a loaded demo workspace first):
    .venv/bin/riskconsole demo --events 100000 --workspace /tmp/rc-spark
    .venv/bin/python bench/bench_spark.py --workspace /tmp/rc-spark --master 'local[2]'

DuckDB builds the frame from a copy of the loaded events, streams and tables in memory (under the product's memory cap,
spilling beside the database; 4GB before session 11); Spark exports them to
Parquet and builds the frame with the same queries (data/spark/ is removed first, so nothing is cached). Each
backtest is timed three times in one process (median), after one warm-up run. The entity frame of each
entity-level strategy is built once by each engine (DuckDB without its cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
warnings.filterwarnings("ignore", category=FutureWarning)

from riskconsole.config import SparkSettings  # noqa: E402
from riskconsole.engines.spark import SPARK_DIR, start  # noqa: E402
from riskconsole.features import build_frame  # noqa: E402
from riskconsole.session import Session  # noqa: E402
from riskconsole.workspace import Workspace, memory_limit  # noqa: E402

STRATEGY = HERE / "strategy_20.yaml"


def duckdb_features(ws: Workspace, session: Session) -> float:
    """Seconds to build the frame in DuckDB from an in-memory copy of the loaded tables."""
    dataset = session.dataset
    # the product's own cap (40% of memory, or $RISKCONSOLE_MEMORY_LIMIT), spilling to a folder beside the database
    con = duckdb.connect(config={"memory_limit": memory_limit(), "temp_directory": str(ws.root / "data" / "bench.tmp")})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{ws.db_path}' AS src (READ_ONLY)")
    for name in ["events", *(f"stream_{s}" for s in dataset.streams), *(f"table_{t}" for t in dataset.tables)]:
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM src."{name}"')
    con.execute("DETACH src")
    started = time.perf_counter()
    build_frame(con, dataset, "data/dataset.yaml")
    seconds = time.perf_counter() - started
    con.close()
    shutil.rmtree(ws.root / "data" / "bench.tmp", ignore_errors=True)
    return seconds


def backtest_seconds(session: Session, runs: int = 3) -> tuple[float, dict]:
    """Median seconds of a backtest of the 20-rule strategy (after one warm-up run) and its report."""
    report = session.backtest(STRATEGY).report
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.backtest(STRATEGY)
        times.append(time.perf_counter() - started)
    return statistics.median(times), report


def entity_seconds(ws: Workspace, duck: Session, on_spark: Session) -> list[tuple[str, int, float, float]]:
    """Per entity-level strategy of the workspace: its entity-periods and seconds to build its entity frame with
    DuckDB (no cache) and with Spark (data/spark/ removed first)."""
    from riskconsole.entities import WEIGHT, build

    out = []
    for path in sorted(ws.strategies_dir.glob("*.yaml")):
        level = ws.strategy(path).level
        if level is None:
            continue
        started = time.perf_counter()
        with duck.cursor() as cur:
            view = build(cur, duck.dataset, level, ws.rel(path))
        duck_seconds = time.perf_counter() - started
        started = time.perf_counter()
        on_spark.entities(level, ws.rel(path))
        periods = int(sum(view.table.column(WEIGHT).to_pylist()))
        out.append((f"{level.entity} every {level.every}", periods, duck_seconds, time.perf_counter() - started))
    return out


def entities_only(ws: Workspace, master: str, load_before: tuple) -> None:
    """Print the entity frames' build times on both engines (after Spark's export, timed apart)."""
    spark = start(SparkSettings(master=master))
    with Session(ws, engine="spark", spark=spark) as on_spark, Session(ws, engine="duckdb") as duck:
        engine = on_spark.spark_engine(frame=False)
        with duck.cursor() as cur:
            engine.export(cur)
        rows = entity_seconds(ws, duck, on_spark)
    print(f"Spark {master}; export of events, streams and tables {engine.seconds['export']:.1f} s")
    print("| entity frame | DuckDB | Spark | Spark / DuckDB |\n| --- | --- | --- | --- |")
    for what, periods, duck_seconds, spark_seconds in rows:
        print(f"| {what} ({periods:,} periods) | {duck_seconds:.1f} s | {spark_seconds:.1f} s | "
              f"{spark_seconds / duck_seconds:.0f}x |")
    print(f"load average (1, 5, 15 min) at start {' '.join(f'{x:.1f}' for x in load_before)}, at end "
          f"{_load()} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--remote", help="Spark Connect instead of a driver here, e.g. local[2] (spark.remote)")
    parser.add_argument("--entities-only", action="store_true",
                        help="only the entity frames (Spark needs the export, not the event frame)")
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    load_before = os.getloadavg()
    shutil.rmtree(ws.root / "data" / SPARK_DIR, ignore_errors=True)
    if args.entities_only:
        return entities_only(ws, args.master, load_before)
    with Session(ws, engine="duckdb") as duck:
        events = duck.cursor().execute("SELECT count(*) FROM events").fetchall()[0][0]
        feature_duck = duckdb_features(ws, duck)
        backtest_duck, report_duck = backtest_seconds(duck)
    # each engine's numbers as soon as they are known: a run stopped midway (10M on Spark takes hours) keeps them
    print(f"DuckDB: {events:,} events, feature build {feature_duck:.1f} s, backtest {backtest_duck:.2f} s "
          f"(load average {_load()})", flush=True)
    started = time.perf_counter()
    settings = SparkSettings(remote=args.remote) if args.remote else SparkSettings(master=args.master)
    spark = start(settings)
    startup = time.perf_counter() - started
    with Session(ws, engine="spark", spark=spark) as on_spark:
        engine = on_spark.spark_engine()
        print(f"Spark: export {engine.seconds.get('export', 0):.1f} s, feature build {engine.seconds.get('frame', 0):.1f} s "
              f"(load average {_load()})", flush=True)
        backtest_spark, report_spark = backtest_seconds(on_spark)
        with Session(ws, engine="duckdb") as duck:
            entity_rows = entity_seconds(ws, duck, on_spark)
    same = report_spark["overall"] == report_duck["overall"]
    close = all(abs(report_spark["overall"][k] - v) <= 1e-9 * max(1.0, abs(v))
                for k, v in report_duck["overall"].items() if isinstance(v, float))
    print(f"{events:,} events, {len(on_spark.dataset.features)} features, Spark {settings.target} (session start "
          f"{startup:.1f} s)")
    print("| step | DuckDB | Spark | Spark / DuckDB |")
    print("| --- | --- | --- | --- |")
    print(f"| feature build | {feature_duck:.1f} s | {engine.seconds['frame']:.1f} s (+ export "
          f"{engine.seconds['export']:.1f} s) | {engine.seconds['frame'] / feature_duck:.0f}x |")
    print(f"| 20-rule backtest (median of 3, warm) | {backtest_duck:.2f} s | {backtest_spark:.2f} s | "
          f"{backtest_spark / backtest_duck:.0f}x |")
    for what, periods, duck_seconds, spark_seconds in entity_rows:
        print(f"| entity frame, {what} ({periods:,} periods) | {duck_seconds:.1f} s | {spark_seconds:.1f} s | "
              f"{spark_seconds / duck_seconds:.0f}x |")
    for step, seconds in engine.seconds.items():  # LightGBM detectors are scored on Spark (mapInArrow)
        if step.startswith("score "):
            print(f"| {step} on Spark (mapInArrow, every event) | (at load) | {seconds:.1f} s | |")
    print(f"overall metrics identical: {same}; equal within 1e-9: {close}")
    print(f"load average (1, 5, 15 min) at start {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}, "
          f"at end {_load()} on {os.cpu_count()} cores")


def _load() -> str:
    """The load average (1, 5, 15 min) as the tables print it."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
