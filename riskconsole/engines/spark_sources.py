"""Sources at a URI (`source: s3a://bucket/orders/*.parquet`, `hdfs://…`, `file:///…`): listed and sampled through
Spark, which then reads every row of them (issue 15).

DuckDB on this machine cannot read such files, so the checks before a load (columns, types, time formats, the
outcome roles) run over local copies of the heads of the source's first files: a CSV or JSON Lines file's first
20,480 lines (what DuckDB's sniffer reads of a local file), a Parquet file's first 20,480 rows as Spark reads them.
Listing and sampling go through the session's readers (a Spark Connect client too): Hadoop's globs (`*`, `?`,
`[ab]`, `{a,b}`), a folder read with every file under it, names starting with `_` or `.` skipped (`_SUCCESS`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import unquote

import duckdb
import pyarrow as pa

from riskconsole.engines import spark_worker
from riskconsole.engines.spark_json import OBJECT, SPACE
from riskconsole.engines.spark_read import merge_refused, parquet_groups
from riskconsole.engines.spark_store import literal

SAMPLED_FILES = 8  # files whose heads are copied here (the first ones in sorted order)
SAMPLE_LINES = 20_480  # DuckDB's `sample_size`: lines of a CSV or JSON Lines file, rows of a Parquet file
EXTRA_LINES = 1_000  # read beyond them: a quoted field the cut would split is taken whole
MAX_WHOLE = 256 * 2**20  # a JSON file that is not JSON Lines is copied whole for the checks, up to this size
_SUFFIX = {"csv": ".csv", "json": ".jsonl", "parquet": ".parquet"}


class SparkSources:
    """`sources.Remote` on a Spark session (asked for only when a source is a URI)."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.listed: dict[str, str] = {}  # Spark's `_metadata.file_path` of a listed file -> the file
        self.whole: set[str] = set()  # files whose sample is the whole file

    def files(self, pattern: str) -> list[tuple[str, str]]:
        """The files `pattern` names (a file, a glob, a folder: every file under it), sorted, each as Spark reads it
        (the URI with its characters as they are) and as Spark's `_metadata.file_path` spells it."""
        try:
            found = self.spark.read.format("binaryFile").option("recursiveFileLookup", True).load(pattern).inputFiles()
        except Exception as err:  # noqa: BLE001 - Spark's "no such path" arrives as an AnalysisException
            if "PATH_NOT_FOUND" in str(err) or "does not exist" in str(err):
                return []
            raise
        listed = sorted((unquote(uri), spelled(uri)) for uri in found)
        self.listed.update((spelling, path) for path, spelling in listed)
        return listed

    def sample(self, fmt: str, files: list[str], folder: Path) -> dict[str, str]:
        """Local copies of the heads of the first SAMPLED_FILES files, in `folder`: file -> local path."""
        with contextlib.closing(spark_worker.cursor()) as con:
            samples = {path: self._sample(fmt, path, folder / f"{i:04d}{_SUFFIX[fmt]}", con)
                       for i, path in enumerate(files[:SAMPLED_FILES])}
        if fmt == "parquet" and len(files) > SAMPLED_FILES:
            self._every_column(files, samples[files[0]])
        return samples

    def _every_column(self, files: list[str], local: str) -> None:
        """Give the first file's sample every column of every file (Spark's merged schema, read from the files'
        footers: no row), null where that file has none: a column added to the files after the sampled ones (a
        daily export that grew one) is then checked and loaded, not left out. Where Spark refuses to merge two
        files' types (a column of only nulls written by pyarrow, INT to Spark, beside DOUBLE), or its merge widens a
        sampled column's type (that INT beside BOOLEAN, TINYINT or DECIMAL), the files' schemas as written are read
        from their footers (`spark_read.parquet_groups`: pyarrow's null type kept) and DuckDB merges them (null and
        BOOLEAN: BOOLEAN; INT and DOUBLE: DOUBLE; INT and text: text). A sampled column the later files widen takes the
        merged type (Spark reads every file as it)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        def arrow(*paths: str) -> pa.Schema:
            read = self.spark.read.option("mergeSchema", True).parquet(*[literal(f) for f in paths])
            return to_arrow_schema(read.schema, timezone="UTC", prefers_large_types=False)

        head = pq.read_table(local)
        try:
            merged = arrow(*files)
        except Exception as err:  # noqa: BLE001 - Spark refuses types DuckDB merges (spark_read._read_parquet)
            if not merge_refused(err):
                raise
            merged = None
        if merged is None or any(f.name in head.column_names and head.schema.field(f.name).type != f.type
                                 for f in merged):  # refused, or the files' types widen the sampled one's
            grouped = parquet_groups(self.spark, files)  # DuckDB's merge of the types written
            if grouped is not None:
                merged = _merged(s for s, _ in grouped)
            elif merged is None:  # footers out of a Connect client's reach: a Spark read per file
                merged = _merged({str(schema): schema for schema in map(arrow, files)}.values())
        for name in [f.name for f in merged if f.name not in head.column_names]:
            head = head.append_column(merged.field(name), pa.nulls(head.num_rows, merged.field(name).type))
        for i, field in enumerate(head.schema):  # a column the later files widen (INT there BIGINT or DOUBLE)
            if field.name in merged.names and merged.field(field.name).type != field.type:
                head = head.set_column(i, merged.field(field.name), _widened(head.column(i), merged.field(field.name)))
        pq.write_table(head, local)

    def _sample(self, fmt: str, path: str, local: Path, con: Any) -> str:
        """One file's head written to `local` (returned): a Parquet file's first rows as Spark reads them; a CSV or
        JSON file's first lines as they are (a CR kept, a quoted line break included), a JSON file that is not JSON
        Lines whole."""
        import pyarrow.parquet as pq

        from riskconsole.engines.spark_json import json_lines_file

        if fmt == "parquet":
            pq.write_table(self.spark.read.parquet(literal(path)).limit(SAMPLE_LINES).toArrow(), local)
            return str(local)
        lines = self.spark.read.option("lineSep", "\n").text(literal(path)).limit(SAMPLE_LINES + EXTRA_LINES)
        text = [row[0] for row in lines.collect()]
        kept = whole(text) if fmt == "csv" else text[:SAMPLE_LINES]
        local.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        if len(kept) == len(text) < SAMPLE_LINES + EXTRA_LINES:
            self.whole.add(path)
        if fmt == "json" and not json_lines_file(con, str(local)):  # an array, objects over several lines
            local.write_text(self._whole_text(path), encoding="utf-8")
            self.whole.add(path)
        return str(local)

    def keys(self, files: list[str], lines: bool, known: set[str]) -> dict[str | None, list[str]]:
        """The top-level keys of the JSON objects in `files` that are not `known` (a file sampled whole is not read
        again), each with the files holding it, listed by DuckDB on the executors: `lines` (JSON Lines), `json_keys`
        of every line that is a JSON object (1.8-2.3 s per 1M lines of 13 keys on local[2], warm; Spark's own
        `json_object_keys` took 6 s), and under None the files whose first line is not one (an array, an object over
        several lines); else each file read whole, as DuckDB's `read_json_objects` reads a local file
        (sources._KEYS)."""
        from pyspark.sql import functions as F

        from riskconsole.engines.spark_scores import _local_workers

        paths = [literal(f) for f in files if f not in self.whole]
        if not paths:
            return {}
        _local_workers(self.spark)
        found = self.spark.read.option("lineSep", "\n").text(paths, wholetext=not lines).select(
            F.regexp_replace("value", "^\ufeff", "").alias("__text"),  # a BOM: skipped
            F.col("_metadata.file_path").alias("__path"), F.col("_metadata.file_block_start").alias("__block"))
        pairs = found.mapInArrow(_line_keys if lines else _file_keys, "key string, file string").where(
            F.col("key").isNull() | (~F.col("key").isin(sorted(known)) & (F.col("key") != ""))).distinct().collect()
        holding: dict[str | None, list[str]] = {}
        for row in pairs:
            holding.setdefault(row["key"], []).append(self.listed.get(row["file"], row["file"]))
        return holding

    def _whole_text(self, path: str) -> str:
        """A JSON file that is not JSON Lines, whole (DuckDB cannot read its first lines alone).

        Raises:
            DataError: it is larger than MAX_WHOLE."""
        from riskconsole.errors import DataError

        size = self.spark.read.format("binaryFile").load(literal(path)).select("length").collect()[0][0]
        if size > MAX_WHOLE:
            raise DataError(f"{path} is JSON but not JSON Lines (an array, or objects over several lines) and "
                            f"{size / 2**20:,.0f} MB: a source at a URI is checked over a copy of such a file, up to "
                            f"{MAX_WHOLE // 2**20} MB; write it as JSON Lines (one object per line)")
        return self.spark.read.text(literal(path), wholetext=True).collect()[0][0]

    def has_rows(self, fmt: str, files: list[str], header: bool) -> bool:
        """Whether any file holds a row: a Parquet row, or a line that is not blank beyond each CSV file's header."""
        from pyspark.sql import functions as F

        paths = [literal(f) for f in files]
        if fmt == "parquet":
            return bool(self.spark.read.parquet(*paths).limit(1).count())
        lines = self.spark.read.option("lineSep", "\n").text(paths).where(F.trim(F.col("value")) != "")
        if not header:
            return bool(lines.limit(1).count())
        counts = lines.groupBy(F.col("_metadata.file_path")).count().where(F.col("count") > 1)
        return bool(counts.limit(1).count())


