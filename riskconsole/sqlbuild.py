"""Compose SQL from sqlglot ASTs: templates with `:placeholders` filled by identifier and literal nodes.

Nothing user-written is ever pasted into SQL as text: names become quoted identifiers,
values become literals, and user expressions arrive as already-checked ASTs.
"""

from __future__ import annotations

import importlib
import math
from functools import lru_cache
from typing import Any

DIALECT = "duckdb"


class _Lazy:
    """sqlglot's `exp` module, imported on first use: a CLI backtest served from the compiled-query cache builds no
    SQL, and importing sqlglot costs ~0.15 CPU-s of its ~1 s (issue 14). Each name is looked up once, then kept as
    an attribute of this object (as fast as the module's own)."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module("sqlglot.expressions"), name)
        setattr(self, name, value)
        return value


exp: Any = _Lazy()  # modules on a backtest's path write `from riskconsole.sqlbuild import exp`


@lru_cache(maxsize=256)
def _parsed(text: str) -> exp.Expression:
    import sqlglot

    return sqlglot.parse_one(text, read=DIALECT)


def fill(template: str, **nodes: exp.Expression | str | int | float) -> exp.Expression:
    """Parse a trusted template once and replace its `:name` placeholders with AST nodes.

    Plain ints/floats become number literals and plain strings become *identifiers*
    (use `lit()` for a string literal).
    """
    values = {k: _node(v) for k, v in nodes.items()}
    # the template's copy is the tree the values are put in (replace_placeholders would copy it once more)
    return exp.replace_placeholders(_parsed(template).copy(), copy=False, **values)


def _node(value: Any) -> exp.Expression:
    if isinstance(value, exp.Expression):
        return value
    if isinstance(value, str):
        return ident(value)
    return lit(value)


def ident(name: str) -> exp.Column:
    """A quoted column reference."""
    return exp.column(name, quoted=True)


def lit(value: Any) -> exp.Expression:
    """A literal for a Python scalar (numbers, strings, booleans, None)."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if value is None:
        return exp.Null()
    if isinstance(value, float) and not math.isfinite(value):  # `inf` would be read as a column's name
        return exp.cast(exp.Literal.string("NaN" if value != value else "Infinity" if value > 0 else "-Infinity"),
                        "DOUBLE")
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def alias(node: exp.Expression, name: str) -> exp.Alias:
    """`node AS "name"`."""
    return exp.alias_(node, name, quoted=True)


WIDE_CHUNK = 16  # expressions a `wide_select` level computes


def wide_select(columns: list[exp.Expression], source: exp.Expression | str, keep: bool = False) -> exp.Select:
    """`SELECT [*,] columns FROM source` (`keep`: the source's columns first), the columns computed WIDE_CHUNK at a
    time in nested selects, then selected in order. DuckDB's common-subexpression pass is quadratic in a
    projection's expressions: 200 columns of a wide JSON source, each cast with a repeated subexpression, took 8 s
    to plan in one select (0.5 s without that pass), and a 300-column load 37 s. `columns` are taken as they are
    (not copied): each aliased, their names distinct and none `__w<number>`."""
    names = [c.alias_or_name for c in columns]
    if len(columns) <= WIDE_CHUNK:
        return exp.select(*(["*"] if keep else []), *columns, copy=False).from_(source, copy=False)
    query = exp.select("*").from_(source, copy=False)
    for at in range(0, len(columns), WIDE_CHUNK):
        chunk = [exp.alias_(c.unalias(), f"__w{at + i}", quoted=True, copy=False)
                 for i, c in enumerate(columns[at:at + WIDE_CHUNK])]
        query = exp.select("*", *chunk, copy=False).from_(query.subquery(f"w{at}", copy=False), copy=False)
    built = [alias(ident(f"__w{i}"), name) for i, name in enumerate(names)]
    kept = [exp.Star(except_=[exp.column(f"__w{i}", quoted=True) for i in range(len(names))])] if keep else []
    return exp.select(*kept, *built, copy=False).from_(query.subquery("w", copy=False), copy=False)


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The terms of `a AND b AND ...` (brackets around a term dropped), in order; walked without recursion: a rule
    may AND a thousand conditions."""
    out: list[exp.Expression] = []
    stack = [node]
    while stack:
        term = stack.pop().unnest()
        if isinstance(term, exp.And):
            stack += [term.expression, term.this]
        else:
            out.append(term)
    return out


def render(node: exp.Expression, dialect: str = DIALECT) -> str:
    """SQL text of an AST, for DuckDB unless told otherwise."""
    return node.sql(dialect=dialect)


def money_sum(node: exp.Expression | str) -> exp.Expression:
    """`sum(node)` of money, exact and order-free: summed as DECIMAL(38, 6), returned as DOUBLE.

    A DOUBLE sum depends on the order rows arrive in, which parallel threads change from run to run;
    the same backtest must give the same report to the last digit. Costs ~0.1 s per 10M rows.
    """
    return fill("CAST(sum(CAST(:x AS DECIMAL(38, 6))) AS DOUBLE)", x=node)
