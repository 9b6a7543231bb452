"""`tables.NAME.rename` (DESIGN §2.1): source column -> loaded name, applied at load, as a stream's.

The table's own roles (key, valid_from, range, label, label_time) and `types:` name source columns; lookups and
everything downstream read loaded names. Each table kind loaded from a file whose columns are renamed by `rename:`
gives the same frame, entity labels, maturity and backtest as the same data with the columns renamed in the file
(itself checked against brute force in test_tables.py and test_entities.py, and here again for the backtest)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import yaml

from riskconsole.cli import main
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.session import Session
from conftest import BASE_DATASET, random_events, write_workspace
from test_tables import FEATURES as LOOKUPS, TABLES, frame_of, make_events, make_merchants, make_ranges

# what each file calls its columns -> the names the plain file (and every feature) uses
MERCHANTS = {"shop": "merchant_id", "cat": "category", "pts": "score", "changed": "updated_at"}
DEVICES = {"dev": "device_id", "sort": "kind"}
RANGES = {"lo": "ip_low", "hi": "ip_high", "land": "country"}
RENAMED_TABLES = {
    "merchants": {"source": "data/merchants.csv", "key": "shop", "valid_from": "changed", "rename": MERCHANTS,
                  "types": {"pts": "DOUBLE"}},
    "devices": {"source": "data/devices.csv", "key": "dev", "rename": DEVICES},
    "ip_ranges": {"source": "data/ip_ranges.csv", "range": {"value": "ip_num", "low": "lo", "high": "hi"},
                  "rename": RANGES},
}


def _source_names(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The frame as the renamed file holds it: loaded names back to source names."""
    return frame.rename(columns={loaded: source for source, loaded in names.items()})


def lookups_ws(root, renamed: bool):
    events = make_events()
    merchants = make_merchants(events)
    devices = pd.DataFrame({"device_id": range(1, 12), "kind": [f"k{i % 3}" for i in range(1, 12)]})
    ranges = make_ranges()
    tables = RENAMED_TABLES if renamed else {**TABLES, "merchants": {**TABLES["merchants"], "types": {"score": "DOUBLE"}}}
    # a stream too: the Data page reads its time by the loaded name (it used to read the source name)
    stream = {"source": "data/events.csv", "columns": {"time": "ts"}, **({"rename": {"ts": "seen_at"}} if renamed else {})}
    ws = write_workspace(root, events, {**BASE_DATASET, "tables": tables, "features": LOOKUPS,
                                        "streams": {"again": stream}})
    for frame, names, file in ((merchants, MERCHANTS, "merchants"), (devices, DEVICES, "devices"),
                               (ranges, RANGES, "ip_ranges")):
        (_source_names(frame, names) if renamed else frame).to_csv(root / "data" / f"{file}.csv", index=False)
    return ws, load(ws)


@pytest.fixture(scope="module")
def lookups(tmp_path_factory):
    root = tmp_path_factory.mktemp("rename")
    return lookups_ws(root / "plain", False), lookups_ws(root / "renamed", True)


def test_key_as_of_and_range_tables_with_renamed_columns_give_the_same_frame(lookups):
    (plain, _), (renamed, _) = lookups
    a, b = frame_of(plain), frame_of(renamed)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b)
    for name in ("merchant_category", "merchant_since", "device_kind", "ip_country"):
        assert b[name].notna().sum() > 50, name  # every kind of join matched rows, not all NULL on both sides
    con = duckdb.connect(str(renamed.db_path), read_only=True)
    loaded = {t: [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE table_{t})").fetchall()]
              for t in ("merchants", "devices", "ip_ranges")}
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE table_merchants)").fetchall())
    con.close()
    assert loaded == {"merchants": ["merchant_id", "category", "score", "updated_at"],
                      "devices": ["device_id", "kind"], "ip_ranges": ["ip_low", "ip_high", "country"]}
    assert types["score"] == "DOUBLE" and types["updated_at"] == "TIMESTAMP"  # types: and valid_from: source names


