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


NEAR_RULES = [
    {"name": "swapped", "when": "channel = 'wbe'", "action": "review"},      # two letters swapped: one edit
    {"name": "doubled", "when": "channel IN ('Appp', 'tv')", "action": "review"},  # one letter more, and too short
    {"name": "far", "when": "channel <> 'lvee'", "action": "review"},        # two edits from 'live': too far
]


def _near_said(tmp_path) -> list[str]:
    events = random_events(n=400)
    ws = write_workspace(tmp_path / "ws", events, None, {"s": {"name": "s", "rules": NEAR_RULES}})
    load(ws)
    with Session(ws) as session:
        return _said(session.backtest(ws.strategies_dir / "s.yaml").report)


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), by the textbook table."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_a_literal_a_letter_from_a_value_of_a_few_valued_column_names_it(tmp_path):
    """A spelling a letter away (letters compared without case) is named for a literal of 3 letters or more; two
    letters away is not a typo; a literal of 2 letters is named with nothing."""
    held = ["app", "live", "web"]
    assert [min(held, key=lambda v: (_distance(v, x.lower()), v)) for x in ("wbe", "Appp")] == ["web", "app"]
    assert [_distance("wbe", "web"), _distance("appp", "app"), min(_distance("lvee", v) for v in held)] == [1, 1, 2]
    assert _near_said(tmp_path) == [
        "rule 'swapped' compares channel with 'wbe', which no loaded event's channel holds (did you mean 'web'?)",
        "rule 'doubled' compares channel with 'Appp', which no loaded event's channel holds (did you mean 'app'?)",
        "rule 'doubled' compares channel with 'tv', which no loaded event's channel holds",
        "rule 'far' compares channel with 'lvee', which no loaded event's channel holds"]


def test_a_column_of_many_values_is_not_searched_for_a_spelling_a_letter_away(tmp_path, monkeypatch):
    """Past `FEW` distinct values (ids, e-mails: a literal there is often a value yet to come), no spelling a letter
    away is named; one differing only in letter case still is."""
    import riskconsole.literals as literals

    monkeypatch.setattr(literals, "FEW", 2)  # channel holds 3
    rules = [{"name": "swapped", "when": "channel = 'wbe'", "action": "review"},
             {"name": "case", "when": "channel = 'WEB'", "action": "review"}]
    ws = write_workspace(tmp_path / "ws", random_events(n=400), None, {"s": {"name": "s", "rules": rules}})
    load(ws)
    with Session(ws) as session:
        said = _said(session.backtest(ws.strategies_dir / "s.yaml").report)
    assert said == ["rule 'swapped' compares channel with 'wbe', which no loaded event's channel holds",
                    "rule 'case' compares channel with 'WEB', which no loaded event's channel holds (the data has "
                    "'web': text is compared exactly, letter case and spaces included)"]
