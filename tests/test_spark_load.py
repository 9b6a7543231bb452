"""Load on engine spark (issue 15, first slice): Spark reads, types and quarantines the decision events' files as
DuckDB's load does — the loaded rows EXCEPT ALL DuckDB's `events` are empty both ways (same columns, same types),
the quarantine is DuckDB's row for row and in order, and the counts, reasons and warnings are DuckDB's.

Messy fixtures: the load tests' rows (missing keys, bad times, label words, bad and absurd amounts, offsets and
zone names, absurd years, duplicates across files), a BOM, CRLF line ends and a quoted line break, decimal commas
in a `;` file, a time_format list and a map, Parquet with zoned and empty text times. Spark runs in the test run's
one session (`spark` of conftest.py).
"""

from __future__ import annotations

import decimal
import json

import duckdb
import pandas as pd
import pytest
import yaml

import test_load_times
from conftest import BASE_DATASET, assert_same, late_json_lines, random_events, write_workspace
from riskconsole.engines.spark_load import load_part
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.sources import check_dataset
from riskconsole.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
HEADER = test_load_times.HEADER


def _row(i: int, ts: str, label: str = "0", label_ts: str = "", amount: str = "10") -> str:
    return f"e{i},{ts},{label},{label_ts},{amount},{i % 3},1"


MESSY = [  # one row per rule of DuckDB's load; e9 repeats in the second file
    _row(0, "2026-03-01 10:00:00"), _row(1, "1/1/15 0:00"), _row(2, "2026-01-05 00:00:00+05:00"),
    _row(3, "2026-01-05T00:00:00Z"), _row(4, "2026-01-05 00:00:00 America/New_York"),
    _row(5, "2026-01-05 00:00:00 Mars/Olympus"), _row(6, "2026-01-05 10:00:00+99:99"),
    _row(7, "2026-01-05 10:00:00-0575"), _row(8, "9999-12-31 00:00:00"), _row(9, "2026-03-01 11:00:00", "fraud"),
    _row(10, "2026-03-01 12:00:00", " LEGIT "), _row(11, "2026-03-01 13:00:00", "2"), _row(12, "", "1"),
    ",2026-03-01 14:00:00,0,,1,1,1", _row(13, "2026-03-01 15:00:00", amount="nan"),
    _row(14, "2026-03-01 16:00:00", amount="1e308"), _row(15, "2026-03-01 17:00:00", amount="abc"),
    _row(16, "2026-03-01 18:00:00", label_ts="5/3/26"), _row(17, "2026-03-01 19:00:00", label_ts=" "),
    _row(18, "2026-03-01 20:00:00", label_ts="2026-03-05"), _row(19, " 2026-03-01 21:00:00 ", amount=" 12.5 "),
    _row(20, "05.03.2026 10:00:00"), _row(21, "2026-03-02 01:00:00", "true"),
    'e23,2026-03-02 03:00:00,0,,3,"1\n2",1',
]
SECOND = [_row(9, "2026-03-02 00:00:00"), _row(22, "2026-03-02 02:00:00", "1", "2026-03-04 00:00:00", '"1,234.50"'),
          _row(24, "2026-03-02 04:00:00", "0.0")]


def _files(root, files: dict[str, bytes], **spec) -> Workspace:
    (root / "data" / "in").mkdir(parents=True)
    for name, data in files.items():
        (root / "data" / "in" / name).write_bytes(data)
    suffix = next(iter(files)).rsplit(".", 1)[1]
    dataset = {**BASE_DATASET, "source": f"data/in/*.{suffix}", **spec}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    return Workspace(root)


def _csv(rows: list[str], header: str = HEADER, bom: bool = False, crlf: bool = False) -> bytes:
    text = header + "\n".join(rows) + "\n"
    return (("\ufeff" if bom else "") + (text.replace("\n", "\r\n") if crlf else text)).encode()


def assert_spark_loads_like_duckdb(ws: Workspace, spark):
    """Spark's loaded rows and quarantine equal DuckDB's load of the same workspace (types, rows, order of the
    quarantine), and so do the counts, the reasons and the warnings (most rows of the messy fixtures are quarantined
    on purpose: more than a load publishes)."""
    duck = load(ws, accept_quarantine=True)
    checked = check_dataset(ws)
    ours = load_part(spark, checked, checked.parts[0])
    assert (ours.read, ours.loaded) == (duck.read, duck.loaded)
    assert ours.reasons == duck.reasons and list(ours.reasons) == list(duck.reasons)
    assert ours.warnings == duck.warnings
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        quarantine = ours.quarantine.drop("__file").toArrow()
        for table, theirs in ((ours.rows.toArrow(), "events"), (quarantine, "quarantine")):
            con.register("ours", table)
            described = "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {})"
            assert con.execute(described.format("ours")).fetchall() == con.execute(described.format(theirs)).fetchall()
            for a, b in (("ours", theirs), (theirs, "ours")):
                assert con.execute(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}").fetchall() == [], (a, b)
            con.unregister("ours")
        assert quarantine.to_pylist() == con.sql("SELECT * FROM quarantine").to_arrow_table().to_pylist()
    finally:
        con.close()
        for data in ours.cached:  # as the load does: else the session's cache answers a later read of the files
            data.unpersist()
    return duck


def test_a_source_changed_after_a_failed_load_on_spark_is_read_again_not_from_the_cache(tmp_path, spark,
                                                                                      monkeypatch):
    """A load on Spark persists what it parses, and Spark's cache answers any later read with the same plan, even
    after the files changed. A load that fails after parsing (here: writing the events) drops it, so the next load
    reads the files as they are now; before, it read the first load's cached rows."""
    from riskconsole.engines import spark_load

    records = _records([_row(i, "2026-03-01 10:00:00") for i in range(3)])
    ws = _files(tmp_path / "ws", {"a.json": json.dumps(records, indent=1).encode()})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(spark_load, "write_days", broken)
        with pytest.raises(RiskConsoleError, match="on spark failed: disk full"):
            load(ws, engine="spark", spark=spark)
    (ws.root / "data" / "in" / "a.json").write_text(json.dumps([{**r, "amount": 99} for r in records], indent=1))
    load(ws, engine="spark", spark=spark)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        assert con.execute("SELECT list(amount) FROM events").fetchall() == [([99.0, 99.0, 99.0],)]
    finally:
        con.close()


def test_messy_csv_files_load_on_spark_as_on_duckdb(tmp_path, spark):
    """Two files (a BOM, CRLF line ends, a quoted line break, a repeat of an earlier file's id) and every rule:
    the time warning, the label warning and the amount warning are DuckDB's too. The second file's name has a
    space, a non-ASCII letter and glob characters: Spark reads it as itself and names its rows as DuckDB does."""
    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY, bom=True), "b {1} ü #[x].csv": _csv(SECOND, crlf=True)})
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded, len(duck.reasons)) == (27, 11, 12) and duck.reasons["duplicate id"] == 1
    # e5's zone and e6/e7's offsets have their own reasons (e1, e20: layouts ISO-8601 does not read)
    assert [n for r, n in duck.reasons.items() if r.startswith(("ts: an unknown time zone", "ts: an offset no"))] \
        == [2, 1] and duck.reasons["ts: not an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other "
                                   "layouts)"] == 2
    assert [w.split(": ")[1] for w in duck.warnings] == ["columns.label", "columns.time", "columns.label_time",
                                                        "columns.amount"]
    # a map: label_ts holds '5/3/26' neither reads; the ISO rows keep loading (the offset format once suggested here
    # read only '+99:99' and '-0575', offsets the load quarantines anyway)
    assert "try time_format: {ts: [ISO-8601, '%m/%d/%y %H:%M', '%d.%m.%Y %H:%M:%S']}" in duck.warnings[1]


@pytest.mark.parametrize("blank", [b"", b"\n", b"\xef\xbb\xbf\r\n  \n"])
def test_a_blank_csv_file_among_others_loads_on_spark_as_on_duckdb(tmp_path, spark, blank):
    """An empty export among the files (no header, no row): DuckDB's sniffer named its column `column0`, so DuckDB's
    load gained a column of nulls and Spark refused the source (its files' columns differ). Such a file names no
    column and holds no row: both loads read the others."""
    rows = [_row(i, "2026-03-01 10:00:00") for i in range(3)]
    ws = _files(tmp_path / "ws", {"a.csv": _csv(rows[:2]), "b.csv": blank, "c.csv": _csv(rows[2:])})
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded) == (3, 3)
    assert "column0" not in check_dataset(ws).parts[0].types


def test_column_names_with_a_dot_or_a_backtick_load_on_spark_as_on_duckdb(tmp_path, spark):
    """`device.os` (as flattened JSON exports name columns) and a backtick: PySpark's mapInArrow takes each input
    column by its name as a path (a `.` is a field of a struct), so the load failed on Spark where DuckDB loads."""
    rows = [r + ",ios,x" for r in SECOND]
    ws = _files(tmp_path / "ws", {"a.csv": _csv(rows, header=HEADER.strip() + ",device.os,a`b\n")}, features=[])
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded) == (3, 3)  # 1,234.50 read as 1234.50 (grouped, with decimals), on both engines


@pytest.mark.parametrize("spec", [
    {"time_format": ["%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]},
    {"time_format": {"label_ts": ["%d/%m/%y", "%Y-%m-%d"]}, "label_values": {"fraud": 1, "legit": 0}},
    {"time_format": ["%d.%m.%Y %H:%M:%S", "ISO-8601", "%m/%d/%y %H:%M"]},  # ISO reading between strptime runs
])
def test_time_formats_and_label_words_load_on_spark_as_on_duckdb(tmp_path, spark, spec):
    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY), "b.csv": _csv(SECOND)}, **spec)
    assert_spark_loads_like_duckdb(ws, spark)


def test_epoch_times_load_on_spark_as_on_duckdb(tmp_path, spark):
    """`time_format: {ts: epoch_ms, label_ts: epoch_s}`: numbers since 1970, one of another unit's size quarantined."""
    rows = [_row(i, str(1730800000000 + 3_600_123 * i), "1" if i % 2 else "0", str(1730900000 + i) if i % 2 else "")
            for i in range(6)] + [_row(6, "1730800000")]
    ws = _files(tmp_path / "ws", {"a.csv": _csv(rows)}, time_format={"ts": "epoch_ms", "label_ts": "epoch_s"})
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded) == (7, 6)


