"""Reason codes: why did this event score high? One function the console and the CLI both call.

LightGBM: the event's SHAP contributions from `pred_contrib` (log-odds; they sum with the base value
to the raw score). PyOD: the features furthest from their training distribution (robust z-scores).
A text feature is shown as its text ('live'), never as the code or frequency the model read.
"""

from __future__ import annotations

import gc
import math
from datetime import datetime

import duckdb
import numpy as np
from sqlglot import exp

from riskconsole.config import Dataset
from riskconsole.detectors.matrix import FRAME, chunk_rows, learned
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


def _unseen(known: dict[str, tuple[set, str]], values: dict) -> dict:
    """`unseen`: the event's text values the model did not learn in training and how it read them (a new payment
    method reads as missing: no reason names it, so it is said here); nothing when there are none."""
    found = [{"feature": f, "value": values[f], "learned": len(seen), "read_as": read_as}
             for f, (seen, read_as) in known.items() if values.get(f) is not None and str(values[f]) not in seen]
    return {"unseen": found} if found else {}


def _header(name: str, model: DetectorModel, score: float, stored: float | None) -> dict:
    """Name, kind, the model's score, the stored score, and a warning when they differ."""
    out = {"name": name, "kind": model.kind, "score": score, "stored_score": stored}
    if stored is not None and not math.isclose(stored, score, rel_tol=1e-9, abs_tol=1e-12):
        out["warning"] = (f"the stored score {stored:.6f} differs from the model's {score:.6f}: the events were "
                          "reloaded since training (run rescore or retrain)")
    return out


def _explain_one(name: str, model: DetectorModel, meta: dict, values: dict, x: np.ndarray, top: int,
                 stored: float | None, score: float | None = None, r: dict | None = None) -> dict:
    features = meta["features"]
    score = float(model.score(x.reshape(1, -1))[0]) if score is None else score
    known = learned(encoding_of(model, features))
    return _header(name, model, score, stored) | _reasons(model, features, x, values, top, r) | _unseen(known, values)


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


def _rows_of(con: duckdb.DuckDBPyConnection, dataset: Dataset, event_ids: list[str], features: list[str],
             encodings: list | None = None):
    """The events' rows (as `_event`), joined on a registered id table, in `_pos` order: Arrow columns.

    With `encodings`, the same query also reads each model's inputs (encoding i's column j as `m{i}_f{j}`).
    """
    import pyarrow as pa

    con.register(_IDS, pa.table({"_id": pa.array(event_ids, pa.string())}))
    try:
        query = _event_query(dataset, "", features)
        query.set("where", None)
        for i, encoding in enumerate(encodings or []):
            inputs = encoding.select([]).expressions
            query = query.select(*(alias(e.this, f"m{i}_{e.alias}") for e in inputs))
        query = query.where(fill("CAST(:i AS VARCHAR) IN (SELECT _id FROM :t)", i=ident(dataset.columns.id),
                                 t=exp.to_table(_IDS))).order_by("_pos")
        return con.sql(render(query)).to_arrow_table()
    finally:
        con.unregister(_IDS)


def _inputs(table, encoding, i: int) -> np.ndarray:
    """Model i's X from the columns `_rows_of` read for it."""
    import pyarrow as pa

    cols = {f"f{j}": table.column(f"m{i}_f{j}") for j in range(len(encoding.features))}
    return encoding.matrix(pa.table(cols))


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
    return [got.get(p) for p in positions.tolist()]


def _plain_column(column) -> list:
    """`_plain` of every value of an Arrow column, without a Python call per value where the type allows."""
    import pyarrow as pa

    values = column.to_pylist()
    kind = column.type
    if pa.types.is_floating(kind):
        bad = ~np.isfinite(column.to_numpy(zero_copy_only=False).astype(np.float64))
        for i in np.flatnonzero(bad).tolist():
            values[i] = None
        return values
    if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        return values
    return [_plain(v) for v in values]


