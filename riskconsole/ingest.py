"""Load event files (CSV, Parquet, JSON Lines) into DuckDB by the roles of a dataset spec.

No row is dropped silently: every row lands in `events` or in `quarantine` (with a reason),
and read = loaded + quarantined. A load builds a new database file beside the live one (events,
quarantine, frame, and the scores of every trained detector) and swaps it in with one rename, so a
failed or killed load changes nothing, and events, features and scores always change together. A load that would
quarantine more than REFUSE_SHARE of a source's rows is refused the same way, unless told to accept it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import duckdb
from sqlglot import exp

from riskconsole import ragged, times
from riskconsole.errors import DataError, QuarantineRefused
from riskconsole.escape import FORMULA_LEADING, FORMULA_START, csv_cell, terminal
from riskconsole.features import build_frame
from riskconsole.lookups import overlap_warnings
from riskconsole.maturity import store as store_maturity
from riskconsole.names import META_TABLE
from riskconsole.sources import (FORMATS, NULL_TYPE, READERS, Checked, Part, check_dataset, column_types, events_part,  # noqa: F401
                                 action_word, cast_value, is_integer, is_number, literal_files, number_text,
                                 raw_text, source_files, target_types, word_branches, word_key)
from riskconsole.sqlbuild import alias, fill, ident, lit, render, wide_select
from riskconsole.workspace import Workspace, connect_duckdb, lock_holder

ISO_DATE = r"\d{4}-\d{1,2}-\d{1,2}([T ].*)?"  # a date's text: 2026-01-05, 2026-1-5, 2026-01-05 00:00:00 (not 25-11-30)
_LABEL_VALUES = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0}
LABEL_REASON = "label must be 1, 0 or empty (or a word mapped under label_values:)"
MAX_AMOUNT = 1e15  # an amount beyond this is a typo or a sentinel: sums of a few would overflow
WARN_SHARE = 0.01  # a time column with more than this share of rows quarantined gets a warning
REFUSE_SHARE = 0.5  # a source with more than this share of its rows quarantined is not published (accept_quarantine)
Progress = Callable[[str], None]
PartLoader = Callable[[duckdb.DuckDBPyConnection, Checked, Part, Progress], tuple[int, int, list[str]]]


def _quiet(_: str) -> None:
    pass


@dataclass
class LoadResult:
    """What `load` did: counts that add up, reasons, features built, detectors re-scored, warnings."""

    read: int
    loaded: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    rescored: dict[str, int] = field(default_factory=dict)
    unscored: dict[str, str] = field(default_factory=dict)
    version: str = ""
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # streams.X / tables.X -> read, loaded, ...

    def summary(self) -> str:
        """`read 1,000 = loaded 990 + quarantined 10`, with the (first eight) reasons; a line per other source."""
        line = f"read {self.read:,} = loaded {self.loaded:,} + quarantined {self.quarantined:,}"
        shown = list(self.reasons.items())[:8]
        if shown:
            more = len(self.reasons) - len(shown)
            line += " (" + "; ".join(f"{n:,} {r}" for r, n in shown) + (f"; {more} more reasons" if more else "") + ")"
        for where, n in self.sources.items():
            line += f"\n{where}: read {n['read']:,} = loaded {n['loaded']:,} + quarantined {n['quarantined']:,}"
        return line


# ------------------------------------------------------------------ staging


def cast_name(column: str) -> str:
    """The staging name of a column's cast: `__c_<column>`, never one of the staging's own `__reason`, `__dup`,
    `__file` (a source column named `reason` or `dup` would otherwise overwrite them)."""
    return "__c_" + column


def _label_cast(text: exp.Expression, extra: dict[str, int | None]) -> exp.Expression:
    """1 / 0 / NULL for a label; -1 marks a value that is not a label (such rows go to quarantine).

    `extra` (the dataset's `label_values`) adds words, matched like the built-in ones (lower case, trimmed); its
    empty key (`""`) says what an empty or missing label means (default: not known)."""
    word = fill("lower(trim(:t))", t=text)
    # an empty (or missing) label is not known yet, unless `label_values` says what it means (`"": 0`)
    values = {"": None, **_LABEL_VALUES, **{word_key(k): v for k, v in extra.items()}}
    return fill("CAST(:x AS TINYINT)", x=exp.Case(ifs=word_branches(word, values, (None, 1, 0)), default=lit(-1)))


def _typed(column: str, raw_type: str, target: str, part: Part) -> exp.Expression:
    """Cast one raw column to its target type; NULL where the cast fails."""
    text = raw_text(column, raw_type)
    if column == part.roles.get("label"):
        return _label_cast(text, part.labels)
    if column == part.roles.get("id"):
        return fill("nullif(trim(:t), '')", t=text)
    if column == part.roles.get("prod_action") and part.actions:  # production's words as allow, review or block
        return action_word(text, part.actions)
    if target == "TIMESTAMP":
        return times.parse_typed(ident(column), raw_type, text, times.formats_of(part.time_format, column))
    if raw_type == target:
        return ident(column)
    if target == "DATE" and raw_type in ("JSON", "VARCHAR"):  # '25-11-30' would cast to the year 25: ISO dates only
        return fill("CASE WHEN :iso THEN TRY_CAST(trim(:t) AS DATE) END", iso=_iso_date(text), t=text)
    cast = cast_value(column, raw_type, target, part.decimal)
    if is_integer(target) and raw_type in ("JSON", "VARCHAR"):  # DuckDB rounds '0.5' to 1: a fraction is no integer
        # (an integer column sniffed from the first rows, a fraction further on: quarantined, never rounded)
        return fill("CASE WHEN :f THEN NULL ELSE :c END", f=_fraction(_number_text(column, raw_type, target, part)),
                    c=cast)
    return cast


def _iso_date(text: exp.Expression) -> exp.Expression:
    """Whether a date's text is ISO-shaped (`ISO_DATE`): what a DATE column takes from text."""
    return fill("regexp_full_match(trim(:t), :re)", t=text, re=lit(ISO_DATE))


def _number_text(column: str, raw_type: str, target: str, part: Part) -> exp.Expression:
    """The text a column's value is cast from: a number's in the source's decimal mark (`sources.number_text`)."""
    text = raw_text(column, raw_type)
    return number_text(text, part.decimal) if is_number(target) else text


def _fraction(text: exp.Expression) -> exp.Expression:
    """Whether a number written as text has a fractional part: digits after the point that are not all 0 (what a
    double cannot hold beyond 2^53 too), or, in exponent notation, a double that is not whole (1.5e0, not 1.5e3).
    Text with no point and no exponent is no fraction: asked first, it spares the regex and the casts on every whole
    number (a 1M-row integer column: ~0.14 -> ~0.03 CPU-s)."""
    return fill("(contains(:s, '.') OR contains(:s, 'e') OR contains(:s, 'E')) "
                "AND (regexp_matches(trim(:s), '^[+-]?[0-9]*[.][0-9]*[1-9][0-9]*$') "
                "OR TRY_CAST(:s AS DOUBLE) <> trunc(TRY_CAST(:s AS DOUBLE)))", s=text)


def _column_reasons(column: str, target: str, part: Part, raw_type: str) -> list[tuple[exp.Expression, exp.Expression]]:
    """(condition, reason) pairs for one non-id column (`raw_type`: its type in the source)."""
    cast = ident(cast_name(column))
    if column == part.roles.get("label"):
        return [(fill(":c = -1", c=cast), lit(f"{column}: {LABEL_REASON}"))]
    failed = _failed(column, target, raw_type)
    if target == "TIMESTAMP":
        formats = times.formats_of(part.time_format, column)
        pairs = [(failed, lit(f"{column}: not {times.described(formats)}")),
                 (times.out_of_range(cast), times.range_reason(column, cast))]
        if raw_type in ("VARCHAR", "JSON") and (not formats or times.ISO in formats):  # what ISO reading refused
            pairs[:0] = [(fill(":f AND :w", f=failed, w=why), lit(f"{column}: {text}"))
                         for why, text in times.failing_iso(raw_text(column, raw_type))]
        return pairs
    mark = " with decimal_separator ','" if part.decimal == "," and is_number(target) else ""
    if target == "DATE" and raw_type in ("VARCHAR", "JSON"):
        return [(fill(":f AND NOT :i", f=failed, i=_iso_date(raw_text(column, raw_type))), lit(
            f"{column}: not an ISO-8601 date (e.g. 2026-01-05; type it TIMESTAMP under types: and set time_format: "
            "for other layouts)")), (failed, lit(f"{column}: not a valid DATE"))]
    pairs = [(failed, lit(f"{column}: not a valid {target}{mark}"))]
    if is_integer(target) and raw_type in ("VARCHAR", "JSON") and column not in part.declared:
        pairs.insert(0, (fill(":f AND :x", f=failed, x=_fraction(_number_text(column, raw_type, target, part))), lit(
            f"{column}: a fraction in a column read as {target} from its first rows: declare types: "
            f"{{{column}: DOUBLE}}")))
    if is_number(target) and raw_type in ("VARCHAR", "JSON"):  # `$12.50`, `12,50 €`: say so, and the fix
        sign = fill("regexp_extract(:t, :re)", t=raw_text(column, raw_type), re=lit(CURRENCY.pattern))
        pairs.insert(0, (fill(":f AND :s <> ''", f=failed, s=sign), _currency_reason(column, part, sign)))
        pairs.insert(0, (fill(":f AND :g", f=failed, g=_grouped(raw_text(column, raw_type), part)),
                         lit(f"{column}: {_grouped_text(part)}")))
    if column == part.roles.get("amount"):
        pairs.append((fill(":c IS NOT NULL AND NOT isfinite(:c)", c=cast), lit(f"{column}: not a finite number")))
        pairs.append((fill(":c IS NOT NULL AND abs(:c) > :m", c=cast, m=lit(MAX_AMOUNT)),
                      lit(f"{column}: larger than {MAX_AMOUNT:.0e} (sums of such amounts overflow)")))
    return pairs


def _grouped(text: exp.Expression, part: Part) -> exp.Expression:
    """Whether a number's text is grouped in thousands for the source's decimal mark (1.512,83 with a decimal
    comma, 1,512.83 with a point): never read as a number (a guess could misread 1.512 as 1512 or 1.512)."""
    return fill("regexp_full_match(:t, :re)", t=text, re=lit(_GROUPED[part.decimal]))


_GROUPED = {",": r"\s*[-+]?\d{1,3}(\.\d{3})+(,\d+)?\s*", ".": r"\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*"}


def _grouped_text(part: Part) -> str:
    """The reason of a number grouped in thousands without a decimal part (1.512: a thousand and more, or one and a
    bit?), with the fix in the source's decimal mark (grouped with a decimal part, 1.512,83, is read)."""
    shown, fixed = ("1.512", "1512, or 1.512,00") if part.decimal == "," else ("1,512", "1512, or 1,512.00")
    return f"a thousands separator in a number without decimals ({shown}): write it where the file is exported as " \
        f"{fixed}"


CURRENCY = re.compile(r"[$€£¥₹₽₩₺₪¢]|\b(USD|EUR|GBP|JPY|CHF|CAD|AUD|INR)\b")  # a sign or code in a number's text


def _currency_reason(column: str, part: Part, sign: exp.Expression) -> exp.Expression:
    """`amount: currency sign '$' in a number: remove it where the file is exported (12.50, not $12.50)`, and, where
    the source reads decimal points, a note on decimal commas."""
    comma = "" if part.decimal == "," else "; a decimal comma (12,50) also needs decimal_separator: ','"
    number = "12,50" if part.decimal == "," else "12.50"  # the example in the source's own decimal mark
    return fill(":a || :s || :b || :s || :c", a=lit(f"{column}: currency sign '"), s=sign,
                b=lit(f"' in a number: remove it where the file is exported ({number}, not "), c=lit(f"{number}){comma}"))


def _blank_time(column: str, target: str, raw_type: str) -> exp.Expression | None:
    """`column` holds empty (or all-space) text where a time is expected: no time, not a bad one; None where the
    column is not a time read from text."""
    if target != "TIMESTAMP" or raw_type not in ("VARCHAR", "JSON"):
        return None
    return fill("trim(CAST(:raw AS VARCHAR)) = ''", raw=ident(column))


def _failed(column: str, target: str, raw_type: str) -> exp.Expression:
    """The column has a value that did not convert; an empty text time is no time (a label not known yet)."""
    failed = fill(":raw IS NOT NULL AND :cast IS NULL", raw=ident(column), cast=ident(cast_name(column)))
    blank = _blank_time(column, target, raw_type)
    return failed if blank is None else fill(":f AND NOT :b", f=failed, b=blank)


def _whens(part: Part, target: dict[str, str], raw: dict[str, str]) -> list[tuple[str | None, exp.Expression,
                                                                                  exp.Expression]]:
    """(column, condition, reason) of every reason a row cannot load, in the order they are tried (a row is
    quarantined under the first that holds); column None: a required value missing, a repeated id."""
    whens = []
    for column, why in part.required:
        checked = ident(cast_name(column)) if column == part.roles.get("id") else ident(column)
        missing = fill(":c IS NULL", c=checked)
        blank = _blank_time(column, target.get(column, ""), raw.get(column, ""))
        whens.append((None, missing if blank is None else fill(":m OR :b", m=missing, b=blank), lit(why)))
    for column in part.types:
        if column != part.roles.get("id"):
            whens += [(column, c, r) for c, r in _column_reasons(column, target[column], part, raw.get(column, ""))]
    if part.unique:
        whens.append((None, fill("__dup > 1"), lit(duplicate_reason(part))))
    return whens


def _reason(part: Part, target: dict[str, str], raw: dict[str, str]) -> exp.Expression:
    """CASE giving the first reason a row cannot load (NULL when it can); `raw`: the source's column types."""
    return exp.Case(ifs=[exp.If(this=cond, true=text) for _, cond, text in _whens(part, target, raw)])


def _earlier(part: Part, raw: dict[str, str], column: str) -> exp.Expression:
    """True where a reason tried before `column`'s own holds (a required value missing, another column's value):
    such a row is quarantined, and counted in the load's reasons, under that reason, not `column`'s."""
    whens = _whens(replace(part, unique=()), target_types(part), raw)
    before = [cond for _, cond, _ in whens[:next(i for i, (c, _, _) in enumerate(whens) if c == column)]]
    return fill("coalesce(:e, false)", e=functools.reduce(exp.or_, before)) if before else exp.false()


def typed_columns(part: Part, raw: dict[str, str]) -> list[exp.Expression]:
    """Every source column cast to its loaded type, as `__c_<column>` (NULL where the cast fails); `raw`: the
    columns' types as the reader gives them (text for CSV)."""
    target = target_types(part)
    return [alias(_typed(c, raw[c], target[c], part), cast_name(c)) for c in part.types]


def row_reason(part: Part, raw: dict[str, str]) -> exp.Expression:
    """The first reason a row cannot load that the row alone shows (every reason but a duplicate id), over the casts
    of `typed_columns`; NULL when it can load. `_reason` is this followed by the duplicate rule."""
    return _reason(replace(part, unique=()), target_types(part), raw)


def duplicate_reason(part: Part) -> str | None:
    """The reason of a repeated id (or repeated unique columns), None when the source has none."""
    if not part.unique:
        return None
    return "duplicate id" if part.roles.get("id") else f"duplicate {', '.join(part.unique)}"


def _stage(con: duckdb.DuckDBPyConnection, part: Part, head: int | None = None) -> None:
    """Temp table `_staged`: raw columns, their casts (`__col`), source position and reason; with `head`, of the
    first `head` rows of each of the source's first HEAD_FILES files (`validate`'s sample, `check_times`)."""
    target = target_types(part)
    files = _read_raw(con, part, head)
    raw = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE _raw)").fetchall())
    casts = typed_columns(part, raw)
    con.execute(render(fill(
        "CREATE OR REPLACE TEMP TABLE _cast AS SELECT *, list_position(:files, _file) AS __file FROM _raw",
        files=exp.Array(expressions=[lit(f) for f in files]))))
    staged = wide_select(casts, "_cast", keep=True)  # (builders that copy would copy the tree at each step)
    if part.unique:
        dup = exp.Window(this=fill("row_number()"), partition_by=[ident(cast_name(c)) for c in part.unique],
                         order=exp.Order(expressions=[exp.column("__file"), exp.column("ordinality")]))
        staged = exp.select("*", alias(dup, "__dup"), copy=False).from_(staged.subquery("c", copy=False), copy=False)
    final = exp.select("*", alias(_reason(part, target, raw), "__reason"), copy=False).from_(
        staged.subquery("s", copy=False), copy=False)
    con.execute("CREATE OR REPLACE TEMP TABLE _staged AS " + render(final))
    con.execute("DROP TABLE _raw")
    con.execute("DROP TABLE _cast")