def test_decimal_commas_load_on_spark_as_on_duckdb(tmp_path, spark):
    """A `;` file with decimal commas, a typed DECIMAL column, thousands separators (read beside decimals: 1.234,56;
    quarantined without: 1.234)."""
    text = ("event_id;ts;is_fraud;label_ts;amount;user_id;device_id;fee\n"
            "a1;2026-03-01 10:00:00;1;2026-03-05 00:00:00;723,03;1;1;0,5\n"
            "a2;2026-03-01 11:00:00;0;;12;2;1;1,25\n"
            "a3;2026-03-01 12:00:00;0;;1.234,56;2;2;0\n"
            "a4;2026-03-01 13:00:00;0;;-0,75;3;2;\n"
            "a5;2026-03-01 14:00:00;0;;1.234;3;2;1.000,5\n")
    for name, spec in (("comma", {"decimal_separator": ",", "types": {"user_id": "DECIMAL(6,2)"}}), ("plain", {})):
        ws = _files(tmp_path / name, {"orders.csv": text.encode()}, **spec)
        assert_spark_loads_like_duckdb(ws, spark)


def test_parquet_loads_on_spark_as_on_duckdb(tmp_path, spark):
    """Typed Parquet (a zoned time, nullable integers; an id repeated in the second file), then Parquet holding its
    times as text with blanks, a bad time and an infinite amount."""
    events = random_events(n=40).drop(columns=["merchant_id", "channel"])
    events["ts"] = events["ts"].dt.tz_localize("Asia/Karachi")
    root = tmp_path / "typed"
    (root / "data" / "in").mkdir(parents=True)
    events[:30].to_parquet(root / "data" / "in" / "a.parquet", index=False)
    events[28:].to_parquet(root / "data" / "in" / "b.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/in/*.parquet"}))
    assert_spark_loads_like_duckdb(Workspace(root), spark)
    text = pd.DataFrame({"event_id": ["x1", "x2", "x3", "x1", "x5"],
                         "ts": ["2026-03-01 10:00:00", " ", "bad", "2026-03-09", "2026-03-02T00:00:00+01:00"],
                         "is_fraud": pd.array([1, None, 0, 0, 1], dtype="Int8"),
                         "label_ts": ["2026-03-04 00:00:00", "", "  ", None, "2026-03-05"],
                         "amount": [1.0, 2.0, float("inf"), 4.0, None], "user_id": [1, 1, 1, 2, 2],
                         "device_id": [1, 1, 1, 2, 2]})
    root = tmp_path / "text"
    (root / "data" / "in").mkdir(parents=True)
    text.to_parquet(root / "data" / "in" / "a.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/in/*.parquet"}))
    assert_spark_loads_like_duckdb(Workspace(root), spark)


def _parquet(coupon, ids: tuple[str, str]) -> bytes:
    """Two events with `coupon` (an array; a dict: several columns by name)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"event_id": list(ids), "ts": ["2026-03-01 10:00:00", "2026-03-02 10:00:00"],
                             "is_fraud": [0, 1], "label_ts": pa.array([None, None], pa.string()), "amount": [1.0, 2.0],
                             "user_id": [1, 2], "device_id": [1, 1],
                             **(coupon if isinstance(coupon, dict) else {"coupon": coupon})}), buffer)
    return buffer.getvalue()


# A column of only nulls written by pyarrow (Arrow's null type: Parquet INT32 annotated Null), which Spark reads as
# INT and would not merge with DOUBLE or text; and files holding INT and text, which DuckDB merges to text.
PARQUET_TYPES = {
    "nulls then numbers": [([None, None], "null"), ([1.5, None], None)],
    "numbers then nulls": [([1.5, None], None), ([None, None], "null")],
    "nulls then text": [([None, None], "null"), (["spring", None], None)],
    "int then text then nulls": [([7, None], "int32"), (["spring", None], None), ([None, None], "null")],
    "nulls only": [([None, None], "null"), ([None, None], "null")],
    # DuckDB's text of a number or a zoned time, not Spark's CAST's ('1e+20', not '1.0E20'; the zone kept)
    "doubles then text": [([1e20, 0.1], None), (["spring", None], None)],
    "floats then text": [([1e10, 0.5], "float32"), (["spring", None], None)],
    "zoned times then text": [(["2026-03-01T10:00:00.5+00:00", None], "utc"), (["spring", None], None)],
    # a column of nulls beside types INT does not merge with in DuckDB: null there, whatever Spark read
    "nulls then times": [([None, None], "null"), (["2026-03-01T10:00:00", None], "timestamp")],
    "nulls then dates": [([None, None], "null"), (["2026-03-01", None], "date")],
    "nulls then structs": [([None, None], "null"), ([{"a": 1, "b": "x"}, None], None)],
    "nulls then lists": [([None, None], "null"), ([[1, 2], None], None)],
    "nulls then booleans": [([None, None], "null"), ([True, None], None)],
    "nulls then bytes": [([None, None], "null"), ([7, None], "int8")],
    "nulls then decimals": [([None, None], "null"), ([decimal.Decimal("1.25"), None], "decimal")],
}


def parquet_types_files(case: str, *more: str) -> dict[str, bytes]:
    """The files of a case of PARQUET_TYPES (column `coupon`); with `more` cases of as many files, a column each
    (`coupon`, `coupon_1`, ...): one load for them all."""
    import pyarrow as pa

    types = {"null": pa.null(), "int32": pa.int32(), "int8": pa.int8(), "decimal": pa.decimal128(10, 2),
             "float32": pa.float32(), "date": pa.date32(),
             "utc": pa.timestamp("ms", tz="UTC"), "timestamp": pa.timestamp("us")}

    def typed(values: list, dtype: str | None) -> pa.Array:
        if dtype in ("utc", "timestamp", "date"):  # text to times, as an export writes them
            import pandas as pd

            stamps = pd.to_datetime(pd.Series(values), utc=dtype == "utc")
            values = [v.date() if dtype == "date" and v is not pd.NaT else v for v in stamps]
            values = [None if v is pd.NaT else v for v in values]
        return pa.array(values, types.get(dtype)) if dtype else pa.array(values)

    cases = [case, *more]
    assert len({len(PARQUET_TYPES[c]) for c in cases}) == 1, "cases of as many files"
    names = ["coupon", *[f"coupon_{k}" for k in range(1, len(cases))]]
    return {f"{i}.parquet": _parquet({n: typed(*PARQUET_TYPES[c][i]) for n, c in zip(names, cases)},
                                     (f"e{2 * i}", f"e{2 * i + 1}"))
            for i in range(len(PARQUET_TYPES[case]))}


def parquet_type_groups(*alone: str) -> list[list[str]]:
    """PARQUET_TYPES' cases, those of as many files together (a column each: one load), `alone` each by itself."""
    together = [c for c in PARQUET_TYPES if c not in alone]
    return [[c] for c in alone] + [[c for c in together if len(PARQUET_TYPES[c]) == n]
                                   for n in sorted({len(PARQUET_TYPES[c]) for c in together})]


@pytest.mark.parametrize("cases", parquet_type_groups("nulls only"))
def test_parquet_files_of_other_types_for_a_column_load_on_spark_as_on_duckdb(tmp_path, spark, cases):
    """Where Spark refuses to merge the files' schemas, each file is read as itself and its columns cast to the
    types DuckDB merges them to (the load failed with Spark's "Failed to merge incompatible data types"). The cases
    of as many files are columns of one load (a load each took 2 s); only nulls in every file: schemas Spark merges."""
    assert_spark_loads_like_duckdb(_files(tmp_path / "ws", parquet_types_files(*cases)), spark)


@pytest.mark.parametrize("files, message", [
    ({"a.jsonl": b'{"event_id": "a", "ts": "2026-03-01 10:00:00", "is_fraud": 1, "label_ts": null, "amount": 1, '
                 b'"user_id": 1, "device_id": 1, "ref": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}\n'},
     "column 'ref' loads as UUID, which Spark would store as VARCHAR"),  # read as text, loaded as DuckDB types it
    ({"a.jsonl": b'{"event_id": "a", "ts": "2026-03-01 10:00:00", "is_fraud": 1, "label_ts": null, "amount": 1, '
                 b'"user_id": 1, "device_id": 1, "ref": {"u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}}\n'},
     "DuckDB reads column 'ref' as STRUCT(u UUID), which Spark would store as STRUCT(u VARCHAR)"),  # read as typed
    ({"a.csv": _csv(MESSY[:3]), "b.csv": _csv(MESSY[3:6], header=HEADER.replace("user_id,device_id",
                                                                                 "device_id,user_id"))},
     "has the columns event_id, ts, is_fraud, label_ts, amount, device_id, user_id where the source has event_id, "
     "ts, is_fraud, label_ts, amount, user_id, device_id (Spark reads every file's columns by their place)"),
    ({"a.csv": _csv(MESSY[:3]), "b 10:00.csv": _csv(MESSY[3:6])},  # Hadoop cannot read it; DuckDB can
     "the file name 'b 10:00.csv' holds ':', which Spark's Hadoop file paths cannot read (rename the file)"),
    ({"_a.csv": _csv(MESSY[:3]), "b.csv": _csv(MESSY[3:6])},  # Spark skipped it even when named: its rows lost
     "the file name '_a.csv' starts with '_', which Spark skips as a hidden file (its rows would be left out): "
     "rename the file"),
])
def test_what_spark_cannot_read_exactly_is_refused_naming_the_engine(tmp_path, spark, files, message, monkeypatch,
                                                                    capsys):
    """Refused before a row is read: by `load_part`, by `validate` and `load` with engine spark (`--engine spark` or
    $RISKCONSOLE_ENGINE; no Spark session is started for it); `validate --engine duckdb` passes, and engine duckdb
    loads the same files."""
    from riskconsole.cli import main

    ws = _files(tmp_path / "ws", files)
    checked = check_dataset(ws)
    with pytest.raises(RiskConsoleError) as info:
        load_part(spark, checked, checked.parts[0])
    assert message in str(info.value) and "engine spark" in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("data/dataset.yaml: source 'data/in/*.")
    assert main(["validate", "--engine", "spark", "--workspace", str(ws.root), str(ws.dataset_path)]) == 1
    assert message in capsys.readouterr().err
    monkeypatch.setenv("RISKCONSOLE_ENGINE", "spark")
    assert main(["validate", "--workspace", str(ws.root), str(ws.dataset_path)]) == 1
    assert message in capsys.readouterr().err
    assert main(["validate", "--engine", "duckdb", "--workspace", str(ws.root), str(ws.dataset_path)]) == 0
    assert ", loads on engine spark" not in capsys.readouterr().out
    with pytest.raises(RiskConsoleError, match="engine spark cannot read it"):
        load(ws)
    assert not ws.db_path.exists()
    assert load(ws, engine="duckdb").loaded > 0


