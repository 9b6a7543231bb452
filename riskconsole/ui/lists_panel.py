"""Lists in the console: show and edit `lists/NAME.csv`, and add a value of one event to a list."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from riskconsole.errors import RiskConsoleError
from riskconsole.lists import (LIST_NAME, ListSet, add_entry, event_values, list_columns, read_entries,
                               remove_entry)
from riskconsole.session import Session

NEW = "(new list)"


def _lists(session: Session) -> ListSet:
    return session.ws.lists(session.dataset)


def _write(action, *args) -> None:
    """Write a list file; a bad entry is an error box and nothing changes."""
    try:
        found = action(*args)
    except RiskConsoleError as err:
        st.error(str(err))
    else:
        st.success(f"Saved {found.label}: {found.entries} entries (sha256 {found.sha256[:12]}).")


def lists_editor(session: Session) -> None:
    """Every list with its entries; add a value (with an optional expiry) or remove one."""
    lists = _lists(session)
    names = lists.names()
    st.caption("A rule reads a list as `device_id IN LIST blocked_devices` (or `NOT IN LIST`). Each list is "
               "`lists/NAME.csv` with a `value`, an optional `added` (UTC; counted from then on, so a backtest does not "
               "credit the entry on events from before it was listed; empty: always) and an optional `expires` "
               "(UTC; empty: never): commit lists/ with strategies/.")
    rows = []
    now = datetime.utcnow()
    for name in names:
        try:
            found = lists.load(name)
            rows.append({"list": name, "entries": found.entries, "active now": found.active(now),
                         "sha256": found.sha256[:12], "problem": ""})
        except RiskConsoleError as err:
            rows.append({"list": name, "entries": None, "active now": None, "sha256": "", "problem": str(err)})
    if rows:
        table = pd.DataFrame(rows)
        st.dataframe(table if table["problem"].any() else table.drop(columns="problem"), hide_index=True,
                     width="stretch")
    picked = st.selectbox("List", [*names, NEW], key="list_pick")
    name = st.text_input("New list name", placeholder="e.g. blocked_devices", key="list_new") \
        if picked == NEW else picked
    if name and not LIST_NAME.fullmatch(name):
        st.error(f"'{name}': a list name is letters, digits and _ (e.g. blocked_devices)")
        return
    if name and picked != NEW:
        entries = read_entries(lists.path(name))
        st.dataframe(pd.DataFrame(entries, columns=["value", "added", "expires", "note"]), hide_index=True,
                     width="stretch", height=min(400, 38 + 35 * max(1, len(entries))))
    with st.form("list_add", clear_on_submit=True):
        value_col, added_col, expires_col, note_col, go = st.columns([3, 3, 3, 3, 1.4], vertical_alignment="bottom")
        value = value_col.text_input("Value")
        since = added_col.text_input("Listed from (optional)", placeholder="2026-03-01 or 2026-03-01 12:00")
        expires = expires_col.text_input("Expires (optional)", placeholder="2026-06-30 or 2026-06-30 12:00")
        note = note_col.text_input("Note (optional)")
        added = go.form_submit_button("Add", type="primary", disabled=not name)
    if added and name:
        _write(add_entry, lists, name, value, expires, note, since)
    if name and picked != NEW:
        values = sorted({e["value"] for e in read_entries(lists.path(name))})
        if values:
            left, right = st.columns([4, 1.4], vertical_alignment="bottom")
            gone = left.selectbox("Remove a value", values, key=f"list_remove_{name}")
            if right.button("Remove", key=f"list_remove_go_{name}"):
                _write(remove_entry, lists, name, gone)


def add_event_value(session: Session, event_id: str, path) -> None:
    """"Block this device": put one of the event's values on a list (column and list default to the first pair
    the strategy compares, e.g. device_id IN LIST blocked_devices)."""
    dataset = session.dataset
    entities = [c for c in dataset.columns.entities if c in session.frame.columns]
    others = [c for c in session.frame.visible if c in session.frame.columns and c not in entities]
    columns = [*entities, *others]
    with session.cursor() as cur:
        values = event_values(cur, dataset.columns.id, event_id, columns)
    if not values:
        return
    lists = _lists(session)
    pairs = _pairs(session, path)
    names = lists.names()
    list_default, column_default = next(((n, c) for n, c in pairs.items() if n in names and c in columns),
                                        (names[0] if names else None, columns[0]))
    if "list_flash" in st.session_state:
        st.success(st.session_state.pop("list_flash"))
    with st.expander("Add a value of this event to a list (e.g. block this device)", expanded=bool(pairs)):
        if pairs:
            st.caption(f"{path.stem} reads " + ", ".join(f"`{c} IN LIST {n}`" for n, c in pairs.items()) + ".")
        with st.form("event_to_list"):
            left, middle, right = st.columns(3)
            column = left.selectbox("Column", columns, index=columns.index(column_default),
                                    format_func=lambda c: f"{c} = {values.get(c)}")
            picked = middle.selectbox("List", names, index=names.index(list_default) if names else None,
                                      disabled=not names)
            new = middle.text_input("…or a new list", placeholder="e.g. blocked_devices")
            expires = right.text_input("Expires (optional)", placeholder="2026-06-30")
            added = st.form_submit_button("Add to list", type="primary")
    if added:
        name, value = new.strip() or picked, values.get(column)
        if not name:
            st.error("name a list to add to")
        elif value is None:
            st.error(f"event {event_id} has no {column} (NULL): nothing to add")
        else:
            try:
                found = add_entry(lists, name, value, expires, f"from event {event_id}")
            except RiskConsoleError as err:
                st.error(str(err))
            else:
                st.session_state["list_flash"] = (f"Added {column} = {value} to {found.label} "
                                                  f"({found.entries} entries); the decision above is recomputed.")
                st.rerun()


def _pairs(session: Session, path) -> dict[str, str]:
    """List -> column the strategy compares with it (none when the strategy does not compile)."""
    try:
        compiled = session.compile(path)
    except RiskConsoleError:
        return {}
    found: dict[str, str] = {}
    for node in [*(r.condition for r in compiled.rules), compiled.population]:
        found.update(list_columns(node))
    return found
