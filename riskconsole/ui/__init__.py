"""Streamlit pages of the console (the only place Streamlit is imported)."""
