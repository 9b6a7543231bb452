"""Source files of a dataset, and every check a load runs before it reads a row (`validate` runs the same).

A dataset file is checked against its sources: files found and of one format, no column named like an
internal one, role and typed columns present, declared types and time formats valid, every feature
checked and its SQL bound over an empty table of the real schema. A file that validates loads, unless a line
past what the checks read cannot be parsed (a CSV line with a field too many past the sniffed lines, a JSON line
that is not JSON): the load names it (`ragged.explain`) and changes nothing.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Protocol

import duckdb
from sqlglot import exp

from riskconsole import ragged, times
from riskconsole.config import Dataset, Stream, Table
from riskconsole.errors import DataError, RiskConsoleError, closest
from riskconsole.features import build_frame
from riskconsole.names import ACTIONS, TRIMMED, internal_collision
from riskconsole.escape import printable
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.workspace import Workspace, connect_duckdb

FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".json": "json", ".jsonl": "json", ".ndjson": "json"}
NULL_TYPE = '"NULL"'  # DuckDB's type of a column whose every sniffed value is null (JSON, Parquet)
READERS = {  # a file's own columns only: a folder named like `part=1` adds none (Spark's reading of a file adds none)
    "csv": "SELECT * FROM read_csv($files, all_varchar = true, union_by_name = true, filename = '_file', "
           "hive_partitioning = false) WITH ORDINALITY",
    "parquet": "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS ordinality FROM "
               "read_parquet($files, union_by_name = true, filename = '_file', file_row_number = true, "
               "hive_partitioning = false)",
}
_SNIFF = {"csv": "DESCRIBE SELECT * FROM read_csv($files, union_by_name = true, hive_partitioning = false)",
          "parquet": "DESCRIBE SELECT * FROM read_parquet($files, union_by_name = true, hive_partitioning = false)",
          "json": "DESCRIBE SELECT * FROM read_json($files, union_by_name = true, hive_partitioning = false, "
                  "map_inference_threshold = -1)"}  # objects with many keys: columns, never one MAP


@dataclass(frozen=True)
class Part:
    """One source a load reads: the decision stream, a context stream or a table, with its roles.

    `required` columns quarantine a row where they are missing; `unique` columns quarantine a repeat (the first
    occurrence in source order wins); `times` are parsed like every time.
    """

    kind: str  # "events", "stream" or "table"
    name: str
    where: str  # how errors name it: "source", "streams.signups", "tables.merchants"
    source: str
    files: list[str]
    fmt: str
    types: dict[str, str]  # sniffed source types
    declared: dict[str, str] = field(default_factory=dict)
    time_format: str | list[str] | None = None
    decimal: str = "."  # the decimal mark of numbers in text
    roles: dict[str, str | None] = field(default_factory=dict)  # id, time, label, label_time, amount
    required: tuple[tuple[str, str], ...] = ()  # (column, reason)
    unique: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    labels: dict[str, int | None] = field(default_factory=dict)  # the dataset's label_values: text -> 1, 0, None
    actions: dict[str, str] = field(default_factory=dict)  # the dataset's prod_action_values: text -> a decision
    samples: dict[str, str] = field(default_factory=dict)  # a source at a URI: file -> a local copy of its head
    spelled: dict[str, str] = field(default_factory=dict)  # a source at a URI: file -> Spark's `_metadata.file_path`
    capped: int = 0  # a JSON source at a URI: files holding keys the first files lack, left unsampled (_later_keys)

    @property
    def remote(self) -> bool:
        """Whether `source` is a URI (`s3a://…`, `hdfs://…`, `file://…`): its files are read by Spark only."""
        return is_uri(self.source)

    @property
    def readable(self) -> list[str]:
        """The files DuckDB reads on this machine for the checks before a load: the source's files, or for a source
        at a URI the local copies of the heads of its first files (`samples`)."""
        return [self.samples[f] for f in self.files if f in self.samples] if self.remote else self.files

    @property
    def lead(self) -> str:
        """What an error about it says before its message: nothing for the decision events (the dataset file's
        `source`), `streams.NAME: ` or `tables.NAME: ` for the others."""
        return "" if self.kind == "events" else f"{self.where}: "

    @property
    def read_types(self) -> dict[str, str]:
        """The type the load reads each column as (the sniffed `types` are what it is cast to). CSV is all text,
        Parquet as the file types it. JSON (`_json_read_type`): a number or boolean column as JSON, cast by the load,
        so a value after the sampled rows that does not fit is quarantined (DuckDB's `read_json` converted it itself:
        a fraction in a column sampled BIGINT rounded, a word there failing the whole read); a column with no sampled
        value as text (read_json dropped its later values)."""
        if self.fmt == "csv":
            return {c: "VARCHAR" for c in self.types}
        if self.fmt == "json":
            return {c: _json_read_type(t, self.declared.get(c)) for c, t in self.types.items()}
        return dict(self.types)

    @property
    def reader(self) -> str:
        """The SQL reading its rows as `read_types`, with `_file` and `ordinality` (parameter `$files`)."""
        if self.fmt != "json":
            return READERS[self.fmt]
        spec = ", ".join(f"{lit(c).sql('duckdb')}: {lit(t).sql('duckdb')}" for c, t in self.read_types.items())
        return (f"SELECT * FROM read_json($files, columns = {{{spec}}}, filename = '_file', hive_partitioning = false) "
                "WITH ORDINALITY")

    @property
    def table(self) -> str:
        """The loaded table: `events`, `stream_NAME` or `table_NAME`."""
        return "events" if self.kind == "events" else f"{self.kind}_{self.name}"

    @property
    def quarantine(self) -> str:
        """Its quarantine table: `quarantine` for the decision events, `quarantine_NAME` for the others."""
        return "quarantine" if self.kind == "events" else f"quarantine_{self.name}"

    def loaded_name(self, column: str) -> str:
        """The column's name once loaded (after `rename:`)."""
        return self.rename.get(column, column)


@dataclass(frozen=True)
class Checked:
    """A dataset spec checked against its source files: everything `load` needs (and `validate` runs)."""

    dataset: Dataset
    path: Path
    label: str
    files: list[str]
    fmt: str
    types: dict[str, str]
    parts: list[Part] = field(default_factory=list)
    scratch: Any = None  # the temporary folder of a URI source's samples (removed once this is dropped)
    shown: Callable[[str], str] = str  # a source file's path as errors name it (workspace-relative)


def _json_read_type(sniffed: str, declared: str | None) -> str:
    """How a JSON source's column is read: a string column as text (VARCHAR), and so a column seen only as null
    (its later values kept as text) and a date or time column (parsed by the load as a CSV's: ISO-8601 or
    `time_format:`; read_json given a column's type reads ISO only); a nested one (a struct, list or map) as DuckDB
    sniffed it (declared a scalar, e.g. JSON: as JSON); anything else (numbers, booleans, a column mixing kinds) as
    JSON: the load casts a JSON string by its text, any other value as DuckDB's JSON reader converts it (true -> 1),
    and quarantines what does not fit."""
    if declared and declared.upper() == "JSON":  # kept as written: a string stays a JSON string
        return "JSON"
    if _nested(sniffed):
        return "JSON" if declared and not _nested(declared) else sniffed
    if sniffed in ("VARCHAR", NULL_TYPE) or sniffed.upper() in times.TEMPORAL or _is_time(sniffed) or \
            sniffed.upper().startswith(("TIME", "INTERVAL")):
        return "VARCHAR"
    return "JSON"


