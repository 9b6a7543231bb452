"""Reading a source on engine spark as DuckDB's load reads it: what Spark can read exactly (else why not), and the
raw rows with DuckDB's positions (issue 15; the load itself is spark_load.py).

A CSV file is read with the dialect DuckDB's sniffer finds in it (delimiter, quote, escape, header; files of one
dialect in one read; quoted line breaks kept), Parquet with its own types; every raw column must come out with the
DuckDB type DuckDB's reader gives it. Rows are numbered as DuckDB numbers them: the file's place in the sorted
paths (`__file`) and a number increasing down its file (`__at`), from which `file_row` gives the row's place in
its file (the quarantine's `row`) once the load's one pass has found every file's first `__at`: numbering rows
needs no pass of its own, no shuffle.
"""

from __future__ import annotations

import copy
import functools
import os
import posixpath
import re
import threading
import unicodedata
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole import ragged
from riskconsole.engines import spark_json
from riskconsole.engines.spark_store import arrow_path, literal
from riskconsole.errors import DataError
from riskconsole.escape import printable
from riskconsole.sources import NULL_TYPE, Part, colon_refusal, literal_file, target_types
from riskconsole.sqlbuild import alias, fill, ident, render

READ_ON_SPARK = ("csv", "parquet", "json")  # JSON: parsed by DuckDB on the executors (spark_json.py)
POSITION = ("__file", "__at")  # source order: file (1-based place in the sorted paths), a number increasing down it


def refusal(con: duckdb.DuckDBPyConnection, part: Part) -> str | None:
    """Why engine spark cannot read `part` as DuckDB reads it (None when it can): its format, a CSV dialect Spark has
    no option for, files with different headers, or a loaded type without an exact Spark type."""
    if part.fmt not in READ_ON_SPARK:
        return f"{part.fmt.upper()} sources are read by DuckDB's reader only so far"
    colon = colon_refusal(part.files)
    if colon:
        return colon
    if part.fmt == "json":
        why = spark_json.refusal(con, part, _type_refusal)
        if why:
            return why
    if part.fmt == "csv":
        try:
            dialects = [csv_dialect(con, f) for f in part.readable]  # a URI's: its first files' heads
        except duckdb.Error as err:
            return f"DuckDB's sniffer cannot read it ({str(err).splitlines()[0]})"
        for path, d in zip(part.files, dialects):
            if d["skip"]:
                return f"{path} starts with {d['skip']} line(s) before its header (Spark has no option to skip them)"
            if d["comment"]:
                return f"{path} has comment lines (Spark and DuckDB skip them differently)"
            if d["columns"] != list(part.types):
                return (f"{path} has the columns {', '.join(d['columns'])} where the source has "
                        f"{', '.join(part.types)} (Spark reads every file's columns by their place)")
    for column, dtype in target_types(part).items():
        why = _type_refusal(con, dtype)
        if why:
            return f"column '{column}' loads as {dtype}, {why}"
    return None


def _type_refusal(con: duckdb.DuckDBPyConnection, dtype: str) -> str | None:
    """None when a DuckDB type goes through Arrow to Spark and back unchanged (what the events Parquet needs)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    if dtype == NULL_TYPE:
        return "which Spark cannot store (DuckDB saw no value but null): declare its type under types:"
    typed = exp.cast(exp.null(), exp.DataType.build(dtype, dialect="duckdb"))
    query = render(exp.select(alias(typed, "v")))
    duck = con.execute(f"SELECT column_type FROM (DESCRIBE {query})").fetchall()[0][0]
    arrow = con.sql(query).to_arrow_table().schema
    try:
        back = to_arrow_schema(from_arrow_schema(arrow, prefer_timestamp_ntz=True), timezone="UTC")
    except (TypeError, ValueError) as err:
        return f"which Spark has no type for ({str(err).splitlines()[0][:80]})"
    seen = _duck_types(con, back)["v"]
    return None if seen == duck else f"which Spark would store as {seen}"


_DIALECTS: dict[tuple[str, int, int], dict[str, Any]] = {}  # (path, size, mtime_ns) -> dialect: sniffed once


def csv_dialect(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, Any]:
    """The dialect DuckDB's sniffer finds in one CSV file (delimiter, quote, escape, header, columns, ...); a file
    unchanged since (same size and modification time) is not sniffed again (`check`, the load's `refusal` and
    `_read_csv` each ask)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIALECTS:
        if len(_DIALECTS) > 10_000:
            _DIALECTS.clear()
        _DIALECTS[key] = _sniffed(con, path)
    return copy.deepcopy(_DIALECTS[key])


