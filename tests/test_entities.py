"""Entity-level strategies (DESIGN §3.2): one decision per entity per period, judged with what was known at the
period's start, labelled from an entity table or from events, money over the horizon. Every number is computed a
second way in pandas from the raw events; a future event never changes a period's features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from riskconsole.backtest import make_window
from riskconsole.cli import main
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.report import Baseline
from riskconsole.session import Session
from conftest import BASE_DATASET, random_events, write_workspace

DAY = pd.Timedelta("1D")
FEATURES = [
    {"name": "merchant_orders_3d", "count": "*", "by": "merchant_id", "window": "3d"},
    {"name": "merchant_amount_2d", "sum": "amount", "by": "merchant_id", "window": "2d"},
    {"name": "merchant_avg_5d", "avg": "amount", "by": "merchant_id", "window": "5d"},
    {"name": "merchant_max_36h", "max": "amount", "by": "merchant_id", "window": "36h"},
    {"name": "merchant_users_2d", "count_distinct": "user_id", "by": "merchant_id", "window": "2d"},
    {"name": "merchant_fraud_4d", "sum": "label", "by": "merchant_id", "window": "4d", "label_delay": "1d"},
    {"name": "merchant_refunds_3d", "count": "*", "from": "refunds", "by": "merchant_id", "window": "3d"},
    {"name": "merchant_tier", "lookup": "merchants.tier"},
    {"name": "avg_order_2d", "sql": "merchant_amount_2d / nullif(merchant_orders_3d, 0)"},
    {"name": "user_orders_1h", "count": "*", "by": "user_id", "window": "1h"},   # not a merchant's feature
    {"name": "merchant_ring_3d", "graph": "component_size", "node": "merchant_id", "links": ["user_id"],
     "window": "3d", "max_degree": 4},
]
STRATEGY = {"name": "mw", "level": {"entity": "merchant_id", "every": "1d", "horizon": "2d"},
            "params": {"k": 6, "big": 900},
            "rules": [{"name": "busy", "when": "merchant_orders_3d >= $k", "action": "review"},
                      {"name": "heavy", "when": "merchant_amount_2d > $big", "action": "block"},
                      {"name": "gold", "when": "merchant_tier = 'gold'", "action": "allow"}]}


def events(seed: int = 3) -> pd.DataFrame:
    frame = random_events(n=600, seed=seed, days=9)
    frame["merchant_id"] = pd.array(frame["merchant_id"], dtype="Int64")
    frame.loc[frame.index % 37 == 5, "merchant_id"] = pd.NA   # events with no merchant decide nothing
    return frame


def refunds(ev: pd.DataFrame, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 120
    t = ev["ts"].min() + pd.to_timedelta(rng.integers(-86_400, 9 * 86_400, n), unit="s")
    return pd.DataFrame({"refund_time": t, "merchant_id": rng.integers(100, 106, n)})


def merchants() -> pd.DataFrame:
    """Merchants 100..104 (105 is missing: unknown label); 101 and 103 confirmed fraudulent on given days."""
    return pd.DataFrame({"merchant_id": [100, 101, 102, 103, 104],
                         "tier": ["gold", "std", "std", "new", "std"],
                         "is_bad": [0, 1, 0, 1, 0],
                         "banned_at": pd.to_datetime([None, "2026-03-04 10:00", None, "2026-03-08 00:00", None])})


def make_ws(tmp_path, table_label: bool = True, seed: int = 3, extra: pd.DataFrame | None = None):
    ev = events(seed)
    if extra is not None:
        ev = pd.concat([ev, extra], ignore_index=True)
    dataset = {**BASE_DATASET, "features": FEATURES}
    dataset["columns"] = {**BASE_DATASET["columns"], "entities": ["user_id", "device_id", "merchant_id"]}
    dataset["streams"] = {"refunds": {"source": "data/refunds.csv", "columns": {"time": "refund_time"}}}
    table = {"source": "data/merchants.csv", "key": "merchant_id"}
    if table_label:
        table.update(label="is_bad", label_time="banned_at")
    dataset["tables"] = {"merchants": table}
    ws = write_workspace(tmp_path / f"ws{seed}{table_label}", ev, dataset, strategies={"mw": STRATEGY})
    refunds(ev).to_csv(ws.root / "data" / "refunds.csv", index=False)
    merchants().to_csv(ws.root / "data" / "merchants.csv", index=False)
    load(ws)
    return ws, ev


def expected(ev: pd.DataFrame, params: dict, table_label: bool, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Entity-periods computed by brute force: one row per (merchant, day with an event of it)."""
    ev = ev[ev["merchant_id"].notna()].copy()
    ev["merchant_id"] = ev["merchant_id"].astype(int)
    ref = refunds(events())
    tiers = merchants().set_index("merchant_id")
    rows = []
    for (m, day), group in ev.groupby(["merchant_id", ev["ts"].dt.floor("D")]):
        mine = ev[ev["merchant_id"] == m]
        before = lambda w: mine[(mine["ts"] >= day - w) & (mine["ts"] < day)]  # noqa: E731
        orders = len(before(3 * DAY))
        amount = before(2 * DAY)["amount"].sum()
        known = mine[(mine["ts"] >= day - 5 * DAY) & (mine["ts"] < day - DAY) & (mine["label_ts"] < day)]
        fraud_4d = float(known["is_fraud"].fillna(0).sum())
        refunds_3d = int(((ref["merchant_id"] == m) & (ref["refund_time"] >= day - 3 * DAY)
                          & (ref["refund_time"] < day)).sum())
        tier = tiers["tier"].get(m)
        hits = [orders >= params["k"], amount > params["big"], tier == "gold"]
        action = "allow" if hits[2] else "block" if hits[1] else "review" if hits[0] else "allow"
        ahead = mine[(mine["ts"] >= day) & (mine["ts"] < day + 2 * DAY)]
        if table_label:
            bad = tiers["is_bad"].get(m)
            label = -1 if bad is None or pd.isna(bad) else int(bad)
            known_since = tiers["banned_at"][m] if label == 1 else day  # good: known from the period's start
            if label >= 0 and as_of is not None and not known_since < as_of:
                label = -1
        else:
            y = group["is_fraud"]
            label = 1 if (y == 1).any() else 0 if y.notna().all() else -1
        rows.append({"merchant_id": m, "day": day, "orders": orders, "amount2d": amount, "fraud_4d": fraud_4d,
                     "refunds": refunds_3d, "action": action, "label": label,
                     "fraud_money": ahead.loc[ahead["is_fraud"] == 1, "amount"].sum(),
                     "good_money": ahead.loc[ahead["is_fraud"] == 0, "amount"].sum()})
    return pd.DataFrame(rows)


