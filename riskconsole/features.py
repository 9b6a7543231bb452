"""Point-in-time features, compiled to DuckDB window SQL: an event never sees itself or its future.

- Window feature: aggregate of the same entity's events with time in [t - window, t).
- Label feature (`sum|avg|count: label` with `label_delay: d`): known labels of the same
  entity's events with time in [t - d - window, t - d) and, where label_time is mapped,
  label_time < t. Computed as a sweep over label "arrivals" and "expiries" so the
  label_time condition (which depends on the current row) stays exact.
- Derived feature (`sql:`): a checked expression over columns and earlier features.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from riskconsole.config import LABEL_AGGS, Dataset, Feature, duration_seconds
from riskconsole.errors import ConfigError
from riskconsole.expressions import parse_visible
from riskconsole.names import internal_collision
from riskconsole.sqlbuild import alias, fill, ident, render

US = 1_000_000  # microseconds per second: windows compare integer epoch microseconds
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "FLOAT", "DOUBLE", "BOOLEAN")
# Events without an entity each get a partition of their own (`_pos`), so they neither see each other
# nor form one huge partition; their feature is NULL anyway.
_WINDOW = ("OVER (PARTITION BY :by, CASE WHEN :by IS NULL THEN _pos END ORDER BY _t "
           "RANGE BETWEEN :n PRECEDING AND 1 PRECEDING)")
_WINDOW_TEMPLATES = {
    "count": f"coalesce(count(:x) {_WINDOW}, 0)",
    "count_star": f"coalesce(count(*) {_WINDOW}, 0)",
    "sum": f"coalesce(sum(:x) {_WINDOW}, 0)",
    "avg": f"avg(CAST(:x AS DOUBLE)) {_WINDOW}",
    "min": f"min(:x) {_WINDOW}",
    "max": f"max(:x) {_WINDOW}",
    "count_distinct": f"coalesce(array_length(list_distinct(array_agg(:x) {_WINDOW})), 0)",
}


def micros(node: exp.Expression) -> exp.Expression:
    """Integer epoch microseconds of a timestamp: `epoch_us` in DuckDB, `unix_micros` in Spark."""
    return exp.UnixMicros(this=node)


def is_label_feature(feature: Feature, dataset: Dataset) -> bool:
    """True when the feature aggregates the label column (by name or the `label` alias)."""
    label = dataset.columns.label
    return label is not None and feature.of is not None and _source(feature.of, dataset) == label


def _source(name: str, dataset: Dataset) -> str:
    """Resolve the role aliases `label` and `amount` to their source columns."""
    roles = {"label": dataset.columns.label, "amount": dataset.columns.amount}
    return roles.get(name) or name


def check_features(dataset: Dataset, types: dict[str, str], label: str) -> None:
    """Refuse features over missing, hidden or non-numeric columns, before any SQL runs."""
    known = set(types)
    hidden = set(dataset.hidden_columns)
    for feature in dataset.features:
        where = f"{label}: feature '{feature.name}'"
        collision = internal_collision(feature.name, label, "feature", fix="give the feature another name")
        if collision:
            raise ConfigError(collision)
        if feature.name in types:
            raise ConfigError(f"{where}: a source column has that name already (rename the feature)")
        known.add(feature.name)
        if feature.sql is not None:
            continue
        _check_window_feature(feature, dataset, types, hidden, where)


def _check_window_feature(feature: Feature, dataset: Dataset, types: dict[str, str], hidden: set[str],
                          where: str) -> None:
    by, of = feature.by, feature.of
    if by not in types:
        raise ConfigError(f"{where}: by: unknown column '{by}' (columns: {', '.join(sorted(types))})")
    if by in hidden:
        raise ConfigError(f"{where}: by: '{by}' is a label column; group by an entity instead")
    if of == "*":
        if feature.agg != "count":
            raise ConfigError(f"{where}: only count takes '*' (name a column for {feature.agg})")
        return
    column = _source(of, dataset)
    if column not in types:
        raise ConfigError(f"{where}: {feature.agg}: unknown column '{of}' (columns: {', '.join(sorted(types))})")
    if is_label_feature(feature, dataset):
        _check_label_feature(feature, dataset, where)
    elif column in hidden:
        raise ConfigError(f"{where}: '{of}' is the label or derived from it; only sum/avg/count of the label "
                          "with label_delay may read it")
    elif feature.label_delay is not None:
        raise ConfigError(f"{where}: label_delay is only for label features (sum/avg/count of the label)")
    if feature.agg in ("sum", "avg") and not types[column].upper().startswith(NUMERIC) \
            and not types[column].upper().startswith("DECIMAL"):
        raise ConfigError(f"{where}: {feature.agg} needs a numeric column, '{of}' is {types[column]}")


def _check_label_feature(feature: Feature, dataset: Dataset, where: str) -> None:
    if feature.agg not in LABEL_AGGS:
        raise ConfigError(f"{where}: a label feature takes {', '.join(LABEL_AGGS)}, not {feature.agg}")
    if feature.label_delay is None and dataset.columns.label_time is None:
        raise ConfigError(f"{where}: needs label_delay (no label_time column is mapped, so recent labels "
                          "would leak the future)")


def window_column(feature: Feature, dataset: Dataset) -> exp.Expression:
    """The window-aggregate expression of one non-label feature (NULL where the entity is NULL)."""
    of = feature.of
    key = "count_star" if of == "*" else feature.agg
    nodes = {"by": ident(feature.by), "n": duration_seconds(feature.window) * US}
    if of != "*":
        nodes["x"] = ident(_source(of, dataset))
    value = fill(_WINDOW_TEMPLATES[key], **nodes)
    return fill("CASE WHEN :by IS NULL THEN NULL ELSE :v END", by=ident(feature.by), v=value)


def label_feature_query(feature: Feature, dataset: Dataset, base: str) -> exp.Expression:
    """A query (`_pos`, value) for a label feature, as a sweep over label arrivals and expiries.

    A labelled event e' at time s' with label time l' counts for the events at t with
    max(s' + d, l') < t <= s' + d + w: an arrival record at max(s'+d, l') and an expiry
    at s'+d+w; queries sort before records at the same instant, so "before" is strict.
    """
    delay = duration_seconds(feature.label_delay or "0s") * US if feature.label_delay else 0
    span = delay + duration_seconds(feature.window) * US
    start = fill("_t + :d", d=delay)
    if dataset.columns.label_time:
        start = fill("greatest(:s, coalesce(:lt, :s))", s=start, lt=micros(ident(dataset.columns.label_time)))
    by, lab = ident(feature.by), ident(dataset.columns.label)
    keyed = exp.select(alias(by, "k"), "_t", "_pos", alias(fill("CAST(:l AS INTEGER)", l=lab), "v"),
                       alias(start, "s"), alias(fill("_t + :span", span=span), "e")).from_(base).where(
        fill(":b IS NOT NULL", b=by))
    value = {"sum": "coalesce(sv, 0)", "count": "coalesce(sc, 0)", "avg": "sv / nullif(sc, 0)"}[feature.agg]
    template = (
        "WITH r AS (SELECT k, s, e, v FROM keyed WHERE v IS NOT NULL AND s < e), "
        "sweep AS ("
        "  SELECT k, _t AS t, 0 AS kind, _pos, 0 AS dv, 0 AS dc FROM keyed"
        "  UNION ALL SELECT k, s, 1, NULL, v, 1 FROM r"
        "  UNION ALL SELECT k, e, 1, NULL, -v, -1 FROM r), "
        "run AS (SELECT kind, _pos, sum(dv) OVER w AS sv, sum(dc) OVER w AS sc FROM sweep "
        "  WINDOW w AS (PARTITION BY k ORDER BY t, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) "
        "SELECT _pos, CAST(:value AS DOUBLE) AS v FROM run WHERE kind = 0")
    query = fill(template, value=fill(value))
    cte = exp.CTE(this=keyed, alias=exp.TableAlias(this=exp.to_identifier("keyed")))
    query.args["with_"].expressions.insert(0, cte)  # `keyed` must come before the CTEs that read it
    return query


def frame_query(dataset: Dataset, columns: list[str], label: str, base: str = "_frame_base",
                label_tables: dict[str, str] | None = None) -> exp.Expression:
    """The SELECT that builds the frame: base columns, window features, label features, derived features.

    Args:
        dataset: the dataset spec.
        columns: the source columns of `events`.
        label: how to name the dataset file in errors.
        base: table holding events plus `_t` (epoch µs) and `_pos` (row number in time order).
        label_tables: feature name -> table of (`_pos`, `v`) computed by `label_feature_query`.
    """
    label_tables = label_tables or {}
    windows = [alias(window_column(f, dataset), f.name) for f in dataset.features
               if f.sql is None and f.name not in label_tables]
    query = exp.select("*", *windows).from_(exp.to_table(base))
    for name, table in label_tables.items():
        query = exp.select("q.*", alias(exp.column("v", table="l"), name)).from_(query.subquery("q")).join(
            exp.to_table(table).as_("l"), using=["_pos"], join_type="LEFT")
    known = list(columns) + [f.name for f in dataset.features if f.sql is None]
    hidden = set(dataset.hidden_columns)
    for feature in dataset.features:
        if feature.sql is None:
            continue
        where = f"{label}: feature '{feature.name}'"
        visible = [c for c in known if c not in hidden]
        node = parse_visible(feature.sql, visible, tuple(hidden), None, where)
        query = exp.select("*", alias(node, feature.name)).from_(query.subquery("d"))
        known.append(feature.name)
    return query.order_by("_pos")


def _blame(con: duckdb.DuckDBPyConnection, dataset: Dataset, columns: list[str], label: str,
           label_tables: dict[str, str]) -> None:
    """Name the first derived feature whose SQL does not bind (the frame query failed as a whole)."""
    derived = [f for f in dataset.features if f.sql is not None]
    for i, feature in enumerate(derived):
        upto = [f for f in dataset.features if f.sql is None] + derived[:i + 1]
        query = frame_query(dataset.model_copy(update={"features": upto}), columns, label, label_tables=label_tables)
        try:
            con.execute("DESCRIBE " + render(query))
        except duckdb.Error as err:
            raise ConfigError(f"{label}: feature '{feature.name}': {str(err).splitlines()[0]}") from None


def build_frame(con: duckdb.DuckDBPyConnection, dataset: Dataset, label: str) -> list[str]:
    """Create table `frame` = events + `_pos` + every feature; return the feature names.

    Runs inside the caller's transaction.
    """
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    check_features(dataset, types, label)
    id_col, time_col = dataset.columns.id, dataset.columns.time
    con.execute(render(fill(
        "CREATE OR REPLACE TEMP TABLE _frame_base AS SELECT *, :micros AS _t, "
        "row_number() OVER (ORDER BY :time, :id) AS _pos FROM events", micros=micros(ident(time_col)),
        time=ident(time_col), id=ident(id_col))))
    label_tables = {}
    for i, feature in enumerate(f for f in dataset.features if f.sql is None and is_label_feature(f, dataset)):
        table = f"_label_feature_{i}"
        query = label_feature_query(feature, dataset, "_frame_base")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {render(query)}")
        label_tables[feature.name] = table
    query = frame_query(dataset, list(types), label, label_tables=label_tables)
    try:
        con.execute(f"CREATE OR REPLACE TABLE frame AS {render(query)}")
    except duckdb.BinderException as err:
        _blame(con, dataset, list(types), label, label_tables)
        raise ConfigError(f"{label}: features: {str(err).splitlines()[0]}") from None
    con.execute("ALTER TABLE frame DROP COLUMN _t")
    for table in [*label_tables.values(), "_frame_base"]:
        con.execute(f"DROP TABLE {table}")
    return [f.name for f in dataset.features]
