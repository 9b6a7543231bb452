"""Compile a strategy (rules + params + population) to checked SQL over the event frame."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from riskconsole import limits
from riskconsole.errors import ConfigError, DataError, ExpressionError, RiskConsoleError, raise_all
from riskconsole.lists import ListSet, lists_in
from riskconsole.names import INTERNAL_COLUMNS, META_TABLE, SCORES_TABLE
from riskconsole.sqlbuild import exp, fill, render

if TYPE_CHECKING:  # type names only: a cached backtest loads no config models (issue 14)
    from riskconsole.config import Dataset, Strategy

INTERNAL = INTERNAL_COLUMNS  # never visible to an expression (riskconsole.names)
SCORE_TABLE_PREFIX = "scores_"


@dataclass(frozen=True)
class CompiledRule:
    """A rule whose `when` has been checked and had its params substituted."""

    name: str
    action: str
    enabled: bool
    condition: exp.Expression


@dataclass(frozen=True)
class CompiledStrategy:
    """Everything needed to run a strategy: checked rule conditions, population, detectors used."""

    strategy: Strategy
    params: dict
    rules: list[CompiledRule]
    population: exp.Expression | None
    detectors: list[str] = field(default_factory=list)
    list_versions: dict[str, str] | None = None  # `lists` where the conditions are not kept (a cached plan's)
    literal_check: tuple | None = None  # (pairs, queries) of `literals.py` where the conditions are not kept

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def lists(self) -> dict[str, str]:
        """Name -> sha256 prefix of every list (`lists/NAME.csv`) the conditions read."""
        if self.list_versions is not None:
            return dict(self.list_versions)
        found: dict[str, str] = {}
        for node in [*(r.condition for r in self.rules), self.population]:
            found.update(lists_in(node))
        return dict(sorted(found.items()))


@dataclass(frozen=True)
class Frame:
    """What a strategy can read: the frame's columns, detector score columns, and what is hidden.

    `stale` names detectors whose scores were not computed for the loaded events (another data version, or
    none): a strategy may name them, but `source` refuses to join them. `lists` are the workspace's lists
    (`column IN LIST name`; None: no list may be named).
    """

    columns: dict[str, str]
    scores: dict[str, str]
    hidden: tuple[str, ...]
    stale: tuple[str, ...] = ()
    weight: str | None = None  # an entity frame's row weight (`entities.py`): 0 on its money rows
    lists: ListSet | None = None
    roles: tuple[tuple[str, str], ...] = ()  # (role, its column) of the dataset, for "write that column" hints
    absent: tuple[tuple[str, str], ...] = ()  # an entity frame's: (event column or feature, why a rule cannot read it)

    def parse(self, text: str, params: dict | None, where: str) -> exp.Expression:
        """A rule condition or population checked against this frame (see `expressions.parse_visible`); on an
        entity frame, an unknown column that the events have says why the level cannot read it."""
        from riskconsole.expressions import parse_visible  # the checker loads sqlglot's parser and dialects

        try:
            return parse_visible(text, self.visible, self.hidden, params, where, self.list_refs(), dict(self.roles))
        except ExpressionError as err:
            if not self.absent:
                raise
            raise ExpressionError(absent_hint(str(err), dict(self.absent))) from None

    def count(self) -> exp.Expression:
        """What a group's count is: its rows, or on an entity frame the sum of their weights."""
        return fill("count(*)") if self.weight is None else fill("sum(:w)", w=exp.column(self.weight, quoted=True))

    def weights(self) -> list[exp.Expression]:
        """The weight column, to carry through a subquery (none on the event frame)."""
        return [] if self.weight is None else [exp.column(self.weight, quoted=True)]

    def counted(self) -> list[exp.Expression]:
        """Filters keeping the rows that are decisions (all but an entity frame's money rows)."""
        return [] if self.weight is None else [fill(":w = 1", w=exp.column(self.weight, quoted=True))]

    def list_refs(self) -> FrameLists | None:
        """What the expression checker needs to render `IN LIST` against this frame."""
        return FrameLists(self) if self.lists is not None else None

    @property
    def visible(self) -> list[str]:
        """Columns an expression may name: everything but the label, its derivatives and internals."""
        names = [c for c in self.columns if c not in self.hidden and c not in INTERNAL]
        return names + [s for s in self.scores if s not in self.columns]


