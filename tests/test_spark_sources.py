"""Sources at a URI on engine spark (`source: s3a://…`, here `file://` URIs of folders outside the workspace, read
through Hadoop's file system as an object store would be; issue 15): listed and sampled through Spark, checked over
the samples before a row is read, loaded by Spark as the same files on this machine load on DuckDB.
"""

from __future__ import annotations

import posixpath

import duckdb
import pandas as pd
import pytest
import yaml

import test_spark_load as T
import test_streams
import test_tables
from riskconsole.cli import main
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.sources import NULL_TYPE, check_dataset
from riskconsole.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _at_uris(ws: Workspace, **sources: str) -> None:
    """The dataset's sources (`source` for the events, else a stream's or a table's name) as `file://` URIs."""
    spec = yaml.safe_load(ws.dataset_path.read_text())
    for name, uri in sources.items():
        place = spec if name == "source" else (spec.get("streams", {}).get(name) or spec["tables"][name])
        place["source"] = uri
    ws.dataset_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def _held(ws: Workspace, tables: list[str]) -> dict[str, tuple]:
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return {t: (con.execute(f"DESCRIBE {t}").fetchall(), con.execute(f"SELECT * FROM {t}").fetchall())
                for t in tables}
    finally:
        con.close()


def test_csv_files_at_a_uri_load_on_spark_as_the_same_files_load_on_duckdb(tmp_path, spark):
    """Two messy CSV files (a BOM, CRLF, a quoted line break, a repeated id; the second named with a space, `#`,
    `{}`, `[]` and a non-ASCII letter) read from a `file://` glob: the same counts, reasons, warnings, events and
    quarantine as DuckDB's load of them as local files; the quarantine names each file by its URI."""
    ws = T._files(tmp_path / "ws", {"a.csv": T._csv(T.MESSY, bom=True), "b {1} ü #[x].csv": T._csv(T.SECOND, crlf=True)},
                  features=[])  # what is read is the question: no feature to build
    duck = load(ws, accept_quarantine=True)  # most of MESSY is quarantined on purpose
    want = _held(ws, ["events", "quarantine"])
    folder = ws.root / "data" / "in"
    _at_uris(ws, source=f"file://{folder}/*.csv")
    ours = load(ws, engine="spark", spark=spark, accept_quarantine=True)
    assert (ours.read, ours.loaded, ours.reasons, ours.warnings) == (duck.read, duck.loaded, duck.reasons,
                                                                    duck.warnings)
    got = _held(ws, ["events", "quarantine"])
    assert got["events"] == want["events"]
    columns, rows = want["quarantine"]
    file = [c[0] for c in columns].index("file")
    assert got["quarantine"] == (columns, [(*r[:file], f"file://{r[file]}", *r[file + 1:]) for r in rows])
    assert {r[file] for r in got["quarantine"][1]} == {f"file://{folder}/a.csv", f"file://{folder}/b {{1}} ü #[x].csv"}


def test_streams_and_tables_at_uris_load_on_spark_as_on_duckdb(tmp_path, spark):
    """A JSON stream (an array in one file, JSON Lines in the other) and a Parquet table in a folder outside the
    workspace, a CSV table named by its folder
    (every file under it): the stream, the tables and the frame DuckDB holds after a load on Spark are a DuckDB load
    of the same files as local paths."""
    events = test_tables.make_events(n=120)
    ws = test_tables.workspace(tmp_path / "ws", events, test_tables.make_merchants(events),
                               features=[test_tables.FEATURES[0], test_streams.FEATURES[0]])
    outside = tmp_path / "bucket"
    (outside / "logins").mkdir(parents=True)
    (outside / "devices" / "part=1").mkdir(parents=True)
    logins = test_streams.make_logins(events, n=150)
    logins[:70].to_json(outside / "logins" / "a.json", orient="records", indent=1, date_format="iso")  # an array
    logins[70:].to_json(outside / "logins" / "b.json", orient="records", lines=True, date_format="iso")
    merchants = pd.read_csv(ws.root / "data" / "merchants.csv", parse_dates=["updated_at"])
    merchants.to_parquet(outside / "merchants.parquet", index=False)
    (ws.root / "data" / "devices.csv").rename(outside / "devices" / "part=1" / "devices.csv")
    (outside / "devices" / "_SUCCESS").write_text("")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    spec["streams"] = {"logins": {**test_streams.STREAM, "source": str(outside / "logins" / "*.json")}}
    spec["tables"]["merchants"]["source"] = str(outside / "merchants.parquet")
    spec["tables"]["devices"]["source"] = str(outside / "devices" / "part=1" / "devices.csv")
    ws.dataset_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    tables = ["events", "stream_logins", "quarantine_logins", "table_merchants", "table_devices", "frame"]
    duck = load(ws)
    want = _held(ws, tables)
    _at_uris(ws, logins=f"file://{outside}/logins/*.json", merchants=f"file://{outside}/merchants.parquet",
             devices=f"file://{outside}/devices")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    got = _held(ws, tables)
    (types, rows), (want_types, want_rows) = got.pop("frame"), want.pop("frame")
    assert types == want_types
    T.assert_same([list(r) for r in rows], [list(r) for r in want_rows])
    for both in (got, want):  # ties in time have no order
        both["stream_logins"] = (both["stream_logins"][0], sorted(both["stream_logins"][1], key=repr))
    assert got == want and len(got["stream_logins"][1]) == 150


