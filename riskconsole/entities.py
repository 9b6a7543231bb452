"""Entity-level strategies (DESIGN §3.2): one decision per entity per period in which it had events.

An entity-period (an entity, and a period of `every` in which it had at least one event) is judged with what was
known at the period's start: its window features are those an event of the entity would have had at that instant
(rows strictly before it), computed by the same union windows as the event frame (`streams.py`, `features.py`,
`lookups.py`), with the period starts as the query rows. Features of other keys (the buyer's, the device's) and
the period's own events are not known at its start, so they are not columns of the entity frame.

Labels: from the table keyed by the entity where it maps `label` (and `label_time`), else from the period's
events (1 if any is fraud, 0 if every one is labelled good, else unknown).

Money (horizon): a block stops the entity's fraud amount in [start, start + horizon) and loses its good amount
there, whatever the entity's own label. The frame carries that as *weighted rows*: one row per entity-period
(`__w` = 1: counted, amount 0) and up to two money rows (`__w` = 0: label 1 with the fraud amount, label 0 with
the good amount) that share its features, hence its rule hits and decision. Summed per group by `metrics.parts`
this gives counts of entity-periods and money by event labels, with every formula, comparison and interval of
the event-level report unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from riskconsole.config import Dataset, Feature, Level, duration_seconds
from riskconsole.errors import ConfigError, RiskConsoleError, closest
from riskconsole.expressions import parse_visible
from riskconsole.features import _source, is_label_feature, label_features_query, label_key, per_event
from riskconsole.lookups import lookup_query, target
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.streams import HOUR, US, filter_columns, micros, numbered, stream_query
from riskconsole.strategy import Frame

ID, TIME = "entity_period", "period_start"
WEIGHT, LABEL, LABEL_TIME, AMOUNT = "__w", "__label", "__label_time", "__amount"
FRAUD_AMOUNT, GOOD_AMOUNT, EVENTS = "__fraud_amount", "__good_amount", "__events"
HIDDEN = (LABEL, LABEL_TIME, AMOUNT, WEIGHT, FRAUD_AMOUNT, GOOD_AMOUNT, EVENTS)
_EV, _Q = "__entity_events", "__entity_periods"


@dataclass(frozen=True)
class EntityView:
    """The entity frame of one level: rows (Arrow), what a strategy may read, and the roles of its columns."""

    level: Level
    table: pa.Table
    frame: Frame
    dataset: Dataset
    features: list[str]          # dataset features defined at the entity level
    elsewhere: dict[str, str]    # dataset feature -> why it is not (another key, the event's own value, ...)
    label_from: str              # "tables.NAME" or "events"


def label_table(dataset: Dataset, entity: str) -> str | None:
    """The table keyed by `entity` that maps an entity label, if any."""
    return next((name for name, t in dataset.tables.items() if t.label and t.loaded(t.key) == entity), None)


def check_level(level: Level, dataset: Dataset, columns: dict[str, str], label: str) -> None:
    """The level's entity is an entity column of the decision events.

    Raises:
        ConfigError: one line naming the strategy file and the fix.
    """
    entity = level.entity
    entities = dataset.columns.entities
    if entity not in entities:
        known = ", ".join(entities) or "none are listed under columns.entities"
        if entity in columns:
            raise ConfigError(f"{label}: level.entity: '{entity}' is a column but not an entity of the dataset "
                              f"(entities: {known}; add it to columns.entities)")
        near = closest(entity, entities)
        hint = f"did you mean '{near}'? " if near else ""
        raise ConfigError(f"{label}: level.entity: unknown entity '{entity}' ({hint}entities: {known})")
    if entity not in columns:
        raise ConfigError(f"{label}: level.entity: '{entity}' is not a column of the loaded events (reload after "
                          "changing the dataset)")


def _q(name: str) -> str:
    """A quoted identifier as DuckDB SQL text."""
    return ident(name).sql("duckdb")


def _is_windowed(feature: Feature) -> bool:
    return feature.sql is None and feature.lookup is None and feature.agg is not None


def _plan(dataset: Dataset, entity: str) -> tuple[dict[str, list[Feature]], dict[str, str]]:
    """Features computable at a period start, by kind, and why each other feature is not."""
    plan: dict[str, list[Feature]] = {"window": [], "label": [], "graph": []}
    streams: dict[str, list[Feature]] = {}
    lookups: dict[str, list[Feature]] = {}
    elsewhere: dict[str, str] = {}
    for feature in dataset.features:
        if feature.sql is not None:
            continue
        if feature.graph is not None:
            if feature.node == entity:
                plan["graph"].append(feature)
            else:
                elsewhere[feature.name] = f"a graph of {feature.node}"
        elif feature.lookup is not None:
            name = target(feature)[0]
            if dataset.tables[name].loaded(dataset.tables[name].key) == entity:
                lookups.setdefault(name, []).append(feature)
            else:
                elsewhere[feature.name] = f"looked up by the event's {_join_column(dataset, name)}"
        elif _is_windowed(feature) and feature.keys == [entity]:
            if feature.from_ is not None:
                streams.setdefault(feature.from_, []).append(feature)
            elif is_label_feature(feature, dataset):
                plan["label"].append(feature)
            else:
                resolved = feature.model_copy(update={feature.agg: _source(feature.of, dataset)})
                plan["window"].append(resolved)
        else:
            keys = ", ".join(feature.keys) or "every row"
            elsewhere[feature.name] = f"grouped by {keys}" if feature.agg else "an event's own value"
    return {**plan, **{f"stream:{s}": fs for s, fs in streams.items()},
            **{f"lookup:{t}": fs for t, fs in lookups.items()}}, elsewhere


def _needed(dataset: Dataset, entity: str, plan: dict[str, list[Feature]]) -> list[str]:
    """The event columns the entity frame reads: the entity, the roles, and what its window features aggregate."""
    roles = dataset.columns
    columns = [entity, roles.time, roles.label, roles.label_time, roles.amount]
    columns += [f.of for f in plan["window"] if f.of != "*"] + [c for f in plan["window"] for c in filter_columns(f)]
    return list(dict.fromkeys(c for c in columns if c))


def _join_column(dataset: Dataset, table: str) -> str:
    spec = dataset.tables[table]
    return spec.loaded(spec.key) if spec.key else spec.range.value


ADDITIVE = ("count", "sum", "avg", "min", "max")  # windows that sums, counts, minima and maxima of buckets give
# the bucket's partial aggregate of column c, and how a window combines them (`{w}`: the OVER clause); a count
# is a BIGINT on both engines (DuckDB's sum of counts would be a HUGEINT)
_PARTS = {"count": ("count({c})", "CAST(coalesce(sum({p}) {w}, 0) AS BIGINT)"),
          "sum": ("sum({c})", "coalesce(sum({p}) {w}, 0)"),
          "min": ("min({c})", "min({p}) {w}"), "max": ("max({c})", "max({p}) {w}")}


def bucketed_windows(entity: str, features: list[Feature], every_us: int) -> exp.Expression:
    """A query (`_pos`, features) of decision-stream windows over the period starts, from events summed per
    (entity, bucket) first: a bucket is the gcd of the period and every window, so a period start is a bucket
    start and [start - window, start) is whole buckets — the same rows as `stream_query` over single events,
    in a union of thousands of rows instead of millions. Only counts, sums, averages, minima and maxima."""
    bucket = math.gcd(every_us, *[duration_seconds(f.window) * US for f in features])
    k = _q(entity)
    partial: dict[str, str] = {"__n": "count(*)"}
    combined = []
    for f in features:
        column = None if f.of == "*" else _q(f.of)
        w = (f"OVER (PARTITION BY {k} ORDER BY _t RANGE BETWEEN {duration_seconds(f.window) * US} PRECEDING "
             "AND 1 PRECEDING)")
        if column is None:
            expr = f"CAST(coalesce(sum(__n) {w}, 0) AS BIGINT)"  # a count, as on the event frame (not HUGEINT)
        elif f.agg == "avg":
            partial.setdefault(f"__s_{f.of}", f"sum(CAST({column} AS DOUBLE))")
            partial.setdefault(f"__c_{f.of}", f"count({column})")
            expr = f"sum({_q(f'__s_{f.of}')}) {w} / nullif(sum({_q(f'__c_{f.of}')}) {w}, 0)"
        else:
            make, combine = _PARTS[f.agg]
            name = f"__{f.agg}_{f.of}"
            partial.setdefault(name, make.format(c=column))
            expr = combine.format(p=_q(name), w=w)
        combined.append(f"{expr} AS {_q(f.name)}")
    floor = f"(_t - (((_t % {bucket}) + {bucket}) % {bucket}))"
    data = (f"SELECT {k}, {floor} AS _t, CAST(NULL AS BIGINT) AS _pos, "
            f"{', '.join(f'{e} AS {_q(n)}' for n, e in partial.items())} FROM {_EV} GROUP BY ALL")
    queries = f"SELECT {k}, _t, _pos, {', '.join(f'NULL AS {_q(n)}' for n in partial)} FROM {_Q}"
    return fill(f"SELECT * FROM (SELECT _pos, {', '.join(combined)} FROM ({data} UNION ALL {queries}) AS u) "
                "WHERE _pos IS NOT NULL")


def _side(tables: Tables, dataset: Dataset, entity: str, plan: dict[str, list[Feature]],
          every_us: int) -> dict[str, list[str]]:
    """Temp tables (`_pos`, features) of each planned group over the period starts; table -> feature names."""
    out: dict[str, list[str]] = {}
    for i, (kind, features) in enumerate(plan.items()):
        if not features:
            continue
        table = f"__entity_side_{i}"
        if kind == "window":
            additive = [f for f in features if f.agg in ADDITIVE and f.where is None]  # a filtered one: the union
            if additive:
                tables.create(f"{table}_b", bucketed_windows(entity, additive, every_us))
                out[f"{table}_b"] = [f.name for f in additive]
            features = [f for f in features if f not in additive]
            if not features:
                continue
            query = stream_query(dataset, None, (entity,), features, _Q, data=_EV, sweep=tables.sweep)
        elif kind == "label":  # one sweep per (by, label_delay, window)
            groups: dict[tuple, list[Feature]] = {}
            for feature in features:
                groups.setdefault(label_key(feature), []).append(feature)
            for j, group in enumerate(groups.values()):
                one = f"{table}_{j}"
                tables.create(one, label_features_query(group, dataset, _EV, queries=_Q))
                out[one] = [f.name for f in group]
            continue
        elif kind == "graph":
            tables.graph(dataset, features, _Q, table)
            out[table] = [f.name for f in features]
            continue
        elif kind.startswith("stream:"):
            query = stream_query(dataset, kind.split(":", 1)[1], (entity,), features, _Q, sweep=tables.sweep)
        else:
            query = lookup_query(dataset, kind.split(":", 1)[1], features, _Q)
        tables.create(table, query)
        out[table] = [f.name for f in features]
    return out


def _labels(dataset: Dataset, entity: str, every_us: int, horizon_us: int) -> exp.Expression:
    """Per period (`_pos`): the entity-period's label and label time, its money in the horizon and its events.

    Events are first summed per (entity, bucket) with buckets of gcd(every, horizon), so period starts are
    bucket starts; the period's and the horizon's sums are then RANGE windows ahead of each period start over
    the union of those bucket rows and the period rows (no range join over events)."""
    roles = dataset.columns
    bucket = math.gcd(every_us, horizon_us)
    y = fill("CAST(:l AS INTEGER)", l=ident(roles.label)) if roles.label else fill("CAST(NULL AS INTEGER)")
    lt = fill("CAST(:lt AS TIMESTAMP)", lt=ident(roles.label_time)) if roles.label_time else \
        fill("CAST(NULL AS TIMESTAMP)")
    amount = fill("coalesce(CAST(:a AS DOUBLE), 0)", a=ident(roles.amount)) if roles.amount else lit(0.0)
    k = _q(entity)
    floor = f"(_t - (((_t % {bucket}) + {bucket}) % {bucket}))"
    buckets = fill(
        f"SELECT {k}, {floor} AS _t, CAST(NULL AS BIGINT) AS _pos, count(*) AS n, count(:y) AS labelled, "
        "max(:y) AS worst, sum(CAST(CASE WHEN :y = 1 THEN :amt ELSE 0 END AS DECIMAL(38, 6))) AS fraud, "
        "sum(CAST(CASE WHEN :y = 0 THEN :amt ELSE 0 END AS DECIMAL(38, 6))) AS good, "
        "min(CASE WHEN :y = 1 THEN :lt END) AS first_fraud_lt, "
        "max(:lt) AS last_lt, max(CASE WHEN :y = 1 THEN :lt END) AS fraud_lt, "
        f"max(CASE WHEN :y = 0 THEN :lt END) AS good_lt FROM {_EV} GROUP BY ALL", y=y, lt=lt, amt=amount)
    nulls = ", ".join(f"NULL AS {c}" for c in ("n", "labelled", "worst", "fraud", "good", "first_fraud_lt", "last_lt",
                                             "fraud_lt", "good_lt"))
    union = f"SELECT * FROM ({render(buckets)}) UNION ALL SELECT {k}, _t, _pos, {nulls} FROM {_Q}"
    period = f"OVER (PARTITION BY {k} ORDER BY _t RANGE BETWEEN CURRENT ROW AND {every_us - 1} FOLLOWING)"
    ahead = f"OVER (PARTITION BY {k} ORDER BY _t RANGE BETWEEN CURRENT ROW AND {horizon_us - 1} FOLLOWING)"
    windowed = (
        f"SELECT _pos, max(worst) {period} AS worst, sum(labelled) {period} AS labelled, CAST(sum(n) {period} AS BIGINT) AS events, "
        f"min(first_fraud_lt) {period} AS first_fraud_lt, max(last_lt) {period} AS last_lt, "
        f"CAST(coalesce(sum(fraud) {ahead}, 0) AS DOUBLE) AS fraud, "
        f"CAST(coalesce(sum(good) {ahead}, 0) AS DOUBLE) AS good, "
        f"max(fraud_lt) {ahead} AS fraud_lt, max(good_lt) {ahead} AS good_lt FROM ({union}) AS u")
    return fill(
        "SELECT _pos, CASE WHEN worst = 1 THEN 1 WHEN labelled = events THEN 0 END AS ylab, "
        "CASE WHEN worst = 1 THEN first_fraud_lt ELSE last_lt END AS ylt, fraud, good, fraud_lt, good_lt, events "
        f"FROM ({windowed}) AS w WHERE _pos IS NOT NULL")


def table_label_query(dataset: Dataset, table: str, entity: str) -> exp.Expression:
    """Per entity (`entity`, `tlab`, `tlt`): its label from the table (1 if any row says fraud) and when that
    became known."""
    spec = dataset.tables[table]
    lab = fill("CAST(:l AS INTEGER)", l=ident(spec.loaded(spec.label)))
    when = fill("CAST(:t AS TIMESTAMP)", t=ident(spec.loaded(spec.label_time))) if spec.label_time else \
        fill("CAST(NULL AS TIMESTAMP)")
    k = _q(entity)
    return fill(f"SELECT {k}, max(:lab) AS tlab, min(:ltime) FILTER (WHERE :lab = 1) AS tlt FROM :tbl "
                f"WHERE {k} IS NOT NULL GROUP BY {k}", lab=lab, ltime=when,
                tbl=exp.to_table(f"table_{table}", quoted=True))


def table_label_time(period: str) -> str:
    """When a table label (`t.tlab`, `t.tlt` of `table_label_query`) is known for a period starting at `period`
    (SQL): a good entity is known good from the start, a fraudulent one from its label_time (where mapped)."""
    return f"CASE WHEN t.tlab = 1 THEN coalesce(t.tlt, {period}) WHEN t.tlab = 0 THEN {period} END"


class Tables(Protocol):
    """Where an entity frame's steps run: temp tables on DuckDB (`DuckTables`) or Spark views (engines/spark.py).

    Every step is a DuckDB-dialect AST; an engine renders it in its own dialect."""

    sweep: bool  # distinct counts, min, max, stddev by sweeps (`streams.stream_query`; Spark), not windows (DuckDB)

    def create(self, name: str, query: exp.Expression) -> None:
        """Materialize `query` as the table `name` (later steps read it; row_number must not run twice)."""

    def fetch(self, query: exp.Expression) -> pa.Table:
        """The rows of `query`, in DuckDB's Arrow types where the engine's differ (times without time zone)."""

    def graph(self, dataset: Dataset, features: list[Feature], base: str, table: str) -> None:
        """The graph side table of `base`'s rows (`graphs.graph_side_table`)."""

    def drop(self, names: list[str]) -> None:
        """Drop the tables a build created."""


