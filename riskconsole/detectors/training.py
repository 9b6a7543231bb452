"""Train a detector on its time windows, score every event into `scores_<name>`, write model and card.

Nothing is half-written: scores go to a staging table and the model to a staging folder inside one
DuckDB transaction; both are swapped into place just before COMMIT, and any failure rolls back the
table and restores the previous model folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
from sqlglot import exp

from riskconsole.config import Dataset, Detector
from riskconsole.detectors import card as cards
from riskconsole.detectors.calibration import reliability
from riskconsole.detectors.matrix import (FRAME, Encoding, Span, check_features, chunk_rows, frame_types, label_expr,
                                          position_range, sample_rows, span_of, unseen_values, unseen_warning,
                                          window_rows)
from riskconsole.detectors.registry import DetectorModel, encoding_of, load_detector, make_detector, save_detector
from riskconsole.errors import ConfigError, DataError, RiskConsoleError
from riskconsole.names import META_TABLE, SCORES_TABLE
from riskconsole.sqlbuild import alias, fill, ident, render
from riskconsole.storeviews import drop
from riskconsole.strategy import SCORE_TABLE_PREFIX
from riskconsole.workspace import Workspace

CHUNK_ROWS = 500_000
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TrainResult:
    """A trained detector: where its model and card are, and the card itself."""

    name: str
    kind: str
    model_dir: Path
    card: dict

    def summary(self) -> str:
        """One line: rows, validation quality, events scored."""
        c = self.card
        parts = [f"{self.name} ({self.kind}): fit on {c['fit_rows']:,} rows in {c['training_seconds']:.1f} s"]
        for part in ("valid", "out_of_time"):
            w = c.get(part)
            if w and w.get("auc") is not None:
                parts.append(f"{part} AUC {w['auc']:.3f} AP {w['average_precision']:.3f}")
        parts.append(f"scored {c['events_scored']:,} events into {SCORE_TABLE_PREFIX}{self.name}")
        return ", ".join(parts)

    @property
    def warnings(self) -> list[str]:
        """What the card warns of (a model that scores every event alike)."""
        return list(self.card.get("warnings") or [])


@dataclass(frozen=True)
class Plan:
    """A detector YAML checked against the loaded frame."""

    spec: Detector
    label: str
    dataset: Dataset
    train: Span
    valid: Span | None


def score_table(name: str) -> str:
    """The table strategies read a detector's score from (see `strategy.frame_of`)."""
    return f"{SCORE_TABLE_PREFIX}{name}"


def _table(name: str) -> exp.Table:
    return exp.to_table(exp.to_identifier(name, quoted=True))


# ------------------------------------------------------------------ reading and fitting


def _plan(ws: Workspace, con: duckdb.DuckDBPyConnection, spec: Detector, label: str) -> Plan:
    dataset = ws.dataset()
    check_features(spec, dataset, frame_types(con, label), label)
    valid = span_of(spec.valid, f"{label}: valid") if spec.valid else None
    return Plan(spec, label, dataset, span_of(spec.train, f"{label}: train"), valid)


