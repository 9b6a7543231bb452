"""Break any report down by a column or by quantile buckets of a numeric feature (`--by channel`, `--by amount:5`)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from riskconsole.backtest import Groups, Window, population_filters
from riskconsole.errors import RiskConsoleError, closest
from riskconsole.limits import query_time_limit
from riskconsole.metrics import overall
from riskconsole.sqlbuild import exp, fill, ident, lit, render
from riskconsole.strategy import CompiledStrategy, Frame, source

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Business

_BUCKETS = re.compile(r"(.*?)\s*:\s*(\d+)")  # COLUMN:N
MAX_SEGMENTS = 200
SEGMENT_KEYS = ("population", "flagged", "tp", "fp", "fn", "unlabeled_total", "precision", "recall",
                "amount_recall", "alert_rate", "fraud_amount_stopped", "good_amount_blocked", "review_cases",
                "net_benefit")


def segment_columns(frame: Frame, dataset) -> list[str]:
    """The columns a user can group decisions by (`--by`, the console's pickers): what a strategy reads but the
    decision's own id and time (one segment per decision or per instant; on an entity frame its internal
    `entity_period` and `period_start`)."""
    return [c for c in frame.visible if c not in (dataset.columns.id, dataset.columns.time)]


def parse_by(spec: str, frame: Frame, dataset) -> tuple[str, int | None]:
    """(column, quantile buckets or None) of `--by COLUMN` or `--by COLUMN:N`. A column is named as the data names it,
    spaces and all (`--by "Coupon Code"`, from a CSV header); a name that is a column wins over a `:N` reading.

    Raises:
        RiskConsoleError: no such column (with a did-you-mean), the label, or a bad spec.
    """
    text = spec.strip()
    match = _BUCKETS.fullmatch(text)
    column, buckets = (match.group(1), int(match.group(2))) if match and text not in frame.visible else (text, None)
    if column in frame.visible:
        return column, buckets
    if column in frame.hidden:
        raise RiskConsoleError(f"--by {spec}: cannot segment by '{column}' (it is the label or derived from it)")
    if not column:
        raise RiskConsoleError(f"--by {spec}: write a column (--by channel) or a column and a number of quantile "
                               "buckets (--by amount:5)")
    offered = segment_columns(frame, dataset)
    close = closest(column, offered)
    hint = f"did you mean '{close}'?" if close else f"columns: {', '.join(sorted(offered)[:12])}, ..."
    raise RiskConsoleError(f"--by {spec}: no column '{column}' to segment by ({hint})")


def segment_expression(con, spec: str, compiled: CompiledStrategy, frame: Frame,
                       dataset, window: Window) -> exp.Expression:
    """The segment key for `COLUMN` or `COLUMN:N` (N quantile buckets of a numeric column); `con` is where the
    quantiles are computed: a DuckDB connection or another engine (`backtest.run_query`)."""
    column, buckets = parse_by(spec, frame, dataset)
    if buckets is None:
        return ident(column)
    return _buckets(con, column, buckets, compiled, frame, dataset, window, spec)


def _buckets(con, column: str, n: int, compiled, frame: Frame, dataset, window: Window, spec: str) -> exp.Expression:
    if not 2 <= n <= 50:
        raise RiskConsoleError(f"--by {spec}: use 2 to 50 buckets")
    probs = exp.Array(expressions=[lit(i / n) for i in range(1, n)])
    query = exp.select(fill("quantile_cont(CAST(:c AS DOUBLE), :p)", c=ident(column), p=probs)).from_(
        source(compiled, frame).subquery("src"))
    for condition in population_filters(compiled, dataset, window):
        query = query.where(condition)
    try:
        if isinstance(con, duckdb.DuckDBPyConnection):
            with query_time_limit(con, f"--by {spec}"):  # the population filter is the user's expression
                edges = con.execute(render(query)).fetchall()[0][0]
        else:
            edges = con.arrow(query, f"--by {spec}").column(0)[0].as_py()
    except (duckdb.Error, RiskConsoleError):
        raise RiskConsoleError(f"--by {spec}: '{column}' is not numeric; segment by it without ':N'") from None
    edges = sorted(set(e for e in (edges or []) if e is not None))
    value = fill("CAST(:c AS DOUBLE)", c=ident(column))
    ifs, low = [], None
    for edge in edges:
        label = f"{_num(low) if low is not None else '-inf'} … {_num(edge)}"
        ifs.append(exp.If(this=fill(":v < :e", v=value, e=lit(edge)), true=lit(f"{len(ifs) + 1:02d}: {label}")))
        low = edge
    last = f"{len(ifs) + 1:02d}: {_num(low) if low is not None else '-inf'} … +inf"
    return exp.Case(ifs=[exp.If(this=fill(":v IS NULL", v=value), true=lit("(missing)")), *ifs], default=lit(last))


def _num(value: float) -> str:
    return f"{value:,.4g}"


def segment_rows(g: Groups, action: np.ndarray, business: Business) -> list[dict]:
    """The main metrics per segment, largest segments first."""
    if g.segment is None:
        return []
    names, counts = np.unique(g.segment.astype(str), return_counts=True)
    if len(names) > MAX_SEGMENTS:
        raise RiskConsoleError(f"--by: {len(names):,} segments is too many (at most {MAX_SEGMENTS}); "
                               "bucket a numeric column with COLUMN:N")
    rows = []
    for name in names:
        keep = g.segment == name
        part = replace(g, day=g.day[keep], label=g.label[keep], hits=g.hits[keep], count=g.count[keep],
                       amount=g.amount[keep], segment=None)
        metrics = overall(part, action[keep], business)
        rows.append({"segment": str(name), **{k: metrics[k] for k in SEGMENT_KEYS}})
    if all(re.match(r"^\d\d: |^\(missing\)$", r["segment"]) for r in rows):  # quantile buckets: in order
        return sorted(rows, key=lambda r: r["segment"])
    return sorted(rows, key=lambda r: (-r["population"], r["segment"]))


def compare_segments(candidate_rows: list[dict], baseline_rows: list[dict]) -> list[dict]:
    """Per segment: both sides' main metrics, the deltas, and where the candidate is worse."""
    base = {r["segment"]: r for r in baseline_rows}
    out = []
    for row in candidate_rows:
        other = base.get(row["segment"], {})
        delta = {k: (row[k] - other[k]) if row.get(k) is not None and other.get(k) is not None else None
                 for k in ("precision", "recall", "net_benefit", "review_cases", "fp")}
        worse = [k for k in ("net_benefit", "recall", "precision") if delta[k] is not None and delta[k] < 0]
        out.append({"segment": row["segment"], "population": row["population"],
                    "candidate": row, "baseline": other, "delta": delta, "worse_on": worse})
    return out
