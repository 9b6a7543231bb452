"""The demo generator: seeded, sorted, labeled late, every scenario present; the demo files name real columns."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml
from sqlglot import exp

from riskconsole.demo import SCENARIOS, generate_events

N = 30_000
DEMO_FILES = Path(__file__).resolve().parents[1] / "riskconsole" / "demo_files"
END = np.datetime64("2026-05-01T00:00:00")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("demo") / "events.parquet"
    return path, generate_events(path, n_events=N, seed=7)


@pytest.fixture(scope="module")
def events(demo: tuple[Path, dict]):
    return pq.read_table(demo[0]).to_pandas()


def test_rows_ids_and_order(events, demo):
    assert len(events) == N == demo[1]["rows"]
    assert events["event_id"].is_unique
    assert events["ts"].is_monotonic_increasing
    assert events["event_id"].iloc[0] == "o00000001"


def test_same_seed_same_bytes_other_seed_other_data(demo, tmp_path):
    again, other = tmp_path / "again.parquet", tmp_path / "other.parquet"
    generate_events(again, n_events=N, seed=7)
    generate_events(other, n_events=N, seed=8)
    assert again.read_bytes() == demo[0].read_bytes()
    assert not pq.read_table(other).equals(pq.read_table(demo[0]))


def test_schema_dtypes(demo):
    schema = pq.read_schema(demo[0])
    types = {f.name: str(f.type) for f in schema}
    assert types["is_fraud"] == "int8" and types["amount"] == "double" and types["items"] == "int16"
    assert types["ts"].startswith("timestamp") and "tz" not in types["ts"]
    for entity in ("user_id", "merchant_id", "device_id", "payment_id", "address_id", "influencer_id"):
        assert types[entity] == "int64"
    assert types["is_new_device"] == types["is_new_address"] == "bool"


def test_fraud_rate_and_scenarios(events, demo):
    summary = demo[1]
    fraud = (events["fraud_scenario"] != "none").mean()
    assert 0.005 <= fraud <= 0.03
    assert summary["fraud_rate"] == pytest.approx(fraud, abs=1e-5)
    present = set(events["fraud_scenario"]) - {"none"}
    assert len(present) >= 4 and present <= set(SCENARIOS)
    assert summary["scenarios"] == events["fraud_scenario"].value_counts().reindex(SCENARIOS, fill_value=0).to_dict()


def test_labels_arrive_late_and_never_after_now(events):
    labeled = events[events["is_fraud"].notna()]
    assert (labeled["label_ts"] > labeled["ts"]).all()
    assert (labeled["label_ts"] < END).all()
    assert events["is_fraud"].isna().equals(events["label_ts"].isna())
    assert (labeled["is_fraud"] == (labeled["fraud_scenario"] != "none")).all()


def test_newest_week_mostly_unlabeled_older_orders_mostly_labeled(events):
    last_week = events[events["ts"] >= END - np.timedelta64(7, "D")]
    first_60_days = events[events["ts"] < np.datetime64("2026-03-02")]
    assert last_week["is_fraud"].isna().mean() > 0.95
    assert 0.97 < first_60_days["is_fraud"].notna().mean() < 1.0  # ~1% is never labeled


def test_mid_period_attack_starts_after_the_first_half(events):
    attack = events[events["fraud_scenario"] == "new_attack_midperiod"]
    assert len(attack) > 0
    assert attack["ts"].min() >= np.datetime64("2026-03-02")
    assert (attack["payment_method"] == "bnpl").all()


def test_entities_are_consistent(events):
    per_user = events.groupby("user_id").agg(countries=("user_country", "nunique"), devices=("device_id", "nunique"))
    assert (per_user["countries"] == 1).all()
    assert per_user["devices"].median() <= 2
    creator_driven = events["channel"].isin(["live", "video", "affiliate_link"])
    assert events["influencer_id"].notna().equals(creator_driven)
    assert (events["amount"] > 0).all() and (events["coupon_amount"] >= 0).all()
    assert (events["account_age_days"] >= 0).all()


def test_too_small_is_refused(tmp_path):
    with pytest.raises(ValueError, match="n_events"):
        generate_events(tmp_path / "x.parquet", n_events=100)


def test_default_size_has_every_scenario(tmp_path):
    summary = generate_events(tmp_path / "events.parquet")
    assert summary["rows"] == 1_000_000
    assert all(summary["scenarios"][name] > 1_000 for name in SCENARIOS)
    assert 0.005 <= summary["fraud_rate"] <= 0.02
    assert 0.6 <= summary["labeled_share"] <= 0.8


# ------------------------------------------------------------- the demo files


def _columns(sql: str) -> set[str]:
    return {c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


@pytest.fixture(scope="module")
def dataset() -> dict:
    return yaml.safe_load((DEMO_FILES / "dataset.yaml").read_text())


def test_dataset_yaml_names_only_existing_columns(dataset, demo):
    columns = set(pq.read_schema(demo[0]).names)
    roles = dataset["columns"]
    assert dataset["source"] == "data/demo/events.parquet"
    assert {roles[k] for k in ("id", "time", "label", "label_time", "amount")} <= columns
    assert set(roles["entities"]) <= columns and roles["label_derived"] == ["fraud_scenario"]
    known, aliases = set(columns), {"label": roles["label"], "amount": roles["amount"], "*": "event_id"}
    for feature in dataset["features"]:
        if "sql" in feature:
            assert _columns(feature["sql"]) <= known, feature["name"]
        elif "graph" in feature or "first_seen" in feature:
            graph = "graph" in feature
            keys = [feature["node"], *feature["links"]] if graph else [feature["first_seen"], feature["by"]]
            assert set(keys) <= set(roles["entities"]), feature["name"]
        elif "from" not in feature and "lookup" not in feature:  # streams and tables: tests/test_demo_streams.py
            agg = next(k for k in ("count", "sum", "avg", "min", "max", "count_distinct") if k in feature)
            by = feature.get("by", [])
            assert aliases.get(feature[agg], feature[agg]) in columns
            assert set([by] if isinstance(by, str) else by) <= set(roles["entities"])
            assert re.fullmatch(r"\d+[smhdw]", feature["window"])
        known.add(feature["name"])
    assert 10 <= len(dataset["features"]) <= 70  # the merchant, creator and graph features of issue 10 made it 54
    assert dataset["business"]["review_capacity"] > 0


@pytest.mark.parametrize("name", ["baseline", "candidate"])
def test_strategies_use_known_columns_and_params(name, dataset, demo):
    strategy = yaml.safe_load((DEMO_FILES / "strategies" / f"{name}.yaml").read_text())
    hidden = {"is_fraud", "label_ts", "fraud_scenario"}
    detectors = {yaml.safe_load(p.read_text())["name"] for p in (DEMO_FILES / "detectors").glob("*.yaml")}
    readable = (set(pq.read_schema(demo[0]).names) - hidden) | {f["name"] for f in dataset["features"]} | detectors
    assert strategy["name"] == name and 5 <= len(strategy["rules"]) <= 12
    assert {r["action"] for r in strategy["rules"]} == {"allow", "block", "review"}
    for rule in strategy["rules"]:
        params = re.findall(r"\$(\w+)", rule["when"])
        assert set(params) <= set(strategy["params"]), rule["name"]
        assert _columns(re.sub(r"\$\w+", "1", rule["when"])) <= readable, rule["name"]


@pytest.mark.parametrize("name, entity", [("merchant_watch", "merchant_id"), ("influencer_watch", "influencer_id")])
def test_entity_strategies_read_only_their_entitys_features(name, entity, dataset):
    """An entity-level rule reads what is known of the entity at the period's start: features grouped by it
    (windows of the orders, of a stream, or of its labels) and expressions over those, never another key's."""
    strategy = yaml.safe_load((DEMO_FILES / "strategies" / f"{name}.yaml").read_text())
    assert strategy["name"] == name and strategy["level"]["entity"] == entity
    assert entity in dataset["columns"]["entities"]
    own: set[str] = set()
    for feature in dataset["features"]:
        if feature.get("by") == entity or ("sql" in feature and _columns(feature["sql"]) <= own and
                                           _columns(feature["sql"])):
            own.add(feature["name"])
    for rule in strategy["rules"]:
        assert set(re.findall(r"\$(\w+)", rule["when"])) <= set(strategy["params"]), rule["name"]
        assert _columns(re.sub(r"\$\w+", "1", rule["when"])) <= own, rule["name"]


