"""Export: the same files the CLI writes, byte for byte, and the reviewed strategy YAML."""

from __future__ import annotations

import streamlit as st

from riskconsole.export import zip_bytes
from riskconsole.session import window_text
from riskconsole.ui.common import export_files, guard, open_page, pick_strategy, pick_window

MIME = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet",
        "html": "text/html", "md": "text/markdown", "yaml": "application/yaml"}
FORMATS = ("json", "csv", "html", "md")

session = open_page("Export")
ws = session.ws
path = pick_strategy(ws, "Strategy", "strategy", default="candidate")
window = pick_window(session, path, warned=False)
overrides = st.session_state.get("params", {}).get(path.stem, {})
st.markdown(f"Exports **{path.stem}** over the sidebar window"
            + (f" with tuned params `{overrides}`" if overrides else " with its saved params") + ".")
st.caption("Equivalent CLI: `riskconsole backtest " + " ".join(
    [ws.rel(path), window_text(window), *(f"--set {k}={v}" for k, v in overrides.items()),
     "--format " + ",".join(FORMATS)]).replace("  ", " ") + "`")

files = guard(export_files, session, path, window, overrides, FORMATS)
# one wrapping row of buttons as wide as their names: 3 columns at 800 px cut "candidate.yaml (reviewed)" to "(r…"
buttons = st.container(horizontal=True, wrap=True, gap="small")
for name, data in files.items():
    buttons.download_button(name, data, file_name=name.rsplit("/", 1)[-1], mime=MIME[name.rsplit(".", 1)[1]],
                            width="content")
text = guard(session.strategy_yaml, path, overrides)
buttons.download_button(f"{path.stem}.yaml (reviewed)", text.encode(), file_name=f"{path.stem}.yaml",
                        mime=MIME["yaml"], width="content")
lists = {name: data for name, data in files.items() if name.startswith("lists/")}
if lists:  # the strategy reads lists: its review goes with the list versions it ran with
    bundle = zip_bytes({f"strategies/{path.stem}.yaml": text.encode(), **lists})
    buttons.download_button(f"{path.stem}.zip (reviewed, with its lists)", bundle, file_name=f"{path.stem}.zip",
                            mime="application/zip", width="content")
st.subheader("Report preview")
st.markdown(files["report.md"].decode())
