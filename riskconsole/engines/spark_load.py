"""Load on engine spark: a source's files read, typed and quarantined by Spark (issue 15, first slice).

Spark reads the files (CSV with the dialect DuckDB's sniffer finds, Parquet as typed); every row-level rule of
DuckDB's load — the casts, time parsing, label words, amounts, missing keys — is the SQL ingest.py builds, run by
an embedded DuckDB on the executors over each Arrow batch (`duck_select`), so a value parses exactly as DuckDB's
load parses it. What needs every row — duplicates (the first occurrence in source order wins), source positions,
counts, the warnings' samples — is Spark's. Where Spark cannot read a source as DuckDB does, `refusal` says why
before a row is read (one line naming the engine). Executors need riskconsole and DuckDB installed.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole import ingest
from riskconsole.errors import DataError
from riskconsole.escape import terminal
from riskconsole.sources import Checked, Part, target_types
from riskconsole.sqlbuild import alias, fill, ident, render

READ_ON_SPARK = ("csv", "parquet")  # JSON Lines: DuckDB's read_json infers types Spark's reader does not share
POSITION = ("__file", "ordinality")  # source order: file (1-based, sorted paths), row (as DuckDB numbers it)
_TEXT = "VARCHAR"


@dataclass
class SparkStaged:
    """A source's staged rows on Spark (raw columns, casts `__c_<column>`, `_file`, `__file`, `ordinality`,
    `__reason`): the three questions ingest's warnings ask (`ingest.Staged`), answered by Spark."""

    rows: Any  # the staged DataFrame
    raw: dict[str, str]  # raw column -> its DuckDB type as DuckDB's reader gives it
    con: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)

    def failing(self, raw: exp.Expression, bad: exp.Expression) -> tuple[int, list[str]]:
        """How many rows are `bad`, and up to ingest.SAMPLE of their raw values (first in source order)."""
        known = getattr(self, "_known", {}).get(_key(raw, bad))
        if known == 0:
            return 0, []
        marked = duck_select(self.rows, [alias(bad, "__bad"), alias(fill("CAST(:r AS VARCHAR)", r=raw), "__v"),
                                         *map(ident, POSITION)])
        bad_rows = marked.where("__bad")
        n = bad_rows.count() if known is None else known
        if not n:
            return 0, []
        first = bad_rows.orderBy(*POSITION).limit(ingest.SAMPLE).select("__v").collect()
        return n, [row[0] for row in first if row[0] is not None]

    def raw_types(self) -> dict[str, str]:
        return dict(self.raw)

    def warnings(self, checked: Checked, part: Part, read: int) -> list[str]:
        """ingest's warnings of these rows, every column's failing rows counted in one pass first (the warnings ask
        column by column: a Spark job each), samples read only where some row fails."""
        asked = _Asked(self.con)
        ingest.load_warnings(asked, checked, part, read)  # which (raw, bad) pairs the warnings count
        counts = self.counts([bad for _, bad in asked.pairs]) if asked.pairs else []
        self._known = {_key(raw, bad): n for (raw, bad), n in zip(asked.pairs, counts)}
        return ingest.load_warnings(self, checked, part, read)

    def counts(self, conditions: list[exp.Expression]) -> list[int]:
        """How many rows meet each condition (one pass)."""
        from pyspark.sql import functions as F

        names = [f"__m{i}" for i in range(len(conditions))]
        marked = duck_select(self.rows, [alias(fill("CAST(coalesce(:c, false) AS INTEGER)", c=c), n)
                                         for c, n in zip(conditions, names)])
        totals = marked.agg(*[F.sum(n).alias(n) for n in names]).collect()[0]
        return [int(totals[n] or 0) for n in names]


