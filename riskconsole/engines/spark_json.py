"""JSON Lines on engine spark, read as DuckDB's load reads them (issue 15).

DuckDB decides the schema: the source's column types are the ones DuckDB's `read_json` (the load's options, over
every file) gives (`Part.types`, sniffed by sources.py as on a DuckDB load). Spark reads every line as text (file
and line kept: `_metadata.file_block_start` and the row's id order lines within a file), skips blank lines and a
leading BOM as DuckDB does, numbers the rows as DuckDB's `WITH ORDINALITY` does (over all files, blank lines not
counted), and each batch of lines is parsed on the executors by an embedded DuckDB: `read_json` over the batch
with that fixed schema, so every value is converted by DuckDB's own JSON reader. A column DuckDB reads as JSON is
carried as its JSON text (VARCHAR on Spark): the load's SQL over it is the same. A line that is not one JSON object,
or a value that does not convert (DuckDB's load refuses the file too), fails the load naming the file and line.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole.errors import DataError
from riskconsole.sources import Part
from riskconsole.sqlbuild import alias, render

ROW_ERROR = "riskconsole-row-error: "  # marks an executor's message for the driver (`row_error`)
MAX_LINE = 16 * 1024 * 1024  # DuckDB's maximum_object_size: the first line is read up to it
NULL_TYPE = '"NULL"'  # DuckDB's type of a column whose every sniffed value is null
BLANK = "^[ \t\r]*$"  # JSON whitespace only: DuckDB skips such a line
_BOM = "\ufeff"


def carried(dtype: str) -> str:
    """The DuckDB type a raw column has on Spark: JSON as its text."""
    return "VARCHAR" if dtype == "JSON" else dtype


def refusal(con: duckdb.DuckDBPyConnection, part: Part, type_refusal: Callable[[duckdb.DuckDBPyConnection, str],
                                                                                str | None]) -> str | None:
    """Why Spark cannot read the JSON source as DuckDB does: a file whose first line is not one JSON object (DuckDB
    also reads a JSON array or objects over several lines; Spark reads a line at a time), or a column DuckDB reads
    with a type Spark cannot carry exactly (JSON nested in a list or struct, HUGEINT, UUID, TIME, ...)."""
    for column, dtype in part.types.items():
        why = None if dtype in ("JSON", NULL_TYPE) else type_refusal(con, dtype)  # both carried exactly
        if why:
            return f"DuckDB reads column '{column}' as {dtype}, {why}"
    for path in part.files:
        first = first_line(path)
        if first is None:
            continue
        ok = con.execute("SELECT coalesce(json_valid($l) AND json_type($l) = 'OBJECT', false)", {"l": first})
        if not ok.fetchall()[0][0]:
            return (f"{path} is not JSON Lines: its first line is not one JSON object (DuckDB also reads a JSON "
                    "array or objects over several lines; Spark reads one object per line)")
    return None


def first_line(path: str) -> str | None:
    """The file's first line that is not blank (a BOM dropped), up to MAX_LINE characters; None if all are blank."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        start = True
        while True:
            line = handle.readline(MAX_LINE)
            if not line:
                return None
            if start:
                line, start = line.removeprefix(_BOM), False
            if line.strip(" \t\r\n"):
                return line.rstrip("\n")


# ------------------------------------------------------------------ reading


def read_lines(spark: Any, part: Part, files: Any, label: str, cached: list[Any]) -> Any:
    """The source's non-blank lines as `__text`, with `__path` joined to `files` (`__path`, `__file`, `_file`),
    `__line` (the line in its file, 1-based) and `ordinality` (DuckDB's: the row over all files in order)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lines = spark.read.option("lineSep", "\n").text(part.files).select(
        F.col("value"), F.col("_metadata.file_path").alias("__path"),
        F.col("_metadata.file_block_start").alias("__block"), F.monotonically_increasing_id().alias("__mid"))
    lines = lines.join(F.broadcast(files), "__path", "left")
    block = Window.partitionBy("__file", "__block").orderBy("__mid")
    lines = lines.withColumn("__n", F.row_number().over(block))  # the line in its block
    first = (F.col("__block") == 0) & (F.col("__n") == 1)
    text = F.when(first, F.regexp_replace("value", f"^{_BOM}", "")).otherwise(F.col("value"))
    lines = lines.withColumn("__text", text).withColumn("__row", (~F.col("__text").rlike(BLANK)).cast("long"))
    lines = lines.withColumn("__r", F.sum("__row").over(block.rowsBetween(Window.unboundedPreceding, 0)))
    lines = lines.persist(StorageLevel.MEMORY_AND_DISK)  # read once: counted here, parsed next
    cached.append(lines)
    counts = lines.groupBy("__file", "__block").agg(F.count("*").alias("n"), F.sum("__row").alias("r")).collect()
    if any(c["__file"] is None for c in counts):
        where = "" if part.kind == "events" else f"{part.where}: "
        raise DataError(f"{label}: {where}source '{part.source}': spark read a file not in the sorted list of its "
                        "files")
    offsets, rows = [], 0
    for file in range(1, len(part.files) + 1):
        lines_before = 0
        for c in sorted((c for c in counts if c["__file"] == file), key=lambda c: c["__block"]):
            offsets.append((file, c["__block"], lines_before, rows))
            lines_before, rows = lines_before + c["n"], rows + c["r"]
    starts = spark.createDataFrame(offsets, "__file int, __block long, __lines long, __rows long")
    return (lines.where(F.col("__row") == 1).join(F.broadcast(starts), ["__file", "__block"])
            .select("__text", "_file", "__file", (F.col("__n") + F.col("__lines")).alias("__line"),
                    (F.col("__r") + F.col("__rows")).alias("ordinality")))


def parse(lines: Any, part: Part) -> Any:
    """Every line parsed by DuckDB's `read_json` with the source's schema, on the executors: the raw columns (JSON
    as text) with `_file`, `__file` and `ordinality`."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from riskconsole.engines.spark_read import connect
    from riskconsole.engines.spark_scores import _local_workers

    con = connect()
    nulls = [alias(exp.null() if t == NULL_TYPE else exp.cast(exp.null(), exp.DataType.build(carried(t),
                                                                                              dialect="duckdb")), c)
             for c, t in part.types.items()]
    raw = con.sql(render(exp.select(*nulls))).to_arrow_table().schema
    positions = pa.schema([("_file", pa.string()), ("__file", pa.int32()), ("ordinality", pa.int64())])
    schema = from_arrow_schema(pa.schema([*raw, *positions]), prefer_timestamp_ntz=True)
    _local_workers(lines.sparkSession)
    return lines.mapInArrow(_parser(dict(part.types), to_arrow_schema(schema, timezone="UTC")), schema)


