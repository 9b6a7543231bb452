"""Files uploaded in the console, and the dataset paths it may load: both stay inside the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from riskconsole.errors import DataError
from riskconsole.escape import terminal
from riskconsole.ingest import LoadResult, Progress, reload
from riskconsole.sources import FORMATS
from riskconsole.workspace import Workspace

MAX_UPLOAD_MB = 200  # the largest upload the console accepts; $RISKCONSOLE_MAX_UPLOAD_MB may set a smaller one


def upload_limit_mb() -> int:
    """The upload size limit in MB: MAX_UPLOAD_MB, or a smaller $RISKCONSOLE_MAX_UPLOAD_MB."""
    try:
        wanted = int(os.environ.get("RISKCONSOLE_MAX_UPLOAD_MB", MAX_UPLOAD_MB))
    except ValueError:
        wanted = MAX_UPLOAD_MB
    return max(1, min(MAX_UPLOAD_MB, wanted))


MAX_NAME_CHARS = 120  # of an upload's kept name, before its suffix


def safe_upload_name(file_name: str) -> str:
    """The file name without any folder, with only letters, digits, space, `.`, `-` and `_` (no leading dot)."""
    name = Path(str(file_name).replace("\\", "/")).name
    cleaned = "".join(ch if ch.isalnum() or ch in " .-_" else "_" for ch in name).strip().lstrip(".")
    if not cleaned or Path(cleaned).suffix.lower() not in FORMATS:
        raise DataError(f"{terminal(name)[:80]}: upload a .csv, .parquet or .jsonl file")
    stem, suffix = cleaned[: -len(Path(cleaned).suffix)], Path(cleaned).suffix
    return stem[:MAX_NAME_CHARS] + suffix  # file systems refuse names over 255 bytes


def workspace_dataset(ws: Workspace, typed: str) -> Path:
    """A dataset.yaml path typed in the console, refused unless it is a file inside the workspace."""
    path = ws.path(typed.strip()).resolve()
    root = ws.root.resolve()
    if path != root and root not in path.parents:
        raise DataError(f"{terminal(typed)[:200]}: the console loads only dataset files inside the workspace "
                        f"{ws.root} (use `riskconsole load PATH` for a file elsewhere)")
    if not path.is_file():
        raise DataError(f"{ws.rel(path)}: no such dataset file")
    return path


def load_upload(ws: Workspace, file_name: str, data: bytes, progress: Progress | None = None,
                accept_quarantine: bool = False) -> LoadResult:
    """Load an uploaded file with the current dataset's roles and features (a copy of the spec that
    points at the file, kept beside it in data/uploads/). Same checks and quarantine as `load` (`accept_quarantine`:
    publish a source mostly quarantined, refused by default)."""
    name = safe_upload_name(file_name)
    limit = upload_limit_mb()
    if len(data) > limit * 2**20:
        raise DataError(f"{name}: {len(data) / 2**20:,.0f} MB is over the upload limit of {limit} MB "
                        "(load large files with `riskconsole load`)")
    folder = ws.root / "data" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target, spec_path = folder / name, folder / f"{Path(name).stem}.dataset.yaml"
    target.write_bytes(data)
    spec = yaml.safe_load(ws.dataset_path.read_text(encoding="utf-8"))
    spec["source"] = str(target.relative_to(ws.root))
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    try:  # the spec is the workspace's own but for `source` (the upload, inside the workspace): its streams and
        # tables are read as the workspace's dataset.yaml reads them (outside the workspace, at a URI)
        result = reload(ws, spec_path, progress, trusted=True, accept_quarantine=accept_quarantine)
    except BaseException:
        target.unlink(missing_ok=True)
        spec_path.unlink(missing_ok=True)
        raise
    for old in folder.iterdir():  # only the upload that is loaded stays: uploads do not pile up on the server
        if old not in (target, spec_path) and old.is_file():
            old.unlink()
    return result
