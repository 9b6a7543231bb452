"""Load on engine spark: a source's files read, typed and quarantined by Spark (issue 15, first slice).

Spark reads the files (spark_read.py: CSV with the dialect DuckDB's sniffer finds, Parquet as typed); every rule of
DuckDB's load — the casts, time parsing, label words, amounts, missing keys — is the SQL ingest.py builds, run by
an embedded DuckDB on the executors over each Arrow batch (`duck_select`), so a value parses exactly as DuckDB's
load parses it. What needs every row — duplicates (the first occurrence in source order wins), source positions,
counts, the warnings' samples — is Spark's. Where Spark cannot read a source as DuckDB does, `refusal` says why
before a row is read (one line naming the engine). Executors need riskconsole and DuckDB installed.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole import ingest
from riskconsole.engines import spark_worker
from riskconsole.engines.spark_json import row_error
from riskconsole.engines.spark_read import (POSITION, check_utf8, header_error, malformed_row, packed, quoted, read_raw,
                                            refusal, renamed, unlisted_file, file_row)
from riskconsole.engines.spark_render import first_line
from riskconsole.errors import DataError, RiskConsoleError
from riskconsole.sources import SHOWN_VALUES, Checked, Part, literal_files, outcome_checks, outcome_error
from riskconsole.sqlbuild import alias, fill, ident, lit, render, wide_select
from riskconsole.storeviews import create_view, viewable


@dataclass
class SparkStaged:
    """A source's staged rows on Spark (raw columns, casts `__c_<column>`, `_file`, `__file`, `__at`,
    `__reason`): the three questions ingest's warnings ask (`ingest.Staged`), answered by Spark."""

    rows: Any  # the staged DataFrame
    raw: dict[str, str]  # raw column -> its DuckDB type as DuckDB's reader gives it
    con: duckdb.DuckDBPyConnection = field(default_factory=spark_worker.cursor)  # in UTC (time suggestions)
    _known: dict[tuple[str, str], int] = field(default_factory=dict)  # failing rows counted ahead, by (raw, bad)
    _counted: dict[str, int] = field(default_factory=dict)  # rows meeting a condition counted ahead, by its SQL
    _sampled: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # samples read ahead, by (raw, bad)
    files: dict[int, tuple[int, int]] = field(default_factory=dict)  # by 1-based file place: rows, first `__at`
    outcomes: list[int] = field(default_factory=list)  # per outcome check: its bad rows

    def failing(self, raw: exp.Expression, bad: exp.Expression) -> tuple[int, list[str]]:
        """How many rows are `bad`, and up to ingest.SAMPLE of their raw values (first in source order)."""
        known = self._known.get(_key(raw, bad))
        if known == 0:
            return 0, []
        n = self._bad(raw, bad).count() if known is None else known
        return (n, self.sample(raw, bad)) if n else (0, [])

    def sample(self, raw: exp.Expression, bad: exp.Expression) -> list[str]:
        """Up to ingest.SAMPLE raw values of the `bad` rows (first in source order), without counting them: one job
        unless read ahead."""
        read = self._sampled.get(_key(raw, bad))
        if read is not None:
            return read
        first = self._bad(raw, bad).orderBy(*POSITION).limit(ingest.SAMPLE).select("__v").collect()
        return [row[0] for row in first if row[0] is not None]

    def _sample_ahead(self, pairs: list[tuple[exp.Expression, exp.Expression]]) -> None:
        """`sample` of every (raw, bad) pair in one job: each row lists the pairs it fails with its raw value, Spark
        keeps each pair's first ingest.SAMPLE in source order (a window limited per pair)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not pairs:
            return
        hits = [fill("CASE WHEN coalesce(:b, false) THEN {'i': :n, 'v': CAST(:r AS VARCHAR)} END", b=bad, n=i, r=raw)
                for i, (raw, bad) in enumerate(pairs)]
        listed = fill("list_filter(:l, s -> s IS NOT NULL)", l=exp.Array(expressions=hits))
        marked = duck_select(self.rows, [alias(listed, "__s"), *map(ident, POSITION)])
        found = marked.select(*POSITION, F.explode("__s").alias("__s")).select(*POSITION, "__s.i", "__s.v")
        first = found.withColumn("__k", F.row_number().over(Window.partitionBy("i").orderBy(*POSITION)))
        kept = sorted((row["i"], row["__k"], row["v"]) for row in first.where(f"__k <= {ingest.SAMPLE}").collect())
        for i, (raw, bad) in enumerate(pairs):
            self._sampled[_key(raw, bad)] = [v for j, _, v in kept if j == i and v is not None]

    def _bad(self, raw: exp.Expression, bad: exp.Expression) -> Any:
        marked = duck_select(self.rows, [alias(bad, "__bad"), alias(fill("CAST(:r AS VARCHAR)", r=raw), "__v"),
                                         *map(ident, POSITION)])
        return marked.where("__bad")

    def raw_types(self) -> dict[str, str]:
        return dict(self.raw)

    def tally(self, checked: Checked, part: Part, marks: Marks) -> tuple[dict[str | None, int], bool]:
        """One pass over the staged rows (the first: it parses the files), summing the `marks` the staging computed:
        how many rows have each `__reason` (None: loaded), every file's rows and first `__at` (`files`, which
        `file_row` numbers rows from), every count the warnings will ask (kept for `warnings`: they ask column by
        column, a Spark job each), whether a raw text column holds U+FFFD (`check_utf8` then finds the first such
        row), and the outcome roles' checks (`outcomes`: `sources.outcome_checks`' bad rows; `bad_values` names them).

        Raises:
            DataError: a row's file is not one of the part's (`unlisted_file`)."""
        from pyspark.sql import functions as F

        names = [f"__m{i}" for i in range(len(marks.pairs) + len(marks.conditions))]
        outcomes = range(len(marks.checks))
        sums = [F.expr(f"sum({n}) AS {n}") for n in [*names, *[f"__o{i}" for i in outcomes]]]  # a Py4J call each
        fffd = [F.expr("max(__fffd) AS __fffd")] if marks.utf8 else []
        groups = self.rows.groupBy("__reason", "__file").agg(F.expr("count(*) AS __n"), F.expr("min(__at) AS __at"),
                                                             *sums, *fffd).collect()
        if any(g["__file"] is None for g in groups):
            raise unlisted_file(checked.label, part)
        totals = [sum(int(g[n] or 0) for g in groups) for n in names]
        self._known = {_key(raw, bad): n for (raw, bad), n in zip(marks.pairs, totals)}
        self._counted = {render(c): n for c, n in zip(marks.conditions, totals[len(marks.pairs):])}
        for g in groups:
            rows, at = self.files.get(g["__file"], (0, g["__at"]))
            self.files[g["__file"]] = (rows + g["__n"], min(at, g["__at"]))
        self.outcomes = [sum(int(g[f"__o{i}"] or 0) for g in groups) for i in outcomes]
        reasons: dict[str | None, int] = {}
        for g in groups:
            reasons[g["__reason"]] = reasons.get(g["__reason"], 0) + g["__n"]
        return reasons, bool(fffd) and any(g["__fffd"] for g in groups)

    def bad_values(self, i: int) -> tuple[list[tuple[str | None, int]], int, int]:
        """Outcome check i's bad values as DuckDB's check gives them: the most frequent first (ties by value, empty
        first), at most `SHOWN_VALUES`, with how many distinct values and rows there are in all."""
        from pyspark.sql import functions as F

        counted = self.rows.where(f"__o{i} = 1").groupBy(f"__ov{i}").agg(F.expr("count(*) AS __n"))
        top = counted.orderBy(F.desc("__n"), F.asc_nulls_first(f"__ov{i}")).limit(SHOWN_VALUES).collect()
        totals = counted.agg(F.expr("count(*) AS k"), F.expr("sum(__n) AS t")).collect()[0]
        return [(row[f"__ov{i}"], int(row["__n"])) for row in top], int(totals["k"]), int(totals["t"] or 0)

    def warnings(self, checked: Checked, part: Part, read: int) -> list[str]:
        """ingest's warnings of these rows: counts from `tally`, samples read only where some row fails. What a
        warning asks depends on earlier answers (a time column's failing values choose the formats whose counts it
        asks), so the warnings are written against what is known, what they asked that is not known is read in one
        counting pass and one sampling pass, and again until they ask nothing new: a few passes over the staged
        rows, not one per question (a CSV with three bad columns asked 17)."""
        for _ in range(ROUNDS):
            asked = _Asked(self.con, self.raw, self)
            found = ingest.load_warnings(asked, checked, part, read)
            if not (asked.pairs or asked.conditions or asked.samples):
                return found
            totals = self._count([bad for _, bad in asked.pairs] + asked.conditions)
            self._known.update({_key(raw, bad): n for (raw, bad), n in zip(asked.pairs, totals)})
            self._counted.update({render(c): n for c, n in zip(asked.conditions, totals[len(asked.pairs):])})
            self._sample_ahead(asked.samples + asked.pairs)  # a pair no row fails costs nothing there
        return ingest.load_warnings(self, checked, part, read)

    def counts(self, conditions: list[exp.Expression]) -> list[int]:
        """How many rows meet each condition (counted by `tally` or ahead, else one pass)."""
        keys = [render(c) for c in conditions]
        if all(k in self._counted for k in keys):
            return [self._counted[k] for k in keys]
        return self._count(conditions)

    def _count(self, conditions: list[exp.Expression]) -> list[int]:
        from pyspark.sql import functions as F

        if not conditions:
            return []
        names = [f"__m{i}" for i in range(len(conditions))]
        marked = duck_select(self.rows, [alias(fill("CAST(coalesce(:c, false) AS INTEGER)", c=c), n)
                                         for c, n in zip(conditions, names)])
        totals = marked.agg(*[F.expr(f"sum({n}) AS {n}") for n in names]).collect()[0]
        return [int(totals[n] or 0) for n in names]


@dataclass
class Marks:
    """What the one pass over a source's staged rows sums (`SparkStaged.tally`), as columns the staging's DuckDB
    select computes beside the casts (no pass of their own): `__m<i>` (1 where a warning's condition holds: the
    (raw, bad) pairs, then the conditions), `__o<i>` and `__ov<i>` (an outcome check's bad row and its value),
    `__fffd` (a raw text column holds U+FFFD)."""

    pairs: list[tuple[exp.Expression, exp.Expression]]
    conditions: list[exp.Expression]
    checks: list[tuple[exp.Expression, exp.Expression, str]]  # sources.outcome_checks
    utf8: bool
    columns: list[exp.Expression]


def marks(con: duckdb.DuckDBPyConnection, checked: Checked, part: Part, raw: dict[str, str], utf8: bool,
          outcomes: bool) -> Marks:
    """The marks of a source's staged rows: every (raw, bad) pair and condition ingest's warnings will count, with
    `utf8` the U+FFFD check of the raw text columns, with `outcomes` the outcome roles' checks."""
    asked = _Asked(con, raw)
    ingest.load_warnings(asked, checked, part, 1)  # which (raw, bad) pairs and conditions the warnings count
    conditions = [bad for _, bad in asked.pairs] + asked.conditions
    columns = [alias(fill("CAST(coalesce(:c, false) AS INTEGER)", c=c), f"__m{i}") for i, c in enumerate(conditions)]
    checks = outcome_checks(checked.dataset, raw) if outcomes else []
    for i, (bad, text, _) in enumerate(checks):
        columns += [alias(fill("CAST(coalesce(:b, false) AS INTEGER)", b=bad), f"__o{i}"),
                    alias(fill("CASE WHEN :b THEN :t END", b=bad, t=text), f"__ov{i}")]
    utf8 = utf8 and bool(raw)
    if utf8:
        replaced = [fill("coalesce(contains(:c, :r), false)", c=ident(c), r=lit("\ufffd")) for c in raw]
        columns.append(alias(functools.reduce(exp.or_, replaced), "__fffd"))
    return Marks(asked.pairs, asked.conditions, checks, utf8, columns)


ROUNDS = 8  # `SparkStaged.warnings`' rounds of reading ahead before it asks question by question (tests: at most 4)


class _Asked:
    """A stand-in for staged rows that answers what `known` knows (nothing: `marks`, before the first pass) and
    records every other (raw, bad) pair, sample and condition the warnings ask about, answering as if no row failed
    there."""

    def __init__(self, con: duckdb.DuckDBPyConnection, raw: dict[str, str], known: SparkStaged | None = None) -> None:
        self.con, self.raw, self.known = con, raw, known or SparkStaged(None, raw, con)
        self.pairs: list[tuple[exp.Expression, exp.Expression]] = []
        self.samples: list[tuple[exp.Expression, exp.Expression]] = []
        self.conditions: list[exp.Expression] = []
        self._seen: set[Any] = set()

    def raw_types(self) -> dict[str, str]:
        return dict(self.raw)

    def failing(self, raw: exp.Expression, bad: exp.Expression) -> tuple[int, list[str]]:
        key = _key(raw, bad)  # (rendering copies the trees: once a question)
        n = self.known._known.get(key)
        if n is None:
            self._note(self.pairs, (raw, bad), ("pair", *key))
        return (n, self._sample(raw, bad, key)) if n else (0, [])

    def sample(self, raw: exp.Expression, bad: exp.Expression) -> list[str]:
        return self._sample(raw, bad, _key(raw, bad))

    def _sample(self, raw: exp.Expression, bad: exp.Expression, key: tuple[str, str]) -> list[str]:
        values = self.known._sampled.get(key)
        if values is None:
            self._note(self.samples, (raw, bad), ("sample", *key))
        return values or []

    def counts(self, conditions: list[exp.Expression]) -> list[int]:
        keys = [render(c) for c in conditions]
        found = [self.known._counted.get(k) for k in keys]
        for c, k, n in zip(conditions, keys, found):
            if n is None:
                self._note(self.conditions, c, ("condition", k))
        return [n or 0 for n in found]

    def _note(self, into: list[Any], item: Any, key: Any) -> None:
        if key not in self._seen:
            self._seen.add(key)
            into.append(item)


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


# ------------------------------------------------------------------ DuckDB's row rules on the executors


def duck_select(data: Any, columns: list[exp.Expression], then: list[exp.Expression] | None = None,
                tables: dict[str, pa.Table] | None = None) -> Any:
    """`SELECT columns FROM data` (DuckDB-dialect ASTs over `data`'s columns) evaluated by DuckDB on the executors,
    batch by batch: DuckDB's functions give DuckDB's answers. Only row-level expressions (no aggregates, windows).
    `then`: columns added over the first select's (which they may read), in the same pass. `tables`: small tables
    the expressions may query (a subquery), shipped with the task and registered once per task."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from riskconsole.engines.spark_scores import _local_workers

    plain = any(isinstance(c, exp.Star) for c in columns)
    query = exp.select(*columns).from_("_batch") if plain else wide_select(columns, "_batch")  # a wide source's casts
    if then:
        query = exp.select(exp.Star(), *then).from_(query.subquery("s"))
    sql = render(query)
    names = data.columns
    if not any(isinstance(c, exp.Star) for c in columns):  # ship only the columns the query reads to Python
        read = {c.name for c in query.find_all(exp.Column)}
        names = [c for c in names if c in read]
    # shipped under plain names: PySpark's mapInArrow takes each input column by its name as a path (`x.y` would be
    # field y of x); each batch gets its names back before DuckDB reads it
    data = renamed(data, [(c, f"_{i}") for i, c in enumerate(names)])
    source = pa.schema([f.with_name(n) for f, n in zip(to_arrow_schema(data.schema, timezone="UTC"), names)])
    tables = tables or {}
    with contextlib.closing(spark_worker.cursor()) as con:  # the output types, found on the driver
        for name, table in tables.items():
            con.register(name, table)
        produced = _run(con, sql, source.empty_table()).schema
    schema = from_arrow_schema(produced, prefer_timestamp_ntz=True)
    _local_workers(data.sparkSession)
    return data.mapInArrow(_batches(sql, to_arrow_schema(schema, timezone="UTC"), names, tables), schema)


def _run(con: duckdb.DuckDBPyConnection, sql: str, batch: pa.Table) -> pa.Table:
    con.register("_batch", batch)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("_batch")


def _batches(sql: str, schema: pa.Schema, names: list[str], tables: dict[str, pa.Table] | None = None) -> Callable[
        [Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spark_worker.settle()
        with contextlib.closing(spark_worker.cursor()) as con:
            for name, table in (tables or {}).items():
                con.register(name, table)
            for batch in batches:
                if batch.num_rows:
                    table = pa.Table.from_batches([batch]).rename_columns(names)
                    yield from _run(con, sql, table).cast(schema).to_batches()

    return run


# ------------------------------------------------------------------ staging, publishing


def stage(data: Any, part: Part, raw: dict[str, str], marked: list[exp.Expression] | None = None) -> Any:
    """The staged rows: raw columns, casts, position and `__reason` — the row's own reason (DuckDB's SQL, on the
    executors), else `duplicate id` for every repeat after the first in source order (Spark's window); and the
    columns `marked` (over the raw columns and casts: `marks`), in the same DuckDB select."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keep = [ident(c) for c in (*raw, "_file", *POSITION)]
    reasoned = duck_select(data, [*keep, *ingest.typed_columns(part, raw)],
                           [alias(ingest.row_reason(part, raw), "__reason"), *(marked or [])])
    why = ingest.duplicate_reason(part)
    if why is None:
        return reasoned
    order = Window.partitionBy(*[F.col(quoted(ingest.cast_name(c))) for c in part.unique]).orderBy(*POSITION)
    dup = F.when(F.row_number().over(order) > 1, F.lit(why))
    return reasoned.withColumn("__reason", F.coalesce(F.col("__reason"), dup))


def load_part(spark: Any, checked: Checked, part: Part) -> SparkLoaded:
    """Read, type and quarantine one source on Spark, as `ingest.load_part` does on DuckDB.

    Raises:
        DataError: Spark cannot read it exactly (`refusal`), a row DuckDB's load refuses too (a JSON line that is
            not JSON), or every row is quarantined."""
    con = spark_worker.cursor()
    why = refusal(con, part)
    if why:
        raise DataError(_refused(checked, part, why))
    shifted = ingest.one_field_over(con, checked, part)  # DuckDB's line: the file, the line, the fix
    if shifted:
        raise DataError(shifted)
    cached: list[Any] = []
    try:
        return _load_part(spark, con, checked, part, cached)
    except BaseException as err:
        unpersist(cached)  # else the session's cache would answer a later read of the same files (fixed by then)
        said = None if isinstance(err, RiskConsoleError) else row_error(err) or header_error(err)  # a row's, a file's
        ragged = None if isinstance(err, RiskConsoleError) or said else malformed_row(err, con, part, checked.shown)
        if ragged is not None:  # a CSV line whose fields do not fit the header: as DuckDB's load names it
            raise DataError(f"{checked.label}: {ragged}") from None
        if said is None:  # arrives as whatever pyspark wraps it in
            raise
        raise DataError(f"{checked.label}: {part.lead}source '{part.source}': {said}") from None


def unpersist(cached: list[Any]) -> None:
    """Drop what a load persisted from Spark's cache: the cache answers any later read whose plan matches, even
    after the files changed (a source fixed after a failed load would be read as it was)."""
    for data in cached:
        data.unpersist()


def _load_part(spark: Any, con: duckdb.DuckDBPyConnection, checked: Checked, part: Part,
               cached: list[Any]) -> SparkLoaded:
    from pyspark import StorageLevel

    data, raw = read_raw(spark, con, part, checked.label)
    data = packed(spark, data, part)
    # a source at a URI had its outcome roles checked over samples before: now over every row, in the same pass
    counted = marks(con, checked, part, raw, utf8=part.fmt == "csv", outcomes=part.remote and part.kind == "events")
    # on disk, not in the heap: the cached batches of a large source filled it (a 7M-row CSV ran a 2 GB driver out of
    # memory near the end of the staging pass; on disk it loads, and a 1M-row load takes as long: bench/RESULTS.md)
    staged = stage(data, part, raw, counted.columns).persist(StorageLevel.DISK_ONLY)
    cached.append(staged)
    tallied = SparkStaged(staged, raw, con)
    reasons, replaced = tallied.tally(checked, part, counted)
    for i, (n, (_, _, message)) in enumerate(zip(tallied.outcomes, counted.checks)):
        if n:
            raise DataError(outcome_error(checked.label, message, *tallied.bad_values(i),
                                          checked.dataset.prod_action_values))
    if replaced:
        check_utf8(data, raw, part, checked.label, tallied.files)  # raises, naming the first such row
    read, loaded = sum(reasons.values()), reasons.pop(None, 0)
    warnings = tallied.warnings(checked, part, read)
    if loaded == 0:  # DuckDB's line: the top reasons and the warning with the fix
        shown = sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0]))[:2]
        raise ingest.no_loadable_rows(checked, part, read, shown, warnings)
    rows = renamed(staged.where("__reason IS NULL"), [(ingest.cast_name(c), part.loaded_name(c)) for c in part.types])
    row, shifts = file_row(part, tallied.files)
    quarantine = duck_select(staged.where("__reason IS NOT NULL"), [
        *ingest.quarantine_texts(part), alias(ident("__reason"), "reason"), alias(ident("_file"), "file"),
        alias(row, "row"), ident("__file")], tables=shifts).orderBy("__file", "row")
    ordered = dict(sorted(reasons.items(), key=lambda rn: (-rn[1], rn[0])))
    return SparkLoaded(read, loaded, rows, quarantine, ordered, warnings, cached)


