"""The demo's other streams and tables: documented columns, ids and times consistent with the orders, versioned
tables, and each cross-stream scenario visible across streams, checked with plain DuckDB SQL over the files."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml
from sklearn.metrics import average_precision_score
from sqlglot import exp

from riskconsole.demo import generate_events
from riskconsole.demo_streams import STREAMS, TABLES

N = 30_000
END = "2026-05-01"
END_TIME = datetime(2026, 5, 1)
TS = "timestamp[ms]"  # Parquet has no seconds unit: second-precision times read back as milliseconds
DEMO_FILES = Path(__file__).resolve().parents[1] / "riskconsole" / "demo_files"
SCHEMAS = {
    "signups": {"user_id": "int64", "device_id": "int64", "ip_num": "int64", "signup_time": TS,
                "country": "string", "email_domain": "string", "signup_channel": "string"},
    "logins": {"user_id": "int64", "device_id": "int64", "ip_num": "int64", "login_time": TS,
               "success": "int8"},
    "refunds": {"order_id": "string", "user_id": "int64", "merchant_id": "int64", "refund_time": TS,
                "refund_amount": "double", "reason": "string"},
    "clicks": {"user_id": "int64", "device_id": "int64", "ip_num": "int64", "influencer_id": "int64",
               "merchant_id": "int64", "click_time": TS},
    "merchants": {"merchant_id": "int64", "category": "string", "tier": "string", "country": "string",
                  "updated_at": TS, "is_fraud_merchant": "int8", "confirmed_at": TS},
    "influencers": {"influencer_id": "int64", "follower_band": "string", "niche": "string",
                    "joined_at": TS, "updated_at": TS, "is_fraud_influencer": "int8", "confirmed_at": TS},
    "ip_ranges": {"ip_low": "int64", "ip_high": "int64", "country": "string", "network": "string"},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo_streams")
    return folder, generate_events(folder / "events.parquet", n_events=N, seed=7)


@pytest.fixture(scope="module")
def con(demo):
    con = duckdb.connect()
    for name in ("events", *STREAMS, *TABLES):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{demo[0] / name}.parquet')")
    return con


LOGIN_BEFORE_SIGNUP = "SELECT count(*) FROM logins l JOIN signups s USING (user_id) WHERE l.login_time < s.signup_time"


def one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_files_exist_with_the_documented_columns_and_types(demo):
    folder, summary = demo
    for name, columns in SCHEMAS.items():
        schema = pq.read_schema(folder / f"{name}.parquet")
        assert {f.name: str(f.type) for f in schema} == columns, name
        assert summary["streams"][name] == pq.read_metadata(folder / f"{name}.parquet").num_rows > 0
    assert str(pq.read_schema(folder / "events.parquet").field("ip_num").type) == "int64"


def test_other_streams_are_about_as_big_as_the_orders(demo):
    rows = sum(demo[1]["streams"][name] for name in STREAMS)
    assert 0.8 * N <= rows <= 1.6 * N


@pytest.mark.parametrize("stream", ["events", "logins", "refunds", "clicks"])
def test_every_user_signed_up(con, stream):
    assert one(con, f"SELECT count(*) FROM {stream} WHERE user_id NOT IN (SELECT user_id FROM signups)") == 0


def test_signups_are_one_per_ordering_user(con):
    assert one(con, "SELECT count(*) - count(DISTINCT user_id) FROM signups") == 0
    assert one(con, "SELECT count(DISTINCT user_id) FROM events") == one(con, "SELECT count(*) FROM signups")


@pytest.mark.parametrize("stream, key, table", [
    ("events", "merchant_id", "merchants"), ("refunds", "merchant_id", "merchants"),
    ("clicks", "merchant_id", "merchants"), ("events", "influencer_id", "influencers"),
    ("clicks", "influencer_id", "influencers")])
def test_every_merchant_and_creator_is_in_its_table(con, stream, key, table):
    assert one(con, f"SELECT count(*) FROM {stream} WHERE {key} NOT IN (SELECT {key} FROM {table})") == 0


def test_refunds_belong_to_their_order_and_follow_it(con):
    row = con.execute("""SELECT count(*), count(e.event_id), count(*) FILTER (WHERE r.user_id <> e.user_id
        OR r.merchant_id <> e.merchant_id OR r.refund_time <= e.ts OR r.refund_amount > e.amount + 1e-9),
        max(r.refund_time) FROM refunds r LEFT JOIN events e ON r.order_id = e.event_id""").fetchone()
    assert row[0] == row[1] and row[2] == 0
    assert str(row[3]) < END
    assert one(con, "SELECT count(*) - count(DISTINCT order_id) FROM refunds") == 0


def test_signup_before_first_order_and_logins_before_their_orders(con):
    assert one(con, """SELECT count(*) FROM signups s JOIN (SELECT user_id, min(ts) AS first FROM events GROUP BY 1) o
        USING (user_id) WHERE s.signup_time >= o.first""") == 0
    assert one(con, LOGIN_BEFORE_SIGNUP) == 0
    assert one(con, "SELECT min(success), max(success) FROM logins") == 0
    assert str(one(con, "SELECT max(click_time) FROM clicks")) < END


def test_every_ip_falls_in_exactly_one_range_of_its_country(con):
    assert one(con, """SELECT count(*) FROM ip_ranges a JOIN ip_ranges b ON a.ip_low < b.ip_low
        AND b.ip_low <= a.ip_high""") == 0
    assert one(con, "SELECT bool_and(ip_low <= ip_high) FROM ip_ranges")
    for stream in ("events", "signups", "logins", "clicks"):
        assert one(con, f"""SELECT count(*) FROM {stream} s LEFT JOIN ip_ranges r
            ON s.ip_num BETWEEN r.ip_low AND r.ip_high WHERE r.country IS NULL""") == 0, stream
    assert one(con, """SELECT count(*) FROM events e JOIN ip_ranges r ON e.ip_num BETWEEN r.ip_low AND r.ip_high
        WHERE r.country <> e.ip_country""") == 0


@pytest.mark.parametrize("table, key", [("merchants", "merchant_id"), ("influencers", "influencer_id")])
def test_tables_have_versions_in_time_order(con, table, key):
    versions = con.execute(f"SELECT {key}, count(*) AS k FROM {table} GROUP BY 1 HAVING k > 1").fetchall()
    assert len(versions) >= 2
    assert one(con, f"""SELECT count(*) FROM (SELECT updated_at, lag(updated_at) OVER (PARTITION BY {key}
        ORDER BY updated_at) AS before FROM {table}) WHERE updated_at <= before""") == 0


@pytest.mark.parametrize("table, key, label, scenarios", [
    ("merchants", "merchant_id", "is_fraud_merchant", ("brushing", "merchant_bust_out")),
    ("influencers", "influencer_id", "is_fraud_influencer", ("affiliate_fraud", "click_injection"))])
def test_entity_labels_name_the_fraudsters_once_confirmed(con, table, key, label, scenarios):
    """One label per entity on all its versions; 1 exactly for the entities behind a merchant or creator scenario
    whose fraud was confirmed before the period's end (days after its first fraud order), unknown for the others
    of them, 0 for everyone else."""
    assert one(con, f"""SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY 1
        HAVING count(DISTINCT coalesce({label}, -1)) > 1
            OR count(DISTINCT coalesce(confirmed_at, '1970-01-01')) > 1)""") == 0
    rows = con.execute(f"""SELECT t.{label}, t.confirmed_at, f.first FROM (SELECT DISTINCT {key}, {label}, confirmed_at
        FROM {table}) t LEFT JOIN (SELECT {key}, min(ts) AS first FROM events WHERE fraud_scenario IN {scenarios}
        GROUP BY 1) f USING ({key})""").fetchall()
    fraudsters = [r for r in rows if r[2] is not None]
    assert len(fraudsters) >= 2 and sum(r[0] == 1 for r in rows) >= 1
    assert all(r[0] == 0 and r[1] is None for r in rows if r[2] is None)
    for flag, confirmed, first in fraudsters:
        assert (flag == 1 and first + timedelta(days=4) <= confirmed < END_TIME) or (flag is None and confirmed is None)


def test_orders_show_the_merchant_as_it_was_then(con):
    """The orders' merchant columns are the as-of join of the merchants table: the latest version not after ts."""
    assert one(con, """SELECT count(*) FROM events e ASOF JOIN merchants m
        ON e.merchant_id = m.merchant_id AND e.ts >= m.updated_at
        WHERE m.category <> e.merchant_category OR m.tier <> e.merchant_tier""") == 0
    assert one(con, """SELECT count(*) FROM events e JOIN (SELECT merchant_id, arg_max(category, updated_at) AS latest
        FROM merchants GROUP BY 1) m USING (merchant_id) WHERE m.latest <> e.merchant_category""") > 0


