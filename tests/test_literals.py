"""A rule comparing a text column with text no loaded event holds (`channel = 'Live'` where the data says `live`)
matches nothing, silently: the report says so, the same on a backtest, a cached backtest and the console's path."""

from __future__ import annotations

import pytest

from conftest import random_events, write_workspace
from riskconsole.backtest import Window, parse_moment
from riskconsole.ingest import load
from riskconsole.session import Session

RULES = [
    {"name": "typo_case", "when": "channel = 'Live' AND amount > 10", "action": "review"},
    {"name": "typo_space", "when": "channel NOT IN ('web ', 'app') AND amount > 100", "action": "block"},
    {"name": "absent", "when": "channel IN ('live', 'tv') OR 'kiosk' = channel", "action": "review"},
    {"name": "fine", "when": "channel = 'live' AND user_id <> 3", "action": "review"},
    {"name": "off", "when": "channel = 'LIVE'", "action": "review", "enabled": False},
]


@pytest.fixture
def literal_ws(tmp_path):
    events = random_events(n=400)
    ws = write_workspace(tmp_path / "ws", events, None, {"s": {"name": "s", "rules": RULES}})
    load(ws)
    return ws, events


def _said(report: dict) -> list[str]:
    return [w for w in report["warnings"] if " compares " in w]


def test_a_literal_no_event_holds_is_said_with_its_near_spelling_on_every_path(literal_ws, monkeypatch):
    ws, events = literal_ws
    held = set(events["channel"])
    # independently: which (rule, literal) pairs of enabled rules no loaded row holds
    want = [(rule, value) for rule, value in (("typo_case", "Live"), ("typo_space", "web "), ("typo_space", "app"),
                                              ("absent", "live"), ("absent", "tv"), ("absent", "kiosk"),
                                              ("fine", "live")) if value not in held]
    assert want == [("typo_case", "Live"), ("typo_space", "web "), ("absent", "tv"), ("absent", "kiosk")]
    exact = "text is compared exactly, letter case and spaces included"
    expected = [
        f"rule 'typo_case' compares channel with 'Live', which no loaded event's channel holds (the data has 'live': "
        f"{exact})",
        f"rule 'typo_space' compares channel with 'web ', which no loaded event's channel holds (the data has 'web': "
        f"{exact})",
        "rule 'absent' compares channel with 'tv', which no loaded event's channel holds",
        "rule 'absent' compares channel with 'kiosk', which no loaded event's channel holds"]
    path = ws.strategies_dir / "s.yaml"
    with Session(ws, cache=True) as session:
        first = session.backtest(path).report
        assert not session.cached_plan
    with Session(ws, cache=True) as session:
        again = session.backtest(path).report
        assert session.cached_plan
    import riskconsole.literals as literals

    with monkeypatch.context() as patch:
        patch.setattr(literals, "literal_warnings", lambda *_: pytest.fail("asked again: the CLI keeps the answer"))
        with Session(ws, cache=True) as session:
            assert session.backtest(path).report == first
    with Session(ws) as session:
        window = session.backtest(path).window
        console = session.interactive(path, window)
        moved = session.interactive(path, window)  # asked again: from memory, the same
    assert _said(first) == _said(again) == _said(console) == _said(moved) == expected
    assert again == first


def test_a_value_of_other_days_is_no_typo(tmp_path):
    """The check reads every loaded event, not the window's: 'kiosk', held only by the last event, is not said of a
    window of the first day, though no event of that window holds it; 'tv' still is."""
    events = random_events(n=400)
    events.loc[events["ts"].idxmax(), "channel"] = "kiosk"
    ws = write_workspace(tmp_path / "ws", events, None, {"s": {"name": "s", "rules": RULES}})
    load(ws)
    with Session(ws) as session:
        first_day = session.backtest(ws.strategies_dir / "s.yaml").report["window"]["from"]
        day = Window(parse_moment(first_day), parse_moment(first_day, end=True))
        report = session.backtest(ws.strategies_dir / "s.yaml", day).report
    first = events[events["ts"].astype(str).str[:10] == first_day]
    assert len(first) > 0 and "kiosk" not in set(first["channel"])
    said = _said(report)
    assert not any("'kiosk'" in w for w in said) and any("'tv'" in w for w in said) and len(said) == 3
