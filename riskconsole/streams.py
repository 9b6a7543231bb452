"""Window features over context streams (`from: S`), compound keys and by-less windows (DESIGN §2.1).

A stream feature of a decision event at t aggregates S's rows with the same key and time in [t - window, t).
It is computed as one union per (stream, key): the decision events are query rows (values NULL), the stream's
rows are data rows, and a `RANGE BETWEEN n PRECEDING AND 1 PRECEDING` window over the union aggregates only the
data rows (every aggregate skips NULLs) — ties at the same instant are never "before", and the SQL has no
`EXCLUDE` or engine-only construct, so it transpiles to Spark unchanged.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from riskconsole.config import Dataset, Feature, duration_seconds
from riskconsole.errors import ConfigError
from riskconsole.expressions import parse_expression
from riskconsole.sqlbuild import alias, fill, ident, lit

US = 1_000_000  # microseconds per second
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "FLOAT", "DOUBLE", "BOOLEAN", "DECIMAL")
# `{w}` is the OVER clause; count and sum of an empty window are 0, the others NULL
AGGREGATES = {
    "count": "coalesce(count(:x) {w}, 0)",
    "count_star": "coalesce(count(*) {w}, 0)",
    "sum": "coalesce(sum(:x) {w}, 0)",
    "avg": "avg(CAST(:x AS DOUBLE)) {w}",
    "min": "min(:x) {w}",
    "max": "max(:x) {w}",
    # DuckDB's DISTINCT window aggregate (a segment tree): the list form this replaces held each row's whole window
    # as a list, O(K^2) for a key with K rows in a window (a 20k-row parcel locker: 2 GB, out of memory)
    "count_distinct": "coalesce(count(DISTINCT :x) {w}, 0)",
    "stddev": "stddev_samp(CAST(:x AS DOUBLE)) {w}",
}
ZERO_WHEN_EMPTY = ("count", "sum", "count_distinct")


def micros(node: exp.Expression) -> exp.Expression:
    """Integer epoch microseconds of a timestamp: `epoch_us` in DuckDB, `unix_micros` in Spark."""
    return exp.UnixMicros(this=node)


def over(n_keys: int, own_partition: bool = False) -> str:
    """The OVER clause text for keys `:k0 … :kN` and look-back `:n` µs (a trusted template, no user text).

    With `own_partition`, rows with a NULL key part (`:null`) each get a partition of their own.
    """
    parts = [f":k{i}" for i in range(n_keys)]
    if own_partition and n_keys:
        parts.append("CASE WHEN :null THEN _pos END")
    partition = f"PARTITION BY {', '.join(parts)} " if parts else ""
    return f"OVER ({partition}ORDER BY _t RANGE BETWEEN :n PRECEDING AND 1 PRECEDING)"


def any_null(keys: list[str], table: str | None = None) -> exp.Expression:
    """`a IS NULL OR b IS NULL …` over the key columns (FALSE when there is none)."""
    tests = [fill(":c IS NULL", c=exp.column(k, table=table, quoted=True)) for k in keys]
    return exp.or_(*tests) if tests else exp.false()


def aggregate(feature: Feature, x: exp.Expression | None, keys: list[exp.Expression], own: bool = False,
              null: exp.Expression | None = None) -> exp.Expression:
    """One window aggregate of `x` (None: count(*)) over `keys` with the feature's window."""
    kind = "count_star" if x is None else feature.agg
    template = AGGREGATES[kind].replace("{w}", over(len(keys), own))
    nodes: dict = {f"k{i}": k for i, k in enumerate(keys)}
    nodes["n"] = duration_seconds(feature.window) * US
    if x is not None:
        nodes["x"] = x
    if own and keys:
        nodes["null"] = null
    return fill(template, **nodes)


def filter_columns(feature: Feature) -> list[str]:
    """The columns a window's `where:` names (none without one)."""
    if feature.where is None:
        return []
    return list(dict.fromkeys(c.name for c in sqlglot.parse_one(feature.where, read="duckdb").find_all(exp.Column)))


def filtered(value: exp.Expression | None, feature: Feature) -> exp.Expression | None:
    """The value a window aggregates (None: count(*)) kept only on rows where the feature's `where:` holds.

    The text was checked against the rows' columns (`features.check_features`) before any build; here it is parsed
    again by the same checker, over the columns it names, to render it. With a filter, count(*) becomes the count of
    `CASE WHEN where THEN 1 END` (every aggregate skips the NULL of a row the filter drops)."""
    if feature.where is None:
        return value
    condition = parse_expression(feature.where, columns=filter_columns(feature),
                                 where=f"feature '{feature.name}': where")
    return fill("CASE WHEN :c THEN :v END", c=condition, v=lit(1) if value is None else value)


def empty_value(feature: Feature) -> exp.Expression:
    """What an empty window gives: 0 for count, sum and count_distinct; NULL otherwise."""
    return lit(0) if feature.agg in ZERO_WHEN_EMPTY else lit(None)


def stream_groups(dataset: Dataset) -> dict[tuple, list[Feature]]:
    """Union-computed features grouped by (stream, key columns, bucket): each group is one union and one scan.

    Stream features (`from:`) and all-rows windows of the decision stream (stream None, no `by:`) are computed
    this way; an all-rows window is partitioned by time buckets of its own length (`bucket`, in µs), so it runs
    in many small partitions instead of one.
    """
    groups: dict[tuple, list[Feature]] = {}
    for feature in dataset.features:
        if not feature.agg or (feature.from_ is None and feature.keys):
            continue  # lookups, derived, graph and first_seen features are computed elsewhere
        bucket = None if feature.keys else duration_seconds(feature.window) * US
        groups.setdefault((feature.from_, tuple(feature.keys), bucket), []).append(feature)
    return groups


