"""Load event files (CSV, Parquet, JSON Lines) into DuckDB by the roles of a dataset spec.

No row is dropped silently: every row lands in `events` or in `quarantine` (with a reason),
and read = loaded + quarantined. Loading runs in one transaction, so a failure changes nothing.
"""

from __future__ import annotations

import glob
import json
import time
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

import duckdb
import yaml
from sqlglot import exp

from riskconsole.config import Dataset
from riskconsole.errors import DataError
from riskconsole.features import build_frame
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.workspace import Workspace

FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".json": "json", ".jsonl": "json", ".ndjson": "json"}
_READERS = {
    "csv": "SELECT * FROM read_csv($files, all_varchar = true, union_by_name = true, filename = '_file') "
           "WITH ORDINALITY",
    "parquet": "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS ordinality FROM "
               "read_parquet($files, union_by_name = true, filename = '_file', file_row_number = true)",
    "json": "SELECT * FROM read_json($files, union_by_name = true, filename = '_file') WITH ORDINALITY",
}
_SNIFF = {"csv": "DESCRIBE SELECT * FROM read_csv($files, union_by_name = true)"}
_LABEL_VALUES = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0}


@dataclass
class LoadResult:
    """What `load` did: counts that add up, reasons, features built."""

    read: int
    loaded: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """`read 1,000 = loaded 990 + quarantined 10`, with the reasons."""
        line = f"read {self.read:,} = loaded {self.loaded:,} + quarantined {self.quarantined:,}"
        if self.reasons:
            line += " (" + "; ".join(f"{n:,} {r}" for r, n in self.reasons.items()) + ")"
        return line


def source_files(ws: Workspace, dataset: Dataset, label: str) -> tuple[list[str], str]:
    """The sorted files matched by `source`, and their common format."""
    pattern = str(ws.path(dataset.source))
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        raise DataError(f"{label}: source '{dataset.source}' matches no file (looked for {pattern})")
    formats = {FORMATS.get(Path(f).suffix.lower()) for f in files}
    if None in formats or len(formats) > 1:
        raise DataError(f"{label}: source '{dataset.source}' must match files of one format "
                        f"(.csv, .parquet, .json/.jsonl); got {', '.join(sorted({Path(f).suffix for f in files}))}")
    return files, formats.pop()


def column_types(con: duckdb.DuckDBPyConnection, fmt: str, files: list[str]) -> dict[str, str]:
    sniff = _SNIFF.get(fmt, "DESCRIBE " + _READERS[fmt])
    rows = con.execute(sniff, {"files": files}).fetchall()
    return {name: dtype for name, dtype, *_ in rows if name not in ("_file", "ordinality")}


