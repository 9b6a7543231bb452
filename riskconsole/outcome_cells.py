"""The console's warm path to the outcome groups (DESIGN §6.2): what `outcomes.run_outcomes` returns, from cached arrays.

The backtest runs one more grouped SQL pass over the population for the outcomes production hid. A console answer
need not: each event's observability class and 1/propensity are read ONCE per evaluator (window, population, data
version), and the groups by (day, label, class, which conditions hold) are kept for the configuration last asked,
with each event's conditions as a bit pattern. The next configuration is reached by toggling one bit on only the
rows whose membership changed, adding their sums to their new groups and taking them from their old ones:

- a threshold param moved (its condition answered by the evaluator's threshold table): the table's sorted rows
  between the old and the new threshold;
- a one-rule edit: the symmetric difference of the old and the new condition's rows;
- a condition added or dropped: its rows.

Sums are integers (counts; money in millionths, as the SQL pass sums DECIMAL(38, 6)), so taking rows out and putting
them back is exact in any order: the groups never drift from a fresh pass. Outcome groups are cached per set of
conditions too, so an action flip, a rule switched off or a reorder costs nothing more.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter, OrderedDict

import numpy as np
from sqlglot import exp

from riskconsole.evaluator import _factorize, key_of
from riskconsole.outcomes import Outcomes, observability_class
from riskconsole.sqlbuild import alias
from riskconsole.strategy import CompiledStrategy, source

SLOTS = 32  # conditions held as bits of each event's pattern; more fall back to np.unique over rows
MAX_CACHED = 32  # outcome groups kept per evaluator (one per set of conditions)
CLASSES = 3
SCALE = 1_000_000  # money in millionths: DECIMAL(38, 6), as the SQL pass sums it
LOW_BITS = 26
LOW_MASK = (1 << LOW_BITS) - 1
CHUNK = 1 << 20


class OutcomeCells:
    """Per-event observability class of one evaluator's population (1 byte an event), the explored events'
    1/propensity (sparse: they are few), and the outcome groups of the configuration last asked for, with each
    event's bit pattern of the conditions that hold on it (4 bytes an event)."""

    def __init__(self, evaluator, compiled: CompiledStrategy) -> None:
        cls, inverse = observability_class(evaluator.dataset, evaluator.frame.columns)
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
        cells = len(evaluator.cell_n) * CLASSES
        if cells >= 1 << 31:
            raise RuntimeError("outcome cells: 2^31 (day, label, class) cells or more")  # ~240,000 years of days
        # the groups of no condition: per-cell totals, summed a chunk of events at a time (few MB at any size). A
        # money column is summed in one float64 bincount, exact while every partial sum stays below 2^53; until
        # its total is known, and past that (huge amounts), in two halves of its bits
        self._split = [True] * 4
        sums, magnitude = np.zeros((cells, 5), dtype=np.int64), np.zeros(4)
        for start in range(0, len(self.cls), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(self.cls)))
            cell = self._cells(rows)
            sums[:, 0] += np.bincount(cell, minlength=cells)
            for j, v in enumerate(self._values(rows)):
                sums[:, j + 1] += self._sum(cell, v, cells, j)
                magnitude[j] += float(np.abs(v).sum())
        self._split = [m >= 2.0 ** 52 for m in magnitude]
        self.cells = cells
        self._keys = np.flatnonzero(sums[:, 0]).astype(np.int64) << SLOTS  # pattern 0: no condition holds
        self._sums = sums[sums[:, 0] > 0]
        self._pattern = np.zeros(len(self.cls), dtype=np.uint32)
        self._slots: dict[str, int] = {}   # condition key -> its bit in the pattern
        self._spans: dict[str, tuple] = {}  # condition key -> (weakref to a threshold table, lo, hi) it was toggled by
        self._cache: OrderedDict[tuple, Outcomes] = OrderedDict()
        self._lock = threading.Lock()
        self.toggles = Counter()  # how each condition change was made: threshold / edit / drop / add (tests, bench)

    def _cells(self, rows: np.ndarray) -> np.ndarray:
        """(day, label, class) cell of each row: the evaluator's (day, label) cell x 3 + class."""
        return self.evaluator.cell[rows].astype(np.int64) * CLASSES + self.cls[rows]

    def _values(self, rows: np.ndarray) -> list[np.ndarray]:
        """amount, its positive part, 1/propensity and 1/propensity x amount of each row, in millionths: what the SQL
        pass sums (`money_sum`: each value cast to DECIMAL(38, 6)), as int64."""
        amount = self.evaluator.amount[rows]
        weight = np.zeros(len(rows))
        if len(self.explored):
            at = np.minimum(np.searchsorted(self.explored, rows), len(self.explored) - 1)
            inside = self.explored[at] == rows
            weight[inside] = self.explored_weight[at[inside]]
        whole = np.rint(amount * SCALE).astype(np.int64)
        return [whole, np.maximum(whole, 0), np.rint(weight * SCALE).astype(np.int64),
                np.rint(weight * amount * SCALE).astype(np.int64)]

    def _sum(self, codes: np.ndarray, values: np.ndarray, size: int, column: int) -> np.ndarray:
        """Exact int64 sums of `values` per code."""
        if not self._split[column]:
            return np.bincount(codes, weights=values, minlength=size).astype(np.int64)
        low = np.bincount(codes, weights=values & LOW_MASK, minlength=size).astype(np.int64)
        return low + (np.bincount(codes, weights=values >> LOW_BITS, minlength=size).astype(np.int64) << LOW_BITS)

    # ------------------------------------------------------------ answers

    def outcomes(self, unique: tuple, rows_of) -> Outcomes:
        """Outcome groups where condition `unique[i]` holds on the population rows `rows_of(unique[i])` (cached by
        `unique`)."""
        with self._lock:
            found = self._cache.get(unique)
            if found is not None:
                self._cache.move_to_end(unique)
                return found
            if len(unique) <= SLOTS:
                try:
                    self._move_to(unique, rows_of)
                except BaseException:
                    self._clear()  # a toggle cut short leaves no half-updated groups behind
                    raise
                found = self._snapshot(unique)
        if found is None:
            found = self._group([rows_of(k) for k in unique])
        with self._lock:
            self._cache[unique] = found
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return found

    def _move_to(self, unique: tuple, rows_of) -> None:
        """Toggle the rows whose membership changes from the configuration held to the conditions `unique`."""
        ev, wanted = self.evaluator, set(unique)
        removed = [k for k in self._slots if k not in wanted]
        added = [k for k in unique if k not in self._slots]
        spans = {k: ev.span_of(k) for k in added}
        for new in added:  # a threshold moved: the rows between its two positions in the same sorted table
            span = spans[new]
            old = next((k for k in removed if span is not None and k in self._spans
                        and self._spans[k][0]() is span[0]), None)
            if old is not None:
                table, lo, hi = span
                _, was_lo, was_hi = self._spans[old]
                # one side of a threshold's span is the table's end: one of the two ranges is empty
                between = [table.rows[min(a, b):max(a, b)] for a, b in ((lo, was_lo), (hi, was_hi)) if a != b]
                self._replace(old, new, np.concatenate(between) if between else np.zeros(0, np.int32), span)
                self.toggles["threshold"] += 1
                removed.remove(old)
        added = [k for k in added if k not in self._slots]
        rows_of_new = {k: self._rows(k, spans[k], rows_of) for k in added}
        pairs = self._pairs(removed, rows_of_new)
        for old, new in pairs:  # one condition edited: the symmetric difference of its rows
            rows = rows_of_new[new]
            before = ev.cached_rows(old)
            if before is not None and len(before) + len(rows) < len(self._pattern) // 32:
                changed = np.setxor1d(before, np.sort(rows), assume_unique=True)
            else:
                mark = (self._pattern & np.uint32(1 << self._slots[old])) != 0
                mark[rows] = ~mark[rows]
                changed = np.flatnonzero(mark)
            self._replace(old, new, changed, spans[new])
            self.toggles["edit"] += 1
        paired = dict(pairs)
        for old in [k for k in removed if k not in paired]:
            rows = ev.cached_rows(old)
            if rows is None:
                rows = np.flatnonzero(self._pattern & np.uint32(1 << self._slots[old]))
            self._toggle(rows, self._slots[old])
            del self._slots[old]
            self._spans.pop(old, None)
            self.toggles["drop"] += 1
        for new in [k for k in added if k not in set(paired.values())]:
            bit = min(set(range(SLOTS)) - set(self._slots.values()))
            self._toggle(rows_of_new[new], bit)
            self._slots[new] = bit
            self._note_span(new, spans[new])
            self.toggles["add"] += 1

    def _pairs(self, removed: list[str], added: dict[str, np.ndarray]) -> list[tuple[str, str]]:
        """Which old condition each new one replaces: the pairs whose rows differ least first (an edited rule's
        rows are mostly its old rows; pairing it with another rule's condition would toggle both rules' rows —
        exact either way, only slower). The difference |old| + |new| - 2 |both| costs a gather over the new rows."""
        if len(removed) == 1 and len(added) == 1:
            return [(removed[0], next(iter(added)))]
        if not removed or not added:
            return []
        size = {}
        for old in removed:
            rows = self.evaluator.cached_rows(old)
            size[old] = len(rows) if rows is not None else int(np.count_nonzero(
                self._pattern & np.uint32(1 << self._slots[old])))
        costs = []
        for new, rows in added.items():
            bits = self._pattern[rows]
            for old in removed:
                both = int(np.count_nonzero(bits & np.uint32(1 << self._slots[old])))
                costs.append((size[old] + len(rows) - 2 * both, removed.index(old), old, new))
        pairs, olds, news = [], set(), set()
        for _, _, old, new in sorted(costs, key=lambda c: c[:2]):
            if old not in olds and new not in news:
                pairs.append((old, new))
                olds.add(old)
                news.add(new)
        return pairs

    def _rows(self, key: str, span, rows_of) -> np.ndarray:
        """A condition's rows: its span of a threshold table (unsorted, no sort needed), else the evaluator's."""
        if span is not None:
            table, lo, hi = span
            return table.rows[lo:hi]
        return rows_of(key)

    def _replace(self, old: str, new: str, changed: np.ndarray, span) -> None:
        bit = self._slots.pop(old)
        self._spans.pop(old, None)
        self._toggle(changed, bit)
        self._slots[new] = bit
        self._note_span(new, span)

    def _note_span(self, key: str, span) -> None:
        if span is not None:
            self._spans[key] = (weakref.ref(span[0]), span[1], span[2])

    def _toggle(self, rows: np.ndarray, bit: int) -> None:
        """Flip condition bit `bit` on `rows`: their sums leave their groups for the groups with the bit flipped."""
        if not len(rows):
            return
        flip = np.uint32(1 << bit)
        before = self._pattern[rows]
        key = (self._cells(rows) << SLOTS) | before.astype(np.int64)
        codes, uniques = _factorize(key)
        size = len(uniques)
        delta = np.column_stack([np.bincount(codes, minlength=size).astype(np.int64),
                                 *(self._sum(codes, v, size, j) for j, v in enumerate(self._values(rows)))])
        self._merge(np.concatenate([uniques, uniques ^ np.int64(flip)]), np.concatenate([-delta, delta]))
        self._pattern[rows] = before ^ flip

    def _merge(self, keys: np.ndarray, delta: np.ndarray) -> None:
        """Add `delta` to the groups of `keys` (new groups start at zero; emptied groups are dropped)."""
        at = np.searchsorted(self._keys, keys)
        known = at < len(self._keys)
        known[known] = self._keys[at[known]] == keys[known]
        if not known.all():
            grown = np.union1d(self._keys, keys[~known])
            sums = np.zeros((len(grown), self._sums.shape[1]), dtype=np.int64)
            sums[np.searchsorted(grown, self._keys)] = self._sums
            self._keys, self._sums = grown, sums
            at = np.searchsorted(self._keys, keys)
        np.add.at(self._sums, at, delta)
        empty = self._sums[:, 0] == 0
        if empty.any():
            if self._sums[empty].any():
                raise RuntimeError("outcome cells: a group without events has sums")  # a bug, never data
            self._keys, self._sums = self._keys[~empty], self._sums[~empty]

    def _snapshot(self, unique: tuple) -> Outcomes:
        """The groups held, as `Outcomes` with hit columns in the order of `unique`."""
        bits = np.array([self._slots[k] for k in unique], dtype=np.int64)
        pattern = self._keys & np.int64((1 << SLOTS) - 1)
        cell = self._keys >> SLOTS
        hits = ((pattern[:, None] >> bits) & 1).astype(bool)
        day, label = cell // (3 * CLASSES), (cell // CLASSES) % 3 - 1
        amount, pos, weight, weighted = (self._sums[:, j] / SCALE for j in range(1, 5))
        return Outcomes(day, label.astype(np.int8), hits, (cell % CLASSES).astype(np.int8), self._sums[:, 0].copy(),
                        amount, pos, weight, weighted, self.days)

    def _clear(self) -> None:
        """Back to no condition (after a failure): every event's pattern 0, the groups the per-cell totals."""
        keys = self._keys >> SLOTS
        cells, merge = np.unique(keys, return_inverse=True)
        sums = np.zeros((len(cells), self._sums.shape[1]), dtype=np.int64)
        np.add.at(sums, merge.reshape(-1), self._sums)
        self._keys, self._sums = cells << SLOTS, sums
        self._pattern[:] = 0
        self._slots.clear()
        self._spans.clear()

    def _group(self, columns: list[np.ndarray]) -> Outcomes:
        """More conditions than pattern bits: the groups of the rows some condition holds on, by np.unique, and
        the rest from the groups of no condition."""
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
        union_cell, values = self._cells(union), self._values(union)
        uniques, codes = np.unique(np.column_stack([union_cell, hits]), axis=0, return_inverse=True)
        codes, cell, g_hits = codes.reshape(-1), uniques[:, 0], uniques[:, 1:].astype(bool)
        groups = len(cell)
        sums = np.column_stack([np.bincount(codes, minlength=groups).astype(np.int64),
                                *(self._sum(codes, v, groups, j) for j, v in enumerate(values))])
        with self._lock:  # the events no condition holds on: the per-cell totals minus the union's
            totals = np.zeros((self.cells, sums.shape[1]), dtype=np.int64)
            np.add.at(totals, self._keys >> SLOTS, self._sums)
        left = totals - np.column_stack([np.bincount(union_cell, minlength=self.cells).astype(np.int64),
                                         *(self._sum(union_cell, v, self.cells, j)
                                           for j, v in enumerate(values))])
        rest = np.flatnonzero(left[:, 0] > 0)
        cell = np.concatenate([cell, rest])
        g_hits = np.concatenate([g_hits, np.zeros((len(rest), n_rules), dtype=bool)])
        sums = np.concatenate([sums, left[rest]])
        day, label = cell // (3 * CLASSES), (cell // CLASSES) % 3 - 1
        return Outcomes(day.astype(np.int64), label.astype(np.int8), g_hits, (cell % CLASSES).astype(np.int8),
                        sums[:, 0], *(sums[:, j] / SCALE for j in range(1, 5)), self.days)


def warm_outcomes(evaluator, compiled: CompiledStrategy) -> Outcomes:
    """The outcome groups of a strategy from the evaluator's cached rule rows (what `run_outcomes` returns)."""
    cells = evaluator.companion("outcomes", lambda ev: OutcomeCells(ev, compiled))
    keys = [key_of(r.condition) for r in compiled.rules]
    unique = tuple(sorted(set(keys)))
    by_key = dict(zip(keys, (r.condition for r in compiled.rules)))
    o = cells.outcomes(unique, lambda k: evaluator.rows(by_key[k], compiled, k))
    return o.take(np.ones(len(o.count), dtype=bool), [unique.index(k) for k in keys])