def test_a_csv_that_is_not_utf8_is_refused_on_spark(tmp_path, spark):
    """DuckDB refuses a CSV with bytes that are not UTF-8; Spark would read them as U+FFFD and load the row, so
    U+FFFD in a CSV is refused on Spark (even one written on purpose, which DuckDB loads)."""
    rows = [_row(i, f"2026-03-01 1{i}:00:00") for i in range(3)]
    ws = _files(tmp_path / "ws", {"a.csv": _csv(rows[:1]) + b"e9,2026-03-01 10:00:00,0,,1,\xef\xbf\xbd,1\n"
                                  + "\n".join(rows[1:]).encode() + b"\n"})
    assert load(ws).loaded == 4
    checked = check_dataset(ws)
    with pytest.raises(RiskConsoleError, match=r"a.csv row 2 is not valid UTF-8 \(or holds U\+FFFD"):
        load_part(spark, checked, checked.parts[0])
    # in a second file: its row in that file (as the quarantine's `row`; it said row 4 of a 2-row b.csv)
    ws = _files(tmp_path / "ws2", {"a.csv": _csv(rows[1:]), "b.csv": _csv(rows[:1]) + b"e9,2026-03-01 10:00:00,0,,1,"
                                                                                 b"\xef\xbf\xbd,1\n"})
    checked = check_dataset(ws)
    with pytest.raises(RiskConsoleError, match=r"b.csv row 2 is not valid UTF-8"):
        load_part(spark, checked, checked.parts[0])


def test_a_spark_failure_during_a_load_is_one_line_naming_the_source(tmp_path, spark, monkeypatch):
    from riskconsole.engines import spark_load

    def fails(*args):
        raise RuntimeError("An error occurred while calling o123.parquet.\n: java.io.IOException: disk full\n\tat ...")

    monkeypatch.setattr(spark_load, "write_days", fails)
    ws = write_workspace(tmp_path / "ws", random_events(n=20))
    with pytest.raises(RiskConsoleError) as info:
        load(ws, engine="spark", spark=spark)
    assert str(info.value).startswith("data/dataset.yaml: loading 'data/events.csv' on spark failed: ")
    assert "\n" not in str(info.value) and not ws.db_path.exists()
    assert not list((ws.root / "data" / "spark").glob("*/*"))  # nothing of the failed version left


def test_a_load_on_spark_mostly_quarantined_is_refused_and_changes_nothing(tmp_path, spark):
    """The refusal of a source mostly quarantined is the load's whatever the engine: before the swap, and what Spark
    wrote for the refused version is removed; accepted, it is published."""
    from test_load_refusal import _bad_times, _live
    from riskconsole.errors import QuarantineRefused

    ws = write_workspace(tmp_path / "ws", random_events(n=40))
    first = load(ws, engine="spark", spark=spark)
    before = _live(ws)
    _bad_times(ws, 30)
    with pytest.raises(QuarantineRefused, match=r"^data/dataset.yaml: 'data/events.csv': 30 of 40 rows \(75.0%\) "
                                                r"would be quarantined, .*; columns.time: 30 of 40 rows .*"
                                                r"`riskconsole load --accept-quarantine`$"):
        load(ws, engine="spark", spark=spark)
    assert _live(ws) == before
    assert sorted(p.name for p in (ws.root / "data" / "spark").iterdir()) == [first.version]  # nothing left behind
    assert load(ws, engine="spark", spark=spark, accept_quarantine=True).loaded == 10


def test_write_workspace_fixture_loads_on_spark_as_on_duckdb(tmp_path, spark):
    """The tests' usual random workspace (pandas' CSV: ISO times, empty labels and label times)."""
    assert_spark_loads_like_duckdb(write_workspace(tmp_path / "ws", random_events(n=80)), spark)


STRATEGY = {"name": "s", "rules": [
    {"name": "busy", "when": "user_orders_1h >= 1", "action": "review"},
    {"name": "big", "when": "amount > 11 AND device_users_1d >= 2", "action": "block"}]}


def _tables(ws: Workspace) -> dict[str, list]:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return {t: (con.execute(f"DESCRIBE {t}").fetchall(), con.execute(f"SELECT * FROM {t}").fetchall())
                for t in ("events", "quarantine", "frame")}
    finally:
        con.close()


def test_a_load_on_engine_spark_gives_duckdbs_tables_and_report(tmp_path, spark, monkeypatch):
    """`load --engine spark`: Spark's events land in data/spark/<version>/events by day, DuckDB's events, quarantine
    and frame (in their stored order) are those of a DuckDB load, the CLI's summary and warnings are DuckDB's, and a
    backtest on Spark over the frame built from Spark's own events writes DuckDB's report. The session comes with
    PySpark's default workers' Python (`python3` on PATH, lacking riskconsole outside the repository: a user's first
    `load --engine spark` failed on its list of files, made before any step chose the workers' Python); riskconsole
    sets this interpreter before its first DataFrame.

    The features are computed once, on Spark (never by DuckDB on this machine): DuckDB's frame is read back from
    Spark's, the data version's frame is ready before any backtest, and the earlier version's folder is removed only
    once the new load is live (a load failing after its frame was built leaves the live version's folder, frame
    included, and removes its own)."""
    import sys

    from riskconsole import ingest
    from riskconsole.session import Session

    monkeypatch.setattr(spark.sparkContext, "pythonExec", "/nonexistent/python3")

    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY, bom=True), "b.csv": _csv(SECOND, crlf=True)},
                time_format=["%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S"])
    (ws.strategies_dir).mkdir(exist_ok=True)
    (ws.strategies_dir / "s.yaml").write_text(yaml.safe_dump(STRATEGY))
    duck = load(ws, accept_quarantine=True)  # most of MESSY is quarantined on purpose
    want, csv = _tables(ws), (ws.root / "data" / "quarantine.csv").read_bytes()
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "s.yaml").report

    def no_duckdb_build(*args, **kwargs):
        raise AssertionError("DuckDB built the frame of a load on Spark")

    monkeypatch.setattr(ingest, "build_frame", no_duckdb_build)
    ours = load(ws, engine="spark", spark=spark, accept_quarantine=True)
    assert (ours.read, ours.loaded, ours.reasons, ours.warnings) == (duck.read, duck.loaded, duck.reasons, duck.warnings)
    assert ours.features == duck.features
    store = ws.root / "data" / "spark"
    assert sorted(p.name for p in store.iterdir()) == [ours.version]
    assert (store / ours.version / "_riskconsole.json").exists()  # built by the load: no backtest builds it again
    assert _tables(ws) == want and (ws.root / "data" / "quarantine.csv").read_bytes() == csv
    assert _kind(ws, "quarantine") == "VIEW"  # of Spark's files, in source order as DuckDB's table
    days = sorted(p.name for p in (ws.root / "data" / "spark" / ours.version / "events").iterdir() if p.is_dir())
    assert days == sorted({f"__day={row[1].date()}" for row in want["events"][1]}) and len(days) >= 3
    written = {p: p.stat().st_mtime_ns for p in (ws.root / "data" / "spark").rglob("*.parquet")}
    with Session(ws, engine="spark", spark=spark) as session:
        got = session.backtest(ws.strategies_dir / "s.yaml").report
    assert {p: p.stat().st_mtime_ns for p in written} == written  # the frame was built from Spark's own events
    assert got["overall"]["flagged"] > 0 and spark.sparkContext.pythonExec == sys.executable
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(report, default=str)))
    frame = {p: t for p, t in written.items() if f"{ours.version}/frame/" in str(p)}

    def broken(*args, **kwargs):
        raise RiskConsoleError("maturity broke")

    monkeypatch.setattr(ingest, "store_maturity", broken)  # after the new frame was built on Spark
    with pytest.raises(RiskConsoleError, match="maturity broke"):
        load(ws, engine="spark", spark=spark, accept_quarantine=True)
    assert sorted(p.name for p in store.iterdir()) == [ours.version]
    assert {p: p.stat().st_mtime_ns for p in frame} == frame and frame


def test_a_load_on_spark_keeps_no_copy_in_duckdb_only_views_of_its_parquet(tmp_path, spark):
    """After a load on Spark (store on this machine), DuckDB's events and frame are views of the Parquet Spark wrote,
    not copies: the database file holds no event, and every row, type and order is a DuckDB load's (the files are
    written sorted, so even an unordered read gives the table's order). A safe connection reads those views and
    nothing else (no other file of the workspace or the store); a folder gone is one line naming the fix."""
    from riskconsole.errors import DataError
    from riskconsole.session import Session

    events = random_events(n=3000, days=9)
    ws = write_workspace(tmp_path / "ws", events, strategies={"s": STRATEGY})
    load(ws)
    want = _tables(ws)
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "s.yaml").report
    ours = load(ws, engine="spark", spark=spark)
    version = ws.root / "data" / "spark" / ours.version
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        stored = con.execute("SELECT sum(estimated_size) FROM duckdb_tables() WHERE table_name IN "
                             "('events', 'frame')").fetchall()[0][0]
    finally:
        con.close()
    assert (kinds["events"], kinds["frame"], kinds["quarantine"]) == ("VIEW", "VIEW", "VIEW")
    assert stored is None  # no table holds them
    got = _tables(ws)  # rows, types and order: `SELECT * FROM events` with no ORDER BY
    (types, rows), (want_types, want_rows) = got.pop("frame"), want.pop("frame")
    assert got == want and types == want_types
    assert_same([list(r) for r in rows], [list(r) for r in want_rows])  # sums on Spark: running totals
    with Session(ws) as session:  # DuckDB's backtest over the views gives DuckDB's report
        assert_same(json.loads(json.dumps(session.backtest(ws.strategies_dir / "s.yaml").report, default=str)),
                    json.loads(json.dumps(report, default=str)))
    (version.parent / "other").mkdir()
    (version.parent / "other" / "x.csv").write_text("a\n1\n")
    safe = ws.connect_safe()
    try:
        assert safe.execute("SELECT count(*) FROM events").fetchall() == [(3000,)]
        for sql in ["SELECT * FROM read_csv('/etc/passwd')", f"SELECT * FROM read_csv('{ws.root / 'data' / 'events.csv'}')",
                    f"SELECT * FROM read_csv('{version.parent / 'other' / 'x.csv'}')",
                    f"SELECT * FROM read_csv('{version / '..' / 'other' / 'x.csv'}')", "SET enable_external_access = true",
                    f"ATTACH '{tmp_path / 'x.db'}' AS x", "CREATE TABLE x AS SELECT 1"]:
            with pytest.raises(duckdb.Error):
                safe.execute(sql)
    finally:
        safe.close()
    moved = tmp_path / "moved"
    version.rename(moved)
    for connect in (ws.connect_safe, ws.connect):
        with pytest.raises(DataError, match=r"console.duckdb: its events and features are views of the Parquet of a "
                                            r"load on spark in .*, which is gone .*: load the data again"):
            connect()
    assert load(ws).loaded == 3000  # the fix the line names: a load replaces the database
    with ws.connect_safe() as safe:
        assert safe.execute("SELECT count(*) FROM events").fetchall() == [(3000,)]


