"""DuckDB's tables of a load on Spark as views of the store's Parquet, not copies (issue 15, DESIGN §7).

After a load on engine spark, the events, streams, tables and frame are already Parquet in the data version's folder
(`data/spark/<version>/`, or `spark.store`). When that folder is on this machine, DuckDB's `events`, `stream_NAME`,
`table_NAME` and `frame` are views reading those files: the driver keeps no second copy, and what reads DuckDB
(explain, one event's decision, training's fit, the Data page, a notebook) reads only the rows and columns it asks
for. The folder is recorded in `_store`; a safe connection (`workspace.safe_connection`), which has no file access,
is allowed to read that one folder and nothing else. A store elsewhere (`s3a://…`) is still copied into DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from riskconsole.names import STORE_TABLE


def viewable(folder: Path | None) -> bool:
    """Whether a data version's folder can be read through views: on this machine, and no glob character in its
    path (DuckDB's allowed_directories matches the folder as a pattern; such a store is copied instead)."""
    return folder is not None and not any(c in str(folder) for c in "*?[")


def create_view(con: duckdb.DuckDBPyConnection, name: str, folder: Path, root: Path, columns: str = "*",
                by_day: bool = False, order: str = "") -> None:
    """`name` as a view of the Parquet files Spark wrote in `folder` (in the data version's folder `root`, which is
    recorded in `_store`); `columns` the SELECT list (casts). `by_day`: the files are in one folder per day (hive
    folders, not columns). Files in deeper folders (Spark's `_temporary` of a write under way) are never read.
    `order`: an ORDER BY the view keeps (sorted at every read: only for a small table whose order is its meaning)."""
    from sqlglot import exp

    from riskconsole.sources import literal_file
    from riskconsole.sqlbuild import render

    # a pattern, not a list of files: a frame Spark builds again (its marker lost) has new files; DuckDB sorts them
    files = exp.Literal.string(literal_file(str(folder)) + ("/*/*.parquet" if by_day else "/*.parquet"))
    con.execute(f"CREATE OR REPLACE VIEW {render(exp.to_table(name, quoted=True))} AS SELECT {columns} "
                f"FROM read_parquet({render(files)}, hive_partitioning = false)" + (f" ORDER BY {order}" if order else ""))
    record(con, root)


def drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop `name`, a table or a view of the store (a score table is either), if it exists."""
    from sqlglot import exp

    from riskconsole.sqlbuild import render

    kinds = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' AND "
                        "table_name = ?", [name]).fetchall()
    if kinds:
        kind = "VIEW" if kinds[0][0] == "VIEW" else "TABLE"
        con.execute(f"DROP {kind} {render(exp.to_table(name, quoted=True))}")


def record(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Note that views of `con` read the data version's `folder`."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {STORE_TABLE} (folder VARCHAR)")
    if not con.execute(f"SELECT count(*) FROM {STORE_TABLE} WHERE folder = ?", [str(folder)]).fetchall()[0][0]:
        con.execute(f"INSERT INTO {STORE_TABLE} VALUES (?)", [str(folder)])


def folders(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The folders the database's views read (none for a DuckDB load, or a store that is not on this machine)."""
    try:
        return [f for (f,) in con.execute(f"SELECT folder FROM {STORE_TABLE} ORDER BY folder").fetchall()]
    except duckdb.CatalogException:  # asked on every connection: a failed lookup costs a tenth of a catalog query
        return []

