"""Time a console page reached the way a user reaches it: from another page, by its sidebar link (issue 11: the Monitor
page renders in <= 3 s on a warm server). A fresh browser tab also boots Streamlit's frontend, which on a 2-core
machine costs ~3-4 s of browser main thread whatever the page holds (bench_monitor_page.py measures that case).

    .venv/bin/python -m riskconsole.ui.serve --port 8671 &        # RISKCONSOLE_WORKSPACE=... (a demo workspace)
    .venv/bin/python bench/bench_page_nav.py http://127.0.0.1:8671 data_page monitor_page Monitor

Three visits: Monitor from Data, back to Data, again. Prints seconds from the click until the page's script is done
and until every Vega chart has drawn (an svg or canvas with a size).
"""
import sys, time
from playwright.sync_api import sync_playwright
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CHARTS = """() => { const c = [...document.querySelectorAll('[data-testid=stVegaLiteChart]')];
  const d = c.filter(x => { const g = x.querySelector('canvas, svg.marks'); return g && g.getBoundingClientRect().width > 0; }).length;
  return c.length > 0 && d === c.length ? c.length : 0; }"""
url, start, _target, label = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
    page = b.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(f"{url}/{start}")
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=300_000)
    page.wait_for_timeout(2000)
    for visit in range(3):
        t0 = time.perf_counter()
        page.get_by_role("link", name=label).first.click()
        page.wait_for_timeout(200)
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=300_000)
        t1 = time.perf_counter() - t0
        page.wait_for_function(CHARTS, timeout=300_000)
        t2 = time.perf_counter() - t0
        print(f"{label} via sidebar, visit {visit}: script done {t1:.2f} s, charts drawn {t2:.2f} s", flush=True)
        page.get_by_role("link", name="Data").first.click()
        page.wait_for_timeout(300)
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=300_000)
        page.wait_for_timeout(1500)
    b.close()
