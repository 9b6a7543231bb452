"""What the time, text and cast functions of an expression mean, and their exact Spark SQL renderings.

Every allowed function has ONE meaning, DuckDB's (DESIGN.md §3.1). The checks here keep each
function inside the range where a Spark rendering gives the same answer; `spark()` builds a Spark
dialect whose generator overrides render each function that a naive transpile would change.
Importing sqlglot's Spark dialect costs ~75 ms, so it happens only when rendering for Spark.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlglot import exp

from riskconsole.names import TRIMMED


class Unsupported(ValueError):
    """A construct that cannot be rendered exactly on every engine; args are (problem, fix)."""


# --- value kinds (what a CAST to an integer does depends on the value's type) ---------------

_BOOLEAN = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.RegexpLike, exp.StartsWith,
            exp.EndsWith, exp.Contains)
_INTEGRAL = (exp.Floor, exp.Ceil, exp.Hour, exp.Minute, exp.Day, exp.DayOfMonth, exp.Month, exp.Year,
             exp.DayOfWeek, exp.Length, exp.DateDiff)
_DOUBLE = (exp.TimeToUnix, exp.Sqrt, exp.Ln, exp.Exp, exp.Pow)
_DT = exp.DataType.Type
_CAST_KINDS = {_DT.INT: "int", _DT.BIGINT: "int", _DT.DOUBLE: "double", _DT.BOOLEAN: "bool"}


def value_kind(node: exp.Expression) -> str | None:
    """'bool', 'int' (whole-valued), 'double', or None when the type is not known from the text."""
    node = node.unnest()
    if isinstance(node, exp.Neg):
        return value_kind(node.this)
    if isinstance(node, exp.Round):
        return None if node.args.get("decimals") else "int"
    if isinstance(node, exp.Cast):
        return _CAST_KINDS.get(node.to.this) if isinstance(node.to, exp.DataType) else None
    if isinstance(node, exp.Literal):
        return "int" if not node.is_string and str(node.this).isdigit() else None
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        kinds = {value_kind(node.this), value_kind(node.expression)}
        if not kinds <= {"int", "double"}:
            return None
        return "double" if "double" in kinds or isinstance(node, exp.Div) else "int"
    for kinds, name in ((_BOOLEAN, "bool"), (_INTEGRAL, "int"), (_DOUBLE, "double")):
        if isinstance(node, kinds):
            return name
    return None


# --- date_diff and split_part ----------------------------------------------------------------

# Unit -> microseconds per unit for the units DuckDB counts as floor(epoch_us / n) differences.
_MICRO_UNITS = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
                "HOUR": 3_600_000_000}
DATE_DIFF_UNITS = (*_MICRO_UNITS, "DAY", "MONTH", "YEAR")


def date_diff_unit(node: exp.DateDiff) -> str:
    """The canonical unit of a date_diff, or Unsupported."""
    unit = node.args.get("unit")
    name = unit.name.upper() if isinstance(unit, (exp.Var, exp.Literal)) else ""
    name = name[:-1] if name.endswith("S") and name[:-1] in DATE_DIFF_UNITS else name
    if name not in DATE_DIFF_UNITS:
        units = ", ".join(f"'{u.lower()}'" for u in DATE_DIFF_UNITS)
        raise Unsupported(f"date_diff unit '{unit.name.lower() if unit else ''}' is not allowed", f"use one of {units}")
    return name


def check_split_part(node: exp.SplitPart) -> None:
    """A non-empty literal delimiter and a non-zero literal index: DuckDB and Spark differ otherwise."""
    delimiter, index = node.args.get("delimiter"), node.args.get("part_index")
    if not (isinstance(delimiter, exp.Literal) and delimiter.is_string and delimiter.this):
        raise Unsupported("split_part needs a non-empty text delimiter", "e.g. split_part(email, '@', 2)")
    number = index.this if isinstance(index, exp.Neg) else index
    if not (isinstance(number, exp.Literal) and not number.is_string and number.this.isdigit()
            and int(number.this) != 0):
        raise Unsupported("split_part needs a whole-number index other than 0",
                          "1 is the first part, -1 the last")


# --- regular expressions: RE2 (DuckDB) and java.util.regex (Spark) ---------------------------

_REGEX_FIX = "use literals, ., [...], \\d \\w \\s, ^ $, |, (...), (?:...), * + ? {n,m}"
_CLASS_ESCAPES = {"d": "\\d", "D": "\\D", "w": "\\w", "W": "\\W", "s": "\\t\\n\\f\\r ",
                  "t": "\\t", "n": "\\n", "r": "\\r", "f": "\\f"}
_ESCAPES = {**_CLASS_ESCAPES, "s": "[\\t\\n\\f\\r ]", "S": "[^\\t\\n\\f\\r ]", "A": "\\A", "z": "\\z"}
_MAX_REPEAT = 1000  # RE2's limit


def java_regex(pattern: str) -> str:
    """Translate an RE2 pattern to a java.util.regex pattern that matches the same texts.

    Only a common subset is allowed: Java's `.` and `$` also stop at other line terminators
    (so `(?d)` and `\\z` are used), Java's `\\s` also matches a vertical tab, and lookaround,
    backreferences, flags, possessive quantifiers and nested classes exist in only one engine.

    Raises:
        Unsupported: for anything outside that subset.
    """
    out, pos, atom, depth = ["(?d)"], 0, False, 0
    while pos < len(pattern):
        piece, end, atom = _piece(pattern, pos, atom)
        depth += {"(": 1, "(?:": 1, ")": -1}.get(piece, 0)
        if depth < 0:
            raise Unsupported("unbalanced ')' in the regular expression", "escape it as \\)")
        out.append(piece)
        pos = end
    if depth:
        raise Unsupported("unbalanced '(' in the regular expression", "close every group")
    return "".join(out)


def _piece(pattern: str, pos: int, atom: bool) -> tuple[str, int, bool]:
    """The Java form of the next piece at pos, where it ends, and whether it can be repeated."""
    ch = pattern[pos]
    if ch == "\\":
        piece = _escape(pattern, pos, _ESCAPES)
        return piece, pos + 2, piece not in ("\\A", "\\z")
    if ch == "[":
        return (*_char_class(pattern, pos), True)
    if ch in "*+?{":
        return (*_quantifier(pattern, pos, atom), False)
    if ch == "(":
        piece = _open_group(pattern, pos)
        return piece, pos + len(piece), False
    literal = {"$": "\\z", "]": "\\]", "}": "\\}"}.get(ch, ch)
    return literal, pos + 1, ch not in "^$|"


def _escape(pattern: str, pos: int, table: dict[str, str]) -> str:
    """One backslash escape: punctuation is literal, a few letters are classes, the rest is refused."""
    if pos + 1 >= len(pattern):
        raise Unsupported("the regular expression ends with a backslash", "escape it as \\\\")
    ch = pattern[pos + 1]
    if ch.isascii() and not ch.isalnum() and ch.isprintable() and ch != " ":
        return "\\" + ch
    if ch in table:
        return table[ch]
    raise Unsupported(f"'\\{ch}' in a regular expression is not allowed (RE2 and Java differ)", _REGEX_FIX)


def _char_class(pattern: str, pos: int) -> tuple[str, int]:
    """A [...] class; nested classes, '&&' and POSIX names mean different things in Java."""
    out, pos = ["["], pos + 1
    if pattern[pos:pos + 1] == "^":
        out.append("^")
        pos += 1
    first = pos
    while pos < len(pattern) and not (pattern[pos] == "]" and pos > first):
        ch = pattern[pos]
        if ch == "\\":
            out.append(_escape(pattern, pos, _CLASS_ESCAPES))
            pos += 2
            continue
        if ch in "[]" or pattern.startswith("&&", pos):
            raise Unsupported(f"'{ch}' inside [...] is not allowed (RE2 and Java differ)", f"escape it as \\{ch}")
        out.append(ch)
        pos += 1
    if pos >= len(pattern):
        raise Unsupported("unclosed '[' in the regular expression", "close it with ]")
    return "".join(out) + "]", pos + 1


def _quantifier(pattern: str, pos: int, atom: bool) -> tuple[str, int]:
    """*, +, ?, {n}, {n,}, {n,m}, each optionally lazy; never possessive or stacked."""
    if not atom:
        raise Unsupported(f"'{pattern[pos]}' must follow something to repeat", "escape it with a backslash")
    end = pos + 1
    if pattern[pos] == "{":
        end = pattern.find("}", pos)
        low, _, high = pattern[pos + 1:end].partition(",") if end > 0 else ("", "", "")
        numbers = [low] + ([high] if high else [])
        if end < 0 or not all(n.isdigit() for n in numbers) or int(numbers[-1]) > _MAX_REPEAT \
                or int(numbers[0]) > int(numbers[-1]):
            raise Unsupported("a '{' in a regular expression must be a repetition like {2,5} (at most 1000)",
                              "escape a literal brace as \\{")
        end += 1
    if pattern[end:end + 1] == "?":
        end += 1
    if pattern[end:end + 1] in ("*", "+", "?", "{"):
        raise Unsupported("stacked or possessive quantifiers are not allowed", "repeat a group: (?:a+)*")
    return pattern[pos:end], end


def _open_group(pattern: str, pos: int) -> str:
    """'(' or '(?:'; lookaround, named groups and flags are refused."""
    if pattern[pos:pos + 2] != "(?":
        return "("
    if pattern[pos:pos + 3] == "(?:":
        return "(?:"
    raise Unsupported("lookaround, named groups and flags in a regular expression are not allowed "
                      "(RE2 and Java differ)", "for case-insensitive matching use lower(x) and a lowercase pattern")


def check_regex(node: exp.RegexpLike) -> None:
    """The pattern is a text literal inside the subset both engines read the same way."""
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise Unsupported("a regexp_matches pattern must be a text literal", "e.g. regexp_matches(email, '^[0-9]+@')")
    java_regex(pattern.this)


# --- upper and lower: DuckDB maps one code point to one (utf8proc); Spark uses full Unicode case
# mappings (ß -> SS, ﬁ -> FI, İ -> i̇, a final Σ -> ς) and a newer Unicode. These are every code
# point where the two differ (measured over all of Unicode, DuckDB 2.0.1 vs Spark 4.3), each with
# DuckDB's answer; Spark maps a text holding one of them character by character.
_UPPER_FROM = (
    "\u00df\u0149\u019b\u01f0\u0264\u0390\u03b0\u0587\u1c8a\u1e96\u1e97\u1e98\u1e99\u1e9a\u1f50\u1f52"
    "\u1f54\u1f56\u1f80\u1f81\u1f82\u1f83\u1f84\u1f85\u1f86\u1f87\u1f88\u1f89\u1f8a\u1f8b\u1f8c\u1f8d"
    "\u1f8e\u1f8f\u1f90\u1f91\u1f92\u1f93\u1f94\u1f95\u1f96\u1f97\u1f98\u1f99\u1f9a\u1f9b\u1f9c\u1f9d"
    "\u1f9e\u1f9f\u1fa0\u1fa1\u1fa2\u1fa3\u1fa4\u1fa5\u1fa6\u1fa7\u1fa8\u1fa9\u1faa\u1fab\u1fac\u1fad"
    "\u1fae\u1faf\u1fb2\u1fb3\u1fb4\u1fb6\u1fb7\u1fbc\u1fc2\u1fc3\u1fc4\u1fc6\u1fc7\u1fcc\u1fd2\u1fd3"
    "\u1fd6\u1fd7\u1fe2\u1fe3\u1fe4\u1fe6\u1fe7\u1ff2\u1ff3\u1ff4\u1ff6\u1ff7\u1ffc\ua7cd\ua7cf\ua7d3"
    "\ua7d5\ua7db\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\ufb13\ufb14\ufb15\ufb16\ufb17\U00010d70"
    "\U00010d71\U00010d72\U00010d73\U00010d74\U00010d75\U00010d76\U00010d77\U00010d78\U00010d79"
    "\U00010d7a\U00010d7b\U00010d7c\U00010d7d\U00010d7e\U00010d7f\U00010d80\U00010d81\U00010d82"
    "\U00010d83\U00010d84\U00010d85\U00016ebb\U00016ebc\U00016ebd\U00016ebe\U00016ebf\U00016ec0"
    "\U00016ec1\U00016ec2\U00016ec3\U00016ec4\U00016ec5\U00016ec6\U00016ec7\U00016ec8\U00016ec9"
    "\U00016eca\U00016ecb\U00016ecc\U00016ecd\U00016ece\U00016ecf\U00016ed0\U00016ed1\U00016ed2"
    "\U00016ed3"
)
_UPPER_TO = (
    "\u1e9e\u0149\u019b\u01f0\u0264\u0390\u03b0\u0587\u1c8a\u1e96\u1e97\u1e98\u1e99\u1e9a\u1f50\u1f52"
    "\u1f54\u1f56\u1f88\u1f89\u1f8a\u1f8b\u1f8c\u1f8d\u1f8e\u1f8f\u1f88\u1f89\u1f8a\u1f8b\u1f8c\u1f8d"
    "\u1f8e\u1f8f\u1f98\u1f99\u1f9a\u1f9b\u1f9c\u1f9d\u1f9e\u1f9f\u1f98\u1f99\u1f9a\u1f9b\u1f9c\u1f9d"
    "\u1f9e\u1f9f\u1fa8\u1fa9\u1faa\u1fab\u1fac\u1fad\u1fae\u1faf\u1fa8\u1fa9\u1faa\u1fab\u1fac\u1fad"
    "\u1fae\u1faf\u1fb2\u1fbc\u1fb4\u1fb6\u1fb7\u1fbc\u1fc2\u1fcc\u1fc4\u1fc6\u1fc7\u1fcc\u1fd2\u1fd3"
    "\u1fd6\u1fd7\u1fe2\u1fe3\u1fe4\u1fe6\u1fe7\u1ff2\u1ffc\u1ff4\u1ff6\u1ff7\u1ffc\ua7cd\ua7cf\ua7d3"
    "\ua7d5\ua7db\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\ufb13\ufb14\ufb15\ufb16\ufb17\U00010d70"
    "\U00010d71\U00010d72\U00010d73\U00010d74\U00010d75\U00010d76\U00010d77\U00010d78\U00010d79"
    "\U00010d7a\U00010d7b\U00010d7c\U00010d7d\U00010d7e\U00010d7f\U00010d80\U00010d81\U00010d82"
    "\U00010d83\U00010d84\U00010d85\U00016ebb\U00016ebc\U00016ebd\U00016ebe\U00016ebf\U00016ec0"
    "\U00016ec1\U00016ec2\U00016ec3\U00016ec4\U00016ec5\U00016ec6\U00016ec7\U00016ec8\U00016ec9"
    "\U00016eca\U00016ecb\U00016ecc\U00016ecd\U00016ece\U00016ecf\U00016ed0\U00016ed1\U00016ed2"
    "\U00016ed3"
)
_LOWER_FROM = (
    "\u0130\u03a3\u1c89\ua7cb\ua7cc\ua7ce\ua7d2\ua7d4\ua7da\ua7dc\U00010d50\U00010d51\U00010d52"
    "\U00010d53\U00010d54\U00010d55\U00010d56\U00010d57\U00010d58\U00010d59\U00010d5a\U00010d5b"
    "\U00010d5c\U00010d5d\U00010d5e\U00010d5f\U00010d60\U00010d61\U00010d62\U00010d63\U00010d64"
    "\U00010d65\U00016ea0\U00016ea1\U00016ea2\U00016ea3\U00016ea4\U00016ea5\U00016ea6\U00016ea7"
    "\U00016ea8\U00016ea9\U00016eaa\U00016eab\U00016eac\U00016ead\U00016eae\U00016eaf\U00016eb0"
    "\U00016eb1\U00016eb2\U00016eb3\U00016eb4\U00016eb5\U00016eb6\U00016eb7\U00016eb8"
)
_LOWER_TO = (
    "i\u03c3\u1c89\ua7cb\ua7cc\ua7ce\ua7d2\ua7d4\ua7da\ua7dc\U00010d50\U00010d51\U00010d52\U00010d53"
    "\U00010d54\U00010d55\U00010d56\U00010d57\U00010d58\U00010d59\U00010d5a\U00010d5b\U00010d5c"
    "\U00010d5d\U00010d5e\U00010d5f\U00010d60\U00010d61\U00010d62\U00010d63\U00010d64\U00010d65"
    "\U00016ea0\U00016ea1\U00016ea2\U00016ea3\U00016ea4\U00016ea5\U00016ea6\U00016ea7\U00016ea8"
    "\U00016ea9\U00016eaa\U00016eab\U00016eac\U00016ead\U00016eae\U00016eaf\U00016eb0\U00016eb1"
    "\U00016eb2\U00016eb3\U00016eb4\U00016eb5\U00016eb6\U00016eb7\U00016eb8"
)


# --- the Spark dialect -----------------------------------------------------------------------


@functools.cache
def spark() -> Any:
    """The Spark dialect with exact renderings of DuckDB's meaning (imports sqlglot's Spark lazily)."""
    from sqlglot.dialects.spark import Spark

    base = Spark.Generator.TRANSFORMS

    class RiskSpark(Spark):
        """Spark SQL where every allowed function gives DuckDB's answer."""

        class Generator(Spark.Generator):
            TRANSFORMS = {
                **base,
                exp.DayOfWeek: lambda self, e: f"(DAYOFWEEK({self.sql(e, 'this')}) - 1)",
                exp.TimeToUnix: lambda self, e: f"(UNIX_MICROS({_timestamp(self, e.this)}) / 1e6)",
                exp.DateDiff: _spark_date_diff,
                exp.RegexpLike: _spark_regex,
                exp.Upper: _case_mapping("UPPER", _UPPER_FROM, _UPPER_TO),
                exp.Lower: _case_mapping("LOWER", _LOWER_FROM, _LOWER_TO),
                exp.Cast: lambda self, e: _spark_text(self, e) or self.cast_sql(_rounded(e)),
                exp.TryCast: lambda self, e: _spark_text(self, e) or base[exp.TryCast](self, _rounded(e)),
                exp.Add: lambda self, e: self.binary(_interval_operand(e), "+"),
                exp.Sub: lambda self, e: self.binary(_interval_operand(e), "-"),
                exp.UnixToTime: _spark_unix_to_time,
                exp.ArraySize: lambda self, e: f"CAST(SIZE({self.sql(e, 'this')}) AS BIGINT)",  # DuckDB's type
                exp.TimeToStr: _spark_time_to_str,
                exp.Trim: lambda self, e: base[exp.Trim](self, _spaces_trimmed(e)),
                exp.Div: lambda self, e: _spark_div(self, e) if _duckdb_div(e) else self.div_sql(e),
                exp.Ln: _spark_ln,
                exp.Substring: _spark_substring,
                exp.Round: _spark_round,
                exp.Concat: lambda self, e: (base[exp.Concat](self, _as_texts(e)) if exp.Concat in base
                                             else self.concat_sql(_as_texts(e))),
            }

    return RiskSpark