SNIFF_THREADS = 8  # DuckDB sniffs files in parallel cursors (it releases the GIL): 12,000 small files took 12.8 s


def csv_dialects(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[dict[str, Any]]:
    """`csv_dialect` of every file, sniffed in parallel threads (one cursor each) when there are many."""
    if len(paths) < 2 * SNIFF_THREADS:
        return [csv_dialect(con, path) for path in paths]
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()

    def one(path: str) -> dict[str, Any]:
        if not hasattr(local, "cursor"):
            local.cursor = duckdb.connect()  # a connection of its own: cursors of the worker's shared one wait
        return csv_dialect(local.cursor, path)

    with ThreadPoolExecutor(min(SNIFF_THREADS, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, paths))


FOLDER_READ_MIN = 64  # files of one folder read by naming the folder: Spark checks a named file ~2 ms apiece


def read_files(reader: Any, fmt: str, paths: list[str], part: Part) -> Any:
    """`reader` over the local files `paths`. Many files of one folder are read by naming the folder, with a
    filter on their suffix, when Spark then lists exactly these files (12,000 named files took Spark 25 s to look
    up one by one, their folder 4 s; a folder holding other files is read file by file, as before)."""
    def each(named: list[str]) -> Any:  # parquet() takes paths as arguments, csv() a list
        return getattr(reader, fmt)(*named) if fmt == "parquet" else getattr(reader, fmt)(named)

    read = getattr(reader, fmt)
    folder = posixpath.dirname(paths[0]) if paths else ""
    if part.remote or len(paths) < FOLDER_READ_MIN or any(posixpath.dirname(p) != folder for p in paths):
        return each([literal(p) for p in paths])
    suffix = posixpath.splitext(paths[0])[1]
    same = suffix and re.fullmatch(r"\.[A-Za-z0-9_]+", suffix) and all(p.endswith(suffix) for p in paths)
    whole = read(literal(folder), pathGlobFilter=f"*{suffix}" if same else "*", recursiveFileLookup=True)
    listed = {posixpath.normpath(unquote(urlparse(uri).path)) for uri in whole.inputFiles()}
    return whole if listed == {posixpath.normpath(p) for p in paths} else each([literal(p) for p in paths])


def _sniffed(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, Any]:
    row = con.execute("SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Comment, Columns FROM sniff_csv($f)",
                      {"f": literal_file(path)}).fetchall()[0]
    none = ("(empty)", "")
    return {"sep": row[0], "quote": None if row[1] in none else row[1], "escape": None if row[2] in none else row[2],
            "skip": int(row[3]), "header": bool(row[4]), "comment": None if row[5] in none else row[5],
            "columns": [c["name"] for c in row[6]]}


def _duck_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
    """DuckDB's type of every field of an Arrow schema."""
    con.register("_empty", schema.empty_table())
    try:
        return dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM _empty)").fetchall())
    finally:
        con.unregister("_empty")


# ------------------------------------------------------------------ reading


def read_raw(spark: Any, con: duckdb.DuckDBPyConnection, part: Part, label: str) -> tuple[Any, dict[str, str]]:
    """The part's rows as DuckDB's reader gives them (CSV all text, Parquet typed, JSON Lines typed by DuckDB on the
    executors: spark_json.py), with `_file`, `__file` and `__at` (`POSITION`: `file_row` numbers the rows in
    their files once every file's first `__at` is known); and the raw columns' DuckDB types. Nothing is read yet: the
    rows are parsed by the first pass over them (the load's tally).

    Raises:
        DataError: Spark reads a column with another type than DuckDB does."""
    from pyspark.sql.types import StringType, StructField, StructType

    if part.fmt == "json":
        data = spark_json.read(spark, part, {p: (i, f) for p, i, f in _file_paths(spark, part)}, label,
                               whole=spark_json.not_lines(con, part))
        _check_raw_types(con, data.drop("_file", *POSITION),
                         {c: spark_json.carried(t) for c, t in part.read_types.items()}, part, label)
        return data, part.read_types
    raw = part.read_types
    if part.fmt == "csv":
        data = _read_csv(spark, con, part, StructType([StructField(c, StringType()) for c in raw]))
    else:
        data = _read_parquet(spark, con, part, raw)
    _check_raw_types(con, data.drop("__path", "__row", "__mid"), raw, part, label)
    return _positioned(spark, data, part), raw


