"""The compiled-query cache (`querycache.py`): a repeat CLI backtest runs the SQL compiled before and writes the same
files byte for byte; any edit of a file it depends on, a retrain, or a planted entry is never served."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import yaml

from riskconsole import querycache
from riskconsole.cli import main
from riskconsole.workspace import Workspace

HIT = "compiled queries from data/cache/compiled/"


@pytest.fixture
def ws(demo_ws, tmp_path) -> Workspace:
    """A copy of the demo workspace (its cache folder is this test's own), with a list and a strategy reading it."""
    root = tmp_path / "ws"
    shutil.copytree(demo_ws.root, root, ignore=shutil.ignore_patterns("reports", "compiled"))
    ws = Workspace(root)
    (root / "lists").mkdir(exist_ok=True)
    devices = _devices(ws)
    (root / "lists" / "watched.csv").write_text("value,expires\n" + "".join(f"{d},\n" for d in devices[:40]))
    listed = yaml.safe_load((ws.strategies_dir / "candidate.yaml").read_text())
    listed["name"] = "listed"
    listed["rules"].append({"name": "watched_device", "when": "device_id IN LIST watched AND amount > 20",
                            "action": "review"})
    (ws.strategies_dir / "listed.yaml").write_text(yaml.safe_dump(listed, sort_keys=False))
    return ws


def _devices(ws: Workspace) -> list:
    import duckdb

    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        return [d for (d,) in con.execute("SELECT device_id FROM frame GROUP BY device_id ORDER BY count(*) DESC, "
                                          "device_id LIMIT 40").fetchall()]
    finally:
        con.close()


def _backtest(capsys, ws: Workspace, out, *extra: str, formats: str = "json,csv") -> tuple[bool, bytes, bytes]:
    """(served from the cache?, report.json bytes, decisions.parquet bytes) of one CLI backtest."""
    args = [a if not a.endswith(".yaml") else str(ws.strategies_dir / a) for a in extra]
    code = main(["backtest", *args, "--workspace", str(ws.root), "--format", formats, "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    decisions = (out / "decisions.parquet").read_bytes() if "csv" in formats else b""
    return HIT in stdout.splitlines()[-1], (out / "report.json").read_bytes(), decisions


CASES = {
    "plain (detector scores, outcome blocks)": ["candidate.yaml"],
    "baseline": ["candidate.yaml", "--baseline", "baseline.yaml", "--bootstrap", "50"],
    "by a column": ["candidate.yaml", "--by", "channel"],
    "by quantiles, baseline": ["candidate.yaml", "--by", "amount:4", "--baseline", "baseline.yaml",
                               "--bootstrap", "50"],
    "a list": ["listed.yaml", "--set", "model_review=0.7"],
    "window and as-of": ["baseline.yaml", "--from", "2026-02-01", "--to", "2026-03-10", "--as-of", "2026-03-20"],
}


@pytest.mark.parametrize("case", CASES)
def test_a_repeat_backtest_writes_the_same_files_as_a_compiled_one(ws, capsys, tmp_path, monkeypatch, case):
    first = _backtest(capsys, ws, tmp_path / "a", *CASES[case])
    again = _backtest(capsys, ws, tmp_path / "b", *CASES[case])
    monkeypatch.setenv(querycache.CACHE_ENV, "0")
    off = _backtest(capsys, ws, tmp_path / "c", *CASES[case])
    assert (first[0], again[0], off[0]) == (False, True, False)
    assert first[1:] == again[1:] == off[1:]


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_no_edit_and_no_retrain_is_ever_served_from_the_cache(ws, capsys, tmp_path):
    """Each change a backtest depends on makes the next run compile again, and it gives the compiled answer."""
    run = iter(range(100))

    def twice(*extra: str) -> bytes:
        """The first run after a change compiles; the next is served from the cache, with the same report."""
        fresh = _backtest(capsys, ws, tmp_path / str(next(run)), *extra, formats="json")
        cached = _backtest(capsys, ws, tmp_path / str(next(run)), *extra, formats="json")
        assert not fresh[0] and cached[0] and fresh[1] == cached[1]
        return fresh[1]

    before = twice("listed.yaml")
    _edit(ws.strategies_dir / "listed.yaml", "model_review: 0.5", "model_review: 0.6")  # the strategy
    assert twice("listed.yaml") != before
    lists = ws.root / "lists" / "watched.csv"
    lists.write_text(lists.read_text() + f"{_devices(ws)[-1] + 10**9},\n")  # a list entry (no event has it)
    twice("listed.yaml")
    _edit(ws.dataset_path, "review_cost: 3.0", "review_cost: 4.5")  # dataset.yaml
    assert yaml.safe_load(twice("listed.yaml"))["business"]["review_cost"] == 4.5
    assert main(["train", str(ws.detectors_dir / "lgbm_orders.yaml"), "--workspace", str(ws.root)]) == 0  # a retrain
    capsys.readouterr()
    twice("listed.yaml")
    _edit(ws.strategies_dir / "baseline.yaml", "name: baseline", "name: baseline_v2")  # the baseline's file
    assert b"baseline_v2" in twice("listed.yaml", "--baseline", "baseline.yaml", "--bootstrap", "20")


def test_a_planted_entry_is_never_unpickled_into_code(ws, capsys, tmp_path):
    """An entry holding anything but plain data is a miss: the backtest compiles and answers as usual."""
    _, report, _ = _backtest(capsys, ws, tmp_path / "a", "candidate.yaml", formats="json")
    for entry in (ws.root / querycache.CACHE_DIR).glob("*.pkl"):
        entry.write_bytes(pickle.dumps({"groups": shutil.rmtree}))
    hit, again, _ = _backtest(capsys, ws, tmp_path / "b", "candidate.yaml", formats="json")
    assert not hit and again == report
    assert querycache.read(ws.root, "missing") is None


def test_the_cache_keeps_its_newest_entries_only(tmp_path, monkeypatch):
    monkeypatch.setattr(querycache, "KEEP", 3)
    for i in range(5):
        querycache.write(tmp_path, f"e{i}", {"n": i})
        os.utime(tmp_path / querycache.CACHE_DIR / f"e{i}.pkl", ns=(i * 10**9, i * 10**9))  # written in order
    kept = sorted(p.stem for p in (tmp_path / querycache.CACHE_DIR).glob("*.pkl"))
    assert kept == ["e2", "e3", "e4"] and querycache.read(tmp_path, "e4") == {"n": 4}
    assert not list((tmp_path / querycache.CACHE_DIR).glob(".*"))  # no temporary file left behind


def test_a_file_that_cannot_be_read_is_the_usual_one_line_error(ws, capsys, tmp_path):
    """The key reads the files first: one it cannot read leaves the error to the compiling path."""
    code = main(["backtest", str(ws.strategies_dir / "candidate.yaml"), "--baseline", str(tmp_path / "missing.yaml"),
                 "--workspace", str(ws.root), "--format", "json", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "missing.yaml: cannot read file" in err, err


@pytest.mark.parametrize("planted", [{}, [], 7, ("x",), {"groups": "SELECT 1", "span": "SELECT 1", "rules": 1,
                                                            "segment": False, "classes": False, "joint": None,
                                                            "decisions": "SELECT 1", "candidate": {},
                                                            "baseline": None}])
def test_an_entry_of_plain_data_but_not_of_its_shape_is_a_miss(ws, capsys, tmp_path, planted):
    """A truncated, planted or foreign entry that unpickles to plain data of another shape (or SQL that does not
    give a plan's rows) never crashes a backtest: it compiles and answers as usual."""
    _, report, _ = _backtest(capsys, ws, tmp_path / "a", "candidate.yaml", formats="json")
    for entry in (ws.root / querycache.CACHE_DIR).glob("*.pkl"):
        if not (entry.name.startswith("yaml-") and planted == ("x",)):  # a parsed YAML entry's shape is (data,)
            entry.write_bytes(pickle.dumps(planted))
    hit, again, _ = _backtest(capsys, ws, tmp_path / "b", "candidate.yaml", formats="json")
    assert not hit and again == report


def _numbers(report: bytes) -> dict:
    return json.loads(report)["overall"]


def test_a_strategy_edited_while_a_cached_run_reads_it_is_never_answered_with_the_old_sql(ws, capsys, tmp_path,
                                                                                         monkeypatch):
    """An edit saved between the key's read of the file and the run's parse of it (an editor saving while a CI job
    runs) never gives its new name on the old file's numbers: a run reads the file once, so it answers for the text
    it read, whole (the next run answers for the edit)."""
    _, before, _ = _backtest(capsys, ws, tmp_path / "a", "listed.yaml", formats="json")
    path, read = ws.strategies_dir / "listed.yaml", querycache.read

    def read_then_edit(root, name):
        found = read(root, name)
        if not name.startswith(("yaml-", "view-", "literals-", "edited-")) and found is not None:  # the plan's read
            _edit(path, "model_review: 0.5", "model_review: 0.9")
            _edit(path, "name: listed", "name: listed_v2")
        return found

    monkeypatch.setattr(querycache, "read", read_then_edit)
    _, raced, _ = _backtest(capsys, ws, tmp_path / "b", "listed.yaml", formats="json")
    monkeypatch.setattr(querycache, "read", read)
    monkeypatch.setenv(querycache.CACHE_ENV, "0")
    _, edited, _ = _backtest(capsys, ws, tmp_path / "c", "listed.yaml", formats="json")
    assert b"listed_v2" in edited and b"listed_v2" not in raced and _numbers(raced) == _numbers(before)
    assert _numbers(edited) != _numbers(before)


def test_a_full_disk_leaves_no_partial_file_behind(tmp_path, monkeypatch):
    """A write that fails half-way (ENOSPC) leaves neither an entry nor its temporary file (which no eviction would
    ever remove: one more per failing run)."""
    import errno
    from pathlib import Path

    def half_then_full(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    querycache.write(tmp_path, "e", {"n": 1})
    monkeypatch.undo()
    assert list((tmp_path / querycache.CACHE_DIR).iterdir()) == [] and querycache.read(tmp_path, "e") is None


def test_an_editor_lock_link_among_the_modules_is_no_crash(tmp_path, monkeypatch):
    """Emacs keeps `.#NAME.py` as a dangling symlink while a module is edited: the code stamp must not fail on it
    (every cached backtest crashed with FileNotFoundError), and an edit of a real module still changes the key."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    (package / ".#a.py").symlink_to("someone@host.1234:1")
    monkeypatch.setattr(querycache, "_PACKAGE", package)
    monkeypatch.setattr(querycache, "_STAMP", [])
    before = querycache.key("same")
    (package / "a.py").write_text("x = 22\n")
    monkeypatch.setattr(querycache, "_STAMP", [])
    assert querycache.key("same") != before


def test_the_key_holds_the_dataset_text_the_session_read_not_a_later_save(ws, tmp_path):
    """The session reads data/dataset.yaml once (the window, the engine) before the key is taken: a save in between
    must not key the run by the new file while its report is built from the old one (another run's entry for the
    new text would mix that SQL with this run's dataset)."""
    from riskconsole.backtest import Window
    from riskconsole.session import Session

    text = ws.dataset_path.read_text()
    with Session(ws, cache=True) as session:
        assert session.engine == "duckdb"  # the dataset is read here
        before = session._plan_key(ws.strategies_dir / "candidate.yaml", Window(), None, None, None)
        _edit(ws.dataset_path, "review_cost: 3.0", "review_cost: 4.5")
        assert session._plan_key(ws.strategies_dir / "candidate.yaml", Window(), None, None, None) == before
    ws.dataset_path.write_text(text)
    with Session(ws, cache=True) as session:  # and a session that read the saved text keys by it
        _edit(ws.dataset_path, "review_cost: 3.0", "review_cost: 4.5")
        assert session.engine == "duckdb"
        assert session._plan_key(ws.strategies_dir / "candidate.yaml", Window(), None, None, None) != before


HEAVY = ("pydantic", "pydantic_core", "yaml", "sqlglot", "pandas")
_IMPORTS = """
import sys
from riskconsole.cli import main
code = main(sys.argv[1:])
print(repr((code, sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in %r} | {'numpy.ma'} & set(sys.modules)))))
""" % (HEAVY,)


def _imported(ws: Workspace, out, *extra: str) -> tuple[bool, list[str]]:
    """(served from the cache?, the heavy packages imported) of one CLI backtest in a fresh process."""
    import ast
    import subprocess
    import sys

    from riskconsole.workspace import REPO_ROOT

    args = [a if not a.endswith(".yaml") else str(ws.strategies_dir / a) for a in extra]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", _IMPORTS, "backtest", *args, "--workspace", str(ws.root),
                           "--format", "json", "--out", str(out)], capture_output=True, text=True, env=env,
                          check=True)
    code, heavy = ast.literal_eval(done.stdout.splitlines()[-1])
    assert code == 0, done.stderr
    return HIT in done.stdout, heavy


@pytest.mark.parametrize("extra", [["candidate.yaml"], ["candidate.yaml", "--baseline", "baseline.yaml",
                                                        "--bootstrap", "20", "--by", "channel"], ["listed.yaml"]])
def test_a_cache_hit_builds_no_config_model_and_parses_no_yaml(ws, tmp_path, extra):
    """A repeat backtest reads views of its dataset and strategy files kept with the plan (`configfile.py`): it
    imports neither pydantic nor a YAML or SQL parser (issue 14: ~0.2 CPU-s of a CLI run); its first run does. Nor
    pandas, which pyarrow imports to build an array of Python values (a list's table is built from buffers), nor
    numpy.ma (`metrics.percentile`)."""
    first, heavy = _imported(ws, tmp_path / "a", *extra)
    assert not first and {"pydantic", "yaml", "sqlglot"} <= set(heavy)
    assert _imported(ws, tmp_path / "b", *extra) == (True, [])
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()


@pytest.mark.parametrize("planted", [{"columns": {}, "business": {}, "engine": "duckdb", "hidden_columns": [],
                                      "dump": {}}, {"name": 7, "description": "", "level": None}])
def test_a_view_of_another_shape_is_read_from_the_file_instead(ws, capsys, tmp_path, planted):
    """A view entry that is not a view's data (wrong keys or types) is a miss: the file is parsed and validated again,
    the plan still serves the run and its report is the same."""
    _, report, _ = _backtest(capsys, ws, tmp_path / "a", "candidate.yaml", formats="json")
    views = list((ws.root / querycache.CACHE_DIR).glob("view-*.pkl"))
    assert len(views) == 2  # the strategy's and the dataset's
    for entry in views:
        entry.write_bytes(pickle.dumps(planted))
    hit, again, _ = _backtest(capsys, ws, tmp_path / "b", "candidate.yaml", formats="json")
    assert hit and again == report


def test_a_view_answers_as_the_validated_model_and_asks_it_the_rest(demo_ws):
    """What a cached backtest reads of the dataset is the model's own answer; anything else comes from the model."""
    from riskconsole.configfile import dataset_of, dataset_shape, dataset_view, json_dump, strategy_of, strategy_view

    dataset, asked = demo_ws.dataset(), []
    data = pickle.loads(pickle.dumps(dataset_view(dataset)))
    assert dataset_shape(data)
    view = dataset_of(data, lambda: asked.append(1) or dataset)
    for role in ("id", "time", "label", "label_time", "amount", "prod_action", "explore", "propensity", "entities"):
        assert getattr(view.columns, role) == getattr(dataset.columns, role)
    assert view.columns.role_columns() == dataset.columns.role_columns()
    assert view.business.model_dump() == dataset.business.model_dump()
    assert view.business.review_capacity == dataset.business.review_capacity
    assert (view.engine, view.hidden_columns, json_dump(view)) == (dataset.engine, dataset.hidden_columns,
                                                                  json_dump(dataset))
    assert not asked
    assert view.features == dataset.features and view.columns.model_copy() == dataset.columns and len(asked) == 2
    strategy = demo_ws.strategy(demo_ws.strategies_dir / "candidate.yaml")
    light = strategy_of(strategy_view(strategy), lambda: strategy)
    assert (light.name, light.description, light.level, light.rules) == (strategy.name, strategy.description, None,
                                                                        strategy.rules)
    with pytest.raises(AttributeError):
        light.name = "other"


def test_a_cache_hit_reads_the_frame_only_for_the_lists_it_exports(ws, capsys, tmp_path, monkeypatch):
    """The frame's columns (~12 ms of catalog queries at 2M events) are not read by a repeat run: its SQL is kept; a
    strategy reading a list still exports that list's file, the same bytes."""
    from riskconsole import session

    read, real = [], session.frame_of
    monkeypatch.setattr(session, "frame_of", lambda *a, **k: read.append(1) or real(*a, **k))
    for name, lists in (("candidate.yaml", []), ("listed.yaml", ["watched.csv"])):
        _backtest(capsys, ws, tmp_path / f"a-{name}", name, "--set", "model_review=0.7")
        read.clear()
        hit, report, decisions = _backtest(capsys, ws, tmp_path / f"b-{name}", name, "--set", "model_review=0.7")
        assert hit and len(read) == len(lists)
        assert sorted(p.name for p in (tmp_path / f"b-{name}" / "lists").glob("*")) == lists if lists else \
            not (tmp_path / f"b-{name}" / "lists").exists()
        assert (report, decisions) == ((tmp_path / f"a-{name}" / "report.json").read_bytes(),
                                       (tmp_path / f"a-{name}" / "decisions.parquet").read_bytes())
