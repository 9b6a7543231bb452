"""Assemble a backtest report (plain, JSON-serializable data) from a strategy run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import duckdb

from riskconsole import __version__
from riskconsole.backtest import Groups, Window
from riskconsole.attribution import attribution
from riskconsole.segments import segment_rows
from riskconsole.metrics import RuleSet, by_action, daily, decide, overall, rule_table, unique_unlabeled
from riskconsole.strategy import CompiledStrategy, Frame
from riskconsole.workspace import Workspace

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Dataset

UNLABELED_WARN = 0.05   # warn when more than this share of the population has no label
MATURE_SHARE = 0.5      # a day whose labelled share is below this is "immature"


@dataclass
class Backtest:
    """A finished run: the report plus what produced it (for exports and the console)."""

    report: dict
    compiled: CompiledStrategy
    groups: Groups
    window: Window
    dataset: Dataset
    frame_source: Frame | Callable[[], Frame]  # the frame, or how to read it (a cached run reads it only if asked)
    decisions_sql: str | None = None  # the decisions query as rendered for DuckDB (with the run's compiled SQL)

    @property
    def frame(self) -> Frame:
        """What the strategy decided over (read on first use where the run itself did not need it)."""
        if callable(self.frame_source):
            self.frame_source = self.frame_source()
        return self.frame_source


def build_report(compiled: CompiledStrategy, groups: Groups, dataset: Dataset, window: Window,
                 extra_warnings: list[str] | None = None, by: str | None = None) -> dict:
    """The report dict (DESIGN.md §6) from grouped events."""
    rules = RuleSet.of(compiled)
    action = decide(groups.hits, rules)
    business = dataset.business
    rule_rows = rule_table(groups, action, rules)
    report = {
        "strategy": compiled.name,
        "description": compiled.strategy.description,
        "window": {"from": groups.days[0].isoformat() if groups.days else None,
                   "to": groups.days[-1].isoformat() if groups.days else None, "note": window.note},
        "as_of": (window.as_of - timedelta(microseconds=1)).isoformat() if window.as_of else None,
        "params": compiled.params,
        "overall": overall(groups, action, business),
        "by_action": by_action(groups, action),
        "rules": rule_rows,
        "attribution": attribution(groups, rules, business, rule_rows, action),
        "daily": daily(groups, action, business),
        "business": business.model_dump(),
        "version": __version__,
    }
    if groups.segment is not None:
        report["segments"] = {"by": by, "rows": segment_rows(groups, action, business)}
    unit = "events" if compiled.strategy.level is None else "entity-periods"
    report["warnings"] = [window.note] * bool(window.note) + label_warnings(report, unit) + list(extra_warnings or [])
    report["warnings"] += removal_warnings(report, unique_unlabeled(groups, action, rules), unit)
    return report


def removal_warnings(report: dict, unknown: list[int], unit: str = "events") -> list[str]:
    """A removal candidate (no labelled fraud that no other rule catches) that alone flags events whose label is
    unknown (production blocked them, or not labelled yet): fraud it alone stops may hide there, so "catches nothing
    on its own" is not known of it. `unknown`: per rule of `report["rules"]`, what it alone flags unlabelled; `unit`:
    what the report decides."""
    alone = {row["name"]: n for row, n in zip(report["rules"], unknown)}
    def counted(n: int) -> str:  # "1 event only it flags has", "4 events only it flags have"
        return f"{n:,} {unit.removesuffix('s') if n == 1 else unit} only it flags {'has' if n == 1 else 'have'}"

    return [f"removal candidate '{name}' catches no labelled fraud on its own, but {counted(alone[name])} no label: "
            "it may catch fraud there" for name in report["attribution"]["removal_candidates"] if alone.get(name)]


def unit_of(report: dict) -> str:
    """What the report's counts count: events, or an entity-level strategy's entity-periods."""
    level = report.get("level")
    return "events" if level is None else f"{level['entity']} periods"


def label_warnings(report: dict, unit: str = "events") -> list[str]:
    """Say how much of the window is unlabeled and from which day labels are immature (`unit`: what is decided)."""
    out = []
    total = report["overall"]["population"]
    if total == 0:
        return [f"the population is empty: no {unit[:-1]} of the window passes the strategy's population filter"]
    unlabeled = report["overall"]["unlabeled_total"]
    if unlabeled / total > UNLABELED_WARN:
        out.append(f"{unlabeled / total:.1%} of {unit} ({unlabeled:,}) have no label yet: precision and recall "
                   f"count labelled {unit} only")
    immature = [d for d in report["daily"] if d["population"] and d["unlabeled"] / d["population"] > MATURE_SHARE]
    if immature:
        first = immature[0]["day"]
        out.append(f"labels are immature from {first}: more than {MATURE_SHARE:.0%} of that day's {unit} are "
                   "unlabeled (use --as-of or --to to judge on mature labels)")
    if report["overall"]["fraud_total"] == 0:
        out.append("no known fraud in the window: recall is undefined")
    return out


def detector_warnings(ws: Workspace, compiled: CompiledStrategy, window_days: tuple[str, str]) -> list[str]:
    """A detector whose training or validation window overlaps the backtest window is flagged."""
    lo, hi = window_days
    return [f"detector '{name}' was {'trained' if part == 'train' else 'validated'} on {start}..{end}, which overlaps "
            f"the backtest window {lo}..{hi}: its scores there are optimistic"
            for name, part, start, end in detector_overlaps(ws, compiled.detectors, window_days)]


def detector_overlaps(ws: Workspace, names: list[str], window_days: tuple[str, str]) -> list[tuple[str, str, str, str]]:
    """(detector, "train" or "valid", first day, last day) of each of detectors `names` whose training or validation
    window (on its card) overlaps `window_days`."""
    out = []
    lo, hi = window_days
    for name in names:
        card = ws.models_dir / name / "card.json"
        if lo is None:
            continue
        info = _card(card)
        if info is None:
            continue
        for part in ("train", "valid"):
            span = info.get(part) or {}
            start, end = str(span.get("from", ""))[:10], str(span.get("to", ""))[:10]
            if start and end and start <= hi and lo <= end:
                out.append((name, part, start, end))
    return out


_CARDS: dict[Path, tuple[str, dict]] = {}  # path -> (its text, the card)


def _card(path: Path) -> dict | None:
    """A detector card, parsed again only when its text changed (a console answer reads it on every move; a size
    and an mtime would miss an edit that keeps both, in a console or `riskconsole daemon` that lives on)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    found = _CARDS.get(path)
    if found is None or found[0] != text:
        found = _CARDS[path] = (text, json.loads(text))
        while len(_CARDS) > 64:
            _CARDS.pop(next(iter(_CARDS)))
    return found[1]


@dataclass(frozen=True)
class Baseline:
    """What to compare against: a strategy file and how to measure the difference."""

    path: str | Path
    bootstrap: int = 1000
    seed: int = 7
    allow_different_population: bool = False


def run_backtest(ws: Workspace, strategy_path: str | Path, window: Window | None = None,
                 overrides: dict | None = None, con: duckdb.DuckDBPyConnection | None = None,
                 baseline: Baseline | None = None, by: str | None = None) -> Backtest:
    """Compile, run and report one strategy: `Session.backtest` on a session of its own."""
    from riskconsole.session import Session

    with Session(ws, con) as session:
        return session.backtest(strategy_path, window, overrides, baseline, by)


def all_warnings(report: dict) -> list[str]:
    """Every warning of a report and of its comparison, each once, in order."""
    return list(dict.fromkeys(report["warnings"] + (report.get("compare") or {}).get("warnings", [])))


def now_stamp() -> str:
    """YYYYMMDD-HHMMSS in UTC, for report folder names."""
    return datetime.utcnow().strftime("%Y%m%d-%H%M%S")