def test_a_store_shared_by_two_workspaces_keeps_each_ones_versions(tmp_path, spark):
    """Two workspaces with one `spark.store`: a load of one removes only its own earlier versions, never the other's,
    whose DuckDB views read it. A workspace in a glob-like path (`risk [v2]/`) is read by Spark literally, and keeps
    copies (DuckDB's file permission would match its folder as a pattern)."""
    from riskconsole.session import Session

    store = tmp_path / "shared"
    events = random_events(n=300)
    a, b = (write_workspace(tmp_path / n, events, {**BASE_DATASET, "spark": {"store": str(store)}}, {"s": STRATEGY})
            for n in "ab")
    load(a, engine="spark", spark=spark)
    first_b = load(b, engine="spark", spark=spark).version
    second_a = load(a, engine="spark", spark=spark).version
    assert sorted(p.name for p in store.iterdir()) == sorted([first_b, second_a])
    for ws in (a, b):
        assert _kind(ws, "events") == "VIEW"
        with ws.connect_safe() as con:
            assert con.execute("SELECT count(*) FROM events").fetchall() == [(300,)]
    c = write_workspace(tmp_path / "risk [v2]" / "c", events, strategies={"s": STRATEGY})
    load(c, engine="spark", spark=spark)
    assert _kind(c, "events") == "BASE TABLE"
    with Session(c, engine="spark", spark=spark) as session:  # Spark reads `risk [v2]` literally
        assert session.backtest(c.strategies_dir / "s.yaml").report["overall"]["flagged"] > 0


def test_scores_are_kept_when_what_views_read_is_unknown(tmp_path):
    """A closed connection (a console's cursor outlives its block) cannot say which score folders DuckDB's views
    read: then none is removed."""
    from riskconsole.engines.spark import _viewed

    con = duckdb.connect()
    con.execute("CREATE VIEW v AS SELECT * FROM range(1)")
    assert _viewed(con) == frozenset()
    con.close()
    assert _viewed(con) is None


def _trained_iforest(ws: Workspace) -> None:
    """A DuckDB load of `ws` and an iforest detector trained on it (scored by DuckDB)."""
    from riskconsole.detectors import train_detector

    load(ws)
    (ws.root / "detectors").mkdir()
    (ws.root / "detectors" / "iforest.yaml").write_text(yaml.safe_dump({
        "name": "iforest", "kind": "pyod.iforest", "features": ["amount", "user_orders_1h", "user_amount_1d"],
        "train": {"from": "2026-03-01", "to": "2026-03-04"}, "params": {"n_estimators": 25}}))
    train_detector(ws, ws.root / "detectors" / "iforest.yaml")


