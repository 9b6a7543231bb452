"""Interactive evaluation: per-event arrays of one window and data version, with each rule condition's hits
cached (as the sorted rows it holds on: sparse, since most events hit no rule).

- A param move re-runs only the conditions whose SQL changed (`SELECT _pos ... WHERE <cond>`, one pass).
- A threshold param (`col >= $p`, `>`, `<=`, `<`, ANDed with other terms of one rule) is answered from the
  sorted values of `col` over the events where the rest of the rule holds: a `searchsorted` and prefix sums
  per (day, label, other rules' pattern) group, no SQL and no pass over the events.
- An action flip, a rule switched on/off or rules reordered reuse the cached groups (no SQL, no collapse).

Results are `Groups` as the one-pass backtest produces them, so the same metric code serves both.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np
from sqlglot import exp

from riskconsole.backtest import (BITS, Groups, Window, known_label, mask_words, population_filters, run_query,
                                  span_query, window_days)
from riskconsole.config import Dataset, Strategy
from riskconsole.errors import RiskConsoleError
from riskconsole.expressions import referenced_columns, referenced_params
from riskconsole.limits import QueryTimeout
from riskconsole.sqlbuild import alias, conjuncts, fill, ident, render
from riskconsole.strategy import (CompiledRule, CompiledStrategy, Frame, _check_params_used, check_boolean,
                                  resolve_params, source)

MAX_CACHED_CONDITIONS = 256
MAX_CACHED_GROUPS = 64
MAX_THRESHOLD_TABLES = 16
# caches are capped in bytes per population event (so at any data size they stay a fixed share of the arrays they
# index; at least MIN_CACHE_BYTES each): condition rows (4 bytes a hit), row->group codes of grouped configurations
# (4 bytes a row some rule holds on), threshold tables (~14 bytes an event where a rule's rest holds)
ROWS_BYTES_PER_EVENT = 24
CODES_BYTES_PER_EVENT = 16
TABLE_BYTES_PER_EVENT = 40
MIN_CACHE_BYTES = 64 << 20
MASK_BITS = 40  # rules packed into one hashed key; more rules fall back to a sort
CHECKPOINT_CELLS = 4_000_000  # prefix-sum cells (groups x checkpoints) kept per threshold table
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "REAL")
OPS = {exp.GTE: ">=", exp.GT: ">", exp.LTE: "<=", exp.LT: "<"}
FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


# ---------------------------------------------------------------- compiling, once per rule text and params


class Compiler:
    """`compile_strategy` with each rule's checked condition cached by (rule, text, the params it reads): a
    move of one param re-parses and re-checks only the rules that read it. Same results, same errors."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self._nodes: OrderedDict[tuple, exp.Expression] = OrderedDict()
        self._params: dict[str, frozenset] = {}
        self._checked: set[tuple] = set()      # (where, text, param types) whose condition DuckDB typed boolean
        self._used: set[tuple] = set()         # (texts, param names) whose $params are all defined
        self._strategies: OrderedDict[tuple, Strategy] = OrderedDict()
        self._lock = threading.Lock()

    def strategy(self, ws, path) -> Strategy:
        """`ws.strategy(path)`, parsed once per file text (the YAML parser costs ~50 ms per 20 rules)."""
        from pathlib import Path

        from riskconsole.config import parse_model, read_config, read_yaml

        label = ws.rel(path)
        text = read_config(Path(path), label)
        key = (label, text)
        with self._lock:
            found = self._strategies.get(key)
        if found is None:
            found = parse_model(read_yaml(text, label), Strategy, label)
            with self._lock:
                self._strategies[key] = found
                while len(self._strategies) > 32:
                    self._strategies.popitem(last=False)
        return found

    def _types(self, text: str, params: dict) -> tuple:
        def kind(value) -> object:
            if isinstance(value, (list, tuple)):
                return tuple(kind(v) for v in value)
            return type(value).__name__

        return tuple(sorted((n, kind(params[n])) for n in self._params[text] if n in params))

    def _key(self, where: str, text: str, params: dict) -> tuple:
        used = self._params.get(text)
        if used is None:
            used = self._params[text] = params_in(text)
        key = where, text, tuple(sorted((n, type(params[n]).__name__, repr(params[n])) for n in used if n in params))
        if self.frame.lists is not None and "list" in text.lower():  # an edited list file renders anew
            key += (self.frame.lists.stamp(),)
        return key

    def compile(self, strategy: Strategy, label: str, overrides: dict | None,
                con: duckdb.DuckDBPyConnection) -> CompiledStrategy:
        params = resolve_params(strategy, overrides, label)
        used = (tuple(r.when for r in strategy.rules), strategy.population, frozenset(params))
        if used not in self._used:
            _check_params_used(strategy, params, label)
            with self._lock:
                self._used.add(used) if len(self._used) < 4096 else self._used.clear()
        texts = [(f"{label}: rule '{r.name}'", r.when) for r in strategy.rules]
        if strategy.population:
            texts.append((f"{label}: population", strategy.population))
        nodes, fresh = [], []
        for where, text in texts:
            key = self._key(where, text, params)
            with self._lock:
                node = self._nodes.get(key)
            if node is None:
                node = self.frame.parse(text, params, where)
                fresh.append((key, len(nodes)))
            nodes.append(node)
        fresh_all = list(fresh)
        rules = [CompiledRule(r.name, r.action, r.enabled, n) for r, n in zip(strategy.rules, nodes)]
        population = nodes[len(rules)] if strategy.population else None
        used = set().union(*(columns_of(n) for n in nodes))
        detectors = [d for d in self.frame.scores if d in used and d not in self.frame.columns]
        compiled = CompiledStrategy(strategy, params, rules, population, detectors)
        # check only what was parsed now, in the file's order; a condition already typed boolean with params of
        # the same types (a slider moved a number) cannot change type
        fresh = [(key, i) for key, i in fresh if (key[0], key[1], self._types(key[1], params)) not in self._checked]
        if fresh:
            new = {i for _, i in fresh}
            stub = CompiledStrategy(strategy, params, [r for i, r in enumerate(rules) if i in new],
                                    population if len(rules) in new else None, detectors)
            check_boolean(con, stub, self.frame, label)
        with self._lock:
            for where, text in texts:
                self._checked.add((where, text, self._types(text, params)))
            for key, i in fresh_all:
                self._nodes[key] = nodes[i]
            while len(self._nodes) > 4 * MAX_CACHED_CONDITIONS:
                self._nodes.popitem(last=False)
            if len(self._checked) > 16 * MAX_CACHED_CONDITIONS:
                self._checked.clear()
        return compiled


