"""Graph features: who is linked to whom through shared devices, cards, addresses (DESIGN §2.2).

The graph of day D holds the rows (of the decision events and of every stream holding the node column and a link
column) with time in [start(D) - window, start(D)); two nodes are linked when rows join each of them to the same
value of the same link column, and a value shared by more than `max_degree` nodes links nothing. So a feature is
point in time at day granularity: at most a day stale, never the future.

Edges expire as the window slides, so an incremental union-find (which cannot delete) does not fit: each query day's
components are recomputed from the window's distinct (node, value) pairs with scipy's `connected_components` over
the bipartite node-value graph (measured against igraph and rustworkx in bench/RESULTS.md). The engine (DuckDB, or Spark
through `GraphSource`) dedupes the pairs per day and the (node, day) pairs that need a value; numpy does the rest,
with no loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from riskconsole.config import Dataset, Feature, duration_seconds
from riskconsole.errors import ConfigError, column_hint
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.streams import US, _compatible, micros

DAY = 86_400 * US
EMPTY = {"component_size": 1, "degree": 0, "fraud_share": 0.0}  # a node alone (or new) in its day's graph


def day_of(t: exp.Expression) -> exp.Expression:
    """The UTC day number of epoch microseconds (floor, also before 1970)."""
    return fill("CAST(floor(:t / :day) AS BIGINT)", t=t, day=exp.Literal.number(f"{DAY}.0"))


def graph_groups(features: list[Feature]) -> dict[tuple, list[Feature]]:
    """Graph features by (node, links, window, max_degree): each group is one set of daily graphs."""
    groups: dict[tuple, list[Feature]] = {}
    for f in features:
        if f.graph is not None:
            groups.setdefault((f.node, tuple(f.links), f.window, f.max_degree), []).append(f)
    return groups


@dataclass
class GraphSource:
    """Where the graph's SQL runs: DuckDB (`of`) or another engine holding the same tables (engines/spark.py).

    `types` gives a table's DuckDB column types (the casts that give every node one type); `fetch` runs a
    DuckDB-dialect query and returns its (deduplicated, small) rows as Arrow."""

    types: Callable[[str], dict[str, str]]
    fetch: Callable[[exp.Expression], pa.Table]

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> GraphSource:
        """The tables of a DuckDB connection."""
        def types(table: str) -> dict[str, str]:
            return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())

        return cls(types, lambda query: con.sql(render(query)).to_arrow_table())


def link_sources(source: GraphSource, dataset: Dataset, node: str,
                 link: str) -> list[tuple[exp.Table, exp.Expression]]:
    """(table, epoch-µs time) of every loaded source holding the node and the link column: events, then streams."""
    out = []
    if {node, link} <= set(source.types("events")):
        out.append((exp.to_table("events"), micros(ident(dataset.columns.time))))
    for name, spec in dataset.streams.items():
        if {node, link} <= set(source.types(f'"stream_{name}"')):
            time = spec.rename.get(spec.columns.time, spec.columns.time)
            out.append((exp.to_table(f"stream_{name}", quoted=True), micros(ident(time))))
    return out


def _pairs_query(source: GraphSource, dataset: Dataset, node: str, link: str, days: tuple[int, int],
                 node_type: str) -> exp.Expression | None:
    """Distinct (n, v, d) of one link: node, link value, day of a row, over days [first, last)."""
    sources = link_sources(source, dataset, node, link)
    link_type = source.types(render(sources[0][0]))[link] if sources else "VARCHAR"
    parts = []
    for table, time in sources:
        d = day_of(time)
        part = exp.select(alias(exp.cast(ident(node), node_type), "n"), alias(exp.cast(ident(link), link_type), "v"),
                          alias(d, "d")).from_(table)
        parts.append(part.where(fill(":n IS NOT NULL AND :v IS NOT NULL AND :d >= :lo AND :d < :hi", n=ident(node),
                                     v=ident(link), d=d, lo=days[0], hi=days[1])))
    if not parts:
        return None
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return exp.select("n", "v", "d").distinct().from_(union.subquery("r"))


def _fraud_query(dataset: Dataset, node: str, window: int, delay: int, node_type: str) -> exp.Expression:
    """(n, s, e): a fraud-labelled decision event of node n counts for the query days in [s, e]."""
    cols = dataset.columns
    d = day_of(micros(ident(cols.time)))
    start = fill(":d + :delay + 1", d=d, delay=delay)
    if cols.label_time:
        start = fill("greatest(:s, coalesce(:ld + 1, :s))", s=start, ld=day_of(micros(ident(cols.label_time))))
    query = exp.select(alias(exp.cast(ident(node), node_type), "n"), alias(start, "s"),
                       alias(fill(":d + :w", d=d, w=window), "e")).from_("events")
    return query.where(fill(":n IS NOT NULL AND :l = 1", n=ident(node), l=ident(cols.label)))


def check_graph_feature(feature: Feature, dataset: Dataset, types: dict[str, str], others: dict[str, dict[str, str]],
                        where: str) -> None:
    """The node is a decision-event column; each link is a column of the events or of a stream holding the node,
    of one comparable type everywhere; fraud_share has a label (and a delay or a label_time)."""
    holding = _node_sources(feature, dataset, types, others, where)
    for link in feature.links:
        _check_link(link, feature.node, holding, set(dataset.hidden_columns), where)
    if feature.graph == "fraud_share":
        if dataset.columns.label is None:
            raise ConfigError(f"{where}: fraud_share needs a label column (map columns.label)")
        if feature.label_delay is None and dataset.columns.label_time is None:
            raise ConfigError(f"{where}: fraud_share needs label_delay (no label_time column is mapped, so recent "
                              "labels would leak the future)")


def _node_sources(feature: Feature, dataset: Dataset, types: dict[str, str], others: dict[str, dict[str, str]],
                  where: str) -> dict[str, dict[str, str]]:
    """What holds the node column (the events, streams) -> its column types; the node's type agrees in all."""
    node = feature.node
    if node not in types:
        raise ConfigError(f"{where}: node: '{node}' is not a column of the decision events "
                          f"({column_hint(node, set(types) - set(dataset.hidden_columns))})")
    if node in dataset.hidden_columns:
        raise ConfigError(f"{where}: node: '{node}' is the label or derived from it; link entities")
    streams = {name: others.get(f"stream_{name}", {}) for name in dataset.streams}
    holding = {"the decision events": types, **{f"stream '{n}'": c for n, c in streams.items() if node in c}}
    for what, columns in holding.items():
        if not _compatible(types[node], columns[node]):
            raise ConfigError(f"{where}: node: '{node}' is {types[node]} in the decision events and {columns[node]} "
                              f"in {what} (declare the same type under types:)")
    return holding


