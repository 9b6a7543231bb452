"""riskconsole: the Streamlit entry point. It only builds navigation; pages live in riskconsole/ui/."""

import streamlit as st

# an emoji icon is drawn by the browser itself; a ":material/...:" one is fetched from fonts.gstatic.com on every page
# load (a request to Google from a local console, failing on an offline network)
st.set_page_config(page_title="riskconsole", page_icon="🛡️", layout="wide")
PAGES = "riskconsole/ui"
st.navigation([
    st.Page(f"{PAGES}/backtest_page.py", title="Backtest", icon=":material/query_stats:", default=True),
    st.Page(f"{PAGES}/compare_page.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page(f"{PAGES}/tune_page.py", title="Tune", icon=":material/tune:"),
    st.Page(f"{PAGES}/monitor_page.py", title="Monitor", icon=":material/monitor_heart:"),
    st.Page(f"{PAGES}/strategy_page.py", title="Strategy", icon=":material/edit_note:"),
    st.Page(f"{PAGES}/detectors_page.py", title="Detectors", icon=":material/model_training:"),
    st.Page(f"{PAGES}/data_page.py", title="Data", icon=":material/database:"),
    st.Page(f"{PAGES}/export_page.py", title="Export", icon=":material/download:"),
]).run()
