"""Detectors: model cards, training with progress, and an event explorer with reason codes."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from riskconsole.charts import histogram_chart, importance_chart
from riskconsole.errors import RiskConsoleError
from riskconsole.export import fmt
from riskconsole.share import top_table
from riskconsole.ui.lists_panel import add_event_value
from riskconsole.ui.common import (TileRow, db_version, guard, open_page, pick_strategy, release_connections,
                                   wrapping_row)

session = open_page("Detectors")
ws = session.ws


def cards() -> dict[str, dict]:
    """Model cards of the trained detectors."""
    folders = sorted(ws.models_dir.glob("*/card.json")) if ws.models_dir.exists() else []
    return {p.parent.name: json.loads(p.read_text()) for p in folders}


def card_bins(card: dict) -> list[dict]:
    edges = card["histograms"]["edges"]
    return [{"label": name, "start": edges[i], "end": edges[i + 1], "events": count}
            for key, name in (("label_1", "fraud"), ("label_0", "good"), ("unknown", "unknown"))
            for i, count in enumerate(card["histograms"][key])]


specs = sorted(ws.detectors_dir.glob("*.yaml")) if ws.detectors_dir.exists() else []
with st.expander("Train detectors", expanded=not cards()):
    chosen = st.multiselect("Detector files", [p.name for p in specs], default=[p.name for p in specs])
    if chosen and st.button("Train and score every event", type="primary"):
        from riskconsole.detectors import train_detector

        release_connections()  # this process writes the scores: close its read-only connections first
        with st.status("Training ...", expanded=True) as status:
            try:
                for name in chosen:
                    result = train_detector(ws, ws.detectors_dir / name, progress=status.write)
                    status.write(result.summary())
                    for warning in result.warnings:
                        st.warning(warning, icon="⚠️")
                status.update(label="Trained and scored", state="complete")
            except RiskConsoleError as err:
                status.update(label="Training refused: nothing changed", state="error")
                st.error(str(err))
        st.cache_data.clear()

for name, card in cards().items():
    st.subheader(f"{name} · {card['kind']}")
    for warning in card.get("warnings") or []:
        st.warning(warning, icon="⚠️")
    row = TileRow()
    for part in ("train", "valid", "out_of_time"):
        info = card.get(part) or {}
        auc, ap = info.get("auc"), info.get("average_precision")
        row.add(f"{part.replace('_', ' ')} AUC", "—" if auc is None else f"{auc:.3f}",
                None if ap is None else f"average precision {ap:.3f}", delta_color="off", delta_arrow="off",
                help=f"{info.get('from')} … {info.get('to')} · {info.get('labelled', 0):,} labelled, "
                     f"fraud rate {fmt(info.get('label_rate'), 'pct')}")
    row.add("trees" if card["kind"] == "lightgbm" else "rows fitted",
            f"{card.get('model', {}).get('trees') or card.get('fit_rows', 0):,}")
    row.add("events scored", f"{card.get('events_scored', 0):,}")
    row.draw()
    left, right = wrapping_row(480, 480)
    left.altair_chart(importance_chart(card["importance"][:12], card.get("importance_method", "")), width="stretch")
    right.altair_chart(histogram_chart(card_bins(card), "score"), width="stretch")
    if shown := top_table(card):
        top, caption = shown
        st.caption(caption)
        st.dataframe(pd.DataFrame(top), hide_index=True, column_config={
            "share": st.column_config.NumberColumn("top share of labelled events", format="percent"),
            "threshold": st.column_config.NumberColumn(format="%.6f"),  # 0.999992, not 1
            "precision": st.column_config.NumberColumn(format="percent"),
            "recall": st.column_config.NumberColumn(format="percent")})

st.subheader("Event explorer")
left, right = st.columns([2, 3])
event_id = left.text_input("Event id", placeholder="e.g. o00012345")
with right:
    path = pick_strategy(ws, "Matched rules under", "strategy", default="candidate")


@st.cache_data(max_entries=64, show_spinner="Explaining (first call loads the models) ...")
def explained(root: str, version: str, event: str) -> dict:
    from riskconsole.detectors import explain

    return explain(ws, event)


if event_id:
    try:
        info = explained(str(ws.root), db_version(ws), event_id.strip()) if cards() else None
    except RiskConsoleError as err:
        st.error(str(err))
        st.stop()
    decision = guard(session.event_decision, path, event_id.strip())
    if decision is None and info is None:
        st.error(f"no event '{event_id}' in the population of {path.stem}")
        st.stop()
    if decision:
        st.markdown(f"**{path.stem}** decides **{decision['action']}** · matched rules: "
                    + (", ".join(f"`{r}`" for r in decision["matched_rules"]) or "none")
                    + f" · label {decision['label'] if decision['label'] is not None else 'unknown'}"
                    + f" · amount {fmt(decision['amount'], 'money')}")
        add_event_value(session, event_id.strip(), path)
    if info:
        for detail in info["detectors"]:
            st.markdown(f"**{detail['name']}** score **{detail['score']:.4f}** — {detail.get('method', '')}")
            st.dataframe(pd.DataFrame(detail["reasons"]), hide_index=True, width="stretch")
            for u in detail.get("unseen", []):
                st.caption(f"{u['feature']} = {u['value']}: not among the {u['learned']:,} values {detail['name']} "
                           f"learned in training, read as {u['read_as']}")
        with st.expander("All feature values"):
            st.dataframe(pd.DataFrame([info["features"]]).T.rename(columns={0: "value"}), width="stretch")
