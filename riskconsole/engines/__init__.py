"""Where features and backtests run: embedded DuckDB (default) or Apache Spark (DESIGN §7, docs/scale.md).

Every engine runs the same sqlglot ASTs, rendered in its own dialect, and returns only small Arrow tables
(a backtest's groups), so every metric is computed by the same Python code. DuckDB is the connection itself
(`backtest.run_query` runs on it); another engine is an object with `arrow(query, strategy)`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from riskconsole.errors import ConfigError
from riskconsole.names import ENGINES

if TYPE_CHECKING:
    import pyarrow as pa  # type names only: a backtest reads DuckDB's results as numpy (issue 14)
    from riskconsole.config import Dataset
    from sqlglot import exp

ENGINE_ENV = "RISKCONSOLE_ENGINE"


class Engine(Protocol):
    """What `backtest.run_groups` and `compare.joint_groups` need of an engine other than DuckDB."""

    name: str

    def arrow(self, query: exp.Expression, strategy: str) -> pa.Table:
        """Run a query (a DuckDB-dialect AST) and fetch its rows as Arrow; errors name the strategy."""


def choose(flag: str | None, dataset: Dataset | None) -> str:
    """The engine: `--engine`, else $RISKCONSOLE_ENGINE, else `engine:` of the dataset, else duckdb.

    Raises:
        ConfigError: an unknown engine name (listing the engines).
    """
    for where, value in (("--engine", flag), (f"${ENGINE_ENV}", os.environ.get(ENGINE_ENV))):
        if value:
            if value not in ENGINES:
                raise ConfigError(f"{where} {value}: unknown engine (engines: {', '.join(ENGINES)})")
            return value
    return dataset.engine if dataset is not None else "duckdb"
