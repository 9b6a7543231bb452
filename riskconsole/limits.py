"""Every bound riskconsole puts on untrusted input, in one place, each with the reason for its size.

Strategies, datasets and detectors are files anyone may hand to the console; params, `--set`
values and `--values` lists come from the command line or a browser. None of them may make a
query, a file or the process grow without bound: each size below is checked BEFORE the work it
limits is done, and each refusal is a one-line error that names the limit.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sized
from contextlib import contextmanager
from typing import TYPE_CHECKING

from riskconsole.errors import RiskConsoleError

if TYPE_CHECKING:
    import duckdb

# --- YAML files (dataset, strategy, detector, console editor) -----------------------------------

MAX_CONFIG_BYTES = 1_000_000
"""A YAML config file. The demo's largest is 2.4 KB; 500 rules of 1,000 characters fit. Bigger
files are generated or hostile, and sqlglot parses each expression in Python (no time limit)."""

MAX_YAML_DEPTH = 64
"""Nesting of mappings and lists. A strategy nests 4 deep (rules, a rule, its keys); PyYAML's composer recurses once
per level, so 20,000 levels crash the interpreter (RecursionError)."""

MAX_YAML_NODES = 200_000
"""Values (scalars, lists, mappings) in one YAML file, counted with aliases expanded: ten levels of
ten aliases each (a "billion laughs") is a few hundred bytes that expand to 10^10 values. A
500-rule strategy holds ~5,000; a 10,000-value list param 10,000."""

MAX_NUMBER_CHARS = 100
"""Characters of one YAML integer or float. Python refuses to print an int of more than 4,300
digits (ValueError deep in pydantic or later); no param or cost needs more than 20."""

MAX_NAME_LENGTH = 100
"""A strategy name. It becomes a folder name (`reports/NAME-sweep-PARAM-YYYYMMDD-HHMMSS/`), and
file systems refuse names over 255 bytes."""

MAX_OVERRIDE_CHARS = 10_000
"""One `--set P=V` value: the same bound as one expression (`MAX_EXPRESSION_CHARS`)."""

# --- strategies ---------------------------------------------------------------------------------

MAX_RULES = 500
"""Rules per strategy. Each rule is one CASE in the backtest's single scan and is compiled in Python
(~6 ms each); thousands of rules ran for minutes in the security review. The demo candidate holds 11."""

MAX_EXPRESSION_CHARS = 10_000
"""Characters of one expression as written (`when`, `population`, `sql:`). A rule an analyst can
review fits in a few hundred; sqlglot parses in Python, with no time limit."""

MAX_NESTING = 24
"""Levels of brackets and CASE in one expression, and prefix operators (NOT, -) in a row. sqlglot parses
recursively: the default interpreter stack refused about 45 levels of brackets and 35 of function calls,
and a library that raises the process's recursion limit (quickscorer does, for deep trees) made the same
expression pass in one process and fail in another. A count on the tokens refuses it the same way
everywhere."""

MAX_EXPANDED_LENGTH = 250_000
"""Characters of one expression AFTER its `$params` are substituted. The text itself is bounded
(10,000 characters), but 2,400 references to one long text param in a 110 KB file rendered 3.1 GB
of SQL in 37 s. 250,000 holds a full list param (10,000 ids of 18 digits: ~200,000 characters)."""

MAX_STRATEGY_EXPANDED = 2_000_000
"""Characters of all of a strategy's expressions together, params substituted: what one backtest
query holds. sqlglot builds a tree of every literal in Python (a 10,000-value list param: 9 MB and 1.4 s
here), so 500 rules each at the per-expression bound would need 4.6 GB and minutes."""

MAX_LIST_PARAM = 10_000
"""Values in one list param (`x IN $ids`). Longer lists belong in `lists/NAME.csv`, which DuckDB
joins instead of comparing each event with every value; a 1M-value list ran for minutes."""

_PARAM_REF = re.compile(r"\$\s*([A-Za-z_][A-Za-z0-9_]*)")


def rendered_size(value: object) -> int:
    """An upper bound of the characters a param value renders to in SQL (quotes doubled, CAST around dates)."""
    if isinstance(value, (list, tuple)):
        return sum(rendered_size(v) + 2 for v in value)
    if isinstance(value, str):
        return 2 * len(value) + 2
    if isinstance(value, (int, float, bool)) or value is None:
        return len(str(value))
    return len(str(value)) + 30


def expanded_size(text: str, params: Mapping[str, object]) -> int:
    """An upper bound of the characters of `text` once every `$name` is replaced by its param's value.

    Counts every `$name` in the text, even inside a string literal: an over-estimate, never an under-estimate.
    """
    return len(text) + sum(rendered_size(params[m]) for m in _PARAM_REF.findall(text) if m in params)


# --- sweeps and optimization --------------------------------------------------------------------

MAX_SWEEP_POINTS = 10_000
"""Values of one `--values a:b:step` range; each point is a row of the sweep's report."""

