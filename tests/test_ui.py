"""One AppTest per console page, on a tiny workspace: no exception, and the number that matters is the core's."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from riskconsole.cli import main
from riskconsole.export import fmt
from riskconsole.ingest import load
from riskconsole.report import run_backtest
from riskconsole.ui import common
from conftest import random_events, write_workspace

APP = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "app.py")
RULES = [
    {"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
    {"name": "burst", "when": "user_orders_1h >= $burst", "action": "block"},
    {"name": "big_live", "when": "amount > $big AND channel = 'live'", "action": "review"},
    {"name": "shared_device", "when": "device_users_1d >= 3", "action": "review"},
]


@pytest.fixture(scope="module")
def console_ws(tmp_path_factory):
    strategies = {"baseline": {"name": "baseline", "params": {"burst": 3, "big": 300.0}, "rules": RULES},
                  "candidate": {"name": "candidate", "params": {"burst": 2, "big": 150.0}, "rules": RULES}}
    ws = write_workspace(tmp_path_factory.mktemp("console"), random_events(), strategies=strategies)
    load(ws)
    return ws


@pytest.fixture
def page(console_ws, monkeypatch):
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(console_ws.root))
    common.release_connections()

    def open_page(name: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.switch_page(f"riskconsole/ui/{name}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _default(ws):
    """The window the pages start on: the CLI's without --to (every day up to the last mature one)."""
    from riskconsole.session import Session

    with Session(ws) as session:
        return session.window(session.day_range()[0].isoformat())


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_backtest_page_shows_the_core_numbers(page, console_ws):
    at = page("backtest_page")
    core = run_backtest(console_ws, console_ws.strategies_dir / "candidate.yaml", _default(console_ws)).report["overall"]
    assert _metric(at, "precision") == fmt(core["precision"], "pct")
    assert _metric(at, "net benefit") == fmt(core["net_benefit"], "money")
    assert any(el.type == "vega_lite_chart" for el in at.get("vega_lite_chart")) or at.get("arrow_vega_lite_chart")


def test_tune_page_slider_moves_the_kpis(page, console_ws):
    at = page("tune_page")
    assert [s.label for s in at.slider] == ["burst", "big"]
    before = _metric(at, "recall")
    at.slider(key="tune_candidate_big").set_value(20.0).run()
    assert not at.exception
    core = run_backtest(console_ws, console_ws.strategies_dir / "candidate.yaml", _default(console_ws),
                        overrides={"big": 20.0}).report
    assert _metric(at, "recall") == fmt(core["overall"]["recall"], "pct") != before


def test_strategy_page_validates_as_you_type(page, console_ws):
    at = page("strategy_page")
    area = at.text_area[0]
    assert area.value == (console_ws.strategies_dir / "candidate.yaml").read_text()
    assert any("Valid: 4 rules" in s.value for s in at.success)
    area.set_value(area.value.replace("user_orders_1h", "user_ordrs_1h")).run()
    assert any("did you mean 'user_orders_1h'" in e.value for e in at.error)


def test_data_page_counts(page):
    at = page("data_page")
    assert _metric(at, "events loaded") == "400"
    assert _metric(at, "quarantined") == "0"