# ------------------------------------------------------------------ the load of engine spark


def check(checked: Checked) -> None:
    """Refuse, before a row is read, a source (decision events, a stream, a table) Spark cannot read as DuckDB does
    (validate and load run it).

    Raises:
        DataError: one line naming the source, the reason and the engine."""
    con = spark_worker.cursor()
    try:
        for part in checked.parts:
            why = refusal(con, part)
            if why:
                raise DataError(_refused(checked, part, why))
    finally:
        con.close()


def _refused(checked: Checked, part: Part, why: str) -> str:
    return (f"{checked.label}: {part.lead}source '{part.source}': engine spark cannot read it as DuckDB does: {why}; "
            "load with engine duckdb (--engine duckdb)")


class SparkLoader:
    """`ingest`'s loader with engine spark: every source (decision events, streams, tables) is read, typed and
    quarantined by Spark and written as Parquet to data/spark/<version>/<table> (or `spark.store`/<version>/: the
    events by day, the folders the Spark engine builds the frame from); DuckDB's table and quarantine of each are then
    read from Spark's output."""

    def __init__(self, ws: Any, dataset: Any, version: str, spark: Any = None) -> None:
        from riskconsole.engines.spark import store_of

        self.ws, self.dataset, self.version, self._given, self._spark = ws, dataset, version, spark, None
        self.versions = store_of(ws, dataset, lambda: self.spark)
        self.store = self.versions.child(version)

    def discard(self) -> None:
        """Remove what this load wrote (it never went live): nothing when no Spark session was started."""
        if self._spark is not None:
            self.store.remove()

    def published(self) -> None:
        """The load is live: remove the folders of earlier data versions (their events are gone from DuckDB too)."""
        from riskconsole.engines.spark import remove_versions

        remove_versions(self.versions, keep=self.version, ws=self.ws)

    def build_frame(self, con: duckdb.DuckDBPyConnection, dataset: Any, label: str,
                    progress: Callable[[str], None]) -> list[str]:
        """The load's frame, built on Spark from the sources it wrote (`features.frame_plan` rendered for Spark, as
        a backtest's first run would build it), and DuckDB's table `frame` read back from it in the types DuckDB's
        own build gives (`features.planned_types`): the features are computed once, on Spark, not also by DuckDB on
        this machine. Needs the load's `_meta` (its data version) in `con`."""
        from riskconsole.engines.spark import SparkEngine, read_back
        from riskconsole.features import planned_types

        types = planned_types(con, dataset, label)
        self._engine = engine = SparkEngine(self.ws, dataset, con, self.spark, progress)
        try:
            engine.build_loaded([c for c, _ in types])
        except RiskConsoleError:
            raise
        except Exception as err:  # noqa: BLE001 - pyspark raises many kinds
            raise DataError(f"{label}: building the features on spark failed: {first_line(err)}") from None
        progress(f"spark: features built on {engine.master} in {engine.seconds['frame']:.1f} s: {engine.where}")
        read_back(con, self.store, "frame", types, ("frame",), view=viewable(self.store.local))
        return [f.name for f in dataset.features]

    def scores(self, con: duckdb.DuckDBPyConnection, detector: str, table: str) -> int | None:
        """A trained detector's scores of the load's frame, computed on Spark (`SparkEngine.score_into`, kept where
        the engine's backtests then find them) and read into DuckDB's score `table`: its rows, or None for a model
        Spark does not score (DuckDB scores it)."""
        engine = getattr(self, "_engine", None)
        return engine.score_into(con, detector, table) if engine is not None else None

    @property
    def spark(self) -> Any:
        if self._spark is None:  # a session of its own: the shared one's views are the live version's
            from riskconsole.engines.spark import isolated, start

            self._spark = isolated(self._given or start(self.dataset.spark))
        return self._spark

    def __call__(self, con: duckdb.DuckDBPyConnection, checked: Checked, part: Part,
                 progress: Callable[[str], None]) -> tuple[int, int, list[str]]:
        from riskconsole.engines.spark import DAY, LOADED, claim

        claim(self.store, self.ws)  # before the first file of this version is written
        master = self.dataset.spark.target if self.dataset.spark.connect else \
            self.spark.conf.get("spark.master", self.dataset.spark.master)
        progress(f"spark: reading {len(part.files)} file(s) of {part.lead}{part.source} on {master} ...")
        rows, quarantine = part.table, f"_{part.quarantine}"
        result = None
        try:
            result = load_part(self.spark, checked, part)  # on failure it unpersists what it cached itself
            order = [part.loaded_name(c) for c in part.order]  # DuckDB's view reads the files in this order
            if part.kind == "events":
                write_days(result.rows, self.store.uri(rows), part.loaded_name(part.roles["time"]), order)
            else:
                result.rows.orderBy(*_ascending(order)).write.mode("overwrite").parquet(self.store.uri(rows))
            result.quarantine.write.mode("overwrite").parquet(self.store.uri(quarantine))
        except RiskConsoleError:
            raise
        except Exception as err:  # noqa: BLE001 - pyspark raises many kinds; one line says which source failed
            raise DataError(f"{checked.label}: {part.lead}loading '{part.source}' on spark failed: "
                            f"{row_error(err) or first_line(err)}") \
                from None
        finally:
            if result is not None:
                unpersist(result.cached)
        kept = False  # the quarantine's files: kept when DuckDB's quarantine is a view of them
        try:
            with self.store.reading(rows) as rows_in, self.store.reading(quarantine) as quarantine_in:
                kept = _publish(con, part, rows_in, quarantine_in, order, view=viewable(self.store.local))
        finally:
            if not kept:
                self.store.remove(quarantine)
        done = json.loads(self.store.read_text(LOADED) or '{"tables": []}')
        quarantines = done.get("quarantines", []) + ([quarantine] if kept else [])  # what views read: kept
        self.store.write_text(LOADED, text=json.dumps({"tables": [*done["tables"], part.table], "day": DAY,
                                                       "quarantines": quarantines}))
        return result.read, result.loaded, result.warnings