def test_a_uri_source_is_checked_over_its_samples_then_over_every_row(tmp_path, spark, monkeypatch):
    """With one file sampled: a header-only first file still loads (the second's rows are found), and a production
    action no decision allows in the second file passes `validate` (its samples are clean) but fails the load on
    Spark naming each distinct value with its rows, leaving the live data as it was."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    header = "event_id,ts,is_fraud,label_ts,amount,user_id,device_id,prod_action\n"
    first = header + "e1,2026-03-01 10:00:00,0,,5,1,1,allow\n"
    ws = T._files(tmp_path / "ws", {"a.csv": header.encode(), "b.csv": first.replace("e1", "e2").encode()},
                  columns={**T.BASE_DATASET["columns"], "prod_action": "prod_action"}, features=[])
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.csv")
    checked = check_dataset(ws, engine="spark", spark=spark)
    assert list(checked.parts[0].samples) == [f"file://{ws.root}/data/in/a.csv"]
    assert load(ws, engine="spark", spark=spark).loaded == 1
    live = _held(ws, ["events"])
    (ws.root / "data" / "in" / "c.csv").write_text(header + "e3,2026-03-02 10:00:00,0,,5,1,1,deny\n"
                                                   "e4,2026-03-02 11:00:00,0,,5,1,1,deny\n")
    check_dataset(ws, engine="spark", spark=spark)  # the samples hold no bad value
    with pytest.raises(RiskConsoleError, match=r"column 'prod_action' holds 'deny' \(2 rows\); every row needs "
                                               r"what production decided: allow, review or block \(any case\), or a "
                                               r"word mapped under prod_action_values \(e.g. prod_action_values: "
                                               r"\{deny: block\}\)$"):
        load(ws, engine="spark", spark=spark)
    assert _held(ws, ["events"]) == live
    # every distinct value with its rows, the most frequent first, as DuckDB's check names them, a quarantined row's
    # too (ties by value, empty first)
    (ws.root / "data" / "in" / "c.csv").write_text(header + "e3,not a time,0,,5,1,1,nope\n"
                                                   "e4,2026-03-02 11:00:00,0,,5,1,1,deny\n"
                                                   "e5,2026-03-02 12:00:00,0,,5,1,1,\n"
                                                   "e6,2026-03-02 13:00:00,0,,5,1,1,deny\n")
    with pytest.raises(RiskConsoleError, match=r"column 'prod_action' holds 'deny' \(2 rows\), empty \(1 row\), "
                                               r"'nope' \(1 row\); .*\{deny: block\}\)$"):
        load(ws, engine="spark", spark=spark)
    # mapped, every row's word reads as its decision on Spark, as on DuckDB (test_outcomes): a no-break space around
    # a word trimmed as DuckDB trims it, a key lowered as DuckDB lowers ('İPTAL'); the suggestion keeps the mapping
    (ws.root / "data" / "in" / "c.csv").write_text(header + "e3,not a time,0,,5,1,1,nope\n"
                                                   "e4,2026-03-02 11:00:00,0,,5,1,1,deny\n"
                                                   "e5,2026-03-02 12:00:00,0,,5,1,1,\n"
                                                   "e6,2026-03-02 13:00:00,0,,5,1,1,deny\u00a0\n"
                                                   "e7,2026-03-02 14:00:00,0,,5,1,1,İPTAL\n", encoding="utf-8")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    mapping = {" DENY": "block", "nope": "review", "": "allow"}
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "prod_action_values": mapping}))
    with pytest.raises(RiskConsoleError, match=r"holds 'İPTAL' \(1 row\); .*\(e.g. prod_action_values: \{\"\": "
                                               r"allow, ' DENY': block, nope: review, İPTAL: block\} if 'İPTAL' means "
                                               r"block\)$"):
        load(ws, engine="spark", spark=spark)
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "prod_action_values": {**mapping, "İPTAL": "block"}}))
    load(ws, engine="spark", spark=spark)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        got = dict(con.execute("SELECT event_id, prod_action FROM events").fetchall())
    finally:
        con.close()
    # e3 (no time) is quarantined
    assert got == {"e2": "allow", "e4": "block", "e5": "allow", "e6": "block", "e7": "block"}


def test_a_parquet_column_only_in_files_after_the_sampled_ones_is_loaded(tmp_path, spark, monkeypatch):
    """With one file sampled: a column the later Parquet files added (a daily export that grew one) is checked and
    loaded from Spark's merged schema (the files' footers), null on the first file's rows, as DuckDB loads the same
    files as local paths — not left out."""
    import io

    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    events = T.random_events(n=40)
    parts = {}
    for name, rows, extra in (("a.parquet", events[:20], False), ("b.parquet", events[20:], True)):
        frame = rows.assign(coupon=["spring", None] * 10) if extra else rows
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        parts[name] = buffer.getvalue()
    ws = T._files(tmp_path / "ws", parts, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    assert "coupon" in [c[0] for c in want["events"][0]]
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.parquet")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.read, ours.loaded) == (duck.read, duck.loaded)
    assert _held(ws, ["events"]) == want


@pytest.mark.parametrize("cases", [[c for c in group if c != "nulls only"] for group in T.parquet_type_groups()])
def test_parquet_files_of_other_types_for_a_column_at_a_uri_load_as_local_files_on_duckdb(tmp_path, spark, monkeypatch,
                                                                                         cases):
    """With one file sampled: the later files' types of a column merged as DuckDB merges them (a column of only nulls
    in the sampled file, INT to Spark, widened to DOUBLE or text), so the load gives DuckDB's tables of the same
    files as local paths (Spark refused to merge the schemas, or read a later DOUBLE file as INT). Every case of
    test_spark_load's PARQUET_TYPES (each loaded alone there) is a column of one load here, cases of two files in
    one, of three in another (a load at a URI took 5 s)."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    ws = T._files(tmp_path / "ws", T.parquet_types_files(*cases), features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.parquet")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.read, ours.loaded) == (duck.read, duck.loaded)
    assert _held(ws, ["events"]) == want