def test_the_overlap_warning_and_the_data_page_read_the_renamed_table(lookups):
    from riskconsole.overview import sources

    (plain, loaded_plain), (renamed, loaded_renamed) = lookups
    warned = [w for w in loaded_renamed.warnings if "tables.ip_ranges" in w]
    assert len(warned) == 1 and "3 ranges overlap an earlier one (the first at lo = 90)" in warned[0]
    spans = []
    for ws in (plain, renamed):
        with Session(ws) as session, session.cursor() as cur:
            spans.append({s["source"]: (s["rows"], s["from"], s["to"]) for s in sources(cur, session.dataset)})
    assert spans[0] == spans[1] and spans[1]["table merchants"][1] is not None
    assert spans[1]["stream again"][1] is not None


# ---------------------------------------------------------------- an entity-label table keyed by a renamed column

from test_entities import FEATURES as ENTITY_FEATURES, STRATEGY, events, expected, merchants, metrics_of, refunds  # noqa: E402

ENTITY = {"shop": "merchant_id", "level": "tier", "bad": "is_bad", "banned": "banned_at"}


def entity_ws(root, renamed: bool):
    ev = events()
    dataset = {**BASE_DATASET, "features": ENTITY_FEATURES}
    dataset["columns"] = {**BASE_DATASET["columns"], "entities": ["user_id", "device_id", "merchant_id"]}
    dataset["streams"] = {"refunds": {"source": "data/refunds.csv", "columns": {"time": "refund_time"}}}
    table = {"source": "data/merchants.csv", "key": "merchant_id", "label": "is_bad", "label_time": "banned_at"}
    if renamed:
        table = {"source": "data/merchants.csv", "key": "shop", "label": "bad", "label_time": "banned",
                 "rename": ENTITY}
    dataset["tables"] = {"merchants": table}
    ws = write_workspace(root, ev, dataset, strategies={"mw": STRATEGY})
    refunds(ev).to_csv(ws.root / "data" / "refunds.csv", index=False)
    (_source_names(merchants(), ENTITY) if renamed else merchants()).to_csv(ws.root / "data" / "merchants.csv",
                                                                            index=False)
    load(ws)
    return ws, ev


@pytest.fixture(scope="module")
def entity(tmp_path_factory):
    root = tmp_path_factory.mktemp("entity")
    return entity_ws(root / "plain", False), entity_ws(root / "renamed", True)


def _entity_run(ws) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[dict]]:
    path = ws.strategies_dir / "mw.yaml"
    with Session(ws) as session:
        bt = session.backtest(path)
        as_of = session.backtest(path, session.window(as_of="2026-03-05"))
        frame = session.entities(session.strategy(path).level).table.to_pandas()
        decisions = session.decisions(bt).to_pandas()
        maturity = session.label_sources()
    return {"report": bt.report, "as_of": as_of.report["overall"]}, frame, decisions, maturity


def test_an_entity_strategy_over_a_renamed_key_table_backtests_equal(entity):
    (plain, ev), (renamed, _) = entity
    a, frame_a, decisions_a, maturity_a = _entity_run(plain)
    b, frame_b, decisions_b, maturity_b = _entity_run(renamed)
    assert b["report"]["level"]["label_from"] == "tables.merchants"
    assert b["report"]["overall"] == a["report"]["overall"] and b["as_of"] == a["as_of"]
    for key, value in metrics_of(expected(ev, STRATEGY["params"], True)).items():  # and the brute force
        assert b["report"]["overall"][key] == pytest.approx(value), key
    assert "merchant_tier" in b["report"]["level"]["features"]  # a lookup keyed by the entity's loaded name
    pd.testing.assert_frame_equal(frame_a, frame_b)  # features and entity labels (__label, __label_time)
    assert frame_b["__label"].eq(1).sum() > 0 and frame_b["__label"].eq(0).sum() > 0
    pd.testing.assert_frame_equal(decisions_a, decisions_b)
    assert [s["source"] for s in maturity_b] == ["events", "tables.merchants"]
    assert maturity_b[1]["label"] == "bad"  # the label column as the dataset file names it; the rest equal
    shown = [{**s, "label": "is_bad", "reading": s["reading"].replace("(bad,", "(is_bad,")} if s["label"] == "bad"
             else s for s in maturity_b]
    assert maturity_a == shown
    assert maturity_b[1]["unit"] == "merchant_id-days with events" and maturity_b[1]["curve"]


