"""Text and typed times to UTC timestamps: strptime formats or ISO-8601, zones converted, absurd years refused.

A time never gets guessed: without `time_format` only ISO-8601 text is a time (DuckDB's own cast accepts
`1/1/15 0:00` as year 1), an offset or zone name is converted to UTC, and a time outside
`ACCEPTED_RANGE` is quarantined (one far-future date would make every daily series millions of days long).
A `time_format` entry `ISO-8601` is that same ISO reading, so a list can mix it with strptime formats; `epoch_s`,
`epoch_ms` and `epoch_us` read numbers since 1970-01-01 UTC (text or typed numbers).
"""

from __future__ import annotations

import functools
import itertools
import re
from datetime import date, timedelta
from typing import TYPE_CHECKING

import duckdb

from riskconsole.errors import ConfigError
from riskconsole.sqlbuild import alias, exp, fill, lit, render

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import TimeFormat

ACCEPTED_RANGE = ("1970-01-01", "2100-01-01")  # [low, high): the one place the accepted times are set
ACCEPTED_TEXT = f"{ACCEPTED_RANGE[0]}..{date.fromisoformat(ACCEPTED_RANGE[1]) - timedelta(days=1)}"  # both days in
TEMPORAL = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE")
ISO_PATTERN = r"\d{4}-\d{2}-\d{2}([T ].*)?"
# The time_format entry meaning "read as the load reads without time_format": no list of strptime formats reads
# every ISO variant DuckDB's cast reads (offsets, Z, zone names, dates alone), so a column mixing ISO times with
# another layout needs [ISO-8601, '%d/%m/%Y %H:%M']. Any case is accepted; formats_of gives this spelling.
ISO = "ISO-8601"
# Entries for times written as numbers since 1970-01-01 UTC (event streams: Kafka, Segment, JavaScript's Date.now()):
# seconds (a fraction allowed), milliseconds or microseconds. Each reads only numbers of its own size for the years
# the load accepts (9-10 digits of seconds, 12-13 of ms, 15-16 of µs), so a unit mistaken for another is
# quarantined, never read as a day in 1970 or a year 55,000. Any case is accepted; formats_of gives this spelling.
# A whole number typed DOUBLE in the source reads as text with '.0': taken as whole.
EPOCHS = {"epoch_s": (r"[0-9]{9,10}(\.[0-9]*)?", "to_timestamp(CAST(:t AS DOUBLE))"),
          "epoch_ms": (r"[0-9]{12,13}(\.0*)?", "CAST(epoch_ms(CAST(CAST(:t AS DECIMAL(18,0)) AS BIGINT)) AS "
                                           "TIMESTAMPTZ)"),
          "epoch_us": (r"[0-9]{15,16}(\.0*)?", "CAST(make_timestamp(CAST(CAST(:t AS DECIMAL(18,0)) AS BIGINT)) AS "
                                              "TIMESTAMPTZ)")}
KEYWORDS = (ISO, *EPOCHS)
COMMON_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z",
                  "%Y-%m-%d %H:%M:%S %z",  # Ruby's Time#to_s, as shop exports write it: 2026-03-08 14:21:00 +0530
                  "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
                  "%d/%m/%y %H:%M", "%m/%d/%y", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
                  "%d.%m.%Y", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y%m%d", "%d-%b-%Y %H:%M:%S", "%d %b %Y %H:%M:%S",
                  "%a, %d %b %Y %H:%M:%S %z", "%Y-%m-%d %H:%M:%S %Z")


def formats_of(time_format: TimeFormat, column: str | None = None) -> list[str]:
    """The formats `time_format` gives `column` (empty: ISO-8601 only), `ISO-8601` in any case spelled `ISO`. A map
    gives each column its own formats; without `column`, every format it names (to check them all)."""
    if isinstance(time_format, dict):
        if column is None:
            return list(dict.fromkeys(f for v in time_format.values() for f in formats_of(v)))
        return formats_of(time_format.get(column))
    if time_format is None:
        return []
    listed = [time_format] if isinstance(time_format, str) else list(time_format)
    keyword = {k.upper(): k for k in KEYWORDS}
    return [keyword.get(f.upper(), f) for f in listed]


DIRECTIVE = re.compile(r"(?<!%)(?:%%)*%[^%]")  # a strptime directive (`%%` is a literal percent sign)


