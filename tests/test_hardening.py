"""Attacks from the security review (issue 8), each reproduced, each refused with one line that names the file."""

from __future__ import annotations

import re
import time

import pytest
import yaml

from riskconsole import limits
from riskconsole.cli import main
from riskconsole.config import Strategy, load_model, parse_model, parse_overrides, read_yaml
from riskconsole.errors import ConfigError, RiskConsoleError

RULE = "  - {name: a, when: 'amount > 1', action: block}\n"
GOOD = "name: s\nrules:\n" + RULE


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: BaseException | str) -> str:
    text = str(err).removesuffix("\n")  # a CLI's stderr ends with its one newline
    assert "\n" not in text and "Traceback" not in text
    return text


# ---------------------------------------------------------------- YAML input


LAUGHS = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("body, message", [
    ("name: s\nrules:\n  - {name: harmful, when: 'amount > 1', action: allow}\nrules:\n" + RULE,
     "line 4: duplicate key 'rules' (first at line 2"),
    ("name: s\nrules:\n  - name: a\n    when: 'amount > 1'\n    action: block\n    action: allow\n",
     "line 6: duplicate key 'action'"),
    ("name: s\nparams: {x: 1, x: 2}\nrules:\n" + RULE, "line 2: duplicate key 'x'"),
    ("[" * 20_000 + "]" * 20_000, f"nested more than {limits.MAX_YAML_DEPTH} levels"),
    ("name: s\nparams: {x: " + "9" * 100_000 + "}\nrules:\n" + RULE, "line 2: a number of 100,000 characters"),
    ("name: " + "9" * 100_000 + "\nrules:\n" + RULE, "a number of 100,000 characters"),
    ("name: s\nparams: {x: .inf}\nrules:\n" + RULE, "'.inf' is not a finite number"),
    (LAUGHS, "aliases expand to more than"),
    ("a: &a [1, *a]\n", "an alias refers to the collection that contains it"),
    ("name: s\nrules: [\n", "line 3: YAML syntax error"),
    ("name: s\nrules:\n\t- {name: a, when: 'amount > 1', action: block}\n",
     "line 3: YAML syntax error: found character '\\t' that cannot start any token (YAML indents with spaces, never "
     "tabs: replace the tab with spaces)"),
    ("name: s\nx: !!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
    ("name: " + "x" * (limits.MAX_CONFIG_BYTES + 1), "too large for a config file"),
])
def test_hostile_yaml_is_one_line_naming_the_file(tmp_path, body, message):
    path = tmp_path / "s.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_model(path, Strategy, "strategies/s.yaml")
    text = one_line(caught.value)
    assert text.startswith("strategies/s.yaml: ") and message in text, text


def test_non_utf8_yaml_names_the_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(GOOD.replace("name: s", "name: s\ndescription: caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^strategies/s.yaml: line 2: not UTF-8 text \(byte 0xe9\)"):
        load_model(path, Strategy, "strategies/s.yaml")


def test_text_that_only_pydantic_would_choke_on_is_refused_as_a_config_error():
    # a quoted huge integer, a quoted infinity: past the YAML loader, into pydantic
    for data in ({"name": "s", "rules": [{"name": "a", "when": "1=1", "action": "block"}], "params": {}},):
        assert parse_model(data, Strategy, "s.yaml").name == "s"
    from riskconsole.config import Business
    for field, value in (("review_capacity", "9" * 100_000), ("review_cost", "inf"), ("good_block_cost", "nan")):
        with pytest.raises(ConfigError) as caught:
            parse_model({field: value}, Business, "data/dataset.yaml")
        assert one_line(caught.value).startswith(f"data/dataset.yaml: {field}: ")


def test_a_name_with_control_characters_stays_on_one_line():
    with pytest.raises(ConfigError) as caught:
        parse_model({"name": "x\n# heading\x1b[31m", "rules": [{"name": "a", "when": "1=1", "action": "block"}]},
                    Strategy, "s.yaml")
    assert "\\n# heading\\x1b[31m" in one_line(caught.value)


def test_merge_keys_and_scalar_aliases_still_load():
    data = read_yaml("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  x: 3\nf: &f 5\ng: *f\n", "f.yaml")
    assert data == {"d": {"x": 1, "y": 2}, "e": {"x": 3, "y": 2}, "f": 5, "g": 5}


def test_a_key_is_the_text_written_never_a_boolean_number_or_null():
    """`{0: allow}` (decisions exported as codes) maps the text '0'; `010` stays '010' (YAML 1.1 reads 8), `1.0`
    '1.0', `null` and `~` themselves; values keep their YAML types."""
    data = read_yaml("{0: a, 010: b, 1.0: c, null: d, ~: e, yes: f, 0x1F: g, k: 010}", "f.yaml")
    assert data == {"0": "a", "010": "b", "1.0": "c", "null": "d", "~": "e", "yes": "f", "0x1F": "g", "k": 8}
    with pytest.raises(ConfigError, match="duplicate key '1'"):
        read_yaml("{1: a, 1: b}", "f.yaml")


def test_the_empty_label_is_what_the_load_trims_to_nothing():
    """`" "` and `"\u00a0"` are the empty label twice (the load trims them to nothing); a tab is a word of its own (the
    load keeps it: sources.word_key), so `{"": 0, "\t": 1}` maps two labels and is no duplicate."""
    from riskconsole.config import Dataset

    base = {"source": "e.csv", "columns": {"id": "i", "time": "t", "label": "y"}}
    with pytest.raises(ConfigError, match="an empty label is mapped twice"):
        parse_model({**base, "label_values": {" ": 0, "\u00a0": None}}, Dataset, "data/dataset.yaml")
    assert parse_model({**base, "label_values": {"": 0, "\t": 1}}, Dataset, "d").label_values == {"": 0, "\t": 1}


@pytest.mark.parametrize("value, message", [
    ("- approve: allow\n  - decline: block", "a list of maps where one map belongs: write prod_action_values: "
                                           "{approve: allow, decline: block}"),
    ("- yes: allow\n  - '': allow", "a list of maps where one map belongs: write prod_action_values: {'yes': allow, "
                                   "'': allow}"),
    ("[approve, decline]", "a map of keys to values belongs here, not a list (write prod_action_values: {key: "),
    ("approve", "a map of keys to values belongs here, not 'approve'"),
])
def test_a_map_written_as_a_list_or_a_word_gets_the_map_to_write(tmp_path, value, message):
    """`prod_action_values:` as a list of one-entry maps (`- approve: allow`, a common slip) is named with the one map
    they make, which loads; a list or a word is named for what it is ('Input should be a valid dictionary' said
    neither)."""
    from riskconsole.config import Dataset, load_model

    path = tmp_path / "dataset.yaml"
    head = "source: e.csv\ncolumns: {id: i, time: t, prod_action: p}\n"
    path.write_text(head + f"prod_action_values:\n  {value}\n")
    with pytest.raises(ConfigError, match=re.escape(f"dataset.yaml: prod_action_values: {message}")) as caught:
        load_model(path, Dataset, "dataset.yaml")
    written = re.search(r"write (prod_action_values: \{.*\})$", str(caught.value))
    if written:  # the map to write, written so, loads
        path.write_text(head + written.group(1) + "\n")
        assert load_model(path, Dataset, "dataset.yaml").prod_action_values


def test_duplicates_are_found_on_one_line_too():
    with pytest.raises(ConfigError, match="duplicate key 'rules'"):
        read_yaml("{rules: 1, rules: 2}", "f.yaml")


@pytest.mark.parametrize("items, message", [
    (["x=["], "--set x=[: line 1: YAML syntax error"),
    (["x=[1, 2]"], "give one value"),
    (["x={a: 1}"], "give one value"),
    (["x=.nan"], "not a finite number"),
    (["x=" + "9" * 5000], "a number of 5,000 characters"),
    (["x=1", "x=2"], "'x' is set twice"),
    (["burst"], "write PARAM=VALUE"),
    (["a\nb=1"], "'a\\nb' is not a param name"),
    (["x=" + "y" * (limits.MAX_OVERRIDE_CHARS + 1)], "characters (at most"),
    (['x="\\e[2Jcleared"'], "control characters (\\x1b[2Jcleared)"),
])
def test_bad_overrides_are_one_line(items, message):
    with pytest.raises(ConfigError) as caught:
        parse_overrides(items)
    assert message in one_line(caught.value)


def test_overrides_read_yaml_scalars():
    assert parse_overrides(["a=1", "b=0.5", "c=true", "d=web", "e=", "f='['", "g=2026-01-01"]) == {
        "a": 1, "b": 0.5, "c": True, "d": "web", "e": None, "f": "[", "g": __import__("datetime").date(2026, 1, 1)}
    assert parse_overrides(None) == {}


def test_bad_set_through_the_cli_is_one_line(tiny_ws, capsys):
    code, _, err = run(capsys, "backtest", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                       "--set", "burst=[")
    assert code == 1 and err.startswith("error: --set burst=[: line 1: YAML syntax error") and err.count("\n") == 1


def test_a_duplicate_rules_block_is_refused_by_every_command(tiny_ws, capsys):
    path = tiny_ws.strategies_dir / "dup.yaml"
    path.write_text("name: dup\nrules:\n  - {name: a, when: 'amount > 1', action: allow}\nrules:\n" + RULE)
    for command in (["validate", path], ["backtest", path]):
        code, out, err = run(capsys, *command, "--workspace", tiny_ws.root)
        assert code == 1 and "strategies/dup.yaml: line 4: duplicate key 'rules'" in err, err


# ---------------------------------------------------------------- strategy names name folders


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "..", "a/b", "-rf", "x\n# heading"])
@pytest.mark.parametrize("command", [
    ["backtest"], ["sweep", "--param", "big", "--values", "100,200"], ["optimize", "--param", "big"]])
