"""Stream windows, compound keys and by-less windows (DESIGN §2.1): compared with a brute-force Python computation,
with ties at the same instant and at the window's edge, and proven blind to the future."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
import yaml

from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from conftest import aggregate, BASE_DATASET, random_events, write_workspace

STREAM = {"source": "data/logins.csv", "columns": {"time": "login_time"}, "rename": {"uid": "user_id"}}
FEATURES = [
    {"name": "s_cnt_1h", "count": "*", "from": "logins", "by": "user_id", "window": "1h"},
    {"name": "s_sum_1d", "sum": "success", "from": "logins", "by": "user_id", "window": "1d"},
    {"name": "s_avg_1d", "avg": "spend", "from": "logins", "by": "user_id", "window": "1d"},
    {"name": "s_min_2d", "min": "spend", "from": "logins", "by": "user_id", "window": "2d"},
    {"name": "s_last_2d", "max": "login_time", "from": "logins", "by": "user_id", "window": "2d"},
    {"name": "s_users_1d", "count_distinct": "user_id", "from": "logins", "by": "device_id", "window": "1d"},
    {"name": "s_pair_1d", "count": "*", "from": "logins", "by": ["user_id", "device_id"], "window": "1d"},
    {"name": "s_all_10m", "count": "*", "from": "logins", "window": "10m"},
    {"name": "s_all_spend_1h", "sum": "spend", "from": "logins", "window": "1h"},
    {"name": "e_pair_1h", "count": "*", "by": ["user_id", "device_id"], "window": "1h"},
    {"name": "e_pair_amount_1d", "avg": "amount", "by": ["user_id", "device_id"], "window": "1d"},
    {"name": "e_all_30m", "count": "*", "window": "30m"},
    {"name": "e_all_max_1h", "max": "amount", "window": "1h"},
    {"name": "e_all_users_1h", "count_distinct": "user_id", "window": "1h"},
    {"name": "s_failed_1h", "count": "*", "from": "logins", "by": "user_id", "window": "1h", "where": "success = 0"},
    {"name": "s_big_spend_1d", "sum": "spend", "from": "logins", "by": "user_id", "window": "1d",
     "where": "spend > 20 AND device_id IS NOT NULL"},
    {"name": "s_all_failed_1h", "count": "*", "from": "logins", "window": "1h", "where": "success = 0"},
    {"name": "e_big_1d", "count": "*", "by": "user_id", "window": "1d", "where": "amount > 50"},
    {"name": "e_pair_big_avg_1d", "avg": "amount", "by": ["user_id", "device_id"], "window": "1d",
     "where": "amount > 60"},
    {"name": "e_all_web_1h", "count": "*", "window": "1h", "where": "channel = 'web'"},
    {"name": "seconds_since_login", "sql": "date_diff('second', s_last_2d, ts)"},
]
# the `where:` of the features above, as pandas row masks (the brute force keeps only those rows)
WHERE = {
    "s_failed_1h": lambda r: r["success"] == 0,
    "s_big_spend_1d": lambda r: (r["spend"] > 20) & r["device_id"].notna(),
    "s_all_failed_1h": lambda r: r["success"] == 0,
    "e_big_1d": lambda r: r["amount"] > 50,
    "e_pair_big_avg_1d": lambda r: r["amount"] > 60,
    "e_all_web_1h": lambda r: r["channel"] == "web",
}


def make_events(seed: int = 5, n: int = 240) -> pd.DataFrame:
    """Events on a minute grid (many ties), a few with no device."""
    events = random_events(n=n, seed=seed, days=3)
    events["ts"] = events["ts"].dt.floor("10min")
    events["device_id"] = pd.array(events["device_id"], dtype="Int64")
    events.loc[events.index % 17 == 3, "device_id"] = pd.NA
    return events


def make_logins(events: pd.DataFrame, seed: int = 6, n: int = 500) -> pd.DataFrame:
    """Logins of the same users and devices: some at an event's exact time, some exactly one hour before one."""
    rng = np.random.default_rng(seed)
    start = events["ts"].min() - pd.Timedelta("1D")
    t = start + pd.to_timedelta(rng.integers(0, 4 * 86_400, n), unit="s")
    picks = rng.integers(0, len(events), n)
    t = np.where(np.arange(n) % 5 == 0, events["ts"].to_numpy()[picks], t)
    t = np.where(np.arange(n) % 7 == 1, (events["ts"] - pd.Timedelta("1h")).to_numpy()[picks], t)
    logins = pd.DataFrame({
        "uid": pd.array(rng.integers(1, 25, n), dtype="Int64"),
        "device_id": pd.array(rng.integers(1, 15, n), dtype="Int64"),
        "login_time": pd.to_datetime(t),
        "success": rng.integers(0, 2, n),
        "spend": np.round(rng.gamma(2.0, 10.0, n), 2),
    })
    logins.loc[logins.index % 23 == 4, "uid"] = pd.NA
    return logins