def _spaces_trimmed(node: exp.Trim) -> exp.Trim:
    """DuckDB's trim (ltrim, rtrim) of spaces as a trim of the characters DuckDB strips (`TRIMMED`), which Spark's
    TRIM(BOTH chars FROM x) strips alike: an export's no-break space around a word is stripped on both engines. A
    trim of given characters means the same on both: kept."""
    if node.args.get("expression") is not None:
        return node
    return exp.Trim(this=node.this, expression=exp.Literal.string(TRIMMED), position=node.args.get("position"))


def _spark_unix_to_time(gen: Any, node: exp.UnixToTime) -> str:
    """DuckDB's `make_timestamp(micros)` is a TIMESTAMP without time zone: Spark's TIMESTAMP_MICROS read as
    TIMESTAMP_NTZ in the session's UTC (what the exported events' times are on Spark)."""
    scale = node.args.get("scale")
    if not (isinstance(scale, exp.Literal) and scale.this == "6"):
        raise Unsupported("a timestamp from epoch units other than microseconds", "use make_timestamp(micros)")
    return f"CAST(TIMESTAMP_MICROS({gen.sql(node, 'this')}) AS TIMESTAMP_NTZ)"


_STRFTIME = re.compile(r"%-?[A-Za-z]|[^%]+|%%")