def check_formats(con: duckdb.DuckDBPyConnection, formats: list[str], label: str) -> None:
    """Every format is `ISO-8601` or one DuckDB's strptime understands. A text without a directive is refused too:
    DuckDB takes 'ISO8601' or 'RFC3339' as literal text that no time matches, quarantining every row."""
    fix = "e.g. '%m/%d/%y %H:%M', ISO-8601 for ISO-8601 times, or epoch_s / epoch_ms / epoch_us for numbers since 1970"
    for fmt in formats:
        if fmt in KEYWORDS:
            continue
        if not DIRECTIVE.search(fmt):
            raise ConfigError(f"{label}: time_format: '{fmt}' is not a strptime format (it has no %-directive, so "
                              f"it reads no time); {fix}")
        try:
            con.execute(render(fill("SELECT try_strptime('', :f)", f=lit(fmt))))
        except duckdb.Error as err:
            detail = str(err).splitlines()[0].split(": ", 1)[-1]
            raise ConfigError(f"{label}: time_format: '{fmt}' is not a strptime format ({detail}); {fix}") from None


def described(formats: list[str]) -> str:
    """How a reason names what was tried: `a time in time_format ISO-8601 or '%d/%m/%Y %H:%M'`."""
    if not formats or formats == [ISO]:
        return "an ISO-8601 time (e.g. 2026-01-05 13:45:00; set time_format: for other layouts)"
    return "a time in time_format " + " or ".join(f if f in KEYWORDS else f"'{f}'" for f in formats)


# A numeric UTC offset after a clock time: +HH, +HHMM or +HH:MM. Real offsets lie within ±14:00 with minutes
# under 60; DuckDB would shift a time by '+99:99' (100 h 39 min) without a word, so such a time does not parse.
OFFSET = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*[+-](\d{2})(:?(\d{2}))?$"
MAX_OFFSET_MINUTES = 14 * 60


def impossible_offset(text: exp.Expression) -> exp.Expression:
    """True where the text ends in a numeric offset no place on Earth has (beyond ±14:00, or minutes >= 60)."""
    hours = fill("coalesce(TRY_CAST(nullif(regexp_extract(:t, :re, 3), '') AS INTEGER), 0)", t=text, re=lit(OFFSET))
    minutes = fill("coalesce(TRY_CAST(nullif(regexp_extract(:t, :re, 5), '') AS INTEGER), 0)", t=text, re=lit(OFFSET))
    return fill("regexp_matches(:t, :re) AND (:m >= 60 OR :h * 60 + :m > :most)", t=text, re=lit(OFFSET), h=hours,
                m=minutes, most=lit(MAX_OFFSET_MINUTES))


# An ISO time followed by a word a zone could be named by (`2026-10-20 14:00:00 Europe/Berlim`; 3 letters at least,
# so `10:00 PM` is not one); where such a text does not parse, its zone is unknown (its clock time reads alone)
ISO_CLOCK = r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"  # an ISO date and clock time, seconds optional
ZONE_NAMED = rf"({ISO_CLOCK})\s+[A-Za-z][A-Za-z0-9_+\-]{{2,}}(/[A-Za-z0-9_+\-]+)*"
UNKNOWN_ZONE = ("an unknown time zone name (write an IANA name such as Europe/Berlin or America/Sao_Paulo, or an "
                "offset such as -03:00)")
BAD_OFFSET = "an offset no place has (offsets lie within ±14:00, minutes under 60: e.g. +02:00 or -03:30)"


def failing_iso(text: exp.Expression) -> list[tuple[exp.Expression, str]]:
    """(condition, what is wrong) for a text time that fails to read as ISO-8601 for a reason its layout does not
    show: a zone name no zone has, an impossible offset (where the time itself reads)."""
    trimmed = fill("trim(:t)", t=text)
    clock = fill("regexp_extract(:t, :re, 1)", t=trimmed, re=lit(ZONE_NAMED))
    unknown = fill("regexp_full_match(:t, :re) AND TRY_CAST(:c AS TIMESTAMP) IS NOT NULL", t=trimmed,
                   re=lit(ZONE_NAMED), c=clock)
    return [(unknown, UNKNOWN_ZONE), (impossible_offset(trimmed), BAD_OFFSET)]


ZONED = re.compile(r"(?<!%)(?:%%)*%[zZ]")  # a strptime format reading an offset or a zone name


def _kind(fmt: str) -> str:
    return fmt if fmt in KEYWORDS else "zoned" if ZONED.search(fmt) else "plain"