def workspace(root, events: pd.DataFrame, logins: pd.DataFrame, features: list[dict] = FEATURES):
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "entities": ["user_id", "device_id"]},
               "streams": {"logins": STREAM}, "features": features}
    ws = write_workspace(root, events, dataset)
    logins.to_csv(root / "data" / "logins.csv", index=False)
    return ws


def frame_of(ws) -> pd.DataFrame:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute("SELECT * FROM frame ORDER BY _pos").df()
    finally:
        con.close()


def brute_force(events: pd.DataFrame, rows: pd.DataFrame, time: str, feature: dict) -> list:
    """DESIGN §2.1, one event at a time: rows with the same key (no NULL part) and time in [t - window, t)."""
    agg = next(k for k in ("count_distinct", "count", "sum", "avg", "min", "max") if k in feature)
    keys = [feature["by"]] if isinstance(feature.get("by"), str) else feature.get("by", [])
    window = pd.Timedelta(feature["window"].replace("d", "D"))
    if feature["name"] in WHERE:
        rows = rows[WHERE[feature["name"]](rows).fillna(False).astype(bool)]
    out = []
    for event in events.to_dict("records"):
        t = event["ts"]
        if any(pd.isna(event[k]) for k in keys):
            peers = rows.iloc[0:0]
        else:
            mask = (rows[time] >= t - window) & (rows[time] < t)
            for k in keys:
                mask &= rows[k] == event[k]
            peers = rows[mask.fillna(False)]
        column = feature[agg]
        values = [1] * len(peers) if column == "*" else [v for v in peers[column] if not pd.isna(v)]
        out.append(aggregate(agg, values))
    return out




def same(got, want) -> bool:
    if want is None or (not isinstance(want, str) and pd.isna(want)):
        return got is None or pd.isna(got)
    if isinstance(want, pd.Timestamp):
        return pd.Timestamp(got) == want
    return abs(float(got) - float(want)) <= 1e-9 * max(1.0, abs(float(want)))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    events, logins = make_events(), make_logins(make_events())
    ws = workspace(tmp_path_factory.mktemp("streams"), events, logins)
    result = load(ws)
    ordered = events.sort_values(["ts", "event_id"]).reset_index(drop=True)
    return ws, result, ordered, logins.rename(columns={"uid": "user_id"}), frame_of(ws)


@pytest.mark.parametrize("feature", [f for f in FEATURES if "sql" not in f], ids=lambda f: f["name"])
def test_every_window_kind_equals_the_brute_force_definition(loaded, feature):
    _, _, events, logins, frame = loaded
    rows, time = (logins, "login_time") if feature.get("from") else (events, "ts")
    want = brute_force(events, rows, time, feature)
    got = frame[feature["name"]].tolist()
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if not same(g, w)]
    assert not bad, f"{feature['name']}: event {bad[0]} got {got[bad[0]]}, want {want[bad[0]]}"


def test_the_data_exercises_ties_edges_and_null_parts(loaded):
    _, _, events, logins, _ = loaded
    at_event = logins["login_time"].isin(set(events["ts"]))
    at_edge = logins["login_time"].isin(set(events["ts"] - pd.Timedelta("1h")))
    assert at_event.sum() > 50 and at_edge.sum() > 30
    assert events["device_id"].isna().sum() > 5 and logins["user_id"].isna().sum() > 5