def _spark_time_to_str(gen: Any, node: exp.TimeToStr) -> str:
    """DuckDB's `strftime(t, format)` as `DATE_FORMAT` with the format's literal text quoted for Java's formatter
    (sqlglot leaves the 'T' of '%Y-%m-%dT%H:%M:%S' bare, which Spark refuses)."""
    from sqlglot.dialects.spark import Spark

    fmt = node.args.get("format")
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise Unsupported("strftime with a format that is not a literal", "write the format as a text literal")
    pattern = []
    for piece in _STRFTIME.findall(fmt.this):
        if piece.startswith("%") and piece != "%%":
            if piece not in Spark.INVERSE_TIME_MAPPING:
                raise Unsupported(f"strftime code '{piece}'", "use %Y %m %d %H %M %S %f")
            pattern.append(Spark.INVERSE_TIME_MAPPING[piece])
        else:
            text = "%" if piece == "%%" else piece
            plain = all(c in "-:/ .," for c in text)  # Java reserves letters and a few symbols: quote the rest
            pattern.append(text if plain else "'" + text.replace("'", "''") + "'")
    return f"DATE_FORMAT({gen.sql(node, 'this')}, {gen.sql(exp.Literal.string(''.join(pattern)))})"


def _spark_regex(gen: Any, node: exp.RegexpLike) -> str:
    """RE2's partial match as Java's RLIKE (also a find), with the pattern translated."""
    check_regex(node)
    pattern = exp.Literal.string(java_regex(node.expression.this))
    return gen.binary(exp.RegexpLike(this=node.this, expression=pattern), "RLIKE")


