"""Strategy saves are atomic, keep history, and never overwrite a concurrent change."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from riskconsole.errors import ConfigError
from riskconsole.versions import diff, digest, save_strategy, versions

V1 = "name: s\nrules:\n  - {name: a, when: 'amount > 1', action: block}\n"
V2 = V1.replace("amount > 1", "amount > 2")
V3 = V1.replace("amount > 1", "amount > 3")


def test_save_keeps_history_and_detects_conflicts(tmp_path):
    first = save_strategy(tmp_path, "s", V1, None)
    assert first.path.read_text() == V1 and not first.conflict
    second = save_strategy(tmp_path, "s", V2, digest(V1))
    assert second.path == tmp_path / "s.yaml" and second.path.read_text() == V2
    # another tab started from V1 too: its save must not overwrite V2
    third = save_strategy(tmp_path, "s", V3, digest(V1))
    assert third.conflict and third.path != tmp_path / "s.yaml" and third.path.read_text() == V3
    assert (tmp_path / "s.yaml").read_text() == V2
    assert [p.read_text() for p in versions(tmp_path, "s")] == [V1, V2]
    assert "-  - {name: a, when: 'amount > 1'" in diff(V1, V2)


@pytest.mark.parametrize("text, name, message", [
    ("name: s\nrules: []\n", "s", "at least one rule"),
    (V1, "../evil", "letters, digits"),
    (V1, "x" * 300, "at most 100 characters"),
    ("name: s\nrules: [\n", "s", "YAML syntax error"),
])
def test_invalid_saves_change_nothing(tmp_path, text, name, message):
    with pytest.raises(ConfigError, match=message):
        save_strategy(tmp_path, name, text, None)
    assert list(tmp_path.iterdir()) == []


def _text(writer: int, i: int) -> str:
    return V1.replace("amount > 1", f"amount > {writer * 10_000 + i}")


def _writer(folder: str, writer: int, saves: int, results) -> None:
    folder_path = Path(folder)
    out = []
    for i in range(saves):
        target = folder_path / "s.yaml"
        saved = save_strategy(folder_path, "s", _text(writer, i), digest(target.read_text()))
        out.append((str(saved.path), saved.conflict, _text(writer, i)))
    results.put(out)


def test_concurrent_saves_lose_nothing(tmp_path):
    """Two processes saving as fast as they can: every save is a version of s.yaml or a conflict file of its own."""
    save_strategy(tmp_path, "s", V1, None)
    saves = 80
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, saves, results)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    outcomes = [row for _ in workers for row in results.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    kept = [p.read_text() for p in versions(tmp_path, "s")]
    conflicts = sorted(tmp_path.glob("s-conflict-*.yaml"))
    assert len(kept) == len(set(kept)) and len(outcomes) == 2 * saves
    for path, conflict, text in outcomes:
        if conflict:  # a conflict file of its own, untouched by any later save
            assert Path(path).read_text() == text and Path(path) in conflicts
        else:
            assert text in kept
    assert len(conflicts) == sum(c for _, c, _ in outcomes) == len({p for p, c, _ in outcomes if c})
    assert len(kept) - 1 + len(conflicts) == 2 * saves  # -1: V1, the first version
    assert (tmp_path / "s.yaml").read_text() == kept[-1]


def test_same_microsecond_saves_get_distinct_conflict_files(tmp_path, monkeypatch):
    import riskconsole.versions as versions_module

    monkeypatch.setattr(versions_module, "_stamp", lambda: "20260101-000000-000000")
    save_strategy(tmp_path, "s", V1, None)
    first = save_strategy(tmp_path, "s", V2, "stale")
    second = save_strategy(tmp_path, "s", V3, "stale")
    assert first.conflict and second.conflict and first.path != second.path
    assert first.path.read_text() == V2 and second.path.read_text() == V3
    assert [p.read_text() for p in versions(tmp_path, "s")] == [V1]
