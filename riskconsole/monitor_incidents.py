"""Incidents: the alerts of a day, or of days close together, that share a cause, reported once.

One viral video or one attack moves several metrics at once (a rule's hits, review cases, review load, the alert
rate): as alerts that is 4-5 lines about the same thing. An incident groups them by what explains them.

The grouping rule (docs/monitor.md, "Incidents"): **an incident is one cause.**
- An alert's **cause** is one rule: the rule that decided the events explaining the largest share of the change in
  the alert's attribution by rule (its explanatory power, `decider`), if that share is at least `CAUSE_SHARE`.
  `(not flagged)` is not a cause: it is what no rule decided, so it would link unrelated alerts. An alert of
  `rule_hits:R` is R's when R decided those events, when no rule did, or when R's own alerts follow within
  `GAP_DAYS` (an attack another rule caught on its first day and R on the next is R's from its start); else it is
  the deciding rule's: a viral video's new buyers trip the promo rule and the influencer-burst rule, the first in
  order decides them, and the second rule's extra hits are the first's incident.
- Only one cause per alert, and incidents never join across causes: grouped through every rule an alert named,
  transitively, a chain (a with b on one day, b with c the next, ...) joined four rules' alerts over two months
  into one incident 26 alerts long on the 1M demo.
- Two alerts of the same cause R are **linked** when either their days are at most `GAP_DAYS` apart (one quiet
  day inside an incident does not split it) or R stayed raised over the days between them: its hits summed
  over those days exceed their expected sum by at least `RUN_Z` spreads of that sum (a day's expected hits are
  the band's expected value, at least the reference's mean: a bursty rule's median is ~0, its mean is not, and a
  sum of many days grows with the mean; a day's spread is a quarter of the way from the band's expected value to
  its high edge; spreads add as variances). An attack that ramps up
  alerts on some days and stays just under the band on the others is one incident; two bursts with quiet days
  between are two.
- An incident is the alerts of one cause linked one to the next; an alert without a cause is an incident of
  its own. It is **ongoing** when its last alert is at most `GAP_DAYS` before the window's last day, or its
  cause stayed raised (as above) from its last alert to the window's end, and no later incident of its cause
  follows it (that one is what goes on).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from riskconsole.monitor import RULE_HITS

CAUSE_SHARE = 0.25  # a rule explaining a quarter of an alert's change (and more than any other) is its cause
GAP_DAYS = 2  # alerts on days d and d + 2 may join (one quiet day between); d + 3 starts anew
RUN_Z = 2.0  # ... unless the cause's hits on the days between stayed this many spreads of their sum above expected
NOT_FLAGGED = "(not flagged)"


def decider(entry: dict) -> str | None:
    """The rule whose decided events explain the largest share of an alert's change, if at least `CAUSE_SHARE`."""
    rules = [c for c in entry["contributions"] if c["by"] == "rule" and c["segment"] != NOT_FLAGGED]
    best = max(rules, key=lambda c: c["explanatory_power"], default=None)
    return best["segment"] if best is not None and best["explanatory_power"] >= CAUSE_SHARE else None


def causes(alerts: list[dict], entries: list[dict]) -> list[str | None]:
    """Each alert's one cause (`entries[i]` is alert i's attribution): its `decider`, except that an alert of R's
    hits is R's own when R decided its events, or when nothing decided them, or when R's own alerts follow within
    `GAP_DAYS` (an attack another rule caught on its first day and R on the next is R's story from its start)."""
    own: dict[str, list[int]] = {}
    for alert, entry in zip(alerts, entries):
        rule, by = _rule_of(alert), decider(entry)
        if rule is None or by in (None, rule):  # another metric's decider, or a rule's hits it decided itself
            if rule or by:
                own.setdefault(rule or by, []).append(_ordinal(alert["day"]))
    out = []
    for alert, entry in zip(alerts, entries):
        rule, by, day = _rule_of(alert), decider(entry), _ordinal(alert["day"])
        if rule is not None and (by is None or any(day < d <= day + GAP_DAYS for d in own.get(rule, []))):
            by = rule
        out.append(by)
    return out


def _rule_of(alert: dict) -> str | None:
    """R of a `rule_hits:R` alert, else None."""
    return alert["metric"][len(RULE_HITS):] if alert["metric"].startswith(RULE_HITS) else None


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


def group(alerts: list[dict], entries: list[dict], raised: dict[str, dict[str, tuple[float, float]]] | None = None
          ) -> list[tuple[str | None, list[int]]]:
    """(cause, indices of `alerts`) per incident (`entries[i]` is alert i's attribution), members in alert order:
    per cause, its alerts sorted by day, a new incident wherever the next one does not join the last
    (`_joined`). Alerts of different causes never share an incident."""
    raised = raised or {}
    found: list[tuple[str | None, list[int]]] = []
    by_cause: dict[str, list[int]] = {}
    for i, rule in enumerate(causes(alerts, entries)):
        if rule is None:
            found.append((None, [i]))
        else:
            by_cause.setdefault(rule, []).append(i)
    for rule, members in by_cause.items():
        members.sort(key=lambda i: (alerts[i]["day"], i))
        found.append((rule, [members[0]]))
        for a, b in zip(members, members[1:]):
            if _joined(alerts[a]["day"], alerts[b]["day"], raised.get(rule, {})):
                found[-1][1].append(b)
            else:
                found.append((rule, [b]))
    return sorted(((rule, sorted(m)) for rule, m in found), key=lambda r: (alerts[r[1][0]]["day"], -len(r[1]), r[1][0]))


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
    its cause (`rules`: none, or the cause alone) raised over the days after its last alert (the test that joins
    alerts)."""
    if last_day is None:
        return False
    after = date.fromordinal(_ordinal(last_day) + 1).isoformat()
    return _ordinal(last_day) - _ordinal(last_alert) <= GAP_DAYS or any(
        _joined(last_alert, after, raised.get(rule, {})) for rule in rules)


def incident(number: int, found: str | None, members: list[int], alerts: list[dict], raised: dict,
             last_day: str | None = None) -> dict:
    """One incident: its days, its cause `found` (then the other rules whose hits alerted in it) and the segments
    that explain it, each metric that moved and by how much."""
    chosen = [alerts[i] for i in members]
    named = Counter(a["metric"][len(RULE_HITS):] for a in chosen if a["metric"].startswith(RULE_HITS))
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
    ranked = [found] * (found is not None) + [r for r, _ in sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))
                                              if r != found]
    lead = next((metrics[RULE_HITS + r] for r in ranked if RULE_HITS + r in metrics),
                max(metrics.values(), key=lambda m: m["days"]))
    still = ongoing(days[-1], last_day, ranked[:1], raised)
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


def incidents(alerts: list[dict], entries: list[dict], raised: dict[str, dict[str, tuple[float, float]]] | None = None,
              last_day: str | None = None) -> list[dict]:
    """monitor.json `incidents`: every alert in exactly one, ordered by first day (`raised`: `elevated`, `last_day`:
    the window's, for `ongoing`)."""
    raised = raised or {}
    grouped = group(alerts, entries, raised)
    last = [max(alerts[i]["day"] for i in members) for _, members in grouped]
    # an incident a later incident of its cause follows is over (the days between did not stay raised, or the two
    # would be one): the later one is what goes on, though the cause's hits summed to the window's end are raised
    followed = [cause is not None and any(c == cause and min(alerts[i]["day"] for i in m) > last[n]
                                          for c, m in grouped) for n, (cause, _) in enumerate(grouped)]
    return [incident(n + 1, found, members, alerts, raised, None if followed[n] else last_day)
            for n, (found, members) in enumerate(grouped)]
