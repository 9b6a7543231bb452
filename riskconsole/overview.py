"""What is in a workspace's database: counts, dates, labels and their maturity, quarantine, features."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np

from riskconsole.config import Dataset
from riskconsole.sqlbuild import alias, fill, ident, render
from sqlglot import exp

HIST_BINS = 30
MATURE_SHARE = 0.5  # a day with fewer labelled events than this share has no fraud rate shown


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
            time = spec.columns.time if kind == "stream" else spec.valid_from
            t = ident(time) if time else fill("CAST(NULL AS TIMESTAMP)")
            query = exp.select(fill("count(*)"), fill("min(:t)", t=t), fill("max(:t)", t=t)).from_(exp.to_table(table))
            rows, first, last = con.execute(render(query)).fetchall()[0]
            bad = f"quarantine_{name}"
            quarantined = con.execute(f"SELECT count(*) FROM {bad}").fetchall()[0][0] if bad in present else 0
            out.append({"source": f"{kind} {name}", "rows": rows, "quarantined": quarantined,
                        "from": first, "to": last, "file": spec.source})
    return out


def label_maturity(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[dict]:
    """Per day: events, labelled, fraud, and the share still unlabelled (recent days are immature)."""
    roles = dataset.columns
    label = ident(roles.label) if roles.label else fill("CAST(NULL AS TINYINT)")
    query = fill("SELECT CAST(:t AS DATE) AS day, count(*) AS events, count(:l) AS labelled, "
                 "coalesce(sum(:l), 0) AS fraud FROM frame GROUP BY 1 ORDER BY 1", t=ident(roles.time), l=label)
    rows = con.execute(render(query)).fetchall()
    # where most of a day is still unlabelled, the known labels are mostly early chargebacks (fraud):
    # its fraud rate would mislead, so it is left out
    return [{"day": d.isoformat(), "events": n, "labelled": k, "fraud": int(f),
             "unlabelled_share": 1 - k / n if n else None,
             "fraud_rate": f / k if k and k / n >= MATURE_SHARE else None}
            for d, n, k, f in rows]


def quarantine_reasons(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Quarantined rows by reason."""
    if "quarantine" not in tables(con):
        return []
    rows = con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return [{"reason": r, "rows": n} for r, n in rows]


def quarantine_sample(con: duckdb.DuckDBPyConnection, limit: int = 200):
    """The first quarantined rows as a DataFrame."""
    if "quarantine" not in tables(con):
        return None
    return con.execute("SELECT * FROM quarantine LIMIT ?", [limit]).df()


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


def label_age_curve(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[dict]:
    """Share labelled by event age in days (age = days before the data's last event).

    Per age: `events` of that age, `labelled_share` (labelled now) and, with label_time mapped,
    `labelled_within` = share of the events at least that old whose label arrived within that many days:
    the maturity curve (flat from the age at which labels stop arriving).
    """
    roles = dataset.columns
    if not roles.label:
        return []
    delay = fill("date_diff('day', :t, :lt)", t=ident(roles.time), lt=ident(roles.label_time)) \
        if roles.label_time else fill("CAST(NULL AS BIGINT)")
    query = fill("SELECT date_diff('day', :t, (SELECT max(:t) FROM frame)) AS age, "
                 "CASE WHEN :l IS NOT NULL THEN coalesce(:d, -1) END AS delay, count(*) FROM frame GROUP BY 1, 2",
                 t=ident(roles.time), l=ident(roles.label), d=delay)
    rows = np.array([(a, -2 if d is None else d, n) for a, d, n in con.execute(render(query)).fetchall()],
                    dtype=np.int64).reshape(-1, 3)
    if not len(rows):
        return []
    ages = np.arange(int(rows[:, 0].max()) + 1)
    events = np.bincount(rows[:, 0], weights=rows[:, 2], minlength=ages.size)
    labelled = np.bincount(rows[:, 0], weights=rows[:, 2] * (rows[:, 1] != -2), minlength=ages.size)
    old_enough = events[::-1].cumsum()[::-1]  # events at least `age` days old
    out = []
    for age in ages:
        row = {"age_days": int(age), "events": int(events[age]),
               "labelled_share": float(labelled[age] / events[age]) if events[age] else None}
        if roles.label_time:
            arrived = rows[(rows[:, 0] >= age) & (rows[:, 1] >= 0) & (rows[:, 1] <= age), 2].sum()
            row["labelled_within"] = float(arrived / old_enough[age]) if old_enough[age] else None
        out.append(row)
    return out


def mature_age(curve: list[dict], reach: float = 0.95) -> int | None:
    """Days after which labels are mature: the first age whose labelled share reaches `reach` of the plateau; None
    without a curve.

    The plateau is the curve at half the oldest age: with label_time, the share of the older half of the events
    labelled within that many days (half the data, so it is not the noise of the last few days' handful of events:
    the oldest quarter alone put a 4-day delay at 17 days on 600 events); without label_time, the labelled share of
    the older half."""
    if not curve:
        return None
    if "labelled_within" in curve[0]:
        values = [(r["age_days"], r["labelled_within"]) for r in curve if r["labelled_within"] is not None]
        plateau = next((v for a, v in values if a >= curve[-1]["age_days"] // 2), None)
    else:
        values = [(r["age_days"], r["labelled_share"]) for r in curve if r["labelled_share"] is not None]
        old = [r for r in curve if r["age_days"] >= curve[-1]["age_days"] // 2 and r["events"]]
        plateau = sum(r["labelled_share"] * r["events"] for r in old) / sum(r["events"] for r in old) if old else None
    if not values or not plateau:
        return None
    return next((a for a, v in values if v >= reach * plateau), None)


MATURE_REACH = 0.95  # a day is mature once its events are labelled to this share of what old events reach


def mature_last_day(curve: list[dict], reference: date, reach: float = MATURE_REACH) -> tuple[date, int] | None:
    """The last mature day before `reference` (the data's last day) and the mature age.

    A day is mature when its events are at least `reach` as labelled as old events: its age reaches `mature_age`
    of the label-age curve (the share labelled within that many days climbs to `reach` of its plateau). None
    where nothing is immature (no curve, or labels arrive the same day)."""
    age = mature_age(curve, reach)
    if not age:
        return None
    return reference - timedelta(days=age), age


def mature_note(last: date, age: int, reference: date, reach: float = MATURE_REACH) -> str:
    """The one sentence that says which days a default window leaves out and why."""
    first_out = last + timedelta(days=1)
    return (f"window ends {last}: {first_out}..{reference} left out, their labels are immature (events are "
            f"{reach:.0%} as labelled as old events only {age} days after they happen); give --to {reference} "
            "to include them")
