"""Incidents: the alerts of a day, or of days close together, that share a cause, reported once.

One viral video or one attack moves several metrics at once (a rule's hits, review cases, review load, the alert
rate): as alerts that is 4-5 lines about the same thing. An incident groups them by what explains them.

The grouping rule (docs/monitor.md, "Incidents"):
- An alert's **causes** are rules: for `rule_hits:R`, R itself; for every metric, the rule that decided events
  explaining the largest share of the change in the alert's attribution by rule (its explanatory power), if that
  share is at least `CAUSE_SHARE`. Only the largest: a day's review cases moved by a viral burst and by an attack
  would otherwise tie the two into one incident. `(not flagged)` is not a cause: it is what no rule decided, so
  it would link unrelated alerts.
- Rules that **share events** that day are one cause: when at least `CAUSE_SHARE` of the day's hits of the rule
  that hit fewer events also hit the other (a viral video's new buyers trip the promo rule and the influencer-burst
  rule; the first in order decides them), an alert about either is about both.
- Two alerts are **linked** when they share a cause R and either their days are at most `GAP_DAYS` apart (one
  quiet day inside an incident does not split it) or R stayed raised over the days between them: its hits summed
  over those days exceed their expected sum by at least `RUN_Z` spreads of that sum (a day's expected hits are
  the band's expected value, at least the reference's mean: a bursty rule's median is ~0, its mean is not, and a
  sum of many days grows with the mean; a day's spread is a quarter of the way from the band's expected value to
  its high edge; spreads add as variances). An attack that ramps up
  alerts on some days and stays just under the band on the others is one incident; two bursts with quiet days
  between are two.
- An incident is a connected group of linked alerts (linking is transitive); an alert without a cause is an
  incident of its own. It is **ongoing** when its last alert is at most `GAP_DAYS` before the window's last day,
  or one of its causes stayed raised (as above) from its last alert to the window's end.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from riskconsole.monitor import RULE_HITS

CAUSE_SHARE = 0.25  # a rule explaining a quarter of an alert's change is one of its causes
GAP_DAYS = 2  # alerts on days d and d + 2 may join (one quiet day between); d + 3 starts anew
RUN_Z = 2.0  # ... unless the cause's hits on the days between stayed this many spreads of their sum above expected
NOT_FLAGGED = "(not flagged)"


def causes(metric: str, entry: dict) -> set[str]:
    """The rules an alert is about: its own rule for `rule_hits:R`, and the deciding rule that explains the largest
    share of its change, if at least `CAUSE_SHARE`."""
    found = {metric[len(RULE_HITS):]} if metric.startswith(RULE_HITS) else set()
    rules = [c for c in entry["contributions"] if c["by"] == "rule" and c["segment"] != NOT_FLAGGED]
    best = max(rules, key=lambda c: c["explanatory_power"], default=None)
    if best is not None and best["explanatory_power"] >= CAUSE_SHARE:
        found.add(best["segment"])
    return found


def shared_events(g, rules, days: list[int]) -> dict[str, list[set[str]]]:
    """Per alerting day (ISO) of `days` (indices into `g.days`): the groups of flagging rules that share events
    that day, at least `CAUSE_SHARE` of the smaller one's hits (`g`: the grouped pass, `rules`: its RuleSet)."""
    import numpy as np

    cols = [i for i, name in enumerate(rules.names) if rules.enabled[i] and rules.actions[i] in ("block", "review")]
    names = [rules.names[i] for i in cols]
    out = {}
    for d in sorted(set(days)):
        on = g.day == d
        h = g.hits[on][:, cols].astype(float)
        co = h.T @ (h * g.count[on][:, None])  # co[i, j]: the day's events hitting rules i and j
        n = np.diag(co)
        out[g.days[d].isoformat()] = _components(names, (co > 0) & (co >= CAUSE_SHARE * np.minimum.outer(n, n)))
    return out


def _components(names: list[str], linked) -> list[set[str]]:
    seen, parts = set(), []
    for i in range(len(names)):
        if i in seen:
            continue
        stack, part = [i], set()
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                part.add(names[j])
                stack += [k for k in range(len(names)) if linked[j, k] and k not in seen]
        if len(part) > 1:
            parts.append(part)
    return parts


def widen(found: set[str], sharing: list[set[str]]) -> set[str]:
    """An alert's causes with every rule that shares events with one of them that day."""
    return found.union(*(part for part in sharing if part & found))


def elevated(table: dict, days: list, in_win) -> dict[str, dict[str, tuple[float, float]]]:
    """Per flagging rule, per window day (ISO): its hits' excess over expected (at least the reference's mean,
    `level`) and the day's variance (spread², spread = (high − expected) / BAND_K), from the per-metric arrays of
    `monitor.daily_kpis`."""
    import numpy as np

    from riskconsole.monitor import BAND_K

    out = {}
    for metric, t in table.items():
        if metric.startswith(RULE_HITS):
            spread = (t["high"] - t["expected"]) / BAND_K
            mean = np.maximum(t["expected"], t.get("level", 0.0))
            out[metric[len(RULE_HITS):]] = {days[i].isoformat(): (float(t["value"][i] - mean[i]),
                                                                  float(spread[i]) ** 2)
                                            for i in np.flatnonzero(in_win & np.isfinite(t["value"] + spread))}
    return out


