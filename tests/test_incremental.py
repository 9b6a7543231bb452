"""The incremental engine (issue 14) is never stale: after every edit the console's report equals a fresh backtest.

A seeded random walk of 200 edits (param moves, action flips, rules on/off, one-rule `when` edits, reorders)
over a small workspace; after EACH edit `Session.interactive` (warm caches, as the console calls it) must give
the very report `Session.backtest` gives (overall, rules, daily, warnings and the rest).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from conftest import BASE_DATASET, assert_same, random_events, write_workspace
from riskconsole.backtest import make_window
from riskconsole.session import Session

PARAMS = {"burst": 2, "big": 150, "cut": 20.5, "users": 3, "hour": 12, "avg": 80.0}
RULES = [
    {"name": "trusted", "when": "merchant_id IN (100) AND amount < $cut", "action": "allow"},
    {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"},
    {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"},
    {"name": "shared_device", "when": "device_users_1d >= $users", "action": "review"},
    {"name": "reversed", "when": "$avg >= user_amount_1d AND channel <> 'web'", "action": "review"},
    {"name": "night", "when": "hour(ts) <= $hour AND amount <= $big / 2", "action": "block"},
]
EDITS = {  # alternative `when` texts per rule (each keeps the params the strategy defines in use somewhere)
    "trusted": ["merchant_id IN (100, 101) AND amount < $cut", "amount < $cut"],
    "burst": ["user_orders_1h > $burst", "user_orders_1h >= $burst AND amount > 10"],
    "big_live": ["amount > $big", "channel = 'live' AND $big < amount AND user_orders_1h >= 1"],
    "shared_device": ["device_users_1d >= $users AND channel = 'app'", "device_users_1d > $users"],
    "reversed": ["user_amount_1d <= $avg", "user_amount_1d < $avg AND amount >= 5"],
    "night": ["hour(ts) < $hour AND amount <= $big / 2", "hour(ts) <= $hour"],
}
STEPS = {"burst": 1, "big": 10, "cut": 0.5, "users": 1, "hour": 1, "avg": 2.5}


@pytest.fixture
def edit_ws(tmp_path):
    ws = write_workspace(tmp_path / "ws", random_events(n=600, seed=3), dict(BASE_DATASET),
                         strategies={"walk": {"name": "walk", "params": dict(PARAMS), "rules": RULES}})
    from riskconsole.ingest import load

    load(ws)
    return ws


def hidden_events(n: int = 600, seed: int = 3):
    """Random events with what production did (DESIGN §6.2): it blocked big orders, explored some of them (various
    propensities; those keep their label) and the rest of its blocks have no label. A few refunds (negative
    amounts) test the money bounds' positive parts."""
    import pandas as pd

    events = random_events(n=n, seed=seed)
    rng = np.random.default_rng(seed)
    events.loc[rng.random(n) < 0.03, "amount"] *= -1
    blocked = (events["amount"] > 140).to_numpy()
    propensity = rng.choice([0.2, 0.35, 0.5], n)
    explored = blocked & (rng.random(n) < propensity)
    events["prod_action"] = np.where(blocked, "block", "allow")
    events["explore"] = explored.astype(int)
    events["propensity"] = np.where(explored, propensity, np.nan)
    events.loc[blocked & ~explored, "is_fraud"] = pd.NA
    return events


@pytest.fixture
def hidden_edit_ws(tmp_path):
    """`edit_ws` with the outcome roles mapped: every answer carries observability, bounds and an estimate."""
    from riskconsole.ingest import load

    dataset = yaml.safe_load(yaml.safe_dump(BASE_DATASET))
    dataset["columns"].update({"prod_action": "prod_action", "explore": "explore", "propensity": "propensity"})
    ws = write_workspace(tmp_path / "ws", hidden_events(), dataset,
                         strategies={"walk": {"name": "walk", "params": dict(PARAMS), "rules": RULES}})
    load(ws)
    return ws