def test_the_filters_drop_rows_and_keep_some(loaded):
    """Each `where:` of FEATURES holds on some rows and not on others, so the brute force above can tell a filter
    that is ignored (or inverted) from one that works."""
    _, _, events, logins, frame = loaded
    for feature in FEATURES:
        if "where" in feature:
            rows = logins if feature.get("from") else events
            kept = WHERE[feature["name"]](rows).fillna(False).astype(bool)
            assert 0.1 < kept.mean() < 0.9, feature["name"]
            unfiltered = {k: v for k, v in feature.items() if k != "where"}
            time = "login_time" if feature.get("from") else "ts"
            assert frame[feature["name"]].tolist() != brute_force(events, rows, time, {**unfiltered, "name": "_"})


@pytest.mark.parametrize("feature, message", [
    ({"name": "x", "count": "*", "from": "logins", "by": "user_id", "window": "1h", "where": "nope = 0"},
     "feature 'x': where: unknown column 'nope'"),
    ({"name": "x", "count": "*", "from": "logins", "by": "user_id", "window": "1h", "where": "spend + 1"},
     "feature 'x': where: must be true/false, but gives DOUBLE"),
    ({"name": "x", "count": "*", "by": "user_id", "window": "1h", "where": "is_fraud = 1"},
     "feature 'x': where: 'is_fraud' is the label"),
    ({"name": "x", "count": "*", "by": "user_id", "window": "1h", "where": "ts > 5"},
     "feature 'x': where: 'ts > 5' compares ts (TIMESTAMP, a time) with 5 (INTEGER, a number)"),
    ({"name": "x", "count": "*", "from": "logins", "by": "user_id", "window": "1h", "where": "spend > 'lots'"},
     "feature 'x': where: 'spend > 'lots'' fails on every row: Could not convert string 'lots' to DOUBLE (spend is "
     "DOUBLE: compare it with a number, without quotes, e.g. spend > 100)"),
    ({"name": "x", "sum": "label", "by": "user_id", "window": "1d", "label_delay": "1d", "where": "amount > 5"},
     "feature 'x': where: a label feature counts every known label"),
    ({"name": "x", "sql": "amount * 2", "where": "amount > 5"}, "takes no aggregate, from, by, window, where"),
    ({"name": "x", "first_seen": "device_id", "by": "user_id", "window": "1d", "where": "amount > 5"},
     "a first_seen feature takes none"),
])
def test_a_bad_where_is_one_line_from_validate_and_load_and_changes_nothing(tmp_path, feature, message, capsys):
    from riskconsole.cli import main

    events, logins = make_events(), make_logins(make_events())
    ws = workspace(tmp_path / "w", events, logins, FEATURES[:1])
    load(ws)
    before = frame_of(ws)
    workspace(tmp_path / "w", events, logins, [feature])
    assert main(["validate", str(ws.dataset_path), "--workspace", str(ws.root)]) == 1
    assert message in capsys.readouterr().err
    with pytest.raises(RiskConsoleError, match=re.escape(message)):
        load(ws)
    pd.testing.assert_frame_equal(frame_of(ws), before)


def test_a_compound_key_with_a_null_part_is_an_empty_window(loaded):
    _, _, events, _, frame = loaded
    no_device = events["device_id"].isna().to_numpy()
    assert (frame.loc[no_device, "s_pair_1d"] == 0).all() and (frame.loc[no_device, "e_pair_1h"] == 0).all()
    assert frame.loc[no_device, "e_pair_amount_1d"].isna().all()


def test_a_derived_feature_reads_a_stream_timestamp(loaded):
    _, _, events, _, frame = loaded
    has = frame["s_last_2d"].notna()
    want = (events["ts"][has] - frame["s_last_2d"][has]).dt.total_seconds()
    assert has.sum() > 50 and (frame["seconds_since_login"][has] == want).all()
    assert (frame["seconds_since_login"][has] > 0).all()  # a login at the order's instant is not "before"