HEAD_FILES = 8  # files of a source whose first rows `validate` reads (`check_times`)
HEAD_ROWS = 1000  # rows read from the start of each


def _read_raw(con: duckdb.DuckDBPyConnection, part: Part, head: int | None) -> list[str]:
    """Temp table `_raw`: the source's rows as the load reads them (with `head`: the first `head` rows of each of its
    first HEAD_FILES files, a column none of them has added empty); the files read, in order."""
    if head is None:
        con.execute("CREATE OR REPLACE TEMP TABLE _raw AS " + part.reader, {"files": literal_files(part.files)})
        return part.files
    files = part.readable[:HEAD_FILES]  # a source at a URI: the local copies of its files' heads
    heads = [f"SELECT * FROM ({part.reader.replace('$files', f'$f{i}')}) LIMIT {int(head)}" for i in range(len(files))]
    con.execute("CREATE OR REPLACE TEMP TABLE _raw AS " + " UNION ALL BY NAME ".join(f"({h})" for h in heads),
                {f"f{i}": literal_files([f]) for i, f in enumerate(files)})
    have = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE _raw)").fetchall()}
    for column, dtype in part.read_types.items():
        if column not in have:
            con.execute(f"ALTER TABLE _raw ADD COLUMN {ident(column).sql('duckdb')} "
                        f"{'VARCHAR' if dtype == NULL_TYPE else dtype}")
    return files