def _edit(rng: random.Random, body: dict, last: list) -> str:
    """Apply one random edit to the strategy body; returns what it did. A param is often moved again (a drag)."""
    rules, params = body["rules"], body["params"]
    kind = rng.choices(["param", "action", "enabled", "when", "order"], weights=[8, 2, 2, 2, 1])[0]
    if kind == "param":
        name = last[0] if last and rng.random() < 0.7 else rng.choice(list(params))
        last[:] = [name]
        step = STEPS[name] * rng.choice([-3, -2, -1, 1, 1, 2, 3])
        params[name] = round(params[name] + step, 6) if isinstance(params[name], float) else params[name] + step
        return f"{name}={params[name]}"
    rule = rng.choice(rules)
    if kind == "action":
        rule["action"] = rng.choice([a for a in ("allow", "review", "block") if a != rule["action"]])
    elif kind == "enabled":
        rule["enabled"] = not rule.get("enabled", True)
    elif kind == "when":
        rule["when"] = rng.choice([w for w in [*EDITS[rule["name"]], _original(rule["name"])] if w != rule["when"]])
    else:
        rng.shuffle(rules)
    return f"{kind} {rule['name']}"


def _original(name: str) -> str:
    return next(r["when"] for r in RULES if r["name"] == name)


@pytest.mark.parametrize("hidden", [False, True], ids=["plain", "outcome-roles"])
@pytest.mark.parametrize("window", [make_window(), make_window("2026-03-02", "2026-03-05", "2026-03-05")])
def test_random_edits_keep_console_equal_to_backtest(request, window, hidden, monkeypatch):
    """With the outcome roles mapped, the outcome blocks (observability, bounds, estimate) are compared too: the
    console reaches each configuration's outcome groups by toggling only the rows whose membership changed (never
    regrouping every rule's rows), and they must equal the backtest's SQL pass after every step."""
    from riskconsole.outcome_cells import OutcomeCells

    ws = request.getfixturevalue("hidden_edit_ws" if hidden else "edit_ws")
    monkeypatch.setattr(OutcomeCells, "_group", lambda *a: pytest.fail("regrouped every rule's rows"))
    rng = random.Random(14)
    path = ws.strategies_dir / "walk.yaml"
    body = yaml.safe_load(path.read_text())
    with Session(ws) as console, Session(ws) as cli:
        last: list = []
        for step in range(200 if window.start is None else 60):
            what = _edit(rng, body, last)
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            # half the moves as --set overrides on the saved file, as the Tune page's sliders send them
            overrides = {}
            if rng.random() < 0.2:
                name = rng.choice(list(body["params"]))
                overrides = {name: body["params"][name] + STEPS[name]}
            got = console.interactive(path, window, overrides)
            if rng.random() < 0.6:  # let threshold tables finish building (else the move after is a query)
                for evaluator in list(console._evaluators.values()):
                    evaluator.wait()
            cli._evaluators.clear()
            want = cli.backtest(path, window, overrides).report
            if hidden:
                assert {"observability", "bounds", "estimate"} <= set(want["overall"])
            try:
                assert_same(got, want, rel=1e-9)
            except AssertionError:
                pytest.fail(f"step {step} ({what}, overrides {overrides}): console differs from the backtest")
        evaluator = next(iter(console._evaluators.values()))
        assert evaluator._tables, "threshold moves were answered from sorted columns"
        if hidden:  # threshold moves toggled only the rows between two positions of a table, edits the rows changed
            toggles = evaluator._companions["outcomes"].toggles
            assert toggles["threshold"] and toggles["edit"] > 20, toggles


