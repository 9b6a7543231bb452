"""Drift of features and detector scores against the reference: PSI and Jensen–Shannon, per day and over the window.

Bins come from the reference: deciles of a numeric column (a missing value is its own bin), the nine
most frequent values of a text column plus "other". One SQL pass returns every event's bin of every
column (a small integer each); the counts per day and bin are then numpy `bincount`s.

PSI = Σ (q − p)·ln(q / p) over bins, with p the reference share and q the window's (or the day's),
each floored at `EPS` so an empty bin is finite. PSI grows with the sample's noise as bins empty out,
so the second test is the Jensen–Shannon distance (base 2, bounded in [0, 1], stable for any sample
size, the test Evidently uses above 1,000 rows). A column drifts when PSI ≥ 0.2 (the industry's "major
shift") or JS ≥ 0.1.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
from sqlglot import exp

from riskconsole.backtest import Window, population_filters
from riskconsole.sqlbuild import alias, fill, ident, lit, render
from riskconsole.strategy import source

EPS = 1e-4
PSI_DRIFT, JS_DRIFT = 0.2, 0.1
DECILES = [i / 10 for i in range(1, 10)]
TOP_VALUES = 9
TOP_MOVERS = 5
NUMERIC = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "REAL", "UBIGINT",
           "UINTEGER", "USMALLINT", "UTINYINT", "BOOLEAN")


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.maximum(np.asarray(reference, float) / max(np.sum(reference), 1), EPS)
    q = np.maximum(np.asarray(current, float) / max(np.sum(current), 1), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def js_terms(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Each bin's term of the Jensen–Shannon divergence (natural log) between shares p and q."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p > 0, p * np.log(p / m), 0.0)
        b = np.where(q > 0, q * np.log(q / m), 0.0)
    return 0.5 * (a + b)


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) of two count vectors (scipy's `jensenshannon`, without the
    2.7 s import of scipy.spatial)."""
    if np.sum(reference) == 0 or np.sum(current) == 0:
        return float("nan")
    p, q = np.asarray(reference, float) / np.sum(reference), np.asarray(current, float) / np.sum(current)
    return float(np.sqrt(max(js_terms(p, q).sum(), 0.0) / np.log(2)))


def drift_columns(compiled, frame, dataset, extra: list[str]) -> tuple[list[str], list[str], object]:
    """(columns, their kinds, the compiled strategy joined with every fresh detector score)."""
    roles = dataset.columns
    skip = {roles.id, roles.time, *roles.entities}
    features = [f.name for f in dataset.features if f.name in frame.visible]
    scores = [d for d in frame.scores if d not in frame.stale and d not in frame.columns]
    names = [c for c in dict.fromkeys([*features, *extra]) if c in frame.columns and c not in skip]
    joined = replace(compiled, detectors=list(dict.fromkeys([*compiled.detectors, *scores])))
    return names + scores, ["feature"] * len(names) + ["score"] * len(scores), joined


def _where(query: exp.Select, conditions: list[exp.Expression]) -> exp.Select:
    for condition in conditions:
        query = query.where(condition)
    return query


def _bins(con, joined, frame, dataset, reference: Window, columns: list[str]) -> list[tuple[exp.Expression, list]]:
    """Per column: the SQL giving each event's bin, and the bins' labels (learned on the reference)."""
    src = source(joined, frame).subquery("src")
    ref = population_filters(joined, dataset, reference)
    types = {**frame.columns, **{d: "DOUBLE" for d in frame.scores}}
    numeric = [c for c in columns if types.get(c, "").split("(")[0] in NUMERIC]
    edges = {}
    if numeric:
        query = _where(exp.select(*[fill("quantile_cont(CAST(:c AS DOUBLE), :p)", c=ident(c),
                                         p=exp.Array(expressions=[lit(q) for q in DECILES])) for c in numeric]
                                  ).from_(src), ref)
        edges = dict(zip(numeric, con.execute(render(query)).fetchall()[0]))
    out = []
    for column in columns:
        if column in edges:
            cuts = sorted({float(e) for e in edges[column] or [] if e is not None})
            value = fill("CAST(:c AS DOUBLE)", c=ident(column))
            node: exp.Expression = _bucket(value, cuts, 0, len(cuts))
            labels = ["(missing)"] + [f"{_num(lo)} … {_num(hi)}" for lo, hi in
                                      zip(["-inf", *cuts], [*cuts, "+inf"])]
        else:
            query = _where(exp.select(fill("CAST(:c AS VARCHAR)", c=ident(column)), fill("count(*)")).from_(src), ref)
            query = query.where(fill(":c IS NOT NULL", c=ident(column))).group_by(lit(1)).order_by(
                exp.Ordered(this=lit(2), desc=True), lit(1)).limit(TOP_VALUES)
            top = [v for v, _ in con.execute(render(query)).fetchall()]
            value = fill("CAST(:c AS VARCHAR)", c=ident(column))
            node = exp.Case(ifs=[exp.If(this=fill(":v = :t", v=value, t=lit(t)), true=lit(i + 1))
                                 for i, t in enumerate(top)], default=lit(len(top) + 1))
            labels = ["(missing)", *top, "(other)"]
        out.append((fill("CASE WHEN :v IS NULL THEN 0 ELSE :n END", v=value, n=node), labels))
    return out


