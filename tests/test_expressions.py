"""Tests for the allow-list checker of untrusted SQL expressions."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import duckdb
import pytest

from riskconsole.errors import ExpressionError, closest
from riskconsole.expressions import (
    ALLOWED_FUNCTIONS,
    parse_expression,
    referenced_columns,
    referenced_params,
    to_sql,
)

WHERE = "strategies/candidate.yaml: rule 'velocity_burst'"
EVENT_COLUMNS = ("event_id", "ts", "amount", "user_id", "merchant_id", "channel", "user_orders_1h")
COLUMNS = (
    *EVENT_COLUMNS,
    "coupon_amount", "user_amount_30d", "lgbm_orders", "email", "order", "select", "from",
)
_EVENTS_SQL = """
CREATE TABLE events AS SELECT * FROM (VALUES
    ('e1', TIMESTAMP '2026-01-01 00:10:00', 250.0, 'u1', 101, 'live', 6),
    ('e2', TIMESTAMP '2026-01-01 03:00:00', 20.0, 'u2', 102, 'app', 1),
    ('e3', TIMESTAMP '2026-01-02 14:00:00', 999.5, 'u1', 103, 'web', 0),
    ('e4', TIMESTAMP '2026-01-03 23:59:59', 0.0, 'u3', 101, NULL, NULL)
) AS t(event_id, ts, amount, user_id, merchant_id, channel, user_orders_1h)
"""
# Every column of COLUMNS, typed, for running rendered SQL.
_WIDE_SQL = """
CREATE TABLE events AS SELECT * FROM (VALUES
    ('e1', TIMESTAMP '2026-01-01 00:10:00', 250.0, 'u1', 101, 'live', 6, 5.0, 100.0, 0.95, 'a@example.com', 1, 'x', NULL),
    ('e2', TIMESTAMP '2026-01-02 03:00:00', 20.0, 'u2', 102, 'app', 1, 0.0, NULL, 0.1, 'abc', 2, 'y', 'z')
) AS t(event_id, ts, amount, user_id, merchant_id, channel, user_orders_1h, coupon_amount, user_amount_30d,
       lgbm_orders, email, "order", "select", "from")