# ------------------------------------------------------------- each cross-stream scenario, seen across streams


def base_rate(con) -> float:
    return one(con, "SELECT avg(CAST(fraud_scenario <> 'none' AS DOUBLE)) FROM events")


def flagged(con, where: str, features: str) -> tuple[int, float, float]:
    """Orders where `where` holds over `features` (a SELECT adding columns to events e): count, fraud rate, lift."""
    n, rate = con.execute(f"""SELECT count(*), avg(CAST(fraud_scenario <> 'none' AS DOUBLE))
        FROM (SELECT e.*, {features} FROM events e) WHERE {where}""").fetchone()
    return n, rate, rate / base_rate(con)


DEVICE_SIGNUPS_24H = """(SELECT count(*) FROM signups s WHERE s.device_id = e.device_id
    AND s.signup_time >= e.ts - INTERVAL 24 HOUR AND s.signup_time < e.ts) AS device_signups_24h"""
REFUNDS_30D = """(SELECT count(*) FROM refunds r WHERE r.user_id = e.user_id
    AND r.refund_time >= e.ts - INTERVAL 30 DAY AND r.refund_time < e.ts) AS user_refunds_30d,
    (SELECT count(*) FROM events o WHERE o.user_id = e.user_id
    AND o.ts >= e.ts - INTERVAL 30 DAY AND o.ts < e.ts) AS user_orders_30d"""