def test_streams_load_with_their_own_counts_and_quarantine(tmp_path):
    events, logins = make_events(), make_logins(make_events())
    logins["login_time"] = logins["login_time"].astype(str)
    logins.loc[3, "login_time"] = "yesterday"
    logins.loc[8, "login_time"] = None
    ws = workspace(tmp_path / "w", events, logins, FEATURES[:1])
    result = load(ws)
    assert result.sources == {"streams.logins": {"read": 500, "loaded": 498, "quarantined": 2}}
    assert "streams.logins: read 500 = loaded 498 + quarantined 2" in result.summary()
    con = duckdb.connect(str(ws.db_path), read_only=True)
    reasons = con.execute("SELECT reason FROM quarantine_logins ORDER BY row").fetchall()
    assert [r[0].split(":")[0] for r in reasons] == ["login_time", "missing time"]
    assert con.execute("SELECT count(*) FROM stream_logins").fetchall() == [(498,)]
    assert "user_id" in [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE stream_logins)").fetchall()]
    con.close()
    assert (ws.root / "data" / "quarantine_logins.csv").read_text().count("\n") == 3


def test_the_future_changes_nothing(tmp_path):
    events, logins = make_events(), make_logins(make_events())
    cut = events["ts"].quantile(0.6)
    early = events[events["ts"] < cut]
    before = workspace(tmp_path / "a", early, logins[logins["login_time"] < cut])
    load(before)
    rng = np.random.default_rng(11)
    later = logins[logins["login_time"] >= cut]
    extra = later.assign(login_time=cut + pd.to_timedelta(rng.integers(0, 86_400, len(later)), unit="s"))
    after = workspace(tmp_path / "b", events, pd.concat([logins[logins["login_time"] < cut], later, extra]))
    load(after)
    a, b = frame_of(before), frame_of(after)
    names = [f["name"] for f in FEATURES]
    merged = a[["event_id", *names]].merge(b[["event_id", *names]], on="event_id", suffixes=("_a", "_b"))
    assert len(merged) == len(early)
    for name in names:
        assert all(same(x, y) for x, y in zip(merged[f"{name}_b"], merged[f"{name}_a"])), name


def test_stream_sql_has_no_exclude_and_transpiles(loaded):
    from riskconsole.config import Dataset
    from riskconsole.sqlbuild import render
    from riskconsole.streams import stream_groups, stream_query

    ws = loaded[0]
    dataset = Dataset.model_validate(yaml.safe_load(ws.dataset_path.read_text()))
    for (stream, keys, bucket), features in stream_groups(dataset).items():
        query = stream_query(dataset, stream, keys, features, "_frame_base", bucket)
        assert "EXCLUDE" not in render(query).upper()
        assert "UNION ALL" in render(query, "spark")


@pytest.mark.parametrize("sweep", [False, True])
def test_stream_and_lookup_sql_transpiles_to_spark(sweep):
    """Every union, bucketed window, distinct sweep (`sweep`: the Spark engine's plan) and join renders for Spark
    with no DuckDB-only function (DESIGN §7)."""
    from riskconsole.config import Dataset
    from riskconsole.features import frame_query
    from riskconsole.lookups import lookup_groups, lookup_query
    from riskconsole.streams import stream_groups, stream_query
    from test_portability import _spark
    from test_tables import FEATURES as LOOKUPS, TABLES

    dataset = Dataset.model_validate({**BASE_DATASET, "streams": {"logins": STREAM}, "tables": TABLES,
                                      "features": FEATURES + LOOKUPS})
    joins = {}
    for i, ((stream, keys, bucket), features) in enumerate(stream_groups(dataset, sweep).items()):
        sql = _spark(stream_query(dataset, stream, keys, features, "_frame_base", bucket, sweep=sweep))
        distinct = any(f.agg == "count_distinct" for f in features)
        blocks = any(f.agg in ("min", "max", "stddev") for f in features) and sweep  # block_windows
        assert "UNION ALL" in sql and "EXCLUDE" not in sql and ("DIV" in sql) == (bucket is not None or bool(blocks))
        assert ("COLLECT_SET" in sql) == (distinct and not sweep) and ("LEAD(" in sql) == (distinct and sweep)
        assert ("RANGE BETWEEN" in sql) == (not sweep or any(f.agg not in ("min", "max", "stddev", "count_distinct")
                                                             for f in features))
        joins[f"_s{i}"] = features
    for i, (name, features) in enumerate(lookup_groups(dataset).items()):
        sql = _spark(lookup_query(dataset, name, features, "_frame_base"))
        assert "ASOF" not in sql.upper()
        joins[f"_l{i}"] = features
    columns = ["event_id", "ts", "is_fraud", "label_ts", "amount", "user_id", "device_id", "merchant_id", "ip_num"]
    assert "LEFT JOIN" in _spark(frame_query(dataset, columns, "x", joins=joins))


