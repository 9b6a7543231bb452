"""Detectors: the contract of every kind, honest training, cards checked against scikit-learn, reason codes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score

from detector_data import FEATURES, TRAIN, VALID, detector_yaml, signal_workspace
from riskconsole.config import Detector, load_model
from riskconsole.detectors import KINDS, explain, make_detector, rescore_all, train_all, train_detector
from riskconsole.detectors import training
from riskconsole.detectors.calibration import Calibrator
from riskconsole.detectors.card import auc_roc, average_precision
from riskconsole.errors import RiskConsoleError
from riskconsole.backtest import Window
from riskconsole.session import Session

PYOD = [k for k in KINDS if k.startswith("pyod.")]
OUT_OF_TIME = "2026-02-25"


def _blobs(n: int = 1_500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows with 5% shifted 'fraud' rows and some NaN: learnable and outlying."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (rng.random(n) < 0.05).astype(np.float64)
    X[y == 1, :2] += 3.0
    X[rng.random(X.shape) < 0.03] = np.nan
    return X, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A loaded signal workspace with one detector of every kind trained on the same windows."""
    root = tmp_path_factory.mktemp("detectors") / "ws"
    ws = signal_workspace(root)
    train_detector(ws, detector_yaml(root, "lgbm", "lightgbm"))
    for kind in PYOD:
        train_detector(ws, detector_yaml(root, kind.split(".")[1], kind))
    return ws


@pytest.fixture
def small_ws(tmp_path):
    """A separate small loaded workspace, for tests that break or rewrite things."""
    return signal_workspace(tmp_path / "ws", n=1_200, seed=5)


