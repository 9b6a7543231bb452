"""Issue 13 item 3: calibrated LightGBM scores (isotonic or Platt, chosen on the validation window)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from riskconsole.detectors import make_detector
from riskconsole.detectors.calibration import Calibrator, fit_calibrator, reliability


def _raw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(-3, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * raw - 1)))).astype(float)
    return raw, y


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_stored_map_equals_sklearn(method, tmp_path):
    raw, y = _raw(5_000, 1)
    cal = fit_calibrator(raw, y, train_rate=float(y.mean()), method=method)
    assert cal.odds_ratio == pytest.approx(1.0)
    cal.save(tmp_path)
    again = Calibrator.load(tmp_path)
    new = np.random.default_rng(2).normal(-3, 3, 1_000)
    if method == "isotonic":
        expected = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y).predict(new)
    else:
        expected = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y).predict_proba(
            new.reshape(-1, 1))[:, 1]
    assert np.abs(again.apply(new) - expected).max() < 1e-6


def test_auto_picks_the_lower_out_of_fold_log_loss_and_moves_to_the_train_rate():
    raw, y = _raw(20_000, 3)
    cal = fit_calibrator(raw, y, train_rate=0.02)
    assert cal.method == min(cal.log_loss, key=cal.log_loss.get) and set(cal.log_loss) == {"isotonic", "platt"}
    odds = (0.02 / 0.98) / (y.mean() / (1 - y.mean()))
    assert cal.odds_ratio == pytest.approx(odds)
    base = fit_calibrator(raw, y, train_rate=float(y.mean()), method=cal.method)
    p, q = base.apply(raw[:50]), cal.apply(raw[:50])
    assert np.allclose(q / (1 - q), odds * p / (1 - p), rtol=1e-6, atol=0)


def test_reliability_is_calibration_curve_with_counts_and_ece():
    raw, y = _raw(20_000, 4)
    s = 1 / (1 + np.exp(-(0.8 * raw - 1)))
    rel = reliability(y, s)
    observed, mean = calibration_curve(y, s, n_bins=10)
    assert [b["observed_rate"] for b in rel["bins"]] == pytest.approx(observed, abs=1e-6)
    assert [b["mean_score"] for b in rel["bins"]] == pytest.approx(mean, abs=1e-6)
    assert sum(b["count"] for b in rel["bins"]) == len(y)
    assert rel["ece"] < 0.02  # true probabilities are calibrated


def test_lightgbm_scores_are_calibrated_out_of_time():
    rng = np.random.default_rng(5)
    n = 60_000
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] + 0.7 * X[:, 1] * X[:, 2] - 4.5)))).astype(float)
    train, valid, test = slice(0, 30_000), slice(30_000, 45_000), slice(45_000, n)
    for params in ({}, {"scale_pos_weight": "balanced"}):
        model = make_detector("lightgbm", params, 7, "x").fit(X[train], y[train], valid=(X[valid], y[valid]))
        assert reliability(y[test], model.score(X[test]))["ece"] < 0.02
    weighted = 1 / (1 + np.exp(-model.raw(X[test])))  # the class-weighted probability is far off
    assert reliability(y[test], weighted)["ece"] > 0.02
    assert make_detector("lightgbm", {"calibration": "none"}, 7, "x").fit(
        X[train], y[train], valid=(X[valid], y[valid])).calibrator_ is None


def test_bad_calibration_value_is_one_line():
    with pytest.raises(Exception, match="calibration: 'sigmoid' is not one of auto, isotonic, platt, none"):
        make_detector("lightgbm", {"calibration": "sigmoid"}, 7, "detectors/x.yaml")
