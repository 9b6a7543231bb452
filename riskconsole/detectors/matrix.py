"""From the `frame` table to model inputs: feature checks (leakage guards), time windows, float32 matrices.

Every query is built from sqlglot ASTs; feature names are quoted identifiers, times are literals.

Numbers and booleans are read as floats. Text columns are categories, turned into numbers by an
`Encoding` fitted on the rows a model is trained on and saved with it (`categories.json`):
- `category codes` (LightGBM, which splits on categories natively): the training values, most
  frequent first (ties by value), capped at `MAX_CATEGORIES`, become codes 0, 1, 2, ...; a value
  never seen in training, one beyond the cap, or NULL reads as missing (NaN), which LightGBM sends
  down its missing branch. Codes are fixed at training, so new values in later data never shift them.
- `frequency` (PyOD, whose models measure distances between numbers): each value reads as its share
  of the training rows (NULL counts as a value of its own); a value never seen in training reads 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from riskconsole.backtest import parse_moment
from riskconsole.config import Dataset, Detector, Window
from riskconsole.errors import ConfigError, DataError, closest
from riskconsole.features import NUMERIC
from riskconsole.names import internal_collision
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.strategy import INTERNAL

FRAME = "frame"
TEXT = ("VARCHAR", "ENUM")
CODES, FREQUENCY = "category codes", "frequency"
MAX_CATEGORIES = 255      # LightGBM's default max_bin: more codes than bins only adds noise
MAX_FREQUENCIES = 10_000  # frequency table size kept for PyOD; rarer values read as unseen (share 0)
CATEGORIES_FILE = "categories.json"


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


def _is_list(dtype: str) -> bool:
    return dtype.endswith("]")  # INTEGER[], VARCHAR[3]: a list or array of values, not one value


def _is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith((*NUMERIC, "DECIMAL")) and not _is_list(dtype)


def is_text(dtype: str) -> bool:
    """Text (VARCHAR or ENUM): read by models as a category."""
    return dtype.upper().startswith(TEXT) and not _is_list(dtype)


def _unreadable(name: str, dtype: str) -> str:
    """Why a column of this type cannot be a model input, and a feature that would fix it."""
    upper = dtype.upper()
    if upper.startswith(("TIMESTAMP", "DATE", "TIME")):
        example = f'hour({name})'
    elif _is_list(upper) or upper.startswith("MAP"):
        example = f'length({name})'
    else:
        example = f"CAST({name} AS VARCHAR)"
    return (f"is {dtype}, which a model cannot read (it reads numbers, booleans and text as categories): add a "
            f"feature to dataset.yaml that makes one number or text of it, e.g. sql: \"{example}\"")


def check_features(spec: Detector, dataset: Dataset, types: dict[str, str], label: str) -> None:
    """Leakage and type guards: every feature is a known, readable (number or text), non-hidden frame column.

    Raises:
        ConfigError: one line naming the file, the feature and the fix.
    """
    hidden = set(dataset.hidden_columns)
    usable = [c for c in types if c not in hidden and c not in INTERNAL
              and (_is_numeric(types[c]) or is_text(types[c]))]
    if not spec.features:
        raise ConfigError(f"{label}: features: the list is empty (name numeric or text columns or features "
                          "of the frame)")
    for name in spec.features:
        where = f"{label}: feature '{name}'"
        if name in hidden:
            raise ConfigError(f"{where}: is the label or derived from it (columns.label / label_time / "
                              "label_derived): a model may not read the answer; remove it")
        if name in INTERNAL:
            raise ConfigError(f"{where}: is an internal row number (time order), not a feature; remove it")
        if name not in types:
            role = dataset.columns.role_columns().get(name)  # `amount` where the amount is the column 'Total'
            near = closest(name, usable)
            hint = f"the {name} role is the column '{role}' here; write {role}" if role in usable else \
                f"did you mean '{near}'?" if near else f"readable columns: {', '.join(usable)}"
            raise ConfigError(f"{where}: not a column or feature of the loaded frame ({hint})")
        if not (_is_numeric(types[name]) or is_text(types[name])):
            raise ConfigError(f"{where}: {_unreadable(name, types[name])}")
    dupes = sorted({f for f in spec.features if spec.features.count(f) > 1})
    if dupes:
        raise ConfigError(f"{label}: features: '{dupes[0]}' is listed twice")
    problem = internal_collision(spec.name, label, "name:", fix="rename the detector")
    if problem:
        raise ConfigError(problem)
    if spec.name in types:
        raise ConfigError(f"{label}: name: '{spec.name}' is already a column of the frame; its score column "
                          "would be hidden by it (rename the detector)")


# ------------------------------------------------------------------ text features as numbers


def _as_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Plain Arrow strings (DuckDB may hand out string views or large strings, depending on settings)."""
    return column if column.type == pa.string() else pc.cast(column, pa.string())


