"""What every page shares: the cached core Session, pickers, KPI tiles, warnings.

Pages never compose core calls themselves: every number, default and warning comes from one
`Session` method (the one the CLI calls), cached here per database version and file text.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import streamlit as st

from riskconsole.backtest import Window
from riskconsole.config import read_config
from riskconsole.errors import RiskConsoleError
from riskconsole.export import fmt, metric_text
from riskconsole.glossary import metric
from riskconsole.report import Baseline, all_warnings
from riskconsole.session import Session
from riskconsole.versions import versions
from riskconsole.workspace import Workspace

KPIS = ("precision", "recall", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked", "fp")
TILE_FORMAT = {"money": "compact"}  # tiles show money compactly (exact value in the help)
NO_BASELINE = "(none)"
WARM_THREAD = "riskconsole-warm-spark"  # the thread `prewarm` starts on Spark


def workspace() -> Workspace:
    """The workspace of this console (`Workspace.resolve`: $RISKCONSOLE_WORKSPACE, the current directory's, or the
    repository)."""
    return Workspace.resolve()


def db_version(ws: Workspace) -> str | None:
    """Changes whenever the database file or the dataset spec changes: part of every cache key."""
    if not ws.db_path.exists():
        return None
    stat = ws.db_path.stat()
    spec = ws.dataset_path.stat().st_mtime_ns if ws.dataset_path.exists() else 0
    return f"{stat.st_mtime_ns}-{stat.st_size}-{spec}"


def results_version(ws: Workspace) -> str | None:
    """`db_version` and the list files' stamps: the key of every cached result (a list edit changes what rules
    with `IN LIST` hit, without a new database)."""
    version = db_version(ws)
    lists = sorted(ws.lists_dir.glob("*.csv")) if ws.lists_dir.is_dir() else []
    stamps = [f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in lists]
    return f"{version}|{'|'.join(stamps)}" if version and stamps else version


@st.cache_resource(max_entries=2, on_release=lambda session: session.close(), show_spinner=False)
def _session(root: str, version: str) -> Session:
    return Session(Workspace(Path(root)))


def release_connections() -> None:
    """Close the cached sessions' read-only connections (before this process writes to the database)."""
    _session.clear()


def current_session(ws: Workspace) -> Session | None:
    """The shared session of the workspace's current database (None when nothing is loaded)."""
    version = db_version(ws)
    return _session(str(ws.root), version) if version else None


def session_connection(ws: Workspace) -> duckdb.DuckDBPyConnection | None:
    """A cursor of its own for this script run (DuckDB connections are not safe to share between threads)."""
    session = current_session(ws)
    return session.cursor() if session is not None else None


def open_page(title: str) -> Session:
    """Every data page starts the same way: the session, or a page that says what to do, and the title."""
    ws = workspace()
    session = current_session(ws)
    if session is None or not session.loaded:
        st.info(f"No events are loaded in **{ws.root}** yet. Build the demo with `make run` (or "
                f"`riskconsole demo --workspace {ws.root}`), or load a dataset on the **Data** page.")
        st.stop()
    guard(lambda: session.dataset)
    st.title(title)
    note = guard(session.engine_note)
    if note:  # engine spark (DuckDB has no note): the page follows once Spark has started
        st.caption(note)
        wait_for_spark(session)
    return session


def wait_for_spark(session: Session) -> None:
    """On Spark, the engine's start and this data version's frame build (once, shared by every browser session: the
    launcher begins it as it starts listening, `prewarm`) under a spinner that says so; at once when done."""
    if session.spark_ready:
        return
    with st.spinner(f"Starting Spark ({session.dataset.spark.target}) and building the feature frame of this data "
                    "version (once per load; a start after that reads it back) ..."):
        guard(session.spark_engine)


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


@st.cache_data(max_entries=256, show_spinner=False)
def _declared_name(path: str, text: str) -> str | None:
    """The `name:` a strategy file's text declares (None where the text does not parse or names none a strategy
    may have: its error shows on the page that opens the file)."""
    from riskconsole.config import _STRATEGY_NAME, read_yaml

    try:
        data = read_yaml(text, path)
    except RiskConsoleError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and len(name) <= 100 and _STRATEGY_NAME.match(name) else None


def choice_label(choices: dict[str, Path]):
    """How a picker shows a strategy file: its stem, and the strategy's `name:` where that differs (the name the
    report, the CLI and the export print: `prod_v3 (merchant_watch)`)."""
    def label(choice: str) -> str:
        path = choices.get(choice)
        try:
            text = read_config(path, choice) if path is not None else None
        except RiskConsoleError:
            text = None
        name = _declared_name(str(path), text) if text is not None else None
        return f"{choice} ({name})" if name and name != choice.split(" @ ")[0] else choice
    return label


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
    return choices[st.selectbox(label, names, key=key, format_func=choice_label(choices))]


