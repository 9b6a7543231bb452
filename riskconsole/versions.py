"""Saving strategies safely: atomic writes, every earlier version kept, diffs between versions.

History lives in `strategies/.history/NAME/YYYYMMDD-HHMMSS-ffffff-NNN.yaml`. A save states the
content it started from; if the file changed on disk since (another tab, another person), the save
goes to a new conflict file of its own instead of overwriting, so nothing is lost. Saves take a lock
(`strategies/.history/.lock`), so checking and writing are one step even across processes.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from riskconsole.config import Strategy, parse_model, read_yaml
from riskconsole.errors import ConfigError
from riskconsole.escape import printable
from riskconsole.limits import MAX_NAME_LENGTH

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

    A compare-and-swap under a lock on the workspace's strategies: the file on disk is read, compared
    with `base_digest` and replaced while no other save (another tab, process or person) can run, so
    every save lands either as the file (and a version) or as a conflict file of its own.

    Args:
        strategies_dir: the workspace's strategies folder.
        file_name: target file stem (letters, digits, _ and -).
        text: the YAML text to save.
        base_digest: `digest()` of the text this edit started from (None for a new file).

    Raises:
        ConfigError: the text is not a valid strategy, or the name is not a plain file name.
    """
    if not file_name or len(file_name) > MAX_NAME_LENGTH or \
            any(c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in file_name):
        raise ConfigError(f"'{printable(file_name)[:100]}': a strategy file name uses letters, digits, _ and - only "
                          f"(at most {MAX_NAME_LENGTH} characters)")
    parse_model(read_yaml(text, f"strategies/{file_name}.yaml"), Strategy, f"strategies/{file_name}.yaml")
    target = strategies_dir / f"{file_name}.yaml"
    with _locked(strategies_dir):
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current is not None and (base_digest is None or digest(current) != base_digest):
            conflict = _write_new(strategies_dir, f"{file_name}-conflict-{_stamp()}", ".yaml", text)
            return Saved(conflict, _keep(strategies_dir, conflict.stem, text), True)
        if current is not None:
            _keep(strategies_dir, file_name, current)
        atomic_write(target, text)
        return Saved(target, _keep(strategies_dir, file_name, text), False)


@contextmanager
def _locked(strategies_dir: Path) -> Iterator[None]:
    """Hold the workspace's save lock (`strategies/.history/.lock`): one save at a time, across processes."""
    folder = strategies_dir / HISTORY
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as handle:
        _lock_file(handle, True)
        try:
            yield
        finally:
            _lock_file(handle, False)


def _lock_file(handle, lock: bool) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if lock else msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX if lock else fcntl.LOCK_UN)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")


def _write_new(folder: Path, stem: str, suffix: str, text: str) -> Path:
    """Write `text` under a name no other file holds, `stem-000`, `stem-001`, ... (they sort in order).

    The text goes to a temp file first and is then linked to its name, which fails if the name
    exists: nothing is overwritten, and no reader sees a half-written file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".new.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    try:
        for counter in range(1000):
            path = folder / f"{stem}-{counter:03d}{suffix}"
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
    finally:
        os.unlink(tmp)
    raise ConfigError(f"{folder}: no free name for {stem}{suffix} (1,000 taken); save again")


def _keep(strategies_dir: Path, name: str, text: str) -> Path:
    existing = versions(strategies_dir, name)
    if existing and existing[-1].read_text(encoding="utf-8") == text:
        return existing[-1]
    return _write_new(history_dir(strategies_dir, name), _stamp(), ".yaml", text)


def diff(old: str, new: str, old_name: str = "before", new_name: str = "after") -> str:
    """Unified diff of two YAML texts."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        old_name, new_name))
