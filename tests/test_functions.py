"""Every allowed function gives the same answer on DuckDB and on Spark (DESIGN.md §3.1, §7).

A table of expressions is run over the same rows on DuckDB (checked, rendered for DuckDB) and on
PySpark local (rendered by riskconsole's Spark dialect over a temp view), and compared value by
value. One Spark session serves the whole test run.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import warnings

import duckdb
import pytest

from conftest import spark  # noqa: F401 - test_tables.py imports the run's Spark session from here
from riskconsole.errors import ExpressionError
from riskconsole.expressions import parse_expression, to_sql

WHERE = "data/dataset.yaml: feature 'f'"
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
COLUMNS = ("id", "t", "u", "d", "s", "x", "signup_time", "purchase_time")
T = dt.datetime
# (t, u): Sundays, Saturdays, midnights, a leap day, sub-second and pre-1970 times, NULLs.
TIMES = [
    (T(2024, 3, 3, 12, 34, 56, 789000), T(2024, 3, 2, 23, 59, 59, 999000)),
    (T(2024, 3, 2, 0, 0), T(2024, 2, 29, 23, 59, 59)),
    (T(2024, 2, 29, 5, 59, 59, 999999), T(2024, 3, 1, 0, 0)),
    (None, T(2024, 1, 1)),
    (T(1969, 12, 31, 23, 59, 59, 500000), T(1970, 1, 1, 0, 0, 0, 500000)),
    (T(2026, 1, 1), T(2025, 12, 31, 23, 59, 59, 999999)),
    (T(1969, 12, 31, 23, 59, 30), T(1970, 1, 1, 0, 0, 30)),
    (T(2023, 12, 31, 23, 0), T(2025, 1, 1, 1, 30)),
    (T(2024, 1, 10, 10, 0, 0, 900000), T(2024, 1, 10, 10, 0, 1, 100000)),
    (T(1950, 6, 15, 6, 0), None),
]
TEXTS = [
    "a,b,c", "", "Ünïcödé 👍🏽 café", None, "a.b|c*d+e?(f)[g]{h}^$\\", "user@example.com",
    "a\nb", "a\rb", "ab\n", "aaa", "x\x0by", "AbC-123 xyz", "İSTANBUL", "ΑΣ ΒΣ", "straße ﬁx", ",lead,,trail,",
]
NUMBERS = [2.5, -2.5, 0.5, None, -0.5, 3.5, 1e6 + 0.5, -1.4999, 7.0, 1234.5678]
ROWS = [
    (i, *TIMES[i % len(TIMES)], (TIMES[i % len(TIMES)][0] or T(2000, 1, 1)).date() if i % 7 else None,
     TEXTS[i % len(TEXTS)], NUMBERS[i % len(NUMBERS)], *TIMES[(i + 3) % len(TIMES)])
    for i in range(max(len(TIMES), len(TEXTS)))
]
_TYPES = "id INTEGER, t TIMESTAMP, u TIMESTAMP, d DATE, s VARCHAR, x DOUBLE, signup_time TIMESTAMP, purchase_time TIMESTAMP"
_SPARK_TYPES = _TYPES.replace("TIMESTAMP", "TIMESTAMP_NTZ").replace("VARCHAR", "STRING")

_TIME = [
    "dayofweek(t)", "dayofweek(d)", "dayofweek(t) IN (0, 6)", "hour(t)", "minute(t)", "hour(d)",
    "CAST(hour(t) < 6 AS INTEGER)", "epoch(t)", "epoch(d)", "epoch(u) - epoch(t)",
    "CAST(epoch(u) - epoch(t) AS BIGINT)", "CAST(epoch(t) AS BIGINT)", "TRY_CAST(epoch(u) / 7 AS INTEGER)",
    *(f"date_diff('{unit}', t, u)" for unit in
      ("microsecond", "millisecond", "second", "minute", "hour", "day", "month", "year")),
    "date_diff('second', signup_time, purchase_time)", "datediff('hours', d, t)", "date_diff('day', d, u)",
    "t - INTERVAL 5 MINUTE", "d + INTERVAL 1 DAY", "d - INTERVAL 90 SECOND", "INTERVAL 2 HOUR + t",
    "u > t + INTERVAL 1 HOUR", "year(t) * 100 + month(t)", "day(u)",
]
_CASTS = [
    "CAST(x > 0 AS INTEGER)", "CAST(round(x) AS BIGINT)", "CAST(floor(x) AS INTEGER)", "CAST(ceil(x) AS BIGINT)",
    "CAST(5 / 2 AS BIGINT)", "CAST(-5 / 2 AS INTEGER)", "CAST(7 / 2 AS BIGINT)", "CAST(sqrt(6.25) AS BIGINT)",
    "CAST(s IS NULL AS BIGINT)", "round(x)", "abs(x)", "CAST(x AS VARCHAR) IS NOT NULL",
]
# Functions allowed before this table existed: the same comparison holds them to one meaning.
_OTHERS = [
    "CAST(x AS VARCHAR)", "CAST(t AS VARCHAR)", "CAST(d AS VARCHAR)", "CAST(x > 1 AS VARCHAR)",
    "TRY_CAST(s AS DOUBLE)", "CAST(d AS TIMESTAMP)", "CAST(t AS DATE)", "s ILIKE '%É%'", "s LIKE '%,%'",
    "greatest(x, 1)", "least(x, NULL, 2)", "coalesce(s, 'z')", "nullif(s, '')", "if(x > 0, 'p', 'n')",
    "ifnull(x, 0)", "pow(x, 2)", "sqrt(abs(x))", "ln(abs(x) + 1)", "exp(x)", "x % 2", "round(x, 1)",
    "round(x * 1.005, 2)", "ceil(x)", "floor(x)", "dayofmonth(t)", "month(d)", "year(u)", "x / 3",
    "CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' END", "x BETWEEN -1 AND 1", "s IN ('', 'aaa')",
    "x IS DISTINCT FROM 2.5", "-x * 2 + 1", "trim(concat('  ', s, '  '))", "substring(s, 3)",
]
# DuckDB's answers where Spark (ANSI) fails or says NULL: a zero divisor gives ±Infinity or NaN (a -0.0 divisor
# -Infinity), `/` is a DOUBLE quotient even of decimals, ln is -Infinity at 0 and NaN below; a negative substring
# length takes the characters before the start.
_AT_ZERO = [
    "x / (x - x)", "(x - x) / (x - x)", "x / -(x - x)", "id / (id - id)", "CAST(x > 0 AS INTEGER) / 0",
    "x / nullif(x - x, 0)", "x / (x - x) > 1e308", "1.0 / 3 * 3 = 1", "id / 3.0 * 3 = id", "ln(x - x)", "ln(x)",
    "ln(-abs(x))", "substring(s, 4, length(s) - 6)", "substring(s, 3, -2)", "substring(s, 2, id - 3)",
]
_TEXT = [
    "lower(s)", "upper(s)", "length(s)", "starts_with(s, 'a')", "contains(s, '.')", "ends_with(s, '\n')",
    "trim(s)", "substring(s, 2, 3)", "concat(s, '!')",
    *(f"split_part(s, '{sep}', {i})" for sep in (",", ".", "|", "aa", "ü") for i in (1, 2, -1, 5, -5)),
    *(f"regexp_matches(s, '{p}')" for p in (
        "b", "^a", "c$", "b$", "\\n$", "a.b", "^$", "\\d+", "\\s", "\\S+$", "[^a-z]", "(ab|cd)+", "a{2,3}",
        "\\.", "é", "👍", "[\\s,]", "\\w+@\\w+\\.com$", "\\Aa", "x|", "\\$", "\\\\", "[.]", "^.*$", "\\W",
        "(?:a,)+b", "[a-c]{2}", "ß", "Σ", "b\\z", "ab\\n$", "[\\^]",
    )),
]
EXPRESSIONS = _TIME + _CASTS + _TEXT + _OTHERS + _AT_ZERO
# Same values, different type: DuckDB's floor/ceil of a DOUBLE is a DOUBLE, Spark's a BIGINT.
_SAME_VALUE_ONLY = {"floor(x)", "ceil(x)"}


def _checked(text: str) -> object:
    return parse_expression(text, columns=COLUMNS, where=WHERE)


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE rows ({_TYPES})")
    con.executemany(f"INSERT INTO rows VALUES ({', '.join('?' * 8)})", ROWS)
    return con


@pytest.fixture(scope="module")
def spark_results(spark) -> dict[str, list]:  # noqa: F811
    """Every expression of the table, rendered for Spark and run in one query (one per expression on error)."""
    spark.createDataFrame(ROWS, _SPARK_TYPES).createOrReplaceTempView("rows")
    rendered = [to_sql(_checked(text), "spark") for text in EXPRESSIONS]
    select = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(rendered))
    try:
        table = spark.sql(f"SELECT {select} FROM rows ORDER BY id").collect()
        return {text: [row[i] for row in table] for i, text in enumerate(EXPRESSIONS)}
    except Exception as err:  # noqa: BLE001 - find which expression fails, one query each
        warnings.warn(f"one query for the whole table failed, running one per expression: {str(err)[:200]}")
        return {text: _one(spark, sql) for text, sql in zip(EXPRESSIONS, rendered)}


@pytest.fixture(scope="module")
def spark_results_ltz(spark, spark_results) -> dict[str, list]:  # noqa: F811
    """The time and cast expressions again, over times stored as Spark TIMESTAMP (with time zone, UTC session)."""
    times = ("t", "u", "signup_time", "purchase_time")
    spark.sql("SELECT * FROM rows").selectExpr(
        *(f"CAST({c} AS TIMESTAMP) AS {c}" if c in times else c for c in COLUMNS)
    ).createOrReplaceTempView("rows_ltz")
    texts = _TIME + _CASTS
    select = ", ".join(f"{to_sql(_checked(text), 'spark')} AS c{i}" for i, text in enumerate(texts))
    table = spark.sql(f"SELECT {select} FROM rows_ltz ORDER BY id").collect()
    return {text: [row[i] for row in table] for i, text in enumerate(texts)}


def _one(spark, sql: str) -> list:  # noqa: F811
    try:
        return [row[0] for row in spark.sql(f"SELECT {sql} FROM rows ORDER BY id").collect()]
    except Exception as err:  # noqa: BLE001 - reported by the comparison
        return [f"spark error: {str(err).splitlines()[0]}"]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_duckdb_and_spark_give_the_same_values(duck, spark_results, text: str) -> None:
    sql = to_sql(_checked(text))
    expected = [row[0] for row in duck.execute(f"SELECT {sql} FROM rows ORDER BY id").fetchall()]
    got = spark_results[text]
    spark_sql = to_sql(_checked(text), "spark")
    strict = text not in _SAME_VALUE_ONLY
    diffs = [(ROWS[i][1:6], want, have) for i, (want, have) in enumerate(zip(expected, got)) if not _same(want, have)
             or (strict and type(want) is not type(have))]
    assert len(got) == len(expected) and not diffs, f"{text} -> spark {spark_sql}: (row, duckdb, spark) {diffs[:3]}"


def _same(want: object, have: object) -> bool:
    """Equal values, NaN equal to NaN (a quotient 0 / 0 on both engines)."""
    return want == have or (isinstance(want, float) and isinstance(have, float) and want != want and have != have)


@pytest.mark.parametrize("text", _TIME + _CASTS)
def test_spark_timestamps_with_time_zone_give_the_same_values(duck, spark_results_ltz, text: str) -> None:
    sql = to_sql(_checked(text))
    expected = [row[0] for row in duck.execute(f"SELECT {sql} FROM rows ORDER BY id").fetchall()]
    got = spark_results_ltz[text]
    if any(isinstance(v, dt.datetime) for v in expected):  # pyspark shows these in the local zone
        got = [v.astimezone(dt.timezone.utc).replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in got]
    assert got == expected, text


# --- what the checker says ---------------------------------------------------------------------


def test_benchmark_features_night_and_weekend_load_and_are_right(duck) -> None:
    night = to_sql(_checked("CAST(hour(t) < 6 AS INTEGER)"))
    weekend = to_sql(_checked("dayofweek(t) IN (0, 6)"))
    got = duck.execute(f"SELECT t, {night}, {weekend} FROM rows WHERE t IS NOT NULL").fetchall()
    for t, is_night, is_weekend in got:
        assert is_night == int(t.hour < 6)
        assert is_weekend == (t.isoweekday() in (6, 7))


def test_seconds_from_signup_to_purchase(duck) -> None:
    sql = to_sql(_checked("date_diff('second', signup_time, purchase_time)"))
    got = duck.execute(f"SELECT signup_time, purchase_time, {sql} FROM rows").fetchall()
    for signup, purchase, seconds in got:
        if signup is None or purchase is None:
            assert seconds is None
        else:
            epoch = T(1970, 1, 1)
            assert seconds == (purchase - epoch) // dt.timedelta(seconds=1) - (signup - epoch) // dt.timedelta(seconds=1)


REFUSED = [
    ("(purchase_time - signup_time) / INTERVAL 1 SECOND",
     "dividing by an interval ('(purchase_time - signup_time) / INTERVAL '1' SECOND') is not allowed "
     "(for the seconds between two times write epoch(b) - epoch(a) or date_diff('second', a, b))"),
    ("purchase_time - signup_time > INTERVAL 1 HOUR", "may only be added to or subtracted from a time"),
    ("INTERVAL 1 HOUR - t > u", "may only be added to or subtracted from a time"),
    ("t + (INTERVAL 1 HOUR + INTERVAL 1 MINUTE) > u", "may only be added to or subtracted from a time"),
    ("date_diff('week', t, u) > 0", "date_diff unit 'week' is not allowed (use one of 'microsecond',"),
    ("date_diff('quarter', t, u) > 0", "date_diff unit 'quarter' is not allowed"),
    ("CAST(x AS BIGINT) > 1", "CAST of 'x' to an integer is not allowed (its type is unknown and DuckDB rounds"),
    ("CAST(2.5 AS INTEGER) > 1", "CAST of '2.5' to an integer is not allowed"),
    ("regexp_matches(s, s)", "a regexp_matches pattern must be a text literal"),
    ("regexp_matches(s, 'a', 'i')", "uses unsupported syntax"),
    ("regexp_matches(s, '(a)\\1')", "'\\1' in a regular expression is not allowed (RE2 and Java differ)"),
    ("regexp_matches(s, 'a(?=b)')", "lookaround, named groups and flags"),
    ("regexp_matches(s, '(?<!a)b')", "lookaround, named groups and flags"),
    ("regexp_matches(s, '(?i)abc')", "use lower(x) and a lowercase pattern"),
    ("regexp_matches(s, 'a*+')", "stacked or possessive quantifiers are not allowed"),
    ("regexp_matches(s, 'a{2,5000}')", "(at most 1000)"),
    ("regexp_matches(s, 'a{')", "must be a repetition like {2,5}"),
    ("regexp_matches(s, '\\bword\\b')", "'\\b' in a regular expression is not allowed"),
    ("regexp_matches(s, '[[:alpha:]]')", "'[' inside [...] is not allowed"),
    ("regexp_matches(s, '[a-z&&[^b]]')", "inside [...] is not allowed"),
    ("regexp_matches(s, '\\pL')", "'\\p' in a regular expression is not allowed"),
    ("regexp_matches(s, '(ab')", "unbalanced '('"),
    ("regexp_matches(s, 'ab)')", "unbalanced ')'"),
    ("regexp_matches(s, '[ab')", "unclosed '['"),
    ("regexp_matches(s, 'ab\\')", "ends with a backslash"),
    ("regexp_matches(s, '*a')", "must follow something to repeat"),
    ("split_part(s, '', 1) = 'a'", "split_part needs a non-empty text delimiter"),
    ("split_part(s, ',', 0) = 'a'", "split_part needs a whole-number index other than 0"),
    ("split_part(s, ',', id) = 'a'", "split_part needs a whole-number index other than 0"),
    ("split_part(s, s, 1) = 'a'", "split_part needs a non-empty text delimiter"),
    ("extract(hour FROM t) = 1", "is not allowed"),
    ("isodow(t) = 1", "function 'isodow' is not allowed"),
    ("regexp_replace(s, 'a', 'b') = 'x'", "function 'regexp_replace' is not allowed"),
    ("epoch_ms(t) > 0", "function 'epoch_ms' is not allowed"),
]


@pytest.mark.parametrize(("text", "fragment"), REFUSED)
def test_refusals_name_the_item_and_the_fix_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        _checked(text)
    message = str(info.value)
    assert message.startswith(WHERE + ": ") and "\n" not in message
    assert fragment in message


def test_checking_an_expression_does_not_import_the_spark_dialect() -> None:
    code = ("import sys; from riskconsole.expressions import parse_expression, to_sql; "
            "e = parse_expression(\"dayofweek(t) IN (0, 6) AND regexp_matches(s, '^a')\", columns=['t', 's'], where='w'); "
            "to_sql(e); print('sqlglot.dialects.spark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dayofweek(t) IN (0, 6)", "(DAYOFWEEK(`t`) - 1) IN (0, 6)"),
        ("epoch(t) > 0", "(UNIX_MICROS(CAST(`t` AS TIMESTAMP_NTZ)) / 1e6) > 0"),
        ("CAST(epoch(t) AS BIGINT) > 0", "CAST(BROUND((UNIX_MICROS(CAST(`t` AS TIMESTAMP_NTZ)) / 1e6)) AS BIGINT) > 0"),
        ("regexp_matches(s, '^a.\\d$')", "`s` RLIKE '(?d)^a.\\\\d\\\\z'"),
        ("regexp_matches(s, '\\s')", "`s` RLIKE '(?d)[\\\\t\\\\n\\\\f\\\\r ]'"),
        ("date_diff('day', t, u) > 1", "DATEDIFF(CAST(`u` AS DATE), CAST(`t` AS DATE)) > 1"),
        ("t - INTERVAL 5 MINUTE < u", "CAST(`t` AS TIMESTAMP_NTZ) - INTERVAL '5' MINUTE < `u`"),
        ("split_part(s, ',', -1) = 'c'", "SPLIT_PART(`s`, ',', -1) = 'c'"),
    ],
)
def test_spark_renderings(text: str, expected: str) -> None:
    assert to_sql(_checked(text), "spark") == expected


def test_upper_and_lower_agree_where_unicode_case_mappings_differ(duck, spark) -> None:  # noqa: F811
    from riskconsole import dialects

    special = sorted(set(dialects._UPPER_FROM + dialects._LOWER_FROM))
    sample = [chr(c) for c in range(0x20, 0x30000, 97) if not 0xD800 <= c <= 0xDFFF]
    chars = special + sample
    texts = chars + ["".join(chars[i:i + 7]) for i in range(0, len(chars), 7)] + ["ΑΣ ΒΣ", "ΣΑΣ.", "İi", "Straße"]
    rows = list(enumerate(texts))
    duck.execute("CREATE OR REPLACE TABLE texts (id INTEGER, s VARCHAR)")
    duck.executemany("INSERT INTO texts VALUES (?, ?)", rows)
    spark.createDataFrame(rows, "id INT, s STRING").createOrReplaceTempView("texts")
    exprs = [_checked("upper(s)"), _checked("lower(s)")]
    select_duck = ", ".join(to_sql(e) for e in exprs)
    select_spark = ", ".join(to_sql(e, "spark") for e in exprs)
    want = duck.execute(f"SELECT s, {select_duck} FROM texts ORDER BY id").fetchall()
    got = [tuple(row) for row in spark.sql(f"SELECT s, {select_spark} FROM texts ORDER BY id").collect()]
    diffs = [(w, g) for w, g in zip(want, got) if w != g]
    assert len(want) == len(got) and not diffs, diffs[:5]


def test_trim_strips_what_duckdb_strips_on_spark(duck, spark) -> None:  # noqa: F811
    """trim, ltrim and rtrim strip DuckDB's spaces (every Unicode space separator: an export's no-break space) and
    nothing else (a tab, a line break, a zero-width space stay) on Spark too: Spark's TRIM strips the ASCII space
    only, so a Spark load read 'approve\u00a0' as no decision where DuckDB read approve."""
    import sqlglot

    from riskconsole import dialects

    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace() or c in (0x180E, 0x200B, 0xFEFF)] + ["\u200b", "\ufeff"]
    texts = [f"{s}a{s}" for s in spaces] + [f"{s}{s}b {s}c{s}" for s in spaces] + spaces + ["", " \u00a0 ", None]
    rows = list(enumerate(texts))
    duck.execute("CREATE OR REPLACE TABLE spaced (id INTEGER, s VARCHAR)")
    duck.executemany("INSERT INTO spaced VALUES (?, ?)", rows)
    spark.createDataFrame(rows, "id INT, s STRING").createOrReplaceTempView("spaced")
    exprs = ["trim(s)", "ltrim(s)", "rtrim(s)", "lower(trim(s))", "trim(s, 'a')"]
    select_spark = ", ".join(sqlglot.parse_one(e, read="duckdb").sql(dialect=dialects.spark()) for e in exprs)
    want = duck.execute(f"SELECT s, {', '.join(exprs)} FROM spaced ORDER BY id").fetchall()
    got = [tuple(row) for row in spark.sql(f"SELECT s, {select_spark} FROM spaced ORDER BY id").collect()]
    diffs = [(w, g) for w, g in zip(want, got) if w != g]
    assert len(want) == len(got) == len(texts) and not diffs, diffs[:5]
    assert want[texts.index("\u00a0a\u00a0")][1] == "a" and want[texts.index("\ta\t")][1] == "\ta\t"


def test_round_of_a_double_gives_duckdbs_digit_on_spark(duck, spark) -> None:  # noqa: F811
    """DuckDB rounds a DOUBLE's binary value (12.35 is 12.3499999999999996: round(x, 1) is 12.3), Spark's ROUND its
    shortest text (12.4): 4% of two-decimal amounts rounded to one decimal differed. Seeded amounts of 2 to 4
    decimals up to 1e9, both signs, exact ties (0.125) and the limit's neighbourhood; a DECIMAL column keeps its
    exact rounding; an independent check: Python's Decimal of the binary value, rounded half away from zero."""
    from decimal import ROUND_HALF_UP, Decimal

    import numpy as np

    rng = np.random.default_rng(15)
    values = np.concatenate([np.round(rng.uniform(-2000, 2000, 3000), 2), np.round(rng.lognormal(4, 1.1, 3000), 3),
                             np.round(rng.uniform(-1e9, 1e9, 1000), 4), [12.35, -12.35, 0.125, -0.125, 2.5, 0.0]])
    rows = [(i, float(v), Decimal(str(round(float(v), 2)))) for i, v in enumerate(values)]
    duck.execute("CREATE OR REPLACE TABLE amounts (id INTEGER, x DOUBLE, m DECIMAL(14, 2))")
    duck.executemany("INSERT INTO amounts VALUES (?, ?, ?)", rows)
    spark.createDataFrame(rows, "id INT, x DOUBLE, m DECIMAL(14, 2)").createOrReplaceTempView("amounts")
    exprs = ["round(x, 1)", "round(x, 2)", "round(x, 3)", "round(-x * 1.5, 2)", "round(m, 1)", "round(x)"]
    want = duck.execute(f"SELECT {', '.join(exprs)} FROM amounts ORDER BY id").fetchall()
    select = ", ".join(to_sql(_checked(e.replace("m,", "x,")), "spark").replace("`x`", "`m`") if "m," in e
                       else to_sql(_checked(e), "spark") for e in exprs)
    got = [tuple(row) for row in spark.sql(f"SELECT {select} FROM amounts ORDER BY id").collect()]
    diffs = [(rows[i][1], w, g) for i, (w, g) in enumerate(zip(want, got)) if w != g]
    assert len(got) == len(rows) and not diffs, diffs[:3]
    exact = [float(Decimal(x).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) for _, x, _ in rows]
    assert [w[0] for w in want] == exact and want[-6][0] == 12.3 and want[-4][1] == 0.13


