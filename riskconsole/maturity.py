"""Label maturity: how complete each label source is by age, and which days a default window leaves out.

A label source is a column that says fraud / good (DESIGN §6.2, issue 12): the decision events' `label` (dated by
`label_time`), and each table's entity label (`tables.NAME.label`, dated by its `label_time`) that entity-level
strategies read, counted per entity-day with events (a good entity is known good from the start, a fraudulent one
from its label_time: the entity frame's rule, `entities.table_label_time`); since goods are known at once, an entity
source's curve measures how much of its fraud is confirmed by each age (`age_curve(fraud=True)`). An entity-level strategy's own label (its
table's, or its periods' events') gets the same curve over its entity frame (`entity_curve`).

A source's curve gives, per age in days (days before the data's last event day), the share labelled now and, where
the label is dated, the share of the units at least that old whose label arrived within that many days. The load
computes every source's curve and the day range once (`store`, table `_maturity`), so a backtest's default window
reads them (`stored`) instead of scanning the events again.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from riskconsole.names import MATURITY_TABLE
from riskconsole.overview import day_range
from riskconsole.sqlbuild import alias, exp, fill, ident, lit, render

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    import pyarrow as pa  # type names only: a backtest reads DuckDB's results as numpy (issue 14)
    from riskconsole.config import Dataset

MATURE_REACH = 0.95  # a day is mature once its units are labelled to this share of what old units reach
_ROWS = "__maturity_rows"


def _grouped(rows: exp.Expression, last: date) -> exp.Expression:
    """(age, delay, units, fraud units) of `rows` (t, y, lt): delay -2 = unlabelled, -1 = labelled without a date; a
    label dated before its unit (an entity confirmed before the period) arrived at age 0. (The undated case is its own
    branch: DuckDB's `greatest` skips a NULL, so `greatest(date_diff(t, NULL), 0)` would read it as arrived at once.)"""
    return fill(
        "SELECT date_diff('day', CAST(t AS DATE), :last) AS age, "
        "CASE WHEN y IS NULL THEN NULL WHEN lt IS NULL THEN -1 ELSE greatest(date_diff('day', t, lt), 0) END AS delay, "
        "count(*), "
        "count(*) FILTER (y = 1) FROM :rows AS r GROUP BY 1, 2", last=fill("CAST(:d AS DATE)", d=lit(last.isoformat())),
        rows=rows.subquery())


def _events_rows(dataset: Dataset) -> exp.Expression:
    roles = dataset.columns
    lt = ident(roles.label_time) if roles.label_time else fill("CAST(NULL AS TIMESTAMP)")
    return _rows(ident(roles.time), ident(roles.label), lt, "frame")


def _rows(t: exp.Expression, y: exp.Expression, lt: exp.Expression, table: str) -> exp.Select:
    """`SELECT t, y, lt FROM table`: the shape every source's rows take."""
    return exp.select(alias(t, "t"), alias(y, "y"), alias(lt, "lt")).from_(table)


def _table_rows(dataset: Dataset, table: str) -> exp.Expression:
    """One row per (entity, day with events) with the table's entity label, dated as the entity frame dates it."""
    from riskconsole.entities import table_label_query, table_label_time

    spec = dataset.tables[table]
    key = spec.loaded(spec.key)
    days = fill("SELECT DISTINCT :k, CAST(CAST(:t AS DATE) AS TIMESTAMP) AS period FROM frame WHERE :k IS NOT NULL",
                k=ident(key), t=ident(dataset.columns.time))
    return fill(f"SELECT f.period AS t, t.tlab AS y, {table_label_time('f.period')} AS lt FROM :days AS f "
                "LEFT JOIN :labels AS t ON :a = :b", days=days.subquery(),
                labels=table_label_query(dataset, table, key).subquery(), a=exp.column(key, "t", quoted=True),
                b=exp.column(key, "f", quoted=True))


def sources(dataset: Dataset) -> list[dict]:
    """Every label source of the dataset: name, label column, unit counted, whether its labels are dated, rows."""
    out = []
    roles = dataset.columns
    if roles.label:
        out.append({"source": "events", "label": roles.label, "unit": "events", "dated": bool(roles.label_time),
                    "fraud": False, "rows": _events_rows(dataset)})
    for name, spec in dataset.tables.items():
        if spec.key and spec.label:
            out.append({"source": f"tables.{name}", "label": spec.label, "unit": f"{spec.loaded(spec.key)}-days with events",
                        "dated": True, "fraud": True, "rows": _table_rows(dataset, name)})
    return out


def age_curve(con: duckdb.DuckDBPyConnection, rows: exp.Expression, last: date, dated: bool,
              fraud: bool = False) -> list[dict]:
    """Share labelled by age in days (age = days before `last`, the data's last event day) of `rows` (t, y, lt).

    Per age: `events` (units) of that age, `labelled_share` (labelled now) and, where `dated`,
    `labelled_within` = share of the units at least that old whose label arrived within that many days: the
    maturity curve (flat from the age at which labels stop arriving). With `fraud`, `labelled_within` counts the
    fraud units only (of the fraud units at least that old, the share confirmed within that many days): for an
    entity label, where a good entity counts as known from the start, the share of all units is near 1 at age 0
    however late fraud is confirmed.
    """
    return _age_curve(_counts(con, rows, last), dated, fraud)


def _counts(con: duckdb.DuckDBPyConnection, rows: exp.Expression, last: date) -> np.ndarray:
    """`_grouped` of `rows` as an array of (age, delay, units, fraud units), delay -2 for unlabelled."""
    found = con.execute(render(_grouped(rows, last))).fetchall()
    return np.array([(a, -2 if d is None else d, n, f) for a, d, n, f in found if a is not None and a >= 0],
                    dtype=np.int64).reshape(-1, 4)


def undated_goods(grouped: np.ndarray) -> bool:
    """Whether good labels carry no label time while some fraud does (a shop that dates only its chargebacks): the
    share of every unit labelled within N days is then the fraud rate, whatever N, so the source is read by its
    fraud (`age_curve(fraud=True)`)."""
    delay, units, fraud = grouped[:, 1], grouped[:, 2], grouped[:, 3]
    goods = units - fraud
    return bool(goods[delay == -1].sum() > 0 and goods[delay >= 0].sum() == 0 and fraud[delay >= 0].sum() > 0)


def _age_curve(grouped: np.ndarray, dated: bool, fraud: bool) -> list[dict]:
    """`age_curve` from `_counts`."""
    if not len(grouped):
        return []
    age_of, delay, units = grouped[:, 0], grouped[:, 1], grouped[:, 2]
    measured = grouped[:, 3] if fraud else units  # what `labelled_within` counts: fraud units, or every unit
    ages = np.arange(int(age_of.max()) + 1)
    events = np.bincount(age_of, weights=units, minlength=ages.size)
    labelled = np.bincount(age_of, weights=units * (delay != -2), minlength=ages.size)
    old_enough = np.bincount(age_of, weights=measured, minlength=ages.size)[::-1].cumsum()[::-1]  # at least `age` old
    out = []
    for age in ages:
        row = {"age_days": int(age), "events": int(events[age]),
               "labelled_share": float(labelled[age] / events[age]) if events[age] else None}
        if dated:
            arrived = measured[(age_of >= age) & (delay >= 0) & (delay <= age)].sum()
            row["labelled_within"] = float(arrived / old_enough[age]) if old_enough[age] else None
        out.append(row)
    return out


def compute(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> dict:
    """The day range and every label source's curve (what `store` keeps), scanned from the frame."""
    first, last = day_range(con, dataset)
    return {"first": first, "last": last, "sources": [_source_curve(con, s, last) for s in sources(dataset)]}


def _source_curve(con: duckdb.DuckDBPyConnection, source: dict, last: date | None) -> dict:
    """A source (without its rows) with its curve; read by its fraud where its good labels are undated
    (`undated_goods`: then `fraud` and `undated_goods` are true)."""
    grouped = _counts(con, source["rows"], last) if last else np.zeros((0, 4), np.int64)
    undated = bool(source["dated"] and not source["fraud"] and len(grouped) and undated_goods(grouped))
    fraud = source["fraud"] or undated
    return {**{k: v for k, v in source.items() if k != "rows"}, "fraud": fraud, "undated_goods": undated,
            "curve": _age_curve(grouped, source["dated"], fraud)}


def store(con: duckdb.DuckDBPyConnection, dataset: Dataset, version: str) -> dict:
    """Compute and keep the day range and curves in table `_maturity` (one row, with the load's data version)."""
    found = compute(con, dataset)
    con.execute(f"CREATE OR REPLACE TABLE {MATURITY_TABLE} AS SELECT ?::JSON AS maturity, ? AS version",
                [json.dumps(found, default=str), version])
    return found


def stored(con: duckdb.DuckDBPyConnection) -> dict | None:
    """What the load stored (`store`), or None for a database loaded before it did."""
    try:
        rows = con.execute(f"SELECT maturity FROM {MATURITY_TABLE}").fetchall()
    except duckdb.CatalogException:
        return None
    if not rows:
        return None
    found = json.loads(rows[0][0])
    for key in ("first", "last"):
        found[key] = date.fromisoformat(found[key]) if found[key] else None
    return found


def entity_curve(con: duckdb.DuckDBPyConnection, table: pa.Table, last: date) -> list[dict]:
    """The curve of an entity frame's own label (one unit per entity-period, the money rows left out)."""
    from riskconsole.entities import LABEL, LABEL_TIME, TIME, WEIGHT

    cur = con.cursor()
    try:
        cur.register(_ROWS, table)
        rows = _rows(ident(TIME), ident(LABEL), ident(LABEL_TIME), _ROWS).where(fill(":w = 1", w=ident(WEIGHT)))
        return age_curve(cur, rows, last, dated=True, fraud=True)
    finally:
        cur.close()


PLATEAU_SUPPORT = 0.25  # the plateau is read at ages that at least this share of the units have reached


def mature_age(curve: list[dict], reach: float = MATURE_REACH) -> int | None:
    """Days after which labels are mature: the first age whose labelled share reaches `reach` of the plateau; None
    without a curve.

    The plateau is the highest share the curve shows over the ages at least PLATEAU_SUPPORT of the units have
    reached: with label_time, the share of those units labelled within that many days; without, the labelled
    share of those units now. Read over ages so many units reached, it is not the noise of the last few days'
    handful of events (the oldest quarter alone put a 4-day delay at 17 days on 600 events); read as the highest,
    a label that comes late is seen as long as a quarter of the units are older than its delay (the curve at half
    the oldest age, taken before, missed labels arriving later than that: goods labelled 45 days after their order
    in 90 days of data gave mature after 43 days, and a default window ending on days 1% labelled)."""
    if not curve:
        return None
    events = np.array([r["events"] for r in curve], dtype=float)
    older = events[::-1].cumsum()[::-1]  # units at least each age old
    supported = older >= PLATEAU_SUPPORT * older[0] if older[0] else np.zeros(len(curve), bool)
    if "labelled_within" in curve[0]:
        values = [(r["age_days"], r["labelled_within"]) for r in curve if r["labelled_within"] is not None]
        seen = [r["labelled_within"] for r, ok in zip(curve, supported) if ok and r["labelled_within"] is not None]
    else:
        values = [(r["age_days"], r["labelled_share"]) for r in curve if r["labelled_share"] is not None]
        labelled = np.array([(r["labelled_share"] or 0) * r["events"] for r in curve])[::-1].cumsum()[::-1]
        seen = list((labelled / np.where(older > 0, older, 1))[supported])
    plateau = max(seen, default=None)
    if not values or not plateau:
        return None
    return next((a for a, v in values if v >= reach * plateau), None)


def mature_last_day(curve: list[dict], reference: date, reach: float = MATURE_REACH) -> tuple[date, int] | None:
    """The last mature day before `reference` (the data's last day) and the mature age.

    A day is mature when its events are at least `reach` as labelled as old events: its age reaches `mature_age`
    of the label-age curve (the share labelled within that many days climbs to `reach` of its plateau). None
    where nothing is immature (no curve, or labels arrive the same day)."""
    age = mature_age(curve, reach)
    if not age:
        return None
    return reference - timedelta(days=age), age


def _mature_means(unit: str, reach: float, fraud: bool) -> str:
    """What "mature" means in a note: `events are 95% as labelled as old events`, or, of a curve of fraud confirmed
    (good labels undated), `fraud on events is 95% as confirmed as on old events`."""
    return f"fraud on {unit} is {reach:.0%} as confirmed as on old {unit}" if fraud else \
        f"{unit} are {reach:.0%} as labelled as old {unit}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def mature_note(last: date, age: int, reference: date, unit: str = "events", reach: float = MATURE_REACH,
                fraud: bool = False) -> str:
    """The one sentence that says which days a default window leaves out and why; with `fraud`, the curve is of
    fraud confirmed (good labels undated), and the sentence says so."""
    first_out = last + timedelta(days=1)
    why = _mature_means(unit, reach, fraud)
    return (f"window ends {last}: {first_out}..{reference} left out, their labels are immature ({why} only "
            f"{_days(age)} after they happen); end the window at {reference} (--to {reference}) to include them")


def past_mature_note(last: date, first: date, late: date, age: int, unit: str = "events",
                     reach: float = MATURE_REACH, fraud: bool = False) -> str:
    """The sentence of a window given an end (--to) past `last`, the last mature day: its days `first`..`late` count
    labels still arriving."""
    why = _mature_means(unit, reach, fraud)
    whole = first > last + timedelta(days=1)
    where = "every day of the window is" if whole else "window reaches"
    fix = f"judge a window that ends by {last}" if whole else \
        f"end the window at {last} (--to {last}) to judge on mature labels"
    return (f"{where} past {last}, the last day whose labels are mature ({why} only {_days(age)} after they happen): "
            f"on {first}..{late} " + ("fraud not yet confirmed counts as good, so precision and caught fraud read low "
                                       "there" if fraud else f"{unit} not yet labelled are left out, so precision and "
                                       "recall there count only the labels that came early") + f"; {fix}")


def monitor_note(last: date, age: int, window: tuple[date, date], reference: tuple[date, date],
                 unit: str = "events", reach: float = MATURE_REACH, fraud: bool = False) -> str | None:
    """The warning of a monitor whose days (`window`, `reference`: first and last day) come after `last`, the last
    mature day of the labels known by the window's end (the labels a monitor counts); None when every day of the
    window is mature. Precision, recall and caught money there count the labels that had arrived: the monitor's
    own per-day maturity keeps them from alerting low, but its charts look calm, and a reference of such days
    gives loose bands."""
    def after(first: date, end: date) -> int:
        return max((end - max(last, first - timedelta(days=1))).days, 0)

    late, days = after(*window), (window[1] - window[0]).days + 1
    if not late:
        return None
    why = _mature_means(unit, reach, fraud)
    ref_late, ref_days = after(*reference), (reference[1] - reference[0]).days + 1
    ref = f", and on {ref_late} of the reference's {ref_days} days (their bands are loose)," if ref_late else ""
    return (f"labels known by {window[1]} are immature after {last} ({why} only {_days(age)} after they happen): "
            f"precision, recall and caught money on {late} of the window's {days} days{ref} count only the labels "
            "that had arrived, so they cannot show whether the strategy got worse there")


def reading(source: dict, last: date, reach: float = MATURE_REACH) -> str:
    """One line that reads a source's curve: after how many days its labels are mature (and where a backtest
    without --to therefore ends, `last` being the data's last day), or why none is shown."""
    name = f"{source['source']} ({source['label']}, per {source['unit'].removesuffix('s with events')})"
    if not source["curve"]:
        return f"{name}: nothing labelled to read"
    age = mature_age(source["curve"], reach)
    if not source["dated"]:
        return (f"{name}: no label_time, so when labels arrived is unknown; the line is the share labelled now "
                f"(mature after {_days(age)} by that share)" if age else f"{name}: no label_time; labelled now")
    if age is None:
        return f"{name}: no dated label yet"
    what = f"fraud is {reach:.0%} as confirmed as on old {source['unit']}" if source.get("fraud") else \
        f"labels are {reach:.0%} as complete as on old {source['unit']}"
    if source.get("undated_goods"):  # the share of all units would be the fraud rate at every age
        name += ("; its good labels have no label_time, so the line is the share of fraud labels known by that "
                 "age")
    if age == 0:
        return f"{name}: labels known the day their {source['unit']} happen (nothing to leave out)"
    return (f"{name}: {what} {_days(age)} after they happen, so a backtest counting it without --to ends "
            f"{last - timedelta(days=age)}")


def label_age_curve(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[dict]:
    """The events' label curve, scanned from the frame (the load stores it: `store`)."""
    source = next((s for s in sources(dataset) if s["source"] == "events"), None)
    if source is None:
        return []
    return _source_curve(con, source, day_range(con, dataset)[1])["curve"]