def absent_hint(message: str, absent: dict[str, str]) -> str:
    """An "unknown column 'amount' (...)" of an entity-level rule where `amount` is an event column or a feature the
    level cannot read (`absent`: name -> why): the message says why, in place of the did-you-mean (which offered
    whatever entity column was nearest)."""
    import re

    found = re.search(r"unknown column '([^']*)'", message)
    why = absent.get(found.group(1)) if found else None
    if why is None:
        return message
    return f"{message[:found.end()]} {why}"


@dataclass(frozen=True)
class FrameLists:
    """`IN LIST` over a frame: list names, and the semi-join cast to the compared column's type."""

    frame: Frame

    def names(self) -> list[str]:
        return self.frame.lists.names()

    def render(self, name: str, column: exp.Column, where: str) -> exp.Expression:
        types = {**{s: "DOUBLE" for s in self.frame.scores}, **self.frame.columns}
        return self.frame.lists.render(name, column.name, types.get(column.name, "VARCHAR"), where)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = 'main'").fetchall()}


def score_versions(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, str | None]]:
    """(data version of the loaded events, detector -> data version its scores were computed for)."""
    tables = _tables(con)
    current = None
    if META_TABLE in tables:
        columns = {c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {META_TABLE})").fetchall()}
        current = con.execute(f"SELECT version FROM {META_TABLE}").fetchall()[0][0] if "version" in columns else None
    stamps = dict(con.execute(f"SELECT detector, data_version FROM {SCORES_TABLE}").fetchall()) \
        if SCORES_TABLE in tables else {}
    return current, stamps


def frame_of(con: duckdb.DuckDBPyConnection, dataset: Dataset, lists: ListSet | None = None) -> Frame:
    """Read the frame's columns and the detector score tables (with which of them are stale) from the database;
    `lists` are the workspace's lists a strategy may name."""
    columns = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'frame' "
        "ORDER BY ordinal_position").fetchall())
    tables = sorted(t for t in _tables(con) if t.startswith(SCORE_TABLE_PREFIX))
    current, stamps = score_versions(con)
    scores = {t[len(SCORE_TABLE_PREFIX):]: t for t in tables}
    scores.update({d: SCORE_TABLE_PREFIX + d for d in stamps if d not in scores})
    stale = tuple(d for d in scores if current is None or stamps.get(d) != current or scores[d] not in tables)
    return Frame(columns, scores, tuple(dataset.hidden_columns), stale, lists=lists,
                 roles=tuple(dataset.columns.role_columns().items()))


def data_version(con: duckdb.DuckDBPyConnection) -> tuple:
    """What the evaluator's cache is keyed by: the data version of the last load (`_meta.version`) and every
    detector's score stamp (a train re-scores without a new load)."""
    out = []
    for query in (f"SELECT version FROM {META_TABLE}",
                  f"SELECT detector, data_version, CAST(scored_at AS VARCHAR) FROM {SCORES_TABLE} ORDER BY detector"):
        try:
            out.append(tuple(con.execute(query).fetchall()))
        except duckdb.Error:
            out.append(None)
    return tuple(out)


def require_params(strategy: Strategy, names, label: str, flag: str) -> None:
    """Every name is a param of the strategy; the first that is not is a one-line error."""
    for name in names:
        if name not in strategy.params:
            defined = ", ".join(strategy.params) or "none"
            raise ConfigError(f"{label}: {flag} {name}: the strategy has no param '{name}' (defined: {defined})")


def resolve_params(strategy: Strategy, overrides: dict | None, label: str) -> dict:
    """The strategy's params with `--set` overrides; an unknown override, or one that would break a bound of
    the strategy file (e.g. its size once params are substituted), is an error."""
    require_params(strategy, overrides or {}, label, "--set")
    params = {**strategy.params, **(overrides or {})}
    if overrides:
        from riskconsole.config import Strategy, parse_model

        data = {**strategy.model_dump(mode="json", by_alias=True), "params": params}
        params = parse_model(data, Strategy, f"{label} with --set {', '.join(overrides)}").params  # as validated
    return params