def test_the_data_page_says_what_a_filtered_window_keeps():
    from riskconsole.config import Feature
    from riskconsole.overview import _definition

    feature = Feature.model_validate({"name": "failed_24h", "count": "*", "from": "logins", "by": "user_id",
                                      "window": "24h", "where": "NOT success"})
    assert _definition(feature) == "count(*) of logins where NOT success by user_id over the previous 24h"


def test_side_tables_joined_in_steps_give_the_frame_of_one_join(loaded, tmp_path, monkeypatch):
    """The frame joins its side tables to the events' positions a few at a time (features.JOIN_STEP): however
    many a step takes, the frame is the same, column for column and in the same order."""
    from riskconsole import features
    from riskconsole.config import Dataset

    ws, _, _, _, frame = loaded
    dataset = Dataset.model_validate(yaml.safe_load(ws.dataset_path.read_text()))
    plan = features.frame_plan(dataset, list(make_events().columns), "x")
    assert len(plan.joins) > features.JOIN_STEP  # this data set does take several steps
    assert len(plan.joined) == -(-len(plan.joins) // features.JOIN_STEP)
    for step in (1, 1000):
        monkeypatch.setattr(features, "JOIN_STEP", step)
        other = workspace(tmp_path / str(step), make_events(), make_logins(make_events()))
        load(other)
        pd.testing.assert_frame_equal(frame_of(other), frame)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_distinct_counts_by_sweep_equal_duckdbs_distinct_window(seed):
    """`distinct_sweep` (a keyed count_distinct as intervals and one running sum) gives DuckDB's own
    `count(DISTINCT x) OVER (… RANGE BETWEEN n PRECEDING AND 1 PRECEDING)` on rows with a busy key, one or two key
    columns, values repeated at one instant and across instants, NULL values, windows of several lengths and query
    rows that are not data rows."""
    from riskconsole.config import Feature
    from riskconsole.streams import distinct_sweep

    rng = np.random.default_rng(seed)
    n = 3000
    k = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 30, n))
    rows = pd.DataFrame({"a": k, "b": rng.integers(0, 2, n),
                         "_t": np.sort(rng.integers(0, 400, n) * 1_000_000 + rng.choice([-1, 0, 0, 1], n)),
                         "__x0": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 40, n)), dtype="Int64"),
                         "__x1": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64")})
    asked = pd.DataFrame({"a": rng.integers(0, 30, 500), "b": rng.integers(0, 2, 500),
                          "_t": rng.integers(-5, 420, 500) * 1_000_000, "_pos": np.arange(500)})
    con = duckdb.connect()
    con.register("d", rows)
    con.register("q", asked)
    features = [Feature(name="f0", count_distinct="x", by="a", window="37s"),
                Feature(name="f1", count_distinct="x", by="a", window="2m")]
    for keys in (("a",), ("a", "b")):
        query = distinct_sweep(sqlglot.parse_one("SELECT * FROM d"), sqlglot.parse_one("SELECT * FROM q"), keys,
                               features)
        got = con.execute(f"SELECT * FROM ({query.sql(dialect='duckdb')}) ORDER BY _pos").fetchall()
        part = ", ".join(keys)
        want = con.execute(
            "WITH u AS (SELECT " + part + ", _t, NULL AS _pos, __x0, __x1 FROM d UNION ALL SELECT " + part
            + ", _t, _pos, NULL, NULL FROM q) SELECT _pos, "
            f"count(DISTINCT __x0) OVER (PARTITION BY {part} ORDER BY _t RANGE BETWEEN 37000000 PRECEDING AND 1 PRECEDING), "
            f"count(DISTINCT __x1) OVER (PARTITION BY {part} ORDER BY _t RANGE BETWEEN 120000000 PRECEDING AND 1 PRECEDING) "
            "FROM u QUALIFY _pos IS NOT NULL ORDER BY _pos").fetchall()
        assert got == want and len(got) == 500
        assert sum(1 for r in want if r[1] > 3) > 50 and sum(1 for r in want if r[1] == 0) > 10