class DuckTables:
    """An entity frame's steps as temp tables of a DuckDB connection."""

    sweep = False

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self, name: str, query: exp.Expression) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {render(query)}")

    def fetch(self, query: exp.Expression) -> pa.Table:
        return self.con.sql(render(query)).to_arrow_table()

    def graph(self, dataset: Dataset, features: list[Feature], base: str, table: str) -> None:
        from riskconsole.graphs import graph_side_table

        graph_side_table(self.con, dataset, features, base, table)

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


def build(con: duckdb.DuckDBPyConnection, dataset: Dataset, level: Level, label: str,
          tables: Tables | None = None) -> EntityView:
    """The entity frame of `level` over the loaded events: its steps run on `tables` (default: temp tables on `con`,
    dropped after); `con` holds the loaded `events` (their types) and reads the frame's types.

    Raises:
        ConfigError: the level names no entity of the dataset.
    """
    columns = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    check_level(level, dataset, columns, label)
    tables = tables or DuckTables(con)
    entity, every, horizon = level.entity, level.every_seconds * US, level.horizon_seconds * US
    k = ident(entity)
    plan, elsewhere = _plan(dataset, entity)
    per = per_event(dataset, list(columns), label)  # `sql:` features a window aggregates: computed per event
    kept = _needed(dataset, entity, plan)
    needed = [render(alias(per[c], c)) if c in per else _q(c) for c in kept]
    t = micros(ident(dataset.columns.time))
    start = f"(_t - (((_t % {every}) + {every}) % {every}))"  # floor to the period, also before 1970
    kq = _q(entity)
    if tables.sweep:  # Spark: numbered within hours and periods (`streams.numbered`), not in one task
        events = fill(f"SELECT {', '.join(needed)}, :t AS _t FROM events WHERE :k IS NOT NULL", t=t, k=k)
        tables.create(_EV, numbered(events, [*kept, "_t"], [exp.column("_t")],
                                    exp.IntDiv(this=exp.column("_t"), expression=lit(HOUR))))
        periods = fill(f"SELECT DISTINCT {kq}, {start} AS _t FROM {_EV}")
        tables.create(_Q, numbered(periods, [entity, "_t"], [exp.column("_t"), k], exp.column("_t")))
    else:
        tables.create(_EV, fill(f"SELECT {', '.join(needed)}, :t AS _t, row_number() OVER () AS _pos FROM events "
                                "WHERE :k IS NOT NULL", t=t, k=k))
        tables.create(_Q, fill(f"SELECT {kq}, _t, row_number() OVER (ORDER BY _t, {kq}) AS _pos FROM (SELECT "
                               f"DISTINCT {kq}, {start} AS _t FROM {_EV})"))
    made = [_EV, _Q]
    try:
        sides = _side(tables, dataset, entity, plan, every)
        made += list(sides)
        names = [n for group in sides.values() for n in group]
        query = exp.select(*[exp.column(c, "q", quoted=True) for c in (entity, "_t", "_pos")]).from_(
            exp.to_table(_Q).as_("q"))
        for i, (table, group) in enumerate(sides.items()):
            query = query.select(*[exp.column(n, f"s{i}", quoted=True) for n in group], append=True).join(
                exp.to_table(table).as_(f"s{i}"), on=fill("q._pos = :p", p=exp.column("_pos", f"s{i}")),
                join_type="LEFT")
        query = exp.select("*").from_(query.subquery("w"))
        for feature in dataset.features:
            if feature.sql is None:
                continue
            try:
                node = parse_visible(feature.sql, [entity, *names], (), None, f"{label}: feature '{feature.name}'")
            except RiskConsoleError as err:
                elsewhere[feature.name] = f"it reads {str(err).split(': ')[-1]}"
                continue
            query = exp.select("*", alias(node, feature.name)).from_(query.subquery("d"))
            names.append(feature.name)
        made += ["__entity_features", "__entity_labels", "__entity_table_label"]
        tables.create("__entity_features", exp.select("*", alias(fill("make_timestamp(_t)"), "period")).from_(
            query.subquery("e")))
        tables.create("__entity_labels", _labels(dataset, entity, every, horizon))
        owner = label_table(dataset, entity)
        table = tables.fetch(_rows_query(dataset, entity, names, owner, tables))
    finally:
        tables.drop(made)
    return view_of(con, table.drop_columns(["__o"]), dataset, level, names, elsewhere,
                   f"tables.{owner}" if owner is not None else "events")