@dataclass(frozen=True)
class Categories:
    """One text feature's training values (in code order) and how many training rows held each."""

    method: str
    values: list[str | None]
    counts: list[int]
    rows: int
    beyond_cap: int = 0

    @classmethod
    def fit(cls, column: pa.ChunkedArray, method: str) -> Categories:
        """Count the values of a training column; most frequent first, ties by value."""
        counted = pa.Table.from_struct_array(pc.value_counts(_as_string(column))) if len(column) else None
        if counted is None:
            return cls(method, [], [], 0)
        if method == CODES:
            counted = counted.filter(pc.is_valid(counted["values"]))
        counted = counted.sort_by([("counts", "descending"), ("values", "ascending")])
        cap = MAX_CATEGORIES if method == CODES else MAX_FREQUENCIES
        kept = counted.slice(0, cap)
        return cls(method, kept["values"].to_pylist(), kept["counts"].to_pylist(), len(column),
                   max(counted.num_rows - cap, 0))

    def encode(self, column: pa.ChunkedArray) -> np.ndarray:
        """The column as float32: codes (NaN for NULL, unseen and beyond-cap values) or training shares."""
        index = pc.index_in(_as_string(column), value_set=pa.array(self.values, pa.string()), skip_nulls=False)
        if self.method == CODES:
            return pc.cast(index, pa.float32()).to_numpy(zero_copy_only=False)
        shares = pa.array(self.shares(), pa.float64())
        return pc.take(shares, index).fill_null(0.0).to_numpy(zero_copy_only=False).astype(np.float32)

    def shares(self) -> list[float]:
        """Each value's share of the training rows."""
        return [c / self.rows for c in self.counts]