def check_times(checked: Checked) -> None:
    """What `validate` adds to the checks before a load (`sources.check_dataset`): a time column of a source that
    fails on more than REFUSE_SHARE of the first HEAD_ROWS rows of each of its first HEAD_FILES files, none of them
    read, is refused with the load's own warning over those rows (raw values, the `time_format:` to try): numbers
    since 1970 with no `time_format` or another unit's, a layout no format given reads. The load would quarantine
    every such row and be refused; a sample shows it, and past it the source is read only up to a row that loads
    (`_loads_later`: a file whose first rows fail but later ones load is the load's warning, not a refusal).

    Raises:
        DataError: one line naming the dataset file, the column, values and the fix."""
    con = connect_duckdb()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for part in checked.parts:
            timed = [c for c, t in target_types(part).items() if t == "TIMESTAMP"]
            if not timed:
                continue
            _stage(con, part, HEAD_ROWS)
            staged = Staged(con)
            (read,) = con.execute("SELECT count(*) FROM _staged").fetchall()[0]
            for column in timed:
                bad = _time_bad(column, staged.raw_types())
                failing, read_ok = staged.counts([bad, times.in_range(ident(cast_name(column)))])
                if read and not read_ok and failing / read > REFUSE_SHARE and not _loads_later(con, part, column):
                    raise DataError(_time_warning(staged, checked, part, column, _where(part, column), read, True))
    finally:
        con.close()


def _loads_later(con: duckdb.DuckDBPyConnection, part: Part, column: str) -> bool:
    """Whether any row of the whole source (past the head `check_times` read) has a time in `column` the load reads:
    a file sorted by time whose first rows hold a placeholder (1900-01-01) or an older export's layout loads, those
    rows quarantined. Read only where the head has none, up to the first such row (a source to be refused: whole)."""
    raw = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {part.reader})",
                           {"files": literal_files(part.readable)}).fetchall())
    parsed = _typed(column, raw[column], "TIMESTAMP", part)
    found = con.execute(f"SELECT 1 FROM ({part.reader}) WHERE {render(times.in_range(parsed))} LIMIT 1",
                        {"files": literal_files(part.readable)}).fetchall()
    return bool(found)


def _publish(con: duckdb.DuckDBPyConnection, part: Part) -> None:
    """Create the part's table (`events`, `stream_NAME`, `table_NAME`) and its quarantine from `_staged`."""
    loaded = [alias(ident(cast_name(c)), part.loaded_name(c)) for c in part.types]
    rows = exp.select(*loaded).from_("_staged").where("__reason IS NULL").order_by(
        *[ident(cast_name(c)) for c in part.order])
    con.execute(f"CREATE OR REPLACE TABLE {part.table} AS " + render(rows))
    # `row`: the row's place in its file (CSV's ordinality counts on over every file of the source: 'b.csv row 8'
    # for the first row of a 2-row file read after a 7-row one)
    row = fill("ordinality - min(ordinality) OVER (PARTITION BY __file) + 1")
    staged = exp.select("*", alias(row, "__row")).from_("_staged")
    quarantine = exp.select(*quarantine_texts(part), alias(ident("__reason"), "reason"), alias(ident("_file"), "file"),
                            alias(ident("__row"), "row")).from_(staged.subquery("s")).where("__reason IS NOT NULL")
    con.execute(f"CREATE OR REPLACE TABLE {part.quarantine} AS " + render(quarantine.order_by("__file", "ordinality")))


def quarantine_texts(part: Part) -> list[exp.Expression]:
    """A quarantined row's source columns as the quarantine shows them: each value's text as the load read it (a JSON
    string without its quotes), under the column's loaded name."""
    return [alias(raw_text(c, t), part.loaded_name(c)) for c, t in part.read_types.items()]


