"""Lists (`lists/NAME.csv`, `column IN LIST name`): semantics against a second computation, edits, errors, exports."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from riskconsole.backtest import Window
from riskconsole.cli import main
from riskconsole.errors import ConfigError, ExpressionError, RiskConsoleError
from riskconsole.expressions import parse_expression, referenced_columns, to_sql
from riskconsole.ingest import load
from riskconsole.lists import ListSet, add_entry, parse_list, read_entries, remove_entry
from riskconsole.session import Session
from riskconsole.sqlbuild import render
from conftest import BASE_DATASET, assert_same, random_events, write_workspace

RULES = [
    {"name": "listed_device", "when": "device_id IN LIST blocked", "action": "block"},
    {"name": "unlisted_big", "when": "device_id NOT IN LIST blocked AND amount > 250", "action": "review"},
    {"name": "listed_fp", "when": "fp IN LIST fps", "action": "review"},
    {"name": "unlisted_fp", "when": "NOT (fp IN LIST fps) AND amount > 300", "action": "review"},
]


def _events() -> pd.DataFrame:
    events = random_events(n=400, seed=4, days=12)
    events["fp"] = ["fp" + str(d) if i % 7 else None for i, d in enumerate(events["device_id"])]
    return events


@pytest.fixture
def list_ws(tmp_path: Path):
    events = _events()
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": {"name": "s", "rules": RULES}})
    load(ws)
    five = events[events.device_id == 5].ts.sort_values().tolist()
    cut = five[len(five) // 2]  # an event of device 5 happens exactly when its entry expires
    lists = ws.root / "lists"
    lists.mkdir()
    # integer column, text values: ' 7 ' is 7, 'abc' casts to nothing (and must not make NOT IN LIST all-NULL)
    (lists / "blocked.csv").write_text(f"value,expires\n3,\n5,{cut:%Y-%m-%d %H:%M:%S}\nabc,\n 7 ,2026-03-02\n")
    (lists / "fps.csv").write_text("value,expires,note\nfp2,,chargeback ring\nfp9,2026-03-04T00:00:00+02:00,\n")
    return ws, events, cut


def _expected(events: pd.DataFrame, cut) -> dict[str, set]:
    """The same rules computed in pandas: an entry matches while the event's time is before its expiry."""
    ts = events.ts
    listed = (events.device_id == 3) | ((events.device_id == 5) & (ts < cut)) | \
        ((events.device_id == 7) & (ts < pd.Timestamp("2026-03-02")))
    fp_known = events.fp.notna()
    fp_listed = (events.fp == "fp2") | ((events.fp == "fp9") & (ts < pd.Timestamp("2026-03-03 22:00:00")))
    hits = {"listed_device": listed, "unlisted_big": ~listed & (events.amount > 250),
            "listed_fp": fp_known & fp_listed, "unlisted_fp": fp_known & ~fp_listed & (events.amount > 300)}
    return {name: set(events.event_id[mask]) for name, mask in hits.items()}


def _matched(session: Session, path: Path) -> dict[str, set]:
    rows = session.decisions(session.backtest(path)).to_pylist()
    return {r["name"]: {row["id"] for row in rows if r["name"] in row["matched_rules"]} for r in RULES}


def test_in_list_matches_a_second_computation(list_ws):
    ws, events, cut = list_ws
    with Session(ws) as session:
        got = _matched(session, ws.strategies_dir / "s.yaml")
    expected = _expected(events, cut)
    assert got == expected
    at_cut = set(events.event_id[(events.device_id == 5) & (events.ts == cut)])
    assert at_cut and not at_cut & got["listed_device"]  # expires at exactly the event's time: no match
    assert all(expected.values())  # every rule has hits, so the comparison says something


