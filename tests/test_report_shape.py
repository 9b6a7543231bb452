"""The report's shape is a contract (DESIGN.md §6): keys and value types against a golden JSON file.

Regenerate deliberately with `RISKCONSOLE_REGOLDEN=1 pytest tests/test_report_shape.py` after a
contract change that an issue asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from riskconsole.report import Baseline, run_backtest

GOLDEN = Path(__file__).parent / "golden" / "report_shape.json"


def shape(value):
    """Keys and value types; a list is described by its first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def test_report_shape_is_the_contract(tiny_ws):
    base = {"name": "base", "params": {"burst": 3}, "rules": [
        {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"}]}
    (tiny_ws.strategies_dir / "base.yaml").write_text(yaml.safe_dump(base))
    report = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", by="channel",
                          baseline=Baseline(tiny_ws.strategies_dir / "base.yaml", bootstrap=50)).report
    got = shape(json.loads(json.dumps(report, default=str)))
    if os.environ.get("RISKCONSOLE_REGOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got == expected, "report shape changed: a contract change needs an issue"