def _case_mapping(function: str, source: str, target: str) -> Any:
    """Spark's UPPER/LOWER, except on texts holding a code point where DuckDB's answer differs."""

    def render(gen: Any, node: exp.Upper | exp.Lower) -> str:
        text = gen.sql(node, "this")
        src, dst = gen.sql(exp.Literal.string(source)), gen.sql(exp.Literal.string(target))
        guard = gen.sql(exp.Literal.string(f"[{source}]"))
        by_char = (f"ARRAY_JOIN(TRANSFORM(REGEXP_EXTRACT_ALL({text}, '(?s)(.)', 1), rc_ch -> "
                   f"IF(LOCATE(rc_ch, {src}) > 0, TRANSLATE(rc_ch, {src}, {dst}), {function}(rc_ch))), '')")
        return f"CASE WHEN {text} RLIKE {guard} THEN {by_char} ELSE {function}({text}) END"

    return render


def _timestamp(gen: Any, node: exp.Expression) -> str:
    """A date or timestamp as a Spark TIMESTAMP_NTZ (a no-op for timestamps; midnight for dates)."""
    return gen.sql(exp.cast(node.copy(), exp.DataType.build(_DT.TIMESTAMPNTZ)))


def _spark_date_diff(gen: Any, node: exp.DateDiff) -> str:
    """DuckDB's date_diff: unit boundaries crossed between start and end."""
    unit, end, start = date_diff_unit(node), node.this, node.expression
    if unit in _MICRO_UNITS:
        size = _MICRO_UNITS[unit]

        def floor_div(side: exp.Expression) -> str:
            micros = f"UNIX_MICROS({_timestamp(gen, side)})"
            return micros if size == 1 else f"((({micros}) - PMOD({micros}, {size})) DIV {size})"

        return f"({floor_div(end)} - {floor_div(start)})"
    if unit == "DAY":
        return f"DATEDIFF({_date(gen, end)}, {_date(gen, start)})"
    year_end, year_start = f"YEAR({_date(gen, end)})", f"YEAR({_date(gen, start)})"
    if unit == "YEAR":
        return f"({year_end} - {year_start})"
    return (f"(({year_end} * 12 + MONTH({_date(gen, end)})) - "
            f"({year_start} * 12 + MONTH({_date(gen, start)})))")


