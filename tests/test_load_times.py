"""Times are parsed, never guessed: time_format, ISO-8601 only without it, zones to UTC, absurd years and
non-finite amounts quarantined, a warning that suggests a format; quarantine.csv cannot run formulas."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
import yaml

from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.workspace import Workspace
from conftest import query, BASE_DATASET

HEADER = "event_id,ts,is_fraud,label_ts,amount,user_id,device_id\n"


def _ws(tmp_path, rows: list[str], header: str = HEADER, **spec) -> Workspace:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "events.csv").write_text(header + "\n".join(rows) + "\n")
    dataset = {**BASE_DATASET, "source": "data/events.csv", **spec}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    return Workspace(root)




def _row(i: int, ts: str, label_ts: str = "", amount: str = "10") -> str:
    return f"e{i},{ts},0,{label_ts},{amount},1,1"


SPREADSHEET = ["1/1/15 0:00", "2/24/15 22:55", "12/31/15 23:59"]


def test_spreadsheet_times_are_quarantined_not_read_as_year_one(tmp_path):
    """DuckDB's own cast reads `1/1/15 0:00` as 0001-01-15: without time_format only ISO-8601 is a time."""
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00")] + [_row(i + 1, t) for i, t in enumerate(SPREADSHEET)])
    result = load(ws, accept_quarantine=True)  # 3 of 4 rows quarantined on purpose: more than a load publishes
    assert (result.read, result.loaded, result.quarantined) == (4, 1, 3)
    assert query(ws, "SELECT count(*) FROM events WHERE ts < TIMESTAMP '1970-01-01'") == [(0,)]
    reasons = {r for (r,) in query(ws, "SELECT reason FROM quarantine")}
    assert reasons == {"ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)"}
    [warning] = result.warnings
    assert warning.startswith("data/dataset.yaml: columns.time: 3 of 4 rows (75.0%) quarantined")
    assert "'1/1/15 0:00', '2/24/15 22:55', '12/31/15 23:59'" in warning
    # the ISO row loads now: the suggestion keeps reading it (the format alone would quarantine it)
    assert "try time_format: [ISO-8601, '%m/%d/%y %H:%M'] in the dataset" in warning and "\n" not in warning


def test_the_time_warning_suggests_the_german_spreadsheet_layout_without_seconds(tmp_path):
    """`05.10.2026 14:03` (a European spreadsheet's export) got no suggestion: only `set time_format: to the layout
    of these values`."""
    ws = _ws(tmp_path, [_row(0, "2026-10-01 10:00:00")] + [_row(i, f"{4 + i:02d}.10.2026 14:03") for i in (1, 2, 3)])
    [warning] = load(ws, accept_quarantine=True).warnings
    assert "'05.10.2026 14:03'" in warning
    assert warning.endswith("try time_format: [ISO-8601, '%d.%m.%Y %H:%M'] in the dataset")


def test_the_time_warning_suggests_a_shop_exports_offset_after_a_space(tmp_path):
    """`2026-03-08 14:21:00 +0530` (Ruby's Time#to_s, as shop exports write times) got no suggestion; with the one
    it gets, every row loads at its UTC time, a `+05:30` offset as well."""
    rows = [_row(1, "2026-03-08 14:21:00 +0530"), _row(2, "2026-03-08 09:00:00 -0500"),
            _row(3, "2026-03-09 23:30:00 +05:30")]
    ws = _ws(tmp_path, rows)
    with pytest.raises(RiskConsoleError) as refused:  # every row would be quarantined: the load refuses
        load(ws)
    assert str(refused.value).endswith("try time_format: '%Y-%m-%d %H:%M:%S %z' in the dataset")
    ws = _ws(tmp_path, rows, time_format="%Y-%m-%d %H:%M:%S %z")
    assert load(ws).loaded == 3
    assert query(ws, "SELECT ts FROM events ORDER BY event_id") == [
        (datetime(2026, 3, 8, 8, 51),), (datetime(2026, 3, 8, 14, 0),), (datetime(2026, 3, 9, 18, 0),)]


def test_time_format_parses_every_time_column(tmp_path):
    rows = [_row(i, t, label_ts="3/1/16 0:00") for i, t in enumerate(SPREADSHEET)]
    header = HEADER.strip() + ",signup\n"
    rows = [r + ",1/1/15 12:00" for r in rows]
    ws = _ws(tmp_path, rows, header, time_format="%m/%d/%y %H:%M", types={"signup": "TIMESTAMP"})
    result = load(ws)
    assert (result.loaded, result.quarantined, result.warnings) == (3, 0, [])
    assert query(ws, "SELECT ts, label_ts, signup FROM events ORDER BY ts")[1] == (
        datetime(2015, 2, 24, 22, 55), datetime(2016, 3, 1), datetime(2015, 1, 1, 12))


