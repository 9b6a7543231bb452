"""Drift of features and detector scores against the reference: PSI and Jensen–Shannon, per day and over the window.

Bins come from the reference: deciles of a numeric column (a missing value is its own bin), the nine
most frequent values of a text column plus "other". One SQL pass (`coded`) returns every event's bin of every
column (a small integer each); the counts per day and bin are then numpy `bincount`s.

PSI = Σ (q − p)·ln(q / p) over bins, with p the reference share and q the window's (or the day's),
each floored at `EPS` so an empty bin is finite. PSI grows with the sample's noise as bins empty out,
so the second test is the Jensen–Shannon distance (base 2, bounded in [0, 1], stable for any sample
size, the test Evidently uses above 1,000 rows). A column drifts when PSI ≥ 0.2 (the industry's "major
shift") or JS ≥ 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from sqlglot import exp

from riskconsole.backtest import Window, arrow_column, day_index, numbers, population_filters, run_query
from riskconsole.sqlbuild import alias, fill, ident, lit
from riskconsole.strategy import source

EPS = 1e-4
PSI_DRIFT, JS_DRIFT = 0.2, 0.1
DECILES = [i / 10 for i in range(1, 10)]
TOP_VALUES = 9
TOP_MOVERS = 5
SAMPLE = 50_000  # reference events the bins are learned on
POS = "_pos"  # the event frame's row number over (time, id): the same rows on every engine
NUMERIC = ("INT", "INTEGER", "DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "REAL", "UBIGINT",
           "UINTEGER", "USMALLINT", "UTINYINT")  # a BOOLEAN is binned as text: true / false


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    return float(psi_rows(np.asarray(reference), np.asarray(current)[None, :])[0])


def psi_rows(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """`psi` of the reference against each row of `current` (days x bins), in one pass."""
    p = np.maximum(np.asarray(reference, float) / max(np.sum(reference), 1), EPS)
    totals = np.maximum(current.sum(axis=1, keepdims=True), 1)
    q = np.maximum(current / totals, EPS)
    return np.sum((q - p) * np.log(q / p), axis=1)


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


def drift_columns(compiled, frame, dataset, extra: list[str]) -> tuple[list[str], list[str]]:
    """(columns, their kinds): every visible feature, the `extra` columns and every fresh detector score. An entity
    frame's columns are its level's features (its dataset view lists none), but for its key, id and time."""
    roles = dataset.columns
    skip = {roles.id, roles.time, *roles.entities}
    features = [f.name for f in dataset.features if f.name in frame.visible] if frame.weight is None else frame.visible
    scores = [d for d in frame.scores if d not in frame.stale and d not in frame.columns]
    names = [c for c in dict.fromkeys([*features, *extra]) if c in frame.columns and c not in skip
             and not frame.columns[c].upper().startswith(("TIMESTAMP", "DATE", "TIME"))]  # a time only grows
    return names + scores, ["feature"] * len(names) + ["score"] * len(scores)


def _where(query: exp.Select, conditions: list[exp.Expression]) -> exp.Select:
    """`query` (built by the caller, not shared) with every condition ANDed in one builder call: the conditions are
    copied (callers share them between queries), the query is not (a copy per condition was ~1 s of a 1M monitor)."""
    return query.where(*[c.copy() for c in conditions], copy=False) if conditions else query


@dataclass(frozen=True)
class Binned:
    """One column's bins, learned on the reference: `sql` gives each event's bin (0 = missing), `labels` name them;
    a numeric column has its `cuts` (bin j >= 1 holds cuts[j-2] <= value < cuts[j-1]), a text column its `values`
    (bin j in 1..len(values) is values[j-1]; the last bin is every other value)."""

    column: str
    sql: exp.Expression
    labels: list[str]
    cuts: list[float] | None = None
    values: list[str] | None = None
    boolean: bool = False

    def condition(self, j: int) -> tuple[str, exp.Expression] | None:
        """(text, SQL condition) of bin j, or None for the missing and the "other" bins (no rule names them)."""
        c = ident(self.column)
        if j == 0:
            return None
        if self.cuts is not None:
            lo = self.cuts[j - 2] if j >= 2 else None
            hi = self.cuts[j - 1] if j - 1 < len(self.cuts) else None
            parts = ([fill(":c >= :v", c=c, v=lit(lo))] if lo is not None else []) + \
                    ([fill(":c < :v", c=c, v=lit(hi))] if hi is not None else [])
            if lo is not None and hi is not None:
                text = f"{_num(lo)} ≤ {self.column} < {_num(hi)}"
            elif lo is not None:
                text = f"{self.column} ≥ {_num(lo)}"
            elif hi is not None:
                text = f"{self.column} < {_num(hi)}"
            else:
                return None
            return text, exp.and_(*parts)
        if j > len(self.values or []):
            return None
        value = self.values[j - 1]
        literal = lit(value == "true") if self.boolean else lit(value)
        return f"{self.column} = {value}", exp.EQ(this=c, expression=literal)


def _bins(con, joined, frame, dataset, reference: Window, columns: list[str], ref_rows: int | None = None
          ) -> list[Binned]:
    """Per column: the SQL giving each event's bin, and the bins' labels (learned on the reference). Numeric cuts
    are the reference's deciles taken as data values (`quantile_disc`), so an integer column cuts at integers.
    `con` is DuckDB's cursor or another engine (`backtest.run_query`): both passes are portable SQL.

    With `ref_rows` (the reference's size) above `SAMPLE`, the bins are learned on a fixed sample of about `SAMPLE`
    reference events, chosen by `_pos` (the row number over time and id, the same on every engine; an entity frame,
    which has none and runs on DuckDB only, by a hash of its id): a decile's rank
    is then off by at most ~0.4% (3 standard errors), and sorting dozens of columns of the whole reference was most
    of the monitor's time."""
    src = source(joined, frame).subquery("src")
    ref = population_filters(joined, dataset, reference) + frame.counted()  # an entity frame: not its money rows
    if ref_rows and ref_rows > SAMPLE:  # a multiplicative hash of _pos: spread evenly over the reference's days
        key = fill("_pos * 40503") if POS in frame.columns else fill("hash(:i)", i=ident(dataset.columns.id))
        ref = [*ref, fill(":h % 1000003 < :k", h=key, k=lit(int(1000003 * SAMPLE / ref_rows)))]
    types = {**frame.columns, **{d: "DOUBLE" for d in frame.scores}}
    numeric = [c for c in columns if types.get(c, "").split("(")[0] in NUMERIC]
    edges = {}
    if numeric:
        query = _where(exp.select(*[alias(fill("quantile_disc(CAST(:c AS DOUBLE), :p)", c=ident(c), p=exp.Array(
            expressions=[lit(q) for q in DECILES])), f"q{i}") for i, c in enumerate(numeric)]).from_(src), ref)
        row = run_query(con, query, joined.name).to_pylist()[0]
        edges = {c: row[f"q{i}"] for i, c in enumerate(numeric)}
    texts = [c for c in columns if c not in edges]
    tops = {}
    if texts:  # every text column's most frequent reference values (ties by value) in one query
        for i, value, _ in _top_values(con, joined.name, src, ref, texts):
            tops.setdefault(texts[i], []).append(value)
    out = []
    for column in columns:
        if column in edges:
            cuts = sorted({float(e) for e in edges[column] or [] if e is not None})
            value = fill("CAST(:c AS DOUBLE)", c=ident(column))
            node: exp.Expression = _bucket(value, cuts, 0, len(cuts))
            labels = ["(missing)"] + [f"{_num(lo)} … {_num(hi)}" for lo, hi in
                                      zip(["-inf", *cuts], [*cuts, "+inf"])]
            binned = Binned(column, node, labels, cuts=cuts)
        else:
            top = tops.get(column, [])
            value = fill("CAST(:c AS VARCHAR)", c=ident(column))
            node = exp.Case(ifs=[exp.If(this=fill(":v = :t", v=value, t=lit(t)), true=lit(i + 1))
                                 for i, t in enumerate(top)], default=lit(len(top) + 1))
            binned = Binned(column, node, ["(missing)", *top, "(other)"], values=top,
                            boolean=types.get(column, "").startswith("BOOLEAN"))
        out.append(replace(binned, sql=fill("CASE WHEN :v IS NULL THEN 0 ELSE :n END", v=value, n=binned.sql)))
    return out


def _top_values(con, strategy: str, src: exp.Subquery, ref: list[exp.Expression], texts: list[str]) -> list[tuple]:
    """(column index, value, count) of each text column's `TOP_VALUES` most frequent non-NULL reference values
    (cast to text), most frequent first, ties by value: one scan grouped by GROUPING SETS, a set per column (a GROUP
    BY per column scanned the joined frame once each, ~1 s of a 1M monitor), the top kept by row_number.

    In column k's set every other column is grouped out (NULL), so `coalesce` of them all is column k's value; its
    NULL group is dropped after counting, which leaves the other groups' counts as a `WHERE k IS NOT NULL` would."""
    names = [f"t{i}" for i in range(len(texts))]
    cast = _where(exp.select(*[alias(fill("CAST(:c AS VARCHAR)", c=ident(c)), t) for c, t in zip(texts, names)]
                             ).from_(src.copy(), copy=False), ref)
    which = exp.Case(ifs=[exp.If(this=fill("GROUPING(:t) = 0", t=ident(t)), true=lit(i)) for i, t in enumerate(names)])
    grouped = exp.select(alias(which, "i"), alias(exp.func("coalesce", *[ident(t) for t in names]), "v"),
                         alias(exp.func("count", exp.Star()), "n")).from_(cast.subquery("c"), copy=False)
    grouped.set("group", exp.Group(grouping_sets=[exp.GroupingSets(expressions=[exp.Tuple(expressions=[ident(t)])
                                                                                 for t in names])]))
    ranked = exp.select("i", "v", "n", alias(fill("row_number() OVER (PARTITION BY i ORDER BY n DESC, v)"), "r")
                        ).from_(grouped.subquery("g")).where(fill("v IS NOT NULL"))
    query = exp.select("i", "v", "n").from_(ranked.subquery("t")).where(fill("r <= :k", k=lit(TOP_VALUES)))
    rows = run_query(con, query.order_by("i", "r"), strategy)
    return list(zip(*(rows.column(c).to_pylist() for c in ("i", "v", "n"))))


def _bucket(value: exp.Expression, cuts: list[float], lo: int, hi: int) -> exp.Expression:
    """1 + the number of cuts <= value, as a binary search of nested CASEs (4 comparisons for deciles, not 9)."""
    if lo == hi:
        return lit(lo + 1)
    mid = (lo + hi) // 2
    return exp.Case(ifs=[exp.If(this=fill(":v >= :e", v=value, e=lit(cuts[mid])),
                                true=_bucket(value, cuts, mid + 1, hi))], default=_bucket(value, cuts, lo, mid))


def _num(value) -> str:
    return value if isinstance(value, str) else f"{value:,.4g}"


@dataclass
class Coded:
    """Every event of the span as small integers: its day (index into `days`), each column's bin, and whether the
    strategy allows it. One SQL pass; drift and attack discovery both read it."""

    days: list[date]
    day: np.ndarray
    bins: list[Binned]
    codes: dict[str, np.ndarray]
    allowed: np.ndarray
    who: np.ndarray | None = None
    extra: dict[str, np.ndarray] | None = None


def coded(con, compiled, frame, dataset, span: Window, reference: Window, days: list[date], columns: list[str],
          allowed: exp.Expression | None = None, who: str | None = None, ref_rows: int | None = None,
          extra: dict[str, exp.Expression] | None = None) -> Coded:
    """Bin every column on the reference, then fetch each event's day, bins, (with `allowed`) decision, (with
    `who`) entity and (with `extra`) small integer columns, in one pass (`con`: DuckDB's cursor or another engine)."""
    joined = replace(compiled, detectors=list(dict.fromkeys(
        [*compiled.detectors, *[c for c in columns if c in frame.scores]])))
    bins = _bins(con, joined, frame, dataset, reference, columns, ref_rows)
    query = _where(exp.select(alias(fill("CAST(:t AS DATE)", t=ident(dataset.columns.time)), "day"),
                              *[alias(fill("CAST(:b AS UTINYINT)", b=b.sql), f"b{i}") for i, b in enumerate(bins)],
                              *([alias(fill("CAST(:a AS UTINYINT)", a=allowed), "allowed")]
                                if allowed is not None else []),
                              *([alias(fill("hash(:w)", w=ident(who)), "who")] if who else []),
                              *[alias(fill("CAST(:e AS TINYINT)", e=e), f"x_{k}") for k, e in (extra or {}).items()],
                              *([ident(POS)] if (ordered := who and POS in frame.columns) else [])
                              ).from_(source(joined, frame).subquery("src"), copy=False),
                   population_filters(joined, dataset, span) + frame.counted())
    table = run_query(con, query, compiled.name)
    # discovery keeps an entity's first event of a day: the lowest _pos, whatever order an engine scans in (an
    # entity frame, DuckDB only, is in time order). Sorted here: an ORDER BY sorting every column of 1M rows was
    # 0.6 s of a 1M monitor.
    order = _in_order(numbers(table.column(POS), np.int64)) if ordered else (lambda values: values)

    def column(name: str, dtype) -> np.ndarray:
        return order(numbers(table.column(name), dtype))  # numbers: no pandas import

    day = order(day_index(arrow_column(table.column("day")), np.datetime64(days[0], "D")))
    codes = {b.column: column(f"b{i}", np.int32) for i, b in enumerate(bins)}
    ok = column("allowed", bool) if allowed is not None else np.ones(day.size, bool)
    return Coded(days, day, bins, codes, ok, column("who", np.uint64) if who else None,
                 {k: column(f"x_{k}", np.int64) for k in extra or {}})


def _in_order(pos: np.ndarray):
    """A function putting an array of the rows in `pos` order (`pos` unique). DuckDB's threads return sorted runs
    of whole row groups interleaved, so the permutation is a few blocks of consecutive rows: copied as slices (~1 ms
    a column of 1M rows) rather than indexed row by row (5-10 ms)."""
    order = np.argsort(pos, kind="stable")
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if not order.size:
        return lambda values: values
    if breaks.size > 1000:
        return lambda values: values[order]
    starts, ends = order[np.r_[0, breaks]], order[np.r_[breaks - 1, order.size - 1]] + 1
    return lambda values: np.concatenate([values[a:b] for a, b in zip(starts, ends)])


def drift(coded_rows: Coded, columns: list[str], kinds: list[str], reference: Window, window: Window) -> list[dict]:
    """Every feature's and detector score's drift, sorted by the window's PSI (top movers with their bins)."""
    days, day = coded_rows.days, coded_rows.day
    labels_of = {b.column: b.labels for b in coded_rows.bins}
    all_days = np.array(days, dtype="datetime64[D]")
    in_ref = (all_days >= np.datetime64(reference.start.date())) & (all_days < np.datetime64(reference.end.date()))
    in_win = (all_days >= np.datetime64(window.start.date())) & (all_days < np.datetime64(window.end.date()))
    rows = []
    for column, kind in zip(columns, kinds):
        labels = labels_of[column]
        b = coded_rows.codes[column]
        counts = np.bincount(day * len(labels) + b, minlength=len(days) * len(labels)).reshape(len(days), len(labels))
        ref, cur = counts[in_ref].sum(axis=0), counts[in_win].sum(axis=0)
        shown = np.flatnonzero(in_win & (counts.sum(axis=1) > 0))
        daily = [{"day": days[d].isoformat(), "psi": round(float(v), 6)}
                 for d, v in zip(shown, psi_rows(ref, counts[shown]))]
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