def test_a_load_on_spark_scores_the_trained_detectors_on_spark(tmp_path, spark, monkeypatch):
    """A load on Spark re-scores every trained detector on Spark, where its backtests read the scores, and DuckDB's
    score table is read back from them: a DuckDB load's scores (within 1e-6), no DuckDB scoring, and no backtest
    on Spark scores again. So does `train --engine spark` once the version's frame is built on Spark (its card
    computed from those scores); `train --engine duckdb` scores on DuckDB."""
    from riskconsole.detectors import train_detector, training
    from riskconsole.session import Session

    ws = write_workspace(tmp_path / "ws", random_events(n=400), strategies={"s": {
        "name": "s", "rules": [{"name": "odd", "when": "iforest >= 0.6", "action": "review"}]}})
    _trained_iforest(ws)
    duck = load(ws)  # scored by DuckDB
    want = _held(ws, "scores_iforest")

    def no_duckdb_scoring(*args, **kwargs):
        raise AssertionError("DuckDB scored the frame of a load on Spark")

    monkeypatch.setattr(training, "score_into", no_duckdb_scoring)
    ours = load(ws, engine="spark", spark=spark)
    assert ours.rescored == duck.rescored == {"iforest": 400}
    got = _held(ws, "scores_iforest")
    assert got[0] == want[0] and [p for p, _ in got[1]] == [p for p, _ in want[1]]
    assert max(abs(a - b) for (_, a), (_, b) in zip(got[1], want[1])) < 1e-6
    scores = ws.root / "data" / "spark" / ours.version / "scores"
    written = {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")}
    with Session(ws, engine="spark", spark=spark) as session:
        assert session.backtest(ws.strategies_dir / "s.yaml").report["overall"]["flagged"] > 0
    assert written and {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")} == written

    # `train --engine spark` on this version (its frame built on Spark): the events are scored there, once
    card = json.loads((ws.models_dir / "iforest" / "card.json").read_text())
    train_detector(ws, ws.root / "detectors" / "iforest.yaml", engine="spark")
    again = _held(ws, "scores_iforest")
    assert again[0] == want[0] and max(abs(a - b) for (_, a), (_, b) in zip(again[1], want[1])) < 1e-6
    trained = json.loads((ws.models_dir / "iforest" / "card.json").read_text())
    assert trained["events_scored"] == card["events_scored"] == 400
    assert trained["train"] == card["train"] and trained["out_of_time"] == card["out_of_time"]
    written = {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")}
    with Session(ws, engine="spark", spark=spark) as session:
        assert session.backtest(ws.strategies_dir / "s.yaml").report["overall"]["flagged"] > 0
    assert written and {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")} == written
    assert _kind(ws, "scores_iforest") == "VIEW"  # of Spark's scores, not a copy
    monkeypatch.undo()  # engine duckdb: DuckDB scores
    train_detector(ws, ws.root / "detectors" / "iforest.yaml", engine="duckdb")
    assert _held(ws, "scores_iforest") == want and _kind(ws, "scores_iforest") == "BASE TABLE"


def test_train_on_spark_keeps_the_live_scores_until_its_own_are_live(tmp_path, spark, monkeypatch):
    """After a load on Spark, DuckDB's score table is a view of Spark's scores. `train --engine spark` of a changed
    model writes its scores beside them (the live view reads the old ones until the swap: a training that fails
    leaves them whole), then its own view is live; the backtests on Spark after it read them, scoring nothing."""
    from riskconsole.detectors import train_detector
    from riskconsole.session import Session

    ws = write_workspace(tmp_path / "ws", random_events(n=400), strategies={"s": {
        "name": "s", "rules": [{"name": "odd", "when": "iforest >= 0.6", "action": "review"}]}})
    _trained_iforest(ws)
    ours = load(ws, engine="spark", spark=spark)
    scores = ws.root / "data" / "spark" / ours.version / "scores"
    live = _held(ws, "scores_iforest")
    spec = ws.root / "detectors" / "iforest.yaml"
    spec.write_text(spec.read_text().replace("n_estimators: 25", "n_estimators: 30"))  # another model: other scores

    def fails(*args, **kwargs):
        raise RuntimeError("the card cannot be written")

    monkeypatch.setattr("riskconsole.detectors.training._write_card", fails)
    with pytest.raises(RuntimeError):
        train_detector(ws, spec, engine="spark")
    monkeypatch.undo()
    assert _held(ws, "scores_iforest") == live and _kind(ws, "scores_iforest") == "VIEW"
    train_detector(ws, spec, engine="spark")
    trained = _held(ws, "scores_iforest")
    assert _kind(ws, "scores_iforest") == "VIEW" and trained != live and len(trained[1]) == 400
    written = {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")}
    with Session(ws, engine="spark", spark=spark) as session:
        assert session.backtest(ws.strategies_dir / "s.yaml").report["overall"]["flagged"] >= 0
    now = {p: p.stat().st_mtime_ns for p in scores.rglob("*.parquet")}
    assert now and all(written.get(p) == t for p, t in now.items())  # nothing scored again
    assert len([p for p in scores.iterdir() if p.name.startswith("scores_iforest-")]) == 1  # the old ones removed
    assert _held(ws, "scores_iforest") == trained


def _kind(ws: Workspace, table: str) -> str:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?",
                           [table]).fetchall()[0][0]
    finally:
        con.close()


def _held(ws: Workspace, table: str) -> tuple[list, list]:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return con.execute(f"DESCRIBE {table}").fetchall(), con.execute(f"SELECT * FROM {table}").fetchall()
    finally:
        con.close()


def _counts(ws: Workspace, *tables: str) -> list[int]:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return [con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables]
    finally:
        con.close()


def test_a_load_on_spark_builds_and_scores_apart_from_the_live_versions_views(tmp_path, spark, monkeypatch):
    """The console's engines point the shared Spark session's views (`events`, `frame`, ...) at the live data
    version while a load stages a new one in the same process: the load builds and scores in a session of its own
    (`spark.isolated`), so a live engine re-pointing the shared views meanwhile (an entity frame's export, a
    backtest's query) changes neither the new frame nor its scores."""
    from sqlglot import exp

    from riskconsole.engines import spark as spark_engine
    from riskconsole.strategy import frame_of

    ws = write_workspace(tmp_path / "ws", random_events(n=400))
    _trained_iforest(ws)
    load(ws, engine="spark", spark=spark)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    live = spark_engine.SparkEngine(ws, ws.dataset(), con, spark)
    live.prepare(frame_of(con, ws.dataset()), con)
    con.close()
    random_events(n=150, seed=2).to_csv(ws.root / "data" / "events.csv", index=False)
    exports, scoring, seen = spark_engine.SparkEngine.register_exports, spark_engine.score_frame, []

    def register_exports(self):  # the new version's export views, then the live one's, as a console's would
        exports(self)
        if self is not live:
            exports(live)
            seen.append("exports")

    def score_frame(session, *args):  # inside the new version's scoring: a live backtest's query re-points `frame`
        if session is not spark:
            assert live.arrow(exp.select("count(*) AS n").from_("frame"), "s").to_pylist() == [{"n": 400}]
            seen.append("query")
        return scoring(session, *args)

    monkeypatch.setattr(spark_engine.SparkEngine, "register_exports", register_exports)
    monkeypatch.setattr(spark_engine, "score_frame", score_frame)
    result = load(ws, engine="spark", spark=spark)
    assert seen == ["exports", "query"] and result.rescored == {"iforest": 150}
    assert _counts(ws, "events", "frame", "scores_iforest",
                   "scores_iforest s SEMI JOIN frame f ON s._pos = f._pos") == [150] * 4
    # the shared session's view still names the version live before this load (whose folder the load then removed)
    assert {f.split("/data/spark/")[1].split("/")[0] for f in spark.table("frame").inputFiles()} == {live.version}


def test_a_load_is_live_even_when_the_old_versions_folders_cannot_be_removed(tmp_path, spark, monkeypatch):
    """Removing the earlier versions' folders comes after the new load went live: its failure is a warning of the
    load, not a failed load (which would say nothing changed)."""
    from riskconsole.engines import spark as spark_engine

    ws = write_workspace(tmp_path / "ws", random_events(n=60))
    first = load(ws, engine="spark", spark=spark)

    def boom(*args, **kwargs):
        raise OSError("permission denied")

    monkeypatch.setattr(spark_engine, "remove_versions", boom)
    second = load(ws, engine="spark", spark=spark)
    assert second.version != first.version and second.loaded == first.loaded
    assert any("earlier data versions' folders" in w and "permission denied" in w for w in second.warnings)
    assert sorted(p.name for p in (ws.root / "data" / "spark").iterdir()) == sorted([first.version, second.version])


def test_streams_and_tables_load_on_spark_as_on_duckdb(tmp_path, spark):
    """A stream (renamed column, NULL keys, a bad and a blank time) and tables (as-of with a missing key and a
    repeated version, plain, range): every table and quarantine DuckDB holds after a load on engine spark is a DuckDB
    load's (a stream's rows as a multiset: ties in time have no order); the frame, built on Spark by the load and read
    back, has DuckDB's columns and types and a DuckDB load's values (floats to 1e-9); the Spark engine's export keeps
    Spark's Parquet."""
    import test_streams
    import test_tables
    from riskconsole.session import Session

    events = test_tables.make_events(n=120)
    ws = test_tables.workspace(tmp_path / "ws", events, test_tables.make_merchants(events),
                               features=[*test_tables.FEATURES[:3], *test_streams.FEATURES[:3]])
    dataset = yaml.safe_load(ws.dataset_path.read_text())
    dataset["streams"] = {"logins": test_streams.STREAM}
    ws.dataset_path.write_text(yaml.safe_dump(dataset))
    data = ws.root / "data"
    test_streams.make_logins(events, n=150).to_csv(data / "logins.csv", index=False)
    with open(data / "logins.csv", "a") as out:
        out.write("3,2,yesterday,1,5.0\n4,2, ,0,1.5\n")
    with open(data / "merchants.csv", "a") as out:
        out.write(",toys,5.0,2026-03-01 00:00:00\n")
        out.write(open(data / "merchants.csv").read().splitlines()[1] + "\n")  # a version repeated
    tables = ["events", "quarantine", "stream_logins", "quarantine_logins", "table_merchants", "quarantine_merchants",
              "table_devices", "table_ip_ranges", "frame"]

    def held() -> dict[str, tuple]:
        con = duckdb.connect(str(ws.db_path), read_only=True)
        try:
            rows = {t: (con.execute(f"DESCRIBE {t}").fetchall(), con.execute(f"SELECT * FROM {t}").fetchall())
                    for t in tables}
        finally:
            con.close()
        rows["stream_logins"] = (rows["stream_logins"][0], sorted(rows["stream_logins"][1], key=repr))
        return rows

    duck = load(ws)
    want = held()
    assert duck.sources["streams.logins"]["quarantined"] == 2 and duck.sources["tables.merchants"]["quarantined"] == 2
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    got = held()
    (types, rows), (want_types, want_rows) = got.pop("frame"), want.pop("frame")
    assert types == want_types
    assert_same([list(r) for r in rows], [list(r) for r in want_rows])  # sums on Spark: running totals
    assert got == want
    loaded = json.loads((ws.root / "data" / "spark" / ours.version / "_loaded.json").read_text())["tables"]
    assert sorted(loaded) == ["events", "stream_logins", "table_devices", "table_ip_ranges", "table_merchants"]
    (data / "logins.csv").write_text("uid,device_id,login_time,success,spend\n1,1,not a time,1,2.0\n")
    with pytest.raises(RiskConsoleError, match="streams.logins: no loadable rows") as on_duckdb:
        load(ws)
    with pytest.raises(RiskConsoleError, match="streams.logins: no loadable rows") as on_spark:  # after the events
        load(ws, engine="spark", spark=spark)  # were written: DuckDB's line, the warning's fix included
    assert str(on_spark.value) == str(on_duckdb.value) and "set time_format: to the layout" in str(on_spark.value)
    assert sorted(p.name for p in (ws.root / "data" / "spark").iterdir()) == [ours.version]  # nothing left behind
    with Session(ws, engine="spark", spark=spark) as session:  # the export writes nothing the load wrote
        session.spark_engine(frame=False).export()
    exported = json.loads((ws.root / "data" / "spark" / ours.version / "_exported.json").read_text())
    assert exported["version"] == ours.version and sorted(p.name for p in (ws.root / "data" / "spark").iterdir()) == [
        ours.version]


# ------------------------------------------------------------------ JSON Lines


@pytest.fixture
def small_splits(spark):
    """Spark reads text files in blocks of 1,500 bytes (three for the larger file) during the test."""
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    before = {k: spark.conf.get(k) for k in keys}
    for key in keys:
        spark.conf.set(key, "1500")
    yield
    for key, value in before.items():
        spark.conf.set(key, value)


def _records(rows: list[str]) -> list[dict]:
    """The CSV rows above as JSON objects: numbers where the text is one, nested values, a mixed column."""
    import csv
    import io

    out = []
    for i, record in enumerate(csv.DictReader(io.StringIO(HEADER + "\n".join(rows) + "\n"))):
        record = {k: (v if v != "" else None) for k, v in record.items()}
        for key in ("is_fraud", "amount", "user_id"):
            try:
                record[key] = json.loads(record[key])
            except (TypeError, ValueError):
                pass
        record["meta"] = {"k": i, "tags": ["a", "b"][: i % 3]}  # a struct with a list
        record["note"] = ["text", {"n": i}, None, 7][i % 4]  # strings, objects, nulls, numbers: DuckDB's JSON
        out.append(record)
    return out


def _jsonl(records: list[dict], bom: bool = False, crlf: bool = False, blanks: bool = False) -> bytes:
    lines = [json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(records)]
    if blanks:  # blank and whitespace-only lines, which DuckDB skips
        lines = [lines[0], "", *lines[1:3], "  \t ", *lines[3:], ""]
    text = "\n".join(lines) + "\n"
    return (("\ufeff" if bom else "") + (text.replace("\n", "\r\n") if crlf else text)).encode()


def test_messy_json_lines_load_on_spark_as_on_duckdb(tmp_path, spark, small_splits):
    """JSON Lines in two files — a BOM, CRLF, blank lines, nested values (a struct holding a list, a column mixing
    strings, objects and numbers that DuckDB reads as JSON), a fee DuckDB types BIGINT in one file and DOUBLE in
    the other, user ids numbers in one and text in the other, every rule of the CSV test: the loaded rows, the
    quarantine (row for row, in order), counts, reasons and warnings are DuckDB's. Spark splits each file into
    blocks of 1,500 bytes (`small_splits`), so rows are numbered across blocks and lines cut by a block edge.
    `load --engine spark` then leaves DuckDB's events, quarantine, frame and quarantine.csv as a DuckDB load."""
    first = [{**r, "fee": i} for i, r in enumerate(_records(MESSY[:-1]))]  # BIGINT here, DOUBLE over both files
    second = [{**r, "fee": 0.5, "user_id": str(r["user_id"])} for r in _records(SECOND)]
    ws = _files(tmp_path / "ws", {"a.jsonl": _jsonl(first, bom=True, blanks=True),  # a name Spark would glob:
                                  "b [2] ü.jsonl": _jsonl(second, crlf=True, blanks=True)})  # read as itself
    types = check_dataset(ws).types
    assert (types["fee"], types["amount"], types["user_id"], types["note"]) == ("DOUBLE", "JSON", "JSON", "JSON")
    assert types["meta"] == "STRUCT(k BIGINT, tags VARCHAR[])"
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded, len(duck.warnings)) == (26, 10, 4) and duck.reasons["duplicate id"] == 1
    want, csv = _tables(ws), (ws.root / "data" / "quarantine.csv").read_bytes()
    # the whole load: DuckDB's tables read from Spark's Parquet
    ours = load(ws, engine="spark", spark=spark, accept_quarantine=True)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _tables(ws) == want and (ws.root / "data" / "quarantine.csv").read_bytes() == csv
    assert _kind(ws, "quarantine") == "VIEW"  # of Spark's files, in source order as DuckDB's table


def test_json_arrays_and_objects_over_several_lines_load_on_spark_as_on_duckdb(tmp_path, spark, monkeypatch):
    """Files that are not JSON Lines — a pretty-printed JSON array with CRLF, objects written over several lines side
    by side after a BOM — are each read whole by one task and parsed by DuckDB's `read_json` as DuckDB's load parses
    them, and the JSON Lines file beside them line by line (not held whole: before, every file of such a source
    was; its lines of form feeds and vertical tabs are blank, as DuckDB skips them): the same rows, row numbers
    (over all files), quarantine, reasons and warnings. A file DuckDB refuses fails the load naming it."""
    from riskconsole.engines import spark_json

    read_whole, held = spark_json._read_whole, []

    def recorded(spark, part, paths, *rest):
        held.extend(paths)
        return read_whole(spark, part, paths, *rest)

    monkeypatch.setattr(spark_json, "_read_whole", recorded)
    records = _records(MESSY[:-1])
    array = json.dumps(records[:9], indent=2).replace("\n", "\r\n")
    spread = "\n".join(json.dumps(r, indent=1) for r in records[9:18]) + "\n"
    second = [{**r, "user_id": str(r["user_id"])} for r in _records(SECOND)]
    ws = _files(tmp_path / "ws", {"a.json": array.encode(), "b [1].json": ("\ufeff" + spread).encode(),
                                  "c.json": _jsonl(records[18:] + second, blanks=True) + b"\x0c\n \x0b\n"})
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded) == (26, 10) and duck.reasons["duplicate id"] == 1
    assert sorted(f.rsplit("/", 1)[-1] for f in held) == ["a.json", "b [1].json"]
    checked = check_dataset(ws)
    (ws.root / "data" / "in" / "b [1].json").write_text(spread.replace('"event_id":', '"event_id": oops', 1))
    with pytest.raises(RiskConsoleError, match=r"b \[1\].json cannot be read as DuckDB's load reads it \(.*\); "
                                               "DuckDB's load refuses this file too: fix it$"):
        load_part(spark, checked, checked.parts[0])


@pytest.mark.parametrize("line, message", [
    ('{"event_id": "x", "ts": oops}', "line 3 cannot be read as DuckDB's load reads it (Invalid Input Error: "
                                      "Malformed JSON: unexpected character.)"),
    ('{"event_id": "x"} {"event_id": "y"}', "line 3 holds 2 JSON objects: engine spark reads one object per line"),
    ('{"event_id": "x", "meta": 7}', "line 20481 cannot be read as DuckDB's load reads it (Invalid Input Error: "
                                     "JSON transform error: Expected OBJECT, but got UBIGINT: 7)"),
])
def test_a_json_line_duckdb_refuses_fails_the_load_on_spark_too(tmp_path, spark, line, message):
    """A line DuckDB's load cannot read fails the load on both engines, Spark's error naming the file and line: a
    line that is not JSON, two objects on one line (in a file DuckDB reads as JSON Lines), or a nested value its
    column's type cannot hold (after the 20,480 lines DuckDB samples for the types; a scalar is read as its text and
    quarantined instead)."""
    from riskconsole import ingest

    n = 20_481 if "transform" in message else 3
    records = [{"event_id": f"e{i}", "ts": "2026-03-01 10:00:00", "is_fraud": 0, "label_ts": None, "amount": 1,
                "user_id": 1, "device_id": 1, "meta": {"k": 1}} for i in range(n)]
    ws = _files(tmp_path / "ws", {"a.jsonl": _jsonl(records[:1]), "b.jsonl": _jsonl(records[1:])})
    path = ws.root / "data" / "in" / "b.jsonl"
    if n > 3:  # DuckDB sampled the lines before this one
        path.write_bytes(path.read_bytes() + line.encode() + b"\n")
    checked = check_dataset(ws)
    if n == 3:  # DuckDB sniffs its types from the lines before (a bad line in the sample fails the check itself)
        path.write_bytes(path.read_bytes() + line.encode() + b"\n")
    with pytest.raises(RiskConsoleError) as info:
        load_part(spark, checked, checked.parts[0])
    assert str(info.value).startswith(f"data/dataset.yaml: source 'data/in/*.jsonl': {path} {message}")
    assert "\n" not in str(info.value)
    con = duckdb.connect()
    try:
        with pytest.raises(duckdb.Error):
            ingest.load_part(con, checked, checked.parts[0], print)
    finally:
        con.close()


def test_json_values_after_the_sampled_rows_are_quarantined_on_spark_as_on_duckdb(tmp_path, spark):
    """Values after the rows DuckDB samples that do not fit their column's type (a fraction and words in a BIGINT
    column, a word in a BOOLEAN column) are quarantined; a number written as a string, 1.0 as a BOOLEAN, a later
    zone, values after a sample of nulls and a key first seen late loaded: on Spark row for row as on DuckDB
    (`tests/test_ingest.py` has the reasons)."""
    ws = _files(tmp_path / "ws", {"a.jsonl": b""})
    late_json_lines(ws.root / "data" / "in" / "a.jsonl")
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert (duck.read, duck.loaded, len(duck.warnings)) == (20_510, 20_506, 1)


def test_validate_engine_spark_checks_a_dataset_and_a_strategy_for_spark(tmp_path, spark, capsys):
    """`validate --engine spark` says a dataset Spark reads as DuckDB does loads there, and renders a strategy's
    rules (a list among them) for Spark without starting a session; without the flag it says nothing of Spark."""
    from riskconsole.cli import main

    ws = _files(tmp_path / "ws", {"a.jsonl": _jsonl(_records(MESSY[:3]))})
    (ws.root / "lists").mkdir()
    (ws.root / "lists" / "vips.csv").write_text("value\n1\n2\n")
    (ws.root / "strategies").mkdir()
    strategy = {"name": "s", "rules": [{"name": "vip", "when": "user_id IN LIST vips AND amount > 5",
                                        "action": "review"}]}
    (ws.root / "strategies" / "s.yaml").write_text(yaml.safe_dump(strategy))
    files = [str(ws.dataset_path), str(ws.root / "strategies" / "s.yaml")]
    assert main(["validate", "--engine", "spark", "--workspace", str(ws.root), *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("3 features, loads on engine spark") and out[1].endswith(", renders for engine spark")
    assert main(["validate", "--workspace", str(ws.root), *files]) == 0
    assert "spark" not in capsys.readouterr().out


# ------------------------------------------------------------------ spark.store: the Parquet elsewhere


@pytest.mark.parametrize("remote", [False, True], ids=["file-uri", "file-uri-as-an-object-store"])
def test_a_store_outside_the_workspace_holds_the_spark_data(tmp_path, spark, remote, monkeypatch):
    """`spark.store` (a file:// URI, or an absolute path: the same folder) holds every data version's folder instead of data/spark/:
    a load on Spark writes the events there, the frame is built there (its marker written last) and a backtest on
    Spark over it gives DuckDB's report; a version folder whose marker is gone is built again, never reused; a new
    load's export removes the old version, and only folders named like a data version. `remote`: the store is taken
    for one this machine cannot open as a folder (an object store), so DuckDB's side — the export, reading a Spark
    load's tables back — goes through local copies, and every question through Hadoop's FileSystem API."""
    from riskconsole.engines import spark_store
    from riskconsole.session import Session

    store = tmp_path / "shared" / "riskconsole"
    assert spark_store.Store(lambda: None, str(store)).local == store  # a path: the folder its file:// URI names
    assert spark_store.Store(lambda: None, f"file://{store}").local == store
    if remote:
        monkeypatch.setattr(spark_store, "_local_path", lambda base: None)
    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY), "b.csv": _csv(SECOND)},
                spark={"store": f"file://{store}"})
    ws.strategies_dir.mkdir()
    (ws.strategies_dir / "s.yaml").write_text(yaml.safe_dump(STRATEGY))
    load(ws, accept_quarantine=True)  # most of MESSY is quarantined on purpose
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "s.yaml").report
    (store / "notes").mkdir(parents=True)  # not a data version: never removed
    first = load(ws, engine="spark", spark=spark, accept_quarantine=True).version
    assert sorted(p.name for p in store.iterdir()) == [first, "notes"]
    assert (store / first / "_loaded.json").exists() and (store / first / "events").is_dir()
    assert not (ws.root / "data" / "spark").exists()
    with Session(ws, engine="spark", spark=spark) as session:
        got = session.backtest(ws.strategies_dir / "s.yaml").report
        where = f"file://{store}/{first}" if remote else str(store / first)  # file:// on this machine: its path
        assert session.spark_engine().where == where
    assert_same(json.loads(json.dumps(got, default=str)), json.loads(json.dumps(report, default=str)))
    assert (store / first / "_riskconsole.json").exists() and (store / first / "frame").is_dir()
    (store / first / "_riskconsole.json").unlink()  # as if the frame's build had stopped half-way
    with Session(ws, engine="spark", spark=spark) as session:
        assert "frame" in session.spark_engine().seconds  # built again
    # a DuckDB load: the engine exports it to the store
    second = load(ws, spark=spark, accept_quarantine=True).version
    with Session(ws, engine="spark", spark=spark) as session, session.cursor() as cur:
        session.spark_engine(frame=False).export(cur)
    assert sorted(p.name for p in store.iterdir()) == sorted([second, "notes"])
    assert (store / second / "_exported.json").exists() and (store / second / "events").is_dir()


