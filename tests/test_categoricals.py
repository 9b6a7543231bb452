"""Text features as detector inputs: LightGBM native categoricals, PyOD frequency encoding (DESIGN.md §2.1).

The data is made here: `channel = 'live'` is ten times riskier than 'web' or 'app', amount is a weak
signal, and a few events have no channel at all.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from riskconsole.detectors import explain, load_detector, rescore_all, train_detector
from riskconsole.detectors import matrix
from riskconsole.detectors.matrix import CODES, FREQUENCY, Categories, Encoding, chunk_rows
from riskconsole.detectors.registry import encoding_of
from riskconsole.workspace import Workspace

DATASET = {
    "source": "data/events.parquet",
    "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "amount": "amount"},
    "features": [{"name": "channel_lower", "sql": "lower(channel)"}],
}
TRAIN = {"from": "2026-01-01", "to": "2026-01-30"}
VALID = {"from": "2026-01-31", "to": "2026-02-14"}
RATE = {"web": 0.02, "app": 0.02, "live": 0.20, None: 0.02}


def channel_events(n: int = 6_000, seed: int = 11, days: int = 60) -> pd.DataFrame:
    """Events over `days` days from 2026-01-01 whose fraud rate depends on the channel (live: 10x)."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, days * 86_400, n))
    channel = rng.choice(np.array(["web", "app", "live", None], dtype=object), n, p=[0.55, 0.33, 0.10, 0.02])
    fraud = rng.random(n) < np.array([RATE[c] for c in channel])
    amount = np.round(rng.lognormal(3.5, 0.8, n) * np.where(fraud, 1.3, 1.0), 2)
    return pd.DataFrame({
        "event_id": [f"e{i:05d}" for i in range(n)],
        "ts": pd.to_datetime(np.datetime64("2026-01-01T00:00:00") + seconds.astype("timedelta64[s]")),
        "is_fraud": fraud.astype("int8"),
        "amount": amount,
        "channel": pd.array(channel, dtype="string"),
    })