def _query(ws, sql: str, params: list | None = None) -> list:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _labelled_scores(ws, name: str, start: str, end: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels, the stored scores, and every feature of the labelled events with start <= day <= end."""
    cut = f" AND CAST(ts AS DATE) <= DATE '{end}'" if end else ""
    con = duckdb.connect(str(ws.db_path), read_only=True)
    df = con.execute(f'SELECT f.*, s."{name}" AS score FROM frame f JOIN "scores_{name}" s USING (_pos) '
                     f"WHERE is_fraud IS NOT NULL AND CAST(ts AS DATE) >= DATE '{start}'{cut} ORDER BY _pos").df()
    con.close()
    return df["is_fraud"].to_numpy().astype(int), df["score"].to_numpy(), df


def _card(ws, name: str) -> dict:
    return json.loads((ws.models_dir / name / "card.json").read_text())


def _tables(ws) -> set[str]:
    return {t for (t,) in _query(ws, "SELECT table_name FROM information_schema.tables")}


# ------------------------------------------------------------------ the contract, once for every kind


@pytest.mark.parametrize("kind", [*KINDS, "pyod.OCSVM"])
def test_contract(kind, tmp_path):
    X, y = _blobs()
    model = make_detector(kind, {}, 7, "test.yaml")
    assert model.fit(X[:1000], y[:1000], valid=(X[1000:], y[1000:])) is model
    assert all(hasattr(model, a) for a in ("importance_",)) and model.importance_.shape == (4,)
    scores = model.score(X[1000:])
    assert scores.shape == (500,) and scores.min() >= 0.0 and scores.max() <= 1.0
    assert roc_auc_score(y[1000:], scores) > 0.75, "higher must mean riskier"
    np.testing.assert_array_equal(model.score(X[1000:1005]), scores[:5])  # a row's score ignores its batch
    again = make_detector(kind, {}, 7, "test.yaml").fit(X[:1000], y[:1000], valid=(X[1000:], y[1000:]))
    np.testing.assert_array_equal(again.score(X[1000:]), scores)
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    np.testing.assert_array_equal(loaded.score(X[1000:]), scores)


@pytest.mark.parametrize("kind", ["pyod.ecod", "pyod.copod"])
def test_frozen_ecdf_scores_equal_pyod_on_training_rows(kind):
    X, _ = _blobs()
    model = make_detector(kind, {}, 7, "t").fit(X)
    np.testing.assert_allclose(model.train_scores_, np.sort(model.pyod_train_scores_), rtol=1e-12, atol=1e-9)


def test_pyod_scores_are_training_ranks():
    X, _ = _blobs()
    model = make_detector("pyod.iforest", {}, 7, "t").fit(X)
    ranks = model.score(X)
    assert np.isclose(ranks.max(), 1.0) and np.isclose(np.median(ranks), 0.5, atol=0.01)


@pytest.mark.parametrize("kind, params, message", [
    ("lgbm", {}, "unknown kind 'lgbm' (did you mean 'lightgbm'? valid kinds: lightgbm, pyod.iforest"),
    ("pyod.Nope", {}, "valid kinds: lightgbm"),
    ("pyod.LOF2", {}, "unknown kind 'pyod.LOF2' (did you mean 'pyod.LOF'? valid kinds"),  # said 'pyod.hbos'
    ("pyod.ocsvn", {}, "(did you mean 'pyod.OCSVM'?"),
    ("pyod.IForrest", {}, "(did you mean 'pyod.iforest'?"),
    ("lightgbm", {"num_leafs": 3}, "unknown LightGBM parameter 'num_leafs' (did you mean 'num_leaf'?)"),
    ("lightgbm", {"num_threads": 8}, "'num_threads' is fixed by riskconsole"),
    ("pyod.iforest", {"n_estimator": 3}, "IForest has no parameter 'n_estimator' (did you mean 'n_estimators'?)"),
])
def test_bad_kind_or_params(kind, params, message):
    with pytest.raises(RiskConsoleError, match=None) as err:
        make_detector(kind, params, 7, "detectors/x.yaml")
    assert str(err.value).startswith("detectors/x.yaml: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_metrics_equal_sklearn():
    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.1).astype(int)
    s = np.round(rng.random(500) + y * 0.3, 2)  # rounded: many ties
    assert auc_roc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


# ------------------------------------------------------------------ quality on a workspace with a signal


def _single_feature_best(df, y) -> tuple[float, float]:
    best_auc = best_ap = 0.0
    for feature in FEATURES:
        v = df[feature].astype(float)
        v = v.fillna(v.median()).to_numpy()
        for signed in (v, -v):
            best_auc = max(best_auc, roc_auc_score(y, signed))
            best_ap = max(best_ap, average_precision_score(y, signed))
    return best_auc, best_ap


def test_lightgbm_beats_every_feature_and_every_pyod_detector(trained):
    y, s, df = _labelled_scores(trained, "lgbm", OUT_OF_TIME)
    auc, ap = roc_auc_score(y, s), average_precision_score(y, s)
    feature_auc, feature_ap = _single_feature_best(df, y)
    assert auc > feature_auc + 0.02 and ap > feature_ap + 0.05, (auc, ap, feature_auc, feature_ap)
    for kind in PYOD:
        y2, s2, _ = _labelled_scores(trained, kind.split(".")[1], OUT_OF_TIME)
        assert auc > roc_auc_score(y2, s2) and ap > average_precision_score(y2, s2), kind


@pytest.mark.parametrize("kind", PYOD)
def test_pyod_beats_random_out_of_time(trained, kind):
    y, s, _ = _labelled_scores(trained, kind.split(".")[1], OUT_OF_TIME)
    assert roc_auc_score(y, s) > 0.6


@pytest.mark.parametrize("name", ["lgbm", "iforest"])
def test_card_matches_independent_metrics(trained, name):
    card = _card(trained, name)
    assert card["train"]["from"] == TRAIN["from"] and card["train"]["to"] == TRAIN["to"]
    assert card["valid"]["from"] == VALID["from"] and card["valid"]["to"] == VALID["to"]
    for part, (start, end) in {"valid": (VALID["from"], VALID["to"]), "out_of_time": (OUT_OF_TIME, None)}.items():
        y, s, _ = _labelled_scores(trained, name, start, end)
        window = card[part]
        assert window["labelled"] == len(y) and window["frauds"] == int(y.sum())
        assert window["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert window["average_precision"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        top = window["top"][1]
        flagged = s >= top["threshold"]
        assert top["share"] == 0.01 and top["flagged"] == flagged.sum() >= np.ceil(0.01 * len(s))
        assert top["precision"] == pytest.approx(y[flagged].mean())
    total = _query(trained, "SELECT count(*) FROM frame")[0][0]
    hist = card["histograms"]
    assert sum(hist["label_1"]) + sum(hist["label_0"]) + sum(hist["unknown"]) == total == card["events_scored"]
    assert {i["feature"] for i in card["importance"]} == set(FEATURES)
    assert card["versions"]["lightgbm"] and card["seed"] == 7 and card["training_seconds"] >= 0
    assert (trained.models_dir / name / "card.md").read_text().startswith(f"# {name} (")


def test_every_event_scored_in_range(trained):
    for name in ["lgbm", *[k.split(".")[1] for k in PYOD]]:
        n, lo, hi, nulls, distinct = _query(trained, f'SELECT count(*), min("{name}"), max("{name}"), '
                                                      f'count(*) - count("{name}"), count(DISTINCT _pos) '
                                                      f'FROM "scores_{name}"')[0]
        assert n == distinct == _query(trained, "SELECT count(*) FROM frame")[0][0]
        assert nulls == 0 and 0.0 <= lo <= hi <= 1.0


def test_unlabelled_rows_do_not_train_lightgbm(trained):
    labelled = _query(trained, "SELECT count(*) FROM frame WHERE is_fraud IS NOT NULL AND ts < '2026-02-11'")[0][0]
    assert _card(trained, "lgbm")["fit_rows"] == labelled
    assert "scale_pos_weight" not in _card(trained, "lgbm")["params"]  # unweighted: calibration sets the scale
    spw = make_detector("lightgbm", {"scale_pos_weight": "balanced"}, 7, "x")._train_params(np.array([1, 0, 0, 0]))
    assert spw["scale_pos_weight"] == 3.0  # the former weighting on request


def test_same_data_same_seed_same_scores(trained):
    before = _query(trained, 'SELECT "lgbm" FROM scores_lgbm ORDER BY _pos')
    iforest = _query(trained, 'SELECT "iforest" FROM scores_iforest ORDER BY _pos')
    train_detector(trained, trained.detectors_dir / "lgbm.yaml")
    train_detector(trained, trained.detectors_dir / "iforest.yaml")
    assert _query(trained, 'SELECT "lgbm" FROM scores_lgbm ORDER BY _pos') == before
    assert _query(trained, 'SELECT "iforest" FROM scores_iforest ORDER BY _pos') == iforest


def test_strategy_rule_reads_the_score(trained):
    from riskconsole.report import run_backtest

    path = trained.strategies_dir / "model.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "model", "params": {"cut": 0.5},
                                    "rules": [{"name": "model_block", "when": "lgbm >= $cut", "action": "block"}]}))
    report = run_backtest(trained, path).report
    expected = _query(trained, "SELECT count(*) FROM scores_lgbm WHERE lgbm >= 0.5")[0][0]
    assert report["rules"][0]["hits"] == expected > 0
    assert any("detector 'lgbm' was trained on 2026-01-01..2026-02-10" in w for w in report["warnings"])


# ------------------------------------------------------------------ reason codes


def test_explain_lightgbm_contributions_sum_to_the_raw_score(trained):
    (event_id,) = _query(trained, "SELECT event_id FROM frame JOIN scores_lgbm USING (_pos) "
                                  "ORDER BY lgbm DESC, _pos LIMIT 1")[0]
    result = explain(trained, event_id, ["lgbm"], top=3)
    assert result["event"]["id"] == event_id and set(result["features"]) == set(FEATURES)
    (d,) = result["detectors"]
    assert d["score"] == pytest.approx(d["stored_score"], abs=1e-12) and "warning" not in d
    assert sum(d["contributions"].values()) + d["base"] == pytest.approx(d["raw"], abs=1e-9)
    calibrator = Calibrator.load(trained.models_dir / "lgbm")  # the score is the calibrated raw score
    assert d["score"] == pytest.approx(float(calibrator.apply(np.array([d["raw"]]))[0]), abs=1e-9)
    pushes = [r["contribution"] for r in d["reasons"]]
    assert 0 < len(pushes) <= 3 and pushes == sorted(pushes, reverse=True) and min(pushes) > 0
    from riskconsole.cli import explain_lines  # the text shows the raw log-odds and base the docs say it shows

    assert f"lgbm (lightgbm): score {d['score']:.4f} (raw {d['raw']:+.3f} log-odds = base {d['base']:+.3f} + every " \
        "feature's contribution)" in explain_lines(result)


def test_explain_pyod_reasons_are_robust_z_scores(trained):
    (event_id,) = _query(trained, "SELECT event_id FROM frame JOIN scores_iforest USING (_pos) "
                                  "ORDER BY iforest DESC, _pos LIMIT 1")[0]
    (d,) = explain(trained, event_id, ["iforest"])["detectors"]
    z = [abs(r["z"]) for r in d["reasons"]]
    assert z == sorted(z, reverse=True) and z[0] > 2
    assert d["score"] == pytest.approx(d["stored_score"], abs=1e-12)


def test_explain_refuses_unknown_event_and_detector(trained):
    with pytest.raises(RiskConsoleError, match="event 'nope': not among the loaded events"):
        explain(trained, "nope")
    with pytest.raises(RiskConsoleError, match="--detector ghost: no trained detector"):
        explain(trained, "e00001", ["ghost"])


# ------------------------------------------------------------------ guards and failures


def _set_labels(ws, sql: str) -> None:
    con = ws.connect()
    con.execute(sql)
    con.close()


@pytest.mark.parametrize("edit, message", [
    ({"features": ["amount", "is_fraud"]}, "feature 'is_fraud': is the label or derived from it"),
    ({"features": ["label_ts"]}, "feature 'label_ts': is the label or derived from it"),
    ({"features": ["scenario"]}, "feature 'scenario': is the label or derived from it"),
    ({"features": ["amunt"]}, "feature 'amunt': not a column or feature of the loaded frame (did you mean 'amount'?)"),
    ({"features": ["tags"]}, "feature 'tags': is VARCHAR[], which a model cannot read (it reads numbers, booleans "
                             "and text as categories): add a feature to dataset.yaml that makes one number or text "
                             "of it, e.g. sql: \"length(tags)\""),
    ({"features": ["_pos"]}, "feature '_pos': is an internal row number"),
    ({"kind": "pyod.ecdo"}, "unknown kind 'pyod.ecdo' (did you mean 'pyod.ecod'?"),
    ({"name": "amount"}, "name: 'amount' is already a column of the frame"),
    ({"train": {"from": "2025-01-01", "to": "2025-01-31"}}, "train 2025-01-01..2025-01-31: no event with a known"),
    ({"kind": "pyod.hbos", "train": {"from": "2025-01-01", "to": "2025-01-31"}}, "no events in the window"),
    ({"train": {"from": "2026-01-01", "to": "2026-01-05"}}, "no fraud (label 1); lightgbm learns from both classes"),
    ({"valid": {"from": "2026-01-06", "to": "2026-01-08"}}, "valid 2026-01-06..2026-01-08: no event with a known"),
    ({"valid": {"from": "2026-01-01", "to": "2026-01-05"}}, "no fraud (label 1); lightgbm stops early and calibrates its scores on both classes: widen"),
    ({"train": {"from": "2026-02-01", "to": "2026-01-01"}}, "train: 'to' (2026-01-01) is before 'from'"),
    ({"train": {"from": "2026-13-01", "to": "2026-01-01"}}, "train.from '2026-13-01': not a date or timestamp"),
])
def test_guards_refuse_with_one_line_and_leave_nothing(small_ws, edit, message):
    _set_labels(small_ws, "UPDATE frame SET is_fraud = 0 WHERE ts < '2026-01-06'")
    _set_labels(small_ws, "UPDATE frame SET is_fraud = NULL WHERE ts >= '2026-01-06' AND ts < '2026-01-09'")
    body = {"name": "x", "kind": "lightgbm", "features": FEATURES, "train": TRAIN, "valid": VALID} | edit
    path = small_ws.detectors_dir / "x.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(RiskConsoleError) as err:
        train_detector(small_ws, path)
    assert str(err.value).startswith("detectors/x.yaml") and message in str(err.value)
    assert "\n" not in str(err.value)
    assert f"scores_{body['name']}" not in _tables(small_ws) and not (small_ws.models_dir / body["name"]).exists()


def test_a_strategy_reading_an_untrained_detector_is_told_to_train_it(small_ws):
    """A detector file written but not trained yet: the rule's unknown column is that detector, so say so."""
    body = {"name": "fresh", "kind": "lightgbm", "features": FEATURES, "train": TRAIN, "valid": VALID}
    (small_ws.detectors_dir / "fresh.yaml").parent.mkdir(exist_ok=True)
    (small_ws.detectors_dir / "fresh.yaml").write_text(yaml.safe_dump(body))
    strategy = small_ws.strategies_dir / "reads_fresh.yaml"
    strategy.parent.mkdir(exist_ok=True)
    strategy.write_text(yaml.safe_dump({"name": "reads_fresh", "rules": [
        {"name": "model", "when": "fresh > 0.5", "action": "block"}]}))
    with pytest.raises(RiskConsoleError) as err:
        Session(small_ws).backtest(strategy)
    assert str(err.value) == ("strategies/reads_fresh.yaml: rule 'model': detector 'fresh' has no scores yet: run "
                              "`riskconsole train detectors/fresh.yaml`")
    with pytest.raises(RiskConsoleError) as console:  # the console's incremental path says the same
        Session(small_ws).interactive(strategy, Window())
    assert str(console.value) == str(err.value)
    from riskconsole.validate import validate_file

    with pytest.raises(RiskConsoleError) as validated:  # and validate (it said "a text value goes in single quotes")
        validate_file(small_ws, strategy)
    assert str(validated.value) == str(err.value)
    strategy.write_text(yaml.safe_dump({"name": "reads_fresh", "rules": [
        {"name": "model", "when": "frsh > 0.5", "action": "block"}]}))
    with pytest.raises(RiskConsoleError, match="unknown column 'frsh'"):
        Session(small_ws).backtest(strategy)


def test_failed_train_keeps_the_previous_model_and_scores(small_ws, monkeypatch):
    path = detector_yaml(small_ws.root, "x", "lightgbm")
    train_detector(small_ws, path)
    scores = _query(small_ws, "SELECT * FROM scores_x ORDER BY _pos")
    card = (small_ws.models_dir / "x" / "card.json").read_text()

    def broken(_card: dict) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(training.cards, "card_markdown", broken)
    detector_yaml(small_ws.root, "x", "lightgbm", seed=99)
    with pytest.raises(OSError):
        train_detector(small_ws, path)
    assert _query(small_ws, "SELECT * FROM scores_x ORDER BY _pos") == scores
    assert (small_ws.models_dir / "x" / "card.json").read_text() == card
    assert sorted(p.name for p in small_ws.models_dir.iterdir()) == ["x"]
    assert not [t for t in _tables(small_ws) if t.startswith("_scoring")]
    with pytest.raises(OSError):
        train_detector(small_ws, detector_yaml(small_ws.root, "y", "pyod.hbos"))
    assert "scores_y" not in _tables(small_ws) and not (small_ws.models_dir / "y").exists()


def test_train_all_then_rescore_all_after_a_reload(small_ws):
    from riskconsole.ingest import load

    detector_yaml(small_ws.root, "b", "lightgbm")
    detector_yaml(small_ws.root, "a", "pyod.hbos")
    results = train_all(small_ws)
    assert [r.name for r in results] == ["a", "b"]
    before = _query(small_ws, "SELECT a.a, b.b FROM scores_a a JOIN scores_b b USING (_pos) ORDER BY _pos")
    load(small_ws)
    con = small_ws.connect()
    con.execute("CREATE TABLE scores_ghost AS SELECT _pos, 0.5::DOUBLE AS ghost FROM frame")
    con.close()
    assert rescore_all(small_ws) == {"a": len(before), "b": len(before)}
    assert _query(small_ws, "SELECT a.a, b.b FROM scores_a a JOIN scores_b b USING (_pos) ORDER BY _pos") == before
    assert "scores_ghost" not in _tables(small_ws)


# ------------------------------------------------------------------ CLI and demo files


def test_cli_train_and_explain(small_ws, capsys):
    from riskconsole.cli import main

    good = detector_yaml(small_ws.root, "m", "lightgbm")
    bad = detector_yaml(small_ws.root, "n", "pyod.nope")
    assert main(["train", str(good), str(bad), "--workspace", str(small_ws.root)]) == 1
    out, err = capsys.readouterr()
    assert "m (lightgbm): fit on" in out and "card: data/models/m/card.md" in out
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        line for line in err.splitlines() if "detectors/n.yaml: kind: unknown kind 'pyod.nope'" in line]
    assert main(["explain", "e00003", "--workspace", str(small_ws.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detectors"][0]["name"] == "m"
    assert main(["explain", "e00003", "--workspace", str(small_ws.root)]) == 0
    assert "m (lightgbm): score" in capsys.readouterr().out
    assert main(["explain", "zzz", "--workspace", str(small_ws.root)]) == 1
    assert capsys.readouterr().err.startswith("error: event 'zzz'")


DEMO = Path(__file__).resolve().parents[1] / "riskconsole" / "demo_files"


@pytest.mark.parametrize("path", sorted((DEMO / "detectors").glob("*.yaml")), ids=lambda p: p.name)
def test_demo_detectors_read_numeric_demo_features(path):
    spec = load_model(path, Detector)
    dataset = yaml.safe_load((DEMO / "dataset.yaml").read_text())
    names = {f["name"] for f in dataset["features"]}
    numeric_sources = {"amount", "account_age_days", "is_new_device", "is_new_address", "items", "coupon_amount"}
    assert set(spec.features) <= names | numeric_sources
    assert not set(spec.features) & {"is_fraud", "label_ts", "fraud_scenario"}
    make_detector(spec.kind, spec.params, spec.seed, path.name)
    assert "2026-01-01" <= spec.train.from_ < spec.train.to < spec.valid.from_ < spec.valid.to <= "2026-04-30"


def test_cards_say_what_a_score_means(trained):
    card = _card(trained, "lgbm")
    assert card["calibration"]["method"] in ("isotonic", "platt")
    rel = card["valid"]["reliability"]
    assert rel["ece"] >= 0 and sum(b["count"] for b in rel["bins"]) == card["valid"]["labelled"]
    md = (trained.models_dir / "lgbm" / "card.md").read_text()
    assert "Reliability, valid (calibration error ECE" in md and "estimated chance the event is fraud" in md
    for name, folder in training.trained_models(trained).items():
        if name != "lgbm":
            assert "a rank, not a probability" in (folder / "card.md").read_text()
            assert _card(trained, name)["calibration"] is None


def test_a_role_name_as_a_detector_feature_says_which_column_to_write(tmp_path):
    """`init`'s detector lists `amount`; where the amount is the column 'Total', the error says to write Total, not a
    did-you-mean to whatever column is spelt closest ('Country')."""
    from conftest import BASE_DATASET, random_events, write_workspace
    from riskconsole.ingest import load
    from riskconsole.validate import validate_file

    events = random_events(n=60).rename(columns={"amount": "Total"}).assign(Country="DE")
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "amount": "Total"},
               "features": [{"name": "user_orders_1h", "count": "*", "by": "user_id", "window": "1h"}]}
    ws = write_workspace(tmp_path / "ws", events, dataset)
    load(ws)
    path = ws.detectors_dir / "lgbm.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "lgbm", "kind": "lightgbm", "features": ["amount", "user_orders_1h"],
                                      "train": {"from": "2026-03-01", "to": "2026-03-03"}}))
    with pytest.raises(RiskConsoleError, match="feature 'amount': not a column or feature of the loaded frame "
                                               r"\(the amount role is the column 'Total' here; write Total\)"):
        validate_file(ws, path)


