"""Table lookups (DESIGN §2.1): key joins, as-of joins (`valid_from`) and range joins compared with a brute force,
versions at exactly t, overlaps and gaps, quarantined repeats, and later updates that never leak back."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.ingest import load
from conftest import BASE_DATASET, random_events, write_workspace

TABLES = {
    "merchants": {"source": "data/merchants.csv", "key": "merchant_id", "valid_from": "updated_at"},
    "devices": {"source": "data/devices.csv", "key": "device_id"},
    "ip_ranges": {"source": "data/ip_ranges.csv", "range": {"value": "ip_num", "low": "ip_low", "high": "ip_high"}},
}
FEATURES = [
    {"name": "merchant_category", "lookup": "merchants.category"},
    {"name": "merchant_score", "lookup": "merchants.score"},
    {"name": "merchant_since", "lookup": "merchants.updated_at"},
    {"name": "device_kind", "lookup": "devices.kind"},
    {"name": "ip_country", "lookup": "ip_ranges.country"},
    {"name": "ip_low_seen", "lookup": "ip_ranges.ip_low"},
    {"name": "days_since_update", "sql": "date_diff('day', merchant_since, ts)"},
]


def make_events(seed: int = 8, n: int = 300) -> pd.DataFrame:
    events = random_events(n=n, seed=seed, days=4)
    events["ts"] = events["ts"].dt.floor("h")  # versions placed on the hour hit event times exactly
    rng = np.random.default_rng(seed)
    events["ip_num"] = pd.array(rng.integers(0, 1_000, n), dtype="Int64")
    events.loc[events.index % 29 == 2, "ip_num"] = pd.NA
    return events


def make_merchants(events: pd.DataFrame, seed: int = 9) -> pd.DataFrame:
    """Several versions per merchant (100..104; 105 has none), some at an event's exact time, one before all."""
    rng = np.random.default_rng(seed)
    rows = []
    for merchant in range(100, 105):
        times = set(rng.choice(events["ts"].to_numpy(), 3, replace=False))  # exactly at some event's time
        times |= {events["ts"].min() + pd.Timedelta(hours=int(h)) + pd.Timedelta(minutes=7)
                  for h in rng.integers(0, 96, 3)}
        if merchant % 2:
            times.add(events["ts"].min() - pd.Timedelta("1D"))
        for t in sorted(pd.Timestamp(x) for x in times):
            rows.append({"merchant_id": merchant, "category": str(rng.choice(["books", "toys", "gift_cards"])),
                         "score": float(rng.integers(0, 100)), "updated_at": t})
    return pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)


def make_ranges() -> pd.DataFrame:
    """Ranges with gaps (no match) and overlaps (the first by low wins)."""
    lows = [0, 50, 90, 200, 260, 300, 500, 520, 700, 880]
    highs = [39, 120, 95, 249, 410, 310, 599, 530, 799, 999]
    return pd.DataFrame({"ip_low": lows, "ip_high": highs, "country": [f"c{i}" for i in range(len(lows))]})


def workspace(root, events, merchants, ranges=None, features=FEATURES):
    dataset = {**BASE_DATASET, "tables": TABLES, "features": features}
    ws = write_workspace(root, events, dataset)
    merchants.to_csv(root / "data" / "merchants.csv", index=False)
    pd.DataFrame({"device_id": range(1, 12), "kind": [f"k{i % 3}" for i in range(1, 12)]}).to_csv(
        root / "data" / "devices.csv", index=False)
    (make_ranges() if ranges is None else ranges).to_csv(root / "data" / "ip_ranges.csv", index=False)
    return ws


def frame_of(ws) -> pd.DataFrame:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute("SELECT * FROM frame ORDER BY _pos").df()
    finally:
        con.close()


def asof(events: pd.DataFrame, merchants: pd.DataFrame, column: str) -> list:
    out = []
    for event in events.to_dict("records"):
        rows = merchants[(merchants["merchant_id"] == event["merchant_id"]) & (merchants["updated_at"] <= event["ts"])]
        out.append(None if rows.empty else rows.sort_values("updated_at").iloc[-1][column])
    return out