"""
PARAMS = {
    "burst": 5,
    "model_block": 0.92,
    "trusted": [101, 102],
    "channels": ["live", "app"],
    "name": "O'Brien",
    "flag": True,
    "nothing": None,
    "neg": -5,
    "since": dt.date(2026, 1, 1),
    "at": dt.datetime(2026, 1, 1, 12, 30),
}


def _sql(text: str, dialect: str = "duckdb") -> str:
    return to_sql(parse_expression(text, columns=COLUMNS, params=PARAMS, where=WHERE), dialect)


def _refusal(text: str, params: dict | None = None) -> str:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, columns=COLUMNS, params=PARAMS if params is None else params, where=WHERE)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(WHERE + ": ")
    return message


# --- accepted expressions -------------------------------------------------------

ACCEPTED = [
    ("user_orders_1h >= $burst AND amount > 200", '"user_orders_1h" >= 5 AND "amount" > 200'),
    ("merchant_id IN (101, 102)", '"merchant_id" IN (101, 102)'),
    ("merchant_id IN $trusted", '"merchant_id" IN (101, 102)'),
    ("merchant_id IN ($trusted, 7)", '"merchant_id" IN (101, 102, 7)'),
    ("merchant_id NOT IN $trusted", 'NOT "merchant_id" IN (101, 102)'),
    ("merchant_id IN $burst", '"merchant_id" IN (5)'),
    ("channel IN $channels", "\"channel\" IN ('live', 'app')"),
    ("lgbm_orders >= $model_block", '"lgbm_orders" >= 0.92'),
    (
        "coalesce(coupon_amount, 0) / nullif(amount, 0) > 0.5",
        'COALESCE("coupon_amount", 0) / NULLIF("amount", 0) > 0.5',
    ),
    ("channel = 'live' AND hour(ts) BETWEEN 0 AND 5", "\"channel\" = 'live' AND HOUR(\"ts\") BETWEEN 0 AND 5"),
    ("amount / nullif(user_amount_30d, 0)", '"amount" / NULLIF("user_amount_30d", 0)'),
    ("\"order\" > 1 AND \"select\" = 'x' AND \"from\" IS NULL", "\"order\" > 1 AND \"select\" = 'x' AND \"from\" IS NULL"),
    ("order > 1", '"order" > 1'),
    ("email = $name", "\"email\" = 'O''Brien'"),
    ("amount - $neg > 0", '"amount" - -5 > 0'),
    ("$flag AND amount IS NOT NULL", 'TRUE AND NOT "amount" IS NULL'),
    ("coalesce(amount, $nothing) > 0", 'COALESCE("amount", NULL) > 0'),
    ("ts >= $since", "\"ts\" >= CAST('2026-01-01' AS DATE)"),
    ("ts < $at", "\"ts\" < CAST('2026-01-01 12:30:00' AS TIMESTAMP)"),
    ("NOT (amount > 1 OR amount < -1)", 'NOT ("amount" > 1 OR "amount" < -1)'),
    ("amount <> 1 AND amount != 2 AND amount <= 3", '"amount" <> 1 AND "amount" <> 2 AND "amount" <= 3'),
    ("amount IS DISTINCT FROM 5", '"amount" IS DISTINCT FROM 5'),
    ("amount % 2 = 0 AND -amount * 2 + 1 < 0", '"amount" % 2 = 0 AND -"amount" * 2 + 1 < 0'),
    ("email ILIKE '%@example.com' OR email NOT LIKE 'a_%'", "\"email\" ILIKE '%@example.com' OR \"email\" NOT LIKE 'a_%'"),
    (
        "CASE WHEN amount > 100 THEN 'big' ELSE 'small' END = 'big'",
        "CASE WHEN \"amount\" > 100 THEN 'big' ELSE 'small' END = 'big'",
    ),
    ("CASE channel WHEN 'live' THEN 1 ELSE 0 END = 1", "CASE \"channel\" WHEN 'live' THEN 1 ELSE 0 END = 1"),
    ("CAST(amount AS DOUBLE) > 1", 'CAST("amount" AS DOUBLE) > 1'),
    ("CAST(floor(amount) AS INTEGER) > 1", 'CAST(FLOOR("amount") AS INT) > 1'),
    ("TRY_CAST(channel AS DOUBLE) > 1", 'TRY_CAST("channel" AS DOUBLE) > 1'),
    ("amount::VARCHAR LIKE '1%'", "CAST(\"amount\" AS TEXT) LIKE '1%'"),
    ("ts > DATE '2026-01-01'", "\"ts\" > CAST('2026-01-01' AS DATE)"),
    ("ts > TIMESTAMP '2026-01-01 00:00:00'", "\"ts\" > CAST('2026-01-01 00:00:00' AS TIMESTAMP)"),
    ("ts > ts - INTERVAL 2 HOUR", "\"ts\" > \"ts\" - INTERVAL '2' HOUR"),
    ("substring(email, 1, 3) = 'abc'", "SUBSTRING(\"email\", 1, 3) = 'abc'"),
    (
        "starts_with(email, 'a') OR ends_with(email, 'b') OR contains(email, 'c')",
        "STARTS_WITH(\"email\", 'a') OR ENDS_WITH(\"email\", 'b') OR CONTAINS(\"email\", 'c')",
    ),
    ("concat(email, channel) = 'x'", "CONCAT(\"email\", \"channel\") = 'x'"),
    ("least(amount, 5) > greatest(1, 2)", 'LEAST("amount", 5) > GREATEST(1, 2)'),
    ("ifnull(amount, 0) > pow(2, 3)", 'COALESCE("amount", 0) > POWER(2, 3)'),
    ("round(amount, 2) > ceil(amount) - floor(amount)", 'ROUND("amount", 2) > CEIL("amount") - FLOOR("amount")'),
    ("sqrt(abs(amount)) > ln(exp(1))", 'SQRT(ABS("amount")) > LN(EXP(1))'),
    ("lower(channel) = upper(channel) AND length(trim(channel)) > 0", 'LOWER("channel") = UPPER("channel") AND LENGTH(TRIM("channel")) > 0'),
    ("minute(ts) + day(ts) + month(ts) + year(ts) > 0", 'MINUTE("ts") + DAY("ts") + MONTH("ts") + YEAR("ts") > 0'),
    ("'a'' OR ''1''=''1' = channel", "'a'' OR ''1''=''1' = \"channel\""),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_expressions_render_quoted_duckdb(text: str, expected: str) -> None:
    assert _sql(text) == expected


@pytest.fixture(scope="module")
def wide() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(_WIDE_SQL)
    return con


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """Run rendered SQL as a filter if it is boolean, else as a value."""
    try:
        return con.execute(f"SELECT count(*) FROM events WHERE coalesce(({sql}), false)").fetchall()
    except duckdb.Error:
        return con.execute(f"SELECT ({sql}) FROM events").fetchall()


@pytest.mark.parametrize("text", [text for text, _ in ACCEPTED])
def test_accepted_expressions_run_on_duckdb(wide: duckdb.DuckDBPyConnection, text: str) -> None:
    _run(wide, _sql(text))


FUNCTION_EXAMPLES = {
    "abs": "abs(amount)", "ceil": "ceil(amount)", "coalesce": "coalesce(amount, 0)",
    "concat": "concat(email, 'x')", "contains": "contains(email, 'x')", "day": "day(ts)",
    "dayofmonth": "dayofmonth(ts)", "ends_with": "ends_with(email, 'x')", "exp": "exp(1)",
    "floor": "floor(amount)", "greatest": "greatest(amount, 1)", "hour": "hour(ts)",
    "if": "if(amount > 1, 1, 0)", "ifnull": "ifnull(amount, 0)", "least": "least(amount, 1)",
    "length": "length(email)", "ln": "ln(amount + 1)", "lower": "lower(email)", "minute": "minute(ts)",
    "month": "month(ts)", "nullif": "nullif(amount, 0)", "pow": "pow(amount, 2)", "power": "power(amount, 2)",
    "round": "round(amount, 1)", "sqrt": "sqrt(abs(amount))", "starts_with": "starts_with(email, 'a')",
    "substring": "substring(email, 2, 3)", "trim": "trim(email)", "upper": "upper(email)", "year": "year(ts)",
    "date_diff": "date_diff('second', ts, ts + INTERVAL 1 HOUR)", "datediff": "datediff('day', ts, ts)",
    "dayofweek": "dayofweek(ts)", "epoch": "epoch(ts)", "regexp_matches": "regexp_matches(email, '^[a-z]+@')",
    "split_part": "split_part(email, '@', -1)",
}


@pytest.mark.parametrize("name", ALLOWED_FUNCTIONS)
def test_every_allowed_function_runs_on_duckdb_and_transpiles(wide: duckdb.DuckDBPyConnection, name: str) -> None:
    assert set(FUNCTION_EXAMPLES) == set(ALLOWED_FUNCTIONS)
    _run(wide, _sql(FUNCTION_EXAMPLES[name]))
    assert _sql(FUNCTION_EXAMPLES[name], "spark")


@pytest.mark.parametrize("value", ["O'Brien", "x' OR '1'='1", "a\\b", "--", "/* x */", "; DROP TABLE events", "é\nü", "$burst"])
def test_string_params_are_data_not_sql(value: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE events (channel VARCHAR)")
    con.execute("INSERT INTO events VALUES (?), ('other')", [value])
    expr = parse_expression("channel = $v", columns=["channel"], params={"v": value}, where=WHERE)
    sql = to_sql(expr)
    assert con.execute(f"SELECT count(*) FROM events WHERE {sql}").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (2,)


@pytest.mark.parametrize("text, clock, utc", [
    ("2026-10-25 02:30:00+02:00", "2026-10-25 02:30:00", "2026-10-25 00:30:00"),        # CEST, as an offset
    ("2026-10-25T02:30:00-03:00", "2026-10-25 02:30:00", "2026-10-25 05:30:00"),        # São Paulo
    ("2026-10-25 02:30:00 Europe/Berlin", "2026-10-25 02:30:00", "2026-10-25 01:30:00"),  # repeated: 2nd, as loaded
    ("2026-03-01 12:00 America/Sao_Paulo", "2026-03-01 12:00:00", "2026-03-01 15:00:00"),
])
def test_a_text_time_with_an_offset_or_zone_is_refused_naming_the_utc_time(text, clock, utc):
    """DuckDB compares a TIMESTAMP with such a text by its clock time alone, the offset dropped (its cast gives
    `clock`), where every other time riskconsole reads is converted to UTC. Expected UTC: by the zone's offset that
    day, by hand."""
    assert duckdb.connect().execute(f"SELECT CAST('{text}' AS TIMESTAMP)").fetchone()[0] == \
        dt.datetime.fromisoformat(clock)
    with pytest.raises(ExpressionError) as err:
        parse_expression(f"ts >= '{text}'", columns=COLUMNS, where=WHERE)
    said = str(err.value)
    assert said.startswith(f"{WHERE}: '{text}' is a time with a UTC offset or zone, which a comparison reads as its "
                           f"clock time {clock}") and f"write the UTC time: '{utc}'" in said and "\n" not in said
    # the same text as a param is the same literal
    with pytest.raises(ExpressionError, match="write the UTC time"):
        parse_expression("ts >= CAST($at AS TIMESTAMP)", columns=COLUMNS, params={"at": text}, where=WHERE)


@pytest.mark.parametrize("text", ["2026-10-25 02:30:00Z", "2026-10-25 02:30:00+00:00", "2026-10-25 02:30:00 UTC",
                                  "2026-10-25 02:30:00", "2026-10-25 10:00 PM", "2026-10-25 10:00 done"])
def test_a_text_time_in_utc_or_plain_text_is_kept(text):
    assert f"'{text}'" in to_sql(parse_expression(f"ts >= '{text}'", columns=COLUMNS, where=WHERE))


def test_a_text_time_with_an_unknown_zone_is_refused():
    with pytest.raises(ExpressionError, match=r"'2026-10-25 02:30:00 Europe/Berlim' is a time with an unknown time "
                                              r"zone 'Europe/Berlim' \(write the UTC time, or an IANA zone name"):
        parse_expression("ts >= '2026-10-25 02:30:00 Europe/Berlim'", columns=COLUMNS, where=WHERE)


# --- refused expressions ---------------------------------------------------------

REFUSED = [
    ("user_ordrs_1h >= 5", "unknown column 'user_ordrs_1h' (did you mean 'user_orders_1h'?)"),
    ("Amount > 0", "unknown column 'Amount' (did you mean 'amount'?)"),
    ("user_orders_1h >= $brust", "undefined param '$brust' (defined params: at, burst, channels,"),
    ("amount > $x", "undefined param '$x'"),
    ("merchant_id = $trusted", "param '$trusted' is a list"),
    ("1=1; DROP TABLE events", "';' is not allowed"),
    ("amount > 0; DROP TABLE events", "';' is not allowed"),
    ("amount > 0;", "';' is not allowed"),
    ("DROP TABLE events", "statement 'DROP' is not allowed"),
    ("SELECT 1", "statement 'SELECT' is not allowed"),
    ("FROM events", "statement 'FROM' is not allowed"),
    ("(SELECT count(*) FROM events) > 0", "subqueries are not allowed"),
    ("EXISTS (SELECT 1)", "subqueries are not allowed"),
    ("amount IN (SELECT amount FROM events)", "subqueries are not allowed"),
    ("read_csv('/etc/passwd') IS NOT NULL", "function 'read_csv' is not allowed (allowed: abs, "),
    ("getenv('HOME') = 'x'", "function 'getenv' is not allowed"),
    ("current_setting('threads') > 0", "function 'current_setting' is not allowed"),
    ("glob('/*') IS NULL", "function 'glob' is not allowed"),
    ("query('SELECT 1') IS NULL", "function 'query' is not allowed"),
    ("abss(amount) > 0", "function 'abss' is not allowed (did you mean 'abs'?"),
    ("amount > 0 -- OR 1=1", "comments ('--', '/* */') are not allowed"),
    ("amount > 0 /* */ OR 1=1", "comments ('--', '/* */') are not allowed"),
    ("-- amount > 0", "expression is only a comment"),
    ('"amount"" OR 1=1 --" > 0', "unknown column 'amount\" OR 1=1 --'"),
    ("\u0430mount > 0", "unknown column '\u0430mount' (did you mean 'amount'? it contains non-ASCII U+0430)"),
    ("events.amount > 0", "qualified column 'events.amount' is not allowed (write just 'amount')"),
    ("main.events.amount > 0", "qualified column 'main.events.amount' is not allowed"),
    ("sum(amount) > 0", "aggregate function 'sum' is not allowed"),
    ("count(*) OVER () > 0", "window functions (OVER) are not allowed"),
    ("x -> x + 1", "is not allowed"),
    ("list_transform([1], lambda x: x) IS NULL", "function 'list_transform' is not allowed"),
    ("COPY events TO '/tmp/x'", "statement 'COPY' is not allowed"),
    ("ATTACH '/tmp/x.db'", "statement 'ATTACH' is not allowed"),
    ("INSTALL httpfs", "statement 'INSTALL' is not allowed"),
    ("LOAD httpfs", "statement 'LOAD' is not allowed"),
    ("PRAGMA version", "statement 'PRAGMA' is not allowed"),
    ("SET threads=1", "statement 'SET' is not allowed"),
    ("CALL pragma_version()", "statement 'CALL' is not allowed"),
    ("EXPORT DATABASE '/tmp/x'", "cannot parse expression"),
    ("CREATE MACRO m(x) AS x", "statement 'CREATE' is not allowed"),
    ("$1 > 0", "positional param '$1' is not allowed"),
    ("? > 0", "'?' placeholders are not allowed"),
    (":burst > 0", "param ':burst' is not allowed (write it as $burst)"),
    ("", "expression is empty"),
    ("   \n\t", "expression is empty"),
    ("amount > 200 AS x", "is not allowed"),
    ("amount > 0x10", "is not allowed"),
    ("channel = $$x$$", "is not allowed"),
    ("COLUMNS('.*') IS NOT NULL", "function 'columns' is not allowed"),
    ("amount = ANY([1])", "is not allowed"),
    ("isodow(ts) = 1", "function 'isodow' is not allowed"),
    ("date_diff('week', ts, ts) > 0", "date_diff unit 'week' is not allowed"),
    ("(ts - ts) / INTERVAL 1 SECOND > 0", "dividing by an interval"),
    ("hash(amount) > 0", "function 'hash' is not allowed"),
    ("amount // 2 > 0", "'amount // 2' is not allowed"),
    ("CAST(amount AS INTEGER) > 1", "CAST of 'amount' to an integer is not allowed"),
    ("regexp_matches(email, '(a)\\1')", "in a regular expression is not allowed"),
    ("split_part(email, '', 1) = 'a'", "split_part needs a non-empty text delimiter"),
    ("CAST(amount AS DECIMAL(10, 2)) > 1", "CAST to 'DECIMAL(10, 2)' is not allowed"),
    ("email LIKE channel", "a LIKE pattern must be a string literal"),
    ("email LIKE 'a\\%'", "a backslash in a LIKE pattern is not allowed"),
    ("substring(email, 0, 2) = 'a'", "substring start must be a positive integer literal"),
    ("ts > ts - INTERVAL '1 day 2 hours'", "interval"),
    ("current_date > ts", "'CURRENT_DATE' is not allowed"),
    ("amount > 200 ＞ 1", "cannot parse expression"),
    ("'unterminated", "cannot parse expression"),
    ("(" * 200 + "amount" + ")" * 200 + " > 1", "nested too deeply"),
    ("amount > 1 OR " * 800 + "amount > 1", "expression is too long"),
]


@pytest.mark.parametrize("limit", [1_000, 10_000], ids=["default", "raised"])
@pytest.mark.parametrize("nest", [lambda d: "(" * d + "amount" + ")" * d + " > 1",
                                  lambda d: "abs(" * d + "amount" + ")" * d + " > 1",
                                  lambda d: "NOT " * d + "amount > 1", lambda d: "- " * d + "amount > 1",
                                  lambda d: "CASE WHEN amount > 1 THEN " * d + "1" + " END" * d + " = 1",
                                  lambda d: "amount + " * 10 + "(" * d + "amount" + ")" * d + " > 1",
                                  lambda d: "coalesce(" * d + "amount" + ", 1)" * d + " > 1"],
                         ids=["brackets", "calls", "not", "minus", "case", "after-terms", "calls-with-args"])
def test_nesting_is_refused_the_same_whatever_the_recursion_limit(nest, limit):
    """24 levels pass and 25 do not, whatever the process's recursion limit: quickscorer raises it to 10,000 for deep
    trees, and the parser's RecursionError alone had let a console that had loaded a model accept what the CLI
    refused (found when test order put a detector test first)."""
    import sys

    from riskconsole.limits import MAX_NESTING

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        to_sql(parse_expression(nest(MAX_NESTING), columns=COLUMNS, where=WHERE))
        assert _refusal(nest(MAX_NESTING + 1)) == (f"{WHERE}: expression is nested too deeply (at most {MAX_NESTING} "
                                                  "levels of brackets, calls, CASE, and NOT or '-' in a row)")
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("op", [" OR ", " AND "])
def test_a_long_chain_of_and_or_of_or_is_one_level(op):
    """700 conditions joined by AND (or OR: a list of merchants written out) pass the depth check and every later
    step at the default recursion limit: rendering for DuckDB and Spark, walking, copying, and the terms the Tune
    page and `sweep` split a rule into (`sqlbuild.conjuncts`, walked without recursion)."""
    import sys

    from sqlglot import exp

    from riskconsole.sqlbuild import conjuncts

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000)  # Python's default (a test that loaded a model raised it)
    try:
        tree = parse_expression(op.join(["amount<>1"] * 700), columns=COLUMNS, where=WHERE)
        assert to_sql(tree) and to_sql(tree, "spark") and tree.copy() and len(list(tree.find_all(exp.Column))) == 700
        assert len(conjuncts(tree)) == (700 if op == " AND " else 1)
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("limit", [1_000, 10_000], ids=["default", "raised"])
@pytest.mark.parametrize("text", ["end + " * 40 + "(" * 60 + "amount" + ")" * 60 + " > 1",
                                  "CASE WHEN end > 1 THEN " * 40 + "1" + " END" * 40 + " = 1",
                                  "amount" + " IS NOT NULL" * 200, "amount" + " ^ 2" * 200 + " > 1",
                                  "CAST(" + " + ".join(["amount"] * 1_000) + " AS BIGINT) > 1"],
                         ids=["end-as-a-column", "case-with-end-columns", "is-not-null-repeated", "powers", "sum"])
def test_what_the_token_count_misses_the_tree_depth_refuses_alike(text, limit):
    """A column named `end` closes no CASE, and what the parser builds in a loop (`^`, `IS NOT NULL` repeated) is
    refused by the parsed tree's depth: the same refusal at either recursion limit, never a RecursionError later."""
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        with pytest.raises(ExpressionError, match="nested too deeply"):
            parse_expression(text, columns=[*COLUMNS, "end"], where=WHERE)
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize(("text", "fragment"), REFUSED)
def test_refused_expressions_explain_in_one_line(text: str, fragment: str) -> None:
    assert fragment in _refusal(text)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [([], "is an empty list"), ([[1]], "holds a nested list"), (float("nan"), "use a finite number"), ({"a": 1}, "unsupported type dict")],
)
def test_bad_param_values_are_refused(value: object, fragment: str) -> None:
    assert fragment in _refusal("merchant_id IN $v", params={"v": value})