def test_time_format_list_is_tried_in_order_and_names_what_was_tried(tmp_path):
    rows = [_row(0, "24.02.2015 22:55:00"), _row(1, "2015-02-25T01:00:00+0100"), _row(2, "25/02/2015")]
    ws = _ws(tmp_path, rows, time_format=["%d.%m.%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])
    result = load(ws)
    assert query(ws, "SELECT event_id, ts FROM events ORDER BY ts") == [
        ("e0", datetime(2015, 2, 24, 22, 55)), ("e1", datetime(2015, 2, 25, 0, 0))]
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [
        ("e2", "ts: not a time in time_format '%d.%m.%Y %H:%M:%S' or '%Y-%m-%dT%H:%M:%S%z'")]
    assert result.read == result.loaded + result.quarantined


def test_a_time_format_map_gives_one_column_its_layout_and_leaves_the_others_iso(tmp_path):
    """An export with ISO order times and chargeback dates written 04.03.2026: one format for every column would
    break the other, so `time_format:` may be a map column -> format(s)."""
    rows = [_row(0, "2026-03-01T10:00:00+0100", "04.03.2026"), _row(1, "2026-03-01 11:00:00", ""),
            _row(2, "01.03.2026", "2026-03-05")]
    ws = _ws(tmp_path, rows, time_format={"label_ts": ["%d.%m.%Y", "%Y-%m-%d"]})
    result = load(ws)
    assert query(ws, "SELECT event_id, ts, label_ts FROM events ORDER BY event_id") == [
        ("e0", datetime(2026, 3, 1, 9), datetime(2026, 3, 4)), ("e1", datetime(2026, 3, 1, 11), None)]
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [
        ("e2", "ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)")]
    assert result.read == result.loaded + result.quarantined


@pytest.mark.parametrize("mapping, message", [
    ({"label_tz": "%d.%m.%Y"}, "time_format: column 'label_tz' is not in the source (did you mean 'label_ts'?)"),
    ({"amount": "%d.%m.%Y"}, "time_format: column 'amount' is not a time column here (time columns: label_ts, ts)"),
    ({"label_ts": "%Q"}, "time_format: '%Q' is not a strptime format"),
    ({"label_ts": []}, "time_format.label_ts: no format given; write one (e.g. '%d.%m.%Y') or drop the column"),
])
def test_a_bad_time_format_map_is_a_one_line_error(tmp_path, mapping, message):
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00")], time_format=mapping)
    with pytest.raises(RiskConsoleError) as err:
        load(ws)
    assert str(err.value).startswith("data/dataset.yaml: ") and message in str(err.value)
    assert "\n" not in str(err.value) and not ws.db_path.exists()


def test_the_time_warning_suggests_a_map_when_one_format_would_break_another_time_column(tmp_path):
    rows = [_row(i, f"2026-03-0{i + 1} 10:00:00", f"0{i + 4}.03.2026" if i % 2 else "") for i in range(4)]
    [warning] = load(_ws(tmp_path, rows)).warnings
    assert warning.startswith("data/dataset.yaml: columns.label_time: 2 of 4 rows (50.0%) quarantined")
    assert warning.endswith("try time_format: {label_ts: '%d.%m.%Y'} in the dataset")


def test_a_label_time_that_does_not_parse_is_quarantined_too(tmp_path):
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00", "2026-03-05"), _row(1, "2026-03-01 11:00:00", "5/3/26")])
    load(ws)
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [
        ("e1", "label_ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)")]


def test_a_bad_time_format_is_a_one_line_error(tmp_path):
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00")], time_format="%Y-%Q")
    with pytest.raises(RiskConsoleError, match=r"^data/dataset.yaml: time_format: '%Y-%Q' is not a strptime format"):
        load(ws)
    assert not ws.db_path.exists()


@pytest.mark.parametrize("text, utc", [
    ("2026-01-05 00:00:00+05:00", datetime(2026, 1, 4, 19)),
    ("2026-01-05T00:00:00Z", datetime(2026, 1, 5)),
    ("2026-01-05 00:00:00 America/New_York", datetime(2026, 1, 5, 5)),
    ("2026-01-05 00:00:00-0130", datetime(2026, 1, 5, 1, 30)),
    ("2026-01-05 00:00:00", datetime(2026, 1, 5)),
])
def test_offsets_and_zone_names_are_converted_to_utc(tmp_path, text, utc):
    ws = _ws(tmp_path, [_row(0, text)])
    load(ws)
    assert query(ws, "SELECT ts FROM events") == [(utc,)]


DST_EDGES = [  # Berlin's clocks: 2026-03-29 02:00 CET -> 03:00 CEST, 2026-10-25 03:00 CEST -> 02:00 CET
    ("2026-03-29 01:59:00 Europe/Berlin", datetime(2026, 3, 29, 0, 59)),   # 01:59 CET (+01:00)
    ("2026-03-29 02:30:00 Europe/Berlin", datetime(2026, 3, 29, 1, 30)),   # skipped: the offset before, +01:00
    ("2026-03-29 03:00:00 Europe/Berlin", datetime(2026, 3, 29, 1, 0)),    # 03:00 CEST (+02:00)
    ("2026-10-25 01:30:00 Europe/Berlin", datetime(2026, 10, 24, 23, 30)),  # CEST (+02:00)
    ("2026-10-25 02:30:00 Europe/Berlin", datetime(2026, 10, 25, 1, 30)),  # repeated: its second time, CET +01:00
    ("2026-10-25T02:30:00+02:00", datetime(2026, 10, 25, 0, 30)),          # its first time, said with the offset
    ("2026-10-25 03:00:00 Europe/Berlin", datetime(2026, 10, 25, 2, 0)),   # CET (+01:00)
]


def test_wall_times_a_zone_skips_or_repeats_load_as_documented_and_as_the_flags_read_them(tmp_path):
    """docs/dataset.md "Times": a skipped wall time reads with the offset before the change (02:30 -> 03:30 CEST), a
    repeated one as its second time (CET). --from/--to read the same text as the same instant (they read the first
    time of a repeated hour, an hour before the event written alike). Expected: UTC by the offsets in force, by hand."""
    from riskconsole.backtest import parse_moment

    ws = _ws(tmp_path, [_row(i, text) for i, (text, _) in enumerate(DST_EDGES)])
    load(ws)
    loaded = dict(query(ws, "SELECT event_id, ts FROM events"))
    assert loaded == {f"e{i}": utc for i, (_, utc) in enumerate(DST_EDGES)}
    assert [parse_moment(text) for text, _ in DST_EDGES] == [utc for _, utc in DST_EDGES]


def test_label_times_before_their_events_load_with_one_warning(tmp_path):
    """A chargeback dated before its order (here written in another zone, or the day before) loads as it is, and the
    load says so, once, naming the first; expected by comparing the texts as instants in Python."""
    rows = [("2026-10-05 10:00:00-03:00", "2026-10-05 12:00:00+02:00"),   # order 13:00Z, label 10:00Z: before
            ("2026-10-05 10:00:00-03:00", "2026-10-05 14:00:00+02:00"),   # label 12:00Z: still before
            ("2026-10-06 09:00:00+00:00", "2026-10-20 00:00:00+00:00"),   # ordinary: two weeks later
            ("2026-10-07 09:00:00+00:00", "2026-10-06 09:00:00+00:00"),   # a day before
            ("2026-10-08 09:00:00+00:00", "")]                            # not known yet
    ws = _ws(tmp_path, [_row(i, t, lt) for i, (t, lt) in enumerate(rows)])
    result = load(ws)
    before = [f"e{i}" for i, (t, lt) in enumerate(rows) if lt and datetime.fromisoformat(lt) < datetime.fromisoformat(t)]
    assert before == ["e0", "e1", "e3"] and result.loaded == len(rows)
    (said,) = [w for w in result.warnings if "label_time before" in w]
    assert said.startswith(f"data/dataset.yaml: columns.label_time: {len(before)} of {len(rows)} events have a "
                           "label_time before their time (the first: 'e0' at 2026-10-05 13:00:00 labelled at "
                           "2026-10-05 10:00:00)") and "\n" not in said and "fix the dates" in said


@pytest.mark.parametrize("bad, fix", [
    ("2026-10-2{} 14:00:00 Europe/Berlim", "3 of them have an unknown time zone name (write an IANA name such as "
                                          "Europe/Berlin or America/Sao_Paulo, or an offset such as -03:00)"),
    ("2026-10-2{}T14:00:00+25:00", "3 of them have an offset no place has (offsets lie within ±14:00, minutes "
                                  "under 60: e.g. +02:00 or -03:30)"),
])
def test_a_load_refused_for_a_zone_or_offset_says_to_fix_it_not_a_layout(tmp_path, bad, fix):
    """No time_format reads a misspelt zone or a +25:00 offset: the refusal's fix is the zone or the offset (it said
    'set time_format: to the layout of these values', whose layout is ISO-8601 already)."""
    ws = _ws(tmp_path, [_row(0, "2026-10-20 14:00:00")] + [_row(i, bad.format(i)) for i in (1, 2, 3)])
    with pytest.raises(RiskConsoleError) as err:
        load(ws)
    assert f": {fix}" in str(err.value) and "\n" not in str(err.value) and "3 of 4 rows" in str(err.value)


def test_an_unknown_zone_is_quarantined_not_dropped(tmp_path):
    ws = _ws(tmp_path, [_row(0, "2026-01-05 00:00:00"), _row(1, "2026-01-05 00:00:00 Mars/Olympus"),
                        _row(2, "2026-01-05 10:00:00 PM"), _row(3, "2026-01-05 10:00:00", "2026-02-05 Europe/Berlim")])
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (1, 3)
    # the reason names what is wrong and the fix where the clock time reads alone; a layout ISO-8601 does not read
    # (10:00:00 PM) keeps the layout's reason; a date alone with a zone name is no ISO-8601 time either
    assert dict(query(ws, "SELECT event_id, reason FROM quarantine")) == {
        "e1": "ts: an unknown time zone name (write an IANA name such as Europe/Berlin or America/Sao_Paulo, or an "
              "offset such as -03:00)",
        "e2": "ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)",
        "e3": "label_ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)"}


@pytest.mark.parametrize("spec", [{}, {"time_format": ["%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]}])
def test_an_offset_no_place_has_is_quarantined_not_shifted(tmp_path, spec):
    """DuckDB reads '+99:99' as 100 h 39 min and '+25:00' as a day: such a time is not a time."""
    rows = [_row(0, "2026-01-05 10:00:00+14:00"), _row(1, "2026-01-05 10:00:00+25:00"),
            _row(2, "2026-01-05 10:00:00+99:99"), _row(3, "2026-01-05 10:00:00-0575"),
            _row(4, "2026-01-05 10:00:00-05:30")]
    ws = _ws(tmp_path, rows, **spec)
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (2, 3)
    reasons = {r for (r,) in query(ws, "SELECT DISTINCT reason FROM quarantine")}
    assert reasons == {"ts: an offset no place has (offsets lie within ±14:00, minutes under 60: e.g. +02:00 or "
                       "-03:30)"} if not spec else {"ts: not a time in time_format '%Y-%m-%d %H:%M:%S%z' or "
                                                    "'%Y-%m-%d %H:%M:%S'"}
    assert query(ws, "SELECT ts FROM events ORDER BY ts") == [(datetime(2026, 1, 4, 20, 0),),
                                                              (datetime(2026, 1, 5, 15, 30),)]


def test_time_format_with_an_offset_converts_to_utc(tmp_path):
    ws = _ws(tmp_path, [_row(0, "05/01/2026 00:00 +0500")], time_format="%d/%m/%Y %H:%M %z")
    load(ws)
    assert query(ws, "SELECT ts FROM events") == [(datetime(2026, 1, 4, 19),)]


@pytest.mark.parametrize("formats", [["%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S"],
                                     ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%z"],
                                     ["%d.%m.%Y", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]])
def test_a_time_without_an_offset_never_takes_the_offset_of_the_row_before(tmp_path, formats):
    """A time_format list mixing a format with %z and one without: a row without an offset, after rows with one in
    the same chunk, reads UTC (DuckDB 2.0.1's try_strptime with a list of formats shifted it by the earlier row's
    offset: 04:00 read as 23:00 the day before). Checked against Python's own strptime, row by row."""
    times = ["2026-01-05 00:00:00+05:00", "2026-03-02 04:00:00", "2026-03-02 05:00:00-0330", "2026-03-02 06:00:00",
             "2026-03-03 07:00:00+0000", "2026-03-03 08:00:00"] * 400  # 2,400 rows: over one 2,048-row chunk
    ws = _ws(tmp_path, [_row(i, t) for i, t in enumerate(times)], time_format=formats)
    result = load(ws)
    assert (result.loaded, result.quarantined) == (len(times), 0)

    def utc(text: str) -> datetime:
        zoned = text[19:] != ""
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z" if zoned else "%Y-%m-%d %H:%M:%S")
        return parsed.astimezone(timezone.utc).replace(tzinfo=None) if zoned else parsed

    got = dict(query(ws, "SELECT event_id, ts FROM events"))
    assert got == {f"e{i}": utc(t) for i, t in enumerate(times)}


def test_parquet_times_with_a_zone_end_up_in_utc(tmp_path):
    root = tmp_path / "pq"
    (root / "data").mkdir(parents=True)
    local = pd.to_datetime(["2026-01-05 00:00", "2026-01-05 12:00"]).tz_localize("Asia/Karachi")  # UTC+5
    events = pd.DataFrame({"event_id": ["a", "b"], "amount": [1.0, 2.0], "user_id": [1, 2], "device_id": [1, 1],
                           "is_fraud": [0, 1], "ts": local, "label_ts": pd.to_datetime([None, None])})
    events.to_parquet(root / "data" / "events.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/events.parquet"}))
    ws = Workspace(root)
    load(ws)
    assert query(ws, "SELECT ts FROM events ORDER BY ts") == [(datetime(2026, 1, 4, 19),), (datetime(2026, 1, 5, 7),)]
    assert query(ws, "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' "
                      "AND column_name = 'ts'") == [("TIMESTAMP",)]


def test_absurd_times_are_quarantined_with_the_accepted_range(tmp_path):
    rows = [_row(0, "2026-03-01 10:00:00"), _row(1, "9999-12-31 00:00:00"), _row(2, "1900-01-01"),
            _row(3, "2026-03-01 11:00:00", label_ts="9999-12-31")]
    ws = _ws(tmp_path, rows)
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (1, 3)
    assert dict(query(ws, "SELECT event_id, reason FROM quarantine")) == {
        "e1": "ts: 9999-12-31 00:00:00 is outside the accepted range 1970-01-01..2099-12-31",
        "e2": "ts: 1900-01-01 00:00:00 is outside the accepted range 1970-01-01..2099-12-31",
        "e3": "label_ts: 9999-12-31 00:00:00 is outside the accepted range 1970-01-01..2099-12-31"}
    assert query(ws, "SELECT max(ts) FROM frame") == [(datetime(2026, 3, 1, 10),)]


@pytest.mark.parametrize("amount", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_non_finite_amounts_are_quarantined(tmp_path, amount):
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00"), _row(1, "2026-03-01 11:00:00", amount=amount)])
    result = load(ws)
    assert (result.read, result.loaded, result.quarantined) == (2, 1, 1)
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [("e1", "amount: not a finite number")]
    assert query(ws, "SELECT count(*) FROM events WHERE NOT isfinite(amount)") == [(0,)]


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+2", "-2-3", "@SUM(A1)", "=1", " =1+1", "\uff1d1+1",
                                   "\t=1"])
def test_quarantine_csv_defuses_spreadsheet_formulas(tmp_path, value):
    header = HEADER.strip() + ",note\n"
    rows = [_row(0, "2026-03-01 10:00:00") + ",fine", f'x1,not a time,0,,5,1,1,"{value.replace(chr(34), 2 * chr(34))}"']
    ws = _ws(tmp_path, rows, header)
    load(ws)
    exported = pd.read_csv(ws.root / "data" / "quarantine.csv", dtype=str)
    assert exported["note"].tolist() == ["'" + value]
    assert query(ws, "SELECT note FROM quarantine") == [(value,)]  # the table keeps the raw value
    assert not any(str(v).startswith(("=", "+", "-", "@")) for v in exported.to_numpy().ravel() if isinstance(v, str))


def test_quarantine_csv_defuses_a_formula_in_a_column_name(tmp_path):
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00") + ",a", "x1,not a time,0,,5,1,1,b"], HEADER.strip() + ",=cmd\n")
    load(ws)
    assert (ws.root / "data" / "quarantine.csv").read_text().splitlines()[0].split(",")[7] == "'=cmd"


def test_the_cli_prints_the_time_warning(tmp_path, capsys):
    from riskconsole.cli import main

    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00")] + [_row(i + 1, t) for i, t in enumerate(SPREADSHEET)])
    assert main(["load", "--workspace", str(ws.root), "--accept-quarantine"]) == 0  # 3 of 4 rows quarantined
    out, err = capsys.readouterr()
    assert "read 4 = loaded 1 + quarantined 3" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "try time_format: [ISO-8601, '%m/%d/%y %H:%M']" in warnings[0]


@pytest.mark.parametrize("amount", ["1e308", "-1e16"])
def test_absurd_amounts_are_quarantined_not_clamped(tmp_path, amount):
    """Two 1e308 amounts summed to inf, which the report clamped to the largest float (red team)."""
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00"), _row(1, "2026-03-01 11:00:00", amount=amount)])
    result = load(ws)
    assert (result.read, result.loaded, result.quarantined) == (2, 1, 1)
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [("e1", "amount: larger than 1e+15 (sums of such "
                                                                            "amounts overflow)")]


def test_json_text_in_a_mixed_column_loads_unescaped(tmp_path):
    """A JSON Lines column mixing strings and objects: strings keep their text (quotes, unicode), null is empty."""
    from riskconsole.workspace import Workspace

    rows = [{"event_id": "a1", "ts": "2026-01-05 00:00:00", "is_fraud": 1, "amount": 10, "note": 'café say "hi"'},
            {"event_id": "a2", "ts": "2026-01-05 01:00:00", "is_fraud": 0, "amount": 20, "note": {"n": 1}},
            {"event_id": "a3", "ts": "2026-01-05 02:00:00", "is_fraud": 0, "amount": 30, "note": None}]
    (tmp_path / "w" / "data").mkdir(parents=True)
    path = tmp_path / "w" / "data" / "e.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    dataset = {"source": "data/e.jsonl", "columns": {"id": "event_id", "time": "ts", "label": "is_fraud",
                                                       "amount": "amount"}}
    (tmp_path / "w" / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    ws = Workspace(tmp_path / "w")
    load(ws)
    assert query(ws, "SELECT note FROM events ORDER BY event_id") == [('café say "hi"',), ('{"n":1}',), (None,)]


@pytest.mark.parametrize("formats, want", [
    (["%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d %H:%M:%S EST"], datetime(2026, 3, 2, 9)),  # the zone format, first, wins
    (["%Y-%m-%d %H:%M:%S EST", "%Y-%m-%d %H:%M:%S %Z"], datetime(2026, 3, 2, 4)),  # the literal one, first, wins
])
def test_the_first_format_that_parses_wins_even_across_zoned_and_plain_formats(formats, want):
    """Formats with and without a zone are parsed in separate calls (DuckDB's list form carries offsets between
    rows), kept in the list's order: a plain format holding a zone's name as literal text stays behind a zoned one
    listed before it."""
    import duckdb

    from riskconsole.sqlbuild import exp, render
    from riskconsole.times import parse_text

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    got = con.execute("SELECT " + render(parse_text(exp.Literal.string("2026-03-02 04:00:00 EST"), formats)))
    assert got.fetchall() == [(want,)]


ISO_AND_DAY_FIRST = ["2026-01-05T10:00:00+02:00", "2026-01-05T10:00:00Z", "2026-01-05 10:00:00", "2026-01-05",
                     "2026-07-05 10:00:00 Europe/Berlin", "2026-01-05T23:30:00-0330", "31/01/2026 03:48",
                     "13/02/2026 00:00"]


def _utc(text: str) -> datetime:
    """The UTC time of one of ISO_AND_DAY_FIRST, by Python's own parsers (not DuckDB's)."""
    from zoneinfo import ZoneInfo

    if "/" in text[:3]:
        return datetime.strptime(text, "%d/%m/%Y %H:%M")
    if text.endswith("Berlin"):
        local, zone = text.rsplit(" ", 1)
        parsed = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))
    else:
        parsed = datetime.fromisoformat(text)
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


