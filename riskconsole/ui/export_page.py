"""Export: the same files the CLI writes, byte for byte, and the reviewed strategy YAML."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
import yaml

from riskconsole.backtest import fetch_decisions
from riskconsole.export import render_files
from riskconsole.report import run_backtest
from riskconsole.ui.common import guard, open_page, pick_strategy, pick_window

MIME = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet",
        "html": "text/html", "md": "text/markdown", "yaml": "application/yaml"}

ws, con, dataset = open_page("Export")
path = pick_strategy(ws, "Strategy", "strategy", default="candidate")
window = pick_window(con, dataset)
overrides = st.session_state.get("params", {}).get(path.stem, {})
st.markdown(f"Exports **{path.stem}** over the sidebar window"
            + (f" with tuned params `{overrides}`" if overrides else " with its saved params") + ".")
st.caption("Equivalent CLI: `riskconsole backtest " + ws.rel(path)
           + (f" --from {window.start:%Y-%m-%d}" if window.start else "")
           + (f" --to {window.end - timedelta(days=1):%Y-%m-%d}" if window.end else "")
           + (f" --as-of {window.as_of - timedelta(days=1):%Y-%m-%d}" if window.as_of else "")
           + "".join(f" --set {k}={v}" for k, v in overrides.items()) + " --format json,csv,html,md`")


@st.cache_data(max_entries=4, show_spinner="Running the backtest for export ...")
def export_files(root: str, text: str, strategy_path: str, window, overrides: dict, _con) -> dict[str, bytes]:
    bt = run_backtest(ws, strategy_path, window, overrides, con=_con)
    decisions = fetch_decisions(_con, bt.compiled, bt.frame, bt.dataset, window)
    return render_files(bt.report, ["json", "csv", "html", "md"], decisions)


files = guard(export_files, str(ws.root), path.read_text(), str(path), window, overrides, _con=con)
columns = st.columns(3)
for i, (name, data) in enumerate(files.items()):
    columns[i % 3].download_button(name, data, file_name=name, mime=MIME[name.rsplit(".", 1)[1]], width="stretch")
strategy = guard(ws.strategy, path)
reviewed = strategy.model_copy(update={"params": {**strategy.params, **overrides}})
text = yaml.safe_dump(reviewed.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
columns[len(files) % 3].download_button(f"{path.stem}.yaml (reviewed)", text.encode(), file_name=f"{path.stem}.yaml",
                                        mime=MIME["yaml"], width="stretch")
st.subheader("Report preview")
st.markdown(files["report.md"].decode())
