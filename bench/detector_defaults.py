"""Study: which LightGBM defaults generalise on small, imbalanced, time-ordered risk data (issue 13, item 1).

Usage:
    python bench/detector_defaults.py [--demo 100000:7,100000:11,300000:7] [--synthetic 0,1,2]
                                      [--configs current,small,...] [--cache /tmp/rc-defaults]

Data sets (none downloaded):
- the demo (`riskconsole demo`) at the given size:seed pairs, read through the demo detector's own
  windows and features: fit on its train window, early stopping and calibration on its valid window,
  scored on everything after (out of time, labelled rows only). Workspaces are cached under --cache.
- scikit-learn's `make_classification` (1.5% positives, label noise, 20 features of which 6 informative),
  ordered in time with drift: the informative features' means move over time and their weights change
  between the first and second half, so the test period is a shifted version of the training one.
  60% train, 15% valid, 25% test, in time order.

Every config is the detector's own code path (`LightGBMDetector`: its class weighting, early stopping on
the valid window, calibration), so the table measures what a user gets. Metrics on the test rows: AP,
ROC AUC, calibration error (ECE, 10 equal-width bins) of the calibrated score, trees kept. The table
also gives each config's mean rank of AP over the data sets (1 = best).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskconsole.detectors.boosting import LightGBMDetector  # noqa: E402

CONFIGS = {
    "default": {},  # what riskconsole ships now (boosting.DEFAULTS)
    "old-default": {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 50, "feature_fraction": 0.9,
                    "bagging_fraction": 0.8, "scale_pos_weight": "balanced", "metric": ["average_precision", "auc"]},
    "l31-unw-logloss": {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 50, "feature_fraction": 0.9,
                        "bagging_fraction": 0.8, "scale_pos_weight": 1,
                        "metric": ["binary_logloss", "average_precision", "auc"]},
    "demo-yaml": {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 100, "scale_pos_weight": "balanced",
                  "metric": ["average_precision", "auc"]},
    "leaves15": {"num_leaves": 15, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                 "bagging_fraction": 0.7, "scale_pos_weight": "balanced", "metric": ["average_precision", "auc"]},
    "small": {"num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
              "bagging_fraction": 0.7, "scale_pos_weight": "balanced", "metric": ["average_precision", "auc"]},
    "small-sqrtw": {"num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                    "bagging_fraction": 0.7, "scale_pos_weight": "sqrt", "metric": ["average_precision", "auc"]},
    "small-unweighted": {"num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                         "bagging_fraction": 0.7, "scale_pos_weight": 1, "metric": ["average_precision", "auc"]},
    "small-unw-logloss": {"num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                          "bagging_fraction": 0.7, "scale_pos_weight": 1,
                          "metric": ["binary_logloss", "average_precision", "auc"]},
    "small-unw-p100": {"num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                       "bagging_fraction": 0.7, "scale_pos_weight": 1, "early_stopping_round": 100,
                       "metric": ["average_precision", "auc"]},
    "l15-unw-logloss": {"num_leaves": 15, "learning_rate": 0.05, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                        "bagging_fraction": 0.7, "scale_pos_weight": 1,
                        "metric": ["binary_logloss", "average_precision", "auc"]},
    "small-lr0.1": {"num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                    "bagging_fraction": 0.7, "scale_pos_weight": "balanced", "metric": ["average_precision", "auc"]},
}


def demo_data(size: int, seed: int, cache: Path) -> tuple:
    """(X_train, y_train, X_valid, y_valid, X_test, y_test, categorical) of a demo workspace."""
    from riskconsole.detectors import training
    from riskconsole.detectors.matrix import Span, window_rows
    from riskconsole.detectors.registry import make_detector
    from riskconsole.scaffold import build_demo_workspace
    from riskconsole.workspace import Workspace

    ws = Workspace(cache / f"demo-{size}-{seed}")
    if not ws.db_path.exists():
        build_demo_workspace(ws, n_events=size, seed=seed, train=False)
    spec = ws.detector(ws.detectors_dir / "lgbm_orders.yaml")
    con = ws.connect_safe()
    plan = training._plan(ws, con, spec, "demo")
    encoding, X, y, valid = training._training_data(con, plan, make_detector("lightgbm", {}, 7, "demo"))
    after = training._out_of_time(con, plan)
    rows, y_test = window_rows(con, encoding, plan.dataset, Span(after.start, after.end), labelled=True)
    con.close()
    return X, y, valid[0], valid[1], encoding.matrix(rows), y_test, list(encoding.categorical)


def synthetic_data(seed: int, n: int = 200_000) -> tuple:
    """make_classification rows in time order with drifting feature means and weights (see the module doc)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=20, n_informative=6, n_redundant=4, n_clusters_per_class=3,
                               weights=[0.985], flip_y=0.005, class_sep=0.8, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)
    X[:, :6] += np.outer(t, rng.normal(0, 0.8, 6))           # slow drift of the informative features
    late = t > 0.5
    X[late, :3] *= rng.uniform(0.7, 1.3, 3)                   # their scale changes mid-way
    X = X.astype(np.float32)
    a, b = int(0.6 * n), int(0.75 * n)
    return X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:], []