def sql_fold(name: str) -> str:
    """A column name as DuckDB compares names: ASCII letters in lower case, every other character as it is (`Score`
    and `score` are one name; `MASS` and `maß`, `É` and `é` two)."""
    return "".join(c.lower() if c.isascii() else c for c in name)


def _nested(dtype: str) -> bool:
    """Whether a DuckDB type is a struct, list, array, map or union."""
    return dtype.upper().startswith(("STRUCT", "MAP", "UNION")) or dtype.endswith("]")


def literal_file(path: str) -> str:
    """A path as DuckDB's readers take it literally: a reader globs every path it is given, so a `[`, `?` or `*` in
    a file's name is written as the one-character class `[[]`, `[?]`, `[*]` (`_file` still names the file itself)."""
    return re.sub(r"([\[?*])", r"[\1]", path)


def literal_files(files: list[str]) -> list[str]:
    return [literal_file(f) for f in files]


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(source: str) -> bool:
    """Whether a `source:` is a URI with a scheme (`s3a://bucket/orders/*.parquet`, `hdfs://…`, `file:///…`)."""
    return bool(_URI.match(source))


class Remote(Protocol):
    """What reads the files of a source at a URI for the checks before a load (engine spark:
    engines/spark_sources.py)."""

    def files(self, pattern: str) -> list[tuple[str, str]]:
        """The files the URI names, sorted: (path as Spark reads it, as Spark's `_metadata.file_path` spells it);
        [] when none."""

    def sample(self, fmt: str, files: list[str], folder: Path) -> dict[str, str]:
        """Local copies of the heads of the first files (file -> local path) in `folder`."""

    def has_rows(self, fmt: str, files: list[str], header: bool) -> bool:
        """Whether any file holds a row (asked when no sample does)."""

    def keys(self, files: list[str], lines: bool, known: set[str]) -> dict[str | None, list[str]]:
        """The top-level keys of the JSON objects in the files (JSON Lines if `lines`) that are not `known`, each
        with the files holding it (a file sampled whole may be left unread); with `lines`, under None the files
        whose first line is no JSON object."""


_NO_URI = ("only engine spark reads a source at a URI: set engine: spark in the dataset file (or pass --engine "
           "spark), or copy its files into the workspace")


def _uri_part(con: duckdb.DuckDBPyConnection, dataset: Dataset | Stream | Table, prefix: str, remote: Remote | None,
              folder: Callable[[], Path]) -> tuple[list[str], str, dict[str, str], dict[str, str], dict[str, str],
                                                   int]:
    """A source at a URI: its files (sorted), format, samples in `folder()`, Spark's spelling of each file, the
    JSON keys no sample holds and the files holding such keys left unsampled (`_later_keys`).

    Raises:
        DataError: no `remote` (engine duckdb), no file matched, files of several formats, or Spark's own error."""
    if remote is None:
        raise DataError(f"{prefix}source '{dataset.source}' is a URI: {_NO_URI}")
    try:
        listed = remote.files(dataset.source)
        if not listed:
            raise DataError(f"{prefix}source '{dataset.source}' matches no file (Spark listed it, skipping names that "
                            "start with '_' or '.')")
        files = [path for path, _ in listed]
        fmt = _one_format(dataset, files, prefix)
        colon = colon_refusal(files)
        if colon:  # before sampling: Spark lists such a name and cannot read it
            raise DataError(f"{prefix}source '{dataset.source}': {colon}")
        try:
            samples = remote.sample(fmt, files, folder())
            later: dict[str, str] = {}
            capped = 0
            if fmt == "json":
                samples, later, capped = _later_keys(con, remote, files, samples, folder)
        except RiskConsoleError as err:  # a file it cannot copy, or refused by DuckDB: named by itself
            raise DataError(f"{prefix}source '{dataset.source}': {err}") from None
        return files, fmt, samples, dict(listed), later, capped
    except (RiskConsoleError, duckdb.Error):
        raise
    except Exception as err:  # noqa: BLE001 - pyspark raises many kinds (a scheme without its file system, ...)
        from riskconsole.engines.spark_render import first_line

        text = first_line(err)
        hint = (": add the scheme's file system to Spark (for s3a: spark: {conf: {spark.jars.packages: "
                "org.apache.hadoop:hadoop-aws:<Spark's Hadoop version>}} in the dataset file, and its credentials)"
                if "No FileSystem for scheme" in text or ("ClassNotFoundException" in text and ".fs." in text) else "")
        raise DataError(f"{prefix}source '{dataset.source}': Spark cannot read it ({text[:300]}){hint}") from None


MAX_LATER_FILES = 64  # files sampled for the JSON keys the first samples miss (`_later_keys`)


def _later_keys(con: duckdb.DuckDBPyConnection, remote: Remote, files: list[str], samples: dict[str, str],
                folder: Callable[[], Path]) -> tuple[dict[str, str], dict[str, str], int]:
    """A JSON source at a URI: the keys of its objects that its samples miss (in files after the sampled ones, or
    past a file's sampled lines; DuckDB's load of local files finds them all, `_unsampled_keys`), listed by Spark
    over every file. Every file holding such a key is sampled too (up to MAX_LATER_FILES, in the sorted order), so
    the key's type is sniffed over those files' heads as DuckDB sniffs every local file's head; a sample DuckDB
    cannot read (a malformed line in that head) is left out, for the load to name the line. A key no sample holds
    is returned with the first file holding it (loaded as text, with a warning, as past DuckDB's sampled rows). The
    keys of a file that is not JSON Lines (an array, objects over several lines) are listed over the whole file, as
    the load reads it (`spark_json.read`: such a file is read whole, the others line by line), and such a later file
    is sampled whole too (its values type the columns).

    Returns:
        The samples (with those added), the keys no sample holds -> the first file holding each, and how many files
        holding such keys were left unsampled (past MAX_LATER_FILES).

    Raises:
        DataError: DuckDB refuses a sample it needs (a first file's head), naming the file by its URI."""
    from riskconsole.engines.spark_json import json_lines_file

    def keys(locals_: list[str]) -> set[str]:
        rows = con.execute(_KEYS, {"files": literal_files(locals_)}).fetchall()
        return {k for (ks,) in rows for k in ks or ()}

    def needed(locals_: list[str]) -> set[str]:
        try:
            return keys(locals_)
        except duckdb.Error as err:
            raise DataError(_in_samples(err, samples)) from None

    first = needed([samples[f] for f in files if f in samples])  # the keys of the first files' heads
    place = {f: i for i, f in enumerate(files)}
    arrays = {f for f, local in samples.items() if not json_lines_file(con, local)}  # sampled whole
    found = remote.keys([f for f in files if f not in arrays], True, first)
    flagged = set(found.pop(None, []))  # files whose first line is no JSON object
    seen = set(first)
    if arrays | flagged:  # their keys as DuckDB reads such a file: whole (a line of an array is no object)
        found = {k: [f for f in fs if f not in flagged] for k, fs in found.items()}
        for key, holding in remote.keys(sorted(arrays | flagged, key=place.get), False, first).items():
            found.setdefault(key, []).extend(holding)
    # every later file holding a key the first heads lack is sampled (its type is sniffed over all their heads), and
    # every later file that is not JSON Lines (sampled whole: its values type the columns, as DuckDB sniffs each file)
    holding = {k: sorted(fs, key=lambda f: place.get(f, len(files))) for k, fs in found.items()
               if k not in first and fs}
    keyed = sorted({f for fs in holding.values() for f in fs if f not in samples}, key=place.get)
    wanted = keyed + sorted(flagged - set(samples) - set(keyed), key=place.get)  # the files holding keys first
    pending = wanted[:MAX_LATER_FILES]
    while pending:  # a remote samples up to its own number of files a call
        got = remote.sample("json", pending, folder())
        if not got:
            break
        for file, local in got.items():
            try:
                seen |= keys([local])
            except duckdb.Error:  # a malformed line in its head: the load names it (file and line)
                continue
            samples = {**samples, file: local}
        pending = [f for f in pending if f not in got]
    samples = {f: samples[f] for f in sorted(samples, key=lambda f: place.get(f, len(files)))}  # in the files' order
    return samples, {k: fs[0] for k, fs in holding.items() if k not in seen}, max(0, len(keyed) - MAX_LATER_FILES)


