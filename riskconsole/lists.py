"""Lists (`lists/NAME.csv`): values a rule can test with `column IN LIST name` (DESIGN.md §3.3).

A list file has a header `value`, an optional `added` and `expires` (ISO-8601 times, converted to UTC; empty:
listed since always, never expires) and an optional `note`; one entry per row. It is read here in Python (the
session's connection cannot read files), checked, cached by (path, mtime, size) and registered on every cursor
that runs conditions as the Arrow table `__list_NAME` (columns `__value` text, `__added` and `__expires`
timestamps). A checked `IN LIST` renders as a semi-join on it: values cast to the column's type, an entry counted
only from its `added` time on (inclusive) and until its `expires` time (exclusive), so a backtest replays the list
as it stood at each event. The rendered table alias carries the file's sha256, so a list edit changes the
condition's SQL and every cache keyed by it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import threading
from time import time_ns
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from riskconsole.errors import ConfigError
from riskconsole.escape import printable
from riskconsole.sqlbuild import exp, fill, ident, lit, render
from riskconsole.times import ACCEPTED_TEXT, out_of_range, parse_text

if TYPE_CHECKING:
    import pyarrow as pa

LIST_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COLUMNS = ("value", "added", "expires", "note")
TABLE_PREFIX = "__list_"
ALIAS_PREFIX = "__v_"  # + the first 12 hex digits of the file's sha256
MAX_CACHED = 64


@dataclass(frozen=True)
class ListFile:
    """One checked list file: its entries as an Arrow table and what identifies this version."""

    name: str
    label: str
    sha256: str
    table: pa.Table  # __value (text), __added (timestamp, NULL: always), __expires (timestamp, NULL: never)

    @property
    def entries(self) -> int:
        return self.table.num_rows

    @property
    def dated(self) -> bool:
        """Some entry has an `added` time (so a match depends on when the entry was listed)."""
        return self.table.column("__added").null_count < self.table.num_rows

    def active(self, at: datetime | None) -> int:
        """Entries listed and not expired at `at` (all of them without a time)."""
        spans = zip(self.table.column("__added").to_pylist(), self.table.column("__expires").to_pylist())
        return sum(1 for a, e in spans if at is None or ((a is None or a <= at) and (e is None or e > at)))

    def summary(self, at: datetime | None = None) -> dict:
        """What a report records of the list version it ran with."""
        return {"name": self.name, "file": self.label, "sha256": self.sha256, "entries": self.entries,
                "active_entries": self.active(at), "active_at": at.isoformat(sep=" ") if at else None}


_CACHE: dict[Path, tuple[tuple, int, str, ListFile]] = {}  # path -> (its stat, read at, label, the checked file)
RACY_NS = 2_000_000_000  # a file changed this close before it was read may change again with the same stat
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ListSet:
    """The lists of one workspace (`lists/`), and the event time column their `expires` is compared with."""

    directory: Path
    time_column: str
    root: Path | None = None  # for file names in messages (relative to the workspace)

    def label(self, path: Path) -> str:
        if self.root is not None:
            try:
                return str(path.resolve().relative_to(self.root.resolve()))
            except ValueError:
                pass
        return str(path)

    def names(self) -> list[str]:
        """Names of the list files present (plain names only: letters, digits, _)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.csv") if LIST_NAME.fullmatch(p.stem))

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.csv"

    def stamp(self) -> tuple:
        """(name, inode, size, mtime, change time) of every list file: changes whenever a list is edited, added,
        replaced or removed, also by an edit that sets its mtime back (`touch -d`, `cp -p`: the change time moves),
        as `load_list`'s content check and the daemon's database stamp see it."""
        out = []
        for name in self.names():
            try:
                st = self.path(name).stat()
            except OSError:
                continue
            out.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        return tuple(out)

    def load(self, name: str) -> ListFile:
        """The checked list `name` (read again only when its file changed).

        Raises:
            ConfigError: one line naming the file and the row or header at fault.
        """
        return load_list(self.path(name), self.label(self.path(name)))

    def register(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Register every readable list on `cur` as `__list_NAME` (a broken file is left out: a strategy that
        uses it gets the file's error when compiled)."""
        for name in self.names():
            try:
                found = self.load(name)
            except (ConfigError, OSError):
                continue
            cur.register(TABLE_PREFIX + name, found.table)


    def render(self, name: str, column: str, column_type: str, where: str) -> exp.Expression:
        """`column IN LIST name` as a semi-join on the registered list, values cast to the column's type.

        Without times it is a plain `IN (SELECT ...)`. With expiry times only, an event matches when the latest
        expiry among the entries equal to its value (NULL: never) is after its time: a correlated subquery on
        equality only, which DuckDB runs as one hash join. With `added` times, an entry counts on the events with
        `added <= t < expires`: an EXISTS correlated on the value and the time (as fast as the expiry form on 2M
        events here, 0.9-1.1 s both; a value re-listed after it expired is two entries, each its own span).
        A NULL column gives NULL either way, so neither `IN LIST` nor `NOT IN LIST` matches it (as SQL's IN).
        """
        found = self.load_for(name, where)
        try:
            to = exp.DataType.build(column_type, dialect="duckdb")
        except Exception:  # noqa: BLE001 - a type this sqlglot does not know: compare as text
            to = exp.DataType.build("VARCHAR")
        value = exp.TryCast(this=exp.column("__value"), to=to)
        table = exp.to_table(TABLE_PREFIX + name).as_(ALIAS_PREFIX + found.sha256[:12])
        col = exp.column(column, quoted=True)
        if found.dated:
            listed = exp.select("1").from_(table).where(fill(
                ":v = :c AND (__added IS NULL OR __added <= :t) AND (__expires IS NULL OR :t < __expires)",
                v=value, c=col.copy(), t=ident(self.time_column)))
            return fill("CASE WHEN :c IS NULL THEN NULL ELSE :e END", c=col, e=exp.Exists(this=listed))
        if found.table.column("__expires").null_count == found.entries:
            query = exp.select(value).from_(table).where(fill(":v IS NOT NULL", v=value.copy()))
            return exp.In(this=col, query=exp.Subquery(this=query))
        latest = exp.select(fill("max(coalesce(__expires, CAST('infinity' AS TIMESTAMP)))")).from_(table).where(
            fill(":v = :c", v=value, c=col.copy()))
        return fill("CASE WHEN :c IS NULL THEN NULL ELSE coalesce(:s > :t, false) END", c=col,
                    s=exp.Subquery(this=latest), t=ident(self.time_column))

    def load_for(self, name: str, where: str) -> ListFile:
        """`load`, with the rule named in the error too."""
        try:
            return self.load(name)
        except OSError as err:
            raise ConfigError(f"{where}: {self.label(self.path(name))}: cannot read ({err.strerror})") from None
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None


def register_lists(cur: duckdb.DuckDBPyConnection, root: Path) -> duckdb.DuckDBPyConnection:
    """Register the lists of the workspace at `root` on a cursor that will run strategy conditions."""
    directory = root / "lists"
    if directory.is_dir():
        ListSet(directory, "", root).register(cur)
    return cur


def report_lists(lists: ListSet | None, used: dict[str, str], last_day: str | None) -> list[dict]:
    """What a report records of each list a strategy read: file, sha256, entries, and entries still active at the
    end of the report's last day (so a report says which list version it ran with)."""
    if lists is None or not used:
        return []
    at = datetime.fromisoformat(last_day) + timedelta(days=1) if last_day else None
    return [lists.load(name).summary(at) for name in used]


def list_files(lists: ListSet | None, used: dict[str, str]) -> dict[str, bytes]:
    """`lists/NAME.csv` -> bytes of each list a strategy read (exports carry them beside the strategy)."""
    if lists is None:
        return {}
    return {f"lists/{name}.csv": lists.path(name).read_bytes() for name in used}


def list_columns(node: exp.Expression | None) -> dict[str, str]:
    """List name -> the column a compiled condition compares with it (`device_id IN LIST blocked_devices`)."""
    found: dict[str, str] = {}
    for table in node.find_all(exp.Table) if node is not None else []:
        if not table.name.startswith(TABLE_PREFIX):
            continue
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        eq = where.find(exp.EQ) if where is not None else None
        subquery = table.find_ancestor(exp.Subquery)
        holder = subquery.parent if subquery is not None else None
        column = eq.expression if eq is not None else getattr(holder, "this", None)
        if isinstance(column, exp.Column):
            found[table.name[len(TABLE_PREFIX):]] = column.name
    return found


def lists_in(node: exp.Expression | None) -> dict[str, str]:
    """Name -> sha256 prefix of every list a compiled condition reads."""
    if node is None:
        return {}
    known = node.meta.get("riskconsole_lists")  # a compiled condition is cached and never changed: walk it once
    if known is not None:
        return dict(known)
    found = {}
    for table in node.find_all(exp.Table):
        if table.name.startswith(TABLE_PREFIX) and table.alias.startswith(ALIAS_PREFIX):
            found[table.name[len(TABLE_PREFIX):]] = table.alias[len(ALIAS_PREFIX):]
    node.meta["riskconsole_lists"] = dict(found)
    return found


def unknown_list(name: str, known: list[str]) -> tuple[str, str]:
    """Problem and fix for a list name with no file."""
    import difflib  # imported on an error's path only

    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown list '{name}'", f"{hint}lists: {', '.join(known) or 'none'}; a list is the file lists/NAME.csv"


# ---------------------------------------------------------------- reading a file


def load_list(path: Path, label: str) -> ListFile:
    """Read and check one list file; checked once per content (its sha256), read again only when it may have changed.

    A long-lived process (a console, `riskconsole daemon`) registers the lists on every cursor and must read what a
    new process would, without reading a 30 MB list each time (28 ms). A file's size and mtime say nothing of an edit
    that keeps both (`touch -d`, `cp -p`), its change time does: the file is trusted unread while its device, inode,
    size, mtime and change time are those seen when it was last read, and its change time was over RACY_NS before
    that read (git's "racily clean" rule: two saves in one tick of the file system's clock share a stat, so a file
    changed just before a read is read again each time until it is older)."""
    read_at = time_ns()
    st = path.stat()
    seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _LOCK:
        hit = _CACHE.get(path)
    if hit is not None and hit[0] == seen and hit[2] == label and st.st_ctime_ns < hit[1] - RACY_NS:
        return hit[3]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    same = hit is not None and hit[2] == label and hit[3].sha256 == digest
    found = hit[3] if same else parse_list(data, path.stem, label, digest)
    with _LOCK:
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.clear()
        _CACHE[path] = (seen, read_at, label, found)
    return found


def parse_list(data: bytes, name: str, label: str, digest: str | None = None) -> ListFile:
    """Check a list file's bytes (whose sha256 is `digest`, computed here if not given) and build its table.

    Raises:
        ConfigError: a missing `value` header, an unknown column, an empty value, a bad `added` or `expires`, an
            `expires` not after `added` (with its row).
    """
    if not LIST_NAME.fullmatch(name):
        raise ConfigError(f"{label}: '{name}' is not a list name (use letters, digits and _, e.g. blocked_devices)")
    text = _decode(data, label)
    nul = text.find("\x00")
    if nul >= 0:  # the CSV reader read it as a space: a value no event holds, listed in silence
        before = text[:nul]
        line = len(before.splitlines()) + (not before or before[-1] in "\r\n")
        raise ConfigError(f"{label}: line {line}: a NUL character (byte 0), which no value holds: save the list as "
                          "plain UTF-8 CSV text")
    header = _header(text, label)
    digest = digest or hashlib.sha256(data).hexdigest()
    if not header:
        return ListFile(name, label, digest, _table([], [], []))
    import pyarrow as pa  # here, as in every function below: a workspace without lists never imports pyarrow
    import pyarrow.csv as pacsv  # (issue 14)

    _check_field_counts(text, header, label)
    options = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    try:
        raw = pacsv.read_csv(io.BytesIO(text.encode()), convert_options=options)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as err:
        raise ConfigError(f"{label}: not a readable CSV: {str(err).splitlines()[0]}") from None
    values = [v.strip() for v in raw.column("value").to_pylist()]
    for row, value in enumerate(values, start=1):
        if not value:
            raise ConfigError(f"{label}: row {row}: empty value (every row needs one; delete the row instead)")
    def texts(column: str) -> list[str]:
        return [e.strip() for e in raw.column(column).to_pylist()] if column in header else [""] * len(values)

    added, expires = _parse_times(texts("added"), "added", label), _parse_times(texts("expires"), "expires", label)
    for row, (start, end) in enumerate(zip(added, expires), start=1):
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"{label}: row {row}: expires '{end}' is not after added '{start}' (the entry would "
                              "never match; fix one of the two times)")
    return ListFile(name, label, digest, _table(values, added, expires))


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{label}: not UTF-8 text (byte {err.start}); save it as UTF-8 CSV") from None


def _header(text: str, label: str) -> list[str]:
    """The header row, checked: `value`, optional `expires` and `note`, nothing else, no repeats."""
    first = next(csv.reader(io.StringIO(text, newline="")), None)
    if first is None:
        raise ConfigError(f"{label}: empty file (write a header line 'value,expires' and one entry per row)")
    header = list(first)
    mark = next((m for m in ";\t|" if len(header) == 1 and m in header[0]), None)
    if mark is not None and set(header[0].split(mark)) <= set(COLUMNS):
        raise ConfigError(f"{label}: the header is separated by {mark!r}: a list file is separated by commas "
                          f"({header[0].replace(mark, ',')}; save it as CSV with commas)")
    for column in header:
        if column not in COLUMNS:
            import difflib  # imported on an error's path only

            close = difflib.get_close_matches(column.strip().lower(), COLUMNS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{label}: unknown column '{column}' in the header ({hint}a list has value, and "
                              "optionally added, expires and note)")
    if "value" not in header:
        raise ConfigError(f"{label}: missing the 'value' header (found: {', '.join(header) or 'nothing'}; the "
                          "first line must name the columns, e.g. value,expires)")
    if len(set(header)) != len(header):
        raise ConfigError(f"{label}: a column is named twice in the header ({', '.join(header)})")
    return header


def _check_field_counts(text: str, header: list[str], label: str) -> None:
    """Refuse the first row with more or fewer fields than the header, naming its row (as the other messages count
    rows: blank lines skipped), the line it starts on and the fix, rather than the CSV reader's own words."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    rows, line = 0, reader.line_num
    for fields in reader:
        start, line = line + 1, reader.line_num
        if not fields:
            continue
        rows += 1
        if len(fields) == len(header):
            continue
        where = f"{label}: row {rows} (line {start}): {len(fields)} field{'s' if len(fields) > 1 else ''} where the "\
                f"header has {len(header)} ({', '.join(header)})"
        if line > start and any("\n" in f or "\r" in f for f in fields):  # a quote left open runs on to the end
            raise ConfigError(f"{label}: row {rows} (line {start}): a quoted field runs from line {start} to line "
                              f"{line}: close its quote (a field holding a line break is quoted at both ends)")
        if len(fields) > len(header):
            raise ConfigError(f'{where}: quote a field that holds a comma ("a, b") or remove the extra field')
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields + [""] * (len(header) - len(fields)))
        fixed = printable(out.getvalue())
        raise ConfigError(f"{where}: write every field, empty ones too" + (f" ({fixed})" if len(fixed) <= 80 else ""))


def _parse_times(texts: list[str], column: str, label: str) -> list[datetime | None]:
    """UTC times of `added` or `expires` by the project's time rules (ISO-8601, offsets converted); empty: none."""
    import pyarrow as pa

    if not any(texts):
        return [None] * len(texts)
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("raw", pa.table({"e": _strings(texts)}))
        parsed = parse_text(exp.column("e"), [])
        query = exp.select(exp.alias_(parsed, "t"), exp.alias_(fill("coalesce(:b, false)", b=out_of_range(parsed)),
                                                               "bad")).from_("raw")
        rows = con.execute(render(query)).fetchall()
    finally:
        con.close()
    for row, (text, (value, far)) in enumerate(zip(texts, rows), start=1):
        if text and (value is None or far):
            why = f"outside {ACCEPTED_TEXT}" if far else "not an ISO-8601 time (e.g. 2026-03-01 or 2026-03-01 12:00:00)"
            empty = "to never expire" if column == "expires" else "to count the entry since always"
            raise ConfigError(f"{label}: row {row}: {column} '{text}' is {why}; leave it empty {empty}")
    return [value if text else None for text, (value, _) in zip(texts, rows)]


def _table(values: list[str], added: list[datetime | None], expires: list[datetime | None]) -> pa.Table:
    import pyarrow as pa

    return pa.table({"__value": _strings(values), "__added": _timestamps(added), "__expires": _timestamps(expires)})


# Arrow arrays built from their buffers: `pa.array` of Python values imports pandas first (~0.3 CPU-s that every CLI
# backtest of a workspace with lists would pay, issue 14).
_EPOCH, _MICRO = datetime(1970, 1, 1), timedelta(microseconds=1)


def _strings(values: list[str]) -> pa.Array:
    """`pa.array(values, pa.string())`, without pandas."""
    import pyarrow as pa

    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def _timestamps(times: list[datetime | None]) -> pa.Array:
    """`pa.array(times, pa.timestamp("us"))` of naive (UTC) datetimes, without pandas."""
    import pyarrow as pa

    micros = np.array([0 if t is None else (t - _EPOCH) // _MICRO for t in times], dtype=np.int64)
    valid = np.array([t is not None for t in times], dtype=bool)
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.timestamp("us"), len(times), [bitmap, pa.py_buffer(micros)],
                                 null_count=int((~valid).sum()))


# ---------------------------------------------------------------- editing a file


def read_entries(path: Path) -> list[dict]:
    """The rows of a list file as text (value, added, expires, note), for editing."""
    if not path.exists():
        return []
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    return [{c: (r.get(c) or "").strip() for c in COLUMNS} for r in rows]


def write_entries(lists: ListSet, name: str, rows: list[dict]) -> ListFile:
    """Write `lists/NAME.csv` atomically after checking the new text (a bad entry changes nothing).

    Raises:
        ConfigError: a bad list name, an empty value or a bad `added`/`expires` (with its row).
    """
    path = lists.path(name)
    label = lists.label(path)
    if not LIST_NAME.fullmatch(name):
        raise ConfigError(f"{label}: '{name}' is not a list name (use letters, digits and _, e.g. blocked_devices)")
    columns = [c for c in COLUMNS if c == "value" or any((r.get(c) or "").strip() for r in rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: str(r.get(c) or "").strip() for c in columns} for r in rows)
    data = buffer.getvalue().encode()
    parse_list(data, name, label)
    lists.directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return load_list(path, label)


def add_entry(lists: ListSet, name: str, value: str, expires: str = "", note: str = "", added: str = "") -> ListFile:
    """Add one value (with an optional listing time, expiry and note) to a list, creating the file if needed."""
    rows = read_entries(lists.path(name))
    return write_entries(lists, name, [*rows, {"value": value, "added": added, "expires": expires, "note": note}])


def remove_entry(lists: ListSet, name: str, value: str) -> ListFile:
    """Remove every entry of `value` from a list."""
    rows = read_entries(lists.path(name))
    return write_entries(lists, name, [r for r in rows if r["value"] != value.strip()])



def event_values(cur: duckdb.DuckDBPyConnection, id_column: str, event_id: str, columns: list[str]) -> dict:
    """Column -> value (as list text) of one event of the frame, for "add this value to a list"."""
    if not columns:
        return {}
    query = exp.select(*[exp.alias_(fill("CAST(:c AS VARCHAR)", c=ident(c)), c, quoted=True) for c in columns])
    query = query.from_("frame").where(fill("CAST(:i AS VARCHAR) = :v", i=ident(id_column), v=lit(str(event_id))))
    rows = cur.execute(render(query.limit(1))).fetchall()
    return dict(zip(columns, rows[0])) if rows else {}
