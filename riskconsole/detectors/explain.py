"""Reason codes: why did this event score high? One function the console and the CLI both call.

LightGBM: the event's SHAP contributions from `pred_contrib` (log-odds; they sum with the base value
to the raw score). PyOD: the features furthest from their training distribution (robust z-scores).
A text feature is shown as its text ('live'), never as the code or frequency the model read.
"""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import numpy as np
from sqlglot import exp

from riskconsole.config import Dataset
from riskconsole.detectors.matrix import FRAME, chunk_rows
from riskconsole.detectors.registry import DetectorModel, encoding_of, load_detector
from riskconsole.detectors.training import score_table, trained_models
from riskconsole.strategy import score_versions
from riskconsole.errors import DataError
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.workspace import Workspace


def _plain(value: object) -> object:
    """A JSON-friendly scalar (NaN -> None, timestamps -> ISO text, numpy -> Python)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _chosen(ws: Workspace, detectors: list[str] | None) -> dict:
    models = trained_models(ws)
    if not models:
        raise DataError("data/models: no trained detector yet (run `riskconsole train detectors/NAME.yaml`)")
    for name in detectors or []:
        if name not in models:
            raise DataError(f"--detector {name}: no trained detector of that name (trained: {', '.join(models)})")
    return {n: models[n] for n in (detectors or models)}


def _event_query(dataset: Dataset, event_id: str, features: list[str]) -> exp.Select:
    roles = dataset.columns
    info = [alias(ident(roles.id), "id"), alias(ident(roles.time), "time")]
    info += [alias(ident(getattr(roles, r)), r) for r in ("label", "amount") if getattr(roles, r)]
    values = [alias(ident(f), f"v{i}") for i, f in enumerate(features)]
    return exp.select("_pos", *info, *values).from_(FRAME).where(
        fill("CAST(:i AS VARCHAR) = :v", i=ident(roles.id), v=lit(str(event_id))))


def _event(con: duckdb.DuckDBPyConnection, dataset: Dataset, event_id: str, features: list[str]) -> dict:
    """One event's row (id, time, label, amount, raw feature values) as a dict; an unknown id is a one-line error."""
    table = con.sql(render(_event_query(dataset, event_id, features))).to_arrow_table()
    if table.num_rows == 0:
        example = con.execute(render(exp.select(ident(dataset.columns.id)).from_(FRAME).limit(1))).fetchall()
        hint = f" (ids look like '{example[0][0]}')" if example else ""
        raise DataError(f"event '{event_id}': not among the loaded events{hint}")
    return {k: _plain(v[0]) for k, v in table.to_pydict().items()}


def _stored(con: duckdb.DuckDBPyConnection, name: str, pos: int) -> float | None:
    """The score stored for the event, or None when there is none for the loaded events (see `frame_of`)."""
    current, stamps = score_versions(con)
    if current is None or stamps.get(name) != current:
        return None
    query = exp.select(ident(name)).from_(exp.to_table(exp.to_identifier(score_table(name), quoted=True))).where(
        fill("_pos = :p", p=pos))
    try:
        rows = con.execute(render(query)).fetchall()
    except duckdb.CatalogException:
        return None
    return rows[0][0] if rows else None


def _reasons(model: DetectorModel, features: list[str], x: np.ndarray, values: dict, top: int,
             r: dict | None = None) -> dict:
    r = model.reasons(x) if r is None else r
    push = np.asarray(r["push"], dtype=np.float64)
    text = set(encoding_of(model, features).text)
    if model.supervised:
        order = [j for j in np.argsort(-push, kind="stable") if push[j] > 0][:top]
        reasons = [{"feature": features[j], "value": values[features[j]], "contribution": float(push[j])}
                   for j in order]
        extra = {"base": r["base"], "raw": r["raw"], "contributions": dict(zip(features, push.tolist()))}
    else:
        order = [j for j in np.argsort(-np.abs(push), kind="stable") if push[j] != 0][:top]
        reasons = [{"feature": features[j], "value": values[features[j]], "z": float(push[j]),
                    "typical": float(r["typical"][j])} | _frequency(features[j] in text, float(x[j]))
                   for j in order]
        extra = {}
    return {"method": r["method"], "reasons": reasons, **extra}