def _date(gen: Any, node: exp.Expression) -> str:
    return gen.sql(exp.cast(node.copy(), exp.DataType.build("DATE")))


def _rounded(node: exp.Cast) -> exp.Cast:
    """DuckDB rounds a double half to even when casting to an integer; Spark truncates: bround first."""
    to = node.args.get("to")
    integer = isinstance(to, exp.DataType) and to.this in (_DT.INT, _DT.BIGINT)
    if not (integer and value_kind(node.this) == "double"):
        return node
    copy = node.copy()
    copy.set("this", exp.Anonymous(this="BROUND", expressions=[node.this.copy()]))
    return copy


def _interval_operand(node: exp.Add | exp.Sub) -> exp.Add | exp.Sub:
    """DuckDB's date ± interval is a timestamp; Spark's date + whole days stays a date: cast first."""
    left, right = node.this, node.expression
    if isinstance(right, exp.Interval) and not isinstance(left, exp.Interval):
        copy = node.copy()
        copy.set("this", exp.cast(left.copy(), exp.DataType.build(_DT.TIMESTAMPNTZ)))
        return copy
    if isinstance(left, exp.Interval) and not isinstance(right, exp.Interval):
        copy = node.copy()
        copy.set("expression", exp.cast(right.copy(), exp.DataType.build(_DT.TIMESTAMPNTZ)))
        return copy
    return node


