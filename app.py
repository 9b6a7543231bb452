"""riskconsole: the Streamlit entry point. It only builds navigation; pages live in riskconsole/ui/."""

import streamlit as st

st.set_page_config(page_title="riskconsole", page_icon="🛡️", layout="wide")
PAGES = "riskconsole/ui"
st.navigation([
    st.Page(f"{PAGES}/backtest_page.py", title="Backtest", icon="📊", default=True),
    st.Page(f"{PAGES}/tune_page.py", title="Tune", icon="🎚️"),
    st.Page(f"{PAGES}/strategy_page.py", title="Strategy", icon="📝"),
    st.Page(f"{PAGES}/data_page.py", title="Data", icon="🗃️"),
    st.Page(f"{PAGES}/export_page.py", title="Export", icon="📤"),
]).run()
