"""Spark SQL with DuckDB's meaning: riskconsole's DuckDB-dialect ASTs rendered for Spark (DESIGN §7).

`render` applies the rewrites of riskconsole's own SQL below, then `dialects.spark()` (the renderings of what a
user's expression may say), with every sqlglot "unsupported" warning raised as an error.
"""

from __future__ import annotations

import re
from typing import Callable

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from riskconsole import dialects
from riskconsole.errors import RiskConsoleError
from riskconsole.sqlbuild import fill


def render(node: exp.Expression, what: str) -> str:
    """Spark SQL of an AST with DuckDB's meaning (dialects.spark); anything without an exact rendering is refused.

    Raises:
        RiskConsoleError: naming `what` and the engine.
    """
    try:
        return _portable(node).sql(dialect=dialects.spark(), unsupported_level=ErrorLevel.RAISE, comments=False)
    except dialects.Unsupported as err:
        problem, fix = err.args
        raise RiskConsoleError(f"{what}: cannot be rendered exactly for engine spark: {problem} ({fix})") from None
    except SqlglotError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RiskConsoleError(f"{what}: cannot be translated exactly to engine spark: {first}") from None


def _portable(node: exp.Expression) -> exp.Expression:
    """Functions of riskconsole's own SQL (not of user expressions) written the way Spark runs them:

    - `list_extract(l, i)` (the optimizer's threshold buckets: 1-based, NULL out of range) as `try_element_at`,
      which is NULL out of range too but fails on index 0 (DuckDB: NULL) and takes an INT index;
    - `list_filter(l, x -> x IS NOT NULL)` (decisions' matched rules) as `array_compact(l)`: the same list, and
      no lambda, since Spark refuses a subquery (an `IN LIST`) anywhere inside a higher-order function;
    - `quantile_disc(x, p)` or `quantile_disc(x, [p, ...])` (drift's bins) as `percentile_disc(p) WITHIN GROUP
      (ORDER BY x)` per p: the same element of the sorted non-NULL values (tests/test_spark_engine.py checks
      sizes 1..1001; sqlglot's own rendering is the approximate `percentile_approx`);
    - `hash(x)` (monitor's entity key, only compared for equality) as the 64-bit `xxhash64(x)`: equal values
      have equal hashes on both engines (the hash values themselves differ);
    - `quantile_cont(x, p)` or `quantile_cont(x, [p, ...])` (`--by COLUMN:N` edges) as Spark's exact
      `percentile(x, p)`: the same interpolation between the same two order statistics, rounded in another order
      (an edge may differ in its last bit, e.g. 87.14947401378973 vs DuckDB's ...74; no value lies strictly between
      two adjacent order statistics, so every row falls in the same bucket unless those two are adjacent doubles);
    - `row_number() OVER ()` (any numbering 1..n; the feature build numbers events per hour instead,
      `streams.numbered`) ordered by `monotonically_increasing_id()`, since Spark refuses a row_number without an
      order;
    - `count(DISTINCT x) OVER w` (a count_distinct window no sweep computes: the feature build sweeps them all,
      streams.py) as `CAST(size(collect_set(x) OVER w) AS BIGINT)`: Spark
      refuses DISTINCT window aggregates; the set of the frame's non-NULL values has the same size (0 for an empty
      frame), and DuckDB's count is a BIGINT;
    - `count`, `sum` and `avg(CAST(x AS DOUBLE))` over a time window (`RANGE BETWEEN n PRECEDING AND m PRECEDING`,
      every window feature) as the difference of two running totals, frames `UNBOUNDED PRECEDING AND m PRECEDING`
      minus `UNBOUNDED PRECEDING AND n+1 PRECEDING` (see `_sliding`)."""
    def rewrite(n: exp.Expression) -> exp.Expression:
        for test, change in _REWRITES:
            if test(n):
                return change(n)
        return n

    return node.transform(rewrite) if any(test(n) for n in node.walk() for test, _ in _REWRITES) else node


