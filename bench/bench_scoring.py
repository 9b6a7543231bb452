"""Benchmark: score N events with a LightGBM detector of the demo's shape; report rows/s and peak memory.

Usage:
    python bench/bench_scoring.py [N] [--trees 200] [--features 16] [--chunk 500000]
                                  [--model data/models/lgbm_orders] [--end-to-end]
    python bench/bench_scoring.py N --workspace W [--detector lgbm_orders] [--repeat 3] [--scorers default,tl2cgen,pure]
    python bench/bench_scoring.py N --workspace W --paths [--repeat 3]

Default: a model trained on synthetic rows (num_leaves 31, `--trees` trees, `--features` features),
scoring N synthetic float32 rows chunk by chunk exactly as `riskconsole train` does (the chunk is
generated outside the timer). `--end-to-end` instead writes N rows into a scratch DuckDB `frame`
and times `score_into` (read from DuckDB, predict, insert into a score table). Peak memory is the
process's max resident set size (`resource.getrusage`), so it includes the Python runtime, and in
`--end-to-end` DuckDB's buffer cache while it writes the scratch frame (printed before scoring starts).

`--workspace W`: the real thing on a demo workspace. W's frame is copied into a scratch DuckDB file, repeated
until it has N rows (fresh `_pos`), and `score_into` scores it with W's trained detector: read the features
from DuckDB, encode, predict (`--scorers`: `default` = bit vectors, see quickscorer.py; `tl2cgen` = the compiled
trees of the model folder; `pure` = `Booster.predict`; several run one after the other), calibrate, insert the scores. Prints wall and CPU seconds (all threads), the load average,
and the max |difference| of the stored scores against `Booster.predict` + the calibrator on the same rows.

`--paths`: the three exact raw-score paths on the same float32 matrix (W's frame tiled to N rows), in one process
and interleaved run by run so they share the load: `Booster.predict` (2 threads), the tl2cgen-compiled trees
(when the model folder has model.so) and the bit-vector scorer (quickscorer.py). Wall, CPU (all threads), rows/s
and max |diff| against `Booster.predict`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskconsole.detectors.boosting import LightGBMDetector  # noqa: E402  (sets OpenMP policy before lightgbm)
from riskconsole.detectors.registry import load_detector  # noqa: E402


def peak_mb() -> float:
    """Max resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    """Resident set size right now, in MB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def synthetic_rows(rng: np.random.Generator, n: int, features: int) -> np.ndarray:
    """Demo-like rows: skewed amounts, small counts, a few NaN."""
    X = rng.lognormal(0.0, 1.0, size=(n, features)).astype(np.float32)
    X[:, 1::3] = rng.poisson(0.3, size=(n, len(range(1, features, 3))))
    X[rng.random((n, features)) < 0.02] = np.nan
    return X


def synthetic_model(trees: int, features: int, seed: int = 7) -> LightGBMDetector:
    """A LightGBM detector with exactly `trees` trees of 31 leaves on a learnable synthetic target."""
    rng = np.random.default_rng(seed)
    X = synthetic_rows(rng, 200_000, features)
    logit = np.nan_to_num(np.log(X[:, 0]) + X[:, 1] - 0.5 * np.log(X[:, 2]) + 0.3 * X[:, 4]) - 4
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    params = {"n_estimators": trees, "min_data_in_leaf": 20, "learning_rate": 0.1}
    return LightGBMDetector(params, seed).fit(X, y)


def bench_predict(model: LightGBMDetector, n: int, features: int, chunk: int) -> float:
    """Seconds spent in `model.score` over n rows, chunk by chunk."""
    rng = np.random.default_rng(1)
    spent = 0.0
    for start in range(0, n, chunk):
        X = synthetic_rows(rng, min(chunk, n - start), features)
        began = time.perf_counter()
        model.score(X)
        spent += time.perf_counter() - began
    return spent


def bench_end_to_end(model: LightGBMDetector, n: int, features: int, chunk: int) -> float:
    """Seconds for `score_into` over a scratch DuckDB frame of n rows."""
    import duckdb

    from riskconsole.detectors.training import score_into

    names = [f"f{j}" for j in range(features)]
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        cols = ", ".join(f"CASE WHEN random() < 0.02 THEN NULL ELSE exp(random() * 3) END AS {c}" for c in names)
        con.execute(f"CREATE TABLE frame AS SELECT range + 1 AS _pos, {cols} FROM range({n})")
        con.execute("CHECKPOINT")
        print(f"  frame of {n:,} rows written; RSS before scoring {current_mb():,.0f} MB "
              f"(peak so far {peak_mb():,.0f} MB)")
        began = time.perf_counter()
        score_into(con, model, names, "bench", "_bench_scores", chunk=chunk)
        spent = time.perf_counter() - began
        con.close()
    return spent


def bench_workspace(args) -> None:
    """`score_into` over W's frame repeated to N rows, in a scratch database (W is only read)."""
    import os

    import duckdb

    from riskconsole.detectors.training import score_into
    from riskconsole.workspace import Workspace

    ws = Workspace.resolve(args.workspace)
    model, meta = load_detector(ws.models_dir / args.detector)
    features = meta["features"]
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        con.execute(f"ATTACH '{ws.db_path}' AS src (READ_ONLY)")
        have = con.execute("SELECT count(*) FROM src.frame").fetchall()[0][0]
        copies = -(-args.n // have)
        cols = ", ".join(f'f."{c}"' for c in features)
        con.execute(f"CREATE TABLE frame AS SELECT row_number() OVER (ORDER BY r.range, f._pos) AS _pos, {cols} "
                    f"FROM src.frame AS f, range({copies}) AS r ORDER BY r.range, f._pos LIMIT {args.n}")
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
        print(f"{args.n:,} rows ({have:,} demo rows x {copies}), {model.booster_.num_trees()} trees, "
              f"{len(features)} features, chunks of {args.chunk:,}")
        compiled = model.compiled_
        for scorer in args.scorers.split(","):  # each in the same process, one after the other
            model.fast_ = None if scorer == "default" else False
            model.compiled_ = None if scorer == "pure" else compiled
            for i in range(args.repeat):
                load, wall, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
                done = score_into(con, model, features, args.detector, "_scores", chunk=args.chunk)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"  {SCORERS[scorer]}, run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU: {done / wall / 1e6:.2f} "
                      f"M rows/s ({done / cpu / 1e6:.2f} M rows per CPU-second), load {load:.1f} -> "
                      f"{os.getloadavg()[0]:.1f}")
            _check_stored(con, model, features, args)
        con.close()