def _read_parquet(spark: Any, con: duckdb.DuckDBPyConnection, part: Part, raw: dict[str, str]) -> Any:
    """The Parquet files with every column of any of them (Spark's merged schema), `LOCATED` and `__row`. Where
    Spark cannot merge two files' types that DuckDB merges (pyarrow writes a column of only nulls as INT32 annotated
    Null, which Spark reads as INT: beside DOUBLE or text it refuses the merge), the files are read in groups of one
    schema (a footer read per file) and each group's columns cast to DuckDB's merged type by DuckDB on the
    executors (`_group_casts`: DuckDB's own text of a DOUBLE or a zoned time, which Spark's CAST writes otherwise)."""
    located = (*LOCATED, "_metadata.row_index AS __row")
    try:
        data = read_files(spark.read.option("mergeSchema", True), "parquet", part.files, part)
        data.schema  # noqa: B018 - Spark Connect merges the files' schemas when asked for it
        return data.selectExpr("*", *located)
    except Exception as err:  # noqa: BLE001 - an AnalysisException or a Py4J error, by Spark's client
        if not merge_refused(err):
            raise
    from riskconsole.engines.spark_load import duck_select  # spark_load imports this module
    from pyspark.sql.pandas.types import to_arrow_schema

    grouped = parquet_groups(spark, part.files)
    if grouped is None:  # Spark Connect: each file's schema read through Spark
        groups: dict[str, list[str]] = {}
        for path in part.files:
            groups.setdefault(spark.read.parquet(literal(path)).schema.json(), []).append(path)
        grouped = [(None, paths) for paths in groups.values()]
    reads = []
    for _, paths in grouped:
        read = spark.read.option("mergeSchema", True).parquet(*map(literal, paths)).selectExpr("*", *located)
        have = _duck_types(con, to_arrow_schema(read.schema, timezone="UTC"))
        located_names = [ident(c) for c in ("__path", "__mid", "__row")]
        reads.append(duck_select(read, [*_group_casts(con, raw, have, part), *located_names]))
    return functools.reduce(lambda a, b: a.unionByName(b), reads)


def _group_casts(con: duckdb.DuckDBPyConnection, raw: dict[str, str], have: dict[str, str],
                 part: Part) -> list[exp.Expression]:
    """Each raw column as DuckDB's merged type `raw` from a group of files typing it `have`: as it is, cast as
    DuckDB casts it, or null where the group lacks it or Spark read pyarrow's null type (INT) as a type DuckDB
    merged with no INT (a time, a struct: that column holds only nulls).

    Raises:
        DataError: a group's type DuckDB cannot cast to the merged one (never seen: DuckDB merged them)."""
    out = []
    for column, dtype in raw.items():
        target = exp.DataType.build("INTEGER" if dtype == NULL_TYPE else dtype, dialect="duckdb")
        seen = have.get(column)
        if seen == dtype or (dtype == NULL_TYPE and seen == "INTEGER"):
            out.append(ident(column))
            continue
        value = exp.cast(ident(column), target) if seen and _casts(con, seen, target) else None
        if value is None and seen not in (None, "INTEGER"):
            raise DataError(f"source '{part.source}': engine spark reads column '{column}' as {seen} in some files "
                            f"where DuckDB reads {dtype}: load it with engine duckdb")
        out.append(alias(value if value is not None else exp.cast(exp.null(), target), column))
    return out


def _casts(con: duckdb.DuckDBPyConnection, seen: str, target: exp.DataType) -> bool:
    """Whether DuckDB has a cast from type `seen` to `target` (bound on a null, nothing read)."""
    try:
        con.execute(render(exp.select(exp.cast(exp.cast(exp.null(), exp.DataType.build(seen, dialect="duckdb")),
                                               target)))).fetchall()
        return True
    except duckdb.Error:
        return False