def test_a_strategy_name_cannot_write_outside_the_workspace(tiny_ws, capsys, tmp_path, name, command):
    body = yaml.safe_load((tiny_ws.strategies_dir / "tiny.yaml").read_text())
    path = tiny_ws.strategies_dir / "evil.yaml"
    name = str(tmp_path / "escaped-abs") if name == "ABSOLUTE" else name
    path.write_text(yaml.safe_dump({**body, "name": name}))
    before = set(tiny_ws.root.parent.rglob("*"))
    code, _, err = run(capsys, command[0], path, *command[1:], "--workspace", tiny_ws.root)
    assert code == 1 and "is not a valid strategy name" in err and err.count("\n") == 1, err
    assert set(tiny_ws.root.parent.rglob("*")) == before
    assert not list(tmp_path.glob("escaped*")) and not (tiny_ws.root / "reports").exists()


# ---------------------------------------------------------------- amplification


def _strategy(when: str, params: dict, rules: int = 1) -> dict:
    return {"name": "amp", "params": params,
            "rules": [{"name": f"r{i}", "when": when, "action": "block"} for i in range(rules)]}


def test_a_param_cannot_multiply_an_expression_past_its_bound():
    from riskconsole.errors import ExpressionError
    from riskconsole.expressions import parse_expression

    when = "length(concat(" + ", ".join(["$s"] * 2_400) + ")) > 0"  # 9.6 KB: under the text bound
    started = time.process_time()  # CPU time: a loaded machine stretches the wall clock, not the work done
    with pytest.raises(ExpressionError) as caught:
        parse_expression(when, columns=["amount"], params={"s": "x" * 4_000}, where="s.yaml: rule 'r0'")
    assert "once its params are substituted" in one_line(caught.value)
    assert time.process_time() - started < 2  # refused before the 9.6 MB expression is built
    node = parse_expression("length(concat($s, $s)) > 0", columns=["amount"], params={"s": "x" * 4_000}, where="w")
    assert node is not None  # a long param used a few times is fine