CLICKS_1H = """(SELECT count(*) FROM clicks c WHERE c.device_id = e.device_id
    AND c.click_time >= e.ts - INTERVAL 1 HOUR AND c.click_time < e.ts) AS device_clicks_1h,
    (SELECT date_diff('second', max(c.click_time), e.ts) FROM clicks c WHERE c.device_id = e.device_id
    AND c.click_time >= e.ts - INTERVAL 1 HOUR AND c.click_time < e.ts) AS seconds_since_click"""
FAILED_LOGINS_1H = """(SELECT count(*) FILTER (WHERE l.success = 0) FROM logins l WHERE l.user_id = e.user_id
    AND l.login_time >= e.ts - INTERVAL 1 HOUR AND l.login_time < e.ts) AS user_failed_logins_1h"""
RELISTED_14D = """(SELECT max(m.updated_at) FILTER (WHERE m.category <> m.before) FROM (SELECT *, lag(category)
    OVER (PARTITION BY merchant_id ORDER BY updated_at) AS before FROM merchants) m
    WHERE m.merchant_id = e.merchant_id AND m.updated_at <= e.ts) AS relisted_at"""


def test_device_farms_show_as_many_signups_on_the_device(con):
    n, rate, lift = flagged(con, "device_signups_24h >= 5", DEVICE_SIGNUPS_24H)
    assert n >= 20 and lift >= 10, (n, rate, lift)
    share = one(con, f"""SELECT avg(CAST(device_signups_24h >= 5 AS DOUBLE)) FROM (SELECT e.fraud_scenario,
        {DEVICE_SIGNUPS_24H} FROM events e) WHERE fraud_scenario = 'signup_farm'""")
    assert share >= 0.8


def test_refund_abusers_show_as_refunds_piling_up(con):
    n, rate, lift = flagged(con, "user_refunds_30d >= 3 AND 2 * user_refunds_30d >= user_orders_30d", REFUNDS_30D)
    assert n >= 20 and lift >= 10, (n, rate, lift)
    share = one(con, f"""SELECT avg(CAST(user_refunds_30d >= 3 AS DOUBLE)) FROM (SELECT e.fraud_scenario,
        {REFUNDS_30D} FROM events e) WHERE fraud_scenario = 'refund_abuse'""")
    assert share >= 0.8