def _in_samples(err: Exception, samples: dict[str, str]) -> str:
    """The first line of a refusal of a URI source's sampled heads (DuckDB's, or a check's), each local copy named by
    its file's URI (the user never saw the copies)."""
    text = str(err).splitlines()[0]
    for file, local in sorted(samples.items(), key=lambda fl: -len(fl[1])):
        text = text.replace(local, file)
    return text


def colon_refusal(files: list[str]) -> str | None:
    """Why Spark cannot read one of the files (None if it can): a name holding ':', which Hadoop's paths cannot read,
    or starting with '_' or '.', which Spark skips as hidden even when named (its rows would be left out)."""
    named = next((posixpath.basename(f) for f in files if ":" in posixpath.basename(f)), None)
    if named is not None:
        return f"the file name '{named}' holds ':', which Spark's Hadoop file paths cannot read (rename the file)"
    hidden = next((posixpath.basename(f) for f in files if posixpath.basename(f)[:1] in ("_", ".")), None)
    return None if hidden is None else (f"the file name '{hidden}' starts with '{hidden[0]}', which Spark skips as a "
                                        "hidden file (its rows would be left out): rename the file")


def source_files(ws: Workspace, dataset: Dataset | Stream | Table, label: str, where: str = "",
                 home: Path | None = None) -> tuple[list[str], str]:
    """The sorted files matched by `source` (of the dataset, a stream or a table), and their common format. A
    source at a URI is refused: only `check_dataset` with engine spark lists one. `home`: the workspace a dataset
    file of another workspace sits in (`OTHER/data/dataset.yaml`), named where the source is there and not here."""
    prefix = f"{label}: {where + ': ' if where else ''}"
    if is_uri(dataset.source):
        raise DataError(f"{prefix}source '{dataset.source}' is a URI: {_NO_URI}")
    pattern = str(ws.path(dataset.source))
    # a file named like a glob ('orders [final].csv') is that file: glob would read [final] as one of its letters;
    # the workspace's own folder is never a pattern (a workspace in 'risk [v2]/')
    relative = not Path(dataset.source).expanduser().is_absolute()
    globbed = os.path.join(glob.escape(str(ws.root)), dataset.source) if relative else pattern
    files = [pattern] if os.path.isfile(pattern) else sorted(glob.glob(globbed, recursive=True))
    if not files:
        there = relative and home is not None and glob.glob(os.path.join(glob.escape(str(home)), dataset.source),
                                                            recursive=True)
        hint = (f"; sources are relative to the workspace, {ws.root}, and this file's workspace holds it: give "
                f"--workspace {home}") if there else ""
        raise DataError(f"{prefix}source '{dataset.source}' matches no file (looked for {pattern}){hint}")
    fmt = _one_format(dataset, files, prefix)
    if fmt == "csv":  # a file holding nothing (an export of no rows) names no column: DuckDB's sniffer says `column0`
        files = [f for f in files if not _blank(f)] or files
    return files, fmt


BLANK_BYTES = 64 * 1024  # a CSV file larger than this is never taken for blank


def _blank(path: str) -> bool:
    """Whether a local file holds nothing but whitespace (no header, no row)."""
    try:
        if os.path.getsize(path) > BLANK_BYTES:
            return False
        with open(path, "rb") as handle:
            return not handle.read().removeprefix(b"\xef\xbb\xbf").strip()  # a BOM alone is blank too
    except OSError:
        return False


def _one_format(dataset: Dataset | Stream | Table, files: list[str], prefix: str) -> str:
    """The format every file has by its suffix (a URI's by its path's)."""
    suffixes = [PurePosixPath(f.partition("://")[2] if is_uri(f) else f).suffix for f in files]  # `#` is a letter
    formats = {FORMATS.get(suffix.lower()) for suffix in suffixes}
    if None in formats or len(formats) > 1:
        raise DataError(f"{prefix}source '{dataset.source}' must match files of one format "
                        f"(.csv, .parquet, .json/.jsonl); got {', '.join(sorted(set(suffixes)))}")
    return formats.pop()


def column_types(con: duckdb.DuckDBPyConnection, fmt: str, files: list[str], decimal: str = ".",
                 later: dict[str, str] | None = None) -> dict[str, str]:
    """Name -> sniffed DuckDB type of every source column (as the files hold them, nothing added). A source at a
    URI: `files` are its samples, `later` its JSON keys no sample holds (-> a file holding it).

    Raises:
        DataError: a CSV header names two columns that differ only in letter case (DuckDB would silently
            rename the second to NAME_1).
    """
    if fmt == "csv":
        for name in files[:MAX_HEADER_CHECKS]:
            _check_header_case(con, name)
    sniff = _SNIFF[fmt]
    if fmt == "csv" and decimal == ",":  # `decimal` is "." or "," (config.Literal): never user text in SQL
        sniff = sniff.replace("union_by_name = true", "union_by_name = true, decimal_separator = ','")
    rows = con.execute(sniff, {"files": literal_files(files)}).fetchall()
    types = {name: dtype for name, dtype, *_ in rows}
    return {**types, **_unsampled_keys(con, files, types, later or {})} if fmt == "json" else types


_KEYS = "SELECT DISTINCT json_keys(json) FROM read_json_objects($files, format = 'auto', hive_partitioning = false)"
_KEY_FILE = ("SELECT filename FROM read_json_objects($files, format = 'auto', hive_partitioning = false, "
             "filename = true) WHERE list_contains(json_keys(json), $key) LIMIT 1")