def test_a_huge_list_param_is_refused_before_it_is_spliced():
    from riskconsole.errors import ExpressionError
    from riskconsole.expressions import parse_expression

    with pytest.raises(ExpressionError, match=r"a list param holds 200,000 values \(at most 10,000\)"):
        parse_expression("amount IN $ids", columns=["amount"], params={"ids": list(range(200_000))}, where="w")
    with pytest.raises(ConfigError, match=r"param 'ids' holds 10,001 values"):
        parse_model(_strategy("amount IN $ids", {"ids": list(range(limits.MAX_LIST_PARAM + 1))}), Strategy, "s.yaml")


def test_the_strategy_file_bounds_its_whole_expansion_and_its_rules():
    text = "length(concat(" + ", ".join(["$s"] * 40) + ")) > 0"
    with pytest.raises(ConfigError, match="once params are substituted"):
        parse_model(_strategy(text, {"s": "x" * 5_000}, rules=20), Strategy, "s.yaml")
    with pytest.raises(ConfigError, match=f"rules is too many \\(at most {limits.MAX_RULES}"):
        parse_model(_strategy("amount > 1", {}, rules=limits.MAX_RULES + 1), Strategy, "s.yaml")
    assert len(parse_model(_strategy("amount > 1", {}, rules=limits.MAX_RULES), Strategy, "s.yaml").rules) == 500