def _rows_query(dataset: Dataset, entity: str, names: list[str], owner: str | None, tables: Tables) -> exp.Expression:
    """The entity frame's rows (see the module docstring): per entity-period one counted row and up to two money
    rows, ordered by period, entity and row kind (`__o`)."""
    if owner is not None:
        tables.create("__entity_table_label", table_label_query(dataset, owner, entity))
        ylab, ylt = "t.tlab", table_label_time("f.period")
        join = f"LEFT JOIN __entity_table_label AS t ON t.{_q(entity)} = f.{_q(entity)}"
    else:
        ylab, ylt, join = "l.ylab", "l.ylt", ""
    kq = _q(entity)
    picked = "".join(f", f.{_q(n)}" for n in names)
    select = (
        f"SELECT f.{kq}, f.period AS {TIME}, CAST(f.{kq} AS VARCHAR) || '@' || strftime(f.period, '%Y-%m-%dT%H:%M:%S') "
        f"AS {ID}{picked}, CAST(:lab AS TINYINT) AS {LABEL}, CAST(:lt AS TIMESTAMP) AS {LABEL_TIME}, "
        f"CAST(:amt AS DOUBLE) AS {AMOUNT}, CAST(:w AS INTEGER) AS {WEIGHT}, l.fraud AS {FRAUD_AMOUNT}, "
        f"l.good AS {GOOD_AMOUNT}, l.events AS {EVENTS}, :order AS __o "
        f"FROM __entity_features AS f JOIN __entity_labels AS l ON l._pos = f._pos {join}")
    rows = [fill(select, lab=fill(ylab), lt=fill(ylt), amt=lit(0.0), w=lit(1), order=lit(0)),
            fill(select + " WHERE l.fraud <> 0", lab=lit(1), lt=fill("l.fraud_lt"), amt=fill("l.fraud"), w=lit(0),
                 order=lit(1)),
            fill(select + " WHERE l.good <> 0", lab=lit(0), lt=fill("l.good_lt"), amt=fill("l.good"), w=lit(0),
                 order=lit(2))]
    union = rows[0]
    for part in rows[1:]:
        union = exp.union(union, part, distinct=False)
    return exp.select("*").from_(union.subquery("u")).order_by(TIME, ident(entity), "__o")