# ------------------------------------------------------------------ warnings


class Staged:
    """A source's staged rows (raw columns, their casts `__c_<column>`, `__file`, `ordinality`) as the warnings read
    them: here DuckDB's `_staged` table; engines/spark_load.py has the same three questions answered by Spark."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con  # also runs the small queries that need no rows (suggesting a time format)

    def failing(self, raw: exp.Expression, bad: exp.Expression) -> tuple[int, list[str]]:
        """How many staged rows are `bad`, and up to 200 of their raw values (first in source order)."""
        n = self.con.execute(render(exp.select("count(*)").from_("_staged").where(bad))).fetchall()[0][0]
        return (n, self.sample(raw, bad)) if n else (0, [])

    def sample(self, raw: exp.Expression, bad: exp.Expression) -> list[str]:
        """Up to 200 raw values of the staged rows that are `bad` (first in source order), without counting them."""
        sample = exp.select(fill("CAST(:r AS VARCHAR)", r=raw)).from_("_staged").where(bad).order_by("__file",
                                                                                                    "ordinality")
        return [v for (v,) in self.con.execute(render(sample.limit(SAMPLE))).fetchall() if v is not None]

    def raw_types(self) -> dict[str, str]:
        """The staged columns' DuckDB types (a raw column's: as the reader gave it)."""
        return dict(self.con.execute("SELECT column_name, column_type FROM (DESCRIBE _staged)").fetchall())

    def counts(self, conditions: list[exp.Expression]) -> list[int]:
        """How many staged rows meet each condition."""
        counted = [fill("count(*) FILTER (WHERE :c)", c=c) for c in conditions]
        return list(self.con.execute(render(exp.select(*counted).from_("_staged"))).fetchall()[0])


SAMPLE = 200  # raw values a warning looks at


def _failing(staged: Staged, column: str, bad: exp.Expression) -> tuple[int, list[str]]:
    """`staged.failing` of a raw column, its values as the casts read them (`_as_text`): a JSON Lines string's text
    without its JSON quotes (shown as '"yes"' and given to a time format's guess, it matched nothing)."""
    n, values = staged.failing(ident(column), bad)
    return n, _as_read(staged, column, values)


def _sampled(staged: Staged, column: str, bad: exp.Expression) -> list[str]:
    """`_failing`'s values without the count (a Spark job fewer)."""
    return _as_read(staged, column, staged.sample(ident(column), bad))


def _as_read(staged: Staged, column: str, values: list[str]) -> list[str]:
    if values and staged.raw_types().get(column) == "JSON":
        values = [_json_text(v) for v in values]
    return values


def _json_text(value: str) -> str:
    try:
        found = json.loads(value)
    except ValueError:
        return value
    return found if isinstance(found, str) else value


def _shown(values: list[str]) -> str:
    return ", ".join(f"'{terminal(v)[:40]}'" for v in values[:3])


def _elsewhere(staged: Staged, part: Part, column: str, bad: exp.Expression) -> str:
    """` (M of them ...)`: how many of the rows a warning counts as `bad` in `column` are quarantined under a reason
    tried before the column's own (the load's reasons count each row once, under its first reason: 5 under 'amount:
    a thousands separator ...' beside a warning of 17 such amounts, 12 of them under 'ts: not ...'); empty when
    none is."""
    (m,) = staged.counts([fill(":b AND :e", b=bad, e=_earlier(part, staged.raw_types(), column))])
    return f" ({m:,} of them counted under another column's reason, tried first)" if m else ""


def _time_bad(column: str, raw: dict[str, str]) -> exp.Expression:
    """True where a time column's value is quarantined: not a time, or outside the accepted range."""
    return fill(":failed OR :out", out=times.out_of_range(ident(cast_name(column))),
                failed=_failed(column, "TIMESTAMP", raw[column]))


def _time_warning(staged: Staged, checked: Checked, part: Part, column: str, where: str, read: int,
                  head: bool = False) -> str | None:
    """A warning when more than WARN_SHARE of a time column's rows fail: three raw values and a format to try;
    `head`: the rows are `validate`'s sample (`check_times`), said so."""
    bad = _time_bad(column, staged.raw_types())
    n, values = _failing(staged, column, bad)
    if not read or n / read <= WARN_SHARE:
        return None
    current = times.formats_of(part.time_format, column)
    fmts = _suggested(staged, column, bad, values, current)
    suggested, misread = _format_for(staged, part, column, fmts) if fmts else (None, 0)
    fix = f"try {suggested} in the dataset" if fmts else \
        _unread_zone(staged, column, bad, current, n) or "set time_format: to the layout of these values"
    if misread:  # a day-first file read month first: the rows that load are on the wrong dates, not only the rest
        fix += (f"; {misread:,} rows that did load read as other times with it (month and day swapped?): they are "
                "likely misread too")
    tried = times.described(current)
    rows = f"{n:,} of {read:,} rows read from the start of each file ({n / read:.1%}) would be" if head else \
        f"{n:,} of {read:,} rows ({n / read:.1%})"
    return (f"{checked.label}: {where}: {rows} quarantined because '{column}' is not {tried} or is outside "
            f"{times.ACCEPTED_TEXT}{_elsewhere(staged, part, column, bad)}, e.g. {_shown(values)}: {fix}")


def _unread_zone(staged: Staged, column: str, bad: exp.Expression, current: list[str], n: int) -> str | None:
    """The fix of a time column most of whose `n` failing rows are ISO-8601 times with a zone name no zone has or an
    offset no place has (no layout reads them: the zone or offset is what to fix), None otherwise."""
    if current and times.ISO not in current:
        return None
    reasons = times.failing_iso(raw_text(column, staged.raw_types()[column]))
    counts = staged.counts([fill(":b AND :w", b=bad, w=why) for why, _ in reasons])
    return next((f"{k:,} of them have {what}" for (_, what), k in zip(reasons, counts) if k > n / 2), None)


MAX_SUGGESTED = 4  # formats one time warning suggests adding for a column (files of a source in as many layouts)


def _suggested(staged: Staged, column: str, bad: exp.Expression, values: list[str], current: list[str]) -> list[str]:
    """The formats to add for `column` (whose rows `bad` fail with its `current` formats; `values`: the first of
    them): the format that reads the most of `values`, then, while rows fail with those found, the one that reads the
    most of the first of those. `values` come first in source order, so from the first file that fails: a source
    whose files each have their own layout ('%d.%m.%Y %H:%M' in a.csv, ISO-8601 in b.csv) gets one suggestion
    naming every layout, not one a load (the next load then suggesting the next file's)."""
    text = raw_text(column, staged.raw_types()[column])
    found: list[str] = []
    while values and len(found) < MAX_SUGGESTED:
        fmt = times.suggest_format(staged.con, values, [*(current or [times.ISO]), *found])
        if fmt is None:
            break
        found.append(fmt)
        values = _sampled(staged, column, fill(":b AND NOT :ok", b=bad,
                                               ok=times.in_range(times.parse_text(text, found))))
    # a format the others read every failing row of is dropped: days 1 to 12 of a day-first file read month first
    # too, so '%m/%d/%Y' may win the first values and '%d/%m/%Y' come after it for the rest; kept before it, it
    # would load those days on the wrong dates (2 March as 3 February), with no warning
    for fmt in list(found):
        rest = [f for f in found if f != fmt]
        if rest and not staged.counts([fill(":b AND :a AND NOT :o", b=bad, a=times.in_range(times.parse_text(
                text, [fmt])), o=times.in_range(times.parse_text(text, rest)))])[0]:
            found.remove(fmt)
    return found


def _format_for(staged: Staged, part: Part, column: str, fmts: list[str]) -> tuple[str, int]:
    """The `time_format:` to write for `column` with the formats `fmts` (together `fmt` below), keeping what
    parses: when its current formats (none: ISO-8601) read some of its rows that `fmt` does not, those formats
    then `fmt` (a format given replaces ISO-8601 reading, so `fmt` alone would quarantine the rows that load
    now, and the next load would suggest ISO back); `fmt` alone when it reads every row (never a format that
    reads some rows with month and day swapped, kept before it, unless that format also reads rows `fmt` does
    not: the source's own layout). Written alone when it also reads every other text time of the source (or
    there is none) and no map is set; else as a map, the column's entry beside what the other time columns are
    read with now, so the line can replace the dataset's `time_format:`. With it, how many rows a current format
    dropped so reads as other times than `fmt` does (rows that loaded, likely misread)."""
    raw = staged.raw_types()
    others = [c for c, t in target_types(part).items()
              if t == "TIMESTAMP" and c != column and raw[c].upper() not in times.TEMPORAL]
    current = times.formats_of(part.time_format, column) or [times.ISO]
    text = raw_text(column, raw[column])
    new = times.parse_text(text, fmts)
    # a format reading some row as another time than `fmt` does is dropped when `fmt` reads every row it reads: a
    # day-first file read month first parses on days 1-12 (month and day swapped), and kept before '%d/%m/%Y' it
    # would load those days on the wrong dates; one reading rows `fmt` does not is the file's own layout (a
    # month-first file with a few day-first rows): dropped, `fmt` would swap its days 1-12, so it is kept first
    parsed = [times.parse_text(text, [f]) for f in current]
    clashes = staged.counts([c for p in parsed for c in (
        fill(":a <> :b", a=p, b=new), fill(":a AND :b IS NULL", a=times.in_range(p), b=new))])
    kept = [f for i, f in enumerate(current) if not clashes[2 * i] or clashes[2 * i + 1]]
    misread = max((clashes[2 * i] for i, f in enumerate(current) if f not in kept), default=0)
    reads = fill(":a AND :n IS NULL", a=times.in_range(times.parse_text(text, kept or fmts)), n=new)
    choices = kept + fmts, fmts
    counted = staged.counts([reads] + [_unread(raw_text(c, raw[c]), f) for f in choices for c in others])
    keep = bool(kept) and counted[0] > 0  # the formats kept read rows `fmt` does not
    formats = choices[0] if keep else choices[1]
    unread = counted[1:1 + len(others)] if keep else counted[1 + len(others):]
    if not any(unread) and not isinstance(part.time_format, dict):
        return f"time_format: {_yaml_formats(formats)}", misread
    now = part.time_format if isinstance(part.time_format, dict) else dict.fromkeys(others, part.time_format)
    entries = {**{c: times.formats_of(f) for c, f in now.items() if times.formats_of(f)}, column: formats}
    mapped = ", ".join(f"{_yaml_key(c)}: {_yaml_formats(f)}" for c, f in entries.items())
    where = "" if part.kind == "events" else f" under {part.where}"
    return f"time_format: {{{mapped}}}{where}", misread


def _unread(text: exp.Expression, formats: list[str]) -> exp.Expression:
    """True where a non-empty text time does not parse with `formats`."""
    return fill("nullif(trim(:t), '') IS NOT NULL AND :p IS NULL", t=text, p=times.parse_text(text, formats))


def _yaml_formats(formats: list[str]) -> str:
    """Formats as YAML: one alone, several as a flow list; `ISO-8601` bare, strptime formats single-quoted (a
    leading `%` cannot start a plain YAML scalar)."""
    written = [f if f in times.KEYWORDS else "'" + f.replace("'", "''") + "'" for f in formats]
    return written[0] if len(written) == 1 else f"[{', '.join(written)}]"


def _yaml_key(name: str) -> str:
    """A column name as a YAML mapping key: bare when plain words, else double-quoted."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_]|[A-Za-z_]", name) and name.lower() not in _YAML_WORDS
    return name if plain else json.dumps(name)


_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}  # YAML reads these bare as null or booleans


_COMMA_NUMBER = re.compile(r"\s*[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*")  # 723,03 or 1.234,56
_POINT_NUMBER = re.compile(r"\s*[-+]?\d*\.\d+\s*")  # 0.50: a number with a decimal point
_THOUSANDS = re.compile(r"\s*[-+]?\d{1,3}([.,]\d{3})+([.,]\d+)?\s*")


def _number_warning(staged: Staged, checked: Checked, part: Part, column: str, target: str, where: str,
                    read: int) -> str | None:
    """A warning when more than WARN_SHARE of a numeric text column's rows fail, with three raw values and, where
    they look like it, the fix (decimal commas, thousands separators)."""
    raw, cast = ident(column), ident(cast_name(column))
    bad = fill(":r IS NOT NULL AND :c IS NULL", r=raw, c=cast)
    n, values = _failing(staged, column, bad)
    if read and n and n / read <= WARN_SHARE and column == part.roles.get("amount"):
        # few, but the largest amounts: money grouped in thousands is said whatever its share
        grouped = fill(":r IS NOT NULL AND :c IS NULL AND :g", r=raw, c=cast,
                       g=_grouped(raw_text(column, staged.raw_types()[column]), part))
        (k,) = staged.counts([grouped])
        if k:
            return (f"{checked.label}: {where}: {k:,} of {read:,} rows ({k / read:.1%}) quarantined because "
                    f"'{column}' has {_grouped_text(part)}; they are amounts of a thousand or more"
                    f"{_elsewhere(staged, part, column, grouped)}")
    if not read or n / read <= WARN_SHARE:
        return None
    commas = sum(bool(_COMMA_NUMBER.fullmatch(v)) for v in values)
    grouped = sum(bool(re.fullmatch(_GROUPED[part.decimal], v)) for v in values)  # the load's own reason for them
    signs = list(dict.fromkeys(m.group(0) for v in values if (m := CURRENCY.search(v))))
    # 0.50 where the source reads decimal commas, never 1.512 (grouped in thousands: a reason of its own)
    pointed = [v for v in values if _POINT_NUMBER.fullmatch(v) and not re.fullmatch(_GROUPED[","], v)]
    if signs:
        comma = " and set decimal_separator: ',' for this source" if part.decimal == "." and any(
            _COMMA_NUMBER.search(v) for v in values) else ""
        number = "12,50" if part.decimal == "," else "12.50"  # the example in the source's own mark, as the reason
        fix = f"remove the currency sign ({', '.join(signs)}) where the file is exported ({number}, not " \
              f"{signs[0]}{number}){comma}"
    elif part.decimal == "." and commas > len(values) / 2 and grouped <= len(values) / 2:  # 1,000 is not 1.0
        fix = "numbers with a decimal comma: set decimal_separator: ',' for this source"
    elif part.decimal == "," and len(pointed) > len(values) / 2:
        example = pointed[0].strip().replace(".", ",")
        fix = ("numbers with a decimal point where this source reads decimal commas (decimal_separator: ','): write "
               f"them {example} where the file is exported")
    elif sum(bool(_THOUSANDS.fullmatch(v)) for v in values) > len(values) / 2:
        fix = ("write numbers grouped in thousands with their decimals where the file is exported (1,234.00 with "
               "a decimal point, 1.234,00 with decimal_separator: ','), or without the separator (1234)")
    else:
        fix = f"fix the values, or type the column otherwise under types: (it is read as {target})"
    return (f"{checked.label}: {where}: {n:,} of {read:,} rows ({n / read:.1%}) quarantined because '{column}' is "
            f"not a valid {target}{_elsewhere(staged, part, column, bad)}, e.g. {_shown(values)}: {fix}")


def _label_warning(staged: Staged, checked: Checked, part: Part, read: int) -> str | None:
    """A warning when more than WARN_SHARE of the rows have a label that is not one: the words seen and the
    `label_values:` that maps them (the dataset's, or the table's for an entity label)."""
    column = part.roles["label"]
    bad = fill(":c = -1", c=ident(cast_name(column)))
    n, values = _failing(staged, column, bad)
    if not read or n / read <= WARN_SHARE:
        return None
    words = list(dict.fromkeys(v.strip() for v in values))[:4]
    example = ", ".join(f"{terminal(w)[:20]}: 1 or 0" for w in words[:2])
    key, home = ("columns.label", "in the dataset") if part.kind == "events" else \
        (f"{part.where}.label", f"under {part.where}")
    return (f"{checked.label}: {key}: {n:,} of {read:,} rows ({n / read:.1%}) quarantined because '{column}' "
            f"is not 1, 0 or empty{_elsewhere(staged, part, column, bad)}, e.g. {_shown(words)}: say which words "
            "mean fraud (1), good (0) or not known "
            f"(null) with label_values: {home}, e.g. label_values: {{{example}}}")


def _where(part: Part, column: str) -> str:
    """Where the dataset file names a column a warning is about: `columns.time`, `streams.NAME.columns.time`,
    `tables.NAME.label_time`, `types.COLUMN`."""
    roles = "columns." if part.kind != "table" else ""  # a table names its label and label_time at its top level
    places = {part.roles.get("time"): f"{roles}time", part.roles.get("label_time"): f"{roles}label_time",
              part.roles.get("amount"): f"{roles}amount"}
    prefix = "" if part.kind == "events" else f"{part.where}."
    return prefix + places.get(column, f"types.{column}")


def load_warnings(staged: Staged, checked: Checked, part: Part, read: int) -> list[str]:
    """The warnings of one source's load: a label, time or number column with more than WARN_SHARE of its rows
    quarantined, with raw values and the fix."""
    target = target_types(part)
    found = [_label_warning(staged, checked, part, read)] if part.roles.get("label") else []
    for c in part.types:
        where = _where(part, c)
        if target[c] == "TIMESTAMP":
            found.append(_time_warning(staged, checked, part, c, where, read))
        elif is_number(target[c]) and c != part.roles.get("label"):
            found.append(_number_warning(staged, checked, part, c, target[c], where, read))
    return [w for w in (*found, _untyped_warning(staged, checked, part)) if w]


def _untyped_warning(staged: Staged, checked: Checked, part: Part) -> str | None:
    """A warning naming the JSON columns that have values but none in the rows DuckDB samples for the types (null
    there, or first seen after them): they are loaded as text, and the fix."""
    target = target_types(part)
    untyped = [c for c, t in part.types.items()
               if t == NULL_TYPE and target[c] == "VARCHAR" and c not in part.declared] if part.fmt == "json" else []
    if not untyped:
        return None
    counts = staged.counts([fill(":c IS NOT NULL", c=ident(cast_name(c))) for c in untyped])
    valued = [c for c, n in zip(untyped, counts) if n]
    if not valued:
        return None
    names = ", ".join(f"'{c}'" for c in valued[:5]) + (f" and {len(valued) - 5} more" if len(valued) > 5 else "")
    from riskconsole import sources

    why = (f"had no value in the rows sampled to type a column ({sources.MAX_LATER_FILES + part.capped:,} files at "
           f"the URI hold keys the first files lack; the first {sources.MAX_LATER_FILES} were sampled)"
           if part.capped else "had no value in the first 20,480 rows of a file, which DuckDB reads to type a column")
    return (f"{checked.label}: {part.lead}{names} {why}: loaded as text; declare the type to read numbers or times, "
            f"e.g. types: {{{_yaml_key(valued[0])}: DOUBLE}}")


# ------------------------------------------------------------------ loading into a new file, then the swap


def load_part(con: duckdb.DuckDBPyConnection, checked: Checked, part: Part, progress: Progress) -> tuple[int, int, list[str]]:
    """Stage and publish one source; (read, loaded, warnings)."""
    progress(f"reading {len(part.files)} file(s) of {part.lead}{part.source} ...")
    shifted = one_field_over(con, checked, part)
    if shifted:
        raise DataError(shifted)
    try:
        _stage(con, part)
    except duckdb.Error as err:  # a ragged CSV line past the rows DuckDB sniffed: named by its file and line
        said = ragged.explain(con, err, checked.shown) if part.fmt == "csv" else None
        if said is None:
            raise
        raise DataError(f"{checked.label}: {said}") from None
    read, loaded = con.execute("SELECT count(*), count(*) FILTER (__reason IS NULL) FROM _staged").fetchall()[0]
    warnings = load_warnings(Staged(con), checked, part, read)
    if loaded == 0:
        reasons = con.execute("SELECT __reason, count(*) FROM _staged GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2").fetchall()
        raise no_loadable_rows(checked, part, read, reasons, warnings)
    _publish(con, part)
    con.execute("DROP TABLE _staged")
    return read, loaded, warnings


def one_field_over(con: duckdb.DuckDBPyConnection, checked: Checked, part: Part) -> str | None:
    """A local CSV line with one field more than its header and its last field empty, which DuckDB would read one
    column off (its final delimiter taken for the line's end, `ragged._trailing_extra`): the refusal's one line, for
    both engines' loads (Spark refuses such a line without saying where)."""
    if part.fmt != "csv" or part.remote:
        return None
    for path in ragged.trailing_suspects(con, part.files):
        dialect = ragged.tolerant_dialect(con, path)
        found = ragged.first_ragged(con, path, dialect) if dialect else None
        if found is not None:
            return f"{checked.label}: {part.lead}{found.message(checked.shown)}"
    return None


def no_loadable_rows(checked: Checked, part: Part, read: int, reasons: list[tuple[Any, int]],
                     warnings: list[str]) -> DataError:
    """A source none of whose rows loads, on either engine: its top `reasons` and the load warning with the fix."""
    return DataError(f"{checked.label}: {part.lead}no loadable rows in '{part.source}' (read {read:,}, every one "
                     f"quarantined: {reasons_text(reasons)}){fix_of(checked, part, reasons, warnings)}")


def reasons_text(reasons: list[tuple[Any, int]]) -> str:
    """(reason, rows) pairs as an error says them: `REASON (N rows); ...`."""
    return "; ".join(f"{terminal(str(r))[:160]} ({n:,} row{'s' if n != 1 else ''})" for r, n in reasons)


def _fill(con: duckdb.DuckDBPyConnection, checked: Checked, progress: Progress, version: str,
          loader: PartLoader | None = None, accept_quarantine: bool = False) -> LoadResult:
    """Events, streams, tables, their quarantines, frame, `_meta` and `_maturity` into the (new, empty) database of
    `con`; `loader` loads a source into its table and quarantine (default: DuckDB's `load_part`). A source with more
    than REFUSE_SHARE of its rows quarantined stops it (`refuse_mostly_quarantined`) unless `accept_quarantine`."""
    parts = checked.parts or [events_part(checked.dataset, checked.files, checked.fmt, checked.types)]
    counts, warnings = {}, []
    for part in parts:
        read, loaded, found = (loader or load_part)(con, checked, part, progress)
        if not accept_quarantine:  # refused as soon as seen: before the other sources, the frame and the scores
            refuse_mostly_quarantined(con, checked, part, read - loaded, read, found)
        counts[part.where] = (read, loaded)
        warnings += found
    warnings += overlap_warnings(con, checked.dataset, checked.label)
    read, loaded = counts["source"]
    warnings += _labels_before_events(con, checked, loaded)
    _write_meta(con, checked, read, loaded, version, warnings)
    build = getattr(loader, "build_frame", None)  # a load on Spark builds the frame there (and says where)
    if build is None:
        progress(f"building {len(checked.dataset.features)} features over {loaded:,} events ...")
    features = (build or build_frame)(con, checked.dataset, checked.label, progress)
    store_maturity(con, checked.dataset, version)  # the default backtest window reads it instead of scanning
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 2 DESC, 1").fetchall())
    others = {w: {"read": r, "loaded": n, "quarantined": r - n} for w, (r, n) in counts.items() if w != "source"}
    return LoadResult(read, loaded, read - loaded, reasons, features, warnings=warnings, version=version,
                      sources=others)


def _labels_before_events(con: duckdb.DuckDBPyConnection, checked: Checked, loaded: int) -> list[str]:
    """A warning when events have a label_time before their own time (a chargeback dated before its order: a date
    written in the wrong zone or field). They load as they are, so the warning is all that says it: --as-of counts
    such a label as known before its event happened, and the label-age curve as known at age 0."""
    roles = checked.dataset.columns
    if not roles.label_time:
        return []
    query = fill("SELECT count(*), arg_min(:id, :t), min(:t), arg_min(:lt, :t) FROM events WHERE :lt < :t",
                 id=ident(roles.id), t=ident(roles.time), lt=ident(roles.label_time))
    n, first, at, known = con.execute(render(query)).fetchall()[0]
    if not n:
        return []
    return [f"{checked.label}: columns.label_time: {n:,} of {loaded:,} events have a label_time before their "
            f"time (the first: '{terminal(str(first))[:40]}' at {at} labelled at {known}), loaded as they are: "
            "--as-of counts such a label as known before its event happened; fix the dates where the file is "
            "exported (a label_time written in another zone, or another column's date)"]


def refuse_mostly_quarantined(con: duckdb.DuckDBPyConnection, checked: Checked, part: Part, quarantined: int,
                              read: int, warnings: list[str]) -> None:
    """Raise QuarantineRefused when more than REFUSE_SHARE of a source's rows were quarantined (a wrong time_format,
    labels written as words): a load would else replace the live data with a sliver of it. The message gives the
    top reasons from the source's quarantine table, the load warning (`warnings`: the source's) that has the fix."""
    if not read or quarantined / read <= REFUSE_SHARE:
        return
    every = con.execute(f"SELECT reason, count(*) FROM {part.quarantine} GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
    reasons, rest = every[:2], every[2:]
    more = f"; {sum(n for _, n in rest):,} more for {len(rest)} other reason{'s' if len(rest) != 1 else ''}" \
        if rest else ""
    raise QuarantineRefused(
        f"{checked.label}: {part.lead}'{part.source}': {quarantined:,} of {read:,} rows ({quarantined / read:.1%}) "
        f"would be quarantined, more than the {REFUSE_SHARE:.0%} a load publishes ({reasons_text(reasons)}{more})"
        f"{fix_of(checked, part, reasons, warnings) or _repeats(part, reasons)}; nothing was loaded, the live "
        "database is unchanged: fix the data or the dataset and load again, or publish it anyway with "
        "`riskconsole load --accept-quarantine`")


def _repeats(part: Part, reasons: list[tuple[Any, int]]) -> str:
    """`; ` and what repeated ids mean when they are the first reason of a source of several files: files that
    overlap (each export holding the rows of the one before) load every event once, first occurrence kept; else the
    id is not one row's."""
    said = duplicate_reason(part)
    if not reasons or said is None or reasons[0][0] != said or len(part.files) < 2:
        return ""
    key = ", ".join(f"'{c}'" for c in part.unique)
    return (f"; {key} repeats a row read before it: if the files overlap (an export holding the rows of the one "
            "before), every row loads once as it is (the first kept) and the load can be published; if not, "
            f"{key} is not unique per row and the dataset names the wrong column")


def fix_of(checked: Checked, part: Part, reasons: list[tuple[Any, int]], warnings: list[str]) -> str:
    """`; ` and the load warning (of `warnings`, the source's) about the column of the first of `reasons` that has
    one, without the dataset's name: the time, label and number warnings show raw values and the fix. Empty when
    none has (a missing id, a duplicate)."""
    for reason, _ in reasons:
        for warning in warnings:
            if any(str(reason).startswith(f"{c}: ") and f"quarantined because '{c}'" in warning for c in part.types):
                return "; " + warning.removeprefix(f"{checked.label}: ")
    return ""


def _write_meta(con: duckdb.DuckDBPyConnection, checked: Checked, read: int, loaded: int, version: str,
                warnings: list[str]) -> None:
    """Table `_meta`: the spec, the counts, the data's warnings and the load's fresh data version (score tables are
    stamped with it)."""
    meta = {"dataset": checked.dataset.model_dump(mode="json", by_alias=True), "dataset_path": str(checked.path),
            "read": read, "loaded": loaded, "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "warnings": warnings}
    con.execute(f"CREATE OR REPLACE TABLE {META_TABLE} AS SELECT ?::JSON AS meta, ? AS version",
                [json.dumps(meta), version])


def _export_quarantine(con: duckdb.DuckDBPyConnection, out: Path, table: str = "quarantine") -> None:
    """quarantine.csv with every text cell a spreadsheet would run as a formula defused (escape.csv_cell)."""
    columns = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()]
    # escape.csv_cell's rule as one regular expression: a list_contains of the first character took 4 s to plan for
    # 300 columns (DuckDB's IN-clause and subexpression passes), this 0.07 s
    cells = [alias(fill("CASE WHEN regexp_matches(CAST(:c AS VARCHAR), :p) THEN chr(39) || CAST(:c AS VARCHAR) "
                        "ELSE CAST(:c AS VARCHAR) END", p=lit(FORMULA_PATTERN), c=ident(c)), str(csv_cell(c)))
             for c in columns]
    con.execute(f"COPY ({render(exp.select(*cells).from_(table))}) TO $out (HEADER, DELIMITER ',')",
                {"out": str(out)})


def _class(chars: Iterable[str]) -> str:
    escaped = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", "]": "\\]", "^": "\\^", "-": "\\-"}
    return "[" + "".join(escaped.get(ch, ch) for ch in chars) + "]"


# what escape.csv_cell defuses: after the characters it skips, one it reads as a formula's start (\t and \r are both)
FORMULA_PATTERN = "^" + _class(FORMULA_LEADING) + "*" + _class(c for c in FORMULA_START if c not in FORMULA_LEADING)


def _hold_live(ws: Workspace) -> duckdb.DuckDBPyConnection | None:
    """The live file held exclusively for the load's duration: refused while another process has it open.

    A process that keeps the old file open (a console, a `train`) would go on reading or writing the replaced
    file: DuckDB hands a new connection to an already open path the old instance, so the swap waits for it.
    """
    if not ws.db_path.exists():
        return None
    try:
        return ws.connect(views=False)  # a live file whose views' folder is gone is what this load replaces
    except duckdb.IOException as err:
        message = str(err).splitlines()[0]
        if "lock" not in message.lower():
            raise
        pid = lock_holder(err) or "?"
        raise DataError(f"{ws.rel(ws.db_path)}: the database is open in another process (PID {pid}, e.g. a running "
                        "console, `riskconsole train` or `riskconsole daemon`); stop it, then load again, or load "
                        "from the console's Data page") from None
    except duckdb.ConnectionException:
        return None  # this process holds it under another configuration (closed by the caller before a load)


def _leftovers(ws: Workspace) -> None:
    """Remove staging files of loads that were killed (their process is gone)."""
    for path in ws.db_path.parent.glob(f".{ws.db_path.name}.loading-*"):
        pid = path.name.split("loading-")[1].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):  # the database, its .wal, and DuckDB's spill folder (.tmp)
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        except PermissionError:
            pass


