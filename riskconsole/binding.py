"""Why DuckDB refused a checked expression, as one line with a fix: a type mismatch it would not bind, or a part
that fails whatever the rows hold (`amount > 'lots'`: a text no number reads as; a bad regular expression).

DuckDB's binder errors are several lines, name internal types (`INTEGER_LITERAL`) and list candidate
functions; a user needs the part that fails, the column and its type, and what to write instead. The
part is found by binding the expression's parts, innermost first (only when binding failed); a fix is
offered only when it binds. An expression that binds is also run on one row of NULLs (`NullRow`): a
constant DuckDB converts when the query runs (`'lots'` to DOUBLE) fails there, as it would on every row of a
backtest, and is named before one runs. Which of many conditions (or of a condition's parts) fail is asked in one
query, each under DuckDB's try().
"""

from __future__ import annotations

import re

import duckdb

from riskconsole.sqlbuild import alias, exp, lit, render

MAX_PROBES = 40  # parts bound to find the failing one: a failure costs at most this many DESCRIBEs
MAX_RUN_PROBES = 200  # parts run on a row of NULLs for all of a strategy's failing conditions (a query each once:
# 500 rules each failing with 40 parts probed took ~100 s; one query per condition now); past it a condition is named
# whole
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


def nulls(relation: exp.Select) -> exp.Select:
    """One row of `relation`'s columns, each NULL of its own type (no row of it is read)."""
    empty = exp.select("*").from_(relation.subquery("r")).limit(0)
    return exp.select("src.*").from_(exp.select(alias(lit(1), "__one")).subquery("__one")).join(
        empty.subquery("src"), on=exp.true(), join_type="LEFT")


def runs(con: duckdb.DuckDBPyConnection, relation: exp.Select, nodes: list[exp.Expression]) -> duckdb.Error | None:
    """DuckDB's error running `nodes` (they bind) on one row of NULLs of `relation`'s columns, or None
    (`NullRow.error`)."""
    return NullRow(con, relation).error(nodes)


class NullRow:
    """Conditions run on one row of NULLs of `relation`'s columns (`nulls`), the row and each condition rendered once
    however many queries ask (rendering the row again for each condition and each part probed was most of the ~25 s
    500 failing rules took to check); which of many fail is asked in one query (`failing`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, relation: exp.Select) -> None:
        self.con, self.relation = con, relation
        self.source = f"({render(nulls(relation))}) AS src"
        self._relation = f"({render(relation)}) AS src"
        self._sql: dict[int, tuple[exp.Expression, str]] = {}  # by id(): the node is kept, so its id is not reused

    def sql(self, node: exp.Expression) -> str:
        """`node` as it runs on the row: `unguarded`, rendered once."""
        if id(node) not in self._sql:
            self._sql[id(node)] = (node, render(unguarded(node)))
        return self._sql[id(node)][1]

    def error(self, nodes: list[exp.Expression]) -> duckdb.Error | None:
        """DuckDB's error running `nodes` (they bind) on the row, or None. Their constants that only some rows
        evaluate are NULL there (`unguarded`): the row of NULLs takes branches real rows may never take
        (`coalesce(amount, 'none')` fails on it alone), and a failure there says nothing of every row."""
        columns = ", ".join(f"{self.sql(n)} AS v{i}" for i, n in enumerate(nodes))
        try:
            self.con.execute(f"SELECT {columns} FROM {self.source}").fetchall()
        except duckdb.InterruptException:  # the time limit (limits.query_time_limit) stopped it: not an answer
            raise
        except (duckdb.BinderException, duckdb.ParserException):
            return None  # a NULL where a constant was does not bind (`NULL + INTERVAL 1 DAY`): nothing is known
        except duckdb.Error as err:
            return err
        return None

    def failing(self, nodes: list[exp.Expression]) -> list[bool]:
        """Whether each of `nodes` fails on the row (as `error` of it alone would say), in one query: each run under
        DuckDB's try(), NULL where it fails. A batch try() cannot take (a subquery, a volatile function) is halved
        until each such node is run alone."""
        if not nodes:
            return []
        columns = ", ".join(f"try(CAST(({self.sql(n)}) IS NULL AS INTEGER)) AS v{i}" for i, n in enumerate(nodes))
        try:
            return [v is None for v in self.con.execute(f"SELECT {columns} FROM {self.source}").fetchall()[0]]
        except duckdb.InterruptException:
            raise
        except duckdb.Error:
            if len(nodes) == 1:
                return [self.error(nodes) is not None]
            half = len(nodes) // 2
            return self.failing(nodes[:half]) + self.failing(nodes[half:])

    def binds(self, nodes: list[exp.Expression]) -> list[str] | None:
        """The types of `nodes` over the relation (DuckDB binds without running), or None when they do not bind."""
        columns = ", ".join(f"{render(n)} AS v{i}" for i, n in enumerate(nodes))
        try:
            return [row[1] for row in self.con.execute(f"DESCRIBE SELECT {columns} FROM {self._relation}").fetchall()]
        except duckdb.InterruptException:
            raise
        except duckdb.Error:
            return None

    def problem(self, node: exp.Expression, probes: int = MAX_PROBES) -> str | None:
        """`failure`'s line for a condition that fails on the row, or None."""
        err = self.error([node])
        return None if err is None else self.failure(node, err, probes)

    def failure(self, node: exp.Expression, err: duckdb.Error, probes: int = MAX_PROBES) -> str:
        """`problem (fix)` for a condition that binds but failed (`err`) on the row: it fails whatever the rows
        hold. The part named is the innermost that fails alone, of the first `probes` tried (in one query)."""
        parts = [n for n in node.walk() if not isinstance(n, _NOT_PROBED) and not n.find_ancestor(exp.Query)
                 and not (isinstance(n, exp.If) and isinstance(n.parent, exp.Case))
                 and has_text(n)]
        tried = list(reversed(parts))[:probes]
        fails = [False] * len(tried) if tried == [node] else self.failing(tried)  # the node alone: known to fail
        culprit = next((p for p, failed in zip(tried, fails) if failed), node)
        problem = f"'{_snippet(culprit)}' fails on every row: {duckdb_line(err)}"
        texts = [n for n in culprit.iter_expressions() if isinstance(n, exp.Literal) and n.is_string]
        columns = [n for n in culprit.iter_expressions() if isinstance(n, exp.Column)]
        types = self.binds(columns[:1]) if isinstance(culprit, _COMPARISONS) and texts and columns else None
        example = _EXAMPLES.get(_kind(types[0])) if types else None
        if not example:
            return problem
        column = _sql(columns[0])
        return f"{problem} ({column} is {types[0]}: compare it with {example.format(column)})"