def pick_baseline(ws: Workspace, key: str = "baseline", with_versions: bool = False) -> Path | None:
    """The strategy in production to compare against, or None (no deltas) where the user picks none."""
    choices = strategy_choices(ws, with_versions)
    names = [NO_BASELINE, *choices]
    if key not in st.session_state or st.session_state[key] not in names:
        st.session_state[key] = "baseline" if "baseline" in choices else NO_BASELINE
    picked = st.selectbox("Baseline (in production)", names, key=key, format_func=choice_label(choices),
                          help="The strategy running today: every delta is measured against it.")
    return None if picked == NO_BASELINE else choices[picked]


def pick_window(session: Session, path: Path | None = None, warned: bool = True) -> Window:
    """Window and label as-of pickers in the sidebar, shared by every page; the default ends on the last mature day
    of the label the strategy file `path` counts (its entity-periods' for an entity-level strategy). Its note (which
    days are left out) is the report's first warning: a page that shows the warnings (`warned`) says only where the
    window ends under the picker, a page that does not shows the whole note there."""
    lo, hi = session.day_range()
    has_label_time = bool(session.dataset.columns.label_time)
    mature = guard(default_window, session, path)  # the CLI's window without --to: mature days
    default = (lo, (mature.end - timedelta(microseconds=1)).date() if mature.end else hi)
    state = st.session_state
    if state.get("window") in (None, state.get("window_default")) and state.get("window_default") != default:
        state["window"] = state["window_input"] = default  # not picked by hand: follow this strategy's default
    state["window_default"] = default
    with st.sidebar:
        st.markdown("**Backtest window**")
        # the widget's own state once it exists (a value beside it draws Streamlit's "set twice" warning)
        value = {} if "window_input" in st.session_state else {"value": st.session_state.get("window", default)}
        picked = st.date_input("days", min_value=lo, max_value=hi, key="window_input", label_visibility="collapsed",
                               **value)
        as_of = st.date_input("labels known as of", value=st.session_state.get("as_of"), min_value=lo,
                              key="as_of_input", disabled=not has_label_time,
                              help="Count a label only if it was known by the end of this day." if has_label_time
                              else "The dataset maps no label_time, so when labels became known is unknown.")
    if isinstance(picked, (list, tuple)) and len(picked) == 2:
        st.session_state["window"] = tuple(picked)
    start, end = st.session_state.get("window", default)
    st.session_state["as_of"] = as_of if has_label_time else None
    if (start, end) == default and not (as_of and has_label_time):
        if mature.note:
            st.sidebar.caption(ends_note(mature) if warned else mature.note)
        return mature  # the same window, and the same note, as the CLI without --to
    return guard(session.window, start.isoformat(), end.isoformat(),
                 as_of.isoformat() if as_of and has_label_time else None, path)


def ends_note(window: Window) -> str:
    """The sidebar's short word on a default window whose last days were left out (the note itself is a warning)."""
    last = (window.end - timedelta(microseconds=1)).date()
    return f"Ends {last}, the last day whose labels are mature: the warning on the page says why."


def default_window(session: Session, path: Path | None = None) -> Window:
    """The default backtest window of the strategy file `path`: every day, ending on the last mature day
    (`Session.window` without --to)."""
    lo, _ = session.day_range()
    return session.window(lo.isoformat(), None, None, path)


def strategy_text(path: Path) -> str:
    """The file's current text (part of cache keys, so edits invalidate)."""
    return guard(read_config, path, workspace().rel(path))


def evaluate(session: Session, path: Path, window: Window, overrides: dict | None = None) -> dict:
    """The report of one strategy file at a param setting (`Session.interactive`, cached per data version, engine,
    file text, window and params). On Spark it is the CLI's backtest run there: a cache of its own, and a spinner
    that says where it runs."""
    cached = _report if session.engine == "duckdb" else _spark_report
    return cached(str(session.ws.root), results_version(session.ws), session.engine_text, str(path),
                  strategy_text(path), window, json.dumps(overrides or {}, sort_keys=True), _session=session)


@st.cache_data(max_entries=256, show_spinner="Loading the window's events ...")
def _report(root: str, version: str, engine: str, path: str, text: str, window: Window, overrides: str,
            _session: Session) -> dict:
    return _session.interactive(path, window, json.loads(overrides))