def _unsampled_keys(con: duckdb.DuckDBPyConnection, files: list[str], types: dict[str, str],
                    later: dict[str, str]) -> dict[str, str]:
    """The keys of a JSON source's objects that DuckDB's sniff did not see (first in its rows after the 20,480 of a
    file it samples; read_json would drop them silently; with `later`, the keys Spark found that no sample of a
    source at a URI holds), by name, each with the type of a column seen only as null (NULL_TYPE): loaded as text.
    One pass over the objects' key lists (~0.26 s per 1M objects of 8 keys).

    Raises:
        DataError: two keys differ only in letter case (DuckDB would rename the second NAME_1, or read it into the
            first), as a CSV header with such names."""
    keys = sorted({k for (ks,) in con.execute(_KEYS, {"files": literal_files(files)}).fetchall() for k in ks or ()
                   if k} | {k for k in later if k})  # an empty key names no column (read_json skips it)
    first: dict[str, str] = {}
    for key in sorted(keys, key=lambda k: (k not in types, k)):  # a sniffed column's spelling named first
        if sql_fold(key) in first:
            if key in later:
                name = later[key]
            else:
                (name,) = con.execute(_KEY_FILE, {"files": literal_files(files), "key": key}).fetchall()[0]
            raise DataError(f"{name}: the JSON objects have keys '{printable(first[sql_fold(key)])}' and "
                            f"'{printable(key)}', which differ only in letter case; SQL names ignore case, so one "
                            "would be renamed or merged silently: rename one of them in the file")
        first[sql_fold(key)] = key
    return {k: NULL_TYPE for k in keys if k not in types}


MAX_HEADER_CHECKS = 100  # CSV files whose raw header is read (a glob of thousands: the first hundred)


def _check_header_case(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Refuse a header whose names repeat up to letter case (SQL names ignore case).

    A first row with repeats is a header when DuckDB's sniffed names equal it everywhere else (it renamed only
    the repeats); otherwise the file has no header and the row is data."""
    first = con.execute("SELECT * FROM read_csv($f, header = false, all_varchar = true, hive_partitioning = false) "
                        "LIMIT 1",
                        {"f": literal_file(name)}).fetchall()
    raw = list(first[0]) if first else []
    seen: dict[str, int] = {}
    repeats = []
    for i, column in enumerate(raw):
        if column is not None and seen.setdefault(sql_fold(column), i) != i:
            repeats.append((seen[sql_fold(column)], i))
    if not repeats:
        return
    described = con.execute("DESCRIBE SELECT * FROM read_csv($f, hive_partitioning = false)", {"f": literal_file(name)}).fetchall()
    sniffed = [row[0] for row in described]
    renamed = {i for _, i in repeats}
    if len(sniffed) == len(raw) and all(sniffed[i] == raw[i] for i in range(len(raw)) if i not in renamed):
        a, b = raw[repeats[0][0]], raw[repeats[0][1]]
        raise DataError(f"{name}: the header names columns '{a}' and '{b}', which differ only in letter case (or "
                        "not at all); SQL names ignore case, so one would be renamed silently: rename one of them "
                        "in the file")


def _check_inside(ws: Workspace, part: Part, label: str) -> None:
    """A dataset file other than the workspace's own may only read sources inside the workspace."""
    root = os.path.realpath(ws.root)
    for name in part.files:
        if os.path.commonpath([root, os.path.realpath(name)]) != root:
            raise DataError(f"{label}: {part.lead}source '{part.source}' reads {name}, outside the workspace "
                            f"{ws.root}: only data/dataset.yaml (or a file given to `riskconsole load`) may read files elsewhere")


def _check_names(part: Part, label: str) -> None:
    """No source column (nor a renamed one) may be called like an internal column."""
    where = "source column" if part.kind == "events" else f"{part.where}: source column"
    for name in part.types:
        renamed = name in part.rename and name not in _STAGING and not name.startswith("__")
        problem = None if renamed else internal_collision(name, label, where, fix=_fix(part))
        if problem:
            raise DataError(problem)
    for name in part.rename.values():
        problem = internal_collision(name, label, f"{part.where}: rename: column", fix="rename it to another name")
        if problem:
            raise DataError(problem)
    _check_renamed_apart(part, label)


def _check_renamed_apart(part: Part, label: str) -> None:
    """No rename target is the name of another column (DuckDB would silently load that one as NAME_1); two targets
    alike are refused by the config model."""
    loaded: dict[str, list[str]] = {}
    for column in part.types:
        loaded.setdefault(sql_fold(part.loaded_name(column)), []).append(column)
    for source, target in part.rename.items():
        others = [c for c in loaded.get(sql_fold(target), []) if c != source]
        if source in part.types and others:
            raise DataError(f"{label}: {part.where}.rename.{source}: '{target}' is taken, the source already has a "
                            f"column '{others[0]}' (names ignore letter case): rename to another name, or rename "
                            f"'{others[0]}' too")


EVENT_ROLES = ("id", "time", "label", "label_time", "amount", "prod_action", "explore", "propensity")
_STAGING = ("_file", "ordinality", "file_row_number")  # names the reader itself adds: no rename can free them


def _fix(part: Part) -> str:
    """How to get rid of a source column named like an internal one."""
    if part.kind != "events":
        return "rename the column in the source file, or give it another name under rename:"
    return "rename the column in the source file"


def _check_types(part: Part, label: str) -> None:
    """Every declared type is a DuckDB type."""
    prefix = "" if part.kind == "events" else f"{part.where}."
    for column, dtype in part.declared.items():
        try:
            exp.DataType.build(dtype, dialect="duckdb")
        except Exception:  # noqa: BLE001 - any parse failure means "not a type"
            raise DataError(f"{label}: {prefix}types.{column}: '{dtype}' is not a DuckDB type "
                            "(e.g. INTEGER, BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE, TIMESTAMP)") from None


def _check_present(part: Part, wanted: list[tuple[str, str | None]], label: str) -> None:
    """Every (place, column) names a column of the part's source, with a did-you-mean."""
    prefix = "" if part.kind == "events" else f"{part.where}."
    for where, column in wanted:
        if column and column not in part.types:
            near = closest(column, part.types)
            hint = f"did you mean '{near}'?" if near else f"source has: {', '.join(part.types)}"
            raise DataError(f"{label}: {prefix}{where}: column '{column}' is not in the source ({hint})")


def _check_columns(part: Part, dataset: Dataset, label: str) -> None:
    """Role, typed and renamed columns of one part exist in its source."""
    _check_types(part, label)
    _check_present(part, _wanted(part, dataset), label)


def _wanted(part: Part, dataset: Dataset) -> list[tuple[str, str | None]]:
    """(where the dataset file names it, column) of every source column the dataset maps, types or renames."""
    if part.kind == "events":
        roles = dataset.columns
        wanted = [(f"columns.{k}", getattr(roles, k)) for k in EVENT_ROLES]
        wanted += [("columns.entities", c) for c in roles.entities]
        wanted += [("columns.label_derived", c) for c in roles.label_derived]
    elif part.kind == "stream":
        stream = dataset.streams[part.name]
        wanted = [("columns.time", stream.columns.time), ("columns.id", stream.columns.id)]
        wanted += [("rename", c) for c in stream.rename]
    else:
        table = dataset.tables[part.name]
        wanted = [("key", table.key), ("valid_from", table.valid_from), ("label", table.label),
                  ("label_time", table.label_time)]
        if table.range:
            wanted += [("range.low", table.range.low), ("range.high", table.range.high)]
        wanted += [("rename", c) for c in table.rename]
    return wanted + [(f"types.{c}", c) for c in part.declared]