def _rows(dataset: Dataset, stream: str | None, keys: tuple[str, ...], features: list[Feature],
          base: str) -> exp.Select:
    """Data rows of the union: keys, `_t`, `_pos` NULL and the aggregated values (`__x0` …, 1 for count(*); NULL
    where the feature's `where:` does not hold).

    With no stream, the rows of `base` (the decision events, with `_t`)."""
    if stream is None:
        table, time = exp.to_table(base), exp.column("_t")
    else:
        spec = dataset.streams[stream]
        table, time = exp.to_table(f"stream_{stream}", quoted=True), micros(ident(spec.rename.get(spec.columns.time,
                                                                                              spec.columns.time)))
    data = exp.select(*[ident(k) for k in keys], alias(time, "_t"), alias(lit(None), "_pos"),
                      *[alias(filtered(None if f.of == "*" else ident(f.of), f) or lit(1), f"__x{i}")
                        for i, f in enumerate(features)])
    data = data.from_(table)
    return data.where(exp.not_(any_null(list(keys)))) if keys else data


def _bucketed(select: exp.Select, bucket: int, shift: int) -> exp.Select:
    """The select with `__b` = its time bucket (+ shift): a row of bucket k is seen by the queries of k and k+1."""
    number = exp.IntDiv(this=exp.column("_t"), expression=lit(bucket))
    return exp.select("*", alias(fill(":b + :s", b=number, s=shift) if shift else number, "__b")).from_(
        select.subquery("r"))


def stream_query(dataset: Dataset, stream: str | None, keys: tuple[str, ...], features: list[Feature],
                 base: str, bucket: int | None = None, data: str | None = None) -> exp.Expression:
    """A query (`_pos`, one column per feature) for one group of union-computed features.

    Args:
        dataset: the dataset spec.
        stream: the stream aggregated, or None for the decision events of `base`.
        keys: the key columns (none: every row).
        features: the group's features.
        base: the table of the decision events, with `_t` and `_pos`.
        bucket: for an all-rows window, its length in µs: rows are partitioned by `_t // bucket`, each data row
            also copied into the next bucket, so a query sees exactly the rows of [t - window, t).
        data: with no stream, the table of decision events aggregated when the query rows of `base` are not
            events themselves (an entity's period starts: see `entities.py`).
    """
    data = _rows(dataset, stream, keys, features, data or base)
    query = exp.select(*[ident(k) for k in keys], "_t", "_pos", *[alias(lit(None), f"__x{i}") for i in range(len(features))])
    query = query.from_(exp.to_table(base))
    if keys:
        query = query.where(exp.not_(any_null(list(keys))))
    parts = [data, query]
    if bucket is not None:
        parts = [_bucketed(data, bucket, 0), _bucketed(data, bucket, 1), _bucketed(query, bucket, 0)]
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    key_nodes = [ident(k) for k in keys] if bucket is None else [exp.column("__b")]
    columns = [alias(aggregate(f, exp.column(f"__x{i}"), key_nodes), f.name) for i, f in enumerate(features)]
    inner = exp.select("_pos", *columns).from_(union.subquery("u"))
    return exp.select("*").from_(inner.subquery("w")).where("_pos IS NOT NULL")


def _compatible(a: str, b: str) -> bool:
    """Key types that compare without a surprise: equal, or both numeric."""
    a, b = a.upper(), b.upper()
    return a == b or (a.startswith(NUMERIC) and b.startswith(NUMERIC))


def check_keys(feature: Feature, events: dict[str, str], other: dict[str, str] | None, what: str, where: str) -> None:
    """Every `by` column exists in the decision events (and in the stream, with a comparable type)."""
    for key in feature.keys:
        if key not in events:
            raise ConfigError(f"{where}: by: unknown column '{key}' (columns: {', '.join(sorted(events))})")
        if other is None:
            continue
        if key not in other:
            raise ConfigError(f"{where}: by: '{key}' is not a column of {what} (its columns: "
                              f"{', '.join(sorted(other))}; add rename: {{COLUMN: {key}}} to the stream)")
        if not _compatible(events[key], other[key]):
            raise ConfigError(f"{where}: by: '{key}' is {events[key]} in the decision events and {other[key]} in "
                              f"{what} (declare the same type under types:)")


def check_stream_feature(feature: Feature, events: dict[str, str], stream: dict[str, str], where: str) -> None:
    """A `from:` feature: keys in both, an aggregated column of the stream, numbers for sum/avg, no label_delay."""
    what = f"stream '{feature.from_}'"
    check_keys(feature, events, stream, what, where)
    if feature.label_delay is not None:
        raise ConfigError(f"{where}: label_delay is only for label features of the decision events")
    if feature.of == "*":
        if feature.agg != "count":
            raise ConfigError(f"{where}: only count takes '*' (name a column for {feature.agg})")
        return
    if feature.of not in stream:
        raise ConfigError(f"{where}: {feature.agg}: '{feature.of}' is not a column of {what} "
                          f"(its columns: {', '.join(sorted(stream))})")
    if feature.agg in ("sum", "avg", "stddev") and not stream[feature.of].upper().startswith(NUMERIC):
        raise ConfigError(f"{where}: {feature.agg} needs a numeric column, '{feature.of}' is {stream[feature.of]}")
