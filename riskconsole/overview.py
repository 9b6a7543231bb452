"""What is in a workspace's database: counts, dates, labels, quarantine, features (label maturity: `maturity.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import numpy as np

from riskconsole.sqlbuild import alias, exp, fill, ident, render

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Dataset

HIST_BINS = 30


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in the database."""
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def summary(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> dict:
    """Row counts, time range and label shares of the loaded events."""
    roles = dataset.columns
    label = ident(roles.label) if roles.label else fill("CAST(NULL AS TINYINT)")
    amount = ident(roles.amount) if roles.amount else fill("CAST(NULL AS DOUBLE)")
    row = con.execute(render(fill(
        "SELECT count(*), min(:t), max(:t), count(:l), sum(:l), sum(:a) FROM frame",
        t=ident(roles.time), l=label, a=amount))).fetchall()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] if "quarantine" in tables(con) else 0
    events, first, last, labelled, fraud, money = row
    return {"events": events, "quarantined": quarantined, "first": first, "last": last,
            "labelled": labelled, "unlabelled": events - labelled, "fraud": int(fraud or 0),
            "label_rate": (fraud or 0) / labelled if labelled else None, "amount": money}


def sources(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[dict]:
    """Each loaded stream and table: rows, quarantined rows and, where it has times, the span they cover."""
    present = set(tables(con))
    out = []
    for kind, specs in (("stream", dataset.streams), ("table", dataset.tables)):
        for name, spec in specs.items():
            table = f"{kind}_{name}"
            if table not in present:
                continue
            time = spec.rename.get(spec.columns.time, spec.columns.time) if kind == "stream" else \
                spec.loaded(spec.valid_from)
            t = ident(time) if time else fill("CAST(NULL AS TIMESTAMP)")
            query = exp.select(fill("count(*)"), fill("min(:t)", t=t), fill("max(:t)", t=t)).from_(exp.to_table(table))
            rows, first, last = con.execute(render(query)).fetchall()[0]
            bad = f"quarantine_{name}"
            quarantined = con.execute(f"SELECT count(*) FROM {bad}").fetchall()[0][0] if bad in present else 0
            out.append({"source": f"{kind} {name}", "rows": rows, "quarantined": quarantined,
                        "from": first, "to": last, "file": spec.source})
    return out


def quarantine_reasons(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Quarantined rows by reason."""
    if "quarantine" not in tables(con):
        return []
    rows = con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return [{"reason": r, "rows": n} for r, n in rows]


def quarantine_sample(con: duckdb.DuckDBPyConnection, limit: int = 200):
    """The first quarantined rows as a DataFrame; a cell the file left empty shows empty, not as 'None'."""
    if "quarantine" not in tables(con):
        return None
    sample = con.execute("SELECT * FROM quarantine LIMIT ?", [limit]).df()
    from pandas.api.types import is_string_dtype

    text = [c for c in sample.columns if is_string_dtype(sample[c])]
    sample[text] = sample[text].fillna("")
    return sample


def feature_table(dataset: Dataset) -> list[dict]:
    """Each feature with a readable definition."""
    return [{"feature": f.name, "source": _source_of(f), "definition": _definition(f),
             "description": f.description or ""} for f in dataset.features]


def vocabulary(frame, dataset: Dataset) -> list[dict]:
    """Every name a rule may read, its type and where it comes from (the editor's list of columns)."""
    features = {f["feature"]: f["source"] for f in feature_table(dataset)}
    if frame.weight is not None:  # an entity frame: the entity, its period and its features
        from riskconsole.entities import ID, TIME

        features.update({ID: "entity-period", TIME: "entity-period"})
    out = [{"name": c, "type": frame.columns.get(c, "DOUBLE"),
            "source": "detector score" if c in frame.scores and c not in frame.columns
            else features.get(c, "events column")} for c in frame.visible]
    order = {"events column": 0, "events": 1, "derived": 4, "detector score": 5}
    return sorted(out, key=lambda r: (order.get(r["source"], 2 if r["source"].startswith("stream") else 3),
                                      r["source"], r["name"]))


def _source_of(f) -> str:
    """Where a feature's values come from: the decision stream, a stream, a table, or other features."""
    if f.sql is not None:
        return "derived"
    if f.lookup is not None:
        return f"table {f.lookup.split('.')[0]}"
    return f"stream {f.from_}" if f.from_ else "events"


def _definition(f) -> str:
    """A feature spec in words: `count(*) of signups by [device_id, ip] over the previous 24h`."""
    if f.sql is not None:
        return f.sql
    if f.lookup is not None:
        return f"{f.lookup} of the matching row"
    if f.graph is not None:
        hubs = f", hubs over {f.max_degree} cut" if f.max_degree else ""
        return f"{f.graph} of {f.node} linked by [{', '.join(f.links)}] over the previous {f.window}{hubs}"
    by = f.by if isinstance(f.by, str) else f"[{', '.join(f.by)}]" if f.by else "all rows"
    if f.first_seen is not None:
        return f"1 if {f.first_seen} is new for {by} over the previous {f.window}"
    delay = f" delayed {f.label_delay}" if f.label_delay else ""
    stream = f" of {f.from_}" if f.from_ else ""
    kept = f" where {f.where}" if f.where else ""
    return f"{f.agg}({f.of}){stream}{kept} by {by} over the previous {f.window}{delay}"


def distribution(con: duckdb.DuckDBPyConnection, dataset: Dataset, column: str) -> dict:
    """Quantiles and a histogram of one numeric column, split by label."""
    roles = dataset.columns
    label = fill("coalesce(CAST(:l AS VARCHAR), 'unknown')", l=ident(roles.label)) if roles.label \
        else fill("'unknown'")
    query = exp.select(alias(fill("CAST(:c AS DOUBLE)", c=ident(column)), "v"), alias(label, "y")).from_("frame")
    table = con.sql(render(query)).to_arrow_table()
    values = table.column("v").to_numpy(zero_copy_only=False).astype(float)
    labels = np.asarray(table.column("y").to_pylist(), dtype=object)
    ok = ~np.isnan(values)
    if not ok.any():
        return {"nulls": int((~ok).sum()), "quantiles": {}, "bins": []}
    lo, hi = np.quantile(values[ok], [0.001, 0.999])
    if np.all(values[ok] == np.round(values[ok])) and hi - lo <= 2 * HIST_BINS:
        edges = np.arange(np.floor(lo), np.ceil(hi) + 2) - 0.5  # one bar per integer value
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, HIST_BINS + 1)
    bins = []
    for y in ("0", "1", "unknown"):
        sel = ok & (labels == y)
        counts, _ = np.histogram(np.clip(values[sel], edges[0], edges[-1]), edges)
        bins += [{"label": {"0": "good", "1": "fraud"}.get(y, y), "start": float(a), "end": float(b), "events": int(c)}
                 for a, b, c in zip(edges[:-1], edges[1:], counts)]
    qs = np.quantile(values[ok], [0, 0.25, 0.5, 0.75, 0.99, 1])
    return {"nulls": int((~ok).sum()), "bins": bins,
            "quantiles": dict(zip(["min", "p25", "median", "p75", "p99", "max"], map(float, qs)))}


def day_range(con: duckdb.DuckDBPyConnection, dataset: Dataset):
    """First and last day of the loaded events."""
    query = fill("SELECT CAST(min(:t) AS DATE), CAST(max(:t) AS DATE) FROM frame", t=ident(dataset.columns.time))
    return tuple(con.execute(render(query)).fetchall()[0])