def metrics_of(exp: pd.DataFrame, catch: float = 0.5) -> dict:
    flagged = exp["action"] != "allow"
    fraud, good = exp["label"] == 1, exp["label"] == 0
    block, review = exp["action"] == "block", exp["action"] == "review"
    return {"population": len(exp), "tp": int((flagged & fraud).sum()), "fp": int((flagged & good).sum()),
            "fn": int((~flagged & fraud).sum()), "tn": int((~flagged & good).sum()),
            "unlabeled_total": int((exp["label"] == -1).sum()), "review_cases": int(review.sum()),
            "fraud_amount_stopped": float(exp.loc[block, "fraud_money"].sum()
                                          + catch * exp.loc[review, "fraud_money"].sum()),
            "good_amount_blocked": float(exp.loc[block, "good_money"].sum())}


@pytest.mark.parametrize("table_label", [True, False])
def test_entity_backtest_matches_brute_force(tmp_path, table_label):
    ws, ev = make_ws(tmp_path, table_label)
    with Session(ws) as session:
        bt = session.backtest(ws.strategies_dir / "mw.yaml")
        decisions = session.decisions(bt).to_pandas()
    exp = expected(ev, STRATEGY["params"], table_label)
    got = bt.report["overall"]
    for key, value in metrics_of(exp).items():
        assert got[key] == pytest.approx(value), key
    assert len(decisions) == len(exp)
    by_key = decisions.set_index("id")["action"]
    for row in exp.itertuples():
        assert by_key[f"{row.merchant_id}@{row.day:%Y-%m-%dT%H:%M:%S}"] == row.action
    assert bt.report["level"]["label_from"] == ("tables.merchants" if table_label else "events")
    assert "user_orders_1h" in bt.report["level"]["features_elsewhere"]
    assert set(bt.report["level"]["features"]) >= {"merchant_orders_3d", "merchant_fraud_4d", "avg_order_2d",
                                                   "merchant_ring_3d"}