def test_click_injection_shows_as_clicks_seconds_before_the_order(con):
    gaps = dict(con.execute(f"""SELECT fraud_scenario = 'click_injection', median(seconds_since_click)
        FROM (SELECT e.*, {CLICKS_1H} FROM events e) WHERE channel = 'affiliate_link' GROUP BY 1""").fetchall())
    assert gaps[True] < 60 and gaps[False] > 300, gaps
    n, rate, lift = flagged(con, "device_clicks_1h >= 5 AND seconds_since_click < 30", CLICKS_1H)
    assert n >= 20 and lift >= 10, (n, rate, lift)


def test_merchant_bust_out_follows_a_category_change(con):
    n, rate, lift = flagged(con, "relisted_at >= ts - INTERVAL 14 DAY", RELISTED_14D)
    assert n >= 20 and lift >= 10, (n, rate, lift)
    share = one(con, f"""SELECT avg(CAST(relisted_at >= ts - INTERVAL 14 DAY AS DOUBLE)) FROM (SELECT e.*,
        {RELISTED_14D} FROM events e) WHERE fraud_scenario = 'merchant_bust_out'""")
    assert share >= 0.9


def test_credential_stuffing_shows_as_failed_logins_before_the_order(con):
    n, rate, lift = flagged(con, "user_failed_logins_1h >= 3", FAILED_LOGINS_1H)
    assert n >= 20 and lift >= 10, (n, rate, lift)
    share = one(con, f"""SELECT avg(CAST(user_failed_logins_1h >= 3 AS DOUBLE)) FROM (SELECT e.fraud_scenario,
        {FAILED_LOGINS_1H} FROM events e) WHERE fraud_scenario = 'credential_stuffing'""")
    assert share >= 0.8


ORDER_TEXT = ("channel", "merchant_category", "merchant_tier", "payment_method", "user_country", "ip_country",
              "influencer_id", "merchant_id")
ORDER_NUMBERS = ("amount", "account_age_days", "coupon_amount", "items", "is_new_device", "is_new_address")


def test_click_injection_is_invisible_in_the_orders_alone(con):
    """The best single order column, numbers as they are and text or ids encoded by their in-sample share of the
    scenario (an optimistic encoding), finds little; the clicks stream finds most of it."""
    target = "CAST(fraud_scenario = 'click_injection' AS INTEGER)"
    encoded = ", ".join(f"avg({target}) OVER (PARTITION BY {c}) AS {c}" for c in ORDER_TEXT)
    numbers = ", ".join(f"CAST({c} AS DOUBLE) AS {c}" for c in ORDER_NUMBERS)
    frame = con.execute(f"""SELECT {target} AS y, {numbers}, {encoded},
        coalesce(CASE WHEN seconds_since_click < 60 THEN device_clicks_1h END, 0) AS clicks_signal
        FROM (SELECT e.*, {CLICKS_1H} FROM events e)""").df()
    y = frame.pop("y").to_numpy()
    ap = {c: max(average_precision_score(y, frame[c]), average_precision_score(y, -frame[c])) for c in frame}
    best = max((v, c) for c, v in ap.items() if c != "clicks_signal")
    assert best[0] < 0.2 and ap["clicks_signal"] > 0.5, (best, ap["clicks_signal"])


# ------------------------------------------------------------- reproducible, optional


def test_same_seed_same_files(demo, tmp_path):
    generate_events(tmp_path / "events.parquet", n_events=N, seed=7)
    for name in ("events", *STREAMS, *TABLES):
        assert (tmp_path / f"{name}.parquet").read_bytes() == (demo[0] / f"{name}.parquet").read_bytes(), name


def test_streams_can_be_left_out(tmp_path):
    summary = generate_events(tmp_path / "events.parquet", n_events=5_000, seed=3, streams=False)
    assert summary["streams"] == {} and [p.name for p in tmp_path.iterdir()] == ["events.parquet"]


def test_chunked_generation_keeps_every_link(tmp_path, monkeypatch):
    """In chunks (as at 10M orders), stream rows still name existing users and orders, and follow signups."""
    from riskconsole import demo_streams

    monkeypatch.setattr(demo_streams, "CHUNK", 3_000)
    generate_events(tmp_path / "events.parquet", n_events=10_000, seed=5)
    assert pq.read_metadata(tmp_path / "logins.parquet").num_row_groups >= 3
    con = duckdb.connect()
    for name in ("events", *STREAMS):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{tmp_path / name}.parquet')")
    for stream in ("events", "logins", "refunds", "clicks"):
        assert one(con, f"SELECT count(*) FROM {stream} WHERE user_id NOT IN (SELECT user_id FROM signups)") == 0
    assert one(con, "SELECT count(*) FROM refunds WHERE order_id NOT IN (SELECT event_id FROM events)") == 0
    assert one(con, LOGIN_BEFORE_SIGNUP) == 0


