"""Incidents: alerts that share a day (or days close together) and a cause reach the user once."""

from __future__ import annotations

import numpy as np

from riskconsole.backtest import Groups
from riskconsole.contributions import attribution, deciding_rule
from riskconsole.metrics import decide
from riskconsole.monitor import alert_rows, alerting_cells, daily_kpis
from riskconsole.monitor_incidents import GAP_DAYS, causes, decider, elevated, group, incidents
from test_monitor import BURSTY, BUSINESS, _periods, simulated_amounts, simulated_groups


def with_rows(g: Groups, day: int, hits: list[int], count: int, label: int = 0, amount: float = 60.0) -> Groups:
    """`g` plus one group of `count` events on `day` whose rule mask is `hits`."""
    return Groups(np.append(g.day, day), np.append(g.label, np.int8(label)), np.vstack([g.hits, np.array(hits, bool)]),
                  np.append(g.count, count), np.append(g.amount, amount * count), g.days)


def monitor_groups(g: Groups, rules=BURSTY) -> tuple[list[dict], list[dict], list[dict]]:
    """daily, alerts and incidents of `g` (28 reference days, the rest the window), attributed by rule."""
    daily, alerts, _, found = monitor_all(g, rules)
    return daily, alerts, found


def monitor_all(g: Groups, rules=BURSTY) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """`monitor_groups` with the alerts' attributions (third)."""
    action = decide(g.hits, rules)
    daily, state = daily_kpis(g, action, BUSINESS, _periods(g.days[0], 28, len(g.days)), rules,
                              simulated_amounts(g, action))
    cells = alerting_cells(state)
    entries = attribution(cells, [("rule", g, deciding_rule(g, action, rules))], lambda x: decide(x.hits, rules),
                          BUSINESS, rules, state["in_ref"])
    alerts = alert_rows(cells, entries, daily)
    return daily, alerts, entries, incidents(alerts, entries, elevated(state["table"], g.days, state["in_win"]))


def test_a_viral_burst_is_one_incident_and_an_unrelated_spike_that_day_is_another():
    """A viral video's look-alike good orders trip two review rules (the first in order decides them): the rule
    hits of both, the review cases and the alert rate move on one day. A velocity ring blocked the same day is a
    different cause."""
    day = 40
    quiet = simulated_groups(56, 11, bursts=True)
    g = with_rows(with_rows(quiet, day, [0, 1, 0, 1], 900), day, [1, 0, 0, 0], 300)
    daily, alerts, found = monitor_groups(g)
    on_day = [a for a in alerts if a["day"] == g.days[day].isoformat()]
    assert {"rule_hits:burst", "rule_hits:big_ticket", "review_cases", "rule_hits:velocity", "blocked"} <= {
        a["metric"] for a in on_day}, on_day
    there = [i for i in found if any(m["day"] == g.days[day].isoformat() for m in i["members"])]
    assert len(there) == 2, [(i["rules"], [m["metric"] for m in i["members"]]) for i in there]
    viral = next(i for i in there if "big_ticket" in i["rules"])
    ring = next(i for i in there if "velocity" in i["rules"])
    assert {"rule_hits:burst", "rule_hits:big_ticket", "review_cases"} <= {m["metric"] for m in viral["metrics"]}
    assert {"rule_hits:velocity", "blocked"} <= {m["metric"] for m in ring["metrics"]}
    # the incident may hold an alert of the same cause up to GAP_DAYS away, but only one the data had anyway
    _, quiet_alerts, _ = monitor_groups(quiet)
    others = {(m["day"], m["metric"]) for m in viral["members"] if m["day"] != g.days[day].isoformat()}
    assert others <= {(a["day"], a["metric"]) for a in quiet_alerts}
    # a second way: the size is the burst rule's hits that day beyond its band's high edge, from `daily`
    row = next(r for r in daily if r["day"] == g.days[day].isoformat())
    lead = row[viral["lead"]]
    assert viral["lead"] in ("rule_hits:big_ticket", "rule_hits:burst")
    assert viral["size"] == round(lead["value"] - lead["expected"][1], 6)


