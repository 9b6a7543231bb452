"""`riskconsole init`: a commented skeleton that validates, loads and backtests once pointed at real data."""

from __future__ import annotations

import json
from datetime import date
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import random_events
from riskconsole.cli import main
from riskconsole.scaffold import SKELETON, init_workspace


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _user_events(path: Path) -> None:
    """A small CSV as a user might have it: their own column names, spreadsheet-free ISO times."""
    events = random_events(n=600, days=40)
    events = events.rename(columns={"event_id": "txn", "ts": "when_utc", "is_fraud": "fraud_flag",
                                    "label_ts": "cb_date", "amount": "eur", "user_id": "customer",
                                    "device_id": "device"})
    path.parent.mkdir(parents=True, exist_ok=True)
    events.to_csv(path, index=False)


# The documented edit: the source path and the column names, nothing else.
EDITS = {"data/events.csv": "data/my_orders.csv", "order_id": "txn", "created_at": "when_utc",
         "is_fraud": "fraud_flag", "chargeback_at": "cb_date", "amount": "eur", "user_id": "customer",
         "device_id": "device"}


def _edit(path: Path, edits: dict[str, str]) -> None:
    text = path.read_text()
    for old, new in edits.items():  # a whole name, not a key (`amount:` is a role, `: amount` a column)
        text = re.sub(rf"(?<![\w/]){re.escape(old)}(?![\w:])", new, text)
    path.write_text(text)


def test_init_writes_the_skeleton_and_refuses_to_overwrite(tmp_path, capsys):
    root = tmp_path / "mine"
    code, out, _ = run(capsys, "init", "--workspace", root)
    assert code == 0
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == sorted(SKELETON)
    for name in SKELETON:
        assert str(root / name) in out
    (root / "strategies" / "baseline.yaml").write_text("name: edited\n")
    code, _, err = run(capsys, "init", "--workspace", root)
    assert code == 1
    assert err.count("\n") == 1 and "data/dataset.yaml: already exists" in err
    assert (root / "strategies" / "baseline.yaml").read_text() == "name: edited\n"


def test_init_writes_nothing_when_one_file_exists(tmp_path):
    (tmp_path / "README.md").write_text("mine")
    with pytest.raises(Exception, match="README.md: already exists"):
        init_workspace(tmp_path)
    assert not (tmp_path / "data").exists() and (tmp_path / "README.md").read_text() == "mine"


def test_init_needs_a_workspace(capsys, monkeypatch):
    monkeypatch.delenv("RISKCONSOLE_WORKSPACE", raising=False)
    code, _, err = run(capsys, "init")
    assert code == 1 and "--workspace DIR" in err


def test_every_example_in_the_skeleton_is_commented(tmp_path):
    init_workspace(tmp_path)
    dataset = (tmp_path / "data" / "dataset.yaml").read_text()
    for key in ("source:", "time_format:", "id:", "time:", "label:", "label_time:", "amount:", "entities:",
                "label_derived:", "prod_action:", "label_values:", "prod_action_values:", "types:", "count:", "avg:",
                "count_distinct:", "sum: label", "label_delay:",
                "sql:", "review_cost:", "review_capacity:", "review_catch_rate:", "good_block_cost:"):
        lines = dataset.splitlines()
        i = next(i for i, line in enumerate(lines) if key in line)
        assert "#" in lines[i] or lines[i - 1].lstrip().startswith("#"), f"no comment on the line with {key}"


def test_skeleton_validates_loads_and_backtests_after_the_documented_edit(tmp_path, capsys):
    root = tmp_path / "mine"
    init_workspace(root)
    _user_events(root / "data" / "my_orders.csv")
    for name in ("data/dataset.yaml", "detectors/lgbm.yaml", "strategies/baseline.yaml",
                 "strategies/candidate.yaml"):
        _edit(root / name, EDITS)
    ws = ["--workspace", root]
    files = [root / "data" / "dataset.yaml", root / "strategies" / "baseline.yaml",
             root / "strategies" / "candidate.yaml", root / "detectors" / "lgbm.yaml"]
    code, out, err = run(capsys, "validate", *files, *ws)
    assert code == 0, err
    code, out, err = run(capsys, "load", *ws)
    assert code == 0, err
    assert "read 600 = loaded 600 + quarantined 0" in out
    code, out, err = run(capsys, "validate", *files, *ws)  # again, now against the loaded frame
    assert code == 0, err
    out_dir = tmp_path / "report"
    code, out, err = run(capsys, "backtest", root / "strategies" / "candidate.yaml", "--baseline",
                         root / "strategies" / "baseline.yaml", "--bootstrap", 50, "--out", out_dir, *ws)
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    # without --to the window ends on the last mature day (labels arrive up to 4 days late) and says so
    days = pd.to_datetime(pd.read_csv(root / "data" / "my_orders.csv")["when_utc"]).dt.date
    last = date.fromisoformat(report["window"]["to"])
    assert report["window"]["note"] in report["warnings"] and 3 <= (days.max() - last).days <= 5
    assert report["overall"]["population"] == int((days <= last).sum()) < 600
    assert report["compare"]["baseline_strategy"] == "baseline"
    assert [r["name"] for r in report["rules"]][-1] == "fraud_device"


def test_commands_run_on_the_workspace_the_current_directory_is_in(tmp_path, capsys, monkeypatch):
    """After `init --workspace ws` and `cd ws` (or into ws/strategies), a command without --workspace works on ws,
    as git does in a checkout: it once read the repository's demo instead ("looked for <repo>/data/events.csv").
    --workspace and $RISKCONSOLE_WORKSPACE still win."""
    from riskconsole.workspace import REPO_ROOT, Workspace

    monkeypatch.delenv("RISKCONSOLE_WORKSPACE", raising=False)
    ws = tmp_path / "ws"
    init_workspace(ws)
    for where in (ws, ws / "strategies"):
        monkeypatch.chdir(where)
        assert Workspace.resolve().root == ws.resolve()
        code, _, err = run(capsys, "validate", ws / "data" / "dataset.yaml")
        assert code == 1 and f"(looked for {ws.resolve() / 'data' / 'events.csv'})" in err
    other = tmp_path / "other"
    assert Workspace.resolve(other).root == other.resolve()
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(other))
    assert Workspace.resolve().root == other.resolve()
    monkeypatch.delenv("RISKCONSOLE_WORKSPACE")
    monkeypatch.chdir(tmp_path)  # in no workspace: the repository's
    assert Workspace.resolve().root == REPO_ROOT.resolve()