# --- division and logarithm at zero: DuckDB answers as IEEE 754 does; Spark (ANSI) fails or says NULL

_INF = "CAST('Infinity' AS DOUBLE)"


def _duckdb_div(node: exp.Div) -> bool:
    """DuckDB's `/` (a DOUBLE quotient), not an integer or a safe division of another dialect's AST."""
    return not node.args.get("typed") and not node.args.get("safe")


def _never_zero(node: exp.Expression) -> bool:
    """A divisor that cannot be 0: a non-zero number literal, or nullif(x, 0) (0 becomes NULL)."""
    node = node.unnest()
    if isinstance(node, exp.Neg):
        return _never_zero(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this) != 0
    if isinstance(node, exp.Nullif):
        zero = node.expression.unnest()
        return isinstance(zero, exp.Literal) and not zero.is_string and float(zero.this) == 0
    return False


def _spark_div(gen: Any, node: exp.Div) -> str:
    """DuckDB's `a / b`: both sides as DOUBLE, and by a zero divisor ±Infinity or NaN (0/0), the zero's sign
    counted (5 / -0.0 is -Infinity). Spark's divide fails on any zero divisor (ANSI mode) and keeps DECIMALs
    decimal (1.0 / 3 * 3 is 0.999999). By zero the quotient is a × ±Infinity (0 × Infinity is NaN, as 0 / 0),
    else a × 1 / b (a × 1 is a, exactly): `a` is written once."""
    num = f"CAST({gen.sql(node, 'this')} AS DOUBLE)"
    den = f"CAST({gen.sql(node, 'expression')} AS DOUBLE)"
    if _never_zero(node.expression):
        return f"({num} / {den})"
    signed = f"CASE WHEN CAST({den} AS STRING) = '-0.0' THEN -{_INF} ELSE {_INF} END"
    return (f"(({num} * CASE WHEN {den} = 0 THEN {signed} ELSE 1.0D END) / "
            f"CASE WHEN {den} = 0 THEN 1.0D ELSE {den} END)")