class _Asked:
    """A stand-in for staged rows where nothing fails: records which (raw, bad) pairs the warnings ask about."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.pairs = con, []

    def failing(self, raw: exp.Expression, bad: exp.Expression) -> tuple[int, list[str]]:
        self.pairs.append((raw, bad))
        return 0, []


def _key(raw: exp.Expression, bad: exp.Expression) -> tuple[str, str]:
    return render(raw), render(bad)


@dataclass
class SparkLoaded:
    """One source loaded by Spark: its rows (loaded names and DuckDB's types), its quarantine and what to say."""

    read: int
    loaded: int
    rows: Any  # DataFrame of the loaded rows
    quarantine: Any  # DataFrame: every source column as text, reason, file, row (DuckDB's quarantine), and `__file`
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cached: list[Any] = field(default_factory=list)  # DataFrames persisted for the load: unpersist once written


# ------------------------------------------------------------------ what Spark can read exactly


def refusal(con: duckdb.DuckDBPyConnection, part: Part) -> str | None:
    """Why engine spark cannot read `part` as DuckDB reads it (None when it can): its format, a CSV dialect Spark has
    no option for, files with different headers, or a loaded type without an exact Spark type."""
    if part.fmt not in READ_ON_SPARK:
        return f"{part.fmt.upper()} sources are read by DuckDB's reader only so far (CSV and Parquet load on Spark)"
    if part.fmt == "csv":
        try:
            dialects = [csv_dialect(con, f) for f in part.files]
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

    typed = exp.cast(exp.null(), exp.DataType.build(dtype, dialect="duckdb"))
    arrow = con.sql(render(exp.select(alias(typed, "v")))).to_arrow_table().schema
    try:
        back = to_arrow_schema(from_arrow_schema(arrow, prefer_timestamp_ntz=True), timezone="UTC")
    except (TypeError, ValueError) as err:
        return f"which Spark has no type for ({str(err).splitlines()[0][:80]})"
    seen = _duck_types(con, back)["v"]
    return None if seen == _duck_types(con, arrow)["v"] else f"which Spark would store as {seen}"


def csv_dialect(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, Any]:
    """The dialect DuckDB's sniffer finds in one CSV file (delimiter, quote, escape, header, columns, ...)."""
    row = con.execute("SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Comment, Columns FROM sniff_csv($f)",
                      {"f": path}).fetchall()[0]
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


def read_raw(spark: Any, con: duckdb.DuckDBPyConnection, part: Part, label: str,
             cached: list[Any] | None = None) -> tuple[Any, dict[str, str]]:
    """The part's rows as DuckDB's reader gives them (CSV all text, Parquet typed), with `_file`, `__file` and
    `ordinality`; and the raw columns' DuckDB types. What it persists is appended to `cached`.

    Raises:
        DataError: Spark reads a column with another type than DuckDB does."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if part.fmt == "csv":
        raw = {c: _TEXT for c in part.types}
        data = _read_csv(spark, con, part.files, StructType([StructField(c, StringType()) for c in raw]))
    else:
        data = spark.read.option("mergeSchema", True).parquet(*part.files)
        raw = dict(part.types)
    data = data.select("*", F.col("_metadata.file_path").alias("__path"), F.monotonically_increasing_id().alias("__mid"),
                       *([F.col("_metadata.row_index").alias("__row")] if part.fmt == "parquet" else []))
    _check_raw_types(con, data.drop("__path", "__row", "__mid"), raw, part, label)
    return _positioned(spark, data, part, label, [] if cached is None else cached), raw


def _read_csv(spark: Any, con: duckdb.DuckDBPyConnection, files: list[str], schema: Any) -> Any:
    """Every file as text columns, read with the dialect DuckDB's sniffer finds in it (files of one dialect in one
    read). Quoted line breaks stay in their field (multiLine); a malformed row fails the read, as in DuckDB."""
    groups: dict[tuple, list[str]] = {}
    for path in files:
        d = csv_dialect(con, path)
        groups.setdefault((d["sep"], d["quote"], d["escape"], d["header"]), []).append(path)
    reads = []
    for (sep, quote, escape, header), paths in groups.items():
        quote = quote or "\u0000"  # no quoting: Spark's option for none
        reads.append(spark.read.options(header=header, sep=sep, quote=quote, escape=escape or quote, multiLine=True,
                                        mode="FAILFAST", encoding="UTF-8").schema(schema).csv(paths))
    return functools.reduce(lambda a, b: a.unionByName(b), reads)


def _check_raw_types(con: duckdb.DuckDBPyConnection, data: Any, raw: dict[str, str], part: Part, label: str) -> None:
    from pyspark.sql.pandas.types import to_arrow_schema

    seen = _duck_types(con, to_arrow_schema(data.schema, timezone="UTC"))
    for column, dtype in raw.items():
        if seen.get(column) != dtype:
            where = "" if part.kind == "events" else f"{part.where}: "
            raise DataError(f"{label}: {where}source '{part.source}': engine spark reads column '{column}' as "
                            f"{seen.get(column)} where DuckDB reads {dtype}: load it with engine duckdb")


def _positioned(spark: Any, data: Any, part: Part, label: str, cached: list[Any]) -> Any:
    """`_file` (the path as DuckDB names it), `__file` (its 1-based place in the sorted files) and `ordinality`
    (Parquet: the row in its file; CSV: the row over all files in order, as DuckDB's WITH ORDINALITY counts)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    hadoop = spark._jvm.org.apache.hadoop.fs.Path  # how Spark's _metadata.file_path spells a local path
    paths = [(str(hadoop(spark._jvm.java.io.File(f).toURI()).toString()), i + 1, f) for i, f in enumerate(part.files)]
    files = spark.createDataFrame(paths, "__path string, __file int, _file string")
    data = data.join(F.broadcast(files), "__path", "left")
    if part.fmt == "parquet":
        return data.withColumn("ordinality", F.col("__row") + 1).drop("__path", "__row", "__mid")
    # a CSV file is read whole by one task (multiLine), in order: its rows' ids increase down the file
    data = data.withColumn("__in_file", F.row_number().over(Window.partitionBy("__file").orderBy("__mid")))
    data = data.persist(StorageLevel.MEMORY_AND_DISK)  # parsed once: counted here, staged next
    cached.append(data)
    counts = dict(data.groupBy("__file").count().collect())
    if None in counts:
        raise DataError(f"{label}: source '{part.source}': spark read a file not in the sorted list of its files")
    before = list(itertools.accumulate([counts.get(i + 1, 0) for i in range(len(part.files))], initial=0))
    offsets = spark.createDataFrame([(i + 1, before[i]) for i in range(len(part.files))], "__file int, __before long")
    return (data.join(F.broadcast(offsets), "__file").withColumn("ordinality", F.col("__in_file") + F.col("__before"))
            .drop("__path", "__mid", "__in_file", "__before"))


# ------------------------------------------------------------------ DuckDB's row rules on the executors


def duck_select(data: Any, columns: list[exp.Expression], then: list[exp.Expression] | None = None) -> Any:
    """`SELECT columns FROM data` (DuckDB-dialect ASTs over `data`'s columns) evaluated by DuckDB on the executors,
    batch by batch: DuckDB's functions give DuckDB's answers. Only row-level expressions (no aggregates, windows).
    `then`: columns added over the first select's (which they may read), in the same pass."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from riskconsole.engines.spark_scores import _local_workers

    query = exp.select(*columns).from_("_batch")
    if then:
        query = exp.select(exp.Star(), *then).from_(query.subquery("s"))
    sql = render(query)
    if not any(isinstance(c, exp.Star) for c in columns):  # ship only the columns the query reads to Python
        read = {c.name for c in query.find_all(exp.Column)}
        data = data.select(*[f"`{c}`" for c in data.columns if c in read])
    source = to_arrow_schema(data.schema, timezone="UTC")
    produced = _run(_connect(), sql, source.empty_table()).schema  # the output types, found on the driver
    schema = from_arrow_schema(produced, prefer_timestamp_ntz=True)
    _local_workers(data.sparkSession)
    return data.mapInArrow(_batches(sql, to_arrow_schema(schema, timezone="UTC")), schema)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as the load's connection: zones convert to UTC
    return con


def _run(con: duckdb.DuckDBPyConnection, sql: str, batch: pa.Table) -> pa.Table:
    con.register("_batch", batch)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("_batch")


def _batches(sql: str, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        con = _connect()
        for batch in batches:
            if batch.num_rows:
                yield from _run(con, sql, pa.Table.from_batches([batch])).cast(schema).to_batches()
        con.close()

    return run


# ------------------------------------------------------------------ staging, publishing


def stage(data: Any, part: Part, raw: dict[str, str]) -> Any:
    """The staged rows: raw columns, casts, position and `__reason` — the row's own reason (DuckDB's SQL, on the
    executors), else `duplicate id` for every repeat after the first in source order (Spark's window)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keep = [ident(c) for c in (*raw, "_file", *POSITION)]
    reasoned = duck_select(data, [*keep, *ingest.typed_columns(part, raw)],
                           [alias(ingest.row_reason(part, raw), "__reason")])
    why = ingest.duplicate_reason(part)
    if why is None:
        return reasoned
    order = Window.partitionBy(*[F.col(f"`{ingest.cast_name(c)}`") for c in part.unique]).orderBy(*POSITION)
    dup = F.when(F.row_number().over(order) > 1, F.lit(why))
    return reasoned.withColumn("__reason", F.coalesce(F.col("__reason"), dup))


def _check_utf8(data: Any, raw: dict[str, str], part: Part, label: str) -> None:
    """Refuse a CSV holding bytes that are not UTF-8: DuckDB's reader refuses the file, Spark's would read each such
    byte as U+FFFD and load the row. A U+FFFD written in a valid file is refused too (Spark cannot tell them apart).

    Raises:
        DataError: naming the first such file and row."""
    from pyspark.sql import functions as F

    replaced = [F.coalesce(F.col(f"`{c}`").contains("\ufffd"), F.lit(False)) for c in raw]
    first = data.where(functools.reduce(lambda a, b: a | b, replaced)).orderBy(*POSITION).limit(1).collect()
    if first:
        where = "" if part.kind == "events" else f"{part.where}: "
        raise DataError(f"{label}: {where}source '{part.source}': {first[0]['_file']} row {first[0]['ordinality']} "
                        "is not valid UTF-8 (or holds U+FFFD, which engine spark cannot tell from it; DuckDB refuses "
                        "such a file): export the file as UTF-8")


def load_part(spark: Any, checked: Checked, part: Part) -> SparkLoaded:
    """Read, type and quarantine one source on Spark, as `ingest.load_part` does on DuckDB.

    Raises:
        DataError: Spark cannot read it exactly (`refusal`), or every row is quarantined."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    con = _connect()
    where = "" if part.kind == "events" else f"{part.where}: "
    why = refusal(con, part)
    if why:
        raise DataError(_refused(checked, part, why))
    cached: list[Any] = []
    data, raw = read_raw(spark, con, part, checked.label, cached)
    if part.fmt == "csv":
        _check_utf8(data, raw, part, checked.label)
    staged = stage(data, part, raw).persist(StorageLevel.MEMORY_AND_DISK)
    cached.append(staged)
    reasons = {r: n for r, n in staged.groupBy("__reason").count().collect()}
    read, loaded = sum(reasons.values()), reasons.pop(None, 0)
    if loaded == 0:
        shown = sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0]))[:2]
        text = "; ".join(f"{terminal(str(r))[:160]} ({n:,} rows)" for r, n in shown)
        raise DataError(f"{checked.label}: {where}no loadable rows in '{part.source}' (read {read:,}, every one "
                        f"quarantined: {text})")
    warnings = SparkStaged(staged, raw, con).warnings(checked, part, read)
    rows = staged.where(F.col("__reason").isNull()).select(
        *[F.col(f"`{ingest.cast_name(c)}`").alias(part.loaded_name(c)) for c in part.types])
    texts = [alias(fill("CAST(:c AS VARCHAR)", c=ident(c)), part.loaded_name(c)) for c in part.types]
    quarantine = duck_select(staged.where(F.col("__reason").isNotNull()), [
        *texts, alias(ident("__reason"), "reason"), alias(ident("_file"), "file"), alias(ident("ordinality"), "row"),
        ident("__file")]).orderBy("__file", "row")
    ordered = dict(sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0])))
    return SparkLoaded(read, loaded, rows, quarantine, ordered, warnings, cached)


# ------------------------------------------------------------------ the load of engine spark


def check(checked: Checked) -> None:
    """Refuse, before a row is read, a source (decision events, a stream, a table) Spark cannot read as DuckDB does
    (validate and load run it).

    Raises:
        DataError: one line naming the source, the reason and the engine."""
    con = _connect()
    try:
        for part in checked.parts:
            why = refusal(con, part)
            if why:
                raise DataError(_refused(checked, part, why))
    finally:
        con.close()


def _refused(checked: Checked, part: Part, why: str) -> str:
    where = "" if part.kind == "events" else f"{part.where}: "
    return (f"{checked.label}: {where}source '{part.source}': engine spark cannot read it as DuckDB does: {why}; "
            "load with engine duckdb (--engine duckdb)")


class SparkLoader:
    """`ingest`'s loader with engine spark: every source (decision events, streams, tables) is read, typed and
    quarantined by Spark and written as Parquet to data/spark/<version>/<table> (the events by day: the folders the
    Spark engine builds the frame from); DuckDB's table and quarantine of each are then read from Spark's output."""

    def __init__(self, ws: Any, dataset: Any, version: str, spark: Any = None) -> None:
        from riskconsole.engines.spark import SPARK_DIR

        self.dataset, self._spark = dataset, spark
        self.root = ws.root / "data" / SPARK_DIR / version

    @property
    def spark(self) -> Any:
        if self._spark is None:
            from riskconsole.engines.spark import start

            self._spark = start(self.dataset.spark)
        return self._spark

    def __call__(self, con: duckdb.DuckDBPyConnection, checked: Checked, part: Part,
                 progress: Callable[[str], None]) -> tuple[int, int, list[str]]:
        from riskconsole.engines.spark import DAY, LOADED

        master = self.dataset.spark.remote or self.spark.conf.get("spark.master", self.dataset.spark.master)
        where = "" if part.kind == "events" else f"{part.where}: "
        progress(f"spark: reading {len(part.files)} file(s) of {where}{part.source} on {master} ...")
        result = load_part(self.spark, checked, part)
        rows, quarantine = self.root / part.table, self.root / f"_{part.quarantine}"
        if part.kind == "events":
            write_days(result.rows, rows, part.loaded_name(part.roles["time"]))
        else:
            result.rows.write.mode("overwrite").parquet(str(rows))
        result.quarantine.write.mode("overwrite").parquet(str(quarantine))
        for data in result.cached:
            data.unpersist()
        try:
            _publish(con, part, rows, quarantine, [part.loaded_name(c) for c in part.order])
        finally:
            shutil.rmtree(quarantine, ignore_errors=True)
        marker = self.root / LOADED
        tables = json.loads(marker.read_text())["tables"] if marker.exists() else []
        marker.write_text(json.dumps({"tables": [*tables, part.table], "day": DAY}))
        return result.read, result.loaded, result.warnings


def write_days(rows: Any, out: Path, time: str) -> None:
    """The loaded rows as Parquet, one folder per day of `time` (`__day=YYYY-MM-DD`), as the engine's export."""
    from pyspark.sql import functions as F

    from riskconsole.engines.spark import DAY

    rows.withColumn(DAY, F.to_date(F.col(f"`{time}`"))).write.mode("overwrite").partitionBy(DAY).parquet(str(out))


def _publish(con: duckdb.DuckDBPyConnection, part: Part, rows: Path, quarantine: Path, order: list[str]) -> None:
    """DuckDB's table of the part (in its order: time and id for the events) and its quarantine (in source order)
    from Spark's Parquet."""
    read = "read_parquet($files, hive_partitioning = false)"
    files = {"files": [str(p) for p in sorted(rows.rglob("*.parquet"))]}
    con.execute(f"CREATE OR REPLACE TABLE {part.table} AS SELECT * FROM {read} ORDER BY "
                + ", ".join(render(ident(c)) for c in order), files)
    files = {"files": [str(p) for p in sorted(quarantine.rglob("*.parquet"))]}
    if files["files"]:
        con.execute(f"CREATE OR REPLACE TABLE {part.quarantine} AS SELECT * EXCLUDE (__file) FROM {read} "
                    "ORDER BY __file, \"row\"", files)
    else:  # no row quarantined: DuckDB's empty table, with its columns
        texts = [alias(fill("CAST(NULL AS VARCHAR)"), part.loaded_name(c)) for c in part.types]
        empty = exp.select(*texts, "CAST(NULL AS VARCHAR) AS reason", "CAST(NULL AS VARCHAR) AS file",
                           "CAST(NULL AS BIGINT) AS \"row\"").where("false")
        con.execute(f"CREATE OR REPLACE TABLE {part.quarantine} AS " + render(empty))
