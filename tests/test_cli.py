"""The CLI contract (DESIGN.md §5, §6): exit codes, one-line errors, the files a backtest writes."""

from __future__ import annotations

import ast
import json
import os

import duckdb
import pandas as pd
import pytest
import yaml

from riskconsole.cli import main

REPORT_KEYS = {"strategy", "window", "as_of", "params", "overall", "by_action", "rules", "daily", "warnings"}
OVERALL_KEYS = {"tp", "fp", "fn", "tn", "unlabeled_flagged", "unlabeled_total", "precision", "recall", "f1",
                "amount_recall", "alert_rate", "fraud_amount_stopped", "good_amount_blocked", "review_cases",
                "review_cost", "net_benefit", "review_overflow_days"}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_backtest_writes_every_file(tiny_ws, capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                          "--out", out, "--format", "json,csv,html,md", "--set", "burst=3")
    assert code == 0, stdout
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report) and OVERALL_KEYS <= set(report["overall"])
    assert report["params"]["burst"] == 3
    assert set(report["by_action"]) == {"block", "review"}
    assert {"name", "action", "hits", "tp", "fp", "precision", "recall", "unique_tp"} <= set(report["rules"][0])
    assert {"day", "population", "flagged", "tp", "fp", "review_cases"} <= set(report["daily"][0])
    rules = pd.read_csv(out / "rules.csv")
    assert rules["name"].tolist() == [r["name"] for r in report["rules"]]
    assert len(pd.read_csv(out / "daily.csv")) == len(report["daily"])
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert list(decisions.columns[:6]) == ["id", "time", "label", "amount", "action", "matched_rules"]
    assert len(decisions) == report["overall"]["population"]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "tiny" in html
    assert (out / "report.md").read_text().startswith("# Backtest: tiny")
    # the days are UTC days, and each page a reader sees alone says so (a São Paulo team reads local days otherwise)
    days = f"{report['window']['from']} … {report['window']['to']} (UTC days)"
    assert days in (out / "report.md").read_text() and days in html and "review load (per UTC day)" in html
    assert stdout.startswith(f"tiny: {report['window']['from']}..{report['window']['to']} (UTC days), population")


def test_an_as_of_in_a_zone_is_its_local_day_end_and_the_report_says_utc(tiny_ws, capsys, tmp_path):
    """--as-of '2026-03-01 America/Sao_Paulo' counts labels known before 03:00 UTC on 2026-03-02 (São Paulo is UTC-3
    all year): report.json keeps that instant as UTC text, and report.md says UTC."""
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                          "--out", out, "--format", "json,md", "--as-of", "2026-03-01 America/Sao_Paulo")
    assert code == 0, stdout
    report = json.loads((out / "report.json").read_text())
    assert report["as_of"] == "2026-03-02T02:59:59.999999"
    assert "labels as of 2026-03-02T02:59:59.999999 UTC, population" in (out / "report.md").read_text()


def test_default_output_folder(tiny_ws, capsys):
    code, stdout, _ = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root)
    assert code == 0
    folders = list((tiny_ws.root / "reports").glob("tiny-*"))
    assert len(folders) == 1 and (folders[0] / "decisions.parquet").exists()


HOSTILE = [
    "1=1; DROP TABLE events",
    "amount > 0; DROP TABLE frame",
    "(SELECT count(*) FROM events) > 0",
    "EXISTS (SELECT 1 FROM frame)",
    "amount IN (SELECT amount FROM frame)",
    "read_csv('/etc/passwd') IS NOT NULL",
    "getenv('HOME') = 'x'",
    "current_setting('threads') > 0",
    "amount > 0 -- OR 1=1",
    "amount > 0 /* hidden */ OR 1=1",
    "\"amount\"\" OR 1=1 --\" > 0",
    "аmount > 0",
    "frame.amount > 0",
    "main.frame.amount > 0",
    "sum(amount) > 0",
    "count(*) OVER () > 0",
    "list_filter([1], x -> x > 0) IS NOT NULL",
    "COPY frame TO '/tmp/x.csv'",
    "ATTACH '/tmp/x.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA version",
    "SET threads = 1",
    "query('SELECT 1') IS NOT NULL",
    "amount > $nope",
    "is_fraud = 1",
    "label_ts IS NOT NULL",
    "amount",
    "channel || 'x'",
]