def _spark_ln(gen: Any, node: exp.Ln) -> str:
    """DuckDB's ln: -Infinity at 0, NaN below (Spark: NULL for both)."""
    x = gen.sql(node, "this")
    return f"CASE WHEN {x} = 0 THEN -{_INF} WHEN {x} < 0 THEN CAST('NaN' AS DOUBLE) ELSE LN({x}) END"


def _spark_substring(gen: Any, node: exp.Substring) -> str:
    """DuckDB's substring(s, start, length): a negative length takes the characters before start (positions
    start + length .. start - 1, from 1 on: substring('abcdef', 4, -2) is 'bc'); Spark's is empty."""
    text, start, length = (gen.sql(node, key) for key in ("this", "start", "length"))
    plain = node.args.get("length")
    if plain is None or (isinstance(plain, exp.Literal) and not plain.is_string):
        return f"SUBSTRING({text}, {start}{', ' + length if length else ''})"
    first = f"GREATEST({start} + {length}, 1)"
    return (f"CASE WHEN {length} < 0 THEN SUBSTRING({text}, {first}, {start} - {first}) "
            f"ELSE SUBSTRING({text}, {start}, {length}) END")


_SPLIT = 134217729.0  # 2**27 + 1: Dekker's split of a double into two halves whose products are exact


def _halves(value: float) -> tuple[float, float]:
    big = _SPLIT * value
    high = big - (big - value)
    return high, value - high


def _spark_round(gen: Any, node: exp.Round) -> str:
    """DuckDB's round(x, d) of a DOUBLE rounds its binary value (12.35 is 12.3499999999999996: 12.3); Spark's
    rounds its shortest decimal text (12.35: 12.4), so about 4% of two-decimal amounts rounded to one decimal
    differ. Where Spark would round such a tie away from zero but the exact product x * 10^d (y plus its error,
    Dekker's two-product) lies below it, x is moved a quarter of the last kept digit toward zero first: Spark's
    ROUND then gives DuckDB's answer. Only DOUBLEs (TYPEOF, which leaves the result's type alone), 1..15 decimals
    and |x| < 2^48 / 10^d (cents below 2.8e12); a DECIMAL or an integer is rounded as before, exactly on both."""
    text, places = gen.sql(node, "this"), node.args.get("decimals")
    digits = places.this if isinstance(places, exp.Literal) and not places.is_string else ""
    if not (digits.isdigit() and 1 <= int(digits) <= 15):
        return f"ROUND({text}{', ' + gen.sql(places) if places else ''})"
    d = int(digits)
    scale, (m_hi, m_lo) = 10.0 ** d, _halves(10.0 ** d)
    a = f"ABS(CAST({text} AS DOUBLE))"
    y, big = f"({a} * {scale!r}D)", f"({_SPLIT!r}D * {a})"
    a_hi = f"({big} - ({big} - {a}))"
    a_lo = f"({a} - {a_hi})"
    error = f"(({a_hi} * {m_hi!r}D - {y}) + {a_lo} * {m_hi!r}D)"
    if m_lo:
        error = f"(({a_hi} * {m_hi!r}D - {y}) + {a_hi} * {m_lo!r}D + {a_lo} * {m_hi!r}D + {a_lo} * {m_lo!r}D)"
    frac = f"({y} % 1.0D)"
    below = f"(({frac} - 0.5D) + {error} < 0)"  # the exact product's fraction is under one half: round down
    spark_up = f"(ROUND({a}, {d}) * {scale!r}D > {y} - {frac} + 0.5D)"  # Spark's ROUND took the upper integer
    shift = "0." + "0" * d + "25"  # a quarter of the last kept digit: from the tie to between two boundaries
    limit = 2.0 ** 48 / 10.0 ** d  # there the shift is 4 ulps of x or more, and x * 10^d an exact integer
    nudge = (f"CASE WHEN TYPEOF({text}) = 'double' AND {a} < {limit!r}D AND {below} AND {spark_up} "
             f"THEN CASE WHEN {text} > 0 THEN {shift} ELSE -{shift} END ELSE 0 END")
    return f"ROUND({text} - {nudge}, {d})"