SCORERS = {"default": "default (bit vectors, quickscorer.py)", "tl2cgen": "compiled trees (tl2cgen)",
           "pure": "pure Booster.predict"}


def _check_stored(con, model, features: list[str], args) -> None:
    """Max |stored score - Booster.predict + calibrator| over every row."""
    from riskconsole.detectors.matrix import chunk_rows, position_range
    from riskconsole.detectors.registry import encoding_of

    lo, hi = position_range(con)
    worst = 0.0
    for start in range(lo, hi + 1, args.chunk):
        pos, X = chunk_rows(con, encoding_of(model, features), start, min(start + args.chunk - 1, hi))
        raw = model.booster_.predict(X, raw_score=True, num_threads=2)
        ref = model.calibrator_.apply(raw) if model.calibrator_ is not None else model.booster_.predict(X)
        got = con.execute(f"SELECT \"{args.detector}\" FROM _scores WHERE _pos BETWEEN {start} AND "
                          f"{min(start + args.chunk - 1, hi)} ORDER BY _pos").fetchnumpy()[args.detector]
        worst = max(worst, float(np.abs(got - np.clip(ref, 0.0, 1.0)).max()))
    print(f"  max |stored score - Booster.predict + calibrator| = {worst:.1e}")


def _frame_matrix(ws, model, features: list[str], n: int) -> np.ndarray:
    """W's frame encoded as the model reads it, tiled to n rows (float32)."""
    import duckdb

    from riskconsole.detectors.matrix import chunk_rows, position_range
    from riskconsole.detectors.registry import encoding_of

    con = duckdb.connect(str(ws.db_path), read_only=True)
    lo, hi = position_range(con)
    _, X = chunk_rows(con, encoding_of(model, features), lo, hi, np.float32)
    con.close()
    return np.ascontiguousarray(np.resize(X, (n, X.shape[1])))