def test_added_counts_an_entry_only_from_its_listing_time(list_ws):
    """`added` (inclusive) to `expires` (exclusive) per entry, in pandas; a value listed, expired and listed again is
    two entries, and an event before the listing is not credited to the list (the future changes nothing)."""
    ws, events, _ = list_ws
    three = events[events.device_id == 3].ts.sort_values().tolist()
    first, gap, again = three[len(three) // 4], three[len(three) // 2], three[3 * len(three) // 4]
    (ws.root / "lists" / "blocked.csv").write_text(
        f"value,added,expires\n3,{first:%Y-%m-%d %H:%M:%S},{gap:%Y-%m-%d %H:%M:%S}\n"
        f"3,{again:%Y-%m-%dT%H:%M:%S}+02:00,\n5,,2026-03-04\n7,2026-03-02,\n")
    path = ws.strategies_dir / "s.yaml"
    with Session(ws) as session:
        got = _matched(session, path)
        console = session.interactive(path, Window())
        after = session.backtest(path).report
    ts, dev = events.ts, events.device_id
    shifted = again - pd.Timedelta(hours=2)
    listed = ((dev == 3) & (((ts >= first) & (ts < gap)) | (ts >= shifted))) | ((dev == 5) & (ts < pd.Timestamp(
        "2026-03-04"))) | ((dev == 7) & (ts >= pd.Timestamp("2026-03-02")))
    assert got["listed_device"] == set(events.event_id[listed])
    assert got["unlisted_big"] == set(events.event_id[~listed & (events.amount > 250)])
    at = set(events.event_id[(dev == 3) & ((ts == first) | (ts == gap))])
    assert set(events.event_id[(dev == 3) & (ts == first)]) <= got["listed_device"]  # added: inclusive
    assert not set(events.event_id[(dev == 3) & (ts == gap)]) & got["listed_device"]  # expires: exclusive
    assert at and (dev == 3).sum() > len(got["listed_device"] & set(events.event_id[dev == 3])) > 0
    for key in ("overall", "rules", "daily"):
        assert_same(console[key], after[key])
    # appending an entry listed after the last event changes no decision
    with (ws.root / "lists" / "blocked.csv").open("a") as f:
        f.write("11,2099-01-01,\n")
    with Session(ws) as session:
        assert _matched(session, path) == got


def test_editing_a_list_changes_the_next_backtest_and_the_console(list_ws):
    ws, events, cut = list_ws
    path = ws.strategies_dir / "s.yaml"
    with Session(ws) as session:
        before = session.backtest(path).report
        assert session.interactive(path, Window())["rules"][0]["hits"] == before["rules"][0]["hits"]  # every day
        (ws.root / "lists" / "blocked.csv").write_text("value\n3\n11\n")
        after = session.backtest(path).report
        console = session.interactive(path, Window())
        assert after["rules"][0]["hits"] == int(events.device_id.isin([3, 11]).sum()) != before["rules"][0]["hits"]
        assert after["lists"][0]["sha256"] != before["lists"][0]["sha256"]
        for key in ("overall", "rules", "daily", "by_action", "attribution", "lists"):
            assert_same(console[key], after[key])


@pytest.mark.parametrize("population", [None, "fp NOT IN LIST fps"])
def test_console_path_equals_backtest_path(list_ws, population):
    ws, events, cut = list_ws
    path = ws.strategies_dir / "s.yaml"
    body = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**body, "params": {"big": 250}, **({"population": population} if population
                                                                        else {})}))
    with Session(ws) as session:
        window = session.window("2026-03-02", "2026-03-05")
        cli = session.backtest(path, window).report
        console = session.interactive(path, window)
        moved = session.interactive(path, window, {"big": 100})  # a param the rules do not read: same answer
    assert console["warnings"] == cli["warnings"]
    for key in ("overall", "rules", "daily", "by_action", "attribution", "lists"):
        assert_same(console[key], cli[key])
        assert_same(moved[key], cli[key])
    if population:
        in_window = events[(events.ts >= "2026-03-02") & (events.ts < "2026-03-06")]
        listed_fp = _expected(in_window, cut)["listed_fp"]  # the fp rule hits exactly the listed fps
        expected = in_window[in_window.fp.notna() & ~in_window.event_id.isin(listed_fp)]
        assert cli["overall"]["population"] == len(expected)


def test_the_report_records_each_list_version(list_ws):
    ws, _, _ = list_ws
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "s.yaml").report
    import hashlib

    by_name = {entry["name"]: entry for entry in report["lists"]}
    assert set(by_name) == {"blocked", "fps"}
    blocked = by_name["blocked"]
    assert blocked["file"] == "lists/blocked.csv" and blocked["entries"] == 4
    assert blocked["sha256"] == hashlib.sha256((ws.root / "lists" / "blocked.csv").read_bytes()).hexdigest()
    assert blocked["active_entries"] == 2  # 3 and abc never expire; 5 and 7 expired by the window's end
    with Session(ws) as session:
        plain = session.backtest(ws.strategies_dir / "s.yaml", overrides=None)
        assert "lists" in plain.report
    (ws.strategies_dir / "t.yaml").write_text(yaml.safe_dump({"name": "t", "rules": [
        {"name": "big", "when": "amount > 100", "action": "review"}]}))
    with Session(ws) as session:
        assert "lists" not in session.backtest(ws.strategies_dir / "t.yaml").report


