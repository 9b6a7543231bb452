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
from riskconsole.errors import ConfigError, column_hint
from riskconsole.expressions import parse_expression
from riskconsole.sqlbuild import alias, fill, ident, lit

US = 1_000_000  # microseconds per second
HOUR = 3600 * US  # `numbered`'s buckets of events on Spark
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
BLOCKS = ("min", "max", "stddev")  # windows `block_windows` computes on Spark
SWEPT = ("count_distinct", *BLOCKS)  # keyed windows computed by sweeps on Spark (`stream_query(sweep=True)`)


def _source(name: str, dataset: Dataset) -> str:
    """Resolve the role aliases `label` and `amount` to their source columns."""
    roles = {"label": dataset.columns.label, "amount": dataset.columns.amount}
    return roles.get(name) or name


def is_label_feature(feature: Feature, dataset: Dataset) -> bool:
    """True when the feature aggregates the label column (by name or the `label` alias)."""
    label = dataset.columns.label
    return (label is not None and feature.of is not None and feature.from_ is None
            and _source(feature.of, dataset) == label)


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


def stream_groups(dataset: Dataset, sweep: bool = False) -> dict[tuple, list[Feature]]:
    """Union-computed features grouped by (stream, key columns, bucket): each group is one union and one scan.

    Stream features (`from:`) and all-rows windows of the decision stream (stream None, no `by:`) are computed
    this way; an all-rows window is partitioned by time buckets of its own length (`bucket`, in µs), so it runs
    in many small partitions instead of one.
    """
    groups: dict[tuple, list[Feature]] = {}
    for feature in dataset.features:
        if sweep and feature.agg in SWEPT and feature.from_ is None and feature.keys \
                and not is_label_feature(feature, dataset):
            # a keyed distinct count, min, max or stddev of the decision events (`sweep`), its `of` a source column
            groups.setdefault((None, tuple(feature.keys), None), []).append(
                feature.model_copy(update={feature.agg: _source(feature.of, dataset)}))
            continue
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


def numbered(source: exp.Select, columns: list[str], order: list[exp.Expression], bucket: exp.Expression
             ) -> exp.Select:
    """`source`'s `columns` and `_pos` = `row_number() OVER (ORDER BY order)` (1..n), in a form Spark spreads over
    its cores: there a row_number over every row runs in one task (one partition holding every event). Each row is
    numbered within its `bucket` (an expression over `source`'s columns, never NULL and non-decreasing along
    `order`) and offset by the rows of the buckets before it, from the buckets' counts (a table of one row per
    bucket). Equal to the plain row_number wherever `order` is a total order."""
    inner = exp.select("*", alias(bucket, "__b")).from_(source.subquery("__s"))
    counts = exp.select("__b", alias(fill("count(*)"), "__c")).from_(inner.subquery("__r")).group_by("__b")
    offsets = exp.select("__b", alias(fill("sum(__c) OVER (ORDER BY __b) - __c"), "__n")).from_(
        counts.subquery("__g"))
    keys = ", ".join(f":o{i}" for i in range(len(order)))
    pos = fill(f"CAST(__o.__n + row_number() OVER (PARTITION BY __e.__b ORDER BY {keys}) AS BIGINT)",
               **{f"o{i}": o for i, o in enumerate(order)})
    return exp.select(*[exp.column(c, "__e", quoted=True) for c in columns], alias(pos, "_pos")).from_(
        inner.subquery("__e")).join(offsets.subquery("__o"), on="__e.__b = __o.__b")


def _bucketed(select: exp.Select, bucket: int, shift: int) -> exp.Select:
    """The select with `__b` = its time bucket (+ shift): a row of bucket k is seen by the queries of k and k+1."""
    number = exp.IntDiv(this=exp.column("_t"), expression=lit(bucket))
    return exp.select("*", alias(fill(":b + :s", b=number, s=shift) if shift else number, "__b")).from_(
        select.subquery("r"))