def test_files_after_the_sampled_ones_need_the_first_files_header_as_written(tmp_path, spark, monkeypatch):
    """With one file sampled: files whose header DuckDB renames (a pandas index's empty name, names with spaces
    after the commas) load as the local files load on DuckDB; a later file with another header fails the load
    naming it."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    header = "," + ", ".join(T.HEADER.strip().split(",")) + "\n"
    files = {f"{i}.csv": (header + "".join(f"{i}{j}," + ", ".join(T._row(10 * i + j, "2026-03-01 10:00:00").split(","))
                                            + "\n" for j in range(3))).encode() for i in range(3)}
    ws = T._files(tmp_path / "ws", files, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.csv")
    assert load(ws, engine="spark", spark=spark).loaded == duck.loaded == 9
    assert _held(ws, ["events"]) == want
    said = (r"source 'file://.*': file://.*/data/in/2.csv does not start with the first file's header: every file of "
            "a source at a URI is read with the first file's columns and delimiter, so give every file the same "
            "header$")
    (ws.root / "data" / "in" / "2.csv").write_bytes(files["2.csv"].replace(b", ts,", b", time,", 1))
    with pytest.raises(RiskConsoleError, match=said):
        load(ws, engine="spark", spark=spark)
    # another delimiter, a column fewer: the same line (before: Spark's "Encountered error while reading file")
    for other in (files["2.csv"].replace(b",", b";"), files["2.csv"].replace(b", device_id", b"", 1)):
        (ws.root / "data" / "in" / "2.csv").write_bytes(other)
        with pytest.raises(RiskConsoleError, match=said):
            load(ws, engine="spark", spark=spark)


def _json_sources(tmp_path, layout: str, later: dict) -> Workspace:
    """Three JSON files of clean events (JSON Lines, or each an array: `layout`), the third's first object holding
    the keys `later` too (and JSON Lines starting with a BOM; DuckDB's load refuses an array after one)."""
    import json

    rows = T._records([T._row(i, f"2026-03-0{1 + i // 4} 10:00:00") for i in range(12)])
    parts = [rows[:4], rows[4:8], [{**rows[8], **later}, *rows[9:]]]
    text = [(json.dumps(p, indent=1) if layout == "array" else "".join(json.dumps(r) + "\n" for r in p)).encode()
            for p in parts]
    text[2] = ("\ufeff".encode() if layout == "lines" else b"") + text[2]
    return T._files(tmp_path / "ws", {f"{n}.json": t for n, t in zip("abc", text)}, features=[])


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_a_json_key_only_in_files_after_the_sampled_ones_is_loaded(tmp_path, spark, monkeypatch, layout):
    """With one file sampled: keys only the third JSON file's objects hold (a text and a number) are found by Spark
    over every file and that file is sampled too, so they load with the types, values and warnings of DuckDB's load
    of the same files as local paths — before, they were left out. Files each an array are read whole for it."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    ws = _json_sources(tmp_path, layout, {"coupon": "spring", "bonus": 3})
    duck = load(ws)
    want = _held(ws, ["events"])
    assert {"coupon": "VARCHAR", "bonus": "BIGINT"}.items() <= {c[0]: c[1] for c in want["events"][0]}.items()
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    checked = check_dataset(ws, engine="spark", spark=spark)
    # the later arrays are sampled whole (their values type the columns); JSON Lines: the file holding the keys
    assert list(checked.parts[0].samples) == [f"file://{ws.root}/data/in/{n}.json" for n in
                                              ("abc" if layout == "array" else "ac")]
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want


def test_json_keys_the_samples_miss_are_typed_over_every_file_holding_them(tmp_path, spark, monkeypatch):
    """With one file sampled and 2 of each file's lines: a key past the first file's sampled lines that a later
    file holds too (`extra`), a key numbers in one later file and text in another (`bonus`), and a key in each of
    eleven later files (`k2`..`k12`) are typed over the heads of every file holding them — DuckDB's types,
    values and warnings for the same local files (before: from the first file holding each, at most 8 more files,
    the rest text with a warning)."""
    import json

    from riskconsole import sources
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    monkeypatch.setattr(spark_sources, "SAMPLE_LINES", 2)
    rows = T._records([T._row(i, f"2026-03-0{1 + i % 5} 10:00:00") for i in range(39)])
    files = {"a.json": [*rows[:4], {**rows[4], "extra": 1.5}, *rows[5:8]],
             "b.json": [{**rows[8], "extra": 2.5, "bonus": 3}, rows[9]],
             "c.json": [{**rows[10], "bonus": "abc"}, rows[11], rows[12]]}
    files |= {f"d{i:02d}.json": [{**rows[11 + 2 * i], f"k{i}": i}, rows[12 + 2 * i]] for i in range(2, 13)}
    ws = T._files(tmp_path / "ws", {n: "".join(json.dumps(r) + "\n" for r in f).encode() for n, f in files.items()},
                  features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    types = {c[0]: c[1] for c in want["events"][0]}
    assert (types["extra"], types["bonus"], types["k12"]) == ("DOUBLE", "VARCHAR", "BIGINT") and not duck.warnings
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want
    monkeypatch.setattr(sources, "MAX_LATER_FILES", 12)  # files past it: keys as text, saying why
    capped = load(ws, engine="spark", spark=spark)
    assert capped.warnings == ["data/dataset.yaml: 'k12' had no value in the rows sampled to type a column (13 "
                               "files at the URI hold keys the first files lack; the first 12 were sampled): loaded as "
                               "text; declare the type to read numbers or times, e.g. types: {k12: DOUBLE}"]


def test_a_json_array_after_the_sampled_json_lines_files_loads_as_on_duckdb(tmp_path, spark, monkeypatch):
    """With one file sampled, JSON Lines: a later file that is a JSON array (holding a key of its own, and one a
    later JSON Lines file holds as text) is found by the key pass, its keys listed over the whole file and it is
    sampled, and the load reads it whole as DuckDB reads it, the JSON Lines files line by line (before: every file
    of the source whole, in the key pass and the load): the same rows, types and warnings (earlier still, the load
    failed saying DuckDB refuses the file, which it does not)."""
    import json

    from riskconsole.engines import spark_json, spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    keys, read_whole, held = spark_sources.SparkSources.keys, spark_json._read_whole, []

    def listed(self, files, lines, known):
        held.extend(("keys", posixpath.basename(f)) for f in files if not lines)
        return keys(self, files, lines, known)

    def loaded(spark, part, paths, *rest):
        held.extend(("load", posixpath.basename(f)) for f in paths)
        return read_whole(spark, part, paths, *rest)

    monkeypatch.setattr(spark_sources.SparkSources, "keys", listed)
    monkeypatch.setattr(spark_json, "_read_whole", loaded)
    rows = T._records([T._row(i, f"2026-03-0{1 + i % 3} 10:00:00") for i in range(11)])
    lines = ["".join(json.dumps(r) + "\n" for r in part) for part in
             (rows[:3], rows[3:6], [{**rows[9], "bonus": "abc"}, rows[10]])]
    array = json.dumps([{**rows[6], "coupon": "spring", "bonus": 1}, *rows[7:9]], indent=1)
    ws = T._files(tmp_path / "ws", {"a.json": lines[0].encode(), "b.json": lines[1].encode(),
                                    "c.json": array.encode(), "d.json": lines[2].encode()}, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    types = {c[0]: c[1] for c in want["events"][0]}
    assert duck.loaded == 11 and (types["coupon"], types["bonus"]) == ("VARCHAR", "VARCHAR")
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want
    assert held == [("keys", "c.json"), ("load", "c.json")]


def test_a_later_json_array_types_the_columns_as_on_duckdb(tmp_path, spark, monkeypatch):
    """With one file sampled: a later JSON array holding text where the first file holds numbers (`score`) is sampled
    too, so `score` is text as DuckDB's load types it over every file, and no row is quarantined (not sampled, it
    was typed DOUBLE from the first file and its 'x' row quarantined)."""
    import json

    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    rows = T._records([T._row(i, f"2026-03-0{1 + i % 3} 10:00:00") for i in range(5)])
    lines = "".join(json.dumps({**r, "score": 0.5}) + "\n" for r in rows[:3])
    ws = T._files(tmp_path / "ws", {"a.json": lines.encode(),
                                    "b.json": json.dumps([{**rows[3], "score": "x"}, {**rows[4], "score": 1.5}],
                                                         indent=1).encode()}, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    assert dict(c[:2] for c in want["events"][0])["score"] == "VARCHAR" and duck.loaded == 5
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    assert list(check_dataset(ws, engine="spark", spark=spark).parts[0].samples) == [
        f"file://{ws.root}/data/in/{n}.json" for n in "ab"]
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want


def test_later_json_arrays_do_not_take_the_sample_places_of_files_holding_new_keys(tmp_path, spark, monkeypatch):
    """With one file sampled and room for two more (MAX_LATER_FILES, 64, patched to 2): two later arrays adding no key
    and then a file holding a new key (`extra`): the file holding the key is sampled first, so `extra` is typed as
    DuckDB types it, without a warning (the arrays took both places: text, and a warning of 3 files holding keys)."""
    import json

    from riskconsole import sources
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    monkeypatch.setattr(sources, "MAX_LATER_FILES", 2)
    rows = T._records([T._row(i, f"2026-03-0{1 + i % 3} 10:00:00") for i in range(4)])
    ws = T._files(tmp_path / "ws", {"a.json": (json.dumps(rows[0]) + "\n").encode(),
                                    "b.json": json.dumps(rows[1:2], indent=1).encode(),
                                    "c.json": json.dumps(rows[2:3], indent=1).encode(),
                                    "d.json": (json.dumps({**rows[3], "extra": 5}) + "\n").encode()}, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    assert dict(c[:2] for c in want["events"][0])["extra"] == "BIGINT" and not duck.warnings
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want


def test_a_time_typed_from_nulls_in_the_samples_warns_of_the_rows_it_quarantines(tmp_path, spark, monkeypatch):
    """With one file sampled, `label_ts` null in it: a later file's '5/3/26' is quarantined and its ' ' is no label
    time (not a bad one), and the warning counts that one row as DuckDB's load does (it counted ' ' too: the check
    took the sampled type, NULL, for one that is not text)."""
    import json

    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    rows = T._records([T._row(i, f"2026-03-0{1 + i % 3} 10:00:00") for i in range(6)])
    later = [{**rows[3], "label_ts": "5/3/26"}, {**rows[4], "label_ts": " "}, rows[5]]
    ws = T._files(tmp_path / "ws", {f"{n}.json": "".join(json.dumps(r) + "\n" for r in part).encode()
                                    for n, part in (("a", rows[:3]), ("b", later))}, features=[])
    duck = load(ws)
    assert duck.loaded == 5 and any("1 of 6 rows" in w for w in duck.warnings), duck.warnings
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    assert check_dataset(ws, engine="spark", spark=spark).parts[0].types["label_ts"] == NULL_TYPE
    ours = load(ws, engine="spark", spark=spark)
    assert ours.loaded == 5 and ours.warnings == duck.warnings


def test_a_json_file_that_is_not_json_lines_and_too_large_to_copy_is_refused_saying_what_to_do(tmp_path, spark,
                                                                                              monkeypatch):
    """A JSON array at a URI is copied whole for the checks, up to MAX_WHOLE (256 MB; here 2 KB): a larger one is
    refused in one line naming the file by its URI, its size and the fix, before a row is read."""
    import json

    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "MAX_WHOLE", 2048)
    rows = T._records([T._row(i, "2026-03-01 10:00:00") for i in range(40)])
    ws = T._files(tmp_path / "ws", {"a.json": json.dumps(rows, indent=1).encode()}, features=[])
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    with pytest.raises(RiskConsoleError, match=rf"^data/dataset.yaml: source 'file://[^']*': file://{ws.root}/data/in/"
                                               r"a.json is JSON but not JSON Lines \(an array, or objects over several "
                                               r"lines\) and 0 MB: a source at a URI is checked over a copy of such a "
                                               r"file, up to 0 MB; write it as JSON Lines \(one object per line\)$"):
        check_dataset(ws, engine="spark", spark=spark)
    assert not ws.db_path.exists()


def test_a_malformed_line_in_a_later_file_holding_a_new_key_is_named_by_the_load(tmp_path, spark, monkeypatch):
    """A later file holding a new key and a malformed line: its sample, which DuckDB cannot read, is left out and
    the load names the file and line (before: the checks failed naming a temporary copy and blaming Spark); a later
    file whose first line is malformed is read whole and named by the load. In a sampled file's head, DuckDB's
    refusal names the file by its URI, not the local copy of its head."""
    import json

    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    rows = T._records([T._row(i, "2026-03-01 10:00:00") for i in range(6)])
    text = ["".join(json.dumps(r) + "\n" for r in part) for part in (rows[:3], [{**rows[3], "coupon": "x"}, *rows[4:]])]
    ws = T._files(tmp_path / "ws", {"a.json": text[0].encode(), "c.json": (text[1] + '{"bad": \n').encode()},
                  features=[])
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    with pytest.raises(RiskConsoleError, match=rf"file://{ws.root}/data/in/c.json line 4 cannot be read as DuckDB's "
                                               "load reads it"):
        load(ws, engine="spark", spark=spark)
    # a later file's first line: not JSON Lines as far as it shows, so read whole, as DuckDB's load reads it (its
    # lines holding a new key: the key pass once failed on it, "list index out of range")
    (ws.root / "data" / "in" / "b.json").write_text('{"bad": \n' + text[1])
    with pytest.raises(RiskConsoleError, match=rf"^data/dataset.yaml: source 'file://[^']*': file://{ws.root}/data/in/"
                                               r"b.json cannot be read as DuckDB's load reads it \(Invalid Input Error: "
                                               r"Malformed JSON.*\); DuckDB's load refuses this file too: fix it$"):
        load(ws, engine="spark", spark=spark)
    (ws.root / "data" / "in" / "b.json").unlink()
    (ws.root / "data" / "in" / "a.json").write_text(text[0] + '{"bad": \n')  # in a sampled head: DuckDB's own error
    with pytest.raises(RiskConsoleError, match=rf"^data/dataset.yaml: source 'file://[^']*': Invalid Input Error: "
                                               rf"Malformed JSON in file \"file://{ws.root}/data/in/a.json\""):
        load(ws, engine="spark", spark=spark)


def test_a_json_key_past_the_sampled_lines_of_a_file_at_a_uri_loads_as_text_with_a_warning(tmp_path, spark):
    """A JSON Lines file at a URI whose key `extra` and misfit values come after the 20,480 lines sampled: Spark
    lists every line's keys, so `extra` loads as text with the warning DuckDB's load of the local file gives, and
    the load equals that load value for value, misfits quarantined alike."""
    from conftest import late_json_lines

    ws = T._files(tmp_path / "ws", {"a.jsonl": b""}, features=[])
    late_json_lines(ws.root / "data" / "in" / "a.jsonl")
    duck = load(ws)
    want = _held(ws, ["events", "quarantine"])
    assert any("'extra'" in w for w in duck.warnings) and duck.quarantined
    _at_uris(ws, source=f"file://{ws.root}/data/in/a.jsonl")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    got = _held(ws, ["events", "quarantine"])
    assert got["events"] == want["events"]
    columns, rows = want["quarantine"]
    file = [c[0] for c in columns].index("file")
    assert got["quarantine"] == (columns, [(*r[:file], f"file://{r[file]}", *r[file + 1:]) for r in rows])


def test_json_keys_and_a_csv_header_differing_in_case_at_a_uri_name_the_file_by_its_uri(tmp_path, spark,
                                                                                       monkeypatch):
    """Keys that differ only in letter case — one in a file after the sampled ones, or both in a sampled file — and
    a CSV header naming a column twice are refused naming the file by its URI (before: the local copy of its head,
    a temporary file the user never saw)."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    ws = _json_sources(tmp_path, "lines", {"Amount": 3})
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.json")
    with pytest.raises(RiskConsoleError, match=rf"^file://{ws.root}/data/in/c.json: the JSON objects have keys "
                                               "'amount' and 'Amount'"):
        check_dataset(ws, engine="spark", spark=spark)
    csv = T._files(tmp_path / "csv", {"a.csv": T._csv(T.SECOND, header=T.HEADER.replace("amount", "ts"))})
    _at_uris(csv, source=f"file://{csv.root}/data/in/*.csv")
    with pytest.raises(RiskConsoleError, match=rf"^file://{csv.root}/data/in/a.csv: the header names columns 'ts' "
                                               "and 'ts'"):
        check_dataset(csv, engine="spark", spark=spark)


