"""Compare: candidate vs baseline with intervals, the decisions that change (click to see the events),
rule attribution and segments."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from riskconsole.charts import delta_interval_chart, overlap_chart, segment_delta_chart
from riskconsole.export import fmt, metric_text
from riskconsole.report import unit_of
from riskconsole.segments import segment_columns
from riskconsole.share import kpi_rows, removal_text, segment_table
from riskconsole.ui.common import (compare, guard, open_page, pick_baseline, pick_strategy, pick_window,
                                   show_warnings, text_width, wrapping_row)

INTERVAL_METRICS = [("recall", "recall"), ("precision", "precision"), ("amount_recall", "amount recall")]

session = open_page("Compare")
ws = session.ws
left, mid, right = wrapping_row(400, 400, 180)  # one line at 1,500 px; at 800 px 2:2:1 columns cut "channel"
with left:
    candidate = pick_strategy(ws, "Candidate", "strategy", default="candidate", with_versions=True)
with mid:
    baseline = pick_baseline(ws, with_versions=True)
with right:
    frame, dataset = guard(session.view, guard(session.strategy, candidate))
    columns = segment_columns(frame, dataset)
    by = st.selectbox("Segments by", ["(none)", *columns], index=(["(none)", *columns].index("channel")
                                                                 if "channel" in columns else 0))
window = pick_window(session, candidate)
overrides = st.session_state.get("params", {}).get(candidate.stem, {})
if baseline is None:
    st.info("Pick a baseline (the strategy in production) to compare against.")
    st.stop()
allow = st.sidebar.checkbox("Allow different populations", help="Compare strategies that decide different events "
                            "(each allows what is outside its own population); the report says so.")
report = guard(compare, session, candidate, baseline, window, overrides, None if by == "(none)" else by, allow)
c = report["compare"]
unit = unit_of(report)
span = report["window"]
st.caption(f"{span['from']} … {span['to']} (UTC days) · {report['overall']['population']:,} {unit} · "
           f"intervals: paired bootstrap over {c['intervals']['resamples']:,} resamples of whole UTC days"
           + (f" · tuned params {overrides}" if overrides else ""))
show_warnings(report)
if c.get("bounds"):
    st.caption(f"Ranges (low … high) where only a range is known: "
               f"{report['overall']['observability']['unobservable']:,} events production blocked have no label, "
               "so each could have been fraud or good; the gate judges at the worst case.")

table = pd.DataFrame(kpi_rows(report))[["title", "value", "baseline", "delta", "interval"]]
table["interval"] = table["interval"].str.removeprefix("95% CI ")  # the column's header says it (as monitor.md)
st.dataframe(table.rename(columns={"title": "metric", "value": "candidate", "interval": "95% interval"}),
             hide_index=True, width="stretch", height="content")  # full width: ranges and intervals are long
left, right = wrapping_row(600, 380, vertical_alignment="center")  # at 800 px 3:2 columns cut the axis title
with left:
    rows = [{"metric": title, "delta": c["delta"][key], "low": c["intervals"]["delta"][key][0],
             "high": c["intervals"]["delta"][key][1]} for key, title in INTERVAL_METRICS
            if c["delta"].get(key) is not None and c["intervals"]["delta"].get(key)]
    if rows:
        st.altair_chart(delta_interval_chart(rows), width="stretch")
with right:
    hidden = (c.get("bounds") or {}).get("delta", {}).get("net_benefit")
    if hidden and None not in hidden and hidden[0] != hidden[1]:  # only a range is known
        worst, best = hidden
        verdict = "gains" if worst > 0 else "loses" if best < 0 else "may gain or lose"
        st.markdown(f"Net benefit change between **{fmt(worst, 'money')}** (worst) and **{fmt(best, 'money')}** "
                    f"(best) over the outcomes production hid: the candidate **{verdict}** money.")
    elif c["intervals"]["delta"].get("net_benefit"):
        lo, hi = c["intervals"]["delta"]["net_benefit"]
        verdict = "gains" if lo > 0 else "loses" if hi < 0 else "may gain or lose"
        st.markdown(f"Net benefit change **{fmt(c['delta']['net_benefit'], 'money')}** "
                    f"(95% interval {fmt(lo, 'money')} … {fmt(hi, 'money')}): the candidate **{verdict}** money.")

st.subheader("Decisions that change")
changed = pd.DataFrame(c["changed"]).round({"amount": 0, "fraud_amount": 0, "good_amount": 0})
if changed.empty:
    st.info(f"No {unit.removesuffix('s')} changes decision.")
else:
    picked = st.dataframe(changed, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="changed", column_config={
                              k: st.column_config.NumberColumn(label, format="localized")
                              for k, label in (("events", unit), ("fraud", "fraud"), ("good", "good"),
                                               ("unlabeled", "unlabelled"), ("amount", "money"),
                                               ("fraud_amount", "fraud money"), ("good_amount", "good money"))})
    chosen = picked.selection.rows if picked and picked.selection else []
    if chosen:
        row = changed.iloc[chosen[0]]
        events = guard(session.transition_events, candidate, baseline, window, row["before"], row["after"],
                       overrides)
        st.markdown(f"**{row['before']} → {row['after']}**: first {events.num_rows:,} of {row['events']:,} events")
        st.dataframe(events.to_pandas(), hide_index=True, width="stretch", height=300)
    else:
        st.caption("Select a row to see its events.")

st.subheader("Rule attribution (candidate)")
attribution = report["attribution"]
loo = pd.DataFrame(attribution["leave_one_out"]).round({"net_benefit_added": 0})
unique = {r["name"]: r["unique_tp"] for r in report["rules"]}
loo.insert(2, "unique catches", loo["name"].map(unique))
rows = attribution["leave_one_out"]  # what a rule adds as text: undefined ones say why (metric_text)
loo = loo.assign(**{k: [metric_text(k, r) for r in rows] for k in ("recall_added", "precision_added")})
st.dataframe(loo[["name", "action", "unique catches", "recall_added", "precision_added", "net_benefit_added",
                  "review_cases_added"]], hide_index=True, width="stretch", height="content", column_config={
                      "recall_added": st.column_config.TextColumn("recall added",
                                                                  width=text_width(loo["recall_added"])),
                      "precision_added": st.column_config.TextColumn("precision added",
                                                                     width=text_width(loo["precision_added"])),
                      "net_benefit_added": st.column_config.NumberColumn("net benefit added", format="localized"),
                      "review_cases_added": st.column_config.NumberColumn("reviews added", format="localized")})
left, right = wrapping_row(600, 380)  # every rule's row above, full width; how they overlap and what to drop below
if attribution["overlap"]["rules"]:
    left.altair_chart(overlap_chart(attribution["overlap"]), width="stretch")
if removal := removal_text(report):
    right.warning(removal)

if c.get("segments"):
    st.subheader(f"Segments by {by}")
    worse = set(c["segments"]["worse"])
    headers, rows = segment_table(report)  # as report.html and report.md show them: undefined ones say why
    left, right = wrapping_row(600, 380)
    left.dataframe(pd.DataFrame(rows, columns=headers), hide_index=True, width="stretch")
    right.altair_chart(segment_delta_chart(c["segments"]["rows"]), width="stretch")
    if worse:
        st.caption(f"⚠ {c['segments']['worse_means']}.")
