"""Why DuckDB refused to bind a checked expression (a type mismatch), as one line with a fix.

DuckDB's binder errors are several lines, name internal types (`INTEGER_LITERAL`) and list candidate
functions; a user needs the part that fails, the column and its type, and what to write instead. The
part is found by binding the expression's parts, innermost first (only when binding failed); a fix is
offered only when it binds.
"""

from __future__ import annotations

import re

import duckdb

from riskconsole.sqlbuild import exp, render

MAX_PROBES = 40  # parts bound to find the failing one: a failure costs at most this many DESCRIBEs
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Between,
                exp.In, exp.Like, exp.ILike)
# parts that bind whenever their parent's operands do, or cannot be bound alone
_NOT_PROBED = (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Identifier, exp.DataType, exp.Var, exp.Paren,
               exp.Interval, exp.Subquery, exp.Query)
_KINDS = (("a number", re.compile(r"(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|DECIMAL.*|REAL)(_LITERAL)?")),
          ("a text", re.compile(r"VARCHAR|STRING_LITERAL")),
          ("a time", re.compile(r"DATE|TIME.*|TIMESTAMP.*")),
          ("true/false", re.compile(r"BOOLEAN")))


def type_mismatch(con: duckdb.DuckDBPyConnection, relation: exp.Select, node: exp.Expression,
                  err: duckdb.Error) -> str:
    """`problem (fix)` for a condition over `relation` that DuckDB would not bind (`err`), on one line."""
    try:
        culprit = _culprit(con, relation, node)
        if culprit is not None:
            return _explain(con, relation, culprit)
    except duckdb.Error:  # the explanation is best effort; DuckDB's own first line is the fallback
        pass
    return duckdb_line(err)


def duckdb_line(err: BaseException) -> str:
    """DuckDB's message cut to its first line, without the error class and the advice to add casts."""
    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    line = re.sub(r"^\w+ Error: ", "", line)
    return re.sub(r"\.? ?You might need to add explicit type casts\.?$", "", line)


def _binds(con: duckdb.DuckDBPyConnection, relation: exp.Select, nodes: list[exp.Expression]) -> list[str] | None:
    """The types of `nodes` over `relation` (DuckDB binds without running), or None when they do not bind."""
    query = exp.select(*[exp.alias_(n.copy(), f"v{i}") for i, n in enumerate(nodes)]).from_(relation.subquery("src"))
    try:
        return [row[1] for row in con.execute("DESCRIBE " + render(query)).fetchall()]
    except duckdb.Error:
        return None


def _culprit(con: duckdb.DuckDBPyConnection, relation: exp.Select, node: exp.Expression) -> exp.Expression | None:
    """The innermost part of `node` that does not bind (reversed pre-order: every part after its own parts)."""
    parts = [n for n in node.walk() if not isinstance(n, _NOT_PROBED)
             and not (isinstance(n, exp.If) and isinstance(n.parent, exp.Case))]
    for part in list(reversed(parts))[:MAX_PROBES]:
        if _binds(con, relation, [part]) is None:
            return part
    return None


def _kind(dtype: str) -> str | None:
    return next((kind for kind, pattern in _KINDS if pattern.fullmatch(dtype)), None)


def _shown(node: exp.Expression, dtype: str) -> str:
    text = _sql(node)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = _kind(dtype)
    return f"{text} ({dtype}{', ' + kind if kind else ''})"


def _explain(con: duckdb.DuckDBPyConnection, relation: exp.Select, culprit: exp.Expression) -> str:
    operands = [n for n in culprit.iter_expressions() if not isinstance(n, (exp.DataType, exp.Var, exp.Interval))]
    types = _binds(con, relation, operands) if operands else None
    if not types:
        return f"'{_snippet(culprit)}' does not fit its operands' types"
    typed = list(zip(operands, types))
    columns = [(n, t) for n, t in typed if isinstance(n, exp.Column)] or typed[:1]
    target, target_type = columns[0]
    others = [(n, t) for n, t in typed if _kind(t) != _kind(target_type)]
    shown = [_shown(target, target_type)] + ([_shown(*others[0])] if others else [])
    if isinstance(culprit, _COMPARISONS) and others:
        problem = f"'{_snippet(culprit)}' compares {shown[0]} with {shown[1]}"
    else:
        problem = f"'{_snippet(culprit)}' cannot take {' and '.join(shown)}"
    fixes = _fixes(con, relation, culprit, target, _kind(target_type), others)
    fix = ", or ".join(fixes) if fixes else ("give both sides the same type: CAST(x AS DOUBLE), CAST(x AS VARCHAR), "
                                             "TRY_CAST(x AS TIMESTAMP), or a literal of the column's type")
    return f"{problem} ({fix})"


def _fixes(con: duckdb.DuckDBPyConnection, relation: exp.Select, culprit: exp.Expression, target: exp.Expression,
           kind: str | None, others: list[tuple[exp.Expression, str]]) -> list[str]:
    """What to write instead, each checked to bind: the other side as text, or the column converted."""
    candidates = []
    if isinstance(culprit, _COMPARISONS) and kind == "a text":
        numbers = [n for n, t in others if isinstance(n, exp.Literal) and not n.is_string]
        if numbers:
            candidates.append(("compare it with a text", _replaced(culprit, {
                id(n): exp.Literal.string(str(n.this)) for n in numbers})))
    if kind == "a text":
        candidates.append(("convert it" if candidates else "convert it to a number",
                           _replaced(culprit, {id(target): exp.TryCast(this=target.copy(), to=exp.DataType.build(
                               "DOUBLE"))})))
    elif kind in ("a number", "true/false"):
        candidates.append(("convert it to a text", _replaced(culprit, {id(target): exp.cast(target.copy(),
                                                                                            "VARCHAR")})))
    return [f"{label}: {_sql(fixed)}" for label, fixed in candidates if _binds(con, relation, [fixed]) is not None]


def _replaced(node: exp.Expression, by_id: dict[int, exp.Expression]) -> exp.Expression:
    """A copy of `node` with the parts whose id() is in `by_id` replaced."""
    copy = node.copy()
    for original, twin in list(zip(node.walk(), copy.walk())):
        if id(original) in by_id:
            if twin is copy:
                return by_id[id(original)]
            twin.replace(by_id[id(original)])
    return copy


def _sql(node: exp.Expression) -> str:
    """DuckDB SQL as a user writes it (function names in lower case)."""
    return node.sql(dialect="duckdb", normalize_functions="lower")


def _snippet(node: exp.Expression, limit: int = 60) -> str:
    text = _sql(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."
