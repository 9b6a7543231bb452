"""Write a complete demo workspace: files, generated events, loaded database."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from riskconsole.ingest import LoadResult, load
from riskconsole.workspace import Workspace

DEMO_FILES = Path(__file__).resolve().parent / "demo_files"
DEMO_SIZE = 1_000_000  # the demo's review capacity is sized for this many events
EVENTS = Path("data") / "demo" / "events.parquet"


def copy_demo_files(ws: Workspace, n_events: int = DEMO_SIZE, overwrite: bool = False) -> None:
    """dataset.yaml, strategies and detectors of the demo, without clobbering edited files unless asked.

    The review capacity scales with the number of events, so a smaller demo has the same queue pressure.
    """
    for src in sorted(DEMO_FILES.rglob("*.yaml")):
        relative = src.relative_to(DEMO_FILES)
        target = ws.root / ("data" if relative.name == "dataset.yaml" and len(relative.parts) == 1 else "") / relative
        if target.exists() and not overwrite:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        if relative.name == "dataset.yaml":
            _scale_capacity(target, n_events)


def _scale_capacity(path: Path, n_events: int) -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(r"review_capacity:\s*(\d+)", text)
    if match and n_events != DEMO_SIZE:
        scaled = max(1, round(int(match.group(1)) * n_events / DEMO_SIZE))
        path.write_text(text[:match.start(1)] + str(scaled) + text[match.end(1):], encoding="utf-8")


def build_demo_workspace(ws: Workspace, n_events: int = 1_000_000, seed: int = 7,
                         progress: Callable[[str], None] = lambda _: None, train: bool = True) -> LoadResult:
    """Generate the demo events, copy the demo files, load everything and (with `train`) fit the detectors."""
    from riskconsole.demo import generate_events

    ws.root.mkdir(parents=True, exist_ok=True)
    copy_demo_files(ws, n_events)
    progress(f"generating {n_events:,} demo events (seed {seed}) ...")
    target = ws.root / EVENTS
    target.parent.mkdir(parents=True, exist_ok=True)
    generate_events(target, n_events=n_events, seed=seed)
    progress("loading events and building features ...")
    result = load(ws)
    if train:
        from riskconsole.detectors import train_all

        progress("training the demo detectors ...")
        train_all(ws, progress)
    return result
