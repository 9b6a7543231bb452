"""Every report number, recomputed independently (numpy over the frame, and plain SQL)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from datetime import datetime

from riskconsole.backtest import fetch_decisions, make_window, parse_moment
from riskconsole.errors import RiskConsoleError
from riskconsole.report import build_report, run_backtest

BUSINESS = {"review_cost": 2.0, "review_capacity": 3, "review_catch_rate": 0.5, "good_block_cost": 0.25}


def _frame(ws) -> pd.DataFrame:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    df = con.execute("SELECT * FROM frame ORDER BY _pos").df()
    con.close()
    return df


def _hand_rules(df: pd.DataFrame, burst: int = 2, big: float = 150) -> dict[str, np.ndarray]:
    """The tiny strategy's rules written again by hand, NULL = false."""
    return {
        "trusted": ((df.merchant_id == 100) & (df.amount < 30)).to_numpy(),
        "burst": (df.user_orders_1h >= burst).fillna(False).to_numpy(),
        "big_live": ((df.amount > big) & (df.channel == "live")).to_numpy(),
        "shared_device": (df.device_users_1d >= 3).fillna(False).to_numpy(),
    }


def _expected(df: pd.DataFrame, hits: dict, y: np.ndarray) -> dict:
    allow = hits["trusted"]
    block = ~allow & hits["burst"]
    review = ~allow & ~block & (hits["big_live"] | hits["shared_device"])
    flagged = block | review
    amt = df.amount.to_numpy()
    fraud, good, unknown = y == 1, y == 0, y == -1
    tp, fp = (flagged & fraud).sum(), (flagged & good).sum()
    fn, tn = (~flagged & fraud).sum(), (~flagged & good).sum()
    stopped = amt[block & fraud].sum() + BUSINESS["review_catch_rate"] * amt[review & fraud].sum()
    good_blocked = amt[block & good].sum()
    reviews = review.sum()
    days = df.ts.dt.floor("D")
    per_day = pd.Series(review).groupby(days.to_numpy()).sum()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {
        "population": len(df), "flagged": flagged.sum(), "blocked": block.sum(),
        "fraud_total": fraud.sum(), "fraud_amount": amt[fraud].sum(), "label_coverage": (~unknown).mean(),
        "max_daily_reviews": per_day.max(),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "unlabeled_flagged": (flagged & unknown).sum(), "unlabeled_total": unknown.sum(),
        "precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall),
        "amount_recall": amt[flagged & fraud].sum() / amt[fraud].sum(),
        "alert_rate": flagged.mean(),
        "fraud_amount_stopped": stopped, "good_amount_blocked": good_blocked,
        "review_cases": reviews, "review_cost": reviews * BUSINESS["review_cost"],
        "net_benefit": stopped - BUSINESS["good_block_cost"] * good_blocked - reviews * BUSINESS["review_cost"],
        "review_overflow_days": int((per_day > BUSINESS["review_capacity"]).sum()),
        "_actions": np.where(block, "block", np.where(review, "review", "allow")),
    }


def _labels(df: pd.DataFrame, as_of: pd.Timestamp | None = None) -> np.ndarray:
    known = df.is_fraud.notna()
    if as_of is not None:
        known &= df.label_ts.notna() & (df.label_ts < as_of)
    return np.where(known, df.is_fraud.fillna(-1), -1).astype(int)


def test_overall_matches_an_independent_computation(tiny_ws):
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml").report
    df = _frame(tiny_ws)
    expected = _expected(df, _hand_rules(df), _labels(df))
    for key, value in expected.items():
        if not key.startswith("_"):
            assert report["overall"][key] == pytest.approx(value), key
    assert 0 < report["overall"]["precision"] < 1 and 0 < report["overall"]["recall"] < 1