def distinct_sweep(data: exp.Query, queries: exp.Select, keys: tuple[str, ...], features: list[Feature]
                   ) -> exp.Select:
    """A query (`_pos`, one column per feature) of keyed `count_distinct` windows, as one sweep per key.

    A window's distinct count at t is the number of values with a row in [t - window, t). Each value's rows (one per
    instant) are given disjoint intervals of the query times they count for: a row at s counts for
    t in [s + 1, min(s + window, s')], s' the value's next row (then that row counts). The count at t is then a
    running sum of +1 at each interval's start and -1 after its end, the changes at an instant applied before the
    queries at it. Every step (DISTINCT, lead, one sort, a running sum) costs the same per row however busy a key:
    a DISTINCT window aggregate over a sliding frame does not (Spark collects the frame's set for every row, O(k^2)
    for a key with k rows in a window).

    Args:
        data: the aggregated rows: the keys, `_t` and the values `__x0` … (NULL where not aggregated).
        queries: the rows asked about: the keys, `_t`, `_pos` (keys never NULL).
        keys: the key columns (at least one).
        features: the `count_distinct` features, `__x{i}` aggregated by the i-th.
    """
    k = [f"__k{j}" for j in range(len(keys))]
    renamed = [alias(ident(key), name) for key, name in zip(keys, k)]
    changes = None
    for i, feature in enumerate(features):
        rows = exp.select(*renamed, alias(exp.column("_t"), "s"), alias(exp.column(f"__x{i}"), "v")).distinct().from_(
            data.subquery("d")).where(f"__x{i} IS NOT NULL")
        nxt = fill(f"lead(s) OVER (PARTITION BY {', '.join(k)}, v ORDER BY s)")
        last = fill("CASE WHEN nx IS NULL OR nx > s + :n THEN s + :n ELSE nx END", n=duration_seconds(feature.window) * US)
        runs = exp.select(*k, "s", alias(nxt, "nx")).from_(rows.subquery("r"))
        for at, sign in ((fill("s + 1"), 1), (fill(":e + 1", e=last), -1)):
            part = exp.select(*k, alias(at, "t"), alias(lit(0), "kind"), alias(fill("CAST(NULL AS BIGINT)"), "_pos"),
                              *[alias(lit(sign if j == i else 0), f"__d{j}") for j in range(len(features))])
            part = part.from_(runs.subquery("o"))
            changes = part if changes is None else exp.union(changes, part, distinct=False)
    asked = exp.select(*renamed, alias(exp.column("_t"), "t"), alias(lit(1), "kind"), "_pos",
                       *[alias(lit(0), f"__d{j}") for j in range(len(features))]).from_(queries.subquery("q"))
    sweep = exp.union(changes, asked, distinct=False)
    running = f"OVER (PARTITION BY {', '.join(k)} ORDER BY t, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    values = [alias(fill(f"CAST(sum(__d{j}) {running} AS BIGINT)"), f.name) for j, f in enumerate(features)]
    inner = exp.select("kind", "_pos", *values).from_(sweep.subquery("u"))
    return exp.select("_pos", *[f.name for f in features]).from_(inner.subquery("w")).where("kind = 1")


