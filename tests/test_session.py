"""The core Session: one answer per question, whichever face asks (CLI, report, console)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from riskconsole.cli import main
from riskconsole.errors import RiskConsoleError
from riskconsole.report import Baseline, all_warnings
from riskconsole.session import Session
from conftest import BASE_DATASET, assert_same, random_events, write_workspace


def test_console_path_equals_backtest_with_a_trained_detector_warnings_included(demo_ws):
    """The console's interactive report and the CLI's backtest agree number for number, warnings too."""
    path = demo_ws.strategies_dir / "candidate.yaml"
    assert "lgbm_orders" in path.read_text()  # a rule reads a detector score
    with Session(demo_ws) as session:
        window = session.window()
        cli = session.backtest(path, window).report
        console = session.interactive(path, window)
    assert any("overlaps the backtest window" in w for w in cli["warnings"]), cli["warnings"]
    assert console["warnings"] == cli["warnings"]
    for key in ("overall", "rules", "daily", "by_action", "attribution"):
        assert_same(console[key], cli[key], rel=1e-9)


def test_a_comparison_states_each_warning_once(demo_ws):
    with Session(demo_ws) as session:
        report = session.backtest(demo_ws.strategies_dir / "candidate.yaml",
                                  baseline=Baseline(demo_ws.strategies_dir / "baseline.yaml", bootstrap=50)).report
    shown = all_warnings(report)
    assert len(shown) == len(set(shown))
    assert not set(report["compare"]["warnings"]) & set(report["warnings"])
    assert any("overlaps" in w for w in shown)


def _no_label_time_ws(tmp_path):
    dataset = {**BASE_DATASET, "columns": {**BASE_DATASET["columns"], "label_time": None}}
    strategy = {"name": "s", "rules": [{"name": "big", "when": "amount > 100", "action": "review"}]}
    ws = write_workspace(tmp_path / "ws", random_events(), dataset=dataset, strategies={"s": strategy})
    assert main(["load", "--workspace", str(ws.root)]) == 0
    return ws


def test_as_of_without_label_time_is_an_error_that_says_why(tmp_path, capsys):
    ws = _no_label_time_ws(tmp_path)
    code = main(["backtest", str(ws.strategies_dir / "s.yaml"), "--workspace", str(ws.root), "--as-of", "2026-03-03",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "--as-of 2026-03-03" in err and "label_time" in err
    assert not (tmp_path / "out").exists()
    with Session(ws) as session, pytest.raises(RiskConsoleError, match="label_time"):
        session.window(as_of="2026-03-03")


def test_format_parquet_writes_the_decisions(tiny_ws, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["backtest", str(tiny_ws.strategies_dir / "tiny.yaml"), "--workspace", str(tiny_ws.root),
                 "--format", "parquet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["decisions.parquet", "report.json"]
    decisions = pq.read_table(out / "decisions.parquet")
    report = json.loads((out / "report.json").read_text())
    assert decisions.num_rows == report["overall"]["population"]
    flagged = np.isin(decisions.column("action").to_numpy(zero_copy_only=False), ["block", "review"])
    assert int(flagged.sum()) == report["overall"]["flagged"]


def test_a_window_wider_than_the_data_is_cut_to_the_days_it_reaches(tiny_ws):
    with Session(tiny_ws) as session:
        days = session.backtest(tiny_ws.strategies_dir / "tiny.yaml",
                                session.window("1900-01-01", "9999-12-30")).report["daily"]
        lo, hi = session.day_range()
    assert [d["day"] for d in days][0] == lo.isoformat() and days[-1]["day"] == hi.isoformat()
    assert len(days) == (hi - lo).days + 1


def test_the_gate_names_the_side_whose_metric_is_undefined(tiny_ws, capsys):
    quiet = {"name": "quiet", "rules": [{"name": "never", "when": "amount < 0", "action": "block"}]}
    base = tiny_ws.strategies_dir / "quiet.yaml"
    base.write_text(yaml.safe_dump(quiet))
    code = main(["gate", str(tiny_ws.strategies_dir / "tiny.yaml"), "--workspace", str(tiny_ws.root), "--baseline",
                 str(base), "--bootstrap", "50", "--require", "precision>=-0.05"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL precision>=-0.05: precision is undefined for the baseline on this window" in out
    assert "candidate" not in out.split("FAIL")[1].split("\n")[0]


def test_optimize_lists_what_it_says_it_lists(tiny_ws, capsys, tmp_path):
    code = main(["optimize", str(tiny_ws.strategies_dir / "tiny.yaml"), "--workspace", str(tiny_ws.root), "--param",
                 "big", "--param", "burst", "--max-overflow-days", "99", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    frontier = json.loads((tmp_path / "o" / "optimize.json").read_text())["frontier"]
    listed = [line for line in out.splitlines() if line.startswith("  frontier:")]
    assert f"frontier of {len(frontier)} settings" in out
    assert len(listed) == min(len(frontier), 8)
    if len(frontier) > 8:
        assert f"the {len(listed)} paying most" in out


def test_the_glossary_defines_exactly_the_overall_keys(tiny_ws):
    from riskconsole.glossary import METRICS

    with Session(tiny_ws) as session:
        overall = session.backtest(tiny_ws.strategies_dir / "tiny.yaml").report["overall"]
    assert [m.key for m in METRICS] == list(overall)
    assert all(m.definition.endswith(".") and m.formula and m.kind in ("pct", "money", "int") for m in METRICS)


def test_a_dataset_edited_since_the_load_is_said_first_until_the_next_load(tiny_ws, monkeypatch):
    """The numbers are of the data as loaded: editing a feature or a source in dataset.yaml without loading again
    is warned in every face (the report's warnings), first; editing only `business:`, `engine:` or `spark:` needs no
    load (they do not change the data)."""
    from riskconsole.backtest import Window
    from riskconsole.ingest import load

    strategy = tiny_ws.strategies_dir / "tiny.yaml"

    def warnings() -> list[str]:
        with Session(tiny_ws) as session:  # closed before the next load (DuckDB shares an open file's instance)
            found = session.backtest(strategy).report["warnings"]
            assert session.interactive(strategy, Window())["warnings"] == found
            return found

    assert not any("has changed since the last load" in w for w in warnings())
    spec = yaml.safe_load(tiny_ws.dataset_path.read_text())
    spec["business"] = {**spec.get("business", {}), "review_cost": 7.5}
    tiny_ws.dataset_path.write_text(yaml.safe_dump(spec))
    assert not any("has changed" in w for w in warnings())
    monkeypatch.setenv("RISKCONSOLE_ENGINE", "duckdb")  # the file now says spark: these reports still run here
    spec.update(engine="spark", spark={"master": "local[2]", "driver_memory": "2g"})
    tiny_ws.dataset_path.write_text(yaml.safe_dump(spec))
    assert not any("has changed" in w for w in warnings())
    spec["features"] = spec["features"] + [{"name": "user_orders_2h", "count": "*", "by": "user_id", "window": "2h"}]
    tiny_ws.dataset_path.write_text(yaml.safe_dump(spec))
    found = warnings()
    assert found[0].startswith("data/dataset.yaml has changed since the last load (")
    assert found[0].endswith("run `riskconsole load` to load it as the file says now")
    load(tiny_ws)
    assert not any("has changed" in w for w in warnings())


def test_a_load_by_an_older_version_is_not_said_changed_for_a_setting_it_did_not_know(tiny_ws, monkeypatch):
    """An upgrade that adds a dataset setting with a default (`prod_action_values` was being added as a stranger
    opened the console) left it out of the last load's `_meta`: every page then said 'data/dataset.yaml has changed
    since the last load' of a file nobody touched. A setting the load did not record, at its default now, is no
    change; a real edit still is."""
    import json

    import duckdb

    from riskconsole.names import META_TABLE

    def changed() -> str | None:
        with Session(tiny_ws) as session:
            return session.dataset_changed()

    assert changed() is None
    with duckdb.connect(str(tiny_ws.db_path)) as con:  # the load as a version without those settings wrote it
        meta = json.loads(con.execute(f"SELECT meta FROM {META_TABLE}").fetchone()[0])
        for key in ("label_values", "streams", "decimal_separator"):
            assert meta["dataset"].pop(key) is not None
        meta["dataset"]["columns"].pop("label_derived")
        con.execute(f"UPDATE {META_TABLE} SET meta = ?", [json.dumps(meta)])
    assert changed() is None
    # the CLI's sessions keep the answer in the compiled-query cache: a later run reads it and builds no model
    for _ in range(2):
        with Session(tiny_ws, cache=True) as session:
            assert session.dataset_changed() is None
    import riskconsole.session as session_module

    monkeypatch.setattr(session_module, "_edited", lambda *_: pytest.fail("read through the model again"))
    with Session(tiny_ws, cache=True) as session:
        assert session.dataset_changed() is None
    monkeypatch.undo()
    spec = yaml.safe_load(tiny_ws.dataset_path.read_text())
    spec["decimal_separator"] = ","  # not the default: the load read the file otherwise
    tiny_ws.dataset_path.write_text(yaml.safe_dump(spec))
    assert changed().startswith("data/dataset.yaml has changed since the last load (")
    with Session(tiny_ws, cache=True) as session:  # another file text: another entry, not the one kept above
        assert session.dataset_changed().startswith("data/dataset.yaml has changed since the last load (")


def test_a_backtest_parses_its_strategy_once_and_an_edit_is_read_again(tiny_ws, monkeypatch):
    """The window (label maturity) and the compile both read the strategy: one parse per file text; an edited
    file is parsed again and the new text is what runs."""
    import riskconsole.config as config

    parsed = []
    original = config.parse_model
    monkeypatch.setattr(config, "parse_model", lambda data, model, label: parsed.append(label) or
                        original(data, model, label))
    path = tiny_ws.strategies_dir / "tiny.yaml"
    with Session(tiny_ws) as session:
        first = session.backtest(path, session.window(strategy=path)).report
        assert len([p for p in parsed if p.endswith("tiny.yaml")]) == 1
        body = yaml.safe_load(path.read_text())
        body["rules"] = body["rules"][:1]
        path.write_text(yaml.safe_dump(body))
        again = session.backtest(path, session.window(strategy=path)).report
    assert len([p for p in parsed if p.endswith("tiny.yaml")]) == 2
    assert [r["name"] for r in again["rules"]] == [body["rules"][0]["name"]] != [r["name"] for r in first["rules"]]


@pytest.mark.parametrize("start, end, as_of", [
    ("2026-03-01", "2026-03-05", None), ("2026-03-01 10:30", "2026-03-05T12:00:00+02:00", "2026-03-06"),
    (None, None, "2026-03-02 06:00"), ("2026-03-01 00:00:00.250", None, None)])
def test_the_equivalent_command_gives_the_same_window_again(start, end, as_of):
    """The console's 'Equivalent CLI' caption keeps a time of day (it printed the date alone, a wider window)."""
    import shlex

    from riskconsole.backtest import make_window
    from riskconsole.session import window_text

    window = make_window(start, end, as_of)
    flags = shlex.split(window_text(window))
    given = dict(zip(flags[::2], flags[1::2]))
    assert make_window(given.get("--from"), given.get("--to"), given.get("--as-of")) == window
