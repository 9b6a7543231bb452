"""docs/ cannot drift: generated blocks are fresh, every number and report key is defined, every flag has help."""

from __future__ import annotations

import argparse
import re

import pytest

from riskconsole import config
from riskconsole.cli import _parser
from riskconsole.glossary import METRICS
from riskconsole.reference import BLOCKS, DOCS_DIR, arguments, block_names, field_rows, render_page, stale_pages

REPO = DOCS_DIR.parent
PAGES = ("README.md", "dataset.md", "strategy.md", "detectors.md", "report.md", "cli.md")
REGENERATE = "run `python -m riskconsole.reference` and commit docs/"


def _text(name: str) -> str:
    return (DOCS_DIR / name).read_text(encoding="utf-8")


def test_every_page_exists():
    assert set(PAGES) <= {p.name for p in DOCS_DIR.glob("*.md")}


def test_generated_blocks_are_fresh():
    stale = [p.name for p in stale_pages(DOCS_DIR, write=False)]
    assert not stale, f"stale generated blocks in {', '.join(stale)}: {REGENERATE}"


def test_every_generator_has_a_block():
    used = [name for page in DOCS_DIR.glob("*.md") for name in block_names(page.read_text(encoding="utf-8"))]
    assert sorted(used) == sorted(BLOCKS)


