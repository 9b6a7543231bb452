"""The Spark engine: a loaded workspace's features and backtests as Spark SQL (DESIGN §7, docs/scale.md).

A load with engine spark reads, types and quarantines every source on Spark (spark_load.py) into
`data/spark/<data version>/` or `spark.store`/`<data version>/` (spark_store.py: through Hadoop's FileSystem API;
`events` as Parquet, one folder per day, every `stream_NAME` and `table_NAME`); after a
DuckDB load they are exported there from DuckDB instead. Spark builds the frame there with the queries DuckDB runs
(`features.frame_plan`, rendered with `dialects.spark()`), except that keyed distinct counts, and minima, maxima and
standard deviations, over time windows are sweeps (`sweep=True`, streams.py) and counts, sums and averages running
totals (spark_render.py): Spark re-aggregates a bounded frame for every row. A backtest's
grouped query (`backtest.groups_query`) runs on that frame: only the grouped rows come back to Python. The export
and the frame are built once per data version (a load gives a new one). Every trained detector (LightGBM and the
PyOD kinds) scores the frame on the executors (`spark_scores.py`); lists (`IN LIST`) are Spark views of the list
files (`spark_lists.py`). Graph features run graphs.py's queries on Spark; only the distinct (node, link value, day)
pairs come back, their components are computed in Python as on DuckDB, and the values are joined back on Spark.

`monitor` runs its passes over events here too (its grouped KPI and segment passes, drift's bins and coded pass,
through `arrow`).

The outcome blocks of a dataset mapping `prod_action` come from the same grouped query (its grouping set by
observability class). Entity-level strategies: the entity frame is built on Spark from the export by entities.py's
queries and read as `frame` by their queries (`spark_entities.py`).

Not on Spark yet: detector training (the console's Backtest and Tune reports run here).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from sqlglot import exp

from riskconsole.config import Dataset, Feature, Level, SparkSettings, redact_remote
from riskconsole.errors import DataError, RiskConsoleError
from riskconsole.engines.spark_entities import EntityRunner, entity_view
from riskconsole.engines.spark_render import first_line, render
from riskconsole.engines.spark_lists import SparkLists
from riskconsole.engines.spark_read import quoted
from riskconsole.engines.spark_scores import _local_workers, digest, model_files, score_frame, scored_on_spark
from riskconsole.engines.spark_store import Store
from riskconsole.features import GRAPH_TABLE, frame_plan
from riskconsole.entities import EntityView
from riskconsole.graphs import GraphSource, graph_query, graph_values
from riskconsole.names import META_TABLE, SCORES_TABLE
from riskconsole.sources import literal_files
from riskconsole.sqlbuild import fill, ident
from riskconsole.sqlbuild import render as duck_sql
from riskconsole.storeviews import create_view, folders
from riskconsole.strategy import SCORE_TABLE_PREFIX, CompiledStrategy, Frame
from riskconsole.workspace import Workspace, machine_memory

SPARK_DIR = "spark"  # under data/: one folder per data version (or spark.store of the dataset)
VERSION = re.compile(r"[0-9a-f]{32}")  # a data version's folder name (ingest: uuid4().hex)
DONE = "_riskconsole.json"  # written last: the version's export and frame are complete
EXPORTED = "_exported.json"  # written last by the export (entity frames need only it)
LOADED = "_loaded.json"  # written by a load on Spark (spark_load.py): the tables it wrote here, not to export
OWNER = "_workspace.json"  # written first: the workspace whose version this is (a store may be shared)
DAY = "__day"  # the partition column of the exported events (not a column of the frame)
LOCAL_SHUFFLE_PARTITIONS = 8  # local mode: at least this many tasks per shuffle (Spark's 200 is for clusters)
LOCAL_TASKS_PER_CORE = 3  # and a few per core of a larger machine (local[32]: 96)
QUIET_DAEMON = "riskconsole.engines.spark_daemon"  # local mode's Python worker daemon (its docstring says why)
INSTALL_JAVA = "apt-get install openjdk-17-jre-headless, or set JAVA_HOME"
_VIEWS_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # SparkSession -> the data folder its `frame`
# view reads now (weak: a session collected and replaced by another at the same address is not mistaken for it)
_BUILDING = threading.Lock()  # one export and frame build at a time in this process (two console sessions: one build)


def missing(settings: SparkSettings | None = None) -> str | None:
    """One line saying what to install when PySpark or Java is missing (None when both are there). A Spark Connect
    client (`settings.remote`) needs PySpark's Connect extra (gRPC), and Java only for a server started here."""
    connect = settings is not None and settings.connect
    client = "spark.remote needs PySpark's Spark Connect client: pip install 'pyspark[connect]==4.3.*'"
    if importlib.util.find_spec("pyspark") is None:
        return client if connect else \
            "engine spark needs PySpark: pip install 'pyspark==4.3.*' (and Java 17: " + INSTALL_JAVA + ")"
    if connect and not all(_installed(m) for m in ("grpc", "grpc_status", "google.rpc", "zstandard")):
        return client
    if settings is not None and settings.server is not None:
        return None  # the server's Java, not ours
    java_home = os.environ.get("JAVA_HOME")
    if java_home:  # Spark's launcher runs $JAVA_HOME/bin/java whenever JAVA_HOME is set, never PATH's java
        if not Path(java_home, "bin", "java").is_file():
            return (f"engine spark: $JAVA_HOME {java_home} has no bin/java: point JAVA_HOME at a Java 17 "
                    "installation (e.g. /usr/lib/jvm/java-17-openjdk-amd64), or unset it to use PATH's java")
        return None
    if shutil.which("java") is None:
        return "engine spark needs Java 17 on PATH: " + INSTALL_JAVA
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # `google.rpc` without a `google` package
        return False