@pytest.mark.parametrize("time_format", [["ISO-8601", "%d/%m/%Y %H:%M"], ["%d/%m/%Y %H:%M", "iso-8601"],
                                         {"ts": ["Iso-8601", "%d/%m/%Y %H:%M"]}])
def test_iso_8601_in_a_time_format_list_reads_every_iso_variant_beside_another_layout(tmp_path, time_format):
    """A column of ISO times (offsets, Z, naive, dates alone, zone names) and 2% day-first times: no list of
    strptime formats reads every ISO variant, so `ISO-8601` is an entry of its own (any case), tried in the list's
    order. 2,400 rows: ISO and strptime runs cross DuckDB's 2,048-row chunks. Checked against Python's parsers."""
    texts = ISO_AND_DAY_FIRST * 300
    ws = _ws(tmp_path, [_row(i, t) for i, t in enumerate(texts)], time_format=time_format)
    result = load(ws)
    assert (result.loaded, result.quarantined, result.warnings) == (len(texts), 0, [])
    assert dict(query(ws, "SELECT event_id, ts FROM events")) == {f"e{i}": _utc(t) for i, t in enumerate(texts)}


def test_a_reason_names_iso_8601_among_the_formats_tried(tmp_path):
    ws = _ws(tmp_path, [_row(0, "2026-01-05 10:00:00"), _row(1, "31.01.2026")],
             time_format=["iso-8601", "%d/%m/%Y %H:%M"])
    load(ws)
    assert query(ws, "SELECT event_id, reason FROM quarantine") == [
        ("e1", "ts: not a time in time_format ISO-8601 or '%d/%m/%Y %H:%M'")]


