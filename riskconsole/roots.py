"""Where a workspace is, found without importing DuckDB: the CLI asks a running daemon (`daemon.py`) to answer a
command before it loads any data library, and names the daemon by the workspace's folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_root(arg: str | os.PathLike | None = None) -> Path:
    """`--workspace`, else $RISKCONSOLE_WORKSPACE, else the workspace the current directory is in (the nearest
    folder up from it holding data/dataset.yaml: `cd` into a workspace and run, as in a git checkout), else the
    repository itself; resolved."""
    chosen = arg or os.environ.get("RISKCONSOLE_WORKSPACE") or enclosing(Path.cwd()) or REPO_ROOT
    return Path(chosen).expanduser().resolve()


def enclosing(start: Path) -> Path | None:
    """The nearest folder from `start` up that holds data/dataset.yaml (None: none does)."""
    for folder in (start, *start.parents):
        if (folder / "data" / "dataset.yaml").is_file():
            return folder
    return None
