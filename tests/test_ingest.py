"""Loading: every row lands in events or quarantine, bad specs change nothing, any format and naming works."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.report import run_backtest
from conftest import query, BASE_DATASET, late_json_lines, random_events, write_workspace

HEADER = "event_id,ts,is_fraud,label_ts,amount,user_id,device_id\n"
GOOD = "a1,2026-03-01 10:00:00,1,2026-03-05 00:00:00,10.5,1,1\n"
FILE_1 = HEADER + GOOD + (
    ",2026-03-01 10:01:00,0,,11,1,1\n"                # missing id
    "a3,,0,,12,1,1\n"                                 # missing time
    "a4,yesterday,0,,13,1,1\n"                        # bad time
    "a5,2026-03-01 10:04:00,2,,14,1,1\n"              # bad label
    "a6,2026-03-01 10:05:00,0,,abc,1,1\n"             # bad amount
    "a7,2026-03-01 10:06:00,,,15,1,1\n"               # unknown label: fine
)
FILE_2 = HEADER + "a1,2026-03-02 10:00:00,0,,99,2,2\n" + "a8,2026-03-02 11:00:00,0,2026-03-09 00:00:00,16,2,2\n"


def _ws(tmp_path, files: dict[str, str], dataset: dict | None = None):
    root = tmp_path / "ws"
    (root / "data" / "in").mkdir(parents=True)
    for name, text in files.items():
        (root / "data" / "in" / name).write_text(text)
    spec = {**(dataset or BASE_DATASET), "source": "data/in/*.csv"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    from riskconsole.workspace import Workspace
    return Workspace(root)




def test_every_row_is_loaded_or_quarantined_with_a_reason(tmp_path):
    ws = _ws(tmp_path, {"part-1.csv": FILE_1, "part-2.csv": FILE_2})
    result = load(ws, accept_quarantine=True)  # 6 of 9 rows quarantined on purpose: more than a load publishes
    assert (result.read, result.loaded, result.quarantined) == (9, 3, 6)
    assert result.read == result.loaded + result.quarantined
    reasons = dict(query(ws, "SELECT event_id, reason FROM quarantine"))
    assert reasons[None] == "missing id"
    assert reasons["a3"] == "missing time"
    assert reasons["a4"] == "ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)"
    assert reasons["a5"] == "is_fraud: label must be 1, 0 or empty (or a word mapped under label_values:)"
    assert reasons["a6"] == "amount: not a valid DOUBLE"
    assert reasons["a1"] == "duplicate id"  # the copy in the later file; the first occurrence wins
    assert query(ws, "SELECT amount FROM events WHERE event_id = 'a1'") == [(10.5,)]
    assert query(ws, "SELECT is_fraud FROM events WHERE event_id = 'a7'") == [(None,)]
    assert "9 = loaded 3 + quarantined 6" in result.summary().replace("read ", "")
    exported = pd.read_csv(ws.root / "data" / "quarantine.csv")
    assert len(exported) == 6 and set(exported["reason"]) == set(reasons.values())
    # `file` and `row` point at the row in that file (1 = the first under the header): read back with pandas, the row
    # there holds the quarantined values (the copy of a1 is row 1 of part-2.csv, which the load called row 8)
    where = {}
    for file, row, event, amount in query(ws, "SELECT file, row, event_id, amount FROM quarantine"):
        raw = pd.read_csv(file, dtype=str, keep_default_na=False).iloc[row - 1]
        assert (raw["event_id"] or None, raw["amount"]) == (event, amount), (file, row)
        where[event] = (file.rsplit("/", 1)[-1], row)
    assert where["a1"] == ("part-2.csv", 1) and where["a6"] == ("part-1.csv", 6)


def test_reload_is_idempotent(tmp_path):
    ws = _ws(tmp_path, {"part-1.csv": FILE_1, "part-2.csv": FILE_2})
    load(ws, accept_quarantine=True)
    first = query(ws, "SELECT * FROM frame ORDER BY _pos")
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (3, 6)
    assert query(ws, "SELECT * FROM frame ORDER BY _pos") == first
    assert query(ws, "SELECT count(*) FROM quarantine") == [(6,)]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_parquet_and_json_lines_load_like_csv(tmp_path, suffix):
    events = random_events(n=120)
    csv_ws = write_workspace(tmp_path / "csv", events)
    other_ws = write_workspace(tmp_path / suffix, events, source_name=f"events.{suffix}")
    load(csv_ws)
    load(other_ws)
    sql = "SELECT event_id, ts, is_fraud, label_ts, amount, user_orders_1h, device_users_1d FROM frame ORDER BY _pos"
    assert query(other_ws, sql) == query(csv_ws, sql)


def test_a_parquet_column_of_only_nulls_loads_as_text_or_as_the_type_other_files_give_it(tmp_path):
    """pyarrow writes a column of only nulls (pandas: every value None) with Arrow's null type, which DuckDB reads
    as "NULL": in every file it loads as text (as an all-empty CSV column), null on every row (the check before the
    load failed in sqlglot on the type's name); beside a file holding numbers it takes their type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from riskconsole.workspace import Workspace

    def written(ids: list[str], coupon: pa.Array) -> pa.Table:
        return pa.table({"event_id": ids, "ts": ["2026-03-01 10:00:00"] * 2, "is_fraud": [0, 1],
                         "label_ts": pa.array([None, None], pa.string()), "amount": [1.0, 2.0], "user_id": [1, 2],
                         "device_id": [1, 1], "coupon": coupon})

    nulls = written(["a", "b"], pa.array([None, None], pa.null()))
    for name, second, dtype in (("nulls", written(["c", "d"], pa.array([None, None], pa.null())), "VARCHAR"),
                                ("numbers", written(["c", "d"], pa.array([1.5, None])), "DOUBLE")):
        root = tmp_path / name
        (root / "data" / "in").mkdir(parents=True)
        pq.write_table(nulls, root / "data" / "in" / "a.parquet")
        pq.write_table(second, root / "data" / "in" / "b.parquet")
        (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/in/*.parquet"}))
        ws = Workspace(root)
        assert load(ws).loaded == 4
        assert query(ws, "SELECT column_type FROM (DESCRIBE events) WHERE column_name = 'coupon'") == [(dtype,)]
        assert query(ws, "SELECT coupon FROM events ORDER BY event_id") == \
            [(None,)] * 4 if dtype == "VARCHAR" else [(None,), (None,), (1.5,), (None,)]


@pytest.mark.parametrize("change, message", [
    ({"columns": {**BASE_DATASET["columns"], "amount": "amout"}}, "columns.amount: column 'amout' is not in the source"),
    ({"columns": {**BASE_DATASET["columns"], "time": "when"}}, "columns.time: column 'when'"),
    ({"colums": {}}, "unknown key 'colums'"),
    ({"source": "data/nothing/*.csv"}, "matches no file"),
    ({"features": [{"name": "f", "count": "*", "by": "user_id"}]}, "needs `window:`"),
    # a role written beside `columns:` rather than in it: named with the fix
    ({"streams": {"logins": {"source": "data/events.csv", "time": "ts"}}},
     r"streams.logins: 'time' belongs under 'columns:' \(write columns: \{time: ts\}\)$"),
    ({"columns": {"time": "ts", "label": "is_fraud"}, "id": "event_id"},
     r"top level: 'id' belongs under 'columns:' \(move it there: columns: \{…, id: event_id\}\)$"),
    ({"tables": {"t": {"source": "data/events.csv", "key": "user_id", "low": "amount"}}}, "unknown key 'low'"),
])
def test_bad_dataset_is_refused_and_changes_nothing(tmp_path, change, message):
    events = random_events(n=60)
    ws = write_workspace(tmp_path / "w", events)
    load(ws)
    before = query(ws, "SELECT count(*), sum(amount) FROM frame")
    spec = {**BASE_DATASET, "source": "data/events.csv", **change}
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(RiskConsoleError, match=message) as info:
        load(ws)
    assert "\n" not in str(info.value) and str(info.value).startswith("data/dataset.yaml")
    assert query(ws, "SELECT count(*), sum(amount) FROM frame") == before


def test_a_file_named_like_a_glob_is_that_file(tmp_path):
    """`source: data/in/orders [final].csv` names that file: as a glob, [final] would be one of its letters, and a
    stranger would be told an existing file matches no file. A real glob still matches as one."""
    ws = _ws(tmp_path, {"orders [final].csv": FILE_2, "orders f.csv": FILE_1})
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/orders [final].csv"}))
    result = load(ws)
    assert (result.read, result.loaded) == (2, 2)
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/orders [fx].csv"}))  # a glob: orders f.csv
    assert load(ws, accept_quarantine=True).read == 7
    moved = tmp_path / "risk [v2]"  # a workspace whose own folder looks like a glob: its sources' globs still match
    ws.root.rename(moved)
    from riskconsole.workspace import Workspace

    again = Workspace(moved)
    again.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/orders*.csv"}))
    assert load(again, accept_quarantine=True).read == 9


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_files_in_a_folder_named_like_a_partition_load_their_own_columns(tmp_path, suffix):
    """`data/in/day=2026-03-01/orders.csv`: DuckDB's readers would add a column `day` from the folder's name (and
    the header check crashed on its typed value); the events hold the file's own columns, as on engine spark."""
    events = random_events(n=40)
    ws = write_workspace(tmp_path / "w", events, source_name=f"events.{suffix}")
    folder = ws.root / "data" / "in" / "day=2026-03-01" / "part=1"
    folder.mkdir(parents=True)
    (ws.root / "data" / f"events.{suffix}").rename(folder / f"events.{suffix}")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": f"data/in/*/*/*.{suffix}"}))
    assert load(ws).loaded == 40
    assert {"day", "part"}.isdisjoint(c for c, *_ in query(ws, "DESCRIBE events"))


def test_a_fraction_after_the_rows_that_typed_a_column_integer_is_quarantined_not_rounded(tmp_path):
    """DuckDB types `score` BIGINT from the first 20,480 rows it samples, then casts '20500.5' to 20501: a silent
    rounding. Such a row is quarantined saying why and the fix; a declared DOUBLE loads every row exactly."""
    why = "score: a fraction in a column read as BIGINT from its first rows: declare types: {score: DOUBLE}"
    for mark, sep in ((".", ","), (",", ";")):  # a decimal comma too (decimal_separator: ',')
        fractions = [f"{i}{mark}5" for i in range(20_500, 20_599)] + [f"20500000000000001{mark}5"]  # past 2^53
        rows = [sep.join(["e%d" % i, "2026-03-01 10:00:00", "0", "", "5", "1", "1", v])
                for i, v in enumerate([*map(str, range(20_500)), *fractions])]
        ws = _ws(tmp_path / sep, {"a.csv": HEADER.replace("\n", ",score\n").replace(",", sep) + "\n".join(rows) + "\n"},
                 {**BASE_DATASET, "decimal_separator": mark})
        result = load(ws)
        assert (result.loaded, result.reasons) == (20_500, {why: 100}), mark
        assert query(ws, "SELECT max(score) FROM events") == [(20_499,)]
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "types": {"score": "DOUBLE"}}))
    assert load(ws).loaded == 20_600 and query(ws, "SELECT max(score) FROM events") == [(20_500_000_000_000_001.5,)]


def test_a_json_value_after_the_rows_that_typed_its_column_is_quarantined_or_loaded_never_rounded(tmp_path):
    """DuckDB's `read_json` types a column from the rows it samples and then converted every later value to that type
    itself: a fraction in a column sampled BIGINT was rounded (20500.5 -> 20501), a word there failed the whole load
    with DuckDB's message, and values in a column that was null throughout the sample were dropped. Now a JSON scalar
    is read as JSON and cast by the load (a string by its text as a CSV's, anything else as DuckDB's JSON reader
    converts it): the fraction and the words quarantined saying why, a number written as a string and 1.0 in a
    BOOLEAN column loaded, a later zone converted to UTC (times are read as DuckDB types them), the values after the
    nulls loaded as text, and so is a key first seen after the sampled rows (which read_json dropped), with a warning
    saying how to type them."""
    ws = _ws(tmp_path, {})
    late_json_lines(ws.root / "data" / "in" / "a.jsonl")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/*.jsonl"}))
    result = load(ws)
    reasons = dict(query(ws, "SELECT event_id, reason FROM quarantine"))
    assert reasons == {
        "late0": "score: a fraction in a column read as BIGINT from its first rows: declare types: {score: DOUBLE}",
        "late1": "score: not a valid BIGINT", "late2": "score: not a valid BIGINT",
        "late6": "ok: not a valid BOOLEAN"}
    assert (result.read, result.loaded) == (20_510, 20_506)
    assert query(ws, "SELECT ok FROM events WHERE event_id = 'late4'") == [(True,)]  # 1.0: DuckDB's JSON reading
    assert result.warnings == ["data/dataset.yaml: 'note', 'extra' had no value in the first 20,480 rows of a file, "
                               "which DuckDB reads to type a column: loaded as text; declare the type to read numbers "
                               "or times, e.g. types: {note: DOUBLE}"]
    assert query(ws, "SELECT extra FROM events WHERE extra IS NOT NULL") == [("3.5",)]  # read_json dropped the key
    assert query(ws, "SELECT score FROM events WHERE event_id = 'late3'") == [(17,)]
    assert query(ws, "SELECT CAST(seen AS VARCHAR) FROM events WHERE event_id = 'late5'") == [("2026-03-02 10:00:00",)]
    assert query(ws, "SELECT note FROM events WHERE note IS NOT NULL ORDER BY note") == [("7",), ("text",)]
    assert query(ws, "SELECT count(*), max(score) FROM events WHERE event_id LIKE 'e%'") == [(20_500, 20_499)]
    quarantined = dict(query(ws, "SELECT event_id, score FROM quarantine"))
    assert quarantined["late0"] == "20500.5" and quarantined["late1"] == "x7"  # the text as written, no JSON quotes
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/*.jsonl", "types": {"score": "DOUBLE"}}))
    assert load(ws).loaded == 20_508 and query(ws, "SELECT max(score) FROM events WHERE score < 1e6") == [(20_500.5,)]


def test_json_values_load_as_duckdbs_json_reader_reads_them_where_they_fit(tmp_path):
    """What DuckDB's JSON reader converted before the load cast JSON itself still loads the same: numbers with a
    decimal point beside decimal_separator ',' (which applies to text), booleans declared INTEGER, 1.0 and 0.0
    declared BOOLEAN, strings and objects declared JSON, ISO dates. A date DuckDB's reader would take in another
    layout (05-31-1990, 25-11-30: the year 25 by a plain cast) is quarantined saying how to read it, as in a CSV.
    Keys that differ only in letter case are refused, as a CSV header's."""
    import json

    rows = [{"event_id": "a", "t": "05.01.2026 10:00", "is_fraud": 0, "cb": "2026-01-20T10:00:00Z", "amount": 12.5,
             "user_id": 1, "device_id": 1, "fee": "1,25", "new_dev": True, "flag": 1.0, "meta": {"k": 1},
             "dob": "1990-05-31"},
            {"event_id": "b", "t": "06.01.2026 10:00", "is_fraud": 1, "cb": None, "amount": 20, "user_id": 1,
             "device_id": 1, "fee": "2,50", "new_dev": False, "flag": 0.0, "meta": "just text", "dob": "1985-12-31"},
            {"event_id": "c", "t": "07.01.2026 10:00", "is_fraud": 0, "cb": None, "amount": 7.25, "user_id": 1,
             "device_id": 1, "fee": "0,75", "new_dev": None, "flag": None, "meta": 5, "dob": None}]
    ws = _ws(tmp_path, {"a.jsonl": "".join(json.dumps(r) + "\n" for r in rows)}, {
        **BASE_DATASET, "columns": {**BASE_DATASET["columns"], "time": "t", "label_time": "cb"},
        "decimal_separator": ",", "time_format": {"t": "%d.%m.%Y %H:%M"},
        "types": {"fee": "DOUBLE", "new_dev": "INTEGER", "flag": "BOOLEAN", "meta": "JSON"}})
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/in/*.jsonl"}))
    result = load(ws)
    assert (result.loaded, result.quarantined) == (3, 0), result.reasons
    got = query(ws, "SELECT amount, fee, new_dev, flag, CAST(meta AS VARCHAR), CAST(dob AS VARCHAR), "
                    "CAST(cb AS VARCHAR) FROM events ORDER BY event_id")
    assert got == [(12.5, 1.25, 1, True, '{"k":1}', "1990-05-31", "2026-01-20 10:00:00"),
                   (20.0, 2.5, 0, False, '"just text"', "1985-12-31", None),
                   (7.25, 0.75, None, None, "5", None, None)]
    for days in (["05-31-1990", "12-31-1985"], ["25-11-30", "24-02-29"]):  # DuckDB sniffs DATE from each pair
        dated = [{**r, "dob": day} for r, day in zip(rows, [*days, None])]
        (ws.root / "data" / "in" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dated))
        reasons = load(ws, accept_quarantine=True).reasons  # 2 of 3 rows quarantined on purpose
        assert reasons == {"dob: not an ISO-8601 date (e.g. 2026-01-05; type it TIMESTAMP under types: and "
                           "set time_format: for other layouts)": 2}, days
    (ws.root / "data" / "in" / "a.jsonl").write_text("".join(json.dumps({**r, "Fee": 1}) + "\n" for r in rows))
    with pytest.raises(RiskConsoleError, match=r"a.jsonl: the JSON objects have keys 'fee' and 'Fee', which differ "
                                               r"only in letter case; .* rename one of them in the file$"):
        load(ws)
    assert query(ws, "SELECT count(*) FROM events") == [(1,)]  # the live data unchanged


def test_json_edge_cases_a_red_team_found_load_as_they_should(tmp_path):
    """An empty key after the sampled rows is skipped, not a parser error; objects with hundreds of keys are columns
    with their types, not one MAP; `types: {tag: JSON}` keeps a string a JSON string; explore and propensity written
    as strings after the sampled rows pass the outcome checks as their text; a late key named like a YAML word gets
    a fix that parses; `maß` and `MASS` are two columns, as DuckDB names them."""
    import json

    from riskconsole.session import Session

    def write(rows, **spec):
        (ws.root / "data" / "in" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ws.dataset_path.write_text(yaml.safe_dump({**base, **spec}))

    ws = _ws(tmp_path, {})
    base = {"source": "data/in/*.jsonl", "columns": {"id": "id", "time": "t"}}
    row = {"id": 0, "t": "2026-03-01 10:00:00"}
    write([{**row, "id": i} for i in range(20_481)] + [{**row, "id": "z", "": "x", "null": 5}])
    result = load(ws)
    assert result.loaded == 20_482 and "types: {\"null\": DOUBLE}" in result.warnings[0]
    with Session(ws) as session:
        assert session.load_warnings() == result.warnings
    write([{**row, "id": i, "score": i * 0.5, f"attr_{i}": 1} for i in range(300)])
    load(ws)
    types = dict(query(ws, "SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = 'events'"))
    assert types["score"] == "DOUBLE" and types["attr_7"] == "BIGINT" and "json" not in types
    write([{**row, "id": 1, "tag": "x"}, {**row, "id": 2, "tag": '{"a": 1}'}, {**row, "id": 3, "tag": {"a": 1}}],
          types={"tag": "JSON"})
    assert load(ws).loaded == 3
    assert query(ws, "SELECT CAST(tag AS VARCHAR) FROM events ORDER BY id") == [('"x"',), ('"{\\"a\\": 1}"',),
                                                                              ('{"a":1}',)]
    outcome = {**row, "y": 0, "pa": "block", "ex": 0, "pr": 0.5}
    write([{**outcome, "id": i} for i in range(20_481)] + [{**outcome, "id": "x", "ex": "1", "pr": "0.5"}],
          columns={"id": "id", "time": "t", "label": "y", "prod_action": "pa", "explore": "ex", "propensity": "pr"})
    assert load(ws).loaded == 20_482
    write([{**row, "maß": 1, "MASS": 2}])
    assert load(ws).loaded == 1 and query(ws, "SELECT \"maß\", \"MASS\" FROM events") == [(1, 2)]


def test_a_date_column_reads_iso_dates_and_says_which_are_not(tmp_path):
    """A column typed DATE from text takes ISO dates, with one-digit months and days and a time of day as DuckDB's
    cast reads them; a day that does not exist is `not a valid DATE`; another layout `not an ISO-8601 date`."""
    days = ["2026-1-5", "2026-01-05 00:00:00", "2026-01-05T00:00:00", "2026-02-30", "05-31-1990"]
    rows = "".join(f"e{i},2026-03-01 10:00:00,0,,5,1,1,{d}\n" for i, d in enumerate(days))
    ws = _ws(tmp_path, {"a.csv": HEADER.replace("\n", ",d\n") + rows}, {**BASE_DATASET, "types": {"d": "DATE"}})
    result = load(ws)
    assert result.reasons == {"d: not a valid DATE": 1, "d: not an ISO-8601 date (e.g. 2026-01-05; type it "
                              "TIMESTAMP under types: and set time_format: for other layouts)": 1}
    assert query(ws, "SELECT DISTINCT CAST(d AS VARCHAR) FROM events") == [("2026-01-05",)]


def test_a_source_with_no_rows_is_an_error(tmp_path):
    ws = _ws(tmp_path, {"empty.csv": HEADER})
    with pytest.raises(RiskConsoleError, match="no rows"):
        load(ws)
    assert not ws.db_path.exists() or query(ws, "SELECT count(*) FROM information_schema.tables "
                                                 "WHERE table_name = 'events'") == [(0,)]


def test_foreign_dataset_loads_and_backtests_with_only_a_new_yaml(tmp_path):
    """Other column names, no amount, no label_time: a label feature then needs a label delay."""
    events = random_events(n=150).rename(columns={"event_id": "TX_ID", "ts": "TX_DATETIME", "is_fraud": "TX_FRAUD",
                                                  "user_id": "CUSTOMER_ID", "device_id": "TERMINAL_ID"})
    events = events.drop(columns=["amount", "label_ts"])
    dataset = {
        "columns": {"id": "TX_ID", "time": "TX_DATETIME", "label": "TX_FRAUD",
                    "entities": ["CUSTOMER_ID", "TERMINAL_ID"]},
        "features": [{"name": "cust_tx_1d", "count": "*", "by": "CUSTOMER_ID", "window": "1d"},
                     {"name": "term_fraud_7d", "sum": "label", "by": "TERMINAL_ID", "window": "7d",
                      "label_delay": "1d"}],
    }
    strategy = {"name": "foreign", "rules": [
        {"name": "busy", "when": "cust_tx_1d >= 2", "action": "review"},
        {"name": "bad_terminal", "when": "term_fraud_7d >= 2 AND channel <> 'web'", "action": "block"}]}
    ws = write_workspace(tmp_path / "f", events, dataset, {"foreign": strategy})
    assert load(ws).loaded == 150
    report = run_backtest(ws, ws.strategies_dir / "foreign.yaml").report
    assert report["overall"]["population"] == 150
    assert report["overall"]["fraud_amount"] == 0.0  # no amount role: money metrics are zero, not invented
    no_delay = {**dataset, "features": [{**dataset["features"][1], "label_delay": None}]}
    write_workspace(tmp_path / "f", events, no_delay)
    with pytest.raises(RiskConsoleError, match="needs label_delay"):
        load(ws)


def test_declared_types_cast_and_quarantine_what_fails(tmp_path):
    text = HEADER.strip() + ",score\n" + "\n".join([
        "b1,2026-03-01 10:00:00,0,,10,1,1,7",
        "b2,2026-03-01 11:00:00,0,,10,1,1,x",   # not an INTEGER
        "b3,2026-03-01 12:00:00,0,,10,1,1,",    # empty is fine
    ]) + "\n"
    ws = _ws(tmp_path, {"e.csv": text}, {**BASE_DATASET, "types": {"score": "INTEGER", "user_id": "VARCHAR"}})
    result = load(ws)
    assert (result.loaded, result.quarantined) == (2, 1)
    assert query(ws, "SELECT reason FROM quarantine") == [("score: not a valid INTEGER",)]
    assert dict(query(ws, "SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = 'events' AND column_name IN ('score', 'user_id')")) == {
        "score": "INTEGER", "user_id": "VARCHAR"}
    bad = {**BASE_DATASET, "types": {"score": "NUMBERISH"}}
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**bad, "source": "data/in/*.csv"}))
    with pytest.raises(RiskConsoleError) as info:
        load(ws)
    assert "NUMBERISH" in str(info.value) and "\n" not in str(info.value)
    assert query(ws, "SELECT count(*) FROM events") == [(2,)]


def test_an_uploaded_file_loads_with_the_current_roles(tmp_path):
    from riskconsole.uploads import load_upload

    ws = write_workspace(tmp_path / "w", random_events(n=60))
    load(ws)
    upload = (HEADER + GOOD + "u2,not a time,0,,5,1,1\n").encode()
    result = load_upload(ws, "../../sneaky/new events.csv", upload)
    assert (result.read, result.loaded, result.quarantined) == (2, 1, 1)
    assert (ws.root / "data" / "uploads" / "new events.csv").exists()  # the name is kept, the path is not
    assert query(ws, "SELECT count(*) FROM events") == [(1,)]
    with pytest.raises(RiskConsoleError, match="upload a .csv"):
        load_upload(ws, "events.xlsx", b"PK")


def test_an_upload_reads_the_workspaces_streams_where_its_dataset_says(tmp_path):
    """The upload replaces the decision events only: a stream the workspace's own dataset.yaml reads from outside
    the workspace (or, on engine spark, from a URI) is read for the upload too."""
    import test_streams
    from riskconsole.uploads import load_upload

    events = random_events(n=60)
    ws = write_workspace(tmp_path / "w", events)
    test_streams.make_logins(events).to_csv(tmp_path / "logins.csv", index=False)
    spec = yaml.safe_load(ws.dataset_path.read_text())
    spec["streams"] = {"logins": {**test_streams.STREAM, "source": str(tmp_path / "logins.csv")}}
    ws.dataset_path.write_text(yaml.safe_dump(spec))
    load(ws)
    result = load_upload(ws, "new.csv", (HEADER + GOOD).encode())
    assert result.loaded == 1 and result.sources["streams.logins"]["loaded"] == len(test_streams.make_logins(events))


@pytest.mark.parametrize("header, refused", [("Amount", True), ("AMOUNT", True), ("amount_2", False)])
def test_csv_header_names_repeated_up_to_case_are_refused(tmp_path, header, refused):
    """DuckDB would rename the second `amount` to `amount_1` silently; a header-less file is not refused."""
    events = random_events(n=20)
    events[header] = 1.0
    ws = write_workspace(tmp_path / "ws", events)
    if refused:
        with pytest.raises(RiskConsoleError, match=f"'amount' and '{header}', which differ only in letter case"):
            load(ws)
        assert not ws.db_path.exists()
    else:
        load(ws)
    headerless = tmp_path / "plain.csv"
    headerless.write_text("1,5,5\n2,6,6\n")
    import duckdb
    from riskconsole.sources import column_types
    assert list(column_types(duckdb.connect(), "csv", [str(headerless)])) == ["column0", "column1", "column2"]


def test_a_type_no_row_fits_says_why_every_row_was_quarantined(tmp_path):
    events = random_events(n=20)
    events["score"] = 123.4
    dataset = {**BASE_DATASET, "types": {"score": "DECIMAL(2,1)"}}
    ws = write_workspace(tmp_path / "ws", events, dataset)
    with pytest.raises(RiskConsoleError, match=r"every one quarantined: score: not a valid DECIMAL\(2,1\) \(20 rows\)"):
        load(ws)
    assert not ws.db_path.exists()


def test_decimal_commas_load_and_a_thousands_separator_is_read_only_beside_decimals(tmp_path):
    """`decimal_separator: ','` reads 723,03 as 723.03 (amount, a typed column and a sniffed one, in a `;` CSV) and
    1.234,56 as 1234.56 (grouped, with its decimals: nothing else it could mean), and refuses to guess at 1.234 (a
    thousand and more, or one and a bit?); without it every such amount is quarantined, never misread."""
    text = ("event_id;ts;is_fraud;label_ts;amount;user_id;device_id;fee\n"
            "a1;2026-03-01 10:00:00;1;2026-03-05 00:00:00;723,03;1;1;0,5\n"
            "a2;2026-03-01 11:00:00;0;;12;2;1;1,25\n"
            "a3;2026-03-01 12:00:00;0;;1.234,56;2;2;0\n"
            "a4;2026-03-01 13:00:00;0;;-0,75;3;2;\n"
            "a5;2026-03-01 14:00:00;0;;1.234;3;2;\n"
            "a6;2026-03-01 15:00:00;0;;-12.345.678,9;3;2;\n")
    spec = {**BASE_DATASET, "decimal_separator": ",", "types": {"user_id": "DECIMAL(6,2)"}}
    ws = _ws(tmp_path, {"orders.csv": text}, spec)
    result = load(ws)
    assert (result.loaded, result.quarantined) == (5, 1)
    assert query(ws, "SELECT event_id, amount, fee, user_id FROM events ORDER BY event_id") == [
        ("a1", 723.03, 0.5, 1), ("a2", 12.0, 1.25, 2), ("a3", 1234.56, 0.0, 2), ("a4", -0.75, None, 3),
        ("a6", -12345678.9, None, 3)]
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [(
        "a5", "amount: a thousands separator in a number without decimals (1.512): write it where the file is "
        "exported as 1512, or 1.512,00")]
    plain = load(_ws(tmp_path / "plain", {"orders.csv": text}, BASE_DATASET), accept_quarantine=True)
    assert (plain.loaded, plain.quarantined) == (2, 4)  # '.' the decimal mark: 12 and 1.234 (one and a bit)
    assert plain.warnings == ["data/dataset.yaml: columns.amount: 4 of 6 rows (66.7%) quarantined because 'amount' is "
                              "not a valid DOUBLE, e.g. '723,03', '1.234,56', '-0,75': numbers with a decimal comma: "
                              "set decimal_separator: ',' for this source"]


def test_an_amount_with_a_currency_sign_is_quarantined_saying_so_and_the_fix(tmp_path):
    """`$12.50` and `12,50 €` are not numbers: each row's reason names the sign seen and the one-line fix (with the
    decimal comma where the source reads points), and the load's warning shows the values and the same fix."""
    text = ("event_id;ts;is_fraud;label_ts;amount;user_id;device_id\n"
            "a1;2026-03-01 10:00:00;1;2026-03-05 00:00:00;$12.50;1;1\n"
            "a2;2026-03-01 11:00:00;0;;12,50 €;2;1\n"
            "a3;2026-03-01 12:00:00;0;;7.25;2;2\n"
            "a4;2026-03-01 13:00:00;0;;EUR 3.10;3;2\n")
    ws = _ws(tmp_path, {"orders.csv": text}, BASE_DATASET)
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (1, 3)
    comma = "; a decimal comma (12,50) also needs decimal_separator: ','"
    assert sorted(query(ws, "SELECT event_id, reason FROM quarantine")) == [
        ("a1", "amount: currency sign '$' in a number: remove it where the file is exported (12.50, not $12.50)"
         + comma),
        ("a2", "amount: currency sign '€' in a number: remove it where the file is exported (12.50, not €12.50)"
         + comma),
        ("a4", "amount: currency sign 'EUR' in a number: remove it where the file is exported (12.50, not EUR12.50)"
         + comma)]
    assert result.warnings == ["data/dataset.yaml: columns.amount: 3 of 4 rows (75.0%) quarantined because 'amount' "
                               "is not a valid DOUBLE, e.g. '$12.50', '12,50 €', 'EUR 3.10': remove the currency sign "
                               "($, €, EUR) where the file is exported (12.50, not $12.50) and set "
                               "decimal_separator: ',' for this source"]


def test_a_decimal_comma_source_warns_in_its_own_mark(tmp_path):
    """With decimal_separator ',' the load's warnings speak its mark: a currency sign's example is '12,50, not
    €12,50' (the row reasons said so; the warning said '12.50' beside them), and numbers written with a decimal point
    (a fee exported 0.50 beside amounts 1.234,50) are named as such with the fix, not 'fix the values'."""
    rows = [f"a{i};2026-03-01 10:00:00;0;;{'€' if i < 3 else ''}1.234,{i:02d};{'0.50' if i < 5 else '0,50'};1;1"
            for i in range(10)]
    text = "event_id;ts;is_fraud;label_ts;amount;fee;user_id;device_id\n" + "\n".join(rows) + "\n"
    ws = _ws(tmp_path, {"orders.csv": text}, {**BASE_DATASET, "decimal_separator": ",", "types": {"fee": "DOUBLE"}})
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (5, 5)
    assert sorted(query(ws, "SELECT event_id, reason FROM quarantine")) == [
        *[(f"a{i}", "amount: currency sign '€' in a number: remove it where the file is exported (12,50, not €12,50)")
          for i in range(3)], *[(f"a{i}", "fee: not a valid DOUBLE with decimal_separator ','") for i in (3, 4)]]
    assert result.warnings == [
        "data/dataset.yaml: columns.amount: 3 of 10 rows (30.0%) quarantined because 'amount' is not a valid DOUBLE, "
        "e.g. '€1.234,00', '€1.234,01', '€1.234,02': remove the currency sign (€) where the file is exported (12,50, "
        "not €12,50)",
        "data/dataset.yaml: types.fee: 5 of 10 rows (50.0%) quarantined because 'fee' is not a valid DOUBLE (3 of "
        "them counted under another column's reason, tried first), e.g. '0.50', '0.50', '0.50': numbers with a "
        "decimal point where this source reads decimal commas (decimal_separator: ','): write them 0,50 where the "
        "file is exported"]


@pytest.mark.parametrize("decimal, big, small, clear, fix", [
    (",", "1.512", "12,50", "1.512,83", "a thousands separator in a number without decimals (1.512): write it where "
                                        "the file is exported as 1512, or 1.512,00"),
    (".", "\"1,512\"", "12.50", "\"1,512.83\"", "a thousands separator in a number without decimals (1,512): write it "
                                             "where the file is exported as 1512, or 1,512.00")])
def test_amounts_grouped_in_thousands_without_decimals_are_quarantined_saying_so_and_warned_of_however_few(
        tmp_path, decimal, big, small, clear, fix):
    """1.512 with a decimal comma (1,512 with a point) is never guessed at (a thousand and more, or one and a bit?);
    its row's reason says what it is and the fix, in the source's decimal mark, and the load warns even under 1% of
    rows: they are the largest amounts. Grouped with its decimals (1.512,83; 1,512.83) it means one thing: read."""
    sep = ";" if decimal == "," else ","
    header = sep.join(["event_id", "ts", "is_fraud", "label_ts", "amount", "user_id", "device_id"])
    rows = [sep.join([f"a{i}", "2026-03-01 10:00:00", "0", "", big if i == 7 else clear if i == 8 else small, "1",
                      "1"]) for i in range(200)]
    rows.append(sep.join(["b1", "2026-03-01 10:00:00", "0", "", "€3" if decimal == "," else "$3", "1", "1"]))
    ws = _ws(tmp_path, {"orders.csv": "\n".join([header, *rows]) + "\n"}, {**BASE_DATASET, "decimal_separator": decimal})
    result = load(ws)
    assert (result.loaded, result.quarantined) == (199, 2)
    assert query(ws, "SELECT amount FROM events WHERE event_id = 'a8'") == [(1512.83,)]
    reasons = dict(query(ws, "SELECT event_id, reason FROM quarantine"))
    assert reasons["a7"] == f"amount: {fix}"
    assert f"(12{decimal}50, not " in reasons["b1"]  # the currency fix in the source's decimal mark too
    assert result.warnings == [f"data/dataset.yaml: columns.amount: 1 of 201 rows (0.5%) quarantined because "
                               f"'amount' has {fix}; they are amounts of a thousand or more"]


def grouped_and_late_rows(many: int, both: int) -> str:
    """1,000 rows: the first `many` amounts grouped in thousands without decimals (1,000), the first `both` of those
    also with a time the load does not read (a row quarantined for its time first)."""
    def row(i: int) -> str:
        ts = f"{i + 1:02d}.03.2026 10:00" if i < both else "2026-03-01 10:00:00"
        amount = f'"{i + 1},{i:03d}"' if i < many else "12.5"
        return f"e{i},{ts},0,,{amount},{i % 50},1"
    return HEADER + "\n".join(row(i) for i in range(1000)) + "\n"


@pytest.mark.parametrize("many, both", [(17, 12), (8, 3)])
def test_the_warning_about_grouped_amounts_adds_up_with_the_reasons_of_the_summary(tmp_path, many, both):
    """A row whose time and amount both fail is counted once in the load's reasons (under its time, tried first) but
    in the amount's warning too: 5 'amount: a thousands separator' in the summary beside a warning of 17 such rows
    read as a contradiction. The warning says how many of its rows the reasons count under another column; and
    amounts like 1,000 get the thousands fix their reason gives, never 'set decimal_separator' (1,000 read as 1.0)."""
    result = load(_ws(tmp_path, {"a.csv": grouped_and_late_rows(many, both)}))
    counted = {r.split(":")[0] + (" grouped" if "thousands" in r else ""): n for r, n in result.reasons.items()}
    assert counted == {"amount grouped": many - both, "ts": both}
    [warning] = [w for w in result.warnings if "columns.amount" in w]
    assert f": {many} of 1,000 rows (" in warning
    assert f"({both} of them counted under another column's reason, tried first)" in warning
    assert "set decimal_separator" not in warning and "thousand" in warning.split("e.g.")[-1]


def test_a_role_name_in_an_expression_says_which_column_to_write(tmp_path):
    """`amount` is a role; where it maps another column, a feature or a rule naming it is told that column."""
    from riskconsole.session import Session

    events = random_events(n=50).rename(columns={"amount": "Betrag"})
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "amount": "Betrag"},
               "features": [{"name": "big", "sql": "amount > 100"}]}
    rule = {"name": "s", "rules": [{"name": "big", "when": "amount > 100", "action": "review"}]}
    ws = write_workspace(tmp_path / "ws", events, dataset, strategies={"s": rule})
    fix = "unknown column 'amount': the amount role is the column 'Betrag' here; write \"Betrag\""
    with pytest.raises(RiskConsoleError, match=f"feature 'big': {fix}"):
        load(ws)
    dataset["features"] = []
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    load(ws)
    with Session(ws) as session, pytest.raises(RiskConsoleError, match=f"rule 'big': {fix}"):
        session.backtest(ws.strategies_dir / "s.yaml")


def test_labels_written_as_words_load_with_label_values_and_warn_without(tmp_path):
    """`fraud`/`legit` labels quarantine their rows (with a warning naming the words and the fix) until
    `label_values:` maps them; mapped words, the built-in 1/0/true/false and empty all load."""
    text = HEADER + "".join(f"e{i},2026-03-01 10:{i:02d}:00,{word},,{i},1,1\n"
                            for i, word in enumerate(["fraud", "Legit ", "legit", "PENDING", "1", "", "0", "legit"]))
    ws = _ws(tmp_path, {"part-1.csv": text})
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (3, 5)  # e4 (1), e5 (empty), e6 (0)
    warning = next(w for w in result.warnings if "columns.label" in w)
    assert "5 of 8 rows" in warning and "'fraud', 'Legit', 'legit'" in warning and "label_values:" in warning
    spec = {**BASE_DATASET, "source": "data/in/*.csv", "label_values": {"fraud": 1, "LEGIT": 0, "pending": None}}
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    result = load(ws)
    assert (result.loaded, result.quarantined) == (8, 0) and not any("columns.label" in w for w in result.warnings)
    assert query(ws, "SELECT event_id, is_fraud FROM events ORDER BY event_id") == [
        ("e0", 1), ("e1", 0), ("e2", 0), ("e3", None), ("e4", 1), ("e5", None), ("e6", 0), ("e7", 0)]


def test_a_label_word_maps_as_written_whatever_its_case_mapping(tmp_path):
    """label_values keys are lowered and trimmed as the engine lowers and trims the label (sources.word_branches):
    'İPTAL' and 'ΑΠΑΤΗΣ' written as the export writes them map it (they quarantined every such row: Python lowers
    them otherwise than DuckDB); a key with a tab matches the value with that tab, not the bare word."""
    words = ["İPTAL", "ΑΠΑΤΗΣ", "fraud\t", "ok", "fraud", "0"]
    text = HEADER + "".join(f"e{i},2026-03-01 10:{i:02d}:00,\"{word}\",,{i},1,1\n" for i, word in enumerate(words))
    spec = {**BASE_DATASET, "source": "data/in/*.csv", "label_values": {"İPTAL": 1, "ΑΠΑΤΗΣ": 1, "fraud\t": 1, "ok": 0}}
    ws = _ws(tmp_path, {"part-1.csv": text}, spec)
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (5, 1)  # e4: 'fraud' is no word mapped
    assert query(ws, "SELECT event_id, is_fraud FROM events ORDER BY event_id") == [
        ("e0", 1), ("e1", 1), ("e2", 1), ("e3", 0), ("e5", 0)]


def test_label_values_take_only_1_0_or_null(tmp_path):
    ws = _ws(tmp_path, {"part-1.csv": FILE_1}, {**BASE_DATASET, "label_values": {"fraud": 2}})
    with pytest.raises(RiskConsoleError, match="label_values.fraud"):
        load(ws)


def test_an_empty_label_mapped_to_good_means_good(tmp_path):
    """An export of chargeback / empty: `"": 0` was ignored without a word (an empty label was always unknown), so
    every good order stayed unlabelled. It now means what it says; beside prod_action (a blocked order's empty label
    is what makes it unobservable) it is refused, and `"": null` stays what empty means anyway."""
    import duckdb

    rows = "event_id,ts,is_fraud,label_ts,amount,user_id,device_id\n" + "".join(
        f"e{i},2026-03-0{1 + i % 5} 10:00:00,{'chargeback' if i % 4 == 0 else ''},,10,1,1\n" for i in range(20))
    labels = {"chargeback": 1, "": 0}
    ws = _ws(tmp_path / "good", {"part-1.csv": rows}, {**BASE_DATASET, "label_values": labels})
    assert (load(ws).loaded, load(ws).quarantined) == (20, 0)
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        got = dict(con.execute("SELECT event_id, is_fraud FROM events").fetchall())
    assert got == {f"e{i}": int(i % 4 == 0) for i in range(20)}  # second way: the rows as written
    columns = {**BASE_DATASET["columns"], "prod_action": "action"}
    ws = _ws(tmp_path / "prod", {"part-1.csv": rows}, {**BASE_DATASET, "columns": columns, "label_values": labels})
    with pytest.raises(RiskConsoleError, match=r"label_values: an empty label mapped to 0 cannot go with "
                                               r"columns.prod_action: an event production blocked has no outcome"):
        load(ws)
    ws = _ws(tmp_path / "null", {"part-1.csv": FILE_1}, {**BASE_DATASET, "label_values": {"": None}})
    assert load(ws, accept_quarantine=True).loaded == 2  # FILE_1's two good rows (the rest: its bad rows)


def test_an_empty_text_time_is_no_time_not_a_bad_one(tmp_path):
    """A Parquet or JSON file writes a missing chargeback date as '' (text): the label time is then unknown (NULL),
    not a bad time that quarantines the row; an empty event time is still a missing time."""
    events = pd.DataFrame({"event_id": ["a", "b", "c"], "ts": ["2026-03-01 10:00:00", "2026-03-01 11:00:00", " "],
                           "is_fraud": ["1", "", "0"], "label_ts": ["2026-03-04 00:00:00", "", "  "],
                           "amount": [1.0, 2.0, 3.0], "user_id": [1, 1, 1], "device_id": [1, 1, 1]})
    root = tmp_path / "ws"
    (root / "data" / "in").mkdir(parents=True)
    events.to_parquet(root / "data" / "in" / "e.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/in/*.parquet"}))
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    result = load(ws)
    assert (result.loaded, result.quarantined) == (2, 1) and not result.warnings
    assert query(ws, "SELECT reason FROM quarantine") == [("missing time",)]
    assert query(ws, "SELECT event_id, label_ts FROM events ORDER BY 1") == [
        ("a", pd.Timestamp("2026-03-04").to_pydatetime()), ("b", None)]


def test_a_load_says_each_feature_step_with_its_seconds(tiny_ws):
    """A 10M load builds features for many minutes: each step (its features) is a progress line with its seconds."""
    from riskconsole.ingest import reload

    lines: list[str] = []
    reload(tiny_ws, progress=lines.append)
    steps = [line for line in lines if line.startswith("  features ")]
    assert steps and all(re.fullmatch(r"  features (\d+)/(\d+): .+ \(\d+\.\d s\)", s) for s in steps), steps
    assert [int(re.match(r"  features (\d+)/", s).group(1)) for s in steps] == list(range(1, len(steps) + 1))
    assert steps[0].startswith(f"  features 1/{len(steps)}: the events numbered")
    assert any("side tables joined" in s for s in steps)
    assert steps[-1].startswith(f"  features {len(steps)}/{len(steps)}: the frame: events, side values")


def test_the_quarantine_sample_shows_an_empty_cell_empty():
    """The Data page's quarantine sample: a cell the file left empty reads '' (it read 'None'); numbers stay numbers."""
    import duckdb

    from riskconsole.overview import quarantine_sample

    con = duckdb.connect()
    con.execute("CREATE TABLE quarantine AS SELECT * FROM (VALUES ('e1', NULL, 'bad time', 3), ('e2', '12.5', NULL, 4)) "
                "t(event_id, amount, reason, ordinality)")
    sample = quarantine_sample(con)
    assert sample.to_dict("records") == [{"event_id": "e1", "amount": "", "reason": "bad time", "ordinality": 3},
                                         {"event_id": "e2", "amount": "12.5", "reason": "", "ordinality": 4}]


def test_a_json_label_word_is_shown_as_its_text_not_its_json(tmp_path):
    """A JSON Lines label column mixing words and numbers is JSON to DuckDB: the warning shows the words as a CSV's
    would be shown ('yes', not '"yes"'), as `label_values:` matches them."""
    import json

    from riskconsole.workspace import Workspace

    rows = [{"event_id": f"a{i}", "ts": f"2026-03-01 {i:02d}:00:00", "is_fraud": ["yes", "no", 1, 0][i % 4],
             "label_ts": None, "amount": 10 + i, "user_id": "1", "device_id": "1"} for i in range(8)]
    (tmp_path / "w" / "data").mkdir(parents=True)
    (tmp_path / "w" / "data" / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "w" / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/e.jsonl"}))
    result = load(Workspace(tmp_path / "w"))
    assert (result.loaded, result.quarantined) == (4, 4)
    assert result.warnings == [
        "data/dataset.yaml: columns.label: 4 of 8 rows (50.0%) quarantined because 'is_fraud' is not 1, 0 or empty, "
        "e.g. 'yes', 'no': say which words mean fraud (1), good (0) or not known (null) with label_values: in the "
        "dataset, e.g. label_values: {yes: 1 or 0, no: 1 or 0}"]


@pytest.mark.parametrize("keep", [False, True])
def test_a_wide_select_gives_one_selects_columns_in_order(keep):
    """`wide_select` (a load's casts, 16 per nested select: DuckDB took 8 s to plan 200 in one) gives the columns
    and values one select gives, in order, with or without the source's columns first."""
    import duckdb
    from sqlglot import exp

    from riskconsole.sqlbuild import alias, fill, render, wide_select

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS x, range * 2 AS y FROM range(5)")
    for n in (3, 16, 17, 40):
        def columns():
            return [alias(fill("x * :k + y", k=k), f"c{k}") for k in range(n)]
        one = con.execute(render(exp.select(*(["*"] if keep else []), *columns()).from_("t")))
        want = ([d[0] for d in one.description], one.fetchall())
        many = con.execute(render(wide_select(columns(), "t", keep=keep)))
        assert ([d[0] for d in many.description], many.fetchall()) == want
