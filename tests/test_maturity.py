"""Backtest windows default to mature days, saying so (issue 12 item 4; DESIGN §6.2).

Labels here arrive exactly DELAY days after each event, so by construction the events of the last DELAY days are not
labelled yet and the mature window is everything up to the data's last day minus DELAY.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

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
        start_only = session.window("2026-03-04")
    assert to.note is None and to.end.date() == LAST + timedelta(days=1)
    assert both.note is None and (both.start.date(), both.end.date()) == (date(2026, 3, 3), date(2026, 3, 10))
    assert start_only.start.date() == date(2026, 3, 4) and start_only.end.date() == LAST - timedelta(days=DELAY - 1)
    assert start_only.note is not None
    with Session(ws) as session:
        as_of = session.window(None, None, "2026-03-08")
    assert as_of.end is None and as_of.note is None  # --as-of already says which labels count: every day


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
    assert json.loads((tmp_path / "all" / "report.json").read_text())["window"]["to"] == LAST.isoformat()


def test_the_console_defaults_to_the_same_window_and_note(late_ws, monkeypatch):
    from conftest import console_page

    ws, _ = late_ws
    at = console_page(monkeypatch, ws.root, "backtest_page")
    assert not at.exception, [e.value for e in at.exception]
    with Session(ws) as session:
        note = session.window().note
    captions = [c.value for c in at.caption]
    assert any(note == c for c in captions), captions
    mature_last = LAST - timedelta(days=DELAY)
    assert any(f"{FIRST} … {mature_last}" in c for c in captions), captions


def test_the_maturity_rule_is_not_fooled_by_the_last_few_old_days(tmp_path):
    """Labels arriving within 4 days on 40 days of 15 events a day: mature after 4 days (the oldest days hold a
    handful of events each; a plateau taken from them alone once said 17)."""
    from riskconsole.ingest import load
    from riskconsole.overview import mature_age
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
