"""Point-in-time features, compiled to DuckDB window SQL: an event never sees itself or its future.

- Window feature: aggregate of the same entity's events with time in [t - window, t).
- Label feature (`sum|avg|count: label` with `label_delay: d`): known labels of the same
  entity's events with time in [t - d - window, t - d) and, where label_time is mapped,
  label_time < t. Computed as a sweep over label "arrivals" and "expiries" so the
  label_time condition (which depends on the current row) stays exact.
- Derived feature (`sql:`): a checked expression over columns and earlier features.
- First seen (`first_seen: col, by: key`): 1 when the (key, col) pair has no event in [t - window, t) (a count == 0).
- Graph features (`graph:`): riskconsole/graphs.py, joined like the stream and lookup side tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import duckdb
from sqlglot import exp
from sqlglot.errors import SqlglotError

from riskconsole.config import LABEL_AGGS, Dataset, Feature, duration_seconds
from riskconsole.errors import ConfigError, ExpressionError, RiskConsoleError
from riskconsole.expressions import parse_visible, referenced_columns
from riskconsole.graphs import check_graph_feature, graph_side_table
from riskconsole.lookups import check_lookup, check_table, lookup_groups, lookup_query
from riskconsole.names import internal_collision
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.streams import (HOUR, NUMERIC, US, _source, aggregate, any_null, check_keys, check_stream_feature,  # noqa: F401
                                 empty_value, filtered, is_label_feature, micros, numbered, stream_groups,
                                 stream_query, unknown_column)

GRAPH_TABLE = "_graph_features"
WINDOW_TABLE = "_window_features"  # the decision stream's own windows, one row per event

# Events without an entity each get a partition of their own (`_pos`), so they neither see each other
# nor form one huge partition; their feature is NULL anyway (a compound key's: the empty window's value).


def per_event(dataset: Dataset, columns: list[str], label: str) -> dict[str, exp.Expression]:
    """`sql:` features a decision-stream window reads (its `of:`, `first_seen:` or a `by:` key): each is computed per
    event, before the windows, from the event's own columns (`hour(ts)` for the user's usual hour). One that reads
    another feature is an error naming the fix."""
    derived = {f.name: f for f in dataset.features if f.sql is not None}
    read = []
    for f in dataset.features:
        if f.from_ is None and f.sql is None and f.lookup is None and f.graph is None:
            read += [f.of, f.first_seen, *f.keys]
    out: dict[str, exp.Expression] = {}
    hidden = set(dataset.hidden_columns)
    for name in dict.fromkeys(n for n in read if n in derived):
        where = f"{label}: feature '{name}'"
        visible = [c for c in columns if c not in hidden]
        try:
            out[name] = parse_visible(derived[name].sql, visible, tuple(hidden), None, where,
                                      roles=dataset.columns.role_columns())
        except ExpressionError as err:
            raise ExpressionError(f"{err} (a window aggregates it, so it is computed per event from the event's own "
                                  "columns: it may not read other features)") from None
    return out


def check_features(dataset: Dataset, types: dict[str, str], label: str,
                   others: dict[str, dict[str, str]] | None = None) -> None:
    """Refuse features over missing, hidden or non-numeric columns, before any SQL runs.

    Args:
        dataset: the dataset spec.
        types: column -> type of the decision events.
        label: how to name the dataset file in errors.
        others: loaded table (`stream_NAME`, `table_NAME`) -> its column types.
    """
    others = others or {}
    for name in dataset.tables:
        check_table(dataset, name, types, others.get(f"table_{name}", {}), label)
    per = per_event(dataset, list(types), label)
    own = dict(types)  # the events' own columns: what a decision window's `where:` reads
    types = {**types, **{name: "DOUBLE" for name in per}}  # typed by DuckDB when the frame binds
    known = set(types) - set(per)
    hidden = set(dataset.hidden_columns)
    for feature in dataset.features:
        where = f"{label}: feature '{feature.name}'"
        collision = internal_collision(feature.name, label, "feature", fix="give the feature another name")
        if collision:
            raise ConfigError(collision)
        same = [c for c in known if c.casefold() == feature.name.casefold()]  # DuckDB names ignore case
        if same:
            what = "a source column" if same[0] in types else f"feature '{same[0]}'"
            raise ConfigError(f"{where}: {what} has that name already (names differ by more than letter case in "
                              "SQL; rename the feature)")
        known.add(feature.name)
        if feature.sql is not None:
            continue
        if feature.lookup is not None:
            table = feature.lookup.split(".")[0]
            check_lookup(feature, others.get(f"table_{table}", {}), where, dataset.tables[table])
        elif feature.from_ is not None:
            stream = others.get(f"stream_{feature.from_}", {})
            check_stream_feature(feature, types, stream, where)
            check_filter(feature, stream, set(), where)
        elif feature.graph is not None:
            check_graph_feature(feature, dataset, types, others, where)
        elif feature.first_seen is not None:
            _check_first_seen(feature, types, hidden, where)
        else:
            _check_window_feature(feature, dataset, types, hidden, where)
            check_filter(feature, own, hidden, where)


def check_filter(feature: Feature, types: dict[str, str], hidden: set[str], where: str) -> None:
    """A window's `where:` is a true/false expression over the aggregated rows' own columns (`types`), never the
    label: checked with the expression checker, then bound by DuckDB over typed empty columns, before any SQL runs.

    Raises:
        ConfigError: one line naming the feature and the fix.
    """
    if feature.where is None:
        return
    where = f"{where}: where"
    visible = [c for c in types if c not in hidden]
    node = parse_visible(feature.where, visible, tuple(hidden), None, where)
    try:
        row = exp.select(*[alias(exp.cast(exp.null(), exp.DataType.build(types[c], dialect="duckdb")), c)
                           for c in sorted(referenced_columns(node))] or [alias(lit(1), "_")])
    except SqlglotError:
        return  # a type sqlglot cannot spell: the frame query binds it at load, naming the feature
    from riskconsole.binding import run_problem, type_mismatch
    from riskconsole.limits import query_time_limit
    from riskconsole.workspace import safe_connection

    con = safe_connection()  # the filter now runs (on a row of NULLs): no file access, settings locked
    try:
        try:
            dtype = con.execute("DESCRIBE " + render(exp.select(alias(node, "v")).from_(row.subquery("r")))
                                ).fetchall()[0][1]
        except duckdb.Error as err:
            raise ConfigError(f"{where}: {type_mismatch(con, row, node, err)}") from None
        if dtype not in ("BOOLEAN", '"NULL"', "NULL"):
            raise ConfigError(f"{where}: must be true/false, but gives {dtype} (add a comparison, e.g. "
                              "`status = 'failed'`)")
        with query_time_limit(con, where):  # the user's filter runs: under the limit of every such query
            why = run_problem(con, row, node)
        if why is not None:
            raise ConfigError(f"{where}: {why}")
    finally:
        con.close()


def _check_window_feature(feature: Feature, dataset: Dataset, types: dict[str, str], hidden: set[str],
                          where: str) -> None:
    check_keys(feature, types, None, "", where)
    for key in feature.keys:
        if key in hidden:
            raise ConfigError(f"{where}: by: '{key}' is a label column; group by an entity instead")
    of = feature.of
    if of == "*":
        if feature.agg != "count":
            raise ConfigError(f"{where}: only count takes '*' (name a column for {feature.agg})")
        return
    column = _source(of, dataset)
    if column not in types:
        raise ConfigError(f"{where}: {feature.agg}: {unknown_column(of, types)}")
    if is_label_feature(feature, dataset):
        _check_label_feature(feature, dataset, where)
    elif column in hidden:
        raise ConfigError(f"{where}: '{of}' is the label or derived from it; only sum/avg/count of the label "
                          "with label_delay may read it")
    elif feature.label_delay is not None:
        raise ConfigError(f"{where}: label_delay is only for label features (sum/avg/count of the label)")
    if feature.agg in ("sum", "avg", "stddev") and not types[column].upper().startswith(NUMERIC):
        raise ConfigError(f"{where}: {feature.agg} needs a numeric column, '{of}' is {types[column]}")


def _check_first_seen(feature: Feature, types: dict[str, str], hidden: set[str], where: str) -> None:
    check_keys(feature, types, None, "", where)
    column = feature.first_seen
    if column not in types:
        raise ConfigError(f"{where}: first_seen: {unknown_column(column, types)}")
    if column in hidden or set(feature.keys) & hidden:
        raise ConfigError(f"{where}: first_seen reads the label or a column derived from it; name an entity")
    if column in feature.keys:
        raise ConfigError(f"{where}: first_seen: '{column}' is also in by (name the value and the entity it is new "
                          "for, e.g. first_seen: device_id, by: user_id)")


def first_seen_column(feature: Feature) -> exp.Expression:
    """1 when the (by, value) pair has no decision event in [t - window, t), else 0; NULL when a part is NULL."""
    keys = [*feature.keys, feature.first_seen]
    count = Feature(name=feature.name, count="*", by=keys if len(keys) > 1 else keys[0], window=feature.window)
    null = any_null(keys)
    value = aggregate(count, None, [ident(k) for k in keys], own=True, null=null)
    return fill("CASE WHEN :null THEN NULL WHEN :v = 0 THEN 1 ELSE 0 END", null=null, v=value)


def _check_label_feature(feature: Feature, dataset: Dataset, where: str) -> None:
    if not isinstance(feature.by, str):
        raise ConfigError(f"{where}: a label feature groups by one column (by: user_id), not by a list or all rows")
    if feature.agg not in LABEL_AGGS:
        raise ConfigError(f"{where}: a label feature takes {', '.join(LABEL_AGGS)}, not {feature.agg}")
    if feature.where is not None:
        raise ConfigError(f"{where}: where: a label feature counts every known label of the entity; filter with a "
                          "window feature of the events instead")
    if feature.label_delay is None and dataset.columns.label_time is None:
        raise ConfigError(f"{where}: needs label_delay (no label_time column is mapped, so recent labels "
                          "would leak the future)")


def window_column(feature: Feature, dataset: Dataset) -> exp.Expression:
    """The window-aggregate expression of one decision-stream feature.

    One key: NULL where the entity is NULL. A compound key: the empty window's value (count 0) where a part is
    NULL. No key: every event.
    """
    if feature.first_seen is not None:
        return first_seen_column(feature)
    keys = feature.keys
    x = filtered(None if feature.of == "*" else ident(_source(feature.of, dataset)), feature)
    null = any_null(keys)
    value = aggregate(feature, x, [ident(k) for k in keys], own=True, null=null)
    if not keys:
        return value
    fallback = exp.null() if isinstance(feature.by, str) else empty_value(feature)
    return fill("CASE WHEN :null THEN :e ELSE :v END", null=null, e=fallback, v=value)


def label_feature_query(feature: Feature, dataset: Dataset, base: str, queries: str | None = None) -> exp.Expression:
    """A query (`_pos`, v) for one label feature: `label_features_query` of it alone."""
    return label_features_query([feature], dataset, base, queries, names=["v"])


def label_key(feature: Feature) -> tuple:
    """Label features with the same key share one sweep: (by, label_delay, window)."""
    return feature.by, feature.label_delay, feature.window


def label_features_query(features: list[Feature], dataset: Dataset, base: str, queries: str | None = None,
                         names: list[str] | None = None) -> exp.Expression:
    """A query (`_pos`, one column per feature) for label features of one `label_key`, as one sweep over label
    arrivals and expiries.

    A labelled event e' at time s' with label time l' counts for the events at t with
    max(s' + d, l') < t <= s' + d + w: an arrival record at max(s'+d, l') and an expiry
    at s'+d+w; queries sort before records at the same instant, so "before" is strict.
    The query rows are those of `base` unless `queries` names another table (with the key column, `_t`, `_pos`).
    """
    feature = features[0]
    delay = duration_seconds(feature.label_delay or "0s") * US if feature.label_delay else 0
    span = delay + duration_seconds(feature.window) * US
    start = fill("_t + :d", d=delay)
    if dataset.columns.label_time:
        start = fill("greatest(:s, coalesce(:lt, :s))", s=start, lt=micros(ident(dataset.columns.label_time)))
    by, lab = ident(feature.by), ident(dataset.columns.label)
    keyed = exp.select(alias(by, "k"), "_t", "_pos", alias(fill("CAST(:l AS INTEGER)", l=lab), "v"),
                       alias(start, "s"), alias(fill("_t + :span", span=span), "e")).from_(base).where(
        fill(":b IS NOT NULL", b=by))
    formula = {"sum": "coalesce(sv, 0)", "count": "coalesce(sc, 0)", "avg": "sv / nullif(sc, 0)"}
    values = [alias(fill("CAST(:value AS DOUBLE)", value=fill(formula[f.agg])), name)
              for f, name in zip(features, names or [f.name for f in features])]
    template = (
        "WITH r AS (SELECT k, s, e, v FROM keyed WHERE v IS NOT NULL AND s < e), "
        "sweep AS ("
        "  SELECT k, _t AS t, 0 AS kind, _pos, 0 AS dv, 0 AS dc FROM :queries"
        "  UNION ALL SELECT k, s, 1, NULL, v, 1 FROM r"
        "  UNION ALL SELECT k, e, 1, NULL, -v, -1 FROM r), "
        "run AS (SELECT kind, _pos, sum(dv) OVER w AS sv, sum(dc) OVER w AS sc FROM sweep "
        "  WINDOW w AS (PARTITION BY k ORDER BY t, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) "
        "SELECT _pos FROM run WHERE kind = 0")
    asked = exp.to_table("keyed") if queries is None else exp.select(alias(by, "k"), "_t", "_pos").from_(
        queries).where(fill(":b IS NOT NULL", b=by)).subquery("q")
    query = fill(template, queries=asked).select(*values, append=True)
    cte = exp.CTE(this=keyed, alias=exp.TableAlias(this=exp.to_identifier("keyed")))
    query.args["with_"].expressions.insert(0, cte)  # `keyed` must come before the CTEs that read it
    return query


def frame_query(dataset: Dataset, columns: list[str], label: str, base: str = "_frame_base",
                label_tables: dict[str, str] | None = None,
                joins: dict[str, list[Feature]] | None = None,
                per: dict[str, exp.Expression] | None = None, side: str | None = None) -> exp.Expression:
    """The SELECT that builds the frame: base columns, window features, label features, derived features.

    Args:
        dataset: the dataset spec.
        columns: the source columns of `events`.
        label: how to name the dataset file in errors.
        base: table holding events plus `_t` (epoch µs) and `_pos` (row number in time order).
        label_tables: feature name -> table of (`_pos`, `v`) computed by `label_feature_query`.
        joins: table of (`_pos`, one column per feature) -> its features (stream windows, lookups); an event
            missing there gets the empty window's value (count 0) or NULL.
        per: the `per_event` features, already columns of `base` (computed here when not given).
        side: a table (`_pos`, every side value) joined by `side_value_steps`; when not given, the side tables are
            joined here.
    """
    label_tables, joins = label_tables or {}, joins or {}
    elsewhere = set(label_tables) | {f.name for group in joins.values() for f in group}
    windows = window_columns(dataset, window_features(dataset, elsewhere))
    query = exp.select("*", *windows).from_(exp.to_table(base))
    items = side_values(label_tables, joins)
    values = [name for _, named in items for name, _ in named]
    # the side tables joined here in one step, unless `frame_plan` joined them in steps first
    narrow = exp.to_table(side).as_("n") if side else narrow_join(
        exp.select("b._pos").from_(exp.to_table(base).as_("b")), items).subquery("n")
    if values:  # the narrow row of every side value meets the wide event row in one join
        query = exp.select("q.*", *[exp.column(v, "n", quoted=True) for v in values]).from_(
            query.subquery("q")).join(narrow, using=["_pos"], join_type="LEFT")
    per = per_event(dataset, columns, label) if per is None else per  # already columns of `base`
    known = list(columns) + list(per) + [f.name for f in dataset.features if f.sql is None]
    hidden = set(dataset.hidden_columns)
    for feature in dataset.features:
        if feature.sql is None or feature.name in per:
            continue
        where = f"{label}: feature '{feature.name}'"
        visible = [c for c in known if c not in hidden]
        node = parse_visible(feature.sql, visible, tuple(hidden), None, where, roles=dataset.columns.role_columns())
        query = exp.select("*", alias(node, feature.name)).from_(query.subquery("d"))
        known.append(feature.name)
    return query.order_by("_pos")


JOIN_STEP = 4  # side tables joined per step


def side_values(label_tables: dict[str, str], joins: dict[str, list[Feature]],
                ) -> list[tuple[str, list[tuple[str, Feature | None]]]]:
    """(table, its values as (name, feature)) of every side table, in the frame's order (a label table: None)."""
    return ([(table, [(name, None)]) for name, table in label_tables.items()]
            + [(table, [(f.name, f) for f in features]) for table, features in joins.items()])


