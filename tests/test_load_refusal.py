"""A load that would quarantine more than half of a source's rows (a wrong time_format, labels written as words) is
refused in one line and changes nothing; `accept_quarantine` (`load --accept-quarantine`, the console's button)
publishes it anyway."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from riskconsole import ingest, uploads
from riskconsole.errors import DataError, QuarantineRefused
from riskconsole.ingest import load, reload
from riskconsole.workspace import Workspace
from conftest import query, BASE_DATASET, random_events, write_workspace

N = 40  # events of the workspace: half is 20


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _live(ws: Workspace) -> tuple:
    """What a refused load must leave as it was: the database's and quarantine.csv's bytes, its events, its version."""
    return (_digest(ws.db_path), _digest(ws.root / "data" / "quarantine.csv"),
            query(ws, "SELECT count(*) FROM events"), query(ws, "SELECT version FROM _meta"))


def _loaded(tmp_path, dataset: dict | None = None) -> Workspace:
    """A workspace of N good events (and any streams and tables of `dataset`), loaded."""
    ws = write_workspace(tmp_path / "ws", random_events(n=N), dataset)
    load(ws)
    return ws


def _bad_times(ws: Workspace, bad: int) -> None:
    """Rewrite the events with `bad` of their times in a day-first layout the dataset does not read."""
    events = random_events(n=N)
    ts = events["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    ts[:bad] = events["ts"][:bad].dt.strftime("%d/%m/%Y %H:%M")
    events.assign(ts=ts).to_csv(ws.root / "data" / "events.csv", index=False)


def test_most_times_failing_refuses_the_load_and_changes_nothing(tmp_path):
    ws = _loaded(tmp_path)
    before = _live(ws)
    _bad_times(ws, 36)
    with pytest.raises(QuarantineRefused) as refused:
        reload(ws)
    message = str(refused.value)
    assert isinstance(refused.value, DataError) and "\n" not in message
    assert message.startswith("data/dataset.yaml: 'data/events.csv': 36 of 40 rows (90.0%) would be quarantined, "
                              "more than the 50% a load publishes (ts: not an ISO-8601 time")
    assert "(36 rows)" in message
    assert "; columns.time: 36 of 40 rows (90.0%) quarantined because 'ts' is not an ISO-8601 time" in message
    assert "e.g. '01/03/2026 03:58'" in message and "try time_format: [ISO-8601, '%" in message  # the warning's fix
    assert message.endswith("nothing was loaded, the live database is unchanged: fix the data or the dataset and "
                            "load again, or publish it anyway with `riskconsole load --accept-quarantine`")
    assert _live(ws) == before
    assert not list(ws.db_path.parent.glob(".console.duckdb.loading-*"))  # no staging file left behind
    result = reload(ws, accept_quarantine=True)
    assert (result.read, result.loaded, result.quarantined) == (40, 4, 36)
    assert any("columns.time: 36 of 40 rows" in w for w in result.warnings)  # still said
    assert query(ws, "SELECT count(*) FROM events") == [(4,)] and _live(ws)[3] != before[3]


@pytest.mark.parametrize("bad, refused", [(N // 2, False), (N // 2 + 1, True)])
def test_exactly_half_quarantined_loads_and_one_more_row_is_refused(tmp_path, bad, refused):
    ws = _loaded(tmp_path)
    _bad_times(ws, bad)
    if refused:
        with pytest.raises(QuarantineRefused, match=r"21 of 40 rows \(52.5%\) would be quarantined"):
            reload(ws)
    else:
        assert reload(ws).loaded == N - bad
    assert ingest.REFUSE_SHARE == 0.5


def test_labels_written_as_words_are_refused_with_the_label_values_fix(tmp_path):
    ws = _loaded(tmp_path)
    events = random_events(n=N)
    words = events["is_fraud"].map({1: "yes", 0: "no"}).astype(object).where(events["is_fraud"].notna(), None)
    events.assign(is_fraud=words).to_csv(ws.root / "data" / "events.csv", index=False)
    known = int(events["is_fraud"].notna().sum())
    with pytest.raises(QuarantineRefused) as refused:
        reload(ws)
    message = str(refused.value)
    assert f"{known} of 40 rows" in message and "is_fraud: label must be 1, 0 or empty" in message
    assert "; columns.label: " in message and "label_values: in the dataset, e.g. label_values: {" in message


def test_every_row_quarantined_says_the_fix_too(tmp_path):
    """No row loads: refused whatever the override (there is nothing to publish), with the warning's fix."""
    ws = _loaded(tmp_path)
    _bad_times(ws, N)
    for accept in (False, True):
        with pytest.raises(DataError, match=r"^data/dataset.yaml: no loadable rows in 'data/events.csv' \(read 40, "
                                            r"every one quarantined: .*\); columns.time: 40 of 40 rows .*try "
                                            r"time_format: .*'%./%./%Y %H:%M'.* in the dataset$"):
            reload(ws, accept_quarantine=accept)