def parquet_groups(spark: Any, files: list[str]) -> list[tuple[pa.Schema, list[str]]] | None:
    """The Parquet files grouped by their schema as written (each file's footer, no Spark job: `footers`), each group
    with its Arrow schema as Spark reads its files, except that a top-level column pyarrow wrote of its null type
    (INT32 annotated UNKNOWN, an INT to Spark) is null: DuckDB merges it with any other file's type as that type, where
    Spark's INT widens a BOOLEAN, TINYINT or DECIMAL. None where the footers cannot be read here (a Connect client
    that does not reach the files): the caller reads each file's schema through Spark."""
    from pyspark.sql.pandas.types import to_arrow_schema

    if not files:
        return None
    try:
        found = footers(spark, files)
    except Exception:  # noqa: BLE001 - a Connect client's file system may not reach the server's files
        from riskconsole.engines.spark import is_connect

        if not is_connect(spark):
            raise
        return None
    groups: dict[str, tuple[frozenset[str], list[str]]] = {}
    for path, (written, nulls) in zip(files, found):
        groups.setdefault(written, (nulls, []))[1].append(path)
    out = []
    for nulls, paths in groups.values():  # one file of each group read by Spark for its types
        read = to_arrow_schema(spark.read.parquet(literal(paths[0])).schema, timezone="UTC", prefers_large_types=False)
        out.append((pa.schema([pa.field(f.name, pa.null()) if f.name in nulls else f for f in read]), paths))
    return out


def footers(spark: Any, files: list[str]) -> list[tuple[str, frozenset[str]]]:
    """Each Parquet file's schema as written (a text: equal for files written alike) and its top-level columns of
    pyarrow's null type: read by the driver's JVM through Hadoop's file systems (what Spark reads), or on a Spark
    Connect client (no JVM here) by pyarrow's file systems (`spark_store.arrow_path`). 8 at a time: a remote
    store's footers are a request each."""
    from concurrent.futures import ThreadPoolExecutor

    from riskconsole.engines.spark import is_connect

    if is_connect(spark):
        import pyarrow.parquet as pq

        def footer(path: str) -> tuple[str, frozenset[str]]:
            system, where = arrow_path(path)
            schema = pq.read_schema(where, filesystem=system)
            return str(schema.remove_metadata()), frozenset(f.name for f in schema if pa.types.is_null(f.type))
    else:
        jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()

        def footer(path: str) -> tuple[str, frozenset[str]]:
            hadoop = jvm.org.apache.parquet.hadoop
            opened = hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(path), conf)
            reader = hadoop.ParquetFileReader.open(opened)
            try:
                schema = reader.getFooter().getFileMetaData().getSchema()
            finally:
                reader.close()
            return schema.toString(), frozenset(f.getName() for f in schema.getFields()
                                                if f.isPrimitive() and str(f.getLogicalTypeAnnotation()) == "UNKNOWN")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(footer, files))


def merge_refused(err: BaseException) -> bool:
    """Whether Spark refused to merge two Parquet files' schemas."""
    return any(said in str(err) for said in ("CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE", "CANNOT_MERGE_SCHEMAS"))