def _read_sql(types: dict[str, str], path: str) -> str:
    """`read_json` of one file of lines with the fixed schema (JSON columns as their text)."""
    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    spec = ", ".join(f"{quoted(c)}: {quoted(t)}" for c, t in types.items())
    picked = ", ".join(render(alias(exp.cast(exp.column(c, quoted=True), "VARCHAR") if t == "JSON"
                                    else exp.column(c, quoted=True), c)) for c, t in types.items())
    return (f"SELECT {picked} FROM read_json({quoted(path)}, columns = {{{spec}}}, "
            "format = 'newline_delimited', records = true)")


def _parser(types: dict[str, str], schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from riskconsole.engines.spark_read import connect

        con = connect()
        with tempfile.TemporaryDirectory(prefix="riskconsole-json-") as folder:
            path = os.path.join(folder, "lines.jsonl")
            sql = _read_sql(types, path)
            for batch in batches:
                if not batch.num_rows:
                    continue
                texts = batch.column("__text").to_pylist()
                parsed = _parse(con, sql, path, texts, batch)
                for name in ("_file", "__file", "ordinality"):
                    parsed = parsed.append_column(name, batch.column(name))
                yield from parsed.cast(schema).to_batches()
        con.close()

    return run


def _parse(con: duckdb.DuckDBPyConnection, sql: str, path: str, texts: list[str], batch: pa.RecordBatch) -> pa.Table:
    """The lines parsed, one row per line; a line DuckDB refuses raises ValueError naming its file and line."""
    def where(i: int) -> str:
        return f"{batch.column('_file')[i].as_py()} line {batch.column('__line')[i].as_py()}"

    for i, text in enumerate(texts):
        if "\ufffd" in text:  # Spark read bytes that are not UTF-8 as U+FFFD; DuckDB refuses such a file
            raise ValueError(f"{ROW_ERROR}{where(i)} is not valid UTF-8 (or holds U+FFFD, which engine spark cannot "
                             "tell from it; DuckDB refuses such a file): export the file as UTF-8")
    try:
        parsed = _read(con, sql, path, texts)
    except duckdb.Error:
        parsed = None
    if parsed is not None and parsed.num_rows == len(texts):
        return parsed
    lo, hi = 0, len(texts)  # the first line that fails alone: halves read until one line is left
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if not _reads(con, sql, path, texts[lo:mid]) else (mid, hi)
    try:
        one = _read(con, sql, path, texts[lo:hi])
    except duckdb.Error as err:
        try:  # DuckDB's load reads a file holding objects side by side as "unstructured" JSON: each a row
            many = con.sql(f"SELECT count(*) FROM read_json_objects('{path}', format = 'unstructured')").fetchall()
        except duckdb.Error:
            many = [(1,)]
        if many[0][0] > 1:
            raise ValueError(f"{ROW_ERROR}{where(lo)} holds {many[0][0]} JSON objects: engine spark reads one object "
                             "per line; put each on its own line, or load with engine duckdb (--engine duckdb)") \
                from None
        detail = re.sub(r' in file "[^"]*"[^:]*: ', ": ", str(err).splitlines()[0]).split(" Try ")[0].strip()
        raise ValueError(f"{ROW_ERROR}{where(lo)} cannot be read as DuckDB's load reads it ({detail}); DuckDB's "
                         "load refuses this file too: fix the line") from None
    raise ValueError(f"{ROW_ERROR}{where(lo)}: {one.num_rows} rows read from one line")


def _reads(con: duckdb.DuckDBPyConnection, sql: str, path: str, texts: list[str]) -> bool:
    """Whether the lines read as one row each."""
    try:
        return _read(con, sql, path, texts).num_rows == len(texts)
    except duckdb.Error:
        return False


def _read(con: duckdb.DuckDBPyConnection, sql: str, path: str, texts: list[str]) -> pa.Table:
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(texts) + "\n")
    return con.sql(sql).to_arrow_table()


def row_error(err: BaseException) -> str | None:
    """The message an executor raised with ROW_ERROR (None when `err` carries none)."""
    text = str(err)
    at = text.find(ROW_ERROR)
    return text[at + len(ROW_ERROR):].splitlines()[0] if at >= 0 else None
