"""Check dataset, strategy and detector files without running them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

import duckdb

from riskconsole.config import Dataset, Detector, Strategy, parse_model, read_config, read_yaml
from riskconsole.errors import ConfigError, ExpressionError
from riskconsole.lists import load_list, register_lists
from riskconsole.engines import choose
from riskconsole.ingest import check_times
from riskconsole.sources import check_dataset, column_types, is_uri, source_files
from riskconsole.strategy import CompiledStrategy, Frame, compile_strategy, frame_of
from riskconsole.workspace import Workspace, connect_duckdb

KINDS = {"dataset": Dataset, "strategy": Strategy, "detector": Detector}


def kind_of(path: Path, data: object) -> str:
    """Which kind of file this is: by its folder (strategies/, detectors/, dataset.yaml), else by its keys."""
    by_place = {"strategies": "strategy", "detectors": "detector"}.get(path.resolve().parent.name)
    if by_place or path.name == "dataset.yaml":
        return by_place or "dataset"
    if isinstance(data, dict):
        if "source" in data or "columns" in data:
            return "dataset"
        if "rules" in data:
            return "strategy"
        if "kind" in data:
            return "detector"
    return "unknown"


def workspace_frame(ws: Workspace, dataset: Dataset) -> Frame | None:
    """The loaded frame's columns, or None when nothing is loaded yet."""
    if not ws.db_path.exists():
        return None
    con = ws.connect_safe()
    try:
        frame = frame_of(con, dataset, ws.lists(dataset))
    finally:
        con.close()
    return frame if frame.columns else None


def source_frame(ws: Workspace, dataset: Dataset) -> Frame:
    """Columns a strategy could read once the dataset is loaded: source columns and feature names."""
    if is_uri(dataset.source):
        raise ConfigError(f"{ws.rel(ws.dataset_path)}: source '{dataset.source}' is a URI, read through Spark: load "
                          "the data first (riskconsole load), then a strategy is checked against what was loaded")
    files, fmt = source_files(ws, dataset, ws.rel(ws.dataset_path))
    con = connect_duckdb()
    try:
        types = column_types(con, fmt, files, dataset.decimal_separator)
    finally:
        con.close()
    types.update({f.name: "DOUBLE" for f in dataset.features})
    return Frame(types, {}, tuple(dataset.hidden_columns), (), lists=ws.lists(dataset),
                 roles=tuple(dataset.columns.role_columns().items()))


def validate_file(ws: Workspace, path: str | Path, engine: str | None = None) -> str:
    """Validate one file; return a one-line description of what it is.

    `engine` (`--engine`, else $RISKCONSOLE_ENGINE, else the dataset's `engine:`): with spark, a dataset's sources
    are checked as a load on Spark reads them and a strategy's rules as Spark renders them (engines/spark_load.py
    `check`, engines/spark.py `check_rendering`), refusals naming the engine.

    Raises:
        RiskConsoleError: one line naming the file and item.
    """
    label = ws.rel(path)
    if Path(path).suffix.lower() == ".csv":
        return _validate_list(Path(path), label)
    data = read_yaml(read_config(Path(path), label), label)
    kind = kind_of(Path(path), data)
    if kind == "unknown":
        raise ConfigError(f"{label}: not a dataset (source/columns), strategy (rules) or detector (kind) file")
    model = parse_model(data, KINDS[kind], label)
    if kind == "strategy":
        return _validate_strategy(ws, model, label, Path(path), engine)
    if kind == "dataset":
        return _validate_dataset(ws, Path(path), model, engine)
    return _validate_detector(ws, model, label)


def _validate_list(path: Path, label: str) -> str:
    """A list file (`lists/NAME.csv`): header, values and expiry times, as a strategy using it would read it."""
    if not path.is_file():
        raise ConfigError(f"{label}: no such file")
    found = load_list(path, label)
    return f"list '{found.name}', {found.entries} entries, {found.active(datetime.utcnow())} not expired today"


def _validate_dataset(ws: Workspace, path: Path, dataset: Dataset, engine: str | None = None) -> str:
    """Exactly the checks `load` runs before reading a row (`sources.check_dataset`, and with engine spark
    `spark_load.check`), and its time columns over the head of each file (`ingest.check_times`: a time that every
    row would fail is refused with the load's own warning); nothing is written."""
    checked = check_dataset(ws, path, trusted=True, dataset=dataset, engine=engine)  # as trusted as `load`
    check_times(checked)  # times no row of which would load, over the head of each file
    on_spark = choose(engine, checked.dataset) == "spark"
    if on_spark:  # that load reads every source on Spark
        from riskconsole.engines.spark_load import check

        _spark_installed(checked.dataset)
        check(checked)
    others = "".join(f", {len(group)} {kind}{'s' if len(group) != 1 else ''}" for kind, group in (
        ("stream", checked.dataset.streams), ("table", checked.dataset.tables)) if group)
    features = len(checked.dataset.features)
    return (f"dataset, {len(checked.types)} source columns in {len(checked.files)} file(s), "
            f"{features} feature{'s' if features != 1 else ''}{others}"
            + (", loads on engine spark" if on_spark else ""))