def test_a_csv_header_naming_a_column_over_two_lines_loads_at_a_uri_as_on_duckdb(tmp_path, spark, monkeypatch):
    """With one file sampled: a header whose quoted name holds a line break (and a name ending in a dot) is read
    whole as the first file's header, so the later file, which starts with it, loads as DuckDB loads both (before:
    the header was cut at its first line and the later file refused as starting with another header)."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLED_FILES", 1)
    header = T.HEADER.strip() + ',"new\nline","end."\n'
    body = [f"{T._row(i, '2026-03-01 10:00:00')},{i},x\n" for i in range(8)]
    files = {"a.csv": (header + "".join(body[:4])).encode(), "b.csv": (header + "".join(body[4:])).encode()}
    ws = T._files(tmp_path / "ws", files, features=[])
    duck = load(ws)
    want = _held(ws, ["events"])
    assert "new\nline" in [c[0] for c in want["events"][0]] and duck.loaded == 8
    _at_uris(ws, source=f"file://{ws.root}/data/in/*.csv")
    ours = load(ws, engine="spark", spark=spark)
    assert (ours.summary(), ours.warnings) == (duck.summary(), duck.warnings)
    assert _held(ws, ["events"]) == want


@pytest.mark.parametrize("source, engine, message", [
    ("file:///nowhere/at/all/*.csv", "spark", "source 'file:///nowhere/at/all/*.csv' matches no file (Spark listed it, "
                                              "skipping names that start with '_' or '.')"),
    ("FOLDER/_hidden.csv", "spark", "matches no file (Spark listed it, skipping names that start with '_' or '.')"),
    ("FOLDER/", "spark", "/data/in/': the file name 'c 10:00.csv' holds ':', which Spark's Hadoop file paths cannot "
                         "read (rename the file)"),
    ("FOLDER/*", "spark", "must match files of one format (.csv, .parquet, .json/.jsonl); got .csv, .parquet"),
    ("s3a://bucket/orders/*.csv", "spark", "): add the scheme's file system to Spark (for s3a: spark: {conf: "
                                           "{spark.jars.packages: org.apache.hadoop:hadoop-aws:<Spark's Hadoop "
                                           "version>}} in the dataset file, and its credentials)"),
    ("FOLDER/*.csv", "duckdb", "is a URI: only engine spark reads a source at a URI: set engine: spark in the dataset "
                               "file (or pass --engine spark), or copy its files into the workspace"),
])
def test_bad_uri_sources_get_one_line(tmp_path, spark, capsys, source, engine, message):
    ws = T._files(tmp_path / "ws", {"a.csv": T._csv(T.SECOND)})
    if source.endswith("*"):
        pd.DataFrame({"x": [1]}).to_parquet(ws.root / "data" / "in" / "b.parquet")
    (ws.root / "data" / "in" / "_hidden.csv").write_bytes(T._csv(T.SECOND))
    if source == "FOLDER/":
        (ws.root / "data" / "in" / "c 10:00.csv").write_bytes(T._csv(T.SECOND))
    _at_uris(ws, source=source.replace("FOLDER", f"file://{ws.root}/data/in"))
    for command in ("validate", "load"):
        args = [command, *([str(ws.dataset_path)] if command == "validate" else []), "--workspace", str(ws.root),
                "--engine", engine]
        assert main(args) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("error: data/dataset.yaml: ") and not ws.db_path.exists()


def test_a_uri_source_in_an_uploaded_dataset_file_is_refused_before_anything_is_listed(tmp_path, monkeypatch):
    """A dataset file other than the workspace's own (the console's upload) may read only the workspace's files:
    a URI is refused before Spark is started or asked to list it."""
    from riskconsole.engines import spark_sources

    def never(*args, **kwargs):
        raise AssertionError("Spark was asked")

    monkeypatch.setattr(spark_sources, "remote", never)
    ws = T._files(tmp_path / "ws", {"a.csv": T._csv(T.SECOND)})
    other = ws.root / "data" / "other.yaml"
    other.write_text(ws.dataset_path.read_text().replace("data/in/*.csv", "s3a://bucket/orders/*.csv")
                     + "engine: spark\n")
    with pytest.raises(RiskConsoleError, match="data/other.yaml: source 's3a://bucket/orders/\\*.csv' is a URI: only "
                                               "data/dataset.yaml .* may read files outside the workspace"):
        check_dataset(ws, other)


def test_validate_checks_a_uri_source_on_spark_and_a_strategy_waits_for_the_load(tmp_path, spark, capsys):
    ws = T._files(tmp_path / "ws", {"a.csv": T._csv(T.MESSY), "b.csv": T._csv(T.SECOND)}, engine="spark")
    _at_uris(ws, source=f"file://{ws.root}/data/in")
    assert main(["validate", str(ws.dataset_path), "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "in 2 file(s)" in out and "loads on engine spark" in out
    ws.strategies_dir.mkdir(exist_ok=True)
    (ws.strategies_dir / "s.yaml").write_text(yaml.safe_dump(T.STRATEGY))
    assert main(["validate", str(ws.strategies_dir / "s.yaml"), "--workspace", str(ws.root)]) != 0
    assert "is a URI, read through Spark: load the data first" in capsys.readouterr().err


def test_a_csv_sample_ends_with_a_whole_record(monkeypatch):
    """A file read to its end is its own sample, stray quotes and all (`5" screen` is text); a longer file's sample
    is its first lines, taking whole a quoted record the cut would split."""
    from riskconsole.engines import spark_sources

    monkeypatch.setattr(spark_sources, "SAMPLE_LINES", 2)
    monkeypatch.setattr(spark_sources, "EXTRA_LINES", 3)
    whole = spark_sources.whole
    assert whole(["a,b", '1,5" screen', "2,x"]) == ["a,b", '1,5" screen', "2,x"]  # read to its end
    assert whole(["a,b", '1,"x', 'y"', "2,z", "3,w"]) == ["a,b", '1,"x', 'y"']  # the record split at the cut
    assert whole(["a,b", '1,"say ""hi"""', "2,x", "3,y", "4,z"]) == ["a,b", '1,"say ""hi"""']
    assert whole([]) == []


