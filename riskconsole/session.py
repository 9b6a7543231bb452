"""One workspace opened for work: the object every CLI command and every console page calls.

Like sqlmesh's `Context`, a `Session` holds the workspace, its dataset spec, a read-only
connection and the frame's columns, and answers every question the faces ask: a backtest, a
comparison, the console's interactive report, sweeps, the optimizer, the gate, exports, a reload.
A warning, a default or a metric is therefore computed in one place, and the CLI, the report
files and the console show the same thing.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Callable

import duckdb

from riskconsole import querycache
from riskconsole.backtest import (Window, decisions_query, empty_window_message, fetch_decisions, groups_query,
                                  make_window, read_groups, run_groups, run_query, span_query)
from riskconsole.configfile import dataset_of, dataset_shape, json_dump, read_config, strategy_of, strategy_shape
from riskconsole.errors import DataError, ExpressionError, RiskConsoleError
from riskconsole.export import render_files
from riskconsole.lists import list_files, register_lists, report_lists
from riskconsole.names import is_internal
from riskconsole.report import Backtest, Baseline, build_report, detector_warnings
from riskconsole.sqlbuild import exp, ident, render
from riskconsole.strategy import CompiledRule, CompiledStrategy, Frame, compile_strategy, frame_of
from riskconsole.workspace import Workspace

if TYPE_CHECKING:  # entity frames only for entity-level strategies (`entities.py` imports every feature builder)
    import pyarrow as pa  # type names only: a backtest reads DuckDB's results as numpy (issue 14)
    from riskconsole.config import Dataset, Level, Strategy  # imported where used: a cached backtest reads views
    from riskconsole.entities import EntityView
    from riskconsole.monitor import Periods

EVALUATORS = 6  # interactive windows kept warm (each holds its population's arrays and rule hits)
RUN_TIME_KEYS = ("business", "engine", "spark")  # dataset.yaml keys read when a report runs: editing them needs no load


@dataclass
class GateResult:
    """Every guardrail's verdict on one comparison."""

    results: list[dict]
    report: dict
    baseline: str | None
    held: int = field(init=False)

    def __post_init__(self) -> None:
        self.held = sum(r["holds"] for r in self.results)

    @property
    def passed(self) -> bool:
        return self.held == len(self.results)


