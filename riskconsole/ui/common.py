"""What every page shares: the workspace, cached connections and evaluators, pickers, KPI tiles."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import streamlit as st

from riskconsole.backtest import Window, make_window
from riskconsole.errors import RiskConsoleError
from riskconsole.evaluator import Evaluator
from riskconsole.export import fmt
from riskconsole.overview import day_range, tables
from riskconsole.strategy import Frame, compile_strategy, frame_of
from riskconsole.tuning import curve, tuned_report
from riskconsole.versions import versions
from riskconsole.workspace import Workspace, safe_connection

KPIS = [("precision", "precision", "pct"), ("recall", "recall", "pct"), ("amount_recall", "amount recall", "pct"),
        ("net_benefit", "net benefit", "compact"), ("fraud_amount_stopped", "fraud money stopped", "compact"),
        ("good_amount_blocked", "good money blocked", "compact"), ("fp", "good orders flagged", "int")]
LOWER_IS_BETTER = {"good_amount_blocked", "review_cases", "review_overflow_days", "fp"}


def workspace() -> Workspace:
    """The workspace of this console ($RISKCONSOLE_WORKSPACE or the repository)."""
    return Workspace.resolve()


def db_version(ws: Workspace) -> str | None:
    """Changes whenever the database file changes: part of every cache key."""
    if not ws.db_path.exists():
        return None
    stat = ws.db_path.stat()
    return f"{stat.st_mtime_ns}-{stat.st_size}"


@st.cache_resource(max_entries=2, on_release=lambda con: con.close(), show_spinner=False)
def _connection(db_path: str, version: str) -> duckdb.DuckDBPyConnection:
    return safe_connection(db_path)


def release_connections() -> None:
    """Close cached read-only connections (before this process writes to the database)."""
    _connection.clear()
    _evaluator.clear()


def session_connection(ws: Workspace) -> duckdb.DuckDBPyConnection | None:
    """A connection of this script run's own (a cursor on the shared read-only database).

    DuckDB connections are not safe to share between threads, and Streamlit runs each session in one.
    """
    version = db_version(ws)
    return _connection(str(ws.db_path), version).cursor() if version else None


def connection_or_stop(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """This run's read-only connection, or a page that says what to do when nothing is loaded."""
    con = session_connection(ws)
    if con is None or "frame" not in tables(con):
        st.info(f"No events are loaded in **{ws.root}** yet. Build the demo with `make run` (or "
                f"`riskconsole demo --workspace {ws.root}`), or load a dataset on the **Data** page.")
        st.stop()
    return con


def open_page(title: str) -> tuple[Workspace, duckdb.DuckDBPyConnection, object]:
    """Every data page starts the same way: workspace, this run's connection, dataset spec, title."""
    ws = workspace()
    con = connection_or_stop(ws)
    dataset = dataset_or_stop(ws)
    st.title(title)
    return ws, con, dataset


def dataset_or_stop(ws: Workspace):
    """The dataset spec, or an error box and stop."""
    try:
        return ws.dataset()
    except RiskConsoleError as err:
        st.error(str(err))
        st.stop()


def strategy_names(ws: Workspace) -> list[str]:
    """Strategy files of the workspace (file stems), baseline first."""
    names = sorted(p.stem for p in ws.strategies_dir.glob("*.yaml")) if ws.strategies_dir.exists() else []
    return sorted(names, key=lambda n: (n != "baseline", n))


def strategy_choices(ws: Workspace, with_versions: bool = False) -> dict[str, Path]:
    """Label -> file: the strategies, and with `with_versions` every saved version (`name @ stamp`)."""
    choices = {name: ws.strategies_dir / f"{name}.yaml" for name in strategy_names(ws)}
    if with_versions:
        for name in list(choices):
            for version in reversed(versions(ws.strategies_dir, name)):
                choices[f"{name} @ {version.stem}"] = version
    return choices


def pick_strategy(ws: Workspace, label: str, key: str, default: str | None = None,
                  with_versions: bool = False) -> Path:
    """A strategy selector whose choice persists across pages (optionally offering saved versions)."""
    choices = strategy_choices(ws, with_versions)
    names = list(choices)
    if not names:
        st.info(f"No strategy in {ws.strategies_dir}: write one, or start from the demo.")
        st.stop()
    if key not in st.session_state or st.session_state[key] not in names:
        plain = strategy_names(ws)
        st.session_state[key] = default if default in names else plain[-1 if key == "strategy" else 0]
    return choices[st.selectbox(label, names, key=key)]


def pick_window(con: duckdb.DuckDBPyConnection, dataset) -> Window:
    """Window and label as-of pickers in the sidebar, shared by every page."""
    lo, hi = day_range(con, dataset)
    with st.sidebar:
        st.markdown("**Backtest window**")
        picked = st.date_input("days", value=st.session_state.get("window", (lo, hi)), min_value=lo,
                               max_value=hi, key="window_input", label_visibility="collapsed")
        as_of = st.date_input("labels known as of", value=st.session_state.get("as_of"), min_value=lo,
                              key="as_of_input", help="Count a label only if it was known by the end of this day.")
    if isinstance(picked, (list, tuple)) and len(picked) == 2:
        st.session_state["window"] = tuple(picked)
    start, end = st.session_state.get("window", (lo, hi))
    st.session_state["as_of"] = as_of
    return make_window(start.isoformat(), end.isoformat(), as_of.isoformat() if as_of else None)


def strategy_text(path: Path) -> str:
    """The file's current text (part of cache keys, so edits invalidate)."""
    return path.read_text(encoding="utf-8")


