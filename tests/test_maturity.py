"""Backtest windows default to mature days, saying so (issue 12 item 4; DESIGN §6.2).

Labels here arrive exactly DELAY days after each event, so by construction the events of the last DELAY days are not
labelled yet and the mature window is everything up to the data's last day minus DELAY.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlglot import exp

from riskconsole.cli import main
from riskconsole.session import Session
from tests.conftest import write_workspace

DELAY, DAYS, PER_DAY = 3, 10, 40
FIRST = date(2026, 3, 1)
LAST = FIRST + timedelta(days=DAYS - 1)
STRATEGY = {"name": "s", "rules": [{"name": "big", "when": "amount > 100", "action": "review"}]}


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = DAYS * PER_DAY
    ts = pd.Timestamp(FIRST) + pd.to_timedelta(np.repeat(np.arange(DAYS), PER_DAY) * 86_400
                                               + rng.integers(0, 86_400, n), unit="s")
    label_ts = ts + pd.Timedelta(days=DELAY)
    arrived = label_ts < pd.Timestamp(LAST + timedelta(days=1))  # a label not arrived by the data's end is empty
    fraud = pd.array(np.where(arrived, (rng.random(n) < 0.2).astype(float), np.nan), dtype="Int8")
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(n)], "ts": ts, "is_fraud": fraud,
                         "label_ts": label_ts.where(arrived), "amount": np.round(rng.gamma(2, 60, n), 2),
                         "user_id": rng.integers(1, 30, n), "device_id": rng.integers(1, 9, n)})


@pytest.fixture(scope="module")
def late_ws(tmp_path_factory):
    from riskconsole.ingest import load

    events = _events()
    ws = write_workspace(tmp_path_factory.mktemp("late") / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    return ws, events


def test_the_default_window_ends_on_the_last_mature_day(late_ws):
    ws, events = late_ws
    mature_last = LAST - timedelta(days=DELAY)
    with Session(ws) as session:
        window = session.window()
        report = session.backtest(ws.strategies_dir / "s.yaml", window).report
    assert report["window"] == {"from": FIRST.isoformat(), "to": mature_last.isoformat(), "note": window.note}
    assert f"{mature_last + timedelta(days=1)}..{LAST}" in window.note and "immature" in window.note
    assert report["warnings"][0] == window.note and report["warnings"].count(window.note) == 1
    # second way: the events of the mature days, counted in pandas
    assert report["overall"]["population"] == int((events["ts"].dt.date <= mature_last).sum())
    assert report["overall"]["unlabeled_total"] == 0  # every event of a mature day has its label


def test_explicit_days_are_respected_untouched(late_ws):
    ws, _ = late_ws
    with Session(ws) as session:
        to = session.window(None, LAST.isoformat())
        both = session.window("2026-03-03", "2026-03-09")
        mature = session.window("2026-03-02", "2026-03-07")
        start_only = session.window("2026-03-04")
    mature_last = LAST - timedelta(days=DELAY)  # kept, and said: its last days count labels still arriving
    assert to.end.date() == LAST + timedelta(days=1) and to.note.startswith(
        f"window reaches past {mature_last}, the last day whose labels are mature (events are 95% as labelled as old "
        f"events only {DELAY} days after") and f"on {mature_last + timedelta(days=1)}..{LAST} events not yet " \
        f"labelled are left out" in to.note and to.note.endswith(
            f"end the window at {mature_last} (--to {mature_last}) to judge on mature labels")
    assert mature.note is None and (mature.start.date(), mature.end.date()) == (date(2026, 3, 2), date(2026, 3, 8))
    assert f"on {mature_last + timedelta(days=1)}..2026-03-09 events" in both.note and (both.start.date(), both.end.date()) == (date(2026, 3, 3), date(2026, 3, 10))
    assert start_only.start.date() == date(2026, 3, 4) and start_only.end.date() == LAST - timedelta(days=DELAY - 1)
    assert start_only.note is not None
    with Session(ws) as session:
        as_of = session.window(None, None, "2026-03-08")
    assert as_of.end is None and as_of.note is None  # --as-of already says which labels count: every day


def test_a_to_timestamp_inside_a_day_names_that_day_as_the_last(late_ws):
    """`--to "2026-03-09 06:00"` ends the window inside 2026-03-09: the note's days end there, as the report's
    window and its daily list do (it read `2026-03-08..2026-03-07` for a --to inside the first day past mature)."""
    ws, events = late_ws
    mature_last = LAST - timedelta(days=DELAY)
    with Session(ws) as session:
        inside = session.window(None, f"{LAST} 06:00")
        first_day = session.window(f"{LAST} 01:00", f"{LAST} 06:00")
        report = session.backtest(ws.strategies_dir / "s.yaml", inside).report
    # second way: the last day holding an event before the --to, in pandas
    last_in = events.loc[events["ts"] < pd.Timestamp(f"{LAST} 06:00"), "ts"].max().date()
    assert last_in == LAST and report["window"]["to"] == LAST.isoformat() and report["daily"][-1]["day"] == str(LAST)
    assert f"on {mature_last + timedelta(days=1)}..{LAST} events not yet labelled" in inside.note
    assert first_day.note.startswith("every day of the window is past") and f"on {LAST}..{LAST} events" in \
        first_day.note


def test_a_window_of_immature_days_only_is_kept(late_ws):
    ws, _ = late_ws
    with Session(ws) as session:
        window = session.window((LAST - timedelta(days=1)).isoformat())
    assert window.end is None and window.note is None


def test_cli_prints_the_same_window_and_note(late_ws, capsys, tmp_path):
    import json

    ws, _ = late_ws
    code = main(["backtest", str(ws.strategies_dir / "s.yaml"), "--workspace", str(ws.root), "--out",
                 str(tmp_path / "out"), "--format", "json"])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    with Session(ws) as session:
        note = session.window().note
    assert code == 0 and report["window"]["note"] == note and note in out
    assert f"{FIRST}..{LAST - timedelta(days=DELAY)}" in out
    main(["backtest", str(ws.strategies_dir / "s.yaml"), "--workspace", str(ws.root), "--to", LAST.isoformat(),
          "--out", str(tmp_path / "all"), "--format", "json"])
    assert "immature" not in capsys.readouterr().out.split("\n")[0]
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    assert report["window"]["to"] == LAST.isoformat() and report["warnings"][0].startswith("window reaches past")


def test_the_console_defaults_to_the_same_window_and_note(late_ws, monkeypatch):
    from conftest import console_page

    ws, _ = late_ws
    at = console_page(monkeypatch, ws.root, "backtest_page")
    assert not at.exception, [e.value for e in at.exception]
    with Session(ws) as session:
        note = session.window().note
    captions, warnings = [c.value for c in at.caption], [w.value for w in at.warning]
    assert warnings.count(note) == 1 and note not in captions, (warnings, captions)  # said once, as a warning
    mature_last = LAST - timedelta(days=DELAY)
    assert f"Ends {mature_last}, the last day whose labels are mature" in at.sidebar.caption[0].value
    assert any(f"{FIRST} … {mature_last}" in c for c in captions), captions
    at = console_page(monkeypatch, ws.root, "export_page")  # no warnings on the page: the whole note in the sidebar
    assert not at.exception and note in [c.value for c in at.sidebar.caption], [c.value for c in at.sidebar.caption]


def test_a_monitor_on_days_whose_labels_are_still_arriving_says_so_on_every_face(late_ws, tmp_path, capsys,
                                                                                  monkeypatch):
    """Labels arrive DELAY days late: a monitor of the last two days against the eight before counts only the
    labels that had arrived on both window days and on the reference's days after the last mature day, and says
    so in monitor.json, the CLI, monitor.md and the Monitor page (a monitor counts the labels known by its window's
    end, so its last DELAY days are never mature)."""
    from conftest import console_page

    ws, _ = late_ws
    path = ws.strategies_dir / "s.yaml"
    mature_last = LAST - timedelta(days=DELAY)  # labels known by LAST: every event up to here has its label
    window, reference = (LAST - timedelta(days=1), LAST), (FIRST, LAST - timedelta(days=2))
    with Session(ws) as session:
        result = session.monitor(path, window[0].isoformat(), window[1].isoformat(),
                                 f"{reference[0]}:{reference[1]}")
    late_reference = (reference[1] - mature_last).days
    assert result["warnings"] == [
        f"labels known by {LAST} are immature after {mature_last} (events are 95% as labelled as old events only "
        f"{DELAY} days after they happen): precision, recall and caught money on 2 of the window's 2 days, and on "
        f"{late_reference} of the reference's 8 days (their bands are loose), count only the labels that had arrived, "
        "so they cannot show whether the strategy got worse there"]
    out = tmp_path / "mon"
    assert main(["monitor", str(path), "--workspace", str(ws.root), "--from", window[0].isoformat(), "--to",
                 window[1].isoformat(), "--reference", f"{reference[0]}:{reference[1]}", "--out", str(out),
                 "--format", "json,md"]) in (0, None)
    assert f"warning: {result['warnings'][0]}" in capsys.readouterr().out
    from riskconsole.escape import markdown

    assert markdown(result["warnings"][0]) in (out / "monitor.md").read_text()
    at = console_page(monkeypatch, ws.root, "monitor_page")
    assert not at.exception, [e.value for e in at.exception]
    assert any("are immature after" in w.value for w in at.warning), [w.value for w in at.warning]


def test_the_maturity_rule_is_not_fooled_by_the_last_few_old_days(tmp_path):
    """Labels arriving within 4 days on 40 days of 15 events a day: mature after 4 days (the oldest days hold a
    handful of events each; a plateau taken from them alone once said 17)."""
    from riskconsole.ingest import load
    from riskconsole.maturity import mature_age
    from tests.conftest import random_events

    events = random_events(n=600, days=40)
    assert (events["label_ts"] - events["ts"]).max() < pd.Timedelta(days=4)
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    with Session(ws) as session:
        age = mature_age(session.label_age_curve())
        window = session.window()
    assert age in (4, 5)  # a delay under 4 days spans at most 4 calendar-day boundaries
    assert (events["ts"].max().date() - (window.end.date() - timedelta(days=1))).days == age


@pytest.mark.parametrize("settle", [45, 60])
def test_labels_arriving_later_than_half_the_data_are_still_waited_for(tmp_path, settle):
    """Goods labelled `settle` days after the order (a settlement date), fraud within 3 days, on 90 days: the default
    window ends `settle` days before the data's last (the day at that age partly labelled), every day before it 95%
    labelled and the day after it not, counted in pandas. The plateau read at half the
    oldest age (day 44) once came before the goods' labels and ended the window on days 1% labelled."""
    from riskconsole.ingest import load

    rng = np.random.default_rng(11)
    days, n = 90, 90 * 40
    ts = pd.Timestamp(FIRST) + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), unit="s")
    fraud = rng.random(n) < 0.02
    label_ts = ts + pd.to_timedelta(np.where(fraud, rng.integers(0, 3 * 86_400, n), settle * 86_400), unit="s")
    end = pd.Timestamp(FIRST + timedelta(days=days))
    arrived = label_ts < ts.max()  # labels known by the data's last event
    events = pd.DataFrame({"event_id": [f"e{i}" for i in range(n)], "ts": ts,
                           "is_fraud": pd.array(np.where(arrived, fraud.astype(float), np.nan), dtype="Int8"),
                           "label_ts": label_ts.where(arrived), "amount": np.round(rng.gamma(2, 60, n), 2),
                           "user_id": rng.integers(1, 300, n), "device_id": rng.integers(1, 90, n)})
    assert ts.max() < end
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    with Session(ws) as session:
        window = session.window()
    last = (window.end - timedelta(microseconds=1)).date()
    share = events.assign(day=events["ts"].dt.date).groupby("day")["is_fraud"].apply(lambda y: y.notna().mean())
    old = share[share.index < ts.max().date() - timedelta(days=settle)].mean()  # every label arrived
    assert old == 1 and settle <= (ts.max().date() - last).days <= settle + 1
    assert (share[share.index < last] >= 0.95 * old).all() and share[last + timedelta(days=1)] < 0.95 * old


