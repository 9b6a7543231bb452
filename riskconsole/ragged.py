"""Rows of a CSV file with more or fewer fields than its header: found and named by file and line.

DuckDB meets such a row in one of three ways, none of which names it usefully: in the rows its sniffer samples
(the first 20,480 or so) the row can make the sniffer give up ("Error when sniffing file") or pick another dialect
(a `;` file read as `,`-separated, its header taken for a line to skip), so the mapped columns seem missing; after
those rows the read fails ("CSV Error on Line: N"). Each is explained here by sniffing the file again tolerantly
(`ignore_errors`, which sniffs past the odd rows) and reading it with that dialect into DuckDB's reject tables: the
first ragged line, its field count against the header's, and how many such lines there are. Only a load that
already failed is explained: what loads today loads the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import count
from typing import Any, Callable

import duckdb

from riskconsole.escape import printable

Shown = Callable[[str], str]  # a file's path as the user should see it (workspace-relative)
_TABLES = count()
_NONE = ("(empty)", "")


@dataclass(frozen=True)
class Ragged:
    """The first line of a CSV file whose field count is not its header's, and how many lines are so."""

    file: str
    line: int
    found: int
    expected: int
    sep: str
    lines: int = 1

    def message(self, shown: Shown) -> str:
        """One line: the file, the line, the counts and the fix."""
        more = f" (and {self.lines - 1:,} more line(s) like it)" if self.lines > 1 else ""
        sep = printable(self.sep)
        fix = (f"quote the field that holds '{sep}' or remove the extra field"
               if self.found > self.expected else "add the missing field (an empty one is fine) or remove the line")
        return (f"{shown(self.file)}: line {self.line} has {self.found} fields where the header has "
                f"{self.expected} (fields separated by '{sep}'){more}: {fix}")


def tolerant_dialect(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, Any] | None:
    """The dialect DuckDB's sniffer finds in a file when told to pass over rows that do not fit (None if it finds
    none): delimiter, quote, escape, lines skipped, header and column names."""
    from riskconsole.sources import literal_file  # sources imports this module

    try:
        row = con.execute("SELECT Delimiter, Quote, Escape, SkipRows, HasHeader, Columns FROM "
                          "sniff_csv($f, ignore_errors = true)", {"f": literal_file(path)}).fetchall()[0]
    except (duckdb.Error, IndexError):
        return None
    return {"delim": row[0], "quote": "" if row[1] in _NONE else row[1], "escape": "" if row[2] in _NONE else row[2],
            "skip": int(row[3]), "header": bool(row[4]), "columns": [c["name"] for c in row[5]]}


def first_ragged(con: duckdb.DuckDBPyConnection, path: str, dialect: dict[str, Any]) -> Ragged | None:
    """The first line of `path` whose field count is not the header's when read with `dialect` (one read of the
    whole file into DuckDB's reject tables), None when there is none."""
    from riskconsole.sources import literal_file  # sources imports this module

    n = next(_TABLES)
    errors, scans = f"_ragged_errors_{n}", f"_ragged_scans_{n}"
    options = {k: dialect[k] for k in ("delim", "quote", "escape", "skip", "header")}
    try:
        con.execute(f"SELECT count(*) FROM read_csv($f, delim = $delim, quote = $quote, escape = $escape, "
                    f"skip = $skip, header = $header, all_varchar = true, hive_partitioning = false, "
                    f"store_rejects = true, rejects_table = '{errors}', rejects_scan = '{scans}')",
                    {"f": literal_file(path), **options}).fetchall()
        # DuckDB rejects a line with a field too many once per extra field ("Found: 11", "Found: 12", ...): a
        # line's count is its largest, and lines are counted once each
        ragged = f"FROM {errors} WHERE error_type IN ('TOO MANY COLUMNS', 'MISSING COLUMNS')"
        rows = con.execute(f"SELECT line, arg_max(error_message, TRY_CAST(regexp_extract(error_message, "
                           f"'Found: (\\d+)', 1) AS BIGINT)), (SELECT count(DISTINCT line) {ragged}) {ragged} "
                           "GROUP BY line ORDER BY line LIMIT 1").fetchall()
    except duckdb.Error:
        return None
    finally:
        for table in (errors, scans):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    if not rows:
        return _trailing_extra(con, path, dialect)
    line, said, lines = rows[0]
    counts = _COUNTS.search(said or "")
    if counts is None:
        return None
    return Ragged(path, int(line), int(counts.group(2)), int(counts.group(1)), dialect["delim"], int(lines))


def _trailing_extra(con: duckdb.DuckDBPyConnection, path: str, dialect: dict[str, Any]) -> Ragged | None:
    """The first line of `path` with one field more than its header whose last field is empty: DuckDB reads the
    line's final delimiter as its end, so the line loads with its values one column off and is in no reject table
    (`e3;…;1;extra;14,5;app;` under a 6-field header loads amount = 'extra'). Read with one column more than the
    header, padded where a line has none, empty text kept apart from a missing field (`nullstr` that no field is)."""
    from riskconsole.sources import literal_file  # sources imports this module

    if not dialect["header"] or not dialect["columns"]:
        return None
    width = len(dialect["columns"])
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width + 1)) + "}"
    options = {k: dialect[k] for k in ("delim", "quote", "escape", "skip")}
    try:
        first, lines = con.execute(
            f"SELECT min(ordinality), count(*) FROM read_csv($f, delim = $delim, quote = $quote, escape = $escape, "
            f"skip = $skip, header = true, auto_detect = false, columns = {columns}, null_padding = true, "
            f"nullstr = $none, hive_partitioning = false) WITH ORDINALITY WHERE c{width} IS NOT NULL",
            {"f": literal_file(path), "none": "\x00\x01", **options}).fetchall()[0]
    except duckdb.Error:
        return None
    if not lines:
        return None
    return Ragged(path, int(first) + 1 + int(dialect["skip"]), width + 1, width, dialect["delim"], int(lines))