def test_optimize_counts_the_grid_before_building_it(tiny_ws, capsys):
    started = time.perf_counter()
    code, _, err = run(capsys, "optimize", tiny_ws.strategies_dir / "tiny.yaml", "--workspace", tiny_ws.root,
                       "--param", "burst", "--param", "big", "--values", "burst=0:9999:1", "--values", "big=0:9999:1")
    assert code == 1 and "10,000 burst x 10,000 big = 100,000,000 param combinations is too many" in one_line(err)
    assert time.perf_counter() - started < 10


def test_grid_points_counts_before_materialising():
    from riskconsole.optimize import grid_points

    huge = {"a": range(10**6), "b": range(10**6)}  # 10^12 combinations: building them would never end
    with pytest.raises(RiskConsoleError, match="1,000,000,000,000 param combinations"):
        grid_points(None, None, None, None, "s.yaml", None, huge)


@pytest.mark.parametrize("values, message", [
    ("0:1e308:1e-308", "too many"), ("nan:1:1", "need finite numbers"), ("0:inf:1", "need finite numbers"),
    ("1,[,3", "YAML syntax error"), (",".join(["1"] * 10_001), "10,001 values is too many"),
    ("0:1:0", "positive step"), ("1,,2", "value 2 is empty"), ("1,2,", "value 3 is empty"), ("", "no values"),
])
def test_sweep_values_are_bounded_and_one_line(values, message):
    from riskconsole.sweep import parse_values

    with pytest.raises(RiskConsoleError) as caught:
        parse_values(values)
    assert message in one_line(caught.value)


# ---------------------------------------------------------------- query time limit

SLOW = "SELECT count(*) FROM range(200000000) a(x), range(1000) b(y) WHERE (x * y) % 7 = 3"


def test_a_slow_query_is_stopped_with_one_line(monkeypatch):
    import duckdb
    import sqlglot

    from riskconsole.backtest import run_query

    monkeypatch.setenv(limits.QUERY_SECONDS_ENV, "0.3")
    con = duckdb.connect()
    started = time.perf_counter()
    with pytest.raises(limits.QueryTimeout) as caught:
        run_query(con, sqlglot.parse_one(SLOW, read="duckdb"), "slow")
    assert time.perf_counter() - started < 10
    assert one_line(caught.value).startswith("strategy 'slow': the query ran longer than 0.3 s and was stopped "
                                             "(limit: $RISKCONSOLE_QUERY_SECONDS)")
    # the connection is usable, and a finished query leaves no interrupt behind for the next one
    assert run_query(con, sqlglot.parse_one("SELECT 42 AS v"), "quick").column("v").to_pylist() == [42]
    time.sleep(0.5)
    assert run_query(con, sqlglot.parse_one("SELECT 43 AS v"), "quick").column("v").to_pylist() == [43]