@pytest.mark.parametrize("kind, params, message", [
    ("lightgbm", {"num_leavs": 7}, "params: unknown LightGBM parameter 'num_leavs' (did you mean 'num_leaves'?)"),
    ("lightgbm", {"calibration": "isotonc"}, "params: calibration: 'isotonc' is not one of auto, isotonic, platt"),
    ("lightgbm", {"num_threads": 8}, "params: 'num_threads' is fixed by riskconsole"),
    ("pyod.iforest", {"n_estimator": 3}, "params: IForest has no parameter 'n_estimator' (did you mean 'n_estim"),
])
def test_validate_refuses_the_params_train_refuses(small_ws, kind, params, message):
    """`validate` said ok for a params typo that `train` then refused: it builds the model as train does."""
    from riskconsole.validate import validate_file

    path = detector_yaml(small_ws.root, "typo", kind, params=params)
    with pytest.raises(RiskConsoleError) as trained:
        train_detector(small_ws, path)
    with pytest.raises(RiskConsoleError) as validated:
        validate_file(small_ws, path)
    assert str(validated.value) == str(trained.value)
    assert str(validated.value).startswith("detectors/typo.yaml: ") and message in str(validated.value)
    small_ws.db_path.unlink()  # no data loaded: the params are still checked, not "features not checked" alone
    with pytest.raises(RiskConsoleError, match="params: "):
        validate_file(small_ws, path)