@pytest.mark.parametrize("when", HOSTILE)
def test_bad_expressions_fail_with_one_line_and_change_nothing(tiny_ws, capsys, when):
    strategy = {"name": "evil", "params": {"x": 1}, "rules": [{"name": "evil_rule", "when": when, "action": "block"}]}
    path = tiny_ws.strategies_dir / "evil.yaml"
    path.write_text(yaml.safe_dump(strategy))
    before = tiny_ws.db_path.read_bytes()
    code, _, err = run(capsys, "backtest", path, "--workspace", tiny_ws.root)
    assert code == 1
    assert err.count("\n") == 1 and "strategies/evil.yaml" in err and "evil_rule" in err, err
    assert tiny_ws.db_path.read_bytes() == before
    code, _, err = run(capsys, "validate", path, "--workspace", tiny_ws.root)
    assert code == 1 and "evil_rule" in err


def test_a_quoting_trick_stays_a_harmless_string(tiny_ws, capsys, tmp_path):
    path = tiny_ws.strategies_dir / "quote.yaml"
    path.write_text(yaml.safe_dump({"name": "quote", "rules": [
        {"name": "q", "when": "channel = 'a'' OR ''1''=''1'", "action": "block"}]}))
    code, _, _ = run(capsys, "backtest", path, "--workspace", tiny_ws.root, "--out", tmp_path / "q")
    assert code == 0
    assert json.loads((tmp_path / "q" / "report.json").read_text())["rules"][0]["hits"] == 0


def test_did_you_mean_for_a_misspelt_column(tiny_ws, capsys):
    path = tiny_ws.strategies_dir / "typo.yaml"
    path.write_text(yaml.safe_dump({"name": "typo", "rules": [
        {"name": "velocity", "when": "user_ordrs_1h >= 3", "action": "review"}]}))
    code, _, err = run(capsys, "backtest", path, "--workspace", tiny_ws.root)
    assert code == 1 and "did you mean 'user_orders_1h'" in err


def test_validate_reports_every_bad_rule_of_a_file_one_line_each(tiny_ws, capsys):
    path = tiny_ws.strategies_dir / "typos.yaml"
    path.write_text(yaml.safe_dump({"name": "typos", "params": {"x": 1}, "rules": [
        {"name": "velocity", "when": "user_ordrs_1h >= 3", "action": "review"},
        {"name": "fine", "when": "amount > $x", "action": "review"},
        {"name": "money", "when": "amout > 100", "action": "review"},
        {"name": "text", "when": "channel > 3", "action": "review"},
        {"name": "undefined", "when": "amount > $y", "action": "review"}]}))
    code, out, err = run(capsys, "validate", path, tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root)
    lines = err.splitlines()
    assert code == 1 and "ok: strategies/tiny.yaml" in out
    assert [line.split("'")[1] for line in lines] == ["velocity", "money", "text", "undefined"], err
    assert "did you mean 'user_orders_1h'" in lines[0] and "did you mean 'amount'" in lines[1]
    assert all(line.startswith("error: strategies/typos.yaml: rule '") for line in lines)
    code, _, err = run(capsys, "backtest", path, "--workspace", tiny_ws.root)
    assert code == 1 and err.count("\n") == 1