@lru_cache(maxsize=4096)
def params_in(text: str) -> frozenset:
    """`referenced_params(text)`, once per text (it tokenizes)."""
    return frozenset(referenced_params(text))


_RENDERED: dict[int, tuple[exp.Expression, str]] = {}
_RENDER_LOCK = threading.Lock()


def key_of(node: exp.Expression) -> str:
    """`render(node)`, once per node object (the compiler hands out the same nodes for the same rule)."""
    hit = _RENDERED.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    text = render(node)
    with _RENDER_LOCK:
        if len(_RENDERED) > 8 * MAX_CACHED_CONDITIONS:
            _RENDERED.clear()
        _RENDERED[id(node)] = (node, text)
    return text


_COLUMNS: dict[int, tuple[exp.Expression, frozenset]] = {}


def columns_of(node: exp.Expression) -> frozenset:
    """`referenced_columns(node)`, once per node object (a walk of its tree: ~0.5 ms a console answer for 20
    rules, every answer, though the compiler hands out the same nodes)."""
    hit = _COLUMNS.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    found = frozenset(referenced_columns(node))
    with _RENDER_LOCK:
        if len(_COLUMNS) > 8 * MAX_CACHED_CONDITIONS:
            _COLUMNS.clear()
        _COLUMNS[id(node)] = (node, found)
    return found


def compiler_of(session) -> Compiler:
    """The session's compiler (one per frame: a reload gives a new frame, hence a new cache)."""
    frame = session.frame
    with session._lock:
        compiler = getattr(session, "_compiler", None)
        if compiler is None or compiler.frame is not frame:
            compiler = session._compiler = Compiler(frame)
    return compiler


# ---------------------------------------------------------------- threshold params


@dataclass(frozen=True)
class Threshold:
    """Rule `index` holds where `column <op> value` and `rest` (value = the param `param`)."""

    param: str
    index: int
    column: str
    op: str
    rest: exp.Expression
    term: int = 0  # position of the comparison among the rule's ANDed terms

    def at(self, compiled: CompiledStrategy) -> Threshold:
        """The same threshold in another compile of the same texts (other param values): same shape, new rest."""
        terms = conjuncts(compiled.rules[self.index].condition)
        rest = [t for j, t in enumerate(terms) if j != self.term]
        node = rest[0] if rest else exp.Boolean(this=True)
        for other in rest[1:]:
            node = exp.And(this=node, expression=other)
        return Threshold(self.param, self.index, self.column, self.op, node, self.term)


def find_threshold(compiled: CompiledStrategy, frame: Frame, param: str, numeric_columns: set[str]
                   ) -> Threshold | None:
    """Where `param` is used once, as `col <op> $param` ANDed with other terms of one rule (col numeric)."""
    value = compiled.params.get(param)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    literal = render(exp.convert(value))
    touched = [i for i, rule in enumerate(compiled.strategy.rules) if param in params_in(rule.when)]
    if len(touched) != 1 or (compiled.strategy.population and param in params_in(compiled.strategy.population)):
        return None
    index = touched[0]
    # the param must be the only literal equal to its rendering and appear once, as a comparison operand
    terms = conjuncts(compiled.rules[index].condition)
    found = []
    for term in terms:
        node = term.unnest()
        if type(node) in OPS:
            left, right = node.this.unnest(), node.expression.unnest()
            if isinstance(left, exp.Column) and _is_value(right, literal):
                found.append((term, left.name, OPS[type(node)]))
            elif isinstance(right, exp.Column) and _is_value(left, literal):
                found.append((term, right.name, FLIP[OPS[type(node)]]))
    if len(found) != 1 or found[0][1] not in numeric_columns:
        return None
    term, column, op = found[0]
    if sum(1 for t in terms for lit_ in t.find_all(exp.Literal) if render(lit_) == literal) != 1:
        return None
    position = next(j for j, t in enumerate(terms) if t is term)
    return Threshold(param, index, column, op, exp.Boolean(this=True), position).at(compiled)


def _is_value(node: exp.Expression, literal: str) -> bool:
    return isinstance(node, (exp.Literal, exp.Neg)) and render(node) == literal


