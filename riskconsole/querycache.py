"""The compiled-query cache: a CLI backtest run again on the same files and data skips parsing and compiling.

A backtest's answer depends on the strategy text (and the baseline's), data/dataset.yaml, the list files, the loaded
data and its detector scores, the run's options and the code; its SQL depends on nothing else. So the SQL of a run
(the grouped query, the window's span, the decisions query) and what the report reads of the compiled strategies
(rule names, actions, on/off, params, detectors, list versions) are kept under `data/cache/compiled/`, keyed by a
sha256 of all of those, and the next run with the same key runs that SQL without importing sqlglot, parsing YAML or
checking expressions again (issue 14: ~0.2 of the ~1.25 CPU-s of a CLI backtest at 2M events). The queries
themselves always run: the numbers are computed from the data every time. Parsed YAML is kept the same way, keyed by
its text, and so is a view of each validated config file (`validated`, `configfile.py`): a cached run reads those and
builds no pydantic model.

A load or a train gives a new data version, an edit of any file a new key: a stale entry is never read, and is
removed once 64 newer ones exist. `RISKCONSOLE_COMPILED_CACHE=0` turns the cache off; deleting the folder clears it.
Entries are read with an unpickler that builds only plain data (no class but dates and times), so a planted file can
at most hold SQL, which runs on the same locked, read-only connection as every strategy query.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

CACHE_DIR = Path("data") / "cache" / "compiled"
CACHE_ENV = "RISKCONSOLE_COMPILED_CACHE"  # "0": neither read nor write the cache
KEEP = 64  # entries kept (the newest)
UNKEYED = ("RISKCONSOLE_WORKSPACE", "RISKCONSOLE_DAEMON")
_PACKAGE = Path(__file__).resolve().parent
_PLAIN = {("datetime", "date"), ("datetime", "datetime"), ("datetime", "time"), ("datetime", "timedelta"),
          ("builtins", "set"), ("builtins", "frozenset")}


def enabled() -> bool:
    """Whether the cache is on (`RISKCONSOLE_COMPILED_CACHE=0` turns it off)."""
    return os.environ.get(CACHE_ENV, "1").strip() != "0"


def key(*parts: object) -> str:
    """sha256 of the parts (bytes as they are, anything else as its repr) and of everything a compiled query
    depends on besides them: riskconsole's code (every module's size and mtime), the versions of sqlglot, DuckDB and
    Python, and every RISKCONSOLE_* setting (limits change what compiles) but the two that choose where a command
    runs, not what it compiles (the workspace: the cache is its own; `riskconsole daemon`'s switch: a command it
    answers finds the entries an in-process run left, and prints what that run would)."""
    digest = hashlib.sha256()
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith("RISKCONSOLE_") and k not in UNKEYED)
    for part in (*parts, _code_stamp(), settings):
        data = part if isinstance(part, bytes) else repr(part).encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


_STAMP: list = []


def _code_stamp() -> tuple:
    """What identifies the code that compiles: riskconsole's modules (an edit changes size or mtime), sqlglot's
    version file (found without importing sqlglot), DuckDB's and Python's versions."""
    if not _STAMP:
        ours = tuple((str(f.relative_to(_PACKAGE)), *_file_stamp(f)) for f in sorted(_PACKAGE.rglob("*.py")))
        import importlib.util

        import duckdb

        spec = importlib.util.find_spec("sqlglot")
        version = Path(spec.origin).with_name("_version.py") if spec and spec.origin else None
        sqlglot = version.read_text() if version is not None and version.exists() else None
        _STAMP.append((ours, sqlglot, duckdb.__version__, sys.version))
    return _STAMP[0]


def _file_stamp(path: Path) -> tuple:
    """(mtime, size) of a module; of the link itself when it points nowhere (an editor's `.#NAME.py` lock); None
    when it is gone since it was listed."""
    for stat in (path.stat, path.lstat):
        try:
            st = stat()
            return st.st_mtime_ns, st.st_size
        except OSError:
            continue
    return None, None


class _PlainUnpickler(pickle.Unpickler):
    """Builds plain data only: containers, numbers, text, dates and times; any other class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def read(root: Path, name: str) -> Any:
    """The entry `name` of the workspace at `root`, or None (absent, unreadable or not plain data: a miss)."""
    if not enabled():
        return None
    try:
        data = (root / CACHE_DIR / f"{name}.pkl").read_bytes()
        return _PlainUnpickler(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - any damage to an entry is a miss, never an error
        return None


def write(root: Path, name: str, value: Any) -> None:
    """Keep `value` (plain data) as entry `name`, atomically; keeps the newest `KEEP` entries. A workspace that
    cannot be written is left alone (the next run compiles again)."""
    if not enabled():
        return
    folder = root / CACHE_DIR
    temp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            temp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(temp, folder / f"{name}.pkl")
        except OSError:
            temp.unlink(missing_ok=True)  # a full disk: no partial file left for ever (eviction sees *.pkl only)
            raise
        entries = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def remembered(root: Path, name: str | None, plain: Callable[[Any], bool], compute: Callable[[], Any]) -> Any:
    """`compute()`, kept as entry `name` for the next run (None: not kept); a kept value is read back where
    `plain(value)` holds (anything else, planted or foreign, is a miss)."""
    found = read(root, name) if name else None
    if isinstance(found, tuple) and len(found) == 1 and plain(found[0]):
        return found[0]
    value = compute()
    if name:
        write(root, name, (value,))
    return value


def parsed_yaml(root: Path, text: str, label: str, parse: Callable[[str, str], Any], pending: list) -> Any:
    """`parse(text, label)` (the strict YAML reader), kept by the text's hash: the same text reads the same. A new
    entry is appended to `pending` (name, value) for `write`, so a run that fails later leaves no file behind."""
    name = "yaml-" + key("yaml", text)
    found = read(root, name)
    if isinstance(found, tuple) and len(found) == 1:  # anything else (planted, foreign) is a miss
        return found[0]
    data = parse(text, label)
    pending.append((name, (data,)))
    return data


def validated(root: Path, kind: str, text: str, check: Callable[[Any], bool], build: Callable[[], Any],
              pending: list) -> tuple[Any, bool]:
    """(what `build()` made of a config file's `text`, whether it was read from the cache): a view of the validated
    model (`configfile.py`), kept by the text's hash. `build` parses and validates the file and returns the view's
    plain data (None: no view, e.g. an entity-level strategy); only what it built is written (appended to `pending`,
    like `parsed_yaml`), so an entry holds what the validated model said. An entry `check` refuses is a miss."""
    name = f"view-{kind}-" + key("view", kind, text)
    found = read(root, name)
    if found is not None and check(found):
        return found, True
    data = build()
    if data is not None:
        pending.append((name, data))
    return data, False