@pytest.mark.parametrize("time_format, bad", [("ISO8601", "ISO8601"), (["ISO-8601", "iso"], "iso"),
                                              ({"label_ts": ["RFC3339"]}, "RFC3339")])
def test_a_keyword_that_is_not_iso_8601_is_a_one_line_error(tmp_path, time_format, bad):
    """DuckDB's strptime takes a text without a %-directive as literal text no time matches: every row would be
    quarantined, so such a format is refused, pointing at ISO-8601."""
    ws = _ws(tmp_path, [_row(0, "2026-03-01 10:00:00")], time_format=time_format)
    with pytest.raises(RiskConsoleError) as err:
        load(ws)
    assert str(err.value).startswith(f"data/dataset.yaml: time_format: '{bad}' is not a strptime format (it has no "
                                     "%-directive")
    assert "ISO-8601 for ISO-8601 times, or epoch_s / epoch_ms / epoch_us for numbers since 1970" in str(err.value)
    assert "\n" not in str(err.value)
    assert not ws.db_path.exists()


@pytest.mark.parametrize("time_format, label_ts", [(None, "2026-03-04"), ({"label_ts": "%d.%m.%Y"}, "04.03.2026")])
def test_the_suggested_time_format_applied_verbatim_loads_every_row(tmp_path, time_format, label_ts):
    """An export of ISO times (offsets, Z, zone names) and 2% `01/01/2026 03:48`: the warning used to suggest the
    day-first format alone, which quarantined the ISO 98% (a format replaces ISO reading), and the next load
    suggested an ISO format back. The suggestion keeps what parses: its line, pasted over dataset.yaml's
    `time_format:` (a map keeps the other column's entry), loads every row with no warning."""
    texts = ["2026-01-05T10:00:00+02:00", "2026-01-05T10:00:00Z", "2026-01-05 10:00:00 Europe/Berlin"] * 17 + [
        "31/01/2026 03:48"]
    rows = [_row(i, t, label_ts if i % 5 == 0 else "") for i, t in enumerate(texts)]
    spec = {"time_format": time_format} if time_format else {}
    ws = _ws(tmp_path, rows, **spec)
    [warning] = load(ws).warnings
    suggested = warning.rsplit(": try ", 1)[1].removesuffix(" in the dataset")
    dataset = yaml.safe_load((ws.root / "data" / "dataset.yaml").read_text())
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**dataset, **yaml.safe_load(suggested)}))
    result = load(ws)
    assert (result.loaded, result.quarantined, result.warnings) == (len(texts), 0, [])
    assert query(ws, "SELECT ts FROM events WHERE event_id = 'e51'") == [(datetime(2026, 1, 31, 3, 48),)]