def test_a_ragged_csv_line_in_a_file_at_a_uri_names_the_file_and_says_spark_gives_no_line(tmp_path, spark):
    """A line with a field too many past the sampled head of a file at a URI: Spark's read fails on it and tells no
    line number; the load names the file by its URI, the row's start and the fix."""
    import test_ragged

    ws = test_ragged._workspace(tmp_path / "ws")
    path = ws.root / "data" / "Orders Export.csv"
    test_ragged._export(path, {30_001: test_ragged._line(29_999) + ";surprise"})
    uri = f"file://{path}"
    _at_uris(ws, source=uri)
    with pytest.raises(RiskConsoleError) as info:
        load(ws, engine="spark", spark=spark)
    assert str(info.value) == (
        f"data/dataset.yaml: {uri}: a line does not have the header's 10 fields (fields separated by ';'; Spark does "
        f"not say which line, it starts '{test_ragged._line(29_999)[:80]}'): quote a field that holds ';', remove an "
        "extra field or add a missing one")
    assert not ws.db_path.exists()


def test_parquet_footers_read_by_pyarrow_group_files_as_the_jvms_do(tmp_path, spark, monkeypatch):
    """A Spark Connect client has no JVM: it reads the files' footers with pyarrow's file systems. It must group the
    files and find the columns of pyarrow's null type as the driver's JVM does (paths and file:// URIs)."""
    from riskconsole.engines import spark as engine
    from riskconsole.engines import spark_read

    files = {**T.parquet_types_files("nulls then booleans"), **{f"x{k}": v for k, v in
                                                                T.parquet_types_files("nulls then decimals").items()}}
    for name, data in files.items():
        (tmp_path / f"{name}").write_bytes(data)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    for listed in (paths, [f"file://{p}" for p in paths]):
        jvm = spark_read.footers(spark, listed)
        monkeypatch.setattr(engine, "is_connect", lambda s: True)
        arrow = spark_read.footers(spark, listed)
        monkeypatch.undo()

        def partition(found):
            groups = {}
            for path, (written, _) in zip(listed, found):
                groups.setdefault(written, []).append(path)
            return sorted(groups.values())

        assert partition(arrow) == partition(jvm) and len(partition(jvm)) == 3
        assert [nulls for _, nulls in arrow] == [nulls for _, nulls in jvm]
        assert sum(bool(nulls) for _, nulls in jvm) == 2  # the first file of each case holds only nulls