@pytest.mark.parametrize("when, message, fixed", [
    ("channel > 3", "rule 'r': 'channel > 3' compares channel (VARCHAR, a text) with 3 (INTEGER, a number) "
     "(compare it with a text: channel > '3', or convert it: TRY_CAST(channel AS DOUBLE) > 3)",
     "TRY_CAST(channel AS DOUBLE) > 3"),
    ("amount > 1 AND abs(channel) > 1", "rule 'r': 'abs(channel)' cannot take channel (VARCHAR, a text) "
     "(convert it to a number: abs(TRY_CAST(channel AS DOUBLE)))",
     "amount > 1 AND abs(TRY_CAST(channel AS DOUBLE)) > 1"),
    ("lower(amount) = 'a'", "rule 'r': 'lower(amount)' cannot take amount (DOUBLE, a number) "
     "(convert it to a text: lower(CAST(amount AS TEXT)))", "lower(CAST(amount AS TEXT)) = 'a'"),
    ("ts > 5", "rule 'r': 'ts > 5' compares ts (TIMESTAMP, a time) with 5 (INTEGER, a number) "
     "(give both sides the same type", None),
    # bound, but failing whatever the rows hold: DuckDB converts the text when the query runs
    ("amount > 1 AND amount > 'lots'", "rule 'r': 'amount > 'lots'' fails on every row: Could not convert string "
     "'lots' to DOUBLE (amount is DOUBLE: compare it with a number, without quotes, e.g. amount > 100)",
     "amount > 1 AND amount > 100"),
    ("ts >= '2026-13-01'", "rule 'r': 'ts >= '2026-13-01'' fails on every row: timestamp field value out "
     "of range: 2026-13-01 (ts is TIMESTAMP: compare it with a time written as ISO text, e.g. ts >= '2026-03-01 "
     "10:00:00')", "ts >= '2026-12-01'"),
])
def test_a_type_mismatch_names_the_rule_the_column_its_type_and_the_fix(tiny_ws, capsys, when, message, fixed):
    path = tiny_ws.strategies_dir / "types.yaml"
    path.write_text(yaml.safe_dump({"name": "types", "rules": [{"name": "r", "when": when, "action": "review"}]}))
    for command in ("validate", "backtest"):
        code, _, err = run(capsys, command, path, "--workspace", tiny_ws.root)
        assert code == 1 and err.count("\n") == 1 and "Binder" not in err, err
        assert f"strategies/types.yaml: {message}" in err.replace('"', ""), err
    if fixed:
        path.write_text(yaml.safe_dump({"name": "types", "rules": [{"name": "r", "when": fixed, "action": "review"}]}))
        assert run(capsys, "validate", path, "--workspace", tiny_ws.root)[0] == 0


@pytest.mark.parametrize("when", [
    "coalesce(amount, 'none') > 5", "CASE WHEN amount >= 0 THEN amount ELSE 'n/a' END > 5",
    "if(amount >= 0, amount, 'x') > 5 AND channel = 'web'",
    "CASE WHEN ts IS NULL THEN 'never' ELSE ts END > '2026-03-02'",
])
def test_a_text_only_a_row_of_nulls_reaches_is_not_said_to_fail_on_every_row(tiny_ws, capsys, when):
    """The run check's row of NULLs takes the fallback of coalesce and the ELSE of CASE and if(), which no loaded
    row (amount, ts never NULL) reaches: 'fails on every row' refused strategies whose backtest runs."""
    path = tiny_ws.strategies_dir / "guarded.yaml"
    path.write_text(yaml.safe_dump({"name": "guarded", "rules": [{"name": "r", "when": when, "action": "review"}]}))
    for command in ("validate", "backtest"):
        code, _, err = run(capsys, command, path, "--workspace", tiny_ws.root, *(
            ["--out", str(tiny_ws.root / "out")] if command == "backtest" else []))
        assert code == 0, err


def test_a_run_failure_beside_a_list_names_its_own_part(tiny_ws, capsys):
    """The probes for the failing part went into the semi-join an IN LIST renders to, and named '__added <= ts'."""
    (tiny_ws.root / "lists").mkdir(exist_ok=True)
    (tiny_ws.root / "lists" / "blocked.csv").write_text("value,added\nu1,2026-01-01\n")
    path = tiny_ws.strategies_dir / "listed.yaml"
    path.write_text(yaml.safe_dump({"name": "listed", "rules": [
        {"name": "r", "when": "user_id IN LIST blocked AND amount > 'lots'", "action": "review"}]}))
    code, _, err = run(capsys, "validate", path, "--workspace", tiny_ws.root)
    assert code == 1 and "rule 'r': 'amount > 'lots'' fails on every row" in err, err