@pytest.mark.parametrize("store", ["data/spark-elsewhere", "file://", "file://host/x", "s3a:/bucket", "my store://x"])
def test_a_store_that_is_not_an_absolute_path_or_a_uri_is_one_line(tmp_path, store, capsys):
    from riskconsole.cli import main

    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY[:2])}, spark={"store": store})
    assert main(["validate", "--workspace", str(ws.root), str(ws.dataset_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: data/dataset.yaml: spark.store: '{store}' is neither an absolute path nor a URI with a "
                   "scheme and a location: write an absolute path (/mnt/shared/riskconsole) or a URI "
                   "(file:///mnt/shared/riskconsole, s3a://bucket/prefix)")


@pytest.mark.parametrize("settings, text", [
    ({"master": "lokal[2]"}, "spark.master: 'lokal[2]' is not a Spark master URL: write local[*] (every core of this "
     "machine), local[2], spark://host:7077, yarn or k8s://https://host:443"),
    ({"master": "local[two]"}, "spark.master: 'local[two]' is not a Spark master URL: write local[*] (every core of "
     "this machine), local[2], spark://host:7077, yarn or k8s://https://host:443"),
    ({"driver_memory": "2 GB"}, "spark.driver_memory: '2 GB' is not a JVM memory size: write a whole number and a "
     "unit, e.g. 8g or 512m (no space, no 'b')"),
    ({"driver_memory": "2gb"}, "spark.driver_memory: '2gb' is not a JVM memory size: write a whole number and a "
     "unit, e.g. 8g or 512m (no space, no 'b')")])
def test_a_master_or_driver_memory_spark_cannot_take_is_one_line_before_java_starts(tmp_path, settings, text,
                                                                                  capsys):
    """Spark's launcher refused these with the JVM's stack trace (`Could not parse Master URL`, `Invalid maximum heap
    size: -Xmx2 GB`) and a PySpark traceback; validate passed them."""
    from riskconsole.cli import main
    from riskconsole.config import SparkSettings

    for good in ("local", "local[*]", "local[2]", "local[2, 3]", "local-cluster[2, 1, 1024]", "yarn",
                 "spark://h1:7077,h2:7077", "k8s://https://k8s.example:443"):
        assert SparkSettings(master=good).master == good
    assert SparkSettings(driver_memory="512m").driver_memory == "512m"
    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY[:2])}, spark=settings)
    for args in (["validate", "--workspace", str(ws.root), str(ws.dataset_path)],
                 ["load", "--workspace", str(ws.root), "--engine", "spark"]):
        assert main(args) == 1
        assert capsys.readouterr().err.strip() == f"error: data/dataset.yaml: {text}"


ONE_VALUE = "but a Spark setting is one value (text, a number or true/false)"