@st.cache_resource(max_entries=6, show_spinner="Loading the window's events ...")
def _evaluator(db_path: str, version: str, population: str | None, window: Window,
               _con: duckdb.DuckDBPyConnection, _frame: Frame, _compiled, _dataset) -> Evaluator:
    return Evaluator(_con, _dataset, _frame, window, _compiled)


def evaluate(ws: Workspace, con, dataset, path: Path, window: Window, overrides: dict | None = None) -> dict:
    """The report of one strategy file at a param setting (cached per file text, window and params)."""
    return _report(str(ws.root), db_version(ws), str(path), strategy_text(path), window,
                   json.dumps(overrides or {}, sort_keys=True), _con=con, _dataset=dataset)


@st.cache_data(max_entries=256, show_spinner=False)
def _report(root: str, version: str, path: str, text: str, window: Window, overrides: str, _con, _dataset) -> dict:
    ws = Workspace(Path(root))
    strategy = ws.strategy(path)
    frame = frame_of(_con, _dataset)
    label = ws.rel(path)
    compiled = compile_strategy(strategy, frame, label, json.loads(overrides), con=_con)
    population = compiled.population.sql() if compiled.population is not None else None
    evaluator = _evaluator(str(ws.db_path), version, population, window, _con=_con, _frame=frame,
                           _compiled=compiled, _dataset=_dataset)
    return tuned_report(evaluator, compiled, _dataset)


def kpi_tiles(report: dict, baseline: dict | None = None) -> None:
    """KPI tiles in two rows, each with its delta against the baseline report."""
    o, b = report["overall"], (baseline or {}).get("overall")
    first, second = st.columns(4), st.columns(4)
    for col, (key, title, kind) in zip([*first, *second], KPIS):
        delta = None
        if b is not None and o[key] is not None and b[key] is not None:
            delta = o[key] - b[key]
        _tile(col, title, fmt(o[key], kind), delta, kind, inverse=key in LOWER_IS_BETTER,
              help=f"exact: {fmt(o[key], 'money' if kind == 'compact' else kind)}")
    days = max(1, len(report["daily"]))
    per_day, cap = o["review_cases"] / days, o["review_capacity"]
    delta = None if b is None else per_day - b["review_cases"] / days
    _tile(second[3], "reviews per day", f"{per_day:,.0f} / {cap:,}", delta, "perday", inverse=True,
          help=f"Average review cases per day against the capacity of {cap:,}; {o['review_overflow_days']} day(s) "
               f"over capacity, peak {o['max_daily_reviews']:,}.")


def _tile(col, title: str, value: str, delta: float | None, kind: str, inverse: bool, help: str) -> None:
    if delta is None:
        col.metric(title, value, border=True, help=help)
        return
    sign = "+" if delta > 0 else ""
    text = {"pct": f"{delta * 100:+.2f} pts", "perday": f"{delta:+,.0f}/day",
            "compact": sign + fmt(delta, "compact")}.get(kind, f"{delta:+,.0f}")
    if round(delta, 6) == 0:
        col.metric(title, value, "no change", delta_color="off", delta_arrow="off", border=True, help=help)
    else:
        col.metric(title, value, text, delta_color="inverse" if inverse else "normal", border=True, help=help)


def show_warnings(report: dict) -> None:
    """Every warning of the report, visible (never hidden)."""
    for warning in report["warnings"]:
        st.warning(warning, icon="⚠️")


def guard(fn, *args, **kwargs):
    """Run a core call; a RiskConsoleError becomes an error box and the page stops."""
    try:
        return fn(*args, **kwargs)
    except RiskConsoleError as err:
        st.error(str(err))
        st.stop()


def param_curve(ws: Workspace, con, dataset, path: Path, window: Window, param: str, others: dict) -> list[dict]:
    """Metrics over a param's range, cached per file text, window and the other params."""
    return _curve(str(ws.root), db_version(ws), str(path), strategy_text(path), window, param,
                  json.dumps(others, sort_keys=True), _con=con, _dataset=dataset)


@st.cache_data(max_entries=64, show_spinner="Tracing the curve ...")
def _curve(root: str, version: str, path: str, text: str, window: Window, param: str, others: str, _con,
           _dataset) -> list[dict]:
    ws = Workspace(Path(root))
    return curve(_con, ws.strategy(path), frame_of(_con, _dataset), _dataset, ws.rel(path), window, param,
                 json.loads(others))


@st.cache_data(max_entries=16, show_spinner="Searching settings ...")
def _optimize(root: str, version: str, path: str, text: str, window: Window, params: tuple, others: str,
              max_days: int, floor: float | None) -> dict:
    from riskconsole.sweep import optimize

    return optimize(Workspace(Path(root)), path, {p: None for p in params}, window, json.loads(others), max_days,
                    floor)


def optimize_params(ws: Workspace, path: Path, window: Window, params: list[str], others: dict, max_days: int,
                    floor: float | None) -> dict:
    """The best setting of `params` within capacity (cached per file text, window and the other params)."""
    return _optimize(str(ws.root), db_version(ws), str(path), strategy_text(path), window, tuple(params),
                     json.dumps(others, sort_keys=True), max_days, floor)


def prewarm(ws: Workspace) -> None:
    """Fill the caches the first pages read: connection, evaluator, every strategy's report at the
    default window. The launcher runs it before it listens, so the first user does not wait for it."""
    con = session_connection(ws)
    if con is None or "frame" not in tables(con):
        return
    try:
        dataset = ws.dataset()
        lo, hi = day_range(con, dataset)
        window = make_window(lo.isoformat(), hi.isoformat(), None)
        for name in strategy_names(ws)[:6]:
            evaluate(ws, con, dataset, ws.strategies_dir / f"{name}.yaml", window)
    except RiskConsoleError:
        return  # a broken file shows its error on the page that opens it