def compile_strategy(strategy: Strategy, frame: Frame, label: str, overrides: dict | None = None,
                     con: duckdb.DuckDBPyConnection | None = None, every: bool = False) -> CompiledStrategy:
    """Check every expression against the frame; with `con`, also check each is boolean.

    `every` (validate): a failing rule does not stop the check; all that fail are raised together, in file order.

    Raises:
        ConfigError / ExpressionError: one line naming the file and the rule (`Problems`: one such line each).
    """
    params = resolve_params(strategy, overrides, label)
    found = _undefined_params(strategy, params, label)
    if found and not every:
        raise found[0][1]
    rules = []
    deadline = time.monotonic() + limits.query_seconds()  # checking huge expressions is work too
    for rule in strategy.rules:
        where = f"{label}: rule '{rule.name}'"
        node = _parsed(frame, rule.when, params, (label, f"rule '{rule.name}'"), found, every)
        if node is not None:
            rules.append(CompiledRule(rule.name, rule.action, rule.enabled, node))
        if time.monotonic() > deadline:
            raise _too_long(where)
    population = None
    if strategy.population:
        population = _parsed(frame, strategy.population, params, (label, "population"), found, every)
    nodes = [r.condition for r in rules] + ([population] if population is not None else [])
    from riskconsole.expressions import referenced_columns

    used = set().union(*(referenced_columns(n) for n in nodes))
    detectors = [d for d in frame.scores if d in used and d not in frame.columns]
    compiled = CompiledStrategy(strategy, params, rules, population, detectors)
    if con is not None:
        found += check_boolean(con, compiled, frame, label, every, deadline)
    order = {f"rule '{r.name}'": i for i, r in enumerate(strategy.rules)}
    raise_all([err for _, err in sorted(found, key=lambda item: order.get(item[0], len(order)))])
    return compiled


def _parsed(frame: Frame, text: str, params: dict, place: tuple[str, str], found: list[tuple[str, RiskConsoleError]],
            every: bool) -> exp.Expression | None:
    """`frame.parse` of the item at `place` (file label, item); with `every`, a refusal is added to `found`
    (item, error) and gives None. An item already in `found` (an undefined param) is not parsed again."""
    label, item = place
    if any(seen == item for seen, _ in found):
        return None
    try:
        return frame.parse(text, params, f"{label}: {item}")
    except RiskConsoleError as err:
        if not every:
            raise
        found.append((item, err))
        return None


def _undefined_params(strategy: Strategy, params: dict, label: str) -> list[tuple[str, ExpressionError]]:
    """(item, error) for each rule, and the population, naming a `$param` that is not defined."""
    from riskconsole.expressions import referenced_params

    texts = [(f"rule '{r.name}'", r.when) for r in strategy.rules] + [("population", strategy.population or "")]
    found = []
    for where, text in texts:
        missing = sorted(referenced_params(text) - set(params))
        if missing:
            defined = ", ".join(params) or "none"
            found.append((where, ExpressionError(f"{label}: {where}: ${missing[0]} is not defined in params "
                                                 f"(defined: {defined})")))
    return found


def _check_params_used(strategy: Strategy, params: dict, label: str) -> None:
    """Raise the first undefined `$param` of the strategy's expressions."""
    found = _undefined_params(strategy, params, label)
    if found:
        raise found[0][1]


def source(compiled: CompiledStrategy, frame: Frame) -> exp.Select:
    """`SELECT * FROM frame` joined with the score table of every detector the strategy reads.

    Raises:
        DataError: a detector's scores were computed for other events (an earlier load) or are missing.
    """
    stale = [d for d in compiled.detectors if d in frame.stale]
    if stale:
        raise DataError(f"strategy '{compiled.name}': detector '{stale[0]}' was scored on an earlier load (its scores "
                        f"belong to other events): run `riskconsole train detectors/{stale[0]}.yaml`")
    query = exp.select("f.*", *[exp.column(d, table=f"s{i}", quoted=True) for i, d in enumerate(compiled.detectors)])
    query = query.from_(exp.to_table("frame").as_("f"))
    for i, detector in enumerate(compiled.detectors):
        query = query.join(exp.to_table(frame.scores[detector]).as_(f"s{i}"), on=fill(
            "f._pos = :p", p=exp.column("_pos", table=f"s{i}")), join_type="LEFT")
    return query