def test_cli_backtest_writes_the_list_files_it_ran_with(list_ws, tmp_path, capsys):
    ws, _, _ = list_ws
    out = tmp_path / "out"
    assert main(["backtest", str(ws.strategies_dir / "s.yaml"), "--workspace", str(ws.root), "--out", str(out),
                 "--format", "json"]) == 0
    assert (out / "lists" / "blocked.csv").read_bytes() == (ws.root / "lists" / "blocked.csv").read_bytes()
    assert (out / "lists" / "fps.csv").exists()
    assert json.loads((out / "report.json").read_text())["lists"][0]["name"] == "blocked"
    printed = capsys.readouterr().out
    assert "list blocked: lists/blocked.csv, 4 entries (2 active at the window's end), sha256 " in printed


def test_export_zip_bundles_strategy_and_lists(list_ws):
    from riskconsole.export import zip_bytes

    ws, _, _ = list_ws
    with Session(ws) as session:
        files = session.export(session.backtest(ws.strategies_dir / "s.yaml"), ["json"])
    bundle = zipfile.ZipFile(io.BytesIO(zip_bytes({"strategies/s.yaml": b"x", **files})))
    assert {"strategies/s.yaml", "lists/blocked.csv", "lists/fps.csv"} <= set(bundle.namelist())


# ------------------------------------------------------------------ bad input: one line, nothing changes


@pytest.mark.parametrize("text, fragment", [
    (b"vallue,expires\n1,\n", "lists/x.csv: unknown column 'vallue' in the header (did you mean 'value'?"),
    (b"expires\n2026-01-01\n", "lists/x.csv: missing the 'value' header (found: expires;"),
    (b"value,expires\n1,\n2,tomorrow\n", "lists/x.csv: row 2: expires 'tomorrow' is not an ISO-8601 time"),
    (b"value,expires\n1,3026-01-01\n", "lists/x.csv: row 1: expires '3026-01-01' is outside 1970-01-01..2099-12-31"),
    (b"value,expires\n1,\n,\n", "lists/x.csv: row 2: empty value"),
    (b"value,added\n1,last week\n", "lists/x.csv: row 1: added 'last week' is not an ISO-8601 time"),
    (b"value,added,expires\n1,2026-03-02,2026-03-02\n", "lists/x.csv: row 1: expires '2026-03-02 00:00:00' is not "
                                                         "after added"),
    (b"value,addded\n1,2026-01-01\n", "unknown column 'addded' in the header (did you mean 'added'?"),
    (b"", "lists/x.csv: empty file"),
    (b"value,value\n1,2\n", "a column is named twice"),
    (b"value\n\xff\n", "not UTF-8"),
    (b"value,expires\n1,2,3\n", "lists/x.csv: row 1 (line 2): 3 fields where the header has 2 (value, expires): "
                                  "quote a field that holds a comma"),
    # a note with a comma, written as a spreadsheet would not: the row, its line and the fix, not pyarrow's words
    (b"value,added,expires,note\nRK1,,,ring card, with comma\n\nK5,,,\n", "lists/x.csv: row 1 (line 2): 5 fields "
     'where the header has 4 (value, added, expires, note): quote a field that holds a comma ("a, b") '
     "or remove the extra field"),
    (b"value,added,expires,note\nK1,,,\n\nK5\n", "lists/x.csv: row 2 (line 4): 1 field where the header has 4 "
     "(value, added, expires, note): write every field, empty ones too (K5,,,)"),
    (b'value,note\nK1,"a\nb"\nK2,x,y\n', "lists/x.csv: row 2 (line 4): 3 fields"),
    # a quote left open swallows the rest of the file into one field: that said, not 'write every field'
    (b'value,expires\n"K1,\nK2,\n', "lists/x.csv: row 1 (line 2): a quoted field runs from line 2 to line 3: close "
                                      "its quote"),
    # a European spreadsheet's export: the separator named, not 'value;added' taken for one unknown column
    (b"value;added\nK1;\n", "lists/x.csv: the header is separated by ';': a list file is separated by commas "
                              "(value,added; save it as CSV with commas)"),
    # a NUL byte read as a space: '10 1' listed, a value no event holds, in silence
    (b"value\nK1\n10\x001\n", "lists/x.csv: line 3: a NUL character (byte 0), which no value holds: save the list "
                             "as plain UTF-8 CSV text"),
    (b"value\rK1\r\x00K2\r", "lists/x.csv: line 3: a NUL character"),
    (b"\x00value\nK1\n", "lists/x.csv: line 1: a NUL character"),
])
def test_bad_list_files_are_one_line_errors(text: bytes, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_list(text, "x", "lists/x.csv")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_list_saved_with_old_mac_line_endings_reads_as_with_unix_ones():
    """Excel for Mac's 'CSV (Macintosh)' ends lines with a carriage return alone: the header check's CSV reader failed
    on it with Python's own 'new-line character seen in unquoted field' (a traceback, not a one-line error)."""
    unix = b'value,expires,note\nK1,2026-03-04,\nK2,,"two\nlines"\nK3,,x\n'
    got = parse_list(unix.replace(b"\n", b"\r"), "x", "lists/x.csv").table.to_pylist()
    want = parse_list(unix, "x", "lists/x.csv").table.to_pylist()
    assert [r["__value"] for r in got] == ["K1", "K2", "K3"]
    assert got == want


def test_a_strategy_with_an_unknown_or_broken_list_is_refused_naming_file_rule_and_lists(list_ws, capsys):
    ws, _, _ = list_ws
    bad = ws.strategies_dir / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "rules": [
        {"name": "r1", "when": "device_id IN LIST blocked_devices", "action": "block"}]}))
    assert main(["validate", str(bad), "--workspace", str(ws.root)]) != 0
    err = capsys.readouterr().err.strip()
    assert "strategies/bad.yaml: rule 'r1': unknown list 'blocked_devices'" in err
    assert "lists: blocked, fps" in err and "\n" not in err
    (ws.root / "lists" / "fps.csv").write_text("value,expires\nfp1,someday\n")
    with Session(ws) as session, pytest.raises(RiskConsoleError) as caught:
        session.backtest(ws.strategies_dir / "s.yaml")
    assert str(caught.value).startswith("strategies/s.yaml: rule 'listed_fp': lists/fps.csv: row 1: expires")
    assert main(["validate", str(ws.root / "lists" / "fps.csv"), "--workspace", str(ws.root)]) != 0
    assert "lists/fps.csv: row 1" in capsys.readouterr().err
    assert main(["validate", str(ws.root / "lists" / "blocked.csv"), "--workspace", str(ws.root)]) == 0
    assert "list 'blocked', 4 entries" in capsys.readouterr().out