def narrow_join(query: exp.Select, items: list[tuple[str, list[tuple[str, Feature | None]]]]) -> exp.Select:
    """`query` (rows with `_pos`) LEFT JOINed to each side table of `items`, selecting their values."""
    for i, (table, named) in enumerate(items):
        query = query.join(exp.to_table(table).as_(f"s{i}"), using=["_pos"], join_type="LEFT")
        for name, feature in named:
            value = exp.column("v", f"s{i}") if feature is None else _or_empty(
                exp.column(name, f"s{i}", quoted=True), feature, table)
            query = query.select(alias(value, name), append=True)
    return query


def side_value_steps(label_tables: dict[str, str], joins: dict[str, list[Feature]], base: str = "_frame_base",
                     ) -> list[tuple[str, exp.Expression]]:
    """Steps joining every side table to the events' positions, `JOIN_STEP` tables a step.

    One query joining them all would hold every side table's hash table at once (DuckDB builds all of a probe
    pipeline's before probing): under a memory limit each then spills. The last step's table holds every value.
    """
    items = side_values(label_tables, joins)
    steps: list[tuple[str, exp.Expression]] = []
    for start in range(0, len(items), JOIN_STEP):
        rows = exp.select("p._pos").from_(exp.to_table(base).as_("p")) if not steps else \
            exp.select("p.*").from_(exp.to_table(steps[-1][0]).as_("p"))
        steps.append((f"_side_values_{len(steps)}", narrow_join(rows, items[start:start + JOIN_STEP])))
    return steps