@pytest.mark.parametrize("param, values", [
    ("users", (4, 1, 2, 5, 6, 3)),            # device_users_1d >= $users
    ("burst", (3, 1, 0, 4, 2)),               # user_orders_1h >= $burst (alone in its rule)
    ("cut", (30.0, 5.5, 55.0, 120.25, 0.0)),  # amount < $cut, ANDed
    ("avg", (60.0, 120.5, 10.0, 400.0)),      # $avg >= user_amount_1d: written the other way round
])
def test_threshold_moves_need_no_sql(edit_ws, monkeypatch, param, values):
    """Once the table of a threshold param is built, moving it runs no query at all; every answer is the
    backtest's."""
    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    with Session(edit_ws) as session:
        session.interactive(path, window)
        first = session.interactive(path, window, {param: values[0]})  # builds the table (in the background)
        assert_same(first, session.backtest(path, window, {param: values[0]}).report)
        evaluator = next(iter(session._evaluators.values()))
        evaluator.wait()
        assert evaluator._tables
        calls = []
        original = evaluator._query
        monkeypatch.setattr(evaluator, "_query", lambda *a, **k: calls.append(a) or original(*a, **k))
        for value in values[1:]:
            report = session.interactive(path, window, {param: value})
            assert_same(report, session.backtest(path, window, {param: value}).report)
        # an action flip and a rule switched off: cached groups, no query either
        body = yaml.safe_load(path.read_text())
        body["rules"][1]["action"] = "review"
        body["rules"][2]["enabled"] = False
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        assert_same(session.interactive(path, window, {param: values[-1]}),
                    session.backtest(path, window, {param: values[-1]}).report)
        assert calls == []


@pytest.mark.parametrize("param, values", [
    ("users", (4, 1, 2, 5, 6, 3, 0, 7)),                 # device_users_1d >= $users
    ("cut", (30.0, 5.5, 55.0, 120.25, 0.0, 400.0, -5.0)),  # amount < $cut, ANDed (refunds below 0)
    ("avg", (60.0, 120.5, 10.0, 400.0, 80.0)),           # $avg >= user_amount_1d: written the other way round
])
def test_threshold_drags_move_outcome_groups_by_the_rows_between(hidden_edit_ws, monkeypatch, param, values):
    """Once a threshold's table is built, each move's outcome groups (observability, bounds, estimate) come from
    toggling the table's rows between the old and the new threshold: no regrouping and no SQL, and the report is
    the backtest's, outcome blocks included."""
    from riskconsole.outcome_cells import OutcomeCells

    path = hidden_edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    monkeypatch.setattr(OutcomeCells, "_group", lambda *a: pytest.fail("regrouped every rule's rows"))
    with Session(hidden_edit_ws) as session:
        session.interactive(path, window)
        session.interactive(path, window, {param: values[0]})  # builds the table (in the background)
        evaluator = next(iter(session._evaluators.values()))
        evaluator.wait()
        cells = evaluator._companions["outcomes"]
        calls = []
        original = evaluator._query
        monkeypatch.setattr(evaluator, "_query", lambda *a, **k: calls.append(a) or original(*a, **k))
        for value in values[1:]:
            report = session.interactive(path, window, {param: value})
            want = session.backtest(path, window, {param: value}).report
            assert {"observability", "bounds", "estimate"} <= set(want["overall"])
            assert_same(report, want)
        assert calls == []
        # all but the first move after the build (it starts from a queried condition) and a return to the saved
        # value (its groups are cached)
        assert cells.toggles["threshold"] >= len(values) - 3, cells.toggles


def test_curve_of_a_threshold_comes_from_the_sorted_column(edit_ws):
    from riskconsole.tuning import curve

    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    with Session(edit_ws) as session:
        fast = session.curve(path, window, "users", {"burst": 3})
        with session.cursor() as cur:
            slow = curve(cur, session.strategy(path), session.frame, session.dataset, session.ws.rel(path), window,
                         "users", {"burst": 3})
        assert len(fast) == len(slow) > 3
        assert_same(fast, slow)
        evaluator = next(iter(session._evaluators.values()))
        assert evaluator._tables