# ---------------------------------------------------------------- every label source, stored by the load

MERCHANTS = 8
CONFIRMED = {2: LAST, 5: LAST, 6: LAST}  # fraud merchants, all confirmed on the data's last day (00:00)
MERCHANT_STRATEGY = {"name": "mw", "level": {"entity": "merchant_id", "every": "1d"},
                     "rules": [{"name": "busy", "when": "merchant_orders_3d >= 20", "action": "review"}]}


def _merchants() -> pd.DataFrame:
    """Merchants 1..6 labelled (2, 5 and 6 fraudulent, confirmed on their CONFIRMED day); 7 and 8 unknown."""
    ids = list(range(1, 7))
    return pd.DataFrame({"merchant_id": ids, "tier": ["std"] * len(ids), "is_bad": [int(i in CONFIRMED) for i in ids],
                         "banned_at": [pd.Timestamp(CONFIRMED[i]) if i in CONFIRMED else pd.NaT for i in ids]})


def _tables_ws(root, events: pd.DataFrame, merchants: pd.DataFrame):
    from riskconsole.ingest import load
    from tests.conftest import BASE_DATASET

    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "entities": ["user_id", "device_id", "merchant_id"]},
               "features": [*BASE_DATASET["features"],
                            {"name": "merchant_orders_3d", "count": "*", "by": "merchant_id", "window": "3d"}],
               "tables": {"merchants": {"source": "data/merchants.csv", "key": "merchant_id", "label": "is_bad",
                                        "label_time": "banned_at"}}}
    ws = write_workspace(root, events, dataset, strategies={"s": STRATEGY, "mw": MERCHANT_STRATEGY})
    merchants.to_csv(ws.root / "data" / "merchants.csv", index=False)
    load(ws)
    return ws


