"""A load changes everything or nothing; scores are joined only to the events they were computed for;
internal names are out of reach of user data; validate says what load says; the console stays local."""

from __future__ import annotations

import hashlib
import shutil

import duckdb
import pytest
import yaml

from riskconsole import ingest, uploads
from riskconsole.detectors import training
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load, reload
from riskconsole.names import INTERNAL_COLUMNS
from riskconsole.report import run_backtest
from riskconsole.strategy import frame_of
from riskconsole.validate import validate_file
from riskconsole.workspace import Workspace
from conftest import query, BASE_DATASET, random_events, write_workspace

DETECTOR = {"name": "hb", "kind": "pyod.hbos", "features": ["amount", "user_orders_1h"],
            "train": {"from": "2026-03-01", "to": "2026-03-04"}}
SCORED = {"name": "scored", "rules": [{"name": "odd", "when": "hb >= 0.6", "action": "review"}]}
PLAIN = {"name": "plain", "rules": [{"name": "big", "when": "amount > 150", "action": "review"}]}




def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory):
    """A loaded workspace with one trained detector (HBOS: fast) and a strategy that reads its score."""
    root = tmp_path_factory.mktemp("trained") / "ws"
    ws = write_workspace(root, random_events(), strategies={"scored": SCORED, "plain": PLAIN})
    (root / "detectors").mkdir()
    (root / "detectors" / "hb.yaml").write_text(yaml.safe_dump(DETECTOR))
    load(ws)
    training.train_detector(ws, root / "detectors" / "hb.yaml")
    return root