def _line_keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: the keys of each line (`__text`, of file `__path`) that is a JSON object, per file; and a
    null key for a file whose first line that is not blank is no JSON object (a block of a file, `__block`, is read
    whole and in order by one task: the file's first lines are in the first batch holding its block 0)."""
    import pyarrow.compute as pc

    spark_worker.settle()
    started: set[str] = set()
    with contextlib.closing(spark_worker.cursor()) as con:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            heads = pc.equal(table.column("__block"), 0)
            new = set(pc.unique(pc.filter(table.column("__path"), heads)).to_pylist()) - started
            if new:  # the batch holds a file's first lines
                table = table.append_column("__rn", pa.array(range(table.num_rows), pa.int64()))
            con.register("lines", table)
            yield from con.sql(_LINE_KEYS).to_arrow_table().cast(_KEYS).to_batches()
            firsts = con.sql(_FIRST_LINES).fetchall() if new else []
            con.unregister("lines")
            spread = [path for path, ok in firsts if path in new and not ok]
            started.update(path for path, _ in firsts)  # a path whose lines here were all blank: looked at again
            if spread:
                yield pa.RecordBatch.from_pydict({"key": [None] * len(spread), "file": spread}, schema=_KEYS)


def _file_keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: the top-level keys of the JSON objects in each whole file (`__text`, `__path`), as DuckDB's
    `read_json_objects` reads a local file (a file it cannot read lists none: the load names what is wrong)."""
    spark_worker.settle()
    with contextlib.closing(spark_worker.cursor()) as con, \
            tempfile.TemporaryDirectory(prefix="riskconsole-json-") as folder:
        local = os.path.join(folder, "file.json")
        for batch in batches:
            found: dict[str, list[str]] = {"key": [], "file": []}
            for text, path in zip(batch.column("__text").to_pylist(), batch.column("__path").to_pylist()):
                with open(local, "w", encoding="utf-8") as out:
                    out.write(text)
                try:
                    keys = [k for (k,) in con.execute(_FILE_KEYS, [local]).fetchall()]
                except duckdb.Error:
                    keys = []
                found["key"] += keys
                found["file"] += [path] * len(keys)
            yield pa.RecordBatch.from_pydict(found, schema=_KEYS)


_KEYS = pa.schema([("key", pa.string()), ("file", pa.string())])
_LINE_KEYS = ("SELECT DISTINCT unnest(json_keys(__text)) AS key, __path AS file FROM lines WHERE "
              + OBJECT.format("__text"))
_FIRST_LINES = (f"SELECT __path, coalesce({OBJECT.format('first')}, false) FROM ("
                "SELECT __path, arg_min(__text, __rn) AS first FROM lines "
                f"WHERE __block = 0 AND trim(__text, '{SPACE}') <> '' GROUP BY __path)")
_FILE_KEYS = "SELECT DISTINCT unnest(json_keys(json)) FROM read_json_objects($1, format = 'auto')"


def whole(lines: list[str]) -> list[str]:
    """A CSV file's first SAMPLE_LINES lines (`lines`: up to EXTRA_LINES more were read), ending with a whole record:
    a record the cut would split inside quotes (`"`, doubled inside a field) is taken whole from the lines after,
    so DuckDB's sniffer reads no open quote to the end of the sample. A file read to its end is kept as it is."""
    if len(lines) <= SAMPLE_LINES + EXTRA_LINES - 1:  # the whole file
        return lines
    quotes = sum(line.count('"') for line in lines[:SAMPLE_LINES])
    end = SAMPLE_LINES
    while quotes % 2 and end < len(lines):
        quotes += lines[end].count('"')
        end += 1
    return lines[:end] if quotes % 2 == 0 else lines[:SAMPLE_LINES]


def spelled(uri: str) -> str:
    """How Spark's `_metadata.file_path` spells a file its listing names `uri`: a local file as `file:/path`."""
    return "file:/" + uri.removeprefix("file:///") if uri.startswith("file:///") else uri


def remote(spark: Any, settings: Any) -> SparkSources:
    """`sources.Remote` on `spark`, or on a session started from the dataset's `spark:` settings."""
    from riskconsole.engines.spark import start

    return SparkSources(spark or start(settings))


def _merged(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The Arrow schema DuckDB's `union_by_name` gives files of these schemas (each column's types merged as DuckDB
    merges them; the columns in the order first seen)."""
    schemas = list(schemas)
    with contextlib.closing(spark_worker.cursor()) as con:
        for i, schema in enumerate(schemas):
            con.register(f"_s{i}", schema.empty_table())
        return con.sql(" UNION ALL BY NAME ".join(f"SELECT * FROM _s{i}" for i in range(len(schemas)))).to_arrow_table().schema


def _widened(column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    """A sampled column as the merged type of every file: cast, or, where Arrow has no such cast and the column holds
    only nulls (Spark's INT read of pyarrow's null type beside times, structs or lists), nulls of that type."""
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if column.null_count == len(column):
            return pa.chunked_array([pa.nulls(len(column), field.type)])
        raise
