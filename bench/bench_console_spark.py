"""Benchmark (issue 15): the console's Backtest and Tune pages on a workspace whose engine is spark.

    .venv/bin/python bench/bench_console_spark.py --workspace /tmp/ws100k [--no-browser] [--screenshots DIR]

(the workspace's data/dataset.yaml says `engine: spark` and its `spark:` settings, or not: the core pass asks for
engine spark, the browser pass sets RISKCONSOLE_ENGINE=spark)

Core: what the Tune page asks on Spark — the engine's start and frame, the report at the saved values
(`Session.interactive`, the CLI's Spark backtest), each numeric param's curve (`Session.curve`, one Spark pass), and
a slider move (one step each way per param: a Spark backtest); every moved report is checked against DuckDB's
evaluator at the same setting, and every curve against DuckDB's. Browser: the launcher on the same workspace with
`RISKCONSOLE_ENGINE=spark`, driven by Playwright (Debian chromium): the first load of Backtest and Tune, then every
slider of the Tune page one step each way, timed from the key press to the KPI tiles drawn again and to the end of
the rerun (the page's own clock); optional screenshots of both pages.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_console import ARGS, ROOT, _close, _settle, _stats, peak_rss_gb, slider_moves  # noqa: E402


def core(root: Path, strategy: str) -> dict:
    """The Tune page's Spark calls, timed, each answer checked against DuckDB's."""
    import resource

    from riskconsole.engines.spark import SparkEngine
    from riskconsole.optimize import param_range
    from riskconsole.session import Session
    from riskconsole.workspace import Workspace

    ws = Workspace(root)
    queries: list[str] = []
    arrow = SparkEngine.arrow

    def counted(self, query, name):
        queries.append(name)
        return arrow(self, query, name)

    SparkEngine.arrow = counted
    out: dict = {}
    path = ws.strategies_dir / f"{strategy}.yaml"
    with Session(ws, engine="spark") as spark, Session(ws, engine="duckdb") as duck:
        started = time.perf_counter()
        engine = spark.spark_engine()
        out["engine_start_and_frame_s"] = round(time.perf_counter() - started, 2)
        out["engine_seconds"] = {k: round(v, 2) for k, v in engine.seconds.items()}
        out["master"] = engine.master
        window = spark.window(strategy=path)
        params = {k: v for k, v in spark.strategy(path).params.items() if param_range(v) is not None}
        timed: dict[str, list[float]] = {"saved_report": [], "curve": [], "move": []}
        per_move, per_curve, checks = [], [], 0
        for _ in range(2):  # the first pays Spark's planning of the query shape
            started = time.perf_counter()
            spark.interactive(path, window)
            timed["saved_report"].append(time.perf_counter() - started)
        for name, value in params.items():
            lo, hi, step = param_range(value)
            before, started = len(queries), time.perf_counter()
            points = spark.curve(path, window, name, {})
            timed["curve"].append(time.perf_counter() - started)
            per_curve.append(len(queries) - before)
            want = duck.curve(path, window, name, {})
            assert _close(points, want), f"curve of {name}: Spark's differs from DuckDB's"
            checks += 1
            for moved in (value + step, value - step):
                if not lo <= moved <= hi:
                    continue
                moved = round(moved, 10) if isinstance(moved, float) else moved
                before, started = len(queries), time.perf_counter()
                report = spark.interactive(path, window, {name: moved})
                timed["move"].append(time.perf_counter() - started)
                per_move.append(len(queries) - before)
                want = duck.interactive(path, window, {name: moved})
                for key in ("overall", "rules", "daily"):
                    assert _close(report[key], want[key]), f"{name}={moved}: {key} differs from DuckDB's"
                checks += 1
        out["params"] = list(params)
        out["population"] = report["overall"]["population"]
        out["times"] = {k: _stats(v) for k, v in timed.items()}
        out["spark_queries_per_move"] = sorted(set(per_move))
        out["spark_queries_per_curve"] = sorted(set(per_curve))
        out["curve_points"] = len(points)
        out["checked_against_duckdb"] = checks
    SparkEngine.arrow = arrow
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    out["load_average"] = [round(x, 1) for x in os.getloadavg()]
    return out


def browser(root: Path, screenshots: Path | None) -> dict:
    """The launcher on engine spark, Backtest and Tune loaded, every Tune slider one step each way."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "riskconsole.ui.serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "RISKCONSOLE_WORKSPACE": str(root), "RISKCONSOLE_ENGINE": "spark",
                                 "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict = {}
    try:
        deadline = time.time() + 900  # the launcher starts Spark and computes the first reports before it listens
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        out["launcher_ready_s"] = round(time.perf_counter() - started, 1)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = b.new_page(viewport={"width": 1500, "height": 1800})
            for name in ("", "tune_page"):
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/{name}")
                _settle(page)
                label = name or "backtest_page"
                out[f"load_{label}_s"] = round(time.perf_counter() - started, 2)
                page.wait_for_selector("[data-testid=stMetric]", timeout=120_000)  # widgets draw after the run ends
                page.wait_for_selector("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg",
                                       timeout=120_000)
                out[f"{label}_exceptions"] = page.locator("[data-testid=stException]").count()
                out[f"{label}_charts"] = page.locator("[data-testid=stVegaLiteChart]").count()
                out[f"{label}_engine_line"] = page.get_by_text("Engine: spark").count() > 0
                if screenshots:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshots / f"{label}.png"))
            moves, kpi_moves, _ = slider_moves(page, timeout_ms=600_000)
            out["browser_slider_moves"] = len(moves)
            out["browser_slider_kpis_median_s"] = round(statistics.median(kpi_moves), 2)
            out["browser_slider_median_s"] = round(statistics.median(moves), 2)
            out["browser_slider_max_s"] = round(max(moves), 2)
            out["browser_exceptions"] = page.locator("[data-testid=stException]").count()
            if screenshots:
                page.screenshot(path=str(screenshots / "tune_page_after_moves.png"))
            b.close()
        out["server_peak_rss_gb"] = peak_rss_gb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="/tmp/ws100k")
    parser.add_argument("--strategy", default="candidate")
    parser.add_argument("--no-browser", action="store_true", help="core numbers only")
    parser.add_argument("--screenshots", type=Path, help="write backtest_page.png and tune_page.png here")
    args = parser.parse_args()
    root = Path(args.workspace)
    print(json.dumps({"core": core(root, args.strategy)}, indent=2), flush=True)
    if not args.no_browser:
        print(json.dumps({"browser": browser(root, args.screenshots)}, indent=2))


if __name__ == "__main__":
    main()