def test_events_load_into_duckdb_with_the_declared_roles(demo, dataset):
    roles = dataset["columns"]
    row = duckdb.sql(f"SELECT count(DISTINCT {roles['id']}), min({roles['time']}), max({roles['label_time']}) "
                     f"FROM read_parquet('{demo[0]}')").fetchall()[0]
    assert row[0] == N and str(row[1]).startswith("2026-01-01") and row[2] < END.astype(object)


def test_repository_workspace_matches_the_packaged_demo_files():
    """The repo's own workspace files are the demo's (so `make run` and `riskconsole demo` agree)."""
    from riskconsole.scaffold import DEMO_FILES, FUTURE_DEMO_FILES

    root = DEMO_FILES.parents[1]
    for src in DEMO_FILES.rglob("*.yaml"):
        rel = src.relative_to(DEMO_FILES)
        if rel.as_posix() in FUTURE_DEMO_FILES:  # not copied into workspaces yet
            continue
        twin = root / "data" / rel if rel.name == "dataset.yaml" else root / rel
        assert twin.read_text() == src.read_text(), f"{twin} differs from {src}"


@pytest.mark.parametrize("given, said", [
    ("3600", "the demo needs at least 5,000 orders (got 3,600): its fraud scenarios need a month of them"),
    ("1e5", "'1e5' is not a whole number of orders (e.g. 200000)"),
])
def test_demo_events_too_few_or_not_a_number_is_a_usage_error_before_anything_is_written(tmp_path, capsys, given,
                                                                                          said):
    """`demo --events 3600` ended in the generator's ValueError traceback; it is argparse's one error line, and
    nothing is written."""
    from riskconsole.cli import main

    with pytest.raises(SystemExit) as end:
        main(["demo", "--events", given, "--workspace", str(tmp_path / "ws")])
    assert end.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"riskconsole demo: error: argument --events: {said}"
    assert not (tmp_path / "ws").exists()