def _with_sources(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    times = [f"2026-03-0{1 + i % 5} 08:00:00" for i in range(10)]
    logins = pd.DataFrame({"user_id": range(1, 11), "login_time": times})
    logins.to_csv(root / "data" / "logins.csv", index=False)
    pd.DataFrame({"merchant_id": range(100, 106), "tier": list("abcabc")}).to_csv(root / "data" / "merchants.csv",
                                                                                   index=False)
    features = [*BASE_DATASET["features"], {"name": "user_logins_1d", "count": "*", "from": "logins", "by": "user_id",
                                            "window": "1d"}, {"name": "merchant_tier", "lookup": "merchants.tier"}]
    return _loaded(tmp_path, {**BASE_DATASET, "features": features,
                              "streams": {"logins": {"source": "data/logins.csv", "columns": {"time": "login_time"}}},
                              "tables": {"merchants": {"source": "data/merchants.csv", "key": "merchant_id"}}})


def test_a_stream_mostly_quarantined_is_refused_by_name(tmp_path):
    ws = _with_sources(tmp_path)
    before = _live(ws)
    logins = pd.read_csv(ws.root / "data" / "logins.csv")
    logins.loc[:5, "login_time"] = "yesterday"
    logins.to_csv(ws.root / "data" / "logins.csv", index=False)
    with pytest.raises(QuarantineRefused, match=r"^data/dataset.yaml: streams.logins: 'data/logins.csv': 6 of 10 rows "
                                                r"\(60.0%\) would be quarantined, .*; streams.logins.columns.time: 6 "
                                                r"of 10 rows .*'yesterday'"):
        reload(ws)
    assert _live(ws) == before
    assert reload(ws, accept_quarantine=True).sources["streams.logins"] == {"read": 10, "loaded": 4, "quarantined": 6}


def test_a_table_mostly_quarantined_is_refused_by_name(tmp_path):
    ws = _with_sources(tmp_path)
    before = _live(ws)
    pd.DataFrame({"merchant_id": [100, 100, 100, 100, 101, 101], "tier": list("abcabc")}).to_csv(
        ws.root / "data" / "merchants.csv", index=False)
    with pytest.raises(QuarantineRefused, match=r"^data/dataset.yaml: tables.merchants: 'data/merchants.csv': 4 of 6 "
                                                r"rows \(66.7%\) would be quarantined, more than the 50% a load "
                                                r"publishes \(duplicate merchant_id \(4 rows\)\); nothing was loaded"):
        reload(ws)
    assert _live(ws) == before
    assert (ws.root / "data" / "quarantine_merchants.csv").read_text().count("\n") == 1  # its header: none before


def test_the_cli_refuses_in_one_line_and_accepts_with_the_flag(tmp_path, capsys):
    from riskconsole.cli import main

    ws = _loaded(tmp_path)
    before = _live(ws)
    _bad_times(ws, 30)
    assert main(["load", "--workspace", str(ws.root)]) == 1
    out, err = capsys.readouterr()
    [line] = [e for e in err.splitlines() if e.startswith("error: ")]
    assert line.startswith("error: data/dataset.yaml: 'data/events.csv': 30 of 40 rows (75.0%) would be quarantined")
    assert line.endswith("`riskconsole load --accept-quarantine`") and "read 40" not in out
    assert _live(ws) == before
    assert main(["load", "--workspace", str(ws.root), "--accept-quarantine"]) == 0
    out, err = capsys.readouterr()
    assert "read 40 = loaded 10 + quarantined 30" in out and "warning: data/dataset.yaml: columns.time: 30" in err


def test_an_upload_mostly_quarantined_is_refused_unless_accepted(tmp_path):
    ws = _loaded(tmp_path)
    before = _live(ws)
    _bad_times(ws, 30)
    data = (ws.root / "data" / "events.csv").read_bytes()
    with pytest.raises(QuarantineRefused, match=r"^data/uploads/new.dataset.yaml: 'data/uploads/new.csv': 30 of 40"):
        uploads.load_upload(ws, "new.csv", data)
    assert _live(ws) == before and not (ws.root / "data" / "uploads" / "new.csv").exists()
    assert uploads.load_upload(ws, "new.csv", data, accept_quarantine=True).loaded == 10


def test_the_data_page_offers_to_load_anyway(tmp_path, monkeypatch):
    from conftest import console_page
    from riskconsole.ui import common

    ws = _loaded(tmp_path)
    before = _live(ws)
    _bad_times(ws, 30)
    at = console_page(monkeypatch, ws.root, "data_page")
    next(b for b in at.button if b.label == "Load dataset").click().run()
    assert not at.exception
    assert any("30 of 40 rows (75.0%) would be quarantined" in e.value for e in at.error)
    common.release_connections()
    assert _live(ws) == before
    next(b for b in at.button if b.label == "Load anyway (keep the quarantine)").click().run()
    assert not at.exception and not at.error
    assert not any(b.label == "Load anyway (keep the quarantine)" for b in at.button)
    common.release_connections()
    assert query(ws, "SELECT count(*) FROM events") == [(10,)]


def test_a_refusal_for_repeated_ids_says_what_overlapping_files_mean(tmp_path):
    """Cumulative exports (each file holding the rows of the one before) quarantine most rows as duplicates while
    every event loads once: the refusal said only 'duplicate id (600 rows)', and nothing of why or what to do."""
    import yaml

    ws = _loaded(tmp_path)
    events = random_events(n=N)
    for day in range(1, 5):
        events.iloc[: N // 4 * day].to_csv(ws.root / "data" / f"export_{day}.csv", index=False)
    (ws.root / "data" / "events.csv").unlink()
    (ws.root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**BASE_DATASET, "source": "data/export_*.csv"}))
    with pytest.raises(QuarantineRefused) as refused:
        reload(ws)
    message = str(refused.value)
    assert "60 of 100 rows (60.0%) would be quarantined" in message and "(duplicate id (60 rows)); 'event_id' " \
        "repeats a row read before it: if the files overlap" in message and "\n" not in message
    assert reload(ws, accept_quarantine=True).loaded == N
