"""Tune: a slider per param; every move updates KPIs, the precision-recall and net-benefit curves."""

from __future__ import annotations

import streamlit as st

from riskconsole.tuning import param_range
from riskconsole.charts import curve_chart
from riskconsole.ui.common import (connection_or_stop, dataset_or_stop, evaluate, guard, kpi_tiles, param_curve,
                                   pick_strategy, pick_window, show_warnings, workspace)

ws = workspace()
con = connection_or_stop(ws)
dataset = dataset_or_stop(ws)
st.title("Tune")
path = pick_strategy(ws, "Strategy", "strategy", default="candidate")
window = pick_window(con, dataset)
strategy = guard(ws.strategy, path)
numeric = {k: v for k, v in strategy.params.items() if param_range(v) is not None}
if not numeric:
    st.info(f"{path.stem} has no numeric params to tune: add `params:` and refer to them as `$name` in rules.")
    st.stop()

tuned = st.session_state.setdefault("params", {}).setdefault(path.stem, {})
with st.sidebar:
    st.markdown("**Params**")
    overrides = {}
    for name, value in numeric.items():
        lo, hi, step = param_range(value)
        current = tuned.get(name, value)
        overrides[name] = st.slider(name, min_value=lo, max_value=hi, value=current, step=step,
                                    key=f"tune_{path.stem}_{name}", help=f"saved value: {value}")
    if st.button("Reset to saved values"):
        for name in numeric:
            st.session_state.pop(f"tune_{path.stem}_{name}", None)
        st.session_state["params"][path.stem] = {}
        st.rerun()
previous = st.session_state.get(f"last_overrides_{path.stem}", overrides)
moved = [k for k in overrides if previous.get(k) != overrides[k]]
if moved:
    st.session_state[f"curve_{path.stem}"] = moved[0]  # the curve follows the slider just moved
st.session_state[f"last_overrides_{path.stem}"] = dict(overrides)
st.session_state["params"][path.stem] = {k: v for k, v in overrides.items() if v != numeric[k]}

report = guard(evaluate, ws, con, dataset, path, window, overrides)
saved = guard(evaluate, ws, con, dataset, path, window)
st.caption(f"Deltas against the saved values of **{path.stem}** · population {report['overall']['population']:,}")
kpi_tiles(report, saved)
show_warnings(report)

param = st.selectbox("Curve over", list(numeric), key=f"curve_{path.stem}")
others = {k: v for k, v in overrides.items() if k != param}
points = guard(param_curve, ws, con, dataset, path, window, param, others)
here = {**report["overall"], "value": overrides[param]}
left, right = st.columns(2)
with left:
    st.altair_chart(curve_chart(points, "recall", "precision", here, "recall", "precision", ".1%"), width="stretch")
with right:
    st.altair_chart(curve_chart(points, "value", "net_benefit", here, param, "net benefit"), width="stretch")
best = max(points, key=lambda p: p["net_benefit"]) if points else None
if best:
    st.markdown(f"Best net benefit on this curve: **{best['net_benefit']:,.0f}** at `{param} = {best['value']}` "
                f"({best['review_overflow_days']} day(s) over review capacity).")
