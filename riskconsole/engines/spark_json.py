"""JSON on engine spark, read as DuckDB's load reads it (issue 15).

DuckDB decides the schema: the source's column types are the ones DuckDB's `read_json` (the load's options, over
every file) gives (`Part.types`, sniffed by sources.py as on a DuckDB load), and every column is read as the DuckDB
load reads it (`Part.read_types`: strings and times as text, numbers and booleans as JSON carried as its text, cast by
the load's SQL). Spark reads every line as text (a
block of a file — `_metadata.file_block_start` — is read whole and in order by one task: a first pass counts each
block's lines, so a second numbers every line in its file and every row as DuckDB's `WITH ORDINALITY` does, over all
files, blank lines not counted), skips blank lines and a leading BOM as DuckDB does, and parses every 10,000 lines
in the scan's own task (no shuffle) by an embedded DuckDB: `read_json` over those lines with those fixed types, so
every value is read by DuckDB's own JSON reader. A line that is not one JSON object, or a nested value that does
not convert (DuckDB's load refuses the file too), fails the load naming the file and line.

A source with a file that is not JSON Lines (a JSON array, objects over several lines: `lines`) is read a file at a
time instead: each file's text whole by one task, parsed by DuckDB's `read_json` with its own detection of the layout
(`_read_whole`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole.engines import spark_worker
from riskconsole.sources import Part
from riskconsole.sqlbuild import alias, lit, render

ROW_ERROR = "riskconsole-row-error: "  # marks an executor's message for the driver (`row_error`)
MAX_LINE = 16 * 1024 * 1024  # DuckDB's maximum_object_size: the first line is read up to it
SPACE = " \t\r\x0b\x0c"  # what DuckDB's JSON reader skips as a blank line (with \n), vertical tab and form feed too
_BOM = "\ufeff"
CHUNK = 10_000  # lines parsed by one read_json
OBJECT = "CASE WHEN json_valid({0}) THEN json_type({0}) = 'OBJECT' ELSE false END"  # json_type refuses bad JSON


def carried(dtype: str) -> str:
    """The DuckDB type a raw column has on Spark: JSON as its text."""
    return "VARCHAR" if dtype == "JSON" else dtype


def refusal(con: duckdb.DuckDBPyConnection, part: Part, type_refusal: Callable[[duckdb.DuckDBPyConnection, str],
                                                                                str | None]) -> str | None:
    """Why Spark cannot read the JSON source as DuckDB does: a nested column DuckDB reads with a type Spark cannot
    carry exactly (JSON nested in a list or struct, HUGEINT in a struct, ...); a scalar is read as its text."""
    for column, dtype in part.read_types.items():
        why = None if dtype == "JSON" else type_refusal(con, dtype)  # carried exactly as its text
        if why:
            return f"DuckDB reads column '{column}' as {dtype}, {why}"
    return None


def not_lines(con: duckdb.DuckDBPyConnection, part: Part) -> set[str]:
    """The source's files known not to be JSON Lines (their first line that is not blank is no JSON object: a JSON
    array, objects over several lines): each is read whole by one task, the others line by line, in parallel blocks.
    A source at a URI: of its sampled files (the load's count of lines finds the others, `read`)."""
    local = {f: part.samples.get(f) for f in part.files} if part.remote else {f: f for f in part.files}
    return {f for f, path in local.items() if path is not None and not json_lines_file(con, path)}


def json_lines_file(con: duckdb.DuckDBPyConnection, path: str) -> bool:
    """Whether a local file's first line that is not blank is one JSON object (or every line is blank)."""
    first = first_line(path)
    return True if first is None else is_object(con, first)


def is_object(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """Whether `text` is one JSON object, as DuckDB reads it (`OBJECT`)."""
    return bool(con.execute(f"SELECT {OBJECT.format('$1')}", [text]).fetchall()[0][0])


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
            if line.strip(SPACE + "\n"):
                return line.rstrip("\n")


# ------------------------------------------------------------------ reading


def read(spark: Any, part: Part, files: dict[str, tuple[int, str]], label: str, whole: set[str]) -> Any:
    """The source's rows: every non-blank line parsed by DuckDB's `read_json` with the source's schema on the
    executors — the raw columns (JSON as text) with `_file`, `__file` and `__at` (the row in its file, blank lines
    not counted; the load numbers rows in their files from each file's first: `spark_read.file_row`). `files`:
    Spark's `_metadata.file_path` of each file -> its 1-based place in the sorted paths and its path as DuckDB names
    it; `whole`: the files known not to be JSON Lines (`not_lines`), read whole (`_read_whole`).

    The other files are read in two passes over their text, each in the scan's own tasks (no shuffle: a file split
    over many tasks is read in parallel): the first counts every block's lines and rows (and finds any other file
    whose first line is no JSON object: read whole too), the second numbers each line from those counts (a
    malformed line is named by its file and line) and parses it."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    from riskconsole.engines.spark_read import literal, unlisted_file
    from riskconsole.engines.spark_scores import _local_workers

    _local_workers(spark)
    schema = _schema(part, "__at")
    rest = [f for f in part.files if f not in whole]
    read = []  # the files read whole first: a file among them that DuckDB refuses is named first (local[1])
    if rest:
        lines = spark.read.option("lineSep", "\n").text([literal(f) for f in rest]).select(
            F.col("value").alias("__text"), F.col("_metadata.file_path").alias("__path"),
            F.col("_metadata.file_block_start").alias("__block"))
        counts = lines.mapInArrow(_counter, "__path string, __block long, n long, r long, lines boolean") \
            .groupBy("__path", "__block").agg(F.sum("n").alias("n"), F.sum("r").alias("r"),
                                              F.bool_and("lines").alias("lines")).collect()
        if any(c["__path"] not in files for c in counts):
            raise unlisted_file(label, part)
        other = {c["__path"] for c in counts if c["__block"] == 0 and not c["lines"]}  # an array after the samples
        whole = whole | {files[p][1] for p in other}
        offsets = {}
        for path in files:
            lines_before = rows_before = 0
            for c in sorted((c for c in counts if c["__path"] == path), key=lambda c: c["__block"]):
                offsets[(path, c["__block"])] = (lines_before, rows_before)
                lines_before, rows_before = lines_before + c["n"], rows_before + c["r"]
        if other:
            lines = lines.where(~F.col("__path").isin(sorted(other)))
        if {p for p, (_, f) in files.items() if f in rest} - other:
            parser = _parser(part.read_types, to_arrow_schema(schema, timezone="UTC"), files, offsets)
            read.append(lines.mapInArrow(parser, schema))
    if whole:
        read.insert(0, _read_whole(spark, part, [f for f in part.files if f in whole], files, schema))
    return functools.reduce(lambda a, b: a.unionByName(b), read)


def _schema(part: Part, row: str) -> Any:
    """Spark's schema of the parsed rows: the raw columns (JSON as text), `_file`, `__file` and `row`."""
    from pyspark.sql.pandas.types import from_arrow_schema

    nulls = [alias(exp.cast(exp.null(), exp.DataType.build(carried(t), dialect="duckdb")), c)
             for c, t in part.read_types.items()]
    with contextlib.closing(spark_worker.cursor()) as con:
        raw = con.sql(render(exp.select(*nulls))).to_arrow_table().schema
    positions = pa.schema([("_file", pa.string()), ("__file", pa.int32()), (row, pa.int64())])
    return from_arrow_schema(pa.schema([*raw, *positions]), prefer_timestamp_ntz=True)


def _read_whole(spark: Any, part: Part, paths: list[str], files: dict[str, tuple[int, str]], schema: Any) -> Any:
    """The files at `paths`, each read whole by one task (its text, `wholetext`) and parsed there by DuckDB's
    `read_json` with the source's schema and DuckDB's own detection of the layout (an array, objects over several
    lines) — the bytes DuckDB's load reads, so its rows, in its order (`__at`)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    from riskconsole.engines.spark_read import literal

    texts = spark.read.text([literal(f) for f in paths], wholetext=True).select(  # text() sets the option
        F.col("value").alias("__text"), F.col("_metadata.file_path").alias("__path"))
    return texts.mapInArrow(_whole_parser(part.read_types, to_arrow_schema(schema, timezone="UTC"), files), schema)


def _whole_parser(types: dict[str, str], schema: pa.Schema, files: dict[str, tuple[int, str]]) -> Callable[
        [Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spark_worker.settle()
        with contextlib.closing(spark_worker.cursor()) as con, \
                tempfile.TemporaryDirectory(prefix="riskconsole-json-") as folder:
            path = os.path.join(folder, "file.json")
            sql = _read_sql(types, path, layout="auto")
            for batch in batches:
                for text, source in zip(batch.column("__text").to_pylist(), batch.column("__path").to_pylist()):
                    place, name = files[source]
                    if "\ufffd" in text:
                        raise ValueError(f"{ROW_ERROR}{name} is not valid UTF-8 (or holds U+FFFD, which engine spark "
                                         "cannot tell from it; DuckDB refuses such a file): export the file as UTF-8")
                    with open(path, "w", encoding="utf-8") as out:
                        out.write(text)
                    try:
                        parsed = con.sql(sql).to_arrow_table()
                    except duckdb.Error as err:
                        raise ValueError(f"{ROW_ERROR}{name} cannot be read as DuckDB's load reads it "
                                         f"({_detail(err)}); DuckDB's load refuses this file too: fix it") from None
                    n = parsed.num_rows
                    parsed = parsed.append_column("_file", pa.array([name] * n, pa.string()))
                    parsed = parsed.append_column("__file", pa.array([place] * n, pa.int32()))
                    parsed = parsed.append_column("__at", pa.array(range(1, n + 1), pa.int64()))
                    yield from parsed.cast(schema).to_batches()

    return run


def _detail(err: duckdb.Error) -> str:
    """DuckDB's reason for refusing a JSON file, without the temporary file's name or its advice."""
    return re.sub(r' in file "[^"]*"[^:]*: ', ": ", str(err).splitlines()[0]).split(" Try ")[0].strip()


def _numbered(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[str, int, int, int, str | None]]:
    """(path, block, line in the block, row in the block, text or None when blank) of each line, in the task's
    order: a block is read whole by one task, in order. A BOM is dropped from a file's first line."""
    seen: dict[tuple[str, int], list[int]] = {}
    for batch in batches:
        for text, path, block in zip(*(batch.column(c).to_pylist() for c in ("__text", "__path", "__block"))):
            at = seen.setdefault((path, block), [0, 0])
            at[0] += 1
            if block == 0 and at[0] == 1:
                text = text.removeprefix(_BOM)
            blank = not text.strip(SPACE)
            at[1] += not blank
            yield path, block, at[0], at[1], None if blank else text


def _counter(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Lines and rows (non-blank lines) of each block the task reads, and whether a file's first line that is not
    blank (in its first block) is one JSON object, as `json_lines_file` asks (else the file is read whole)."""
    spark_worker.settle()
    last: dict[tuple[str, int], tuple[int, int]] = {}
    first: dict[str, str] = {}
    for path, block, n, r, text in _numbered(batches):
        last[(path, block)] = (n, r)
        if block == 0 and text is not None and path not in first:
            first[path] = text
    with contextlib.closing(spark_worker.cursor()) as con:
        lines = {path: is_object(con, text) for path, text in first.items()}
    keys = list(last)
    yield pa.RecordBatch.from_pydict({"__path": [k[0] for k in keys], "__block": [k[1] for k in keys],
                                      "n": [last[k][0] for k in keys], "r": [last[k][1] for k in keys],
                                      "lines": [lines.get(k[0], True) if k[1] == 0 else True for k in keys]},
                                     schema=pa.schema([("__path", pa.string()), ("__block", pa.int64()),
                                                       ("n", pa.int64()), ("r", pa.int64()), ("lines", pa.bool_())]))


def _read_sql(types: dict[str, str], path: str, layout: str = "newline_delimited") -> str:
    """`read_json` of one file with the fixed schema (`Part.read_types`, JSON columns as their text): of lines, or in
    the `layout` DuckDB's load detects (`auto`)."""
    spec = ", ".join(f"{lit(c).sql('duckdb')}: {lit(t).sql('duckdb')}" for c, t in types.items())
    picked = ", ".join(render(alias(exp.cast(exp.column(c, quoted=True), "VARCHAR") if t == "JSON"
                                    else exp.column(c, quoted=True), c)) for c, t in types.items())
    return (f"SELECT {picked} FROM read_json({lit(path).sql('duckdb')}, columns = {{{spec}}}, "
            f"format = '{layout}', records = true)")


def _parser(types: dict[str, str], schema: pa.Schema, files: dict[str, tuple[int, str]],
            offsets: dict[tuple[str, int], tuple[int, int]]) -> Callable[[Iterator[pa.RecordBatch]],
                                                                      Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spark_worker.settle()
        with contextlib.closing(spark_worker.cursor()) as con, \
                tempfile.TemporaryDirectory(prefix="riskconsole-json-") as folder:
            path = os.path.join(folder, "lines.jsonl")
            sql = _read_sql(types, path)
            chunk: list[tuple[str, str, int, int]] = []  # text, file path, line, row (in the file)
            for source, block, n, r, text in _numbered(batches):
                if text is None:
                    continue
                lines_before, rows_before = offsets[(source, block)]
                chunk.append((text, source, lines_before + n, rows_before + r))
                if len(chunk) == CHUNK:
                    yield from _parsed(con, sql, path, chunk, files, schema)
                    chunk = []
            if chunk:
                yield from _parsed(con, sql, path, chunk, files, schema)

    return run


def _parsed(con: duckdb.DuckDBPyConnection, sql: str, path: str, chunk: list[tuple[str, str, int, int]],
            files: dict[str, tuple[int, str]], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    texts = [c[0] for c in chunk]
    names = [files[c[1]][1] for c in chunk]
    parsed = _parse(con, sql, path, texts, lambda i: f"{names[i]} line {chunk[i][2]}")
    parsed = parsed.append_column("_file", pa.array(names, pa.string()))
    parsed = parsed.append_column("__file", pa.array([files[c[1]][0] for c in chunk], pa.int32()))
    parsed = parsed.append_column("__at", pa.array([c[3] for c in chunk], pa.int64()))
    yield from parsed.cast(schema).to_batches()


def _parse(con: duckdb.DuckDBPyConnection, sql: str, path: str, texts: list[str],
           where: Callable[[int], str]) -> pa.Table:
    """The lines parsed, one row per line; a line DuckDB refuses raises ValueError naming its file and line
    (`where`)."""

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
        raise ValueError(f"{ROW_ERROR}{where(lo)} cannot be read as DuckDB's load reads it ({_detail(err)}); DuckDB's "
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