def test_a_reload_is_never_served_from_the_old_cache(edit_ws):
    """The evaluator cache is keyed by the data version: a session that outlives a load sees the new events."""
    from riskconsole.ingest import load

    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    session = Session(edit_ws)
    before = session.interactive(path, window, {"users": 2})
    session._con.close()
    session._con = None  # keep its evaluators, as a long-lived session would
    write_workspace(edit_ws.root, random_events(n=500, seed=9), dict(BASE_DATASET))
    load(edit_ws)
    after = session.interactive(path, window, {"users": 2})
    with Session(edit_ws) as fresh:
        assert_same(after, fresh.backtest(path, window, {"users": 2}).report)
    assert after["overall"]["population"] != before["overall"]["population"]
    session.close()


def test_sorted_table_answers_every_operator():
    """Prefix sums from checkpoints give the counts a direct comparison gives, for each operator."""
    from riskconsole.backtest import Groups
    from riskconsole.evaluator import ThresholdTable

    rng = np.random.default_rng(1)
    n, g = 5_000, 7
    values = rng.integers(0, 50, n).astype(np.float64)
    group = rng.integers(0, g, n)
    amount = rng.gamma(2, 10, n)
    others = Groups(np.zeros(g, dtype=np.int64), np.zeros(g, dtype=np.int8), np.zeros((g, 0), dtype=bool),
                    np.bincount(group, minlength=g) + 5, np.zeros(g), [])
    for op, compare in ((">=", np.greater_equal), (">", np.greater), ("<=", np.less_equal), ("<", np.less)):
        table = ThresholdTable(values, np.arange(n), group, amount, others, op)
        for t in (-1, 0, 7, 7.5, 49, 50):
            out = table.groups(t, 0)
            hit = compare(values, t)
            assert out.count[out.hits[:, 0]].sum() == hit.sum()
            assert out.amount[out.hits[:, 0]].sum() == pytest.approx(amount[hit].sum())
            assert out.count.sum() == others.count.sum()


def test_one_rule_edits_query_only_that_rule(edit_ws, monkeypatch):
    """Editing one rule's `when` runs one query (that condition) and splits the other rules' groups, which the
    strategy's previous configuration gives with the rule's column dropped: no collapse of every event, from the
    first edit on; an action flip right after an edit collapses nothing either."""
    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    texts = ["device_users_1d >= 2 AND channel = 'app'", "device_users_1d > 1 OR amount > 300",
             "channel = 'live'", "user_amount_1d > 2 * amount"]
    with Session(edit_ws) as session:
        session.interactive(path, window)
        body = yaml.safe_load(path.read_text())
        evaluator = next(iter(session._evaluators.values()))
        calls, collapses = [], []
        original, collapse = evaluator._query, evaluator._collapse
        monkeypatch.setattr(evaluator, "_query", lambda *a, **k: calls.append(a) or original(*a, **k))
        monkeypatch.setattr(evaluator, "_collapse", lambda *a, **k: collapses.append(a) or collapse(*a, **k))
        for text in texts:
            body["rules"][3]["when"] = text
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            calls.clear()
            report = session.interactive(path, window)
            assert_same(report, session.backtest(path, window).report)
            assert len(calls) == 1  # only the edited condition ...
            assert collapses == []  # ... and no collapse of every event
            body["rules"][1]["action"] = "review" if body["rules"][1]["action"] != "review" else "block"
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            assert_same(session.interactive(path, window), session.backtest(path, window).report)
            assert len(calls) == 1 and collapses == []