def spark_schema(con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> Any:
    """The Spark schema of columns of DuckDB `types` (through Arrow, as the load's batches go)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    typed = [alias(exp.cast(exp.null(), exp.DataType.build("INTEGER" if t == NULL_TYPE else t, dialect="duckdb")), c)
             for c, t in types.items()]  # a column of only nulls: INT, as Spark reads pyarrow's null type
    return from_arrow_schema(con.sql(render(exp.select(*typed).where("false"))).to_arrow_table().schema,
                             prefer_timestamp_ntz=True)


def packed(spark: Any, data: Any, part: Part) -> Any:
    """`data` in fewer tasks where Spark would split a local source of many small files into far more scan
    partitions than their bytes need: Spark counts 4 MB (`spark.sql.files.openCostInBytes`) per file opened, so
    12,000 files of 70 bytes became 375 tasks, and each task of the load's DuckDB selects pays its own set-up
    (a Python worker's batch, a cursor, the query parsed): coalesced to what the bytes need, or the default
    parallelism, whichever is more. A source at a URI (no sizes listed) is left as Spark splits it."""
    from riskconsole.engines.spark import is_connect

    if part.remote or is_connect(spark) or not part.files:
        return data
    conf = spark.conf
    sizes = [os.path.getsize(f) for f in part.files]
    split = _bytes(conf.get("spark.sql.files.maxPartitionBytes", "128m"))
    opened = _bytes(conf.get("spark.sql.files.openCostInBytes", "4m"))
    cores = spark.sparkContext.defaultParallelism
    counted = sum(sizes) + opened * len(sizes)  # as Spark's FilePartition packs files
    spark_tasks = -(-counted // min(split, max(opened, counted // max(cores, 1))))
    needed = max(cores, -(-sum(sizes) // split), -(-len(sizes) // MAX_TASK_FILES))
    return data.coalesce(needed) if spark_tasks > 2 * needed else data


# Files one coalesced task reads at most: Spark closes a CSV file's reader when the task ends, not when the file does
# (6,000 files a task ran a 512 MB driver out of memory); Spark's own packing puts 32 tiny files in a task.
MAX_TASK_FILES = 256


def _bytes(text: str) -> int:
    """A Spark size setting (`134217728b`, `128m`, `4MB`) in bytes."""
    number, unit = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", text.lower()).groups()
    return int(number) * 1024 ** " kmgt".index(unit or " ")


def _read_csv(spark: Any, con: duckdb.DuckDBPyConnection, part: Part, schema: Any) -> Any:
    """Every file as text columns, read with the dialect DuckDB's sniffer finds in it (files of one dialect in one
    read). Quoted line breaks stay in their field (multiLine); a malformed row fails the read, as in DuckDB. A source
    at a URI: the files not sampled are read with the first file's dialect, and must start with the first file's
    header as written (Spark's `enforceSchema` off, against those names; `header_error` then names the file)."""
    from pyspark.sql.types import StringType, StructField, StructType

    groups: dict[tuple, list[str]] = {}
    dialects = dict(zip(part.files, csv_dialects(con, part.readable)))
    first = dialects[part.files[0]]
    for path in part.files:
        d = dialects.get(path, first)
        groups.setdefault((d["sep"], d["quote"], d["escape"], d["header"], path not in dialects), []).append(path)
    reads = []
    for (sep, quote, escape, header, unsampled), paths in groups.items():
        quote = quote or "\u0000"  # no quoting: Spark's option for none
        options = {"header": header, "sep": sep, "quote": quote, "escape": escape or quote, "multiLine": True,
                   "mode": "FAILFAST", "encoding": "UTF-8"}
        if unsampled and header:  # checked against the first file's header as written, then named as DuckDB names it
            written = raw_header(part.readable[0], sep, quote, escape)
            read = read_files(spark.read.options(**options, enforceSchema=False).schema(
                StructType([StructField(name, StringType()) for name in written])), "csv", paths, part)
        else:
            read = read_files(spark.read.options(**options).schema(schema), "csv", paths, part)
        columns = read.columns  # by place: the names may differ
        reads.append(renamed(read, zip(columns, schema.fieldNames()), *LOCATED))
    return functools.reduce(lambda a, b: a.unionByName(b), reads)


def quoted(name: str) -> str:
    """A column name as Spark's column references take it literally (a `.` is no field, a backtick doubled)."""
    return "`" + name.replace("`", "``") + "`"


def renamed(data: Any, pairs: Iterable[tuple[str, str]], *more: str) -> Any:
    """`SELECT source AS name, …, more…` over `data` (`more`: Spark SQL expressions with their aliases) in one
    `selectExpr`: a classic session pays a Py4J round trip per Column object it builds (`F.col(…).alias(…)` is
    three or four), and this select builds none (3,240 of a 5-source load's 11,582 calls were such renames)."""
    return data.selectExpr(*[f"{quoted(source)} AS {quoted(name)}" for source, name in pairs], *more)


# A read row's file (`__path`, as `_metadata` spells it) and an id increasing down each file (`__mid`).
LOCATED = ("_metadata.file_path AS __path", "monotonically_increasing_id() AS __mid")


def header_error(err: BaseException) -> str | None:
    """What to say when Spark refused a file's header (`enforceSchema` off), naming the file; None otherwise."""
    text = str(err)
    if not any(said in text for said in ("CSV header does not conform to the schema",
                                         "Number of column in CSV header is not equal")):  # other names; fewer
        return None
    found = re.search(r"CSV file: (\S+)", text)
    where = unquote(found.group(1)) if found else "a file"
    return (f"{where} does not start with the first file's header: every file of a source at a URI is read with the "
            "first file's columns and delimiter, so give every file the same header")


def malformed_row(err: BaseException, con: duckdb.DuckDBPyConnection, part: Part, shown: Callable[[str], str]
                  ) -> str | None:
    """What to say when Spark's read (mode FAILFAST) met a CSV row whose fields do not fit the header; None for any
    other error. A file on this machine: its first such line, named as DuckDB's load names it (file, line, field
    counts and fix: `ragged.first_ragged`); a file at a URI, or a row DuckDB reads: the file and the row's start,
    Spark telling no line number."""
    text = str(err)
    record = re.search(r"\[MALFORMED_CSV_RECORD\] Malformed CSV record: ([^\n]*?)(?: SQLSTATE|\n|$)", text)
    if record is None:
        return None
    read = re.search(r"while reading file (\S+?)\.?\s", text)
    path = _named(read.group(1), part) if read else None
    if path is not None and not part.remote:
        dialect = ragged.tolerant_dialect(con, path)
        found = ragged.first_ragged(con, path, dialect) if dialect else None
        if found is not None:
            return found.message(shown)
    sep = csv_dialect(con, part.readable[0])["sep"] if part.readable else ","
    where = (path if part.remote else shown(path)) if path else (read.group(1) if read else f"'{part.source}'")
    return (f"{where}: a line does not have the header's {len(part.types)} fields (fields separated by "
            f"'{printable(sep)}'; Spark does not say which line, it starts '{printable(record.group(1))[:80]}'): "
            f"quote a field that holds '{printable(sep)}', remove an extra field or add a missing one")


def _named(said: str, part: Part) -> str | None:
    """The file of `part` a Spark error names (`file:///a%20b.csv`, as Hadoop spells it), None if none is."""
    def plain(path: str) -> str:
        return os.path.realpath(unquote(re.sub(r"^file:/*", "/", path))) if path.startswith(("file:", "/")) else \
            unquote(path)
    wanted = plain(said)
    return next((f for f in part.files if wanted in (plain(f), plain(part.spelled.get(f, f)))), None)


def raw_header(path: str, sep: str, quote: str, escape: str | None) -> list[str]:
    """A CSV file's header as written (a BOM dropped; a quoted name may hold a line break): the names Spark checks
    other files' headers against."""
    import csv

    quoting = {"quotechar": quote} if quote != "\u0000" else {"quoting": csv.QUOTE_NONE}
    doubled = escape in (None, quote)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=sep, doublequote=doubled, escapechar=None if doubled else escape,
                               **quoting), [])