def test_a_model_that_scores_every_event_alike_is_warned_of(small_ws, capsys):
    """Too few rows for LightGBM's leaves (min_data_in_leaf 100): one tree, no split, every event one score. `train`
    said it was a success; now the card, card.md and the CLI warn, and a model that learned keeps no warning."""
    from riskconsole.cli import main

    days = {"train": {"from": "2026-01-01", "to": "2026-01-08"}, "valid": {"from": "2026-01-09", "to": "2026-01-20"}}
    path = detector_yaml(small_ws.root, "tiny", "lightgbm", **days)
    assert main(["train", str(path), "--workspace", str(small_ws.root)]) == 0
    distinct, score = _query(small_ws, "SELECT count(DISTINCT tiny), min(tiny) FROM scores_tiny")[0]
    card = _card(small_ws, "tiny")
    assert distinct == 1 and card["train"]["rows"] < 200  # the case itself, counted apart from the card
    expected = (f"detector 'tiny': every event scored {score:.4g}: the model learned nothing from the train window's "
                f"{card['train']['rows']:,} rows ({card['train']['labelled']:,} labelled, {card['train']['frauds']:,}"
                " fraud); widen the train window, or lower min_data_in_leaf in params")
    assert len(card["warnings"]) == 1 and card["warnings"][0].startswith(expected)
    assert f"**Warning:** {card['warnings'][0]}" in (small_ws.models_dir / "tiny" / "card.md").read_text()
    assert f"warning: {card['warnings'][0]}" in capsys.readouterr().err
    path = detector_yaml(small_ws.root, "tiny", "lightgbm", params={"min_data_in_leaf": 5}, **days)
    assert main(["train", str(path), "--workspace", str(small_ws.root)]) == 0
    assert _query(small_ws, "SELECT count(DISTINCT tiny) FROM scores_tiny")[0][0] > 1
    assert _card(small_ws, "tiny")["warnings"] == [] and "warning:" not in capsys.readouterr().err


