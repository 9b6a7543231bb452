"""Graph and first_seen features (DESIGN §2.2) against a from-scratch recomputation per event.

For every event the brute force rebuilds its day's graph with networkx from the raw rows in
[start(D) - window, start(D)) and reads component size, degree and fraud share; first_seen is a plain loop.
"""

from __future__ import annotations

import duckdb
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.config import Dataset, parse_model
from riskconsole.errors import ConfigError
from riskconsole.features import build_frame
from riskconsole.graphs import graph_side_table

DAY = pd.Timedelta(days=1)
COLUMNS = {"id": "event_id", "time": "ts", "label": "is_fraud", "label_time": "label_ts", "amount": "amount",
           "entities": ["user_id", "device_id", "payment_id"]}
GRAPH = [
    {"name": "ring_size", "graph": "component_size", "node": "user_id", "links": ["device_id", "payment_id"],
     "window": "3d", "max_degree": 4},
    {"name": "ring_degree", "graph": "degree", "node": "user_id", "links": ["device_id", "payment_id"],
     "window": "3d", "max_degree": 4},
    {"name": "ring_fraud", "graph": "fraud_share", "node": "user_id", "links": ["device_id", "payment_id"],
     "window": "3d", "max_degree": 4, "label_delay": "1d"},
    {"name": "ring_fraud_now", "graph": "fraud_share", "node": "user_id", "links": ["device_id", "payment_id"],
     "window": "3d", "max_degree": 4},
    {"name": "open_size", "graph": "component_size", "node": "user_id", "links": ["device_id"], "window": "2d"},
    {"name": "open_degree", "graph": "degree", "node": "user_id", "links": ["device_id", "payment_id"],
     "window": "2d"},
    {"name": "new_device", "first_seen": "device_id", "by": "user_id", "window": "2d"},
]


def make_data(seed: int, n: int = 160, days: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders and logins (user, device: no payment column) with NULLs, a hub device and ties in time."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-03-01")
    seconds = np.sort(rng.integers(0, days * 86_400, n))
    seconds[3:6] = seconds[3]
    label = rng.choice([1.0, 0.0, np.nan], n, p=[0.25, 0.6, 0.15])
    delay = pd.to_timedelta(rng.integers(3_600, 3 * 86_400, n), unit="s")
    ts = start + pd.to_timedelta(seconds, unit="s")
    users = pd.array(rng.integers(1, 40, n), dtype="Int64")
    users[rng.random(n) < 0.05] = pd.NA
    devices = pd.array(np.where(rng.random(n) < 0.15, 99, rng.integers(1, 30, n)), dtype="Int64")  # 99: a hub
    devices[rng.random(n) < 0.05] = pd.NA
    events = pd.DataFrame({
        "event_id": [f"e{i:04d}" for i in range(n)], "ts": ts, "is_fraud": pd.array(label, dtype="Int8"),
        "label_ts": pd.Series(ts + delay).where(~np.isnan(label)), "amount": rng.gamma(2.0, 50.0, n),
        "user_id": users, "device_id": devices, "payment_id": rng.choice(["p" + str(i) for i in range(25)], n)})
    m = n // 2
    logins = pd.DataFrame({"login_ts": start + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, m)), unit="s"),
                           "user_id": pd.array(rng.integers(1, 40, m), dtype="Int64"),
                           "device_id": pd.array(rng.integers(1, 30, m), dtype="Int64")})
    return events, logins


def dataset_of(features: list[dict], streams: bool = True) -> Dataset:
    spec = {"source": "x.csv", "columns": COLUMNS, "features": features}
    if streams:
        spec["streams"] = {"logins": {"source": "l.csv", "columns": {"time": "login_ts"}},
                           "clicks": {"source": "c.csv", "columns": {"time": "click_ts"}}}
    return Dataset.model_validate(spec)


def frame(events: pd.DataFrame, logins: pd.DataFrame, features: list[dict] = GRAPH) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE events AS SELECT * FROM events")
    con.execute("CREATE TABLE stream_logins AS SELECT * FROM logins")
    con.execute("CREATE TABLE stream_clicks AS SELECT login_ts AS click_ts, device_id FROM logins")  # no node: unused
    build_frame(con, dataset_of(features), "data/dataset.yaml")
    return con.execute("SELECT * FROM frame ORDER BY event_id").df()