@pytest.mark.parametrize("conf, text", [
    ({"spark.jars.packages": ["org.apache.hadoop:hadoop-aws:3.4.1", "com.x:y:1"], "spark.sql.shuffle.partitions": 4},
     f"'spark.jars.packages' is a list, {ONE_VALUE}: write the list as one comma-separated string, "
     "spark.jars.packages: 'org.apache.hadoop:hadoop-aws:3.4.1,com.x:y:1'"),
    ({"spark": {"sql": {"shuffle.partitions": 64}}},
     f"'spark' is a mapping, {ONE_VALUE}: write each setting on a line of its own by its full name, e.g. "
     "spark.sql.shuffle.partitions: 64"),
    ({"spark.a": [{"b": 1}], "spark.b": None, "spark.c": {}},
     f"'spark.a' is a list, {ONE_VALUE}: write it as one string (Spark's lists are comma-separated) (more to fix: "
     "'spark.b', 'spark.c')"),
    ({"spark.executor.memory": None}, "'spark.executor.memory' has no value: give it one (text, a number or "
     "true/false), or remove it"),
    ({1: "x"}, "'1' is not a Spark setting's name: write the full name, e.g. spark.sql.shuffle.partitions: 64"),
    ({"executor_memory": "4g"}, "'executor_memory' is not a Spark setting's name: write the full name, e.g. "
     "spark.sql.shuffle.partitions: 64"),
    (["spark.sql.shuffle.partitions=64"], "write Spark settings as a mapping of names to values, e.g. "
     "conf: {spark.sql.shuffle.partitions: 64}")])
def test_a_spark_conf_value_that_is_not_one_value_is_one_line_naming_the_key(tmp_path, conf, text, capsys):
    """A list, a mapping or nothing as a `spark.conf` value (or conf not a mapping) is refused by validate and by a
    load on Spark in one line naming the key and how to write it, before Java starts: pydantic's text named a member
    of the values' union per problem (`spark.conf.spark.jars.packages.str: Input should be a valid string (+11
    more)`). One value of each kind is kept as written."""
    from riskconsole.cli import main
    from riskconsole.config import SparkSettings

    kept = {"spark.sql.shuffle.partitions": 64, "spark.ui.enabled": False, "spark.memory.fraction": 0.5,
            "spark.jars.packages": "a:b:1,c:d:2"}
    assert SparkSettings(conf=kept).conf == kept
    ws = _files(tmp_path / "ws", {"a.csv": _csv(MESSY[:2])})
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "spark": {"conf": conf}}))  # a number as a key: yaml's own
    for args in (["validate", "--workspace", str(ws.root), str(ws.dataset_path)],
                 ["load", "--workspace", str(ws.root), "--engine", "spark"]):
        assert main(args) == 1
        assert capsys.readouterr().err.strip() == f"error: data/dataset.yaml: spark.conf: {text}"


def test_bad_spark_connect_settings_get_one_line_before_any_spark_starts(tmp_path, capsys):
    """`spark.remote` is a Connect URL or local[N]; not beside spark.master; no driver memory for a server started
    elsewhere: one line each, from validate and from a load on Spark alike, and a URL's token is never shown."""
    from riskconsole.cli import main
    from riskconsole.config import SparkSettings

    remote = SparkSettings(remote="sc://spark.example:15002/;token=abc", store="s3a://bucket/riskconsole")
    assert remote.target == "connect sc://spark.example:15002"
    assert SparkSettings(remote="local[2]", driver_memory="2g").connect
    assert SparkSettings(remote="sc://localhost").server == ("localhost", 15002)
    url = ("is not a Spark Connect URL: write sc://host:15002 (a Connect server; parameters after a slash, "
           "sc://host:15002/;token=...), or local[2] for one PySpark starts on this machine")
    cases = [({"remote": "http://spark:15002/;token=s3cret"}, f"spark.remote: 'http://spark:15002' {url}"),
             ({"remote": "sc://spark:15002;token=s3cret"}, f"spark.remote: 'sc://spark:15002' {url}"),  # PySpark would
             ({"remote": "sc://spark:15002/;token=s3cret=="}, f"spark.remote: 'sc://spark:15002' {url}"),  # print it
             ({"remote": "sc://spark.example:15002/;token=s3cret"},
              "spark: spark.remote sc://spark.example:15002: a Connect server on another machine cannot see this "
              "workspace's data/spark/: set spark.store to storage both reach (s3a://bucket/prefix, or a shared "
              "mount file:///mnt/shared/riskconsole)"),
             ({"remote": "sc://h:15002", "master": "local[2]"},
              "spark: set spark.master (riskconsole is the Spark driver) or spark.remote (a Spark Connect server is), "
              "not both"),
             ({"remote": "sc://h:15002", "driver_memory": "4g"},
              "spark: spark.driver_memory: a Spark Connect server's driver memory is set where the server starts "
              "(spark.driver.memory of its start-connect-server.sh), not by a client: remove it")]
    for i, (spark, text) in enumerate(cases):
        ws = _files(tmp_path / f"ws{i}", {"a.csv": _csv(MESSY[:2])}, spark=spark)
        for args in (["validate", "--workspace", str(ws.root), str(ws.dataset_path)],
                     ["load", "--workspace", str(ws.root), "--engine", "spark"]):
            assert main(args) == 1
            err = capsys.readouterr().err.strip()
            assert err == f"error: data/dataset.yaml: {text}" and "s3cret" not in err, err


@pytest.mark.parametrize("remote", [False, True], ids=["path", "file-uri-as-an-object-store"])
def test_a_connect_clients_store_answers_as_hadoops_does(tmp_path, spark, remote, monkeypatch):
    """The store of a Spark Connect client (pyarrow's file systems, no JVM: its session is never asked for) gives
    the Hadoop FileSystem store's answers on the same folders — markers written in new folders and read, missing
    ones, listings, removals — and, taken for an object store, copies DuckDB's local folders in and out as it does."""
    from riskconsole.engines import spark_store

    if remote:
        monkeypatch.setattr(spark_store, "_local_path", lambda base: None)

    def no_session():
        raise AssertionError("a Connect client's store asked for the Spark session")

    stores = {}
    for connect in (False, True):
        base = tmp_path / ("connect" if connect else "hadoop")
        stores[connect] = spark_store.Store(no_session if connect else lambda: spark,
                                            f"file://{base}" if remote else str(base), connect)
    answers = {}
    for connect, store in stores.items():
        got = []
        store.write_text("v1", "deep", "_done.json", text='{"ü": 1}')
        store.write_text("v2", "_done.json", text="first")
        store.write_text("v2", "_done.json", text="second")  # overwritten
        got += [store.exists("v1"), store.exists("v1", "deep", "_done.json"), store.exists("v3"),
                store.children(), store.children("v1"), store.children("v3"),
                store.read_text("v1", "deep", "_done.json"), store.read_text("v2", "_done.json"),
                store.read_text("v2", "missing.json")]
        with store.writing("v1", "events") as folder:
            (folder / "day=1").mkdir(parents=True)
            (folder / "day=1" / "part.parquet").write_bytes(b"PAR1")
        with store.reading("v1", "events") as folder:
            got.append(sorted(str(p.relative_to(folder)) for p in folder.rglob("*")))
        with store.reading("v9") as folder:
            got.append(folder.exists() and any(folder.iterdir()))
        store.remove("v1")
        store.remove("v7")  # nothing there: nothing happens
        got += [store.exists("v1"), store.children(), store.child("v2").read_text("_done.json")]
        answers[connect] = got
    assert answers[True] == answers[False]
    assert answers[True][:9] == [True, True, False, ["v1", "v2"], ["deep"], [], '{"ü": 1}', "second", None]


def test_a_connect_client_spells_a_files_path_as_spark_does(spark, tmp_path):
    """A load tells its rows' files apart by Spark's `_metadata.file_path`. A Spark Connect client has no JVM to ask
    how that spells a local file: `hadoop_spelling` gives Spark's own spelling (read back from `_metadata`) for
    names with spaces, escapes, URI and glob punctuation, non-ASCII letters, control and space characters; a path is
    read as itself, not as a glob (`br[1].csv` is not `br1.csv`)."""
    from types import SimpleNamespace

    from riskconsole.engines.spark_read import _file_paths, hadoop_spelling, literal

    folder = tmp_path / "a b" / "ü"
    folder.mkdir(parents=True)
    names = ["ev ü.csv", "a%20b.csv", "h#1.csv", "q?x.csv", "br[1].csv", "br1.csv", "{a,b}*.csv", "p+&=;,@!$'()~.csv", "😀日本.csv", "tab\tx.csv",
             "pct%.csv", "nbsp\u00a0x.csv", "del\x7fx.csv", "plain.csv"]
    for name in names:
        (folder / name).write_text("a,b\n1,2\n")
    files = sorted(str(folder / name) for name in names)
    read = spark.read.option("header", True).csv([literal(f) for f in files])  # as a load reads them
    spelled = {r[0] for r in read.select("_metadata.file_path").distinct().collect()}
    assert len(spelled) == len(names)
    assert {hadoop_spelling(f) for f in files} == spelled
    assert [p for p, _, _ in _file_paths(spark, SimpleNamespace(files=files, remote=False))] == [
        hadoop_spelling(f) for f in files]
    from riskconsole.engines.spark_sources import SparkSources  # the same folder as a source at a URI: Spark's
    listed = SparkSources(spark).files(f"file://{folder}")  # listing gives each file as it is and as `_metadata`
    assert [path for path, _ in listed] == sorted(f"file://{f}" for f in files)  # spells it
    assert {how for _, how in listed} == spelled
    read = spark.read.option("header", True).csv([literal(path) for path, _ in listed])
    assert {r[0] for r in read.select("_metadata.file_path").distinct().collect()} == spelled
    assert hadoop_spelling("/tmp//x///y.csv/") == "file:/tmp/x/y.csv"
    hadoop, file = spark._jvm.org.apache.hadoop.fs.Path, spark._jvm.java.io.File  # a source outside the workspace
    for path in (f"{folder}/../ü/./ev ü.csv", "/tmp/a/../../b c.csv"):
        assert hadoop_spelling(path) == str(hadoop(file(path).toURI()).toUri().toString()), path