@pytest.mark.parametrize("args, message", [
    (["--set", "nope=3"], "no param 'nope'"),
    (["--set", "burst"], "write PARAM=VALUE"),
    (["--from", "yesterday"], "not a date"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], "window is empty"),
    (["--format", "pdf"], "unknown format pdf"),
])
def test_bad_arguments(tiny_ws, capsys, args, message):
    code, _, err = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root, *args)
    assert code == 1 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("command, flag", [("backtest", "--from"), ("backtest", "--to"), ("gate", "--as-of"),
                                           ("monitor", "--from"), ("monitor", "--to")])
def test_an_empty_day_is_refused_not_taken_as_absent(tiny_ws, capsys, command, flag):
    """`--from "$START"` with START unset must not silently widen the window to all the data."""
    with pytest.raises(SystemExit) as stopped:
        main([command, str(tiny_ws.strategies_dir / "tiny.yaml"), "--workspace", str(tiny_ws.root), flag, " "])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and f"argument {flag}: empty: give a day" in err.splitlines()[-1]


@pytest.mark.parametrize("body, message", [
    ("name: x\nrules:\n  - {name: a, when: 'amount > 1', action: deny}\n", "rules[0] 'a'.action"),
    ("name: x\nrule:\n  - {name: a, when: 'amount > 1', action: block}\n", "unknown key 'rule'"),
    ("name: x\nrules: [\n", "YAML syntax error"),
    ("name: x\nrules:\n  - {name: a, when: 'amount > 1', action: block}\n  - {name: a, when: 'amount > 2', action: block}\n",
     "rule names must be unique"),
])
def test_validate_reports_yaml_problems(tiny_ws, capsys, body, message):
    path = tiny_ws.strategies_dir / "broken.yaml"
    path.write_text(body)
    code, out, err = run(capsys, "validate", tiny_ws.strategies_dir / "tiny.yaml", path, "--workspace", tiny_ws.root)
    assert code == 1 and message in err and "ok: strategies/tiny.yaml" in out


def test_sweep(tiny_ws, capsys, tmp_path):
    code, stdout, _ = run(capsys, "sweep", tiny_ws.strategies_dir / "tiny.yaml", "--param", "big", "--values",
                          "50:250:50", "--workspace", tiny_ws.root, "--out", tmp_path / "sw")
    assert code == 0
    result = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [p["value"] for p in result["points"]] == [50, 100, 150, 200, 250]
    reviews = [p["review_cases"] for p in result["points"]]
    assert reviews == sorted(reviews, reverse=True)  # a higher amount bar reviews fewer events
    code, _, err = run(capsys, "sweep", tiny_ws.strategies_dir / "tiny.yaml", "--param", "zzz", "--values", "1,2",
                       "--workspace", tiny_ws.root)
    assert code == 1 and "no param 'zzz'" in err