def test_caches_stay_within_their_byte_budgets(edit_ws, monkeypatch):
    """With budgets of a few bytes per event, every cache is trimmed to its budget (keeping what the answer in
    hand needs), and the answers are still the backtest's; per-event arrays use the compact dtypes."""
    import riskconsole.evaluator as ev

    monkeypatch.setattr(ev, "MIN_CACHE_BYTES", 0)
    monkeypatch.setattr(ev, "ROWS_BYTES_PER_EVENT", 2)
    monkeypatch.setattr(ev, "CODES_BYTES_PER_EVENT", 2)
    monkeypatch.setattr(ev, "TABLE_BYTES_PER_EVENT", 4)
    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    with Session(edit_ws) as session:
        for users, big in ((1, 150), (2, 150), (3, 90), (4, 200), (2, 60), (5, 150)):
            overrides = {"users": users, "big": big}
            got = session.interactive(path, window, overrides)
            evaluator = next(iter(session._evaluators.values()))
            evaluator.wait()
            assert_same(got, session.backtest(path, window, overrides).report)
            n = len(evaluator.pos)
            sizes = evaluator.nbytes()
            for part, per_event in (("codes", 2), ("tables", 4)):
                assert sizes[part] <= per_event * n or len(getattr(evaluator, f"_{part}")) == 1, part
            pinned = sum(ev._size(evaluator._cache[k]) for k in {ev.key_of(r.condition) for r in
                         session._compiler.compile(session.strategy(path), "walk", overrides,
                                                   session.connection()).rules} & set(evaluator._cache))
            assert sizes["rows"] <= max(2 * n, pinned)
        assert evaluator.pos.dtype == np.int32 and evaluator.cell.dtype == np.int32
        assert sizes["events"] == 17 * n


def _edited(path, rules: dict[int, str]) -> None:
    body = yaml.safe_load(path.read_text())
    for index, text in rules.items():
        body["rules"][index]["when"] = text
    path.write_text(yaml.safe_dump(body, sort_keys=False))


def test_an_edit_is_one_filter_and_falls_back_to_the_mask_form_when_the_filter_fails(edit_ws, monkeypatch):
    """An edit's condition is asked as a plain filter (DuckDB pushes it into the scan). DuckDB may evaluate a filter on
    rows outside the population first, so an expression failing only there must not fail the console where the CLI
    (conditions in the projection) succeeds: a failing filter is asked again in the mask form, and the answer is the
    backtest's. A timeout is not retried."""
    from riskconsole.errors import RiskConsoleError
    from riskconsole.limits import QueryTimeout

    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    with Session(edit_ws) as session:
        session.interactive(path, window)
        evaluator = next(iter(session._evaluators.values()))
        sent, original = [], evaluator._query

        def query(q, strategy, fail=None):
            sent.append(q.sql())
            if fail is not None and len(sent) == 1:
                raise fail
            return original(q, strategy)

        monkeypatch.setattr(evaluator, "_query", query)
        _edited(path, {3: "device_users_1d >= 2 AND channel = 'app'"})
        assert_same(session.interactive(path, window), session.backtest(path, window).report)
        assert len(sent) == 1 and " m0" not in sent[0] and "device_users_1d" in sent[0]  # the filter form

        sent.clear()
        monkeypatch.setattr(evaluator, "_query", lambda q, s: query(q, s, RiskConsoleError("Conversion Error")))
        _edited(path, {3: "device_users_1d > 1 OR amount > 300"})
        assert_same(session.interactive(path, window), session.backtest(path, window).report)
        assert len(sent) == 2 and "m0" in sent[1]  # the mask form answered

        sent.clear()
        monkeypatch.setattr(evaluator, "_query", lambda q, s: query(q, s, QueryTimeout("strategy 'walk': stopped")))
        _edited(path, {3: "channel = 'live'"})
        with pytest.raises(QueryTimeout):
            session.interactive(path, window)
        assert len(sent) == 1