@pytest.fixture(scope="module")
def tables_ws(tmp_path_factory):
    events = _events()
    events["merchant_id"] = np.random.default_rng(8).integers(1, MERCHANTS + 1, len(events))
    return _tables_ws(tmp_path_factory.mktemp("tables") / "ws", events, _merchants()), events


def _curve_by_pandas(t: pd.Series, y: pd.Series, lt: pd.Series, last: date, fraud: bool = False) -> list[dict]:
    """The label-age curve a second way: per age, units, share labelled now, share of the units at least that old
    labelled within that many days (a label dated before its unit arrived at once); with `fraud`, of the fraud units
    at least that old, the share confirmed within that many days."""
    age = (pd.Timestamp(last) - t.dt.normalize()).dt.days
    delay = ((lt.dt.normalize() - t.dt.normalize()).dt.days).clip(lower=0)
    out = []
    for a in range(int(age.max()) + 1):
        now, old = age == a, age >= a
        if fraud:
            old = old & (y == 1).fillna(False)
        arrived = old & y.notna() & (delay <= a)
        out.append({"age_days": a, "events": int(now.sum()),
                    "labelled_share": float(y[now].notna().mean()) if now.any() else None,
                    "labelled_within": float(arrived.sum() / old.sum()) if old.any() else None})
    return out