def write_days(rows: Any, out: str, time: str, order: list[str]) -> None:
    """The loaded rows as Parquet, one folder per day of `time` (`__day=YYYY-MM-DD`), as the engine's export; sorted
    by `order` (time first), so the files read in the order of their paths give the rows in DuckDB's table order
    (and a window of days or hours reads only the row groups that hold it)."""
    from pyspark.sql import functions as F

    from riskconsole.engines.spark import DAY

    days = rows.withColumn(DAY, F.to_date(F.col(quoted(time)))).orderBy(*_ascending([DAY, *order]))
    days.write.mode("overwrite").partitionBy(DAY).parquet(out)


def _ascending(columns: list[str]) -> list[Any]:
    """Spark's sort keys for DuckDB's `ORDER BY columns` (ascending, nulls last)."""
    from pyspark.sql import functions as F

    return [F.col(quoted(c)).asc_nulls_last() for c in columns]


def _publish(con: duckdb.DuckDBPyConnection, part: Part, rows: Path, quarantine: Path, order: list[str],
             view: bool = False) -> bool:
    """DuckDB's table of the part (in its order: time and id for the events) and its quarantine (in source order)
    from Spark's Parquet. `view` (the store is on this machine, `storeviews.viewable`): both as views of Spark's
    files, which are written in that order, not copies. Whether the quarantine is a view (its files must stay)."""
    read = "read_parquet($files, hive_partitioning = false)"
    if view:
        create_view(con, part.table, rows, rows.parent, by_day=part.kind == "events")
    else:
        files = {"files": literal_files([str(p) for p in sorted(rows.rglob("*.parquet"))])}
        con.execute(f"CREATE OR REPLACE TABLE {part.table} AS SELECT * FROM {read} ORDER BY "
                    + ", ".join(render(ident(c)) for c in order), files)
    files = {"files": literal_files([str(p) for p in sorted(quarantine.rglob("*.parquet"))])}
    if files["files"] and view:
        create_view(con, part.quarantine, quarantine, quarantine.parent, columns="* EXCLUDE (__file)",
                    order='__file, "row"')  # source order, which quarantine.csv and the Data page show
        return True
    if files["files"]:
        con.execute(f"CREATE OR REPLACE TABLE {part.quarantine} AS SELECT * EXCLUDE (__file) FROM {read} "
                    "ORDER BY __file, \"row\"", files)
    else:  # no row quarantined: DuckDB's empty table, with its columns
        texts = [alias(fill("CAST(NULL AS VARCHAR)"), part.loaded_name(c)) for c in part.types]
        empty = exp.select(*texts, "CAST(NULL AS VARCHAR) AS reason", "CAST(NULL AS VARCHAR) AS file",
                           "CAST(NULL AS BIGINT) AS \"row\"").where("false")
        con.execute(f"CREATE OR REPLACE TABLE {part.quarantine} AS " + render(empty))
    return False