@st.cache_data(max_entries=64, show_spinner="Computing on Spark: the backtest (one grouped pass; slower answers) ...")
def _spark_report(root: str, version: str, engine: str, path: str, text: str, window: Window, overrides: str,
                  _session: Session) -> dict:
    return _session.interactive(path, window, json.loads(overrides))


def compare(session: Session, path: Path, baseline: Path, window: Window, overrides: dict | None = None,
            by: str | None = None, allow_different_population: bool = False) -> dict:
    """`Session.backtest` with a baseline: deltas, intervals, changed decisions (cached per file texts)."""
    return _compared(str(session.ws.root), results_version(session.ws), str(path), strategy_text(path), str(baseline),
                     strategy_text(baseline), window, json.dumps(overrides or {}, sort_keys=True), by,
                     allow_different_population, _session=session)


@st.cache_data(max_entries=16, show_spinner="Comparing (one pass over both strategies, 1,000 day resamples) ...")
def _compared(root: str, version: str, path: str, text: str, base: str, base_text: str, window: Window,
              overrides: str, by: str | None, allow: bool, _session: Session) -> dict:
    return _session.backtest(path, window, json.loads(overrides), Baseline(base, allow_different_population=allow),
                             by).report


def text_width(texts) -> int | None:
    """A grid column's width in px for its longest text, at 7 px a character of the grid's 14 px font and 24 px of
    padding: the grid's own guess cut "— (no labelled hits)" to "— (no labelled hi" at 1,500 px. None (the grid's
    guess) when every text is at most 8 characters, as a rate's "12.34%" is."""
    longest = max((len(str(t)) for t in texts), default=0)
    return 7 * longest + 24 if longest > 8 else None


def wrapping_row(*widths: int | str, gap: str = "small", vertical_alignment: str = "top") -> list:
    """Cells of these widths (px, or "stretch"/"content") side by side where they fit, else wrapped one under the
    other. `st.columns` stacks only below a 640 px window, its sidebar open or not: at 800 px the sidebar left the
    page 470 px, and a 4-way split cut "baseline" to "baselin", a 2-way one squashed charts to 230 px."""
    row = st.container(horizontal=True, wrap=True, gap=gap, vertical_alignment=vertical_alignment)
    return [row.container(width=width) for width in widths]


class TileRow:
    """Tiles of equal width that wrap onto more lines where the page is narrow: 4 fixed columns cut "30.4–44.9%" to
    "30.4–…" and "fraud money stopped" to "fraud money …" at 1,100 px (Streamlit ellipsizes what does not fit a
    tile). Each tile is as wide as the row's widest label, value or change needs (`tile_width`), so the row is a
    grid: 4 tiles a line at 1,500 px, 2 at 1,100 px for ranges."""

    def __init__(self):
        self.tiles: list[tuple[tuple, dict]] = []

    def add(self, title: str, value: str, delta: str | None = None, **options) -> None:
        self.tiles.append(((title, value, delta), options))

    def draw(self) -> None:
        """Draw the row's tiles, all at the width of the widest."""
        width = max((tile_width(*args, help=o.get("help")) for args, o in self.tiles), default=0)
        row = st.container(horizontal=True, wrap=True, gap="small")
        for (title, value, delta), options in self.tiles:
            row.metric(title, value, delta, border=True, width=width, **options)


# Widths at Streamlit's tile fonts (value 2.25rem, label and change 0.875rem of Source Sans), a little generous:
# a tile a few pixels too wide costs nothing, one too narrow cuts its text again
VALUE_PX = {**dict.fromkeys(".,:;' |il", 10), **dict.fromkeys("%MWmw", 32), **dict.fromkeys("—", 36)}


def tile_width(title: str, value: str, delta: str | None = None, help: str | None = None) -> int:
    """Pixels a tile needs to show its label (and help icon), value and change whole."""
    value_px = sum(VALUE_PX.get(c, 20) for c in value)
    label_px = 7 * len(title) + (28 if help else 0)
    delta_px = 7 * len(delta) + 28 if delta else 0  # the pill's arrow and padding
    return max(value_px, label_px, delta_px) + 40  # the tile's border and padding


