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
    query = exp.select(ident(name)).from_(exp.to_table(exp.to_identifier(score_table(name), quoted=True))).where(
        fill("_pos = :p", p=pos))
    try:
        rows = con.execute(render(query)).fetchall()
    except duckdb.CatalogException:
        return None
    return rows[0][0] if rows else None


def _reasons(model: DetectorModel, features: list[str], x: np.ndarray, values: dict, top: int) -> dict:
    r = model.reasons(x)
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
                 stored: float | None) -> dict:
    features = meta["features"]
    score = float(model.score(x.reshape(1, -1))[0])
    out = {"name": name, "kind": model.kind, "score": score, "stored_score": stored}
    if stored is not None and not math.isclose(stored, score, rel_tol=1e-9, abs_tol=1e-12):
        out["warning"] = (f"the stored score {stored:.6f} differs from the model's {score:.6f}: the events were "
                          "reloaded since training (run rescore or retrain)")
    return out | _reasons(model, features, x, values, top)


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
