"""Outcomes production hid: bounds and inverse-propensity estimates when blocked events get no label (DESIGN §6.2).

An order production blocked never ships, so it never gets a chargeback: its label is missing not at
random. When the dataset maps `prod_action` (and optionally `explore` / `propensity`), the backtest's one
grouped pass is split further by observability class (`backtest.groups_query` with `classes`), and reports:

- `observability`: how many events are observed (labelled) and unobservable (no label because
  production blocked them and did not explore them), also split by the candidate's decision;
- `bounds`: each metric's [worst, best] over every assignment of fraud/good to the unobservable
  events. Precision, recall, f1 and amount recall are extreme at a vertex of the box of fraud counts
  per cell (cells: the events the strategy flags / allows) because each is linear or linear-fractional
  in those counts; money is separable per event, so its extremes are sums of per-event extremes;
- `estimate`: where explore rows exist, the metric with production-blocked events represented by the
  explored ones, weighted 1/propensity and self-normalised, per cell of the strategy's decision, to the
  number of production-blocked events there (Hajek, post-stratified), with a day-bootstrap interval.

Comparisons bound the deltas over a JOINT assignment (one outcome per event for both sides).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import TYPE_CHECKING

import numpy as np

from riskconsole.backtest import BITS, Groups, Runner, Window, day_index, rule_hits, run_groups
from riskconsole.errors import RiskConsoleError
from riskconsole.metrics import ALLOW, BLOCK, PARTS, REVIEW, RuleSet, decide, parts, percentile, rates, scalar
from riskconsole.sqlbuild import exp, fill, ident, lit
from riskconsole.strategy import CompiledStrategy, Frame

if TYPE_CHECKING:
    from riskconsole.config import Business, Dataset
    from riskconsole.compare import Joint

LET_THROUGH, PROD_BLOCKED, EXPLORED = 0, 1, 2  # observability class of a group: what production did
VERTEX_METRICS = ("precision", "recall", "f1", "amount_recall")
MONEY_METRICS = ("net_benefit", "fraud_amount_stopped", "good_amount_blocked")
LOWER_IS_BETTER = ("good_amount_blocked",)
ESTIMATE_METRICS = ("precision", "recall", "f1", "net_benefit", "fraud_amount_stopped")
ASSUMPTIONS = {
    "worst": "no assumption: every metric is judged at its worst case over the unobservable outcomes",
    "good": "every unobservable event (production blocked it, no label) counts as good",
    "fraud": "every unobservable event (production blocked it, no label) counts as fraud",
    "fraud-rate-of-explored": "every unobservable event counts as fraud with the propensity-weighted fraud rate "
                              "of the explored events ({rate})",
}


@dataclass
class Outcomes:
    """Events grouped by (day, label, rule mask, observability class)."""

    day: np.ndarray          # int64 day index from `days[0]`
    label: np.ndarray        # int8: 1, 0, -1 unknown
    hits: np.ndarray         # bool (groups x rules)
    cls: np.ndarray          # int8: LET_THROUGH, PROD_BLOCKED (not explored) or EXPLORED
    count: np.ndarray        # int64 events
    amount: np.ndarray       # float64 amount summed
    amount_pos: np.ndarray   # float64 sum of the positive amounts (money bounds are exact for any sign)
    weight: np.ndarray       # float64 sum of 1 / propensity over explored events (0 elsewhere)
    weighted_amount: np.ndarray  # float64 sum of amount / propensity over explored events
    days: list

    @property
    def unobservable(self) -> np.ndarray:
        """Groups of events without a label because production blocked them (and did not explore them)."""
        return (self.cls == PROD_BLOCKED) & (self.label == -1)

    def take(self, keep: np.ndarray, cols: list[int] | None = None) -> Outcomes:
        """A subset of groups (and of rule columns)."""
        hits = self.hits[keep] if cols is None else self.hits[keep][:, cols]
        return Outcomes(self.day[keep], self.label[keep], hits, self.cls[keep], self.count[keep], self.amount[keep],
                        self.amount_pos[keep], self.weight[keep], self.weighted_amount[keep], self.days)


# ------------------------------------------------------------------ the grouped pass


INTEGRAL = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT"}


def _flag(dataset: Dataset, role: str, types: dict[str, str] | None = None) -> exp.Expression:
    """Whether a 0/1 role column (`explore`) says 1: its text is '1' or 'true', any case, spaces around. An integer
    or boolean column (`types`: the frame's column types) is compared as it is: the same answer without turning
    every value into text (~0.04 of the grouped pass's ~0.33 CPU-s at 2M events)."""
    column = getattr(dataset.columns, role)
    if not column:
        return lit(False)
    kind = (types or {}).get(column, "").upper()
    if kind in INTEGRAL:  # an integer's text has no space nor letter: it reads '1' exactly when it is 1
        return fill("coalesce(:c = 1, false)", c=ident(column))
    if kind == "BOOLEAN":  # its text is 'true' or 'false'
        return fill("coalesce(:c, false)", c=ident(column))
    return fill("coalesce(lower(trim(CAST(:c AS VARCHAR))) IN ('1', 'true'), false)", c=ident(column))


def observability_class(dataset: Dataset, types: dict[str, str] | None = None
                        ) -> tuple[exp.Expression, exp.Expression]:
    """Per event: its observability class (LET_THROUGH, PROD_BLOCKED, EXPLORED) and 1/propensity (0 unless explored);
    `types`: the frame's column types (cheaper flags for integer and boolean columns, same answer).

    The one definition both the backtest's grouped pass and the console's warm path read."""
    roles = dataset.columns
    explored = _flag(dataset, "explore", types)
    blocked = fill("coalesce(lower(trim(CAST(:p AS VARCHAR))) = 'block', false)", p=ident(roles.prod_action))
    cls = fill("CASE WHEN :e THEN 2 WHEN :b THEN 1 ELSE 0 END", e=explored, b=blocked)
    inverse = fill("CASE WHEN :e THEN 1.0 / CAST(:p AS DOUBLE) ELSE 0.0 END", e=explored.copy(),
                   p=ident(roles.propensity)) if roles.explore else lit(0.0)
    return cls, inverse


def outcomes_of(groups: Groups, rules: int) -> Outcomes:
    """The outcome groups of a grouped pass run with `classes` (`backtest.run_groups`): its rows with a class, by
    (day, label, class, rule mask) in that order."""
    found = groups.classes
    if found is None:
        raise ValueError("outcomes_of: the grouped pass ran without observability classes")
    masks = [f"m{i}" for i in range((rules - 1) // BITS + 1)]
    classes = found["cls"].astype(np.int64)  # -1: a metric group's row
    keys = [found[k].astype(np.int64) for k in ("y", *masks)]
    first = np.datetime64(groups.days[0], "D") if groups.days else np.datetime64("1970-01-01", "D")
    day = day_index(found["day"], first)
    rows = np.flatnonzero(classes >= 0)
    rows = rows[np.lexsort([k[rows] for k in (*keys[1:][::-1], classes, keys[0], day)])]

    def floats(name: str) -> np.ndarray:
        return np.nan_to_num(found[name].astype(np.float64))[rows]

    return Outcomes(day[rows], keys[0][rows].astype(np.int8),
                    rule_hits(found, rules)[rows], classes[rows].astype(np.int8), found["n"].astype(np.int64)[rows],
                    floats("amt"), floats("pos"), floats("w"), floats("wamt"), groups.days)


def run_outcomes(con: Runner, compiled: CompiledStrategy, frame: Frame, dataset: Dataset,
                 window: Window) -> Outcomes:
    """The outcome groups of one strategy from the backtest's grouped pass (one scan)."""
    groups = run_groups(con, compiled, frame, dataset, window, classes=observability_class(dataset, frame.columns))
    return outcomes_of(groups, len(compiled.rules))


# ------------------------------------------------------------------ one strategy


def _sums(action: np.ndarray, label: np.ndarray, count: np.ndarray, amount: np.ndarray, business: Business) -> dict:
    return {k: v.sum() for k, v in parts(action, label, count, amount, business.review_catch_rate).items()}


def completed(o: Outcomes, action: np.ndarray, fraud: np.ndarray, business: Business) -> dict:
    """Summed parts with every unobservable group labelled fraud where `fraud`, good elsewhere."""
    label = np.where(o.unobservable, np.where(fraud, 1, 0), o.label).astype(np.int8)
    return _sums(action, label, o.count, o.amount, business)


def observability(o: Outcomes, action: np.ndarray) -> dict:
    """Event counts: observed (labelled), unobservable, explored, other unlabelled; by the strategy's decision."""
    def counts(sel: np.ndarray) -> dict:
        return {"observed": int(o.count[sel & (o.label != -1)].sum()),
                "unobservable": int(o.count[sel & o.unobservable].sum())}

    everything = np.ones(len(o.count), dtype=bool)
    return {**counts(everything), "explored": int(o.count[o.cls == EXPLORED].sum()),
            "explored_labelled": int(o.count[(o.cls == EXPLORED) & (o.label != -1)].sum()),
            "production_blocked": int(o.count[o.cls != LET_THROUGH].sum()),
            "unlabelled_other": int(o.count[(o.label == -1) & ~o.unobservable].sum()),
            "by_action": {name: counts(action == code)
                          for name, code in (("allow", ALLOW), ("review", REVIEW), ("block", BLOCK))}}


def _pair(values: list[float], metric: str) -> list[float | None]:
    """[worst, best] of a metric's values over the vertices (NaN = undefined there is skipped)."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return [None, None]
    lo, hi = float(min(finite)), float(max(finite))
    return [hi, lo] if metric in LOWER_IS_BETTER else [lo, hi]


def _vertex_bounds(o: Outcomes, cells: list[np.ndarray], side_rates) -> dict:
    """Extremes of the count metrics over every all-fraud / all-good choice per cell of unobservable groups."""
    values: dict[str, list[float]] = {m: [] for m in VERTEX_METRICS}
    for choice in product((False, True), repeat=len(cells)):
        fraud = np.zeros(len(o.count), dtype=bool)
        for cell, is_fraud in zip(cells, choice):
            fraud |= cell & is_fraud
        r = side_rates(fraud)
        for m in VERTEX_METRICS:
            values[m].append(float(r[m]))
    return {m: _pair(v, m) for m, v in values.items()}


def _per_unit(action: np.ndarray, business: Business) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each money metric's label-dependent value per unit of amount of every group, if fraud and if good (from
    `metrics.parts`/`rates`, the one home of the formulas: count 0 leaves out what labels do not change)."""
    zeros, ones = np.zeros(len(action)), np.ones(len(action))
    catch = business.review_catch_rate
    fraud = rates(parts(action, np.ones(len(action), np.int8), zeros, ones, catch), business)
    good = rates(parts(action, np.zeros(len(action), np.int8), zeros, ones, catch), business)
    return {m: (fraud[m], good[m]) for m in MONEY_METRICS}


def _separable(o: Outcomes, if_fraud: np.ndarray, if_good: np.ndarray) -> tuple[float, float]:
    """(min, max) over labels of sum over unobservable events of amount x (if_fraud or if_good), exact for any sign."""
    u = o.unobservable
    pos, neg = o.amount_pos[u], o.amount[u] - o.amount_pos[u]
    lo_k, hi_k = np.minimum(if_fraud, if_good)[u], np.maximum(if_fraud, if_good)[u]
    return float((pos * lo_k + neg * hi_k).sum()), float((pos * hi_k + neg * lo_k).sum())


def _money_bounds(o: Outcomes, actions: list[np.ndarray], signs: list[float], observed: dict,
                  business: Business) -> dict:
    """Money metrics (of one side, or a delta with signs +1/-1): observed value plus the separable extremes."""
    values = [_per_unit(action, business) for action in actions]
    out = {}
    for metric in MONEY_METRICS:
        if_fraud = sum(sign * v[metric][0] for sign, v in zip(signs, values))
        if_good = sum(sign * v[metric][1] for sign, v in zip(signs, values))
        lo, hi = _separable(o, if_fraud, if_good)
        out[metric] = _pair([observed[metric] + lo, observed[metric] + hi], metric)
    return out


def _by_kind(o: Outcomes, action: np.ndarray) -> tuple[Outcomes, np.ndarray]:
    """The groups summed per (decision, label, class), and the decision of each: every bound is a sum over groups
    of terms linear in (count, amount, positive amount) with coefficients set by those three, so bounds over these
    (at most 27) groups are the bounds over all of them."""
    kind = (action.astype(np.int64) * 3 + (o.label.astype(np.int64) + 1)) * 3 + o.cls
    n = np.bincount(kind, weights=o.count, minlength=27).round().astype(np.int64)
    keep = np.flatnonzero(n)
    amount, pos, weight, weighted = (np.bincount(kind, weights=v, minlength=27)[keep]
                                     for v in (o.amount, o.amount_pos, o.weight, o.weighted_amount))
    return Outcomes(np.zeros(len(keep), dtype=np.int64), (keep // 3 % 3 - 1).astype(np.int8),
                    np.zeros((len(keep), 0), dtype=bool), (keep % 3).astype(np.int8), n[keep], amount, pos, weight,
                    weighted, o.days), (keep // 9).astype(np.int8)


def bounds(o: Outcomes, action: np.ndarray, business: Business) -> dict:
    """[worst, best] of each label-dependent metric over every outcome of the unobservable events."""
    o, action = _by_kind(o, action)
    flagged = action != ALLOW
    cells = [o.unobservable & flagged, o.unobservable & ~flagged]
    out = _vertex_bounds(o, cells, lambda fraud: rates(completed(o, action, fraud, business), business))
    observed = rates(_sums(action, o.label, o.count, o.amount, business), business)
    out.update(_money_bounds(o, [action], [1.0], {m: float(observed[m]) for m in MONEY_METRICS}, business))
    return out


# ------------------------------------------------------------------ the inverse-propensity estimate


ESTIMATE_PARTS = ("tp", "fp", "fn", "stopped", "good_blocked", "reviews")  # what `ESTIMATE_METRICS` are made of


def _strata_days(o: Outcomes, action: np.ndarray, business: Business) -> tuple[np.ndarray, list[str]]:
    """Per day (a row each), in columns: the parts `names` of events production let through; for each cell of the
    strategy's decision (flagged, then allowed), the 1/propensity-weighted parts of explored events; the number of
    production-blocked events per cell; the sum of 1/propensity of the explored ones per cell.

    Every part is linear in a group's (count, amount) with coefficients set by its (decision, label, class): the
    groups are summed per (day, that kind) first (four bincounts), and each column is those sums times the
    coefficients `parts` gives the 27 kinds (one einsum), not a `parts` pass over every group per column."""
    names, days = list(ESTIMATE_PARTS), len(o.days)
    kind = (action.astype(np.int64) * 3 + (o.label.astype(np.int64) + 1)) * 3 + o.cls
    bins = o.day * 27 + kind
    sums = np.stack([np.bincount(bins, weights=v, minlength=days * 27).reshape(-1, 27)[:days]
                     for v in (o.count, o.amount, o.weight, o.weighted_amount)])  # (4 values, days, 27 kinds)
    return np.einsum("vdk,vkc->dc", sums, _strata_coefficients(business.review_catch_rate)), names


@lru_cache(maxsize=8)
def _strata_coefficients(catch_rate: float) -> np.ndarray:
    """(4 values: count, amount, weight, weighted amount) x (27 kinds) x (columns of `_strata_days`): what one unit of
    each value of a group of each kind adds to each column, from `parts` (the one home of the formulas)."""
    grid = np.array([(a, y, c) for a in (ALLOW, REVIEW, BLOCK) for y in (-1, 0, 1) for c in range(3)])
    action, label, cls = grid[:, 0].astype(np.int8), grid[:, 1].astype(np.int8), grid[:, 2]
    through, explored, blocked = cls == LET_THROUGH, cls == EXPLORED, cls != LET_THROUGH
    one, zero = np.ones(27), np.zeros(27)

    def unit(scale: np.ndarray) -> list[np.ndarray]:  # per value: the parts of one unit of it in the kinds `scale`
        per_count = parts(action, label, one * scale, zero, catch_rate)
        per_amount = parts(action, label, zero, one * scale, catch_rate)
        return [np.stack([per_count[k] for k in ESTIMATE_PARTS], axis=1),
                np.stack([per_amount[k] for k in ESTIMATE_PARTS], axis=1)]

    width = len(ESTIMATE_PARTS)
    out = np.zeros((4, 27, 3 * width + 4))
    out[0, :, :width], out[1, :, :width] = unit(through)
    for j, cell in enumerate((action != ALLOW, action == ALLOW)):
        at = slice((j + 1) * width, (j + 2) * width)
        out[2, :, at], out[3, :, at] = unit(explored & cell)  # weight and weighted amount play count and amount
        out[0, :, 3 * width + j] = blocked & cell
        out[2, :, 3 * width + 2 + j] = explored & cell
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _day_draws(days: int, n: int, seed: int) -> np.ndarray:
    """`n` day-bootstrap resamples (how many times each day is drawn), the same for every strategy of a window:
    drawn once (1000 multinomials cost milliseconds per console answer), read-only."""
    draws = np.random.default_rng(seed).multinomial(days, np.full(days, 1 / days), size=n).astype(float) \
        if n > 0 and days else np.zeros((0, days))
    draws.setflags(write=False)
    return draws


def estimate(o: Outcomes, action: np.ndarray, business: Business, n: int = 1000, seed: int = 7,
             level: float = 0.95) -> dict | None:
    """Self-normalised inverse-propensity estimate of each metric, with a day-bootstrap interval (None: no explore).

    Production-blocked events are represented by the explored ones, each weighted 1/propensity; within each cell
    of the strategy's decision (flagged, allowed: known for every event) the weights are scaled to sum to the
    number of production-blocked events there (Hajek, post-stratified), so the estimate stays inside the bounds;
    where a cell has blocked events but no explored one, all explored events are scaled to all blocked ones
    (plain Hajek). Events production let through count once.
    """
    if not (o.weight[o.cls == EXPLORED] > 0).any():
        return None
    strata, names = _strata_days(o, action, business)
    m = len(names)

    def metric_values(k: np.ndarray) -> dict:
        # every stratum's sums resampled in one product; einsum, not BLAS: its threads spin on a busy machine
        # (4 ms of CPU for what one thread does in 1)
        r = np.einsum("...d,dc->...c", k, strata)
        base, values = r[..., :m], [r[..., m:2 * m], r[..., 2 * m:3 * m]]
        counts, weights = [r[..., 3 * m], r[..., 3 * m + 1]], [r[..., 3 * m + 2], r[..., 3 * m + 3]]
        with np.errstate(divide="ignore", invalid="ignore"):
            cells = base + sum(np.where(c > 0, c / wt, 0.0)[..., None] * v for c, wt, v in zip(counts, weights, values))
            pooled_scale = np.where(sum(counts) > 0, sum(counts) / sum(weights), 0.0)
            pooled = base + pooled_scale[..., None] * sum(values)
        informed = np.logical_and.reduce([(c == 0) | (wt > 0) for c, wt in zip(counts, weights)])
        sums = np.where(informed[..., None], cells, pooled)  # a cell without explored events: no post-stratifying
        found = {name: sums[..., i] for i, name in enumerate(names)}
        unused = np.zeros(sums.shape[:-1])  # parts no ESTIMATE_METRICS reads (rates gives NaN for their ratios)
        return rates({**{k: unused for k in PARTS if k not in found}, **found}, business)

    point = metric_values(np.ones(len(o.days)))
    resampled = metric_values(_day_draws(len(o.days), n, seed))
    tail = (1 - level) / 2 * 100
    every = np.stack([resampled[metric] for metric in ESTIMATE_METRICS])
    together = percentile(every, [tail, 100 - tail], axis=1).T.tolist() \
        if every.size and np.isfinite(every).all() else None  # one call when no resample is undefined
    out = {}
    for i, metric in enumerate(ESTIMATE_METRICS):
        finite = every[i][np.isfinite(every[i])]
        interval = together[i] if together is not None else \
            [float(v) for v in percentile(finite, [tail, 100 - tail])] if len(finite) and len(finite) >= 0.9 * n \
            else None
        out[metric] = {"value": scalar(point[metric]), "interval": interval}
    return out


# ------------------------------------------------------------------ explicit assumptions


def parse_assumption(text: str | None) -> str:
    """`unobserved=good` (or just `good`) to the assumption's name; None means the worst case.

    Raises:
        RiskConsoleError: an unknown assumption (one line, with the choices).
    """
    if not text:
        return "worst"
    key, _, value = str(text).strip().partition("=")
    name = value.strip() if value else key.strip()
    if (value and key.strip() != "unobserved") or name not in ASSUMPTIONS:
        raise RiskConsoleError(f"--assume '{text}': write unobserved=ASSUMPTION with one of "
                               f"{', '.join(ASSUMPTIONS)} (default worst: judge at the worst case)")
    return name


def explored_fraud_rate(o: Outcomes) -> float | None:
    """Propensity-weighted fraud rate of the labelled explored events."""
    sel = (o.cls == EXPLORED) & (o.label != -1)
    total = float(o.weight[sel].sum())
    return float(o.weight[sel & (o.label == 1)].sum()) / total if total else None


def assumed_rate(o: Outcomes, assumption: str) -> float:
    """The fraud probability given to each unobservable event under an assumption.

    Raises:
        RiskConsoleError: fraud-rate-of-explored without labelled explored events.
    """
    if assumption == "fraud-rate-of-explored":
        rate = explored_fraud_rate(o)
        if rate is None:
            raise RiskConsoleError("--assume unobserved=fraud-rate-of-explored: no explored event has a label in this "
                                   "window (map columns.explore, or choose good / fraud)")
        return rate
    return 1.0 if assumption == "fraud" else 0.0


def assumed_sums(o: Outcomes, action: np.ndarray, rate: float, business: Business) -> dict:
    """Summed parts with each unobservable group split into `rate` fraud and `1 - rate` good."""
    u = o.unobservable
    label = np.concatenate([o.label, np.ones(u.sum(), np.int8), np.zeros(u.sum(), np.int8)])
    act = np.concatenate([action, action[u], action[u]])
    count = np.concatenate([o.count * ~u, o.count[u] * rate, o.count[u] * (1 - rate)])
    amount = np.concatenate([o.amount * ~u, o.amount[u] * rate, o.amount[u] * (1 - rate)])
    return _sums(act, label, count, amount, business)


def assumption_text(assumption: str, rate: float) -> str:
    """The assumption as the report prints it."""
    return ASSUMPTIONS[assumption].format(rate=f"{rate:.2%}")


def _assumed(values: dict) -> dict:
    return {m: scalar(values[m]) for m in (*VERTEX_METRICS, *MONEY_METRICS)}


# ------------------------------------------------------------------ comparisons


@dataclass
class JointOutcomes:
    """Outcome groups with the union of both strategies' conditions, and each side's decisions."""

    outcomes: Outcomes
    candidate: np.ndarray
    baseline: np.ndarray
    in_candidate: np.ndarray
    candidate_cols: list[int]


def run_joint_outcomes(con: Runner, candidate: CompiledStrategy, baseline: CompiledStrategy, frame: Frame,
                       dataset: Dataset, window: Window) -> JointOutcomes:
    """Both strategies over the same outcome groups (one pass; each side allows events outside its population)."""
    from riskconsole.compare import joint_groups

    joint = joint_groups(con, candidate, baseline, frame, dataset, window, allow_different_population=True,
                         classes=observability_class(dataset, frame.columns))
    return joint_outcomes_of(joint, candidate, baseline)


def joint_outcomes_of(joint: Joint, candidate: CompiledStrategy, baseline: CompiledStrategy) -> JointOutcomes:
    """The outcome groups of a comparison's grouped pass run with `classes`, with each side's decisions."""
    from riskconsole.compare import side_actions

    o = outcomes_of(joint.groups, joint.groups.hits.shape[1])
    cand, base, in_cand, _ = side_actions(o.hits, candidate, baseline, joint.candidate_cols, joint.baseline_cols,
                                          joint.population_cols)
    return JointOutcomes(o, cand, base, in_cand, joint.candidate_cols)


def delta_bounds(o: Outcomes, cand: np.ndarray, base: np.ndarray, business: Business) -> dict:
    """[worst, best] of candidate minus baseline over a JOINT assignment (each event one outcome for both sides).

    Money is separable per event: exact. Precision (linear in the fraud counts of the four cells flagged/allowed by
    each side) and recall (linear-fractional, both sides share the denominator: all fraud) are extreme at a vertex
    of those cells: exact. f1 and amount recall are bounded conservatively: each side's worst minus the other's best.
    """
    u = o.unobservable
    cf, bf = cand != ALLOW, base != ALLOW
    cells = [u & cf & bf, u & cf & ~bf, u & ~cf & bf, u & ~cf & ~bf]
    values: dict[str, list[float]] = {"precision": [], "recall": []}
    for choice in product((False, True), repeat=len(cells)):
        fraud = np.zeros(len(o.count), dtype=bool)
        for cell, is_fraud in zip(cells, choice):
            fraud |= cell & is_fraud
        rc = rates(completed(o, cand, fraud, business), business)
        rb = rates(completed(o, base, fraud, business), business)
        for m in values:
            values[m].append(float(rc[m] - rb[m]))
    out = {m: _pair(v, m) for m, v in values.items()}
    own_c, own_b = bounds(o, cand, business), bounds(o, base, business)
    for m in ("f1", "amount_recall"):
        (wc, bc), (wb, bb) = own_c[m], own_b[m]
        out[m] = [None, None] if None in (wc, bc, wb, bb) else [wc - bb, bc - wb]
    rc = rates(_sums(cand, o.label, o.count, o.amount, business), business)
    rb = rates(_sums(base, o.label, o.count, o.amount, business), business)
    observed = {m: float(rc[m] - rb[m]) for m in MONEY_METRICS}
    out.update(_money_bounds(o, [cand, base], [1.0, -1.0], observed, business))
    return out


# ------------------------------------------------------------------ into the report


def attach(report: dict, compiled: CompiledStrategy, baseline: CompiledStrategy | None, grouped: Groups | Joint,
           dataset: Dataset, assume: str | None = None, bootstrap_n: int = 1000, seed: int = 7) -> None:
    """Add `observability`, `bounds` and `estimate` to the report's `overall`, bounds on the deltas to `compare`,
    the assumption in force to `outcomes`, and one warning line; from the backtest's own grouped pass (`Groups` of
    one strategy, or the `Joint` of a comparison), run with `classes=observability_class(dataset)`."""
    if baseline is None:
        o, joint = outcomes_of(grouped, len(compiled.rules)), None
    else:
        joint = joint_outcomes_of(grouped, compiled, baseline)
        o = joint.outcomes.take(joint.in_candidate, joint.candidate_cols)
    describe(report, o, compiled, dataset, joint, assume, bootstrap_n, seed)


def describe(report: dict, o: Outcomes, compiled: CompiledStrategy, dataset: Dataset,
             joint: JointOutcomes | None = None, assume: str | None = None, bootstrap_n: int = 1000,
             seed: int = 7) -> None:
    """The report blocks of `attach` from outcome groups however they were grouped (SQL pass or the console's
    warm cache): the one place they are computed."""
    assumption = parse_assumption(assume)
    business = dataset.business
    action = decide(o.hits, RuleSet.of(compiled)) if joint is None else joint.candidate[joint.in_candidate]
    overall = report["overall"]
    overall["observability"] = observability(o, action)
    overall["bounds"] = bounds(o, action, business)
    found = estimate(o, action, business, bootstrap_n, seed)
    if found is not None:
        overall["estimate"] = _within(found, overall["bounds"])
    rate = assumed_rate(o, assumption) if assumption != "worst" else 0.0
    text = assumption_text(assumption, rate)
    block = {"assumption": assumption, "assumption_text": text, "assumed": None,
             "unobservable_means": "events without a label because production blocked them and did not explore them",
             "estimate_method": "inverse propensity, self-normalised: production-blocked events are represented by "
                                "the explored ones weighted 1/propensity, scaled to the number of production-"
                                "blocked events the strategy flags and allows; 95% interval from a day bootstrap"}
    if assumption != "worst":
        block["assumed"] = _assumed(rates(assumed_sums(o, action, rate, business), business))
    report["outcomes"] = block
    if joint is not None and "compare" in report:
        _attach_compare(report["compare"], joint, assumption, rate, business)
    if overall["observability"]["unobservable"] or assumption != "worst":
        report["warnings"].append(_warning(overall, assumption, text))


def _within(found: dict, limits: dict) -> dict:
    """Intervals clipped to the bounds: the window's true value is certainly inside them."""
    for metric, entry in found.items():
        pair, interval = limits.get(metric), entry["interval"]
        if pair and None not in pair and interval:
            lo, hi = min(pair), max(pair)
            entry["interval"] = [min(max(v, lo), hi) for v in interval]
    return found


def _attach_compare(compare: dict, joint: JointOutcomes, assumption: str, rate: float, business: Business) -> None:
    o = joint.outcomes
    compare["bounds"] = {"delta": delta_bounds(o, joint.candidate, joint.baseline, business),
                         "candidate": bounds(o, joint.candidate, business),
                         "baseline": bounds(o, joint.baseline, business)}
    if assumption != "worst":
        cand = _assumed(rates(assumed_sums(o, joint.candidate, rate, business), business))
        base = _assumed(rates(assumed_sums(o, joint.baseline, rate, business), business))
        compare["assumed"] = {"candidate": cand, "baseline": base, "delta": {
            m: None if cand[m] is None or base[m] is None else cand[m] - base[m] for m in cand}}


def _warning(overall: dict, assumption: str, text: str) -> str:
    seen = overall["observability"]
    lo, hi = overall["bounds"]["precision"]
    span = "undefined" if lo is None else f"{lo:.1%}..{hi:.1%}"
    head = (f"{seen['unobservable']:,} events production blocked have no label (unobservable): precision could be "
            f"anywhere in {span}, recall and money likewise (see bounds)")
    if assumption == "worst":
        return head + "; comparisons and the gate judge at the worst case"
    return head + f"; ASSUMED: {text}"