def _merchant_days(events: pd.DataFrame, merchants: pd.DataFrame) -> pd.DataFrame:
    """One row per (merchant, day with events): the table's label, known from the day for a good merchant and
    from its confirmation for a fraudulent one."""
    days = events.assign(t=events["ts"].dt.normalize())[["merchant_id", "t"]].drop_duplicates()
    days = days.merge(merchants, on="merchant_id", how="left")
    days["lt"] = days["banned_at"].where(days["is_bad"] == 1, days["t"].where(days["is_bad"] == 0))
    return days


def _assert_curves_equal(found: list[dict], expected: list[dict]) -> None:
    assert [r["age_days"] for r in found] == [r["age_days"] for r in expected]
    for f, e in zip(found, expected):
        assert f["events"] == e["events"]
        for key in ("labelled_share", "labelled_within"):
            assert (f[key] is None and e[key] is None) or f[key] == pytest.approx(e[key]), (f, e)


def test_each_label_source_has_its_curve_computed_a_second_way(tables_ws):
    ws, events = tables_ws
    with Session(ws) as session:
        sources = {s["source"]: s for s in session.label_sources()}
        assert session.day_range() == (FIRST, LAST)
    assert set(sources) == {"events", "tables.merchants"}
    _assert_curves_equal(sources["events"]["curve"],
                         _curve_by_pandas(events["ts"], events["is_fraud"].astype("Float64"), events["label_ts"], LAST))
    days = _merchant_days(events, _merchants())
    _assert_curves_equal(sources["tables.merchants"]["curve"],
                         _curve_by_pandas(days["t"], days["is_bad"], days["lt"], LAST, fraud=True))
    assert sources["events"]["mature_age"] == DELAY
    assert sources["tables.merchants"]["mature_age"] not in (None, 0, DELAY)  # its own maturity, not the events'
    assert "merchant_id-day" in sources["tables.merchants"]["reading"]
    age = sources["tables.merchants"]["mature_age"]
    assert f"ends {LAST - timedelta(days=age)}" in sources["tables.merchants"]["reading"]


