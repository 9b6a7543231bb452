"""Time the console's Monitor page in headless Chromium against a running console (issue 11: <= 3 s warm).

    .venv/bin/python -m riskconsole.ui.serve --port 8622 &        # RISKCONSOLE_WORKSPACE=... (a demo workspace)
    .venv/bin/python bench/bench_monitor_page.py http://127.0.0.1:8622 --pid SERVER_PID --visits 3 --shot /tmp/monitor

Each visit is a new tab in one browser context (one HTTP cache, as a user's browser has). Per visit: seconds until
the script is done (`notRunning`), until every Vega chart has drawn (an svg or canvas with a size), and until no
element skeleton is left; the browser main thread's busy time (Chrome's Performance.getMetrics: on a busy machine
wall time swells, the busy time less) and the server's CPU seconds. With --shot the last visit is screenshotted
whole (the viewport grown to the page: Streamlit scrolls inside its own container).
"""

from __future__ import annotations

import argparse
import os
import time

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CHARTS = """() => {
  const charts = [...document.querySelectorAll('[data-testid=stVegaLiteChart]')];
  const done = charts.filter(c => { const g = c.querySelector('canvas, svg.marks');
     return g && g.getBoundingClientRect().width > 0; }).length;
  return charts.length > 0 && done === charts.length ? charts.length : 0;
}"""
NO_SKELETON = "() => document.querySelectorAll('[data-testid=stSkeleton]').length === 0"


def server_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (NaN without a pid)."""
    if not pid:
        return float("nan")
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def visit(context, url: str, pid: int | None, shot: str | None) -> str:
    """One visit in a new tab: the timings as a line of text."""
    page = context.new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cpu, t0 = server_cpu(pid), time.perf_counter()
    page.goto(url)
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=120_000)
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=180_000)
    script = time.perf_counter() - t0
    page.wait_for_function(CHARTS, timeout=120_000, polling=50)
    drawn, charts = time.perf_counter() - t0, page.evaluate(CHARTS)
    page.wait_for_function(NO_SKELETON, timeout=120_000, polling=50)
    complete = time.perf_counter() - t0
    errors = page.locator("[data-testid=stException]").count()
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    line = (f"script done {script:.2f} s, {charts} charts drawn {drawn:.2f} s, no skeleton {complete:.2f} s, "
            f"exceptions {errors}; browser main thread busy {m['TaskDuration']:.2f} s (script "
            f"{m['ScriptDuration']:.2f}, layout {m['LayoutDuration']:.2f}); server CPU {server_cpu(pid) - cpu:.2f} s")
    if shot:
        height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size({"width": 1500, "height": min(int(height) + 200, 16000)})
        page.wait_for_timeout(2500)
        page.screenshot(path=f"{shot}.png", full_page=True)
    page.close()
    return line


def main() -> None:
    """Visits and prints; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--page", default="monitor_page")
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--pid", type=int, help="the console's process id, for its CPU seconds per visit")
    parser.add_argument("--shot", help="screenshot the last visit to SHOT.png")
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1800})
        for i in range(args.visits):
            last = i == args.visits - 1
            print(f"visit {i}: " + visit(context, f"{args.url}/{args.page}", args.pid, args.shot if last else None),
                  flush=True)
        browser.close()


if __name__ == "__main__":
    main()