def in_range(events: pd.DataFrame, ranges: pd.DataFrame, column: str) -> list:
    out = []
    for value in events["ip_num"]:
        rows = ranges if pd.isna(value) else ranges[(ranges["ip_low"] <= value) & (value <= ranges["ip_high"])]
        out.append(None if pd.isna(value) or rows.empty else rows.sort_values(["ip_low", "ip_high"]).iloc[0][column])
    return out


def same(got, want) -> bool:
    if want is None or (not isinstance(want, str) and pd.isna(want)):
        return got is None or (not isinstance(got, str) and pd.isna(got))
    if isinstance(want, str):
        return got == want
    if isinstance(want, pd.Timestamp):
        return pd.Timestamp(got) == want
    return float(got) == float(want)


def assert_column(got: pd.Series, want: list, name: str) -> None:
    bad = [i for i, (g, w) in enumerate(zip(got.tolist(), want)) if not same(g, w)]
    assert not bad, f"{name}: event {bad[0]} got {got.iloc[bad[0]]!r}, want {want[bad[0]]!r}"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    events = make_events()
    merchants = make_merchants(events)
    ws = workspace(tmp_path_factory.mktemp("tables"), events, merchants)
    result = load(ws)
    return ws, result, events.sort_values(["ts", "event_id"]).reset_index(drop=True), merchants, frame_of(ws)


@pytest.mark.parametrize("name, column", [("merchant_category", "category"), ("merchant_score", "score"),
                                          ("merchant_since", "updated_at")])
def test_as_of_lookup_is_the_row_in_force_at_t(loaded, name, column):
    _, _, events, merchants, frame = loaded
    assert_column(frame[name], asof(events, merchants, column), name)


def test_the_as_of_data_has_versions_at_exactly_t_and_events_before_any(loaded):
    _, _, events, merchants, frame = loaded
    assert merchants["updated_at"].isin(set(events["ts"])).sum() >= 10
    assert frame["merchant_category"].isna().sum() > 10  # before the first version, or merchant 105
    assert (frame.loc[frame["merchant_since"].notna(), "merchant_since"] <= events["ts"][frame["merchant_since"].notna()]).all()


@pytest.mark.parametrize("name, column", [("ip_country", "country"), ("ip_low_seen", "ip_low")])
def test_range_lookup_is_the_first_range_by_low_that_holds_the_value(loaded, name, column):
    _, _, events, _, frame = loaded
    assert_column(frame[name], in_range(events, make_ranges(), column), name)


def test_range_data_has_gaps_overlaps_and_the_load_warns(loaded):
    _, result, events, _, frame = loaded
    assert frame["ip_country"].isna().sum() > 10 and frame["ip_country"].notna().sum() > 100
    warning = [w for w in result.warnings if "tables.ip_ranges" in w]
    assert len(warning) == 1 and "3 ranges overlap an earlier one (the first at ip_low = 90)" in warning[0] and "\n" not in warning[0]


def test_key_lookup_and_text_stays_text(loaded):
    ws, _, events, _, frame = loaded
    want = [f"k{d % 3}" if 1 <= d <= 11 else None for d in events["device_id"]]
    assert_column(frame["device_kind"], want, "device_kind")
    con = duckdb.connect(str(ws.db_path), read_only=True)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE frame)").fetchall())
    con.close()
    assert types["device_kind"] == "VARCHAR" and types["merchant_since"] == "TIMESTAMP"
    assert types["merchant_score"] == "DOUBLE"


def test_derived_features_read_lookups(loaded):
    _, _, events, _, frame = loaded
    has = frame["merchant_since"].notna()
    want = (events["ts"][has].dt.normalize() - frame["merchant_since"][has].dt.normalize()).dt.days
    assert (frame["days_since_update"][has] == want).all()


def test_a_repeated_version_is_quarantined_and_the_first_wins(tmp_path):
    events = make_events()
    merchants = make_merchants(events)
    repeat = merchants.iloc[[0]].assign(category="REPEATED")
    ws = workspace(tmp_path / "w", events, pd.concat([merchants, repeat]))
    result = load(ws)
    assert result.sources["tables.merchants"] == {"read": len(merchants) + 1, "loaded": len(merchants),
                                                  "quarantined": 1}
    con = duckdb.connect(str(ws.db_path), read_only=True)
    assert con.execute("SELECT reason FROM quarantine_merchants").fetchall() == [("duplicate merchant_id, updated_at",)]
    assert con.execute("SELECT count(*) FROM table_merchants WHERE category = 'REPEATED'").fetchall() == [(0,)]
    con.close()


