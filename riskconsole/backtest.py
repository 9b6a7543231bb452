"""Run a compiled strategy over the frame in one SQL pass, grouped by (day, label, which rules fired).

Every metric is then built in numpy from those few thousand groups (see `metrics.py`), so an
action change or a switched-off rule needs no new SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Union

import duckdb
import numpy as np

from riskconsole.errors import RiskConsoleError
from riskconsole.escape import printable
from riskconsole.limits import query_time_limit
from riskconsole.sqlbuild import alias, exp, fill, ident, lit, money_sum, render
from riskconsole.strategy import CompiledStrategy, Frame, source

if TYPE_CHECKING:
    import pyarrow as pa

    from riskconsole.config import Dataset
    from riskconsole.engines import Engine

Runner = Union[duckdb.DuckDBPyConnection, "Engine"]  # where the grouped query runs (DESIGN §7)
BITS = 62  # rule bits per BIGINT mask word (stays clear of the sign bit)
Columns = dict  # str -> np.ndarray: a query's result column by column (`fetch_columns`)


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end) and an optional label cut-off (labels known before `as_of`)."""

    start: datetime | None = None
    end: datetime | None = None
    as_of: datetime | None = None
    note: str | None = None  # why the window ends where it does (the core chose it), or that its end is past mature


MOMENT_EXAMPLES = "2026-03-01, 2026-03-01T12:00:00, 2026-03-01T12:00:00+05:00 or '2026-03-01 12:00 Europe/Berlin'"
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


def parse_moment(text: str, *, end: bool = False, what: str = "--from") -> datetime:
    """A date or timestamp as a UTC wall time (every time inside is UTC); with `end`, a date means the end of that
    day (exclusive bound). An offset (`+05:00`, `Z`) or a zone name after the time (`2026-02-01 10:00
    Europe/Berlin`) is converted to UTC; a date with a zone name is that zone's whole day.

    Raises:
        RiskConsoleError: the text is neither, or names an unknown zone (one line, the flag and an example).
    """
    text = str(text).strip()
    body, zone = _zone_of(text, what)
    try:
        day = date.fromisoformat(body)
        moment = datetime(day.year, day.month, day.day) + timedelta(days=1 if end else 0)
    except ValueError:
        try:
            moment = datetime.fromisoformat(body)
        except ValueError:
            raise RiskConsoleError(f"{what} '{printable(text)[:80]}': not a date or timestamp (e.g. "
                                   f"{MOMENT_EXAMPLES})") from None
    if moment.tzinfo is not None and zone is not None:
        raise RiskConsoleError(f"{what} '{printable(text)[:80]}': gives both an offset and a zone name; give one "
                               f"(e.g. {MOMENT_EXAMPLES})")
    if moment.tzinfo is None and zone is None:
        return moment  # no zone given: already UTC
    if zone is None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    # a wall time a zone skips or repeats (02:30 on the days its clocks change) has two readings, one per offset:
    # the later instant is how the load reads such a time in the data (DuckDB's ICU), so a flag and an event written
    # alike are the same instant (the first reading put --to "2026-10-25 02:30 Europe/Berlin" an hour before it)
    later = max(moment.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc) for fold in (0, 1))
    return later.replace(tzinfo=None)


def _zone_of(text: str, what: str) -> tuple[str, tzinfo | None]:
    """(the time, its zone) of `2026-02-01 10:00 Europe/Berlin`; (text, None) when no zone name ends the text."""
    body, _, last = text.rpartition(" ")
    if body and re.fullmatch(r"[+-]\d{2}(:?\d{2})?", last):  # `2026-02-01 10:00 +05:00`: the offset, spaced
        return body.strip() + last, None
    if not body or not _ZONE_NAME.fullmatch(last):
        return text, None
    if last.upper() in ("UTC", "Z", "GMT"):
        return body.strip(), timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return body.strip(), ZoneInfo(last)
    except (ZoneInfoNotFoundError, ValueError):
        raise RiskConsoleError(f"{what} '{printable(text)[:80]}': unknown time zone '{printable(last)[:40]}' (use an "
                               f"IANA name such as Europe/Berlin or UTC, or an offset: {MOMENT_EXAMPLES})") from None