def test_a_strategy_without_lists_still_runs_beside_a_broken_list(list_ws):
    ws, _, _ = list_ws
    (ws.root / "lists" / "broken.csv").write_text("nope\n1\n")
    (ws.strategies_dir / "t.yaml").write_text(yaml.safe_dump({"name": "t", "rules": [
        {"name": "r", "when": "device_id IN LIST blocked", "action": "block"}]}))
    with Session(ws) as session:
        assert session.backtest(ws.strategies_dir / "t.yaml").report["rules"][0]["hits"] > 0


# ------------------------------------------------------------------ the expression checker


class _Refs:
    """Lists as the checker sees them: names, and the semi-join over a list registered on a test connection."""

    def __init__(self, directory: Path) -> None:
        self.set = ListSet(directory, "ts")

    def names(self) -> list[str]:
        return self.set.names()

    def render(self, name, column, where):
        return self.set.render(name, column.name, {"amount": "DOUBLE", "merchant_id": "INTEGER"}.get(
            column.name, "VARCHAR"), where)


WHERE = "strategies/candidate.yaml: rule 'velocity_burst'"
COLUMNS = ("event_id", "ts", "amount", "user_id", "merchant_id", "channel", "user_orders_1h")


@pytest.fixture
def refs(tmp_path: Path) -> _Refs:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "blocked").mkdir()  # a folder is not a list
    (tmp_path / "lists" / "blocked_users.csv").write_text("value\nu1\nu3\n")
    (tmp_path / "lists" / "bad-name.csv").write_text("value\nu1\n")
    return _Refs(tmp_path / "lists")


def _check(text: str, refs) -> str:
    return to_sql(parse_expression(text, columns=COLUMNS, params={"n": 1}, where=WHERE, lists=refs))


def test_in_list_renders_a_semi_join_after_the_check(refs) -> None:
    sql = _check("user_id IN LIST blocked_users AND amount > $n", refs)
    assert sql.startswith('"user_id" IN (SELECT TRY_CAST(__value AS TEXT) FROM __list_blocked_users AS __v_')
    (refs.set.directory / "expiring.csv").write_text("value,expires\nu1,2026-01-01\n")
    sql = _check("user_id IN LIST expiring", refs)
    assert sql.startswith('CASE WHEN "user_id" IS NULL THEN NULL ELSE COALESCE((SELECT MAX(COALESCE(__expires, ')
    assert 'FROM __list_expiring AS __v_' in sql and 'WHERE TRY_CAST(__value AS TEXT) = "user_id") > "ts"' in sql
    node = parse_expression("user_id not in list blocked_users", columns=COLUMNS, where=WHERE, lists=refs)
    assert referenced_columns(node) == {"user_id"}
    with pytest.raises(ExpressionError, match="cannot be rendered for spark"):
        to_sql(node, "spark")