def test_check_mode_fails_on_a_stale_block(tmp_path, capsys):
    from riskconsole.reference import main

    page = tmp_path / "x.md"
    page.write_text("intro\n<!-- generated:metrics -->\nold\n<!-- /generated -->\nend\n")
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    assert "old" in page.read_text()
    assert main(["--docs", str(tmp_path)]) == 0 and main(["--check", "--docs", str(tmp_path)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("<!-- /generated -->\nend\n") and "`net_benefit`" in text
    capsys.readouterr()


def test_an_unknown_block_is_an_error():
    with pytest.raises(KeyError, match="unknown generated block 'nope'"):
        render_page("<!-- generated:nope -->\n<!-- /generated -->\n")


@pytest.mark.parametrize("model", [config.Dataset, config.Strategy, config.Detector])
def test_every_config_field_has_a_description(model):
    missing = [r["key"] for r in field_rows(model) if not r["description"]]
    assert not missing, f"add Field(description=...) in riskconsole/config.py for: {', '.join(missing)}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_a_fields_type_in_the_reference_says_only_what_it_takes():
    """A union of scalars reads as what it takes: `spark.conf`'s values are one value each, not null or a list (its
    type said "number, text, true/false or null, or a list of them", the words of a param's value)."""
    from riskconsole.reference import type_name

    assert type_name(config.SparkSettings.model_fields["conf"].annotation) == "map of text to number, text or true/false"
    assert type_name(config.ParamValue) == "number, text, true/false, date, time or null, or a list of them"


def test_every_cli_command_and_argument_has_help():
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in action._choices_actions)
    missing = [f"{name} {a.option_strings or a.dest}" for name, sub in _subparsers(parser).items()
               for a in arguments(sub) if not (a.help and a.help.strip()) or a.help == argparse.SUPPRESS]
    assert not missing, f"add help= in riskconsole/cli.py _parser() for: {missing}"


def test_every_command_is_in_cli_md():
    text = _text("cli.md")
    for name in _subparsers(_parser()):
        assert f"### `riskconsole {name}" in text


def test_every_glossary_metric_is_defined_in_report_md():
    text = _text("report.md")
    for metric in METRICS:
        assert f"`{metric.key}`" in text
        assert metric.definition.strip() and metric.formula.strip()


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> dict:
    """A real report with every optional block: a baseline, segments, a rule of each action."""
    from conftest import random_events, write_workspace
    from riskconsole.ingest import load
    from riskconsole.report import Baseline, run_backtest

    candidate = {"name": "candidate", "params": {"burst": 2, "big": 150}, "rules": [
        {"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
        {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"},
        {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"}]}
    baseline = {**candidate, "name": "baseline", "rules": candidate["rules"][:2]}
    root = tmp_path_factory.mktemp("docs_ws")
    ws = write_workspace(root, random_events(), strategies={"candidate": candidate, "baseline": baseline})
    load(ws)
    return run_backtest(ws, ws.strategies_dir / "candidate.yaml", baseline=Baseline(
        ws.strategies_dir / "baseline.yaml", bootstrap=50), by="channel").report


def test_the_glossary_covers_every_overall_key_of_a_real_report(full_report):
    keys = {m.key for m in METRICS}
    missing = sorted(set(full_report["overall"]) - keys)
    assert not missing, f"add these overall keys to riskconsole/glossary.py METRICS: {missing}"


# Paths whose keys are names (of the report's blocks and fields), not data (param names, segment values).
KEY_PATHS = ("", "window", "overall", "by_action.block", "rules.0", "rules.0.decided", "attribution",
             "attribution.leave_one_out.0", "attribution.overlap", "daily.0", "business", "segments",
             "segments.rows.0", "compare", "compare.changed.0", "compare.intervals", "compare.intervals.delta",
             "compare.segments", "compare.segments.rows.0", "compare.segments.rows.0.delta")


def _at(report: dict, path: str):
    node = report
    for part in filter(None, path.split(".")):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.mark.parametrize("path", KEY_PATHS)
def test_every_report_key_is_explained_in_report_md(full_report, path):
    text = _text("report.md")
    node = _at(full_report, path)
    assert isinstance(node, dict) and node
    missing = sorted(k for k in node if f"`{k}`" not in text and not _leave_one_out(k, text))
    assert not missing, f"docs/report.md does not explain {path or 'top-level'} keys: {missing}"


def _leave_one_out(key: str, text: str) -> bool:
    """`recall_added` is explained as `KEY_added` for KEY in the list of leave-one-out metrics."""
    match = re.fullmatch(r"(\w+)_(added|without)", key)
    return bool(match) and f"`KEY_{match.group(2)}`" in text and f"`{match.group(1)}`" in text


_LINK = re.compile(r"\]\(([^)#\s]+\.md)?(?:#([^)\s]+))?\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES)
def test_links_between_pages_resolve(page):
    for target, anchor in _LINK.findall(_text(page)):
        if target.startswith("http"):
            continue
        linked = DOCS_DIR / (target or page)
        assert linked.exists(), f"{page}: link to missing {target}"
        if anchor:
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), f"{page}: no heading '#{anchor}' in {linked.name}"


def test_the_readme_points_users_to_docs_not_to_files_they_never_see():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "shared/DESIGN.md" not in readme
    assert "docs/README.md" in readme and "riskconsole init" in readme
    for page in PAGES[1:]:
        assert f"docs/{page}" in readme


def test_every_number_the_cli_summary_prints_is_a_glossary_title():
    titles = {m.title for m in METRICS}
    for shown in ("precision", "recall", "amount recall", "net benefit", "review cases", "flagged"):
        assert shown in titles


def test_init_is_documented_step_by_step():
    guide = _text("README.md")
    for step in ("riskconsole init --workspace", "riskconsole validate data/dataset.yaml", "riskconsole load",
                 "riskconsole backtest strategies/candidate.yaml --baseline strategies/baseline.yaml"):
        assert step in guide


def test_every_command_help_renders():
    for name, sub in _subparsers(_parser()).items():
        assert name in sub.format_help()  # a stray '%' in a help string would raise here


def test_the_chargebacks_join_of_dataset_md_runs_and_loads(tmp_path, monkeypatch):
    """dataset.md's recipe for labels that arrive as their own file (a stranger merged a chargebacks export by hand:
    no page said how): the query as printed runs on an orders and a chargebacks file and the result loads with the
    labels each order should get, worked out here by the rule in words (fraud chargeback: 1, dated then; another
    dispute: 0; blocked and not explored: unknown; 45 days old by the export: good, dated then; else unknown)."""
    import duckdb

    from riskconsole.ingest import load
    from riskconsole.workspace import Workspace

    section = _text("dataset.md").split("### Labels that arrive as a file of their own", 1)[1]
    query = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    (tmp_path / "data").mkdir()
    orders = [("o1", "2026-01-10 10:00:00+01:00", "allow", ""), ("o2", "2026-01-11 09:00:00", "allow", ""),
              ("o3", "2026-01-12 09:00:00", "block", "0"), ("o4", "2026-01-12 10:00:00", "block", "1"),
              ("o5", "2026-03-30 09:00:00", "allow", ""), ("o6", "2026-01-15 08:00:00", "review", "")]
    (tmp_path / "data/orders.csv").write_text("order_id,created_at,amount,prod_action,explore,propensity\n" + "".join(
        f"{o},{t},10.5,{a},{e},{'0.2' if e else ''}\n" for o, t, a, e in orders))
    (tmp_path / "data/chargebacks.csv").write_text("order_id,cb_date,reason\no2,20.02.2026,fraud\n"
                                                   "o4,01.02.2026,fraud\no6,03.02.2026,not_received\n")
    (tmp_path / "data/dataset.yaml").write_text(
        "source: data/orders_labelled.csv\ncolumns: {id: order_id, time: created_at, label: is_fraud, "
        "label_time: label_at, amount: amount, prod_action: prod_action, explore: explore, propensity: propensity}\n")
    monkeypatch.chdir(tmp_path)
    duckdb.sql(query)
    load(Workspace(tmp_path))
    with duckdb.connect(str(tmp_path / "data/console.duckdb"), read_only=True) as con:
        got = con.execute("SELECT order_id, is_fraud, CAST(label_at AS VARCHAR) FROM events ORDER BY 1").fetchall()
    assert got == [("o1", 0, "2026-02-24 09:00:00"), ("o2", 1, "2026-02-20 00:00:00"), ("o3", None, None),
                   ("o4", 1, "2026-02-01 00:00:00"), ("o5", None, None), ("o6", 0, "2026-02-03 00:00:00")]
