"""A deploy gate: guardrails on a comparison report, judged with their confidence intervals.

`recall>=+0.00` (a signed value) bounds the DELTA against the baseline; `review_overflow_days<=0`
(unsigned) bounds the candidate's own value. A guardrail holds only when its whole 95% interval
satisfies it (a non-inferiority reading): noise is never enough to pass. Metrics without an
interval (counts of days, for instance) are judged on their point value. Where production hid
outcomes (DESIGN §6.2), a guardrail must also hold at the worst end of the metric's bounds, and with the
interval moved there (the same day-to-day noise around the worst case), unless `--assume` names an explicit
assumption, whose value then replaces the point (and the interval is moved with it: the same noise around the
assumed value). So the worst case is never judged more leniently than an assumption inside the bounds.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from riskconsole.errors import RiskConsoleError

_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([+-])?\s*(\d+(?:\.\d*)?|\.\d+)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Guardrail:
    """`metric op value`, on the delta when `relative`."""

    text: str
    metric: str
    op: str
    value: float
    relative: bool


def parse_guardrail(text: str, metrics: list[str], where: str = "--require") -> Guardrail:
    """Parse `recall>=+0.00`; an unknown metric or a malformed rule is a one-line error."""
    match = _PATTERN.match(text)
    if not match:
        raise RiskConsoleError(f"{where} '{text}': write METRIC OP VALUE, e.g. recall>=+0.00 (a signed value bounds "
                               "the change against the baseline) or review_overflow_days<=0")
    metric, op, sign, number = match.groups()
    if metric not in metrics:
        raise RiskConsoleError(f"{where} '{text}': unknown metric '{metric}' (choose from {', '.join(metrics)})")
    value = float(number) * (-1 if sign == "-" else 1)
    return Guardrail(text.strip(), metric, op, value, sign is not None)


def judge(guard: Guardrail, report: dict) -> dict:
    """Whether the guardrail holds on the report, with the numbers that decided it."""
    compare = report.get("compare")
    if guard.relative and compare is None:
        raise RiskConsoleError(f"guardrail '{guard.text}' bounds a change: give --baseline")
    if guard.relative:
        point = compare["delta"].get(guard.metric)
        interval = compare["intervals"]["delta"].get(guard.metric)
    else:
        point = report["overall"].get(guard.metric)
        interval = (compare or {}).get("intervals", {}).get("candidate", {}).get(guard.metric)
    labelled_only = point
    point, bound, assumed = _hidden_outcomes(guard, report, point)
    if assumed and interval and point is not None and labelled_only is not None:
        interval = [v + point - labelled_only for v in interval]  # the same noise, around the assumed value
    if point is None:
        return {"guardrail": guard.text, "holds": False, "value": None, "interval": None,
                "reason": _undefined(guard, report)}
    test = _OPS[guard.op]
    low_side = guard.op in (">=", ">")
    worst = point if interval is None else (min(interval) if low_side else max(interval))
    result = {"guardrail": guard.text, "value": point, "interval": interval, "worst": worst,
              "relative": guard.relative}
    holds = test(point, guard.value) and test(worst, guard.value)
    if bound is not None:  # production hid some outcomes: the guardrail must hold at the worst of them too, and so
        # must the interval moved there (the same day-to-day noise around the worst case, as --assume moves it around
        # its value): otherwise an assumption inside the bounds could fail where the worst case passed
        edge = None if None in bound else (min(bound) if low_side else max(bound))
        noisy = None if edge is None or interval is None else edge + worst - point
        holds = holds and edge is not None and test(edge, guard.value) and (noisy is None or test(noisy,
                                                                                               guard.value))
        result.update(bounds=bound, worst_case=edge, worst_case_interval=noisy)
    if assumed:
        result["assumed"] = assumed
    return {**result, "holds": bool(holds)}


def _hidden_outcomes(guard: Guardrail, report: dict, point: float | None) -> tuple[float | None, list | None, str]:
    """(point, bounds, assumption): with an explicit `--assume`, the point under it and no bounds; otherwise the
    metric's [worst, best] over the outcomes production hid (None where nothing is hidden or unbounded)."""
    outcomes = report.get("outcomes")
    if not outcomes:
        return point, None, ""
    compare = report.get("compare") or {}
    if outcomes["assumption"] != "worst":
        values = (compare.get("assumed") or {}).get("delta", {}) if guard.relative else outcomes["assumed"]
        return (values[guard.metric], None, outcomes["assumption_text"]) if guard.metric in values \
            else (point, None, "")
    found = (compare.get("bounds") or {}).get("delta", {}) if guard.relative else report["overall"]["bounds"]
    return point, found.get(guard.metric), ""


def describe(result: dict) -> str:
    """One line per guardrail: PASS/FAIL, the value, its interval."""
    status = "PASS" if result["holds"] else "FAIL"
    if result["value"] is None:
        return f"{status} {result['guardrail']}: {result['reason']}"
    sign = "+" if result.get("relative") else ""
    numbers = [result["value"], *(result["interval"] or [])]
    spec = f"{sign},.4f" if all(abs(v) < 10 for v in numbers) else f"{sign},.0f"
    value = f"{'delta' if result.get('relative') else 'value'} {result['value']:{spec}}"
    if result["interval"]:
        lo, hi = result["interval"]
        value += f" (95% CI {lo:{spec}} … {hi:{spec}})"
    if result.get("bounds"):
        worst, best = (f"{v:{spec}}" if v is not None else "undefined" for v in result["bounds"])
        value += f"; over the outcomes production hid {worst} (worst) … {best} (best)"
        if result.get("worst_case_interval") is not None:
            value += f", {result['worst_case_interval']:{spec}} with the 95% CI's spread around the worst"
    if result.get("assumed"):
        value += f"; assuming {result['assumed']}"
    return f"{status} {result['guardrail']}: {value}"


def _undefined(guard: Guardrail, report: dict) -> str:
    """Which side leaves the metric undefined (a delta is undefined when either side is)."""
    sides = [("the candidate", report["overall"].get(guard.metric))]
    if guard.relative:
        sides.append(("the baseline", report["compare"]["baseline"].get(guard.metric)))
    missing = [name for name, value in sides if value is None] or ["one side"]
    why = {"precision": "nothing with a known label is flagged", "recall": "the window has no known fraud",
           "f1": "precision or recall is undefined", "amount_recall": "the window has no known fraud money"}
    reason = why.get(guard.metric, "its denominator is zero")
    return f"{guard.metric} is undefined for {' and '.join(missing)} on this window ({reason})"