def _spark_text(gen: Any, node: exp.Cast) -> str | None:
    """DuckDB's text of a DOUBLE (Python's repr: the shortest digits, positional from 1e-4 up to 1e16, else
    1.5e+20, 1e-05; inf, nan) from Spark's (Java's: positional only from 1e-3 up to 1e7, else 1.5E20, 1.0E-5;
    Infinity, NaN). Java's digits are the shortest from 1e-300 up to 1e16 (measured: none of 10,000 differed
    there), so the text is DuckDB's there; above, Java writes 17 digits where 16 would do for about one value in
    eight, and a subnormal's digits may be longer (4.9e-324 for 5e-324). Other
    types (TYPEOF, a condition) are cast as before. None for a cast to another type."""
    to = node.args.get("to")
    if not (isinstance(to, exp.DataType) and to.this in (_DT.VARCHAR, _DT.TEXT)):
        return None
    x = gen.sql(node, "this")
    num = f"TRY_CAST(CAST({x} AS STRING) AS DOUBLE)"  # the double itself (Java's text round-trips); any type binds
    java = f"CAST(ABS({num}) AS STRING)"
    digits = f"REGEXP_REPLACE(REPLACE(REGEXP_EXTRACT({java}, '^([0-9.]+)E', 1), '.', ''), '0+$', '')"
    power = f"CAST(REGEXP_EXTRACT({java}, 'E(-?[0-9]+)$', 1) AS INT)"
    shifted = (f"CASE WHEN {power} >= 16 OR {power} < -4 THEN CONCAT(SUBSTR({digits}, 1, 1), "
               f"IF(LENGTH({digits}) > 1, CONCAT('.', SUBSTR({digits}, 2)), ''), 'e', IF({power} < 0, '-', '+'), "
               f"IF(ABS({power}) < 10, '0', ''), CAST(ABS({power}) AS STRING)) "
               f"WHEN {power} < 0 THEN CONCAT('0.', REPEAT('0', -{power} - 1), {digits}) "
               f"WHEN LENGTH({digits}) <= {power} + 1 THEN CONCAT(RPAD({digits}, {power} + 1, '0'), '.0') "
               f"ELSE CONCAT(SUBSTR({digits}, 1, {power} + 1), '.', SUBSTR({digits}, {power} + 2)) END")
    return (f"CASE WHEN TYPEOF({x}) <> 'double' THEN CAST({x} AS STRING) WHEN ISNAN({num}) THEN 'nan' "
            f"WHEN {num} = CAST('Infinity' AS DOUBLE) THEN 'inf' WHEN {num} = -CAST('Infinity' AS DOUBLE) THEN '-inf' "
            f"WHEN {java} NOT LIKE '%E%' THEN CAST({x} AS STRING) "
            f"ELSE CONCAT(IF({num} < 0, '-', ''), {shifted}) END")


def _as_texts(node: exp.Concat) -> exp.Concat:
    """concat's arguments as explicit casts to text, so a DOUBLE is written as DuckDB writes it (`_spark_text`)
    rather than by Spark's implicit cast (1.0E7); text literals are left as they are."""
    copy = node.copy()
    copy.set("expressions", [e if isinstance(e, exp.Literal) and e.is_string else exp.cast(e, "VARCHAR")
                             for e in copy.expressions])
    return copy
