"""Backtest: KPIs against a baseline, confusion, rules, daily load against capacity, warnings."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from riskconsole.export import fmt
from riskconsole.ui.charts import daily_chart
from riskconsole.ui.common import (connection_or_stop, dataset_or_stop, evaluate, guard, kpi_tiles, pick_strategy,
                                   pick_window, show_warnings, workspace)

ws = workspace()
con = connection_or_stop(ws)
dataset = dataset_or_stop(ws)
st.title("Backtest")
left, right = st.columns(2)
with left:
    candidate = pick_strategy(ws, "Strategy", "strategy", default="candidate")
with right:
    baseline = pick_strategy(ws, "Baseline (in production)", "baseline", default="baseline")
window = pick_window(con, dataset)
report = guard(evaluate, ws, con, dataset, candidate, window, st.session_state.get("params", {}).get(candidate.stem))
base = guard(evaluate, ws, con, dataset, baseline, window)
o = report["overall"]
st.caption(f"{report['window']['from']} … {report['window']['to']} · population {o['population']:,} events · "
           f"{o['unlabeled_total']:,} unlabelled · deltas against **{baseline.stem}**")
kpi_tiles(report, base)
show_warnings(report)

st.subheader("Daily alerts, caught fraud and review load")
st.altair_chart(daily_chart(report["daily"], o["review_capacity"]), width="stretch")

left, right = st.columns([1, 2])
with left:
    st.subheader("Confusion")
    st.dataframe(pd.DataFrame(
        {"fraud": [o["tp"], o["fn"], o["unlabeled_flagged"]], "good": [o["fp"], o["tn"], None],
         "unknown label": [o["unlabeled_flagged"], o["unlabeled_total"] - o["unlabeled_flagged"], None]},
        index=["flagged", "not flagged", " "]).iloc[:2], width="stretch")
    st.markdown(f"Blocked **{report['by_action']['block']['events']:,}**, reviewed "
                f"**{report['by_action']['review']['events']:,}** · review cost **{fmt(o['review_cost'], 'money')}**")
with right:
    st.subheader("Rules")
    rules = pd.DataFrame(report["rules"])[["name", "action", "enabled", "hits", "tp", "fp", "precision", "recall",
                                          "unique_tp"]]
    st.dataframe(rules, hide_index=True, width="stretch", column_config={
        "precision": st.column_config.NumberColumn(format="percent"),
        "recall": st.column_config.NumberColumn(format="percent"),
        "hits": st.column_config.NumberColumn(format="localized"),
        "unique_tp": st.column_config.NumberColumn("unique catches", format="localized",
                                                   help="Fraud this rule alone flags in the final decision")})
