"""Rule literals no loaded row holds: `channel = 'Live'` where the data says `live` matches nothing (negated, it
excludes nothing), silently, on every face. A report says so, once per (rule, column, text), with the value the
data holds where it differs only in letter case or surrounding spaces.

The comparisons are found in the compiled conditions (`=`, `<>`, `IN (...)`, negated or not, of a text column of
the frame with text literals); one query over the whole frame (every loaded row, not only the window's: a value
of other days is no typo) counts each literal, and one more per literal no row holds finds its near spelling: a value
equal but for letter case and surrounding spaces, else, in a column of at most `FEW` distinct values, one a letter
away (two for a literal of 8 letters or more; none for one shorter than 3: `'UK'` is no typo of `'US'`). The queries
are plain SQL text: the compiled-query cache keeps them with the pairs, and a cached run asks them without sqlglot.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from riskconsole.strategy import CompiledStrategy, Frame

Pairs = list[tuple[str, str, str]]  # (rule, column, literal)
FEW = 1000  # a column of more distinct values (ids, e-mails) is not searched for a spelling a letter away


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
    events), and per pair the query of its near spelling (`NEAR`: asked only of a literal no row holds); None
    without pairs. Built once per list of pairs: the console asks on every move (an action flip's thread CPU at 10M
    events: 9.7 ms building them each time, 17.7 ms with `NEAR`'s, 6.1 ms built once)."""
    return _queries(tuple(tuple(pair) for pair in pairs), FEW) if pairs else None


@lru_cache(maxsize=256)
def _queries(pairs: tuple[tuple[str, str, str], ...], few: int) -> tuple[str, list[str]]:
    from sqlglot import exp

    from riskconsole.sqlbuild import alias, fill, ident, lit, render

    counts = [alias(fill("count(*) FILTER (WHERE :c = :v)", c=ident(c), v=lit(v)), f"n{i}")
              for i, (_, c, v) in enumerate(pairs)]
    near = [render(fill(NEAR, c=ident(c), v=lit(v), few=lit(few), more=lit(few + 1))) for _, c, v in pairs]
    return render(exp.select(*counts).from_("frame")), near


# A literal's near spelling in the data: (value, whether it differs only in letter case and surrounding spaces), one
# row or none. The distinct values are listed up to FEW + 1 (DuckDB stops reading there: an id column costs ~1 ms).
NEAR = """
WITH few AS (SELECT DISTINCT :c AS v FROM frame WHERE :c IS NOT NULL LIMIT :more)
SELECT v, lower(trim(v)) = lower(trim(:v)) AS same FROM (
  SELECT min(:c) AS v FROM frame WHERE lower(trim(:c)) = lower(trim(:v))
  UNION ALL
  SELECT v FROM few WHERE (SELECT count(*) FROM few) <= :few AND length(trim(:v)) >= 3
    AND damerau_levenshtein(lower(trim(v)), lower(trim(:v))) <= CASE WHEN length(trim(:v)) >= 8 THEN 2 ELSE 1 END
) AS near WHERE v IS NOT NULL
ORDER BY same DESC, damerau_levenshtein(lower(trim(v)), lower(trim(:v))), v LIMIT 1
"""


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
        found = cur.execute(near[i]).fetchone()
        hint = "" if found is None else f" (did you mean '{printable(found[0])}'?)" if not found[1] else \
            f" (the data has '{printable(found[0])}': text is compared exactly, letter case and spaces included)"
        out.append(f"rule '{rule}' compares {column} with '{printable(value)}', which no loaded event's {column} "
                   f"holds{hint}")
    return out