def test_the_data_page_shows_what_the_last_load_warned_whoever_loaded(tmp_path, monkeypatch):
    """A load's warnings are kept with the data: the Data page shows them after a CLI load, and a console load
    shows each once."""
    from conftest import late_json_lines

    ws = write_workspace(tmp_path / "ws", random_events(n=20))
    late_json_lines(ws.root / "data" / "late.jsonl")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "source": "data/late.jsonl"}))
    warned = load(ws).warnings
    assert len(warned) == 1
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(ws.root))
    common.release_connections()
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("riskconsole/ui/data_page.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning] == [f"The last load warned: {warned[0]}"]
    next(b for b in at.button if b.label == "Load dataset").click().run()
    assert not at.exception and [w.value for w in at.warning] == warned
    common.release_connections()


@pytest.fixture
def downloads(monkeypatch):
    """The bytes behind each download button of the last AppTest run, by button label.

    AppTest keeps download payloads in a MemoryMediaFileStorage it creates per run and drops afterwards;
    record that storage, and read each button's file by the id at the end of its proto `url`.
    """
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stores = []

    class Recording(MemoryMediaFileStorage):
        def __init__(self, endpoint: str) -> None:
            super().__init__(endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)

    def read(at: AppTest) -> dict[str, bytes]:
        buttons = at.get("download_button")
        assert buttons and stores
        return {b.proto.label: stores[-1].get_file(b.proto.url.rsplit("/", 1)[1]).content for b in buttons}

    return read


def test_export_page_offers_every_file(page, downloads, console_ws, tmp_path, capsys, monkeypatch):
    """The Export page offers the CLI's files, byte for byte, for the command it says is equivalent."""
    at = page("export_page")
    assert any("Backtest: candidate" in m.value for m in at.markdown)
    offered = downloads(at)
    files = {"report.json", "rules.csv", "daily.csv", "decisions.parquet", "report.html", "report.md"}
    assert files | {"candidate.yaml (reviewed)"} == set(offered)
    (command,) = [c.value.split("`")[1] for c in at.caption if c.value.startswith("Equivalent CLI:")]
    args = shlex.split(command)
    assert args[:2] == ["riskconsole", "backtest"] and "--from" in args and "--to" not in args  # default: mature days
    out = tmp_path / "cli"
    monkeypatch.chdir(console_ws.root)  # the command names files relative to the workspace
    assert main([*args[1:], "--workspace", str(console_ws.root), "--out", str(out)]) == 0, capsys.readouterr()
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(written) == files
    for name in sorted(files):  # report.json holds no timestamp: every file must match exactly
        assert offered[name] == written[name], name
    report = json.loads(offered["report.json"])
    core = run_backtest(console_ws, console_ws.strategies_dir / "candidate.yaml", _default(console_ws)).report
    assert report["overall"] == json.loads(json.dumps(core["overall"])) and report["warnings"] == core["warnings"]
    reviewed = yaml.safe_load(offered["candidate.yaml (reviewed)"])
    assert reviewed["params"] == yaml.safe_load((console_ws.strategies_dir / "candidate.yaml").read_text())["params"]


def test_compare_page_shows_intervals_and_attribution(page, console_ws):
    at = page("compare_page")
    from riskconsole.report import Baseline
    core = run_backtest(console_ws, console_ws.strategies_dir / "candidate.yaml", _default(console_ws),
                        baseline=Baseline(console_ws.strategies_dir / "baseline.yaml"), by="channel").report
    table = at.dataframe[0].value
    recall = table[table["metric"] == "recall"].iloc[0]
    assert recall["candidate"] == fmt(core["overall"]["recall"], "pct")
    low, high = core["compare"]["intervals"]["delta"]["recall"]
    assert recall["95% interval"] == f"{low * 100:+.2f} pts … {high * 100:+.2f} pts", recall["95% interval"]
    assert any(s.value.startswith("Segments by channel") for s in at.subheader)


def test_tune_page_optimize_panel_applies_the_best_setting(page):
    at = page("tune_page")
    at.multiselect[0].set_value(["big"]).run()
    at.number_input[0].set_value(1000).run()  # capacity no object: the best by net benefit
    next(b for b in at.button if b.label == "Find the best setting").click().run()
    assert not at.exception
    assert any("Best within capacity" in s.value for s in at.success)
    best = at.session_state["optimized"]["best"]["big"]
    next(b for b in at.button if b.label.startswith("Apply")).click().run()
    assert not at.exception
    assert at.slider(key="tune_candidate_big").value == best


def test_detectors_page_without_models_and_event_explorer(page, console_ws):
    at = page("detectors_page")
    assert any(e.label == "Train detectors" for e in at.expander)
    at.text_input[0].set_value("e00007").run()
    assert not at.exception
    assert any("decides" in m.value and "matched rules" in m.value for m in at.markdown)
    at.text_input[0].set_value("no-such-event").run()
    assert any("no event 'no-such-event'" in e.value for e in at.error)


def test_strategy_page_saves_a_version(page, console_ws):
    path = console_ws.strategies_dir / "candidate.yaml"
    original = path.read_text()
    at = page("strategy_page")
    edited = original.replace("big: 150.0", "big: 175.0")
    at.text_area[0].set_value(edited).run()
    next(b for b in at.button if b.label == "Save version").click().run()
    assert not at.exception
    assert any("Saved strategies/candidate.yaml" in s.value for s in at.success)
    assert path.read_text() == edited
    from riskconsole.versions import versions
    assert [p.read_text() for p in versions(console_ws.strategies_dir, "candidate")] == [original, edited]
    path.write_text(original)


def test_tune_page_saves_tuned_params_as_a_version(page, console_ws):
    path = console_ws.strategies_dir / "candidate.yaml"
    original = path.read_text()
    at = page("tune_page")
    at.slider(key="tune_candidate_burst").set_value(4).run()
    at.text_input[0].set_value("candidate_tuned")  # inside a form: submitted with the button, in one run
    next(b for b in at.button if b.label == "Save version").click().run()
    assert not at.exception
    saved = console_ws.strategies_dir / "candidate_tuned.yaml"
    import yaml as _yaml
    assert _yaml.safe_load(saved.read_text())["params"] == {"burst": 4, "big": 150.0}
    assert path.read_text() == original
    saved.unlink()


@pytest.mark.parametrize("name", ["backtest_page", "compare_page", "tune_page", "strategy_page", "detectors_page",
                                  "data_page", "export_page"])
def test_an_empty_workspace_says_what_to_do(tmp_path, monkeypatch, name):
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(tmp_path))
    common.release_connections()
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(f"riskconsole/ui/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.info or at.error, name


def test_data_page_reloads_the_dataset_while_pages_hold_connections(page, console_ws):
    page("backtest_page")  # a page that opened the read-only connection and an evaluator
    at = page("data_page")
    next(b for b in at.button if b.label == "Load dataset").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert _metric(at, "events loaded") == "400"
    after = page("backtest_page")  # and the pages work on the reloaded database
    core = run_backtest(console_ws, console_ws.strategies_dir / "candidate.yaml", _default(console_ws)).report["overall"]
    assert _metric(after, "precision") == fmt(core["precision"], "pct")


def test_strategy_page_param_sliders_edit_the_draft(page, console_ws):
    at = page("strategy_page")
    slider = next(s for s in at.slider if s.label == "big")
    slider.set_value(210.0).run()
    assert not at.exception
    assert "big: 210.0" in at.text_area[0].value
    assert any("unsaved changes" in s.value for s in at.success)
    assert "big: 150.0" in (console_ws.strategies_dir / "candidate.yaml").read_text()  # nothing saved yet


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_the_launcher_listens_after_duckdbs_warm_up_and_during_sparks(console_ws, monkeypatch, engine, capsys):
    """On DuckDB the launcher fills the first pages' caches before it listens (seconds); on Spark (the engine's start
    and frame: a minute or more, during which the URL used to refuse connections) it listens at once, the warm-up
    running beside the server in a thread: the build is still under way when the server starts, and the reports of
    baseline and candidate are computed after it."""
    import threading
    from pathlib import Path

    from streamlit.web import bootstrap

    from riskconsole.session import Session
    from riskconsole.ui import serve

    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(console_ws.root))
    monkeypatch.setenv("RISKCONSOLE_ENGINE", engine)
    common.release_connections()
    listening, log = threading.Event(), []

    def start_spark(self, frame=True):  # a start that lasts until the server listens (or 5 s, if it never does)
        log.append(("spark starts", threading.current_thread().name))
        log.append(("spark ready", listening.wait(5)))

    def report(self, path, window, overrides=None):
        log.append(("report", Path(path).stem, threading.current_thread().name))
        return {}

    def run(*args):
        log.append(("listening",))
        listening.set()

    monkeypatch.setattr(Session, "spark_engine", start_spark)
    monkeypatch.setattr(Session, "interactive", report)
    monkeypatch.setattr(bootstrap, "load_config_options", lambda flags: None)
    monkeypatch.setattr(bootstrap, "run", run)
    for cached in (common._report, common._spark_report):
        cached.clear()
    serve.serve(0, "127.0.0.1")
    assert capsys.readouterr().err.startswith(f"console on {console_ws.root}: http://127.0.0.1:0 (Ctrl-C stops it)")
    for thread in threading.enumerate():
        if thread.name == common.WARM_THREAD:
            thread.join(30)
    common.release_connections()
    if engine == "duckdb":
        assert log == [("report", "baseline", "MainThread"), ("report", "candidate", "MainThread"), ("listening",)]
    else:
        assert sorted(log[:2]) == [("listening",), ("spark starts", common.WARM_THREAD)]
        assert log[2:] == [("spark ready", True), ("report", "baseline", common.WARM_THREAD),
                           ("report", "candidate", common.WARM_THREAD)]