def kpi_tiles(report: dict, baseline: dict | None = None) -> None:
    """KPI tiles in one wrapping row, each with its delta against the baseline report (none without one)."""
    o, b = report["overall"], (baseline or {}).get("overall")
    row = TileRow()
    ranged = []
    for key in KPIS:
        m = metric(key)
        kind = TILE_FORMAT.get(m.kind, m.kind)
        delta = None
        if b is not None and o[key] is not None and b[key] is not None:
            delta = o[key] - b[key]
        pair = (o.get("bounds") or {}).get(key)
        if pair and None not in pair and pair[0] != pair[1]:  # only a range is known: never a point
            ranged.append(m.title)
            _tile(row, m.title, range_text(pair, kind), None, kind, False,
                  help=f"{m.definition} Worst {fmt(pair[0], m.kind)}, best {fmt(pair[1], m.kind)} over the outcomes "
                       "production hid; labelled events alone give " + fmt(o[key], m.kind) + ".")
            continue
        _tile(row, m.title, metric_text(key, o, kind), delta, kind, inverse=m.better == "lower",
              help=f"{m.definition} Exact: {fmt(o[key], m.kind)}.")
    text, delta, kind = reviews_per_day(report, baseline)
    cap = o["review_capacity"]
    _tile(row, "reviews per day", text, delta, kind, inverse=True,
          help=f"Average review cases per day against the capacity of {cap:,}; {o['review_overflow_days']} day(s) "
               f"over capacity, peak {o['max_daily_reviews']:,}.")
    row.draw()
    if ranged:
        hidden = o["observability"]["unobservable"]
        st.caption(f"{', '.join(ranged)}: a range, not a point — {hidden:,} events production blocked have no label, "
                   "so each could have been fraud or good (worst … best).")


def reviews_per_day(report: dict, baseline: dict | None = None) -> tuple[str, float | None, str]:
    """The "reviews per day" tile: `review_cases` over the window's days against the capacity, its change against
    the baseline, and the change's kind. Under 10 a day, tenths: 12 reviews in 24 days read "0.5 / 10", not "0"."""
    o, b = report["overall"], (baseline or {}).get("overall")
    days = max(1, len(report["daily"]))
    per_day = o["review_cases"] / days
    before = None if b is None else b["review_cases"] / days
    fine = max(per_day, before or 0) < 10
    value = f"{per_day:,.1f}" if fine else f"{per_day:,.0f}"
    return (f"{value} / {o['review_capacity']:,}", None if before is None else per_day - before,
            "perday_tenths" if fine else "perday")


def range_text(pair: list[float], kind: str) -> str:
    """A [worst, best] range as a tile shows it, low to high, short enough not to be cut in a quarter of the page:
    `15.1–36.3%`, money in the unit of its larger end, `6.8–11.2k`, `41–107k`, `-1.2–3.4k`."""
    lo, hi = sorted(pair)
    size = max(abs(lo), abs(hi))
    if kind == "compact" and size >= 1e3:
        unit, suffix = next((u, s) for u, s in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if size >= u)
        digits = 0 if size >= 100 * unit else 1
        low, high = (f"{v / unit:,.{digits}f}" for v in (lo, hi))
        return f"{low}–{high}{suffix}"
    low, high = fmt(lo, kind), fmt(hi, kind)
    if low.endswith("%") and high.endswith("%"):
        return f"{low[:-1]}–{high}"
    return f"{low} – {high}"


def delta_text(delta: float, kind: str) -> str:
    """A change as people read it: points for rates, compact money, whole counts."""
    sign = "+" if delta > 0 else ""
    return {"pct": f"{delta * 100:+.2f} pts", "perday": f"{delta:+,.0f}/day", "perday_tenths": f"{delta:+,.1f}/day",
            "compact": sign + fmt(delta, "compact")}.get(kind, f"{delta:+,.0f}")


def _tile(row: TileRow, title: str, value: str, delta: float | None, kind: str, inverse: bool, help: str) -> None:
    if delta is None:
        row.add(title, value, help=help)
        return
    text = delta_text(delta, kind)
    if not any(c in "123456789" for c in text):  # what shows as zero is drawn as no change, never as an arrow
        row.add(title, value, "no change", delta_color="off", delta_arrow="off", help=help)
    else:
        row.add(title, value, text, delta_color="inverse" if inverse else "normal", help=help)


def show_warnings(report: dict) -> None:
    """Every warning of the report and its comparison, each once, visible (never hidden)."""
    for warning in all_warnings(report):
        st.warning(warning, icon="⚠️")


def guard(fn, *args, **kwargs):
    """Run a core call; a RiskConsoleError becomes an error box and the page stops."""
    try:
        return fn(*args, **kwargs)
    except RiskConsoleError as err:
        st.error(str(err))
        st.stop()


def guard_baseline(fn, baseline: Path, *args, **kwargs):
    """Run a core call on the baseline; a RiskConsoleError becomes a warning that the page goes on without deltas
    (the candidate's own report still stands), and None."""
    try:
        return fn(*args, **kwargs)
    except RiskConsoleError as err:
        st.warning(f"Baseline **{baseline.stem}** cannot run, so this page shows no deltas: {err}")
        return None