def test_a_day_first_file_read_as_month_first_is_told_to_use_day_first_alone(tmp_path):
    """Times written day first (05/03/2026: March 5) under `time_format: '%m/%d/%Y %H:%M'` parse on days 1-12, month
    and day swapped, and fail from the 13th. The suggestion kept the given format and added '%d/%m/%Y %H:%M' after
    it: pasted, the rows of days 1-12 loaded as the wrong dates. One format reading every row is suggested alone;
    pasted, every row loads on its own date."""
    days = [datetime(2026, 3, d, 10, 0) for d in range(1, 29)]
    rows = [_row(i, d.strftime("%d/%m/%Y %H:%M")) for i, d in enumerate(days)]
    ws = _ws(tmp_path, rows, time_format="%m/%d/%Y %H:%M")
    [warning] = load(ws, accept_quarantine=True).warnings
    suggested, misread = warning.rsplit(": try ", 1)[1].split(" in the dataset")
    assert suggested == "time_format: '%d/%m/%Y %H:%M'", warning
    assert misread == "; 11 rows that did load read as other times with it (month and day swapped?): they are likely " \
                      "misread too", warning  # days 1-12 but the 3rd (03/03 reads alike), on the wrong dates
    dataset = yaml.safe_load((ws.root / "data" / "dataset.yaml").read_text())
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**dataset, **yaml.safe_load(suggested)}))
    load(ws)
    assert dict(query(ws, "SELECT event_id, ts FROM events")) == {f"e{i}": d for i, d in enumerate(days)}