def _check_valid_from(con: duckdb.DuckDBPyConnection, part: Part, table: Table, label: str) -> None:
    """`valid_from` is a time: a timestamp column, or text of which the first rows parse."""
    column = table.valid_from
    raw = part.types[column].upper()
    declared = part.declared.get(column, "").upper()
    if raw in times.TEMPORAL or _is_time(raw):
        return
    fix = "name a timestamp column, or give time_format: for text times"
    if raw not in ("VARCHAR", "JSON") and not _is_time(declared):
        raise DataError(f"{label}: {part.where}.valid_from: column '{column}' is {part.types[column]}, not a time ({fix})")
    text = fill("CAST(:c AS VARCHAR)", c=ident(column))
    parsed = times.parse_text(text, times.formats_of(part.time_format, column))
    query = (f"SELECT count(v), count(p) FROM (SELECT {render(alias(text, 'v'))}, {render(alias(parsed, 'p'))} "
             f"FROM ({part.reader} LIMIT 1000))")
    seen, ok = con.execute(query, {"files": literal_files(part.readable)}).fetchall()[0]
    if seen and not ok:
        tried = times.described(times.formats_of(part.time_format, column))
        raise DataError(f"{label}: {part.where}.valid_from: column '{column}' is not {tried}: {fix}")


def _check_format_columns(part: Part, label: str) -> None:
    """A `time_format:` map names time columns of the source (a typo would silently leave a column ISO-only)."""
    where = "time_format" if part.kind == "events" else f"{part.where}.time_format"
    _check_present(part, [("time_format", c) for c in part.time_format], label)
    timed = sorted(c for c, t in target_types(part).items() if t == "TIMESTAMP")
    for column, formats in part.time_format.items():
        if not times.formats_of(formats):
            raise DataError(f"{label}: {where}.{column}: no format given; write one (e.g. '%d.%m.%Y') or drop the "
                            "column from the map to read it as ISO-8601")
        if column not in timed:
            raise DataError(f"{label}: {where}: column '{column}' is not a time column here (time columns: "
                            f"{', '.join(timed) or 'none'}); type it TIMESTAMP under types: to parse it as a time")


def _check_not_empty(con: duckdb.DuckDBPyConnection, part: Part, label: str,
                     remote: Callable[[], Remote | None] | None = None) -> None:
    """A source without a single row is an error (reading one row is enough to know; a source at a URI whose
    samples hold none: asked of all its files)."""
    one = con.execute(f"SELECT count(*) FROM ({part.reader} LIMIT 1)", {"files": literal_files(part.readable)})
    if one.fetchall()[0][0]:
        return
    reader = remote() if remote is not None and part.remote and len(part.samples) < len(part.files) else None
    if reader is not None and reader.has_rows(part.fmt, part.files, _has_header(con, part)):
        return
    raise DataError(f"{label}: {part.lead}source '{part.source}' has no rows")


def _remote(dataset: Dataset, engine: str | None, spark: Any) -> Callable[[], Remote | None]:
    """What lists and samples a source at a URI: Spark's readers with engine spark (started when first asked), else
    None (such a source is refused)."""
    def make() -> Remote | None:
        from riskconsole.engines import choose

        if choose(engine, dataset) != "spark":
            return None
        from riskconsole.engines.spark_sources import remote

        if not made:
            made.append(remote(spark, dataset.spark))
        return made[0]
    made: list[Remote] = []
    return make


def _has_header(con: duckdb.DuckDBPyConnection, part: Part) -> bool:
    """Whether the source's (first readable) CSV file starts with a header, as DuckDB's sniffer sees it; True when
    it cannot tell (an empty file)."""
    if part.fmt != "csv":
        return False
    try:
        return bool(con.execute("SELECT HasHeader FROM sniff_csv($f)", {"f": literal_file(part.readable[0])})
                    .fetchall()[0][0])
    except (duckdb.Error, IndexError):
        return True


SHOWN_VALUES = 10  # the most frequent bad values an outcome role's error names, with their counts
DECISION_WORDS = {"allow": ("approve", "approved", "accept", "accepted", "allowed", "pass", "passed"),
                  "review": ("manual_review", "challenge", "challenged", "reviewed"),
                  "block": ("decline", "declined", "reject", "rejected", "deny", "denied", "blocked")}


def _check_outcome_roles(con: duckdb.DuckDBPyConnection, part: Part, dataset: Dataset, label: str) -> None:
    """prod_action, explore and propensity values are checked over the whole source before a load: a bad one is a
    load error, not a quarantined row (dropping explored rows would silently bias the inverse-propensity estimate).
    A source at a URI: over its samples here, over every row when Spark reads it (spark_load.py)."""
    for bad, text, message in outcome_checks(dataset, part.read_types):
        counted = (f"SELECT {render(text)} AS v, count(*) AS n FROM ({part.reader}) WHERE {render(bad)} "
                   "GROUP BY ALL")
        rows = con.execute(f"SELECT v, n, count(*) OVER (), sum(n) OVER () FROM ({counted}) "
                           f"ORDER BY n DESC, v NULLS FIRST LIMIT {SHOWN_VALUES}",
                           {"files": literal_files(part.readable)}).fetchall()
        if rows:
            raise DataError(outcome_error(label, message, [(v, n) for v, n, _, _ in rows], rows[0][2], rows[0][3],
                                          dataset.prod_action_values))


def outcome_error(label: str, message: str, values: list[tuple[str | None, int]], kinds: int, total: int,
                  mapped: dict[str, str] | None = None) -> str:
    """The load error of an outcome role: `message` with `{v}` the distinct bad values (the most frequent first,
    each with its rows; `kinds` of them in all, `total` rows) and `{fix}` the prod_action_values that reads
    production's words as decisions (`mapped`: the dataset's, kept in it)."""
    shown = ", ".join(f"{_value_text(v)} ({n:,} row{'s' if n != 1 else ''})" for v, n in values)
    if kinds > len(values):
        others = kinds - len(values)
        shown += f" and {others:,} other value{'s' if others != 1 else ''} ({total:,} rows in all)"
    return f"{label}: {message.format(v=shown, fix=_decision_fix(values, mapped or {}))}"


def _value_text(value: str | None) -> str:
    """A bad value as an error names it: its first 40 characters, `…` where it is longer (two values alike that far
    are not one value named twice)."""
    if value is None:
        return "empty"
    shown = printable(value)
    return f"'{shown[:40]}…'" if len(shown) > 40 else f"'{shown}'"


SUGGESTED_CHARS = 100  # a longer bad value is not written into the suggested prod_action_values (nor fits a YAML key)
SUGGESTED_LINE = 300  # a longer suggested prod_action_values names the file's entries as `…`