@pytest.mark.parametrize("text, fragment", [
    ("user_id IN LIST cards", "unknown list 'cards' (lists: blocked_users;"),
    ("user_id IN LIST blocked_user", "did you mean 'blocked_users'?"),
    ("user_id IN LIST 'blocked_users'", "IN LIST must be followed by a list name, not 'blocked_users'"),
    ("user_id IN LIST \"blocked_users\"", "IN LIST must be followed by a list name"),
    ("user_id IN LIST", "IN LIST must be followed by a list name, not nothing"),
    ("user_id IN LIST $n", "IN LIST must be followed by a list name"),
    ("user_id IN LIST (SELECT 1)", "IN LIST must be followed by a list name, not '('"),
    ("user_id IN LIST bad-name", "cannot parse expression"),
    ("user_id IN LIST blocked", "unknown list 'blocked'"),
    ("user_id IN LIST blocked_users; DROP TABLE events", "';' is not allowed"),
    ("user_id IN LIST blocked_users -- x", "comments"),
    ("user_id IN LIST blocked_users /* x */", "comments"),
    ("lower(user_id) IN LIST blocked_users", "needs a column on its left"),
    ("user_id IN LIST select", "IN LIST must be followed by a list name, not 'select'"),
    ("user_id IN (SELECT value FROM __list_blocked_users)", "subqueries are not allowed"),
    ("user_id IN __list_blocked_users", "uses unsupported syntax"),
    ("user_id IN (__list_blocked_users)", "unknown column '__list_blocked_users'"),
    ("user_id = 'x' IN LIST blocked_users", "needs a column on its left"),
])
def test_in_list_refusals_are_one_line(refs, text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as err:
        _check(text, refs)
    message = str(err.value)
    assert message.startswith(WHERE + ": ") and fragment in message and "\n" not in message, message


def test_in_list_inside_strings_and_quoted_names_is_left_alone(refs) -> None:
    assert _check("channel = 'x IN LIST blocked_users'", refs) == "\"channel\" = 'x IN LIST blocked_users'"
    with pytest.raises(ExpressionError, match="unknown column 'IN LIST blocked_users'"):
        _check('user_id = "IN LIST blocked_users"', refs)


def test_in_list_without_lists_is_refused() -> None:
    with pytest.raises(ExpressionError, match="IN LIST is not available here"):
        parse_expression("user_id IN LIST x", columns=COLUMNS, where=WHERE)


def _corpus_con(refs) -> duckdb.DuckDBPyConnection:
    from test_expressions import _EVENTS_SQL

    con = duckdb.connect(config={"enable_external_access": False, "lock_configuration": True})
    con.execute(_EVENTS_SQL)
    refs.set.register(con)
    return con


def test_in_list_injection_corpus_is_refused_or_harmless(refs, tmp_path: Path, monkeypatch) -> None:
    """Payloads as list names, after a list, and around one: refused in one line, or run and change nothing."""
    from test_expressions import _catalog, _payloads

    payloads = _payloads("payloads.txt") + _payloads("duckdb_specific.txt")
    monkeypatch.chdir(tmp_path / "lists")
    con = _corpus_con(refs)
    baseline, files = _catalog(con), sorted(Path(".").iterdir())
    failures, accepted = [], 0
    for payload in payloads:
        for text in (f"user_id IN LIST {payload}", f"user_id IN LIST blocked_users {payload}",
                     f"user_id NOT IN LIST blocked_users AND {payload}", f"{payload} IN LIST blocked_users"):
            try:
                sql = _check(text, refs)
            except ExpressionError as err:
                if "\n" in str(err) or not str(err).startswith(WHERE + ": "):
                    failures.append(f"{text!r}: bad message {err}")
                continue
            except Exception as err:  # noqa: BLE001 - a crash is what this test looks for
                failures.append(f"{text!r}: crashed with {type(err).__name__}: {err}")
                continue
            accepted += 1
            try:
                con.execute(f"SELECT count(*) FROM events WHERE coalesce(({sql}), false)").fetchall()
            except duckdb.Error:
                pass
            if _catalog(con) != baseline or sorted(Path(".").iterdir()) != files:
                failures.append(f"{text!r}: changed the database or created a file")
    print(f"{4 * len(payloads)} IN LIST expressions, {accepted} accepted and harmless")
    assert not failures, f"{len(failures)} failures, first ones:\n" + "\n".join(failures[:10])


def test_in_list_runs_with_expiry_on_a_connection(refs) -> None:
    (refs.set.directory / "merchants.csv").write_text("value,expires\n101,2026-01-01 00:10:00\n102,\n")
    con = _corpus_con(refs)
    sql = _check("merchant_id IN LIST merchants", refs)
    got = con.execute(f"SELECT event_id FROM events WHERE {sql} ORDER BY 1").fetchall()
    assert got == [("e2",)]  # e1 (101) happens exactly when its entry expires; e4 (101) after


# ------------------------------------------------------------------ editing


def test_add_and_remove_entries_write_atomically_and_check_first(tmp_path: Path) -> None:
    lists = ListSet(tmp_path / "lists", "ts", tmp_path)
    found = add_entry(lists, "blocked_devices", "d1")
    assert found.entries == 1 and (tmp_path / "lists" / "blocked_devices.csv").read_text() == "value\nd1\n"
    add_entry(lists, "blocked_devices", "d2", "2026-06-30", "chargeback")
    assert read_entries(lists.path("blocked_devices"))[1] == {"value": "d2", "added": "", "expires": "2026-06-30",
                                                                "note": "chargeback"}
    add_entry(lists, "blocked_devices", "d3", note="ring", added="2026-03-01")
    assert lists.path("blocked_devices").read_text() == \
        "value,added,expires,note\nd1,,,\nd2,,2026-06-30,chargeback\nd3,2026-03-01,,ring\n"
    remove_entry(lists, "blocked_devices", "d3")
    before = lists.path("blocked_devices").read_bytes()
    with pytest.raises(ConfigError, match="row 3: expires 'soon'"):
        add_entry(lists, "blocked_devices", "d3", "soon")
    with pytest.raises(ConfigError, match="row 3: empty value"):
        add_entry(lists, "blocked_devices", "  ")
    with pytest.raises(ConfigError, match="not a list name"):
        add_entry(lists, "../evil", "x")
    assert lists.path("blocked_devices").read_bytes() == before
    assert remove_entry(lists, "blocked_devices", "d1").entries == 1
    assert [p.name for p in (tmp_path / "lists").iterdir()] == ["blocked_devices.csv"]


def test_a_list_loads_once_per_file_version_and_an_edit_changes_the_sql(tmp_path: Path) -> None:
    lists = ListSet(tmp_path, "ts")
    (tmp_path / "l.csv").write_text("value\na\n")
    first = lists.load("l")
    assert lists.load("l") is first
    before = render(lists.render("l", "x", "VARCHAR", "w"))
    (tmp_path / "l.csv").write_text("value\na\nb\n")
    assert lists.load("l").entries == 2
    assert render(lists.render("l", "x", "VARCHAR", "w")) != before  # caches keyed by condition SQL miss


def test_features_cannot_read_lists(tmp_path: Path) -> None:
    dataset = {**BASE_DATASET, "features": [*BASE_DATASET["features"],
                                            {"name": "odd", "sql": "device_id IN LIST blocked"}]}
    ws = write_workspace(tmp_path / "ws", random_events(n=50), dataset=dataset)
    with pytest.raises(RiskConsoleError, match="IN LIST is not available here"):
        load(ws)


def test_window_without_lists_folder_is_fine(tiny_ws) -> None:
    with Session(tiny_ws) as session:
        assert "lists" not in session.interactive(tiny_ws.strategies_dir / "tiny.yaml", Window())


def test_every_path_that_runs_conditions_reads_the_lists(list_ws):
    """Compare (with segments), monitor, curves, sweep, optimize, transitions, one event: all see the list."""
    ws, events, cut = list_ws
    path, base = ws.strategies_dir / "p.yaml", ws.strategies_dir / "base.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "params": {"big": 250}, "rules": [
        {"name": "listed", "when": "device_id IN LIST blocked", "action": "block"},
        {"name": "big", "when": "device_id NOT IN LIST blocked AND amount > $big", "action": "review"}]}))
    base.write_text(yaml.safe_dump({"name": "base", "rules": [
        {"name": "big", "when": "amount > 250", "action": "review"}]}))
    listed = _expected(events, cut)["listed_device"]
    with Session(ws) as session:
        window = Window()  # every day (without --to the default window ends on the last mature day)
        report = session.backtest(path, window, baseline=_baseline(base), by="channel").report
        assert report["rules"][0]["hits"] == len(listed) and report["compare"]
        changed = session.transition_events(path, base, window, "allow", "block")
        assert set(changed.column("id").to_pylist()) <= listed and changed.num_rows
        one = sorted(listed)[0]
        assert session.event_decision(path, one)["action"] == "block"
        assert session.monitor(path, "2026-03-08", "2026-03-12", "2026-03-01:2026-03-07")
        points = session.curve(path, window, "big", {})
        assert points and all(p["hits"] >= len(listed) for p in points if "hits" in p)
        swept = session.sweep(path, "big", [100, 300], window)
        assert len(swept["points"]) == 2
        assert session.optimize(path, {"big": [100, 300]}, window)["points"]
        assert session.decisions(session.backtest(path, window)).num_rows == len(events)


