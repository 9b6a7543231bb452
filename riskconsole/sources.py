"""Source files of a dataset, and every check a load runs before it reads a row (`validate` runs the same).

A dataset file is checked against its sources: files found and of one format, no column named like an
internal one, role and typed columns present, declared types and time formats valid, every feature
checked and its SQL bound over an empty table of the real schema. A file that validates loads.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

import duckdb
from sqlglot import exp

from riskconsole import times
from riskconsole.config import Dataset
from riskconsole.errors import DataError
from riskconsole.features import build_frame
from riskconsole.names import internal_collision
from riskconsole.escape import printable
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.workspace import Workspace

FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".json": "json", ".jsonl": "json", ".ndjson": "json"}
READERS = {
    "csv": "SELECT * FROM read_csv($files, all_varchar = true, union_by_name = true, filename = '_file') "
           "WITH ORDINALITY",
    "parquet": "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS ordinality FROM "
               "read_parquet($files, union_by_name = true, filename = '_file', file_row_number = true)",
    "json": "SELECT * FROM read_json($files, union_by_name = true, filename = '_file') WITH ORDINALITY",
}
_SNIFF = {"csv": "DESCRIBE SELECT * FROM read_csv($files, union_by_name = true)",
          "parquet": "DESCRIBE SELECT * FROM read_parquet($files, union_by_name = true)",
          "json": "DESCRIBE SELECT * FROM read_json($files, union_by_name = true)"}


@dataclass(frozen=True)
class Checked:
    """A dataset spec checked against its source files: everything `load` needs (and `validate` runs)."""

    dataset: Dataset
    path: Path
    label: str
    files: list[str]
    fmt: str
    types: dict[str, str]


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
    """Name -> sniffed DuckDB type of every source column (as the files hold them, nothing added)."""
    rows = con.execute(_SNIFF[fmt], {"files": files}).fetchall()
    return {name: dtype for name, dtype, *_ in rows}


def _check_inside(ws: Workspace, dataset: Dataset, files: list[str], label: str) -> None:
    """A dataset file other than the workspace's own may only read sources inside the workspace."""
    root = os.path.realpath(ws.root)
    for name in files:
        if os.path.commonpath([root, os.path.realpath(name)]) != root:
            raise DataError(f"{label}: source '{dataset.source}' reads {name}, outside the workspace {ws.root}: only "
                            "data/dataset.yaml (or a file given to `riskconsole load`) may read files elsewhere")


def _check_names(types: dict[str, str], label: str) -> None:
    """No source column may be called like an internal column (features are checked by `check_features`)."""
    for name in types:
        problem = internal_collision(name, label, "source column")
        if problem:
            raise DataError(problem)


def _check_columns(dataset: Dataset, types: dict[str, str], label: str) -> None:
    roles = dataset.columns
    wanted = [(f"columns.{k}", getattr(roles, k)) for k in ("id", "time", "label", "label_time", "amount",
                                                             "prod_action", "explore", "propensity")]
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


def _check_not_empty(con: duckdb.DuckDBPyConnection, fmt: str, files: list[str], dataset: Dataset, label: str) -> None:
    """A source without a single row is an error (reading one row is enough to know)."""
    if not con.execute(f"SELECT count(*) FROM ({READERS[fmt]} LIMIT 1)", {"files": files}).fetchall()[0][0]:
        raise DataError(f"{label}: source '{dataset.source}' has no rows")