def make_window(start: str | None = None, end: str | None = None, as_of: str | None = None) -> Window:
    """Window from CLI-style strings: dates are whole days, both ends included."""
    window = Window(parse_moment(start, what="--from") if start else None,
                    parse_moment(end, end=True, what="--to") if end else None,
                    parse_moment(as_of, end=True, what="--as-of") if as_of else None)
    if window.start and window.end and window.start >= window.end:
        raise RiskConsoleError(f"--from {start} is after --to {end}: the window is empty")
    return window


@dataclass
class Groups:
    """Events aggregated by (day, label, rule mask): the only thing metrics need."""

    day: np.ndarray          # int64 day index from `days[0]`
    label: np.ndarray        # int8: 1, 0, or -1 = unknown (as of the cut-off)
    hits: np.ndarray         # bool (groups x rules): which rules' conditions were true
    count: np.ndarray        # int64 events in the group
    amount: np.ndarray       # float64 amount summed (0 where amount is missing or unmapped)
    days: list[date]         # every day of the window, in order
    segment: np.ndarray | None = None  # object: segment label per group (with --by)
    classes: Columns | None = None  # with `classes`: the whole result, whose rows with a class (`cls` >= 0) are the
    #                                 outcome groups by (day, label, rule mask, class) that `outcomes.outcomes_of` reads


def _timestamp(value: datetime) -> exp.Expression:
    return fill("CAST(:v AS TIMESTAMP)", v=lit(value.isoformat(sep=" ")))


def known_label(dataset: Dataset, window: Window) -> exp.Expression:
    roles = dataset.columns
    if not roles.label:
        return lit(-1)
    known = fill(":l IS NOT NULL", l=ident(roles.label))
    if window.as_of is not None and roles.label_time:
        known = fill(":k AND :lt < :cut", k=known, lt=ident(roles.label_time), cut=_timestamp(window.as_of))
    return fill("CASE WHEN :k THEN CAST(:l AS TINYINT) ELSE -1 END", k=known, l=ident(roles.label))


def population_filters(compiled: CompiledStrategy, dataset: Dataset, window: Window) -> list[exp.Expression]:
    time = ident(dataset.columns.time)
    conditions = []
    if window.start is not None:
        conditions.append(fill(":t >= :v", t=time, v=_timestamp(window.start)))
    if window.end is not None:
        conditions.append(fill(":t < :v", t=time, v=_timestamp(window.end)))
    if compiled.population is not None:
        conditions.append(fill("coalesce(:p, false)", p=compiled.population))
    return conditions


def hit_column(node: exp.Expression) -> exp.Expression:
    """A rule condition as a never-NULL boolean (NULL is false)."""
    return fill("coalesce(:c, false)", c=node)


def mask_words(compiled: CompiledStrategy) -> list[exp.Expression]:
    """BIGINT masks, bit i of word i // BITS set where rule i's condition holds (NULL counts as false).

    Written as a sum of `CASE WHEN cond THEN 2^i ELSE 0 END`: measured ~1.7x faster in DuckDB than
    shifting and OR-ing casts of `coalesce(cond, false)`; its constants are BIGINT, so no term is cast per row.
    """
    words = []
    for start in range(0, len(compiled.rules), BITS):
        terms = [fill("CASE WHEN :c THEN CAST(:bit AS BIGINT) ELSE CAST(0 AS BIGINT) END", c=r.condition,
                      bit=lit(1 << i)) for i, r in enumerate(compiled.rules[start:start + BITS])]
        word = terms[0]
        for term in terms[1:]:
            word = exp.Add(this=word, expression=term)
        words.append(word)
    return words


