"""DESIGN.md §7: the SQL that touches events is built from sqlglot ASTs and transpiles to Spark SQL
without an unsupported construct or a DuckDB-only function left behind."""

from __future__ import annotations

import re

import pytest
from sqlglot.errors import ErrorLevel

from riskconsole.backtest import decisions_query, groups_query
from riskconsole.config import Dataset
from riskconsole.dialects import spark
from riskconsole.engines.spark_render import _portable
from riskconsole.features import frame_query, label_feature_query
from riskconsole.report import run_backtest
from conftest import BASE_DATASET

DUCKDB_ONLY = re.compile(r"\b(EPOCH_US|EPOCH_MS|LIST_[A-Z_]+|ARRAY_LENGTH|STRPTIME|DATE_DIFF|REGEXP_MATCHES)\s*\(",
                         re.IGNORECASE)
COLUMNS = ["event_id", "ts", "is_fraud", "label_ts", "amount", "user_id", "device_id", "merchant_id", "channel"]
DATASET = Dataset.model_validate({**BASE_DATASET, "features": BASE_DATASET["features"] + [
    {"name": "user_fraud_2d", "sum": "label", "by": "user_id", "window": "2d", "label_delay": "1d"},
    {"name": "amount_vs_user", "sql": "amount / nullif(user_amount_1d, 0)"},
    {"name": "night", "sql": "CAST(hour(ts) < 6 AS INTEGER)"},
    {"name": "weekend", "sql": "dayofweek(ts) IN (0, 6)"},
    {"name": "secs_of_day", "sql": "date_diff('second', ts - INTERVAL 1 DAY, ts) + epoch(ts) - epoch(ts - INTERVAL 1 DAY)"},
    {"name": "domain_digits", "sql": "regexp_matches(split_part(channel, '@', -1), '\\d')"}]})


def _spark(query) -> str:
    """Render as the Spark engine does: riskconsole's Spark dialect (exact renderings of DuckDB's functions) after
    the engine's rewrites of riskconsole's own SQL (engines/spark_render.py `_portable`)."""
    sql = _portable(query).sql(dialect=spark(), unsupported_level=ErrorLevel.RAISE)
    assert not DUCKDB_ONLY.search(sql), DUCKDB_ONLY.search(sql).group(0)
    return sql


def test_feature_sql_transpiles_to_spark():
    assert "UNIX_MICROS" in _spark(label_feature_query(DATASET.features[3], DATASET, "_base"))
    frame = _spark(frame_query(DATASET, COLUMNS, "x", label_tables={"user_fraud_2d": "_lf"}))
    assert "CAST(SIZE(COLLECT_SET(`user_id`) OVER" in frame and "DISTINCT" not in frame  # count_distinct windows
    assert "(DAYOFWEEK(`ts`) - 1) IN (0, 6)" in frame and "RLIKE '(?d)\\\\d'" in frame


@pytest.mark.parametrize("build", [groups_query, decisions_query])
def test_backtest_sql_transpiles_to_spark(tiny_ws, build):
    bt = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml")
    _spark(build(bt.compiled, bt.frame, bt.dataset, bt.window))
