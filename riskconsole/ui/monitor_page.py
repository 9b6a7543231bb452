"""Monitor: the deployed strategy's daily KPIs against their bands, alerts, why they moved, and drift.

Every number comes from `Session.monitor`, the call `riskconsole monitor` makes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import streamlit as st
import yaml

import altair as alt

from riskconsole.charts import estimate_chart, kpi_band_chart, waterfall_chart
from riskconsole.escape import markdown as md
from riskconsole.monitor import METRICS, MIN_REFERENCE_DAYS, RULE_HITS, incident_row
from riskconsole.segments import segment_columns
from riskconsole.session import Session
from riskconsole.share import ALERT_HEADERS, BAND_NOTE, KPI_TITLES, alert_rows
from riskconsole.ui.common import TileRow, results_version, guard, open_page, pick_strategy, strategy_text, wrapping_row

# Two 170 px columns of band charts fit the ~470 px of content an 800 px window leaves beside the sidebar (three of 225
# px were cut after the second); a facet cannot take its container's width.
KPI_GRID = {"columns": 2, "width": 170}

@st.cache_data(max_entries=16, show_spinner="Monitoring (one grouped pass per view, one for drift) ...")
def _monitor(root: str, version: str, path: str, text: str, start: str, end: str, reference: str | None,
             by: tuple[str, ...], _session: Session) -> dict:
    return _session.monitor(path, start, end, reference, list(by))


def monitor(session: Session, path: Path, start: str, end: str, reference: str | None, by: list[str]) -> dict:
    """`Session.monitor`, cached per database version, file text and arguments."""
    return _monitor(str(session.ws.root), results_version(session.ws), str(path), strategy_text(path), start, end,
                    reference, tuple(by), _session=session)


def cluster_chart(clusters: list[dict]) -> alt.Chart:
    """Each listed group's events per day (distinct entity-days, bars) against its usual count (line)."""
    rows = [{"group": f"{n}. {c['group']}", "day": d["day"], "entity-days": d["entity_days"], "usual": d["expected"]}
            for n, c in enumerate(clusters, start=1) for d in c["daily"]]
    df = pd.DataFrame(rows)
    df["day"] = pd.to_datetime(df["day"])
    base = alt.Chart(df).encode(x=alt.X("day:T", title=None))
    bars = base.mark_bar(opacity=0.7).encode(y=alt.Y("entity-days:Q", title="entity-days"),
                                             tooltip=["day:T", "entity-days:Q", alt.Tooltip("usual:Q", format=".2f")])
    usual = base.mark_line(color="#d62728").encode(y="usual:Q")
    return (bars + usual).properties(height=110, width=700).facet(
        row=alt.Row("group:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=700,
                                                             labelOrient="top"))).resolve_scale(y="independent")


def draft_rule(path: Path, number: int, when: str) -> None:
    """Open the Strategy editor on this strategy with a review rule for the cluster appended (not saved)."""
    from riskconsole.versions import digest

    on_disk = strategy_text(path)
    body = yaml.safe_load(on_disk)
    body.setdefault("rules", []).append({"name": f"draft_cluster_{number}", "when": when, "action": "review"})
    drafts = st.session_state.setdefault("drafts", {})
    drafts[path.stem] = {"text": yaml.safe_dump(body, sort_keys=False, allow_unicode=True), "base": digest(on_disk),
                         "dirty": True, "rev": drafts.get(path.stem, {}).get("rev", 0) + 1}
    st.session_state["strategy"] = path.stem
    st.switch_page("riskconsole/ui/strategy_page.py")


def incidents_section(result: dict) -> None:
    """Incidents first: the alerts of one cause on days close together, each once, with what explains it."""
    st.subheader("Incidents")
    if not result["incidents"]:
        st.success("No metric left its band in this window.")
        return
    st.caption("An incident is one cause: the alerts whose change one rule's decided events explain most (at least "
               "a quarter), or that rule's own hits, on days at most two apart (or with its hits raised between); "
               "the alerts themselves are in **Alerts and why** below.")
    rows = pd.DataFrame([incident_row(i) for i in result["incidents"]])
    rows = rows[[c for c in rows.columns if c != "top"] + ["top"]]  # the longest text last: the rest stays in view
    st.dataframe(rows.rename(columns={"incident": "#", "first_day": "first day", "last_day": "last day",
                                      "rules": "rules (cause first)", "top": "top segments",
                                      "metrics": "metrics that moved", "size": "beyond the band"}),
                 hide_index=True, width="stretch", column_config={  # narrow counts: the causes need the room
                     "#": st.column_config.NumberColumn(width="small"),
                     "ongoing": st.column_config.CheckboxColumn(width="small"),
                     "alerts": st.column_config.NumberColumn(width="small"),
                     "days": st.column_config.NumberColumn(width="small", help="days alerting"),
                     "beyond the band": st.column_config.NumberColumn(
                         format="%.4g", help="The lead metric's excess over its band, summed over the incident's "
                                             "days (the rule's own hits when they alerted).")})


SECTIONS = ["Alerts and why", "Rule hits", "Drift", "Early warning", "Possible attacks"]