def start(settings: SparkSettings) -> Any:
    """A SparkSession from the dataset's `spark:` settings (local[*] by default; the time zone is always UTC)."""
    reason = missing(settings)
    if reason:
        raise RiskConsoleError(reason)
    # pyspark 4.3 warns that it does not fully support pandas 3 (on import and on some calls): riskconsole passes
    # it only Arrow tables
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark.sql import SparkSession

    quiet_query_errors()
    builder = SparkSession.builder.appName("riskconsole")
    builder = builder.remote(settings.remote) if settings.connect else builder.master(settings.master)
    for key, value in session_conf(settings).items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    if settings.server is not None:
        _reachable(settings)
    else:  # a driver (or a local Connect server) starts here: errors only, from its first line
        quiet_logs()
        if settings.connect:  # a Connect server PySpark starts here: its Python workers are this interpreter
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # (PATH's python3 may lack pyarrow, LightGBM)
    if not settings.connect:
        builder = builder.config("spark.api.mode", "classic")  # not Connect because SPARK_REMOTE is set
    try:
        with warnings.catch_warnings():
            if settings.connect and settings.server is None:  # the local server started with them; the
                warnings.filterwarnings("ignore", message="Failed to set spark", category=UserWarning)  # client
                # then tries to set its static ones again as session settings, and warns for each
            session = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - a Connect URL's parameters (a token) must not reach the message
        if not settings.connect:
            if "JAVA_GATEWAY_EXITED" in str(err):  # the JVM did not start (an older Java, a broken install)
                java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") \
                    else shutil.which("java")
                raise RiskConsoleError(f"engine spark: Java ({java}) exited before Spark started (its own message "
                                       f"is above): Spark 4 needs Java 17 or later (check `{java} -version`; "
                                       f"{INSTALL_JAVA}), and a Java option of spark.conf or spark-defaults.conf "
                                       "must be one the JVM takes") from None
            raise
        secret = settings.remote.partition(";")[2]
        text = first_line(err).replace(secret, "…") if secret else first_line(err)
        raise RiskConsoleError(f"spark.remote {redact_remote(settings.remote)}: no Spark Connect session: "
                               f"{text}") from None
    if is_connect(session) != settings.connect:
        raise RiskConsoleError("the Spark session is a Spark Connect client although dataset.yaml sets spark.master "
                               "($SPARK_REMOTE or spark.api.mode says so): unset them, or set spark.remote")
    if not is_connect(session):  # a Connect server keeps its own log settings
        session.sparkContext.setLogLevel("ERROR")
    _local_workers(session)  # before any DataFrame of Python rows (a load's file list): PySpark fixes its workers'
    return session  # Python when it makes one, and its default `python3` on PATH lacked riskconsole (local mode)


def _reachable(settings: SparkSettings) -> None:
    """Refuse a Connect server that does not answer, in seconds: PySpark's client retries an unreachable one with
    backoff for minutes before it says anything."""
    import socket

    host, port = settings.server
    try:
        socket.create_connection((host.strip("[]"), port), timeout=10).close()
    except OSError as err:
        raise RiskConsoleError(f"spark.remote {redact_remote(settings.remote)}: no Spark Connect server answers "
                               f"there ({err.strerror or err}): start it (start-connect-server.sh), or check the host "
                               "and port") from None