@dataclass(frozen=True)
class Encoding:
    """How a model reads its features: numbers as floats, text through training-fitted `Categories`.

    `method` is how text becomes numbers for this model (CODES or FREQUENCY); `text` holds the fitted
    categories of each text feature (empty until `fit`).
    """

    features: tuple[str, ...]
    text_features: tuple[str, ...] = ()
    method: str = CODES
    text: dict[str, Categories] = field(default_factory=dict)

    @classmethod
    def plan(cls, features: list[str], types: dict[str, str], method: str) -> Encoding:
        """An unfitted encoding: which features are text, per the frame's column types."""
        return cls(tuple(features), tuple(f for f in features if is_text(types[f])), method)

    @property
    def categorical(self) -> list[int]:
        """Column indices that hold category codes (what LightGBM's `categorical_feature` takes)."""
        if self.method != CODES:
            return []
        return [j for j, f in enumerate(self.features) if f in self.text_features]

    def select(self, extra: list[exp.Expression]) -> exp.Select:
        """`SELECT f0, f1, ... , extra FROM frame`: numbers as FLOAT, text as VARCHAR."""
        cols = [alias(fill("CAST(:c AS VARCHAR)" if f in self.text_features else "CAST(:c AS FLOAT)", c=ident(f)),
                      f"f{i}") for i, f in enumerate(self.features)]
        return exp.select(*cols, *extra).from_(exp.to_table(FRAME))

    def fit(self, table: pa.Table) -> Encoding:
        """The categories of every text feature, counted on these (training) rows."""
        fitted = {f: Categories.fit(table.column(f"f{self.features.index(f)}"), self.method)
                  for f in self.text_features}
        return replace(self, text=fitted)

    def matrix(self, table: pa.Table, dtype: type = np.float32) -> np.ndarray:
        """Columns f0..f{n-1} of an Arrow table as a C-ordered float32 matrix (NULL -> NaN, text encoded).

        `dtype=np.float64` gives the same float32 values widened (exactly), for predictors that read doubles.
        """
        X = np.empty((table.num_rows, len(self.features)), dtype=dtype)
        for j, name in enumerate(self.features):
            column = table.column(f"f{j}")
            X[:, j] = self.text[name].encode(column) if name in self.text else column.to_numpy(zero_copy_only=False)
        return X

    def describe(self) -> list[dict]:
        """One entry per text feature, for the model card: encoding, category count, most frequent values."""
        out = []
        for name in self.text_features:
            cats = self.text[name]
            top = [{"value": v, "share": round(s, 6)} for v, s in zip(cats.values[:10], cats.shares()[:10])]
            out.append({"feature": name, "encoding": _ENCODING_NAMES[self.method], "categories": len(cats.values),
                        "beyond_cap": cats.beyond_cap, "unseen": _UNSEEN[self.method], "top": top})
        return out

    def save(self, folder: Path) -> None:
        """Write `categories.json`: the method and, per text feature, its values in code order with counts."""
        body = {"features": list(self.features), "method": self.method,
                "text": {f: {"values": c.values, "counts": c.counts, "rows": c.rows, "beyond_cap": c.beyond_cap}
                         for f, c in self.text.items()}}
        (folder / CATEGORIES_FILE).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path, features: list[str]) -> Encoding:
        """The encoding saved in a model folder; a folder without one (older models) reads numbers only."""
        path = folder / CATEGORIES_FILE
        if not path.exists():
            return cls(tuple(features))
        body = json.loads(path.read_text())
        text = {f: Categories(body["method"], c["values"], c["counts"], c["rows"], c["beyond_cap"])
                for f, c in body["text"].items()}
        return cls(tuple(body["features"]), tuple(text), body["method"], text)


_ENCODING_NAMES = {CODES: "LightGBM native categorical (category codes from the training window)",
                   FREQUENCY: "frequency encoding (training window)"}
_UNSEEN = {CODES: "missing (LightGBM's missing branch), like NULL",
           FREQUENCY: "share 0 (as rare as can be)"}


UNSEEN_EVENTS = 10  # events holding one text value a model does not know, from which load and train warn


def unseen_values(con: duckdb.DuckDBPyConnection, encoding: Encoding
                  ) -> list[tuple[str, int, list[tuple], tuple[int, int]]]:
    """Per text feature of a fitted encoding whose events hold a value not among its training categories that
    UNSEEN_EVENTS or more of them hold (a new payment method, a new channel): (feature, the events holding such
    values, the 3 most held with their counts, (events, values) of the rarer unseen values). A long tail of values
    each held by a few events (names, domains, values beyond the training cap) is no warning on its own: every new
    day brings some, and retraining would not make them known. NULL is not counted (read as in training)."""
    found = []
    for name, cats in encoding.text.items():
        query = fill("SELECT v, count(*) AS n FROM (SELECT CAST(:c AS VARCHAR) AS v FROM frame) AS t "
                     "WHERE v IS NOT NULL AND NOT list_contains(?, v) GROUP BY v ORDER BY n DESC, v", c=ident(name))
        counts = con.execute(render(query), [[v for v in cats.values if v is not None]]).fetchall()
        common = [(v, n) for v, n in counts if n >= UNSEEN_EVENTS]
        if common:
            rare = counts[len(common):]
            found.append((name, sum(n for _, n in common), common[:3], (sum(n for _, n in rare), len(rare))))
    return found