def alerts_section(result: dict) -> None:
    """The alerts table, and one alert's change as a waterfall of segment contributions."""
    if not result["alerts"]:
        st.success("No metric left its band in this window.")
        return
    alerts = pd.DataFrame(alert_rows(result), columns=ALERT_HEADERS)  # as monitor.html and monitor.md show them
    st.dataframe(alerts, hide_index=True, width="stretch")
    st.subheader("Why it moved")
    labels = [f"{e['day']} · {e['metric']}" for e in result["attribution"]]
    left, right = st.columns([3, 2])
    with left:
        picked = st.selectbox("Alert", labels, key="monitor_alert")
    entry = result["attribution"][labels.index(picked)]
    views = list(dict.fromkeys(c["by"] for c in entry["contributions"]))
    with right:
        view = st.selectbox("Split by", views, key="monitor_view")
    st.caption(f"{entry['metric']}: reference {entry['reference']:,.4g} → {entry['value']:,.4g} "
               f"(change {entry['change']:+,.4g}); each bar is a segment's mix + rate effect; they sum to the change.")
    st.altair_chart(waterfall_chart(entry, view), width="stretch")
    rows = pd.DataFrame([c for c in entry["contributions"] if c["by"] == view]).drop(columns=["by"])
    st.dataframe(rows, hide_index=True, width="stretch", column_config={
        "explanatory_power": st.column_config.NumberColumn("explanatory power", format="percent"),
        "surprise": st.column_config.NumberColumn(format="%.4f")})


def rules_section(result: dict) -> None:
    """Each rule's daily hits against its band."""
    keys = [k for k in result["daily"][0] if k.startswith(RULE_HITS)] if result["daily"] else []
    alerting = sorted({a["metric"][len(RULE_HITS):] for a in result["alerts"] if a["metric"].startswith(RULE_HITS)})
    st.caption(f"{len(keys)} rules; events whose condition is true, whatever the decision. Alerting: "
               + (", ".join(alerting) if alerting else "none") + ".")
    st.altair_chart(kpi_band_chart(result["daily"], keys, {k: k[len(RULE_HITS):] for k in keys}, **KPI_GRID),
                    width="content")


def drift_section(result: dict) -> None:
    """Drift of every column and score against the reference, and the bins that moved most."""
    drift = pd.DataFrame([{"column": d["column"], "kind": d["kind"], "PSI": d["psi"], "JS distance": d["js_distance"],
                           "worst day PSI": d["max_daily_psi"], "worst day": d["max_day"], "drifted": d["drifted"]}
                          for d in result["drift"]])
    st.dataframe(drift, hide_index=True, width="stretch", column_config={
        "PSI": st.column_config.NumberColumn(format="%.3f"),
        "JS distance": st.column_config.NumberColumn(format="%.3f"),
        "worst day PSI": st.column_config.NumberColumn(format="%.3f")})
    for d in [d for d in result["drift"] if d["bins"]]:
        with st.expander(f"{d['column']}: bins that moved most (PSI {d['psi']:.3f})"):
            st.dataframe(pd.DataFrame(d["bins"]), hide_index=True, width="stretch", column_config={
                k: st.column_config.NumberColumn(format="percent") for k in ("reference", "window", "change")})


def estimate_section(result: dict) -> None:
    """Precision estimated from the calibrated score against the early labels."""
    estimate = result["estimate"]
    if estimate is None:
        st.info("No trained supervised detector: train one (Detectors page) to estimate precision before labels "
                "arrive.")
        return
    gaps = [d["day"] for d in estimate["daily"] if d["disagree"]]
    st.caption(f"Precision of flagged events estimated from **{estimate['detector']}**'s calibrated score "
               f"(CBPE) against the labels already in; {len(gaps)} day(s) where they disagree by more than 3 "
               "standard errors" + (f": {', '.join(gaps[:8])}" if gaps else "") + ". On the youngest days the few "
               "early labels are mostly fraud.")
    st.altair_chart(estimate_chart(estimate["daily"]), width="stretch")


