"""The console's warm path to the outcome groups (DESIGN §6.2): what `outcomes.run_outcomes` returns, from cached arrays.

The backtest runs one more grouped SQL pass over the population for the outcomes production hid. A slider move in the
console need not: each event's observability class and 1/propensity are read ONCE per evaluator (window,
population, data version), the evaluator already holds each rule condition's rows, and the groups by (day, label,
class, rule mask) are then built in numpy over only the events some rule holds on, the rest coming from per-cell
totals (as `Evaluator._collapse` does). Groups are cached per set of conditions, so an action flip, a rule switched
off or a reorder costs nothing more.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
from sqlglot import exp

from riskconsole.outcomes import Outcomes, observability_class
from riskconsole.sqlbuild import alias
from riskconsole.strategy import CompiledStrategy, source

MASK_BITS = 40  # conditions packed into one hashed key; more fall back to np.unique over rows
MAX_CACHED = 32  # outcome groups kept per evaluator (one per set of conditions)
CLASSES = 3


class OutcomeCells:
    """Per-event observability class of one evaluator's population (1 byte an event), the explored events'
    1/propensity (sparse: they are few), and per-cell totals of every summed value."""

    def __init__(self, evaluator, compiled: CompiledStrategy) -> None:
        cls, inverse = observability_class(evaluator.dataset)
        query = exp.select("_pos", alias(cls, "cls"), alias(inverse, "ipw")).from_(
            source(compiled, evaluator.frame).subquery("src"))
        data = evaluator._query(evaluator._where(query, compiled).order_by("_pos"), compiled.name)
        if not np.array_equal(data["_pos"].astype(np.int64), evaluator.pos):
            raise RuntimeError("outcome cells: the population differs from the evaluator's")  # a bug, never data
        self.evaluator, self.days = evaluator, evaluator.days
        self.cls = data["cls"].astype(np.int8)
        weight = np.nan_to_num(data["ipw"].astype(np.float64))
        self.explored = np.flatnonzero(weight != 0)
        self.explored_weight = weight[self.explored]
        everyone = np.arange(len(self.cls))
        cell, values = self._cells(everyone), self._values(everyone)
        cells = len(evaluator.cell_n) * CLASSES
        self.cell_n = np.bincount(cell, minlength=cells).astype(np.int64)
        self.cell_v = [np.bincount(cell, weights=v, minlength=cells) for v in values]
        self._cache: OrderedDict[tuple, Outcomes] = OrderedDict()
        self._lock = threading.Lock()

    def _cells(self, rows: np.ndarray) -> np.ndarray:
        """(day, label, class) cell of each row: the evaluator's (day, label) cell x 3 + class."""
        return self.evaluator.cell[rows].astype(np.int64) * CLASSES + self.cls[rows]

    def _values(self, rows: np.ndarray) -> list[np.ndarray]:
        """amount, its positive part, 1/propensity and 1/propensity x amount of each (sorted) row, each rounded to 6
        decimals as the SQL pass sums it (`money_sum`: DECIMAL(38, 6)), else 1/propensity x amount of many events
        drifts from it (1e-7 relative at 600 events)."""
        amount = self.evaluator.amount[rows]
        weight = np.zeros(len(rows))
        at = np.searchsorted(rows, self.explored)
        inside = at < len(rows)
        inside[inside] = rows[at[inside]] == self.explored[inside]
        weight[at[inside]] = self.explored_weight[inside]
        return [np.round(v, 6) for v in (amount, np.maximum(amount, 0), weight, weight * amount)]

    def outcomes(self, key: tuple, columns) -> Outcomes:
        """Outcome groups where condition i holds on the population rows `columns()[i]` (cached by `key`)."""
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        found = self._group(columns())
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return found

    def _group(self, columns: list[np.ndarray]) -> Outcomes:
        n_rules = len(columns)
        seen = np.zeros(len(self.cls), dtype=bool)
        for rows in columns:
            seen[rows] = True
        union = np.flatnonzero(seen)
        rank = np.empty(len(self.cls), dtype=np.int64)
        rank[union] = np.arange(len(union))
        hits = np.zeros((len(union), n_rules), dtype=bool)
        for i, rows in enumerate(columns):
            hits[rank[rows], i] = True
        union_cell, union_values = self._cells(union), self._values(union)
        if n_rules <= MASK_BITS:
            pattern = hits.astype(np.int64) @ (np.int64(1) << np.arange(n_rules, dtype=np.int64)) if n_rules \
                else np.zeros(len(union), dtype=np.int64)
            codes, uniques = pd.factorize(pattern | (union_cell << MASK_BITS))
            codes, cell = np.asarray(codes, dtype=np.int64), uniques >> MASK_BITS
            g_hits = ((uniques[:, None] >> np.arange(n_rules, dtype=np.int64)) & 1).astype(bool)
        else:
            uniques, codes = np.unique(np.column_stack([union_cell, hits]), axis=0, return_inverse=True)
            codes, cell, g_hits = codes.reshape(-1), uniques[:, 0], uniques[:, 1:].astype(bool)
        groups = len(cell)
        count = np.bincount(codes, minlength=groups).astype(np.int64)
        sums = [np.bincount(codes, weights=v, minlength=groups) for v in union_values]
        # the events no condition holds on: per-cell totals minus the union's
        left_n = self.cell_n - np.bincount(union_cell, minlength=len(self.cell_n))
        left = [t - np.bincount(union_cell, weights=v, minlength=len(self.cell_n))
                for t, v in zip(self.cell_v, union_values)]
        rest = np.flatnonzero(left_n > 0)
        cell = np.concatenate([cell, rest])
        g_hits = np.concatenate([g_hits, np.zeros((len(rest), n_rules), dtype=bool)])
        count = np.concatenate([count, left_n[rest]])
        amount, pos, weight, weighted = (np.concatenate([s, l[rest]]) for s, l in zip(sums, left))
        day, label = cell // (3 * CLASSES), (cell // CLASSES) % 3 - 1
        return Outcomes(day.astype(np.int64), label.astype(np.int8), g_hits, (cell % CLASSES).astype(np.int8), count,
                        amount, pos, weight, weighted, self.days)


def warm_outcomes(evaluator, compiled: CompiledStrategy) -> Outcomes:
    """The outcome groups of a strategy from the evaluator's cached rule rows (what `run_outcomes` returns)."""
    from riskconsole.evaluator import key_of

    cells = evaluator.companion("outcomes", lambda ev: OutcomeCells(ev, compiled))
    keys = [key_of(r.condition) for r in compiled.rules]
    unique = tuple(sorted(set(keys)))
    by_key = dict(zip(keys, (r.condition for r in compiled.rules)))
    o = cells.outcomes(unique, lambda: [evaluator.rows(by_key[k], compiled, k) for k in unique])
    return o.take(np.ones(len(o.count), dtype=bool), [unique.index(k) for k in keys])