def _baseline(path):
    from riskconsole.report import Baseline

    return Baseline(path, bootstrap=20)


# ------------------------------------------------------------------ the console


@pytest.fixture
def console(list_ws, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from riskconsole.ui import common

    ws, events, _ = list_ws
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(ws.root))
    common.release_connections()

    def open_page(name: str) -> AppTest:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
        at.switch_page(f"riskconsole/ui/{name}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return ws, events, open_page


def test_strategy_page_shows_and_edits_lists(console):
    ws, _, open_page = console
    at = open_page("strategy_page")
    table = next(d.value for d in at.dataframe if "list" in d.value.columns)
    assert list(table["list"]) == ["blocked", "fps"] and list(table["entries"]) == [4, 2]
    at.selectbox(key="list_pick").set_value("(new list)").run()
    at.text_input(key="list_new").set_value("blocked_devices").run()
    form_inputs = [t for t in at.text_input if t.label in ("Value", "Expires (optional)")]
    form_inputs[0].set_value("d-42")
    form_inputs[1].set_value("2026-06-30")
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert (ws.root / "lists" / "blocked_devices.csv").read_text() == "value,expires\nd-42,2026-06-30\n"
    at.selectbox(key="list_pick").set_value("blocked").run()
    at.selectbox(key="list_remove_blocked").set_value("abc")
    next(b for b in at.button if b.label == "Remove").click().run()
    assert "abc" not in (ws.root / "lists" / "blocked.csv").read_text()
    at.selectbox(key="list_pick").set_value("(new list)").run()
    at.text_input(key="list_new").set_value("x").run()
    [t for t in at.text_input if t.label == "Expires (optional)"][0].set_value("soon")
    [t for t in at.text_input if t.label == "Value"][0].set_value("v")
    next(b for b in at.button if b.label == "Add").click().run()
    assert any("row 1: expires 'soon'" in e.value for e in at.error)
    assert not (ws.root / "lists" / "x.csv").exists()


def test_event_explorer_adds_the_events_device_to_a_list(console):
    ws, events, open_page = console
    at = open_page("detectors_page")
    at.selectbox(key="strategy").set_value("s").run()
    event = events[~events.device_id.isin([3, 5, 7])].iloc[10]
    at.text_input[0].set_value(event.event_id).run()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Column").value == "device_id"  # what the strategy reads
    assert next(s for s in at.selectbox if s.label == "List").value == "blocked"
    next(b for b in at.button if b.label == "Add to list").click().run()
    assert not at.exception, [e.value for e in at.exception]
    rows = read_entries(ws.root / "lists" / "blocked.csv")
    assert rows[-1] == {"value": str(event.device_id), "added": "", "expires": "", "note": f"from event {event.event_id}"}
    assert any("Added device_id" in s.value for s in at.success)
    assert any("decides **block**" in m.value for m in at.markdown)  # the next run sees the list


def test_backtest_page_sees_a_list_edit_without_a_reload(console):
    ws, events, open_page = console
    at = open_page("backtest_page")
    at.selectbox(key="strategy").set_value("s").run()
    at.date_input(key="window_input").set_value((events.ts.min().date(), events.ts.max().date())).run()  # every day

    def hits() -> int:
        table = next(d.value for d in at.dataframe if "unique_tp" in d.value.columns)
        return int(table.set_index("name").loc["listed_device", "hits"])

    before = hits()
    (ws.root / "lists" / "blocked.csv").write_text("value\n3\n11\n")
    at.run()
    assert not at.exception
    assert hits() == int(events.device_id.isin([3, 11]).sum()) != before


def test_export_page_offers_the_strategy_with_its_lists(console):
    ws, _, open_page = console
    at = open_page("export_page")
    at.selectbox(key="strategy").set_value("s").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [b.proto.label for b in at.get("download_button")]
    assert "s.zip (reviewed, with its lists)" in labels and "lists/blocked.csv" in labels


def test_a_lists_table_is_pyarrows_own_without_importing_pandas(tmp_path):
    """A list's Arrow columns are built from their buffers: the very arrays `pa.array` gives (unicode, empty, NULL
    times), without the pandas import `pa.array` makes first (~0.3 CPU-s of a CLI run of a workspace with lists)."""
    import os
    import subprocess
    import sys
    from datetime import datetime, timedelta

    import pyarrow as pa

    from riskconsole.lists import _strings, _timestamps
    from riskconsole.workspace import REPO_ROOT

    values = ["dev1", "", "é✓ ünï", "a b", "x" * 300]
    times = [datetime(2026, 1, 1, 12, 0, 0, 123456), None, datetime(1969, 12, 31, 23, 59, 59, 999999), None,
             datetime(2099, 1, 1) - timedelta(microseconds=1)]
    for got, want in ((_strings(values), pa.array(values, pa.string())), (_strings([]), pa.array([], pa.string())),
                      (_timestamps(times), pa.array(times, pa.timestamp("us"))),
                      (_timestamps([]), pa.array([], pa.timestamp("us"))),
                      (_timestamps([None] * 9), pa.array([None] * 9, pa.timestamp("us")))):
        assert got.equals(want) and got.to_pylist() == want.to_pylist()
    probe = ("import sys\nfrom riskconsole.lists import parse_list\n"
             "f = parse_list(b'value,added,expires\\nA,2026-01-01,2026-02-01T10:00:00+02:00\\nB,,\\n', 'x', 'x.csv')\n"
             "print(f.table.num_rows, 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.stdout.split() == ["2", "False"]


def test_a_list_edited_with_its_mtime_set_back_changes_the_lists_stamp(tmp_path):
    """`ListSet.stamp` (the evaluator's key of a rule reading a list) changes with an edit that keeps the file's size
    and sets its mtime back (`touch -d`, `cp -p`): the change time moves with any write."""
    import os
    import time

    from riskconsole.lists import ListSet

    path = tmp_path / "blocked.csv"
    path.write_text("value\nUS\n")
    lists = ListSet(tmp_path, "ts")
    before, info = lists.stamp(), os.stat(path)
    time.sleep(0.02)  # past the file system's clock tick
    path.write_text("value\nGB\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (info.st_size, info.st_mtime_ns)  # what the stamp used to read
    assert lists.stamp() != before


def _counting_reads(monkeypatch) -> list:
    """Path.read_bytes calls of list files, counted."""
    from pathlib import Path

    reads, real = [], Path.read_bytes

    def read_bytes(self):
        reads.append(self.name)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return reads


def test_an_unchanged_list_file_is_not_read_again_and_an_edit_keeping_size_and_mtime_is(tmp_path, monkeypatch):
    """A long-lived process registers the lists on every cursor: a file whose stat is the one seen at its last read,
    and changed well before that read, is not read again (a 30 MB list took 28 ms a cursor); an edit that keeps its
    size and sets its mtime back is read (the change time moved)."""
    import os
    import time

    from riskconsole import lists

    monkeypatch.setattr(lists, "RACY_NS", 0)  # the file counts as old at once (the rule's timing: the next test)
    reads = _counting_reads(monkeypatch)
    path = tmp_path / "blocked.csv"
    path.write_text("value\nUS\n")
    info = os.stat(path)
    time.sleep(0.02)  # past the file system's clock tick
    first = lists.load_list(path, "lists/blocked.csv")
    assert lists.load_list(path, "lists/blocked.csv") is first and reads == ["blocked.csv"]
    time.sleep(0.02)
    path.write_text("value\nGB\n")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert os.stat(path).st_size == info.st_size and os.stat(path).st_mtime_ns == info.st_mtime_ns
    assert lists.load_list(path, "lists/blocked.csv").table.column("__value").to_pylist() == ["GB"]
    assert len(reads) == 2
    assert lists.load_list(path, "other/blocked.csv").label == "other/blocked.csv"  # another label: checked anew


def test_a_list_file_changed_just_before_its_read_is_read_each_time_until_it_is_older(tmp_path, monkeypatch):
    """Two saves in one tick of the file system's clock can leave the same stat, so a file whose change time is
    within RACY_NS of its last read is read (and its content compared) every time; once older, it is trusted."""
    import os

    from riskconsole import lists

    reads = _counting_reads(monkeypatch)
    path = tmp_path / "blocked.csv"
    path.write_text("value\nUS\n")
    for _ in range(3):
        lists.load_list(path, "lists/blocked.csv")
    assert len(reads) == 3  # changed a moment ago: read each time
    old = os.stat(path).st_ctime_ns
    monkeypatch.setattr(lists, "time_ns", lambda: old + lists.RACY_NS + 1)  # as if read 2 s later
    lists.load_list(path, "lists/blocked.csv")
    lists.load_list(path, "lists/blocked.csv")
    assert len(reads) == 4  # read once more (now known old), then trusted