def _decision_fix(values: list[tuple[str | None, int]], mapped: dict[str, str]) -> str:
    """The prod_action_values that would read the bad values, to paste over the dataset's (`mapped`, kept in it; `…`
    where it would make the line longer than SUGGESTED_LINE):
    ` (e.g. prod_action_values: {approve: allow, decline: block})` for common words of a decision; for other words,
    an example of the form (which decision each means only the team knows); for empty values, `"": allow` if that is
    what an empty decision means. A key is the value as written (only what the load trims, trimmed), quoted where
    YAML would read it otherwise: pasted, it maps that very value."""
    meant = {word: decision for decision, words in DECISION_WORDS.items() for word in words}
    words: dict[str, str] = {}  # a bad value's key -> its lower case (one key per word, whatever its case)
    for v, _ in values:
        word = (v or "").strip(TRIMMED)
        if word and len(word) <= SUGGESTED_CHARS and word.lower() not in words.values():
            words[word] = word.lower()

    def mapping(new: dict[str, str]) -> str:  # the file's entries too, or `…,` where they would not fit one line
        def pairs(entries: dict[str, str]) -> str:
            return ", ".join(f"{_yaml_key(w)}: {d}" for w, d in entries.items())
        whole = pairs({**mapped, **new})
        return f"prod_action_values: {{{whole if len(whole) <= SUGGESTED_LINE else '…, ' + pairs(new)}}}"

    known = {w: meant[key] for w, low in words.items()
             if (key := low.strip().replace(" ", "_").replace("-", "_")) in meant}  # 'approve\t' means allow too
    if known:
        return f" (e.g. {mapping(known)})"
    if words:
        first = next(iter(words))
        return f" (e.g. {mapping({first: 'block'})} if '{printable(first)}' means block)"
    if any(v is None or not v.strip(TRIMMED) for v, _ in values):
        return f" (e.g. {mapping({'': 'allow'})} if an empty decision means allow)"
    return ""


def _yaml_key(word: str) -> str:
    """A word as a key of a YAML flow mapping that reads back as exactly that text: plain where it can be, else
    single-quoted; double-quoted with YAML's escapes where it holds a character a message shows escaped (a tab, a
    line break, a zero-width or no-break space), which plain or single-quoted YAML would read as a backslash."""
    import yaml

    if not word:
        return '""'
    if word.isprintable():
        for written in (word, "'" + word.replace("'", "''") + "'"):
            try:
                back = yaml.safe_load(f"{{{written}: 1}}")
            except yaml.YAMLError:
                continue
            if isinstance(back, dict) and list(back) == [word]:
                return written
    escaped = {"\\": "\\\\", '"': '\\"'}
    return '"' + "".join(escaped.get(c) or (c if c.isprintable() else c.encode("unicode_escape").decode())
                         for c in word) + '"'


def action_word(text: exp.Expression, words: dict[str, str]) -> exp.Expression:
    """A prod_action's decision as lower-case text: allow, review or block (any case), or a word `words` (the
    dataset's prod_action_values) maps; NULL where empty, unless an empty key (`""`) is mapped; any other value as it
    reads lower case and trimmed (the outcome checks refuse it)."""
    word = fill("lower(trim(:t))", t=text)
    if not words:
        return word
    return exp.Case(ifs=word_branches(word, {word_key(k): v for k, v in words.items()}, ACTIONS),
                    default=fill("nullif(:w, '')", w=word))


def word_key(key: str) -> str:
    """A key of a word mapping (prod_action_values, label_values) as the load matches it: `""` where the load's trim
    leaves nothing; an ASCII key lower case and space-trimmed (as every engine reads it: two keys alike so are one);
    any other key as written, for the engine to lower and trim (`word_branches`)."""
    if not key.strip(TRIMMED):
        return ""
    return key.strip(" ").lower() if key.isascii() else key


def word_branches(word: exp.Expression, keyed: dict[str, Any], order: tuple) -> list[exp.If]:
    """The CASE branches that read `word` (a value's lower(trim(...))) through `keyed` (keys by `word_key`): NULL or
    empty as the empty key says, if it is mapped; then each of `order` where the word is one of its keys. A key is
    lowered and trimmed by the engine, as the value is, so it reads exactly the values written as it (Python's lower
    and strip differ from DuckDB's: 'İPTAL', a final 'Σ', a tab); an ASCII key is its text, already so (a load with
    20,000 keys rendered as lower(trim(key)) took 3x longer)."""
    def lowered(key: str) -> exp.Expression:
        return lit(key) if key.isascii() else fill("lower(trim(:k))", k=lit(key))

    ifs = [exp.If(this=exp.In(this=word, expressions=[lowered(k) for k in keys]), true=lit(value)) for value in order
           if (keys := [k for k, v in keyed.items() if v == value and k])]
    if "" in keyed:
        ifs.insert(0, exp.If(this=fill(":w IS NULL OR :w = ''", w=word), true=lit(keyed[""])))
    return ifs


def raw_text(column: str, raw_type: str | None) -> exp.Expression:
    """A raw column's value as text, as the load casts it: a JSON string's text without its quotes, an object or
    number as its JSON text; anything else cast to VARCHAR."""
    if raw_type == "JSON":
        return fill("json_extract_string(:c, '$')", c=ident(column))
    return fill("CAST(:c AS VARCHAR)", c=ident(column))


def number_text(text: exp.Expression, decimal: str) -> exp.Expression:
    """The text a number is cast from: with `decimal_separator: ','` a comma made a point (723,03 -> 723.03). A number
    grouped in thousands is read only where it cannot be read otherwise: grouped AND with its decimal part in the
    source's mark (1.234,56 with a decimal comma, 1,234.56 with a point: 1234.56); grouped without one (1.234, 1,234:
    a thousand, or one and a bit?) is NULL, hence quarantined, never misread; with a decimal comma, any other text
    holding a point (0.5) is NULL too."""
    grouped = fill("regexp_full_match(:t, :re)", t=text, re=lit(_UNAMBIGUOUS[decimal]))
    if decimal == ",":
        return fill("CASE WHEN NOT contains(:t, '.') THEN replace(:t, ',', '.') "
                    "WHEN :g THEN replace(replace(:t, '.', ''), ',', '.') END", t=text, g=grouped)
    return fill("CASE WHEN contains(:t, ',') AND :g THEN replace(:t, ',', '') ELSE :t END", t=text, g=grouped)


# grouped in thousands with a decimal part in the source's mark: nothing else they could mean
_UNAMBIGUOUS = {",": r"\s*[-+]?\d{1,3}(\.\d{3})+,\d+\s*", ".": r"\s*[-+]?\d{1,3}(,\d{3})+\.\d+\s*"}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
             "INT")


def is_integer(target: str) -> bool:
    return target.upper().startswith(_INTEGERS)


def is_number(target: str) -> bool:
    return target.upper().startswith((*_INTEGERS, "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC"))


def cast_value(column: str, raw_type: str | None, target: str, decimal: str) -> exp.Expression:
    """A raw column cast to `target` as the load casts it, NULL where it does not convert: text (a CSV's, a JSON
    string's) from its text, a number in the source's decimal mark (`number_text`); a JSON number or boolean as
    DuckDB's JSON reader converts it; a column the reader typed by a cast."""
    if raw_type in ("JSON", "VARCHAR"):
        text = raw_text(column, raw_type)
        source = number_text(text, decimal) if is_number(target) else text
    else:
        source = ident(column)
    to = exp.DataType.build(target, dialect="duckdb")
    cast = exp.TryCast(this=source, to=to)
    if raw_type == "JSON" and target != "VARCHAR":  # a string by its text (a CSV's rules), else DuckDB's JSON reading
        json = exp.TryCast(this=fill("CAST(:c AS JSON)", c=ident(column)), to=to)  # (JSON carried as text on Spark)
        cast = fill("CASE WHEN json_type(:c) = 'VARCHAR' THEN :t ELSE :j END", c=ident(column), t=cast, j=json)
    return cast


