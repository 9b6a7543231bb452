"""Allow-list checker for untrusted SQL expressions (`when`, `population`, `sql:` features).

Expressions are parsed with sqlglot (DuckDB dialect); every node of the tree must be an
allowed type carrying only allowed arguments; `$name` params become literals; the tree is
re-rendered, never pasted. Every allowed function has DuckDB's meaning and an exact rendering
for Spark SQL (dialects.py, DESIGN.md §3.1 and §7); what cannot be rendered exactly is refused.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.tokens import Token, TokenType

from riskconsole import dialects
from riskconsole.errors import ExpressionError, closest
from riskconsole.limits import MAX_EXPANDED_LENGTH, MAX_EXPRESSION_CHARS, MAX_LIST_PARAM, MAX_NESTING, rendered_size
from riskconsole.lists import unknown_list
from riskconsole.names import is_internal
from riskconsole.times import ISO_CLOCK

MAX_LENGTH = MAX_EXPRESSION_CHARS  # kept: the name other modules and tests know
_DUCKDB = Dialect.get_or_raise("duckdb")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_ONE = frozenset({"this"})
_TWO = frozenset({"this", "expression"})
_MANY = frozenset({"this", "expressions"})

# Node type -> the arguments it may carry. Any other type or argument is refused.
_ALLOWED: dict[type[exp.Expression], frozenset[str]] = {
    **dict.fromkeys((exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE), _TWO),
    **dict.fromkeys((exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is), _TWO),
    **dict.fromkeys((exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod), _TWO),
    **dict.fromkeys((exp.Not, exp.Paren, exp.Neg, exp.Boolean, exp.Column, exp.DataType), _ONE),
    **dict.fromkeys((exp.Like, exp.ILike), _TWO | {"negate"}),
    exp.In: _MANY,
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Null: frozenset(),
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true", "false"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.TryCast: frozenset({"this", "to", "safe"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Interval: frozenset({"this", "unit"}),
    exp.Var: _ONE,
    # Functions with DuckDB's meaning and an exact Spark rendering (dialects.py).
    **dict.fromkeys((exp.Abs, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp), _ONE),
    **dict.fromkeys((exp.DayOfWeek, exp.TimeToUnix), _ONE),
    exp.DateDiff: frozenset({"this", "expression", "unit", "date_part_boundary"}),
    exp.RegexpLike: _TWO,
    exp.SplitPart: frozenset({"this", "delimiter", "part_index"}),
    **dict.fromkeys((exp.Lower, exp.Upper, exp.Length), _ONE),
    **dict.fromkeys((exp.Hour, exp.Minute, exp.Day, exp.DayOfMonth, exp.Month, exp.Year), _ONE),
    **dict.fromkeys((exp.Pow, exp.Nullif, exp.StartsWith, exp.EndsWith, exp.Contains), _TWO),
    **dict.fromkeys((exp.Least, exp.Greatest), _MANY | {"ignore_nulls"}),
    exp.Coalesce: _MANY,
    exp.Round: frozenset({"this", "decimals"}),
    exp.Trim: frozenset({"this", "position"}),
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Concat: frozenset({"expressions", "safe", "coalesce"}),
}
ALLOWED_FUNCTIONS: tuple[str, ...] = (
    "abs", "ceil", "coalesce", "concat", "contains", "date_diff", "datediff", "day", "dayofmonth",
    "dayofweek", "ends_with", "epoch", "exp", "floor", "greatest", "hour", "if", "ifnull", "least",
    "length", "ln", "lower", "minute", "month", "nullif", "pow", "power", "regexp_matches", "round",
    "split_part", "sqrt", "starts_with", "substring", "trim", "upper", "year",
)
# Nodes that only make sense as one argument of one parent (a TryCast is a Cast).
_ONLY_UNDER = {
    exp.Identifier: ((exp.Column, "this"),),
    exp.Var: ((exp.Interval, "unit"), (exp.DateDiff, "unit")),
    exp.DataType: ((exp.Cast, "to"),),
}
_DT = exp.DataType.Type
_CAST_TYPES = {
    _DT.INT: "INTEGER", _DT.BIGINT: "BIGINT", _DT.DOUBLE: "DOUBLE", _DT.TEXT: "VARCHAR",
    _DT.VARCHAR: "VARCHAR", _DT.BOOLEAN: "BOOLEAN", _DT.DATE: "DATE",
    _DT.TIMESTAMP: "TIMESTAMP", _DT.TIMESTAMPNTZ: "TIMESTAMP",
}
# Spelling -> the singular ANSI unit that DuckDB and Spark read the same way.
_INTERVAL_UNITS = {f"{u}{s}": u for u in ("SECOND", "MINUTE", "HOUR", "DAY") for s in ("", "S")}
_STATEMENT_TOKENS = frozenset(
    {*_DUCKDB.parser_class.STATEMENT_PARSERS, *_DUCKDB.tokenizer_class.COMMANDS}
    | {TokenType.SELECT, TokenType.WITH, TokenType.FROM}
)
_SYNTAX_HINT = "use comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, CASE, CAST, +-*/%, functions"
_REFUSALS: tuple[tuple[tuple[type, ...], str, str], ...] = (
    ((exp.Query, exp.Subquery, exp.Exists, exp.Table), "subqueries are not allowed",
     "compare columns of the event only"),
    ((exp.Window,), "window functions (OVER) are not allowed",
     "define a window feature in data/dataset.yaml"),
    ((exp.Lambda,), "lambdas are not allowed", "use allowed functions and operators"),
    ((exp.Star,), "'*' is not allowed", "name the columns"),
    ((exp.Placeholder,), "this param is not allowed here", "use $name params"),
)


class ListRefs(Protocol):
    """What `column IN LIST name` needs (riskconsole.lists): the list names, and the checked semi-join."""

    def names(self) -> list[str]: ...

    def render(self, name: str, column: exp.Column, where: str) -> exp.Expression: ...


def parse_expression(
    text: str,
    *,
    columns: Iterable[str],
    params: Mapping[str, Any] | None = None,
    where: str,
    lists: ListRefs | None = None,
) -> exp.Expression:
    """Parse, check and substitute params in one untrusted SQL expression.

    Args:
        text: the expression as the user wrote it, e.g. ``"amount > $min"``.
        columns: the names a column reference may use (matched exactly).
        params: values for ``$name`` references, rendered as literals.
        where: message prefix naming the file and item, e.g. ``"s.yaml: rule 'x'"``.
        lists: the lists `column IN LIST name` may name (None: IN LIST is refused).

    Returns:
        A checked AST whose column references are quoted identifiers of known columns; each
        ``IN LIST`` is rendered (after the check) by `lists` as a semi-join.

    Raises:
        ExpressionError: with a one-line message ``"{where}: problem (fix)"``.
    """
    if not isinstance(text, str):
        raise _fail(where, f"expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail(where, f"expression is too long ({len(text)} characters)", f"at most {MAX_LENGTH}")
    columns = frozenset(columns)
    try:
        return _checked(text, columns, dict(params or {}), where, lists)
    except ExpressionError as err:
        raise _with_quote_hint(err, text, columns, where) from None


def _checked(text: str, columns: frozenset[str], params: dict[str, Any], where: str,
             lists: ListRefs | None) -> exp.Expression:
    """`parse_expression` once the text is known to be a bounded string."""
    tokens = _tokenize(text, where)
    tokens, marks = _mark_lists(tokens, where)
    try:
        tree = _substitute(_parse(tokens, text, where), params, _dollar_names(tokens), where, len(text))
        _check_list_places(tree, marks, lists, where)
        known = columns | frozenset(marks)
        for node in list(tree.walk()):
            _check_node(node, known, where)
        return _render_lists(tree, marks, lists, where)
    except RecursionError:  # a backstop: the counts above refuse what the interpreter's stack cannot hold
        raise _too_deep(where) from None


def parse_visible(text: str, visible: list[str], hidden: tuple[str, ...], params: dict | None,
                  where: str, lists: ListRefs | None = None, roles: dict[str, str] | None = None) -> exp.Expression:
    """Parse an expression over visible columns; naming the label (or a column derived from it) is refused.

    `roles` (role -> its column): naming a role whose column has another name says which column to write."""
    try:
        node = parse_expression(text, columns=[*visible, *hidden], params=params, where=where, lists=lists)
    except ExpressionError as err:
        if not roles:
            raise
        raise ExpressionError(role_hint(str(err), roles)) from None
    leaked = sorted(referenced_columns(node) & set(hidden))
    if leaked:
        raise ExpressionError(f"{where}: '{leaked[0]}' is the label or derived from it; rules, populations and "
                              "features may not read it (use a feature with label_delay instead)")
    return node


def role_hint(message: str, roles: dict[str, str]) -> str:
    """An "unknown column 'amount'" where `amount` is a role (`roles`: role -> its column) mapped to another column:
    say which column to write (window features take the role names `label` and `amount`; expressions read columns
    by their own names)."""
    found = re.search(r"unknown column '([^']*)'", message)
    column = roles.get(found.group(1)) if found else None
    if not column or column == found.group(1):
        return message
    return (f"{message.split(': unknown column')[0]}: unknown column '{found.group(1)}': the {found.group(1)} role is "
            f"the column '{column}' here; write {exp.column(column, quoted=True).sql('duckdb')}")


def referenced_columns(expr: exp.Expression) -> set[str]:
    """Return the names of the columns an expression reads (not those inside the semi-join of an IN LIST)."""
    return {col.name for col in expr.find_all(exp.Column) if col.find_ancestor(exp.Subquery) is None}


def referenced_params(text: str) -> set[str]:
    """Return the names of the ``$params`` a raw expression text refers to.

    ``$x`` inside a string literal is not a reference; positional ``$1`` is left out
    (parse_expression refuses it).
    """
    try:
        tokens = _DUCKDB.tokenize(text)
    except Exception:  # noqa: BLE001 - untrusted text; parse_expression reports the error
        return set(re.findall(r"\$\s*([A-Za-z_][A-Za-z0-9_]*)", text))
    return _dollar_names(tokens)


def to_sql(expr: exp.Expression, dialect: str = "duckdb") -> str:
    """Render a checked expression as SQL (identifiers quoted, no comments) for one engine.

    `"spark"` uses riskconsole's Spark dialect (dialects.spark), whose renderings give DuckDB's
    answers; it is imported only here, on first use.

    Raises:
        ExpressionError: if the expression cannot be rendered exactly for `dialect`.
    """
    opts: dict[str, Any] = {"comments": False}
    target: Any = dialect
    if dialect != "duckdb":
        opts["unsupported_level"] = ErrorLevel.RAISE
        if expr.find(exp.Subquery) is not None:
            raise ExpressionError(f"'{_snippet(expr)}' cannot be rendered for {dialect}: IN LIST reads a list "
                                  "registered on a DuckDB connection (write the values: x IN (1, 2))")
    try:
        if dialect == "spark":
            target = dialects.spark()
        return expr.sql(dialect=target, **opts)
    except dialects.Unsupported as err:
        problem, fix = err.args
        raise ExpressionError(f"'{_snippet(expr)}' cannot be rendered exactly for {dialect}: {problem} ({fix})") from None
    except (SqlglotError, RecursionError) as err:
        problem = f"'{_snippet(expr)}' cannot be translated exactly to {dialect}"
        raise ExpressionError(f"{problem}: {_first_line(err)}") from None


# --- tokens and parsing ---------------------------------------------------------------


def _tokenize(text: str, where: str) -> list[Token]:
    """Tokenize, refusing comments, several statements and statement keywords."""
    try:
        tokens = _DUCKDB.tokenize(text)
    except Exception as err:  # noqa: BLE001 - untrusted text must never crash the checker
        raise _fail(where, *_parse_problem(err, text)) from None
    if not tokens:
        problem = "expression is only a comment" if text.strip() else "expression is empty"
        raise _fail(where, problem, "write one SQL condition, e.g. amount > 200")
    if any(tok.comments for tok in tokens):
        raise _fail(where, "comments ('--', '/* */') are not allowed", "remove the comment")
    if any(tok.token_type == TokenType.SEMICOLON for tok in tokens):
        raise _fail(where, "';' is not allowed", "write exactly one expression, no statements")
    if tokens[0].token_type in _STATEMENT_TOKENS:
        raise _fail(where, f"statement '{tokens[0].text}' is not allowed", "write one expression")
    if _nesting(tokens) > MAX_NESTING:
        raise _too_deep(where)
    return tokens


_CLOSING = {TokenType.R_PAREN: TokenType.L_PAREN, TokenType.R_BRACKET: TokenType.L_BRACKET,
            TokenType.R_BRACE: TokenType.L_BRACE, TokenType.END: TokenType.CASE}
_PREFIXES = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})
MAX_TREE_DEPTH = 64  # of the parsed tree: 24 levels of CASE are 51 deep, of brackets 26
# chains sqlglot builds and renders without recursion, as every later step walks them (`sqlbuild.conjuncts`):
# one level however long. Arithmetic chains are not: DuckDB refuses 1,000 nested terms, dialects.value_kind recurses
_CHAINS = (exp.And, exp.Or)


def _nesting(tokens: list[Token]) -> int:
    """The deepest nesting of brackets and CASE (a closer counts only against its own opener: a column named
    `end` closes nothing), a run of prefix operators counted as that many levels: what the parser recurses into,
    counted the same in every process (its recursion limit is the process's)."""
    deepest = run = 0
    open_: list[TokenType] = []
    for tok in tokens:
        kind = tok.token_type
        if kind in _CLOSING.values():
            open_.append(kind)
        elif kind in _CLOSING and open_ and open_[-1] == _CLOSING[kind]:
            open_.pop()
        run = run + 1 if kind in _PREFIXES else 0
        deepest = max(deepest, len(open_) + run)
    return deepest


def _too_deep(where: str) -> ExpressionError:
    return _fail(where, "expression is nested too deeply",
                 f"at most {MAX_NESTING} levels of brackets, calls, CASE, and NOT or '-' in a row")


def _check_depth(tree: exp.Expression, where: str) -> None:
    """Refuse a tree deeper than MAX_TREE_DEPTH (walked without recursion): constructs the parser builds in a loop
    (`a ^ 2 ^ 2 ...`, `a + a + ...`, `IS NOT NULL` repeated) still make a tree later steps walk recursively. A chain
    of AND or of OR (300 conditions joined by OR) is one level: nothing walks it recursively."""
    depth: dict[int, int] = {id(tree): 0}
    for node in tree.walk():
        level = depth[id(node)]
        if level > MAX_TREE_DEPTH:
            raise _too_deep(where)
        for child in node.iter_expressions():
            chained = type(child) is type(node) and isinstance(node, _CHAINS)
            depth[id(child)] = level + (0 if chained else 1)


def _parse(tokens: list[Token], text: str, where: str) -> exp.Expression:
    """Parse tokens into exactly one expression tree."""
    try:
        trees = [tree for tree in _DUCKDB.parser().parse(tokens, text) if tree is not None]
    except RecursionError:
        raise _too_deep(where) from None
    except Exception as err:  # noqa: BLE001 - untrusted text must never crash the checker
        raise _fail(where, *_parse_problem(err, text)) from None
    if len(trees) != 1:
        raise _fail(where, "expected exactly one expression", "remove the extra text")
    if isinstance(trees[0], (exp.Query, exp.Command)):
        raise _fail(where, f"statement '{_snippet(trees[0])}' is not allowed", "write one expression")
    _check_depth(trees[0], where)
    return trees[0]


# the operators sqlglot names by class when one lacks an operand ("Required keyword: 'expression' missing for
# <class 'sqlglot.expressions.core.Mod'>"), as the user wrote them
_OPERATORS = {"And": "AND", "Or": "OR", "Not": "NOT", "Mod": "%", "Add": "+", "Sub": "-", "Mul": "*", "Div": "/",
              "EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "Like": "LIKE",
              "ILike": "ILIKE", "Between": "BETWEEN", "In": "IN", "Is": "IS", "Neg": "-", "Paren": "("}
_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>")


def _parse_problem(err: BaseException, text: str) -> tuple[str, str | None]:
    """What the user wrote wrong, for a tokenizer's or parser's error: the operator lacking an operand, the
    unexpected text, the bracket or quote left open, with where it is; sqlglot's own wording (a class name such
    as `sqlglot.expressions.core.Mod`) only when none of these fits."""
    found = (getattr(err, "errors", None) or [{}])[0]
    description, col = str(found.get("description") or ""), found.get("col")
    near = f"{found.get('start_context') or ''}{found.get('highlight') or ''}".strip()
    at = f" at '{near}' (character {col})" if near and col else ""
    missing = _MISSING.fullmatch(description)
    if missing:
        op = _OPERATORS.get(missing.group(1), missing.group(1).lower())
        fix = "write a percentage as a fraction: 0.5, not 50%" if op == "%" else "complete the condition or remove it"
        return f"cannot parse expression: '{op}' is missing a value{at}", fix
    if description == "Expecting )":
        return f"cannot parse expression: a '(' is not closed{at}", "add the ')'"
    if description.startswith("Invalid expression / Unexpected token") and found.get("highlight"):
        token = found["highlight"]
        odd = [ch for ch in near if ord(ch) > 127 and not ch.isalnum()]
        fix = (f"'{odd[0]}' (U+{ord(odd[0]):04X}) is not an ASCII operator: write it on an ASCII keyboard" if odd else
               "a number has a decimal point and no thousands separator: 1000.50" if token == "," else
               "did you mean >=?" if token == "=>" else "remove the ')' or add its '('" if token == ")" else None)
        return f"cannot parse expression: unexpected '{token}'{at}", fix
    if "Error tokenizing" in description + str(err) and text.count("'") % 2:
        return "cannot parse expression: a text in single quotes is not closed", "end it with '"
    return f"cannot parse expression: {_first_line(err)}", None


def _mark_lists(tokens: list[Token], where: str) -> tuple[list[Token], dict[str, str]]:
    """Rewrite each ``IN LIST name`` (tokens: outside string literals and quoted identifiers) as
    ``IN (marker)``; the marker is a column name no user text can guess. Returns tokens and marker -> name."""
    out: list[Token] = []
    marks: dict[str, str] = {}
    nonce = secrets.token_hex(8)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type != TokenType.IN or nxt is None or nxt.token_type != TokenType.LIST:
            out.append(tok)
            i += 1
            continue
        name = tokens[i + 2] if i + 2 < len(tokens) else None
        if name is None or name.token_type != TokenType.VAR or not _PARAM_NAME.fullmatch(name.text):
            shown = f"'{name.text}'" if name is not None else "nothing"
            raise _fail(where, f"IN LIST must be followed by a list name, not {shown}",
                        "list names are plain names (letters, digits, _), e.g. device_id IN LIST blocked_devices")
        marker = f"__list_{nonce}_{len(marks)}"
        marks[marker] = name.text
        out += [tok, Token(TokenType.L_PAREN, "(", nxt.line, nxt.col, nxt.start, nxt.end),
                Token(TokenType.VAR, marker, name.line, name.col, name.start, name.end),
                Token(TokenType.R_PAREN, ")", name.line, name.col, name.end, name.end)]
        i += 3
    return out, marks


def _check_list_places(tree: exp.Expression, marks: dict[str, str], lists: ListRefs | None, where: str) -> None:
    """Each marker stands alone in the IN it came from, after a column; its list exists."""
    for col in tree.find_all(exp.Column):
        if col.name not in marks:
            continue
        parent = col.parent
        name = marks[col.name]
        if not (isinstance(parent, exp.In) and col.arg_key == "expressions" and parent.expressions == [col]
                and not parent.args.get("query") and not parent.args.get("field")):
            raise _fail(where, f"'IN LIST {name}' is not allowed here", "write column IN LIST name")
        if not isinstance(parent.this, exp.Column):
            raise _fail(where, f"IN LIST {name} needs a column on its left, not '{_snippet(parent.this)}'",
                        "write e.g. device_id IN LIST blocked_devices")
        if lists is None:
            raise _fail(where, "IN LIST is not available here", "lists are read by strategy rules and populations")
        known = lists.names()
        if name not in known:
            raise _fail(where, *unknown_list(name, known))


def _render_lists(tree: exp.Expression, marks: dict[str, str], lists: ListRefs | None,
                  where: str) -> exp.Expression:
    """After the check: each ``column IN (marker)`` becomes the list's semi-join (`lists.render`)."""
    if not marks:
        return tree
    for node in [n for n in tree.find_all(exp.In) if n.expressions and n.expressions[0].name in marks]:
        rendered = lists.render(marks[node.expressions[0].name], node.this, where)
        if node is tree:
            return rendered
        node.replace(rendered)
    return tree


def _dollar_names(tokens: list[Token]) -> set[str]:
    """Names written as ``$name``: a PARAMETER token followed by a word."""
    pairs = zip(tokens, tokens[1:])
    return {b.text for a, b in pairs if a.token_type == TokenType.PARAMETER and _PARAM_NAME.fullmatch(b.text)}


# --- params -----------------------------------------------------------------------------


def _substitute(tree: exp.Expression, params: dict[str, Any], dollar: set[str], where: str,
                text_size: int = 0) -> exp.Expression:
    """Replace every ``$name`` placeholder by the literal value of its param (size checked first)."""
    holders = list(tree.find_all(exp.Placeholder))
    names = [_param_name(holder, params, dollar, where) for holder in holders]
    _check_expanded_size(text_size, [params[n] for n in names], where)
    for holder, name in zip(holders, names):
        value, parent = params[name], holder.parent
        if isinstance(parent, exp.In) and (holder.arg_key == "field" or isinstance(value, (list, tuple))):
            _expand_in(parent, holder, value, name, where)
        elif isinstance(value, (list, tuple)):
            raise _fail(where, f"param '${name}' is a list", f"use it as: column IN ${name}")
        elif holder is tree:
            tree = _literal(value, name, where)
        else:
            holder.replace(_literal(value, name, where))
    return tree


def _check_expanded_size(text_size: int, values: list[Any], where: str) -> None:
    """Refuse before building it an expression whose substituted params would make it too large to run.

    The text is bounded, but one long text param referenced thousands of times is not: count the
    characters each reference adds (an upper bound of its rendering) before any literal is made.
    """
    for value in values:
        if isinstance(value, (list, tuple)) and len(value) > MAX_LIST_PARAM:
            raise _fail(where, f"a list param holds {len(value):,} values (at most {MAX_LIST_PARAM:,})",
                        "put long lists in lists/NAME.csv")
    size = text_size + sum(rendered_size(v) for v in values)
    if size > MAX_EXPANDED_LENGTH:
        raise _fail(where, f"expression would be {size:,} characters once its params are substituted "
                    f"(at most {MAX_EXPANDED_LENGTH:,})", "refer to long text or list params fewer times")


def _param_name(holder: exp.Placeholder, params: dict[str, Any], dollar: set[str], where: str) -> str:
    """Validate a placeholder and return its param name."""
    name = holder.name
    if holder.this is None or name == "?":
        raise _fail(where, "'?' placeholders are not allowed", "use a named param like $burst")
    if name.isdigit():
        raise _fail(where, f"positional param '${name}' is not allowed", "use a named param like $burst")
    if name not in dollar:
        raise _fail(where, f"param ':{name}' is not allowed", f"write it as ${name}")
    if name not in params:
        defined = ", ".join(sorted(params)) or "none"
        raise _fail(where, f"undefined param '${name}'", f"defined params: {defined}")
    return name


def _expand_in(node: exp.In, holder: exp.Placeholder, value: Any, name: str, where: str) -> None:
    """Splice a list param into an IN list: ``x IN $ids`` -> ``x IN (1, 2)``."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise _fail(where, f"param '${name}' is an empty list", "give it at least one value")
    if any(isinstance(item, (list, tuple)) for item in values):
        raise _fail(where, f"param '${name}' holds a nested list", "use a flat list of values")
    literals = [_literal(item, name, where) for item in values]
    items = list(node.expressions)
    if holder.arg_key == "field":
        items = literals
    else:
        pos = next(i for i, item in enumerate(items) if item is holder)
        items[pos : pos + 1] = literals
    node.set("field", None)
    node.set("expressions", items)


def _literal(value: Any, name: str, where: str) -> exp.Expression:
    """Turn a param value (data, never SQL) into a literal node."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(where, f"param '${name}' is {value}", "use a finite number")
        return exp.Literal.number(repr(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    kind = type(value).__name__
    raise _fail(where, f"param '${name}' has unsupported type {kind}", "use a number, text, bool, date or list")


# --- the allow-list ---------------------------------------------------------------------


def _check_node(node: exp.Expression, columns: frozenset[str], where: str) -> None:
    """Refuse a node whose type, arguments, place or value is not on the allow-list."""
    allowed = _ALLOWED.get(type(node))
    if allowed is None:
        raise _fail(where, *_refusal(node))
    extra = sorted(k for k, v in node.args.items() if v not in (None, False, []) and k not in allowed)
    if extra:
        raise _fail(where, *_syntax_refusal(node, extra))
    places = _ONLY_UNDER.get(type(node))
    if places and not any(isinstance(node.parent, kind) and node.arg_key == key for kind, key in places):
        raise _fail(where, f"'{_snippet(node)}' is not allowed here", _SYNTAX_HINT)
    check = _NODE_CHECKS.get(type(node))
    if check is not None:
        check(node, columns, where)


def _refusal(node: exp.Expression) -> tuple[str, str]:
    """Problem and fix for a node type that is not on the allow-list."""
    for types, problem, fix in _REFUSALS:
        if isinstance(node, types):
            return problem, fix
    name = _function_name(node) if isinstance(node, exp.Func) else None
    if isinstance(node, exp.AggFunc):
        name = name or type(node).__name__.lower()
        return f"aggregate function '{name}' is not allowed", "expressions are row-level; use a feature"
    if name:
        close = difflib.get_close_matches(name.lower(), ALLOWED_FUNCTIONS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"function '{name}' is not allowed", f"{hint}allowed: {', '.join(ALLOWED_FUNCTIONS)}"
    return f"'{_snippet(node)}' is not allowed", _SYNTAX_HINT


def _syntax_refusal(node: exp.Expression, extra: list[str]) -> tuple[str, str]:
    """Problem and fix for an allowed node type carrying an argument that is not."""
    if isinstance(node, exp.Column) and {"table", "db", "catalog"} & set(extra):
        return f"qualified column '{_snippet(node)}' is not allowed", f"write just '{node.name}'"
    if isinstance(node, exp.In) and "query" in extra:
        return "subqueries are not allowed", "write a list of values: x IN (1, 2)"
    return f"'{_snippet(node)}' uses unsupported syntax ({', '.join(extra)})", _SYNTAX_HINT


def _function_name(node: exp.Expression) -> str | None:
    """The function name as DuckDB spells it (sqlglot's class names differ)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\(", _snippet(node))
    return match.group(1).lower() if match else None


def _check_column(node: exp.Column, columns: frozenset[str], where: str) -> None:
    """Accept only a bare, known column name, and quote it for rendering."""
    ident = node.this
    if not isinstance(ident, exp.Identifier):
        raise _fail(where, *_refusal(ident))
    if ident.name not in columns:
        hint = _column_hint(ident.name, columns)
        text = exp.Literal.string(ident.name).sql("duckdb")
        if hint.startswith("did you mean"):
            pass
        elif ident.args.get("quoted"):  # `country = "NG"`: double quotes name a column
            hint = f"double quotes name a column; a text goes in single quotes: {text}; {hint}"
        else:  # `country = NG`: a value written bare
            hint = f"{hint}; a text value goes in single quotes: {text}"
        raise _fail(where, f"unknown column '{ident.name}'", hint)
    ident.set("quoted", True)


def _column_hint(name: str, columns: frozenset[str]) -> str:
    """A did-you-mean (case-insensitive) plus a note on non-ASCII look-alikes. The core's own columns (an entity
    frame's `__amount`, `__w`, ...) are never offered: no expression may name them."""
    columns = frozenset(c for c in columns if not is_internal(c))
    close = closest(name, columns)
    odd = [f"U+{ord(ch):04X}" for ch in name if ord(ch) > 127]
    note = f" it contains non-ASCII {', '.join(odd[:3])}" if odd else ""
    if close:
        return f"did you mean '{close}'?{note}"
    known = ", ".join(sorted(columns)[:20]) + (", ..." if len(columns) > 20 else "")
    return f"known columns: {known or 'none'}" + (f";{note}" if note else "")


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# refusals an unquoted column name with a space or symbol causes: `Ship Country = 'NG'` does not parse,
# `Amount (EUR) > 3` reads as a call of a function Amount, `Order-ID = 1` as the column Order minus ID
_QUOTE_CAUSED = re.compile(r"(cannot parse expression: .*|unknown column '[^']*'|function '[^']*' is not allowed)"
                           r"(?: \(.*\))?")


def _with_quote_hint(err: ExpressionError, text: str, columns: frozenset[str], where: str) -> ExpressionError:
    """`err`, or when a known column whose name needs double quotes is written bare in `text` and the refusal is
    one that causes, the same problem with the fix: write the column in double quotes."""
    prefix = _show(f"{where}: ")
    found = _QUOTE_CAUSED.fullmatch(str(err)[len(prefix):]) if str(err).startswith(prefix) else None
    column = _unquoted_column(text, columns) if found else None
    if column is None:
        return err
    quoted = exp.column(column, quoted=True).sql("duckdb")
    return _fail(where, found.group(1), f"write the column as {quoted}: a column name with spaces or symbols goes "
                 "in double quotes; single quotes make a text")


def _unquoted_column(text: str, columns: frozenset[str]) -> str | None:
    """The longest known column whose name is not a plain identifier (a space, a symbol, a leading digit) written
    bare in `text`, in any letter case, outside quotes; None when there is none."""
    needy = sorted((c for c in columns if not _PLAIN_NAME.fullmatch(c)), key=lambda c: (-len(c), c))
    if not needy:
        return None
    bare = _QUOTED.sub(lambda m: " " * len(m.group()), text)
    for column in needy:
        if re.search(rf"(?<![\w\"]){re.escape(column)}(?![\w\"])", bare, re.IGNORECASE):
            return column
    return None


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)


def _check_comparison(node: exp.Expression, columns: frozenset[str], where: str) -> None:
    """Refuse comparing two constants when one is a column's name in single quotes (`'Ship Country' = 'NG'`):
    it is text, so the rule would be always true or always false."""
    sides = (node.this, node.expression)
    if not all(isinstance(side, exp.Literal) for side in sides):
        return
    folded = {c.casefold(): c for c in columns}
    for side in sides:
        column = folded.get(str(side.this).casefold()) if side.is_string else None
        if column is not None:
            quoted = exp.column(column, quoted=True).sql("duckdb")
            raise _fail(where, f"'{_snippet(node)}' compares two constants: '{side.this}' in single quotes is text, "
                        "not the column", f"write the column in double quotes: {quoted}")


def _check_like(node: exp.Like | exp.ILike, columns: frozenset[str], where: str) -> None:
    """LIKE patterns are string literals without backslashes (Spark's default escape)."""
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise _fail(where, "a LIKE pattern must be a string literal", "e.g. email LIKE '%@example.com'")
    if "\\" in pattern.this:
        raise _fail(where, "a backslash in a LIKE pattern is not allowed", "DuckDB and Spark differ")


def _check_in(node: exp.In, columns: frozenset[str], where: str) -> None:
    """IN needs a non-empty list."""
    if not node.expressions:
        raise _fail(where, "IN needs a list of values", "write e.g. merchant_id IN (101, 102)")


def _check_cast(node: exp.Cast, columns: frozenset[str], where: str) -> None:
    """Casts go to a few plain types; to an integer only from a value whose type the text shows.

    DuckDB rounds a double half to even (a decimal half away from zero), Spark truncates: the Spark
    rendering rounds as DuckDB does, which needs the value's type (dialects.value_kind).
    """
    to = node.args["to"]
    if not isinstance(to, exp.DataType) or to.this not in _CAST_TYPES or to.expressions:
        allowed = ", ".join(sorted(set(_CAST_TYPES.values())))
        raise _fail(where, f"CAST to '{_snippet(to)}' is not allowed", f"allowed types: {allowed}")
    if to.this in (_DT.INT, _DT.BIGINT) and dialects.value_kind(node.this) is None:
        fix = "its type is unknown and DuckDB rounds where Spark truncates: cast round(x), floor(x) or ceil(x)"
        raise _fail(where, f"CAST of '{_snippet(node.this)}' to an integer is not allowed", fix)


_DURATION_FIX = "for the seconds between two times write epoch(b) - epoch(a) or date_diff('second', a, b)"


def _check_interval(node: exp.Interval, columns: frozenset[str], where: str) -> None:
    """Intervals are a whole number of seconds, minutes, hours or days, added to or subtracted from a time."""
    value, unit = node.this, node.args.get("unit")
    unit_name = unit.name.upper() if isinstance(unit, exp.Var) else ""
    if not (isinstance(value, exp.Literal) and str(value.this).isdigit()) or unit_name not in _INTERVAL_UNITS:
        hint = "write e.g. INTERVAL 2 HOUR (SECOND, MINUTE, HOUR, DAY)"
        raise _fail(where, f"interval '{_snippet(node)}' is not allowed", hint)
    unit.set("this", _INTERVAL_UNITS[unit_name])
    parent = node.parent
    if isinstance(parent, exp.Div):
        raise _fail(where, f"dividing by an interval ('{_snippet(parent)}') is not allowed", _DURATION_FIX)
    other = parent.expression if isinstance(parent, exp.Add) and node.arg_key == "this" else getattr(parent, "this", None)
    time_side = isinstance(parent, exp.Add) or (isinstance(parent, exp.Sub) and node.arg_key == "expression")
    if not time_side or isinstance(other, exp.Interval):
        fix = f"write e.g. t - INTERVAL 5 MINUTE; {_DURATION_FIX}"
        raise _fail(where, f"interval '{_snippet(node)}' may only be added to or subtracted from a time", fix)


def _check_function(node: exp.Expression, columns: frozenset[str], where: str) -> None:
    """Functions whose arguments must stay where DuckDB and Spark agree (dialects.py)."""
    try:
        if isinstance(node, exp.DateDiff):
            node.set("unit", exp.Var(this=dialects.date_diff_unit(node)))
        elif isinstance(node, exp.RegexpLike):
            dialects.check_regex(node)
        else:
            dialects.check_split_part(node)
    except dialects.Unsupported as err:
        raise _fail(where, *err.args) from None


def _check_substring(node: exp.Substring, columns: frozenset[str], where: str) -> None:
    """A start of 0 means different things in DuckDB and Spark: require a literal >= 1."""
    start = node.args.get("start")
    literal = isinstance(start, exp.Literal) and not start.is_string and start.this.isdigit()
    if not (literal and int(start.this) >= 1):
        raise _fail(where, "substring start must be a positive integer literal", "0 differs on Spark")


# a text that is a clock time with a UTC offset or a zone name after it ('2026-10-25 02:30:00+02:00', '… Europe/Berlin')
_ZONED_TIME = re.compile(rf"\s*{ISO_CLOCK}(\s*(Z|[+-]\d{{2}}(:?\d{{2}})?)"
                         r"|\s+([A-Z]{3,5}|[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)+))\s*")


def _check_literal(node: exp.Literal, columns: frozenset[str], where: str) -> None:
    """Refuse a text time with a non-zero offset or a zone name: compared with a time (or cast to one) DuckDB reads
    its clock time and drops the offset ('2026-10-25 02:30:00+02:00' as 02:30 UTC, two hours late), where every
    other time riskconsole reads is converted to UTC. The fix names the UTC time."""
    if not node.is_string or not _ZONED_TIME.fullmatch(node.this):
        return
    from riskconsole.backtest import parse_moment  # the flags' reading of the same text (their errors if it fails)
    from riskconsole.errors import RiskConsoleError

    text = node.this.strip()
    try:
        utc = parse_moment(text, what="time")
    except RiskConsoleError as err:
        zone = str(err).split("unknown time zone ", 1)[-1].split(" ", 1)[0]
        raise _fail(where, f"'{_show(text)}' is a time with an unknown time zone {zone}",
                    "write the UTC time, or an IANA zone name such as Europe/Berlin") from None
    clock = dt.datetime.fromisoformat(re.split(r"\s*(?:Z|[+-]\d{2}:?\d{2}|[+-]\d{2}|\s[A-Za-z].*)$", text)[0])
    if utc != clock:
        raise _fail(where, f"'{_show(text)}' is a time with a UTC offset or zone, which a comparison reads as its "
                    f"clock time {clock:%Y-%m-%d %H:%M:%S}, dropping the offset",
                    f"write the UTC time: '{utc:%Y-%m-%d %H:%M:%S}'")


_NODE_CHECKS: dict[type[exp.Expression], Callable[[Any, frozenset[str], str], None]] = {
    exp.Column: _check_column,
    exp.Literal: _check_literal,
    **dict.fromkeys(_COMPARISONS, _check_comparison),
    exp.Like: _check_like,
    exp.ILike: _check_like,
    exp.In: _check_in,
    exp.Cast: _check_cast,
    exp.TryCast: _check_cast,
    exp.Interval: _check_interval,
    exp.Substring: _check_substring,
    exp.DateDiff: _check_function,
    exp.RegexpLike: _check_function,
    exp.SplitPart: _check_function,
}


# --- messages ---------------------------------------------------------------------------


def _fail(where: str, problem: str, fix: str | None = None) -> ExpressionError:
    """Build the one-line error ``where: problem (fix)``; user text is made printable."""
    return ExpressionError(_show(f"{where}: {problem}" + (f" ({fix})" if fix else "")))


def _show(text: str) -> str:
    """Escape newlines and other unprintable characters so a message stays on one line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _snippet(node: Any, limit: int = 60) -> str:
    """A short one-line rendering of a node for messages."""
    try:
        text = _show(node.sql(dialect="duckdb", comments=False))
    except Exception:  # noqa: BLE001 - only used in a message
        text = type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(err: BaseException) -> str:
    """The first line of an error message, without terminal colour codes."""
    lines = _ANSI.sub("", str(err)).strip().splitlines()
    return lines[0] if lines else type(err).__name__