def test_a_model_near_perfect_out_of_sample_is_suspected_of_reading_the_answer(tmp_path, capsys):
    """The generator's answer key `scenario`, not listed under label_derived: valid AUC 1.000 and train printed it as
    a success. Now the card and train name the feature that carries the model and the fix; an honest model does not."""
    import detector_data
    from riskconsole.cli import main
    from riskconsole.ingest import load

    ws = signal_workspace(tmp_path / "ws", n=1_500, seed=5)
    columns = {k: v for k, v in detector_data.DATASET["columns"].items() if k != "label_derived"}
    ws.dataset_path.write_text(yaml.safe_dump({**detector_data.DATASET, "columns": columns}, sort_keys=False))
    load(ws)
    leaky = detector_yaml(ws.root, "leaky", "lightgbm", features=["amount", "scenario"])
    honest = detector_yaml(ws.root, "honest", "lightgbm")
    assert main(["train", str(leaky), str(honest), "--workspace", str(ws.root)]) == 0
    y, s, _ = _labelled_scores(ws, "leaky", VALID["from"], VALID["to"])
    assert roc_auc_score(y, s) >= 0.99 and y.sum() >= 10  # the case itself, by scikit-learn
    card = _card(ws, "leaky")
    top = card["importance"][0]
    assert top["feature"] == "scenario"
    line = (f"detector 'leaky': valid AUC {card['valid']['auc']:.3f} on {int(y.sum()):,} frauds; scenario carries "
            f"{top['share']:.0%} of the importance: a model this good out of sample usually reads the answer. If a "
            "feature is set from the label (a chargeback reason, a case status), list its column under "
            "columns.label_derived in dataset.yaml")
    assert [w for w in card["warnings"] if w.startswith(line)]
    assert line in capsys.readouterr().err
    assert _card(ws, "honest")["valid"]["auc"] < 0.99 and _card(ws, "honest")["warnings"] == []