def window_features(dataset: Dataset, elsewhere: set[str] = frozenset()) -> list[Feature]:
    """The decision stream's own window features, except those computed in a side table (`elsewhere`: an all-rows
    window is computed by its bucketed stream query)."""
    return [f for f in dataset.features if (f.agg or f.first_seen) and f.from_ is None and f.name not in elsewhere]


def window_columns(dataset: Dataset, features: list[Feature]) -> list[exp.Expression]:
    """Those features' window aggregates, aliased by name."""
    return [alias(window_column(f, dataset), f.name) for f in features]


def _or_empty(value: exp.Expression, feature: Feature, table: str) -> exp.Expression:
    """A stream window's value, or the empty window's (count 0) for an event with no row in the join."""
    if (table == WINDOW_TABLE or feature.lookup is not None or feature.graph is not None
            or (feature.from_ is None and isinstance(feature.by, str))):
        return value  # a keyed decision window (a label feature, a distinct count): NULL where its key is
    return fill("coalesce(:v, :e)", v=value, e=empty_value(feature))


def _blame(con: duckdb.DuckDBPyConnection, dataset: Dataset, columns: list[str], label: str,
           label_tables: dict[str, str], joins: dict[str, list[Feature]]) -> None:
    """Name the first derived feature whose SQL does not bind (the frame query failed as a whole)."""
    derived = [f for f in dataset.features if f.sql is not None]
    for i, feature in enumerate(derived):
        upto = [f for f in dataset.features if f.sql is None] + derived[:i + 1]
        query = frame_query(dataset.model_copy(update={"features": upto}), columns, label, label_tables=label_tables,
                            joins=joins)
        try:
            con.execute("DESCRIBE " + render(query))
        except duckdb.Error as err:
            before = frame_query(dataset.model_copy(update={"features": upto[:-1]}), columns, label,
                                 label_tables=label_tables, joins=joins)
            raise ConfigError(f"{label}: feature '{feature.name}': {_mismatch(con, dataset, before, feature, err)}"
                              ) from None