def _csv_files(checked: Checked, csv: Path, ws: Workspace) -> list[tuple[str, Path, Path]]:
    """(quarantine table, staging csv, published csv) of every source: quarantine.csv, quarantine_NAME.csv."""
    parts = [p for p in checked.parts if p.kind != "events"]
    out = [("quarantine", csv, ws.root / "data" / "quarantine.csv")]
    return out + [(p.quarantine, csv.with_name(f"{csv.name}.{p.name}"), ws.root / "data" / f"{p.quarantine}.csv")
                  for p in parts]


def _swap(staging: Path, csvs: list[tuple[str, Path, Path]], ws: Workspace) -> None:
    """Publish the new database and its quarantine CSVs (a stale WAL of the old file would corrupt the new one)."""
    Path(f"{ws.db_path}.wal").unlink(missing_ok=True)
    os.replace(staging, ws.db_path)
    published = {final for _, _, final in csvs}
    for old in (ws.root / "data").glob("quarantine_*.csv"):  # of a stream or table the dataset no longer has
        if old not in published:
            old.unlink(missing_ok=True)
    for _, made, final in csvs:
        os.replace(made, final)


def reload(ws: Workspace, dataset_path: str | Path | None = None, progress: Progress | None = None,
           trusted: bool = False, engine: str | None = None, spark: Any = None,
           accept_quarantine: bool = False) -> LoadResult:
    """Load the dataset into a new database (events, quarantine, frame, every trained detector re-scored), then swap.

    The one entry point for `riskconsole load`, the console's Data page and uploads. A detector that cannot
    score the new frame (it reads a feature the dataset dropped) is published WITHOUT scores and named in
    `warnings` and `unscored`: strategies using it are refused until it is retrained, never fed old scores.

    Args:
        ws: the workspace.
        dataset_path: a dataset.yaml (default: the workspace's own).
        progress: called with one line per step.
        trusted: True only for a path a local user gave (the CLI): another dataset file than the workspace's own
            may then read sources outside the workspace.
        engine: `--engine` (default: $RISKCONSOLE_ENGINE, else the dataset's `engine:`); with spark every source is
            read, typed and quarantined by Spark (engines/spark_load.py) into data/spark/<version>/ (or spark.store),
            and DuckDB's tables and quarantines are read from there.
        spark: the SparkSession to use (default: one started from the dataset's `spark:` settings).
        accept_quarantine: publish even a source with more than REFUSE_SHARE of its rows quarantined (by default
            such a load is refused: QuarantineRefused).

    Raises:
        RiskConsoleError: one line naming the file and item; the live database and quarantine.csv are unchanged.
    """
    started, progress = time.perf_counter(), progress or _quiet
    checked = check_dataset(ws, dataset_path, trusted, engine=engine, spark=spark)
    version = uuid.uuid4().hex
    loader = _spark_loader(ws, checked, engine, spark, version)
    ws.db_path.parent.mkdir(parents=True, exist_ok=True)
    _leftovers(ws)
    staging = ws.db_path.with_name(f".{ws.db_path.name}.loading-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    csvs = _csv_files(checked, staging.with_name(staging.name + ".quarantine.csv"), ws)
    live = _hold_live(ws)
    try:
        result = _load_file(ws, checked, staging, csvs, progress, version, loader, accept_quarantine)
        if live is not None:
            live.close()
        _swap(staging, csvs, ws)
        published = getattr(loader, "published", None)  # a load on Spark: the earlier versions' folders go
    except BaseException:
        discard = getattr(loader, "discard", None)  # what a load on Spark wrote for this version, never live
        if discard is not None:
            discard()
        raise
    finally:
        if live is not None:
            live.close()
        for path in (staging, Path(f"{staging}.wal"), *(made for _, made, _ in csvs)):
            path.unlink(missing_ok=True)
    if published is not None:
        try:
            published()
        except Exception as err:  # noqa: BLE001 - the load is live: a folder left behind is a warning, not a failure
            from riskconsole.engines.spark_render import first_line

            result.warnings.append(f"the load is live, but earlier data versions' folders under "
                                   f"{loader.versions.uri()} were not all removed ({first_line(err)}): remove them "
                                   "by hand")
    result.seconds = time.perf_counter() - started
    return result


def _spark_loader(ws: Workspace, checked: Checked, engine: str | None, spark: Any, version: str) -> PartLoader | None:
    """With engine spark, the loader of every source on Spark (each checked before a row is read); else None."""
    from riskconsole.engines import choose

    if choose(engine, checked.dataset) != "spark":
        return None
    from riskconsole.engines import spark_load

    spark_load.check(checked)
    return spark_load.SparkLoader(ws, checked.dataset, version, spark)


def _load_file(ws: Workspace, checked: Checked, staging: Path, csvs: list[tuple[str, Path, Path]],
               progress: Progress, version: str, loader: PartLoader | None = None,
               accept_quarantine: bool = False) -> LoadResult:
    """Fill the staging database completely (data, frame, scores) and write its quarantine.csv beside it."""
    from riskconsole.detectors.training import rescore_into

    con = ws.connect(database=staging)
    try:
        result = _fill(con, checked, progress, version, loader, accept_quarantine)
        scored = rescore_into(con, ws, progress, getattr(loader, "scores", None))
        result.rescored, result.unscored, unseen = scored
        result.warnings += [f"{ws.rel(ws.models_dir / name)}: NOT re-scored, its scores are gone: {why}"
                            for name, why in result.unscored.items()] + unseen
        for table, made, _ in csvs:
            _export_quarantine(con, made, table)
        con.execute("CHECKPOINT")
    except duckdb.Error as err:
        raise DataError(f"{checked.label}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return result


load = reload  # the historical name, used by the demo builder and tests
