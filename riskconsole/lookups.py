"""`lookup: TABLE.COLUMN` features: key joins, as-of joins (`valid_from`) and range joins (DESIGN §2.1).

- Key: the table row whose key equals the event column of the key's loaded name (keys are unique: repeats are
  quarantined). A table's spec names source columns; once loaded they carry their `rename:` names
  (`Table.loaded`), which is what every query here reads.
- As of (`valid_from`): the row in force at t, the latest with valid_from <= t. Written portably as a sweep: the
  table's versions (numbered in (key, valid_from) order) and the events, per key ordered by (time, versions
  first), and a running `max(version)` — a later update never leaks back, one at exactly t is in force.
- Range: the row whose [low, high] holds the event's value, the first by low (then high) if several.
No match gives NULL. One query per table returns every looked-up column of it.
"""

from __future__ import annotations


import duckdb
from sqlglot import exp

from riskconsole.config import Dataset, Feature, Table
from riskconsole.errors import ConfigError, closest, column_hint
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.streams import _compatible, micros

# versions are numbered per key (`__v`, in valid_from order; a key's repeated valid_from is quarantined at load), so
# the numbering spreads over keys (one row_number over the whole table is one task on Spark)
_ASOF = (
    "WITH v AS (SELECT *, row_number() OVER (PARTITION BY :key ORDER BY :vf) AS __v FROM :tbl "
    "  WHERE :key IS NOT NULL AND :vf IS NOT NULL), "
    "u AS (SELECT 0 AS __kind, :key AS __k, :vt AS _t, __v, NULL AS _pos FROM v "
    "  UNION ALL SELECT 1, :ekey, _t, NULL, _pos FROM :base WHERE :ekey IS NOT NULL), "
    "m AS (SELECT _pos, __kind, __k, max(__v) OVER (PARTITION BY __k ORDER BY _t, __kind "
    "  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __v FROM u) "
    "SELECT m._pos FROM m JOIN v ON m.__k = :vkey AND m.__v = v.__v WHERE m.__kind = 1")
_KEY = "SELECT b._pos FROM :base AS b JOIN :tbl AS v ON :ekey = :key"
# A range lookup is the first range (by low, then high) holding x. With the ranges numbered in that order and `pm`
# the running maximum of their highs, it is the first range whose pm >= x, when its low <= x (an earlier range ends
# below x; a later one starts above). Only the ranges where pm grows can be first ("records"): each is the answer
# for the x in (its previous pm, its pm], intervals that do not overlap. The events then meet their one candidate
# by an equi-join on a bucket of x: each record is listed in the buckets its interval spans (the buckets split the
# records' span evenly, as many as records: about two rows per record), a hash join on both engines where a BETWEEN
# join compares every event with every range (minutes for a 100,000-row IP table). Buckets need a number that
# orders as the values do: a numeric value's text read back as a DOUBLE (TRY_CAST(CAST(… AS VARCHAR) AS DOUBLE),
# valid for every type on both engines: Spark refuses to cast a DATE or TIMESTAMP_NTZ to DOUBLE even in TRY_CAST).
# Text, times, a bound without such a number, a span that is not finite or not above 0 put everything in bucket 0:
# as slow as the BETWEEN join, but right.
_RANGE = (
    "WITH v AS (SELECT *, row_number() OVER (ORDER BY :low, :high) AS __v FROM :tbl "
    "  WHERE :low IS NOT NULL AND :high IS NOT NULL), "
    "p AS (SELECT __v, :low AS __low, max(:high) OVER (ORDER BY __v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
    "  AS __pm FROM v), "
    "q AS (SELECT __v, __low, __pm, lag(__pm) OVER (ORDER BY __v) AS __prev FROM p), "
    "r AS (SELECT __v, __low, __pm, __prev, CASE WHEN __prev IS NULL OR __low > __prev THEN __low ELSE __prev END "
    "  AS __from FROM q WHERE __prev IS NULL OR __pm > __prev), "
    "r2 AS (SELECT *, TRY_CAST(CAST(__from AS VARCHAR) AS DOUBLE) AS __f, "
    "  TRY_CAST(CAST(__pm AS VARCHAR) AS DOUBLE) AS __m FROM r WHERE __from <= __pm), "
    "w AS (SELECT min(__f) AS __lo, max(__m) AS __top, CASE WHEN any_value(lower(typeof(__low))) NOT IN "
    "  ('varchar', 'string') AND count(__f) = count(*) AND count(__m) = count(*) AND max(__m) > min(__f) "
    "  AND (max(__m) - min(__f)) / count(*) < 1e300 AND (max(__m) - min(__f)) / count(*) > 0 "
    "  THEN (max(__m) - min(__f)) / count(*) END AS __w FROM r2), "
    "rb AS (SELECT r2.__v, r2.__low, r2.__pm, r2.__prev, unnest(generate_series("
    "  CASE WHEN w.__w IS NULL THEN 0 ELSE CAST(floor((r2.__f - w.__lo) / w.__w) AS BIGINT) END, "
    "  CASE WHEN w.__w IS NULL THEN 0 ELSE CAST(floor((r2.__m - w.__lo) / w.__w) AS BIGINT) END)) AS __b "
    "  FROM r2 CROSS JOIN w), "
    "e0 AS (SELECT b._pos, :value AS __x, TRY_CAST(CAST(:value AS VARCHAR) AS DOUBLE) AS __i FROM :base AS b "
    "  WHERE :value IS NOT NULL), "
    "eb AS (SELECT e0._pos, e0.__x, CASE WHEN w.__w IS NULL THEN 0 WHEN e0.__i >= w.__lo AND e0.__i <= w.__top "
    "  THEN CAST(floor((e0.__i - w.__lo) / w.__w) AS BIGINT) END AS __b FROM e0 CROSS JOIN w), "
    "m AS (SELECT eb._pos, rb.__v FROM eb JOIN rb ON eb.__b = rb.__b "
    "  WHERE eb.__x >= rb.__low AND eb.__x <= rb.__pm AND (rb.__prev IS NULL OR eb.__x > rb.__prev)) "
    "SELECT m._pos FROM m JOIN v ON m.__v = v.__v")