def _check_raw_types(con: duckdb.DuckDBPyConnection, data: Any, raw: dict[str, str], part: Part, label: str) -> None:
    from pyspark.sql.pandas.types import to_arrow_schema

    seen = _duck_types(con, to_arrow_schema(data.schema, timezone="UTC"))
    for column, dtype in raw.items():
        if dtype == NULL_TYPE and seen.get(column) == "INTEGER":  # Spark's read of pyarrow's null type: every value null
            continue
        if seen.get(column) != dtype:
            raise DataError(f"{label}: {part.lead}source '{part.source}': engine spark reads column '{column}' as "
                            f"{seen.get(column)} where DuckDB reads {dtype}: load it with engine duckdb")


def _positioned(spark: Any, data: Any, part: Part) -> Any:
    """`_file` (the path as DuckDB names it), `__file` (its 1-based place in the sorted files; null for a file not in
    the list: `unlisted_file`) and `__at` (Parquet: the row in its file, 1-based; CSV: an id increasing down the file,
    as a file is read whole by one task (multiLine), in order)."""
    from pyspark.sql import functions as F

    data = data.join(F.broadcast(_files(spark, part)), "__path", "left")
    if part.fmt == "parquet":
        return data.withColumn("__at", F.col("__row") + 1).drop("__path", "__row", "__mid")
    return data.withColumnRenamed("__mid", "__at").drop("__path")


def unlisted_file(label: str, part: Part) -> DataError:
    """The error of a read that found a file the source's sorted list does not hold (its files changed while Spark
    read them): the rows could not be numbered as DuckDB numbers them."""
    return DataError(f"{label}: {part.lead}source '{part.source}': spark read a file not in the sorted list of its "
                     "files (did the files change during the load? load again)")


def shifts(part: Part, files: dict[int, tuple[int, int]]) -> list[int]:
    """What each file (0-based place in the sorted files) adds to its rows' `__at` to give the row's place in its
    file (1 for its first row, as DuckDB's load numbers the quarantine's `row`). `files`: 1-based place -> (the
    file's rows, its first row's `__at`)."""
    return [1 - files.get(i + 1, (0, 1))[1] for i in range(len(part.files))]