def _frequency(is_text: bool, share: float) -> dict:
    """For a frequency-encoded text feature: the share the model read, and that `typical` is a share too."""
    return {"share": share, "encoding": "frequency encoding (training window)"} if is_text else {}


def _explain_one(name: str, model: DetectorModel, meta: dict, values: dict, x: np.ndarray, top: int,
                 stored: float | None, score: float | None = None, r: dict | None = None) -> dict:
    features = meta["features"]
    score = float(model.score(x.reshape(1, -1))[0]) if score is None else score
    out = {"name": name, "kind": model.kind, "score": score, "stored_score": stored}
    if stored is not None and not math.isclose(stored, score, rel_tol=1e-9, abs_tol=1e-12):
        out["warning"] = (f"the stored score {stored:.6f} differs from the model's {score:.6f}: the events were "
                          "reloaded since training (run rescore or retrain)")
    return out | _reasons(model, features, x, values, top, r)


def explain(ws: Workspace, event_id: str, detectors: list[str] | None = None, top: int = 5) -> dict:
    """Feature values, every chosen detector's score and its top reasons for one event.

    Args:
        ws: the workspace.
        event_id: the event's id (the dataset's `columns.id`), as text.
        detectors: names of trained detectors (default: all of them).
        top: how many reasons per detector.

    Raises:
        DataError: unknown event id or detector, or nothing trained yet.
    """
    folders = _chosen(ws, detectors)
    loaded = {name: load_detector(folder) for name, folder in folders.items()}
    features = list(dict.fromkeys(f for _, meta in loaded.values() for f in meta["features"]))
    dataset = ws.dataset()
    con = ws.connect_safe()
    try:
        row = _event(con, dataset, event_id, features)
        stored = {name: _stored(con, name, row["_pos"]) for name in loaded}
        # each model reads the event through its own encoding (codes for LightGBM, shares for PyOD)
        xs = {name: chunk_rows(con, encoding_of(model, meta["features"]), row["_pos"], row["_pos"])[1][0]
              for name, (model, meta) in loaded.items()}
    finally:
        con.close()
    values = {f: row[f"v{i}"] for i, f in enumerate(features)}
    event = {k: row[k] for k in ("id", "time", "label", "amount") if k in row}
    return {"event": event, "features": values,
            "detectors": [_explain_one(name, model, meta, values, xs[name], top, stored[name])
                          for name, (model, meta) in loaded.items()]}


# ------------------------------------------------------------------ many events in one call

_IDS = "_explain_ids"


def _rows_of(con: duckdb.DuckDBPyConnection, dataset: Dataset, event_ids: list[str], features: list[str]):
    """The events' rows (as `_event`), joined on a registered id table: Arrow columns, any order."""
    import pyarrow as pa

    con.register(_IDS, pa.table({"_id": pa.array(event_ids, pa.string())}))
    try:
        query = _event_query(dataset, "", features)
        query.set("where", None)
        query = query.where(fill("CAST(:i AS VARCHAR) IN (SELECT _id FROM :t)", i=ident(dataset.columns.id),
                                 t=exp.to_table(_IDS))).order_by("_pos")
        return con.sql(render(query)).to_arrow_table()
    finally:
        con.unregister(_IDS)


def _matrix_at(con: duckdb.DuckDBPyConnection, model: DetectorModel, features: list[str],
               positions: np.ndarray) -> np.ndarray:
    """X of the frame rows at `positions` (sorted), encoded as the model was trained."""
    import pyarrow as pa

    encoding = encoding_of(model, features)
    con.register("_explain_pos", pa.table({"p": pa.array(positions, pa.int64())}))
    try:
        query = encoding.select([exp.column("_pos")]).where("_pos IN (SELECT p FROM _explain_pos)").order_by("_pos")
        table = con.sql(render(query)).to_arrow_table()
    finally:
        con.unregister("_explain_pos")
    return encoding.matrix(table)