def _is_extract(n: exp.Expression) -> bool:
    return isinstance(n, exp.Anonymous) and n.name.lower() == "list_extract"


def _extract(n: exp.Expression) -> exp.Expression:
    values, index = n.expressions
    at = exp.Anonymous(this="try_element_at", expressions=[values, exp.cast(index.copy(), "INT")])
    return fill("CASE WHEN :i = 0 THEN NULL ELSE :at END", i=index, at=at)


def _is_compact(n: exp.Expression) -> bool:
    body = n.expression.this if isinstance(n, exp.ArrayFilter) and isinstance(n.expression, exp.Lambda) else None
    return isinstance(body, exp.Not) and isinstance(body.this, exp.Is) and isinstance(body.this.expression, exp.Null) \
        and body.this.this.name == n.expression.expressions[0].name


def _percentile_disc(n: exp.Expression) -> exp.Expression:
    def one(p: exp.Expression) -> exp.Expression:
        return exp.WithinGroup(this=exp.Anonymous(this="percentile_disc", expressions=[p.copy()]),
                               expression=exp.Order(expressions=[exp.Ordered(this=n.this.copy())]))

    ps = n.expression
    return exp.Array(expressions=[one(p) for p in ps.expressions]) if isinstance(ps, exp.Array) else one(ps)


def _is_distinct_window(n: exp.Expression) -> bool:
    return isinstance(n, exp.Window) and isinstance(n.this, exp.Count) and isinstance(n.this.this, exp.Distinct)


def _distinct_window(n: exp.Expression) -> exp.Expression:
    window = n.copy()
    window.set("this", exp.Anonymous(this="collect_set", expressions=[n.this.this.expressions[0].copy()]))
    return exp.cast(exp.Anonymous(this="size", expressions=[window]), "BIGINT")  # DuckDB's count is BIGINT


def _is_sliding(n: exp.Expression) -> bool:
    """A count, sum or avg-of-a-double window over a bounded RANGE frame `n PRECEDING AND m PRECEDING`."""
    spec = n.args.get("spec") if isinstance(n, exp.Window) else None
    if spec is None or [str(spec.args.get(a) or "").upper() for a in ("kind", "start_side", "end_side")] != \
            ["RANGE", "PRECEDING", "PRECEDING"] or not isinstance(spec.args.get("start"), exp.Literal) \
            or not isinstance(spec.args.get("end"), exp.Literal):
        return False
    agg = n.this
    if isinstance(agg, exp.Count):
        return not isinstance(agg.this, exp.Distinct)
    if isinstance(agg, exp.Avg):
        return isinstance(agg.this, exp.Cast) and agg.this.to.this == exp.DataType.Type.DOUBLE
    return isinstance(agg, exp.Sum)


def _sliding(n: exp.Expression) -> exp.Expression:
    """A time window's count, sum or average as the difference of two running totals.

    Spark's bounded RANGE frame (`SlidingWindowFunctionFrame`) re-aggregates every row of the frame for every row,
    O(k^2) for a key with k rows in a window: a busy merchant's 7-day window over 10M events ran for hours. A frame
    from `UNBOUNDED PRECEDING` grows, and Spark adds each row once. The rows of [t - n, t - m] are those up to
    t - m less those up to t - n - 1 (`_t` is an integer), so:

    - count = count(up to t - m) - count(up to t - n - 1): exact;
    - sum = the same difference of sums, NULL where the frame holds no non-NULL value (DuckDB's sum of an empty
      frame): exact for integers and decimals; for a DOUBLE the difference of two running sums carries their
      rounding, a relative 1e-16 of the key's running total rather than of the window's;
    - avg(CAST(x AS DOUBLE)) = that sum over that count (exact for integer x below 2^53).

    Both frames share the window's partition and order, so Spark computes them in the same sorted pass."""
    spec = n.args["spec"]
    start, end = int(spec.args["start"].this), int(spec.args["end"].this)

    def running(agg: exp.Expression, upto: int) -> exp.Expression:
        window = n.copy()
        window.set("this", agg.copy())
        window.set("spec", exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING",
                                          end=exp.Literal.number(upto), end_side="PRECEDING"))
        return window

    def difference(agg: exp.Expression) -> exp.Expression:
        return exp.Sub(this=running(agg, end), expression=fill("coalesce(:w, 0)", w=running(agg, start + 1)))

    agg = n.this
    if isinstance(agg, exp.Count):
        return exp.Paren(this=difference(agg))
    count = difference(exp.Count(this=agg.this.copy()))
    total = difference(exp.Sum(this=agg.this.copy()))
    if isinstance(agg, exp.Sum):
        return fill("(CASE WHEN :c = 0 THEN NULL ELSE :s END)", c=count, s=total)
    return fill("(:s / nullif(:c, 0))", s=total, c=count)