def test_a_month_first_file_with_a_few_day_first_rows_keeps_its_format_first(tmp_path):
    """A month-first export (`'%m/%d/%Y %H:%M'`, read right) where every tenth row was written day first: only the
    day-first rows after the 12th fail. `'%m/%d/%Y %H:%M'` reads the other rows as other times than the suggested
    `'%d/%m/%Y %H:%M'` does, yet it is the file's own layout: dropped, the pasted suggestion loaded nine in ten rows of
    days 1-12 with month and day swapped, and quarantined the month-first rows after the 12th. It is kept first."""
    days = [datetime(2026, 3 + i % 2, 1 + i % 28, 10, 0) for i in range(60)]
    rows = [_row(i, d.strftime("%d/%m/%Y %H:%M" if i % 10 == 0 else "%m/%d/%Y %H:%M")) for i, d in enumerate(days)]
    ws = _ws(tmp_path, rows, time_format="%m/%d/%Y %H:%M")
    [warning] = load(ws).warnings
    suggested = warning.rsplit(": try ", 1)[1].removesuffix(" in the dataset")
    assert suggested == "time_format: ['%m/%d/%Y %H:%M', '%d/%m/%Y %H:%M']", warning
    dataset = yaml.safe_load((ws.root / "data" / "dataset.yaml").read_text())
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**dataset, **yaml.safe_load(suggested)}))
    load(ws)
    loaded = dict(query(ws, "SELECT event_id, ts FROM events"))
    assert len(loaded) == 60 and all(loaded[f"e{i}"] == d for i, d in enumerate(days) if i % 10)