def test_an_entity_backtest_defaults_to_its_own_mature_days(tables_ws, capsys, tmp_path):
    import json

    from riskconsole.maturity import entity_curve, mature_age

    ws, _ = tables_ws
    path = ws.strategies_dir / "mw.yaml"
    with Session(ws) as session:
        strategy = session.strategy(path)
        table = next(s for s in session.label_sources() if s["source"] == "tables.merchants")
        # second way: the curve of the entity frame the backtest counts (every: 1d) is the one the load stored
        frame_curve = entity_curve(session.connection(), session.entities(strategy.level).table, LAST)
        window = session.window(None, None, None, path)
        explicit = session.window(None, LAST.isoformat(), None, path)
        as_of = session.window(None, None, LAST.isoformat(), path)
        events_window = session.window()
    _assert_curves_equal(frame_curve, table["curve"])
    age = mature_age(frame_curve)
    assert window.end.date() == LAST - timedelta(days=age - 1) and "merchant_id periods" in window.note
    assert events_window.end.date() == LAST - timedelta(days=DELAY - 1) and window.end != events_window.end
    assert explicit.end.date() == LAST + timedelta(days=1)  # kept, and said in the entity's own terms
    assert explicit.note.startswith(f"window reaches past {LAST - timedelta(days=age)}, the last day whose labels are "
                                    "mature (fraud on merchant_id periods is 95% as confirmed")
    # the merchants table labels every period (a merchant not banned is good): none is left out, fraud not yet
    # confirmed reads as good
    assert "fraud not yet confirmed counts as good" in explicit.note and "left out" not in explicit.note
    assert as_of.end is None and as_of.note is None
    code = main(["backtest", str(path), "--workspace", str(ws.root), "--out", str(tmp_path / "out"), "--format", "json"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["window"]["note"] == window.note and window.note in capsys.readouterr().out
    assert report["window"]["to"] == (LAST - timedelta(days=age)).isoformat()


def test_the_stored_curves_equal_a_fresh_scan_and_a_new_load_replaces_them(tmp_path):
    import shutil

    import duckdb

    from riskconsole import maturity
    from riskconsole.ingest import load

    events = _events()
    events["merchant_id"] = np.random.default_rng(8).integers(1, MERCHANTS + 1, len(events))
    ws = _tables_ws(tmp_path / "ws", events, _merchants())

    def read() -> tuple[dict, dict, str, str]:
        with duckdb.connect(str(ws.db_path), read_only=True) as con:
            kept, version = con.execute("SELECT maturity, version FROM _maturity").fetchall()[0]
            meta = con.execute("SELECT version FROM _meta").fetchall()[0][0]
            return maturity.stored(con), maturity.compute(con, ws.dataset()), version, meta

    stored, fresh, version, meta = read()
    assert stored == fresh and version == meta and len(stored["sources"]) == 2
    # a new load (two days fewer, merchant 3 now fraudulent) replaces them
    (ws.root / "data" / "events.csv").write_text(events[events["ts"] < pd.Timestamp(LAST - timedelta(days=1))]
                                                 .to_csv(index=False))
    merchants = _merchants()
    merchants.loc[merchants["merchant_id"] == 3, ["is_bad", "banned_at"]] = [1, pd.Timestamp(FIRST)]
    merchants.to_csv(ws.root / "data" / "merchants.csv", index=False)
    load(ws)
    again, fresh_again, version_again, meta_again = read()
    assert again == fresh_again and version_again == meta_again != version
    assert again["last"] == LAST - timedelta(days=2) and again["sources"] != stored["sources"]
    # a database loaded before loads stored them: the session scans, and answers the same
    old = tmp_path / "old"
    shutil.copytree(ws.root, old)
    with duckdb.connect(str(old / "data" / "console.duckdb")) as con:
        con.execute("DROP TABLE _maturity")
    from riskconsole.workspace import Workspace

    with Session(Workspace(old)) as scanned, Session(ws) as kept:
        assert scanned.maturity() == kept.maturity() == again
        assert scanned.window() == kept.window() and scanned.window().note


def test_the_data_page_draws_every_label_source(tables_ws, monkeypatch):
    from conftest import console_page

    ws, _ = tables_ws
    at = console_page(monkeypatch, ws.root, "data_page")
    assert not at.exception, [e.value for e in at.exception]
    with Session(ws) as session:
        readings = [s["reading"] for s in session.label_sources()]
    captions = [c.value for c in at.caption]
    assert all(r in captions for r in readings), captions
    assert any(e.type == "vega_lite_chart" for e in at.get("vega_lite_chart")) or \
        any(getattr(e, "type", "") == "vega_lite_chart" for e in at.main)


def test_an_entity_labels_maturity_follows_its_fraud_not_its_many_goods():
    """Good entities count as known from the start, so nearly every entity-day is 'labelled' at age 0 however late
    fraud is confirmed: the entity sources measure how much of their fraud is confirmed by each age instead."""
    import duckdb

    from riskconsole.maturity import _rows, age_curve, mature_age

    con = duckdb.connect()
    con.execute("CREATE TABLE u AS SELECT TIMESTAMP '2026-01-01' + INTERVAL (i % 60) DAY AS t, "
                "CASE WHEN i % 25 = 0 THEN 1 ELSE 0 END AS y, "
                "TIMESTAMP '2026-01-01' + INTERVAL (i % 60 + CASE WHEN i % 25 = 0 THEN 10 ELSE 0 END) DAY AS lt "
                "FROM range(6000) r(i) WHERE i % 25 <> 0 OR i % 60 + 10 <= 59")  # fraud confirmed 10 days later
    rows, last = _rows(exp.column("t"), exp.column("y"), exp.column("lt"), "u"), date(2026, 3, 1)
    everyone, fraud = age_curve(con, rows, last, dated=True), age_curve(con, rows, last, dated=True, fraud=True)
    assert mature_age(everyone) == 0  # 96% of units are goods, known at once
    assert mature_age(fraud) == 10
    assert [r["events"] for r in fraud] == [r["events"] for r in everyone]  # the units are the same


def test_switching_strategy_follows_the_new_strategys_default_window_until_one_is_picked(tables_ws, monkeypatch):
    """The sidebar window was kept from the first strategy's default (the events' mature days) after switching to an
    entity strategy, whose own mature days then never showed; a window picked by hand still stays."""
    from conftest import console_page

    ws, _ = tables_ws
    with Session(ws) as session:
        events_note, entity = session.window().note, session.window(None, None, None, ws.strategies_dir / "mw.yaml")
    at = console_page(monkeypatch, ws.root, "backtest_page")
    at.selectbox[0].set_value("s").run()
    assert events_note in [w.value for w in at.warning]
    at.selectbox[0].set_value("mw").run()
    assert not at.exception, [e.value for e in at.exception]
    assert entity.note in [w.value for w in at.warning], [w.value for w in at.warning]
    ends = f"Ends {(entity.end - timedelta(days=1)).date()}, the last day whose labels are mature"
    assert any(ends in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    assert at.sidebar.date_input[0].value == (FIRST, (entity.end - timedelta(days=1)).date())
    picked = (FIRST + timedelta(days=2), LAST - timedelta(days=3))
    at.sidebar.date_input[0].set_value(picked).run()
    at.selectbox[0].set_value("s").run()
    assert at.sidebar.date_input[0].value == picked  # a window picked by hand is kept


def test_a_label_without_a_date_has_not_arrived_at_any_age():
    """Goods with no label_time (a shop dates only its chargebacks) are labelled but undated: they must not count
    as arriving at age 0. They did once, through DuckDB's `greatest` skipping the NULL date, and a stranger's
    workspace then lost its 36 immature days from the default window."""
    import duckdb

    from riskconsole.maturity import _rows, age_curve, mature_age

    con = duckdb.connect()
    con.execute("CREATE TABLE u AS SELECT TIMESTAMP '2026-01-01' + INTERVAL (i % 60) DAY AS t, "
                "CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END AS y, "
                "CASE WHEN i % 10 = 0 THEN TIMESTAMP '2026-01-01' + INTERVAL (i % 60 + 8) DAY END AS lt "
                "FROM range(6000) r(i) WHERE i % 10 <> 0 OR i % 60 + 8 <= 59")
    rows, last = _rows(exp.column("t"), exp.column("y"), exp.column("lt"), "u"), date(2026, 3, 1)
    curve = age_curve(con, rows, last, dated=True)
    t = pd.Series(pd.to_datetime([r[0] for r in con.execute("SELECT t FROM u").fetchall()]))
    y = pd.Series([r[0] for r in con.execute("SELECT y FROM u").fetchall()], dtype="Float64")
    lt = pd.Series(pd.to_datetime([r[0] for r in con.execute("SELECT lt FROM u").fetchall()]))
    _assert_curves_equal(curve, _curve_by_pandas(t, y, lt, last))
    assert curve[0]["labelled_within"] == 0.0 and mature_age(curve) >= 8  # no age before the 8-day delay is mature


def test_undated_good_labels_make_the_events_line_the_share_of_fraud_known(tmp_path):
    """A shop that dates only its chargebacks: good labels have no label_time. The share of all events labelled
    within N days was then the fraud rate at every age (the Data page read "share labelled 20%" for a complete
    label); the events' line is the share of fraud labels known N days after the event, and says so."""
    import json

    from riskconsole.charts import maturity_chart
    from riskconsole.ingest import load

    events = _events()
    events["label_ts"] = events["label_ts"].where(events["is_fraud"] == 1)
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    with Session(ws) as session:
        source = next(s for s in session.label_sources() if s["source"] == "events")
        window = session.window()
    assert source["fraud"] and source["undated_goods"]
    _assert_curves_equal(source["curve"], _curve_by_pandas(events["ts"], events["is_fraud"].astype("Float64"),
                                                           events["label_ts"], LAST, fraud=True))
    assert source["curve"][DELAY]["labelled_within"] == 1.0  # every fraud is known DELAY days after its event
    assert source["mature_age"] == DELAY and window.end.date() == LAST - timedelta(days=DELAY - 1)
    assert f"(fraud on events is 95% as confirmed as on old events only {DELAY} days after" in window.note
    assert "good labels have no label_time" in source["reading"] and "fraud is 95% as confirmed" in source["reading"]
    spec = maturity_chart([source]).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["title"] == "share of fraud confirmed"
    assert "events (is_fraud): fraud confirmed" in json.dumps(spec["datasets"])


def test_as_of_with_only_fraud_labels_dated_warns_once_what_it_means(tmp_path, capsys):
    """--as-of counts a label known only if its label_time is before the cut: where good labels have none, every
    good label is unknown as of any day (fp 0, precision 100%). The report warns once, saying so and the fix; with
    every label dated, or without --as-of, it does not."""
    from riskconsole.cli import main
    from riskconsole.ingest import load

    events = _events()
    events["label_ts"] = events["label_ts"].where(events["is_fraud"] == 1)
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    path, as_of = ws.strategies_dir / "s.yaml", (LAST - timedelta(days=1)).isoformat()
    with Session(ws) as session:
        report = session.backtest(path, session.window(as_of=as_of, strategy=path)).report
        plain = session.backtest(path, session.window(strategy=path)).report
    said = [w for w in report["warnings"] if w.startswith("--as-of: only fraud labels have")]
    assert len(said) == 1 and "every good label counts as unknown" in said[0] and "without --as-of" in said[0]
    assert report["overall"]["fp"] == 0 and report["overall"]["tn"] == 0  # what the warning says happens
    assert not any("only fraud labels" in w for w in plain["warnings"])
    assert main(["backtest", str(path), "--workspace", str(ws.root), "--as-of", as_of, "--baseline", str(path),
                 "--bootstrap", "10", "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.count("only fraud labels have") == 1  # candidate and baseline: said once
    dated = write_workspace(tmp_path / "dated", _events(), strategies={"s": STRATEGY})
    load(dated)
    with Session(dated) as session:
        path = dated.strategies_dir / "s.yaml"
        report = session.backtest(path, session.window(as_of=as_of, strategy=path)).report
    assert not any("only fraud labels" in w for w in report["warnings"])


def test_mature_labels_of_close_ages_cannot_overlap():
    """The 1M demo's "mature: 39 d" and "mature: 44 d" were drawn on one row and overlapped: each label has its own
    row (by age), rows at least a font height apart, all inside the chart."""
    from riskconsole.charts import maturity_chart

    def source(name: str, age: int) -> dict:
        curve = [{"age_days": a, "events": 100, "labelled_within": min(1.0, a / age), "labelled_share": 1.0}
                 for a in range(0, 91, 5)]
        return {"source": name, "label": "y", "unit": "events", "dated": True, "fraud": False, "curve": curve,
                "mature_age": age}

    spec = maturity_chart([source("events", 44), source("tables.merchants", 39), source("tables.x", 41)]).to_dict()
    texts = [layer for layer in spec["layer"] if (layer.get("mark") or {}).get("type") == "text"]
    placed = sorted((layer["encoding"]["y"]["value"], layer["mark"]["fontSize"],
                     spec["datasets"][layer["data"]["name"]][0]["text"]) for layer in texts)
    assert [p[2] for p in placed] == ["mature: 39 d", "mature: 41 d", "mature: 44 d"]  # every label, one row each
    for (top, size, _), (below, _, _) in zip(placed, placed[1:]):
        assert below - top >= size  # the next row starts below this row's text
    assert placed[-1][0] + placed[-1][1] <= spec["height"]


def test_a_one_day_maturity_reads_one_day():
    """'only 1 days after they happen' read wrong on a window of two days (labels arriving the next day)."""
    from riskconsole.maturity import mature_note, past_mature_note

    one = mature_note(date(2026, 3, 1), 1, date(2026, 3, 2))
    assert "only 1 day after they happen" in one and "1 days" not in one
    assert "only 3 days after" in mature_note(date(2026, 3, 1), 3, date(2026, 3, 4))
    assert "only 1 day after" in past_mature_note(date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2), 1)