def test_no_feature_reads_a_renamed_entity_label(entity, capsys):
    renamed = entity[1][0]
    spec = yaml.safe_load(renamed.dataset_path.read_text())
    leak = {**spec, "features": [{"name": "leak", "lookup": "merchants.is_bad"}]}
    path = renamed.root / "data" / "leak.yaml"
    path.write_text(yaml.safe_dump(leak))
    assert main(["validate", str(path), "--workspace", str(renamed.root)]) == 1
    assert "lookup: 'merchants.is_bad' is the table's entity label" in capsys.readouterr().err
    path.unlink()


# ---------------------------------------------------------------- bad input: validate = load, nothing changes

TABLE = {"source": "data/users.csv", "key": "user_id", "rename": {"user_id": "Customer"}}
BAD = {
    "unknown_column": ({"rename": {"user_idd": "Customer"}},
                       "tables.users.rename: column 'user_idd' is not in the source (did you mean 'user_id'?)"),
    "target_taken": ({"rename": {"user_id": "Customer", "segment": "Tier"}},
                     "tables.users.rename.segment: 'Tier' is taken, the source already has a column 'tier' (names "
                     "ignore letter case): rename to another name, or rename 'tier' too"),
    "target_internal": ({"rename": {"user_id": "Customer", "tier": "_pos"}},
                        "tables.users: rename: column '_pos' is a name riskconsole uses itself"),
    "target_internal_prefix": ({"rename": {"user_id": "Customer", "tier": "__v"}},
                               "tables.users: rename: column '__v' starts with '__'"),
    "target_not_a_name": ({"rename": {"user_id": "Customer", "tier": "tier level "}},
                          "tables.users.rename: 'tier level ' is not a column name: give the name as the events file "
                          "writes it (no spaces around it, no control characters), e.g. customer_id or Customer ID"),
    "two_targets_alike": ({"rename": {"user_id": "Customer", "tier": "level", "segment": "LEVEL"}},
                          "tables.users.rename: 'segment' and 'tier' are both renamed to 'level' (names ignore "
                          "letter case): give each its own name"),  # in the file's order: yaml.safe_dump sorts
    "not_renamed": ({"rename": {}},
                    "tables.users.key: 'user_id' is not a column of the decision events (columns: Customer, "),
    "renamed_to_no_event_column": ({"rename": {"user_id": "Custmer"}},
                                   "tables.users.key: 'user_id' (loaded as 'Custmer') is not a column of the decision "
                                   "events (did you mean 'Customer'?); the key joins the event column of the same "
                                   "name: if the events call it Customer, write rename: {user_id: Customer} under "
                                   "tables.users"),
}


def customer_ws(root):
    events = random_events(n=60).rename(columns={"user_id": "Customer"})
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "entities": ["Customer", "device_id"]},
               "features": [{"name": "customer_tier", "lookup": "users.tier"}], "tables": {"users": TABLE}}
    ws = write_workspace(root, events, dataset)
    pd.DataFrame({"user_id": range(1, 30), "tier": [f"t{i % 4}" for i in range(1, 30)],
                  "segment": "a"}).to_csv(root / "data" / "users.csv", index=False)
    return ws, events