def param_curve(session: Session, path: Path, window: Window, param: str, others: dict) -> list[dict]:
    """Metrics over a param's range (`Session.curve`), cached per data version, engine, file text, window and the
    other params; on Spark one pass per curve, in a cache of its own."""
    cached = _curve if session.engine == "duckdb" else _spark_curve
    return cached(str(session.ws.root), results_version(session.ws), session.engine_text, str(path),
                  strategy_text(path), window, param, json.dumps(others, sort_keys=True), _session=session)


@st.cache_data(max_entries=64, show_spinner="Tracing the curve ...")
def _curve(root: str, version: str, engine: str, path: str, text: str, window: Window, param: str, others: str,
           _session: Session) -> list[dict]:
    return _session.curve(path, window, param, json.loads(others))


@st.cache_data(max_entries=64, show_spinner="Computing on Spark: the curve (one pass for all its points) ...")
def _spark_curve(root: str, version: str, engine: str, path: str, text: str, window: Window, param: str, others: str,
                 _session: Session) -> list[dict]:
    return _session.curve(path, window, param, json.loads(others))


def optimize_params(session: Session, path: Path, window: Window, params: list[str], others: dict, max_days: int,
                    floor: float | None) -> dict:
    """The best setting of `params` within capacity (cached per file text, window and the other params)."""
    return _optimize(str(session.ws.root), results_version(session.ws), str(path), strategy_text(path), window,
                     tuple(params), json.dumps(others, sort_keys=True), max_days, floor, _session=session)


@st.cache_data(max_entries=16, show_spinner="Searching settings ...")
def _optimize(root: str, version: str, path: str, text: str, window: Window, params: tuple, others: str,
              max_days: int, floor: float | None, _session: Session) -> dict:
    return _session.optimize(path, {p: None for p in params}, window, json.loads(others), max_days, floor)


def export_files(session: Session, path: Path, window: Window, overrides: dict, formats: tuple[str, ...]
                 ) -> dict[str, bytes]:
    """The files `riskconsole backtest --format ...` writes, from the same Session calls."""
    return _export(str(session.ws.root), results_version(session.ws), str(path), strategy_text(path), window,
                   json.dumps(overrides, sort_keys=True), formats, _session=session)


@st.cache_data(max_entries=4, show_spinner="Running the backtest for export ...")
def _export(root: str, version: str, path: str, text: str, window: Window, overrides: str,
            formats: tuple[str, ...], _session: Session) -> dict[str, bytes]:
    return _session.export(_session.backtest(path, window, json.loads(overrides)), list(formats))


def prewarm(ws: Workspace) -> threading.Thread | None:
    """Fill the caches the first pages read: the session, every strategy's report at the default window. On DuckDB
    (seconds) before it returns: the launcher runs it before it listens, so the first user does not wait for it. On
    Spark (the engine's start and frame, and the two reports the Backtest page opens with, each a Spark pass: a minute
    or more) in a thread it starts and returns, so the console listens at once; a page opened meanwhile says that
    Spark is starting (`wait_for_spark`) and waits for that same build."""
    session = current_session(ws)
    if session is None or not session.loaded:
        return None
    try:
        names, engine = strategy_names(ws)[:6], session.engine
    except RiskConsoleError:
        return None  # a broken dataset.yaml shows its error on every page
    if engine == "duckdb":
        _warm(session, names)
        return None
    names = [n for n in names if n in ("baseline", "candidate")] or names[-1:]
    thread = threading.Thread(target=_warm, args=(session, names), name=WARM_THREAD, daemon=True)
    thread.start()
    return thread


def _warm(session: Session, names: list[str]) -> None:
    """The engine (on Spark) and the reports of strategies `names` at their default windows, in the caches."""
    try:
        if session.engine != "duckdb":
            session.spark_engine()
        for name in names:
            path = session.ws.strategies_dir / f"{name}.yaml"
            evaluate(session, path, default_window(session, path))
    except RiskConsoleError:
        return  # a broken file shows its error on the page that opens it
    except Exception as err:  # noqa: BLE001 - Spark's start or pass failed (Java, memory): the page that opens says
        # it in full when it asks again; the console's log gets one line, not the warm-up thread's traceback
        from riskconsole.engines.spark_render import first_line

        print(f"riskconsole: warming the console up on {session.engine} failed: {first_line(err)} "
              "(the page opened next shows the error)", file=sys.stderr)