class Session:
    """A workspace opened for analysis: dataset, read-only connection, frame, and every question asked of them."""

    def __init__(self, ws: Workspace, con: duckdb.DuckDBPyConnection | None = None, engine: str | None = None,
                 spark=None, progress=None, cache: bool = False, once: bool = False) -> None:
        """`engine` is `--engine` (None: $RISKCONSOLE_ENGINE, else the dataset's `engine:`); `spark` a SparkSession to
        use instead of starting one from the dataset's `spark:` settings; `cache`: keep parsed YAML and each
        backtest's compiled queries under data/cache/compiled/ for the next process (`querycache.py`: the CLI);
        `once`: the session is one run (the CLI's), which reads each input file once (`file_text`)."""
        self.ws = ws
        self._once = once
        self._texts: dict[str, str] = {}  # with `once`: absolute path as given -> the text read
        self._cache = cache and querycache.enabled()
        self.cached_plan = False  # whether the last backtest ran its queries from the compiled-query cache
        self._literals: dict[tuple, list[str]] = {}  # (data version, level, count SQL) -> `_literal_warnings`
        self._parsed: list = []  # parsed YAML for the cache, written once a backtest has succeeded
        self._engine_flag, self._spark_session, self._progress = engine, spark, progress
        self._spark, self._spark_prepared = None, False
        self._con, self._own = con, con is None
        self._dataset: Dataset | None = None  # with `cache`, a view of it where the cache holds one (`configfile.py`)
        self._dataset_model: Dataset | None = None  # the validated model of `_dataset_text` (with `cache`)
        self._dataset_text: str | None = None  # the text of data/dataset.yaml it read (with `cache`)
        self._frame: Frame | None = None
        self._evaluators: OrderedDict[tuple, object] = OrderedDict()
        self._entity_views: dict[tuple, EntityView] = {}
        self._version: tuple | None = None
        self._maturity: tuple | None = None  # (connection, day range and label curves)
        self._loaded_with: tuple | None = None  # (connection, the last load's `_meta`, dataset_changed's warning)
        self._level_curves: dict[tuple, list[dict]] = {}  # an entity level's label curve, per data version
        self._strategies: dict[tuple, Strategy] = {}  # (file label, its text) -> the parsed strategy
        self._lock = threading.Lock()
        self._spark_lock = threading.Lock()  # one Spark engine start and frame build, however many callers wait

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection this session opened (evaluators go with it)."""
        with self._lock:
            self._evaluators.clear()
            self._entity_views.clear()
            if self._con is not None and self._own:
                self._con.close()
            self._con, self._frame = None, None

    # ------------------------------------------------------------ what is loaded

    @property
    def dataset(self) -> Dataset:
        """The dataset spec (read once per session)."""
        if self._dataset is None:
            if self._cache:
                from riskconsole.configfile import dataset_view

                self._dataset_text = read_config(self.ws.dataset_path, self.ws.rel(self.ws.dataset_path))  # the key's
                data, kept = querycache.validated(self.ws.root, "dataset", self._dataset_text,
                                                  dataset_shape,
                                                  lambda: dataset_view(self._full_dataset()), self._parsed)
                self._dataset = dataset_of(data, self._full_dataset) if kept else self._full_dataset()
            else:
                self._dataset = self.ws.dataset()
        return self._dataset

    def _full_dataset(self) -> Dataset:
        """The validated model of the dataset text this session read (with `cache`; a view reads the rest here)."""
        if self._dataset_model is None:
            from riskconsole.config import Dataset, parse_model

            label = self.ws.rel(self.ws.dataset_path)
            self._dataset_model = parse_model(self._yaml(self._dataset_text, label), Dataset, label)
        return self._dataset_model

    def _yaml(self, text: str, label: str):
        """Strict YAML of a config file's text (kept by its hash under data/cache/compiled/ with `cache`)."""
        from riskconsole.config import read_yaml

        if not self._cache:
            return read_yaml(text, label)
        return querycache.parsed_yaml(self.ws.root, text, label, read_yaml, self._parsed)

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The session's read-only connection, opened on first use (no file access, locked settings)."""
        with self._lock:
            if self._con is None:
                self._con = self.ws.connect_safe()
                self._own = True
            return self._con

    def cursor(self, strategy: Strategy | None = None) -> duckdb.DuckDBPyConnection:
        """A cursor of the session's connection: one per thread or call (connections are not thread-safe).

        For an entity-level strategy, the cursor reads its entity frame as `frame` (registered on this cursor
        only), so every query of a backtest runs unchanged on entity-periods."""
        cur = register_lists(self.connection().cursor(), self.ws.root)  # IN LIST conditions read them
        if strategy is not None and strategy.level is not None:
            cur.register("frame", self.entities(strategy.level, strategy.name).table)
        return cur

    @property
    def engine(self) -> str:
        """Where features and backtests run: duckdb or spark (DESIGN §7; `engines.choose`)."""
        from riskconsole.engines import choose

        return choose(self._engine_flag, self.dataset)

    @property
    def engine_text(self) -> str:
        """The engine as the CLI and the console name it: `duckdb`, or `spark (MASTER)`."""
        if self.engine == "duckdb":
            return "duckdb"
        return f"spark ({self.dataset.spark.target})"

    def engine_note(self) -> str | None:
        """The console's one line on a workspace whose engine is not DuckDB (None on DuckDB): what runs where."""
        if self.engine == "duckdb":
            return None
        return (f"Engine: {self.engine_text}. Backtest and Tune reports and curves, comparisons, Optimize, exports and "
                "the monitor are computed there (slower answers); explain, one event's decision and the events whose "
                "decision changed read DuckDB.")

    @property
    def spark_ready(self) -> bool:
        """Whether the Spark engine has started and built this data version's frame (`spark_engine` then returns at
        once); never waits for a build under way."""
        return self._spark is not None and self._spark_prepared

    def spark_engine(self, frame: bool = True):
        """The Spark engine over this data version: export and (unless `frame=False`: entity frames need only the
        export) the event frame built on first use, cached under data/spark/ (or spark.store). Callers in other
        threads (two console users) wait for the one start and build."""
        from riskconsole.engines.spark import SparkEngine

        if self._spark is not None and (self._spark_prepared or not frame):
            return self._spark
        with self._spark_lock:
            if self._spark is None or (frame and not self._spark_prepared):
                with self.cursor() as cur:
                    if self._spark is None:
                        self._spark = SparkEngine(self.ws, self.dataset, cur, self._spark_session, self._progress)
                    if frame:
                        self._spark.prepare(self.frame, cur)
                        self._spark_prepared = True
        return self._spark

    def _runner(self, cur: duckdb.DuckDBPyConnection, label: str, *compiled: CompiledStrategy):
        """Where a strategy's queries run: the DuckDB cursor, or the Spark engine (checked for each strategy);
        `label` names the strategy file in errors."""
        if self.engine == "duckdb":
            return cur
        level = compiled[0].strategy.level
        engine = self.spark_engine(frame=level is None)
        if level is not None:  # its queries read the level's entity frame built on Spark
            engine = engine.entities(cur, level, label)[1]
        for strategy in compiled:
            engine.check(strategy, strategy.name)
        return engine

    def runner(self, cur: duckdb.DuckDBPyConnection, path: str | Path, overrides: dict | None = None,
               strategy: Strategy | None = None):
        """Where the grouped queries of a strategy file run (sweep, optimize): `cur`, or the Spark engine with the
        strategy checked for it."""
        if self.engine == "duckdb":
            return cur
        return self._runner(cur, self.ws.rel(path), self.compile(path, overrides, strategy))

    def entities(self, level: Level, label: str = "strategy") -> EntityView:
        """The entity frame of a level: built once per level, dataset spec and load (see `entities.py`), kept in
        memory and under data/cache/entities/ (on Spark: data/spark/<version>/entities/) so the next process (a CLI
        backtest, a restarted console) reads it."""
        key = (level.entity, level.every_seconds, level.horizon_seconds, self._data_version(), self.engine)
        with self._lock:
            found = self._entity_views.get(key)
        if found is None:
            found = self._spark_entities(level, label) if self.engine == "spark" else self._duck_entities(level, label)
            lists = self.frame.lists  # rules may read lists too, replayed at each period's start (its time)
            lists = replace(lists, time_column=found.dataset.columns.time) if lists is not None else None
            found = replace(found, frame=replace(found.frame, lists=lists))
            with self._lock:
                self._entity_views[key] = found
                while len(self._entity_views) > EVALUATORS:
                    self._entity_views.pop(next(iter(self._entity_views)))
        return found

    def _duck_entities(self, level: Level, label: str) -> EntityView:
        """The level's entity frame built by DuckDB, or read from data/cache/entities/."""
        from riskconsole import entities

        rows = self._data_version()[0]  # the load's version (a train does not change the entity frame)
        path = self.ws.root / entities.CACHE_DIR / entities.cache_name(rows[0][0], self.dataset, level) \
            if rows else None
        with self.cursor() as cur:
            found = entities.load_saved(cur, path, self.dataset, level) if path else None
            if found is None:
                found = entities.build(cur, self.dataset, level, label)
                if path is not None:
                    try:
                        entities.save(path, found)
                    except OSError:  # a read-only workspace: the frame is rebuilt by the next process
                        pass
        return found

    def _spark_entities(self, level: Level, label: str) -> EntityView:
        """The level's entity frame built by Spark, kept under data/spark/<version>/ (engines/spark_entities.py)."""
        with self.cursor() as cur:
            return self.spark_engine(frame=False).entities(cur, level, label)[0]

    def prepare_entities(self) -> list[str]:
        """Build (or find) the entity frame of every entity-level strategy in strategies/, so the first backtest of
        each reads it; a strategy that does not parse is left to `validate`. Returns one line per level."""
        from riskconsole.entities import WEIGHT

        done, lines = set(), []
        for path in sorted(self.ws.strategies_dir.glob("*.yaml")):
            try:
                level = self.strategy(path).level
            except RiskConsoleError:
                continue
            if level is None or (level.entity, level.every_seconds, level.horizon_seconds) in done:
                continue
            done.add((level.entity, level.every_seconds, level.horizon_seconds))
            started = perf_counter()
            try:
                view = self.entities(level, self.ws.rel(path))
            except RiskConsoleError as err:
                lines.append(f"{self.ws.rel(path)}: entity frame not built: {err}")
                continue
            import pyarrow.compute as pc  # imported here: a backtest never needs it (issue 14)

            periods = int(pc.sum(view.table.column(WEIGHT)).as_py() or 0)
            lines.append(f"{level.entity} every {level.every} (horizon {level.horizon or level.every}): "
                         f"{periods:,} periods ({perf_counter() - started:.1f} s)")
        return lines

    def view(self, strategy: Strategy) -> tuple[Frame, Dataset]:
        """What a strategy decides over: the event frame and dataset, or its level's entity frame and roles."""
        if strategy.level is None:
            return self.frame, self.dataset
        found = self.entities(strategy.level, strategy.name)
        return replace(found.frame, absent=tuple(self._absent(found).items())), found.dataset

    def _absent(self, found: EntityView) -> dict[str, str]:
        """Why an entity-level rule cannot read each event column and dataset feature its entity frame lacks (the
        sentence an "unknown column" becomes)."""
        entity = found.level.entity
        readable = ", ".join(found.features[:8]) + (", ..." if len(found.features) > 8 else "") or "none"
        fix = (f"a rule of level {entity} reads what was known at each period's start: features grouped by {entity} "
               f"alone, lookups keyed by it, graphs of it ({readable}; the report's level.features)")
        why = {c: "a value of each event" for c in self.frame.columns if c not in found.frame.columns}
        why.update({name: f"a feature: {reason}" for name, reason in found.elsewhere.items()})
        why.update({s: "a detector score, one per event" for s in self.frame.scores})
        return {name: f"({reason}): not known at a {entity} period's start; {fix}"
                for name, reason in why.items() if not is_internal(name)}

    @property
    def loaded(self) -> bool:
        """Whether the workspace has a database with a built frame."""
        if not self.ws.db_path.exists():
            return False
        with self.cursor() as cur:
            return bool(cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'frame'")
                        .fetchall()[0][0])

    @property
    def frame(self) -> Frame:
        """Columns, detector scores and hidden columns of the loaded frame."""
        if self._frame is None:
            if not self.loaded:
                raise DataError(f"{self.ws.rel(self.ws.db_path)}: no events loaded yet (run `riskconsole load` "
                                "or `riskconsole demo`)")
            with self.cursor() as cur:
                self._frame = frame_of(cur, self.dataset, self.ws.lists(self.dataset))
        return self._frame

    def day_range(self) -> tuple[date, date]:
        """First and last day with events (stored by the load: `maturity`)."""
        found = self.maturity()
        return found["first"], found["last"]

    def maturity(self) -> dict:
        """The day range and every label source's curve (`maturity.py`): what the load stored, read once per
        connection (no load can write while this read-only connection is open); scanned for a database loaded
        before loads stored them."""
        from riskconsole import maturity

        con = self.connection()
        with self._lock:
            known = self._maturity
        if known is None or known[0] is not con:
            with self.cursor() as cur:
                found = maturity.stored(cur) or maturity.compute(cur, self.dataset)
            known = self._maturity = (con, found)
        return known[1]

    def label_sources(self) -> list[dict]:
        """Each label source with its curve, mature age and the one line that reads it (the Data page's chart)."""
        from riskconsole.maturity import mature_age, reading

        found = self.maturity()
        return [{**s, "mature_age": mature_age(s["curve"]), "reading": reading(s, found["last"])}
                for s in found["sources"]]

    def window(self, start: str | None = None, end: str | None = None, as_of: str | None = None,
               strategy: str | Path | None = None) -> Window:
        """A backtest window from CLI-style text; `as_of` needs a mapped label_time (else it would change nothing).
        Without `end` and `as_of` it ends on the last mature day of the label the strategy file `strategy` counts
        (`_mature`; the events' label without one).

        Raises:
            RiskConsoleError: a bad date, an empty window, or `as_of` without label_time.
        """
        if as_of and not self.dataset.columns.label_time:
            raise RiskConsoleError(
                f"--as-of {as_of}: {self.ws.rel(self.ws.dataset_path)} maps no columns.label_time, so every label "
                "counts as known at once and --as-of would change nothing; map label_time (when the label became "
                "known) to replay what was known on a day")
        window = make_window(start, end, as_of)
        return window if as_of else self._mature(window, strategy)

    def _mature(self, window: Window, path: str | Path | None) -> Window:
        """Without --to (and --as-of, which already says which labels count), the window ends on the last mature
        day (labels of later days are still arriving), with the note that says so; unchanged where the label has no
        date or nothing would be left. A --to past that day is kept, with a note saying so (where goods are
        labelled at once, the later days' unconfirmed fraud reads as good and no share of unlabelled days shows
        it). An entity-level strategy's days come from its entity-periods' label."""
        from riskconsole.maturity import mature_last_day, mature_note, past_mature_note

        level = self._strategy_view(path).level if path is not None else None
        found = self._mature_label(level, self.ws.rel(path) if path is not None else "strategy")
        if found is None:
            return window
        curve, unit, fraud = found
        last_event = self.day_range()[1]
        mature = mature_last_day(curve, last_event)
        if mature is None or mature[0] >= last_event:
            return window
        last, age = mature
        end = datetime.combine(last + timedelta(days=1), time())
        if window.end is not None:  # --to given: kept, and said when it reaches past the last mature day
            if window.end <= end:
                return window
            first = max(last + timedelta(days=1), window.start.date() if window.start else last)
            late = min((window.end - timedelta(microseconds=1)).date(), last_event)  # the day of its last instant
            return replace(window, note=past_mature_note(last, first, late, age, unit, fraud=fraud))
        if window.start is not None and window.start >= end:
            return window  # a window of immature days only: kept (its report warns that labels are immature)
        return replace(window, end=end, note=mature_note(last, age, last_event, unit, fraud=fraud))

    def _mature_label(self, level: Level | None, label: str) -> tuple[list[dict], str, bool] | None:
        """The curve and unit of the label a backtest counts, where that label is dated: the events', or an
        entity level's (its table's label, or its periods' events where no table maps one), and whether the curve
        is of fraud confirmed (the events' good labels undated); `label` names the strategy file in errors."""
        roles = self.dataset.columns
        if level is None:
            events = self._events_maturity()
            return (events.get("curve", []), "events", bool(events.get("undated_goods"))) \
                if roles.label and roles.label_time else None
        from riskconsole.entities import check_level, label_table  # imports every feature builder: entity levels only

        check_level(level, self.dataset, self.frame.columns, label)
        owner = label_table(self.dataset, level.entity)
        if not (self.dataset.tables[owner].label_time if owner else roles.label and roles.label_time):
            return None
        from riskconsole.maturity import entity_curve

        view = self.entities(level, label)
        key = ("curve", level.entity, level.every_seconds, level.horizon_seconds, self._data_version())
        with self._lock:
            curve = self._level_curves.get(key)
        if curve is None:
            curve = entity_curve(self.connection(), view.table, self.day_range()[1])
            with self._lock:
                self._level_curves = {key: curve}
        # a table's label: an entity not banned is good from the start, so the curve is of fraud confirmed (periods
        # of fraud not yet confirmed count as good, none is left out)
        return curve, f"{level.entity} periods", owner is not None

    def label_age_curve(self) -> list[dict]:
        """Share labelled by event age of the events' label (`maturity.age_curve`), as the load stored it."""
        return self._events_maturity().get("curve", [])

    def _events_maturity(self) -> dict:
        """The events' label source as the load stored it (`maturity.sources`: curve, undated_goods; {} without)."""
        return next((s for s in self.maturity()["sources"] if s["source"] == "events"), {})

    # ------------------------------------------------------------ strategies

    def strategy(self, path: str | Path) -> Strategy:
        """A strategy file, validated; parsed once per file text (a backtest reads it for its window and again to
        compile: the strict YAML loader costs ~50 ms per 20 rules). The file is read every time, so an edit is
        never served from the cache."""
        from riskconsole.config import Strategy, parse_model

        key = self.file_text(path)
        label = key[0]
        with self._lock:
            found = self._strategies.get(key)
        if found is None:
            found = parse_model(self._yaml(key[1], label), Strategy, label)
            with self._lock:
                self._strategies[key] = found
                while len(self._strategies) > 32:
                    self._strategies.pop(next(iter(self._strategies)))
        return found

    def file_text(self, path: str | Path) -> tuple[str, str]:
        """(label, text) of an input file (strategy YAML). A run's session (`once`) reads each file once and passes
        the text along, so a strategy piped in (`cat s.yaml | riskconsole backtest /dev/stdin`) reads the same when
        the window, the cache key and the compiler ask for it; the console's session reads the file every time, so
        an edit is never served stale."""
        label = self.ws.rel(path)
        where = os.path.abspath(path)  # not resolved: /dev/stdin stays itself
        with self._lock:
            found = self._texts.get(where)
        if found is None:
            found = read_config(Path(path), label)
            if self._once:
                with self._lock:
                    found = self._texts.setdefault(where, found)
        return label, found

    def _strategy_view(self, path: str | Path) -> Strategy:
        """What a cached backtest reads of a strategy file besides its plan (its level for the window; its name and
        description for the report): with `cache`, a view kept by the compiled-query cache (no model built, no YAML
        parsed), else the validated model."""
        if not self._cache:
            return self.strategy(path)
        from riskconsole.configfile import strategy_view

        made: list = []

        def build() -> dict | None:
            made.append(self.strategy(path))
            return strategy_view(made[0])

        data, kept = querycache.validated(self.ws.root, "strategy", self.file_text(path)[1],
                                          strategy_shape, build, self._parsed)
        return strategy_of(data, lambda: self.strategy(path)) if kept else made[0]

    def compile(self, path: str | Path, overrides: dict | None = None, strategy: Strategy | None = None,
                every: bool = False) -> CompiledStrategy:
        """A strategy with its expressions checked against the frame (an entity strategy's: its entity frame) and
        params applied; `every` (validate): every failing rule is reported, not the first."""
        strategy = strategy or self.strategy(path)
        if strategy.level is not None:
            from riskconsole.entities import check_level

            check_level(strategy.level, self.dataset, self.frame.columns, self.ws.rel(path))
        frame, _ = self.view(strategy)
        with self.cursor(strategy) as cur:
            try:
                return compile_strategy(strategy, frame, self.ws.rel(path), overrides, con=cur, every=every)
            except ExpressionError as err:
                raise ExpressionError(untrained_hint(self.ws, str(err), frame)) from None

    def check_text(self, text: str, label: str) -> Strategy:
        """Parse and fully check strategy YAML as typed in the editor (what `validate` checks of a file)."""
        from riskconsole.config import Strategy, parse_model, read_yaml
        from riskconsole.validate import check_strategy_text

        strategy = parse_model(read_yaml(text, label), Strategy, label)
        if strategy.level is not None:
            from riskconsole.entities import check_level

            check_level(strategy.level, self.dataset, self.frame.columns, label)
        frame, _ = self.view(strategy)
        with self.cursor(strategy) as cur:
            return check_strategy_text(text, frame, label, cur)

    def strategy_yaml(self, path: str | Path, overrides: dict | None = None) -> str:
        """The strategy's YAML with `overrides` written into its params (what a reviewer approves)."""
        import yaml

        strategy = self.strategy(path)
        reviewed = strategy.model_copy(update={"params": {**strategy.params, **(overrides or {})}})
        return yaml.safe_dump(reviewed.model_dump(mode="json", exclude_none=True), sort_keys=False,
                              allow_unicode=True)

    # ------------------------------------------------------------ backtests

    def backtest(self, path: str | Path, window: Window | None = None, overrides: dict | None = None,
                 baseline: Baseline | None = None, by: str | None = None, assume: str | None = None,
                 strategy: Strategy | None = None) -> Backtest:
        """Compile, run and report one strategy (and, with a baseline, both in the same SQL pass).

        With `prod_action` mapped, the same pass is split by observability class and adds bounds over the outcomes
        production hid (and `assume` names an explicit assumption about them instead of the worst case): see
        `outcomes.py`. An entity-level strategy runs the same way over its entity frame (`entities.py`). With
        `cache`, a run whose files, data and options were all seen before runs the SQL compiled then
        (`querycache.py`); the queries run and the report is built the same way either way.
        """
        from riskconsole.compare import compare_block

        window = window or Window()
        key = self._plan_key(path, window, overrides, baseline, by) \
            if self._cache and strategy is None and self.engine == "duckdb" else None
        found = self._cached_run(key, path, window, baseline) if key else None
        if found is not None and key != self._plan_key(path, window, overrides, baseline, by):
            found = None  # a file was edited while the cached run read it: its SQL may not be the file's
        self.cached_plan = found is not None
        if found is not None:  # views of the files it read that the cache did not hold yet
            self._write_parsed()
        compiled, base, groups, joint, decisions_sql = found or self._run(key, path, window, overrides, baseline, by,
                                                                           strategy)
        if found is not None:  # a cached plan decides events (an entity level's is never kept): no frame read unless asked
            frame, dataset = (lambda: self.frame), self.dataset
        else:
            frame, dataset = self.view(compiled.strategy)
        report = self._report(compiled, groups, window, by)
        if joint is not None:
            own = set(report["warnings"])
            block = compare_block(joint, dataset, baseline.bootstrap, baseline.seed,
                                  [w for w in self._warnings_of(base, report) if w not in own])
            report["compare"] = {"baseline_strategy": base.name, **block}
        if self._outcome_blocks(compiled):
            from riskconsole.outcomes import attach

            attach(report, compiled, base, groups if joint is None else joint, dataset, assume,
                   *((baseline.bootstrap, baseline.seed) if baseline else ()))
        elif assume:
            why = "maps no columns.prod_action, so no outcome is hidden and there is nothing to assume" \
                if not self.dataset.columns.prod_action else "is entity-level: production decided events, not " \
                "entity-periods, so there are no hidden entity outcomes to assume"
            where = self.ws.rel(self.ws.dataset_path) if not self.dataset.columns.prod_action else self.ws.rel(path)
            raise RiskConsoleError(f"--assume {assume}: {where} {why}")
        return Backtest(report, compiled, groups, window, dataset, frame, decisions_sql)

    def _outcome_blocks(self, compiled: CompiledStrategy) -> bool:
        """Whether a backtest carries the outcome blocks of §6.2 (prod_action mapped; events, not entities)."""
        return bool(self.dataset.columns.prod_action) and compiled.strategy.level is None

    def _run(self, key: str | None, path: str | Path, window: Window, overrides: dict | None,
             baseline: Baseline | None, by: str | None, strategy: Strategy | None) -> tuple:
        """Compile and run a backtest's grouped pass: (compiled, baseline compiled, groups, joint, decisions SQL).
        On DuckDB the pass runs as the SQL text that the compiled-query cache keeps (stored under `key`)."""
        from riskconsole.compare import joint_groups, joint_union
        from riskconsole.segments import segment_expression

        compiled = self.compile(path, overrides, strategy)
        frame, dataset = self.view(compiled.strategy)
        base = self.compile(baseline.path) if baseline is not None else None
        if base is not None:
            self._same_level(compiled, base, baseline.path)
            if key is not None:
                self._strategy_view(baseline.path)  # kept with the plan: the next run reads no model of it
        classes = None
        if self._outcome_blocks(compiled):
            from riskconsole.outcomes import observability_class

            classes = observability_class(dataset, frame.columns)
        with self.cursor(compiled.strategy) as cur:
            runner = self._runner(cur, self.ws.rel(path), compiled, *([base] if base is not None else []))
            segment = segment_expression(runner, by, compiled, frame, dataset, window) if by else None
            if runner is not cur:  # another engine renders and runs the ASTs itself
                if base is None:
                    return compiled, None, run_groups(runner, compiled, frame, dataset, window, segment, classes), \
                        None, None
                joint = joint_groups(runner, compiled, base, frame, dataset, window,
                                     baseline.allow_different_population, segment, classes)
                return compiled, base, joint.side_groups("candidate"), joint, None
            union, sides = compiled, None
            if base is not None:
                union, *sides = joint_union(compiled, base, baseline.allow_different_population)
            plan = {"groups": render(groups_query(union, frame, dataset, window, segment, classes)),
                    "span": render(span_query(dataset)), "rules": len(union.rules), "segment": segment is not None,
                    "classes": classes is not None, "joint": sides,
                    "decisions": render(decisions_query(compiled, frame, dataset, window)),
                    "candidate": _light(compiled, frame), "baseline": _light(base, frame) if base is not None else None}
            groups, joint = self._plan_groups(cur, plan, compiled, base, window)
            if groups is None:
                raise RiskConsoleError(empty_window_message(cur, union, dataset, window))
        if key is not None and compiled.strategy.level is None and \
                key == self._plan_key(path, window, overrides, baseline, by):  # no file changed meanwhile
            self._write_parsed((key, plan))
        return compiled, base, groups, joint, plan["decisions"]

    def _write_parsed(self, *more: tuple[str, object]) -> None:
        """Write the parsed YAML and views this session made (and `more`) to the compiled-query cache."""
        for name, value in [*self._parsed, *more]:
            querycache.write(self.ws.root, name, value)
        self._parsed.clear()

    def _cached_run(self, key: str, path: str | Path, window: Window, baseline: Baseline | None) -> tuple | None:
        """A backtest's grouped pass from the SQL the compiled-query cache kept under `key` (None: not kept)."""
        plan = querycache.read(self.ws.root, key)
        if plan is None:
            return None
        try:
            compiled = _compiled(self._strategy_view(path), plan["candidate"])
            base = _compiled(self._strategy_view(baseline.path), plan["baseline"]) if baseline is not None else None
            with self.cursor() as cur:
                groups, joint = self._plan_groups(cur, plan, compiled, base, window)
            decisions = plan["decisions"]
        except Exception:  # noqa: BLE001 - an entry of another shape (planted, foreign) is a miss: compile instead
            return None
        return None if groups is None or not isinstance(decisions, str) else (compiled, base, groups, joint,
                                                                               decisions)

    @staticmethod
    def _plan_groups(cur: duckdb.DuckDBPyConnection, plan: dict, compiled: CompiledStrategy,
                     base: CompiledStrategy | None, window: Window) -> tuple:
        """(groups, joint) of a plan's grouped query: one strategy's, or a comparison's (candidate side, joint);
        (None, None) when it holds no row."""
        from riskconsole.compare import joint_of

        groups = read_groups(cur, plan["groups"], plan["span"], compiled.name, plan["rules"], window,
                             plan["segment"], plan["classes"])
        if groups is None or plan["joint"] is None:
            return groups, None
        joint = joint_of(groups, compiled, base, *plan["joint"])
        return joint.side_groups("candidate"), joint

    def _plan_key(self, path: str | Path, window: Window, overrides: dict | None, baseline: Baseline | None,
                  by: str | None) -> str | None:
        """The compiled-query cache's key of a backtest: every file and setting its SQL depends on (None when a file
        cannot be read: the run compiles, and says what is wrong with the file)."""
        try:
            files = [self.file_text(path)]
            if baseline is not None:
                files.append(self.file_text(baseline.path))
            lists = self.ws.lists_dir
            listed = sorted((p.name, p.read_bytes()) for p in lists.iterdir() if p.is_file()) if lists.is_dir() else []
            self.dataset  # noqa: B018 - read once: the key holds the text this session runs with, not a later save
            dataset = self._dataset_text
        except (OSError, RiskConsoleError):
            return None
        return querycache.key("backtest", files, dataset, listed, self._data_version(), window,
                              sorted((overrides or {}).items()), by,
                              baseline.allow_different_population if baseline is not None else None)

    def _same_level(self, candidate: CompiledStrategy, baseline: CompiledStrategy, path: str | Path) -> None:
        """A comparison is of like with like: both decide events, or both the same entity-periods."""
        a, b = candidate.strategy.level, baseline.strategy.level
        if a == b:
            return
        def unit(level: Level | None) -> str:
            return "events" if level is None else \
                f"{level.entity} every {level.every} (money over {level.horizon or level.every})"
        raise RiskConsoleError(f"--baseline {self.ws.rel(path)}: it decides {unit(b)} and '{candidate.name}' decides "
                               f"{unit(a)}; compare strategies of the same level")

    def _report(self, compiled: CompiledStrategy, groups, window: Window, by: str | None = None) -> dict:
        """The report of grouped events, with every warning the strategy's detectors call for."""
        dataset = self.dataset if compiled.strategy.level is None else self.view(compiled.strategy)[1]  # no frame read
        report = build_report(compiled, groups, dataset, window, by=by)
        changed = self.dataset_changed()  # the data itself is in doubt: said first
        report["warnings"] = [changed] * bool(changed) + report["warnings"] + \
            [w for w in self._warnings_of(compiled, report) if w not in report["warnings"]]
        undated = self._undated_goods_note(window) if compiled.strategy.level is None else None
        if undated and undated not in report["warnings"]:
            report["warnings"].append(undated)
        level = compiled.strategy.level
        if level is not None:
            report["level"] = self._level_block(compiled.strategy)
            if level.horizon_seconds > level.every_seconds:
                times = -(-level.horizon_seconds // level.every_seconds)
                report["warnings"].append(
                    f"money is per decision over a {level.horizon} horizon with a decision every {level.every}: an "
                    f"order's amount counts once for each flagged {level.entity} period whose horizon holds it (up to "
                    f"{times}×), so money totals, net benefit and the optimizer favour flagging the same "
                    f"{level.entity} again and again; set horizon: {level.every} to count each order once")
            elif level.horizon_seconds < level.every_seconds:
                report["warnings"].append(
                    f"money is per decision over a {level.horizon} horizon with a decision every {level.every}: a "
                    f"{level.entity} flagged at a period's start stays decided until the next period's, but only its "
                    f"orders in the first {level.horizon} count, so fraud money stopped and good money blocked read "
                    f"low; set horizon: {level.every} (or leave it out) to count the whole period")
            hidden = self._entity_hidden_note(compiled, window)
            if hidden:
                report["warnings"].append(hidden)
        for warning in self._literal_warnings(compiled):  # `channel = 'Live'` where the data says 'live'
            if warning not in report["warnings"]:
                report["warnings"].append(warning)
        if compiled.lists:  # which version of each list it ran with
            report["lists"] = report_lists(self.frame.lists, compiled.lists, report["window"]["to"])
        return report

    def _literal_warnings(self, compiled: CompiledStrategy) -> list[str]:
        """`literals.literal_warnings` of the strategy's rules, asked once per data version and check: a slider move
        of the console asks the same check again (answered from memory), a CLI run of the same data and SQL reads
        the compiled-query cache (a pure function of the two: the data version is in the key)."""
        from riskconsole.literals import literal_warnings

        frame = None if compiled.literal_check is not None else self.view(compiled.strategy)[0]
        pairs, queries = _literal_check(compiled, frame)
        if not queries:
            return []
        key = (self._data_version(), compiled.strategy.level is not None and compiled.strategy.level.entity,
               queries[0])
        with self._lock:
            found = self._literals.get(key)
        if found is None:
            def ask() -> list[str]:
                with self.cursor(compiled.strategy) as cur:
                    return literal_warnings(cur, [tuple(p) for p in pairs], queries)

            name = "literals-" + querycache.key("literals", *key) if self._cache else None  # the CLI's next run
            found = querycache.remembered(self.ws.root, name, lambda v: isinstance(v, list) and all(
                isinstance(w, str) for w in v), ask)
            with self._lock:
                self._literals[key] = found
        return list(found)

    def _entity_hidden_note(self, compiled: CompiledStrategy, window: Window) -> str | None:
        """With `prod_action` mapped, an entity-level report's money over its horizons counts labelled events only:
        how many events in the horizons of the report's entity-periods (in its window and population, as the
        backtest filters them) production blocked without a label, and their amount (the order-level report bounds
        them, DESIGN §6.2; the entity level says what it leaves out)."""
        roles = self.dataset.columns
        if not roles.prod_action or not roles.label:
            return None
        from riskconsole.backtest import population_filters
        from riskconsole.entities import TIME
        from riskconsole.outcomes import observability_class
        from riskconsole.strategy import source

        level = compiled.strategy.level
        frame, dataset = self.view(compiled.strategy)
        periods = exp.select(ident(level.entity), ident(TIME)).from_(source(compiled, frame).subquery("src"))
        for condition in population_filters(compiled, dataset, window) + frame.counted():
            periods = periods.where(condition)
        with self.cursor(compiled.strategy) as cur:  # its entity frame as `frame`
            decided = cur.sql(render(periods)).to_arrow_table()
        cls = render(observability_class(self.dataset, self.frame.columns)[0])
        k, t = ident(level.entity).sql("duckdb"), ident(roles.time).sql("duckdb")
        amount = f"coalesce(sum(CAST(e.{ident(roles.amount).sql('duckdb')} AS DOUBLE)), 0)" if roles.amount else "0"
        horizon = level.horizon_seconds * 1_000_000
        with self.cursor() as cur:
            cur.register("__entity_hidden_periods", decided)
            found = cur.execute(
                f"SELECT count(*), {amount} FROM frame AS e WHERE ({cls}) = 1 AND e.{ident(roles.label).sql('duckdb')} "
                f"IS NULL AND EXISTS (SELECT 1 FROM __entity_hidden_periods AS p WHERE p.{k} = e.{k} "
                f"AND e.{t} >= p.{TIME} AND e.{t} < p.{TIME} + to_microseconds(?))", [horizon]).fetchall()[0]
            cur.unregister("__entity_hidden_periods")
        if not found or not found[0]:
            return None
        money = f"; their amount: {found[1]:,.0f}" if roles.amount else ""
        return (f"{found[0]:,} events in the horizons of these {level.entity} periods were blocked by production and "
                f"have no label ({roles.prod_action} = block{money}): the fraud and good money a decision stops or "
                "loses counts labelled events only, so fraud money stopped, amount recall, good money blocked and net "
                "benefit leave them out whatever they were (bounds over hidden outcomes are computed for event-level "
                "strategies)")

    def _undated_goods_note(self, window: Window) -> str | None:
        """With --as-of, where only fraud labels carry a label_time (the load found good labels undated: a shop that
        dates its chargebacks only), what that does: every good label counts as unknown as of any day."""
        if window.as_of is None:
            return None
        events = self._events_maturity()
        if not events.get("undated_goods"):
            return None
        roles = self.dataset.columns
        return (f"--as-of: only fraud labels have a {roles.label_time} (label_time) in this data; good labels have "
                f"none, so as of any day every good label counts as unknown: good flagged (fp) and good allowed (tn) "
                f"are 0, precision is 100% wherever labelled fraud is flagged, and the good events are counted as "
                f"unlabelled. To replay what was known, give good labels a {roles.label_time} too (when they were "
                "settled), or backtest without --as-of")

    def _level_block(self, strategy: Strategy) -> dict:
        """The report's `level`: what one decision is, and which dataset features it could read."""
        level = strategy.level
        found = self.entities(level, strategy.name)
        return {"entity": level.entity, "every": level.every, "horizon": level.horizon or level.every,
                "label_from": found.label_from, "features": found.features,
                "features_elsewhere": found.elsewhere}

    def _warnings_of(self, compiled: CompiledStrategy, report: dict) -> list[str]:
        days = (report["window"]["from"], report["window"]["to"])
        return detector_warnings(self.ws, compiled, days)

    def dataset_changed(self) -> str | None:
        """A warning when data/dataset.yaml no longer describes the loaded data (sources, roles, features edited
        since the last load; `business:`, `engine:` and `spark:` are read at report time and do not change the data,
        so editing them needs no load). Read once per connection, like the maturity: every report asks."""
        return self._last_load()[2]

    def load_warnings(self) -> list[str]:
        """What the last load warned (a column mostly quarantined, JSON columns loaded as text, overlapping ranges),
        as `load` printed it: kept with the data, so the console shows it whoever loaded."""
        meta = self._last_load()[1]
        return list(meta.get("warnings", [])) if meta else []

    def _last_load(self) -> tuple:
        """(connection, the last load's `_meta` record or None before a load, `dataset_changed`'s warning), read and
        compared once per connection."""
        import json

        from riskconsole.names import META_TABLE

        con = self.connection()
        with self._lock:
            known = self._loaded_with
        if known is None or known[0] is not con:
            with self.cursor() as cur:
                tables = {t for (t,) in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
                rows = cur.execute(f"SELECT meta FROM {META_TABLE}").fetchall() if META_TABLE in tables else []
            meta = json.loads(rows[0][0]) if rows else None
            changed = None
            if meta and self._edited(meta["dataset"], json_dump(self.dataset)):
                changed = (f"{self.ws.rel(self.ws.dataset_path)} has changed since the last load "
                           f"({meta['loaded_at'].replace('T', ' ')} UTC): these numbers are of the data as it was "
                           "loaded; run `riskconsole load` to load it as the file says now")
            known = self._loaded_with = (con, meta, changed)
        return known

    def _edited(self, loaded: dict, now: dict) -> bool:
        """`_edited`, kept in the compiled-query cache where this session uses it: a workspace loaded by an older
        version reads its recorded spec through today's model (config and pydantic imported, ~70 ms) once, not on
        every CLI backtest until it is loaded again."""
        name = "edited-" + querycache.key("edited", loaded, now) if self._cache and loaded != now else None
        return querycache.remembered(self.ws.root, name, lambda v: isinstance(v, bool), lambda: _edited(loaded, now))

    def interactive(self, path: str | Path, window: Window, overrides: dict | None = None,
                    strategy: Strategy | None = None) -> dict:
        """The report at any param setting, from cached rule hits (the console's path): the same numbers and
        warnings as `backtest`, in milliseconds once the window's evaluator is warm.

        Conditions are compiled once per (rule, params it reads); a threshold param moved alone is answered
        from its sorted column (no SQL); actions, on/off and rule order reuse the cached groups. An entity-level
        strategy is answered by `backtest` over its (small, cached) entity frame. On another engine than DuckDB
        (Spark) it is that engine's `backtest`, the CLI's call: one grouped pass per answer, no DuckDB evaluator."""
        from riskconsole.evaluator import compiler_of

        if self.engine != "duckdb":
            return self.backtest(path, window, overrides, strategy=strategy).report
        compiler = compiler_of(self)
        strategy = strategy or compiler.strategy(self.ws, path)
        if strategy.level is not None:
            return self.backtest(path, window, overrides, strategy=strategy).report
        with self.cursor() as cur:
            try:
                compiled = compiler.compile(strategy, self.ws.rel(path), overrides, cur)
            except ExpressionError as err:
                raise ExpressionError(untrained_hint(self.ws, str(err), compiler.frame)) from None
        evaluator = self._evaluator(compiled, window)
        report = self._report(compiled, evaluator.answer(compiled), window)
        if self.dataset.columns.prod_action:  # the backtest's outcome blocks, from the evaluator's cached rows
            from riskconsole.outcome_cells import warm_outcomes
            from riskconsole.outcomes import describe

            describe(report, warm_outcomes(evaluator, compiled), compiled, self.dataset)
        return report

    def _data_version(self) -> tuple:
        """The loaded data's version, read once per connection (no load can write while this read-only
        connection is open); the key of every cached evaluator and entity frame."""
        from riskconsole.strategy import data_version

        con = self.connection()
        with self._lock:
            known = self._version
        if known is None or known[0] is not con:
            with con.cursor() as cur:
                known = self._version = (con, data_version(cur))
        return known[1]

    def _evaluator(self, compiled: CompiledStrategy, window: Window):
        """The warm evaluator of (window, population, data version): a load or a train gives a new version,
        so a cached answer is never one of other data."""
        from riskconsole.evaluator import Evaluator

        population = compiled.population.sql() if compiled.population is not None else None
        con, version = self.connection(), self._data_version()
        key = (window, population, version)
        with self._lock:
            if key in self._evaluators:
                self._evaluators.move_to_end(key)
                return self._evaluators[key]
        evaluator = Evaluator(con, self.dataset, self.frame, window, compiled, version)
        with self._lock:
            self._evaluators[key] = evaluator
            while len(self._evaluators) > EVALUATORS:
                self._evaluators.popitem(last=False)
        return evaluator

    def decisions(self, bt: Backtest) -> pa.Table:
        """One row per decided event (or entity-period) of a backtest (decisions.parquet)."""
        return self._decisions(bt.compiled, lambda: bt.frame, bt.dataset, bt.window, f"strategy '{bt.compiled.name}'",
                               bt.decisions_sql)

    def decision_rows(self, path: str | Path, window: Window, overrides: dict | None = None,
                      strategy: Strategy | None = None) -> pa.Table:
        """The decisions of a strategy at a param setting without a report (the Backtest page's entity-period
        table: entity, period, decision, why, and the outcome that followed)."""
        compiled = self.compile(path, overrides, strategy)
        frame, dataset = self.view(compiled.strategy)
        return self._decisions(compiled, lambda: frame, dataset, window, self.ws.rel(path))

    def _decisions(self, compiled: CompiledStrategy, frame_of: Callable[[], Frame], dataset: Dataset, window: Window,
                   label: str, sql: str | None = None) -> pa.Table:
        """The decisions table, computed by the session's engine (Spark's rows in DuckDB's Arrow types); `sql`: its
        query as the backtest rendered it for DuckDB (then the frame, `frame_of()`, is not read)."""
        with self.cursor(compiled.strategy) as cur:
            if sql is not None and self.engine == "duckdb":
                return run_query(cur, sql, compiled.name)
            frame = frame_of()
            runner = self._runner(cur, label, compiled)
            table = fetch_decisions(runner, compiled, frame, dataset, window)
            if runner is not cur:
                from riskconsole.engines.spark import conform

                table = conform(table, cur, decisions_query(compiled, frame, dataset, window))
            return table

    def export(self, bt: Backtest, formats: list[str]) -> dict[str, bytes]:
        """File name -> bytes of a backtest in the requested formats (the CLI and the Export page write these)."""
        wants_decisions = "csv" in formats or "parquet" in formats
        files = render_files(bt.report, formats, self.decisions(bt) if wants_decisions else None)
        used = bt.compiled.lists
        return {**files, **(list_files(bt.frame.lists, used) if used else {})}  # the list versions it ran with

    def transition_events(self, path: str | Path, baseline: str | Path, window: Window, before: str, after: str,
                          overrides: dict | None = None, limit: int = 500) -> pa.Table:
        """Events whose decision goes from `before` (baseline) to `after` (candidate)."""
        from riskconsole.compare import transition_events

        candidate, base = self.compile(path, overrides), self.compile(baseline)
        self._same_level(candidate, base, baseline)
        frame, dataset = self.view(candidate.strategy)
        with self.cursor(candidate.strategy) as cur:
            return transition_events(cur, candidate, base, frame, dataset, window, before, after, limit)

    def event_decision(self, path: str | Path, event_id: str) -> dict | None:
        """One event's decision and matched rules under a strategy."""
        from riskconsole.backtest import event_decision

        compiled = self.compile(path)
        frame, dataset = self.view(compiled.strategy)
        with self.cursor(compiled.strategy) as cur:
            return event_decision(cur, compiled, frame, dataset, event_id)

    # ------------------------------------------------------------ monitoring

    def monitor(self, path: str | Path, start: str | None = None, end: str | None = None,
                reference: str | None = None, by: list[str] | None = None) -> dict:
        """monitor.json of the strategy as deployed: daily KPIs with bands, alerts, attribution, drift
        (DESIGN §6.1); the CLI's `monitor` and the Monitor page both call this. Its passes over events run on the
        session's engine."""
        from riskconsole.monitor import build, parse_periods

        first, last = self.day_range()
        periods = parse_periods(first, last, start, end, reference)
        compiled = self.compile(path)
        frame, dataset = self.view(compiled.strategy)
        with self.cursor(compiled.strategy) as cur:
            result = build(cur, compiled, frame, dataset, periods, list(by or []), self.ws.rel(path),
                           self._monitor_detectors(), self._runner(cur, self.ws.rel(path), compiled))
        scores = [d for d in frame.scores if d not in frame.stale]
        return {**result, "warnings": result["warnings"] + self._monitor_warnings(path, periods)
                + self._monitor_overlaps(scores, periods)}

    def _monitor_overlaps(self, scores: list[str], periods: Periods) -> list[str]:
        """One warning per period (reference, window) naming the detectors whose scores the monitor reads that were
        trained or validated on its days: their scores there are in-sample, so drift against such a reference is
        biased (a LightGBM score is sharper on the rows it learned) and so is the early-warning estimate."""
        from riskconsole.report import detector_overlaps

        out = []
        for what, period, then in (
                ("the reference", periods.reference, ": their scores there are in-sample (optimistic), so their drift "
                 "and the early-warning estimate are measured against them; take a reference after those days "
                 "(--reference)"),
                ("the monitored window", periods.window, ": their scores there are optimistic")):
            days = (period.start.date().isoformat(), (period.end - timedelta(microseconds=1)).date().isoformat())
            fitted: dict[str, list[str]] = {}
            for name, part, start, end in detector_overlaps(self.ws, scores, days):
                fitted.setdefault(name, []).append(f"{'trained' if part == 'train' else 'validated'} {start}..{end}")
            if fitted:
                listed = ", ".join(f"{name} ({'; '.join(spans)})" for name, spans in fitted.items())
                out.append(f"detectors fitted on days of {what} {days[0]}..{days[1]}: {listed}{then}")
        return out

    def _monitor_warnings(self, path: str | Path, periods: Periods) -> list[str]:
        """The monitor's warnings: labels still arriving on days of its window or reference (as of the window's
        end, when its labels are known), as the backtest's default window reads the label's age curve."""
        from riskconsole.maturity import mature_last_day, monitor_note

        found = self._mature_label(self._strategy_view(path).level, self.ws.rel(path))
        known = (periods.window.end - timedelta(microseconds=1)).date()
        mature = mature_last_day(found[0], known) if found is not None else None
        if mature is None:
            return []
        day = lambda w: (w.start.date(), (w.end - timedelta(microseconds=1)).date())  # noqa: E731
        note = monitor_note(*mature, day(periods.window), day(periods.reference), found[1], fraud=found[2])
        return [note] if note else []

    def _monitor_detectors(self) -> dict:
        """The first supervised (LightGBM) and the first unsupervised (PyOD) detector of the workspace, and
        `inputs`: every column some detector reads (the attributes attack discovery may name)."""
        found: dict = {"supervised": None, "anomaly": None, "inputs": []}
        for path in sorted(self.ws.detectors_dir.glob("*.yaml")) if self.ws.detectors_dir.exists() else []:
            try:
                spec = self.ws.detector(path)
            except RiskConsoleError:
                continue
            role = "anomaly" if spec.kind.startswith("pyod.") else "supervised"
            found[role] = found[role] or spec.name
            found["inputs"] = list(dict.fromkeys([*found["inputs"], *spec.features]))
        return found

    # ------------------------------------------------------------ params

    def curve(self, path: str | Path, window: Window, param: str, others: dict) -> list[dict]:
        """Overall metrics over the slider range of `param`: on DuckDB from the evaluator's sorted column when `param`
        is a threshold (one searchsorted per point, no SQL once warm), else one SQL pass; on Spark one grouped pass
        for the whole curve (the `sweep` pass: a grid's conditions in one mask, or a threshold's sorted scores)."""
        from riskconsole.tuning import curve, threshold_curve

        strategy = self.strategy(path)
        if strategy.level is None and self.engine == "duckdb":
            points = threshold_curve(self, path, strategy, window, param, others)
            if points is not None:
                return points
        frame, dataset = self.view(strategy)
        with self.cursor(strategy) as cur:
            runner = self.runner(cur, path, others, strategy)  # the cursor, or the Spark engine
            return curve(runner, strategy, frame, dataset, self.ws.rel(path), window, param, others)

    def sweep(self, path: str | Path, param: str, values: list, window: Window,
              overrides: dict | None = None) -> dict:
        """Overall metrics at each value of `param`."""
        from riskconsole.sweep import sweep

        return sweep(self, path, param, values, window, overrides)

    def optimize(self, path: str | Path, values: dict[str, str | list | None], window: Window,
                 overrides: dict | None = None, max_overflow_days: int = 0,
                 min_precision: float | None = None) -> dict:
        """Param values that maximise net benefit within review capacity, and the frontier."""
        from riskconsole.sweep import optimize

        return optimize(self, path, values, window, overrides, max_overflow_days, min_precision)

    def gate(self, path: str | Path, requires: list[str], window: Window | None = None,
             overrides: dict | None = None, baseline: Baseline | None = None,
             assume: str | None = None) -> GateResult:
        """Judge the strategy's `guardrails:` and `requires` on a comparison with their intervals."""
        from riskconsole.gate import judge, parse_guardrail

        strategy = self.strategy(path)
        texts = [(f"{self.ws.rel(path)}: guardrails", g) for g in strategy.guardrails] + \
            [("--require", g) for g in requires]
        if not texts:
            raise RiskConsoleError("no guardrail: give --require METRIC>=VALUE or `guardrails:` in the strategy YAML")
        report = self.backtest(path, window, overrides, baseline, assume=assume).report
        metrics = [k for k, v in report["overall"].items() if isinstance(v, (int, float)) or v is None]
        guards = [parse_guardrail(text, metrics, where) for where, text in texts]
        return GateResult([judge(g, report) for g in guards], report,
                          self.ws.rel(baseline.path) if baseline else None)

    # ------------------------------------------------------------ data

    def reload(self, dataset_path: str | Path | None = None, progress=None, trusted: bool = False):
        """Load the events again (features, and every trained detector re-scored, swapped in together: see
        `ingest.reload`); `trusted=True` only for a path a local user gave the CLI. The session reopens after."""
        from riskconsole.ingest import reload

        self.close()
        self._dataset = self._dataset_text = self._dataset_model = None
        return reload(self.ws, dataset_path, progress, trusted=trusted)


def _light(compiled: CompiledStrategy, frame: Frame) -> dict:
    """What a report reads of a compiled strategy, as plain data (the compiled-query cache keeps it)."""
    return {"params": compiled.params, "rules": [(r.name, r.action, r.enabled) for r in compiled.rules],
            "detectors": list(compiled.detectors), "lists": compiled.lists,
            "literals": list(_literal_check(compiled, frame))}


def _compiled(strategy: Strategy, light: dict) -> CompiledStrategy:
    """A compiled strategy from `_light`'s data: no condition ASTs (its SQL is the cached plan's)."""
    return CompiledStrategy(strategy, light["params"], [CompiledRule(*rule, None) for rule in light["rules"]], None,
                            light["detectors"], list_versions=light["lists"],
                            literal_check=tuple(light["literals"]))


def _literal_check(compiled: CompiledStrategy, frame: Frame | None) -> tuple:
    """(pairs, queries) of the rules' text literals (`literals.py`): kept by a cached plan, else from the
    conditions."""
    if compiled.literal_check is not None:
        return compiled.literal_check
    from riskconsole.literals import literal_query, text_literals

    pairs = text_literals(compiled, frame)
    return pairs, literal_query(pairs)


def window_text(window: Window) -> str:
    """The window as CLI flags (for 'equivalent command' captions) that give it again: a whole day as its date, any
    other moment as its UTC timestamp (quoted; `--to` at a timestamp ends the window there)."""
    def flag(name: str, moment: datetime, end: bool) -> str:
        if moment.time() == time():
            return f"{name} {(moment - timedelta(days=1)) if end else moment:%Y-%m-%d}"
        return f'{name} "{moment.isoformat(sep=" ")}"'

    parts = []
    if window.start:
        parts.append(flag("--from", window.start, False))
    if window.end and not window.note:  # a window the core ended on the last mature day: no --to gives it again
        parts.append(flag("--to", window.end, True))
    if window.as_of:
        parts.append(flag("--as-of", window.as_of, True))
    return " ".join(parts)


def _edited(loaded: dict, now: dict) -> bool:
    """Whether the dataset as the last load recorded it (`_meta`) differs from the file now, outside the keys a report
    reads at run time. A load by an older version lacks the settings added since: read through today's model, they
    take their defaults, so an upgrade alone is no edit (only then is the model imported: the equal case is a dict
    comparison). A recorded spec today's model refuses is an edit."""
    def data(spec: dict) -> dict:
        return {k: v for k, v in spec.items() if k not in RUN_TIME_KEYS}

    if data(loaded) == data(now):
        return False
    from pydantic import ValidationError

    from riskconsole.config import Dataset

    try:
        return data(json_dump(Dataset.model_validate(loaded))) != data(now)
    except ValidationError:
        return True


def untrained_hint(ws: Workspace, message: str, frame: Frame) -> str:
    """An "unknown column 'lgbm_orders'" where a detector of that name exists but has no scores yet: say to train it
    (the usual first-hour stumble after writing a detector file); `validate`, the backtest and the editor say it."""
    found = re.search(r"unknown column '([^']*)'", message)
    if not found or found.group(1) in frame.scores:
        return message
    name = found.group(1)
    for path in sorted(ws.detectors_dir.glob("*.y*ml")) if ws.detectors_dir.exists() else []:
        try:
            named = ws.detector(path).name
        except RiskConsoleError:
            continue
        if named == name:
            return f"{message.split(': unknown column')[0]}: detector '{name}' has no scores yet: run " \
                   f"`riskconsole train {ws.rel(path)}`"
    return message