def groups_query(compiled: CompiledStrategy, frame: Frame, dataset: Dataset, window: Window,
                 segment: exp.Expression | None = None,
                 classes: tuple[exp.Expression, exp.Expression] | None = None) -> exp.Select:
    """The one query a backtest runs: population rows grouped by day, label and rule mask (and segment).

    With `classes` (an event's observability class and its 1/propensity, `outcomes.observability_class`) the same
    scan also groups by (day, label, rule mask, class) with the sums of the §6.2 blocks (`_split_by_class`): one
    scan serves the metrics and the outcome blocks, and the metric groups are the very rows of the plain query.
    """
    amount = fill("coalesce(CAST(:a AS DOUBLE), 0)", a=ident(dataset.columns.amount)) if dataset.columns.amount \
        else lit(0.0)
    words = mask_words(compiled)
    inner = exp.select(
        alias(fill("CAST(:t AS DATE)", t=ident(dataset.columns.time)), "day"),
        alias(known_label(dataset, window), "y"), alias(amount, "amt"),
        *[alias(w, f"m{i}") for i, w in enumerate(words)],
        *([alias(fill("coalesce(CAST(:s AS VARCHAR), '(missing)')", s=segment), "seg")] if segment else []),
        *([alias(classes[0], "cls"), alias(classes[1], "ipw")] if classes else []),
        *frame.weights(),
    ).from_(source(compiled, frame).subquery("src", copy=False), copy=False)  # fresh trees: no copy (each one
    for condition in population_filters(compiled, dataset, window):           # would copy all 20 rules, ~50 ms)
        inner = inner.where(condition, copy=False)
    masks = [f"m{i}" for i in range(len(words))]
    keys = ["day", "y", *masks, *(["seg"] if segment else [])]
    if classes:
        return _split_by_class(inner, frame, keys, masks)
    # ordered: the numpy sums over these groups must not depend on which thread finished first
    return exp.select(*keys, alias(frame.count(), "n"), alias(money_sum("amt"), "amt")).from_(
        inner.subquery("p", copy=False), copy=False).group_by(*keys, copy=False).order_by(*keys, copy=False)


def _split_by_class(inner: exp.Select, frame: Frame, keys: list[str], masks: list[str]) -> exp.Select:
    """One aggregate over two grouping sets: the metric groups (`keys`, `cls` -1) and the outcome groups (day, label,
    rule mask, class; `seg` ''). No column of the result is NULL, so DuckDB's numpy fetch makes no masked array
    (importing numpy.ma). Each row holds every sum, exact as `money_sum` gives it; the positive amount is the
    amount minus its negative part and the 1/propensity sums skip the rows where it is 0 (all but the explored ones):
    the same exact sums for less CPU. (Windows over one grouping by keys and class gave the same numbers, but DuckDB
    2.0 planned them as a join of two scans.) The 1/propensity sums cast to DECIMAL inside a CASE, not under a
    FILTER: only the explored rows are cast, not every row of the window (with BIGINT mask constants, ~20% less CPU
    for the whole query at 2M events)."""
    def exact(node: exp.Expression) -> exp.Expression:
        return fill("sum(CAST(:x AS DECIMAL(38, 6)))", x=node)

    def only(node: exp.Expression, where: exp.Expression) -> exp.Expression:
        return fill("coalesce(:s, 0)", s=exp.Filter(this=exact(node), expression=exp.Where(this=where)))

    def where(node: exp.Expression, condition: exp.Expression) -> exp.Expression:
        return fill("coalesce(sum(CASE WHEN :w THEN CAST(:x AS DECIMAL(38, 6)) END), 0)", w=condition, x=node)

    amt, ipw = exp.column("amt", table="p", quoted=True), exp.column("ipw", table="p", quoted=True)
    explored = fill(":i <> 0", i=ipw)
    sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[ident(k) for k in keys]),
                                         exp.Tuple(expressions=[ident(k) for k in ("day", "y", *masks, "cls")])])
    blank = {"seg": lit(""), "cls": lit(-1)}  # a key its grouping set leaves out: NULL in SQL, never in the result
    return exp.select(
        *[alias(fill("coalesce(:k, :b)", k=ident(k), b=blank[k]), k) if k in blank else k for k in (*keys, "cls")],
        alias(frame.count(), "n"),
        alias(money_sum(amt), "amt"),
        alias(exp.cast(fill(":a - :n", a=exact(amt), n=only(amt, fill(":a < 0", a=amt))), "DOUBLE"), "pos"),
        alias(exp.cast(where(ipw, explored), "DOUBLE"), "w"),
        alias(exp.cast(where(fill(":i * :a", i=ipw, a=amt), explored.copy()), "DOUBLE"), "wamt"),
    ).from_(inner.subquery("p", copy=False), copy=False).group_by(sets, copy=False).order_by(*keys, "cls", copy=False)