def test_the_time_limit_reads_its_variable(monkeypatch):
    monkeypatch.delenv(limits.QUERY_SECONDS_ENV, raising=False)
    assert limits.query_seconds() == limits.DEFAULT_QUERY_SECONDS == 300
    for bad in ("abc", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(limits.QUERY_SECONDS_ENV, bad)
        with pytest.raises(RiskConsoleError, match="RISKCONSOLE_QUERY_SECONDS"):
            limits.query_seconds()


# ---------------------------------------------------------------- outputs people open

HOSTILE_TEXT = ["x\n# injected heading", "![x](http://evil.example/x.png)", "<img src=x onerror=alert(1)>",
                "=HYPERLINK(\"http://evil.example\",\"click\")", "\x1b[31mred\x1b[0m", "+1-2", "@SUM(A1)",
                "-cmd", "a|b", "[link](javascript:alert(1))"]


@pytest.fixture
def hostile_ws(tmp_path):
    """A workspace whose segment values, strategy description and params are hostile text."""
    from conftest import random_events, write_workspace
    from riskconsole.ingest import load

    events = random_events()
    events["channel"] = [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] for i in range(len(events))]
    strategy = {"name": "hostile", "description": "\n".join(HOSTILE_TEXT), "params": {"big": 150, "tag": "=1+1"},
                "rules": [{"name": "big", "when": "amount > $big AND channel <> $tag", "action": "review"},
                          {"name": "burst", "when": "user_orders_1h >= 2", "action": "block"}]}
    baseline = {**strategy, "name": "base", "rules": strategy["rules"][1:]}
    ws = write_workspace(tmp_path / "ws", events, strategies={"hostile": strategy, "base": baseline})
    load(ws)
    return ws


@pytest.mark.parametrize("compare", [False, True])
def test_hostile_text_is_inert_in_every_report_file(hostile_ws, capsys, tmp_path, compare):
    out = tmp_path / "out"
    baseline = ["--baseline", hostile_ws.strategies_dir / "base.yaml", "--bootstrap", "20"] if compare else []
    code, stdout, err = run(capsys, "backtest", hostile_ws.strategies_dir / "hostile.yaml", "--workspace",
                            hostile_ws.root, "--by", "channel", "--format", "json,csv,html,md", "--out", out, *baseline)
    assert code == 0, err
    assert "\x1b" not in stdout + err
    md = (out / "report.md").read_text()
    assert "](http" not in md and "](javascript" not in md
    assert "<img" not in md and "\x1b" not in md
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert all(line.startswith(("# Backtest: ", "## ")) for line in headings), headings
    assert not any("injected heading" in line for line in headings)
    assert "injected heading" in md  # the text is there, as text
    html_text = (out / "report.html").read_text()
    assert "<img" not in html_text and "\x1b" not in html_text and "&lt;img src=x onerror" in html_text
    import csv

    for name in ("rules.csv", "daily.csv"):
        for row in csv.reader((out / name).read_text().splitlines()):
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), (name, row)


def test_hostile_segments_in_a_markdown_table_stay_in_their_cell():
    from riskconsole.share import _md_table

    table = _md_table(["segment", "events"], [[text, "1"] for text in HOSTILE_TEXT])
    for line in table.splitlines()[2:]:
        assert line.count(" | ") == 1 and line.startswith("| ") and line.endswith(" |"), line  # two cells
        assert "](" not in line and "<img" not in line and "\n" not in line


def test_csv_cells_cannot_start_a_formula():
    from riskconsole.export import table_csv_bytes

    rows = [{"name": text, "value": -1.5, "n": 3} for text in HOSTILE_TEXT] + [{"name": " =1+1", "value": 0, "n": 0}]
    import csv
    import io

    parsed = list(csv.DictReader(io.StringIO(table_csv_bytes(rows).decode())))
    for row in parsed:
        assert not row["name"].lstrip().startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert parsed[0]["value"] == "-1.5"  # numbers stay numbers


