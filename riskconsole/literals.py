"""Rule literals no loaded row holds: `channel = 'Live'` where the data says `live` matches nothing (negated, it
excludes nothing), silently, on every face. A report says so, once per (rule, column, text), with the value the
data holds where it differs only in letter case or surrounding spaces.

The comparisons are found in the compiled conditions (`=`, `<>`, `IN (...)`, negated or not, of a text column of
the frame with text literals); one query over the whole frame (every loaded row, not only the window's: a value
of other days is no typo) counts each literal, and one more per literal no row holds finds its near spelling. The
queries are plain SQL text: the compiled-query cache keeps them with the pairs, and a cached run asks them without
sqlglot.
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


def literal_query(pairs: Pairs) -> tuple[str, list[str]] | None:
    """Over `frame`: one query counting the rows that hold each pair's literal (a plain equality, ~20 ms over 2M
    events), and per pair the query of a value equal to it but for letter case and surrounding spaces (asked only
    of a literal no row holds); None without pairs."""
    if not pairs:
        return None
    from sqlglot import exp

    from riskconsole.sqlbuild import alias, fill, ident, lit, render

    counts = [alias(fill("count(*) FILTER (WHERE :c = :v)", c=ident(c), v=lit(v)), f"n{i}")
              for i, (_, c, v) in enumerate(pairs)]
    near = [render(exp.select(fill("min(:c)", c=ident(c))).from_("frame").where(
        fill("lower(trim(:c)) = lower(trim(:v))", c=ident(c), v=lit(v)))) for _, c, v in pairs]
    return render(exp.select(*counts).from_("frame")), near


def literal_warnings(cur: duckdb.DuckDBPyConnection, pairs: Pairs, queries: tuple[str, list[str]] | None
                     ) -> list[str]:
    """The report's warnings of the pairs whose literal no loaded row holds (`queries`: `literal_query(pairs)`)."""
    from riskconsole.escape import printable

    if not queries:
        return []
    counts, near = queries
    out = []
    for i, held in enumerate(cur.execute(counts).fetchone()):
        if held:
            continue
        rule, column, value = pairs[i]
        (spelt,) = cur.execute(near[i]).fetchone()
        hint = f" (the data has '{printable(spelt)}': text is compared exactly, letter case and spaces included)" \
            if spelt is not None else ""
        out.append(f"rule '{rule}' compares {column} with '{printable(value)}', which no loaded event's {column} "
                   f"holds{hint}")
    return out
