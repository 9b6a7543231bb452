"""Strategy: edit as YAML or as a rule table (validated as you type), save versions, diff them."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from riskconsole.errors import RiskConsoleError
from riskconsole.tuning import param_range
from riskconsole.config import read_yaml
from riskconsole.overview import vocabulary
from riskconsole.ui.common import guard, open_page, pick_strategy, strategy_text
from riskconsole.ui.lists_panel import lists_editor
from riskconsole.versions import diff, digest, save_strategy, versions

session = open_page("Strategy")
ws = session.ws
path = pick_strategy(ws, "Strategy", "strategy", default="candidate")
on_disk = strategy_text(path)
drafts = st.session_state.setdefault("drafts", {})
if path.stem not in drafts or drafts[path.stem]["base"] != digest(on_disk) and not drafts[path.stem]["dirty"]:
    drafts[path.stem] = {"text": on_disk, "base": digest(on_disk), "dirty": False, "rev": 0}
draft = drafts[path.stem]
label = ws.rel(path)


def set_text(text: str, from_editor: bool = False) -> None:
    """Change the draft; an edit made outside the YAML box gives the box a new key so it shows the text."""
    draft["text"], draft["dirty"] = text, text != on_disk
    if not from_editor:
        draft["rev"] += 1


def set_params(params: dict) -> None:
    body = guard(read_yaml, draft["text"], ws.rel(path))
    body["params"] = params
    set_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


yaml_tab, table_tab, params_tab, lists_tab, history_tab = st.tabs(["YAML", "Rules table", "Params", "Lists",
                                                                   "Versions"])
with yaml_tab:
    edited = st.text_area("Strategy YAML", draft["text"], height=460,
                          key=f"yaml_{path.stem}_{draft['base']}_{draft['rev']}")
    if edited != draft["text"]:
        set_text(edited, from_editor=True)
try:
    strategy = session.check_text(draft["text"], label)
    problem = None
except RiskConsoleError as err:
    strategy, problem = None, str(err)
with yaml_tab:
    level = strategy.level if strategy is not None else None
    readable = guard(session.view, strategy)[0] if level is not None else session.frame
    with st.expander("Names a rule can read" + (f" (one decision per {level.entity} every {level.every}: what was "
                                                 "known at the period's start)" if level is not None else "")):
        st.dataframe(pd.DataFrame(vocabulary(readable, session.dataset)), hide_index=True, width="stretch",
                     height=300)
    if problem:
        st.error(problem)
    else:
        st.success(f"Valid: {len(strategy.rules)} rules, {len(strategy.params)} params"
                   + (" · unsaved changes" if draft["dirty"] else ""))

with table_tab:
    if strategy is None:
        st.info("Fix the YAML first; the table edits the same strategy.")
    else:
        rules = pd.DataFrame([r.model_dump(exclude_none=True) for r in strategy.rules],
                             columns=["name", "when", "action", "enabled"])
        edited_rules = st.data_editor(
            rules, num_rows="dynamic", hide_index=True, width="stretch", key=f"rules_{path.stem}_{draft['base']}",
            column_config={"action": st.column_config.SelectboxColumn(options=["allow", "block", "review"],
                                                                      required=True),
                           "enabled": st.column_config.CheckboxColumn(default=True),
                           "when": st.column_config.TextColumn(width="large", required=True)})
        records = [{k: v for k, v in r.items() if not (isinstance(v, float) and pd.isna(v))}
                   for r in edited_rules.to_dict("records")]
        body = strategy.model_dump(exclude_none=True, exclude_defaults=False)
        if records != [{k: r.get(k) for k in ("name", "when", "action", "enabled")} for r in body["rules"]]:
            body["rules"] = [{**r, "enabled": bool(r.get("enabled", True))} for r in records]
            set_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
            st.rerun()

with params_tab:
    numeric = {k: v for k, v in (strategy.params if strategy else {}).items() if param_range(v) is not None}
    if not numeric:
        st.info("No numeric params: add `params:` and refer to them as `$name` in rules."
                if strategy else "Fix the YAML first; the sliders edit the same strategy.")
    else:
        moved = {}
        for name, value in numeric.items():
            lo, hi, step = param_range(value)
            moved[name] = st.slider(name, min_value=lo, max_value=max(hi, value), value=value, step=step,
                                    key=f"param_{path.stem}_{name}_{draft['rev']}")
        if any(abs(moved[k] - numeric[k]) > 1e-9 for k in numeric):  # a slider moved (not float noise)
            set_params({**strategy.params, **moved})
            st.rerun()
        st.caption("Sliders edit the draft; the Tune page shows what each value does before you save.")

with lists_tab:
    lists_editor(session)

with st.form("save"):
    left, right = st.columns([3, 1])
    name = left.text_input("Save as (file name in strategies/)", value=path.stem)
    submitted = right.form_submit_button("Save version", type="primary", disabled=problem is not None)
if submitted:
    try:
        saved = save_strategy(ws.strategies_dir, name, draft["text"], draft["base"] if name == path.stem else None)
    except RiskConsoleError as err:
        st.error(str(err))
    else:
        drafts.pop(path.stem, None)
        if saved.conflict:
            st.warning(f"{path.name} changed on disk since you opened it; your version was saved as "
                       f"{saved.path.name} so nothing is lost. Compare them under Versions.")
        else:
            st.success(f"Saved {ws.rel(saved.path)} (version {saved.version.name}).")

with history_tab:
    kept = versions(ws.strategies_dir, path.stem)
    if len(kept) < 1:
        st.info("No earlier versions yet: every save keeps one.")
    else:
        by_name = {p.stem: p for p in kept}
        left, right = st.columns(2)
        old = left.selectbox("From", list(by_name), index=max(0, len(kept) - 2))
        new = right.selectbox("To", [*by_name, "(current draft)"], index=len(kept))
        old_text = strategy_text(by_name[old])
        new_text = draft["text"] if new == "(current draft)" else strategy_text(by_name[new])
        st.code(diff(old_text, new_text, old, new) or "(no difference)", language="diff")