def brute_day(events: pd.DataFrame, logins: pd.DataFrame, f: dict, day: pd.Timestamp) -> tuple[nx.Graph, set]:
    """The day's graph rebuilt from scratch out of the raw rows of its window, and its known fraud users."""
    lo = day - pd.Timedelta(f["window"].upper())
    rows = [events[["ts", "user_id", "device_id", "payment_id"]],
            logins.rename(columns={"login_ts": "ts"}).assign(payment_id=None)]
    rows = pd.concat([r[(r.ts >= lo) & (r.ts < day)] for r in rows])
    g = nx.Graph()
    for link in f["links"]:
        for _, users in rows.dropna(subset=["user_id", link]).groupby(link).user_id:
            users = sorted(set(users))
            if len(users) <= f.get("max_degree", len(users)):
                g.add_edges_from((a, b) for a in users for b in users if a < b)
    until = day - pd.Timedelta(f.get("label_delay", "0d").upper())
    known = events[(events.is_fraud == 1) & (events.ts >= lo) & (events.ts < until)
                   & (events.label_ts.isna() | (events.label_ts < day))]
    return g, set(known.user_id.dropna())


def brute_graph(day_graph, f: dict, user) -> float | None:
    """One feature of a user in its day's graph."""
    if pd.isna(user):
        return None
    g, fraud = day_graph
    if user not in g:
        return {"component_size": 1, "degree": 0, "fraud_share": 0.0}[f["graph"]]
    if f["graph"] == "degree":
        return g.degree(user)
    comp = nx.node_connected_component(g, user)
    if f["graph"] == "component_size":
        return len(comp)
    others = comp - {user}
    return len(others & fraud) / len(others)


def brute_first_seen(events: pd.DataFrame, event: pd.Series) -> float | None:
    if pd.isna(event.user_id) or pd.isna(event.device_id):
        return None
    e = events
    seen = (e.user_id == event.user_id) & (e.device_id == event.device_id) & (e.ts < event.ts) & (
        e.ts >= event.ts - 2 * DAY)
    return 0 if seen.fillna(False).any() else 1


def _same(got, want) -> bool:
    if want is None or pd.isna(got):
        return want is None and pd.isna(got)
    return abs(float(got) - float(want)) < 1e-9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_graph_features_equal_a_graph_rebuilt_per_event(seed):
    events, logins = make_data(seed)
    got = frame(events, logins).set_index("event_id")
    checked = 0
    for f in GRAPH[:-1]:
        days = {d: brute_day(events, logins, f, d) for d in events.ts.dt.floor("D").unique()}
        for _, event in events.iterrows():
            want = brute_graph(days[event.ts.floor("D")], f, event.user_id)
            assert _same(got.loc[event.event_id, f["name"]], want), (seed, event.event_id, f["name"], want)
            checked += want is not None and want not in (0, 1)
    assert checked > 100  # the data holds real rings, not only lonely nodes


def test_the_data_has_hubs_stream_only_links_and_fraud_rings():
    events, logins = make_data(1)
    got = frame(events, logins)
    assert (got.ring_size < got.open_size).any()  # max_degree cut a hub that joined rings
    assert ((got.ring_fraud > 0) & (got.ring_fraud < 1)).any()
    assert (got.ring_fraud != got.ring_fraud_now).any()  # the delay matters
    alone = frame(events, logins.iloc[:0])
    assert (alone.open_size != got.open_size).any()  # logins link users the orders do not


def test_first_seen_equals_a_plain_loop():
    events, logins = make_data(4)
    got = frame(events, logins).set_index("event_id")
    want = [brute_first_seen(events, e) for _, e in events.iterrows()]
    assert all(_same(got.loc[e, "new_device"], w) for e, w in zip(events.event_id, want))
    assert {0, 1} <= set(w for w in want if w is not None)


