"""A workspace: a folder with data/dataset.yaml, strategies/, detectors/ and data/console.duckdb."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from riskconsole.errors import DataError
from riskconsole.roots import REPO_ROOT as REPO_ROOT  # re-exported: the repository, the default workspace
from riskconsole.roots import resolve_root

if TYPE_CHECKING:  # the config models and lists are imported where used: a cached backtest loads no model
    from riskconsole.config import Dataset, Detector, Strategy
    from riskconsole.lists import ListSet


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace, and the two kinds of DuckDB connection to its database."""

    root: Path

    @classmethod
    def resolve(cls, arg: str | os.PathLike | None = None) -> Workspace:
        """`--workspace`, else $RISKCONSOLE_WORKSPACE, else the workspace the current directory is in (the nearest
        folder up from it holding data/dataset.yaml: `cd` into a workspace and run, as in a git checkout), else the
        repository itself (`roots.resolve_root`: the same answer without DuckDB)."""
        return cls(resolve_root(arg))

    @property
    def db_path(self) -> Path:
        return self.root / "data" / "console.duckdb"

    @property
    def dataset_path(self) -> Path:
        return self.root / "data" / "dataset.yaml"

    @property
    def strategies_dir(self) -> Path:
        return self.root / "strategies"

    @property
    def detectors_dir(self) -> Path:
        return self.root / "detectors"

    @property
    def lists_dir(self) -> Path:
        return self.root / "lists"

    @property
    def models_dir(self) -> Path:
        return self.root / "data" / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def rel(self, path: str | os.PathLike) -> str:
        """A path as the user should see it: relative to the workspace when inside it; a link to no named file (a
        pipe: /dev/stdin) as given."""
        given = Path(path)
        path = given.resolve()
        if not path.exists() and given.exists():  # /dev/stdin -> /proc/PID/fd/pipe:[N], which names nothing
            return os.path.abspath(given)
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def path(self, relative: str | os.PathLike) -> Path:
        """Resolve a path written in a workspace file (relative to the workspace root)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.root / p

    def dataset(self, path: str | os.PathLike | None = None) -> Dataset:
        """Load and validate the dataset spec."""
        from riskconsole.config import Dataset, load_model

        path = Path(path) if path else self.dataset_path
        return load_model(path, Dataset, self.rel(path))

    def strategy(self, path: str | os.PathLike) -> Strategy:
        """Load and validate a strategy YAML (syntax and shape only; expressions are checked on compile)."""
        from riskconsole.config import Strategy, load_model

        return load_model(Path(path), Strategy, self.rel(path))

    def lists(self, dataset: Dataset) -> ListSet:
        """The workspace's lists (`lists/NAME.csv`), compared with the dataset's event time."""
        from riskconsole.lists import ListSet

        return ListSet(self.lists_dir, dataset.columns.time, self.root)

    def detector(self, path: str | os.PathLike) -> Detector:
        """Load and validate a detector YAML."""
        from riskconsole.config import Detector, load_model

        return load_model(Path(path), Detector, self.rel(path))

    def connect(self, read_only: bool = False, database: Path | None = None,
                views: bool = True) -> duckdb.DuckDBPyConnection:
        """A full connection, for ingest and training (trusted SQL only); `database` is a file other than the live one
        (a load builds its new database beside the live file, with the same settings). `views=False`: do not check
        that the folders its views read are there (a load that replaces it). A writable connection to the live file
        first asks the workspace's `riskconsole daemon`, if one runs, to close its own (it reopens on its next
        request): a load or a train from the CLI, the console or a notebook is never refused for it."""
        path = database or self.db_path
        path.parent.mkdir(parents=True, exist_ok=True)
        live = not read_only and database is None
        if live:
            from riskconsole import daemon_client

            daemon_client.let_go(self.root)  # a load or a train, from any face: DuckDB's lock is the daemon's
        try:
            con = connect_duckdb(str(path), read_only=read_only, memory_limit=memory_limit())
        except duckdb.IOException as err:  # the holder may be a daemon of this workspace at its old path (moved)
            holder = lock_holder(err)
            if not (live and holder is not None and daemon_client.let_go_process(holder)):
                raise
            con = connect_duckdb(str(path), read_only=read_only, memory_limit=memory_limit())
        con.execute("SET TimeZone = 'UTC'")
        return self._views_readable(con, path) if views else con

    def connect_safe(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection that cannot touch files or change its configuration.

        Every query that contains user expressions (rules, population) runs here.
        """
        if not self.db_path.exists():
            raise DataError(f"{self.rel(self.db_path)}: no database yet (run `riskconsole load` or `riskconsole demo`)")
        return self._views_readable(safe_connection(str(self.db_path)), self.db_path)

    def _views_readable(self, con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyConnection:
        """`con`, once the data version folders its views read (a load on Spark: `storeviews`) are found.

        Raises:
            DataError: a folder is gone (the workspace moved, or the folder was removed); `con` is closed."""
        from riskconsole.storeviews import folders

        for folder in folders(con):
            if not Path(folder).is_dir():
                con.close()
                raise DataError(f"{self.rel(path)}: its events and features are views of the Parquet of a load on "
                                f"spark in {folder}, which is gone (the workspace moved or the folder was removed): "
                                "load the data again (riskconsole load)")
        return con


def lock_holder(err: Exception) -> int | None:
    """The process DuckDB's "Conflicting lock is held in ... (PID n)" names, None for another error."""
    found = re.search(r"Conflicting lock is held in .*\(PID (\d+)\)", str(err))
    return int(found.group(1)) if found else None


def connect_duckdb(database: str = ":memory:", read_only: bool = False, **settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `settings`, and DuckDB's progress bar only where stdout is a terminal: DuckDB prints
    it to stdout, so in a log or a pipe it would be kilobytes of carriage returns. (A second connection to an
    instance this process already locked keeps DuckDB's default; its queries run on cursors, which show no bar.)"""
    con = duckdb.connect(database, read_only=read_only, config=settings)
    try:
        con.execute(f"SET enable_progress_bar = {'true' if _stdout_is_terminal() else 'false'}")
    except duckdb.Error:
        pass
    return con


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (ValueError, OSError):  # a closed or odd stream: no terminal
        return False


def memory_limit() -> str:
    """DuckDB's memory cap: 40% of this machine's memory (at most 16 GB), leaving room for numpy and models.

    Overridden by $RISKCONSOLE_MEMORY_LIMIT (any DuckDB size, e.g. 4GB).
    """
    if os.environ.get("RISKCONSOLE_MEMORY_LIMIT"):
        return os.environ["RISKCONSOLE_MEMORY_LIMIT"]
    total = machine_memory()
    return "4GB" if total is None else f"{max(1, min(16, int(total * 0.4 / 2**30)))}GB"


CGROUP_MEMORY = (Path("/sys/fs/cgroup/memory.max"),  # cgroup v2: bytes, or "max"
                 Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))  # cgroup v1: bytes (a huge number: none)


def machine_memory() -> int | None:
    """The memory this process may use in bytes: the machine's, capped by a container's memory limit (docker
    --memory 4g on a 64 GB host: 4 GB; DuckDB's cap and Spark's driver taken from the host's were killed for memory
    instead of spilling); None where the system does not say."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in CGROUP_MEMORY:
        try:
            limit = int(path.read_text().strip())
        except (OSError, ValueError):  # no such file, or "max"
            continue
        if limit > 0 and (total is None or limit < total):
            total = limit
    return total


def safe_connection(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """Open `database` with external access disabled and the configuration locked. The only files it may open are
    those of the data version folder its views read after a load on Spark (`storeviews`; DuckDB's permission covers
    writing there too: only our own statements and checked expressions run on it)."""
    read_only = database != ":memory:"
    con = connect_duckdb(database, read_only=read_only, memory_limit=memory_limit())
    locked = con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]
    if not locked:  # a connection to an instance this process already opened and locked needs nothing more
        from riskconsole.storeviews import folders

        readable = [folder.rstrip("/") + "/" for folder in folders(con)]  # a load on Spark's views (`viewable`)
        if readable:
            listed = ", ".join("'" + entry.replace("'", "''") + "'" for entry in readable)
            con.execute(f"SET allowed_directories = [{listed}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
    return con