def file_row(part: Part, files: dict[int, tuple[int, int]]) -> tuple[exp.Expression, dict[str, pa.Table]]:
    """A row's place in its file as SQL over `__file` and `__at` (for `spark_load.duck_select`: no Spark join, no
    job), with the table it reads (`_shift`: `shifts`, registered once per task; a literal list of
    every file's shift would be parsed again for each batch)."""
    shift = shifts(part, files)
    if not any(shift):
        return fill("CAST(__at AS BIGINT)"), {}
    table = pa.table({"__place": pa.array(range(1, len(shift) + 1), pa.int32()),
                      "__shift": pa.array(shift, pa.int64())})
    return fill("CAST(__at AS BIGINT) + (SELECT __shift FROM _shift WHERE __place = __file)"), {"_shift": table}


def _file_paths(spark: Any, part: Part) -> list[tuple[str, int, str]]:
    """The part's files: (path as Spark's `_metadata.file_path` spells it, 1-based place in the sorted paths, path
    as DuckDB names it)."""
    from riskconsole.engines.spark import is_connect

    if part.remote:  # listed by Spark, with its spelling (engines/spark_sources.py)
        return [(part.spelled[f], i + 1, f) for i, f in enumerate(part.files)]
    if is_connect(spark):  # no JVM to ask: the same spelling (tests/test_spark_load.py -k spells checks it)
        return [(hadoop_spelling(f), i + 1, f) for i, f in enumerate(part.files)]
    hadoop, file = spark._jvm.org.apache.hadoop.fs.Path, spark._jvm.java.io.File  # Spark's own spelling

    def jvm(f: str) -> str:
        return str(hadoop(file(f).toURI()).toUri().toString())

    spelled = [hadoop_spelling(f) for f in part.files]  # four JVM calls a file took 5 s for 12,000 files
    if any(jvm(f) != s for f, s in zip(part.files[:1], spelled)):  # never seen: then Spark spells every one
        spelled = [jvm(f) for f in part.files]
    return [(s, i + 1, f) for i, (s, f) in enumerate(zip(spelled, part.files))]


_URI_PATH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'():@&=+$,;/")


def hadoop_spelling(path: str) -> str:
    """How Spark's `_metadata.file_path` spells an absolute local file (Hadoop's `Path(new File(path).toURI())
    .toUri()`): `file:` and the path, repeated and trailing slashes, `.` and `..` dropped, quoted as java.net.URI
    quotes a path — `%`, a space and any other ASCII character a URI path may not hold, and non-ASCII control and space characters,
    as %XX of their UTF-8 bytes; other non-ASCII letters (ü, 日) kept as they are."""
    out = []
    for ch in posixpath.normpath(re.sub("/+", "/", path)):  # `.` and `..` resolved, as URI.normalize does
        keep = ch in _URI_PATH if ch.isascii() else unicodedata.category(ch) not in ("Cc", "Zs", "Zl", "Zp")
        out.append(ch if keep else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "file:" + "".join(out)


def _files(spark: Any, part: Part) -> Any:
    """The part's files as a DataFrame: `__path`, `__file`, `_file` (`_file_paths`)."""
    return spark.createDataFrame(_file_paths(spark, part), "__path string, __file int, _file string")


def check_utf8(data: Any, raw: dict[str, str], part: Part, label: str,
               files: dict[int, tuple[int, int]]) -> None:
    """Refuse a CSV holding bytes that are not UTF-8: DuckDB's reader refuses the file, Spark's would read each such
    byte as U+FFFD and load the row. A U+FFFD written in a valid file is refused too (Spark cannot tell them apart).

    Raises:
        DataError: naming the first such file and row (`files`: as `file_row` reads them)."""
    from pyspark.sql import functions as F

    replaced = [F.coalesce(F.col(quoted(c)).contains("\ufffd"), F.lit(False)) for c in raw]
    first = data.where(functools.reduce(lambda a, b: a | b, replaced)).orderBy(*POSITION).limit(1).collect()
    if first:
        row = first[0]["__at"] + shifts(part, files)[first[0]["__file"] - 1]
        raise DataError(f"{label}: {part.lead}source '{part.source}': {first[0]['_file']} row {row} "
                        "is not valid UTF-8 (or holds U+FFFD, which engine spark cannot tell from it; DuckDB refuses "
                        "such a file): export the file as UTF-8")