def view_of(con: duckdb.DuckDBPyConnection, table: pa.Table, dataset: Dataset, level: Level, features: list[str],
            elsewhere: dict[str, str], label_from: str) -> EntityView:
    """The view over an entity frame's rows: its column types as DuckDB reads them, and its roles."""
    con.register("__entity_frame_types", table)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE __entity_frame_types)").fetchall())
    con.unregister("__entity_frame_types")
    frame = Frame(types, {}, HIDDEN, weight=WEIGHT)
    roles = dataset.columns.model_copy(update={
        "id": ID, "time": TIME, "label": LABEL, "label_time": LABEL_TIME, "amount": AMOUNT, "entities": [level.entity],
        "label_derived": [], "prod_action": None, "explore": None, "propensity": None})
    view_dataset = dataset.model_copy(update={"columns": roles, "features": [], "streams": {}, "tables": {}})
    return EntityView(level, table, frame, view_dataset, features, elsewhere, label_from)


# ---------------------------------------------------------------- kept between processes

CACHE_DIR = Path("data") / "cache" / "entities"
_META_KEY = b"riskconsole.entities"


def cache_name(version: str, dataset: Dataset, level: Level) -> str:
    """The file name of a level's frame for one load (`_meta.version`) and dataset spec: any change is a new name."""
    spec = json.dumps([dataset.model_dump(mode="json", by_alias=True),
                       [level.entity, level.every_seconds, level.horizon_seconds]], sort_keys=True, default=str)
    return f"{version}-{hashlib.sha256(spec.encode()).hexdigest()[:20]}.parquet"


def save(path: Path, view: EntityView) -> None:
    """Write the frame atomically (a reader sees the old file or the whole new one); files of other loads go."""
    meta = json.dumps({"features": view.features, "elsewhere": view.elsewhere, "label_from": view.label_from})
    table = view.table.replace_schema_metadata({**(view.table.schema.metadata or {}), _META_KEY: meta.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    version = path.name.split("-", 1)[0]
    for old in path.parent.glob("*.parquet"):
        if not old.name.startswith(version + "-"):
            old.unlink(missing_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parquet")
    os.close(handle)
    try:
        os.chmod(tmp, 0o644)  # readable as the workspace's other files (mkstemp makes it private)
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_saved(con: duckdb.DuckDBPyConnection, path: Path, dataset: Dataset, level: Level) -> EntityView | None:
    """The frame saved under `path`, or None (no file, or one this version cannot read: it is then rebuilt)."""
    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[_META_KEY])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None
    return view_of(con, table.replace_schema_metadata(None), dataset, level, meta["features"], meta["elsewhere"],
                   meta["label_from"])