def test_a_users_table_keyed_user_id_joins_the_events_customer_column(tmp_path):
    """The stranger's case: orders call it Customer, the users export user_id; a rename joins them."""
    ws, events = customer_ws(tmp_path / "w")
    assert load(ws).loaded == 60
    frame = frame_of(ws).sort_values("event_id")
    want = events.sort_values("event_id")["Customer"].map(lambda u: f"t{u % 4}" if 1 <= u < 30 else None)
    assert frame["customer_tier"].tolist() == want.tolist() and frame["customer_tier"].notna().sum() > 30


def test_the_users_example_of_the_docs_loads(tmp_path):
    """docs/dataset.md's rename example: roles and types: name source columns, the lookup the loaded name."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "dataset.md").read_text()
    section = page.split("A users export keyed `user_id`")[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    ws, events = customer_ws(tmp_path / "w")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, **example}))
    pd.DataFrame({"user_id": range(1, 30), "tier": [i % 4 for i in range(1, 30)]}).to_csv(
        ws.root / "data" / "users.csv", index=False)
    load(ws)
    frame = frame_of(ws).sort_values("event_id")
    assert frame["customer_tier"].tolist() == (events.sort_values("event_id")["Customer"] % 4).tolist()
    con = duckdb.connect(str(ws.db_path), read_only=True)
    assert con.execute("SELECT column_name, column_type FROM (DESCRIBE table_users)").fetchall() == [
        ("Customer", "BIGINT"), ("user_tier", "INTEGER")]
    con.close()


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_rename_is_one_line_from_validate_and_load_and_changes_nothing(tmp_path, capsys, case):
    ws, _ = customer_ws(tmp_path / "w")
    load(ws)  # a good load first: the bad one must leave it as it was
    before = (ws.db_path.stat().st_mtime_ns, ws.db_path.read_bytes())
    change, message = BAD[case]
    spec = yaml.safe_load(ws.dataset_path.read_text())
    spec["tables"]["users"] = {**TABLE, **change}
    ws.dataset_path.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(ws.dataset_path), "--workspace", str(ws.root)]) == 1
    said = capsys.readouterr().err
    with pytest.raises(RiskConsoleError) as info:
        load(ws)
    assert said == f"error: {info.value}\n" and said.count("\n") == 1
    assert str(info.value).startswith("data/dataset.yaml: ") and message in str(info.value), str(info.value)
    assert (ws.db_path.stat().st_mtime_ns, ws.db_path.read_bytes()) == before


def test_a_stream_rename_onto_another_column_is_refused_not_loaded_as_name_1(tmp_path):
    """The same check guards a stream: DuckDB used to load the other column silently as `user_id_1`."""
    ws = write_workspace(tmp_path / "w", random_events(n=40), {**BASE_DATASET, "streams": {
        "s": {"source": "data/events.csv", "columns": {"time": "ts"}, "rename": {"event_id": "User_ID"}}}})
    with pytest.raises(RiskConsoleError, match=r"streams\.s\.rename\.event_id: 'User_ID' is taken, the source "
                                               r"already has a column 'user_id'"):
        load(ws)


from test_functions import spark  # noqa: E402,F401 - the one Spark session of the test run


def test_renamed_lookups_and_entity_labels_give_the_same_answers_on_spark(lookups, entity, spark):  # noqa: F811
    """The Spark renderings reuse the same ASTs: over renamed tables they read the loaded names, as DuckDB does."""
    from riskconsole.dialects import spark as spark_dialect
    from riskconsole.entities import table_label_query
    from riskconsole.lookups import lookup_groups, lookup_query
    from riskconsole.sqlbuild import render
    from test_tables import _to_spark

    queries = []
    for ws, base in ((lookups[1][0], "SELECT event_id, merchant_id, device_id, ip_num, epoch_us(ts) AS _t, "
                                     "row_number() OVER (ORDER BY ts, event_id) AS _pos FROM events"),
                     (entity[1][0], None)):
        with Session(ws) as session, session.cursor() as cur:
            dataset = session.dataset
            names = list(dataset.tables)
            frames = {f"table_{n}": cur.execute(f"SELECT * FROM table_{n}").df() for n in names}
            if base:
                frames["_frame_base"] = cur.execute(base).df()
        made = ([lookup_query(dataset, n, fs, "_frame_base") for n, fs in lookup_groups(dataset).items()] if base
                else [table_label_query(dataset, "merchants", "merchant_id")])
        queries += [(frames, q) for q in made]
    for frames, query in queries:
        duck = duckdb.connect()
        for name, df in frames.items():
            duck.register(name, df)
            _to_spark(spark, df, name)
        order = " ORDER BY 1"
        ours = duck.execute(f"SELECT * FROM ({render(query)}){order}").fetchall()
        theirs = [tuple(r) for r in spark.sql(query.sql(dialect=spark_dialect()) + order).collect()]
        assert len(ours) == len(theirs) >= 5, query.sql()
        assert all(a == b or (isinstance(a, float) and b == pytest.approx(a)) for x, y in zip(ours, theirs)
                   for a, b in zip(x, y)), query.sql()


def spaced_ws(root):
    """Orders whose customer column is a spreadsheet's 'Customer ID'; a logins stream and a users table that call
    it customer_id and uid, renamed to the events' name to join."""
    events = random_events(n=120).rename(columns={"user_id": "Customer ID"})
    logins = pd.DataFrame({"at": events["ts"], "customer_id": events["Customer ID"]})
    users = pd.DataFrame({"uid": range(1, 30), "tier": [f"t{i % 4}" for i in range(1, 30)]})
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "entities": ["Customer ID", "device_id"]},
               "streams": {"logins": {"source": "data/logins.csv", "columns": {"time": "at"},
                                      "rename": {"customer_id": "Customer ID"}}},
               "tables": {"users": {"source": "data/users.csv", "key": "uid", "rename": {"uid": "Customer ID"}}},
               "features": [{"name": "customer_logins_1d", "count": "*", "from": "logins", "by": "Customer ID",
                             "window": "1d"},
                            {"name": "customer_tier", "lookup": "users.tier"}]}
    ws = write_workspace(root, events, dataset)
    logins.to_csv(root / "data" / "logins.csv", index=False)
    users.to_csv(root / "data" / "users.csv", index=False)
    return ws, events, logins, users