def outcome_checks(dataset: Dataset, raw: dict[str, str] | None = None) -> list[tuple[exp.Expression,
                                                                                        exp.Expression, str]]:
    """(a raw row's value is bad, the column's text, the message with `{v}` for the value) of every outcome role;
    `raw`: the columns' types as the reader gives them (a JSON column's text is its string's)."""
    roles = dataset.columns
    if not roles.prod_action:
        return []

    def text(column: str) -> exp.Expression:
        return raw_text(column, (raw or {}).get(column))

    def named(column: str) -> str:  # a column's name in a message template (`{v}`, `{fix}`): its braces doubled
        return column.replace("{", "{{").replace("}", "}}")

    # the propensity as the load will read it: a value the check passes and the load then quarantined would drop
    # production-blocked rows from the estimate without an error (0.5 beside decimal_separator ',')
    propensity = cast_value(roles.propensity, (raw or {}).get(roles.propensity), "DOUBLE",
                            dataset.decimal_separator) if roles.propensity else None
    mark = (", written with the source's decimal mark (decimal_separator ','): 0,5, not 0.5"
            if dataset.decimal_separator == "," else "")
    word = action_word(text(roles.prod_action), dataset.prod_action_values)
    checks = [(fill(":w IS NULL OR :w NOT IN ('allow', 'review', 'block')", w=word), text(roles.prod_action),
               f"columns.prod_action: column '{named(roles.prod_action)}' holds {{v}}; every row needs what production "
               "decided: allow, review or block (any case), or a word mapped under prod_action_values{fix}")]
    if roles.propensity:  # a value first (it names the decimal mark), then explored rows without one
        value = text(roles.propensity)
        checks.append((fill(":r IS NOT NULL AND trim(:r) <> '' AND (:p IS NULL OR NOT (:p > 0 AND :p <= 1))",
                            r=value, p=propensity), value, f"columns.propensity: column '{named(roles.propensity)}' "
                       "holds {v}; a propensity must be a number in (0, 1] (or empty on rows not explored)" + mark))
    if roles.explore:
        flag = fill("lower(trim(:t))", t=text(roles.explore))
        checks.append((fill(":f IS NOT NULL AND :f NOT IN ('0', '1', 'true', 'false', '')", f=flag),
                       text(roles.explore), f"columns.explore: column '{named(roles.explore)}' holds {{v}}; use 1 "
                       "(let through at random), 0 or empty"))
        checks.append((fill(":f IN ('1', 'true') AND (:p IS NULL OR NOT (:p > 0 AND :p <= 1))", f=flag,
                            p=propensity), text(roles.propensity), f"columns.propensity: column "
                       f"'{named(roles.propensity)}' holds {{v}} on explored rows; the chance it was let through must "
                       "be a number in (0, 1]"))
    return checks


def _empty_table(con: duckdb.DuckDBPyConnection, part: Part) -> None:
    """The part's table with the loaded schema and no rows, for binding the frame query without data."""
    columns = [alias(exp.cast(lit(None), exp.DataType.build(t, dialect="duckdb")), part.loaded_name(c))
               for c, t in target_types(part).items()]
    con.execute(f"CREATE OR REPLACE TABLE {part.table} AS " + render(exp.select(*columns).where("false")))


def events_part(dataset: Dataset, files: list[str], fmt: str, types: dict[str, str]) -> Part:
    """The decision stream as a Part: id and time required, id unique, label/amount roles."""
    roles = dataset.columns
    return Part("events", "events", "source", dataset.source, files, fmt, types, dict(dataset.types),
                dataset.time_format, dataset.decimal_separator, {k: getattr(roles, k) for k in EVENT_ROLES},
                required=((roles.id, "missing id"), (roles.time, "missing time")), unique=(roles.id,),
                times=tuple(c for c in (roles.time, roles.label_time) if c), order=(roles.time, roles.id),
                labels=dict(dataset.label_values), actions=dict(dataset.prod_action_values))


def stream_part(name: str, stream: Stream, files: list[str], fmt: str, types: dict[str, str]) -> Part:
    """A context stream as a Part: time required, the optional id unique."""
    cols = stream.columns
    required = ((cols.id, "missing id"),) if cols.id else ()
    return Part("stream", name, f"streams.{name}", stream.source, files, fmt, types, dict(stream.types),
                stream.time_format, stream.decimal_separator, {"id": cols.id, "time": cols.time}, required + ((cols.time, "missing time"),),
                unique=(cols.id,) if cols.id else (), times=(cols.time,), order=(cols.time,) + ((cols.id,) if cols.id else ()),
                rename=dict(stream.rename))


def table_part(name: str, table: Table, files: list[str], fmt: str, types: dict[str, str]) -> Part:
    """A table as a Part: its key (and valid_from) or range bounds required; one row per key (and valid_from); an
    entity label read like the events' (1 / 0 / empty, or words under label_values) and its label_time as a time."""
    if table.range:
        cols = (table.range.low, table.range.high)
        return Part("table", name, f"tables.{name}", table.source, files, fmt, types, dict(table.types),
                    table.time_format, table.decimal_separator, required=tuple((c, f"missing {c}") for c in cols),
                    order=cols, rename=dict(table.rename))
    cols = (table.key,) + ((table.valid_from,) if table.valid_from else ())
    dated = (table.label_time,) if table.label_time and table.label_time not in cols else ()
    return Part("table", name, f"tables.{name}", table.source, files, fmt, types, dict(table.types),
                table.time_format, table.decimal_separator, {"label": table.label, "label_time": table.label_time},
                required=tuple((c, f"missing {c}") for c in cols), unique=cols, times=cols[1:] + dated, order=cols,
                rename=dict(table.rename), labels=dict(table.label_values))


def _parts(ws: Workspace, con: duckdb.DuckDBPyConnection, dataset: Dataset, label: str, confined: bool,
           remote: Callable[[], Remote | None], scratch: Callable[[], Path], home: Path | None = None) -> list[Part]:
    """Every source of the dataset (decision events first), with its files and sniffed types. A source at a URI is
    listed and sampled by `remote()` (its types are sniffed from the samples); `confined`: the dataset file may read
    only the workspace's own files (no URI)."""
    specs: list[tuple[Callable[..., Part], tuple, Dataset | Stream | Table, str]] = [
        (events_part, (dataset,), dataset, "")]
    specs += [(stream_part, (name, stream), stream, f"streams.{name}") for name, stream in dataset.streams.items()]
    specs += [(table_part, (name, table), table, f"tables.{name}") for name, table in dataset.tables.items()]
    parts = []
    for make, args, spec, where in specs:
        prefix = f"{label}: {where + ': ' if where else ''}"
        if not is_uri(spec.source):
            files, fmt = source_files(ws, spec, label, where, home)
            parts.append(make(*args, files, fmt, column_types(con, fmt, files, spec.decimal_separator)))
            continue
        if confined:
            raise DataError(f"{prefix}source '{spec.source}' is a URI: only data/dataset.yaml (or a file given to "
                            "`riskconsole load`) may read files outside the workspace")

        def folder() -> Path:
            return Path(tempfile.mkdtemp(prefix=f"{len(parts):03d}-", dir=scratch()))
        files, fmt, samples, spelled, later, capped = _uri_part(con, spec, prefix, remote(), folder)
        try:
            types = column_types(con, fmt, [samples[f] for f in files if f in samples], spec.decimal_separator, later)
        except duckdb.Error as err:
            raise DataError(f"{prefix}source '{spec.source}': {_in_samples(err, samples)}") from None
        except DataError as err:  # a sample's header or keys refused, naming the sample
            raise DataError(_in_samples(err, samples)) from None
        parts.append(replace(make(*args, files, fmt, types), samples=samples, spelled=spelled, capped=capped))
    return parts


