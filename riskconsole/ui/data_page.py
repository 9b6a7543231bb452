"""Data: what is loaded, label maturity, the quarantine, features; load another dataset or a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from riskconsole.errors import QuarantineRefused, RiskConsoleError
from riskconsole.export import fmt
from riskconsole.ingest import FORMATS, reload
from riskconsole.uploads import load_upload, upload_limit_mb, workspace_dataset
from riskconsole.overview import distribution, feature_table, quarantine_reasons, sources, \
    quarantine_sample, summary, tables
from riskconsole.charts import histogram_chart, maturity_chart
from riskconsole.storeviews import folders as viewed_folders
from riskconsole.ui.common import current_session, dataset_or_stop, guard, release_connections, \
    session_connection, TileRow, workspace

ws = workspace()
st.title("Data")
_loaded = current_session(ws)
if _loaded is not None and _loaded.loaded:  # what runs where, as under every other page's title
    _note = guard(_loaded.engine_note)
    if _note:
        st.caption(_note)
st.caption(f"Workspace **{ws.root}**")
if ws.db_path.exists():
    st.caption(f"Database {ws.rel(ws.db_path)}")


REFUSED, ACCEPTED = "_load_refused", "_load_accepted"  # a load refused for its quarantine: (message, action)


def run_load(action, accept_quarantine: bool = False) -> None:
    """Load with a progress box; the read-only connections are closed first so the new file can replace the old.

    `action(progress, accept_quarantine)` loads; refused because most of a source's rows would be quarantined, it is
    kept in the session, and the page shows why and offers it again with the quarantine accepted."""
    st.session_state.pop(REFUSED, None)
    release_connections()
    refused, rest = None, []
    with st.status("Loading events, building features, re-scoring detectors ...", expanded=True) as status:
        try:
            result = action(status.write, accept_quarantine)
        except RiskConsoleError as err:
            status.update(label="Load refused: nothing changed", state="error")
            refused = err
        else:
            first, *rest = result.summary().splitlines()  # a box's label is one line: the events' counts
            status.update(label=first, state="complete")
    if refused is None and rest:
        st.text("\n".join(rest))  # every other source's counts, a line each (they ran together in the label)
    if refused is not None:  # said outside the box, which folds when it ends: the reason must stay in view
        if isinstance(refused, QuarantineRefused):
            st.session_state[REFUSED] = (str(refused), action)
        else:
            st.error(str(refused))
        return
    for warning in result.warnings:
        st.warning(warning)
    st.cache_data.clear()
    st.session_state["_data_just_loaded"] = True  # its warnings are shown above, not again below


def _accept() -> None:
    st.session_state[ACCEPTED] = st.session_state.pop(REFUSED)[1]


with st.expander("Load another dataset or upload a file", expanded=not ws.db_path.exists()):
    spec = st.text_input("dataset.yaml to load (a file inside the workspace)", value=str(ws.dataset_path))
    if st.button("Load dataset"):
        run_load(lambda progress, accept: reload(ws, workspace_dataset(ws, spec), progress, trusted=False,
                                                 accept_quarantine=accept))
    upload = st.file_uploader(f"…or upload events (CSV, Parquet, JSON Lines, at most {upload_limit_mb()} MB) with "
                              "the same columns as the current dataset", type=[s.lstrip(".") for s in FORMATS])
    if upload is not None and st.button(f"Load {upload.name}"):
        run_load(lambda progress, accept: load_upload(ws, upload.name, upload.getvalue(), progress, accept))
    if REFUSED in st.session_state:
        st.error(st.session_state[REFUSED][0])
        st.button("Load anyway (keep the quarantine)", on_click=_accept)
    if ACCEPTED in st.session_state:  # the button's click: the same load, its quarantine accepted
        run_load(st.session_state.pop(ACCEPTED), accept_quarantine=True)

con = session_connection(ws)
if con is None or "frame" not in tables(con):
    st.info("Nothing is loaded yet: load a dataset above, or build the demo here (orders of a content-commerce "
            "platform with six fraud scenarios; the same as `riskconsole demo`).")
    size = st.select_slider("Demo size (orders)", [50_000, 200_000, 1_000_000], value=200_000, format_func="{:,}".format)
    if st.button("Build the demo workspace", type="primary"):
        from riskconsole.scaffold import build_demo_workspace

        release_connections()
        with st.status(f"Building a {size:,}-order demo ...", expanded=True) as status:
            try:
                result = build_demo_workspace(ws, n_events=size, progress=status.write)
            except RiskConsoleError as err:
                status.update(label="Demo build failed", state="error")
                st.error(str(err))
                st.stop()
            status.update(label=result.summary(), state="complete")
        st.cache_data.clear()
        st.rerun()
    st.stop()
dataset = dataset_or_stop(ws)
for folder in viewed_folders(con):
    st.caption(f"Loaded on Spark: the events, streams, tables, features, quarantines and Spark's scores are read from "
               f"its Parquet in {ws.rel(Path(folder))}, not copied into the database")
loaded_by = current_session(ws)
if loaded_by is not None and not st.session_state.pop("_data_just_loaded", False):
    for warning in loaded_by.load_warnings():
        st.warning(f"The last load warned: {warning}")
info = summary(con, dataset)
row = TileRow()
row.add("events loaded", f"{info['events']:,}")
row.add("quarantined", f"{info['quarantined']:,}")
row.add("days", f"{(info['last'] - info['first']).days + 1:,}",
        help=f"{info['first']:%Y-%m-%d %H:%M} … {info['last']:%Y-%m-%d %H:%M}")
row.add("labelled", f"{info['labelled']:,}", f"{info['unlabelled']:,} not yet", delta_color="off",
        delta_arrow="off")
row.add("fraud rate (labelled)", fmt(info["label_rate"], "pct"))
row.draw()

streams = sources(con, dataset)
if streams:
    st.subheader("Streams and tables")
    st.caption("Context the features read beside the decision events: streams are aggregated over windows, tables "
               "looked up (as of each event's time where they have valid_from).")
    shown = pd.DataFrame(streams)
    for side in ("from", "to"):  # a table without valid_from has no time span: blank, not "None"
        shown[side] = shown[side].map(lambda t: "" if t is None or pd.isna(t) else str(t))
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "rows": st.column_config.NumberColumn(format="localized"),
        "quarantined": st.column_config.NumberColumn(format="localized")})

st.subheader("Label maturity")
st.caption("Labels arrive late (chargebacks, confirmed merchants): each line is one label source, the share of its "
           "units labelled within that many days of happening (labelled now, where the source has no label time), "
           "by age. A line marked *fraud confirmed* counts fraud only: the share of fraud labels known that many "
           "days after the event (a table's good entities count as known at once, and good labels without a label "
           "time have no day to count). A backtest without an end day stops where its label source's line reaches "
           "the dashed mark.")
label_sources = guard(current_session(ws).label_sources)
if label_sources:
    st.altair_chart(maturity_chart(label_sources), width="stretch")
    for line in label_sources:
        st.caption(line["reading"])
else:
    st.info("The dataset maps no label (columns.label, or a table's label): there is nothing to mature.")

st.subheader("Quarantine")  # full width, as Features below: raw rows and SQL definitions are wide
reasons = quarantine_reasons(con)
if reasons:
    st.dataframe(pd.DataFrame(reasons), hide_index=True, width="stretch")
    st.dataframe(quarantine_sample(con), hide_index=True, height=220)
else:
    st.success("No row was quarantined.")
st.subheader("Features")
features = feature_table(dataset)
table = pd.DataFrame(features)
st.dataframe(table.sort_values("source", kind="stable") if features else table, hide_index=True,
             width="stretch", height=300)
if features:
    name = st.selectbox("Distribution of", [f["feature"] for f in features])
    dist = distribution(con, dataset, name)
    if dist["bins"]:
        st.altair_chart(histogram_chart(dist["bins"], name), width="stretch")
        st.caption(" · ".join(f"{k} {v:,.4g}" for k, v in dist["quantiles"].items())
                   + f" · {dist['nulls']:,} empty")
    else:
        st.info(f"{name} is empty for every event.")
