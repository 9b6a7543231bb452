"""Backtest: KPIs against a baseline, confusion, rules, daily load against capacity, warnings."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from riskconsole.export import fmt, metric_text
from riskconsole.share import value_text
from riskconsole.charts import daily_chart
from riskconsole.ui.common import (results_version, evaluate, guard, guard_baseline, kpi_tiles, open_page, pick_baseline,
                                   pick_strategy, pick_window, show_warnings, strategy_text,
                                   text_width)


@st.cache_data(max_entries=16, show_spinner="Listing entity-periods ...")
def _entity_periods(root: str, version: str, path: str, text: str, window, overrides: str, _session) -> pd.DataFrame:
    """Every entity-period of an entity-level strategy: entity, period, decision, why, and what followed."""
    table = _session.decision_rows(path, window, json.loads(overrides)).to_pandas()
    table["matched_rules"] = table["matched_rules"].map(lambda rules: ", ".join(rules))
    return table


def _undefined_said(rules: pd.DataFrame) -> pd.DataFrame:
    """Rule precision and recall as percent text; where undefined, why (`metric_text`), not "None"."""
    rows = rules.to_dict("records")
    return rules.assign(precision=[metric_text("precision", r) for r in rows],
                        recall=[metric_text("recall", r) for r in rows])


session = open_page("Backtest")
ws = session.ws
left, right = st.columns(2)
with left:
    candidate = pick_strategy(ws, "Strategy", "strategy", default="candidate")
with right:
    baseline = pick_baseline(ws)
window = pick_window(session, candidate)
report = guard(evaluate, session, candidate, window, st.session_state.get("params", {}).get(candidate.stem))
same = baseline is not None and baseline.resolve() == candidate.resolve()
level = guard(session.strategy, candidate).level
base_spec = guard_baseline(session.strategy, baseline, baseline) if baseline is not None and not same else None
other_level = base_spec is not None and base_spec.level != level
base = guard_baseline(evaluate, baseline, session, baseline, window) if base_spec is not None and not other_level \
    else None
unit = "events" if level is None else f"{level.entity} periods"
o = report["overall"]
span = report["window"]
st.caption(f"{span['from']} … {span['to']} (UTC days) · population {o['population']:,} {unit} · "
           f"{o['unlabeled_total']:,} unlabelled" + (f" · deltas against **{baseline.stem}**" if base else ""))
if level is not None:
    st.caption(f"Entity-level: one decision per **{level.entity}** every **{level.every}**, judged with what was known "
               f"at the period's start; money over **{level.horizon or level.every}** after it.")
if other_level:
    st.info(f"**{baseline.stem}** decides {'events' if level is not None else 'entity-periods'}, **{candidate.stem}** "
            f"decides {unit}: pick a baseline of the same level to see deltas.")
elif base is None and (same or baseline is None):
    st.info("The strategy is its own baseline: nothing to compare." if same else
            "No baseline picked: pick the strategy in production above to see what this one changes.")
kpi_tiles(report, base)
show_warnings(report)

st.subheader("Daily alerts, caught fraud and review load (per UTC day)")
st.altair_chart(daily_chart(report["daily"], o["review_capacity"]), width="stretch")

# side by side where both fit, else one under the other: a fixed split cut the confusion's last column at 1100 px
pair = st.container(horizontal=True, wrap=True, gap="large")
with pair.container(width="content"):
    st.subheader("Confusion")
    st.dataframe(pd.DataFrame(
        {"fraud": [o["tp"], o["fn"]], "good": [o["fp"], o["tn"]],
         "unknown label": [o["unlabeled_flagged"], o["unlabeled_total"] - o["unlabeled_flagged"]]},
        index=["flagged", "not flagged"]), width="content",
        column_config={c: st.column_config.NumberColumn(format="localized") for c in ("fraud", "good", "unknown label")})
    st.markdown(f"Blocked **{report['by_action']['block']['events']:,}**, reviewed "
                f"**{report['by_action']['review']['events']:,}** · review cost **{fmt(o['review_cost'], 'money')}**")
with pair.container(width="content"):
    st.subheader("Money")
    money = ("fraud_amount_stopped", "good_amount_blocked", "review_cost", "net_benefit")
    named = {"candidate": candidate.stem, "baseline": baseline.stem if base else None}
    st.dataframe(pd.DataFrame({  # as the tiles and report.md: a range where production hid outcomes
        "": ["fraud money stopped", "good money blocked", "review cost", "net benefit"],
        "candidate": [value_text(k, o) for k in money],
        **({"baseline": [value_text(k, base["overall"]) for k in money]} if base else {})}),
        hide_index=True, width="content", column_config={c: st.column_config.TextColumn(named[c])
                                                         for c in ("candidate", "baseline")})
st.subheader("Rules")
rules = _undefined_said(pd.DataFrame(report["rules"])[["name", "action", "enabled", "hits", "tp", "fp", "precision",
                                                        "recall", "unique_tp"]])
st.dataframe(rules, hide_index=True, width="stretch", height="content", column_config={
    "precision": st.column_config.TextColumn(help="Of the rule's labelled hits, the share that is fraud",
                                             width=text_width(rules["precision"])),
    "recall": st.column_config.TextColumn(help="Of the labelled fraud, the share this rule hits",
                                          width=text_width(rules["recall"])),
    "hits": st.column_config.NumberColumn(format="localized"),
    "tp": st.column_config.NumberColumn("fraud hit", format="localized"),
    "fp": st.column_config.NumberColumn("good hit", format="localized"),
    "enabled": st.column_config.CheckboxColumn("on", width="small"),
    "unique_tp": st.column_config.NumberColumn("unique catches", format="localized",
                                               help="Fraud this rule alone flags in the final decision")})

if level is not None:
    st.subheader(f"Entity-periods: each {level.entity}, day, decision, why, and what followed")
    params = st.session_state.get("params", {}).get(candidate.stem)
    periods = guard(_entity_periods, str(ws.root), results_version(ws), str(candidate), strategy_text(candidate), window,
                    json.dumps(params or {}, sort_keys=True), _session=session)
    show = st.radio("Show", ["flagged", "all", "fraud missed"], horizontal=True, key="entity_periods_show")
    rows = periods[periods["action"] != "allow"] if show == "flagged" else \
        periods[(periods["action"] == "allow") & (periods["label"] == 1)] if show == "fraud missed" else periods
    st.caption(f"{len(rows):,} of {len(periods):,} entity-periods · label: the entity's known label as of the "
               "window · money after: the entity's fraud and good amount over the horizon")
    st.dataframe(rows[[level.entity, "time", "action", "matched_rules", "label", "fraud_amount_after",
                       "good_amount_after", "events"]].head(2000), hide_index=True, width="stretch", column_config={
        "time": st.column_config.DatetimeColumn("period", format="YYYY-MM-DD HH:mm"),
        "action": "decision", "matched_rules": "why",
        "fraud_amount_after": st.column_config.NumberColumn("fraud money after", format="localized"),
        "good_amount_after": st.column_config.NumberColumn("good money after", format="localized"),
        "events": st.column_config.NumberColumn("events in period", format="localized")})