def _check_columns(dataset: Dataset, types: dict[str, str], label: str) -> None:
    roles = dataset.columns
    wanted = [(f"columns.{k}", getattr(roles, k)) for k in ("id", "time", "label", "label_time", "amount")]
    wanted += [("columns.entities", c) for c in roles.entities] + [("columns.label_derived", c) for c in roles.label_derived]
    wanted += [(f"types.{c}", c) for c in dataset.types]
    for column, dtype in dataset.types.items():
        try:
            exp.DataType.build(dtype, dialect="duckdb")
        except Exception:  # noqa: BLE001 - any parse failure means "not a type"
            raise DataError(f"{label}: types.{column}: '{dtype}' is not a DuckDB type "
                            "(e.g. INTEGER, BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE, TIMESTAMP)") from None
    for where, column in wanted:
        if column and column not in types:
            near = get_close_matches(column, list(types), n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"source has: {', '.join(types)}"
            raise DataError(f"{label}: {where}: column '{column}' is not in the source ({hint})")


def _target_types(dataset: Dataset, types: dict[str, str]) -> dict[str, str]:
    """DuckDB type of every loaded column: roles fixed by the contract, the rest inferred or declared."""
    roles = dataset.columns
    target = {c: ("VARCHAR" if t == "JSON" else t) for c, t in types.items()}
    target.update(dataset.types)
    fixed = {roles.id: "VARCHAR", roles.time: "TIMESTAMP", roles.label_time: "TIMESTAMP",
             roles.amount: "DOUBLE", roles.label: "TINYINT"}
    target.update({c: t for c, t in fixed.items() if c})
    return target


def _as_text(column: str, raw_type: str) -> exp.Expression:
    if raw_type == "JSON":
        return fill("trim(CAST(:c AS VARCHAR), '\"')", c=ident(column))
    return fill("CAST(:c AS VARCHAR)", c=ident(column))


def _typed(column: str, raw_type: str, target: str, dataset: Dataset) -> exp.Expression:
    """Cast one raw column to its target type; NULL where the cast fails."""
    text = _as_text(column, raw_type)
    if column == dataset.columns.label:
        # -1 marks a value that is not a label; such rows go to quarantine
        word = fill("lower(trim(:t))", t=text)
        ones = [lit(k) for k, v in _LABEL_VALUES.items() if v == 1]
        zeros = [lit(k) for k, v in _LABEL_VALUES.items() if v == 0]
        node = exp.Case(ifs=[
            exp.If(this=fill(":w IS NULL OR :w = ''", w=word), true=lit(None)),
            exp.If(this=exp.In(this=word, expressions=ones), true=lit(1)),
            exp.If(this=exp.In(this=word, expressions=zeros), true=lit(0)),
        ], default=lit(-1))
        return fill("CAST(:x AS TINYINT)", x=node)
    if column == dataset.columns.id:
        return fill("nullif(trim(:t), '')", t=text)
    if raw_type == target:
        return ident(column)
    source = text if raw_type in ("JSON", "VARCHAR") else ident(column)
    return exp.TryCast(this=source, to=exp.DataType.build(target, dialect="duckdb"))


def _reason(dataset: Dataset, types: dict[str, str], target: dict[str, str]) -> exp.Expression:
    """CASE giving the first reason a row cannot load (NULL when it can)."""
    roles = dataset.columns
    whens = [(fill(":c IS NULL", c=ident("__" + roles.id)), "missing id"),
             (fill(":c IS NULL", c=ident(roles.time)), "missing time")]
    for column in types:
        if column == roles.id:
            continue
        if column == roles.label:
            whens.append((fill(":c = -1", c=ident("__" + column)), f"{column}: label must be 1, 0 or empty"))
            continue
        bad = fill(":raw IS NOT NULL AND :cast IS NULL", raw=ident(column), cast=ident("__" + column))
        whens.append((bad, f"{column}: not a valid {target[column]}"))
    whens.append((fill("__dup > 1"), "duplicate id"))
    ifs = [exp.If(this=cond, true=lit(text)) for cond, text in whens]
    return exp.Case(ifs=ifs)


def _stage(con: duckdb.DuckDBPyConnection, dataset: Dataset, fmt: str, files: list[str],
           types: dict[str, str]) -> None:
    """Temp table `_staged`: raw columns, their casts (`__col`), source position and reason."""
    target = _target_types(dataset, types)
    con.execute("CREATE OR REPLACE TEMP TABLE _raw AS " + _READERS[fmt], {"files": files})
    raw = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE _raw)").fetchall())
    casts = [alias(_typed(c, raw[c], target[c], dataset), "__" + c) for c in types]
    con.execute(render(fill(
        "CREATE OR REPLACE TEMP TABLE _cast AS SELECT *, list_position(:files, _file) AS __file FROM _raw",
        files=exp.Array(expressions=[lit(f) for f in files]))))
    cast = exp.select("*", *casts).from_("_cast")
    dup = fill("row_number() OVER (PARTITION BY :id ORDER BY __file, ordinality)", id=ident("__" + dataset.columns.id))
    staged = exp.select("*", alias(dup, "__dup")).from_(cast.subquery("c"))
    final = exp.select("*", alias(_reason(dataset, types, target), "__reason")).from_(staged.subquery("s"))
    con.execute("CREATE OR REPLACE TEMP TABLE _staged AS " + render(final))


