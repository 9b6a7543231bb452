"""Strategy saves are atomic, keep history, and never overwrite a concurrent change."""

from __future__ import annotations

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
    ("name: s\nrules: [\n", "s", "YAML syntax error"),
])
def test_invalid_saves_change_nothing(tmp_path, text, name, message):
    with pytest.raises(ConfigError, match=message):
        save_strategy(tmp_path, name, text, None)
    assert list(tmp_path.iterdir()) == []