def test_without_the_burst_the_day_has_no_incident():
    quiet = simulated_groups(56, 11, bursts=True)
    _, alerts, found = monitor_groups(quiet)
    assert not [a for a in alerts if a["day"] == quiet.days[40].isoformat()]
    assert sum(i["alerts"] for i in found) == len(alerts)


def _alert(day: str, metric: str) -> dict:
    return {"day": day, "metric": metric, "value": 10.0, "expected": [0.0, 5.0], "top": []}


def _entry(*rules: tuple[str, float]) -> dict:
    return {"contributions": [{"by": "rule", "segment": r, "explanatory_power": p} for r, p in rules]}


def members(groups: list[tuple]) -> list[list[int]]:
    return [m for _, m in groups]


def test_the_grouping_rule_as_documented():
    """Cause: the rule explaining most if >= 25% (never '(not flagged)'); a rule_hits alert's own rule when that is
    it, or none is, or the rule's own alerts follow within GAP_DAYS; alerts of one cause link within GAP_DAYS."""
    assert decider(_entry(("b", 0.3), ("c", 0.2), ("(not flagged)", 0.9))) == "b"
    assert decider(_entry(("b", 0.3), ("c", 0.4), ("d", 0.3))) == "c"
    assert decider(_entry(("c", 0.24))) is None
    assert GAP_DAYS == 2
    alerts = [_alert("2026-03-01", "rule_hits:a"), _alert("2026-03-03", "review_cases"),  # 2 days apart: linked
              _alert("2026-03-06", "rule_hits:a"),  # 3 days after the last: a new incident
              _alert("2026-03-06", "blocked"),  # same day, another cause
              _alert("2026-03-07", "alert_rate"),  # no cause: alone
              _alert("2026-03-07", "rule_hits:b"),  # b's extra hits are events a decided: a's
              _alert("2026-03-10", "rule_hits:b"),  # b's own
              _alert("2026-03-09", "rule_hits:c"), _alert("2026-03-10", "rule_hits:c")]  # c: b's, then c's own
    entries = [_entry(), _entry(("a", 0.6)), _entry(), _entry(("d", 0.9)), _entry(("a", 0.1)), _entry(("a", 0.5)),
               _entry(("b", 0.9)), _entry(("b", 0.8)), _entry(("c", 0.7), ("b", 0.3))]
    assert causes(alerts, entries) == ["a", "a", "a", "d", None, "a", "b", "c", "c"]
    assert group(alerts, entries) == [("a", [0, 1]), ("a", [2, 5]), ("d", [3]), (None, [4]), ("c", [7, 8]),
                                      ("b", [6])]
    # a's hits on 03-04 and 03-05 exceed their expected sum by 2 spreads of it (4 + 4 >= 2 * sqrt(4 + 4)): the
    # alerts of 03-03 and 03-06 join; by less (3 + 2 < 2 * sqrt(8)), they do not
    raised = {"a": {"2026-03-04": (4.0, 4.0), "2026-03-05": (4.0, 4.0)}}
    assert [m for _, m in group(alerts, entries, raised=raised)] == [[0, 1, 2, 5], [3], [4], [7, 8], [6]]
    raised = {"a": {"2026-03-04": (3.0, 4.0), "2026-03-05": (2.0, 4.0)}}
    assert [m for _, m in group(alerts, entries, raised=raised)] == [[0, 1], [2, 5], [3], [4], [7, 8], [6]]
    # ongoing at the window's last day (03-10): a last alert at most 2 days before, or its cause raised since
    found = incidents(alerts, entries, raised=raised, last_day="2026-03-10")
    assert [i["ongoing"] for i in found] == [False, False, False, False, True, True]
    assert [i["rules"] for i in found] == [["a"], ["a", "b"], ["d"], [], ["c"], ["b"]]
    raised["a"].update({f"2026-03-{d:02d}": (2.0, 1.0) for d in range(6, 11)})  # a after 03-03: 15 >= 2·√13
    # a's second incident (03-06..03-07) goes on; its first (03-01..03-03) is over though a's hits summed from 03-04
    # to the end are raised: the days between the two (3 + 2 < 2·√8) were not, or they would be one incident (a
    # stranger's monitor called two promo-ring incidents of one rule, a week apart, both ongoing)
    found = incidents(alerts, entries, raised=raised, last_day="2026-03-10")
    assert [(i["rules"][:1], i["first_day"], i["ongoing"]) for i in found] == [
        (["a"], "2026-03-01", False), (["a"], "2026-03-06", True), (["d"], "2026-03-06", False),
        ([], "2026-03-07", False), (["c"], "2026-03-09", True), (["b"], "2026-03-10", True)]
    assert not found[0]["summary"].endswith("ongoing") and found[1]["summary"].endswith("; ongoing")