def _check_link(link: str, node: str, holding: dict[str, dict[str, str]], hidden: set[str], where: str) -> None:
    if link in hidden:
        raise ConfigError(f"{where}: links: '{link}' is the label or derived from it; link by an entity")
    found = [(what, columns[link]) for what, columns in holding.items() if link in columns]
    if not found:
        known = {c for columns in holding.values() for c in columns} - hidden - {node}
        raise ConfigError(f"{where}: links: '{link}' is not a column of the decision events nor of a stream "
                          f"holding '{node}' ({column_hint(link, known)})")
    for what, dtype in found[1:]:
        if not _compatible(found[0][1], dtype):
            raise ConfigError(f"{where}: links: '{link}' is {found[0][1]} in {found[0][0]} and {dtype} in {what} "
                              "(declare the same type under types:)")


def distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (numpy 2.4's hash-based np.unique is ~1000x slower than a sort on these arrays)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _member(x: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """x in sorted_set, elementwise."""
    if not len(sorted_set):
        return np.zeros(len(x), bool)
    return sorted_set[np.minimum(np.searchsorted(sorted_set, x), len(sorted_set) - 1)] == x


@dataclass
class DayGraph:
    """One day's graph, compacted: the window's linked nodes (sorted codes) and their components."""

    nodes: np.ndarray        # node codes with at least one kept link, sorted
    labels: np.ndarray       # component of each node
    sizes: np.ndarray        # nodes per component
    adjacency: object        # scipy.sparse.csr_matrix, nodes x link values (kept pairs)


def day_graph(a: np.ndarray, b: np.ndarray, max_degree: int | None) -> DayGraph:
    """Components of the bipartite graph of (node a, link value b) pairs (repeats allowed), hubs cut.

    A value held by one node links nothing and is dropped with the hubs (more than max_degree nodes).
    """
    from scipy.sparse import csr_matrix  # imported here: a backtest that reads no graph needs no scipy
    from scipy.sparse.csgraph import connected_components

    n_codes = int(a.max()) + 1 if len(a) else 1
    key = distinct(b.astype(np.int64) * n_codes + a)
    value, node = key // n_codes, key % n_codes
    starts = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])
    counts = np.diff(np.r_[starts, len(value)])
    keep = np.repeat((counts >= 2) & (counts <= (max_degree or len(key))), counts)
    value, node = value[keep], node[keep]
    nodes = distinct(node)
    ai = np.searchsorted(nodes, node)
    bi = np.cumsum(np.r_[False, value[1:] != value[:-1]]) if len(value) else value
    nn, nv = len(nodes), int(bi[-1]) + 1 if len(bi) else 0
    graph = csr_matrix((np.ones(len(ai), np.int8), (ai, nn + bi)), shape=(nn + nv, nn + nv))
    _, labels = connected_components(graph, directed=False)
    labels = labels[:nn]
    adjacency = csr_matrix((np.ones(len(ai), np.int8), (ai, bi)), shape=(nn, nv))
    return DayGraph(nodes, labels, np.bincount(labels) if nn else np.zeros(0, np.int64), adjacency)