def target(feature: Feature) -> tuple[str, str]:
    """(table, column) of a lookup feature."""
    table, column = feature.lookup.split(".", 1)
    return table, column


def lookup_groups(dataset: Dataset) -> dict[str, list[Feature]]:
    """Lookup features by table: one join per table."""
    groups: dict[str, list[Feature]] = {}
    for feature in dataset.features:
        if feature.lookup is not None:
            groups.setdefault(target(feature)[0], []).append(feature)
    return groups


def _table(name: str) -> exp.Table:
    return exp.to_table(f"table_{name}", quoted=True)


def lookup_query(dataset: Dataset, name: str, features: list[Feature], base: str) -> exp.Expression:
    """A query (`_pos`, one column per feature) joining table `name` onto the events of `base`."""
    table = dataset.tables[name]
    nodes = {"tbl": _table(name), "base": exp.to_table(base)}
    key, valid_from = table.loaded(table.key), table.loaded(table.valid_from)
    if table.range is not None:
        low, high = table.loaded(table.range.low), table.loaded(table.range.high)
        query = fill(_RANGE, **nodes, low=ident(low), high=ident(high),
                     value=exp.column(table.range.value, "b", quoted=True),
                     vlow=exp.column(low, "v", quoted=True), vhigh=exp.column(high, "v", quoted=True))
    elif valid_from is not None:
        query = fill(_ASOF, **nodes, key=ident(key), vf=ident(valid_from), vt=micros(ident(valid_from)),
                     ekey=ident(key), vkey=exp.column(key, "v", quoted=True))
    else:
        query = fill(_KEY, **nodes, key=exp.column(key, "v", quoted=True), ekey=exp.column(key, "b", quoted=True))
    columns = [alias(exp.column(target(f)[1], "v", quoted=True), f.name) for f in features]
    return query.select(*columns, append=True)


def check_table(dataset: Dataset, name: str, events: dict[str, str], table: dict[str, str], label: str) -> None:
    """The table's key (or range value) is an event column of a comparable type; `table`: its loaded columns."""
    spec = dataset.tables[name]
    column = spec.loaded(spec.key) if spec.key else spec.range.value
    other = spec.loaded(spec.key or spec.range.low)
    if column not in events:
        raise ConfigError(_missing_join(spec, name, events, label))
    if not _compatible(events[column], table[other]):
        raise ConfigError(f"{label}: tables.{name}.{'key' if spec.key else 'range.value'}: '{column}' is "
                          f"{events[column]} in the decision events and {table[other]} in the table (declare the same "
                          "type under types:)")
    for role in ("label", "label_time"):
        mapped = spec.loaded(getattr(spec, role))
        if mapped is not None and mapped not in table:
            raise ConfigError(f"{label}: tables.{name}.{role}: '{mapped}' is not a column of the table "
                              f"({column_hint(mapped, table, 'its columns')})")