def parse_text(text: exp.Expression, formats: list[str]) -> exp.Expression:
    """UTC TIMESTAMP of a text time, NULL where it does not parse (or names an impossible UTC offset); `formats`
    as `formats_of` gives them (empty: ISO-8601 only)."""
    trimmed = fill("trim(:t)", t=text)
    # formats with a UTC offset or zone and formats without are never tried in one call: DuckDB 2.0.1's
    # try_strptime(t, [f1, f2]) gives a row parsed by a format without %z the UTC offset of an earlier row of
    # its chunk parsed with %z ('2026-03-02 04:00:00' after '… +05:00' read as 23:00 the day before). Each run
    # of formats of one kind (ISO-8601 being a kind of its own) is one try, the runs tried in the list's order (the
    # first format that parses wins)
    runs = [list(run) for _, run in itertools.groupby(formats or [ISO], key=_kind)]
    tried = [_tried(trimmed, run) for run in runs]
    parsed = tried[0] if len(tried) == 1 else exp.Coalesce(this=tried[0], expressions=tried[1:])
    return fill("CASE WHEN NOT :bad THEN CAST(:p AS TIMESTAMP) END", bad=impossible_offset(trimmed), p=parsed)


def _tried(trimmed: exp.Expression, run: list[str]) -> exp.Expression:
    """TIMESTAMPTZ of one run of formats of one kind, NULL where none parses."""
    if run[0] == ISO:  # ISO-shaped text only: DuckDB's cast alone reads '1/1/15 0:00' as the year 1
        return fill("CASE WHEN regexp_full_match(:t, :re) THEN TRY_CAST(:t AS TIMESTAMPTZ) END", t=trimmed,
                    re=lit(ISO_PATTERN))
    if run[0] in EPOCHS:  # a number of its unit's size only (a second read as a millisecond is no time)
        pattern, read = EPOCHS[run[0]]
        return fill(f"CASE WHEN regexp_full_match(:t, :re) THEN {read} END", t=trimmed, re=lit(pattern))
    return fill("CAST(try_strptime(:t, :f) AS TIMESTAMPTZ)", t=trimmed, f=exp.Array(expressions=[lit(f) for f in run]))


def parse_typed(column: exp.Expression, raw_type: str, text: exp.Expression, formats: list[str]) -> exp.Expression:
    """UTC TIMESTAMP of a raw column: typed times are converted (zones to UTC), anything else parsed as text."""
    if raw_type.upper() not in TEMPORAL:
        return parse_text(text, formats)
    if "ZONE" in raw_type.upper():  # the session is in UTC: the cast gives the UTC wall time
        return fill("CAST(CAST(:c AS TIMESTAMPTZ) AS TIMESTAMP)", c=column)
    return fill("CAST(:c AS TIMESTAMP)", c=column)


def out_of_range(value: exp.Expression) -> exp.Expression:
    """True where a parsed time lies outside the accepted range."""
    low, high = ACCEPTED_RANGE
    return fill(":v < CAST(:a AS TIMESTAMP) OR :v >= CAST(:b AS TIMESTAMP)", v=value, a=lit(low), b=lit(high))


def range_reason(column: str, value: exp.Expression) -> exp.Expression:
    """`ts: 9999-12-31 00:00:00 is outside the accepted range 1970-01-01..2099-12-31`."""
    return fill(":a || CAST(:v AS VARCHAR) || :b", a=lit(f"{column}: "), v=value,
                b=lit(f" is outside the accepted range {ACCEPTED_TEXT}"))


def in_range(value: exp.Expression) -> exp.Expression:
    """True where a parsed time is a time the load accepts (parsed, and inside ACCEPTED_RANGE)."""
    return fill(":v IS NOT NULL AND NOT (:out)", v=value, out=out_of_range(value))


def suggest_format(con: duckdb.DuckDBPyConnection, samples: list[str], tried: list[str] | tuple[str, ...] = ()
                   ) -> str | None:
    """The format (ISO-8601 or a common one, not one `tried` already) that parses the most of `samples` into the
    accepted range as the load parses them (None if none parses any; a tie goes to the first in that order)."""
    candidates = tuple(f for f in (ISO, *EPOCHS, *COMMON_FORMATS) if f not in tried)
    if not candidates:  # every one tried: a query of no counts is no query
        return None
    found = con.execute(_counting(candidates), [list(samples)]).fetchall()[0]
    best = max(range(len(candidates)), key=lambda i: (found[i], -i), default=None)
    return candidates[best] if best is not None and found[best] else None


@functools.lru_cache(maxsize=32)
def _counting(candidates: tuple[str, ...]) -> str:
    """The query counting the samples (its one parameter, a list of text) each candidate format parses into the
    accepted range: built once per list of candidates (~0.35 s of building and rendering per call otherwise, paid
    by every time warning of a load)."""
    parsed = exp.select(*[alias(parse_text(exp.column("v"), [f]), f"p{i}") for i, f in enumerate(candidates)]).from_(
        fill("(SELECT unnest(CAST(? AS VARCHAR[])) AS v)"))  # each parse once: in_range names its value 3 times
    counts = [fill("count(*) FILTER (:ok)", ok=in_range(exp.column(f"p{i}"))) for i in range(len(candidates))]
    return render(exp.select(*counts).from_(parsed.subquery("parsed")))