def test_unknown_column_without_close_match_lists_known_ones() -> None:
    assert "unknown column 'zzz' (known columns: amount, channel" in _refusal("zzz > 1")


@pytest.mark.parametrize(("text", "problem", "fix"), [
    # sqlglot said "Required keyword: 'expression' missing for <class 'sqlglot.expressions.core.Mod'>"
    ("amount > 50%", "'%' is missing a value at 'amount > 50%' (character 12)", "write a percentage as a fraction"),
    ("amount > 100 AND", "'AND' is missing a value at 'amount > 100 AND' (character 16)", "complete the condition"),
    ("NOT", "'NOT' is missing a value at 'NOT' (character 3)", "complete the condition"),
    ("(amount > 100", "a '(' is not closed at '(amount > 100' (character 13)", "add the ')'"),
    ("amount > 100)", "unexpected ')' at 'amount > 100)' (character 13)", "remove the ')' or add its '('"),
    ("amount => 100", "unexpected '=>' at 'amount =>' (character 9)", "did you mean >=?"),
    ("amount > 1.000,50", "unexpected ',' at 'amount > 1.000,' (character 15)", "no thousands separator: 1000.50"),
    ("amount > 200 ＞ 1", "unexpected '1'", "'＞' (U+FF1E) is not an ASCII operator"),
    ("channel = 'web", "a text in single quotes is not closed", "end it with '"),
])
def test_a_syntax_error_says_what_is_wrong_where_not_sqlglots_class_names(text: str, problem: str, fix: str) -> None:
    message = _refusal(text)
    assert f"{WHERE}: cannot parse expression: {problem}" in message and fix in message
    assert "sqlglot" not in message and "Required keyword" not in message