def _missing_join(spec: Table, name: str, events: dict[str, str], label: str) -> str:
    """The error for a join column the events lack; for a key (joined on the event column of its loaded name) the
    fix is a rename, to the near event column where there is one."""
    column = spec.loaded(spec.key) if spec.key else spec.range.value
    near, hint = closest(column, events), column_hint(column, events)
    if spec.key is None:
        return f"{label}: tables.{name}.range.value: '{column}' is not a column of the decision events ({hint})"
    loaded = f" (loaded as '{column}')" if column != spec.key else ""
    event = near or "EVENT_COLUMN"
    return (f"{label}: tables.{name}.key: '{spec.key}'{loaded} is not a column of the decision events ({hint}); the "
            f"key joins the event column of the same name: if the events call it {event}, write "
            f"rename: {{{spec.key}: {event}}} under tables.{name}")


def check_lookup(feature: Feature, table: dict[str, str], where: str, spec: Table | None = None) -> None:
    """The looked-up column exists in the table (with a did-you-mean) and is not the table's entity label."""
    name, column = target(feature)
    if spec is not None and column in (spec.loaded(spec.label), spec.loaded(spec.label_time)):
        raise ConfigError(f"{where}: lookup: '{name}.{column}' is the table's entity label (the answer an "
                          "entity-level strategy is judged by): no feature may read it")
    if column not in table:
        raise ConfigError(f"{where}: lookup: table '{name}' has no column '{column}' "
                          f"({column_hint(column, table, 'its columns')})")


def overlap_warnings(con: duckdb.DuckDBPyConnection, dataset: Dataset, label: str) -> list[str]:
    """One warning per range table whose ranges overlap (an event in an overlap gets the first row by low)."""
    out = []
    for name, table in dataset.tables.items():
        if table.range is None:
            continue
        shown = table.range.low  # the warning names the column as the dataset file does
        low, high = ident(table.loaded(table.range.low)), ident(table.loaded(table.range.high))
        query = fill("SELECT count(*), min(__low) FROM (SELECT 0 AS __z, :low AS __low, max(:high) OVER (ORDER BY :low, :high "
                     "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __prev FROM :tbl) WHERE __low <= __prev",
                     low=low, high=high, tbl=_table(name))
        n, first = con.execute(render(query)).fetchall()[0]
        if n:
            out.append(f"{label}: tables.{name}: {n:,} ranges overlap an earlier one (the first at {shown} "
                       f"= {first}); an event in an overlap gets the row with the lowest {shown}: make the "
                       "ranges disjoint")
        out += _text_bounds(con, name, table, label)
    return out


_IPV4 = r"\d{1,3}(\.\d{1,3}){3}"


def _text_bounds(con: duckdb.DuckDBPyConnection, name: str, table: Table, label: str) -> list[str]:
    """A warning for a range table whose bounds are text that does not sort as what it means: IPv4 addresses
    ('10.0.0.5' sorts after '10.0.0.255') or numbers of different lengths ('9' after '10'). Text compares
    character by character, so events would silently get the wrong range or none."""
    low, high = table.loaded(table.range.low), table.loaded(table.range.high)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
                             [f"table_{name}"]).fetchall())
    if types.get(low) != "VARCHAR":
        return []
    bounds = [fill("trim(:c)", c=ident(c)) for c in (low, high)]
    ip = fill("regexp_full_match(:a, :re) OR regexp_full_match(:b, :re)", a=bounds[0], b=bounds[1], re=lit(_IPV4))
    digits = fill("regexp_full_match(:a, '[0-9]+') AND regexp_full_match(:b, '[0-9]+')", a=bounds[0], b=bounds[1])
    query = fill("SELECT count(*) FILTER (:ip), any_value(:a) FILTER (:ip), count(*) FILTER (:digits), "
                 "min(least(length(:a), length(:b))) FILTER (:digits) < max(greatest(length(:a), length(:b))) "
                 "FILTER (:digits) FROM :tbl",
                 ip=ip, digits=digits, a=bounds[0], b=bounds[1], tbl=_table(name))
    ips, example, numbers, uneven = con.execute(render(query)).fetchall()[0]
    shown, value = table.range.low, table.range.value
    if ips:
        return [f"{label}: tables.{name}: {ips:,} ranges have IPv4 addresses as text ({shown} = '{example}'), which "
                f"compare character by character ('10.0.0.5' sorts after '10.0.0.255'): events get the wrong range "
                f"or none; write the addresses as numbers (a*16777216 + b*65536 + c*256 + d) in the table and in "
                f"the events' {value}"]
    if numbers and uneven:
        return [f"{label}: tables.{name}: {shown} and {table.range.high} are numbers written as text of different "
                f"lengths, which compare character by character ('9' sorts after '10'): events get the wrong range "
                f"or none; declare them numbers under types: (e.g. types: {{{shown}: BIGINT, {table.range.high}: "
                f"BIGINT}}), and the events' {value} under the dataset's types:"]
    return []