_DELIMITERS = ",;\t|"


def trailing_suspects(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[str]:
    """The CSV files that may hold a line with one field more than the header, its last empty (`_trailing_extra`):
    a line ending with the header's delimiter and holding one more of it than the header, found in one pass over
    every file's lines (quotes not parsed: a suspect is then read as CSV to be sure)."""
    from riskconsole.sources import literal_files  # sources imports this module

    groups: dict[tuple[str, int], list[str]] = {}  # (the header's delimiter, how many it holds) -> files
    for path in paths:
        head = _first_line(path)
        sep = max(_DELIMITERS, key=head.count) if head else ""
        if sep and head.count(sep) and not head.endswith(sep):
            groups.setdefault((sep, head.count(sep)), []).append(path)
    out = []
    for (sep, n), files in groups.items():  # one pass over the files of each header shape (usually one)
        try:
            found = con.execute(
                "SELECT DISTINCT __f FROM read_csv($files, delim = '\x1f', quote = '', escape = '', header = false, "
                "auto_detect = false, columns = {'l': 'VARCHAR'}, ignore_errors = true, filename = '__f', "
                "hive_partitioning = false) WHERE (ends_with(l, $sep) OR ends_with(l, $sep || chr(13))) "
                "AND length(l) - length(replace(l, $sep, '')) = $n",
                {"files": literal_files(files), "sep": sep, "n": n + 1}).fetchall()
        except duckdb.Error:
            found = [(f,) for f in files]  # each read as CSV instead
        out += [f for (f,) in found]
    return out


MAX_FILES = 100  # files of a glob looked at for a ragged line (as sources.MAX_HEADER_CHECKS)
SNIFF_THREADS = 8


def sniffed_columns(paths: list[str]) -> list[list[str]]:
    """The column names DuckDB's sniffer finds in each CSV file (empty where it finds none), sniffed in parallel
    connections of their own (DuckDB releases the GIL; a cursor of one connection would wait for the others)."""
    from concurrent.futures import ThreadPoolExecutor
    import os
    import threading

    from riskconsole.sources import literal_file  # sources imports this module

    local = threading.local()

    def one(path: str) -> list[str]:
        if not hasattr(local, "con"):
            local.con = duckdb.connect()
        try:
            found = local.con.execute("SELECT Columns FROM sniff_csv($f)", {"f": literal_file(path)}).fetchall()
            return [c["name"] for c in found[0][0]]
        except (duckdb.Error, IndexError):
            return []

    if len(paths) < 2 * SNIFF_THREADS:
        return [one(path) for path in paths]
    with ThreadPoolExecutor(min(SNIFF_THREADS, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, paths))
HEAD_BYTES = 1 << 20


def _first_line(path: str) -> str | None:
    """The file's first line (up to its first MiB, no line break, no BOM); None when it cannot be read."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            return handle.readline(HEAD_BYTES).rstrip("\r\n")
    except OSError:
        return None


def _mentions(path: str, names: list[str]) -> bool:
    """Whether the file's first line (its first MiB) holds every name as written."""
    head = _first_line(path)
    return head is not None and all(name in head for name in names)


_COUNTS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_READ_FILE = re.compile(r"^\s*file = (.+)$", re.MULTILINE)
_SNIFFED_FILE = re.compile(r'Error when sniffing file "(.+?)"')


def explain(con: duckdb.DuckDBPyConnection, err: BaseException, shown: Shown) -> str | None:
    """What to say for DuckDB's refusal of a CSV file holding a ragged line, where the read failed on that line
    ("CSV Error on Line") or the sniffer found no dialect because of it; None for any other error."""
    text = str(err)
    read = _READ_FILE.search(text) if "CSV Error on Line" in text else None
    sniffed = _SNIFFED_FILE.search(text)
    if read is None and sniffed is None:
        return None
    path = (read or sniffed).group(1).strip()
    dialect = tolerant_dialect(con, path)
    found = first_ragged(con, path, dialect) if dialect else None
    if found is not None:
        return found.message(shown)
    counts = _COUNTS.search(text)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    if read is not None and counts and line:  # the reject tables did not see it: DuckDB's own numbers
        sep = re.search(r"^\s*delimiter = (\S+)", text, re.MULTILINE)
        return Ragged(path, int(line.group(1)), int(counts.group(2)), int(counts.group(1)),
                      sep.group(1) if sep else ",").message(shown)
    return None


def misread(con: duckdb.DuckDBPyConnection, files: list[str], missing: list[str], shown: Shown) -> str | None:
    """Why mapped columns seem missing from a CSV source when a ragged line threw DuckDB's sniffer off (a `;` file
    read as `,`-separated, its header skipped): the first file whose tolerant sniff finds a header holding every
    `missing` column and that holds a ragged line, named by it; None when no file is so (the column is missing)."""
    for path in files[:MAX_FILES]:
        if not _mentions(path, missing):  # a typo in the mapping: no sniff needed to say so
            continue
        dialect = tolerant_dialect(con, path)
        if dialect is None or not dialect["header"] or not set(missing) <= set(dialect["columns"]):
            continue
        found = first_ragged(con, path, dialect)
        if found is not None:
            return found.message(shown)
    return None