def run_groups(con: Runner, compiled: CompiledStrategy, frame: Frame, dataset: Dataset,
               window: Window, segment: exp.Expression | None = None,
               classes: tuple[exp.Expression, exp.Expression] | None = None) -> Groups:
    """Execute the grouped query (on a safe connection) and unpack it into numpy arrays.

    With `classes`, the metric groups are the query's rows without a class, and `Groups.classes` keeps the rows of
    the outcome groups (without a segment) for `outcomes.outcomes_of`.
    """
    query = groups_query(compiled, frame, dataset, window, segment, classes)
    found = read_groups(con, query, span_query(dataset), compiled.name, len(compiled.rules), window,
                        segment is not None, classes is not None)
    if found is None:
        raise RiskConsoleError(empty_window_message(con, compiled, dataset, window))
    return found


def read_groups(con: Runner, query: exp.Expression | str, span: exp.Expression | str, name: str, rules: int,
                window: Window, segment: bool, classes: bool) -> Groups | None:
    """Run a grouped query (`groups_query`, or its DuckDB text kept by the compiled-query cache) and unpack it;
    None when it has no row. `span` is `span_query`'s."""
    found = fetch_columns(con, query, name)
    days = window_days(con, span, window)
    if found["n"].size == 0:
        return None
    keep = found["cls"] < 0 if classes else slice(None)  # -1: no class, a metric group
    first = np.datetime64(days[0], "D") if days else np.datetime64("1970-01-01", "D")
    return Groups(day_index(found["day"], first)[keep], found["y"].astype(np.int8)[keep],
                  rule_hits(found, rules)[keep], found["n"].astype(np.int64)[keep],
                  np.nan_to_num(found["amt"].astype(np.float64))[keep], days,
                  found["seg"].astype(object)[keep] if segment else None, found if classes else None)