def _frame_days(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> str:
    query = fill("SELECT CAST(min(:t) AS DATE), CAST(max(:t) AS DATE) FROM frame", t=ident(dataset.columns.time))
    first, last = con.execute(render(query)).fetchall()[0]
    return f"{first}..{last}"


def _labelled(con: duckdb.DuckDBPyConnection, plan: Plan, encoding: Encoding, span: Span, part: str,
              why: str) -> tuple[pa.Table, np.ndarray]:
    """Labelled raw rows of a window for a supervised model; no rows, no labels or one class is an error."""
    rows, y = window_rows(con, encoding, plan.dataset, span, labelled=True)
    days = span.days
    where = f"{plan.label}: {part} {days['from']}..{days['to']}"
    if not len(y):
        raise DataError(f"{where}: no event with a known label (the frame spans {_frame_days(con, plan.dataset)}); "
                        f"{plan.spec.kind} {why}: move or widen the window")
    frauds = int(y.sum())
    if frauds in (0, len(y)):
        only = "no fraud (label 1)" if frauds == 0 else "no good event (label 0)"
        raise DataError(f"{where}: {len(y):,} labelled events but {only}; {plan.spec.kind} {why}: widen the window")
    return rows, y


def _training_data(con: duckdb.DuckDBPyConnection, plan: Plan, model: DetectorModel) -> tuple:
    """(encoding, X, y, valid) for `fit`: labelled rows for supervised kinds, a seeded sample for the others.

    Point in time: text categories (and their frequencies) are counted on the training rows only.
    """
    encoding = Encoding.plan(plan.spec.features, frame_types(con, plan.label), model.text_encoding)
    if model.supervised:
        rows, y = _labelled(con, plan, encoding, plan.train, "train", "learns from both classes")
        encoding = encoding.fit(rows)
        valid = None
        if plan.valid:
            valid_rows, valid_y = _labelled(con, plan, encoding, plan.valid, "valid",
                                            "stops early and calibrates its scores on both classes")
            valid = (encoding.matrix(valid_rows), valid_y)
        return encoding, encoding.matrix(rows), y, valid
    rows = sample_rows(con, encoding, plan.dataset, plan.train, model.max_fit_rows, plan.spec.seed)
    if not rows.num_rows:
        days = plan.train.days
        raise DataError(f"{plan.label}: train {days['from']}..{days['to']}: no events in the window (the frame "
                        f"spans {_frame_days(con, plan.dataset)}): move the window")
    encoding = encoding.fit(rows)
    return encoding, encoding.matrix(rows), None, None


@dataclass(frozen=True)
class Tune:
    """`train --tune`: how many Optuna trials, within how many seconds (None: no limit)."""

    trials: int
    budget: float | None = None


def _tune(plan: Plan, model: DetectorModel, X: np.ndarray, y: np.ndarray, categorical: list[int], tune: Tune,
          progress: Progress) -> None:
    """Search hyperparameters on time splits of the training window; the model takes the best ones."""
    from riskconsole.detectors.search import SPLITS, search

    spec = plan.spec
    if spec.kind != "lightgbm":
        raise ConfigError(f"{plan.label}: --tune searches LightGBM settings; '{spec.kind}' has none to tune: "
                          "drop --tune for this detector")
    progress(f"{spec.name}: tuning with up to {tune.trials} trials"
             + (f" within {tune.budget:g} s" if tune.budget else "") + " on time splits of the training window ...")
    make = lambda extra: make_detector(spec.kind, {**spec.params, **extra}, spec.seed, plan.label)  # noqa: E731
    try:
        found = search(make, X, y, list(categorical), tune.trials, tune.budget, spec.seed, progress)
    except ValueError as err:
        raise DataError(f"{plan.label}: --tune: {err}: widen the train window") from None
    if not found.trials:
        raise ConfigError(f"{plan.label}: --tune: the time budget of {tune.budget:g} s ended before one trial "
                          f"finished ({len(y):,} rows, {SPLITS} fits per trial): raise --tune-budget or drop it")
    model.params = {**model.params, **found.best}
    model.search_ = found


def _fit(con: duckdb.DuckDBPyConnection, plan: Plan, model: DetectorModel, progress: Progress,
         tune: Tune | None = None) -> tuple[int, float]:
    """Fit the model in place; return the number of rows it was fitted on and the seconds it took."""
    encoding, X, y, valid = _training_data(con, plan, model)
    model.encoding_ = encoding
    if tune is not None:
        _tune(plan, model, X, y, encoding.categorical, tune, progress)
    progress(f"{plan.spec.name}: fitting {plan.spec.kind} on {len(X):,} rows ...")
    started = time.perf_counter()
    try:
        model.fit(X, y, valid=valid, categorical=encoding.categorical)
    except (ValueError, TypeError, RuntimeError, MemoryError) as err:
        raise ConfigError(f"{plan.label}: {plan.spec.kind} failed to fit: {str(err).splitlines()[0]}") from None
    return min(len(X), model.max_fit_rows or len(X)), time.perf_counter() - started


# ------------------------------------------------------------------ scoring


def score_into(con: duckdb.DuckDBPyConnection, model: DetectorModel, features: list[str], name: str,
               table: str, progress: Progress = _quiet, chunk: int = CHUNK_ROWS) -> int:
    """Create `table` (`_pos`, `name`) and fill it with the score of every frame row, chunk by chunk."""
    drop(con, table)  # a view of Spark's scores after a load on Spark
    con.execute(render(fill("CREATE TABLE :t (_pos BIGINT, :c DOUBLE)", t=_table(table), c=ident(name))))
    lo, hi = position_range(con)
    done = 0
    for start in range(lo, hi + 1, chunk):
        pos, X = chunk_rows(con, encoding_of(model, features), start, min(start + chunk - 1, hi),
                            getattr(model, "input_dtype", np.float32))
        scores = np.clip(np.asarray(model.score(X), dtype=np.float64), 0.0, 1.0)
        con.register("_chunk", pa.table({"_pos": pa.array(pos, pa.int64()), "s": pa.array(scores)}))
        try:
            con.execute(render(exp.insert(exp.select("_pos", "s").from_("_chunk"), _table(table))))
        finally:
            con.unregister("_chunk")
        done += len(pos)
        progress(f"{name}: scored {done:,} of {hi - lo + 1:,} events")
    return done


def _swap_table(con: duckdb.DuckDBPyConnection, staging: str, final: str) -> None:
    drop(con, final)
    con.execute(f"ALTER TABLE {render(_table(staging))} RENAME TO {render(_table(final))}")


# ------------------------------------------------------------------ the card


def _window_scores(con: duckdb.DuckDBPyConnection, plan: Plan, table: str, span: Span) -> cards.WindowScores:
    time_col = plan.dataset.columns.time
    rows = con.execute(render(exp.select("count(*)").from_(FRAME).where(span.where(time_col)))).fetchall()[0][0]
    y = label_expr(plan.dataset)
    query = exp.select(alias(y, "y"), alias(exp.column(plan.spec.name, table="s", quoted=True), "s")).from_(
        exp.to_table(FRAME).as_("f")).join(_table(table).as_("s"), using=["_pos"]).where(
        span.where(time_col)).where(fill(":y IS NOT NULL", y=y)).order_by("_pos")
    got = con.sql(render(query)).to_arrow_table()
    return cards.WindowScores(span.days, int(rows), got.column("y").to_numpy().astype(np.int8),
                              got.column("s").to_numpy())


def _out_of_time(con: duckdb.DuckDBPyConnection, plan: Plan) -> Span | None:
    """Everything after the train and valid windows, up to the last event (None if nothing is left)."""
    start = max(plan.train.end, plan.valid.end if plan.valid else plan.train.end)
    last = con.execute(render(fill("SELECT max(:t) FROM frame", t=ident(plan.dataset.columns.time)))).fetchall()[0][0]
    if last is None or last < start:
        return None
    return Span(start, last + timedelta(microseconds=1))


def _histogram(con: duckdb.DuckDBPyConnection, plan: Plan, table: str) -> np.ndarray:
    y = label_expr(plan.dataset)
    template = ("SELECT least(CAST(floor(s.:c * :bins) AS INTEGER), :bins - 1) AS b, "
                "CASE WHEN :y IS NULL THEN 2 WHEN :y = 1 THEN 0 ELSE 1 END AS g, count(*) AS n "
                "FROM frame AS f JOIN :t AS s USING (_pos) GROUP BY ALL")
    query = fill(template, c=exp.to_identifier(plan.spec.name, quoted=True), bins=cards.BINS, y=y, t=_table(table))
    counts = np.zeros((3, cards.BINS), dtype=np.int64)
    for b, g, n in con.execute(render(query)).fetchall():
        counts[g, b] = n
    return counts


def _card(con: duckdb.DuckDBPyConnection, plan: Plan, model: DetectorModel, table: str, facts: dict) -> dict:
    spec = plan.spec
    windows = {"train": plan.train, "valid": plan.valid, "out_of_time": _out_of_time(con, plan)}
    described = model.describe()
    card = {"name": spec.name, "kind": spec.kind, "features": spec.features, "seed": spec.seed,
            "params": described.pop("params"), "yaml_params": spec.params, **facts,
            "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for part, span in windows.items():
        scored = _window_scores(con, plan, table, span) if span else None
        card[part] = scored.summary() if scored else None
        if scored is not None and part != "train" and model.kind == "lightgbm":
            card[part]["reliability"] = reliability(scored.y, scored.s)
    card["calibration"] = described.pop("calibration", None)
    card["tuning"] = described.pop("tuning", None)
    card["score_meaning"] = cards.score_meaning(model.kind, card["calibration"])
    card["importance"] = cards.importance(spec.features, model.importance_)
    card["importance_method"] = described.pop("importance_method")
    card["categorical"] = encoding_of(model, spec.features).describe()
    card["model"] = described
    card["histograms"] = cards.histograms(_histogram(con, plan, table))
    card["versions"] = cards.versions()
    card["warnings"] = (_constant_scores(con, plan, table, card["train"]) + cards.leak_warnings(card)
                        + unseen_warnings(con, spec.name, model))
    card["notes"] = ("Metrics use events whose label is known now; train/valid labels may have arrived after "
                     "the windows ended. Backtests overlapping train or valid are optimistic.")
    return card


def unseen_warnings(con: duckdb.DuckDBPyConnection, name: str, model: DetectorModel) -> list[str]:
    """The warnings of the frame's events whose text values detector `name` never saw in training (`unseen_values`)."""
    encoding = encoding_of(model, [])
    return [unseen_warning(name, encoding, *found) for found in unseen_values(con, encoding)]


def _constant_scores(con: duckdb.DuckDBPyConnection, plan: Plan, table: str, train: dict) -> list[str]:
    """The warning for a model that gives every event one score (it learned nothing), else none.

    LightGBM makes no split when the training window has fewer rows than two leaves need (`min_data_in_leaf`,
    100 by default), and early stopping may keep only that first tree: a rule on such a score flags all or nothing.
    """
    query = fill("SELECT count(DISTINCT :c), min(:c) FROM :t", c=ident(plan.spec.name), t=_table(table))
    distinct, score = con.execute(render(query)).fetchall()[0]
    if distinct != 1:
        return []
    said = (f"detector '{plan.spec.name}': every event scored {score:.4g}: the model learned nothing from the train "
            f"window's {train['rows']:,} rows")
    if plan.spec.kind == "lightgbm":
        return [f"{said} ({train['labelled']:,} labelled, {train['frauds']:,} fraud); widen the train window, or "
                "lower min_data_in_leaf in params (LightGBM makes no leaf of fewer rows; the default is 100)"]
    return [f"{said}: its features do not vary there; choose features that do"]


# ------------------------------------------------------------------ publishing


def _write_model(folder: Path, model: DetectorModel, plan: Plan) -> None:
    folder.mkdir(parents=True)
    meta = {"name": plan.spec.name, "features": plan.spec.features, "train": plan.train.days,
            "valid": plan.valid.days if plan.valid else None, "seed": plan.spec.seed}
    save_detector(model, folder, meta)


def _write_card(folder: Path, card: dict) -> None:
    (folder / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    (folder / "card.md").write_text(cards.card_markdown(card))


def _swap_folder(staging: Path, final: Path) -> Path | None:
    """Move `staging` to `final`, keeping the previous `final` as a backup (returned) until commit."""
    backup = None
    if final.exists():
        backup = final.with_name(f".{final.name}.previous-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        final.rename(backup)
    staging.rename(final)
    return backup


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the failed statement already ended the transaction


def _publish(ws: Workspace, con: duckdb.DuckDBPyConnection, plan: Plan, model: DetectorModel, facts: dict,
             progress: Progress, scorer: FolderScorer | None = None) -> dict:
    """Write the model, score, write the card, and swap model and scores into place in one transaction.

    `scorer` (engine spark: `SparkEngine.score_into`) scores the written model into the table itself, or returns
    None for a model it does not score; DuckDB scores it then."""
    name = plan.spec.name
    staging_table, final = f"_scoring_{name}", ws.models_dir / name
    staging = ws.models_dir / f".{name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    backup = None
    con.execute("BEGIN TRANSACTION")
    try:
        _write_model(staging, model, plan)
        started = time.perf_counter()
        rows = scorer(con, name, staging_table, staging) if scorer is not None else None
        facts["events_scored"] = rows if rows is not None else \
            score_into(con, model, plan.spec.features, name, staging_table, progress)
        facts["scoring_seconds"] = round(time.perf_counter() - started, 3)
        card = _card(con, plan, model, staging_table, facts)
        _write_card(staging, card)
        _swap_table(con, staging_table, score_table(name))
        _ensure_version(con)
        stamp_scores(con, name)
        backup = _swap_folder(staging, final)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        shutil.rmtree(staging, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(final, ignore_errors=True)
            backup.rename(final)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return card


# ------------------------------------------------------------------ entry points


def train_detector(ws: Workspace, path: str | os.PathLike, progress: Progress = _quiet,
                   tune: Tune | None = None, engine: str | None = None) -> TrainResult:
    """Fit the detector of a YAML file, score every event into `scores_<name>`, write model and card.

    With `tune`, LightGBM's hyperparameters are first searched on time splits of the training window. `engine`
    (`--engine`; default $RISKCONSOLE_ENGINE, else the dataset's `engine:`): with spark, the events are scored on
    Spark when this data version's frame is built there (`_spark_scorer`).

    Raises:
        RiskConsoleError: one line naming the file and the problem; nothing is left half-written.
    """
    label = ws.rel(path)
    spec = ws.detector(path)
    model = make_detector(spec.kind, spec.params, spec.seed, label)
    con = ws.connect()
    try:
        plan = _plan(ws, con, spec, label)
        fit_rows, seconds = _fit(con, plan, model, progress, tune)
        facts = {"fit_rows": fit_rows, "training_seconds": round(seconds, 3)}
        card = _publish(ws, con, plan, model, facts, progress,
                        _spark_scorer(ws, con, plan.dataset, engine, progress))
    except duckdb.Error as err:
        raise DataError(f"{label}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return TrainResult(spec.name, spec.kind, ws.models_dir / spec.name, card)


def detector_files(ws: Workspace) -> list[Path]:
    """Every `detectors/*.yaml` of the workspace, sorted; two files with one `name` is an error."""
    files = sorted(ws.detectors_dir.glob("*.yaml"))
    seen: dict[str, Path] = {}
    for path in files:
        name = ws.detector(path).name
        if name in seen:
            raise ConfigError(f"{ws.rel(path)}: name: '{name}' is also the name of {ws.rel(seen[name])}")
        seen[name] = path
    return files


def train_all(ws: Workspace, progress: Progress = _quiet) -> list[TrainResult]:
    """Train every detector of the workspace (what `riskconsole demo` does after loading)."""
    results = []
    for path in detector_files(ws):
        results.append(train_detector(ws, path, progress))
        progress(results[-1].summary())
    return results


def trained_models(ws: Workspace) -> dict[str, Path]:
    """Name -> model folder of every trained detector of the workspace."""
    if not ws.models_dir.exists():
        return {}
    return {p.parent.name: p.parent for p in sorted(ws.models_dir.glob("*/detector.json"))
            if not p.parent.name.startswith(".")}


def stamp_scores(con: duckdb.DuckDBPyConnection, name: str, scored: bool = True) -> None:
    """Record that `scores_<name>` was computed for the loaded data version, or (`scored=False`) for none.

    `strategy.frame_of` compares this stamp with `_meta.version`: only an equal one is ever joined.
    """
    con.execute(f"CREATE TABLE IF NOT EXISTS {SCORES_TABLE} (detector VARCHAR, data_version VARCHAR, "
                "scored_at TIMESTAMP)")
    con.execute(f"DELETE FROM {SCORES_TABLE} WHERE detector = ?", [name])
    version = "version" if scored else "NULL"
    con.execute(f"INSERT INTO {SCORES_TABLE} SELECT ?, {version}, now() FROM {META_TABLE}", [name])


def _ensure_version(con: duckdb.DuckDBPyConnection) -> None:
    """A database loaded before data versions existed gets one (its older score tables stay unstamped: stale)."""
    columns = {c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {META_TABLE})").fetchall()}
    if "version" not in columns:
        con.execute(f"ALTER TABLE {META_TABLE} ADD COLUMN version VARCHAR")
        con.execute(f"UPDATE {META_TABLE} SET version = ?", [uuid.uuid4().hex])


def _unscorable(meta: dict, types: dict[str, str], name: str) -> str | None:
    missing = [f for f in meta["features"] if f not in types]
    if not missing:
        return None
    return (f"reads '{missing[0]}', which the new frame does not have; strategies using '{name}' are refused until "
            f"you retrain it (riskconsole train detectors/{name}.yaml)")


Scorer = Callable[[duckdb.DuckDBPyConnection, str, str], "int | None"]  # (con, detector, table) -> rows, or None
FolderScorer = Callable[[duckdb.DuckDBPyConnection, str, str, Path], "int | None"]  # and the model's folder


def _spark_scorer(ws: Workspace, con: duckdb.DuckDBPyConnection, dataset: Dataset, engine: str | None,
                  progress: Progress) -> FolderScorer | None:
    """With engine spark (`engine`, else $RISKCONSOLE_ENGINE, else the dataset's `engine:`) and this data version's
    frame already built on Spark, what scores a trained model there (`SparkEngine.score_into`: the scores Spark's backtests
    then read, read into DuckDB too); else None (DuckDB scores it, and Spark again at its first use)."""
    from riskconsole.engines import choose

    if choose(engine, dataset) != "spark":
        return None
    from riskconsole.engines.spark import SparkEngine

    engine = SparkEngine(ws, dataset, con, progress=progress)
    return engine.score_into if engine.built else None


def rescore_into(con: duckdb.DuckDBPyConnection, ws: Workspace, progress: Progress = _quiet,
                 scorer: Scorer | None = None) -> tuple[dict[str, int], dict[str, str]]:
    """Score every trained model onto the frame of `con` (a load's new database), stamping the data version.

    `scorer` (a load on Spark: `SparkLoader.scores`) fills a detector's score table itself, or returns None for
    a model it does not score; the rest are scored here.

    Returns:
        (detector -> rows scored, detector -> why it could not be scored, warnings of events holding text values a
        detector never saw in training: `unseen_warnings`). An unscorable detector gets a
        version stamp of NULL and no score table, so strategies naming it are refused, never fed old scores.
    """
    types = frame_types(con, ws.rel(ws.db_path))
    done, skipped, unseen = {}, {}, []
    for name, folder in trained_models(ws).items():
        try:
            model, meta = load_detector(folder)
            why = _unscorable(meta, types, name)
            if not why:
                unseen += unseen_warnings(con, name, model)
                rows = scorer(con, name, score_table(name)) if scorer is not None else None
                done[name] = rows if rows is not None else \
                    score_into(con, model, meta["features"], name, score_table(name), progress)
        except (RiskConsoleError, duckdb.Error):
            raise
        except Exception as err:  # noqa: BLE001 - a model that cannot score is one line, not a traceback
            raise DataError(f"{ws.rel(folder)}: cannot score the new events ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else 'no detail'}): retrain it "
                            f"(riskconsole train detectors/{name}.yaml) or remove {ws.rel(folder)}") from err
        if why:
            skipped[name] = why
        stamp_scores(con, name, scored=not why)
    return done, skipped, unseen


def rescore_all(ws: Workspace, progress: Progress = _quiet) -> dict[str, int]:
    """Re-score every trained model onto the live frame in one transaction (`load` already does this itself).

    Score tables without a model folder are dropped: their rows would no longer line up with events.
    """
    con = ws.connect()
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            _ensure_version(con)
            done, skipped, _ = rescore_into(con, ws, progress)
            for name in skipped:
                drop(con, score_table(name))
            _drop_orphans(con, ws, progress)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
    except duckdb.Error as err:
        raise DataError(f"{ws.rel(ws.db_path)}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return done


def _drop_orphans(con: duckdb.DuckDBPyConnection, ws: Workspace, progress: Progress) -> None:
    models = trained_models(ws)
    tables = con.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'scores\\_%' "
                         "ESCAPE '\\'").fetchall()
    for (table,) in tables:
        if table[len(SCORE_TABLE_PREFIX):] not in models:
            drop(con, table)
            progress(f"dropped {table}: no trained model in data/models/")