@pytest.mark.parametrize(("text", "hint"), [
    ('channel = "web"', "(double quotes name a column; a text goes in single quotes: 'web'; known columns: "),
    ("channel = web", "; a text value goes in single quotes: 'web')"),
])
def test_a_text_written_as_a_column_says_to_use_single_quotes(text: str, hint: str) -> None:
    assert hint in _refusal(text)


@pytest.mark.parametrize(("name", "known", "expected"), [
    ("device", ["Device", "device_users_7d"], "Device"),
    ("id", ["ID", "ip"], "ID"),
    ("AMOUNT", ["amount", "amount_x"], "amount"),
    ("amont", ["amount", "ID"], "amount"),
    ("zzz", ["amount"], None),
])
def test_did_you_mean_catches_a_difference_only_in_letter_case(name, known, expected) -> None:
    assert closest(name, known) == expected


def test_an_unknown_column_differing_only_in_case_gets_a_did_you_mean() -> None:
    with pytest.raises(ExpressionError, match=r"unknown column 'id' \(did you mean 'ID'\?\)"):
        parse_expression("id = 1", columns=["ID", "ip", "amount"], where=WHERE)


SPACED = ("Ship Country", "Sales Channel", "Order ID", "Amount (EUR)", "amount", "Device")


@pytest.mark.parametrize(("text", "column"), [
    ("Ship Country = 'NG'", '"Ship Country"'),
    ("amount > 1 AND ship country = 'NG'", '"Ship Country"'),
    ("Order ID = 'x' OR \"Sales Channel\" = 'App'", '"Order ID"'),
    ("Amount (EUR) > 3", '"Amount (EUR)"'),
    ("Ship Country = 'NG", '"Ship Country"'),
])
def test_a_column_with_spaces_written_bare_is_told_to_be_double_quoted(text, column) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, columns=SPACED, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ": ") and "\n" not in message
    assert f"write the column as {column}: a column name with spaces or symbols goes in double quotes" in message