def test_epoch_numbers_load_as_times_in_their_unit_and_a_wrong_unit_is_quarantined(tmp_path):
    """Event streams write times as numbers since 1970 (JavaScript's Date.now(): milliseconds). `time_format:
    epoch_ms` reads them (CSV text and typed JSON numbers alike); a number of another unit's size is quarantined
    (seconds read as milliseconds would be a day in January 1970), and without time_format the warning suggests the
    unit. Second way: Python's datetime.fromtimestamp."""
    stamps = [1730800000000 + 3_600_123 * i for i in range(10)]
    want = {f"e{i}": datetime.fromtimestamp(ms / 1000, timezone.utc).replace(tzinfo=None) for i, ms in enumerate(stamps)}
    rows = [_row(i, str(ms), str(ms + 86_400_000) if i % 3 == 0 else "") for i, ms in enumerate(stamps)]
    ws = _ws(tmp_path / "ms", rows + [_row(10, "1730800000")], time_format="EPOCH_MS")
    result = load(ws, accept_quarantine=True)
    assert (result.loaded, result.quarantined) == (10, 1)
    assert dict(query(ws, "SELECT event_id, ts FROM events")) == want
    assert query(ws, "SELECT label_ts FROM events WHERE event_id = 'e3'") == [(want["e3"].replace(day=6),)]
    assert query(ws, "SELECT reason FROM quarantine") == [("ts: not a time in time_format epoch_ms",)]
    # typed numbers (JSON Lines), seconds with a fraction
    root = tmp_path / "json" / "ws"
    (root / "data").mkdir(parents=True)
    lines = [{"event_id": f"e{i}", "ts": ms / 1000, "is_fraud": 0, "amount": 1.0, "user_id": 1, "device_id": 1}
             for i, ms in enumerate(stamps)]
    (root / "data" / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    dataset = {**BASE_DATASET, "source": "data/events.jsonl", "time_format": "epoch_s"}
    dataset["columns"] = {k: v for k, v in dataset["columns"].items() if k != "label_time"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    json_ws = Workspace(root)
    assert load(json_ws).loaded == 10
    assert dict(query(json_ws, "SELECT event_id, ts FROM events")) == want
    # no time_format: no row loads, and the line names the unit
    with pytest.raises(RiskConsoleError, match=r"e\.g\. '1730800000000', .*: try time_format: epoch_ms in the "
                                               r"dataset$"):
        load(_ws(tmp_path / "none", rows))


def test_files_of_one_source_in_different_layouts_get_one_suggestion_naming_every_layout(tmp_path):
    """a.csv writes '%d.%m.%Y %H:%M', b.csv ISO-8601, and the given time_format reads neither: the suggestion was
    drawn from the first failing values (all a.csv's), so it named a.csv's layout alone, and only the next load
    named b.csv's. It names both now, and that line loads every row."""
    root = tmp_path / "ws"
    (root / "data" / "in").mkdir(parents=True)
    (root / "data" / "in" / "a.csv").write_text(HEADER + "\n".join(
        _row(i, f"{1 + i % 28:02d}.03.2026 {i % 24:02d}:05") for i in range(300)) + "\n")
    (root / "data" / "in" / "b.csv").write_text(HEADER + "\n".join(
        _row(300 + i, f"2026-04-{1 + i % 28:02d}T{i % 24:02d}:05:00") for i in range(300)) + "\n")
    dataset = {**BASE_DATASET, "source": "data/in/*.csv", "time_format": "%Y/%m/%d %H:%M"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    ws = Workspace(root)
    with pytest.raises(RiskConsoleError, match=r"'01\.03\.2026 00:05', .*: try time_format: \['%d\.%m\.%Y %H:%M', "
                                               r"ISO-8601\] in the dataset$"):
        load(ws)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**dataset, **yaml.safe_load(
        "time_format: ['%d.%m.%Y %H:%M', ISO-8601]")}))
    result = load(ws)
    assert (result.loaded, result.warnings) == (600, [])
    assert query(ws, "SELECT ts FROM events WHERE event_id IN ('e1', 'e301') ORDER BY event_id") == [
        (datetime(2026, 3, 2, 1, 5),), (datetime(2026, 4, 2, 1, 5),)]


@pytest.mark.parametrize("spec", [{}, {"time_format": "epoch_s"}, {"time_format": "%Y-%m-%d %H:%M"}])
def test_validate_refuses_numbers_since_1970_no_row_of_which_would_load_with_the_loads_own_fix(tmp_path, spec):
    """`validate` said ok for times written as milliseconds since 1970 with no time_format (or another unit's, or a
    strptime layout): only `load` then refused, every row quarantined. validate reads the head of each file and says
    so with the load's own line (the values and the unit to write); with that line the dataset validates."""
    from riskconsole.validate import validate_file

    stamps = [1730800000000 + 3_600_123 * i for i in range(1500)]
    ws = _ws(tmp_path, [_row(i, str(ms)) for i, ms in enumerate(stamps)], **spec)
    with pytest.raises(RiskConsoleError) as validated:
        validate_file(ws, ws.dataset_path)
    said = str(validated.value)
    assert said.startswith("data/dataset.yaml: columns.time: 1,000 of 1,000 rows read from the start of each file "
                           "(100.0%) would be quarantined because 'ts' is not ") and "\n" not in said
    with pytest.raises(RiskConsoleError) as loaded:
        load(ws)
    fix = str(loaded.value).split(", e.g. ")[-1]
    assert fix.endswith(": try time_format: epoch_ms in the dataset") and said.endswith(", e.g. " + fix)
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/events.csv",
                                                                   "time_format": "epoch_ms"}))
    assert validate_file(ws, ws.dataset_path).startswith("dataset, 7 source columns")


