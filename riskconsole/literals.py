"""Rule literals no loaded row holds: `channel = 'Live'` where the data says `live` matches nothing (negated, it
excludes nothing), silently, on every face. A report says so, once per (rule, column, text), with the value the
data holds where it differs only in letter case or surrounding spaces.

The comparisons are found in the compiled conditions (`=`, `<>`, `IN (...)`, negated or not, of a text column of
the frame with text literals); one query over the whole frame (every loaded row, not only the window's: a value
of other days is no typo) counts each literal and finds its near spelling. The query is plain SQL text, so the
compiled-query cache keeps it with its pairs and a cached run asks it without sqlglot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from riskconsole.strategy import CompiledStrategy, Frame

Pairs = list[tuple[str, str, str]]  # (rule, column, literal)


def text_literals(compiled: CompiledStrategy, frame: Frame) -> Pairs:
    """(rule, column, literal) of every enabled rule's comparison of a text column of the frame with text."""
    from sqlglot import exp

    text = {c for c, t in frame.columns.items() if t.upper().startswith(("VARCHAR", "TEXT", "STRING"))}
    pairs: Pairs = []
    for rule in compiled.rules:
        if not rule.enabled or rule.condition is None:
            continue
        for node in rule.condition.find_all(exp.EQ, exp.NEQ, exp.In):
            if isinstance(node, exp.In):
                column, values = node.this, node.expressions
            else:
                column, values = (node.this, [node.expression]) if isinstance(node.this, exp.Column) \
                    else (node.expression, [node.this])
            if not isinstance(column, exp.Column) or column.table or column.name not in text:
                continue
            for value in values:
                if isinstance(value, exp.Literal) and value.is_string:
                    pair = (rule.name, column.name, value.this)
                    if pair not in pairs:
                        pairs.append(pair)
    return pairs


def literal_query(pairs: Pairs) -> str | None:
    """One query over `frame`: per pair, the rows holding the literal and a value equal to it but for letter case
    and surrounding spaces (None without pairs)."""
    if not pairs:
        return None
    from riskconsole.sqlbuild import alias, fill, ident, lit, render

    from sqlglot import exp

    items = []
    for i, (_, column, value) in enumerate(pairs):
        c, v = ident(column), lit(value)
        items += [alias(fill("count(*) FILTER (WHERE :c = :v)", c=c, v=v), f"n{i}"),
                  alias(fill("min(:c) FILTER (WHERE lower(trim(:c)) = lower(trim(:v)))", c=c, v=v), f"h{i}")]
    return render(exp.select(*items).from_("frame"))


def literal_warnings(cur: duckdb.DuckDBPyConnection, pairs: Pairs, sql: str | None) -> list[str]:
    """The report's warnings of the pairs whose literal no loaded row holds (`sql`: `literal_query(pairs)`)."""
    from riskconsole.escape import printable

    if not sql:
        return []
    row = cur.execute(sql).fetchone()
    out = []
    for i, (rule, column, value) in enumerate(pairs):
        count, near = row[2 * i], row[2 * i + 1]
        if count:
            continue
        hint = f" (the data has '{printable(near)}': text is compared exactly, letter case and spaces included)" \
            if near else ""
        out.append(f"rule '{rule}' compares {column} with '{printable(value)}', which no loaded event's {column} "
                   f"holds{hint}")
    return out
