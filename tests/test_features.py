"""Point-in-time features: compared with a brute-force Python computation, and proven blind to the future."""

from __future__ import annotations

import math
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from conftest import aggregate, BASE_DATASET, random_events, write_workspace

FEATURES = [
    {"name": "u_cnt_1h", "count": "*", "by": "user_id", "window": "1h"},
    {"name": "u_cnt_amt_1d", "count": "amount", "by": "user_id", "window": "1d"},
    {"name": "u_sum_1d", "sum": "amount", "by": "user_id", "window": "1d"},
    {"name": "u_avg_1d", "avg": "amount", "by": "user_id", "window": "1d"},
    {"name": "u_min_2d", "min": "amount", "by": "user_id", "window": "2d"},
    {"name": "u_max_2d", "max": "amount", "by": "user_id", "window": "2d"},
    {"name": "d_users_1d", "count_distinct": "user_id", "by": "device_id", "window": "1d"},
    {"name": "u_fraud_2d", "sum": "label", "by": "user_id", "window": "2d", "label_delay": "6h"},
    {"name": "d_fraud_rate_3d", "avg": "label", "by": "device_id", "window": "3d", "label_delay": "1d"},
    {"name": "u_labels_2d", "count": "is_fraud", "by": "user_id", "window": "2d"},
    {"name": "amt_vs_avg", "sql": "amount / nullif(u_avg_1d, 0)"},
]


def brute_force(events: pd.DataFrame, feature: dict) -> list:
    """The definition of DESIGN.md §2, one event at a time."""
    out = []
    rows = events.to_dict("records")
    for row in rows:
        t, key = row["ts"], row[feature["by"]]
        window = pd.Timedelta(feature["window"].replace("d", "D"))
        delay = pd.Timedelta(feature.get("label_delay", "0s").replace("d", "D"))
        column = {"label": "is_fraud", "*": None}.get(feature[_agg(feature)], feature[_agg(feature)])
        is_label = column == "is_fraud"
        lo, hi = t - delay - window, t - delay
        peers = [r for r in rows if r[feature["by"]] == key and lo <= r["ts"] < hi]
        if is_label:
            peers = [r for r in peers if not pd.isna(r["is_fraud"]) and (pd.isna(r["label_ts"]) or r["label_ts"] < t)]
        values = [r[column] for r in peers] if column else [1] * len(peers)
        values = [v for v in values if not pd.isna(v)]
        out.append(aggregate(_agg(feature), values))
    return out


def _agg(feature: dict) -> str:
    return next(k for k in ("count_distinct", "count", "sum", "avg", "min", "max") if k in feature)




@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    events = random_events(n=300, seed=3, days=4)
    dataset = {**BASE_DATASET, "features": FEATURES}
    ws = write_workspace(tmp_path_factory.mktemp("pit"), events, dataset)
    load(ws)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    frame = con.execute("SELECT * FROM frame ORDER BY _pos").df()
    con.close()
    return events.sort_values(["ts", "event_id"]).reset_index(drop=True), frame


@pytest.mark.parametrize("feature", [f for f in FEATURES if "sql" not in f], ids=lambda f: f["name"])
def test_window_features_match_brute_force(loaded, feature):
    events, frame = loaded
    expected = brute_force(events, feature)
    got = frame[feature["name"]].tolist()
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        if e is None:
            assert g is None or (isinstance(g, float) and math.isnan(g)), (i, e, g)
        else:
            assert g == pytest.approx(e), (feature["name"], i, events.iloc[i].to_dict())


def test_derived_feature(loaded):
    events, frame = loaded
    expected = frame["amount"] / frame["u_avg_1d"].replace(0, np.nan)
    pd.testing.assert_series_equal(frame["amt_vs_avg"], expected, check_names=False)


def _frame_of(tmp_path, events, features, name):
    ws = write_workspace(tmp_path / name, events, {**BASE_DATASET, "features": features})
    load(ws)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    out = con.execute("SELECT * FROM frame ORDER BY _pos").df().set_index("event_id")
    con.close()
    return out