class ThresholdTable:
    """One threshold rule over a fixed set of other rules: the events where its rest holds, sorted by the
    column, each with its group among the other rules' groups; any threshold is then a searchsorted and a
    prefix sum per group (from checkpoints every `step` sorted events plus one short bincount). `rows` index
    `amount`, the amount of every population event."""

    def __init__(self, values: np.ndarray, rows: np.ndarray, group: np.ndarray, amount: np.ndarray,
                 others: Groups, op: str) -> None:
        order = np.argsort(values, kind="stable")
        self.values, self.rows = values[order], rows[order].astype(np.int32)
        self.group = group[order].astype(np.int16 if len(others.count) < 1 << 15 else np.int32)
        self.amount = amount  # every population event's amount (shared, not copied): read at `rows`
        self.others, self.op = others, op
        self.hits0 = np.column_stack([others.hits, np.zeros(len(others.count), dtype=bool)])
        self.hits1 = np.column_stack([others.hits, np.ones(len(others.count), dtype=bool)])
        n, g = len(self.values), len(others.count)
        chunks = max(1, min(CHECKPOINT_CELLS // max(g, 1), n // 64 + 1))
        self.step = max(1, -(-n // chunks))
        self.cum_n = np.zeros((n // self.step + 1, g), dtype=np.int64)
        self.cum_a = np.zeros((n // self.step + 1, g), dtype=np.float64)
        for j in range(1, len(self.cum_n)):
            part = slice((j - 1) * self.step, j * self.step)
            self.cum_n[j] = self.cum_n[j - 1] + np.bincount(self.group[part], minlength=g)
            self.cum_a[j] = self.cum_a[j - 1] + np.bincount(self.group[part], weights=self.amount[self.rows[part]],
                                                            minlength=g)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.values, self.rows, self.group, self.cum_n, self.cum_a, self.hits0,
                                      self.hits1))

    def span(self, value) -> tuple[int, int]:
        """The sorted positions [lo, hi) where `column <op> value` holds."""
        v = np.asarray(value, dtype=self.values.dtype) if self.values.dtype == np.float32 else value
        n = len(self.values)
        if self.op == ">=":
            return int(np.searchsorted(self.values, v, "left")), n
        if self.op == ">":
            return int(np.searchsorted(self.values, v, "right")), n
        if self.op == "<=":
            return 0, int(np.searchsorted(self.values, v, "right"))
        return 0, int(np.searchsorted(self.values, v, "left"))

    def _prefix(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        j = r // self.step
        part = slice(j * self.step, r)
        g = len(self.others.count)
        return (self.cum_n[j] + np.bincount(self.group[part], minlength=g),
                self.cum_a[j] + np.bincount(self.group[part], weights=self.amount[self.rows[part]], minlength=g))

    def groups(self, value, index: int) -> Groups:
        """The groups with the threshold rule's column inserted at `index`, at this threshold."""
        lo, hi = self.span(value)
        n_hi, a_hi = self._prefix(hi)
        n_lo, a_lo = self._prefix(lo)
        moved_n, moved_a = n_hi - n_lo, a_hi - a_lo
        o = self.others
        stay = o.count - moved_n
        keep0, keep1 = stay > 0, moved_n > 0
        if index == o.hits.shape[1]:  # (the patterns with the rule's bit off / on, made once)
            hits0, hits1 = self.hits0[keep0], self.hits1[keep1]
        else:
            hits0 = np.insert(o.hits[keep0], index, False, axis=1)
            hits1 = np.insert(o.hits[keep1], index, True, axis=1)
        return Groups(np.concatenate([o.day[keep0], o.day[keep1]]), np.concatenate([o.label[keep0], o.label[keep1]]),
                      np.concatenate([hits0, hits1]), np.concatenate([stay[keep0], moved_n[keep1]]),
                      np.concatenate([(o.amount - moved_a)[keep0], moved_a[keep1]]), o.days)

    def rows_at(self, value) -> np.ndarray:
        lo, hi = self.span(value)
        return np.sort(self.rows[lo:hi])


# ---------------------------------------------------------------- the evaluator


class Evaluator:
    """Population arrays of one (window, population, data version) and caches of rule hits and groups."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dataset: Dataset, frame: Frame, window: Window,
                 compiled: CompiledStrategy, version: str | None = None) -> None:
        self.con, self.dataset, self.frame, self.window, self.version = con, dataset, frame, window, version
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()   # condition SQL -> sorted rows it holds on
        self._derived: dict[str, tuple[tuple, object]] = {}  # condition SQL answered by a table: (its key, value)
        self._groups: OrderedDict[tuple, Groups] = OrderedDict()     # sorted condition keys -> groups
        self._codes: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self._tables: OrderedDict[tuple, ThresholdTable] = OrderedDict()
        self._found: dict[tuple, list[Threshold]] = {}
        self._building: dict[tuple, threading.Thread] = {}
        self._group_map: tuple = (None, None)  # (conditions, group of every event) of the latest split
        self._last_params: dict = {}
        self._companions: dict[str, object] = {}
        self._load_base(compiled)

    def companion(self, name: str, build):
        """`build(self)` once per evaluator, so it shares the evaluator's key (window, population, data version)
        and its lifetime: the console's outcome cells live here."""
        with self._lock:
            found = self._companions.get(name)
        if found is None:  # built outside the lock: a threshold table may be building meanwhile
            built = build(self)
            with self._lock:
                found = self._companions.setdefault(name, built)
        return found

    def _budget(self, per_event: int) -> int:
        """Bytes one cache may hold: `per_event` bytes per population event, at least MIN_CACHE_BYTES."""
        return max(MIN_CACHE_BYTES, per_event * len(self.pos))

    def nbytes(self) -> dict[str, int]:
        """Bytes held per part (the per-event arrays and each cache), for benchmarks and the memory test."""
        with self._lock:
            return {"events": sum(a.nbytes for a in (self.pos, self.label, self.amount, self.cell)),
                    "rows": _size(self._cache), "codes": _size(self._codes), "tables": _size(self._tables),
                    "group_map": 0 if self._group_map[1] is None else self._group_map[1].nbytes}

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own with the workspace's lists registered (`IN LIST` conditions read them)."""
        cur = self.con.cursor()
        if self.frame.lists is not None:
            self.frame.lists.register(cur)
        return cur

    def _query(self, query: exp.Expression, strategy: str) -> dict[str, np.ndarray]:
        with self._cursor() as cur:  # a cursor per call: safe beside a table built in the background
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
        # per event: its frame position, amount and (day, label) cell, in the smallest exact dtypes (17 bytes)
        pos = base.pop("_pos")
        self.pos = pos.astype(np.int32 if not len(pos) or pos.max() < 1 << 31 else np.int64)
        with self._lock, self._cursor() as cur:
            self.days = window_days(cur, span_query(self.dataset), self.window)
        first = np.datetime64(self.days[0], "D") if self.days else np.datetime64("1970-01-01", "D")
        day = (base.pop("day").astype("datetime64[D]") - first).astype(np.int32)
        self.label = base.pop("y").astype(np.int8)
        self.amount = np.nan_to_num(base.pop("amt").astype(np.float64))
        # the totals per (day, label) cell: the groups where no rule holds
        self.cell = day * 3 + (self.label.astype(np.int32) + 1)
        cells = 3 * max(len(self.days), int(day.max()) + 1 if len(day) else 0)
        self.cell_n = np.bincount(self.cell, minlength=cells).astype(np.int64)
        self.cell_a = np.bincount(self.cell, weights=self.amount, minlength=cells)

    # ------------------------------------------------------------ hits of one condition

    def rows(self, condition: exp.Expression, compiled: CompiledStrategy, key: str | None = None) -> np.ndarray:
        """Sorted population rows where the condition holds (cached by its SQL)."""
        key = key or key_of(condition)
        while True:  # (a build in the background may evict it in between: then query it again)
            self.prefetch([condition], compiled, [key])
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]

    def cached_rows(self, key: str) -> np.ndarray | None:
        """The sorted rows of a condition if they are cached (no query, no sort)."""
        with self._lock:
            return self._cache.get(key)

    def span_of(self, key: str) -> tuple[ThresholdTable, int, int] | None:
        """Where a condition last answered by a threshold table holds: (the table, [lo, hi) of its sorted rows,
        `table.rows[lo:hi]`), while that table is kept; else None."""
        with self._lock:
            tkey, value = self._derived.get(key, (None, None))
            table = self._tables.get(tkey) if tkey is not None else None
        if table is None:
            return None
        lo, hi = table.span(value)
        return table, lo, hi

    def hits(self, condition: exp.Expression, compiled: CompiledStrategy) -> np.ndarray:
        """Boolean array over the population: where the condition holds."""
        mask = np.zeros(len(self.pos), dtype=bool)
        mask[self.rows(condition, compiled)] = True
        return mask

    def prefetch(self, conditions: list[exp.Expression], compiled: CompiledStrategy,
                 keys: list[str] | None = None) -> None:
        """Evaluate every condition not cached yet in ONE pass (only the rows some condition holds on)."""
        keys = keys or [key_of(n) for n in conditions]
        missing = {}
        with self._lock:
            for key, node in zip(keys, conditions):
                if key in self._cache or key in missing:
                    continue
                tkey, value = self._derived.get(key, (None, None))
                if tkey in self._tables:  # answered by a threshold table (still kept): its rows, no SQL
                    self._cache[key] = self._tables[tkey].rows_at(value)
                    continue
                missing[key] = node
        if len(missing) == 1 and self._filtered(missing, compiled):
            missing = {}
        if missing:
            nodes = list(missing.values())
            words = [f"m{i}" for i in range(0, len(nodes), BITS)]
            stub = CompiledStrategy(compiled.strategy, {}, [CompiledRule(f"c{i}", "review", True, n)
                                                            for i, n in enumerate(nodes)], compiled.population,
                                    _detectors(compiled, nodes))  # joins only the score tables these read
            query = exp.select("_pos", *[alias(w, name) for w, name in zip(mask_words(stub), words)]).from_(
                source(stub, self.frame).subquery("src"))
            query = self._where(query, compiled)
            sparse = exp.select("*").from_(query.subquery("q")).where(" OR ".join(f"{w} <> 0" for w in words))
            data = self._query(sparse, compiled.name)  # rows come in any order: realign on _pos
            rows = np.searchsorted(self.pos, data["_pos"].astype(np.int64))
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            with self._lock:
                for i, key in enumerate(missing):
                    bits = (data[words[i // BITS]].astype(np.int64)[order] >> (i % BITS)) & 1
                    self._cache[key] = rows[bits.astype(bool)].astype(np.int32)
        with self._lock:
            _trim(self._cache, MAX_CACHED_CONDITIONS, self._budget(ROWS_BYTES_PER_EVENT), set(keys))

    def _filtered(self, missing: dict, compiled: CompiledStrategy) -> bool:
        """One condition's rows (an edit's) by a plain filter, which DuckDB pushes into the scan: ~2x cheaper at 10M
        than the mask form. NULL is no hit in both. DuckDB may evaluate a filter on rows outside the population
        first, so an expression failing there (an unguarded CAST) fails here where the mask form (the CLI's) does
        not: then False, and the mask form answers."""
        (key, node), = missing.items()
        stub = CompiledStrategy(compiled.strategy, {}, [], compiled.population, _detectors(compiled, [node]))
        query = self._where(exp.select("_pos").from_(source(stub, self.frame).subquery("src")), compiled)
        try:
            data = self._query(query.where(node), compiled.name)
        except QueryTimeout:
            raise
        except RiskConsoleError:
            return False
        rows = np.sort(np.searchsorted(self.pos, data["_pos"].astype(np.int64))).astype(np.int32)
        with self._lock:
            self._cache[key] = rows
        return True

    # ------------------------------------------------------------ answers

    def answer(self, compiled: CompiledStrategy) -> Groups:
        """The groups of a strategy by the cheapest exact path: cached groups (actions, on/off, order), a
        threshold table (one threshold param moved), else only the changed conditions queried."""
        keys = [key_of(r.condition) for r in compiled.rules]
        with self._lock:
            cached = tuple(sorted(set(keys))) in self._groups
            missing = [i for i, k in enumerate(keys) if k not in self._cache]
            moved = {p for p, v in compiled.params.items() if self._last_params.get(p, v) != v}
            self._last_params = dict(compiled.params)
        if not cached and len(missing) == 1:
            found = self._pick(compiled, keys, missing[0], moved)
            if found is not None:
                other_keys = keys[:found.index] + keys[found.index + 1:]
                if self._table_key(found, other_keys) in self._tables:
                    return self.threshold_groups(compiled, found, keys)
                if found.param in moved:  # its first move: answered like any edit (one condition queried), then
                    groups = self._one_rule(compiled, keys, missing[0])  # its table built in the background
                    self._build_later(compiled, found, other_keys)  # for the next moves (not for a text edit)
                    return groups
            return self._one_rule(compiled, keys, missing[0])
        return self.groups(compiled, keys)

    def _one_rule(self, compiled: CompiledStrategy, keys: list[str], index: int) -> Groups:
        """One rule's condition changed: query only it, and split the other rules' groups by where it holds (no
        re-collapse of every event). The other rules' groups come from the cache, else from the strategy's
        previous configuration with the rule's column dropped (`_project`); failing both, the first edit
        collapses as usual and caches them in the background for the next edits."""
        other_keys = keys[:index] + keys[index + 1:]
        unique = tuple(sorted(set(other_keys)))
        with self._lock:
            ready = unique in self._groups and unique in self._codes
        if not ready and self._project_source(unique) is not None:
            others = compiled.rules[:index] + compiled.rules[index + 1:]
            self.groups(CompiledStrategy(compiled.strategy, compiled.params, others, compiled.population,
                                         compiled.detectors), other_keys, codes=True)
            ready = True
        if not ready:
            others = compiled.rules[:index] + compiled.rules[index + 1:]
            stub = CompiledStrategy(compiled.strategy, compiled.params, others, compiled.population,
                                    compiled.detectors)
            self._later(("others", unique), lambda: self.groups(stub, other_keys, codes=True))
            return self.groups(compiled, keys)
        rows = self.rows(compiled.rules[index].condition, compiled, keys[index])
        with self._lock:
            canon = self._groups.get(unique)
            if canon is None or unique not in self._codes:
                return self.groups(compiled, keys)
            group = self._group_of(unique, rows)
        size = len(canon.count)
        moved_n = np.bincount(group, minlength=size).astype(np.int64)
        moved_a = np.bincount(group, weights=self.amount[rows], minlength=size)
        stay = canon.count - moved_n
        keep0, keep1 = stay > 0, moved_n > 0
        split = Groups(np.concatenate([canon.day[keep0], canon.day[keep1]]),
                       np.concatenate([canon.label[keep0], canon.label[keep1]]),
                       np.concatenate([np.column_stack([canon.hits[keep0], np.zeros(keep0.sum(), dtype=bool)]),
                                       np.column_stack([canon.hits[keep1], np.ones(keep1.sum(), dtype=bool)])]),
                       np.concatenate([stay[keep0], moved_n[keep1]]),
                       np.concatenate([(canon.amount - moved_a)[keep0], moved_a[keep1]]), self.days)
        return self._remember(keys, self._place(split, unique, keys, index))

    def _remember(self, keys: list[str], groups: Groups) -> Groups:
        """Cache groups answered without a collapse (an edit's split, a threshold position) under their
        conditions, so a flip, switch or reorder right after needs no collapse either (no row codes: those
        only a collapse or a projection gives)."""
        unique = tuple(sorted(set(keys)))
        with self._lock:
            if unique not in self._groups:
                self._store(unique, _select(groups, [keys.index(k) for k in unique]))
        return groups

    def _store(self, unique: tuple, groups: Groups, found: tuple | None = None) -> None:
        """Cache the groups of conditions `unique` (and their row codes); past MAX_CACHED_GROUPS the least recently
        used groups without row codes go first (those with codes are what edits and projections start from)."""
        with self._lock:
            self._groups[unique] = groups
            if found is not None:
                self._codes[unique] = found
            while len(self._groups) > MAX_CACHED_GROUPS:
                old = next((k for k in self._groups if k not in self._codes), next(iter(self._groups)))
                del self._groups[old]
                self._codes.pop(old, None)
            _trim(self._codes, MAX_CACHED_GROUPS, self._budget(CODES_BYTES_PER_EVENT), {unique})

    def _later(self, key: tuple, work) -> None:
        """Run `work` in the background once per key (a cache fill: a failure only means no shortcut)."""
        with self._lock:
            if key in self._building:
                return

            def run() -> None:
                try:
                    work()
                except Exception:  # noqa: BLE001
                    pass
                finally:
                    with self._lock:
                        self._building.pop(key, None)

            thread = self._building[key] = threading.Thread(target=run, daemon=True, name="evaluator-cache")
        thread.start()

    @staticmethod
    def _table_key(found: Threshold, other_keys: list[str]) -> tuple:
        return tuple(sorted(set(other_keys))), key_of(found.rest), found.column, found.op

    def _build_later(self, compiled: CompiledStrategy, found: Threshold, other_keys: list[str]) -> None:
        key = self._table_key(found, other_keys)
        with self._lock:
            if key in self._building or key in self._tables:
                return
            thread = self._building[key] = threading.Thread(target=self._build, args=(compiled, found, other_keys, key),
                                                            daemon=True, name="threshold-table")
        thread.start()

    def _build(self, compiled: CompiledStrategy, found: Threshold, other_keys: list[str], key: tuple) -> None:
        try:
            self._table(compiled, found, other_keys)
        except Exception:  # noqa: BLE001 - a table is an optimisation: the next move queries as before
            pass
        finally:
            with self._lock:
                self._building.pop(key, None)

    def wait(self) -> None:
        """Until every threshold table being built is ready (tests and benchmarks)."""
        while True:
            with self._lock:
                threads = list(self._building.values())
            if not threads:
                return
            for thread in threads:
                thread.join()

    def _pick(self, compiled: CompiledStrategy, keys: list[str], index: int, moved: set) -> Threshold | None:
        """Of the rule's threshold params, the one whose table is built, else the one just moved."""
        candidates = self.thresholds_of(compiled, index)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        unique = tuple(sorted(set(keys[:index] + keys[index + 1:])))
        with self._lock:
            for found in candidates:
                if (unique, key_of(found.rest), found.column, found.op) in self._tables:
                    return found
        return next((f for f in candidates if f.param in moved), candidates[0])

    def threshold_of(self, compiled: CompiledStrategy, index: int, param: str) -> Threshold | None:
        """`param` as a threshold of rule `index`, if it is one."""
        return next((f for f in self.thresholds_of(compiled, index) if f.param == param), None)

    def thresholds_of(self, compiled: CompiledStrategy, index: int) -> list[Threshold]:
        """Every threshold param of rule `index` (cached per texts and params)."""
        text = compiled.strategy.rules[index].when
        params = sorted(params_in(text))
        types = tuple((p, type(compiled.params.get(p)).__name__) for p in params)
        key = (index, types, compiled.strategy.population, tuple(r.when for r in compiled.strategy.rules))
        with self._lock:
            shapes = self._found.get(key)
        if shapes is None:  # found where a value is unambiguous, the comparison's position holds for every value
            numeric = {c for c, t in self.frame.columns.items() if t in NUMERIC} | set(self.frame.scores)
            found = [f for f in (find_threshold(compiled, self.frame, p, numeric) for p in params)
                     if f is not None and f.index == index]
            if found or not any(p in compiled.params for p in params):
                with self._lock:
                    if len(self._found) > 4 * MAX_CACHED_CONDITIONS:
                        self._found.clear()
                    self._found[key] = found
            return found
        return [f.at(compiled) for f in shapes]

    # ------------------------------------------------------------ groups

    def groups(self, compiled: CompiledStrategy, keys: list[str] | None = None, codes: bool = False) -> Groups:
        """`Groups` for the strategy: events collapsed by (day, label, which rules hold), as the SQL pass does.
        Cached by the set of conditions: actions, on/off and rule order need no new pass. With `codes`, each
        row's group is kept too (`_group_of`), collapsing again if that was evicted."""
        keys = keys or [key_of(r.condition) for r in compiled.rules]
        unique = tuple(sorted(set(keys)))
        with self._lock:
            cached = self._groups.get(unique)
            if cached is not None and codes and unique not in self._codes:
                cached = None
            if cached is not None:
                self._groups.move_to_end(unique)
        if cached is None:
            projected = self._project(unique)
            if projected is not None:
                cached, found = projected
            else:
                self.prefetch([r.condition for r in compiled.rules], compiled, keys)
                by_key = dict(zip(keys, [r.condition for r in compiled.rules]))
                cached, found = self._collapse([self.rows(by_key[k], compiled, k) for k in unique])
            self._store(unique, cached, found)
        return _select(cached, [unique.index(k) for k in keys])

    def _collapse(self, columns: list[np.ndarray]) -> tuple[Groups, tuple]:
        """Groups of the rows some condition holds on (hashed), plus one group per (day, label) for the rest.
        Also returns how to find any row's group: (rows with a rule, their group, the group of each cell)."""
        n_rules = len(columns)
        if n_rules <= MASK_BITS and len(self.cell_n) < 1 << (62 - MASK_BITS):
            union, rank = self._union(columns)
            pattern = self.cell[union].astype(np.int64) << MASK_BITS  # and which conditions hold, one bit each
            for i, rows in enumerate(columns):
                pattern[rank[rows]] |= np.int64(1) << i
            del rank
            codes, uniques = _factorize(pattern)
            del pattern
            cell = uniques >> MASK_BITS
            codes = np.asarray(codes, dtype=np.int32)
            some = Groups(cell // 3, (cell % 3 - 1).astype(np.int8),
                          ((uniques[:, None] >> np.arange(n_rules, dtype=np.int64)) & 1).astype(bool),
                          np.bincount(codes, minlength=len(uniques)).astype(np.int64),
                          np.bincount(codes, weights=self.amount[union], minlength=len(uniques)), self.days)
        else:
            union, rank = self._union(columns)
            hits = np.zeros((len(union), n_rules), dtype=bool)
            for i, rows in enumerate(columns):
                hits[rank[rows], i] = True
            some, codes = collapse(self.cell[union] // 3, self.label[union], hits, self.amount[union], self.days,
                                   with_codes=True)
            codes = codes.astype(np.int32)
        left_n = self.cell_n - np.bincount(self.cell[union], minlength=len(self.cell_n))
        left_a = self.cell_a - np.bincount(self.cell[union], weights=self.amount[union], minlength=len(self.cell_a))
        cells = np.flatnonzero(left_n > 0)
        cell_group = np.full(len(self.cell_n), -1, dtype=np.int32)
        cell_group[cells] = len(some.count) + np.arange(len(cells))
        groups = Groups(np.concatenate([some.day, cells // 3]),
                        np.concatenate([some.label, (cells % 3 - 1).astype(np.int8)]),
                        np.concatenate([some.hits, np.zeros((len(cells), n_rules), dtype=bool)]),
                        np.concatenate([some.count, left_n[cells]]), np.concatenate([some.amount, left_a[cells]]),
                        self.days)
        return groups, (union, codes, cell_group)

    def _project(self, unique: tuple) -> tuple[Groups, tuple] | None:
        """The groups (and row codes) of conditions `unique` from a cached configuration with one condition more:
        its groups that differ only in that condition merge (work over groups, plus one gather over the rows
        some rule holds on), no collapse of the events. None when no such configuration is cached.

        This is what a one-rule edit or a threshold param's first move needs: the other rules' groups, which
        the strategy's own configuration (cached by the answer before) holds once its rule's column is dropped."""
        with self._lock:
            source = self._project_source(unique)
            if source is None:
                return None
            full, (union, codes, cell_group) = self._groups[source], self._codes[source]
        keep = [source.index(k) for k in unique]
        hits = full.hits[:, keep]
        cell = full.day * 3 + (full.label.astype(np.int64) + 1)
        # a group left with no condition joins its (day, label) cell's group of events no rule holds on
        rows, merge = np.unique(np.column_stack([cell, hits]), axis=0, return_inverse=True)
        merge = merge.reshape(-1).astype(np.int32)
        size = len(rows)
        groups = Groups(rows[:, 0] // 3, (rows[:, 0] % 3 - 1).astype(np.int8), rows[:, 1:].astype(bool),
                        np.bincount(merge, weights=full.count, minlength=size).round().astype(np.int64),
                        np.bincount(merge, weights=full.amount, minlength=size), self.days)
        cells = np.where(cell_group >= 0, merge[np.maximum(cell_group, 0)], -1).astype(np.int32)
        return groups, (union, merge[codes], cells)

    def _project_source(self, unique: tuple) -> tuple | None:
        """A cached configuration (groups and row codes) with the conditions `unique` and one more."""
        wanted = set(unique)
        with self._lock:
            return next((c for c in reversed(self._codes) if len(c) == len(unique) + 1 and wanted <= set(c)
                         and c in self._groups), None)

    def _union(self, columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The sorted rows some condition holds on, and each population row's rank among them (valid there)."""
        seen = np.zeros(len(self.pos), dtype=bool)
        for rows in columns:
            seen[rows] = True
        union = np.flatnonzero(seen).astype(np.int32)
        del seen
        rank = np.empty(len(self.pos), dtype=np.int32)
        rank[union] = np.arange(len(union), dtype=np.int32)
        return union, rank

    def _group_of(self, unique: tuple, rows: np.ndarray) -> np.ndarray:
        """The group (among the groups of conditions `unique`) of each of `rows`."""
        found = self._codes[unique]
        self._codes.move_to_end(unique)
        if self._group_map[0] is not found and len(rows) * 32 < len(self.pos):
            union, codes, cell_group = found  # few rows (an edit's): look each up, no map over every event
            group = cell_group[self.cell[rows]]
            if len(union):
                at = np.minimum(np.searchsorted(union, rows), len(union) - 1)
                inside = union[at] == rows
                group[inside] = codes[at[inside]]
            return group
        if self._group_map[0] is not found:
            union, codes, cell_group = found
            group = cell_group[self.cell]
            group[union] = codes
            self._group_map = (found, group)
        return self._group_map[1][rows]

    # ------------------------------------------------------------ threshold params

    def _sorted_column(self, compiled: CompiledStrategy, found: Threshold) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of the population events where the rest of the rule holds and the column is not NULL:
        one query, only those events."""
        stub = CompiledStrategy(compiled.strategy, {}, [], compiled.population,
                                _detectors(compiled, [found.rest, exp.column(found.column)]))
        query = exp.select("_pos", alias(ident(found.column), "v")).from_(source(stub, self.frame).subquery("src"))
        query = self._where(query, compiled).where(fill(":c IS NOT NULL", c=ident(found.column)))
        if not isinstance(found.rest, exp.Boolean):
            query = query.where(found.rest)  # a plain filter (NULL: not held), pushed into the scan
        with self._cursor() as cur:
            table = run_query(cur, query, compiled.name)
        rows = np.searchsorted(self.pos, table.column("_pos").to_numpy().astype(np.int64))
        raw = table.column("v").to_numpy(zero_copy_only=False)
        return rows, raw.astype(np.float32 if raw.dtype == np.float32 else np.float64)  # FLOAT compares as FLOAT

    def _table(self, compiled: CompiledStrategy, found: Threshold, other_keys: list[str]
               ) -> tuple[ThresholdTable, tuple]:
        """The threshold table of the rule over the other rules' groups (built once: one SQL pass at most)."""
        others = compiled.rules[:found.index] + compiled.rules[found.index + 1:]
        unique = tuple(sorted(set(other_keys)))
        tkey = self._table_key(found, other_keys)
        with self._lock:
            table = self._tables.get(tkey)
            if table is not None:
                self._tables.move_to_end(tkey)
                return table, unique
            building = self._building.get(tkey)
        if building is not None and building is not threading.current_thread():
            building.join()  # being built in the background (a first move's): wait for it, never build it twice
            return self._table(compiled, found, other_keys)
        stub = CompiledStrategy(compiled.strategy, compiled.params, others, compiled.population, compiled.detectors)
        self.groups(stub, other_keys, codes=True)  # fills the groups and row codes of `unique`
        rest, values = self._sorted_column(compiled, found)
        with self._lock:
            canon, group = self._groups[unique], self._group_of(unique, rest)
        table = ThresholdTable(values, rest, group, self.amount, canon, found.op)
        with self._lock:
            self._tables[tkey] = table
            _trim(self._tables, MAX_THRESHOLD_TABLES, self._budget(TABLE_BYTES_PER_EVENT), {tkey})
        return table, unique

    def threshold_groups(self, compiled: CompiledStrategy, found: Threshold, keys: list[str]) -> Groups:
        """Groups at the current value of a threshold param: a searchsorted and prefix sums, no SQL."""
        other_keys = keys[:found.index] + keys[found.index + 1:]
        table, unique = self._table(compiled, found, other_keys)
        value = compiled.params[found.param]
        with self._lock:
            if len(self._derived) > 4 * MAX_CACHED_CONDITIONS:
                self._derived.clear()
            self._derived[keys[found.index]] = (self._table_key(found, other_keys), value)  # its rows, if needed
        return self._remember(keys, self._place(table.groups(value, len(unique)), unique, keys, found.index))

    def curve_groups(self, compiled: CompiledStrategy, found: Threshold, values: list) -> list[Groups]:
        """Groups at every value of the threshold param (one table, one searchsorted per value)."""
        keys = [key_of(r.condition) for r in compiled.rules]
        other_keys = keys[:found.index] + keys[found.index + 1:]
        table, unique = self._table(compiled, found, other_keys)
        return [self._place(table.groups(v, len(unique)), unique, keys, found.index) for v in values]

    @staticmethod
    def _place(groups: Groups, unique: tuple, keys: list[str], index: int) -> Groups:
        return _select(groups, [len(unique) if i == index else unique.index(k) for i, k in enumerate(keys)])


def _detectors(compiled: CompiledStrategy, nodes: list[exp.Expression]) -> list[str]:
    """The strategy's detectors that these nodes or its population read (the score tables a query must join)."""
    used = set().union(*(referenced_columns(n) for n in nodes),
                       referenced_columns(compiled.population) if compiled.population is not None else set())
    return [d for d in compiled.detectors if d in used]


def _size(value) -> int:
    """Bytes of an array, a table, or a container of them."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, ThresholdTable):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_size(v) for v in value.values())
    return sum(_size(v) for v in value) if isinstance(value, (tuple, list)) else 0


def _trim(cache: OrderedDict, count: int, budget: int, keep: set) -> None:
    """Drop the least recently used entries (not those in `keep`) until at most `count` and `budget` bytes."""
    total = _size(cache)
    for key in list(cache):
        if len(cache) <= count and total <= budget:
            return
        if key not in keep:
            total -= _size(cache.pop(key))


def _select(groups: Groups, columns: list[int]) -> Groups:
    """The groups with their hit columns in the strategy's order (a condition may serve several rules)."""
    return Groups(groups.day, groups.label, groups.hits[:, columns], groups.count, groups.amount, groups.days)


def collapse(day: np.ndarray, label: np.ndarray, hits: np.ndarray, amount: np.ndarray, days: list,
             with_codes: bool = False):
    """Per-event arrays -> one group per distinct (day, label, hit pattern), by hashing one int64 key.

    Metrics then cost microseconds per strategy variant instead of passes over every event.
    """
    rules = hits.shape[1]
    if rules > MASK_BITS or len(days) >= 1 << (63 - MASK_BITS - 2):
        keys = np.column_stack([day, label, hits]).astype(np.int64)
        uniques, codes = np.unique(keys, axis=0, return_inverse=True)
        codes = codes.reshape(-1)
        g_day, g_label, g_hits = uniques[:, 0], uniques[:, 1], uniques[:, 2:].astype(bool)
    else:
        mask = hits.astype(np.int64) @ (np.int64(1) << np.arange(rules, dtype=np.int64)) if rules else \
            np.zeros(len(day), dtype=np.int64)
        key = mask | ((label.astype(np.int64) + 1) << MASK_BITS) | (day.astype(np.int64) << (MASK_BITS + 2))
        codes, uniques = _factorize(key)
        g_day = uniques >> (MASK_BITS + 2)
        g_label = ((uniques >> MASK_BITS) & 3) - 1
        g_hits = ((uniques[:, None] >> np.arange(rules, dtype=np.int64)) & 1).astype(bool)
    count = np.bincount(codes, minlength=len(g_day)).astype(np.int64)
    money = np.bincount(codes, weights=amount, minlength=len(g_day))
    groups = Groups(np.asarray(g_day, dtype=np.int64), np.asarray(g_label, dtype=np.int8), g_hits, count, money, days)
    return (groups, np.asarray(codes, dtype=np.int64)) if with_codes else groups


def _factorize(values: np.ndarray):
    """pandas.factorize (a hash table, faster than np.unique's sort), imported on first use: a CLI backtest reads
    the data version from this module and must not pay pandas' import for it."""
    import pandas as pd

    return pd.factorize(values)