@pytest.mark.parametrize("features, method", [
    (4, "mean |robust z| (capped at 10) over the top 1% training rows by outlier score"),  # PyOD: a 2-line title
    (10, "LightGBM total gain"), (1, "LightGBM total gain")])
def test_importance_bars_keep_their_room_under_the_title(features, method):
    """The console fits the whole chart into its height: ECOD's 4 bars under a 2-line title had 10 px each, the
    feature names drawn over each other. Every bar keeps 20 px after the axis (30 px) and 16 px a title line."""
    import textwrap

    from riskconsole.charts import importance_chart

    rows = [{"feature": f"f{i}", "value": 1.0, "share": 1 / features} for i in range(features)]
    chart = importance_chart(rows, method).to_dict()
    lines = len(textwrap.wrap(f"importance ({method})", 48))
    assert chart["height"] - 30 - 16 * lines >= 20 * features


@pytest.mark.parametrize("days", [1, 2, 9, 30])
def test_the_daily_chart_ticks_each_day_of_a_short_window_once(days):
    """A window of a few days gets one tick per day (Vega's own ticks on a 2-day window were hours, each labelled
    'Mar 01'), and points where a line of one or a few days would draw little or nothing; a month keeps Vega's."""
    from riskconsole.charts import daily_chart

    daily = [{"day": f"2026-03-{d + 1:02d}", "flagged": 3, "tp": 1, "review_cases": 2} for d in range(days)]
    chart = daily_chart(daily, capacity=5).to_dict()
    lines = chart["layer"][0]
    ticks = lines["encoding"]["x"]["axis"].get("tickCount")
    assert ticks == ({"interval": "day", "step": 1} if days <= 10 else None)
    assert bool(lines["mark"].get("point")) == (days <= 3)