def check_boolean(con: duckdb.DuckDBPyConnection, compiled: CompiledStrategy, frame: Frame, label: str,
                  every: bool = False, deadline: float | None = None) -> list[tuple[str, RiskConsoleError]]:
    """Every rule condition and the population must be boolean (DuckDB binds them without running).

    One DESCRIBE binds them all; only when it fails is each bound alone, to name the one that fails. Raises the first
    failure, or with `every` returns each as (item, error)."""
    relation = source(compiled, frame)
    checks = [(f"rule '{r.name}'", r.condition) for r in compiled.rules]
    if compiled.population is not None:
        checks.append(("population", compiled.population))
    if not checks:
        return []

    def describe(nodes: list[exp.Expression]) -> list[str]:
        query = exp.select(*[exp.alias_(n, f"v{i}") for i, n in enumerate(nodes)]).from_(relation.subquery("src"))
        return [row[1] for row in con.execute("DESCRIBE " + render(query)).fetchall()]

    found: list[tuple[str, RiskConsoleError]] = []
    try:
        typed = list(zip(checks, describe([node for _, node in checks])))
    except duckdb.Error:
        typed = []
        for where, node in checks:
            try:
                typed += [((where, node), describe([node])[0])]
            except duckdb.Error as err:
                from riskconsole.binding import type_mismatch

                found.append((where, ExpressionError(f"{label}: {where}: {type_mismatch(con, relation, node, err)}")))
                if not every:
                    raise found[0][1] from None
    for (where, _), dtype in typed:
        if dtype not in ("BOOLEAN", '"NULL"', "NULL"):
            found.append((where, ExpressionError(f"{label}: {where}: must be true/false, but gives {dtype} "
                                                 "(add a comparison, e.g. `x > 0`)")))
            if not every:
                raise found[-1][1]
    return found + _run_failures(con, relation, [check for check, _ in typed], label, every, deadline)


def _run_failures(con: duckdb.DuckDBPyConnection, relation: exp.Select, checks: list[tuple[str, exp.Expression]],
                  label: str, every: bool, deadline: float | None = None) -> list[tuple[str, RiskConsoleError]]:
    """The conditions that bind but fail whatever the rows hold (`amount > 'lots'`), run on one row of NULLs
    (`binding.NullRow`; only conditions holding a text constant run): all at once; when that fails, which fail in one
    more query, and each that does alone for its error and the part to name. Raises the first, or with `every`
    returns each as (item, error). Stopped at `deadline` (`time.monotonic()`; default: the query time limit from
    now), as the check of the expressions' text is: a query past it is interrupted."""
    from riskconsole.binding import MAX_PROBES, MAX_RUN_PROBES, NullRow, has_text

    checks = [(where, node) for where, node in checks if has_text(node)]
    if not checks:
        return []
    deadline = time.monotonic() + limits.query_seconds() if deadline is None else deadline
    row = NullRow(con, relation)
    found: list[tuple[str, RiskConsoleError]] = []
    budget = MAX_RUN_PROBES  # the parts probed for all failing conditions together
    try:
        with limits.query_time_limit(con, label, max(deadline - time.monotonic(), 0.001)):
            if row.error([node for _, node in checks]) is None:
                return []
            for (where, node), failed in zip(checks, row.failing([node for _, node in checks])):
                if time.monotonic() > deadline:
                    raise _too_long(f"{label}: {where}")
                why = row.problem(node, min(MAX_PROBES, budget)) if failed else None
                if why is not None:
                    budget -= min(MAX_PROBES, budget)
                    found.append((where, ExpressionError(f"{label}: {where}: {why}")))
                    if not every:
                        raise found[0][1]
    except limits.QueryTimeout:
        raise _too_long(label) from None
    return found


def _too_long(where: str) -> ConfigError:
    """Checking a strategy's expressions ran past the query time limit."""
    return ConfigError(f"{where}: checking the strategy's expressions took longer than {limits.query_seconds():g} s "
                       f"(limit: ${limits.QUERY_SECONDS_ENV}); split or simplify its largest expressions")
