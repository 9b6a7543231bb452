"""Benchmark (issue 4): how fast the console answers on the default demo (1M orders).

    .venv/bin/python bench/bench_console.py --workspace /tmp/demo1m

Core: the call the Tune page makes on every slider move (`Session.interactive`, over the cached
evaluator). Browser: `streamlit run app.py` driven by Playwright (Debian chromium): first load of
each page and slider move to updated KPIs.
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

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def core(root: Path, strategy: str) -> dict:
    from riskconsole.session import Session
    from riskconsole.tuning import param_range
    from riskconsole.workspace import Workspace

    path = Workspace(root).strategies_dir / f"{strategy}.yaml"
    with Session(Workspace(root)) as session:
        window = session.window()
        bt = session.backtest(path, window)
        started = time.perf_counter()
        first = session.interactive(path, window)
        setup = time.perf_counter() - started
        moves = []
        for name, value in bt.compiled.strategy.params.items():
            bounds = param_range(value)
            if bounds is None:
                continue
            lo, hi, step = bounds
            for new in (value + step, value - step if value - step >= lo else value + 2 * step):
                started = time.perf_counter()
                session.interactive(path, window, {name: new})
                moves.append(time.perf_counter() - started)
    assert first["overall"]["population"] == bt.report["overall"]["population"]
    return {"evaluator_setup_s": setup, "slider_moves": len(moves), "slider_median_ms": statistics.median(moves) * 1e3,
            "slider_p90_ms": sorted(moves)[int(0.9 * len(moves))] * 1e3, "slider_max_ms": max(moves) * 1e3}


def _settle(page) -> None:
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=120_000)
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=300_000)


def browser(root: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "riskconsole.ui.serve", "--port", str(port)],
                            cwd=ROOT, env={**os.environ, "RISKCONSOLE_WORKSPACE": str(root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # the launcher imports everything before it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = b.new_page(viewport={"width": 1500, "height": 1800})
            for name in ("", "tune_page", "compare_page", "data_page", "detectors_page", ""):
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/{name}")
                _settle(page)
                key = f"load_{name or 'backtest_page'}_s"
                out[key if key not in out else key.replace("_s", "_again_s")] = time.perf_counter() - started
            page.goto(f"http://127.0.0.1:{port}/tune_page")
            _settle(page)
            slider = page.locator("[data-testid=stSlider]").filter(has_text="drop_users").locator("input[type=range]")
            moves = []
            for key in ("ArrowLeft", "ArrowRight") * 3:
                slider.focus()
                started = time.perf_counter()
                slider.press(key)
                page.wait_for_timeout(150)
                _settle(page)
                moves.append(time.perf_counter() - started)
            out["browser_slider_median_s"] = statistics.median(moves)
            out["browser_slider_max_s"] = max(moves)
            fresh = b.new_context(viewport={"width": 1500, "height": 1800}).new_page()
            for name in ("", "tune_page"):  # a new user on a warm server: imports and caches already there
                started = time.perf_counter()
                fresh.goto(f"http://127.0.0.1:{port}/{name}")
                _settle(fresh)
                out[f"new_session_load_{name or 'backtest_page'}_s"] = time.perf_counter() - started
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="/tmp/demo1m")
    parser.add_argument("--strategy", default="candidate")
    args = parser.parse_args()
    root = Path(args.workspace)
    print(json.dumps({"core": core(root, args.strategy), "browser": browser(root)}, indent=2))


if __name__ == "__main__":
    main()