def learned(encoding: Encoding) -> dict[str, tuple[set, str]]:
    """Per text feature: the values the model learned in training, and how it reads any other (for `explain`)."""
    return {name: ({v for v in cats.values if v is not None}, _UNSEEN[encoding.method])
            for name, cats in encoding.text.items()}


def unseen_warning(name: str, encoding: Encoding, feature: str, events: int, top: list[tuple],
                   rare: tuple[int, int] = (0, 0)) -> str:
    """One line: which events hold text values detector `name` did not learn in training, and how it reads them."""
    values = ", ".join(f"{v!r} {n:,}" for v, n in top)
    kept = len([v for v in encoding.text[feature].values if v is not None])
    tail = f"; {rare[0]:,} more hold {rare[1]:,} rarer new values" if rare[0] else ""
    return (f"detector '{name}': {events:,} events hold {feature} values that are not among the {kept:,} it learned "
            f"in training ({values}{tail}); it reads them as {_UNSEEN[encoding.method]}: retrain it on a window that "
            f"holds them (riskconsole train detectors/{name}.yaml)")


# ------------------------------------------------------------------ reading rows


def label_expr(dataset: Dataset) -> exp.Expression:
    """The label as a float (NaN where unknown), or all-NaN when no label column is mapped."""
    if not dataset.columns.label:
        return fill("CAST(NULL AS FLOAT)")
    return fill("CAST(:l AS FLOAT)", l=ident(dataset.columns.label))


def window_rows(con: duckdb.DuckDBPyConnection, encoding: Encoding, dataset: Dataset, span: Span,
                labelled: bool) -> tuple[pa.Table, np.ndarray]:
    """(raw rows, y) of a window in time order; `labelled` keeps rows with a known label only.

    The rows are Arrow columns f0..f{n-1}, text not yet encoded: `encoding.matrix` makes them X.
    """
    query = encoding.select([alias(label_expr(dataset), "y")]).where(span.where(dataset.columns.time))
    if labelled:
        query = query.where(fill(":l IS NOT NULL", l=label_expr(dataset)))
    table = con.sql(render(query.order_by("_pos"))).to_arrow_table()
    return table, table.column("y").to_numpy(zero_copy_only=False)


def sample_rows(con: duckdb.DuckDBPyConnection, encoding: Encoding, dataset: Dataset, span: Span,
                cap: int, seed: int) -> pa.Table:
    """Raw rows of at most `cap` events of a window: a seeded uniform sample, so big windows stay cheap."""
    query = exp.select("_pos").from_(FRAME).where(span.where(dataset.columns.time))
    pos = con.sql(render(query)).to_arrow_table().column(0).to_numpy()
    if len(pos) > cap:
        pos = np.sort(np.random.default_rng(seed).choice(pos, cap, replace=False))
    con.register("_picked", pa.table({"_pos": pa.array(pos, pa.int64())}))
    try:
        query = encoding.select([]).join(exp.to_table("_picked"), using=["_pos"]).order_by("_pos")
        return con.sql(render(query)).to_arrow_table()
    finally:
        con.unregister("_picked")


def position_range(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Smallest and largest `_pos` of the frame (0, -1 when it is empty)."""
    lo, hi = con.execute("SELECT min(_pos), max(_pos) FROM frame").fetchall()[0]
    return (int(lo), int(hi)) if lo is not None else (0, -1)


def chunk_rows(con: duckdb.DuckDBPyConnection, encoding: Encoding, lo: int, hi: int,
               dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(`_pos`, X) of the frame's rows with `_pos` in [lo, hi], encoded as the model was trained (`dtype`: see
    `Encoding.matrix`)."""
    query = encoding.select([exp.column("_pos")]).where(fill("_pos BETWEEN :a AND :b", a=lo, b=hi))
    table = con.sql(render(query.order_by("_pos"))).to_arrow_table()
    return table.column("_pos").to_numpy(), encoding.matrix(table, dtype)