def clusters_section(result: dict, path: Path) -> None:
    """Groups of allowed high-score events, their daily counts, and a 'Draft a rule' per group."""
    clusters = result["clusters"]
    if not clusters:
        st.info("No group of allowed, high-score events is unusual enough (exact two-rate test, 1% chance of any "
                "false group per run), or no trained detector.")
        return
    st.caption("Allowed events some detector scores in its top reference decile, grouped by shared attribute "
               "values (numeric columns as reference-decile ranges). A group is listed when its count since its "
               "onset beats the reference's, scaled by volume and by each value's own change, at a 1% chance of "
               "any false group per run (Bonferroni over every group and onset tried).")
    st.dataframe(pd.DataFrame([{"group": f"{n}. {c['group']}", "since": c["since"],
                                "events since": c["events_since"], "entity-days/day": c["per_day"],
                                "usual": c["usual_per_day"], "lift": c["lift"],
                                "p": c["p_value"]} for n, c in enumerate(clusters, start=1)]),
                 hide_index=True, width="stretch",
                 column_config={"entity-days/day": st.column_config.NumberColumn(
                                    format="%.1f", help="distinct (first entity column, day) pairs a day since the "
                                    "onset: a buyer's burst counts once"),
                                "usual": st.column_config.NumberColumn(format="%.2f", help="entity-days a day usually"),
                                "lift": st.column_config.NumberColumn(format="%.1f×"),
                                "p": st.column_config.NumberColumn(format="%.0e", help="chance of a group this "
                                                                   "unusual under no change, × the tests tried")})
    st.altair_chart(cluster_chart(clusters), width="stretch")
    for number, cluster in enumerate(clusters, start=1):
        left, right = st.columns([6, 1])
        left.markdown(f"**{number}. {md(cluster['group'])}** — {cluster['events_since']:,} events since "
                      f"{cluster['since']}; {cluster['per_day']:,.1f} entity-days a day vs "
                      f"{cluster['usual_per_day']:,.2f} usually ({cluster['lift']:,.1f}×)")
        left.code(cluster["when"], language="sql")
        if right.button("Draft a rule", key=f"monitor_draft_{number}", help="Open the Strategy editor with a review "
                        "rule for this group appended (nothing is saved until you save)."):
            draft_rule(path, number, cluster["when"])


session = open_page("Monitor")
ws = session.ws
lo, hi = session.day_range()
top = wrapping_row(180, 232, 232, 300)  # one line at 1,500 px, three at 800 (4 columns cut "baseline", the window)
with top[0]:
    path = pick_strategy(ws, "Strategy as deployed", "monitor_strategy", default="baseline")
with top[1]:
    # the last 28 days against the 28 before; data shorter than 56 days: what is left after 28 days of reference,
    # or at least MIN_REFERENCE_DAYS of it (the day pickers refuse a default past the data's last day)
    default_from = max(lo + timedelta(days=28), hi - timedelta(days=27))
    if default_from > hi:
        default_from = min(max(lo + timedelta(days=MIN_REFERENCE_DAYS), lo + (hi - lo) / 2), hi)
    window = st.date_input("Window", value=(default_from, hi), min_value=lo, max_value=hi, key="monitor_window")
with top[2]:
    custom = st.toggle("Custom reference", key="monitor_custom_ref",
                       help="By default the reference is the 28 days before the window.")
    reference = st.date_input("Reference", value=(max(lo, default_from - timedelta(days=28)),
                                                  default_from - timedelta(days=1)),
                              min_value=lo, max_value=hi, key="monitor_reference", disabled=not custom)
with top[3]:
    frame, dataset = guard(session.view, guard(session.strategy, path))
    columns = segment_columns(frame, dataset)
    unit = dataset.columns.entities[0] if frame.weight else "events"  # a selection per kind of decision
    by = st.multiselect("Attribute alerts by", columns, key=f"monitor_by_{unit}",
                        default=[c for c in ("user_country", "payment_method") if c in columns],
                        help="Columns whose segments explain each alert (rules are always one view).")
if not (isinstance(window, (list, tuple)) and len(window) == 2):
    st.info("Pick the window's first and last day.")
    st.stop()
ref_text = f"{reference[0]}:{reference[1]}" if custom and len(reference) == 2 else None
result = guard(monitor, session, path, window[0].isoformat(), window[1].isoformat(), ref_text, by)

r = result["reference"]
st.caption(f"Window {result['window']['from']} … {result['window']['to']} against reference {r['from']} … "
           f"{r['to']} (UTC days); labels known by {result['labels_known_by']}. Bands: {result['method']['band']}. "
           f"Same numbers as `riskconsole monitor {ws.rel(path)} --from {result['window']['from']} --to "
           f"{result['window']['to']}" + (f" --reference {ref_text}" if ref_text else "")
           + "".join(f" --by {b}" for b in by) + "`.")
for warning in result.get("warnings", []):  # labels still arriving: the same text the CLI prints
    st.warning(warning, icon="⚠️")
drifted = [d for d in result["drift"] if d["drifted"]]
row = TileRow()
row.add("incidents", f"{len(result['incidents']):,}",
        help="Alerts of one cause (one rule) on days at most two apart, counted once.")
row.add("alerts", f"{len(result['alerts']):,}", help="Metric-days outside their band.")
row.add("days alerting", f"{len({a['day'] for a in result['alerts']}):,} of {len(result['daily'])}")
row.add("drifted columns", f"{len(drifted):,} of {len(result['drift'])}")
row.draw()

incidents_section(result)

st.subheader("Daily KPIs against their expected band")
st.caption(BAND_NOTE)
st.altair_chart(kpi_band_chart(result["daily"], list(METRICS), KPI_TITLES, **KPI_GRID), width="content")

# Sections below draw only when opened (each tab reruns the page from the cached result): the page's cost in a
# browser is its charts, and the first view needs only the KPIs and the alerts.
draws = (alerts_section, rules_section, drift_section, estimate_section, lambda r: clusters_section(r, path))
for tab, draw in zip(st.tabs(SECTIONS, key="monitor_section", on_change="rerun"), draws):
    if tab.open:
        with tab:
            draw(result)
