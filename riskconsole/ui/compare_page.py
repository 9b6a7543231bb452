"""Compare: candidate vs baseline with intervals, the decisions that change (click to see the events),
rule attribution and segments."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from riskconsole.charts import delta_interval_chart, overlap_chart, segment_delta_chart
from riskconsole.compare import transition_events
from riskconsole.export import fmt
from riskconsole.report import Baseline, run_backtest
from riskconsole.share import kpi_rows
from riskconsole.strategy import compile_strategy, frame_of
from riskconsole.ui.common import db_version, guard, open_page, pick_strategy, pick_window, show_warnings

INTERVAL_METRICS = [("recall", "recall"), ("precision", "precision"), ("amount_recall", "amount recall")]

ws, con, dataset = open_page("Compare")
left, mid, right = st.columns([2, 2, 1])
with left:
    candidate = pick_strategy(ws, "Candidate", "strategy", default="candidate", with_versions=True)
with mid:
    baseline = pick_strategy(ws, "Baseline (in production)", "baseline", default="baseline", with_versions=True)
with right:
    columns = [c for c in frame_of(con, dataset).visible if c not in (dataset.columns.id, dataset.columns.time)]
    by = st.selectbox("Segments by", ["(none)", *columns], index=(["(none)", *columns].index("channel")
                                                                 if "channel" in columns else 0))
window = pick_window(con, dataset)
overrides = st.session_state.get("params", {}).get(candidate.stem, {})


@st.cache_data(max_entries=16, show_spinner="Comparing (one pass over both strategies, 1,000 day resamples) ...")
def compared(root: str, version: str, cand: str, cand_text: str, base: str, base_text: str, window, params: str,
             segment: str | None, allow: bool, _con) -> dict:
    return run_backtest(ws, cand, window, json.loads(params), con=_con, by=segment,
                        baseline=Baseline(base, allow_different_population=allow)).report


allow = st.sidebar.checkbox("Allow different populations", help="Compare strategies that decide different events "
                            "(each allows what is outside its own population); the report says so.")
report = guard(compared, str(ws.root), db_version(ws), str(candidate), candidate.read_text(), str(baseline),
               baseline.read_text(), window, json.dumps(overrides, sort_keys=True),
               None if by == "(none)" else by, allow, _con=con)
c = report["compare"]
st.caption(f"{report['window']['from']} … {report['window']['to']} · {report['overall']['population']:,} events · "
           f"intervals: paired bootstrap over {c['intervals']['resamples']:,} resamples of whole days"
           + (f" · tuned params {overrides}" if overrides else ""))
show_warnings({"warnings": report["warnings"] + c["warnings"]})

left, right = st.columns([3, 2])
with left:
    table = pd.DataFrame(kpi_rows(report))[["title", "value", "baseline", "delta", "interval"]]
    st.dataframe(table.rename(columns={"title": "metric", "value": "candidate", "interval": "95% interval"}),
                 hide_index=True, width="stretch")
with right:
    rows = [{"metric": title, "delta": c["delta"][key], "low": c["intervals"]["delta"][key][0],
             "high": c["intervals"]["delta"][key][1]} for key, title in INTERVAL_METRICS
            if c["delta"].get(key) is not None and c["intervals"]["delta"].get(key)]
    if rows:
        st.altair_chart(delta_interval_chart(rows), width="stretch")
    if c["intervals"]["delta"].get("net_benefit"):
        lo, hi = c["intervals"]["delta"]["net_benefit"]
        verdict = "gains" if lo > 0 else "loses" if hi < 0 else "may gain or lose"
        st.markdown(f"Net benefit change **{fmt(c['delta']['net_benefit'], 'money')}** "
                    f"(95% interval {fmt(lo, 'money')} … {fmt(hi, 'money')}): the candidate **{verdict}** money.")

st.subheader("Decisions that change")
changed = pd.DataFrame(c["changed"]).round({"amount": 0, "fraud_amount": 0, "good_amount": 0})
if changed.empty:
    st.info("No event changes decision.")
else:
    picked = st.dataframe(changed, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="changed", column_config={
                              k: st.column_config.NumberColumn(label, format="localized")
                              for k, label in (("events", "events"), ("fraud", "fraud"), ("good", "good"),
                                               ("unlabeled", "unlabelled"), ("amount", "money"),
                                               ("fraud_amount", "fraud money"), ("good_amount", "good money"))})
    chosen = picked.selection.rows if picked and picked.selection else []
    if chosen:
        row = changed.iloc[chosen[0]]
        frame = frame_of(con, dataset)
        cand_c = guard(compile_strategy, ws.strategy(candidate), frame, ws.rel(candidate), overrides)
        base_c = guard(compile_strategy, ws.strategy(baseline), frame, ws.rel(baseline))
        events = transition_events(con, cand_c, base_c, frame, dataset, window, row["before"], row["after"])
        st.markdown(f"**{row['before']} → {row['after']}**: first {events.num_rows:,} of {row['events']:,} events")
        st.dataframe(events.to_pandas(), hide_index=True, width="stretch", height=300)
    else:
        st.caption("Select a row to see its events.")

st.subheader("Rule attribution (candidate)")
attribution = report["attribution"]
left, right = st.columns([5, 3])
with left:
    loo = pd.DataFrame(attribution["leave_one_out"]).round({"net_benefit_added": 0})
    unique = {r["name"]: r["unique_tp"] for r in report["rules"]}
    loo.insert(2, "unique catches", loo["name"].map(unique))
    st.dataframe(loo[["name", "action", "unique catches", "recall_added", "precision_added", "net_benefit_added",
                      "review_cases_added"]], hide_index=True, width="stretch", column_config={
        "recall_added": st.column_config.NumberColumn("recall added", format="percent"),
        "precision_added": st.column_config.NumberColumn("precision added", format="percent"),
        "net_benefit_added": st.column_config.NumberColumn("net benefit added", format="localized"),
        "review_cases_added": st.column_config.NumberColumn("reviews added", format="localized")})
    if attribution["removal_candidates"]:
        st.warning("Catch no fraud on their own (candidates for removal): "
                   + ", ".join(attribution["removal_candidates"]))
with right:
    if attribution["overlap"]["rules"]:
        st.altair_chart(overlap_chart(attribution["overlap"]), width="stretch")

if c.get("segments"):
    st.subheader(f"Segments by {by}")
    worse = set(c["segments"]["worse"])
    seg = pd.DataFrame([{"segment": ("⚠ " if r["segment"] in worse else "") + r["segment"],
                         "events": r["population"], "recall": r["candidate"]["recall"],
                         "Δ recall": r["delta"]["recall"], "precision": r["candidate"]["precision"],
                         "Δ precision": r["delta"]["precision"],
                         "Δ net benefit": round(r["delta"]["net_benefit"] or 0)}
                        for r in c["segments"]["rows"]])
    left, right = st.columns([3, 2])
    left.dataframe(seg, hide_index=True, width="stretch", column_config={
        **{k: st.column_config.NumberColumn(format="percent") for k in ("recall", "Δ recall", "precision",
                                                                         "Δ precision")},
        **{k: st.column_config.NumberColumn(format="localized") for k in ("events", "Δ net benefit")}})
    right.altair_chart(segment_delta_chart(c["segments"]["rows"]), width="stretch")
    if worse:
        st.caption(f"⚠ {c['segments']['worse_means']}.")