def _bucket(value: exp.Expression, cuts: list[float], lo: int, hi: int) -> exp.Expression:
    """1 + the number of cuts <= value, as a binary search of nested CASEs (4 comparisons for deciles, not 9)."""
    if lo == hi:
        return lit(lo + 1)
    mid = (lo + hi) // 2
    return exp.Case(ifs=[exp.If(this=fill(":v >= :e", v=value, e=lit(cuts[mid])),
                                true=_bucket(value, cuts, mid + 1, hi))], default=_bucket(value, cuts, lo, mid))


def _num(value) -> str:
    return value if isinstance(value, str) else f"{value:,.4g}"


def drift(con, compiled, frame, dataset, span: Window, reference: Window, window: Window, days: list[date],
          extra: list[str] | None = None) -> list[dict]:
    """Every feature's and detector score's drift, sorted by the window's PSI (top movers with their bins)."""
    columns, kinds, joined = drift_columns(compiled, frame, dataset, extra or [])
    if not columns:
        return []
    bins = _bins(con, joined, frame, dataset, reference, columns)
    query = _where(exp.select(alias(fill("CAST(:t AS DATE)", t=ident(dataset.columns.time)), "day"),
                              *[alias(b, f"b{i}") for i, (b, _) in enumerate(bins)]
                              ).from_(source(joined, frame).subquery("src")),
                   population_filters(joined, dataset, span))
    table = con.sql(render(query)).to_arrow_table()
    first = np.datetime64(days[0], "D")
    day = (table.column("day").to_numpy().astype("datetime64[D]") - first).astype(np.int64)
    all_days = np.array(days, dtype="datetime64[D]")
    in_ref = (all_days >= np.datetime64(reference.start.date())) & (all_days < np.datetime64(reference.end.date()))
    in_win = (all_days >= np.datetime64(window.start.date())) & (all_days < np.datetime64(window.end.date()))
    rows = []
    for i, (column, kind) in enumerate(zip(columns, kinds)):
        labels = bins[i][1]
        b = table.column(f"b{i}").to_numpy().astype(np.int64)
        counts = np.bincount(day * len(labels) + b, minlength=len(days) * len(labels)).reshape(len(days), len(labels))
        ref, cur = counts[in_ref].sum(axis=0), counts[in_win].sum(axis=0)
        daily = [{"day": days[d].isoformat(), "psi": round(psi(ref, counts[d]), 6)}
                 for d in np.flatnonzero(in_win) if counts[d].sum() > 0]
        worst = max(daily, key=lambda r: r["psi"]) if daily else None
        value, js = psi(ref, cur), js_distance(ref, cur)
        rows.append({"column": column, "kind": kind, "psi": round(value, 6),
                     "js_distance": round(js, 6) if np.isfinite(js) else None,
                     "max_daily_psi": worst["psi"] if worst else None, "max_day": worst["day"] if worst else None,
                     "drifted": bool(value >= PSI_DRIFT or (np.isfinite(js) and js >= JS_DRIFT)),
                     "bins": _moved(labels, ref, cur), "daily": daily})
    rows.sort(key=lambda r: (-r["psi"], r["column"]))
    for row in rows[TOP_MOVERS:]:
        row["bins"] = []
    return rows


def _moved(labels: list[str], ref: np.ndarray, cur: np.ndarray) -> list[dict]:
    """The bins whose share moved most, with both shares."""
    p, q = ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)
    order = np.argsort(-np.abs(q - p))[:TOP_MOVERS]
    return [{"bin": labels[j], "reference": round(float(p[j]), 6), "window": round(float(q[j]), 6),
             "change": round(float(q[j] - p[j]), 6)} for j in order if ref[j] + cur[j] > 0]
