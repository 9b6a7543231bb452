"""Entity-level strategies on Spark (DESIGN §3.2, §7): the entity frame built by Spark and backtests over it.

`entities.build` runs its steps (the same DuckDB-dialect ASTs) through `SparkTables`: each step a checkpointed
Spark view over the exported events, streams and tables, rendered with `engine.render`; graph features go through
graphs.py's queries as for the event frame. The frame's rows are written once per (data version, dataset spec,
level) under `data/spark/<version>/entities/` and read by Spark as a view; `EntityRunner` runs a strategy's
queries with that view where they say `frame`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from riskconsole import entities
from riskconsole.config import Dataset, Feature, Level
from riskconsole.engines.spark_render import first_line, render
from riskconsole.entities import EntityView
from riskconsole.errors import DataError
from riskconsole.graphs import GraphSource, graph_query, graph_values
from riskconsole.strategy import CompiledStrategy

ENTITIES_DIR = "entities"  # under data/spark/<version>/


def naive_times(table: pa.Table) -> pa.Table:
    """Spark's TIMESTAMP columns (UTC instants, the session's zone) as DuckDB's TIMESTAMP: the same microseconds,
    without a time zone."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
              for f in table.schema]
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table


class SparkTables:
    """The steps of an entity frame as Spark views (`entities.Tables`), over the engine's exported data."""

    sweep = True  # distinct counts, min, max, stddev by sweeps (streams.py): Spark's bounded frames are O(k^2) per key

    def __init__(self, engine: Any, con: duckdb.DuckDBPyConnection, entity: str, label: str) -> None:
        """`con` is the loaded DuckDB database: its types cast graph nodes and links as on DuckDB."""
        self.engine, self.spark, self.con, self.label = engine, engine.spark, con, label
        self._entity_type = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())[entity]
        self.entity = entity

    def _failed(self, err: Exception) -> DataError:
        return DataError(f"{self.label}: building the entity frame on engine spark failed: {first_line(err)} "
                         "(--engine duckdb builds it with DuckDB)")

    def _run(self, query: exp.Expression, then: Any) -> Any:
        """`then(DataFrame)` of the query rendered for Spark; a Spark error is one line naming the step's strategy."""
        sql = render(query, f"{self.label}: entity frame")
        try:
            return then(self.spark.sql(sql))
        except Exception as err:  # noqa: BLE001 - pyspark raises many kinds; the user needs one line
            raise self._failed(err) from None

    def create(self, name: str, query: exp.Expression) -> None:
        self._run(query, lambda frame: frame.localCheckpoint().createOrReplaceTempView(name))

    def fetch(self, query: exp.Expression) -> pa.Table:
        return naive_times(self._run(query, lambda frame: frame.toArrow()))

    def graph(self, dataset: Dataset, features: list[Feature], base: str, table: str) -> None:
        duck = GraphSource.of(self.con)

        def types(name: str) -> dict[str, str]:
            return {self.entity: self._entity_type, "_t": "BIGINT", "_pos": "BIGINT"} if name == base \
                else duck.types(name)

        values = graph_values(GraphSource(types, self.fetch), dataset, features, base)
        for name, rows in values.items():
            self.spark.createDataFrame(rows).createOrReplaceTempView(name)
        try:
            self.create(table, graph_query(features, base))
        finally:
            for name in values:
                self.spark.catalog.dropTempView(name)

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.spark.catalog.dropTempView(name)


def entity_view(engine: Any, con: duckdb.DuckDBPyConnection, level: Level, label: str) -> tuple[EntityView, str]:
    """The level's entity frame built on Spark (or read from this data version's folder) and the Spark view that
    holds its rows."""
    dataset: Dataset = engine.dataset
    saved = (ENTITIES_DIR, entities.cache_name(engine.version, dataset, level))
    with engine.store.reading(*saved) as path:
        view = entities.load_saved(con, path, dataset, level)
    if view is None:
        engine.export(con)
        engine.register_exports()
        engine.progress(f"spark: building the {level.entity} entity frame on {engine.master} ...")
        view = entities.build(con, dataset, level, label, SparkTables(engine, con, level.entity, label))
        with engine.store.writing(*saved) as path:
            entities.save(path, view)
    name = "__entity_frame_" + hashlib.sha1(engine.store.uri(*saved).encode()).hexdigest()[:12]
    engine.spark.read.parquet(engine.store.read_uri(*saved)).createOrReplaceTempView(name)
    return view, name


def _swap_frame(view: str):
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name == "frame" and not node.args.get("db"):
            copy = node.copy()
            copy.set("this", exp.to_identifier(view))
            return copy
        return node

    return swap


class EntityRunner:
    """The Spark engine answering an entity-level strategy: its queries read the entity frame's view as `frame`."""

    name = "spark"

    def __init__(self, engine: Any, view: str) -> None:
        self.engine, self.view = engine, view

    def check(self, compiled: CompiledStrategy, label: str) -> None:
        self.engine.check(compiled, label)

    def arrow(self, query: exp.Expression, strategy: str) -> pa.Table:
        return self.engine.arrow(query.transform(_swap_frame(self.view)), strategy)