def _check_part(con: duckdb.DuckDBPyConnection, part: Part, dataset: Dataset, label: str,
                shown: Callable[[str], str] = str) -> None:
    """Names, columns, time formats of one source; its empty table is created for binding the features. A mapped
    column missing from a local CSV source because a ragged line threw DuckDB's sniffer off is refused naming that
    line (`ragged.misread`)."""
    _check_names(part, label)
    try:
        _check_columns(part, dataset, label)
    except DataError:
        missing = [c for _, c in _wanted(part, dataset) if c and c not in part.types]
        said = ragged.misread(con, part.files, missing, shown) if part.fmt == "csv" and not part.remote else None
        if said is None:
            raise
        raise DataError(f"{label}: {said}") from None
    said = _misread_file(con, part, dataset, shown)
    if said:
        raise DataError(f"{label}: {said}")
    prefix = label if part.kind == "events" else f"{label}: {part.where}"
    times.check_formats(con, times.formats_of(part.time_format), prefix)
    if isinstance(part.time_format, dict):
        _check_format_columns(part, label)
    if part.kind == "table" and dataset.tables[part.name].valid_from:
        _check_valid_from(con, part, dataset.tables[part.name], label)
    _empty_table(con, part)


def _misread_file(con: duckdb.DuckDBPyConnection, part: Part, dataset: Dataset,
                  shown: Callable[[str], str]) -> str | None:
    """A file of a local CSV source of several files that a ragged line threw DuckDB's sniffer off (read with
    another delimiter, its header taken for data), named by that line: the other files hold the mapped columns,
    so the source seemed whole while that file's rows would be quarantined as missing them, one row lost as a
    header. Looked for only when the files' columns differ from the first file's (one sniff); then every file is
    sniffed (in parallel: ~1 ms a small file) and each one lacking a mapped column is read for a ragged line."""
    if part.fmt != "csv" or part.remote or len(part.files) < 2:
        return None
    if set(part.types) <= set(ragged.sniffed_columns(part.files[:1])[0]):
        return None
    wanted = [c for _, c in _wanted(part, dataset) if c and c in part.types]
    for path, columns in zip(part.files, ragged.sniffed_columns(part.files)):
        missing = [c for c in wanted if c not in columns]
        said = ragged.misread(con, [path], missing, shown) if missing else None
        if said:
            return said
    return None


def check_dataset(ws: Workspace, dataset_path: str | Path | None = None, trusted: bool = False,
                  dataset: Dataset | None = None, engine: str | None = None, spark: Any = None) -> Checked:
    """Every check `load` runs before reading a row; `validate` runs exactly this (and writes nothing).

    Args:
        ws: the workspace.
        dataset_path: a dataset.yaml (default: the workspace's own).
        trusted: True only for a path a local user gave (the CLI): a dataset file other than the workspace's own
            may then read sources outside the workspace.
        dataset: the spec already read from `dataset_path` (a file is read once: it may be a pipe).
        engine: `--engine` (default: $RISKCONSOLE_ENGINE, else the dataset's `engine:`): a source at a URI is
            listed and sampled through Spark (a session is started only then), and refused on engine duckdb.
        spark: the SparkSession to use for that (default: one started from the dataset's `spark:` settings).

    Raises:
        RiskConsoleError: one line naming the dataset file, the item and the fix.
    """
    path = Path(os.path.abspath(dataset_path)) if dataset_path else ws.dataset_path  # not resolved: /dev/stdin
    label = ws.rel(path)
    dataset = dataset or ws.dataset(path)
    confined = not trusted and path.resolve() != ws.dataset_path.resolve()  # may read the workspace's files only
    remote = _remote(dataset, engine, spark)
    folder: list[tempfile.TemporaryDirectory] = []

    def scratch() -> Path:
        if not folder:
            folder.append(tempfile.TemporaryDirectory(prefix="riskconsole-samples-"))
        return Path(folder[0].name)

    con = connect_duckdb()
    try:
        con.execute("SET TimeZone = 'UTC'")
        home = path.parent.parent if path.parent.name == "data" else None  # OTHER/data/dataset.yaml
        parts = _parts(ws, con, dataset, label, confined, remote, scratch,
                       home if home is not None and home.resolve() != ws.root.resolve() else None)
        if confined:
            for part in parts:
                _check_inside(ws, part, label)
        for part in parts:
            _check_part(con, part, dataset, label, ws.rel)
        build_frame(con, dataset, label)  # parses and binds every feature over the real schema (no rows)
        for part in parts:
            _check_not_empty(con, part, label, remote)
        _check_outcome_roles(con, parts[0], dataset, label)
    except duckdb.Error as err:  # a ragged CSV line the sniffer or a check's read met: named by file and line
        raise DataError(f"{label}: {ragged.explain(con, err, ws.rel) or str(err).splitlines()[0]}") from None
    finally:
        con.close()
    events = parts[0]
    return Checked(dataset, path, label, events.files, events.fmt, events.types, parts, folder[0] if folder else None,
                   ws.rel)


def _is_time(dtype: str) -> bool:
    """TIMESTAMP in any of its spellings (with zone, precision, DATETIME): loaded as a UTC TIMESTAMP."""
    return dtype.strip().upper().startswith(("TIMESTAMP", "DATETIME"))


def target_types(part: Part) -> dict[str, str]:
    """DuckDB type of every loaded column of a source: roles fixed by the contract, the rest inferred or declared."""
    # a column DuckDB saw only nulls in (a JSON sample; a Parquet column every file holds as pyarrow's null type,
    # as an all-empty CSV column) loads as text
    target = {c: ("VARCHAR" if t in ("JSON", NULL_TYPE) else t) for c, t in part.types.items()}
    target.update(part.declared)
    target = {c: ("TIMESTAMP" if _is_time(t) else t) for c, t in target.items()}  # every time is UTC, no zone
    roles = part.roles
    fixed = {roles.get("amount"): "DOUBLE", roles.get("label"): "TINYINT", roles.get("prod_action"): "VARCHAR",
             roles.get("propensity"): "DOUBLE", **{c: "TIMESTAMP" for c in part.times}}
    if part.kind != "table":
        fixed[roles.get("id")] = "VARCHAR"
    target.update({c: t for c, t in fixed.items() if c})
    return target