def _publish(con: duckdb.DuckDBPyConnection, dataset: Dataset, types: dict[str, str]) -> None:
    """Replace `events` and `quarantine` from `_staged` (inside the caller's transaction)."""
    loaded = [alias(ident("__" + c), c) for c in types]
    roles = dataset.columns
    events = exp.select(*loaded).from_("_staged").where("__reason IS NULL").order_by(
        ident("__" + roles.time), ident("__" + roles.id))
    con.execute("CREATE OR REPLACE TABLE events AS " + render(events))
    raw = [alias(fill("CAST(:c AS VARCHAR)", c=ident(c)), c) for c in types]
    quarantine = exp.select(*raw, alias(ident("__reason"), "reason"), alias(ident("_file"), "file"),
                            alias(ident("ordinality"), "row")).from_("_staged").where("__reason IS NOT NULL")
    con.execute("CREATE OR REPLACE TABLE quarantine AS " + render(quarantine.order_by("__file", "ordinality")))


def load(ws: Workspace, dataset_path: str | Path | None = None) -> LoadResult:
    """Load the dataset's source into `events`/`quarantine`, build features into `frame`.

    Raises:
        DataError / ConfigError: with one line naming the file and item; the database is unchanged.
    """
    started = time.perf_counter()
    path = Path(dataset_path).resolve() if dataset_path else ws.dataset_path
    label = ws.rel(path)
    dataset = ws.dataset(path)
    files, fmt = source_files(ws, dataset, label)
    con = ws.connect()
    try:
        types = column_types(con, fmt, files)
        _check_columns(dataset, types, label)
        _stage(con, dataset, fmt, files, types)
        read, loaded = con.execute("SELECT count(*), count(*) FILTER (__reason IS NULL) FROM _staged").fetchall()[0]
        if loaded == 0:
            raise DataError(f"{label}: no loadable rows in '{dataset.source}' (read {read:,}; see reasons by "
                            "loading a smaller file)" if read else f"{label}: source '{dataset.source}' has no rows")
        con.execute("BEGIN TRANSACTION")
        try:
            _publish(con, dataset, types)
            features = build_frame(con, dataset, label)
            _write_meta(con, dataset, path, read, loaded)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 2 DESC").fetchall())
        _export_quarantine(con, ws)
    except duckdb.Error as err:
        raise DataError(f"{label}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return LoadResult(read, loaded, read - loaded, reasons, features, time.perf_counter() - started)


def _write_meta(con: duckdb.DuckDBPyConnection, dataset: Dataset, path: Path, read: int, loaded: int) -> None:
    meta = {"dataset": dataset.model_dump(mode="json", by_alias=True), "dataset_path": str(path),
            "read": read, "loaded": loaded, "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
    con.execute("CREATE OR REPLACE TABLE _meta AS SELECT ?::JSON AS meta", [json.dumps(meta)])


def _export_quarantine(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    out = ws.root / "data" / "quarantine.csv"
    con.execute("COPY quarantine TO $out (HEADER, DELIMITER ',')", {"out": str(out)})


def load_upload(ws: Workspace, file_name: str, data: bytes) -> LoadResult:
    """Load an uploaded file with the current dataset's roles and features (a copy of the spec that
    points at the file, kept beside it in data/uploads/). Same checks and quarantine as `load`."""
    name = Path(file_name).name
    if Path(name).suffix.lower() not in FORMATS:
        raise DataError(f"{name}: upload a .csv, .parquet or .jsonl file")
    folder = ws.root / "data" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(data)
    spec = yaml.safe_load(ws.dataset_path.read_text(encoding="utf-8"))
    spec["source"] = str(target.relative_to(ws.root))
    spec_path = folder / f"{target.stem}.dataset.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(ws, spec_path)
