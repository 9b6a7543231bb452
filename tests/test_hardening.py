"""Attacks from the security review (issue 8), each reproduced, each refused with one line that names the file."""

from __future__ import annotations

import pytest
import yaml

from riskconsole import limits
from riskconsole.cli import main
from riskconsole.config import Strategy, load_model, parse_model, parse_overrides, read_yaml
from riskconsole.errors import ConfigError

RULE = "  - {name: a, when: 'amount > 1', action: block}\n"
GOOD = "name: s\nrules:\n" + RULE


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: BaseException | str) -> str:
    text = str(err)
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