_REWRITES: list[tuple[Callable[[exp.Expression], bool], Callable[[exp.Expression], exp.Expression]]] = [
    (_is_extract, _extract),
    (_is_compact, lambda n: exp.Anonymous(this="array_compact", expressions=[n.this])),
    (lambda n: isinstance(n, exp.PercentileDisc) and n.expression is not None, _percentile_disc),
    (lambda n: isinstance(n, exp.PercentileCont) and n.expression is not None,
     lambda n: exp.Anonymous(this="percentile", expressions=[n.this, n.expression])),
    (lambda n: isinstance(n, exp.Anonymous) and n.name.lower() == "hash",
     lambda n: exp.Anonymous(this="xxhash64", expressions=n.expressions)),
    (lambda n: isinstance(n, exp.Window) and isinstance(n.this, exp.RowNumber) and not n.args.get("order")
     and not n.args.get("partition_by"),
     lambda n: exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[exp.Ordered(
         this=exp.Anonymous(this="monotonically_increasing_id"))]))),
    (_is_distinct_window, _distinct_window),
    (_is_sliding, _sliding),
]


OUT_OF_MEMORY = ("Spark ran out of memory (java.lang.OutOfMemoryError): give it more with `driver_memory: 8g` "
                 "under spark: in data/dataset.yaml (local mode), or spark.executor.memory under spark: conf: on a "
                 "cluster")


def first_line(err: Exception) -> str:
    """The line of a Spark error a user can act on: its first, or where that names only the JVM call that failed
    (`An error occurred while calling o261.collectToPython.`) the root cause's Spark error (`[MALFORMED_CSV_RECORD]
    Malformed CSV record: …`) and the file being read, or what to do when the JVM ran out of memory."""
    text = str(err).strip()
    if "java.lang.OutOfMemoryError" in text:
        return OUT_OF_MEMORY
    first = text.splitlines()[0] if text else type(err).__name__
    worker = re.search(r"Error from python worker:\s*\n\s*([^\n]+)", text) or \
        re.search(r"(Cannot run program \"[^\n]*python[^\n]*)", text)
    if worker:  # Spark's line ends at "SparkException:"; what the worker's Python said is the next one
        return (f"a Python worker of Spark's failed: {worker.group(1).strip()} (workers run $PYSPARK_PYTHON, else "
                "spark.pyspark.python, else in local mode the Python running riskconsole)")
    if first.startswith("An error occurred while calling"):
        causes = re.findall(r"(?:Exception|Error): (\[[A-Z][A-Z0-9_.]*\][^\n]*)", text)
        if causes:
            file = re.search(r"while reading file (\S+?)\.?\s", text)
            return causes[-1].split(" SQLSTATE")[0].strip() + (f" (reading {file.group(1)})" if file else "")
        java = re.findall(r"(?:^|\n)(?:Caused by: |: )([\w.$]+(?:Exception|Error)(?:: [^\n]*)?)", text)
        if java:  # no Spark error class: the root cause as Java names it
            return java[-1].strip()
    return first