def test_load_prints_counts_that_add_up(tiny_ws, capsys):
    code, out, _ = run(capsys, "load", "--workspace", tiny_ws.root)
    assert code == 0 and "read 400 = loaded 400 + quarantined 0" in out
    con = duckdb.connect(str(tiny_ws.db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(400,)]
    con.close()


@pytest.mark.parametrize("body, message", [
    ("name: m\nkind: pyod.nope\nfeatures: [amount]\ntrain: {from: 2026-03-01, to: 2026-03-03}\n", "pyod.nope"),
    ("name: m\nkind: lightgbm\nfeatures: [is_fraud]\ntrain: {from: 2026-03-01, to: 2026-03-03}\n", "the label"),
    ("name: m\nkind: lightgbm\nfeatures: [amont]\ntrain: {from: 2026-03-01, to: 2026-03-03}\n", "did you mean"),
    ("name: m\nkind: lightgbm\nfeatures: [AMOUNT]\ntrain: {from: 2026-03-01, to: 2026-03-03}\n",
     "did you mean 'amount'"),
    ("name: m\nkind: lightgbm\nfeatures: [ts]\ntrain: {from: 2026-03-01, to: 2026-03-03}\n", "which a model cannot read"),
])
def test_validate_checks_detectors_like_train(tiny_ws, capsys, body, message):
    path = tiny_ws.root / "detectors" / "m.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(body)
    code, _, err = run(capsys, "validate", path, "--workspace", tiny_ws.root)
    assert code == 1 and message in err and err.count("\n") == 1


def test_a_locked_database_gets_a_clear_line(tiny_ws, capsys):
    """A console holding the database: load and train say so in one line, and where the console itself does it."""
    import subprocess
    import sys

    detector = tiny_ws.root / "detectors" / "m.yaml"
    detector.parent.mkdir(exist_ok=True)
    detector.write_text("name: m\nkind: pyod.hbos\nfeatures: [amount]\ntrain: {from: 2026-01-01, to: 2026-01-31}\n")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                               f"c = duckdb.connect({str(tiny_ws.db_path)!r}); print('ready', flush=True); "
                               "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, _, err = run(capsys, "load", "--workspace", tiny_ws.root)
        trained, _, train_err = run(capsys, "train", detector, "--workspace", tiny_ws.root)
    finally:
        holder.kill()
    assert code == 1 and f"open in another process (PID {holder.pid}," in err and err.count("\n") == 1
    assert "stop it, then load again, or load from the console's Data page" in err
    assert trained == 1 and train_err.count("\n") == 1
    assert f"open in another process (PID {holder.pid}," in train_err
    assert "train from its Detectors page (Train detectors)" in train_err


def test_an_empty_window_is_an_error(tiny_ws, capsys):
    code, _, err = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                       "--from", "2030-01-01", "--to", "2030-01-31")
    assert code == 1 and "holds no event (the data spans 2026-03-01..2026-03-06)" in err and err.count("\n") == 1
    path = tiny_ws.strategies_dir / "nobody.yaml"
    path.write_text(yaml.safe_dump({"name": "nobody", "population": "amount < 0", "rules": [
        {"name": "r", "when": "amount > 1", "action": "block"}]}))
    code, _, err = run(capsys, "backtest", path, "--workspace", tiny_ws.root)
    assert code == 1 and "passes its population filter" in err


def test_exports_are_byte_identical_for_the_same_inputs(tiny_ws, capsys, tmp_path):
    """The Export page calls the same functions as the CLI: the same inputs give the same bytes."""
    from riskconsole.backtest import fetch_decisions
    from riskconsole.export import render_files
    from riskconsole.report import run_backtest
    from riskconsole.session import Session

    args = ["backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root, "--from", "2026-03-01",
            "--to", "2026-03-06", "--set", "big=100", "--format", "json,csv,html,md"]
    assert run(capsys, *args, "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *args, "--out", tmp_path / "b")[0] == 0
    with Session(tiny_ws) as session:  # the CLI's window: with its note where --to is past the mature labels
        window = session.window("2026-03-01", "2026-03-06")
    con = tiny_ws.connect_safe()
    bt = run_backtest(tiny_ws, tiny_ws.strategies_dir / "tiny.yaml", window, {"big": 100}, con=con)
    files = render_files(bt.report, ["json", "csv", "html", "md"], fetch_decisions(con, bt.compiled, bt.frame,
                                                                                  bt.dataset, window))
    con.close()
    for name, data in files.items():
        assert (tmp_path / "a" / name).read_bytes() == data == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize("kind, key", [("strategy", "rules"), ("dataset", "features"), ("detector", "kind")])
def test_schema_for_editors(capsys, kind, key):
    code, out, _ = run(capsys, "schema", kind)
    assert code == 0 and key in json.loads(out)["properties"]


def test_an_expression_that_fails_while_running_is_one_line(tiny_ws, capsys):
    path = tiny_ws.strategies_dir / "modzero.yaml"
    path.write_text(yaml.safe_dump({"name": "modzero", "rules": [
        {"name": "bad_cast", "when": "CAST(channel AS DOUBLE) > 1", "action": "block"}]}))
    code, _, err = run(capsys, "backtest", path, "--workspace", tiny_ws.root)
    assert code == 1 and err.count("\n") == 1 and "modzero" in err, err


def test_backtest_with_a_baseline_prints_the_change(tiny_ws, capsys, tmp_path):
    """`backtest --baseline` prints both sides, the delta and its interval, and the decisions that change: the numbers
    of report.json's `compare`."""
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                          "--out", out, "--format", "json", "--set", "big=60", "--baseline",
                          tiny_ws.strategies_dir / "tiny.yaml")
    assert code == 0, stdout
    compare = json.loads((out / "report.json").read_text())["compare"]
    assert "  vs tiny:" in stdout
    review = next(line for line in stdout.splitlines() if line.strip().startswith("review cases ") and "->" in line)
    before, after = compare["baseline"]["review_cases"], compare["candidate"]["review_cases"]
    assert f"{before:,} ->" in review and f"-> {after:>12,}" in review and f"{after - before:+,}" in review
    assert "95% CI" in review
    changed = [line for line in stdout.splitlines() if line.startswith("  changed: ")]
    assert len(changed) == len(compare["changed"]) > 0
    first = compare["changed"][0]
    assert f"decision {first['before']} → {first['after']}, events {first['events']:,}" in changed[0]