def _locate(g: DayGraph, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into g.nodes of the query codes that are linked in the day's graph, which of them are)."""
    present = _member(q, g.nodes)
    return np.searchsorted(g.nodes, q[present]), present


def node_values(g: DayGraph, q: np.ndarray, kind: str, fraud: np.ndarray | None = None) -> np.ndarray:
    """One feature of the query node codes `q` in one day's graph (`fraud`: codes of the fraud nodes)."""
    idx, present = _locate(g, q)
    out = np.full(len(q), EMPTY[kind], dtype=np.float64)
    size = g.sizes[g.labels[idx]]
    if kind == "component_size":
        out[present] = size
    elif kind == "degree":
        out[present] = np.diff((g.adjacency[idx] @ g.adjacency.T).indptr) - 1
    else:
        is_fraud = _member(g.nodes, distinct(fraud)).astype(np.float64)
        by_comp = np.bincount(g.labels, weights=is_fraud, minlength=len(g.sizes))
        out[present] = (by_comp[g.labels[idx]] - is_fraud[idx]) / np.maximum(size - 1, 1)
    return out


def _delay_days(feature: Feature) -> int:
    return duration_seconds(feature.label_delay) // 86_400 if feature.label_delay else 0


def _codes(arrays: list[pa.ChunkedArray]) -> list[np.ndarray]:
    """One integer code per distinct value across the arrays (same value, same code)."""
    uniq = pc.unique(pa.chunked_array([c for a in arrays for c in a.chunks], type=arrays[0].type))
    return [pc.index_in(a, value_set=uniq).to_numpy().astype(np.int64) for a in arrays]


def _group_values(source: GraphSource, dataset: Dataset, key: tuple, features: list[Feature],
                  base: str) -> pa.Table:
    """(n, d, one column per feature) for each distinct (node, day) of the query rows of `base`."""
    node, links, window, max_degree = key
    node_type = source.types(base)[node]
    queries = source.fetch(exp.select(alias(exp.cast(ident(node), node_type), "n"), alias(day_of(exp.column(
        "_t")), "d")).distinct().from_(base).where(fill(":n IS NOT NULL", n=ident(node))))
    w = duration_seconds(window) // 86_400
    days = pc.min_max(queries["d"]).as_py() if queries.num_rows else {"min": 0, "max": -1}
    span = (days["min"] - w, days["max"])
    pairs = [source.fetch(query) for query in
             (_pairs_query(source, dataset, node, link, span, node_type) for link in links) if query is not None]
    delays = sorted({_delay_days(f) for f in features if f.graph == "fraud_share"})
    frauds = [source.fetch(_fraud_query(dataset, node, w, delay, node_type)) for delay in delays]
    codes = _codes([queries["n"], *(p["n"] for p in pairs), *(f["n"] for f in frauds)])
    edges = Edges.of(codes[1:1 + len(pairs)], pairs)
    fraud = {delay: (c, f["s"].to_numpy(), f["e"].to_numpy()) for delay, c, f in zip(delays, codes[1 + len(pairs):],
                                                                                       frauds)}
    columns = _daily(edges, codes[0], queries["d"].to_numpy(), w, max_degree, features, fraud)
    return pa.table({"n": queries["n"], "d": queries["d"], **columns})


@dataclass
class Edges:
    """Distinct (node code a, link value code b) pairs per day d, sorted by day."""

    a: np.ndarray
    b: np.ndarray
    d: np.ndarray

    @classmethod
    def of(cls, node_codes: list[np.ndarray], pairs: list[pa.Table]) -> Edges:
        """From each link's (n, v, d) table: link values get codes of their own per link (a value links only
        within its column)."""
        values, offset = [], 0
        for p in pairs:
            values.append(_codes([p["v"]])[0] + offset)
            offset = int(values[-1].max()) + 1 if p.num_rows else offset
        empty = np.zeros(0, np.int64)
        a = np.concatenate(node_codes) if pairs else empty
        b = np.concatenate(values) if pairs else empty
        d = np.concatenate([p["d"].to_numpy() for p in pairs]) if pairs else empty
        order = np.argsort(d, kind="stable")
        return cls(a[order], b[order], d[order])


def _daily(edges: Edges, q_codes: np.ndarray, q_days: np.ndarray, w: int, max_degree: int | None,
           features: list[Feature], fraud: dict[int, tuple]) -> dict[str, np.ndarray]:
    """Every feature for the query (node, day) pairs: one graph per query day."""
    values = {f.name: np.empty(len(q_codes)) for f in features}
    order = np.argsort(q_days, kind="stable")
    q_sorted = q_days[order]
    for day in distinct(q_days):
        lo, hi = np.searchsorted(edges.d, [day - w, day])
        g = day_graph(edges.a[lo:hi], edges.b[lo:hi], max_degree)
        at = order[np.searchsorted(q_sorted, day):np.searchsorted(q_sorted, day, "right")]
        for f in features:
            known = None
            if f.graph == "fraud_share":
                codes, s, e = fraud[_delay_days(f)]
                known = codes[(s <= day) & (e >= day)]
            values[f.name][at] = node_values(g, q_codes[at], f.graph, known)
    return values


def graph_side_table(con: duckdb.DuckDBPyConnection, dataset: Dataset, features: list[Feature], base: str,
                     table: str) -> None:
    """Create TEMP TABLE `table` (`_pos`, one column per graph feature) with a row for every row of `base`.

    Args:
        con: a connection holding `events` (the decision stream, original columns) and the `stream_NAME` tables.
        dataset: the dataset spec (streams, label and label_time columns).
        features: the features to compute (only graph features are read).
        base: a table with the node column(s) under the events' names, `_t` (epoch µs) and `_pos` (unique row id);
            a row's day is floor(_t / 86,400e6) (UTC).
        table: the name of the table to create.

    A row whose node is NULL gets NULL; a node without a link in its day's window gets component_size 1, degree 0,
    fraud_share 0.
    """
    values = graph_values(GraphSource.of(con), dataset, features, base)
    for name, rows in values.items():
        con.register(name, rows)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {render(graph_query(features, base))}")
    for name in values:
        con.unregister(name)


def graph_values(source: GraphSource, dataset: Dataset, features: list[Feature], base: str) -> dict[str, pa.Table]:
    """Per group of graph features, the table `__graph_values_<i>` that `graph_query` joins: (n, d, one column
    per feature) for every distinct (node, day) of `base`'s rows (`graph_side_table` says what `base` holds)."""
    return {f"__graph_values_{i}": _group_values(source, dataset, key, group, base)
            for i, (key, group) in enumerate(graph_groups(features).items())}


def graph_query(features: list[Feature], base: str) -> exp.Select:
    """`_pos` and one column per graph feature for every row of `base`, from the tables of `graph_values`."""
    columns: list[exp.Expression] = [exp.column("_pos", "b")]
    query = exp.select().from_(exp.to_table(base).as_("b"))
    for i, (key, group) in enumerate(graph_groups(features).items()):
        name, g, node = f"__graph_values_{i}", f"g{i}", exp.column(key[0], "b", quoted=True)
        on = fill(":bn = :gn AND :day = :gd", bn=node, gn=exp.column("n", g), day=day_of(exp.column("_t", "b")),
                  gd=exp.column("d", g))
        query = query.join(exp.to_table(name).as_(g), on=on, join_type="LEFT")
        for f in group:
            value = fill("CASE WHEN :n IS NULL THEN NULL ELSE coalesce(:v, :e) END", n=node,
                         v=exp.column(f.name, g, quoted=True), e=lit(EMPTY[f.graph]))
            columns.append(alias(value if f.graph == "fraud_share" else exp.cast(value, "BIGINT"), f.name))
    return query.select(*columns)