def test_sweep_csv_escapes_text_values(tiny_ws, capsys, tmp_path):
    path = tiny_ws.strategies_dir / "text.yaml"
    path.write_text("name: text\nparams: {ch: web}\nrules:\n  - {name: a, when: \"channel = $ch\", action: review}\n")
    code, _, err = run(capsys, "sweep", path, "--param", "ch", "--values", "web,'=1+1',\"@x\"", "--workspace",
                       tiny_ws.root, "--out", tmp_path / "sw")
    assert code == 0, err
    text = (tmp_path / "sw" / "sweep.csv").read_text()
    assert "\n'=1+1," in text and "\n'@x," in text


def test_escape_functions_hold():
    from riskconsole import escape

    for text in HOSTILE_TEXT:
        md = escape.markdown(text)
        assert "\n" not in md and "](" not in md and "<" not in md and "\x1b" not in md
        assert not md.startswith(("#", "!", "-", "+", ">", "[")) or md.startswith("\\")
        assert "<" not in escape.html_text(text) and "\x1b" not in escape.terminal(text)
    assert escape.csv_cell("\t=1") == "'\t=1" and escape.csv_cell(" =1") == "' =1" and escape.csv_cell(-1) == -1


def test_the_quarantine_csvs_formula_rule_in_sql_is_csv_cells():
    """The quarantine export defuses cells in SQL (ingest.FORMULA_PATTERN, one regular expression: the list lookup
    it replaced took 4 s to plan at 300 columns): on every string of up to 3 characters from the characters the rule
    names and some it does not, it defuses exactly what escape.csv_cell defuses."""
    import itertools

    import duckdb

    from riskconsole import escape
    from riskconsole.ingest import FORMULA_PATTERN

    chars = list(dict.fromkeys([*escape.FORMULA_START, *escape.FORMULA_LEADING, "a", "1", "\\", "]", "^", "[",
                                "\uff11", "\u3000"]))
    values = ["".join(t) for n in range(4) for t in itertools.product(chars, repeat=n)]
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest($v) AS v", {"v": values})
    got = dict(con.execute("SELECT v, regexp_matches(v, $p) FROM v", {"p": FORMULA_PATTERN}).fetchall())
    assert len(got) == len(values) > 5_000
    assert [v for v in values if got[v] != (escape.csv_cell(v) != v)] == []


