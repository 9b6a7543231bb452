"""Interactive evaluation: per-event arrays of one window, with each rule condition's hits cached.

A param move re-runs only the conditions whose SQL changed (`SELECT _pos ... WHERE <cond>`);
decisions and every metric are then rebuilt in numpy. Results are the same `Groups` the
one-pass backtest produces (one group per event), so the same metric code serves both.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import duckdb
import numpy as np
import pandas as pd
from sqlglot import exp

from riskconsole.backtest import (BITS, Groups, Window, known_label, mask_words, population_filters, run_query,
                                  window_days)
from riskconsole.config import Dataset
from riskconsole.sqlbuild import alias, fill, ident, render
from riskconsole.strategy import CompiledRule, CompiledStrategy, Frame, source

MAX_CACHED_CONDITIONS = 256
MASK_BITS = 40  # rules packed into one hashed key; more rules fall back to a sort


class Evaluator:
    """Population arrays of one (window, population) and a cache of rule hits over them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: Dataset, frame: Frame, window: Window,
                 compiled: CompiledStrategy) -> None:
        self.con, self.dataset, self.frame, self.window = con, dataset, frame, window
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._load_base(compiled)

    def _query(self, query: exp.Expression, strategy: str) -> dict[str, np.ndarray]:
        with self._lock, self.con.cursor() as cur:
            table = run_query(cur, query, strategy)
        return {name: table.column(name).to_numpy() for name in table.column_names}

    def _where(self, query: exp.Select, compiled: CompiledStrategy) -> exp.Select:
        for condition in population_filters(compiled, self.dataset, self.window):
            query = query.where(condition)
        return query

    def _load_base(self, compiled: CompiledStrategy) -> None:
        roles = self.dataset.columns
        amount = fill("coalesce(CAST(:a AS DOUBLE), 0)", a=ident(roles.amount)) if roles.amount else fill("0.0")
        query = exp.select("_pos", alias(fill("CAST(:t AS DATE)", t=ident(roles.time)), "day"),
                           alias(known_label(self.dataset, self.window), "y"), alias(amount, "amt"))
        query = self._where(query.from_(source(compiled, self.frame).subquery("src")), compiled).order_by("_pos")
        base = self._query(query, compiled.name)
        self.pos = base["_pos"].astype(np.int64)
        with self._lock, self.con.cursor() as cur:
            self.days = window_days(cur, self.dataset, self.window)
        first = np.datetime64(self.days[0], "D") if self.days else np.datetime64("1970-01-01", "D")
        self.day = (base["day"].astype("datetime64[D]") - first).astype(np.int64)
        self.label = base["y"].astype(np.int8)
        self.amount = np.nan_to_num(base["amt"].astype(np.float64))

    def hits(self, condition: exp.Expression, compiled: CompiledStrategy) -> np.ndarray:
        """Boolean array over the population: where the condition holds (cached by its SQL)."""
        self.prefetch([condition], compiled)
        key = render(condition)
        self._cache.move_to_end(key)
        return self._cache[key]

    def prefetch(self, conditions: list[exp.Expression], compiled: CompiledStrategy) -> None:
        """Evaluate every condition not cached yet in ONE pass (rows in `_pos` order, as the base)."""
        missing = {}
        for node in conditions:
            missing.setdefault(render(node), node)
        missing = {k: v for k, v in missing.items() if k not in self._cache}
        if not missing:
            return
        nodes = list(missing.values())
        words = [f"m{i}" for i in range(0, len(nodes), BITS)]
        stub = CompiledStrategy(compiled.strategy, {}, [CompiledRule(f"c{i}", "review", True, n)
                                                        for i, n in enumerate(nodes)], None, compiled.detectors)
        query = exp.select("_pos", *[alias(w, name) for w, name in zip(mask_words(stub), words)]).from_(
            source(compiled, self.frame).subquery("src"))
        query = self._where(query, compiled)
        sparse = exp.select("*").from_(query.subquery("q")).where(" OR ".join(f"{w} <> 0" for w in words))
        data = self._query(sparse, compiled.name)  # only the events some condition holds for
        rows = np.searchsorted(self.pos, data["_pos"].astype(np.int64))
        for i, key in enumerate(missing):
            mask = np.zeros(len(self.pos), dtype=bool)
            mask[rows] = (data[words[i // BITS]].astype(np.int64) >> (i % BITS)) & 1
            self._cache[key] = mask
        while len(self._cache) > MAX_CACHED_CONDITIONS:
            self._cache.popitem(last=False)

    def groups(self, compiled: CompiledStrategy) -> Groups:
        """`Groups` for the strategy: events collapsed by (day, label, which rules hold), as the SQL pass does."""
        self.prefetch([r.condition for r in compiled.rules], compiled)
        hits = np.zeros((len(self.pos), len(compiled.rules)), dtype=bool)
        for i, rule in enumerate(compiled.rules):
            hits[:, i] = self.hits(rule.condition, compiled)
        return collapse(self.day, self.label, hits, self.amount, self.days)


def collapse(day: np.ndarray, label: np.ndarray, hits: np.ndarray, amount: np.ndarray, days: list) -> Groups:
    """Per-event arrays -> one group per distinct (day, label, hit pattern), by hashing one int64 key.

    Metrics then cost microseconds per strategy variant instead of passes over every event.
    """
    rules = hits.shape[1]
    if rules > MASK_BITS or len(days) >= 1 << (63 - MASK_BITS - 2):
        keys = np.column_stack([day, label, hits]).astype(np.int64)
        uniques, codes = np.unique(keys, axis=0, return_inverse=True)
        g_day, g_label, g_hits = uniques[:, 0], uniques[:, 1], uniques[:, 2:].astype(bool)
    else:
        mask = hits.astype(np.int64) @ (np.int64(1) << np.arange(rules, dtype=np.int64)) if rules else \
            np.zeros(len(day), dtype=np.int64)
        key = mask | ((label.astype(np.int64) + 1) << MASK_BITS) | (day.astype(np.int64) << (MASK_BITS + 2))
        codes, uniques = pd.factorize(key)
        g_day = uniques >> (MASK_BITS + 2)
        g_label = ((uniques >> MASK_BITS) & 3) - 1
        g_hits = ((uniques[:, None] >> np.arange(rules, dtype=np.int64)) & 1).astype(bool)
    count = np.bincount(codes, minlength=len(g_day)).astype(np.int64)
    money = np.bincount(codes, weights=amount, minlength=len(g_day))
    return Groups(np.asarray(g_day, dtype=np.int64), np.asarray(g_label, dtype=np.int8), g_hits, count, money, days)