def test_a_chain_of_alerts_naming_two_rules_does_not_join_unrelated_causes():
    """a alerts; the next day a's extra hits are b's events; then b alerts; then b's extra hits are c's; then c
    alerts. Grouped through every rule an alert names (transitively), all six were one incident about a, b and c;
    an incident is one cause: a, then b, then c."""
    alerts = [_alert("2026-03-01", "rule_hits:a"), _alert("2026-03-02", "rule_hits:a"),
              _alert("2026-03-03", "rule_hits:b"), _alert("2026-03-04", "rule_hits:b"),
              _alert("2026-03-05", "rule_hits:c"), _alert("2026-03-06", "review_cases")]
    entries = [_entry(("a", 1.0)), _entry(("b", 0.6), ("a", 0.4)), _entry(("b", 1.0)), _entry(("c", 0.7), ("b", 0.3)),
               _entry(("c", 1.0)), _entry(("c", 0.5), ("a", 0.3))]
    assert group(alerts, entries) == [("a", [0]), ("b", [1, 2]), ("c", [3, 4, 5])]
    assert [i["rules"] for i in incidents(alerts, entries)] == [["a"], ["b", "a"], ["c", "b"]]


def test_every_incident_of_the_simulated_monitor_is_one_cause():
    """On simulated data with a viral burst and a ring the same day: the alerts of an incident are, by their own
    attributions, about one rule: the incident's first, which decided the events that moved them (or, for a rule's
    hits that no rule decided, that rule)."""
    g = with_rows(with_rows(simulated_groups(56, 11, bursts=True), 40, [0, 1, 0, 1], 900), 40, [1, 0, 0, 0], 300)
    _, alerts, entries, found = monitor_all(g)
    where = {(a["day"], a["metric"]): k for k, a in enumerate(alerts)}
    assert sorted(where[m["day"], m["metric"]] for i in found for m in i["members"]) == list(range(len(alerts)))
    for i in found:
        head = i["rules"][0] if i["rules"] else None
        for k in (where[m["day"], m["metric"]] for m in i["members"]):
            assert decider(entries[k]) == head or (decider(entries[k]) is None and
                                                   alerts[k]["metric"] == f"rule_hits:{head}"), i["summary"]
    viral = next(i for i in found if {"day": g.days[40].isoformat(), "metric": "rule_hits:burst"} in i["members"])
    assert viral["rules"][0] == "big_ticket" and "burst" in viral["rules"]


def test_raised_hits_are_measured_from_the_reference_mean_when_the_median_is_lower():
    """A bursty rule: median 0, mean 10 a day. Its hits' excess is counted from 10, so ordinary bursts between two
    alerts do not keep an incident open; the spread is the band's (high − expected) / 4."""
    from datetime import date

    table = {"rule_hits:a": {"value": np.array([30.0, 0.0, 5.0]), "expected": np.array([0.0, 0.0, 2.0]),
                             "high": np.array([8.0, 8.0, 10.0]), "level": 10.0},
             "blocked": {"value": np.array([1.0, 2.0, 3.0])}}
    days = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    got = elevated(table, days, np.array([True, True, False]))
    assert got == {"a": {"2026-03-01": (20.0, 4.0), "2026-03-02": (-10.0, 4.0)}}