def test_monitor_says_which_detectors_were_fitted_on_its_reference(trained):
    """Monitor compared a LightGBM score against a reference of the very days it was trained on (in-sample, sharper
    scores) without a word, the backtest's overlap warning having no counterpart there. The days are checked by hand:
    train 2026-01-01..02-10 and valid 02-11..02-24 against the reference 01-15..02-11 and the window 02-12..03-11."""
    path = trained.strategies_dir / "reads_lgbm.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "reads_lgbm", "rules": [
        {"name": "model", "when": "lgbm >= 0.5", "action": "review"}]}))
    warnings = Session(trained).monitor(path, reference="2026-01-15:2026-02-11", start="2026-02-12",
                                        end="2026-03-11")["warnings"]
    head = "detectors fitted on days of the reference 2026-01-15..2026-02-11: "
    on_reference = [w for w in warnings if w.startswith(head)]
    assert len(on_reference) == 1
    assert "lgbm (trained 2026-01-01..2026-02-10; validated 2026-02-11..2026-02-24)" in on_reference[0]
    assert "iforest (trained 2026-01-01..2026-02-10; validated 2026-02-11..2026-02-24)" in on_reference[0]
    assert on_reference[0].endswith("take a reference after those days (--reference)")
    on_window = [w for w in warnings if w.startswith("detectors fitted on days of the monitored window 2026-02-12..")]
    assert len(on_window) == 1 and "lgbm (validated 2026-02-11..2026-02-24)" in on_window[0]
    assert "trained" not in on_window[0]  # training ended 02-10, before the window
    later = Session(trained).monitor(path, reference="2026-02-25:2026-03-03", start="2026-03-04",
                                     end="2026-03-11")["warnings"]
    assert not [w for w in later if w.startswith("detectors fitted")]  # both periods after every window: none


def test_an_uncalibrated_card_does_not_call_its_score_class_weighted(small_ws):
    """No class weighting is the default (docs/detectors.md); the card of a model without `valid` said its score was
    'the booster's class-weighted probability'. With scale_pos_weight set, the card's own weighting line says so."""
    body = {"name": "plain", "kind": "lightgbm", "features": FEATURES, "train": TRAIN}
    path = small_ws.detectors_dir / "plain.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(body))
    train_detector(small_ws, path)
    card, md = _card(small_ws, "plain"), (small_ws.models_dir / "plain" / "card.md").read_text()
    assert "scale_pos_weight" not in card["params"] and card["calibration"] is None
    assert "class-weighted" not in md and "the booster's probability, not calibrated (no validation window)" in md
    path.write_text(yaml.safe_dump(body | {"params": {"scale_pos_weight": "balanced"}}))
    train_detector(small_ws, path)
    assert "Fraud was weighted x" in (small_ws.models_dir / "plain" / "card.md").read_text()