def _top(push: np.ndarray, top: int, supervised: bool) -> tuple[list, list]:
    """Per row, the indices and values of its top reasons, as `_reasons` picks them (same stable order)."""
    order = np.argsort(-push if supervised else -np.abs(push), axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(push, order, axis=1)
    keep = picked > 0 if supervised else picked != 0
    return ([o[k].tolist() for o, k in zip(order, keep)], [v[k].tolist() for v, k in zip(picked, keep)])


def _batch_reasons(model: DetectorModel, features: list[str], X: np.ndarray, values: list[dict], top: int,
                   r: dict) -> list[dict]:
    """`_reasons` of every row at once (the same dicts, built from whole-batch arrays)."""
    push = np.asarray(r["push"], dtype=np.float64)
    order, picked = _top(push, top, model.supervised)
    method = r["method"]
    out = []
    if model.supervised:
        rows = push.tolist()
        base, raw = np.asarray(r["base"], dtype=np.float64).tolist(), np.asarray(r["raw"], dtype=np.float64).tolist()
        for i, (js, vs) in enumerate(zip(order, picked)):
            v = values[i]
            reasons = [{"feature": features[j], "value": v[features[j]], "contribution": c} for j, c in zip(js, vs)]
            out.append({"method": method, "reasons": reasons, "base": base[i], "raw": raw[i],
                        "contributions": dict(zip(features, rows[i]))})
        return out
    text = set(encoding_of(model, features).text)
    typical = np.asarray(r["typical"], dtype=np.float64).tolist()
    shares = X.astype(np.float64).tolist()
    for i, (js, vs) in enumerate(zip(order, picked)):
        v = values[i]
        reasons = [{"feature": features[j], "value": v[features[j]], "z": z, "typical": typical[j]}
                   | _frequency(features[j] in text, shares[i][j]) for j, z in zip(js, vs)]
        out.append({"method": method, "reasons": reasons})
    return out


def explain_many(ws: Workspace, event_ids: list[str], detectors: list[str] | None = None, top: int = 5) -> dict:
    """`explain` for a set of events in one call: one query for the rows and every model's inputs, one batch
    TreeSHAP per LightGBM model (`reasons_batch`), reason codes picked for the whole batch at once.

    Each entry of `events` equals what `explain` returns for that id (in the order asked, duplicates once);
    LightGBM contributions agree with `explain`'s `pred_contrib` within ~1e-12 (tests/test_explain_batch.py).

    Raises:
        DataError: an unknown detector, nothing trained yet, or none of the ids among the loaded events
            (ids that are not found are listed under `missing`).
    """
    wanted = list(dict.fromkeys(str(i) for i in event_ids))
    folders = _chosen(ws, detectors)
    loaded = {name: load_detector(folder) for name, folder in folders.items()}
    features = list(dict.fromkeys(f for _, meta in loaded.values() for f in meta["features"]))
    encodings = [encoding_of(model, meta["features"]) for model, meta in loaded.values()]
    dataset = ws.dataset()
    con = ws.connect_safe()
    try:
        table = _rows_of(con, dataset, wanted, features, encodings)
        positions = table.column("_pos").to_numpy()
        if not len(positions):
            raise DataError(f"none of the {len(wanted):,} event ids is among the loaded events "
                            f"(first: '{wanted[0] if wanted else ''}')")
        stored = {name: _stored_many(con, name, positions) for name in loaded}
    finally:
        con.close()
    xs = {name: _inputs(table, encodings[i], i) for i, name in enumerate(loaded)}
    # hundreds of thousands of small dicts and lists follow, none of them cyclic: the cyclic garbage collector
    # would walk the growing heap again and again while they are built (a third of the batch's Python time)
    paused = gc.isenabled()
    gc.disable()
    try:
        return _assemble(loaded, features, table, positions, xs, stored, wanted, top)
    finally:
        if paused:
            gc.enable()


def _assemble(loaded: dict, features: list[str], table, positions: np.ndarray, xs: dict, stored: dict,
              wanted: list[str], top: int) -> dict:
    """`explain_many`'s result from the batch's rows, inputs and stored scores."""
    columns = {f: _plain_column(table.column(f"v{k}")) for k, f in enumerate(features)}
    values = [dict(zip(features, row)) for row in zip(*columns.values())] if features else [{}] * len(positions)
    info = [k for k in ("id", "time", "label", "amount") if k in table.column_names]
    events = [dict(zip(info, row)) for row in zip(*(_plain_column(table.column(k)) for k in info))]
    found = []
    for name, (model, meta) in loaded.items():
        r = model.reasons_batch(xs[name])
        scores = r.get("score")
        scores = np.asarray(model.score(xs[name]) if scores is None else scores, dtype=np.float64).tolist()
        reasons = _batch_reasons(model, meta["features"], xs[name], values, top, r)
        known = learned(encoding_of(model, meta["features"]))
        found.append([_header(name, model, score, stored[name][i]) | reasons[i] | _unseen(known, values[i])
                      for i, score in enumerate(scores)])
    by_id = {str(event["id"]): {"event": event, "features": values[i], "detectors": [d[i] for d in found]}
             for i, event in enumerate(events)}
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