def test_cast_of_a_double_to_text_is_duckdbs_on_spark(duck, spark) -> None:  # noqa: F811
    """Spark writes a DOUBLE outside 1e-3..1e7 in Java's E notation (1.2345678E7, 1.0E-5, Infinity), DuckDB as
    Python's repr does (12345678.5, 1e-05, inf): a rule comparing the text decided differently. Seeded doubles from
    1e-12 to 1e16 of both signs, the edges of each notation, zeros, infinities and NaN; the independent check is
    Python's repr itself."""
    import math

    import numpy as np

    rng = np.random.default_rng(15)
    values = [*(rng.uniform(-1, 1, 3000) * 10.0 ** rng.integers(-12, 16, 3000)), 1e7, 9999999.0, 12345678.5, 1e15,
              9.9e15, 1e-3, 1e-4, 1.5e-4, 1e-5, 1e16, 1.5e20, 1e100, -0.0, 0.0, math.inf, -math.inf, math.nan]
    rows = [(i, float(v)) for i, v in enumerate(values)]
    duck.execute("CREATE OR REPLACE TABLE doubles (id INTEGER, v DOUBLE)")
    duck.executemany("INSERT INTO doubles VALUES (?, ?)", rows)
    spark.createDataFrame(rows, "id INT, v DOUBLE").createOrReplaceTempView("doubles")
    for text, prefix in (("CAST(v AS VARCHAR)", ""), ("concat('x', v)", "x")):  # concat casts implicitly
        checked = parse_expression(text, columns=("v",), where=WHERE)
        want = [r[0] for r in duck.execute(f"SELECT {to_sql(checked)} FROM doubles ORDER BY id").fetchall()]
        got = [r[0] for r in spark.sql(f"SELECT {to_sql(checked, 'spark')} FROM doubles ORDER BY id").collect()]
        diffs = [(v, w, g) for (_, v), w, g in zip(rows, want, got) if w != g]
        assert len(got) == len(rows) and not diffs, (text, diffs[:3])
        assert want == [prefix + repr(v).replace("-nan", "nan") for _, v in rows]


def test_night_and_weekend_load_as_dataset_features(tmp_path) -> None:
    from conftest import BASE_DATASET, random_events, write_workspace
    from riskconsole.ingest import load

    features = [*BASE_DATASET["features"],
                {"name": "night", "sql": "CAST(hour(ts) < 6 AS INTEGER)"},
                {"name": "weekend", "sql": "dayofweek(ts) IN (0, 6)"},
                {"name": "secs_in_hour", "sql": "date_diff('second', ts - INTERVAL 1 HOUR, ts) + epoch(ts) % 3600"}]
    ws = write_workspace(tmp_path, random_events(n=120, seed=7, days=8), {**BASE_DATASET, "features": features})
    load(ws)
    con = duckdb.connect(str(ws.db_path), read_only=True)
    rows = con.execute("SELECT ts, night, weekend, secs_in_hour FROM frame ORDER BY _pos").fetchall()
    con.close()
    assert {weekend for _, _, weekend, _ in rows} == {True, False}
    for ts, night, weekend, secs in rows:
        assert night == int(ts.hour < 6) and weekend == (ts.isoweekday() in (6, 7))
        assert secs == 3600 + ts.minute * 60 + ts.second