def block_windows(data: exp.Select, queries: exp.Select, keys: tuple[str, ...], features: list[Feature]
                  ) -> exp.Select:
    """A query (`_pos`, one column per feature) of keyed `min`/`max`/`stddev` windows of one length, in blocks of
    that length.

    Time is cut into blocks as long as the window, so [t - window, t) is the end of the previous block from
    t - window and the start of t's block until t. Each data row is in the union twice: in its own block (the
    current part) and in the next one (the previous part); each query row once at t and once as a probe at
    t - window, both in t's block. Running aggregates ascending by time give a query its block's rows before t,
    descending ones give its probe the previous block's rows from t - window on; the two parts are combined: the
    extreme of two extremes, and for `stddev` the two parts' counts, means and variances by Chan's formula
    (M2 = M2a + M2b + (mean_b - mean_a)^2 * na * nb / n). Running frames grow row by row: Spark re-aggregates a
    bounded frame for every row (O(k^2) per key).

    Args:
        data: the aggregated rows: the keys, `_t` and the values `__x0` … (NULL where not aggregated).
        queries: the rows asked about: the keys, `_t`, `_pos` (keys never NULL).
        keys: the key columns (none: every row, partitioned by block alone).
        features: `min`/`max`/`stddev` features of one window length, `__x{i}` aggregated by the i-th.
    """
    n = duration_seconds(features[0].window) * US
    k = [f"__k{j}" for j in range(len(keys))]
    renamed = [alias(ident(key), name) for key, name in zip(keys, k)]

    def block(t: exp.Expression) -> exp.Expression:  # floor(t / n), exact for times before 1970 too
        return fill("(:t - (((:t % :n) + :n) % :n)) // :n", t=t, n=n)

    def value(i: int, f: Feature) -> exp.Expression:
        x = exp.column(f"__x{i}")
        return fill("CAST(:x AS DOUBLE)", x=x) if f.agg == "stddev" else x

    def part(source: exp.Select, at: exp.Expression, block_of: exp.Expression, kind: int, pos: exp.Expression,
             values: str | None) -> exp.Select:
        cur = [alias(value(i, f) if values == "a" else fill("NULL"), f"__a{i}") for i, f in enumerate(features)]
        prev = [alias(value(i, f) if values == "b" else fill("NULL"), f"__b{i}") for i, f in enumerate(features)]
        return exp.select(*renamed, alias(block_of, "__blk"), alias(at, "__at"), alias(lit(kind), "kind"),
                          alias(pos, "_pos"), *cur, *prev).from_(source.subquery("r"))

    t, null_pos = exp.column("_t"), fill("CAST(NULL AS BIGINT)")
    union = part(data, t, block(t), 1, null_pos, "a")  # the row's own block: after the queries at its instant
    for piece in (part(data, t, fill(":b + 1", b=block(t)), 0, null_pos, "b"),  # the next block's previous part
                  part(queries, t, block(t), 0, exp.column("_pos"), None),  # the query: t's block before t
                  part(queries, fill(":t - :n", t=t, n=n), block(t), 2, exp.column("_pos"), None)):  # the probe
        union = exp.union(union, piece, distinct=False)
    within = ", ".join([*k, "__blk"])
    over = {"c": f"OVER (PARTITION BY {within} ORDER BY __at, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
            "p": f"OVER (PARTITION BY {within} ORDER BY __at DESC, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT "
                 "ROW)"}
    running, values = [], []
    for i, f in enumerate(features):
        for side, column, kind in (("c", f"__a{i}", 0), ("p", f"__b{i}", 2)):
            aggs = {"v": f.agg} if f.agg != "stddev" else {"n": "count", "m": "avg", "s": "var_samp"}
            for name, agg in aggs.items():
                running.append(alias(fill(f"{agg}({column}) {over[side]}"), f"__{side}{name}{i}"))
        # one row per (_pos, kind) holds each side: the query's (kind 0) and the probe's (kind 2)
        got = {f"{side}{name}": fill(f"max(CASE WHEN kind = {kind} THEN __{side}{name}{i} END)")
               for side, kind in (("c", 0), ("p", 2)) for name in (("v",) if f.agg != "stddev" else ("n", "m", "s"))}
        if f.agg != "stddev":
            better = ">=" if f.agg == "max" else "<="
            result = fill(f"CASE WHEN :p IS NULL OR :c {better} :p THEN :c ELSE :p END", c=got["cv"], p=got["pv"])
        else:
            total = fill(":a + :b", a=got["cn"], b=got["pn"])
            spread = fill("coalesce(:sa, 0) * (:na - 1) + coalesce(:sb, 0) * (:nb - 1) "
                          "+ (:mb - :ma) * (:mb - :ma) * :na * :nb / :n", sa=got["cs"], sb=got["ps"], na=got["cn"],
                          nb=got["pn"], ma=got["cm"], mb=got["pm"], n=total)
            result = fill("CASE WHEN :n < 2 THEN NULL WHEN :nb = 0 THEN :sa WHEN :na = 0 THEN :sb "
                          "ELSE sqrt(:m2 / (:n - 1)) END", n=total, na=got["cn"], nb=got["pn"],
                          sa=fill("sqrt(:v)", v=got["cs"]), sb=fill("sqrt(:v)", v=got["ps"]), m2=spread)
        values.append(alias(result, f.name))
    runs = exp.select("_pos", "kind", *running).from_(union.subquery("u"))
    return exp.select("_pos", *values).from_(runs.subquery("w")).where("_pos IS NOT NULL").group_by("_pos")


