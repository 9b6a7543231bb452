"""Issue 13 item 4: compiled trees (tl2cgen) score exactly as `Booster.predict`; without them the pure path."""

from __future__ import annotations

import numpy as np
import pytest

from riskconsole.detectors.boosting import COMPILED_FILE, LightGBMDetector


def _model() -> tuple[LightGBMDetector, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.lognormal(size=(30_000, 8)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (rng.random(30_000) < 1 / (1 + np.exp(-(np.nan_to_num(np.log(X[:, 0])) + X[:, 1] / 3 - 4)))).astype(float)
    model = LightGBMDetector({}, 7).fit(X[:20_000], y[:20_000], valid=(X[20_000:], y[20_000:]))
    return model, X


def test_compiled_scores_equal_booster_predict(tmp_path):
    pytest.importorskip("tl2cgen")
    model, X = _model()
    model.save(tmp_path)
    assert (tmp_path / COMPILED_FILE).exists()
    loaded = LightGBMDetector.load(tmp_path)
    assert loaded.compiled_ is not None
    expected = model.booster_.predict(X, raw_score=True)
    assert np.abs(loaded.raw(X) - expected).max() <= 1e-6
    assert np.abs(loaded.score(X) - model.score(X)).max() <= 1e-6


def test_pure_path_without_compiled_trees(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKCONSOLE_COMPILE", "0")
    model, X = _model()
    model.save(tmp_path)
    assert not (tmp_path / COMPILED_FILE).exists()
    loaded = LightGBMDetector.load(tmp_path)
    assert loaded.compiled_ is None
    assert np.array_equal(loaded.raw(X), model.booster_.predict(X, raw_score=True))