def test_overall_matches_plain_sql(tiny_ws):
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml").report
    con = duckdb.connect(str(tiny_ws.db_path), read_only=True)
    tp, fp, fn, tn, reviews = con.execute("""
        WITH d AS (SELECT *, CASE
            WHEN coalesce(merchant_id IN (100) AND amount < 30, false) THEN 'allow'
            WHEN coalesce(user_orders_1h >= 2, false) THEN 'block'
            WHEN coalesce(amount > 150 AND channel = 'live', false) OR coalesce(device_users_1d >= 3, false)
                THEN 'review' ELSE 'allow' END AS action FROM frame)
        SELECT count(*) FILTER (action <> 'allow' AND is_fraud = 1), count(*) FILTER (action <> 'allow' AND is_fraud = 0),
               count(*) FILTER (action = 'allow' AND is_fraud = 1), count(*) FILTER (action = 'allow' AND is_fraud = 0),
               count(*) FILTER (action = 'review') FROM d""").fetchall()[0]
    con.close()
    o = report["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["tn"], o["review_cases"]) == (tp, fp, fn, tn, reviews)


def test_rules_daily_and_decisions(tiny_ws):
    bt = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml")
    df = _frame(tiny_ws)
    hits, y = _hand_rules(df), _labels(df)
    expected = _expected(df, hits, y)
    flagged_fraud = (expected["_actions"] != "allow") & (y == 1)
    deciding = ["burst", "big_live", "shared_device"]
    n_deciding = sum(hits[r].astype(int) for r in deciding)
    for row in bt.report["rules"]:
        h = hits[row["name"]]
        assert row["hits"] == h.sum()
        assert (row["tp"], row["fp"]) == ((h & (y == 1)).sum(), (h & (y == 0)).sum())
        assert row["recall"] == pytest.approx((h & (y == 1)).sum() / (y == 1).sum())
        unique = (flagged_fraud & h & (n_deciding == 1)).sum() if row["name"] in deciding else 0
        assert row["unique_tp"] == unique, row["name"]
        assert row["precision"] == pytest.approx((h & (y == 1)).sum() / (h & (y >= 0)).sum())
        assert row["unlabeled_hits"] == (h & (y == -1)).sum()
        assert row["hit_amount"] == pytest.approx(df.amount[h].sum())
        assert row["fraud_amount"] == pytest.approx(df.amount[h & (y == 1)].sum())
        assert row["decided"] == {a: (h & (expected["_actions"] == a)).sum() for a in ("allow", "review", "block")}
    daily = pd.DataFrame(bt.report["daily"]).set_index("day")
    day = df.ts.dt.strftime("%Y-%m-%d").to_numpy()
    assert daily.index.tolist() == sorted(set(day))  # every day of the data, in order, none shifted
    action, amount = expected["_actions"], df.amount.to_numpy()
    for d, row in daily.iterrows():
        sel = day == d
        reviews = (sel & (action == "review")).sum()
        assert row["population"] == sel.sum()
        assert row["review_cases"] == reviews
        assert row["tp"] == (sel & (action != "allow") & (y == 1)).sum()
        assert row["fp"] == (sel & (action != "allow") & (y == 0)).sum()
        assert row["flagged"] == (sel & (action != "allow")).sum()
        assert row["blocked"] == (sel & (action == "block")).sum()
        assert row["unlabeled"] == (sel & (y == -1)).sum() and row["fraud"] == (sel & (y == 1)).sum()
        stopped = amount[sel & (action == "block") & (y == 1)].sum() + \
            BUSINESS["review_catch_rate"] * amount[sel & (action == "review") & (y == 1)].sum()
        assert row["fraud_amount_stopped"] == pytest.approx(stopped)
        assert row["over_capacity"] == (reviews > BUSINESS["review_capacity"])
    for name in ("block", "review"):
        sel = action == name
        assert bt.report["by_action"][name] == pytest.approx({
            "events": sel.sum(), "tp": (sel & (y == 1)).sum(), "fp": (sel & (y == 0)).sum(),
            "unlabeled": (sel & (y == -1)).sum(), "amount": amount[sel].sum(),
            "fraud_amount": amount[sel & (y == 1)].sum(), "good_amount": amount[sel & (y == 0)].sum()}), name
    con = tiny_ws.connect_safe()
    decisions = fetch_decisions(con, bt.compiled, bt.frame, bt.dataset, bt.window).to_pandas()
    con.close()
    assert decisions["id"].tolist() == df.event_id.tolist()
    assert decisions["action"].tolist() == expected["_actions"].tolist()
    assert decisions["label"].isna().sum() == (y == -1).sum()
    both = [i for i, rules in enumerate(decisions["matched_rules"]) if {"big_live", "shared_device"} <= set(rules)]
    assert all(hits["big_live"][i] and hits["shared_device"][i] for i in both)


def test_as_of_and_window(tiny_ws):
    window = make_window("2026-03-02", "2026-03-04", as_of="2026-03-04")
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", window).report
    df = _frame(tiny_ws)
    inside = (df.ts >= "2026-03-02") & (df.ts < "2026-03-05")
    sub = df[inside].reset_index(drop=True)
    y = _labels(sub, pd.Timestamp("2026-03-05"))
    expected = _expected(sub, _hand_rules(sub), y)
    assert report["overall"]["population"] == len(sub)
    for key in ("tp", "fp", "fn", "tn", "unlabeled_total", "precision", "net_benefit"):
        assert report["overall"][key] == pytest.approx(expected[key]), key
    assert report["window"] == {"from": "2026-03-02", "to": "2026-03-04", "note": None}  # explicit days: untouched
    assert [d["day"] for d in report["daily"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert any("no label yet" in w for w in report["warnings"])


@pytest.mark.parametrize("text, end, utc", [
    ("2026-02-01T10:00:00+05:00", False, "2026-02-01 05:00"),
    ("2026-02-01 10:00 +05:30", False, "2026-02-01 04:30"),
    ("2026-02-01T10:00:00Z", False, "2026-02-01 10:00"),
    ("2026-02-01 10:00 UTC", False, "2026-02-01 10:00"),
    ("2026-02-01 10:00 Europe/Berlin", False, "2026-02-01 09:00"),   # winter: UTC+1
    ("2026-07-01 10:00 Europe/Berlin", False, "2026-07-01 08:00"),   # summer: UTC+2
    ("2026-10-25 02:30 Europe/Berlin", False, "2026-10-25 01:30"),   # an hour repeated: its second time (CET)
    ("2026-10-25 01:59 Europe/Berlin", False, "2026-10-24 23:59"),   # ... the hour before it: CEST
    ("2026-03-29 02:30 Europe/Berlin", False, "2026-03-29 01:30"),   # an hour skipped: the offset before (CET)
    ("2026-09-06 America/Santiago", False, "2026-09-06 04:00"),      # a day whose midnight is skipped: from 01:00
    ("2026-04-04 23:30 America/Santiago", False, "2026-04-05 03:30"),  # repeated before midnight: the second (-04)
    ("2026-02-01 Europe/Berlin", False, "2026-01-31 23:00"),         # a zone's day starts at its midnight
    ("2026-02-01 Europe/Berlin", True, "2026-02-01 23:00"),          # ... and a --to day ends at the next one
    ("2026-02-01 10:00", False, "2026-02-01 10:00"),                 # no zone: UTC already
    ("2026-02-01", True, "2026-02-02 00:00"),
])
def test_times_with_an_offset_or_zone_become_utc(text, end, utc):
    assert parse_moment(text, end=end) == datetime.fromisoformat(utc)


@pytest.mark.parametrize("text, message", [
    ("yesterday", "--to 'yesterday': not a date or timestamp (e.g. 2026-03-01"),
    ("2026-02-01 10:00 Europe/Berln", "unknown time zone 'Europe/Berln'"),
    ("2026-02-01T10:00+01:00 Europe/Berlin", "both an offset and a zone name"),
    ("2026-02-01T10:00+25:00", "not a date or timestamp"),
])
def test_a_malformed_time_names_the_flag_and_an_example(text, message):
    with pytest.raises(RiskConsoleError) as err:
        parse_moment(text, end=True, what="--to")
    assert message in str(err.value) and str(err.value).startswith("--to ") and "\n" not in str(err.value)
    assert "2026-03-01T12:00:00+05:00" in str(err.value)


def test_a_window_in_another_zone_selects_the_same_events_as_in_utc(tiny_ws):
    """--from/--to with an offset select the events of the UTC instants they name (not the wall times)."""
    shifted = make_window("2026-03-02T05:00:00+05:00", "2026-03-03T12:00:00+05:00")
    plain = make_window("2026-03-02T00:00:00", "2026-03-03T07:00:00")
    assert shifted == plain
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", shifted).report
    df = _frame(tiny_ws)
    inside = (df.ts >= "2026-03-02 00:00") & (df.ts < "2026-03-03 07:00")
    assert report["overall"]["population"] == inside.sum()


def test_date_and_time_params_written_in_yaml_are_dates_and_utc_times(tiny_ws):
    """strategy.md: 'a date written as 2026-03-01 in YAML becomes a DATE'. It was refused ('params.since.bool: Input
    should be a valid boolean (+4 more)'); a time with an offset is its UTC time, from the file or from --set (it
    would else be compared by its clock time). Expected: the events at or after each instant, counted in pandas."""
    text = ("name: since\nparams: {since: 2026-03-03, at: 2026-03-03T12:00:00+05:00}\nrules:\n"
            "  - {name: new, when: 'ts >= $since', action: review}\n"
            "  - {name: later, when: 'ts >= $at AND amount < 0', action: block}\n")
    path = tiny_ws.strategies_dir / "since.yaml"
    path.write_text(text)
    df = _frame(tiny_ws)
    report = run_backtest(tiny_ws, path).report
    assert report["rules"][0]["hits"] == int((df.ts >= "2026-03-03").sum()) > 0
    assert json.loads(json.dumps(report["params"], default=str)) == {"since": "2026-03-03", "at": "2026-03-03 07:00:00"}
    path.write_text(text.replace("amount < 0", "amount >= 0"))
    at = run_backtest(tiny_ws, path).report["rules"][1]["hits"]
    moved = run_backtest(tiny_ws, path, overrides={"at": datetime.fromisoformat("2026-03-03T12:00:00-01:00")})
    assert at == int((df.ts >= "2026-03-03 07:00").sum()) and moved.report["rules"][1]["hits"] == int(
        (df.ts >= "2026-03-03 13:00").sum()) and at != moved.report["rules"][1]["hits"]


def test_set_overrides_params(tiny_ws):
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", overrides={"big": 50, "burst": 1}).report
    df = _frame(tiny_ws)
    hits = _hand_rules(df, burst=1, big=50)
    assert (hits["trusted"] & hits["burst"] & (_labels(df) >= 0)).any()  # labelled events where allow beats block
    expected = _expected(df, hits, _labels(df))
    assert report["params"] == {"burst": 1, "big": 50}
    for key, value in expected.items():
        if not key.startswith("_"):
            assert report["overall"][key] == pytest.approx(value), key


def test_review_capacity_is_exceeded_only_when_strictly_more(tiny_ws):
    """DESIGN §6: a day counts as over capacity when its review cases are strictly more than the capacity."""
    bt = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml")
    reviews = [d["review_cases"] for d in bt.report["daily"]]
    for capacity in sorted(set(reviews)):  # a capacity equal to some day's reviews: that day is not over
        dataset = bt.dataset.model_copy(update={"business": bt.dataset.business.model_copy(
            update={"review_capacity": capacity})})
        report = build_report(bt.compiled, bt.groups, dataset, bt.window)
        assert report["overall"]["review_overflow_days"] == sum(r > capacity for r in reviews), capacity
        assert [d["over_capacity"] for d in report["daily"]] == [r > capacity for r in reviews]


@pytest.mark.parametrize("train, overlaps", [
    (("2026-02-01", "2026-03-01"), True),    # ends on the first day of the window
    (("2026-03-06", "2026-04-01"), True),    # starts on the last day
    (("2026-03-02", "2026-03-03"), True),    # inside
    (("2026-01-01", "2026-12-31"), True),    # covers it
    (("2026-01-01", "2026-02-28"), False),   # ends the day before
    (("2026-03-07", "2026-04-01"), False),   # starts the day after
])
def test_detector_warning_whenever_a_training_window_overlaps(tmp_path, train, overlaps):
    from types import SimpleNamespace

    from riskconsole.report import detector_warnings
    from riskconsole.workspace import Workspace

    ws = Workspace(tmp_path)
    (ws.models_dir / "m").mkdir(parents=True)
    (ws.models_dir / "m" / "card.json").write_text(json.dumps(
        {"train": {"from": train[0], "to": train[1]}, "valid": {"from": "2025-01-01", "to": "2025-01-31"}}))
    warnings = detector_warnings(ws, SimpleNamespace(detectors=["m"]), ("2026-03-01", "2026-03-06"))
    expected = [f"detector 'm' was trained on {train[0]}..{train[1]}, which overlaps the backtest window "
                "2026-03-01..2026-03-06: its scores there are optimistic"]
    assert warnings == (expected if overlaps else [])


@pytest.mark.parametrize("kind", ["int8", "int32", "int64", "uint16", "float32", "float64", "date32"])
def test_numbers_reads_arrow_buffers_as_pyarrow_does(kind):
    """`backtest.numbers` (Arrow buffers to numpy, no pandas) equals pyarrow's conversion: chunks, slices, NULLs."""
    import pyarrow as pa

    from riskconsole.backtest import numbers

    rng = np.random.default_rng(5)
    values = [None if rng.random() < 0.2 else int(v) for v in rng.integers(0, 100, 300)]
    typ = getattr(pa, kind)()
    via = pa.int32() if kind == "date32" else pa.int64()  # a date32 is its day number
    chunks = [pa.array(values[:130], via).cast(typ), pa.array(values[130:], via).cast(typ)]
    column = pa.chunked_array(chunks).slice(7, 250)
    dtype = np.float64 if kind.startswith("float") else np.int64
    got = numbers(column, dtype)
    want = np.array([np.nan if v is None else v for v in values[7:257]], dtype=np.float64)
    if dtype is np.int64:
        want = np.nan_to_num(want, nan=0).astype(np.int64)
    np.testing.assert_array_equal(got, want)
    assert numbers(column.slice(0, 0), dtype).shape == (0,)