def test_a_spark_warm_up_failing_outside_riskconsole_logs_one_line_not_a_traceback(console_ws, capsys):
    """A Spark start failing in the warm-up thread (Java out of memory, a py4j error) is said in one line on the
    console's log, naming the engine; the page opened next asks again and shows the error in full."""
    from riskconsole.session import Session

    class Warm(Session):
        engine = "spark"

        def spark_engine(self, frame=True):
            raise RuntimeError("java.lang.OutOfMemoryError: Java heap space\n\tat org.apache.spark.Foo")

    common._warm(Warm(console_ws), ["baseline"])
    err = capsys.readouterr().err
    assert err.startswith("riskconsole: warming the console up on spark failed: Spark ran out of memory "
                          "(java.lang.OutOfMemoryError): give it more with `driver_memory: 8g`")
    assert err.endswith(" (the page opened next shows the error)\n") and err.count("\n") == 1


def test_the_pickers_show_a_strategy_files_name_where_it_differs_from_the_file(page, console_ws):
    """A file `prod_v3.yaml` holding strategy `merchant_watch`: the report, the CLI and the export print the name, so
    the pickers show both; a file named as its strategy shows its name once."""
    import yaml

    path = console_ws.strategies_dir / "prod_v3.yaml"
    body = yaml.safe_load((console_ws.strategies_dir / "candidate.yaml").read_text())
    path.write_text(yaml.safe_dump({**body, "name": "merchant_watch"}))
    try:
        at = page("compare_page")
        pickers = {s.label: s for s in at.selectbox}
        assert "prod_v3 (merchant_watch)" in pickers["Baseline (in production)"].options
        assert {"baseline", "candidate", "(none)"} <= set(pickers["Baseline (in production)"].options)
        strategy = next(s for label, s in pickers.items() if label != "Baseline (in production)")
        assert "prod_v3 (merchant_watch)" in strategy.options and "candidate" in strategy.options
        strategy.set_value("prod_v3").run()
        assert not at.exception and strategy.value == "prod_v3"
    finally:
        path.unlink()


@pytest.mark.parametrize("segments", [1, 5, 12])
def test_the_segment_chart_gives_each_segment_its_own_row_of_height(segments):
    """Each segment's bar gets a fixed step, whatever the column: a total height of 34 px a segment, fitted by the
    console to its column with the x axis inside it, left the demo's 5 channels 18 px each and Vega hid 'web' and
    'video'. Rendered (report.html's SVG), the chart grows by the step per segment and names every one."""
    import re

    from riskconsole.charts import segment_delta_chart
    from riskconsole.share import svg

    rows = [{"segment": f"seg_{i}", "delta": {"net_benefit": (-1) ** i * 100.0 * i}} for i in range(segments)]
    chart = segment_delta_chart(rows)
    assert chart.to_dict()["height"] == {"step": 28}
    drawn = svg(chart)
    assert all(f">seg_{i}<" in drawn for i in range(segments))
    one = int(re.search(r'height="(\d+)', svg(segment_delta_chart(rows[:1]))).group(1))
    assert int(re.search(r'height="(\d+)', drawn).group(1)) == one + 28 * (segments - 1)





def test_the_page_icon_is_drawn_without_a_request_off_the_machine():
    """A teammate's browser fetched the ":material/shield:" favicon from fonts.gstatic.com on every page (seen in
    a browser pass over the network; the request failed offline). Streamlit sends an emoji icon as `emoji:…`, which
    the page draws as an inline SVG, and any other string as a URL to fetch."""
    import ast

    from streamlit.commands.page_config import _get_favicon_string

    tree = ast.parse(open(APP, encoding="utf-8").read())
    icons = [k.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
             for k in node.keywords if k.arg == "page_icon"]
    assert len(icons) == 1 and _get_favicon_string(icons[0]).startswith("emoji:"), icons





