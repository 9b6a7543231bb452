"""Golden strategy cases: rows in, decisions out (tests/golden/*.yaml)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from riskconsole.backtest import fetch_decisions
from riskconsole.ingest import load
from riskconsole.report import run_backtest
from conftest import write_workspace

CASES = sorted((Path(__file__).parent / "golden").glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden_case(tmp_path, case):
    spec = yaml.safe_load(case.read_text())
    rows = pd.DataFrame(spec["rows"])
    events = rows.drop(columns=["expect", "matched"]).assign(
        ts=pd.date_range("2026-01-01", periods=len(rows), freq="h"), label=0)
    dataset = {"columns": {"id": "id", "time": "ts", "label": "label", "amount": "amount"}}
    ws = write_workspace(tmp_path, events, dataset, {"golden": spec["strategy"]})
    load(ws)
    bt = run_backtest(ws, ws.strategies_dir / "golden.yaml")
    con = ws.connect_safe()
    decisions = fetch_decisions(con, bt.compiled, bt.frame, bt.dataset, bt.window).to_pandas().set_index("id")
    con.close()
    for row in spec["rows"]:
        assert decisions.loc[row["id"], "action"] == row["expect"], row["id"]
        assert list(decisions.loc[row["id"], "matched_rules"]) == row["matched"], row["id"]
    summary = {a: sum(r["expect"] == a for r in spec["rows"]) for a in ("block", "review")}
    assert bt.report["by_action"]["block"]["events"] == summary["block"]
    assert bt.report["by_action"]["review"]["events"] == summary["review"]
