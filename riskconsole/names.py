"""Names the core uses for itself: no source column or feature may take one (user data never reaches them).

Staging reads add `_file` and `ordinality` (`file_row_number` for Parquet); staging casts are `__c_<column>` with
`__file`, `__dup` and `__reason`; the frame adds `_pos` (row position) and `_t` (epoch µs); the quarantine
table adds `reason`, `file` and `row`; a score table holds `_pos` and the detector's score.
Streams and tables load into `stream_NAME` and `table_NAME` (quarantine: `quarantine_NAME`); the unions and joins
that compute their features use `__x<i>`, `__b`, `__v`, `__k`, `__kind` and `__n`, all in the `__` namespace.
"""

from __future__ import annotations

INTERNAL_COLUMNS = ("_pos", "_t", "_file", "ordinality", "file_row_number", "reason", "file", "row")
INTERNAL_PREFIX = "__"
META_TABLE = "_meta"  # one row: the dataset spec, counts and the data version of the last load
MATURITY_TABLE = "_maturity"  # one row: the day range and every label source's maturity curve of the last load
SCORES_TABLE = "_scores"  # one row per detector: the data version its score table was computed for
STORE_TABLE = "_store"  # the data version folders whose Parquet the views of a load on Spark read (storeviews.py)
ACTIONS = ("allow", "review", "block")  # index = action code; decisions are allow > block > review
# What DuckDB's trim strips (the Unicode space separators, category Zs: the space, no-break space, en/em/thin spaces,
# the ideographic space ...; never a tab or a line break), on Spark too (dialects.py): the spaces around a word.
TRIMMED = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
ENGINES = ("duckdb", "spark")  # where features and backtests run (DESIGN §7; `--engine` choices, `engine:` values)
DELEGATED = ("backtest", "gate", "sweep", "optimize", "monitor")  # commands a `riskconsole daemon` may answer


def is_internal(name: str) -> bool:
    """True when `name` is one of the core's own column names (or in its `__` namespace), in any letter case:
    DuckDB matches identifiers without regard to case, so `Reason` would be the staging's `reason`."""
    folded = name.casefold()
    return folded in INTERNAL_COLUMNS or folded.startswith(INTERNAL_PREFIX)


def internal_collision(name: str, label: str, where: str,
                       fix: str = "rename the column in the source file") -> str | None:
    """The one-line refusal for a user column, feature or detector called like an internal name (None when fine)."""
    if not is_internal(name):
        return None
    prefixed = name.startswith(INTERNAL_PREFIX)
    why = f"starts with '{INTERNAL_PREFIX}'" if prefixed else "is a name riskconsole uses itself"
    return f"{label}: {where} '{name}' {why} ({', '.join(INTERNAL_COLUMNS)}, {INTERNAL_PREFIX}*): {fix}"