def bench_paths(args) -> None:
    """Booster.predict vs compiled trees vs bit vectors on the same rows, interleaved run by run."""
    import os

    from riskconsole.detectors.boosting import THREADS, _compiled_raw
    from riskconsole.detectors.quickscorer import Scorer
    from riskconsole.workspace import Workspace

    ws = Workspace.resolve(args.workspace)
    model, meta = load_detector(ws.models_dir / args.detector)
    X = _frame_matrix(ws, model, meta["features"], args.n)
    began = time.perf_counter()
    scorer = Scorer(model.booster_.dump_model())
    print(f"{args.n:,} rows x {X.shape[1]} features, {model.booster_.num_trees()} trees; bit-vector set-up "
          f"{time.perf_counter() - began:.2f} s, table {scorer.table.nbytes / 2**20:.1f} MB ({scorer.dtype.__name__})")
    scorer.raw(X[:5000])  # numba: compile or load the cached kernel outside the timer
    paths = {"Booster.predict": lambda A: model.booster_.predict(A, raw_score=True, num_threads=THREADS),
             "bit vectors (quickscorer.py)": lambda A: scorer.raw(A, THREADS)}
    if model.compiled_ is not None:
        paths["compiled trees (tl2cgen)"] = lambda A: _compiled_raw(model.compiled_, np.asarray(A, np.float64))
    reference = None
    for i in range(args.repeat):
        for name, run in paths.items():
            load, wall, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
            got = run(X)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            reference = got if reference is None else reference
            diff = float(np.abs(got - reference).max())
            print(f"  run {i + 1} {name:30s} {wall:6.2f} s wall {cpu:6.2f} s CPU  {args.n / wall / 1e6:5.2f} M rows/s "
                  f"{args.n / cpu / 1e6:5.2f} M per CPU-s  max|diff| {diff:.1e}  load {load:.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--model", help="a trained model folder (data/models/NAME) instead of a synthetic one")
    parser.add_argument("--end-to-end", action="store_true", help="time DuckDB read + predict + insert")
    parser.add_argument("--workspace", help="score this workspace's frame (repeated to N rows) with its detector")
    parser.add_argument("--detector", default="lgbm_orders")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scorers", default="default",
                        help="with --workspace: comma-separated, in one process: default, tl2cgen, pure")
    parser.add_argument("--paths", action="store_true", help="with --workspace: the three raw-score paths, one run")
    args = parser.parse_args(argv)
    if args.workspace and args.paths:
        bench_paths(args)
        return
    if args.workspace:
        bench_workspace(args)
        return
    if args.model:
        model, meta = load_detector(Path(args.model))
        features = len(meta["features"])
    else:
        model, features = synthetic_model(args.trees, args.features), args.features
    trees = model.booster_.num_trees()
    print(f"  model ready; RSS {current_mb():,.0f} MB")
    run = bench_end_to_end if args.end_to_end else bench_predict
    seconds = run(model, args.n, features, args.chunk)
    mode = "end-to-end (DuckDB -> predict -> DuckDB)" if args.end_to_end else "predict only"
    print(f"{mode}: {args.n:,} rows, {trees} trees, {features} features, chunks of {args.chunk:,}, "
          f"num_threads 2")
    print(f"  {seconds:.1f} s, {args.n / seconds / 1e6:.2f} M rows/s, peak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
