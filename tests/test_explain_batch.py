"""Issue 13 item 5: explain many events in one call equals explaining each alone; the fast TreeSHAP equals
LightGBM's pred_contrib or falls back to it."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from detector_data import detector_yaml, signal_workspace
from riskconsole.detectors import explain, make_detector, train_detector
from riskconsole.detectors.explain import explain_many
from riskconsole.detectors.treeshap import Explainer
from riskconsole.errors import RiskConsoleError


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch") / "ws"
    ws = signal_workspace(root)
    train_detector(ws, detector_yaml(root, "lgbm", "lightgbm"))
    train_detector(ws, detector_yaml(root, "hbos", "pyod.hbos"))
    return ws


def _ids(ws, n: int) -> list[str]:
    con = ws.connect_safe()
    ids = [r[0] for r in con.execute(f"SELECT event_id FROM frame ORDER BY hash(_pos) LIMIT {n}").fetchall()]
    con.close()
    return ids


def test_batch_equals_one_by_one(ws):
    ids = _ids(ws, 25)
    many = explain_many(ws, ids + [ids[0], "nope"], top=3)
    assert many["missing"] == ["nope"] and [e["event"]["id"] for e in many["events"]] == ids
    for event_id, got in zip(ids, many["events"]):
        alone = explain(ws, event_id, top=3)
        assert got["event"] == alone["event"] and got["features"] == alone["features"]
        for a, b in zip(got["detectors"], alone["detectors"]):
            assert a["name"] == b["name"] and a["score"] == pytest.approx(b["score"], abs=1e-9)
            assert a["stored_score"] == b["stored_score"] and a.get("warning") == b.get("warning")
            assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
            for ra, rb in zip(a["reasons"], b["reasons"]):
                assert {k: pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for k, v in ra.items()} == rb
            if a["kind"] == "lightgbm":
                assert a["raw"] == pytest.approx(b["raw"], abs=1e-9) and a["base"] == pytest.approx(b["base"])


def test_batch_treeshap_sums_to_the_raw_score():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60_000, 16)).astype(np.float32)
    y = (rng.random(60_000) < 1 / (1 + np.exp(-(X[:, 0] + X[:, 1] * X[:, 2] - 4)))).astype(float)
    model = make_detector("lightgbm", {}, 7, "x").fit(X[:40_000], y[:40_000], valid=(X[40_000:], y[40_000:]))
    r = model.reasons_batch(X[:2_000])  # speed: bench/RESULTS.md (the shared test machine is too noisy to assert)
    assert np.allclose(r["push"].sum(axis=1) + r["base"], r["raw"], atol=1e-6)
    one = model.reasons(X[7])
    assert np.allclose(one["push"], r["push"][7]) and one["raw"] == pytest.approx(r["raw"][7])


def test_cli_explains_several_ids_and_an_ids_file(ws, tmp_path, capsys):
    from riskconsole.cli import main

    ids = _ids(ws, 3)
    assert main(["explain", *ids[:2], "--workspace", str(ws.root), "--json"]) == 0
    assert [e["event"]["id"] for e in json.loads(capsys.readouterr().out)["events"]] == ids[:2]
    f = tmp_path / "ids.csv"
    f.write_text("event_id\n" + "\n".join(ids + ["zzz"]) + "\n")
    assert main(["explain", "--ids-file", str(f), "--workspace", str(ws.root)]) == 0
    out, err = capsys.readouterr()
    assert out.count("lgbm (lightgbm): score") == 3 and "1 ids are not among the loaded events: zzz" in err
    assert main(["explain", "--ids-file", str(tmp_path / "none.txt"), "--workspace", str(ws.root)]) == 1
    assert "--ids-file" in capsys.readouterr().err


def test_no_known_id_is_one_line(ws):
    with pytest.raises(RiskConsoleError, match="none of the 2 event ids"):
        explain_many(ws, ["a", "b"])


def test_a_few_hundred_events_batch_equals_one_by_one_on_the_fast_path(ws):
    """Past FAST_SHAP_ROWS the batch runs treeshap.Explainer, not pred_contrib: still what `explain` says."""
    from riskconsole.detectors.boosting import FAST_SHAP_ROWS

    ids = _ids(ws, FAST_SHAP_ROWS + 20)
    assert len(ids) == FAST_SHAP_ROWS + 20
    many = explain_many(ws, ids, top=4)
    assert [e["event"]["id"] for e in many["events"]] == ids and not many["missing"]
    kinds = set()
    for event_id, got in zip(ids, many["events"]):
        alone = explain(ws, event_id, top=4)
        assert got["event"] == alone["event"] and got["features"] == alone["features"]
        for a, b in zip(got["detectors"], alone["detectors"], strict=True):
            kinds.add(a["kind"])
            assert set(a) == set(b) and a["score"] == b["score"] and a["stored_score"] == b["stored_score"]
            assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
            for ra, rb in zip(a["reasons"], b["reasons"]):
                assert ra.keys() == rb.keys() and ra["value"] == rb["value"]
                assert {k: pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for k, v in ra.items()} == rb
            if a["kind"] == "lightgbm":
                assert a["raw"] == b["raw"] and a["base"] == pytest.approx(b["base"], abs=1e-12)
                assert a["contributions"] == pytest.approx(b["contributions"], abs=1e-9)
                # a second way: the contributions and the base add up to the raw margin
                assert sum(a["contributions"].values()) + a["base"] == pytest.approx(a["raw"], abs=1e-9)
            else:
                assert a == b  # PyOD reasons: the same robust z-scores, bit for bit
    assert kinds == {"lightgbm", "pyod.hbos"}


# ------------------------------------------------------------------ the fast TreeSHAP itself (treeshap.py)


def _booster(seed: int = 0, leaves: int = 15, rounds: int = 40) -> tuple[lgb.Booster, np.ndarray]:
    """Numbers with NaN and exact zeros (missing types None, Zero and NaN) and a categorical column."""
    rng = np.random.default_rng(seed)
    n = 8_000
    X = rng.normal(size=(n, 7)).astype(np.float32)
    X[:, 3] = rng.integers(0, 40, n)  # category codes
    X[:, 4] = np.where(rng.random(n) < 0.4, 0.0, X[:, 4])
    X[rng.random(X.shape) < 0.08] = np.nan
    logit = np.nan_to_num(X[:, 0] * 2 + X[:, 1] * X[:, 2]) + np.isin(np.nan_to_num(X[:, 3], nan=-1), [3, 7, 11]) * 2 \
        + np.nan_to_num(X[:, 4]) - 3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    params = {"objective": "binary", "num_leaves": leaves, "min_data_in_leaf": 20, "verbosity": -1, "seed": 1,
              "deterministic": True, "zero_as_missing": False}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=rounds)
    return booster, X


def _unsupported(booster) -> bool:
    return Explainer(booster).fast is None


@pytest.mark.parametrize("leaves", [2, 15, 63])
def test_fast_treeshap_equals_pred_contrib(leaves):
    booster, X = _booster(leaves=leaves)
    explainer = Explainer(booster)
    assert explainer.fast is not None
    rows = X[:2_000]
    got = explainer.contrib(rows)
    assert explainer.fast is not None  # the check against pred_contrib passed
    expected = booster.predict(rows, pred_contrib=True)
    assert np.abs(got - expected).max() <= 1e-9
    # a second way: each row's contributions and base add up to the raw score
    assert np.abs(got.sum(axis=1) - booster.predict(rows, raw_score=True)).max() <= 1e-9
    # the categorical column and both missing kinds were exercised
    kinds = {n["decision_type"] for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])}
    assert "==" in kinds or leaves == 2


def _nodes(node):
    if "split_index" in node:
        yield node
        yield from _nodes(node["left_child"])
        yield from _nodes(node["right_child"])


def test_zero_as_missing_and_single_leaf_trees():
    rng = np.random.default_rng(5)
    X = np.where(rng.random((5_000, 4)) < 0.3, 0.0, rng.normal(size=(5_000, 4)))
    y = (X[:, 0] + rng.normal(size=5_000) > 0.5).astype(float)
    booster = lgb.train({"objective": "binary", "zero_as_missing": True, "num_leaves": 7, "verbosity": -1},
                        lgb.Dataset(X, y), num_boost_round=20)
    got = Explainer(booster).contrib(X[:1000])
    assert np.abs(got - booster.predict(X[:1000], pred_contrib=True)).max() <= 1e-9


def test_a_wrong_table_falls_back_to_pred_contrib():
    booster, X = _booster(rounds=10)
    explainer = Explainer(booster)
    explainer.fast["table"] = explainer.fast["table"] + 1e-3  # as if the fast path were wrong
    got = explainer.contrib(X[:500])
    assert explainer.fast is None
    assert np.array_equal(got, booster.predict(X[:500], pred_contrib=True, num_threads=2))


def test_too_big_trees_use_pred_contrib():
    booster, X = _booster(leaves=100, rounds=3)
    assert _unsupported(booster)
    assert np.array_equal(Explainer(booster).contrib(X[:50]), booster.predict(X[:50], pred_contrib=True,
                                                                             num_threads=2))


def test_saved_tables_are_used_only_for_their_own_model(tmp_path):
    booster, X = _booster(rounds=8)
    other, _ = _booster(seed=1, rounds=8)
    path = tmp_path / "treeshap.npz"
    assert Explainer(other).save(path)
    reused = Explainer(booster, cache=path)  # another model's tables: ignored, rebuilt
    expected = booster.predict(X[:400], pred_contrib=True)
    assert np.abs(reused.contrib(X[:400]) - expected).max() <= 1e-9
    assert Explainer(booster).save(path)
    cached = Explainer(booster, cache=path)
    assert np.array_equal(cached.fast["table"], Explainer(booster).fast["table"])
    assert np.abs(cached.contrib(X[:400]) - expected).max() <= 1e-9