def test_an_edits_rows_find_their_groups_without_a_map_of_every_event(edit_ws):
    """The group of an edit's few rows is looked up row by row (no gather over every event): the same groups as the
    map of every event gives, for rows inside and outside the rows some rule holds on."""
    path = edit_ws.strategies_dir / "walk.yaml"
    with Session(edit_ws) as session:
        session.interactive(path, make_window())
        evaluator = next(iter(session._evaluators.values()))
        unique = next(iter(evaluator._codes))
        union, codes, cell_group = evaluator._codes[unique]
        every = cell_group[evaluator.cell]
        every[union] = codes
        rng = np.random.default_rng(0)
        n = len(evaluator.pos)
        for size in (1, 5, n // 40):
            rows = np.sort(rng.choice(n, size, replace=False)).astype(np.int32)
            evaluator._group_map = (None, None)
            assert (evaluator._group_of(unique, rows) == every[rows]).all()
            assert evaluator._group_map == (None, None)  # answered without building the map
        assert (evaluator._group_of(unique, np.arange(n, dtype=np.int32)) == every).all()


def test_a_text_edit_builds_no_threshold_table_and_its_first_move_does(edit_ws):
    """Editing a rule's text answers without building its threshold param's table in the background (that would
    take the cores the answer needs); the param's first move builds it, and the next moves read it."""
    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    with Session(edit_ws) as session:
        session.interactive(path, window)
        evaluator = next(iter(session._evaluators.values()))
        _edited(path, {1: "user_orders_1h >= $burst AND amount > 10"})
        assert_same(session.interactive(path, window), session.backtest(path, window).report)
        assert not evaluator._building and not evaluator._tables
        assert_same(session.interactive(path, window, {"burst": 3}), session.backtest(path, window, {"burst": 3}).report)
        evaluator.wait()
        assert len(evaluator._tables) == 1


def test_two_edited_rules_toggle_only_their_changed_rows(hidden_edit_ws, monkeypatch):
    """One rule edited back and another edited at once: each new condition replaces the old one nearest in rows
    (its own rule's), so the outcome groups toggle only the rows whose membership changed, not both rules' rows."""
    from riskconsole.evaluator import key_of
    from riskconsole.outcome_cells import OutcomeCells

    path = hidden_edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    toggled, original = [], OutcomeCells._toggle
    monkeypatch.setattr(OutcomeCells, "_toggle", lambda self, rows, bit: toggled.append(set(rows.tolist())) or
                        original(self, rows, bit))
    with Session(hidden_edit_ws) as session:
        def rows() -> dict[str, set]:
            compiled = session._compiler.compile(session.strategy(path), "walk", {}, session.connection())
            return {r.name: set(evaluator.cached_rows(key_of(r.condition)).tolist()) for r in compiled.rules}

        session.interactive(path, window)
        evaluator = next(iter(session._evaluators.values()))
        steps = [{0: "amount < $cut"}, {0: _original("trusted"), 3: "device_users_1d > $users"},
                 {0: "amount < $cut", 3: "device_users_1d >= $users AND channel = 'app'"}, {2: "amount > $big", 5: "hour(ts) <= $hour"},
                 {2: _original("big_live"), 5: "hour(ts) < $hour AND amount <= $big / 2"}]
        for step in steps:
            before = rows() if toggled or step is not steps[0] else None
            toggled.clear()
            _edited(path, step)
            assert_same(session.interactive(path, window), session.backtest(path, window).report)
            if before is None:
                continue
            after = rows()
            names = [RULES[i]["name"] for i in step]
            assert sorted(toggled, key=len) == sorted([before[n] ^ after[n] for n in names], key=len), step


def test_a_first_moves_curve_waits_for_the_table_being_built_instead_of_building_it_again(edit_ws, monkeypatch):
    """A param's first move starts its threshold table in the background; the Tune page's curve, asked right after,
    waits for that table rather than running the same query and sort a second time beside it (two cores)."""
    import threading
    import time

    import riskconsole.evaluator as ev

    path = edit_ws.strategies_dir / "walk.yaml"
    window = make_window()
    built, original = [], ev.Evaluator._sorted_column

    def slow(self, *args):
        built.append(threading.current_thread().name)
        time.sleep(0.3)  # the background build is still running when the curve asks
        return original(self, *args)

    monkeypatch.setattr(ev.Evaluator, "_sorted_column", slow)
    with Session(edit_ws) as session:
        session.interactive(path, window)
        report = session.interactive(path, window, {"burst": 3})
        points = session.curve(path, window, "burst", {k: v for k, v in PARAMS.items() if k != "burst"})
        assert built == ["threshold-table"]
        at = next(p for p in points if p["value"] == 3)
        assert at["precision"] == report["overall"]["precision"] and at["recall"] == report["overall"]["recall"]