def test_validate_reads_typed_json_numbers_and_passes_a_source_whose_head_mostly_loads(tmp_path):
    """Typed numbers (JSON Lines) are checked as the load reads them; a time column failing on a few rows of the head
    (or on none: an ISO head) is the load's warning to give, not a refusal of validate."""
    from riskconsole.validate import validate_file

    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    lines = [{"event_id": f"e{i}", "ts": 1730800000 + i, "is_fraud": 0, "amount": 1.0, "user_id": 1, "device_id": 1}
             for i in range(20)]
    (root / "data" / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    dataset = {**BASE_DATASET, "source": "data/events.jsonl", "time_format": "epoch_ms"}
    dataset["columns"] = {k: v for k, v in dataset["columns"].items() if k != "label_time"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    ws = Workspace(root)
    with pytest.raises(RiskConsoleError, match=r"20 of 20 rows read from the start .*'1730800000', .*: try "
                                               r"time_format: epoch_s in the dataset$"):
        validate_file(ws, ws.dataset_path)
    few = _ws(tmp_path / "few", [_row(i, "2026-03-01 10:00:00" if i % 3 else "1/1/15 0:00") for i in range(30)])
    assert validate_file(few, few.dataset_path).startswith("dataset, ")


@pytest.mark.parametrize("head", ["1900-01-01 00:00:00", "{d:02d}/03/2025"])
def test_validate_passes_a_source_whose_first_rows_fail_but_whose_later_rows_load(tmp_path, head):
    """A file sorted by time whose first 1,000 rows hold a placeholder date (1900-01-01) or an older export's layout
    loads: 1,000 of 5,000 rows quarantined, with the load's warning. validate refused it, every row of its sample
    (the head) failing: a time is refused only when no row of the source would load it."""
    from riskconsole.validate import validate_file

    rows = [_row(i, head.format(d=1 + i % 28)) for i in range(1000)]
    rows += [_row(i, f"2026-03-{1 + i % 28:02d} {i % 24:02d}:05:00") for i in range(1000, 5000)]
    ws = _ws(tmp_path, rows)
    assert validate_file(ws, ws.dataset_path).startswith("dataset, ")
    result = load(ws)
    assert (result.loaded, result.quarantined) == (4000, 1000)


def test_a_day_first_file_whose_first_failing_rows_are_days_1_to_12_is_not_suggested_month_first(tmp_path):
    """'01/03/2026 00:05' ... '31/03/2026': the first failing values (days 1 to 6) read month first as well as day
    first, and the tie went to '%m/%d/%Y %H:%M'; the rows that still failed (days 13 on) added '%d/%m/%Y %H:%M'
    after it, so the pasted line loaded every row with no warning, days 1 to 12 on the wrong dates (2 March as 3
    February). A format the others read every row of is not suggested."""
    rows = [_row(i, f"{1 + i // 32:02d}/03/2026 {i % 24:02d}:05") for i in range(31 * 32)]
    ws = _ws(tmp_path, rows)
    with pytest.raises(RiskConsoleError, match=r": try time_format: '%d/%m/%Y %H:%M' in the dataset$"):
        load(ws)
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/events.csv",
                                                                   "time_format": "%d/%m/%Y %H:%M"}))
    assert load(ws).loaded == 31 * 32
    assert query(ws, "SELECT ts FROM events WHERE event_id = 'e40'") == [(datetime(2026, 3, 2, 16, 5),)]


def _time_samples(rng, n: int) -> list[str]:
    """`n` texts as a time column's failing values come: a few layouts (day or month first, dotted, compact, named
    months, offsets and zone names, epoch numbers), blanks, junk, times out of range, duplicates."""
    from datetime import timedelta

    from riskconsole.times import COMMON_FORMATS

    junk = ["", "  ", "n/a", "0", "9999-12-31 00:00:00", "1969-12-31 23:59:59", "2026-13-45", "31/02/2026",
            "2026-03-02 04:05:06 +99:99", "1772424306.5", "1772424306000.0", "17724243060", "2026-03-02 04:05:06 XYZ"]
    layouts = rng.sample(COMMON_FORMATS, 3)
    out = []
    for _ in range(n):
        at = datetime(1960, 1, 1) + timedelta(seconds=rng.randrange(150 * 365 * 86400))
        kind = rng.random()
        if kind < 0.15:
            out.append(rng.choice(junk + out[-3:]))
        elif kind < 0.3:
            seconds = (at - datetime(1970, 1, 1)).total_seconds()
            out.append(str(int(seconds * rng.choice([1, 1000, 1000000]))))
        else:
            zone = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60 + 1)))
            text = at.replace(tzinfo=zone).strftime(rng.choice(layouts)).replace("UTC", rng.choice(["UTC", "CET"]))
            out.append(rng.choice(["", " ", "\t"]) + text if rng.random() < 0.1 else text)
    return out


def test_the_suggested_format_is_the_one_reading_the_most_samples():
    """suggest_format (one cached query, the samples its parameter) against a second count: every case's samples in
    one table, each candidate's parse counted per case in one grouped query, the winner (most in range, ties to the
    first candidate, none when nothing parses) picked here. 40 seeded cases of 1 to 200 samples, some formats
    already tried (all of them: no suggestion, not a query of no counts)."""
    import random

    import duckdb

    from riskconsole import times
    from riskconsole.sqlbuild import exp, fill, render

    rng = random.Random(26)
    every = [times.ISO, *times.EPOCHS, *times.COMMON_FORMATS]
    tried = [[], [times.ISO, "%m/%d/%Y", "epoch_ms"], every]  # as a load's warning passes them
    cases = [(_time_samples(rng, rng.choice([1, 2, 5, 50, 200])), rng.choice(tried)) for _ in range(40)]
    con = duckdb.connect()
    con.execute("CREATE TABLE s (c INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO s VALUES (?, ?)", [(i, v) for i, (samples, _) in enumerate(cases) for v in samples])
    counts = [fill("count(*) FILTER (:ok)", ok=times.in_range(times.parse_text(exp.column("v"), [f]))) for f in every]
    per_case = {row[0]: row[1:] for row in con.execute(render(exp.select("c", *counts).from_("s").group_by("c")))
                .fetchall()}
    winners = set()
    for i, (samples, skip) in enumerate(cases):
        found = {f: n for f, n in zip(every, per_case[i]) if f not in skip and n}
        want = max(found, key=lambda f: (found[f], -every.index(f))) if found else None
        assert times.suggest_format(con, samples, skip) == want, (i, skip, samples[:5])
        winners.add(want)
    assert len(winners) > 10  # the cases are not all won by one format