MAX_GRID = 20_000

# Day resamples of a comparison's bootstrap: its weight matrix is resamples x days (100,000 x 365 days is
# ~300 MB); far more than stable 95% intervals need (1,000), and 100M resamples ran out of memory.
MAX_BOOTSTRAP = 100_000
"""Param combinations of `optimize`: each is one compiled strategy and one metrics row. Counted as
the product of the value-list lengths before any combination is built (a 10k x 10k grid once
raised MemoryError while being materialised)."""


def check_grid(grid: Mapping[str, Sized], label: str) -> int:
    """The number of param combinations of `grid` (the product of its value-list lengths), counted
    before any combination is built.

    Raises:
        RiskConsoleError: more than `MAX_GRID` combinations; one line naming `label`.
    """
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_GRID:
        sizes = " x ".join(f"{len(v):,} {name}" for name, v in grid.items())
        raise RiskConsoleError(f"{label}: {sizes} = {count:,} param combinations is too many (at most "
                               f"{MAX_GRID:,}); give fewer values (--values PARAM=a:b:step with a larger step)")
    return count


# --- queries ------------------------------------------------------------------------------------

QUERY_SECONDS_ENV = "RISKCONSOLE_QUERY_SECONDS"
DEFAULT_QUERY_SECONDS = 300.0
"""Wall time of one query that evaluates user expressions. A 20-rule backtest over 10M events takes
~1 s here; five minutes means a runaway expression or window, and a console left hanging."""


class QueryTimeout(RiskConsoleError):
    """A query that evaluates user expressions ran past the time limit and was stopped."""


def query_seconds() -> float:
    """The query time limit: `$RISKCONSOLE_QUERY_SECONDS`, or 300 s.

    Raises:
        RiskConsoleError: the variable is set but is not a positive number.
    """
    text = os.environ.get(QUERY_SECONDS_ENV, "").strip()
    if not text:
        return DEFAULT_QUERY_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise RiskConsoleError(f"{QUERY_SECONDS_ENV}={text!r}: give a number of seconds > 0, e.g. 300")
    return seconds


@contextmanager
def query_time_limit(con: duckdb.DuckDBPyConnection, what: str, seconds: float | None = None) -> Iterator[None]:
    """Interrupt queries run on `con` inside the block once they have run `seconds` (default: `query_seconds()`).

    Args:
        con: the connection (or cursor) the block runs its query on.
        what: names what ran, for the message, e.g. ``"strategy 'candidate'"``.
        seconds: the limit; None reads `$RISKCONSOLE_QUERY_SECONDS`.

    Raises:
        QueryTimeout: the query was stopped; one line naming `what`, the limit and the fix.
    """
    import duckdb  # here, not at the top: config.py reads the bounds above without loading DuckDB

    limit = query_seconds() if seconds is None else seconds
    lock, state = threading.Lock(), {"done": False, "fired": False}

    def stop() -> None:
        with lock:  # never interrupt once the block has ended: the next query must not pay for this one
            if not state["done"]:
                state["fired"] = True
                con.interrupt()

    timer = threading.Timer(limit, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        if not state["fired"]:
            raise
        raise QueryTimeout(f"{what}: the query ran longer than {limit:g} s and was stopped (limit: "
                           f"${QUERY_SECONDS_ENV}); narrow the window (--from/--to), simplify the expressions, "
                           f"or raise the limit") from None
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