def run(name: str, params: dict, data: tuple) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from riskconsole.detectors.calibration import reliability

    X, y, Xv, yv, Xt, yt, categorical = data
    params = dict(params)
    if params.get("scale_pos_weight") == "sqrt":
        params["scale_pos_weight"] = round(float(np.sqrt((len(y) - y.sum()) / y.sum())), 4)
    began = time.perf_counter()
    model = LightGBMDetector(params, seed=7).fit(X, y.astype(float), valid=(Xv, yv.astype(float)),
                                                 categorical=categorical)
    seconds = time.perf_counter() - began
    s = model.score(Xt)
    return {"config": name, "ap": average_precision_score(yt, s), "auc": roc_auc_score(yt, s),
            "ece": reliability(yt, s)["ece"], "trees": model.booster_.num_trees(), "seconds": seconds,
            "calibration": model.calibrator_.method}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="100000:7,100000:11,300000:7", help="size:seed pairs ('' for none)")
    parser.add_argument("--synthetic", default="0,1,2", help="make_classification seeds ('' for none)")
    parser.add_argument("--configs", default=",".join(CONFIGS))  # "default" = the shipped DEFAULTS
    parser.add_argument("--cache", default="/tmp/rc-defaults", help="folder for the demo workspaces")
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = {}
    for pair in filter(None, args.demo.split(",")):
        size, seed = (int(v) for v in pair.split(":"))
        sets[f"demo {size // 1000}k s{seed}"] = lambda size=size, seed=seed: demo_data(size, seed, cache)
    for seed in filter(None, args.synthetic.split(",")):
        sets[f"drift-synth s{seed}"] = lambda seed=int(seed): synthetic_data(seed)
    configs = args.configs.split(",")
    results = []
    for label, load in sets.items():
        data = load()
        pos = f"{int(data[1].sum())}/{int(data[5].sum())}"
        for name in configs:
            r = run(name, CONFIGS[name], data) | {"data": label, "frauds": pos}
            results.append(r)
            print(f"{label:18} {name:17} AP {r['ap']:.4f} AUC {r['auc']:.4f} ECE {r['ece']:.4f} "
                  f"trees {r['trees']:4} {r['calibration']:8} {r['seconds']:.1f} s", flush=True)
    print()
    print("| data (train/test frauds) | " + " | ".join(configs) + " |")
    print("| --- |" + " --- |" * len(configs))
    for label in sets:
        row = {r["config"]: r for r in results if r["data"] == label}
        frauds = next(r["frauds"] for r in results if r["data"] == label)
        print(f"| {label} ({frauds}) | " + " | ".join(
            f"{row[c]['ap']:.3f} / {row[c]['auc']:.3f} / {row[c]['ece']:.3f} / {row[c]['trees']}" for c in configs) + " |")
    ranks = {c: [] for c in configs}
    for label in sets:
        order = sorted((r for r in results if r["data"] == label), key=lambda r: -r["ap"])
        for i, r in enumerate(order):
            ranks[r["config"]].append(i + 1)
    print("| mean AP rank | " + " | ".join(f"{np.mean(ranks[c]):.2f}" for c in configs) + " |")
    print("| mean AP | " + " | ".join(f"{np.mean([r['ap'] for r in results if r['config'] == c]):.4f}"
                                      for c in configs) + " |")
    print("| mean ECE | " + " | ".join(f"{np.mean([r['ece'] for r in results if r['config'] == c]):.4f}"
                                       for c in configs) + " |")
    print("\ncells: AP / AUC / ECE / trees on the test (out-of-time) rows")


if __name__ == "__main__":
    main()
