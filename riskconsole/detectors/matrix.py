"""From the `frame` table to model inputs: feature checks (leakage guards), time windows, float32 matrices.

Every query is built from sqlglot ASTs; feature names are quoted identifiers, times are literals.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
from sqlglot import exp

from riskconsole.backtest import parse_moment
from riskconsole.config import Dataset, Detector, Window
from riskconsole.errors import ConfigError, DataError
from riskconsole.features import NUMERIC
from riskconsole.names import internal_collision
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.strategy import INTERNAL

FRAME = "frame"


@dataclass(frozen=True)
class Span:
    """A half-open time range [start, end) read from a YAML window (dates are whole days)."""

    start: datetime
    end: datetime

    @property
    def days(self) -> dict:
        """`{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`, both days included (what cards and reports show)."""
        return {"from": self.start.date().isoformat(), "to": (self.end - timedelta(microseconds=1)).date().isoformat()}

    def where(self, time_column: str) -> exp.Expression:
        """`start <= time < end` over the time column."""
        return fill(":t >= CAST(:a AS TIMESTAMP) AND :t < CAST(:b AS TIMESTAMP)", t=ident(time_column),
                    a=lit(self.start.isoformat(sep=" ")), b=lit(self.end.isoformat(sep=" ")))


def span_of(window: Window, where: str) -> Span:
    """Parse a detector window; `to` before `from` is an error."""
    start = parse_moment(window.from_, what=f"{where}.from")
    end = parse_moment(window.to, end=True, what=f"{where}.to")
    if end <= start:
        raise ConfigError(f"{where}: 'to' ({window.to}) is before 'from' ({window.from_}): the window is empty")
    return Span(start, end)


def frame_types(con: duckdb.DuckDBPyConnection, label: str) -> dict[str, str]:
    """Column name -> DuckDB type of `frame`; no frame yet is a DataError."""
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'frame' "
                       "AND table_schema = 'main' ORDER BY ordinal_position").fetchall()
    if not rows:
        raise DataError(f"{label}: no events loaded yet (run `riskconsole load` or `riskconsole demo` first)")
    return dict(rows)


def _is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith(NUMERIC) or dtype.upper().startswith("DECIMAL")


def check_features(spec: Detector, dataset: Dataset, types: dict[str, str], label: str) -> None:
    """Leakage and type guards: every feature is a known, numeric, non-hidden column of the frame.

    Raises:
        ConfigError: one line naming the file, the feature and the fix.
    """
    hidden = set(dataset.hidden_columns)
    usable = [c for c in types if c not in hidden and c not in INTERNAL and _is_numeric(types[c])]
    if not spec.features:
        raise ConfigError(f"{label}: features: the list is empty (name numeric columns or features of the frame)")
    for name in spec.features:
        where = f"{label}: feature '{name}'"
        if name in hidden:
            raise ConfigError(f"{where}: is the label or derived from it (columns.label / label_time / "
                              "label_derived): a model may not read the answer; remove it")
        if name in INTERNAL:
            raise ConfigError(f"{where}: is an internal row number (time order), not a feature; remove it")
        if name not in types:
            near = difflib.get_close_matches(name, usable, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"numeric columns: {', '.join(usable)}"
            raise ConfigError(f"{where}: not a column or feature of the loaded frame ({hint})")
        if not _is_numeric(types[name]):
            raise ConfigError(f"{where}: is {types[name]}, models read numbers only (add a numeric feature "
                              "to dataset.yaml, e.g. sql: \"CASE WHEN x = 'a' THEN 1 ELSE 0 END\")")
    dupes = sorted({f for f in spec.features if spec.features.count(f) > 1})
    if dupes:
        raise ConfigError(f"{label}: features: '{dupes[0]}' is listed twice")
    problem = internal_collision(spec.name, label, "name:", fix="rename the detector")
    if problem:
        raise ConfigError(problem)
    if spec.name in types:
        raise ConfigError(f"{label}: name: '{spec.name}' is already a column of the frame; its score column "
                          "would be hidden by it (rename the detector)")


def _select(features: list[str], extra: list[exp.Expression]) -> exp.Select:
    cols = [alias(fill("CAST(:c AS FLOAT)", c=ident(f)), f"f{i}") for i, f in enumerate(features)]
    return exp.select(*cols, *extra).from_(exp.to_table(FRAME))


def to_matrix(table: pa.Table, n_features: int) -> np.ndarray:
    """Columns f0..f{n-1} of an Arrow table as a C-ordered float32 matrix (NULL -> NaN)."""
    X = np.empty((table.num_rows, n_features), dtype=np.float32)
    for j in range(n_features):
        X[:, j] = table.column(f"f{j}").to_numpy(zero_copy_only=False)
    return X


def label_expr(dataset: Dataset) -> exp.Expression:
    """The label as a float (NaN where unknown), or all-NaN when no label column is mapped."""
    if not dataset.columns.label:
        return fill("CAST(NULL AS FLOAT)")
    return fill("CAST(:l AS FLOAT)", l=ident(dataset.columns.label))


def window_rows(con: duckdb.DuckDBPyConnection, features: list[str], dataset: Dataset, span: Span,
                labelled: bool) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of the frame's rows in a window, in time order; `labelled` keeps rows with a known label only."""
    query = _select(features, [alias(label_expr(dataset), "y")]).where(span.where(dataset.columns.time))
    if labelled:
        query = query.where(fill(":l IS NOT NULL", l=label_expr(dataset)))
    table = con.sql(render(query.order_by("_pos"))).to_arrow_table()
    return to_matrix(table, len(features)), table.column("y").to_numpy(zero_copy_only=False)


def sample_rows(con: duckdb.DuckDBPyConnection, features: list[str], dataset: Dataset, span: Span,
                cap: int, seed: int) -> np.ndarray:
    """X of at most `cap` rows of a window: a seeded uniform sample, so big windows stay cheap to read."""
    query = exp.select("_pos").from_(FRAME).where(span.where(dataset.columns.time))
    pos = con.sql(render(query)).to_arrow_table().column(0).to_numpy()
    if len(pos) > cap:
        pos = np.sort(np.random.default_rng(seed).choice(pos, cap, replace=False))
    con.register("_picked", pa.table({"_pos": pa.array(pos, pa.int64())}))
    try:
        query = _select(features, []).join(exp.to_table("_picked"), using=["_pos"]).order_by("_pos")
        table = con.sql(render(query)).to_arrow_table()
    finally:
        con.unregister("_picked")
    return to_matrix(table, len(features))


def position_range(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Smallest and largest `_pos` of the frame (0, -1 when it is empty)."""
    lo, hi = con.execute("SELECT min(_pos), max(_pos) FROM frame").fetchall()[0]
    return (int(lo), int(hi)) if lo is not None else (0, -1)


def chunk_rows(con: duckdb.DuckDBPyConnection, features: list[str], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(`_pos`, X) of the frame's rows with `_pos` in [lo, hi]."""
    query = _select(features, [exp.column("_pos")]).where(fill("_pos BETWEEN :a AND :b", a=lo, b=hi))
    table = con.sql(render(query.order_by("_pos"))).to_arrow_table()
    return table.column("_pos").to_numpy(), to_matrix(table, len(features))