def unguarded(node: exp.Expression) -> exp.Expression:
    """A copy of `node` with NULL for every text constant that a row evaluates only when another value says so: in the
    fallbacks of coalesce, the branches of CASE and if(), and the conditions of a CASE after its first (a number
    stays: NULL in its place, DuckDB folds a comparison with a text to NULL without converting the text); `node`
    itself when it has none of these (copying a condition of hundreds of parts is most of its check)."""
    if not any(isinstance(p, (exp.Coalesce, exp.Case, exp.If)) for p in node.walk()):
        return node
    copy = node.copy()
    guarded = []
    for part in copy.walk():
        if isinstance(part, exp.Coalesce):
            guarded += part.expressions
        elif isinstance(part, exp.Case):
            ifs = part.args.get("ifs") or []
            guarded += [i.args.get("true") for i in ifs] + [i.this for i in ifs[1:]] + [part.args.get("default")]
        elif isinstance(part, exp.If) and not isinstance(part.parent, exp.Case):
            guarded += [part.args.get("true"), part.args.get("false")]
    for branch in [g for g in guarded if g is not None]:
        for literal in list(branch.find_all(exp.Literal)):
            if literal.is_string:
                literal.replace(exp.Null())
    return copy


def has_text(node: exp.Expression) -> bool:
    """Whether `node` holds a text constant: what DuckDB converts when the query runs, so what can fail on every row
    (a part without one runs on a row of NULLs)."""
    return any(t.is_string for t in node.find_all(exp.Literal))


def run_problem(con: duckdb.DuckDBPyConnection, relation: exp.Select, node: exp.Expression,
                probes: int = MAX_PROBES) -> str | None:
    """`NullRow.failure`'s line for a condition that fails on a row of NULLs of `relation`'s columns, or None."""
    return NullRow(con, relation).problem(node, probes)


_EXAMPLES = {"a number": "a number, without quotes, e.g. {} > 100",
             "a time": "a time written as ISO text, e.g. {} >= '2026-03-01 10:00:00'",
             "true/false": "true or false, without quotes, e.g. {} = true"}


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
    """DuckDB SQL as a user writes it: function names in lower case, a plain column name without quotes."""
    from sqlglot.dialects.duckdb import DuckDB

    plain = [i for i in node.find_all(exp.Identifier) if i.quoted and re.fullmatch(r"[a-z_][a-z0-9_]*", i.name)
             and i.name.upper() not in DuckDB.Tokenizer.KEYWORDS]
    try:  # unquoted in place, then quoted back: a copy of a condition of hundreds of parts cost ~10 ms
        for ident in plain:
            ident.set("quoted", False)
        return node.sql(dialect="duckdb", normalize_functions="lower")
    finally:
        for ident in plain:
            ident.set("quoted", True)


def _snippet(node: exp.Expression, limit: int = 60) -> str:
    text = _sql(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."