@pytest.mark.parametrize("text", ["'Ship Country' = 'NG'", "'NG' <> 'ship country'"])
def test_a_column_name_in_single_quotes_compared_with_a_constant_is_refused(text) -> None:
    with pytest.raises(ExpressionError, match=r"compares two constants: '[Ss]hip [Cc]ountry' in single quotes is text, "
                       r"not the column \(write the column in double quotes: \"Ship Country\"\)$"):
        parse_expression(text, columns=SPACED, where=WHERE)
    assert parse_expression("'a' = 'a'", columns=SPACED, where=WHERE) is not None


@pytest.mark.parametrize("text", ["amount > > 1 AND \"Ship Country\" = 'Order ID'", "amount >"])
def test_no_quote_hint_when_every_spaced_column_is_quoted_or_absent(text) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, columns=SPACED, where=WHERE)
    assert "write the column as" not in str(info.value)


def test_multiline_text_is_fine_and_errors_stay_on_one_line() -> None:
    assert _sql("amount > 1\n  AND channel = 'live'") == "\"amount\" > 1 AND \"channel\" = 'live'"
    assert "unknown column 'a\\nb'" in _refusal('"a\nb" > 1')


def test_referenced_columns_and_params() -> None:
    expr = parse_expression("amount > $burst AND merchant_id IN $trusted", columns=COLUMNS, params=PARAMS, where=WHERE)
    assert referenced_columns(expr) == {"amount", "merchant_id"}
    assert referenced_params("amount > $burst AND merchant_id IN $trusted AND channel = '$no'") == {"burst", "trusted"}
    assert referenced_params("$1 > 0") == set()
    assert referenced_params("'unterminated $x") == {"x"}