def test_later_table_updates_never_leak_back(tmp_path):
    events = make_events()
    merchants = make_merchants(events)
    cut = events["ts"].quantile(0.5)
    before = workspace(tmp_path / "a", events, merchants[merchants["updated_at"] < cut])
    load(before)
    rng = np.random.default_rng(3)
    later = pd.DataFrame({"merchant_id": rng.integers(100, 106, 40), "category": "LATER",
                          "score": -1.0, "updated_at": cut + pd.to_timedelta(rng.integers(1, 3 * 86_400, 40), unit="s")})
    after = workspace(tmp_path / "b", events, pd.concat([merchants, later]).drop_duplicates(["merchant_id", "updated_at"]))
    load(after)
    a, b = frame_of(before), frame_of(after)
    early = (a["ts"] < cut).to_numpy()
    for name in ("merchant_category", "merchant_score", "merchant_since"):
        assert [same(x, y) for x, y in zip(a.loc[early, name], b.loc[early, name])] == [True] * int(early.sum()), name
    assert "LATER" not in set(b.loc[early, "merchant_category"].dropna())


def test_a_text_lookup_compared_with_a_number_is_a_one_line_error(loaded, capsys):
    from riskconsole.cli import main

    ws = loaded[0]
    path = ws.strategies_dir / "textnum.yaml"
    path.write_text("name: textnum\nrules:\n  - {name: bad, when: 'merchant_category > 3', action: review}\n")
    for command in (["validate", str(path)], ["backtest", str(path), "--out", str(ws.root / "out")]):
        assert main([*command, "--workspace", str(ws.root)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: strategies/textnum.yaml: rule 'bad': ")
        assert "VARCHAR" in err
    path.unlink()


def test_the_public_ecommerce_example_of_the_docs_loads(tmp_path):
    """docs/dataset.md's e-commerce example, on a synthetic file of that data set's shape."""
    import re
    from pathlib import Path

    import yaml

    from riskconsole.workspace import Workspace

    page = (Path(__file__).resolve().parents[1] / "docs" / "dataset.md").read_text()
    section = page.split("### Example: a public e-commerce fraud table")[1]
    spec = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    rng = np.random.default_rng(4)
    n = 300
    purchase = pd.Timestamp("2015-03-01") + pd.to_timedelta(rng.integers(0, 20 * 86_400, n), unit="s")
    rows = pd.DataFrame({
        "row_id": range(n), "user_id": rng.integers(1, 10**6, n),
        "signup_time": (purchase - pd.to_timedelta(rng.integers(1, 30 * 86_400, n), unit="s")).astype(str),
        "purchase_time": purchase.astype(str), "purchase_value": rng.integers(9, 150, n),
        "device_id": [f"D{d}" for d in rng.integers(0, 40, n)], "source": rng.choice(["SEO", "Ads", "Direct"], n),
        "browser": rng.choice(["Chrome", "Opera", "Safari"], n), "sex": rng.choice(["M", "F"], n),
        "age": rng.integers(18, 70, n), "ip_address": rng.uniform(0, 4e9, n).round(1), "class": rng.integers(0, 2, n)})
    (tmp_path / "data").mkdir()
    rows.to_csv(tmp_path / "data" / "Fraud_Data.csv", index=False)
    lows = np.arange(0, 4e9, 1e8)
    pd.DataFrame({"lower_bound_ip_address": lows, "upper_bound_ip_address": lows + 5e7,
                  "country": [f"country{i}" for i in range(len(lows))]}).to_csv(
        tmp_path / "data" / "IpAddress_to_Country.csv", index=False)
    (tmp_path / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    ws = Workspace(tmp_path)
    assert load(ws).loaded == n
    frame = frame_of(ws).assign(n=lambda f: f["row_id"].astype(int)).sort_values("n")
    want = (pd.to_datetime(rows["purchase_time"]) - pd.to_datetime(rows["signup_time"])).dt.total_seconds()
    assert (frame["seconds_since_signup"].to_numpy() == want.to_numpy()).all()
    inside = ((rows["ip_address"] % 1e8) <= 5e7).to_numpy()
    assert frame["ip_country"].notna().to_numpy().tolist() == inside.tolist()
    assert frame["device_signup_users_7d"].max() >= 1 and set(frame["night"].dropna()) <= {0, 1}


from test_functions import spark  # noqa: E402,F401 - the one Spark session of the test run


def _to_spark(session, df: pd.DataFrame, name: str) -> None:
    rows = df.astype(object).where(df.notna(), None)
    session.createDataFrame(rows).createOrReplaceTempView(name)


def test_lookups_and_stream_windows_give_the_same_answers_on_spark(loaded, spark):  # noqa: F811
    """The lookup and union SQL, rendered for Spark and run there, equals DuckDB's answers (DESIGN §7)."""
    import yaml

    from riskconsole.config import Dataset, Feature
    from riskconsole.dialects import spark as spark_dialect
    from riskconsole.lookups import lookup_groups, lookup_query
    from riskconsole.sqlbuild import render
    from riskconsole.streams import stream_query

    ws = loaded[0]
    dataset = Dataset.model_validate(yaml.safe_load(ws.dataset_path.read_text()))
    everyone = Feature.model_validate({"name": "all_1h", "count": "*", "window": "1h"})  # a bucketed union
    dataset = dataset.model_copy(update={"features": [*dataset.features, everyone]})
    con = duckdb.connect(str(ws.db_path), read_only=True)
    base = con.execute("SELECT event_id, merchant_id, device_id, ip_num, epoch_us(ts) AS _t, "
                       "row_number() OVER (ORDER BY ts, event_id) AS _pos FROM events").df()
    tables = {name: con.execute(f"SELECT * FROM table_{name}").df() for name in TABLES}
    con.close()
    duck = duckdb.connect()
    duck.register("_frame_base", base)
    _to_spark(spark, base, "_frame_base")
    for name, df in tables.items():
        duck.register(f"table_{name}", df)
        _to_spark(spark, df, f"table_{name}")
    queries = [lookup_query(dataset, name, features, "_frame_base") for name, features in lookup_groups(dataset).items()]
    queries.append(stream_query(dataset, None, (), dataset.features[-1:], "_frame_base", 3_600_000_000))
    for query in queries:
        ours = duck.execute(f"SELECT * FROM ({render(query)}) ORDER BY _pos").fetchall()
        theirs = [tuple(r) for r in spark.sql(query.sql(dialect=spark_dialect()) + " ORDER BY _pos").collect()]
        assert len(ours) == len(theirs) > 50
        assert all(a == b or (isinstance(a, float) and b == pytest.approx(a)) for x, y in zip(ours, theirs)
                   for a, b in zip(x, y)), query.sql()


def test_the_data_page_lists_each_stream_and_table_and_groups_features(demo_ws):
    """Console (issue 9 item 6): rows, quarantine and time span per source; features named by source."""
    from riskconsole.overview import feature_table, sources
    from riskconsole.session import Session

    ws = demo_ws
    with Session(ws) as session, session.cursor() as cur:
        listed = {row["source"]: row for row in sources(cur, session.dataset)}
        signups = cur.execute("SELECT count(*) FROM stream_signups").fetchall()[0][0]
        features = {f["feature"]: f for f in feature_table(session.dataset)}
    assert {"stream signups", "table merchants", "table ip_ranges"} <= set(listed)
    assert listed["stream signups"]["rows"] == signups and listed["stream signups"]["from"] is not None
    assert all("None" not in f["definition"] for f in features.values())
    kinds = {f["source"].split()[0] for f in features.values()}
    assert {"events", "stream", "table", "derived"} <= kinds


def test_the_editor_lists_every_name_a_rule_can_read(demo_ws):
    from riskconsole.overview import vocabulary
    from riskconsole.session import Session

    with Session(demo_ws) as session:
        names = {r["name"]: r["source"] for r in vocabulary(session.frame, session.dataset)}
        visible = set(session.frame.visible)
    assert set(names) == visible
    assert names["lgbm_orders"] == "detector score" and names["amount"] == "events column"
    assert any(s.startswith("stream ") for s in names.values()) and any(s.startswith("table ") for s in names.values())
    assert "is_fraud" not in names and "_pos" not in names


RANGE_KINDS = ("int", "double", "double_inf", "huge", "decimal", "text", "timestamp", "date", "subnormal", "empty",
               "one_point")


def range_case(kind: str, seed: int = 3):
    """Ranges (`lo`, `hi`, `val`) of one value type and events (`_pos`, `x`), and what a plain scan says each event
    gets (`want`: _pos -> val of the first range by (lo, hi) holding x, absent if none): nested, overlapping and
    repeated ranges, gaps, a range with lo > hi, NULL bounds and values, every edge (lo, hi, one off each)."""
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = 0 if kind == "empty" else 1 if kind == "one_point" else 120
    lo = rng.integers(0, 1000, n)
    wide = rng.random(n) < 0.1
    hi = lo + np.where(wide, rng.integers(0, 400, n), rng.integers(0, 25, n))
    if n > 10:
        hi[3] = lo[3] - 5  # lo > hi: holds nothing
        lo[7], hi[7] = lo[6], hi[6]  # a repeat (the same val below)
    if kind == "one_point":
        hi = lo.copy()
    points = sorted({int(v) for v in np.concatenate([lo, hi, lo - 1, hi + 1, rng.integers(-20, 1100, 300)])})
    as_value = {
        "int": (pa.int64(), lambda v: int(v)),
        "double": (pa.float64(), lambda v: v / 8),
        "double_inf": (pa.float64(), lambda v: v / 8),
        "huge": (pa.int64(), lambda v: 2**62 + int(v) * 37),  # neighbours round to one double
        "decimal": (pa.decimal128(12, 2), lambda v: Decimal(int(v)) / 4),
        "text": (pa.string(), lambda v: str(int(v))),  # '10' < '9': text order, not numbers'
        "timestamp": (pa.timestamp("us"), lambda v: dt.datetime(2026, 1, 1) + dt.timedelta(minutes=int(v))),
        "date": (pa.date32(), lambda v: dt.date(2026, 1, 1) + dt.timedelta(days=int(v))),
        "subnormal": (pa.float64(), lambda v: float(v) * 5e-324),  # a bucket width that rounds to 0
        "empty": (pa.int64(), lambda v: int(v)), "one_point": (pa.int64(), lambda v: int(v)),
    }[kind]
    dtype, value = as_value
    los, his = [value(v) for v in lo], [value(v) for v in hi]
    vals = [f"r{i}" for i in range(n)]
    if n > 10:
        vals[7] = vals[6]
        los[11], his[12] = None, None  # a range without a bound holds nothing
    if kind == "double_inf" and n:
        his[20] = float("inf")  # the span is not finite: everything in one bucket
    xs = [value(v) for v in points] + [None]
    if kind.startswith("double"):
        xs += [float("nan"), float("inf"), float("-inf")]
    ranges = pa.table({"lo": pa.array(los, dtype), "hi": pa.array(his, dtype), "val": pa.array(vals, pa.string())})
    events = pa.table({"_pos": pa.array(range(len(xs)), pa.int64()), "x": pa.array(xs, dtype)})
    held = sorted((lo_, hi_, val) for lo_, hi_, val in zip(los, his, vals) if lo_ is not None and hi_ is not None)
    want = {}
    for pos, x in enumerate(xs):
        if x is None or (isinstance(x, float) and np.isnan(x)):
            continue
        first = next((val for lo_, hi_, val in held if lo_ <= x <= hi_), None)
        if first is not None:
            want[pos] = first
    return ranges, events, want


def range_lookup(dataset_tables: dict | None = None):
    """`lookups.lookup_query` of a range table `table_r` (lo, hi, val) onto the events of `ev` (x)."""
    from riskconsole.config import Dataset
    from riskconsole.lookups import lookup_query

    dataset = Dataset.model_validate({
        **BASE_DATASET, "tables": {"r": {"source": "r.csv", "range": {"value": "x", "low": "lo", "high": "hi"}}},
        "features": [{"name": "got", "lookup": "r.val"}]})
    return lookup_query(dataset, "r", dataset.features, "ev")


@pytest.mark.parametrize("kind", RANGE_KINDS)
def test_a_range_lookup_is_the_first_range_holding_the_value_of_every_type(kind):
    """The range join as an equi-join on buckets (`lookups._RANGE`) gives what a plain scan gives, for every value
    type: numbers (bucketed), text and DuckDB's timestamps (one bucket), a span that is not finite."""
    ranges, events, want = range_case(kind)
    con = duckdb.connect()
    con.register("table_r", ranges)
    con.register("ev", events)
    got = dict(con.execute(range_lookup().sql(dialect="duckdb")).fetchall())
    assert got == want
    assert len(want) > 50 or kind in ("empty", "one_point")


def test_a_range_lookup_joins_on_buckets_not_every_range():
    """Ten thousand ranges: each event meets a few candidate ranges (a hash join on the bucket), never all of them
    (DuckDB's plan for BETWEEN compared 200,000 events with 138,000 IP ranges in 33 s)."""
    import pyarrow as pa

    rng = np.random.default_rng(1)
    lo = np.sort(rng.choice(10**9, 10_000, replace=False)) * 4
    ranges = pa.table({"lo": lo, "hi": lo + rng.integers(0, 4, lo.size), "val": [f"c{i}" for i in range(lo.size)]})
    xs = np.concatenate([lo[::7] + 1, rng.integers(0, 4 * 10**9, 5_000)])
    events = pa.table({"_pos": np.arange(xs.size), "x": xs})
    con = duckdb.connect()
    con.register("table_r", ranges)
    con.register("ev", events)
    sql = range_lookup().sql(dialect="duckdb")
    got = dict(con.execute(sql).fetchall())
    idx = np.searchsorted(lo, xs, side="right") - 1
    hit = (idx >= 0) & (xs <= ranges["hi"].to_numpy()[np.maximum(idx, 0)])
    assert got == {int(p): f"c{i}" for p, i, h in zip(events["_pos"].to_numpy(), idx, hit) if h}
    profile = con.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
    assert "Hash Join" in profile
    assert not [join for join in ("Nested Loop", "IE Join", "Piecewise", "Blockwise") if join in profile]


@pytest.mark.parametrize("lows, highs, values, warned", [
    (["10.0.0.0", "10.0.1.0"], ["10.0.0.255", "10.0.1.255"], ["10.0.0.5", "10.0.1.7"],
     "2 ranges have IPv4 addresses as text (ip_low = '10.0.0.0'), which compare character by character"),
    (["5", "20"], ["15", "99"], ["7", "30"], "ip_low and ip_high are numbers written as text of different lengths"),
    (["100", "200"], ["150", "299"], ["120", "250"], None),  # one length: text order is number order
])
def test_range_bounds_that_do_not_sort_as_text_are_warned(tmp_path, lows, highs, values, warned):
    """Text bounds compare character by character: IPv4 addresses ('10.0.0.5' after '10.0.0.255') and numbers of
    different lengths ('7' after '15') silently miss their range, so the load says so and how to fix it."""
    events = make_events(n=40)
    events["ip_num"] = [values[i % 2] for i in range(len(events))]
    ranges = pd.DataFrame({"ip_low": lows, "ip_high": highs, "country": ["a", "b"]})
    ws = workspace(tmp_path / "ws", events, make_merchants(events), ranges=ranges)
    spec = yaml.safe_load(ws.dataset_path.read_text())
    spec["types"] = {"ip_num": "VARCHAR"}
    spec["tables"]["ip_ranges"]["types"] = {"ip_low": "VARCHAR", "ip_high": "VARCHAR"}
    ws.dataset_path.write_text(yaml.safe_dump(spec))
    result = load(ws)
    said = [w for w in result.warnings if "tables.ip_ranges" in w]
    if warned is None:
        assert said == []
    else:
        assert [w for w in said if warned in w] and not [w for w in said if "\n" in w], said