def _joined(a: str, b: str, run: dict[str, tuple[float, float]]) -> bool:
    """Alerts of one cause on days a <= b join: at most GAP_DAYS apart, or the cause raised over the days between."""
    first, last = _ordinal(a), _ordinal(b)
    if last - first <= GAP_DAYS:
        return True
    between = [run.get(date.fromordinal(d).isoformat(), (0.0, 0.0)) for d in range(first + 1, last)]
    total, variance = sum(e for e, _ in between), sum(v for _, v in between)
    return total > 0 and total >= RUN_Z * variance ** 0.5


def group(alerts: list[dict], entries: list[dict], sharing: dict[str, list[set[str]]] | None = None,
          raised: dict[str, dict[str, tuple[float, float]]] | None = None) -> list[list[int]]:
    """Indices of `alerts` per incident (`entries[i]` is alert i's attribution; `sharing[day]`: groups of rules
    that share events that day), each in alert order.

    Linked pairs are found per cause: among the alerts naming a rule, sorted by day, each is linked to the next
    when their days are at most `GAP_DAYS` apart (the transitive closure of all pairs within the gap is the
    same)."""
    sharing, raised = sharing or {}, raised or {}
    parent = list(range(len(alerts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_cause: dict[str, list[int]] = {}
    for i, (alert, entry) in enumerate(zip(alerts, entries)):
        for rule in widen(causes(alert["metric"], entry), sharing.get(alert["day"], [])):
            by_cause.setdefault(rule, []).append(i)
    for cause, members in by_cause.items():
        members.sort(key=lambda i: alerts[i]["day"])
        for a, b in zip(members, members[1:]):
            if _joined(alerts[a]["day"], alerts[b]["day"], raised.get(cause, {})):
                parent[find(b)] = find(a)
    groups: dict[int, list[int]] = {}
    for i in range(len(alerts)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda m: (alerts[m[0]]["day"], -len(m)))


def _ordinal(day: str) -> int:
    return date.fromisoformat(day).toordinal()


def excess(alert: dict) -> float:
    """How far an alert's value is beyond its band's nearer edge (negative below the band)."""
    low, high = alert["expected"]
    value = alert["value"]
    if high is not None and value > high:
        return value - high
    return value - low if low is not None and value < low else 0.0


def ongoing(last_alert: str, last_day: str | None, rules: list[str], raised: dict) -> bool:
    """Whether an incident is still open at the window's last day: its last alert at most GAP_DAYS before it, or
    one of its causes raised over the days after its last alert (the test that joins alerts)."""
    if last_day is None:
        return False
    after = date.fromordinal(_ordinal(last_day) + 1).isoformat()
    return _ordinal(last_day) - _ordinal(last_alert) <= GAP_DAYS or any(
        _joined(last_alert, after, raised.get(rule, {})) for rule in rules)


def incident(number: int, members: list[int], alerts: list[dict], entries: list[dict],
             sharing: dict[str, list[set[str]]], raised: dict, last_day: str | None = None) -> dict:
    """One incident: its days, the rules and segments that explain it, each metric that moved and by how much."""
    chosen = [alerts[i] for i in members]
    rules = Counter(r for i in members
                    for r in widen(causes(alerts[i]["metric"], entries[i]), sharing.get(alerts[i]["day"], [])))
    firsts = Counter(a["top"][0] for a in chosen if a["top"])
    listed = Counter(s for a in chosen for s in a["top"])
    order = {s: n for n, s in enumerate(dict.fromkeys(s for a in chosen for s in a["top"]))}
    top = sorted(listed, key=lambda s: (-firsts[s], -listed[s], order[s]))[:3]
    metrics: dict[str, dict] = {}
    for a in chosen:
        m = metrics.setdefault(a["metric"], {"metric": a["metric"], "days": 0, "excess": 0.0})
        m["days"] += 1
        m["excess"] = round(m["excess"] + excess(a), 6)
    days = sorted({a["day"] for a in chosen})
    ranked = [r for r, _ in sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))]
    lead = next((metrics[RULE_HITS + r] for r in ranked if RULE_HITS + r in metrics),
                max(metrics.values(), key=lambda m: m["days"]))
    still = ongoing(days[-1], last_day, ranked, raised)
    return {"id": number, "first_day": days[0], "last_day": days[-1], "ongoing": still, "days": len(days),
            "alerts": len(chosen),
            "rules": ranked, "top": top, "metrics": sorted(metrics.values(), key=lambda m: (-m["days"], m["metric"])),
            "lead": lead["metric"], "size": lead["excess"],
            "members": [{"day": a["day"], "metric": a["metric"]} for a in chosen],
            "summary": _summary(days, ranked, top, metrics, lead) + ("; ongoing" if still else "")}


def _summary(days: list[str], rules: list[str], top: list[str], metrics: dict, lead: dict) -> str:
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days alerting)"
    why = ", ".join([*(f"rule {r}" for r in rules[:2]), *top[:1]]) or "no single rule or segment"
    return (f"{span}: {len(metrics)} metric{'s' if len(metrics) > 1 else ''} moved; {why}; "
            f"{lead['metric']} {lead['excess']:+,.4g} beyond its band")


def incidents(alerts: list[dict], entries: list[dict], sharing: dict[str, list[set[str]]] | None = None,
              raised: dict[str, dict[str, tuple[float, float]]] | None = None, last_day: str | None = None
              ) -> list[dict]:
    """monitor.json `incidents`: every alert in exactly one, ordered by first day (`sharing`: `shared_events`,
    `raised`: `elevated`, `last_day`: the window's, for `ongoing`)."""
    sharing, raised = sharing or {}, raised or {}
    return [incident(n, members, alerts, entries, sharing, raised, last_day)
            for n, members in enumerate(group(alerts, entries, sharing, raised), start=1)]