def test_entity_graph_features_equal_the_event_frames_of_that_day(tmp_path):
    """A graph feature is as of the day's start, so a merchant-day's value is that of any order of it that day."""
    from conftest import query

    ws, _ = make_ws(tmp_path)
    with Session(ws) as session:
        got = session.entities(session.strategy(ws.strategies_dir / "mw.yaml").level).table.to_pandas()
    got = got[got["__w"] == 1]
    events = dict(((m, d), v) for m, d, v in query(
        ws, "SELECT merchant_id, date_trunc('day', ts), max(merchant_ring_3d) FROM frame "
            "WHERE merchant_id IS NOT NULL GROUP BY ALL"))
    assert len(events) == len(got)
    assert any(v > 1 for v in events.values())
    for row in got.itertuples():
        assert row.merchant_ring_3d == events[(row.merchant_id, row.period_start)]


def test_entity_features_as_of_period_start(tmp_path):
    """Features equal the brute force; events later on the period's day (the future) change nothing."""
    ws, ev = make_ws(tmp_path)
    with Session(ws) as session:
        view = session.entities(session.strategy(ws.strategies_dir / "mw.yaml").level)
    got = view.table.to_pandas()
    got = got[got["__w"] == 1].set_index(["merchant_id", "period_start"])
    exp = expected(ev, STRATEGY["params"], True).set_index(["merchant_id", "day"])
    assert len(got) == len(exp)
    for key, row in exp.iterrows():
        mine = got.loc[key]
        m, day = key
        ev_m = ev[ev["merchant_id"] == m]
        last = lambda w: ev_m[(ev_m["ts"] >= day - pd.Timedelta(w)) & (ev_m["ts"] < day)]  # noqa: E731
        assert mine["merchant_avg_5d"] == pytest.approx(last("5D")["amount"].mean(), nan_ok=True)
        assert mine["merchant_max_36h"] == pytest.approx(last("36h")["amount"].max(), nan_ok=True)
        assert mine["merchant_users_2d"] == last("2D")["user_id"].nunique()
        assert mine["merchant_orders_3d"] == row["orders"]
        assert mine["merchant_amount_2d"] == pytest.approx(row["amount2d"])
        assert mine["merchant_fraud_4d"] == pytest.approx(row["fraud_4d"])
        assert mine["merchant_refunds_3d"] == row["refunds"]
    # a burst of future orders at 23:00 of an existing period must not move that period's features
    first = exp.index[len(exp) // 2]
    burst = pd.DataFrame({"event_id": [f"z{i}" for i in range(30)], "ts": [first[1] + pd.Timedelta("23h")] * 30,
                          "is_fraud": pd.array([1] * 30, dtype="Int8"), "label_ts": [first[1]] * 30,
                          "amount": [5000.0] * 30, "user_id": 1, "device_id": 1, "merchant_id": first[0],
                          "channel": "web"})
    ws2, _ = make_ws(tmp_path / "later", extra=burst)
    with Session(ws2) as session:
        later = session.entities(session.strategy(ws2.strategies_dir / "mw.yaml").level).table.to_pandas()
    later = later[later["__w"] == 1].set_index(["merchant_id", "period_start"])
    feats = ["merchant_orders_3d", "merchant_amount_2d", "merchant_fraud_4d", "merchant_refunds_3d"]
    pd.testing.assert_frame_equal(later.loc[[first], feats], got.loc[[first], feats])
    assert later.loc[first, "__fraud_amount"] > got.loc[first, "__fraud_amount"]  # the money of the horizon moves


def test_as_of_hides_later_entity_labels(tmp_path):
    ws, ev = make_ws(tmp_path)
    as_of = "2026-03-05"
    with Session(ws) as session:
        bt = session.backtest(ws.strategies_dir / "mw.yaml", session.window(as_of=as_of))
    exp = expected(ev, STRATEGY["params"], True, as_of=pd.Timestamp(as_of) + DAY)
    for key, value in metrics_of(exp).items():
        if key in ("fraud_amount_stopped", "good_amount_blocked"):
            continue  # event labels of the money rows follow their own label times
        assert bt.report["overall"][key] == pytest.approx(value), key


def test_entity_labels_written_as_words_with_dated_bans_load_like_numbers(tmp_path):
    """A merchants table as a spreadsheet exports it: `yes`/`no` labels (mapped by the table's label_values, the
    unquoted YAML keys read as text) and ban dates written `04/03/2026 10:00` (the table's time_format): the same
    labels, ban times and `--as-of` answers as the numeric table. An unmapped word quarantines its row and warns."""
    as_of = "2026-03-05"
    ws, ev = make_ws(tmp_path)
    words = merchants()
    words["is_bad"] = words["is_bad"].map({1: "yes", 0: "no"})
    words["banned_at"] = words["banned_at"].dt.strftime("%d/%m/%Y %H:%M").fillna("")
    words.to_csv(ws.root / "data" / "merchants.csv", index=False)
    spec = (ws.root / "data" / "dataset.yaml").read_text()
    assert "label_time: banned_at" in spec
    spec = spec.replace("label_time: banned_at", "label_time: banned_at\n    label_values: {yes: 1, no: 0}\n"
                        "    time_format: '%d/%m/%Y %H:%M'")
    (ws.root / "data" / "dataset.yaml").write_text(spec)
    load(ws)
    with Session(ws) as session:
        got = session.backtest(ws.strategies_dir / "mw.yaml", session.window(as_of=as_of)).report["overall"]
    exp = expected(ev, STRATEGY["params"], True, as_of=pd.Timestamp(as_of) + DAY)
    assert (exp["label"] == 1).any() and (exp["label"] == -1).any()  # fraud known, fraud not yet known
    for key, value in metrics_of(exp).items():
        if key not in ("fraud_amount_stopped", "good_amount_blocked"):  # event labels: their own label times
            assert got[key] == pytest.approx(value), key
    words.loc[2, "is_bad"] = "maybe"
    words.to_csv(ws.root / "data" / "merchants.csv", index=False)
    result = load(ws)
    warning = next(w for w in result.warnings if "tables.merchants.label:" in w)
    assert "1 of 5 rows" in warning and "'maybe'" in warning and "label_values: under tables.merchants" in warning


def test_interactive_sweep_compare_and_gate(tmp_path):
    ws, _ = make_ws(tmp_path)
    path = ws.strategies_dir / "mw.yaml"
    other = dict(STRATEGY, name="mw2", params={"k": 4, "big": 900})
    (ws.strategies_dir / "mw2.yaml").write_text(yaml.safe_dump(other))
    with Session(ws) as session:
        window = make_window()
        assert session.interactive(path, window, {"k": 4}) == session.backtest(path, window, {"k": 4}).report
        swept = session.sweep(path, "k", [4, 6], window)
        assert [p["review_cases"] for p in swept["points"]] == \
            [session.backtest(path, window, {"k": k}).report["overall"]["review_cases"] for k in (4, 6)]
        bt = session.backtest(ws.strategies_dir / "mw2.yaml", window, baseline=Baseline(path, bootstrap=200))
        compare = bt.report["compare"]
        assert compare["delta"]["review_cases"] == \
            compare["candidate"]["review_cases"] - compare["baseline"]["review_cases"]
        assert compare["intervals"]
        events_strategy = {"name": "ev", "rules": [{"name": "r", "when": "amount > 100", "action": "review"}]}
        (ws.strategies_dir / "ev.yaml").write_text(yaml.safe_dump(events_strategy))
        with pytest.raises(RiskConsoleError, match="same level"):
            session.backtest(path, window, baseline=Baseline(ws.strategies_dir / "ev.yaml"))
    assert main(["gate", str(path), "--baseline", str(ws.strategies_dir / "mw2.yaml"), "--require",
                 "review_cases<=+100000", "--workspace", str(ws.root)]) == 0


@pytest.mark.parametrize("level, message", [
    ({"entity": "shop_id"}, "unknown entity 'shop_id'"),
    ({"entity": "channel"}, "'channel' is a column but not an entity"),
    ({"entity": "merchant_id", "every": "daily"}, "not a duration"),
])
def test_bad_levels(tmp_path, capsys, level, message):
    ws, _ = make_ws(tmp_path)
    bad = dict(STRATEGY, level=level)
    path = ws.strategies_dir / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = sorted(p.name for p in ws.root.rglob("*"))
    assert main(["backtest", str(path), "--workspace", str(ws.root)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "bad.yaml" in err[0]
    assert main(["validate", str(path), "--workspace", str(ws.root)]) != 0
    assert sorted(p.name for p in ws.root.rglob("*")) == before


def test_rules_cannot_read_event_values_or_entity_labels(tmp_path, capsys):
    ws, _ = make_ws(tmp_path)
    for when, message in [("amount > 10", "unknown column 'amount'"),
                          ("user_orders_1h > 1", "unknown column 'user_orders_1h'"),
                          ("__label = 1", "")]:
        bad = dict(STRATEGY, rules=[{"name": "r", "when": when, "action": "review"}])
        (ws.strategies_dir / "bad.yaml").write_text(yaml.safe_dump(bad))
        assert main(["validate", str(ws.strategies_dir / "bad.yaml"), "--workspace", str(ws.root)]) != 0
        assert message in capsys.readouterr().err
    table_label_feature = {**BASE_DATASET, "features": [{"name": "leak", "lookup": "merchants.is_bad"}]}
    table_label_feature["tables"] = {"merchants": {"source": "data/merchants.csv", "key": "merchant_id",
                                                   "label": "is_bad"}}
    ws2 = write_workspace(tmp_path / "leak", events(), table_label_feature)
    merchants().to_csv(ws2.root / "data" / "merchants.csv", index=False)
    assert main(["validate", str(ws2.dataset_path), "--workspace", str(ws2.root)]) != 0
    assert "entity label" in capsys.readouterr().err


def test_an_event_value_in_an_entity_rule_says_why_and_never_offers_an_internal_column(tmp_path, capsys):
    """`amount` in a merchant rule was "did you mean '__amount'?" (the entity frame's own money column, which no
    rule may read), and a far name listed `__label`, `__w`, ...: the message says why the level cannot read it."""
    ws, _ = make_ws(tmp_path)
    cases = [("amount > 10", ["unknown column 'amount' (a value of each event): not known at a merchant_id "
                              "period's start", "merchant_orders_3d"]),
             ("user_orders_1h > 1", ["unknown column 'user_orders_1h' (a feature: grouped by user_id): not known"]),
             ("zzzz_nothing > 1", ["unknown column 'zzzz_nothing' (known columns: "]),
             ("merchant_ordrs_3d > 1", ["did you mean 'merchant_orders_3d'?"])]
    for when, parts in cases:
        bad = dict(STRATEGY, rules=[{"name": "r", "when": when, "action": "review"}])
        (ws.strategies_dir / "bad.yaml").write_text(yaml.safe_dump(bad))
        assert main(["validate", str(ws.strategies_dir / "bad.yaml"), "--workspace", str(ws.root)]) == 1
        err = capsys.readouterr().err
        assert all(part in err for part in parts), err
        assert "__" not in err, err
        with pytest.raises(RiskConsoleError) as raised, Session(ws) as session:
            session.backtest(ws.strategies_dir / "bad.yaml")
        assert all(part in str(raised.value) for part in parts) and "__" not in str(raised.value)


def test_a_wrong_by_offers_only_columns_an_entity_strategy_can_be_grouped_by(tmp_path, capsys):
    """`--by` with no such column listed the entity frame's `entity_period` (its internal id: one segment per
    decision) and `period_start` among the columns to group by, in the backtest and the monitor alike: it offers
    the entity and its features, as the console's pickers do (`segments.segment_columns`)."""
    from riskconsole.entities import ID, TIME
    from riskconsole.segments import segment_columns

    ws, _ = make_ws(tmp_path)
    path = str(ws.strategies_dir / "mw.yaml")
    with Session(ws) as session:
        frame, dataset = session.view(session.strategy(path))
    offered = segment_columns(frame, dataset)
    assert ID in frame.visible and TIME in frame.visible and not {ID, TIME} & set(offered)
    assert {"merchant_id", "merchant_orders_3d"} <= set(offered)
    monitor = ["monitor", path, "--from", "2026-03-06", "--to", "2026-03-09", "--reference", "2026-03-01:2026-03-05"]
    for command in (["backtest", path, "--format", "json", "--out", str(tmp_path / "out")], monitor):
        assert main([*command, "--by", "zzzz", "--workspace", str(ws.root)]) == 1
        err = capsys.readouterr().err
        assert "(columns: " in err, err
        listed = err[err.index("(columns: ") + len("(columns: "):err.rindex(", ...)")].split(", ")
        assert listed == sorted(offered)[:12], err
    assert main(["backtest", path, "--by", "merchant_ordrs_3d", "--workspace", str(ws.root), "--format", "json",
                 "--out", str(tmp_path / "out")]) == 1
    assert "did you mean 'merchant_orders_3d'?" in capsys.readouterr().err


def test_an_entity_monitor_drifts_its_levels_features_over_its_entity_periods(tmp_path):
    """The monitor of an entity-level strategy drifted nothing ("0 of 0" columns: its dataset view lists no
    features): it drifts every feature of its level (not its key, id or time), each share counted over
    entity-periods (one per merchant and day with events, in the reference and the window), never the frame's
    money rows."""
    from riskconsole.entities import ID, TIME

    ws, ev = make_ws(tmp_path)
    path = ws.strategies_dir / "mw.yaml"
    with Session(ws) as session:
        frame, _ = session.view(session.strategy(path))
        result = session.monitor(path, "2026-03-08", "2026-03-09", "2026-03-01:2026-03-07")
    times = {c for c, t in frame.columns.items() if t.startswith("TIMESTAMP")}
    assert {d["column"] for d in result["drift"]} == set(frame.visible) - {"merchant_id", ID, TIME} - times
    day = ev.dropna(subset=["merchant_id"]).assign(day=lambda e: e["ts"].dt.strftime("%Y-%m-%d"))
    periods = day[["merchant_id", "day"]].drop_duplicates()["day"]
    n_ref, n_win = int((periods <= "2026-03-07").sum()), int((periods >= "2026-03-08").sum())
    shares = [(b["reference"], b["window"]) for d in result["drift"] for b in d["bins"]]
    assert shares and n_ref and n_win
    for ref, win in shares:  # k / entity-periods, to the 6 decimals written
        assert abs(ref * n_ref - round(ref * n_ref)) < 1e-4 and abs(win * n_win - round(win * n_win)) < 1e-4


def test_validate_names_every_bad_rule_of_an_entity_strategy(tmp_path, capsys):
    """As for an order strategy: each bad rule on its own line, in file order (it stopped at the first)."""
    ws, _ = make_ws(tmp_path)
    rules = [{"name": "typo", "when": "merchant_ordrs_3d >= $k", "action": "review"},
             {"name": "fine", "when": "merchant_amount_2d > $big", "action": "block"},
             {"name": "quoted", "when": "merchant_amount_2d > 'big'", "action": "review"}]
    (ws.strategies_dir / "bad.yaml").write_text(yaml.safe_dump(dict(STRATEGY, rules=rules)))
    assert main(["validate", str(ws.strategies_dir / "bad.yaml"), "--workspace", str(ws.root)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("'")[1] for line in lines] == ["typo", "quoted"], lines
    assert "did you mean 'merchant_orders_3d'" in lines[0] and "fails on every row" in lines[1]


def test_an_entity_strategy_reads_a_list(tmp_path):
    """`merchant_id IN LIST watched` decides exactly the listed merchants' periods (and an edit is seen at once)."""
    ws, ev = make_ws(tmp_path)
    (ws.root / "lists").mkdir()
    (ws.root / "lists" / "watched.csv").write_text("value\n101\n103\n")
    body = dict(STRATEGY, params={}, rules=[{"name": "watched", "when": "merchant_id IN LIST watched",
                                             "action": "block"}])
    path = ws.strategies_dir / "listed.yaml"
    path.write_text(yaml.safe_dump(body))
    periods = expected(ev, STRATEGY["params"], True)
    with Session(ws) as session:
        report = session.backtest(path).report
        assert report["overall"]["blocked"] == int(periods["merchant_id"].isin([101, 103]).sum())
        (ws.root / "lists" / "watched.csv").write_text("value\n101\n")
        assert session.backtest(path).report["overall"]["blocked"] == int((periods["merchant_id"] == 101).sum())


def test_an_entity_strategy_reads_a_dated_list_at_each_period_start(tmp_path):
    """An entry with `added`/`expires` counts on the periods whose start is in [added, expires): the entity frame
    has no event time, so the list is replayed at each period's start (it once compared with the events' time
    column, absent there, and every such strategy was refused)."""
    ws, ev = make_ws(tmp_path)
    (ws.root / "lists").mkdir()
    (ws.root / "lists" / "watched.csv").write_text(
        "value,added,expires\n101,2026-03-04 00:00,\n103,,2026-03-06\n104,2026-03-03 12:00,2026-03-07\n")
    body = dict(STRATEGY, params={}, rules=[{"name": "watched", "when": "merchant_id IN LIST watched",
                                             "action": "block"}])
    path = ws.strategies_dir / "dated.yaml"
    path.write_text(yaml.safe_dump(body))
    periods = expected(ev, STRATEGY["params"], True)
    day = periods["day"]
    listed = (((periods["merchant_id"] == 101) & (day >= pd.Timestamp("2026-03-04")))
              | ((periods["merchant_id"] == 103) & (day < pd.Timestamp("2026-03-06")))
              | ((periods["merchant_id"] == 104) & (day >= pd.Timestamp("2026-03-03 12:00"))
                 & (day < pd.Timestamp("2026-03-07"))))
    assert 0 < listed.sum() < len(periods)
    with Session(ws) as session:
        assert session.backtest(path).report["overall"]["blocked"] == int(listed.sum())


def test_overlapping_and_short_horizons_are_said(tmp_path):
    """With horizon > every an order's money counts once per flagged period, with horizon < every only the
    period's first hours count: the report says which (and nothing when they are equal)."""
    ws, _ = make_ws(tmp_path)
    same = dict(STRATEGY, name="same", level={"entity": "merchant_id", "every": "1d"})
    short = dict(STRATEGY, name="short", level={"entity": "merchant_id", "every": "1d", "horizon": "6h"})
    for body in (same, short):
        (ws.strategies_dir / f"{body['name']}.yaml").write_text(yaml.safe_dump(body))
    with Session(ws) as session:
        overlapping = session.backtest(ws.strategies_dir / "mw.yaml").report["warnings"]
        once = session.backtest(ws.strategies_dir / "same.yaml").report
        first = session.backtest(ws.strategies_dir / "short.yaml").report
    assert any("up to 2×" in w and "horizon: 1d" in w for w in overlapping)
    assert not any("horizon" in w for w in once["warnings"])
    said = [w for w in first["warnings"] if "horizon" in w]
    assert len(said) == 1 and "only its orders in the first 6h count" in said[0] and "horizon: 1d" in said[0]
    # what it says: the same decisions, less money (a period's orders after its first 6 hours left out)
    assert first["overall"]["flagged"] == once["overall"]["flagged"]
    assert first["overall"]["fraud_amount_stopped"] < once["overall"]["fraud_amount_stopped"]


def test_the_entity_frame_is_saved_for_the_next_process_and_never_stale(tmp_path, capsys):
    """`load` builds the frame of each entity strategy and saves it; a new Session reads it (no rebuild) with the same
    report; a new load, a changed dataset spec or a damaged file never serves an old frame."""
    from riskconsole import entities

    ws, ev = make_ws(tmp_path)
    path = ws.strategies_dir / "mw.yaml"
    assert main(["load", "--workspace", str(ws.root)]) in (0, None)
    assert "entity frame: merchant_id every 1d (horizon 2d):" in capsys.readouterr().out
    saved = sorted((ws.root / entities.CACHE_DIR).glob("*.parquet"))
    assert len(saved) == 1
    with Session(ws) as session:
        fresh = session.backtest(path).report
    built = entities.build
    try:
        entities.build = lambda *a, **k: pytest.fail("the saved frame was rebuilt")
        with Session(ws) as session:
            assert session.backtest(path).report == fresh
    finally:
        entities.build = built
    # a new load: a new version, a new file; the old one is gone once the new one is written
    late = ev.iloc[:5].assign(event_id=[f"late{i}" for i in range(5)], ts=ev["ts"].max() + pd.Timedelta("2h"),
                              merchant_id=101)
    pd.concat([ev, late]).to_csv(ws.root / "data" / "events.csv", index=False)
    load(ws)
    with Session(ws) as session:
        after = session.backtest(path).report
    assert after["overall"]["population"] > fresh["overall"]["population"]
    now = sorted((ws.root / entities.CACHE_DIR).glob("*.parquet"))
    assert len(now) == 1 and now != saved
    # a damaged file is rebuilt, not read
    now[0].write_bytes(b"not parquet")
    with Session(ws) as session:
        assert session.backtest(path).report == after
    # another spec (a feature's window changed) is another file
    spec = yaml.safe_load((ws.root / "data" / "dataset.yaml").read_text())
    spec["features"][0]["window"] = "8d"
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    with Session(ws) as session:
        level = session.strategy(path).level
        eight = session.entities(level).table.column("merchant_orders_3d").to_pylist()
    assert len(list((ws.root / entities.CACHE_DIR).glob("*.parquet"))) == 2
    assert sum(v or 0 for v in eight) > sum(v or 0 for v in session_values(ws, path))


def session_values(ws, path) -> list:
    """merchant_orders_3d of the saved frame of the loaded spec (3d windows)."""
    spec = yaml.safe_load((ws.root / "data" / "dataset.yaml").read_text())
    spec["features"][0]["window"] = "3d"
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    with Session(ws) as session:
        return session.entities(session.strategy(path).level).table.column("merchant_orders_3d").to_pylist()


def _production_blocked() -> tuple[pd.DataFrame, pd.Series, dict]:
    """The events with production blocking every order over 150, left unlabelled, and a dataset mapping prod_action
    (merchants as an entity)."""
    ev = events()
    blocked = ev["amount"] > 150
    ev["prod_action"] = np.where(blocked, "block", "allow")
    ev.loc[blocked, "is_fraud"] = pd.NA
    ev.loc[blocked, "label_ts"] = pd.NaT
    dataset = {**BASE_DATASET, "features": FEATURES[:1]}
    dataset["columns"] = {**BASE_DATASET["columns"], "entities": ["user_id", "merchant_id"],
                          "prod_action": "prod_action"}
    return ev, blocked, dataset


def test_money_left_out_where_production_hid_outcomes_is_said(tmp_path):
    """With prod_action mapped, an entity report's horizon money counts labelled events only: production-blocked
    events without a label were left out without a word (the order-level report bounds them). The warning counts
    exactly the blocked, unlabelled events inside the horizons of the window's entity-periods."""
    ev, blocked, dataset = _production_blocked()
    body = {"name": "mw", "level": {"entity": "merchant_id", "every": "1d", "horizon": "2d"},
            "rules": [{"name": "busy", "when": "merchant_orders_3d >= 2", "action": "block"}]}
    ws = write_workspace(tmp_path / "hid", ev, dataset, strategies={"mw": body})
    load(ws)
    day = ev["ts"].dt.floor("D")
    periods = set(zip(ev["merchant_id"].dropna().astype(int), day[ev["merchant_id"].notna()]))
    first, last = pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-05")
    hidden = ev[blocked & ev["merchant_id"].notna()]
    inside = [any((int(m), d) in periods for d in (t.floor("D"), t.floor("D") - DAY) if first <= d <= last)
              for m, t in zip(hidden["merchant_id"], hidden["ts"])]
    count, amount = int(np.sum(inside)), float(hidden.loc[inside, "amount"].sum())
    assert 0 < count < len(hidden)
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "mw.yaml", make_window("2026-03-02", "2026-03-05")).report
    said = [w for w in report["warnings"] if "blocked by production and have no label" in w]
    assert len(said) == 1 and said[0].startswith(f"{count:,} events in the horizons of these merchant_id periods")
    assert f"their amount: {amount:,.0f})" in said[0]


@pytest.mark.parametrize("population, start, end, hand_end", [
    (None, "2026-03-02 12:00:00", "2026-03-03 12:00:00", "2026-03-03 12:00:00"),
    ("merchant_id = 101", "2026-03-02", "2026-03-05", "2026-03-06")])
def test_hidden_outcomes_are_counted_over_the_reports_own_entity_periods(tmp_path, population, start, end, hand_end):
    """The warning counted the horizons of every entity-period from the first day's midnight to the last day's end,
    whatever the window's instants and the strategy's population: a window from 12:00 counted the morning's
    periods and the evening's (39 events where its periods' horizons hold 17), a population of one merchant every
    merchant's (79 for 16). It counts the periods the report decides: in the window, in the population."""
    ev, blocked, dataset = _production_blocked()
    body = {"name": "mw", "level": {"entity": "merchant_id", "every": "6h", "horizon": "6h"},
            "rules": [{"name": "busy", "when": "merchant_orders_3d >= 2", "action": "block"}]}
    if population:
        body["population"] = population
    ws = write_workspace(tmp_path / "hid", ev, dataset, strategies={"mw": body})
    load(ws)
    hidden = ev[blocked & ev["merchant_id"].notna()]
    if population:
        hidden = hidden[hidden["merchant_id"] == 101]
    # 6h periods and horizons: an event is in the horizon of the period it falls in, which is in the window when it
    # starts in [start, end) (the window's instants; a date `--to`: its whole day)
    inside = hidden[(hidden["ts"] >= pd.Timestamp(start)) & (hidden["ts"] < pd.Timestamp(hand_end))]
    count, amount = len(inside), float(inside["amount"].sum())
    assert 0 < count < len(ev[blocked & ev["merchant_id"].notna()])
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "mw.yaml", make_window(start, end)).report
    said = [w for w in report["warnings"] if "blocked by production and have no label" in w]
    assert len(said) == 1 and said[0].startswith(f"{count:,} events in the horizons of these merchant_id periods")
    assert f"their amount: {amount:,.0f})" in said[0]
