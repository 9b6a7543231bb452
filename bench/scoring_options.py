"""Scoring options for the demo LightGBM model (issue 13, item 4): rows/s and exactness, measured in one run.

Usage:
    python bench/scoring_options.py [--rows 1000000] [--demo /tmp/rc-defaults/demo-300000-7]

Fits the former default (31 leaves, class-weighted, AP early stopping) and the current default
(bench/detector_defaults.py) on the demo's windows, then times, on the demo's rows tiled to --rows:
`Booster.predict` (probability), the raw score + calibration that `LightGBMDetector.score` runs, with 1
and 2 threads, float32 vs float64 input. Exactness: max |difference| of the detector's raw score against
`Booster.predict(raw_score=True)` and of its probability path against `Booster.predict`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskconsole.detectors.boosting import LightGBMDetector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_defaults import CONFIGS, demo_data  # noqa: E402


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--demo", default="300000:7", help="size:seed of the cached demo (bench/detector_defaults.py)")
    parser.add_argument("--cache", default="/tmp/rc-defaults")
    args = parser.parse_args()
    size, seed = (int(v) for v in args.demo.split(":"))
    X, y, Xv, yv, Xt, yt, cat = demo_data(size, seed, Path(args.cache))
    rows = np.tile(Xt, (args.rows // len(Xt) + 1, 1))[:args.rows]
    print(f"{args.rows:,} rows x {rows.shape[1]} features (demo {size:,} seed {seed}, out-of-time rows tiled)")
    for name in ("old-default", "default"):
        model = LightGBMDetector(CONFIGS[name], seed=7).fit(X, y.astype(float), valid=(Xv, yv.astype(float)),
                                                            categorical=cat)
        b = model.booster_
        raw = model.raw(rows)
        exact_raw = np.abs(raw - b.predict(rows, raw_score=True)).max()
        t_prob = timed(lambda: b.predict(rows, num_threads=2))
        t_score = timed(lambda: model.score(rows))
        t_one = timed(lambda: b.predict(rows, raw_score=True, num_threads=1), 1)
        t64 = timed(lambda: b.predict(rows.astype(np.float64), raw_score=True, num_threads=2), 1)
        print(f"{name:12} trees {b.num_trees():4}  Booster.predict 2 threads {args.rows / t_prob / 1e6:.2f} M/s, "
              f"1 thread {args.rows / t_one / 1e6:.2f} M/s, float64 input {args.rows / t64 / 1e6:.2f} M/s; "
              f"detector score (raw + {model.calibrator_.method}) {args.rows / t_score / 1e6:.2f} M/s; "
              f"max |raw - Booster.predict(raw_score)| {exact_raw:.1e}")


if __name__ == "__main__":
    main()