# --- transpiling -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user_orders_1h >= $burst AND amount > 200", "`user_orders_1h` >= 5 AND `amount` > 200"),
        ("starts_with(email, 'a')", "STARTSWITH(`email`, 'a')"),
        ("CAST(ts AS TIMESTAMP) > ts", "CAST(`ts` AS TIMESTAMP_NTZ) > `ts`"),
        ("email = $name", "`email` = 'O\\'Brien'"),
    ],
)
def test_accepted_expressions_transpile_to_spark(text: str, expected: str) -> None:
    assert _sql(text, "spark") == expected


def test_concat_writes_its_arguments_as_a_cast_to_text_does_on_spark() -> None:
    """concat's arguments take CAST(x AS VARCHAR)'s rendering (a DOUBLE written as DuckDB writes it: 12345678.5, not
    Spark's 1.23456785E7; other types cast as before, the type test folded by Spark), NULLs as empty text."""
    cast = _sql("CAST(email AS VARCHAR) = 'ax'", "spark").removesuffix(" = 'ax'")
    assert cast.startswith("CASE WHEN TYPEOF(`email`) <> 'double' THEN CAST(`email` AS STRING) ")
    assert _sql("concat(email, 'x') = 'ax'", "spark") == f"CONCAT(COALESCE({cast}, ''), 'x') = 'ax'"