@pytest.mark.parametrize("seed", [1, 2])
def test_a_by_less_distinct_count_by_sweep_equals_duckdbs_bucketed_window(seed):
    """A distinct count over every event or stream row (no `by:`), as Spark computes it (`stream_query(sweep=True)`:
    one sweep per time bucket, its rows and the previous bucket's) equals DuckDB's bucketed DISTINCT window, beside
    a by-less count of the same group, on rows with repeated values, NULL values, times before 1970 and a
    microsecond either side of a bucket's edge."""
    from riskconsole.config import Dataset
    from riskconsole.streams import stream_groups, stream_query

    rng = np.random.default_rng(seed)
    n, m = 2500, 1500
    base = pd.DataFrame({"_t": np.sort(rng.integers(-200, 400, n) * 7_400_000 + rng.choice([-1, 0, 0, 1], n)),
                         "_pos": np.arange(n),
                         "user_id": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 60, n)),
                                             dtype="Int64")})
    logins = pd.DataFrame({"login_time": pd.to_datetime(rng.integers(-200, 400, m) * 7_400_000
                                                        + rng.choice([-1, 0, 1], m), unit="us"),
                           "device_id": pd.array(np.where(rng.random(m) < 0.1, None, rng.integers(0, 25, m)),
                                                 dtype="Int64")})
    con = duckdb.connect()
    con.register("_frame_base", base)
    con.register("stream_logins", logins)
    features = [{"name": "e_users_37s", "count_distinct": "user_id", "window": "37s"},
                {"name": "e_all_37s", "count": "*", "window": "37s"},
                {"name": "s_devices_37s", "count_distinct": "device_id", "from": "logins", "window": "37s"}]
    dataset = Dataset.model_validate({**BASE_DATASET, "streams": {"logins": STREAM}, "features": features})
    groups = stream_groups(dataset, True)
    assert stream_groups(dataset, False) == groups and len(groups) == 2
    for (stream, keys, bucket), group in groups.items():
        results = []
        for sweep in (False, True):
            sql = stream_query(dataset, stream, keys, group, "_frame_base", bucket, sweep=sweep).sql(dialect="duckdb")
            names = ", ".join(f.name for f in group)  # the sweep's part comes after the count's
            results.append(con.execute(f"SELECT _pos, {names} FROM ({sql}) ORDER BY _pos").fetchall())
            assert ("lead(" in sql.lower()) == sweep
        assert results[0] == results[1] and len(results[0]) == n
        assert sum(1 for r in results[0] if r[1] > 1) > n // 4  # windows with several values