def _spark_installed(dataset: Dataset) -> None:
    """What to install when engine spark is chosen and PySpark or Java (or, with spark.remote, PySpark's Connect
    client) is missing."""
    from riskconsole.engines.spark import missing

    reason = missing(dataset.spark)
    if reason:
        raise ConfigError(reason)


def _check_spark(ws: Workspace, dataset: Dataset, compiled: CompiledStrategy, label: str, engine: str | None) -> str:
    """With engine spark, every rule and the population rendered for Spark (no session started); the text to add."""
    if choose(engine, dataset) != "spark":
        return ""
    from riskconsole.engines.spark import check_rendering
    from riskconsole.engines.spark_lists import SparkLists

    _spark_installed(dataset)
    check_rendering(compiled, SparkLists(None, ws.lists(dataset)), label)
    return ", renders for engine spark"


def _validate_detector(ws: Workspace, spec: Detector, label: str) -> str:
    """Kind, params, features (known, readable, not the label) and windows, as `train` would check them."""
    from riskconsole.detectors.matrix import check_features, frame_types, span_of
    from riskconsole.detectors.registry import make_detector

    make_detector(spec.kind, spec.params, spec.seed, label)  # the kind, then every param, as train builds it
    for part, window in (("train", spec.train), ("valid", spec.valid)):
        if window is not None:
            span_of(window, f"{label}: {part}")
    dataset = ws.dataset()
    if workspace_frame(ws, dataset) is None:
        return f"detector '{spec.name}' ({spec.kind}; features not checked: no data loaded)"
    con = ws.connect_safe()
    try:
        check_features(spec, dataset, frame_types(con, label), label)
    finally:
        con.close()
    return f"detector '{spec.name}' ({spec.kind}, {len(spec.features)} features)"


def _validate_strategy(ws: Workspace, strategy: Strategy, label: str, path: Path, engine: str | None = None) -> str:
    dataset = ws.dataset()
    frame = workspace_frame(ws, dataset)
    if strategy.level is not None:
        return _validate_entity_strategy(ws, strategy, label, path, frame is not None, engine)
    if frame is None:
        frame = source_frame(ws, dataset)
        compiled = _untrained(ws, frame, lambda: compile_strategy(strategy, frame, label, every=True))
        spark = _check_spark(ws, dataset, compiled, label, engine)
        return (f"strategy '{strategy.name}', {len(strategy.rules)} rules (columns checked against the source "
                f"files){spark}")
    con = register_lists(ws.connect_safe(), ws.root)
    try:
        compiled = _untrained(ws, frame, lambda: compile_strategy(strategy, frame, label, con=con, every=True))
    except duckdb.Error as err:
        raise ConfigError(f"{label}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return f"strategy '{strategy.name}', {len(strategy.rules)} rules" + _check_spark(ws, dataset, compiled, label,
                                                                                    engine)


def _untrained(ws: Workspace, frame: Frame, compile_it: Callable[[], CompiledStrategy]) -> CompiledStrategy:
    """`compile_it()`, an unknown column naming a detector without scores said as "run `riskconsole train`"."""
    from riskconsole.session import untrained_hint

    try:
        return compile_it()
    except ExpressionError as err:
        raise ExpressionError(untrained_hint(ws, str(err), frame)) from None


def _validate_entity_strategy(ws: Workspace, strategy: Strategy, label: str, path: Path, loaded: bool,
                              engine: str | None = None) -> str:
    """An entity-level strategy: its entity, then (with data loaded) every rule over its entity frame."""
    from riskconsole.entities import check_level
    from riskconsole.session import Session

    what = f"strategy '{strategy.name}', {len(strategy.rules)} rules, one decision per {strategy.level.entity} " \
           f"every {strategy.level.every}"
    if not loaded:
        dataset = ws.dataset()
        check_level(strategy.level, dataset, source_frame(ws, dataset).columns, label)
        return f"{what} (rules not checked: no data loaded)"
    with Session(ws) as session:
        compiled = session.compile(path, strategy=strategy, every=True)
        return what + _check_spark(ws, session.dataset, compiled, label, engine)


def check_strategy_text(text: str, frame: Frame, label: str, con: duckdb.DuckDBPyConnection | None = None) -> Strategy:
    """Parse and fully check strategy YAML text (as typed in the console) against the loaded frame.

    Raises:
        RiskConsoleError: one line naming the file, the rule and the problem.
    """
    strategy = parse_model(read_yaml(text, label), Strategy, label)
    try:
        compile_strategy(strategy, frame, label, con=con)
    except duckdb.Error as err:
        raise ConfigError(f"{label}: {str(err).splitlines()[0]}") from None
    return strategy