def _mismatch(con: duckdb.DuckDBPyConnection, dataset: Dataset, before: exp.Select, feature: Feature,
              err: duckdb.Error) -> str:
    """Why a derived feature's `sql:` does not bind over the frame before it (`before`): the part and the fix."""
    from riskconsole.binding import duckdb_line, type_mismatch

    try:
        visible = [row[0] for row in con.execute("DESCRIBE " + render(before)).fetchall()]
        node = parse_visible(feature.sql, visible, tuple(dataset.hidden_columns), None, feature.name,
                             roles=dataset.columns.role_columns())
    except (duckdb.Error, RiskConsoleError):
        return duckdb_line(err)
    return type_mismatch(con, before, node, err)


def _types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> type of a table of the connection."""
    return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())


def side_queries(dataset: Dataset, base: str = "_frame_base", sweep: bool = False,
                 ) -> tuple[list[tuple[str, exp.Expression]], dict[str, str], dict[str, list[Feature]]]:
    """The side tables of the label features, stream windows and lookups, each (`_pos`, values), over `base`;
    with `sweep` (the Spark engine's plan), keyed `count_distinct`, `min`, `max` and `stddev` windows too
    (`streams.stream_query`).

    Returns (table name, query) in order, label feature -> its table, and join table -> its features.
    """
    steps: list[tuple[str, exp.Expression]] = []
    label_tables: dict[str, str] = {}
    joins: dict[str, list[Feature]] = {}
    groups: dict[tuple, list[Feature]] = {}  # label features of one (by, delay, window) share one sweep
    for feature in dataset.features:
        if feature.sql is None and is_label_feature(feature, dataset):
            groups.setdefault(label_key(feature), []).append(feature)
    for i, group in enumerate(groups.values()):
        steps.append((f"_label_feature_{i}", label_features_query(group, dataset, base)))
        joins[f"_label_feature_{i}"] = group
    for i, ((stream, keys, bucket), features) in enumerate(stream_groups(dataset, sweep).items()):
        steps.append((f"_stream_feature_{i}", stream_query(dataset, stream, keys, features, base, bucket,
                                                           sweep=sweep)))
        joins[f"_stream_feature_{i}"] = features
    for i, (name, features) in enumerate(lookup_groups(dataset).items()):
        steps.append((f"_lookup_feature_{i}", lookup_query(dataset, name, features, base)))
        joins[f"_lookup_feature_{i}"] = features
    windows = window_features(dataset, {f.name for group in joins.values() for f in group})
    if windows:  # over the events' narrow columns, not under every join (each window sorts its input)
        steps.insert(0, (WINDOW_TABLE, exp.select("_pos", *window_columns(dataset, windows)).from_(base)))
        joins = {WINDOW_TABLE: windows, **joins}
    graph_features = [f for f in dataset.features if f.graph is not None]
    if graph_features:  # computed by graphs.graph_side_table (SQL and Python), not by one query
        joins[GRAPH_TABLE] = graph_features
    return steps, label_tables, joins


@dataclass
class FramePlan:
    """The SQL that builds the frame, as ASTs every engine renders in its own dialect (DESIGN §7).

    Run in order: `base` as table `_frame_base`, each side query as its table, the graph's table, each `joined`
    query as its table, then `frame` (still holding `_t`, which the engine drops).
    """

    base: exp.Expression
    side: list[tuple[str, exp.Expression]]
    joined: list[tuple[str, exp.Expression]]  # after the graph's table: every side value joined, in steps
    frame: exp.Expression
    label_tables: dict[str, str]
    joins: dict[str, list[Feature]]

    @property
    def graph(self) -> list[Feature]:
        """Graph features: table `GRAPH_TABLE` is built by `graphs.graph_side_table`, after the side queries."""
        return self.joins.get(GRAPH_TABLE, [])


def frame_plan(dataset: Dataset, columns: list[str], label: str, sweep: bool = False) -> FramePlan:
    """Every query that builds the frame from `events` (and the stream and table tables), in order; `sweep` as in
    `streams.stream_query` (True on Spark)."""
    id_col, time_col = dataset.columns.id, dataset.columns.time
    if sweep:  # Spark: numbered within each hour, offset by the hours before (`streams.numbered`), not in one task
        base = numbered(fill("SELECT *, :micros AS _t FROM events", micros=micros(ident(time_col))),
                        [*columns, "_t"], [ident(time_col), ident(id_col)],
                        exp.IntDiv(this=exp.column("_t"), expression=lit(HOUR)))
    else:
        base = fill("SELECT *, :micros AS _t, row_number() OVER (ORDER BY :time, :id) AS _pos FROM events",
                    micros=micros(ident(time_col)), time=ident(time_col), id=ident(id_col))
    per = per_event(dataset, columns, label)
    for name, node in per.items():
        base = base.select(alias(node, name), append=True)
    side, label_tables, joins = side_queries(dataset, sweep=sweep)
    joined = side_value_steps(label_tables, joins)
    frame = frame_query(dataset, columns, label, label_tables=label_tables, joins=joins, per=per,
                        side=joined[-1][0] if joined else None)
    return FramePlan(base, side, joined, frame, label_tables, joins)


def planned_types(con: duckdb.DuckDBPyConnection, dataset: Dataset, label: str) -> list[tuple[str, str]]:
    """The frame's (column, DuckDB type) in order, as `build_frame` makes them from the connection's loaded tables,
    without reading a row: `build_frame` itself over empty copies of `events`, `stream_NAME` and `table_NAME` in a
    scratch in-memory database (a load on Spark builds the rows there, and DuckDB reads them back in these types).
    The dataset's features are checked as `build_frame` checks them."""
    home = con.execute("SELECT current_database()").fetchall()[0][0]
    names = ["events", *(f"stream_{s}" for s in dataset.streams), *(f"table_{t}" for t in dataset.tables)]
    con.execute("ATTACH ':memory:' AS __shape")
    try:
        for name in names:
            con.execute(f"CREATE TABLE __shape.{name} AS SELECT * FROM {render(exp.to_table(name))} LIMIT 0")
        con.execute("USE __shape")
        try:
            build_frame(con, dataset, label)
            return list(con.execute("SELECT column_name, column_type FROM (DESCRIBE __shape.frame)").fetchall())
        finally:
            con.execute(f"USE {render(exp.to_identifier(home, quoted=True))}")
    finally:
        con.execute("DETACH __shape")


def build_frame(con: duckdb.DuckDBPyConnection, dataset: Dataset, label: str,
                progress: Callable[[str], None] | None = None) -> list[str]:
    """Create table `frame` = events + `_pos` + every feature; return the feature names.

    Reads `events` and the `stream_NAME` / `table_NAME` tables of the dataset's streams and tables.
    Runs inside the caller's transaction. `progress` gets a line per step (its features and seconds): a 10M
    load runs for many minutes, and a user (or we) should see which features take them.
    """
    types = _types(con, "events")
    others = {t: _types(con, t) for t in [*(f"stream_{s}" for s in dataset.streams),
                                          *(f"table_{t}" for t in dataset.tables)]}
    check_features(dataset, types, label, others)
    plan = frame_plan(dataset, list(types), label)
    steps = [("_frame_base", plan.base), *plan.side]
    total = len(steps) + bool(plan.graph) + bool(plan.joined) + 1  # side steps, the graph's, the joins, the frame

    def step(n: int, what: str, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        run()
        if progress is not None:
            progress(f"  features {n}/{total}: {what} ({time.perf_counter() - started:.1f} s)")

    def named(table: str) -> str:
        names = [f.name for f in plan.joins.get(table, [])]
        return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    for n, (table, query) in enumerate(steps, start=1):
        what = "the events numbered, per-event values" if table == "_frame_base" else named(table)
        step(n, what, lambda: con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {render(query)}"))
    if plan.graph:
        step(len(steps) + 1, named(GRAPH_TABLE),
             lambda: graph_side_table(con, dataset, plan.graph, "_frame_base", GRAPH_TABLE))
    if plan.joined:
        def join() -> None:
            for table, query in plan.joined:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {render(query)}")
        step(total - 1, f"the {len(plan.joins) + len(plan.label_tables)} side tables joined", join)
    try:
        step(total, "the frame: events, side values, derived features",
             lambda: con.execute(f"CREATE OR REPLACE TABLE frame AS {render(plan.frame)}"))
    except duckdb.BinderException as err:
        _blame(con, dataset, list(types), label, plan.label_tables, plan.joins)
        raise ConfigError(f"{label}: features: {str(err).splitlines()[0]}") from None
    con.execute("ALTER TABLE frame DROP COLUMN _t")
    for table in [*plan.label_tables.values(), *plan.joins, *(t for t, _ in plan.joined), "_frame_base"]:
        con.execute(f"DROP TABLE {table}")
    return [f.name for f in dataset.features]