def is_connect(spark: Any) -> bool:
    """Whether `spark` is a Spark Connect session: no JVM here, so no SparkContext, Hadoop FileSystem or broadcast
    variables (the store, scoring and the load's file list then take their JVM-free paths)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def isolated(spark: Any) -> Any:
    """A new session of `spark`'s application (classic or Connect) with temporary views of its own and `spark`'s
    settings (a new session starts from the application's; `start`'s and a caller's own are set again): a load
    staging its data version builds and scores there, since `events`, `frame` and the other views of the shared
    session belong to the live version, which the console may be querying.

    A Spark Connect client's session is returned as it is: PySpark 4.3's Connect `newSession()` gives a session in
    which a build's DataFrames were not found ("CONNECT_INVALID_PLAN.DATAFRAME_NOT_FOUND"), and the client then hung
    at exit releasing it. A load through Connect still shares the session's views with the live version."""
    if is_connect(spark):
        return spark
    _local_workers(spark)  # before the load's first DataFrame of Python rows: its workers' Python is fixed then
    session = spark.newSession()
    theirs, ours = spark.conf.getAll, session.conf.getAll
    for key, value in theirs.items():
        if ours.get(key) != value:
            try:
                session.conf.set(key, value)
            except Exception:  # noqa: BLE001 - a static setting: the application's, already in force
                pass
    return session


LOG_SETTINGS = Path(__file__).with_name("log4j2.properties")  # Spark's log settings for a driver started here
LOG_ENV = "LOG4J_CONFIGURATION_FILE"  # log4j2 reads it where no -Dlog4j2.configurationFile says otherwise


def quiet_logs() -> None:
    """Give the JVM PySpark starts riskconsole's log settings (errors only) through log4j2's environment variable,
    unless Spark's configuration folder has a log4j2.properties of its own or the variable is set: a user's
    `-Dlog4j2.configurationFile` (spark-defaults.conf, `conf:`) still wins, and their Java options are not touched."""
    folder = os.environ.get("SPARK_CONF_DIR") or (os.path.join(os.environ["SPARK_HOME"], "conf")
                                                  if os.environ.get("SPARK_HOME") else None)
    if folder and os.path.exists(os.path.join(folder, "log4j2.properties")):
        return
    os.environ.setdefault(LOG_ENV, LOG_SETTINGS.as_uri())


QUERY_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")  # pyspark.errors.exceptions


def quiet_query_errors() -> None:
    """PySpark 4 logs every query error that has a query context (a division by zero, a cast) as JSON on stderr,
    the JVM's stack trace inside, twice, before riskconsole says the failure in one line: its two loggers are
    switched off, unless the application set their level itself (PySpark's own is WARNING)."""
    from pyspark.logger import PySparkLogger

    for name in QUERY_CONTEXT_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        if logger.level == logging.WARNING:
            logger.setLevel(logging.CRITICAL + 1)


def session_conf(settings: SparkSettings) -> dict[str, Any]:
    """The Spark settings `start` gives the session: the dataset's, over riskconsole's defaults for local mode."""
    target = settings.remote if settings.connect else settings.master
    local = target.startswith("local")
    # an sc:// server's static settings (its UI, its driver's memory) are its own: a client sets session ones only;
    # a local Connect server (`remote: local[N]`) is started by PySpark here with all of them
    conf: dict[str, Any] = {} if settings.server else {"spark.ui.enabled": False, "spark.ui.showConsoleProgress": False}
    if local:  # 200 shuffle tasks per window cost minutes
        conf["spark.sql.shuffle.partitions"] = local_shuffle_partitions(target)
        # local mode runs every task in the driver's JVM: Spark's 1g heap runs out on a 1M-event frame
        conf["spark.driver.memory"] = local_driver_memory()
        conf["spark.python.daemon.module"] = QUIET_DAEMON  # no worker's broken pipe under riskconsole's error
    conf.update(settings.conf)
    if settings.driver_memory:
        conf["spark.driver.memory"] = settings.driver_memory
    conf["spark.sql.session.timeZone"] = "UTC"  # times mean what they mean in DuckDB (SET TimeZone = 'UTC')
    conf["spark.sql.parser.quotedRegexColumnNames"] = False  # a `quoted` name is a name (spark_read.renamed)
    return conf


def local_shuffle_partitions(master: str) -> int:
    """Tasks per shuffle in local mode: a few per core the master gives Spark (`local` one, `local[N]` and
    `local[N,F]` N, `local[*]` every core of this machine), at least LOCAL_SHUFFLE_PARTITIONS."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    cores = 1 if found is None or found.group(1) is None else \
        usable_cores() if found.group(1) == "*" else int(found.group(1))
    return max(LOCAL_SHUFFLE_PARTITIONS, LOCAL_TASKS_PER_CORE * cores)


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us


def usable_cores() -> int:
    """The cores `local[*]` gives Spark: as the JVM counts them (availableProcessors), the CPUs this process may
    run on (taskset) capped by a container's CPU quota (docker --cpus 2 on a 64-core host: 2), not the host's."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for read in (lambda: CGROUP_CPU_MAX.read_text().split()[:2],
                 lambda: [(CGROUP_V1_CPU / f"cpu.cfs_{k}_us").read_text().strip() for k in ("quota", "period")]):
        try:
            quota, period = read()
            if quota not in ("max", "-1") and int(quota) > 0 and int(period) > 0:
                cores = min(cores, -(-int(quota) // int(period)))
        except (OSError, ValueError):
            pass
    return max(1, cores)


def local_driver_memory() -> str:
    """The driver's heap in local mode unless `spark: driver_memory` says: a third of this machine's memory, 1 to
    16 GB (DuckDB's cap is 40%; the driver's own DuckDB and the Python workers need the rest)."""
    total = machine_memory()
    return "4g" if total is None else f"{max(1, min(16, int(total / 3 / 2**30)))}g"


class SparkEngine:
    """Features and grouped backtest queries of one workspace's loaded data version, run by Spark."""

    name = "spark"

    def __init__(self, ws: Workspace, dataset: Dataset, con: duckdb.DuckDBPyConnection, session: Any = None,
                 progress: Callable[[str], None] | None = None) -> None:
        """`con` reads the loaded DuckDB database (the export's source); `session` defaults to `start()`'s."""
        self.ws, self.dataset, self._con = ws, dataset, con
        self._session = session
        if session is not None:  # a caller's session (a notebook's): its workers' Python, as `start` sets it
            _local_workers(session)
        self._progress = progress or (lambda message: None)
        self.version = _version(con)
        self.versions = store_of(ws, dataset, lambda: self.spark)  # data/spark/ or spark.store
        self.store = self.versions.child(self.version)
        self.root = self.store.local  # this version's folder when the store is on this machine (else None)
        self.seconds: dict[str, float] = {}  # what preparing took: export, frame (0 when cached)
        self._frame: Frame | None = None  # set by `prepare`: the frame whose views `arrow` reads

    @property
    def spark(self) -> Any:
        if self._session is None:
            started = time.perf_counter()
            self._session = start(self.dataset.spark)
            self.seconds["start"] = time.perf_counter() - started
        return self._session

    @property
    def built(self) -> bool:
        """Whether this data version's export and frame are on disk."""
        return self.store.exists(DONE)

    @property
    def exported(self) -> bool:
        """Whether this data version's events, streams and tables are on disk as Parquet."""
        return self.store.exists(EXPORTED) or self.built

    # ------------------------------------------------------------ building once per data version

    def prepare(self, frame: Frame, con: duckdb.DuckDBPyConnection | None = None) -> SparkEngine:
        """Export and build the frame on Spark unless this data version has them; register `frame` and the current
        detector score tables as views. `con` reads the loaded database (default: the one given at creation)."""
        self._con = con or self._con
        try:  # a version built before markers existed, in a store other workspaces share
            claim(self.store, self.ws)
        except Exception:  # noqa: BLE001 - best effort: a store this user may only read is still read
            pass
        if not self.built:
            with _BUILDING:
                if not self.built:  # another engine of this data version may have built it while this one waited
                    self._build(list(frame.columns))
        self._frame = frame
        self._register(frame)
        return self

    def _register(self, frame: Frame) -> None:
        """Point the session's `frame` and score views at this data version (views are global to a SparkSession,
        which several workspaces' engines may share: `arrow` registers them again when another engine did since)."""
        self.spark.read.parquet(self.store.read_uri("frame")).createOrReplaceTempView("frame")
        for detector, table in frame.scores.items():
            if detector not in frame.stale:
                self._scores(detector, table).createOrReplaceTempView(table)
        _VIEWS_OF[self.spark] = self.store.uri()

    def export(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Export this data version's events (by day), streams and tables to Parquet unless already there (the
        folders of earlier loads are removed: their events are gone from DuckDB too)."""
        self._con = con or self._con
        if self.exported:
            return
        done = json.loads(self.store.read_text(LOADED) or '{"tables": []}')
        loaded = done["tables"]
        claim(self.store, self.ws)
        remove_versions(self.versions, keep=self.version, ws=self.ws)
        for old in self.store.children():  # a failed export's; Spark's load is kept
            if old not in (*loaded, *done.get("quarantines", []), LOADED, OWNER):
                self.store.remove(old)
        started = time.perf_counter()
        self._progress(f"spark: exporting {', '.join(n for n in self._exports() if n not in loaded) or 'nothing'} "
                       f"to {self.where} ...")
        for name in self._exports():
            if name not in loaded:  # the events a load on Spark wrote are already here
                self._export(name, name, by_day=name == "events")
        self.seconds["export"] = time.perf_counter() - started
        self.store.write_text(EXPORTED, text=json.dumps({"version": self.version, "seconds": self.seconds["export"]}))

    def build_loaded(self, order: list[str]) -> None:
        """The frame of a load on Spark, built while the load is staged (`ingest._fill`): its sources are already in
        this version's folder, so nothing is exported, and the live version's folder stays until the new one is
        live (`SparkLoader.published`). `order`: the frame's columns as DuckDB's (`features.planned_types`)."""
        self.store.write_text(EXPORTED, text=json.dumps({"version": self.version, "seconds": 0.0}))
        self._build(order)

    def _build(self, order: list[str]) -> None:
        self.export()
        names = self._exports()
        started = time.perf_counter()
        self._progress(f"spark: building {len(self.dataset.features)} features on {self.master} ...")
        self._build_frame(names, order)
        self.seconds["frame"] = time.perf_counter() - started
        self.store.write_text(DONE, text=json.dumps({"version": self.version, "seconds": self.seconds}))

    @property
    def where(self) -> str:
        """This version's folder as the CLI shows it (relative to the workspace when inside it)."""
        return self.ws.rel(self.root) if self.root is not None else self.store.uri()

    @property
    def master(self) -> str:
        """Where Spark runs: the master URL, or `connect sc://host:port` (`SparkSettings.target`)."""
        return self.dataset.spark.target

    def progress(self, message: str) -> None:
        self._progress(message)

    def _export(self, table: str, *out: str, by_day: bool = False) -> None:
        """A DuckDB table as Parquet files (events: one folder per day, `__day=YYYY-MM-DD`), streamed in batches."""
        query = fill("SELECT * FROM :t", t=exp.to_table(table, quoted=True))
        if by_day:
            query = fill("SELECT *, CAST(:time AS DATE) AS __day FROM :t", t=exp.to_table(table, quoted=True),
                         time=ident(self.dataset.columns.time))
        self._export_query(query, *out, by_day=by_day)

    def _export_query(self, query: exp.Expression, *out: str, by_day: bool = False) -> None:
        """Rows of a DuckDB query as Parquet files under `out` of this version's folder (written by DuckDB's
        side locally, copied to a store elsewhere)."""
        reader = self._con.sql(query.sql(dialect="duckdb")).to_arrow_reader(500_000)
        with self.store.writing(*out) as folder:
            folder.mkdir(parents=True, exist_ok=True)
            partitioning = pads.partitioning(pa.schema([(DAY, pa.date32())]), flavor="hive") if by_day else None
            pads.write_dataset(reader, folder, format="parquet", partitioning=partitioning, max_partitions=100_000,
                               existing_data_behavior="overwrite_or_ignore")
            if not any(folder.rglob("*.parquet")):  # an empty table still has a schema Spark can read
                pq.write_table(reader.schema.empty_table(), folder / "empty.parquet")

    def _exports(self) -> list[str]:
        return ["events", *(f"stream_{s}" for s in self.dataset.streams), *(f"table_{t}" for t in self.dataset.tables)]

    def register_exports(self) -> None:
        """The exported `events`, `stream_NAME` and `table_NAME` as Spark views (the names DuckDB's queries use)."""
        for name in self._exports():
            data = self.spark.read.parquet(self.store.read_uri(name))
            (data.drop(DAY) if name == "events" else data).createOrReplaceTempView(name)

    def _build_frame(self, names: list[str], order: list[str]) -> None:
        """The frame, by the queries of `features.frame_plan` rendered for Spark, written as Parquet with the columns
        in the order of DuckDB's frame (`order`; Spark puts a USING join's key first)."""
        spark = self.spark
        self.register_exports()
        columns = [c for c in spark.table("events").columns]
        label = self.ws.rel(self.ws.dataset_path)
        plan = frame_plan(self.dataset, columns, label, sweep=True)  # distinct counts, min, max, stddev as sweeps
        steps = [("_frame_base", plan.base), *plan.side]
        try:
            for table, query in steps:  # materialized: each is read by later steps (and row_number must not re-run)
                spark.sql(render(query, f"features ({table})")).localCheckpoint().createOrReplaceTempView(table)
            if plan.graph:
                self._graph_features(plan.graph, "_frame_base", plan.base).createOrReplaceTempView(GRAPH_TABLE)
            for table, query in plan.joined:
                spark.sql(render(query, f"features ({table})")).localCheckpoint().createOrReplaceTempView(table)
            frame = spark.sql(render(plan.frame, "features")).select(*[quoted(c) for c in order])
            # by _pos: DuckDB's view of it reads the rows in the order of its table, and a window of events (a
            # chunk of positions, a range of days) reads only the row groups that hold it
            frame.orderBy("_pos").write.mode("overwrite").parquet(self.store.uri("frame"))
        except RiskConsoleError:
            raise
        except Exception as err:  # noqa: BLE001 - pyspark raises many kinds; one line says which step failed
            raise DataError(f"{self.ws.rel(self.ws.dataset_path)}: building the features on spark failed: "
                            f"{first_line(err)}") from None
        finally:
            for table in [name for name, _ in steps + plan.joined] + [GRAPH_TABLE]:
                spark.catalog.dropTempView(table)

    def _graph_features(self, features: list[Feature], base: str, base_query: exp.Expression) -> Any:
        """The graph side table (`_pos`, one column per graph feature) of Spark view `base`, by graphs.py's queries
        rendered for Spark: only the distinct (node, link value, day) pairs, (node, day) query pairs and fraud
        nodes come back; the components are computed in Python (graphs.py, as on DuckDB) and their per-(node,
        day) values joined back on Spark. Casts use DuckDB's types of the same tables (`base_query` is `base`'s
        DuckDB query), so nodes and links have one type as on DuckDB."""
        duck = GraphSource.of(self._con)

        def types(table: str) -> dict[str, str]:
            return duck.types(f"({base_query.sql(dialect='duckdb')})" if table == base else table)

        source = GraphSource(types, lambda query: self.spark.sql(render(query, "graph features")).toArrow())
        values = graph_values(source, self.dataset, features, base)
        for name, rows in values.items():
            self.spark.createDataFrame(rows).createOrReplaceTempView(name)
        try:
            return self.spark.sql(render(graph_query(features, base), "graph features")).localCheckpoint()
        finally:
            for name in values:
                self.spark.catalog.dropTempView(name)

    def score_into(self, con: duckdb.DuckDBPyConnection, detector: str, table: str,
                   folder: Path | None = None) -> int | None:
        """A trained detector's scores of this version's frame (built: by a load on Spark, or already), computed on
        Spark and kept in this version's folder under the name the engine's later `_scores` looks for (the live
        score table's name, and the model files' digest: a backtest after `train` scores nothing again), then
        DuckDB's `table` of `con` (`_pos` BIGINT, `detector` DOUBLE) made of them: a view of the files on a store of
        this machine (`storeviews`), else a copy. Its rows, or None for a model Spark does not score. `folder`: the
        model's (default: the workspace's trained one; `train` passes the folder it is writing, and the live
        scores, which DuckDB's live table may read, stay until the next scoring)."""
        folder = folder or self.ws.models_dir / detector
        files = model_files(folder)
        if not scored_on_spark(files):
            return None
        self.spark.read.parquet(self.store.read_uri("frame")).createOrReplaceTempView("frame")
        _VIEWS_OF[self.spark] = self.store.uri()  # another engine of this session registers its own views again
        live = f"{SCORE_TABLE_PREFIX}{detector}"
        self._scores(detector, live, folder, keep=_viewed(con))
        where = ("scores", f"{live}-spark-{digest(files)}")
        view = self.store.local is not None and str(self.store.local) in folders(con)  # a load on Spark's version
        rows = read_back(con, self.store, table, [("_pos", "BIGINT"), (detector, "DOUBLE")], where, view)
        if rows is None:  # a view: its rows from the files' footers
            rows = con.execute(f"SELECT count(*) FROM {duck_sql(exp.to_table(table, quoted=True))}").fetchall()[0][0]
        return rows

    def _scores(self, detector: str, table: str, folder: Path | None = None,
                keep: frozenset[str] | None = frozenset()) -> Any:
        """A detector's scores, computed on Spark from its model folder (`spark_scores`); a score table without one is
        exported from DuckDB. Then the other scores of `table` are removed, but those named in `keep` and those a view
        of DuckDB's database reads (the live ones while `train` writes its own)."""
        folder = folder or self.ws.models_dir / detector
        files = model_files(folder) if (folder / "detector.json").exists() else {}
        if not scored_on_spark(files):
            return self._exported_scores(table)
        out = ("scores", f"{table}-spark-{digest(files)}")
        if not self.store.exists(*out, DONE):
            started = time.perf_counter()
            self._progress(f"spark: scoring {detector} on {self.master} ...")
            try:
                scored = score_frame(self.spark, lambda q: render(q, f"detector '{detector}'"), files, detector)
                scored.orderBy("_pos").write.mode("overwrite").parquet(self.store.uri(*out))  # read in order by a view
            except RiskConsoleError:
                raise
            except Exception as err:  # noqa: BLE001 - pyspark raises many kinds; one line says which model failed
                raise DataError(f"{self.ws.rel(folder)}: scoring on spark failed: {first_line(err)}") from None
            self.seconds[f"score {detector}"] = time.perf_counter() - started
            self.store.write_text(*out, DONE, text=json.dumps({"seconds": self.seconds[f"score {detector}"]}))
        self._clear_scores(table, keep, _viewed(self._con), {out[-1]})
        return self.spark.read.parquet(self.store.read_uri(*out))

    def _clear_scores(self, table: str, *keep: frozenset[str] | set[str] | None) -> None:
        """Remove the scores of `table` but the folders named in `keep`; nothing when one of them is None (what a
        view reads is unknown)."""
        if any(k is None for k in keep):
            return
        kept = set().union(*keep)
        for old in self.store.children("scores"):
            if old.startswith(f"{table}-") and old not in kept:
                self.store.remove("scores", old)

    def _exported_scores(self, table: str) -> Any:
        """A detector's score table as Parquet, exported once per (data version, scoring stamp)."""
        stamp = self._con.execute(f"SELECT data_version, CAST(scored_at AS VARCHAR) FROM {SCORES_TABLE} "
                                  "WHERE 'scores_' || detector = ?", [table]).fetchall()
        key = hashlib.sha1(json.dumps([table, stamp]).encode()).hexdigest()[:12]
        out = ("scores", f"{table}-{key}")
        if not self.store.exists(*out, DONE):
            self._clear_scores(table, _viewed(self._con))
            self._export(table, *out)
            self.store.write_text(*out, DONE, text="{}")
        return self.spark.read.parquet(self.store.read_uri(*out))

    # ------------------------------------------------------------ running queries

    def check(self, compiled: CompiledStrategy, label: str) -> None:
        """Every rule and the population render exactly for Spark (else one line naming the rule and the engine)."""
        check_rendering(compiled, self._lists, label)

    def entities(self, con: duckdb.DuckDBPyConnection, level: Level, label: str) -> tuple[EntityView, EntityRunner]:
        """An entity level's frame built on Spark (once per data version, dataset spec and level) and the runner
        whose queries read it as `frame`; `con` reads the loaded DuckDB database (types)."""
        view, name = entity_view(self, con, level, label)
        return view, EntityRunner(self, name)

    @functools.cached_property
    def _lists(self) -> SparkLists:
        return SparkLists(self.spark, self.ws.lists(self.dataset))

    def arrow(self, query: exp.Expression, strategy: str) -> pa.Table:
        """Run a DuckDB-dialect AST on Spark and fetch the (small) result as Arrow (lists it reads registered)."""
        sql = render(self._lists.rewrite(query), f"strategy '{strategy}'")
        if self._frame is not None and _VIEWS_OF.get(self.spark) != self.store.uri():
            self._register(self._frame)  # another workspace's engine re-pointed the shared session's views
        try:
            return self.spark.sql(sql).toArrow()
        except Exception as err:  # noqa: BLE001 - pyspark raises many kinds; the user needs one line
            raise RiskConsoleError(f"strategy '{strategy}': evaluating its expressions on spark failed: "
                                   f"{first_line(err)} (guard the expression, e.g. with nullif or TRY_CAST)") from None


def read_back(con: duckdb.DuckDBPyConnection, store: Store, table: str, types: list[tuple[str, str]],
              where: tuple[str, ...], view: bool = False) -> int | None:
    """DuckDB's `table` of `con` from Spark's Parquet at `where` in the store: (column, DuckDB type) in order, by
    `_pos` (a remote store's files are copied here first); its rows. `view`: a view of the files instead of a copy
    (`storeviews`; the caller checked the store is `viewable`; rows None: not counted)."""
    casts = ", ".join(f"CAST({duck_sql(ident(c))} AS {t}) AS {duck_sql(ident(c))}" for c, t in types)
    if view:
        create_view(con, table, store.local.joinpath(*where), store.local, casts)
        return None
    with store.reading(*where) as folder:
        files = literal_files([str(p) for p in sorted(folder.rglob("*.parquet"))])
        return con.execute(f"CREATE OR REPLACE TABLE {duck_sql(exp.to_table(table, quoted=True))} AS SELECT {casts} "
                           "FROM read_parquet($files, hive_partitioning = false) ORDER BY _pos",
                           {"files": files}).fetchall()[0][0]  # DuckDB's CREATE TABLE AS answers its row count


def _viewed(con: duckdb.DuckDBPyConnection | None) -> frozenset[str] | None:
    """The score folders (`scores/<name>`) that views of `con`'s database read: never removed under them. None when
    `con` cannot say (closed: a console's cursor outlives its block), and then no scores are removed."""
    if con is None:
        return frozenset()
    try:
        texts = [t for (t,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()]
    except duckdb.ConnectionException:
        return None
    return frozenset(m for text in texts for m in re.findall(r"/scores/([^/']+)/", text))


def store_of(ws: Workspace, dataset: Dataset, session: Callable[[], Any]) -> Store:
    """The folder of a workspace's data versions: `spark.store` of the dataset, else data/spark/."""
    return Store(session, dataset.spark.store or str(ws.root / "data" / SPARK_DIR))  # Connect or not: the session's


def claim(store: Store, ws: Workspace) -> None:
    """Mark a data version's folder as `ws`'s, before anything else is written in it (`remove_versions`); a marker
    that cannot be read (a crash mid-write) is written again."""
    if _owner(store.read_text(OWNER)) is None:
        store.write_text(OWNER, text=json.dumps({"workspace": str(ws.root.resolve())}))


def _owner(text: str | None) -> str | None:
    try:
        return json.loads(text).get("workspace") if text else None
    except (ValueError, AttributeError):
        return None


def remove_versions(versions: Store, keep: str, ws: Workspace) -> None:
    """Remove every data version's folder of `ws` but `keep`: only folders named like a data version (a store may
    hold other folders). In a `spark.store`, which several workspaces may share, only those `ws` wrote (their DuckDB
    views read the others'): a folder whose marker names another workspace, or cannot be read, is left; one written
    before markers existed is taken as this workspace's. In the workspace's own `data/spark/`, also those whose
    marker names a folder that no longer exists (the workspace before it moved) or cannot be read; another
    workspace's (its `spark.store` pointed here) are left."""
    own = versions.local is not None and versions.local.resolve() == (ws.root / "data" / SPARK_DIR).resolve()
    mine = str(ws.root.resolve())
    for name in versions.children():
        if name != keep and VERSION.fullmatch(name):
            text = versions.read_text(name, OWNER)
            owner = _owner(text)
            # in its own folder, a marker naming a workspace that is gone is this one's before it moved
            if text is None or owner == mine or (own and (owner is None or not Path(owner).exists())):
                versions.remove(name)


def check_rendering(compiled: CompiledStrategy, lists: SparkLists, label: str) -> None:
    """Every rule and the population of a strategy render exactly for Spark, lists read as their Spark views.

    Raises:
        RiskConsoleError: one line naming the rule and the engine."""
    checks = [(f"rule '{r.name}'", r.condition) for r in compiled.rules]
    if compiled.population is not None:
        checks.append(("population", compiled.population))
    for where, node in checks:
        render(lists.rewrite(node), f"{label}: {where}")


def _version(con: duckdb.DuckDBPyConnection) -> str:
    """The data version of the last load (a fresh uuid per load)."""
    try:
        version = con.execute(f"SELECT version FROM {META_TABLE}").fetchall()[0][0]
    except (duckdb.Error, IndexError):
        version = None
    if not version:
        raise DataError("no loaded data version (run `riskconsole load` before using engine spark)")
    return str(version)


def conform(table: pa.Table, con: duckdb.DuckDBPyConnection, query: exp.Select) -> pa.Table:
    """Spark's rows of `query` in the Arrow types DuckDB gives the same query (bound on `con`, no row read), so a
    file written from them (decisions.parquet) is the file DuckDB's rows give."""
    empty = exp.select("*").from_(query.subquery("q")).where(exp.false())
    schema = con.sql(empty.sql(dialect="duckdb")).to_arrow_table().schema
    if table.column_names != schema.names:
        raise RiskConsoleError(f"spark returned columns {table.column_names}, expected {schema.names}")
    return table.cast(schema)