def test_the_future_changes_nothing(tmp_path):
    """Adding later events, and labels that arrive later, leaves every earlier feature unchanged."""
    events = random_events(n=200, seed=5, days=3)
    cutoff = events["ts"].iloc[120]
    past = events[events["ts"] < cutoff].copy()
    future_labels = past.copy()
    # labels that only become known after the cut-off must not matter before it
    late = future_labels["label_ts"] >= cutoff
    past.loc[late, ["is_fraud", "label_ts"]] = [pd.NA, pd.NaT]
    features = [f for f in FEATURES if "sql" not in f]
    before = _frame_of(tmp_path, past, features, "past")
    after = _frame_of(tmp_path, pd.concat([future_labels, events[events["ts"] >= cutoff]]), features, "all")
    names = [f["name"] for f in features]
    pd.testing.assert_frame_equal(before[names], after.loc[before.index, names], check_dtype=False)


def test_ties_and_window_edges(tmp_path):
    t0 = pd.Timestamp("2026-03-01 12:00:00")
    events = pd.DataFrame({
        "event_id": ["a", "b", "c", "d", "e"],
        "ts": [t0 - timedelta(hours=1), t0 - timedelta(hours=1) + timedelta(seconds=1), t0, t0, t0 + timedelta(hours=1)],
        "is_fraud": [1, 1, 0, 0, 0], "label_ts": [t0 - timedelta(minutes=30), t0 + timedelta(minutes=1), t0, t0, t0],
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0], "user_id": [1, 1, 1, 1, 1], "device_id": [1, 1, 1, 1, None],
    })
    features = [{"name": "cnt_1h", "count": "*", "by": "user_id", "window": "1h"},
                {"name": "fraud_seen", "sum": "label", "by": "user_id", "window": "1d"},
                {"name": "dev_cnt", "count": "*", "by": "device_id", "window": "1d"}]
    frame = _frame_of(tmp_path, events, features, "edges")
    # c and d: same instant, so neither sees the other; a is exactly 1 h before (included)
    assert frame.loc["c", "cnt_1h"] == 2 and frame.loc["d", "cnt_1h"] == 2
    assert frame.loc["e", "cnt_1h"] == 2  # c, d at exactly t - 1h; a, b are older
    # at t0 only a's label is known (b's arrives a minute later)
    assert frame.loc["c", "fraud_seen"] == 1 and frame.loc["e", "fraud_seen"] == 2
    assert pd.isna(frame.loc["e", "dev_cnt"])  # no entity, no feature


@pytest.mark.parametrize("feature, message", [
    ({"name": "x", "sum": "nope", "by": "user_id", "window": "1h"}, "unknown column 'nope'"),
    ({"name": "x", "count": "*", "by": "nobody", "window": "1h"}, "by: unknown column 'nobody'"),
    # a typo got the list of every column, where a rule's and a where:'s typo get a did-you-mean
    ({"name": "x", "count_distinct": "userid", "by": "device_id", "window": "1h"},
     r"count_distinct: unknown column 'userid' \(did you mean 'user_id'\?\)"),
    ({"name": "x", "count": "*", "by": "deviceid", "window": "1h"}, r"by: unknown column 'deviceid' \(did you mean"),
    ({"name": "x", "first_seen": "device", "by": "user_id", "window": "1h"},
     r"first_seen: .* \(did you mean 'device_id'"),
    ({"name": "x", "max": "label", "by": "user_id", "window": "1h", "label_delay": "1d"}, "label feature takes"),
    ({"name": "x", "avg": "label_ts", "by": "user_id", "window": "1h"}, "only sum/avg/count of the label"),
    ({"name": "x", "sum": "channel", "by": "user_id", "window": "1h"}, "needs a numeric column"),
    ({"name": "amount", "count": "*", "by": "user_id", "window": "1h"}, "a source column has that name"),
    ({"name": "x", "sql": "is_fraud + 1"}, "'is_fraud' is the label"),
    ({"name": "x", "count": "*", "by": "user_id", "window": "1y"}, "is not a duration"),
])
def test_bad_features_are_refused_and_change_nothing(tmp_path, feature, message):
    events = random_events(n=50)
    ws = write_workspace(tmp_path / "w", events)
    load(ws)
    before = duckdb.connect(str(ws.db_path), read_only=True)
    snapshot = before.execute("SELECT count(*), sum(user_orders_1h) FROM frame").fetchall()
    before.close()
    write_workspace(tmp_path / "w", events, {**BASE_DATASET, "features": [feature]})
    with pytest.raises(RiskConsoleError, match=message):
        load(ws)
    after = duckdb.connect(str(ws.db_path), read_only=True)
    assert after.execute("SELECT count(*), sum(user_orders_1h) FROM frame").fetchall() == snapshot
    after.close()


