"""Issue 13 item 4: every fast path (bit vectors, compiled trees) scores exactly as `Booster.predict`; with
RISKCONSOLE_COMPILE=0 the pure path."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from riskconsole.detectors.boosting import COMPILED_FILE, FAST_ROWS, LightGBMDetector
from riskconsole.detectors.quickscorer import Scorer, Unsupported


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
    loaded.fast_ = False  # the compiled trees are the fallback when the bit-vector scorer cannot run
    assert loaded.input_dtype == np.float64
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


# ------------------------------------------------------------------ the bit-vector scorer (quickscorer.py)


def _booster(leaves: int, rounds: int = 40, seed: int = 0, **params) -> tuple[lgb.Booster, np.ndarray]:
    """Numbers with NaN and exact zeros, a count column, and a categorical column (codes 0..39)."""
    rng = np.random.default_rng(seed)
    n = 8_000
    X = rng.normal(size=(n, 7)).astype(np.float32)
    X[:, 3] = rng.integers(0, 40, n)  # category codes
    X[:, 4] = np.where(rng.random(n) < 0.4, 0.0, X[:, 4])
    X[:, 5] = rng.poisson(0.7, n)
    X[rng.random(X.shape) < 0.08] = np.nan
    logit = np.nan_to_num(X[:, 0] * 2 + X[:, 1] * X[:, 2]) + np.isin(np.nan_to_num(X[:, 3], nan=-1), [3, 7, 11]) * 2 \
        + np.nan_to_num(X[:, 4]) + np.nan_to_num(X[:, 5]) / 2 - 3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    params = {"objective": "binary", "num_leaves": leaves, "min_data_in_leaf": 20, "verbosity": -1, "seed": 1,
              "deterministic": True, "min_data_per_group": 5, "cat_smooth": 1, **params}
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=rounds), X


def _edge_rows(X: np.ndarray) -> np.ndarray:
    """X plus rows that hit every special case: LightGBM's zero snapping, -0.0, infinities, a value equal to
    each threshold, category codes that are fractional, negative, in (-1, 0), unseen or huge."""
    rows = np.repeat(X[:40], 12, axis=0).copy()
    rows[0:40, 4], rows[40:80, 4], rows[80:120, 4] = 1e-36, -1e-36, -0.0
    rows[120:160, 0], rows[160:200, 0] = np.inf, -np.inf
    rows[200:240, 3], rows[240:280, 3], rows[280:320, 3] = 3.7, -0.5, -3.0
    rows[320:360, 3], rows[360:400, 3], rows[400:440, 3] = 77.0, 3e9, np.nan
    infinite = np.repeat(X[40:80], 2 * X.shape[1], axis=0).copy()
    for j in range(X.shape[1]):  # LightGBM writes an infinite threshold as 1e300 but compares with infinity
        infinite[80 * j:80 * j + 40, j], infinite[80 * j + 40:80 * j + 80, j] = np.inf, -np.inf
    return np.concatenate([X, rows, infinite, np.full((5, X.shape[1]), np.nan, dtype=X.dtype)])


def _split_nodes(booster) -> list[dict]:
    found, stack = [], [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            found.append(node)
            stack += [node["left_child"], node["right_child"]]
    return found


def _thresholds(booster) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for node in _split_nodes(booster):
        if node["decision_type"] == "<=":
            found.setdefault(node["split_feature"], []).append(float(node["threshold"]))
    return found


@pytest.mark.parametrize("leaves,params", [
    (2, {}), (7, {}), (15, {}), (31, {"max_depth": 4}), (63, {}),   # tree shapes: stumps to 63 leaves, uint8..uint64
    (15, {"zero_as_missing": True}),                                  # missing type Zero
    (15, {"use_missing": False}),                                     # missing type None: NaN scores as 0.0
])
def test_bit_vectors_equal_booster_predict_bit_for_bit(leaves, params):
    booster, X = _booster(leaves, **params)
    rows = _edge_rows(X)
    exact = [(f, t) for f, ts in _thresholds(booster).items() for t in ts[:3]]
    at_threshold = np.repeat(X[:1], len(exact), axis=0)
    with np.errstate(over="ignore"):  # an infinite threshold (1e300 in the text) becomes +inf
        for i, (f, t) in enumerate(exact):
            at_threshold[i, f] = np.float32(t)  # the float32 nearest the threshold: either side of it
    rows = np.concatenate([rows, at_threshold])
    scorer = Scorer(booster.dump_model())
    expected = booster.predict(rows, raw_score=True)
    assert np.array_equal(scorer.raw(rows), expected)  # the same additions in the same order
    assert np.array_equal(scorer.raw(rows.astype(np.float64)), expected)
    assert np.array_equal(scorer.raw(rows, threads=1), expected)


def test_bit_vectors_cover_single_leaf_trees_and_categorical_splits():
    booster, X = _booster(15, rounds=30)
    kinds = {n["decision_type"] for n in _split_nodes(booster)}
    assert kinds == {"<=", "=="}
    rng = np.random.default_rng(2)
    flat = lgb.train({"objective": "regression", "verbosity": -1, "min_data_in_leaf": 5_000},
                     lgb.Dataset(X, rng.normal(size=len(X))), num_boost_round=3)  # trees of one leaf
    assert all("split_index" not in t["tree_structure"] for t in flat.dump_model()["tree_info"])
    assert np.array_equal(Scorer(flat.dump_model()).raw(X), flat.predict(X, raw_score=True))


def test_trees_too_big_for_bit_vectors_are_refused():
    booster, _ = _booster(100, rounds=3, min_data_in_leaf=5)
    with pytest.raises(Unsupported, match="64 leaves"):
        Scorer(booster.dump_model())


def test_the_detector_scores_big_batches_with_bit_vectors(tmp_path):
    model, X = _model()
    rows = np.resize(X, (FAST_ROWS + 1_000, X.shape[1]))
    expected = model.booster_.predict(rows, raw_score=True)
    assert np.array_equal(model.raw(rows), expected)
    assert isinstance(model.fast_, Scorer) and model.input_dtype == np.float32
    assert np.array_equal(model.raw(rows[:100]), expected[:100])  # once built, small batches use it too
    model.save(tmp_path)
    loaded = LightGBMDetector.load(tmp_path)
    assert np.array_equal(loaded.score(rows), model.score(rows))
    assert isinstance(loaded.fast_, Scorer)


def test_a_wrong_scorer_is_never_used(monkeypatch):
    model, X = _model()
    rows = np.resize(X, (FAST_ROWS, X.shape[1]))
    from riskconsole.detectors import quickscorer

    real = quickscorer.Scorer.raw
    monkeypatch.setattr(quickscorer.Scorer, "raw", lambda self, A, threads=2: real(self, A, threads) + 1e-3)
    assert np.array_equal(model.raw(rows), model.booster_.predict(rows, raw_score=True))
    assert model.fast_ is False


def test_compile_off_scores_with_booster_predict_only(monkeypatch):
    monkeypatch.setenv("RISKCONSOLE_COMPILE", "0")
    model, X = _model()
    rows = np.resize(X, (FAST_ROWS, X.shape[1]))
    assert np.array_equal(model.raw(rows), model.booster_.predict(rows, raw_score=True))
    assert model.fast_ is False


def test_score_into_stores_the_bit_vector_scores_exactly():
    """The end-to-end path (DuckDB frame -> matrix -> raw -> calibrate -> insert) runs the bit vectors."""
    import duckdb
    import pyarrow as pa

    from riskconsole.detectors.training import score_into

    model, X = _model()
    rows = np.resize(X, (FAST_ROWS + 5_000, X.shape[1]))
    names = [f"x{j}" for j in range(X.shape[1])]
    con = duckdb.connect()
    con.register("_rows", pa.table({"_pos": np.arange(1, len(rows) + 1), **{n: rows[:, j] for j, n in enumerate(names)}}))
    con.execute("CREATE TABLE frame AS SELECT * FROM _rows")
    assert score_into(con, model, names, "s", "_scores", chunk=FAST_ROWS) == len(rows)
    assert isinstance(model.fast_, Scorer)
    stored = con.execute("SELECT s FROM _scores ORDER BY _pos").fetchnumpy()["s"]
    expected = np.clip(model.calibrator_.apply(model.booster_.predict(rows, raw_score=True)), 0.0, 1.0)
    assert np.array_equal(stored, expected)
