"""Calibrated LightGBM scores: a score is the estimated chance that the event is fraud.

After fitting, the booster's raw score (log-odds) is mapped to a probability by a calibrator fitted
on the validation window (never the backtest period): scikit-learn's `IsotonicRegression` or Platt
scaling (`LogisticRegression` on the raw score), whichever has the lower log-loss out of fold on the
validation window (contiguous time folds, so each fold is predicted by a map fitted on the others).
The chosen map is then refitted on the whole validation window. Its output is moved from the
validation window's fraud rate to the training window's (the labels of a recent window are often
still incomplete): odds are multiplied by `odds(train rate) / odds(valid rate)`.

The calibrator is stored as numbers (calibration.json), not as a pickled estimator: isotonic as its
breakpoints (applied with `np.interp`, exactly what `IsotonicRegression.predict` does with
`out_of_bounds="clip"`), Platt as its slope and intercept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"
FOLDS = 5
RELIABILITY_BINS = 10


@dataclass
class Calibrator:
    """A fitted monotone map from raw score (log-odds) to the chance of fraud at the training base rate."""

    method: str                          # "isotonic" or "platt"
    x: list[float] = field(default_factory=list)   # isotonic breakpoints (raw scores)
    y: list[float] = field(default_factory=list)   # isotonic values at the breakpoints
    slope: float = 1.0                   # platt: p = sigmoid(slope * raw + intercept)
    intercept: float = 0.0
    odds_ratio: float = 1.0              # base-rate shift: odds(train rate) / odds(valid rate)
    log_loss: dict = field(default_factory=dict)   # out-of-fold validation log-loss of each method
    train_rate: float | None = None
    valid_rate: float | None = None

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Chance of fraud of each raw score, in [0, 1]."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            p = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        else:
            p = 1.0 / (1.0 + np.exp(-(self.slope * raw + self.intercept)))
        if self.odds_ratio != 1.0:
            p = self.odds_ratio * p / (self.odds_ratio * p + (1.0 - p))
        return p

    def save(self, folder: Path) -> None:
        """Write calibration.json."""
        (folder / CALIBRATION_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Calibrator | None:
        """The calibrator of a model folder, or None for a model saved without one."""
        path = folder / CALIBRATION_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def describe(self) -> dict:
        """What the card shows: method, why, and the base-rate shift."""
        return {"method": self.method, "valid_log_loss": self.log_loss, "train_rate": self.train_rate,
                "valid_rate": self.valid_rate, "odds_ratio": self.odds_ratio,
                "fitted_on": "validation window", "chosen_by": f"{FOLDS}-fold (contiguous) validation log-loss"}


def _isotonic(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())


def _platt(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    return Calibrator("platt", slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))


FITTERS = {"isotonic": _isotonic, "platt": _platt}


def _odds(rate: float) -> float:
    return rate / (1.0 - rate)


def _out_of_fold_loss(method: str, raw: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import log_loss
    from sklearn.model_selection import KFold

    pred = np.empty(len(y))
    for fit_idx, test_idx in KFold(FOLDS).split(raw):
        if y[fit_idx].min() == y[fit_idx].max():  # a fold without fraud: nothing to learn from it
            pred[test_idx] = y[fit_idx].mean()
            continue
        pred[test_idx] = FITTERS[method](raw[fit_idx], y[fit_idx]).apply(raw[test_idx])
    return float(log_loss(y, np.clip(pred, 1e-6, 1 - 1e-6), labels=[0, 1]))


def fit_calibrator(raw: np.ndarray, y: np.ndarray, train_rate: float, method: str = "auto") -> Calibrator:
    """Fit isotonic and Platt maps on validation (raw score, label) pairs; keep the one with lower log-loss.

    Args:
        raw: raw scores (log-odds) of the validation rows, in time order.
        y: their labels (both classes present).
        train_rate: the training window's fraud rate, the base rate the scores are moved to.
        method: "auto" (choose by out-of-fold log-loss), "isotonic" or "platt".
    """
    raw, y = np.asarray(raw, dtype=np.float64), np.asarray(y, dtype=np.float64)
    losses = {m: round(_out_of_fold_loss(m, raw, y), 6) for m in FITTERS} if method == "auto" else {}
    chosen = min(losses, key=losses.get) if method == "auto" else method
    calibrator = FITTERS[chosen](raw, y)
    valid_rate = float(y.mean())
    calibrator.odds_ratio = float(_odds(train_rate) / _odds(valid_rate))
    calibrator.log_loss, calibrator.train_rate, calibrator.valid_rate = losses, float(train_rate), valid_rate
    return calibrator


def reliability(y: np.ndarray, s: np.ndarray, bins: int = RELIABILITY_BINS) -> dict | None:
    """Reliability diagram over `bins` equal-width score bins: mean score, observed fraud rate and count per
    non-empty bin (scikit-learn's `calibration_curve`), and the expected calibration error (count-weighted
    mean |observed − mean score|). None without labelled rows."""
    from sklearn.calibration import calibration_curve

    y, s = np.asarray(y), np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    if not len(y):
        return None
    observed, mean_score = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], s), minlength=bins)  # calibration_curve's own binning
    counts = counts[counts > 0]
    ece = float(np.sum(counts * np.abs(observed - mean_score)) / counts.sum())
    rows = [{"mean_score": round(float(m), 6), "observed_rate": round(float(o), 6), "count": int(n)}
            for m, o, n in zip(mean_score, observed, counts)]
    return {"bins": rows, "ece": round(ece, 6), "n_bins": bins, "binning": "uniform"}