def test_demo_workspaces_get_the_streams_dataset_and_candidate(tmp_path):
    from riskconsole.scaffold import copy_demo_files
    from riskconsole.workspace import Workspace

    copy_demo_files(Workspace(tmp_path))
    assert (tmp_path / "strategies" / "candidate.yaml").exists()
    assert (tmp_path / "strategies" / "candidate_streams.yaml").exists()
    assert set(yaml.safe_load((tmp_path / "data" / "dataset.yaml").read_text())["streams"]) == set(STREAMS)


# ------------------------------------------------------------- the shipped dataset.yaml and candidate_streams


def _columns(sql: str) -> set[str]:
    return {c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


@pytest.fixture(scope="module")
def future() -> dict:
    return yaml.safe_load((DEMO_FILES / "dataset.yaml").read_text())


def test_the_shipped_dataset_loads_every_stream_and_table(future):
    assert set(future["streams"]) == set(STREAMS) and set(future["tables"]) == set(TABLES)
    kinds = {"from" if "from" in f else "lookup" if "lookup" in f else "other" for f in future["features"]}
    assert kinds == {"from", "lookup", "other"}
    assert any(isinstance(f.get("by"), list) for f in future["features"])  # a compound key
    assert any("window" in f and "by" not in f for f in future["features"])  # an all-rows window


def test_dataset_streams_names_real_files_and_columns(future, demo):
    folder = demo[0]
    schema = {name: set(pq.read_schema(folder / f"{name}.parquet").names) for name in ("events", *STREAMS, *TABLES)}
    sources = {**future["streams"], **future["tables"]}
    for name, spec in sources.items():
        assert spec["source"] == f"data/demo/{Path(spec['source']).name}"
        schema[name] = schema[Path(spec["source"]).stem]
    known = set(schema["events"])
    for feature in future["features"]:
        stream = feature.get("from", "events")
        if "sql" in feature:
            assert _columns(feature["sql"]) <= known, feature["name"]
        elif "lookup" in feature:
            table, column = feature["lookup"].split(".")
            assert column in schema[table], feature["name"]
            spec = future["tables"][table]
            assert (spec.get("key") or spec["range"]["value"]) in known, feature["name"]
        elif "graph" in feature:  # each link is a column of the orders or of a stream holding the node
            assert all(any({feature["node"], link} <= schema[s] for s in ("events", *STREAMS))
                       for link in feature["links"]), feature["name"]
        elif "first_seen" in feature:
            assert {feature["first_seen"], feature["by"]} <= set(schema["events"]), feature["name"]
        else:
            agg = next(k for k in ("count", "sum", "avg", "min", "max", "count_distinct") if k in feature)
            by = feature.get("by", [])
            by = [by] if isinstance(by, str) else by
            assert feature[agg] in schema[stream] | {"*", "label", "amount"}, feature["name"]
            assert set(by) <= set(schema[stream]) & set(schema["events"]), feature["name"]
            assert re.fullmatch(r"\d+[smhdw]", feature["window"])
        known.add(feature["name"])


def test_candidate_streams_reads_known_columns(future, demo):
    strategy = yaml.safe_load((DEMO_FILES / "strategies" / "candidate_streams.yaml").read_text())
    detectors = {yaml.safe_load(p.read_text())["name"] for p in (DEMO_FILES / "detectors").glob("*.yaml")}
    hidden = {"is_fraud", "label_ts", "fraud_scenario"}
    readable = (set(pq.read_schema(demo[0] / "events.parquet").names) - hidden) | detectors
    readable |= {f["name"] for f in future["features"]}
    assert strategy["name"] == "candidate_streams"
    assert {r["action"] for r in strategy["rules"]} == {"allow", "block", "review"}
    for rule in strategy["rules"]:
        assert set(re.findall(r"\$(\w+)", rule["when"])) <= set(strategy["params"]), rule["name"]
        assert _columns(re.sub(r"\$\w+", "1", rule["when"])) <= readable, rule["name"]