def test_a_stream_and_a_table_renamed_to_an_events_column_with_a_space_join_it(tmp_path):
    """A stranger's orders export named the customer 'Customer ID'; their logins stream said customer_id, and
    `rename: {customer_id: Customer ID}` was refused as 'not a valid name' with no way forward (the decision stream
    has no rename:). A rename target is any column name an export could have: the stream's window and the table's
    lookup join on it, each checked against plain pandas over the files."""
    ws, events, logins, users = spaced_ws(tmp_path / "w")
    load(ws)
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        got = con.execute("SELECT event_id, customer_logins_1d, customer_tier FROM frame ORDER BY event_id").fetchall()
    times, at = pd.to_datetime(events["ts"]), pd.to_datetime(logins["at"])
    tiers = dict(zip(users["uid"], users["tier"]))
    want = sorted((str(e), int(((logins["customer_id"] == c) & (at >= t - pd.Timedelta("1D")) & (at < t)).sum()),
                   tiers.get(c)) for e, c, t in zip(events["event_id"], events["Customer ID"], times))
    assert got == want and sum(n for _, n, _ in got) > 0 and any(t for _, _, t in got)


def test_a_rename_to_a_spaced_name_loads_on_spark_as_on_duckdb(tmp_path, spark):  # noqa: F811
    """The same workspace on Spark: its events, stream and frame equal DuckDB's load of it."""
    ws, *_ = spaced_ws(tmp_path / "w")
    load(ws)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        want = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("frame", "stream_logins")}
    finally:
        con.close()
    load(ws, engine="spark", spark=spark)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        got = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("frame", "stream_logins")}
    finally:
        con.close()
    assert got == want and len(want["frame"]) == 120