def test_control_characters_in_chart_data_do_not_abort_the_process():
    """vl-convert panics (aborting Python itself) on characters XML forbids: run it in a child process."""
    import subprocess
    import sys

    code = ("from riskconsole.charts import segment_delta_chart\nfrom riskconsole.share import svg\n"
            "rows = [{'segment': s, 'delta': {'net_benefit': 1.0}} for s in ('\\x1b[31mred', 'a\\x00b', '\\x07')]\n"
            "assert '<svg' in svg(segment_delta_chart(rows))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-500:]


def test_overrides_cannot_blow_the_strategy_past_its_size_bound(tiny_ws):
    """Each expression is bounded; so is the whole strategy once --set values are substituted."""
    from riskconsole import limits
    from riskconsole.errors import ConfigError
    from riskconsole.session import Session

    rules = [{"name": f"r{i}", "when": "channel IN ($many)", "action": "review"} for i in range(40)]
    path = tiny_ws.strategies_dir / "many.yaml"
    path.write_text(yaml.safe_dump({"name": "many", "params": {"many": ["web"]}, "rules": rules}))
    big = [f"v{i:06d}x" for i in range(limits.MAX_LIST_PARAM)]
    with Session(tiny_ws) as session, pytest.raises(ConfigError, match="with --set many.*characters once params"):
        session.compile(path, {"many": big})


@pytest.mark.parametrize("raw, message", [
    (b'name: x\ndescription: "caf\xe9"\nrules: []\n', "line 2: not UTF-8"),
    (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested more than 64 levels"),
    (b"name: x\nrules: []\nrules: []\n", "duplicate key 'rules'"),
])
def test_validate_refuses_hostile_files_in_one_line(tiny_ws, capsys, raw, message):
    from riskconsole.cli import main

    path = tiny_ws.strategies_dir / "hostile.yaml"
    path.write_bytes(raw)
    assert main(["validate", str(path), "--workspace", str(tiny_ws.root)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--bootstrap", "100000000", "--baseline", "B"], "--bootstrap 100000000: give a number of day resamples"),
    (["--bootstrap", "-5", "--baseline", "B"], "--bootstrap -5"),
    (["--bootstrap", "50"], "--bootstrap: only used with --baseline"),
    (["--seed", "3", "--allow-different-population"], "--seed, --allow-different-population: only used with"),
])
def test_comparison_flags_are_bounded_and_never_silently_ignored(tiny_ws, capsys, tmp_path, args, message):
    from riskconsole.cli import main

    path = str(tiny_ws.strategies_dir / "tiny.yaml")
    args = [path if a == "B" else a for a in args]
    assert main(["backtest", path, "--workspace", str(tiny_ws.root), "--out", str(tmp_path / "o"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_checking_expressions_stops_at_the_time_limit(tiny_ws, monkeypatch):
    """The limit covers checking a strategy's expressions, not only running them."""
    from riskconsole.errors import ConfigError
    from riskconsole.session import Session

    rules = [{"name": f"r{i}", "when": " OR ".join(f"amount > {j}" for j in range(300)), "action": "review"}
             for i in range(30)]
    path = tiny_ws.strategies_dir / "slow.yaml"
    path.write_text(yaml.safe_dump({"name": "slow", "rules": rules}))
    monkeypatch.setenv("RISKCONSOLE_QUERY_SECONDS", "0.05")
    with Session(tiny_ws) as session, pytest.raises(ConfigError, match="took longer than 0.05 s"):
        session.compile(path)


class _Counted:
    """A DuckDB connection whose SELECTs are recorded (and, with `pause`, each holding 'lots' made slow)."""

    def __init__(self, con, pause: float = 0.0) -> None:
        self.con, self.pause, self.selects = con, pause, []

    def execute(self, sql, *args):
        if sql.startswith("SELECT"):
            self.selects.append(sql)
            if self.pause and "lots" in sql:
                time.sleep(self.pause)
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


def _counting(monkeypatch, pause: float = 0.0) -> list[_Counted]:
    """Every connection a Session compiles a strategy with, counted."""
    from riskconsole import session as session_module

    made, real = [], session_module.compile_strategy

    def compile_strategy(*args, con=None, **kwargs):
        made.append(_Counted(con, pause))
        return real(*args, con=made[-1], **kwargs)
    monkeypatch.setattr(session_module, "compile_strategy", compile_strategy)
    return made


def test_naming_the_failing_part_of_many_failing_rules_is_bounded(tiny_ws, monkeypatch):
    """Each condition that fails on a row of NULLs was probed part by part for the one to name, a query a part (~5
    ms): 500 rules of 40 parts took ~100 s of validate. Which conditions fail is one query, the parts of one failing
    condition one more; the parts probed for a whole strategy are bounded (past the bound a condition is named whole),
    and every failing rule is still listed."""
    from riskconsole.errors import Problems
    from riskconsole.session import Session

    made = _counting(monkeypatch)
    when = " AND ".join([f"channel <> 'c{j}'" for j in range(45)] + ["amount > 'lots'"])
    rules = [{"name": f"r{i}", "when": when, "action": "review"} for i in range(12)]
    path = tiny_ws.strategies_dir / "many.yaml"
    path.write_text(yaml.safe_dump({"name": "many", "rules": rules}))
    with Session(tiny_ws) as session, pytest.raises(Problems) as found:
        session.compile(path, every=True)
    assert len(found.value.lines) == 12 and all("fails on every row" in line for line in found.value.lines)
    assert len(made[0].selects) <= 2 + 2 * 12  # all at once, which fail, then each failing rule: its error, its parts


def test_checking_failing_rules_runs_a_query_per_failing_rule_not_two(tiny_ws, monkeypatch):
    """500 rules failing on a row of NULLs (`amount > 'lots'`) took ~25 s of validate: each was run alone, then its
    one part run again to name it. Which fail is one query (DuckDB's try()), each failing one then runs once."""
    from riskconsole.errors import Problems
    from riskconsole.session import Session

    made = _counting(monkeypatch)
    rules = [{"name": f"r{i}", "when": f"amount > 'lots{i}'", "action": "review"} for i in range(40)]
    rules += [{"name": f"ok{i}", "when": f"channel = 'c{i}'", "action": "review"} for i in range(40)]
    path = tiny_ws.strategies_dir / "many.yaml"
    path.write_text(yaml.safe_dump({"name": "many", "rules": rules}))
    with Session(tiny_ws) as session, pytest.raises(Problems) as found:
        session.compile(path, every=True)
    assert [line.split(": ")[1] for line in found.value.lines] == [f"rule 'r{i}'" for i in range(40)]
    assert "'amount > 'lots0'' fails on every row: Could not convert string 'lots0' to DOUBLE (amount is DOUBLE" in \
        found.value.lines[0]
    assert len(made[0].selects) <= 2 + 40


def test_checking_failing_rules_stops_at_the_time_limit(tiny_ws, monkeypatch):
    """The run on a row of NULLs of each failing rule was outside the time limit of checking a strategy's
    expressions: 500 failing rules ran on however long they took. It stops at the limit, naming it."""
    from riskconsole.errors import ConfigError
    from riskconsole.session import Session

    _counting(monkeypatch, pause=0.3)
    rules = [{"name": f"r{i}", "when": f"amount > 'lots{i}'", "action": "review"} for i in range(20)]
    path = tiny_ws.strategies_dir / "slow.yaml"
    path.write_text(yaml.safe_dump({"name": "slow", "rules": rules}))
    monkeypatch.setenv("RISKCONSOLE_QUERY_SECONDS", "2")
    started = time.monotonic()
    with Session(tiny_ws) as session, pytest.raises(ConfigError, match="checking the strategy's expressions took "
                                                                       "longer than 2 s"):
        session.compile(path, every=True)
    assert time.monotonic() - started < 6  # 20 rules of two slowed queries each: 12 s


@pytest.mark.parametrize("data, model, message", [
    # a misspelt key names the key meant where one is close, at any depth
    ({"name": "s", "levle": {"entity": "m"}, "rules": []}, "Strategy", "top level: unknown key 'levle' (did you mean "
                                                                      "'level'?)"),
    ({"name": "s", "level": {"entity": "m", "evry": "1d"}, "rules": []}, "Strategy",
     "level: unknown key 'evry' (did you mean 'every'?)"),
    ({"source": "e.csv", "columns": {"id": "i", "time": "t"},
      "features": [{"name": "r", "graph": "degree", "node": "u", "links": ["d"], "window": "7d", "max_degre": 5}]},
     "Dataset", "features[0] 'r': unknown key 'max_degre' (did you mean 'max_degree'?)"),
    ({"source": "e.csv", "columns": {"id": "i", "time": "t"},
      "tables": {"m": {"source": "m.csv", "key": "k", "label_value": {"banned": 1}}}},
     "Dataset", "tables.m: unknown key 'label_value' (did you mean 'label_values'?)"),
    # nothing close, or the close key already written beside it: the schema is where to look
    ({"name": "s", "colour": "red", "rules": []}, "Strategy", "top level: unknown key 'colour' (typo? see"),
    ({"name": "s", "level": {"entity": "m", "every": "1d", "evry": "2d"}, "rules": []}, "Strategy",
     "level: unknown key 'evry' (typo? see"),
])
def test_an_unknown_key_names_the_key_meant(data, model, message):
    """`evry:` under `level:` or `max_degre:` on a graph feature: the key meant, not only `see riskconsole schema`."""
    from riskconsole import config

    with pytest.raises(ConfigError) as caught:
        parse_model(data, getattr(config, model), "f.yaml")
    assert one_line(caught.value).startswith(f"f.yaml: {message}")