def test_tomorrow_changes_nothing_today():
    """Tomorrow's rows (new links, fraud labels) and labels of past events known only tomorrow change no value
    of an event before the cut."""
    events, logins = make_data(5)
    cut = pd.Timestamp("2026-03-05")
    past = events[events.ts < cut]
    before = frame(past, logins[logins.login_ts < cut])
    rng = np.random.default_rng(0)
    future = events[events.ts >= cut]
    future = future.assign(is_fraud=pd.array(np.ones(len(future)), dtype="Int8"), label_ts=future.ts,
                           user_id=pd.array(rng.integers(1, 40, len(future)), dtype="Int64"))
    unknown = past.is_fraud.fillna(0).to_numpy() == 0
    relabelled = past.assign(is_fraud=pd.array(np.where(unknown, 1, past.is_fraud), dtype="Int8"),
                             label_ts=past.label_ts.where(~unknown, cut + DAY))
    after = frame(pd.concat([relabelled, future]), logins)
    assert len(after) > len(before) and after.ring_fraud.max() > 0
    mine = after[after.event_id.isin(before.event_id)].reset_index(drop=True)
    for f in GRAPH:
        pd.testing.assert_series_equal(mine[f["name"]], before[f["name"]], check_dtype=False)


def test_the_interface_computes_for_any_base_table():
    """graph_side_table over a base of entity-periods (only the node, `_t`, `_pos`): a row per base row."""
    events, logins = make_data(1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE events AS SELECT * FROM events")
    con.execute("CREATE TABLE stream_logins AS SELECT * FROM logins")
    con.execute("CREATE TABLE stream_clicks AS SELECT login_ts AS click_ts, device_id FROM logins")
    con.execute("CREATE TABLE periods AS SELECT user_id, epoch_us(TIMESTAMP '2026-03-05 12:00') AS _t, "
                "row_number() OVER () + 100 AS _pos FROM (SELECT DISTINCT user_id FROM events)")
    dataset = dataset_of(GRAPH)
    graph_side_table(con, dataset, dataset.features, "periods", "_g")
    got = con.execute("SELECT p.user_id, g.* FROM periods p JOIN _g g USING (_pos)").df()
    table = con.execute("SELECT * FROM _g").df()
    assert len(got) == len(table) == con.execute("SELECT count(*) FROM periods").fetchall()[0][0]
    assert list(table.columns) == ["_pos"] + [f["name"] for f in GRAPH[:-1]]
    for f in GRAPH[:-1]:
        day = brute_day(events, logins, f, pd.Timestamp("2026-03-05"))
        assert all(_same(row[f["name"]], brute_graph(day, f, row.user_id)) for _, row in got.iterrows())


BAD = [
    ({"graph": "component_size", "node": "user_id", "links": ["no_such"], "window": "3d"}, "links: 'no_such'"),
    ({"graph": "component_size", "node": "nobody", "links": ["device_id"], "window": "3d"}, "node: 'nobody'"),
    ({"graph": "component_size", "node": "User_ID", "links": ["device_id"], "window": "3d"},
     "node: 'User_ID' is not a column of the decision events (did you mean 'user_id'?)"),
    ({"graph": "component_size", "node": "user_id", "links": ["device_idd"], "window": "3d"},
     "links: 'device_idd' is not a column of the decision events nor of a stream holding 'user_id' (did you mean "
     "'device_id'?)"),
    ({"graph": "component_size", "node": "user_id", "links": ["device_id"], "window": "3d", "max_degree": 0},
     "max_degree: at least 1"),
    ({"graph": "ring", "node": "user_id", "links": ["device_id"], "window": "3d"}, "unknown kind 'ring'"),
    ({"graph": "component_size", "node": "user_id", "links": ["device_id"], "window": "3d", "label_delay": "1d"},
     "label_delay is only for graph: fraud_share"),
    ({"graph": "degree", "node": "user_id", "links": ["device_id"], "window": "36h"}, "whole days"),
    ({"graph": "degree", "node": "user_id", "links": ["is_fraud"], "window": "3d"}, "the label"),
    ({"first_seen": "no_such", "by": "user_id", "window": "3d"}, "first_seen: unknown column 'no_such'"),
    ({"first_seen": "device_id", "by": "nobody", "window": "3d"}, "by: unknown column 'nobody'"),
    ({"node": "user_id", "count": "*", "by": "user_id", "window": "3d"}, "are for graph features"),
]


@pytest.mark.parametrize("spec,message", BAD)
def test_bad_input_is_one_line_naming_file_and_feature(spec, message):
    events, logins = make_data(1, n=20)
    before = frame(events, logins, [{"name": "x", "count": "*", "by": "user_id", "window": "1d"}])
    with pytest.raises(ConfigError) as err:
        data = {"source": "x.csv", "columns": COLUMNS, "features": [{"name": "bad", **spec}],
                "streams": {"logins": {"source": "l.csv", "columns": {"time": "login_ts"}}}}
        parse_model(data, Dataset, "data/dataset.yaml")
        frame(events, logins, [{"name": "bad", **spec}])
    text = str(err.value)
    assert "\n" not in text and text.startswith("data/dataset.yaml") and "bad" in text and message in text, text
    assert before.x.notna().any()


def test_fraud_share_needs_a_label():
    events, logins = make_data(1, n=20)
    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT * EXCLUDE (is_fraud, label_ts) FROM events")
    spec = {"source": "x.csv", "columns": {"id": "event_id", "time": "ts"},
            "features": [{"name": "bad", **GRAPH[3]} | {"name": "bad"}]}
    with pytest.raises(ConfigError, match="data/dataset.yaml: feature 'bad': fraud_share needs a label column"):
        build_frame(con, Dataset.model_validate(spec), "data/dataset.yaml")


def test_stddev_and_amount_z_equal_a_plain_loop_and_render_for_spark():
    from sqlglot.errors import ErrorLevel

    from riskconsole.dialects import spark
    from riskconsole.features import window_column

    profile = [{"name": "user_avg_2d", "avg": "amount", "by": "user_id", "window": "2d"},
               {"name": "user_std_2d", "stddev": "amount", "by": "user_id", "window": "2d"},
               {"name": "amount_z", "sql": "(amount - user_avg_2d) / nullif(user_std_2d, 0)"}]
    events, logins = make_data(7)
    got = frame(events, logins, profile).set_index("event_id")
    for _, e in events.iterrows():
        prior = events[(events.user_id == e.user_id) & (events.ts < e.ts) & (events.ts >= e.ts - 2 * DAY)].amount
        want = None if pd.isna(e.user_id) or len(prior) < 2 else prior.std(ddof=1)
        assert _same(got.loc[e.event_id, "user_std_2d"], want)
        z = None if want is None or want == 0 else (e.amount - prior.mean()) / want
        assert _same(got.loc[e.event_id, "amount_z"], z)
    dataset = dataset_of(profile)
    sql = window_column(dataset.features[1], dataset).sql(dialect=spark(), unsupported_level=ErrorLevel.RAISE)
    assert "STDDEV_SAMP(CAST(" in sql and "RANGE BETWEEN" in sql.upper()


def test_validate_and_load_refuse_a_bad_link_and_change_nothing(tmp_path):
    from riskconsole.ingest import load
    from riskconsole.validate import validate_file
    from conftest import write_workspace

    events, _ = make_data(1, n=40)
    dataset = {"source": "data/events.csv", "columns": COLUMNS, "features": GRAPH[:1] + GRAPH[-1:]}
    ws = write_workspace(tmp_path, events, dataset)
    assert "2 features" in validate_file(ws, ws.dataset_path)
    load(ws)
    frame_before = duckdb.connect(str(ws.root / "data" / "console.duckdb")).execute("SELECT * FROM frame").df()
    bad = {**GRAPH[0], "links": ["device_id", "payment_idd"]}
    ws.dataset_path.write_text(yaml.safe_dump({**dataset, "features": [bad]}, sort_keys=False))
    for run in (lambda: validate_file(ws, ws.dataset_path), lambda: load(ws)):
        with pytest.raises(ConfigError, match=r"^data/dataset.yaml: feature 'ring_size': links: 'payment_idd' is not"):
            run()
    after = duckdb.connect(str(ws.root / "data" / "console.duckdb")).execute("SELECT * FROM frame").df()
    pd.testing.assert_frame_equal(after, frame_before)