@pytest.mark.parametrize("seed", [1, 2])
def test_minima_maxima_and_deviations_in_blocks_equal_duckdbs_windows(seed):
    """`block_windows` (a keyed min/max/stddev window as the end of the previous block and the start of the current
    one, both running frames) gives DuckDB's own `min/max/stddev_samp(x) OVER (… RANGE BETWEEN n PRECEDING AND 1
    PRECEDING)` on rows with a busy key, one or two key columns, ties, NULL values, times before 1970 and at block
    edges, numbers and timestamps, and query rows that are not data rows (the standard deviation to 1e-9: the parts
    are combined by Chan's formula, rounded in another order)."""
    from riskconsole.config import Feature
    from riskconsole.streams import block_windows

    rng = np.random.default_rng(seed)
    n = 3000
    k = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 30, n))
    t = np.sort(rng.integers(-200, 400, n) * 1_000_000 + rng.choice([-1, 0, 0, 1], n))  # 1 µs either side of an edge
    rows = pd.DataFrame({"a": k, "b": rng.integers(0, 2, n), "_t": t,
                         "__x0": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(-50, 500, n)), dtype="Int64"),
                         "__x1": pd.to_datetime(rng.integers(0, 10**9, n), unit="s")})
    asked = pd.DataFrame({"a": rng.integers(0, 30, 600), "b": rng.integers(0, 2, 600),
                          "_t": np.concatenate([rng.integers(-210, 420, 500), np.arange(-200, 400, 6)[:100]]) * 1_000_000,
                          "_pos": np.arange(600)})
    con = duckdb.connect()
    con.register("d", rows)
    con.register("q", asked)
    features = [Feature(name="f0", max="x", by="a", window="37s"), Feature(name="f1", min="x", by="a", window="37s")]
    for keys in ((), ("a",), ("a", "b")):
        for x in ("__x0", "__x1"):
            data = sqlglot.parse_one(f"SELECT a, b, _t, {x} AS __x0, {x} AS __x1 FROM d")
            query = block_windows(data, sqlglot.parse_one("SELECT * FROM q"), keys, features)
            got = con.execute(f"SELECT * FROM ({query.sql(dialect='duckdb')}) ORDER BY _pos").fetchall()
            part = "".join(f"{key}, " for key in keys)
            w = (f"OVER ({'PARTITION BY ' + part.rstrip(', ') if keys else ''} ORDER BY _t "
                 "RANGE BETWEEN 37000000 PRECEDING AND 1 PRECEDING)")
            want = con.execute(
                f"WITH u AS (SELECT {part}_t, NULL AS _pos, {x} AS v FROM d UNION ALL SELECT {part}_t, _pos, NULL "
                f"FROM q) SELECT _pos, max(v) {w}, min(v) {w} FROM u QUALIFY _pos IS NOT NULL ORDER BY _pos").fetchall()
            assert got == want and len(got) == 600
            assert sum(1 for r in want if r[1] is None) > 3 and sum(1 for r in want if r[1] != r[2]) > 100
        spread = [Feature(name="f2", stddev="x", by="a", window="37s")]
        query = block_windows(sqlglot.parse_one("SELECT a, b, _t, __x0 FROM d"), sqlglot.parse_one("SELECT * FROM q"),
                              keys, spread)
        got = con.execute(f"SELECT * FROM ({query.sql(dialect='duckdb')}) ORDER BY _pos").fetchall()
        want = con.execute(
            f"WITH u AS (SELECT {part}_t, NULL AS _pos, __x0 AS v FROM d UNION ALL SELECT {part}_t, _pos, NULL "
            f"FROM q) SELECT _pos, stddev_samp(CAST(v AS DOUBLE)) {w} FROM u QUALIFY _pos IS NOT NULL "
            "ORDER BY _pos").fetchall()
        assert [p for p, _ in got] == [p for p, _ in want]
        assert all((a is None) == (b is None) and (a is None or a == pytest.approx(b, rel=1e-9, abs=1e-9))
                   for (_, a), (_, b) in zip(got, want))
        assert sum(1 for _, v in want if v is None) > 3 and sum(1 for _, v in want if v) > 100


def test_the_data_pages_load_says_each_sources_counts_on_a_line_of_its_own(tmp_path, monkeypatch):
    """The load box's label is one line: every other source's 'read = loaded + quarantined' ran together in it."""
    from conftest import console_page

    ws = workspace(tmp_path / "ws", make_events(), make_logins(make_events()))
    load(ws)
    at = console_page(monkeypatch, ws.root, "data_page")
    next(b for b in at.button if b.label == "Load dataset").click().run()
    assert not at.exception
    lines = [t.value for t in at.text if "read " in t.value]
    assert lines == ["streams.logins: read 500 = loaded 500 + quarantined 0"]