def test_a_load_removes_its_own_old_versions_only(tmp_path):
    """In the workspace's own data/spark/ its old versions go (the folder moves with the workspace: a marker naming
    a path that is gone is its own), not another workspace's whose spark.store points there; in a shared store only the versions this workspace wrote, and those
    without a marker (written before markers existed); a marker that cannot be read is left alone, and `claim`
    writes it again in a folder of its own. (Store questions through pyarrow's file system: no Spark needed.)"""
    from riskconsole.engines.spark import OWNER, claim, remove_versions
    from riskconsole.engines.spark_store import Store

    ws = Workspace(tmp_path / "moved")
    old, new = "a" * 32, "b" * 32
    own = Store(lambda: None, str(ws.root / "data" / "spark"), connect=True)
    other_ws = tmp_path / "other"
    other_ws.mkdir()
    own.child(old).write_text(OWNER, text=json.dumps({"workspace": "/where/it/was/before"}))
    own.child("c" * 32).write_text(OWNER, text=json.dumps({"workspace": str(other_ws)}))  # its spark.store is here
    claim(own.child(new), ws)
    remove_versions(own, keep=new, ws=ws)
    assert own.children() == ["b" * 32, "c" * 32]

    shared = Store(lambda: None, str(tmp_path / "shared"), connect=True)
    other, broken, legacy, mine = "c" * 32, "d" * 32, "e" * 32, "f" * 32
    shared.child(other).write_text(OWNER, text=json.dumps({"workspace": "/another/workspace"}))
    shared.child(broken).write_text(OWNER, text="")
    shared.child(legacy).write_text("_loaded.json", text="{}")
    for version in (mine, new):
        claim(shared.child(version), ws)
    shared.child("notes").write_text("x.txt", text="kept")
    remove_versions(shared, keep=new, ws=ws)
    assert shared.children() == sorted([other, broken, new, "notes"])
    claim(shared.child(broken), ws)
    assert json.loads(shared.read_text(broken, OWNER)) == {"workspace": str(ws.root.resolve())}


def test_a_csv_files_dialect_is_sniffed_once_until_the_file_changes(tmp_path, monkeypatch):
    """`check`, the load's `refusal` and `_read_csv` each ask a CSV file's dialect: DuckDB's sniffer reads an unchanged
    file once; a file rewritten (another size or modification time) is sniffed again."""
    import os

    from riskconsole.engines import spark_read

    sniffed = []
    real = spark_read._sniffed
    monkeypatch.setattr(spark_read, "_sniffed", lambda con, path: sniffed.append(path) or real(con, path))
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n")
    con = duckdb.connect()
    first = spark_read.csv_dialect(con, str(path))
    first["columns"].append("changed by a caller")
    assert spark_read.csv_dialect(con, str(path)) == {**first, "columns": ["a", "b"]} and len(sniffed) == 1
    path.write_text("a;b;c\n1;2;3\n")
    os.utime(path, ns=(1, 1))
    assert spark_read.csv_dialect(con, str(path))["sep"] == ";" and len(sniffed) == 2


@pytest.mark.parametrize("how", ["extra", "missing", "one over, its last empty"])
def test_a_ragged_csv_line_fails_the_load_on_spark_with_duckdbs_message(tmp_path, spark, how):
    """A line past the rows DuckDB sniffs with a field too many or too few (a `;` export with spaced names): Spark's
    read (mode FAILFAST) fails on it, and the load says what DuckDB's says, the file on this machine giving the line
    (tests/test_ragged.py); nothing changes."""
    import test_ragged

    ws = test_ragged._workspace(tmp_path / "ws")
    path = ws.root / "data" / "Orders Export.csv"
    row = test_ragged._line(29_999)
    fields = row.split(";")
    test_ragged._export(path, {30_001: row + ";surprise" if how == "extra" else row.rsplit(";", 1)[0]
                               if how == "missing" else ";".join(fields[:6] + ["Web"] + fields[6:-1]) + ";"})
    with pytest.raises(RiskConsoleError) as duck:
        load(ws, engine="duckdb")
    assert ": line 30001 has " in str(duck.value) and not ws.db_path.exists()
    checked = check_dataset(ws)
    with pytest.raises(RiskConsoleError) as ours:
        load_part(spark, checked, checked.parts[0])
    assert str(ours.value) == str(duck.value)
    with pytest.raises(RiskConsoleError) as loaded:
        load(ws, engine="spark", spark=spark)
    assert str(loaded.value) == str(duck.value) and not ws.db_path.exists()


def test_a_load_on_spark_failing_on_a_ragged_line_prints_only_its_error(tmp_path):
    """`riskconsole load` on Spark (its own process and JVM: a Python worker daemon's output goes to the terminal the
    JVM inherited, which only a process of its own shows) failing on a CSV line with a field too many: stderr is the
    JVM's one line, the progress line and riskconsole's error, DuckDB's message. Before, a Python worker whose socket
    Spark closed when the read failed printed a `BrokenPipeError` traceback from pyspark's daemon above the error
    (`engines/spark_daemon.py`)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import test_ragged
    from conftest import SPARK_TEST_CONF, _spark_skip_reason

    if _spark_skip_reason():
        pytest.skip(_spark_skip_reason())
    ws = test_ragged._workspace(tmp_path / "ws")
    test_ragged._export(ws.root / "data" / "Orders Export.csv", {30_001: test_ragged._line(29_999) + ";surprise"})
    with pytest.raises(RiskConsoleError) as duck:
        load(ws, engine="duckdb")
    spec = yaml.safe_load(ws.dataset_path.read_text())  # the test run's lean settings: one core, a small JVM
    spec["spark"] = {"master": "local[1]", "driver_memory": "512m",
                     "conf": {k: v for k, v in SPARK_TEST_CONF.items() if k != "spark.driver.memory"}}
    ws.dataset_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "riskconsole", "load", "--engine", "spark", "--workspace",
                           str(ws.root)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(root)})  # the workers import this riskconsole
    assert done.returncode == 1 and done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line != "WARNING: Using incubator modules: "
                                                                     "jdk.incubator.vector"]
    assert lines == ["spark: reading 1 file(s) of data/Orders Export.csv on local[1] ...", f"error: {duck.value}"]
    assert not ws.db_path.exists()


def test_many_files_of_one_folder_odd_names_included_load_on_spark_as_on_duckdb(tmp_path, spark, monkeypatch):
    """A source of many files in one folder is read by naming the folder (Spark looked each named file up, 25 s for
    12,000), its rows named by file as DuckDB names them, names with spaces, glob and URI punctuation and non-ASCII
    letters included; a folder holding a file of the source's suffix the source does not name (in a folder under
    it) is read file by file, as before."""
    from riskconsole.engines import spark_read

    monkeypatch.setattr(spark_read, "FOLDER_READ_MIN", 3)
    named = []  # every path the load hands Spark's reader
    real = spark_read.literal
    monkeypatch.setattr(spark_read, "literal", lambda path: named.append(path) or real(path))
    names = ["ev ü.csv", "a%20b.csv", "h#1.csv", "q?x.csv", "br[1].csv", "br1.csv", "{a,b}*.csv", "😀日本.csv", "p.csv"]
    files = {name: _csv([_row(10 * i + j, f"2026-03-0{1 + i % 5} 10:00:00") for j in range(3)] + (
        [_row(10 * i + 9, "bad time")] if i % 3 == 0 else [])) for i, name in enumerate(names)}
    ws = _files(tmp_path / "a b", files)
    folder, each = str(ws.root / "data" / "in"), {str(ws.root / "data" / "in" / name) for name in names}
    assert_spark_loads_like_duckdb(ws, spark)
    assert folder in named and not each & set(named)  # the folder, no file named
    (ws.root / "data" / "in" / "notes.txt").write_text("not a source file")  # another suffix: passed over
    named.clear()
    assert_spark_loads_like_duckdb(ws, spark)
    assert folder in named and not each & set(named)
    (ws.root / "data" / "in" / "old").mkdir()
    (ws.root / "data" / "in" / "old" / "x.csv").write_bytes(files["p.csv"])  # under it, not in `data/in/*.csv`
    named.clear()
    assert_spark_loads_like_duckdb(ws, spark)
    assert each <= set(named)  # Spark listed a file the source does not hold: each file named


def test_a_source_of_many_tiny_files_is_staged_in_fewer_tasks_as_on_duckdb(tmp_path, spark, monkeypatch):
    """Spark packs tiny files into scan partitions by a 4 MB cost per file opened, so 12,000 tiny files were 375
    tasks, each paying the load's DuckDB set-up: the staging runs in the tasks their bytes need (at most
    MAX_TASK_FILES files each), with the same rows and quarantine."""
    from riskconsole.engines import spark_load, spark_read

    monkeypatch.setattr(spark_read, "MAX_TASK_FILES", 8)
    files = {f"f{i:02d}.csv": _csv([_row(10 * i + j, "2026-03-01 10:00:00") for j in range(2)] + [
        _row(10 * i + 5, "2026-13-01")]) for i in range(40)}
    ws = _files(tmp_path / "ws", files)
    staged = []
    real = spark_load.stage
    monkeypatch.setattr(spark_load, "stage", lambda data, *a, **k: staged.append(data.rdd.getNumPartitions())
                        or real(data, *a, **k))
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "8m")  # 40 files x 4 MB opened: 20 scan partitions
    try:
        assert_spark_loads_like_duckdb(ws, spark)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)
    assert staged == [5]  # 40 files, 8 a task


def test_parquet_files_read_by_their_folder_load_as_named_ones(tmp_path, spark, monkeypatch):
    """The Parquet loads above (typed, text times, other types per file), their files read by naming their folder."""
    from riskconsole.engines import spark_read

    monkeypatch.setattr(spark_read, "FOLDER_READ_MIN", 1)
    test_parquet_loads_on_spark_as_on_duckdb(tmp_path / "named", spark)
    assert_spark_loads_like_duckdb(_files(tmp_path / "types", parquet_types_files("int then text then nulls")), spark)


def test_a_warning_counting_rows_of_an_earlier_reason_loads_on_spark_as_on_duckdb(tmp_path, spark):
    """Amounts grouped in thousands on rows whose time fails first: the warning's rows counted under another
    column's reason, and a time warning's suggestion naming two layouts, are Spark's too."""
    from test_ingest import grouped_and_late_rows

    ws = _files(tmp_path / "ws", {"a.csv": grouped_and_late_rows(17, 12).encode(),
                                  "b.csv": _csv([_row(2000 + i, f"0{1 + i}/03/2026 10:00") for i in range(9)])})
    duck = assert_spark_loads_like_duckdb(ws, spark)
    assert "(12 of them counted under another column's reason, tried first)" in duck.warnings[1]
    assert "try time_format: [ISO-8601, '%d.%m.%Y %H:%M', '%m/%d/%Y %H:%M'] in the dataset" in duck.warnings[0]
