"""Saving strategies safely: atomic writes, every earlier version kept, diffs between versions.

History lives in `strategies/.history/NAME/YYYYMMDD-HHMMSS-ffffff.yaml`. A save states the content
it started from; if the file changed on disk since (another tab, another person), the save
goes to a new file instead of overwriting, so nothing is lost.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from riskconsole.config import Strategy, parse_model, read_yaml
from riskconsole.errors import ConfigError

HISTORY = ".history"


def digest(text: str) -> str:
    """Short content hash, to detect concurrent edits."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Saved:
    """Where a save landed, and whether it had to dodge a concurrent change."""

    path: Path
    version: Path
    conflict: bool


def history_dir(strategies_dir: Path, name: str) -> Path:
    return strategies_dir / HISTORY / name


def versions(strategies_dir: Path, name: str) -> list[Path]:
    """Saved versions of a strategy, oldest first."""
    folder = history_dir(strategies_dir, name)
    return sorted(folder.glob("*.yaml")) if folder.exists() else []


def save_strategy(strategies_dir: Path, file_name: str, text: str, base_digest: str | None) -> Saved:
    """Validate and save strategy YAML as `file_name`, keeping the previous content as a version.

    Args:
        strategies_dir: the workspace's strategies folder.
        file_name: target file stem (letters, digits, _ and -).
        text: the YAML text to save.
        base_digest: `digest()` of the text this edit started from (None for a new file).

    Raises:
        ConfigError: the text is not a valid strategy, or the name is not a plain file name.
    """
    if not file_name or any(c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in file_name):
        raise ConfigError(f"'{file_name}': a strategy file name uses letters, digits, _ and - only")
    parse_model(read_yaml(text, f"strategies/{file_name}.yaml"), Strategy, f"strategies/{file_name}.yaml")
    target = strategies_dir / f"{file_name}.yaml"
    conflict = False
    if target.exists():
        current = target.read_text(encoding="utf-8")
        if base_digest is None or digest(current) != base_digest:
            conflict = True
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            target = strategies_dir / f"{file_name}-conflict-{stamp}.yaml"
        else:
            _keep(strategies_dir, file_name, current)
    atomic_write(target, text)
    version = _keep(strategies_dir, target.stem, text)
    return Saved(target, version, conflict)


def _keep(strategies_dir: Path, name: str, text: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    path = history_dir(strategies_dir, name) / f"{stamp}.yaml"
    existing = versions(strategies_dir, name)
    if existing and existing[-1].read_text(encoding="utf-8") == text:
        return existing[-1]
    atomic_write(path, text)
    return path


def diff(old: str, new: str, old_name: str = "before", new_name: str = "after") -> str:
    """Unified diff of two YAML texts."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        old_name, new_name))