def test_functions_without_an_exact_spark_rendering_are_not_allowed() -> None:
    assert "isodow" not in ALLOWED_FUNCTIONS and "hash" not in ALLOWED_FUNCTIONS
    assert "function 'isodow' is not allowed" in _refusal("isodow(ts) = 0")


@pytest.mark.parametrize("name", ALLOWED_FUNCTIONS)
def test_every_allowed_function_renders_for_spark_without_duckdb_only_names(name: str) -> None:
    sql = _sql(FUNCTION_EXAMPLES[name], "spark")
    assert not re.search(r"\b(EPOCH|DATE_DIFF|REGEXP_MATCHES|STARTS_WITH|ENDS_WITH)\s*\(", sql), sql


# --- the injection corpus ------------------------------------------------------------



def _sqli_dir() -> Path:
    env = os.environ.get("RISKCONSOLE_SQLI_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "sqli"


def _payloads(name: str) -> list[str]:
    path = _sqli_dir() / name
    if not path.is_file():
        pytest.skip(f"SQL injection corpus not found at {path} (set RISKCONSOLE_SQLI_DIR)")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _catalog(con: duckdb.DuckDBPyConnection) -> tuple:
    """Everything an injection could create or change, as comparable data."""
    queries = (
        "SELECT database_name, schema_name, table_name, estimated_size FROM duckdb_tables() ORDER BY ALL",
        "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
        "SELECT function_name FROM duckdb_functions() WHERE NOT internal ORDER BY ALL",
        "SELECT database_name FROM duckdb_databases() ORDER BY ALL",
        "SELECT sequence_name FROM duckdb_sequences() ORDER BY ALL",
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration')",
        "SELECT count(*), sum(hash(event_id, ts, amount, channel)) FROM events",
    )
    state = [con.execute(sql).fetchall() for sql in queries]
    for sql in ("SELECT name FROM duckdb_secrets()", "SELECT extension_name FROM duckdb_extensions() WHERE loaded"):
        try:
            state.append(con.execute(sql).fetchall())
        except duckdb.Error:  # listing these needs file access, which is off
            state.append(None)
    return tuple(state)


def _run_accepted(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run checked SQL; a plain DuckDB error (bad types, overflow) is fine."""
    try:
        con.execute(f"SELECT count(*) FROM events WHERE coalesce(({sql}), false)").fetchall()
    except duckdb.Error:
        try:
            con.execute(f"SELECT ({sql}) FROM events").fetchall()
        except duckdb.Error:
            pass


def _check_payload(con, text: str, baseline: tuple, cwd: Path) -> str | None:
    """Return why a payload broke the contract, or None if it was refused or harmless."""
    try:
        expr = parse_expression(text, columns=EVENT_COLUMNS, params={"burst": 5}, where=WHERE)
    except ExpressionError as err:
        message = str(err)
        ok = "\n" not in message and message.startswith(WHERE + ": ")
        return None if ok else f"bad message {message!r}"
    except Exception as err:  # noqa: BLE001 - a crash is exactly what this test looks for
        return f"crashed with {type(err).__name__}: {err}"
    if not referenced_columns(expr) <= set(EVENT_COLUMNS):
        return f"unknown columns {referenced_columns(expr)}"
    try:
        _run_accepted(con, to_sql(expr))
    except Exception as err:  # noqa: BLE001
        return f"not a plain duckdb error: {type(err).__name__}: {err}"
    try:
        to_sql(expr, "spark")
    except Exception as err:  # noqa: BLE001 - an accepted expression must render for Spark
        return f"accepted but not rendered for spark: {type(err).__name__}: {err}"
    if _catalog(con) != baseline or any(cwd.iterdir()):
        return "changed the database or created a file"
    return "accepted"


def _variants(payload: str) -> list[str]:
    return [payload, f"amount > 200 AND {payload}", f"amount > 200 {payload}", f"amount > 200 OR {payload}"]


@pytest.mark.parametrize("corpus", ["payloads.txt", "duckdb_specific.txt"])
def test_injection_corpus_is_refused_or_harmless(
    corpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads = _payloads(corpus)
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(config={"enable_external_access": False, "lock_configuration": True})
    con.execute(_EVENTS_SQL)
    baseline = _catalog(con)
    failures, accepted, total = [], 0, 0
    for payload in payloads:
        assert isinstance(referenced_params(payload), set)
        for text in _variants(payload):
            total += 1
            outcome = _check_payload(con, text, baseline, tmp_path)
            if outcome == "accepted":
                accepted += 1
            elif outcome is not None:
                failures.append(f"{text!r}: {outcome}")
    print(f"{corpus}: {total} expressions, {total - accepted} refused, {accepted} accepted and harmless")
    assert not failures, f"{len(failures)} failures, first ones:\n" + "\n".join(failures[:10])
