"""`riskconsole train --tune N`: search LightGBM hyperparameters with Optuna on rolling time splits.

Point in time: only the training window is used. Its labelled rows (in time order) are cut into
SPLITS + 1 contiguous blocks; split k fits on blocks 0..k and is scored on block k+1 (an expanding
window, as the model will be used: trained on the past, judged on what follows). A trial's value is
the mean average precision over the splits; each split's fit early-stops on its own next block. The
best trial's parameters are then fitted as usual (whole training window, early stopping and
calibration on the validation window), so the validation window still judges a model it never tuned.

Optuna's TPE sampler is seeded with the detector's seed. A time budget bounds the search: a trial
running past it is stopped and not counted; a budget that ends before any trial finished is an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SPLITS = 3


class BudgetSpent(Exception):
    """Raised inside a trial when the time budget runs out."""


@dataclass
class Search:
    """The trials of a search and the best parameters found."""

    trials: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    best_value: float | None = None
    seconds: float = 0.0

    def describe(self) -> dict:
        """What the card lists."""
        return {"method": f"Optuna TPE, {SPLITS} expanding time splits inside the training window, mean AP",
                "trials": self.trials, "best_params": self.best, "best_value": self.best_value,
                "seconds": round(self.seconds, 3)}


def _space(trial) -> dict:
    return {"num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 500, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True)}


def splits(n: int) -> list[tuple[slice, slice]]:
    """(fit rows, score rows) of each expanding split of n time-ordered rows."""
    edges = np.linspace(0, n, SPLITS + 2).astype(int)
    return [(slice(0, edges[k + 1]), slice(edges[k + 1], edges[k + 2])) for k in range(SPLITS)]


def search(make: Callable[[dict], object], X: np.ndarray, y: np.ndarray, categorical: list[int], trials: int,
           budget: float | None, seed: int, progress: Callable[[str], None]) -> Search:
    """Run up to `trials` trials within `budget` seconds; `make(params)` returns an unfitted detector."""
    import optuna
    from sklearn.metrics import average_precision_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    deadline = started + budget if budget else None
    usable = [(a, b) for a, b in splits(len(y)) if 0 < y[a].sum() < len(y[a]) and y[b].sum() > 0]
    result = Search()

    def stop_at_deadline(_env) -> None:
        if deadline and time.perf_counter() > deadline:
            raise BudgetSpent

    def objective(trial) -> float:
        params = _space(trial)
        began = time.perf_counter()
        scores = []
        for fit, held in usable:
            model = make(params | {"calibration": "none"})
            model.fit(X[fit], y[fit], valid=(X[held], y[held]), categorical=categorical,
                      callbacks=[stop_at_deadline])
            scores.append(average_precision_score(y[held], model.raw(X[held])))
        value = float(np.mean(scores))
        result.trials.append({"trial": trial.number, "params": params, "ap": round(value, 6),
                              "splits_ap": [round(s, 6) for s in scores],
                              "seconds": round(time.perf_counter() - began, 3)})
        best = max(t["ap"] for t in result.trials)
        progress(f"tuning: trial {len(result.trials)}/{trials}  AP {value:.4f}  best {best:.4f}  "
                 f"{time.perf_counter() - started:.0f} s")
        return value

    if not usable:
        raise ValueError("no time split of the training window has fraud on both sides")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=budget, catch=(BudgetSpent,))
    result.seconds = time.perf_counter() - started
    if result.trials:
        best = max(result.trials, key=lambda t: t["ap"])
        result.best, result.best_value = best["params"], best["ap"]
    return result