HEAVY = ("pandas", "lightgbm", "pyod", "streamlit", "altair", "sklearn", "numba", "sqlglot.dialects.spark")


@pytest.mark.parametrize("extra", [[], ["--baseline", "baseline.yaml"]])
def test_a_backtest_imports_no_library_it_does_not_need(demo_ws, tmp_path, extra):
    """Issue 14: a backtest (outcome blocks, detector scores and a comparison included) imports no pandas, no model
    library, no console, no Spark dialect and no pyarrow (its results are fetched as numpy); run again (its compiled
    queries cached), not even sqlglot; `--help` not even DuckDB."""
    import subprocess
    import sys

    code = ("import sys; from riskconsole.cli import main; code = main(sys.argv[1:]); "
            f"print(sorted(m for m in {HEAVY + ('duckdb', 'numpy', 'pyarrow', 'sqlglot')!r} if m in sys.modules)); "
            "sys.exit(code)")
    strategies = demo_ws.strategies_dir
    args = ["backtest", str(strategies / "candidate.yaml"), *[str(strategies / a) if a.endswith(".yaml") else a
                                                               for a in extra],
            "--workspace", str(demo_ws.root), "--format", "json", "--out", str(tmp_path / "out")]
    for run in ("first", "again"):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        *lines, loaded = out.stdout.strip().splitlines()
        if run == "first":  # compiled here, or by an earlier test's same backtest of this shared workspace
            assert set(ast.literal_eval(loaded)) <= {"duckdb", "numpy", "sqlglot"}, loaded
    assert loaded == "['duckdb', 'numpy']" and "compiled queries from data/cache/compiled/" in lines[-1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "bounds" in report["overall"] and report["rules"]  # the demo maps prod_action: outcome blocks ran
    probe = ("import sys; sys.argv = ['riskconsole', '--help']\nfrom riskconsole.cli import main\ntry:\n    main()\n"
             f"except SystemExit:\n    print(sorted(m for m in {HEAVY + ('duckdb', 'numpy', 'pyarrow', 'sqlglot')!r} "
             "if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() \
        .splitlines()[-1] == "[]"


def _piped(ws, body: str, *argv):
    """`python -m riskconsole ARGV` with `body` piped on stdin (a pipe can be read once)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "riskconsole", *map(str, argv), "--workspace", str(ws.root)],
                          input=body, capture_output=True, text=True, env=env, timeout=300)


def test_a_strategy_piped_on_stdin_is_read_once(tiny_ws, tmp_path):
    """`cat s.yaml | riskconsole backtest /dev/stdin`: the window, the compiled-query cache's key and the compiler
    all read the one text (the second read of a pipe is empty), run after run (the second from the cache)."""
    body = (tiny_ws.strategies_dir / "tiny.yaml").read_text()
    expected = tmp_path / "file"
    assert main(["backtest", str(tiny_ws.strategies_dir / "tiny.yaml"), "--workspace", str(tiny_ws.root),
                 "--out", str(expected), "--format", "json"]) == 0
    for run_ in ("first", "cached"):
        out = tmp_path / run_
        done = _piped(tiny_ws, body, "backtest", "/dev/stdin", "--out", out, "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads((out / "report.json").read_text())["overall"] == \
            json.loads((expected / "report.json").read_text())["overall"]
    assert "compiled queries from data/cache/compiled/" in done.stdout
    bad = _piped(tiny_ws, "name: [\n", "backtest", "/dev/stdin")
    assert bad.returncode == 1 and bad.stderr.startswith("error: /dev/stdin: line 2: YAML syntax error")


def test_a_dataset_piped_on_stdin_validates(tiny_ws):
    done = _piped(tiny_ws, tiny_ws.dataset_path.read_text(), "validate", "/dev/stdin")
    assert done.returncode == 0 and done.stdout.startswith("ok: /dev/stdin: dataset,"), done.stderr


def test_by_a_column_whose_name_has_a_space(tmp_path, capsys):
    """`--by "Coupon Code"`: a CSV header's name, spaces and all (and `"Coupon Code:3"`-like specs still bucket)."""
    from riskconsole.ingest import load
    from tests.conftest import random_events, write_workspace

    events = random_events()
    events["Coupon Code"] = ["SPRING" if i % 3 else "" for i in range(len(events))]
    events["Basket Size"] = [1 + i % 7 for i in range(len(events))]
    strategy = {"name": "coupons", "rules": [{"name": "coupon", "when": "\"Coupon Code\" = 'SPRING' AND amount > 100",
                                              "action": "review"}]}
    ws = write_workspace(tmp_path / "ws", events, strategies={"coupons": strategy})
    load(ws)
    path = ws.strategies_dir / "coupons.yaml"
    code, _, err = run(capsys, "backtest", path, "--workspace", ws.root, "--by", "Coupon Code", "--out", tmp_path / "a",
                       "--format", "json")
    assert code == 0, err
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    segments = report["segments"]["rows"]
    assert report["segments"]["by"] == "Coupon Code" and {s["segment"] for s in segments} == {"SPRING", "(missing)"}
    assert sum(s["population"] for s in segments) == report["overall"]["population"]
    code, _, err = run(capsys, "backtest", path, "--workspace", ws.root, "--by", "Basket Size:3", "--out",
                       tmp_path / "b", "--format", "json")
    assert code == 0, err
    assert len(json.loads((tmp_path / "b" / "report.json").read_text())["segments"]["rows"]) == 3
    code, _, err = run(capsys, "backtest", path, "--workspace", ws.root, "--by", "coupon code")
    assert code == 1 and "no column 'coupon code' to segment by (did you mean 'Coupon Code'?)" in err


def test_riskconsole_console_serves_the_workspace_it_is_given(tmp_path, monkeypatch, capsys):
    """`riskconsole console` (what a stranger tries first) starts the same launcher as `python -m
    riskconsole.ui.serve`, on the workspace given, this machine only unless told otherwise."""
    import os

    from riskconsole.cli import _parser
    from riskconsole.ui import serve

    started = []
    monkeypatch.setattr(serve, "serve", lambda port, address: started.append(
        (port, address, os.environ["RISKCONSOLE_WORKSPACE"])))
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", "/elsewhere")
    assert main(["console", "--workspace", str(tmp_path), "--port", "8777"]) == 0
    assert started == [(8777, "127.0.0.1", str(tmp_path.resolve()))]  # the launcher says its URL (test_ui)
    args = _parser().parse_args(["console"])
    assert (args.port, args.address) == (8501, "127.0.0.1")


def test_sweep_prints_an_undefined_precision_with_its_reason(tiny_ws, capsys, tmp_path):
    """A sweep value at which nothing is flagged has no precision: the line says `— (no hits)` (`metric_text`)."""
    path = tiny_ws.strategies_dir / "big.yaml"
    path.write_text(yaml.safe_dump({"name": "big", "params": {"big": 100},
                                    "rules": [{"name": "big", "when": "amount > $big", "action": "review"}]}))
    code, out, err = run(capsys, "sweep", path, "--workspace", tiny_ws.root, "--param", "big", "--values", "100,1e9",
                         "--out", tmp_path / "sweep")
    assert code == 0, err
    lines = {line.split("=")[1].split()[0]: line for line in out.splitlines() if line.startswith("big=")}
    assert "precision — (no hits)" in lines["1e9"] and "None" not in out, out
    assert "(no hits)" not in lines["100"]


def test_a_backtest_run_as_the_script_ends_its_process_at_once(demo_ws, tmp_path):
    """As the `riskconsole` script (no argv), a backtest ends the process without tearing every module down: its
    output is flushed and the exit handlers run, nothing after `main()` does, and the exit code is the command's."""
    import subprocess
    import sys

    from riskconsole.workspace import REPO_ROOT

    probe = ("import atexit, sys\nsys.argv = ['riskconsole'] + sys.argv[1:]\nfrom riskconsole.cli import main\n"
             "atexit.register(lambda: print('exit handlers ran'))\nmain()\nprint('after main')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "RISKCONSOLE_COMPILED_CACHE": "0"}  # the same line each time

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe, "backtest", "--workspace", str(demo_ws.root), *args],
                              capture_output=True, text=True, env=env)

    done = run(str(demo_ws.strategies_dir / "candidate.yaml"), "--format", "json", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [f"computed on duckdb; wrote {tmp_path / 'a'}", "exit handlers ran"]
    assert json.loads((tmp_path / "a" / "report.json").read_text())["strategy"] == "candidate"
    failed = run(str(tmp_path / "missing.yaml"))
    assert failed.returncode == 1 and "missing.yaml: cannot read file" in failed.stderr
    assert failed.stdout == "exit handlers ran\n"


def test_a_dataset_file_of_another_workspace_says_which_workspace_holds_its_sources(tmp_path, capsys):
    """`riskconsole validate OTHER/data/dataset.yaml` run with another workspace (the default one, or one given)
    looked for the sources in that workspace and said only 'matches no file': it now names the workspace the file
    sits in, where the source is, and the flag to give. A source found in neither gets no such hint."""
    from riskconsole.cli import main
    from tests.conftest import random_events, write_workspace

    other = write_workspace(tmp_path / "other", random_events(n=30))
    here = write_workspace(tmp_path / "here", random_events(n=30), source_name="orders.csv")
    assert main(["validate", str(other.dataset_path), "--workspace", str(here.root)]) == 1
    assert capsys.readouterr().err == (
        f"error: {other.dataset_path}: source 'data/events.csv' matches no file (looked for "
        f"{here.root / 'data' / 'events.csv'}); sources are relative to the workspace, {here.root}, and this file's "
        f"workspace holds it: give --workspace {other.root}\n")
    assert main(["validate", str(other.dataset_path), "--workspace", str(other.root)]) == 0
    (other.root / "data" / "events.csv").unlink()
    assert main(["validate", str(other.dataset_path), "--workspace", str(here.root)]) == 1
    assert capsys.readouterr().err.rstrip().endswith(f"(looked for {here.root / 'data' / 'events.csv'})")


def test_a_backtest_with_its_stdout_closed_writes_its_report_and_exits_0(tiny_ws, tmp_path):
    """`riskconsole backtest ... >&-`: Python starts with no sys.stdout; the report is written and the process ends
    with 0 (the fast exit flushed sys.stdout unguarded: an AttributeError traceback, exit 1)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RISKCONSOLE_DAEMON": "0"}
    out = tmp_path / "out"
    code = ("import os, sys; os.close(1); from riskconsole.cli import main; sys.argv = ['riskconsole', *sys.argv[1:]]; "
            "sys.stdout = None; main()")
    done = subprocess.run([sys.executable, "-c", code, "backtest", str(tiny_ws.strategies_dir / "tiny.yaml"),
                           "--workspace", str(tiny_ws.root), "--out", str(out), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert (done.returncode, done.stderr) == (0, "") and (out / "report.json").is_file()