def _swept(dataset: Dataset, stream: str | None, keys: tuple[str, ...], features: list[Feature], base: str,
           data: str | None, bucket: int | None) -> list[tuple[exp.Select, list[Feature]]]:
    """The sweep queries of a group's distinct counts (one) and minima, maxima and standard deviations (one per
    window length; by-less ones too: their blocks are the partitions). A by-less distinct count sweeps each time
    bucket (`bucket`, the window's length) as a key: its rows and the previous bucket's, as the bucketed window."""
    asked = exp.select(*[ident(k) for k in keys], "_t", "_pos").from_(exp.to_table(base)).where(
        exp.not_(any_null(list(keys))))
    parts = []
    distinct = [f for f in features if f.agg == "count_distinct"]
    if distinct:
        rows = _rows(dataset, stream, keys, distinct, data or base)
        if keys:
            parts.append((distinct_sweep(rows, asked, keys, distinct), distinct))
        else:
            both = exp.union(_bucketed(rows, bucket, 0), _bucketed(rows, bucket, 1), distinct=False)
            parts.append((distinct_sweep(both, _bucketed(asked, bucket, 0), ("__b",), distinct), distinct))
    lengths: dict[str, list[Feature]] = {}
    for f in features:
        if f.agg in BLOCKS:
            lengths.setdefault(f.window, []).append(f)
    for group in lengths.values():
        parts.append((block_windows(_rows(dataset, stream, keys, group, data or base), asked, keys, group), group))
    return parts


def stream_query(dataset: Dataset, stream: str | None, keys: tuple[str, ...], features: list[Feature],
                 base: str, bucket: int | None = None, data: str | None = None, sweep: bool = False
                 ) -> exp.Expression:
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
        sweep: `count_distinct` windows by `distinct_sweep` (by-less ones per bucket), `min`/`max`/`stddev` ones
            (keyed or not) by `block_windows`, for Spark, which re-aggregates a bounded frame for every row (its
            DISTINCT window collects each frame's set), rather than DuckDB's window aggregates (segment trees,
            faster on DuckDB: 2.4 s vs the sweep's 3.9 s for the distinct users of a merchant with 90k of 2M
            orders).
    """
    if sweep:  # distinct counts, extremes and deviations as sweeps, joined to the other features' windows
        parts = _swept(dataset, stream, keys, features, base, data, bucket)
        if parts:
            rest = [f for f in features if all(f not in done for _, done in parts)]
            if rest:
                parts.insert(0, (stream_query(dataset, stream, keys, rest, base, bucket, data), rest))
            names = [exp.column(f.name, f"p{i}", quoted=True) for i, (_, done) in enumerate(parts) for f in done]
            joined = exp.select("p0._pos", *names).from_(parts[0][0].subquery("p0"))
            for i, (part, _) in enumerate(parts[1:], start=1):
                joined = joined.join(part.subquery(f"p{i}"), using=["_pos"], join_type="LEFT")
            return joined
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


def unknown_column(name: str, columns: dict[str, str] | list[str]) -> str:
    """`unknown column 'userid' (did you mean 'user_id'?)`, else the columns there are."""
    return f"unknown column '{name}' ({column_hint(name, columns)})"


def check_keys(feature: Feature, events: dict[str, str], other: dict[str, str] | None, what: str, where: str) -> None:
    """Every `by` column exists in the decision events (and in the stream, with a comparable type)."""
    for key in feature.keys:
        if key not in events:
            raise ConfigError(f"{where}: by: {unknown_column(key, events)}")
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