def _write(root, events: pd.DataFrame) -> Workspace:
    from riskconsole.ingest import load

    ws = Workspace(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    events.to_parquet(root / "data" / "events.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(DATASET, sort_keys=False))
    load(ws)
    return ws


def _detector(ws: Workspace, name: str, kind: str, features: list[str]):
    body = {"name": name, "kind": kind, "features": features, "train": TRAIN, "valid": VALID}
    path = ws.root / "detectors" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _scores(ws: Workspace, name: str) -> dict[str, float]:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    rows = con.execute(f'SELECT f.event_id, s."{name}" FROM frame f JOIN "scores_{name}" s USING (_pos)').fetchall()
    con.close()
    return dict(rows)


def _set_channel(ws: Workspace, event_id: str, value: str | None) -> None:
    con = ws.connect()
    con.execute("UPDATE frame SET channel = ? WHERE event_id = ?", [value, event_id])
    con.close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """A loaded workspace with LightGBM with and without the channel, and HBOS with it."""
    ws = _write(tmp_path_factory.mktemp("categoricals") / "ws", channel_events())
    train_detector(ws, _detector(ws, "with_channel", "lightgbm", ["amount", "channel"]))
    train_detector(ws, _detector(ws, "amount_only", "lightgbm", ["amount"]))
    train_detector(ws, _detector(ws, "hbos", "pyod.hbos", ["amount", "channel"]))
    return ws


def _card(ws: Workspace, name: str) -> dict:
    return json.loads((ws.models_dir / name / "card.json").read_text())


# ------------------------------------------------------------------ LightGBM


def test_lightgbm_learns_from_the_text_column(ws):
    with_channel, without = _card(ws, "with_channel"), _card(ws, "amount_only")
    for part in ("valid", "out_of_time"):
        assert with_channel[part]["auc"] > without[part]["auc"] + 0.1, part
    share = {i["feature"]: i["share"] for i in with_channel["importance"]}
    assert share["channel"] > 0.2, "the text column is used, not dropped"


def test_the_booster_treats_the_text_column_as_categorical(ws):
    model, _ = load_detector(ws.models_dir / "with_channel")
    assert model.categorical_columns() == [1] and model.booster_.params["categorical_feature"] == [1]
    assert _card(ws, "with_channel")["model"]["categorical_columns"] == [1]
    splits = []

    def walk(node: dict) -> None:
        if "split_feature" in node:
            splits.append((node["split_feature"], node["decision_type"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    assert (1, "==") in splits, "the channel is split on as a category"
    assert all(kind == "<=" for feature, kind in splits if feature == 0), "amount stays numeric"


def test_categories_are_saved_in_training_frequency_order(ws):
    saved = json.loads((ws.models_dir / "with_channel" / "categories.json").read_text())
    events = channel_events()
    train = events[(events.ts >= "2026-01-01") & (events.ts < "2026-01-31")]
    counts = train["channel"].value_counts()  # labelled training rows: every label is known here
    assert saved["method"] == CODES and saved["features"] == ["amount", "channel"]
    assert saved["text"]["channel"]["values"] == ["web", "app", "live"] == counts.index.tolist()
    assert saved["text"]["channel"]["counts"] == counts.tolist()
    card = _card(ws, "with_channel")
    assert card["categorical"][0]["feature"] == "channel" and card["categorical"][0]["categories"] == 3
    assert "- channel: LightGBM native categorical" in (ws.models_dir / "with_channel" / "card.md").read_text()


def test_reloaded_categories_give_identical_scores(ws):
    model, meta = load_detector(ws.models_dir / "with_channel")
    con = duckdb.connect(str(ws.db_path), read_only=True)
    pos, X = chunk_rows(con, encoding_of(model, meta["features"]), 0, 10**9)
    stored = con.execute('SELECT "with_channel" FROM scores_with_channel ORDER BY _pos').fetchnumpy()["with_channel"]
    con.close()
    np.testing.assert_array_equal(model.score(X), stored)


def test_an_unseen_value_scores_exactly_like_null(tmp_path):
    ws = _write(tmp_path / "ws", channel_events(n=3_000))
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    event = "e02950"
    seen = {}
    for value in ("never_seen", None, "live", "web"):
        _set_channel(ws, event, value)
        rescore_all(ws)
        seen[value] = _scores(ws, "m")[event]
    assert seen["never_seen"] == seen[None]
    assert seen["live"] != seen["web"], "the channel matters for this event"


def test_a_new_value_in_later_data_shifts_no_code(tmp_path):
    events = channel_events(n=3_000)
    ws = _write(tmp_path / "ws", events)
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    train_detector(ws, _detector(ws, "h", "pyod.hbos", ["amount", "channel"]))
    before = {name: _scores(ws, name) for name in ("m", "h")}
    # many events of a new channel that sorts first and is now the most frequent value of the data
    later = channel_events(n=4_000, seed=99).assign(channel="aaa_new")
    later["event_id"] = [f"n{i:05d}" for i in range(len(later))]
    _write(ws.root, pd.concat([events, later], ignore_index=True))
    rescore_all(ws)
    for name, old in before.items():
        now = _scores(ws, name)
        assert {e: now[e] for e in old} == old, name
    saved = json.loads((ws.models_dir / "m" / "categories.json").read_text())
    assert "aaa_new" not in saved["text"]["channel"]["values"]


def test_explain_shows_the_text_not_the_code(ws):
    events = channel_events()
    live = events[(events.channel == "live") & (events.is_fraud == 1) & (events.ts >= "2026-02-15")]
    got = explain(ws, live.event_id.iloc[0], detectors=["with_channel", "hbos"])
    assert got["features"]["channel"] == "live"
    lgbm, hbos = got["detectors"]
    assert lgbm["score"] == lgbm["stored_score"] and hbos["score"] == hbos["stored_score"]
    reasons = {r["feature"]: r for r in lgbm["reasons"]}
    assert reasons["channel"]["value"] == "live" and reasons["channel"]["contribution"] > 0


def test_a_text_feature_reads_like_its_column(ws):
    path = _detector(ws, "lower", "lightgbm", ["amount", "channel_lower"])
    try:
        card = train_detector(ws, path).card
        assert card["categorical"][0]["feature"] == "channel_lower"
        assert card["valid"]["auc"] == pytest.approx(_card(ws, "with_channel")["valid"]["auc"])
    finally:
        path.unlink()


# ------------------------------------------------------------------ PyOD


def test_pyod_frequency_encoding_matches_a_hand_count(ws):
    events = channel_events()
    train = events[(events.ts >= "2026-01-01") & (events.ts < "2026-01-31")]
    share = train["channel"].value_counts(dropna=False) / len(train)  # NULL is a value of its own
    model, meta = load_detector(ws.models_dir / "hbos")
    encoding = encoding_of(model, meta["features"])
    assert encoding.method == FREQUENCY and encoding.categorical == []
    table = pa.table({"f0": pa.array([1.0, 2.0, 3.0, 4.0, 5.0], pa.float32()),
                      "f1": pa.array(["web", "app", "live", None, "never_seen"])})
    X = encoding.matrix(table)
    expected = [share["web"], share["app"], share["live"], share[pd.NA], 0.0]
    np.testing.assert_allclose(X[:, 1], np.array(expected, dtype=np.float32))
    md = (ws.models_dir / "hbos" / "card.md").read_text()
    assert "- channel: frequency encoding (training window)" in md
    assert _card(ws, "hbos")["categorical"][0]["unseen"].startswith("share 0")


def test_explain_names_the_frequency_a_pyod_model_read(ws):
    events = channel_events()
    row = events[events.channel == "live"].iloc[-1]
    got = explain(ws, row.event_id, detectors=["hbos"], top=2)["detectors"][0]
    channel = next(r for r in got["reasons"] if r["feature"] == "channel")
    assert channel["value"] == "live" and channel["encoding"].startswith("frequency")
    assert channel["share"] == pytest.approx(0.1, abs=0.02) and channel["z"] < 0, "live is rarer than typical"


# ------------------------------------------------------------------ the encoding itself


def test_categories_order_by_frequency_then_value_and_cap(monkeypatch):
    monkeypatch.setattr(matrix, "MAX_CATEGORIES", 2)
    column = pa.chunked_array([pa.array(["b", "a", "c", "c", None, "a", "d", "b"])])
    cats = Categories.fit(column, CODES)
    assert cats.values == ["a", "b"] and cats.counts == [2, 2] and cats.beyond_cap == 2 and cats.rows == 8
    codes = cats.encode(pa.chunked_array([pa.array(["a", "b", "c", None, "zzz"])]))
    np.testing.assert_array_equal(codes, np.array([0, 1, np.nan, np.nan, np.nan], dtype=np.float32))


@pytest.mark.parametrize("dtype, text", [("VARCHAR", True), ("ENUM('a', 'b')", True), ("BOOLEAN", False),
                                         ("DOUBLE", False), ("DECIMAL(10,2)", False)])
def test_booleans_and_numbers_stay_numeric(dtype, text):
    encoding = Encoding.plan(["x"], {"x": dtype}, CODES)
    assert (encoding.text_features == ("x",)) is text


def test_old_model_folders_read_numbers_only(tmp_path):
    encoding = Encoding.load(tmp_path, ["amount", "n"])
    assert encoding.features == ("amount", "n") and not encoding.text_features


def test_categories_come_from_the_training_window_only(tmp_path):
    events = channel_events(n=3_000)
    late = (events.ts >= "2026-02-15") & (events.channel == "app")
    events.loc[late, "channel"] = "late_only"  # appears only after the train and valid windows
    ws = _write(tmp_path / "ws", events)
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    train_detector(ws, _detector(ws, "h", "pyod.hbos", ["amount", "channel"]))
    for name in ("m", "h"):
        saved = json.loads((ws.models_dir / name / "categories.json").read_text())
        assert "late_only" not in saved["text"]["channel"]["values"], name
        assert saved["text"]["channel"]["rows"] == int((events.ts < "2026-01-31").sum()), name  # train rows only
    model, meta = load_detector(ws.models_dir / "h")
    table = pa.table({"f0": pa.array([10.0], pa.float32()), "f1": pa.array(["late_only"])})
    assert encoding_of(model, meta["features"]).matrix(table)[0, 1] == 0.0


def _late_only(tmp_path) -> tuple[Workspace, pd.DataFrame, pd.Series]:
    """A workspace whose 'app' events from 2026-02-15 on (after the train and valid windows) have the channel
    'late_only', with LightGBM `m` and HBOS `h` trained on amount and channel; and which events are those."""
    events = channel_events(n=3_000)
    late = (events.ts >= "2026-02-15") & (events.channel == "app")
    events.loc[late, "channel"] = "late_only"
    ws = _write(tmp_path / "ws", events)
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    train_detector(ws, _detector(ws, "h", "pyod.hbos", ["amount", "channel"]))
    return ws, events, late


def test_events_holding_a_value_training_never_saw_are_warned_of(tmp_path):
    """A new payment method after the training window was read as missing (LightGBM) or share 0 (PyOD) in silence:
    `load` re-scored it without a word and the card did not say. Now train's card and load's warnings count them."""
    from riskconsole.ingest import load

    ws, events, late = _late_only(tmp_path)
    n = int(late.sum())  # counted in pandas, apart from the warning's SQL
    assert n >= matrix.UNSEEN_EVENTS
    expected = {
        "m": f"detector 'm': {n:,} events hold channel values that are not among the 3 it learned in training "
             f"('late_only' {n:,}); it reads them as missing (LightGBM's missing branch), like NULL: retrain it on a "
             "window that holds them (riskconsole train detectors/m.yaml)",
        "h": f"detector 'h': {n:,} events hold channel values that are not among the 3 it learned in training "
             f"('late_only' {n:,}); it reads them as share 0 (as rare as can be): retrain",
    }
    for name, line in expected.items():
        assert [w for w in _card(ws, name)["warnings"] if w.startswith(line)], name
    said = load(ws).warnings  # the same events, re-scored by a load
    assert [w for w in said if w.startswith(expected["m"])] and [w for w in said if w.startswith(expected["h"])]


def test_a_long_tail_of_new_values_is_no_warning_a_new_common_one_is(tmp_path):
    """A text feature of many values (a name, a domain) brings new ones every day, each held by a few events:
    retraining would not make them known, and a warning on every load said nothing. Only a new value many events hold
    (UNSEEN_EVENTS or more) is warned of, with the rarer ones counted beside it."""
    events = channel_events(n=3_000)
    late = np.flatnonzero(((events.ts >= "2026-02-15") & (events.channel == "app")).fillna(False).to_numpy(bool))
    events.loc[late, "channel"] = [f"tail_{i // 2}" for i in range(len(late))]  # each new value held by 2 events
    ws = _write(tmp_path / "tail", events)
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    assert not [w for w in _card(ws, "m")["warnings"] if "not among" in w]
    common = late[:matrix.UNSEEN_EVENTS]  # one new value held by 10 events, the rest of the tail as it was
    events.loc[common, "channel"] = "wallet"
    rest = events.loc[late[matrix.UNSEEN_EVENTS:], "channel"]
    ws = _write(tmp_path / "common", events)
    train_detector(ws, _detector(ws, "m", "lightgbm", ["amount", "channel"]))
    said = [w for w in _card(ws, "m")["warnings"] if "not among" in w]
    assert len(said) == 1 and said[0].startswith(
        f"detector 'm': {matrix.UNSEEN_EVENTS} events hold channel values that are not among the 3 it learned in "
        f"training ('wallet' {matrix.UNSEEN_EVENTS}; {len(rest):,} more hold {rest.nunique():,} rarer new values)")


def test_no_warning_without_unseen_values(ws):
    """NULL channels (2% of events) read as they did in training: no warning for them."""
    assert _card(ws, "with_channel")["warnings"] == [] and _card(ws, "hbos")["warnings"] == []


def test_explain_says_a_text_value_the_model_did_not_learn(tmp_path):
    """A 'late_only' channel reads as missing: LightGBM's reasons never named it, so a reviewer could not tell the
    model had never seen it. `explain` (and the batch, equal to it) lists it under `unseen`; a learned value is not."""
    from riskconsole.cli import explain_lines
    from riskconsole.detectors.explain import explain_many

    ws, events, late = _late_only(tmp_path)
    new, old = events.event_id[late].iloc[0], events.event_id[events.channel == "web"].iloc[0]
    one = explain(ws, new)
    unseen = {d["name"]: d["unseen"] for d in one["detectors"]}
    assert unseen == {
        "m": [{"feature": "channel", "value": "late_only", "learned": 3,
               "read_as": "missing (LightGBM's missing branch), like NULL"}],
        "h": [{"feature": "channel", "value": "late_only", "learned": 3, "read_as": "share 0 (as rare as can be)"}]}
    assert "  ? channel = late_only  not among the 3 values it learned in training: read as missing (LightGBM's " \
           "missing branch), like NULL" in explain_lines(one)
    assert all("unseen" not in d for d in explain(ws, old)["detectors"])
    assert explain_many(ws, [new, old])["events"] == [one, explain(ws, old)]


def test_model_txt_names_the_features_and_the_names_change_no_score(tmp_path):
    """LightGBM's model.txt named the features Column_0 ... Column_N (LightGBM refuses some characters in names):
    it now holds the features' names, made acceptable to LightGBM, and the model scores as the unnamed one did."""
    from types import SimpleNamespace

    from riskconsole.detectors.boosting import LightGBMDetector, model_names

    assert model_names(["amount", "Customer ID", "a:b", "a,b", 'q"{x}[1]']) == [
        "amount", "Customer_ID", "a_b", "a_b_2", "q__x__1_"]
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2_000, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=2_000) > 1).astype(float)
    plain = LightGBMDetector().fit(X, y)
    named = LightGBMDetector()
    named.encoding_ = SimpleNamespace(features=("amount", "Customer ID", "user:orders"))
    named.fit(X, y)
    assert named.booster_.feature_name() == ["amount", "Customer_ID", "user_orders"]
    assert plain.booster_.feature_name() == ["Column_0", "Column_1", "Column_2"]
    np.testing.assert_array_equal(named.score(X), plain.score(X))
    named.save(tmp_path)
    assert "feature_names=amount Customer_ID user_orders" in (tmp_path / "model.txt").read_text()