@pytest.fixture
def trained(trained_template, tmp_path) -> Workspace:
    shutil.copytree(trained_template, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _overall(ws, name="scored") -> dict:
    return run_backtest(ws, ws.strategies_dir / f"{name}.yaml").report["overall"]


def _shrink_source(ws) -> None:
    """New data: half the events, so a load that went through would change every number."""
    path = ws.root / "data" / "events.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[: len(lines) // 2]) + "\n")


# ------------------------------------------------------------------ all or nothing


def _fail(exc):
    def boom(*args, **kwargs):
        raise exc
    return boom


def _fail_frame_build(monkeypatch):
    """The frame build of the load itself dies (the check before it, on an empty table, still passes)."""
    monkeypatch.setattr(ingest, "build_frame", _fail(RuntimeError("frame build died")))


@pytest.mark.parametrize("where", ["frame", "rescore", "interrupt", "export"])
def test_a_failure_mid_load_leaves_the_previous_database_byte_identical(trained, monkeypatch, where):
    before = (_digest(trained.db_path), _digest(trained.root / "data" / "quarantine.csv"), _overall(trained))
    _shrink_source(trained)
    if where == "frame":
        _fail_frame_build(monkeypatch)
    elif where == "export":
        monkeypatch.setattr(ingest, "_export_quarantine", _fail(RuntimeError("disk full")))
    else:
        exc = KeyboardInterrupt() if where == "interrupt" else RuntimeError("scoring died")
        monkeypatch.setattr(training, "score_into", _fail(exc))
    with pytest.raises((RuntimeError, KeyboardInterrupt, RiskConsoleError)) as info:
        reload(trained)
    if where == "rescore":  # a model that cannot score is a one-line error naming it, not a traceback
        assert str(info.value).startswith("data/models/hb: cannot score the new events (RuntimeError: scoring died)")
    assert (_digest(trained.db_path), _digest(trained.root / "data" / "quarantine.csv")) == before[:2]
    assert _overall(trained) == before[2]
    assert [p.name for p in (trained.root / "data").iterdir() if "loading" in p.name] == []


def test_a_failed_first_load_leaves_no_database(tmp_path, monkeypatch):
    ws = write_workspace(tmp_path / "w", random_events(n=50))
    _fail_frame_build(monkeypatch)
    with pytest.raises(RuntimeError):
        load(ws)
    assert sorted(p.name for p in (ws.root / "data").iterdir()) == ["dataset.yaml", "events.csv"]


def test_a_killed_loads_staging_files_are_removed_by_the_next_load(trained):
    """A killed load leaves its database, its .wal and DuckDB's spill folder (.tmp, 32 GB after a killed 10M
    load): the next load removes all three (a folder made it crash with IsADirectoryError)."""
    leftover = trained.root / "data" / ".console.duckdb.loading-999999999-deadbeef"
    leftover.write_bytes(b"half a database")
    leftover.with_name(leftover.name + ".wal").write_bytes(b"log")
    spill = leftover.with_name(leftover.name + ".tmp")
    spill.mkdir()
    (spill / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"spilled")
    reload(trained)
    assert not list(trained.root.glob("data/.console.duckdb.loading-999999999-*"))


def test_reload_rescores_every_trained_detector_in_the_new_file(trained):
    _shrink_source(trained)
    result = reload(trained)
    assert result.rescored == {"hb": result.loaded} and result.unscored == {} and result.version
    assert query(trained, "SELECT count(*) FROM scores_hb JOIN frame USING (_pos)") == [(result.loaded,)]
    assert query(trained, "SELECT data_version FROM _scores WHERE detector = 'hb'") == [(result.version,)]
    assert _overall(trained)["population"] == result.loaded


def test_a_detector_whose_feature_was_dropped_loses_its_scores_loudly(trained, capsys):
    from riskconsole.cli import main

    spec = yaml.safe_load(trained.dataset_path.read_text())
    spec["features"] = [f for f in spec["features"] if f["name"] != "user_orders_1h"]
    trained.dataset_path.write_text(yaml.safe_dump(spec))
    assert main(["load", "--workspace", str(trained.root)]) == 0
    err = capsys.readouterr().err
    assert "warning: data/models/hb: NOT re-scored, its scores are gone: reads 'user_orders_1h'" in err
    assert "scores_hb" not in {t for (t,) in query(trained, "SELECT table_name FROM information_schema.tables")}
    with pytest.raises(RiskConsoleError, match="detector 'hb' was scored on an earlier load"):
        _overall(trained)
    assert _overall(trained, "plain")["population"] == 400


# ------------------------------------------------------------------ score versions


def test_training_stamps_the_data_version(trained):
    con = trained.connect_safe()
    frame = frame_of(con, trained.dataset())
    con.close()
    assert frame.stale == () and "hb" in frame.scores
    assert query(trained, "SELECT s.data_version = m.version FROM _scores s, _meta m") == [(True,)]


@pytest.mark.parametrize("tamper", ["UPDATE _meta SET version = 'another load'", "DELETE FROM _scores",
                                    "DROP TABLE _scores"])
def test_a_score_table_of_another_data_version_is_never_joined(trained, capsys, tamper):
    from riskconsole.cli import main

    con = trained.connect()
    con.execute(tamper)
    con.close()
    with pytest.raises(RiskConsoleError, match=r"strategy 'scored': detector 'hb' was scored on an earlier load .*"
                                               r"run `riskconsole train detectors/hb.yaml`"):
        _overall(trained)
    code = main(["backtest", str(trained.strategies_dir / "scored.yaml"), "--workspace", str(trained.root),
                 "--out", str(trained.root / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "was scored on an earlier load" in err
    assert _overall(trained, "plain")["population"] == 400  # strategies without the detector still run


def test_retraining_makes_the_scores_current_again(trained):
    con = trained.connect()
    con.execute("UPDATE _meta SET version = 'another load'")
    con.close()
    training.train_detector(trained, trained.root / "detectors" / "hb.yaml")
    assert _overall(trained)["population"] == 400


# ------------------------------------------------------------------ internal names


COLLIDING = list(INTERNAL_COLUMNS) + ["__is_fraud", "__amount", "__event_id", "__dup", "__reason", "__file", "__x",
                                      "Reason", "_POS", "_T", "Ordinality", "_File", "__Reason", "ROW"]  # any case


@pytest.mark.parametrize("name", COLLIDING)
def test_a_source_column_with_an_internal_name_is_refused(tmp_path, name):
    events = random_events(n=40)
    events[name] = 1  # e.g. `__is_fraud` would have replaced the label, `_pos` the row positions
    ws = write_workspace(tmp_path / "w", events)
    with pytest.raises(RiskConsoleError) as info:
        load(ws)
    message = str(info.value)
    assert message.startswith(f"data/dataset.yaml: source column '{name}' ")
    assert message.endswith(": rename the column in the source file")
    assert "\n" not in message and not ws.db_path.exists()
    with pytest.raises(RiskConsoleError) as same:
        validate_file(ws, ws.dataset_path)
    assert str(same.value) == message


@pytest.mark.parametrize("name", [n for n in COLLIDING if n.isidentifier()])
def test_a_feature_with_an_internal_name_is_refused(tmp_path, name):
    features = [{"name": name, "count": "*", "by": "user_id", "window": "1h"}]
    ws = write_workspace(tmp_path / "w", random_events(n=40), {**BASE_DATASET, "features": features})
    with pytest.raises(RiskConsoleError, match=f"^data/dataset.yaml: feature '{name}' "):
        load(ws)


@pytest.mark.parametrize("name, message", [("_pos", "name: '_pos' is a name riskconsole uses itself"),
                                           ("__x", "name: '__x' starts with '__'"),
                                           ("amount", "name: 'amount' is already a column of the frame")])
def test_a_detector_name_may_not_hide_a_column(trained, name, message):
    path = trained.root / "detectors" / "other.yaml"
    path.write_text(yaml.safe_dump({**DETECTOR, "name": name}))
    with pytest.raises(RiskConsoleError, match=message):
        training.train_detector(trained, path)


# ------------------------------------------------------------------ validate = load

STREAM = {"source": "data/events.csv", "columns": {"time": "ts"}}
TABLE = {"source": "data/events.csv", "key": "event_id"}
DATASET_ERRORS = {
    # tests/test_ingest.py::test_bad_dataset_is_refused_and_changes_nothing
    "amount_typo": {"columns": {**BASE_DATASET["columns"], "amount": "amout"}},
    "time_typo": {"columns": {**BASE_DATASET["columns"], "time": "when"}},
    "unknown_key": {"colums": {}},
    "no_file": {"source": "data/nothing/*.csv"},
    "window_without_by": {"features": [{"name": "f", "count": "*", "by": "user_id"}]},
    # tests/test_ingest.py: no label_delay without label_time, an unknown type, a source without rows
    "label_feature_without_delay": {"columns": {**BASE_DATASET["columns"], "label_time": None},
                                    "features": [{"name": "f", "sum": "label", "by": "user_id", "window": "7d"}]},
    "unknown_type": {"types": {"amount": "NUMBERISH"}},
    "no_rows": {"source": "data/empty.csv"},
    # tests/test_features.py::test_bad_features_are_refused_and_change_nothing
    "unknown_agg_column": {"features": [{"name": "x", "sum": "nope", "by": "user_id", "window": "1h"}]},
    "unknown_by": {"features": [{"name": "x", "count": "*", "by": "nobody", "window": "1h"}]},
    "max_of_label": {"features": [{"name": "x", "max": "label", "by": "user_id", "window": "1h", "label_delay": "1d"}]},
    "avg_of_label_time": {"features": [{"name": "x", "avg": "label_ts", "by": "user_id", "window": "1h"}]},
    "sum_of_text": {"features": [{"name": "x", "sum": "channel", "by": "user_id", "window": "1h"}]},
    "feature_named_like_column": {"features": [{"name": "amount", "count": "*", "by": "user_id", "window": "1h"}]},
    "sql_reads_label": {"features": [{"name": "x", "sql": "is_fraud + 1"}]},
    "bad_duration": {"features": [{"name": "x", "count": "*", "by": "user_id", "window": "1y"}]},
    # what `validate` used to pass and `load` refused: functions, unknown columns, types that do not bind
    "sql_unknown_column": {"features": [{"name": "x", "sql": "amount / nope"}]},
    "sql_function": {"features": [{"name": "x", "sql": "read_csv('/etc/passwd')"}]},
    "sql_does_not_bind": {"features": [{"name": "x", "sql": "amount + channel"}]},
    "sql_bad_syntax": {"features": [{"name": "x", "sql": "amount +"}]},
    "bad_time_format": {"time_format": ["%Y", "%Q"]},
    "internal_feature_name": {"features": [{"name": "_pos", "count": "*", "by": "user_id", "window": "1h"}]},
    # streams and tables (DESIGN §2.1): a stream and a table may read the events file itself
    "stream_key_missing": {"streams": {"s": {**STREAM, "rename": {"user_id": "uid"}}},
                           "features": [{"name": "x", "count": "*", "from": "s", "by": "user_id", "window": "1h"}]},
    "stream_time_missing": {"streams": {"s": {**STREAM, "columns": {"time": "when"}}}},
    "stream_column_unknown": {"streams": {"s": STREAM},
                              "features": [{"name": "x", "sum": "amout", "from": "s", "by": "user_id", "window": "1h"}]},
    "table_key_missing": {"tables": {"t": {**TABLE, "key": "merchant"}}},
    "range_value_not_an_event_column": {"tables": {"r": {"source": "data/events.csv",
                                                         "range": {"value": "ip", "low": "amount", "high": "amount"}}}},
    "lookup_unknown_table": {"features": [{"name": "x", "lookup": "nope.tier"}]},
    "lookup_unknown_column": {"tables": {"t": TABLE}, "features": [{"name": "x", "lookup": "t.chanel"}]},
    "valid_from_a_number": {"tables": {"t": {**TABLE, "valid_from": "amount"}}},
    "valid_from_text_not_a_time": {"tables": {"t": {**TABLE, "valid_from": "channel"}}},
    "compound_key_unknown_column": {"features": [{"name": "x", "count": "*", "by": ["user_id", "nobody"], "window": "1h"}]},
    "from_unknown_stream": {"features": [{"name": "x", "count": "*", "from": "sgnups", "by": "user_id", "window": "1h"}]},
}


@pytest.mark.parametrize("case", list(DATASET_ERRORS))
def test_validate_fails_every_bad_dataset_with_the_message_load_gives(tmp_path, capsys, case):
    from riskconsole.cli import main

    ws = write_workspace(tmp_path / "w", random_events(n=40))
    (ws.root / "data" / "empty.csv").write_text("event_id,ts,is_fraud,label_ts,amount,user_id,device_id\n")
    spec = {**BASE_DATASET, "source": "data/events.csv", **DATASET_ERRORS[case]}
    ws.dataset_path.write_text(yaml.safe_dump(spec))
    files = sorted(p.name for p in (ws.root / "data").iterdir())
    assert main(["validate", str(ws.dataset_path), "--workspace", str(ws.root)]) == 1
    said = capsys.readouterr().err
    assert sorted(p.name for p in (ws.root / "data").iterdir()) == files  # validate writes nothing
    with pytest.raises(RiskConsoleError) as info:
        load(ws)
    assert said == f"error: {info.value}\n"
    assert str(info.value).startswith("data/dataset.yaml: ")


def test_a_dataset_that_validates_loads(tmp_path, capsys):
    from riskconsole.cli import main

    ws = write_workspace(tmp_path / "w", random_events(n=40))
    assert main(["validate", str(ws.dataset_path), "--workspace", str(ws.root)]) == 0
    assert "dataset, 9 source columns in 1 file(s), 3 features" in capsys.readouterr().out
    assert not ws.db_path.exists()
    assert load(ws).loaded == 40


# ------------------------------------------------------------------ the console stays local


def test_the_console_listens_on_this_machine_unless_told_otherwise():
    from riskconsole.ui.serve import build_parser, console_flags

    parser = build_parser()
    assert parser.parse_args([]).address == "127.0.0.1"
    assert "--address 0.0.0.0" in parser.format_help().replace("\n", " ").replace("  ", " ")
    flags = console_flags(8501, "127.0.0.1")
    assert flags["server.address"] == "127.0.0.1" and flags["server.maxUploadSize"] == uploads.upload_limit_mb()


def test_the_console_names_the_address_a_teammate_opens_and_asks_no_outside_service(monkeypatch):
    """Served to a team with `--address 0.0.0.0`, the launcher printed `http://0.0.0.0:8626`, which opens nothing on
    another machine, and Streamlit's own banner named localhost after asking checkip.amazonaws.com for this
    machine's public address (a request off the machine at every start). The launcher now names the network
    address first, and Streamlit's banner (the only caller of that lookup at start) is off."""
    from streamlit import net_util

    from riskconsole.ui.serve import console_flags, console_urls

    monkeypatch.setattr(net_util, "get_internal_ip", lambda: "10.1.2.3")
    monkeypatch.setattr(net_util, "get_external_ip", lambda: pytest.fail("the public address was looked up"))
    assert console_urls("0.0.0.0", 8626) == ["http://10.1.2.3:8626", "http://127.0.0.1:8626"]
    assert console_urls("::", 8626) == ["http://10.1.2.3:8626", "http://[::1]:8626"]
    assert console_urls("192.168.1.20", 80) == ["http://192.168.1.20:80"]
    assert console_urls("fd00::2", 8501) == ["http://[fd00::2]:8501"]
    monkeypatch.setattr(net_util, "get_internal_ip", lambda: None)  # no network interface: this machine only
    assert console_urls("0.0.0.0", 8626) == ["http://127.0.0.1:8626"]
    assert console_flags(8626, "0.0.0.0")["logger.hideWelcomeMessage"] is True


def test_uploads_have_a_size_limit(tmp_path, monkeypatch):
    ws = write_workspace(tmp_path / "w", random_events(n=40))
    load(ws)
    monkeypatch.setenv("RISKCONSOLE_MAX_UPLOAD_MB", "1")
    with pytest.raises(RiskConsoleError, match=r"^big.csv: 2 MB is over the upload limit of 1 MB"):
        uploads.load_upload(ws, "big.csv", b"x" * (2 * 2**20))
    assert not (ws.root / "data" / "uploads" / "big.csv").exists()
    monkeypatch.setenv("RISKCONSOLE_MAX_UPLOAD_MB", "100000")
    assert uploads.upload_limit_mb() == uploads.MAX_UPLOAD_MB == 200


@pytest.mark.parametrize("given, kept", [("../../sneaky/new events.csv", "new events.csv"),
                                         ("..\\..\\evil.csv", "evil.csv"), (".hidden.parquet", "hidden.parquet"),
                                         ("a;b|c$(x).csv", "a_b_c__x_.csv"), ("/etc/passwd", None),
                                         ("../", None), ("x.csv.exe", None)])
def test_upload_names_are_sanitised(given, kept):
    if kept is None:
        with pytest.raises(RiskConsoleError, match="upload a .csv"):
            uploads.safe_upload_name(given)
    else:
        assert uploads.safe_upload_name(given) == kept


def test_the_console_loads_only_dataset_files_inside_the_workspace(tmp_path):
    ws = write_workspace(tmp_path / "w", random_events(n=40))
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(ws.dataset_path.read_text())
    assert uploads.workspace_dataset(ws, "data/dataset.yaml") == ws.dataset_path
    for typed in (str(outside), "../elsewhere.yaml", "/etc/passwd"):
        with pytest.raises(RiskConsoleError, match="only dataset files inside the workspace"):
            uploads.workspace_dataset(ws, typed)


def test_a_source_outside_the_workspace_needs_the_workspaces_own_dataset_or_the_cli(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    random_events(n=30).to_csv(secret / "events.csv", index=False)
    ws = write_workspace(tmp_path / "w", random_events(n=40))
    other = ws.root / "data" / "other.yaml"
    other.write_text(yaml.safe_dump({**BASE_DATASET, "source": str(secret / "events.csv")}))
    with pytest.raises(RiskConsoleError, match=r"^data/other.yaml: source '.*' reads .*outside the workspace"):
        reload(ws, other, trusted=False)
    assert not ws.db_path.exists()
    (ws.root / "data" / "link.csv").symlink_to(secret / "events.csv")  # a link inside pointing out
    other.write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/link.csv"}))
    with pytest.raises(RiskConsoleError, match="outside the workspace"):
        reload(ws, other, trusted=False)
    assert reload(ws, other, trusted=True).loaded == 30  # a local user named it on the command line
    ws.dataset_path.write_text(yaml.safe_dump({**BASE_DATASET, "source": str(secret / "events.csv")}))
    assert reload(ws, trusted=False).loaded == 30  # the workspace's own dataset.yaml says so


def test_the_data_page_refuses_a_dataset_outside_the_workspace(tmp_path, monkeypatch):
    from conftest import console_page
    from riskconsole.ui import common

    ws = write_workspace(tmp_path / "w", random_events(n=40))
    load(ws)
    before = _digest(ws.db_path)
    at = console_page(monkeypatch, ws.root, "data_page")
    at.text_input[0].set_value(str(tmp_path / "elsewhere.yaml"))
    next(b for b in at.button if b.label == "Load dataset").click().run()
    assert not at.exception
    assert any("only dataset files inside the workspace" in e.value for e in at.error)
    common.release_connections()
    assert _digest(ws.db_path) == before


def test_a_derived_feature_that_does_not_bind_is_named(tmp_path):
    features = [{"name": "ok", "sql": "amount * 2"}, {"name": "bad", "sql": "amount + channel"}]
    ws = write_workspace(tmp_path / "w", random_events(n=40), {**BASE_DATASET, "features": features})
    with pytest.raises(RiskConsoleError, match=r"^data/dataset.yaml: feature 'bad': 'amount \+ channel' cannot take "
                       r"amount \(DOUBLE, a number\) and channel \(VARCHAR, a text\) \(give both sides the same type"):
        validate_file(ws, ws.dataset_path)


def test_a_console_in_another_process_makes_load_wait_with_a_clear_line(trained):
    """A process with the file open would keep reading the replaced one: the load refuses and changes nothing."""
    import subprocess
    import sys

    before = _digest(trained.db_path)
    code = (f"import duckdb, time; c = duckdb.connect({str(trained.db_path)!r}, read_only=True); "
            "print('ready', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(RiskConsoleError, match=r"^data/console.duckdb: the database is open in another process"):
            reload(trained)
    finally:
        holder.kill()
        holder.wait()
    assert _digest(trained.db_path) == before


def test_uploads_do_not_pile_up(tmp_path):
    ws = write_workspace(tmp_path / "w", random_events(n=40))
    load(ws)
    good = (ws.root / "data" / "events.csv").read_bytes()
    uploads.load_upload(ws, "first.csv", good)
    uploads.load_upload(ws, "second.csv", good)
    assert sorted(p.name for p in (ws.root / "data" / "uploads").iterdir()) == ["second.csv", "second.dataset.yaml"]
    with pytest.raises(RiskConsoleError):
        uploads.load_upload(ws, "third.csv", b"event_id,ts\n")  # refused: nothing of it is kept
    assert sorted(p.name for p in (ws.root / "data" / "uploads").iterdir()) == ["second.csv", "second.dataset.yaml"]


def test_the_new_database_is_built_under_the_memory_limit(tmp_path, monkeypatch):
    real, seen = duckdb.connect, []

    def spy(database=":memory:", *args, **kwargs):
        seen.append((str(database), (kwargs.get("config") or {}).get("memory_limit")))
        return real(database, *args, **kwargs)

    monkeypatch.setenv("RISKCONSOLE_MEMORY_LIMIT", "345MB")
    monkeypatch.setattr(duckdb, "connect", spy)
    load(write_workspace(tmp_path / "w", random_events(n=40)))
    staging = [limit for database, limit in seen if ".loading-" in database]
    assert staging == ["345MB"]


def test_a_very_long_upload_name_is_cut_not_a_crash():
    from riskconsole.uploads import safe_upload_name

    name = safe_upload_name("a" * 300 + ".csv")
    assert name.endswith(".csv") and len(name.encode()) < 255


def test_features_whose_names_differ_only_in_case_are_refused(tmp_path):
    """`f` and `F` are one column in SQL: the second would silently become `F_1` (red team)."""
    features = [{"name": "f", "count": "*", "by": "user_id", "window": "1h"},
                {"name": "F", "count": "*", "by": "device_id", "window": "1h"}]
    ws = write_workspace(tmp_path / "w", random_events(n=40), {**BASE_DATASET, "features": features})
    with pytest.raises(RiskConsoleError, match="feature 'F': feature 'f' has that name already"):
        load(ws)
    with pytest.raises(RiskConsoleError, match="feature 'F': feature 'f' has that name already"):
        validate_file(ws, ws.dataset_path)
    assert not ws.db_path.exists()


@pytest.mark.parametrize("v2, v1, expected", [
    ("4294967296\n", None, 4 * 2**30),  # docker --memory 4g (cgroup v2)
    (None, "2147483648\n", 2 * 2**30),  # cgroup v1
    ("max\n", "9223372036854771712\n", 64 * 2**30),  # no limit: the machine's
    (None, None, 64 * 2**30),
])
def test_a_containers_memory_limit_caps_duckdbs_and_sparks_memory(tmp_path, monkeypatch, v2, v1, expected):
    """DuckDB's cap (40%) and Spark's local driver (a third) were taken from the host's memory: in a 4 GB container
    on a 64 GB host, DuckDB was allowed 16 GB and the kernel killed the load instead of DuckDB spilling to disk."""
    from riskconsole import workspace
    from riskconsole.engines.spark import local_driver_memory

    monkeypatch.delenv("RISKCONSOLE_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(workspace.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else 64 * 2**30 // 4096)
    files = []
    for name, text in (("v2", v2), ("v1", v1)):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        files.append(path)
    monkeypatch.setattr(workspace, "CGROUP_MEMORY", tuple(files))
    assert workspace.machine_memory() == expected
    gb = expected // 2**30
    assert workspace.memory_limit() == f"{max(1, min(16, int(gb * 0.4)))}GB"
    assert local_driver_memory() == f"{max(1, min(16, int(gb / 3)))}g"