def _stored_many(con: duckdb.DuckDBPyConnection, name: str, positions: np.ndarray) -> list[float | None]:
    """`_stored` for many events (sorted positions), one query."""
    import pyarrow as pa

    current, stamps = score_versions(con)
    if current is None or stamps.get(name) != current:
        return [None] * len(positions)
    con.register("_explain_pos", pa.table({"p": pa.array(positions, pa.int64())}))
    try:
        table = exp.to_table(exp.to_identifier(score_table(name), quoted=True))
        query = exp.select("_pos", alias(ident(name), "s")).from_(table).where(
            "_pos IN (SELECT p FROM _explain_pos)")
        got = dict(con.execute(render(query)).fetchall())
    except duckdb.CatalogException:
        return [None] * len(positions)
    finally:
        con.unregister("_explain_pos")
    return [got.get(int(p)) for p in positions]


def explain_many(ws: Workspace, event_ids: list[str], detectors: list[str] | None = None, top: int = 5) -> dict:
    """`explain` for a set of events in one call: one query for the rows, one batch TreeSHAP per model.

    Each entry of `events` equals what `explain` returns for that id (in the order asked, duplicates once).

    Raises:
        DataError: an unknown detector, nothing trained yet, or none of the ids among the loaded events
            (ids that are not found are listed under `missing`).
    """
    wanted = list(dict.fromkeys(str(i) for i in event_ids))
    folders = _chosen(ws, detectors)
    loaded = {name: load_detector(folder) for name, folder in folders.items()}
    features = list(dict.fromkeys(f for _, meta in loaded.values() for f in meta["features"]))
    dataset = ws.dataset()
    con = ws.connect_safe()
    try:
        rows = _rows_of(con, dataset, wanted, features).to_pydict()
        positions = np.asarray(rows["_pos"], dtype=np.int64)
        if not len(positions):
            raise DataError(f"none of the {len(wanted):,} event ids is among the loaded events "
                            f"(first: '{wanted[0] if wanted else ''}')")
        stored = {name: _stored_many(con, name, positions) for name in loaded}
        xs = {name: _matrix_at(con, model, meta["features"], positions) for name, (model, meta) in loaded.items()}
    finally:
        con.close()
    batch = {name: (model.score(xs[name]), model.reasons_batch(xs[name])) for name, (model, _) in loaded.items()}
    by_id, ids = {}, [str(v) for v in rows["id"]]
    for i, event_id in enumerate(ids):
        values = {f: _plain(rows[f"v{k}"][i]) for k, f in enumerate(features)}
        event = {k: _plain(rows[k][i]) for k in ("id", "time", "label", "amount") if k in rows}
        found = []
        for name, (model, meta) in loaded.items():
            scores, r = batch[name]
            one = {k: (v[i] if isinstance(v, np.ndarray) and v.ndim and k != "typical" and k != "spread" else v)
                   for k, v in r.items()}
            one = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in one.items()}
            found.append(_explain_one(name, model, meta, values, xs[name][i], top, stored[name][i],
                                      float(scores[i]), one))
        by_id[event_id] = {"event": event, "features": values, "detectors": found}
    return {"events": [by_id[i] for i in wanted if i in by_id], "missing": [i for i in wanted if i not in by_id]}


def read_ids(path: str) -> list[str]:
    """Event ids from a file: one per line, or a CSV whose first column holds them (a header line is skipped
    when it names the column rather than an event: `id`, `event_id`, ...). Unreadable is a one-line error."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [r[0].strip() for r in csv.reader(handle) if r and r[0].strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"--ids-file {path}: cannot read it ({type(err).__name__}): give a text file with one "
                        "event id per line") from None
    if rows and rows[0].lower() in ("id", "event_id", "ids", "event", "order_id"):
        rows = rows[1:]
    if not rows:
        raise DataError(f"--ids-file {path}: no event id in it: give one event id per line")
    return rows
