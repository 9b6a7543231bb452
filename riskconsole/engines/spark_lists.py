"""Lists (`IN LIST`, DESIGN §3.3) on engine spark: each list a broadcast Spark view, values typed by DuckDB.

A compiled `column IN LIST name` reads the DuckDB table `__list_NAME` (text `__value`, `__added`, `__expires`) and
casts each value to the column's type with DuckDB's `TRY_CAST` (riskconsole.lists). Spark casts text differently
(DuckDB reads '3.5', '1e3', '1_000' and '0x10' as integers, Spark gives NULL), so the cast is done here, by DuckDB,
once per list version and column type, and the view Spark reads holds the typed values: the condition then compares
values of one type on both engines. Two more renderings keep DuckDB's meaning:

- a NULL column: DuckDB's `NULL IN (...)` is NULL, Spark's IN-subquery inside a SELECT list is false (an
  existence join), so `NOT (x IN LIST l AND y)` would flip; the IN is guarded `CASE WHEN x IS NULL THEN NULL ...`.
- the "never expires" sentinel `CAST('infinity' AS TIMESTAMP)` does not parse on Spark; any time after the accepted
  event range (times.ACCEPTED_RANGE, before 2100) orders the same, so it becomes 9999-12-31 23:59:59.999999.
"""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole.lists import TABLE_PREFIX, ListSet
from riskconsole.sqlbuild import fill

VALUE = "__value"
NEVER = "9999-12-31 23:59:59.999999"  # after every accepted event time (< 2100-01-01): orders as DuckDB's infinity


class SparkLists:
    """The workspace's lists as Spark views, registered on first use per (list version, compared type)."""

    def __init__(self, spark: Any, lists: ListSet) -> None:
        """`spark` None: views are named, never registered (`validate` renders rules without a session)."""
        self.spark, self.lists = spark, lists
        self._views: set[str] = set()

    def rewrite(self, node: exp.Expression) -> exp.Expression:
        """`node` (a DuckDB-dialect AST) reading the Spark views of its lists, with DuckDB's meaning on Spark."""
        tables = [t for t in node.find_all(exp.Table) if t.name.startswith(TABLE_PREFIX)]
        infinite = [c for c in node.find_all(exp.Cast) if _is_infinity(c)]
        if not tables and not infinite:
            return node
        node = node.copy()
        for table in [t for t in node.find_all(exp.Table) if t.name.startswith(TABLE_PREFIX)]:
            self._typed(table)
        for cast in [c for c in node.find_all(exp.Cast) if _is_infinity(c)]:
            cast.set("this", exp.Literal.string(NEVER))
        return node

    def _typed(self, table: exp.Table) -> None:
        """Point one list read at its typed view, drop the (now done) casts and guard a plain IN against NULL."""
        select = table.find_ancestor(exp.Select)
        casts = [c for c in select.find_all(exp.TryCast) if isinstance(c.this, exp.Column) and c.this.name == VALUE]
        to = casts[0].args["to"] if casts else exp.DataType.build("VARCHAR")
        table.set("this", exp.to_identifier(self.view(table.name[len(TABLE_PREFIX):], to)))
        for cast in casts:
            cast.replace(exp.column(VALUE))
        holder = select.parent.parent if isinstance(select.parent, exp.Subquery) else None
        if isinstance(holder, exp.In):
            holder.replace(fill("CASE WHEN :c IS NULL THEN NULL ELSE :i END", c=holder.this.copy(), i=holder.copy()))

    def view(self, name: str, to: exp.DataType) -> str:
        """The Spark view of list `name`'s current file with values cast by DuckDB to `to` (registered once)."""
        found = self.lists.load(name)
        kind = to.sql(dialect="duckdb")
        view = f"{TABLE_PREFIX}{name}_{found.sha256[:12]}_{hashlib.sha1(kind.encode()).hexdigest()[:8]}"
        if view not in self._views and self.spark is not None:
            table = _cast(found.table, to)
            self.spark.createDataFrame(table).hint("broadcast").createOrReplaceTempView(view)
            self._views.add(view)
        return view


def _cast(table: pa.Table, to: exp.DataType) -> pa.Table:
    """The list's values as DuckDB's `TRY_CAST(__value AS to)`, times as UTC instants (Spark reads them so)."""
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("entries", table)
        query = exp.select(exp.alias_(exp.TryCast(this=exp.column(VALUE), to=to), VALUE), "__added",
                           "__expires").from_("entries")
        typed = con.sql(query.sql(dialect="duckdb")).to_arrow_table()
    finally:
        con.close()
    fields = [pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) and f.type.tz is None
              else f for f in typed.schema]
    return typed.cast(pa.schema(fields))


def _is_infinity(node: exp.Cast) -> bool:
    return isinstance(node.this, exp.Literal) and node.this.is_string and node.this.name.lower() == "infinity" \
        and node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