def rule_hits(found: Columns, rules: int) -> np.ndarray:
    """Which rules' conditions held, per row of a grouped result (bit i of mask word `m{i // BITS}`)."""
    words = [found[f"m{i}"].astype(np.int64) for i in range((rules - 1) // BITS + 1)]
    hits = np.zeros((words[0].size, rules), dtype=bool)
    for i in range(rules):
        hits[:, i] = (words[i // BITS] >> (i % BITS)) & 1
    return hits


_FIXED: dict = {}  # Arrow fixed-width type -> numpy dtype (`_fixed`: pyarrow imported on first use)


def _fixed(arrow_type) -> type | None:
    if not _FIXED:
        import pyarrow as pa

        _FIXED.update({pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
                       pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
                       pa.float32(): np.float32, pa.float64(): np.float64, pa.date32(): np.int32})
    return _FIXED.get(arrow_type)


def numbers(column: pa.ChunkedArray | pa.Array, dtype) -> np.ndarray:
    """A fixed-width Arrow column (integers, floats, DATE as day numbers) as a numpy array of `dtype`; NULL is NaN for
    floats and 0 otherwise. Read from the Arrow buffers: pyarrow's own `to_numpy` imports pandas (~0.6 s that a CLI
    backtest would pay for nothing); other types go through it."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    source = _fixed(array.type)
    if source is None:
        return np.asarray(array.to_numpy(zero_copy_only=False)).astype(dtype)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype)
    values = np.frombuffer(array.buffers()[1], dtype=source, count=array.offset + n)[array.offset:].astype(dtype)
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
        values[~bits[array.offset:array.offset + n].astype(bool)] = np.nan if np.dtype(dtype).kind == "f" else 0
    return values


def day_index(values: np.ndarray, first: np.datetime64) -> np.ndarray:
    """Days since `first` of dates (datetime64 of any unit, as `fetch_columns` and `arrow_column` give them)."""
    return (values.astype("datetime64[D]") - first).astype(np.int64)


def arrow_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An Arrow column as numpy, as `fetch_columns` gives DuckDB's: fixed-width numbers by `numbers` (NULL: NaN or
    0), DATE as datetime64[D], anything else as Python objects (NULL: None)."""
    import pyarrow as pa

    if pa.types.is_date32(column.type):
        return numbers(column, np.int64).astype("datetime64[D]")
    source = _fixed(column.type)
    return numbers(column, source) if source is not None else np.asarray(column.to_pylist(), dtype=object)


def arrow_columns(table: pa.Table) -> Columns:
    """Every column of an Arrow table by `arrow_column`."""
    return {name: arrow_column(table.column(name)) for name in table.column_names}


def empty_window_message(con: Runner, compiled: CompiledStrategy, dataset: Dataset,
                         window: Window) -> str:
    """Why nothing is left to decide: the window misses the data, or the population filter keeps nothing."""
    first, last = _span(con, dataset, "CAST(min(:t) AS DATE) AS lo, CAST(max(:t) AS DATE) AS hi")
    lo = window.start.date().isoformat() if window.start else "the start"
    hi = (window.end - timedelta(microseconds=1)).date().isoformat() if window.end else "the end"
    if compiled.population is not None:
        return (f"strategy '{compiled.name}': no event in {lo}..{hi} passes its population filter (the data "
                f"spans {first}..{last}): widen the window or the population")
    return f"--from/--to: the window {lo}..{hi} holds no event (the data spans {first}..{last})"


def _span(con: Runner, dataset: Dataset, select: str) -> tuple:
    """First and last time of the frame (as `select` writes them)."""
    row = fetch_row(con, fill(f"SELECT {select} FROM frame", t=ident(dataset.columns.time)), "frame")
    return row["lo"], row["hi"]


def span_query(dataset: Dataset) -> exp.Expression:
    """First and last time of the frame, for `window_days`."""
    return fill("SELECT min(:t) AS lo, max(:t) AS hi FROM frame", t=ident(dataset.columns.time))


def run_query(con: Runner, query: exp.Expression | str, strategy: str) -> pa.Table:
    """Run a query holding user expressions (an AST, or DuckDB text rendered from one); a failure while evaluating
    them is a one-line error.

    The query is stopped after `limits.query_seconds()` (a `QueryTimeout`, one line): a runaway
    expression or window must not hang the CLI or the console. Another engine (`engines.Engine`, e.g. Spark)
    renders and runs the same AST itself.
    """
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.arrow(query, strategy)
    with _evaluating(con, strategy):
        return con.sql(_text(query)).to_arrow_table()


def fetch_columns(con: Runner, query: exp.Expression | str, strategy: str) -> Columns:
    """`run_query`'s result as numpy columns (`arrow_column`'s types). On DuckDB by its own numpy fetch, which
    needs no pyarrow: importing it is ~75 ms of CPU that a CLI backtest would pay for nothing (issue 14)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return arrow_columns(con.arrow(query, strategy))
    with _evaluating(con, strategy):
        found = con.sql(_text(query)).fetchnumpy()
    return {name: _filled(values) for name, values in found.items()}


def fetch_row(con: Runner, query: exp.Expression | str, strategy: str) -> dict:
    """The first row of `run_query`'s result, by column name (Python values, as Arrow's `to_pylist` gives them)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.arrow(query, strategy).to_pylist()[0]
    with _evaluating(con, strategy):
        result = con.execute(_text(query))
        first = result.fetchall()[0]  # fetched to its end: DuckDB 2.0 keeps a result not fetched to its end open
        return dict(zip([d[0] for d in result.description], first))


def _text(query: exp.Expression | str) -> str:
    """DuckDB text of a query: an AST rendered, or text the compiled-query cache kept."""
    return query if isinstance(query, str) else render(query)


def _filled(values: np.ndarray) -> np.ndarray:
    """A column of DuckDB's numpy fetch with its NULLs as `numbers` and `arrow_column` give them (NaN for floats,
    NaT for times, None for objects, 0 otherwise); a column without NULL comes as a plain array, as is."""
    if getattr(values, "mask", None) is None:  # a masked array only where the column holds a NULL
        return values
    kind = values.dtype.kind
    blank = np.nan if kind == "f" else None if kind == "O" else np.datetime64("NaT") if kind in "mM" else 0
    return values.filled(blank)


@contextmanager
def _evaluating(con: duckdb.DuckDBPyConnection, strategy: str) -> Iterator[None]:
    """Where a query holding user expressions runs on DuckDB: stopped after `limits.query_seconds()`, and a failure
    while evaluating them is one line naming the strategy."""
    try:
        with query_time_limit(con, f"strategy '{strategy}'"):
            yield
    except duckdb.Error as err:
        raise RiskConsoleError(f"strategy '{strategy}': evaluating its expressions failed: "
                               f"{str(err).splitlines()[0]} (guard the expression, e.g. with nullif or TRY_CAST)") from None


def window_days(con: Runner, span: exp.Expression | str, window: Window) -> list[date]:
    """Every calendar day of the window that the data reaches (a window wider than the data is cut to it,
    so a far --from/--to never makes millions of empty days); `span` is `span_query`'s."""
    row = fetch_row(con, span, "frame")
    first, last = row["lo"], row["hi"]
    if first is None:
        return []
    lo = max(window.start, first) if window.start else first
    hi = min(window.end, last + timedelta(microseconds=1)) if window.end else last + timedelta(microseconds=1)
    if lo >= hi:
        return []
    start, stop = lo.date(), (hi - timedelta(microseconds=1)).date()
    return [start + timedelta(days=i) for i in range((stop - start).days + 1)]


def decisions_query(compiled: CompiledStrategy, frame: Frame, dataset: Dataset, window: Window) -> exp.Select:
    """One row per population event: id, time, label (NULL if unknown), amount, action, matched rules, scores."""
    roles = dataset.columns
    amount = fill("CAST(:a AS DOUBLE)", a=ident(roles.amount)) if roles.amount else fill("CAST(NULL AS DOUBLE)")
    level = compiled.strategy.level
    if level is not None:  # an entity-period: its entity, and what followed (the money of its horizon)
        amount = fill("__fraud_amount + __good_amount")
    query = exp.select(
        alias(fill("CAST(:i AS VARCHAR)", i=ident(roles.id)), "id"), alias(ident(roles.time), "time"),
        *([ident(level.entity)] if level is not None else []),
        alias(fill("nullif(:y, -1)", y=known_label(dataset, window)), "label"), alias(amount, "amount"),
        alias(action_case(compiled), "action"), alias(matched_rules(compiled), "matched_rules"),
        *[ident(d) for d in compiled.detectors],
        *([alias(fill("__fraud_amount"), "fraud_amount_after"), alias(fill("__good_amount"), "good_amount_after"),
           alias(fill("__events"), "events")] if level is not None else []),
    ).from_(source(compiled, frame).subquery("src"))
    for condition in population_filters(compiled, dataset, window) + frame.counted():
        query = query.where(condition)
    return query.order_by(ident("time"), ident("id"))


def decision_case(pairs: list[tuple[str, exp.Expression]], as_names: bool = True) -> exp.Expression:
    """CASE giving the decision from (action, hit) pairs: allow beats block beats review; no match allows.

    As names ('allow', 'block', 'review') or as codes (0, 2, 1 = ALLOW, BLOCK, REVIEW of metrics.py).
    """
    def any_of(action: str) -> exp.Expression:
        node: exp.Expression = lit(False)
        for a, hit in pairs:
            if a == action:
                node = exp.Or(this=node, expression=hit)
        return node

    values = {"allow": "allow", "block": "block", "review": "review"} if as_names else \
        {"allow": 0, "block": 2, "review": 1}
    return fill("CASE WHEN :a THEN :va WHEN :b THEN :vb WHEN :r THEN :vr ELSE :va END",
                a=any_of("allow"), b=any_of("block"), r=any_of("review"),
                va=lit(values["allow"]), vb=lit(values["block"]), vr=lit(values["review"]))


def action_case(compiled: CompiledStrategy) -> exp.Expression:
    """The decision of the strategy's enabled rules, as text."""
    return decision_case([(r.action, hit_column(r.condition)) for r in compiled.rules if r.enabled])


def matched_rules(compiled: CompiledStrategy) -> exp.Expression:
    """The list of rule names whose condition holds."""
    names = exp.Array(expressions=[fill("CASE WHEN :h THEN :n END", h=hit_column(r.condition), n=lit(r.name))
                                   for r in compiled.rules])
    return fill("list_filter(:names, x -> x IS NOT NULL)", names=names)


def fetch_decisions(con: duckdb.DuckDBPyConnection, compiled: CompiledStrategy, frame: Frame, dataset: Dataset,
                    window: Window) -> pa.Table:
    """The decisions table as Arrow (run on a safe connection)."""
    return run_query(con, decisions_query(compiled, frame, dataset, window), compiled.name)


def event_decision(con: duckdb.DuckDBPyConnection, compiled: CompiledStrategy, frame: Frame, dataset: Dataset,
                   event_id: str) -> dict | None:
    """One event's decision and matched rules under a strategy (None if it is not in the population)."""
    query = decisions_query(compiled, frame, dataset, Window())
    query = exp.select("*").from_(query.subquery("d")).where(fill("id = :i", i=lit(str(event_id))))
    rows = run_query(con, query, compiled.name).to_pylist()
    return rows[0] if rows else None