def _check_outcome_roles(con: duckdb.DuckDBPyConnection, fmt: str, files: list[str], dataset: Dataset,
                         label: str) -> None:
    """prod_action, explore and propensity values are checked over the whole source before a load: a bad one is a
    load error, not a quarantined row (dropping explored rows would silently bias the inverse-propensity estimate)."""
    roles = dataset.columns
    if not roles.prod_action:
        return
    word = fill("lower(trim(CAST(:c AS VARCHAR)))", c=ident(roles.prod_action))
    checks = [(fill(":w IS NULL OR :w NOT IN ('allow', 'review', 'block')", w=word), ident(roles.prod_action),
               f"columns.prod_action: column '{roles.prod_action}' holds {{v}}; every row needs allow, review or block "
               "(what production decided)")]
    if roles.explore:
        flag = fill("lower(trim(CAST(:c AS VARCHAR)))", c=ident(roles.explore))
        checks.append((fill(":f IS NOT NULL AND :f NOT IN ('0', '1', 'true', 'false', '')", f=flag),
                       ident(roles.explore), f"columns.explore: column '{roles.explore}' holds {{v}}; use 1 "
                       "(let through at random), 0 or empty"))
        p = fill("TRY_CAST(CAST(:c AS VARCHAR) AS DOUBLE)", c=ident(roles.propensity))
        checks.append((fill(":f IN ('1', 'true') AND (:p IS NULL OR NOT (:p > 0 AND :p <= 1))", f=flag, p=p),
                       ident(roles.propensity), f"columns.propensity: column '{roles.propensity}' holds {{v}} on an "
                       "explored row; the chance it was let through must be a number in (0, 1]"))
    if roles.propensity:
        p = fill("TRY_CAST(CAST(:c AS VARCHAR) AS DOUBLE)", c=ident(roles.propensity))
        raw = fill("CAST(:c AS VARCHAR)", c=ident(roles.propensity))
        checks.append((fill(":r IS NOT NULL AND trim(:r) <> '' AND (:p IS NULL OR NOT (:p > 0 AND :p <= 1))", r=raw,
                            p=p), ident(roles.propensity), f"columns.propensity: column '{roles.propensity}' holds "
                       "{v}; a propensity must be a number in (0, 1] (or empty on rows not explored)"))
    for bad, column, message in checks:
        value = render(fill("any_value(CAST(:c AS VARCHAR))", c=column))
        n, shown = con.execute(f"SELECT count(*), {value} FROM ({READERS[fmt]}) WHERE {render(bad)}",
                               {"files": files}).fetchall()[0]
        if n:
            text = "empty" if shown is None else f"'{printable(shown)[:40]}'"
            raise DataError(f"{label}: {message.format(v=text)} ({n:,} rows)")


def _empty_events(con: duckdb.DuckDBPyConnection, target: dict[str, str]) -> None:
    """Table `events` with the loaded schema and no rows, for binding the frame query without data."""
    columns = [alias(exp.cast(lit(None), exp.DataType.build(t, dialect="duckdb")), c) for c, t in target.items()]
    con.execute("CREATE OR REPLACE TABLE events AS " + render(exp.select(*columns).where("false")))


def check_dataset(ws: Workspace, dataset_path: str | Path | None = None, trusted: bool = False) -> Checked:
    """Every check `load` runs before reading a row; `validate` runs exactly this (and writes nothing).

    Args:
        ws: the workspace.
        dataset_path: a dataset.yaml (default: the workspace's own).
        trusted: True only for a path a local user gave (the CLI): a dataset file other than the workspace's own
            may then read sources outside the workspace.

    Raises:
        RiskConsoleError: one line naming the dataset file, the item and the fix.
    """
    path = Path(dataset_path).resolve() if dataset_path else ws.dataset_path
    label = ws.rel(path)
    dataset = ws.dataset(path)
    files, fmt = source_files(ws, dataset, label)
    if not trusted and path.resolve() != ws.dataset_path.resolve():
        _check_inside(ws, dataset, files, label)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        types = column_types(con, fmt, files)
        _check_names(types, label)
        _check_columns(dataset, types, label)
        times.check_formats(con, times.formats_of(dataset.time_format), label)
        _empty_events(con, target_types(dataset, types))
        build_frame(con, dataset, label)  # parses and binds every feature over the real schema (no rows)
        _check_not_empty(con, fmt, files, dataset, label)
        _check_outcome_roles(con, fmt, files, dataset, label)
    except duckdb.Error as err:
        raise DataError(f"{label}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
    return Checked(dataset, path, label, files, fmt, types)


def _is_time(dtype: str) -> bool:
    """TIMESTAMP in any of its spellings (with zone, precision, DATETIME): loaded as a UTC TIMESTAMP."""
    return dtype.strip().upper().startswith(("TIMESTAMP", "DATETIME"))


def target_types(dataset: Dataset, types: dict[str, str]) -> dict[str, str]:
    """DuckDB type of every loaded column: roles fixed by the contract, the rest inferred or declared."""
    roles = dataset.columns
    target = {c: ("VARCHAR" if t == "JSON" else t) for c, t in types.items()}
    target.update(dataset.types)
    target = {c: ("TIMESTAMP" if _is_time(t) else t) for c, t in target.items()}  # every time is UTC, no zone
    fixed = {roles.id: "VARCHAR", roles.time: "TIMESTAMP", roles.label_time: "TIMESTAMP",
             roles.amount: "DOUBLE", roles.label: "TINYINT", roles.prod_action: "VARCHAR", roles.propensity: "DOUBLE"}
    target.update({c: t for c, t in fixed.items() if c})
    return target