def test_a_window_reads_a_per_event_sql_feature(tmp_path):
    """A `sql:` feature over the event's own columns can be aggregated (`avg: order_hour`: the user's usual hour),
    be part of a `by:` key, and be first_seen; each equals the brute force over a column holding the same values,
    and one reading another feature is refused with the fix."""
    events = random_events(n=300, seed=4, days=4)
    features = [
        {"name": "order_hour", "sql": "hour(ts)"},
        {"name": "amount_band", "sql": "CAST(floor(amount / 100) AS INTEGER)"},
        {"name": "u_avg_hour_2d", "avg": "order_hour", "by": "user_id", "window": "2d"},
        {"name": "u_max_band_1d", "max": "amount_band", "by": "user_id", "window": "1d"},
        {"name": "u_band_cnt_1d", "count": "*", "by": ["user_id", "amount_band"], "window": "1d"},
        {"name": "new_band_2d", "first_seen": "amount_band", "by": "user_id", "window": "2d"},
        {"name": "hour_gap", "sql": "abs(order_hour - u_avg_hour_2d)"},
    ]
    ws = write_workspace(tmp_path / "ws", events, {**BASE_DATASET, "features": features})
    load(ws)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    frame = con.execute("SELECT * FROM frame ORDER BY _pos").df()
    con.close()
    ordered = events.sort_values(["ts", "event_id"]).reset_index(drop=True)
    ordered["order_hour"] = ordered["ts"].dt.hour
    ordered["amount_band"] = np.floor(ordered["amount"] / 100).astype(int)
    assert frame["order_hour"].tolist() == ordered["order_hour"].tolist()
    for feature in features[2:4]:
        want = brute_force(ordered, feature)
        got = frame[feature["name"]].to_numpy(dtype=float, na_value=np.nan)
        assert got.tolist() == pytest.approx([np.nan if w is None else w for w in want], nan_ok=True)
    rows = ordered.to_dict("records")
    pairs = [sum(1 for r in rows if r["user_id"] == row["user_id"] and r["amount_band"] == row["amount_band"]
                 and row["ts"] - pd.Timedelta("1D") <= r["ts"] < row["ts"]) for row in rows]
    assert frame["u_band_cnt_1d"].tolist() == pairs
    seen = [int(not any(r["user_id"] == row["user_id"] and r["amount_band"] == row["amount_band"]
                        and row["ts"] - pd.Timedelta("2D") <= r["ts"] < row["ts"] for r in rows)) for row in rows]
    assert frame["new_band_2d"].tolist() == seen
    gap = np.abs(frame["order_hour"].to_numpy(dtype=float) - frame["u_avg_hour_2d"].to_numpy(dtype=float,
                                                                                           na_value=np.nan))
    assert frame["hour_gap"].to_numpy(dtype=float, na_value=np.nan).tolist() == pytest.approx(gap.tolist(),
                                                                                               nan_ok=True)
    bad = [{"name": "u_cnt_1h", "count": "*", "by": "user_id", "window": "1h"},
           {"name": "busy", "sql": "u_cnt_1h + 1"},
           {"name": "u_busy_1d", "max": "busy", "by": "user_id", "window": "1d"}]
    other = write_workspace(tmp_path / "bad", events, {**BASE_DATASET, "features": bad})
    with pytest.raises(RiskConsoleError, match="feature 'busy': unknown column 'u_cnt_1h'.*may not read other "
                                               "features"):
        load(other)


def test_planned_types_are_the_built_frames_without_reading_a_row(demo_ws):
    """`features.planned_types` (what a load on Spark reads the frame back as) gives the columns and DuckDB types
    of the frame DuckDB builds, in order, for the demo's every kind of feature (windows, distinct counts, streams,
    as-of and range lookups, label and graph features, derived), from empty copies of the tables; the loaded
    database is left as it was (no table added, the connection back on it)."""
    from riskconsole.features import planned_types

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{demo_ws.db_path}' AS live (READ_ONLY)")
        con.execute("USE live")
        tables = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
        got = planned_types(con, demo_ws.dataset(), "data/dataset.yaml")
        want = con.execute("SELECT column_name, column_type FROM (DESCRIBE frame)").fetchall()
        assert got == want and len(want) > 60
        assert con.execute("SELECT current_database()").fetchall() == [("live",)]
        assert con.execute("SELECT table_name FROM duckdb_tables() ORDER BY ALL").fetchall() == tables
        assert [d for (d,) in con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal")
                .fetchall()] == ["live", "memory"]
    finally:
        con.close()
