"""Tune: a slider per param; every move updates KPIs, the precision-recall and net-benefit curves."""

from __future__ import annotations

import streamlit as st

from riskconsole.charts import curve_chart, frontier_chart
from riskconsole.errors import RiskConsoleError
from riskconsole.export import fmt, metric_text
from riskconsole.tuning import param_range
from riskconsole.ui.common import (evaluate, guard, kpi_tiles, open_page, optimize_params, param_curve,
                                   pick_strategy, pick_window, show_warnings, strategy_text)
from riskconsole.versions import digest, save_strategy

session = open_page("Tune")
ws = session.ws
path = pick_strategy(ws, "Strategy", "strategy", default="candidate")
window = pick_window(session, path)
strategy = guard(session.strategy, path)
numeric = {k: v for k, v in strategy.params.items() if param_range(v) is not None}
if not numeric:
    st.info(f"{path.stem} has no numeric params to tune: add `params:` and refer to them as `$name` in rules.")
    st.stop()

tuned = st.session_state.setdefault("params", {}).setdefault(path.stem, {})
st.session_state.update(st.session_state.pop("pending_tune", {}))
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
moved_from_saved = st.session_state["params"][path.stem] = {k: v for k, v in overrides.items() if v != numeric[k]}

# only the params off their saved values: at the saved values this is the saved report (one cache entry, shared with
# the Backtest page; on Spark one pass fewer)
report = guard(evaluate, session, path, window, moved_from_saved)
saved = guard(evaluate, session, path, window)
st.caption(f"Deltas against the saved values of **{path.stem}** · population {report['overall']['population']:,}")
kpi_tiles(report, saved)
show_warnings(report)

param = st.selectbox("Curve over", list(numeric), key=f"curve_{path.stem}")
others = {k: v for k, v in overrides.items() if k != param}
points = guard(param_curve, session, path, window, param, others)
here = {**report["overall"], "value": overrides[param]}
left, right = st.columns(2)
with left:
    st.altair_chart(curve_chart(points, "recall", "precision", here, "recall", "precision", ".1%", ".1%"),
                    width="stretch")
with right:
    st.altair_chart(curve_chart(points, "value", "net_benefit", here, param, "net benefit"), width="stretch")


def others_for(searched: list[str]) -> dict:
    """Current slider values of the params not being searched."""
    return {k: v for k, v in overrides.items() if k not in searched}


best = max(points, key=lambda p: p["net_benefit"]) if points else None
hidden = report["overall"].get("observability", {}).get("unobservable", 0)
if best:
    st.markdown(f"Best net benefit on this curve: **{best['net_benefit']:,.0f}** at `{param} = {best['value']}` "
                f"({best['review_overflow_days']} day(s) over review capacity)" +
                (f", counting labelled events only: the {hidden:,} outcomes production hid could move it (the tiles "
                 "above give the range at the current setting)." if hidden else "."))

with st.expander("Optimize: the setting that pays most within review capacity", expanded=False):
    left, mid, right = st.columns([3, 1, 1])
    chosen = left.multiselect("Params to search (one or two)", list(numeric), default=[param], max_selections=2)
    max_days = mid.number_input("Days over capacity allowed", min_value=0, value=0, step=1)
    floor = right.number_input("Precision floor", min_value=0.0, max_value=1.0, value=0.0, step=0.05)
    if chosen and st.button("Find the best setting", type="primary"):
        st.session_state["optimized"] = guard(optimize_params, session, path, window, chosen, others_for(chosen),
                                              int(max_days), floor or None)
    result = st.session_state.get("optimized")
    if result and result["strategy"] == strategy.name and set(result["params"]) <= set(numeric):
        fits = [p["review_overflow_days"] <= result["constraints"]["max_overflow_days"] for p in result["points"]]
        st.altair_chart(frontier_chart(result["points"], result["frontier"], result["best"], fits), width="stretch")
        pick = result["best"] or result["closest"]
        setting = ", ".join(f"{n} = {pick[n]}" for n in result["params"])
        if result["feasible"]:
            st.success(f"Best within capacity: **{setting}** — net benefit {fmt(pick['net_benefit'], 'money')}, "
                       f"precision {metric_text('precision', pick)}, recall {metric_text('recall', pick)} "
                       f"({len(result['points']):,} settings, {result['method']}).")
        else:
            st.error(f"No setting meets the constraints. Closest: **{setting}** with "
                     f"{pick['review_overflow_days']} day(s) over capacity, net benefit "
                     f"{fmt(pick['net_benefit'], 'money')}.")
        if st.button(f"Apply {setting}"):
            # widget values can only be set before the sliders exist: apply on the next run
            st.session_state["pending_tune"] = {f"tune_{path.stem}_{n}": pick[n] for n in result["params"]}
            st.rerun()

with st.form("save_tuned"):
    left, right = st.columns([3, 1])
    target = left.text_input("Save these params as a strategy version (file name in strategies/)", value=path.stem)
    save = right.form_submit_button("Save version", disabled=not st.session_state["params"][path.stem])
if save:
    text = session.strategy_yaml(path, overrides)
    try:
        saved = save_strategy(ws.strategies_dir, target, text, digest(strategy_text(path)) if target == path.stem else None)
    except RiskConsoleError as err:
        st.error(str(err))
    else:
        note = " (the file changed on disk meanwhile: saved beside it)" if saved.conflict else ""
        st.success(f"Saved {ws.rel(saved.path)}{note}; the earlier text is kept under Strategy → Versions.")