def _wrapping_rows(at: AppTest) -> list[list[tuple[int, list[str]]]]:
    """Each wrapping horizontal row of the page: its cells' pixel widths (0 if not fixed) and their elements' kinds
    or labels."""
    rows = []

    def walk(node):
        proto = getattr(node, "proto", None)
        flex = getattr(proto, "flex_container", None) if proto is not None and hasattr(proto, "flex_container") else None
        if flex is not None and proto.HasField("flex_container") and flex.wrap and flex.direction == flex.HORIZONTAL:
            rows.append([(cell.proto.width_config.pixel_width,
                          [getattr(el, "label", "") or (el.value[:30] if type(el).__name__ == "Markdown" else
                                                        type(el).__name__) for el in cell.children.values()])
                         for cell in node.children.values() if type(cell).__name__ == "Block"])
        for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else []):
            walk(child)

    walk(at.main)
    return rows


def test_side_by_side_controls_and_charts_wrap_where_the_page_is_narrow(page):
    """At an 800 px window the sidebar leaves the page 470 px, and Streamlit stacks `st.columns` only below 640 px:
    the Monitor page's 4 columns cut "baseline" to "baselin" and the window to "2026/0", the Compare page's overlap
    heatmap had 70 px for 10 rules and its segment chart hid half the names. Now they are rows of fixed-width cells
    that wrap: every cell fits 470 px, and the Monitor controls (with 3 small gaps) still fit one line of the
    1,040 px a 1,500 px window leaves."""
    monitor = _wrapping_rows(page("monitor_page"))
    controls = next(row for row in monitor if ["Strategy as deployed"] in [labels for _, labels in row])
    widths = [width for width, _ in controls]
    assert len(widths) == 4 and all(0 < w <= 470 for w in widths) and sum(widths) + 3 * 16 <= 1040, widths
    compare = _wrapping_rows(page("compare_page"))
    cells = [cell for row in compare for cell in row if any("Chart" in k or "Element" in k for k in cell[1])]
    assert cells and all(0 < width <= 620 for width, _ in cells), compare
    # the intervals' chart and what they mean for net benefit: 3:2 columns at 800 px cut the chart's axis title
    assert any(labels[0].startswith("Net benefit change") for row in compare for _, labels in row if labels), compare
    # the Export page's buttons: 3 columns at 800 px cut "candidate.yaml (reviewed)" to "candidate.yaml (r…"
    export = page("export_page")
    buttons = export.get("download_button")
    rows = [block for block in _blocks(export.main) if block.proto.HasField("flex_container")
            and block.proto.flex_container.wrap
            and block.proto.flex_container.direction == block.proto.flex_container.HORIZONTAL]
    in_row = [[b.label for b in row.children.values() if type(b).__name__ == "DownloadButton"] for row in rows]
    assert len(buttons) == 7 and [b.label for b in buttons] in in_row, in_row


def _blocks(node) -> list:
    found = [node] if type(node).__name__ == "Block" else []
    for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else []):
        found += _blocks(child)
    return found


def test_a_rule_without_labelled_hits_says_so_in_a_column_wide_enough(tmp_path, monkeypatch):
    """The Rules table's precision of a rule with no hits is text ("— (no hits)"): the grid's own column width cut
    "— (no labelled hits)" to "— (no labelled hi" at 1,500 px. The column is given 7 px a character + 24 px for
    its longest text; rates alone keep the grid's width."""
    rules = [*RULES, {"name": "never", "when": "amount < 0", "action": "review"}]
    strategies = {name: {"name": name, "params": {"burst": 3, "big": 300.0}, "rules": rules}
                  for name in ("baseline", "candidate")}
    ws = write_workspace(tmp_path / "w", random_events(), strategies=strategies)
    load(ws)
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(ws.root))
    common.release_connections()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d for d in at.dataframe if "unique_tp" in d.value.columns)
    assert table.value.set_index("name").loc["never", "precision"] == "— (no hits)"
    config = json.loads(table.proto.columns)
    assert config["precision"]["width"] == 7 * max(len(t) for t in table.value["precision"]) + 24 >= 7 * 11 + 24
    assert max(len(t) for t in table.value["recall"]) <= 8 and "width" not in config["recall"]  # rates: the grid's
    common.release_connections()
