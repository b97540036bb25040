"""A real browser against `streamlit run app.py`: every page of its navigation renders its charts, with the
shared sidebar (Home first in the navigation, the dataset in use) and without a Streamlit exception.

Headless Debian chromium driven by Playwright for Python (Playwright's own browser download does not work on
these machines). Screenshots go to test-artifacts/screenshots/. With FOSTER_SCREENSHOTS_TO_ASSETS=1 they are
also copied to assets/screenshots/ for the README; FOSTER_BROWSER_DATASET and FOSTER_BROWSER_RUNS_DIR point
the app at an existing dataset and run store (the README's pictures use MovieLens) instead of tiny data.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from foster_core.analysis.compare import method_rank
from foster_core.runs.jobs import JobQueue, JobSpec
from foster_core.runs.run_store import FULL

from conftest import cyclic_tables
from test_distill_page import working_job

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
ASSETS = ROOT / "assets" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# (url path, screenshot name, page title, plotly charts the page must draw). Export comes first: the first
# script run of a fresh server is where a page could run without app.py (as with a legacy pages/ folder).
PAGES = [("export", "export", "Export", 0), ("", "home", "FOSTER Studio", 2), ("distill", "distill", "Distill", 1),
         ("explore", "explore", "Explore", 3), ("compare", "compare", "Compare", 1)]
NAVIGATION = ["Home", "Distill", "Explore", "Compare", "Export"]

if not CHROMIUM.is_file():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (scripts/test.sh installs it with apt-get)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")


STUDIO: dict = {}  # what the app_url fixture served: its root folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A streamlit server on a free local port, over tiny data with one finished quick job (or the given data)."""
    root = tmp_path_factory.mktemp("browser")
    STUDIO["root"] = root  # the run store's folder, for tests that add a hand-made job to it
    env = {**os.environ, "FOSTER_CACHE_DIR": os.environ.get("FOSTER_BROWSER_CACHE_DIR", str(root / "cache")),
           "FOSTER_JOB_THREADS": "1"}
    if os.environ.get("FOSTER_BROWSER_RUNS_DIR"):
        env["FOSTER_RUNS_DIR"] = os.environ["FOSTER_BROWSER_RUNS_DIR"]
        env["FOSTER_DATASET"] = os.environ.get("FOSTER_BROWSER_DATASET", "movielens")
        env["FOSTER_CACHE_DIR"] = os.environ.get("FOSTER_BROWSER_CACHE_DIR", os.environ.get("HOME", "") + "/.cache/foster_studio")
    else:
        interactions, items = cyclic_tables()
        (root / "tiny").mkdir()
        interactions.to_csv(root / "tiny" / "interactions.csv", index=False)
        items.to_csv(root / "tiny" / "items.csv", index=False)
        env.update(FOSTER_RUNS_DIR=str(root / "runs"), FOSTER_DATASET=str(root / "tiny"))
        previous = os.environ.get("FOSTER_CACHE_DIR")
        os.environ["FOSTER_CACHE_DIR"] = env["FOSTER_CACHE_DIR"]  # the worker inherits it
        try:
            queue = JobQueue(root / "runs")
            job = queue.submit(JobSpec(dataset=str(root / "tiny"), methods=["foster", "random"], budgets=[5],
                                       # Holdout selection on, so Distill draws its quality chart.
                                       distill={"steps": 20, "log_every": 2, "select_every": 10, "select_epochs": 10,
                                                "reset_every": 10},
                                       student={"seeds": [0], "epochs": 20, "eval_every": 5},
                                       expert={"epochs": 5}, preset="quick", threads=1))
            assert queue.wait(job, timeout=240)["status"] == "finished", job.log[-3000:]
        finally:
            if previous is None:
                os.environ.pop("FOSTER_CACHE_DIR", None)
            else:
                os.environ["FOSTER_CACHE_DIR"] = previous
    port = free_port()
    log = open(root / "streamlit.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"streamlit did not start:\n{(root / 'streamlit.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_until_drawn(page, charts: int, timeout_ms: int = 90_000) -> None:
    """Streamlit's script finished (no running indicator) and the page's plotly charts have their SVG."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """(charts) => {
            const running = document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')
                || document.querySelector('[data-testid="stSkeleton"]');
            const drawn = document.querySelectorAll('.js-plotly-plot .main-svg').length;
            const exception = document.querySelector('[data-testid="stException"]');
            return exception || (!running && drawn >= charts && document.querySelector('h1'));
        }""", arg=charts * 2 if charts else 0, timeout=timeout_ms, polling=500)
    page.wait_for_timeout(SETTLE_MS)  # let plotly finish its transitions before the screenshot


# Half a second is enough for the tests' checks; the README's pictures get plotly's full transitions.
SETTLE_MS = 1500 if os.environ.get("FOSTER_SCREENSHOTS_TO_ASSETS") == "1" else 500


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium for the module's tests (each test opens its own page in it)."""
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def browser_page(browser, height: int):
    """A fresh page (its own context: no cookies or state from another test), 1400 px wide, closed afterwards
    whatever happens."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_every_page_draws_its_charts_without_an_exception(app_url, browser):
    """Every page: its charts, title, navigation and sidebar, no exception; then the page's own checks
    (PAGE_CHECKS, defined below: Distill's quality chart, Explore's click on a dot, Compare's columns)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(browser, 2000) as page:
        for path, name, title, charts in PAGES:
            page.goto(f"{app_url}/{path}", wait_until="domcontentloaded")
            try:
                wait_until_drawn(page, charts)
            except playwright_api.TimeoutError:
                page.screenshot(path=str(SHOTS / f"{name}-timeout.png"), full_page=True)
                raise
            exceptions = page.locator('[data-testid="stException"]')
            assert exceptions.count() == 0, f"{name}: {exceptions.first.inner_text()}"
            assert page.locator("h1").first.inner_text().strip() == title
            links = page.locator('[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"]')
            # Each link reads "<material icon name>\n\n<title>"; the title is its last line.
            assert [link.inner_text().split("\n")[-1].strip() for link in links.all()] == NAVIGATION, name
            assert "Dataset:" in page.locator('[data-testid="stSidebar"]').inner_text(), name
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
            if name in PAGE_CHECKS:  # on the same page load: each load costs seconds on a busy 2-core machine
                PAGE_CHECKS[name](page)
    if os.environ.get("FOSTER_SCREENSHOTS_TO_ASSETS") == "1":
        ASSETS.mkdir(parents=True, exist_ok=True)
        for _, name, _, _ in PAGES:
            shutil.copyfile(SHOTS / f"{name}.png", ASSETS / f"{name}.png")


FIND_DOT = """() => {
    // The centre, in page pixels, of a synthetic dot (not the selected #0) with no other synthetic dot near it.
    const gd = document.querySelector('.js-plotly-plot');
    const trace = gd._fullData.find(t => t.name === 'synthetic');
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, rect = gd.getBoundingClientRect();
    const points = Array.from(trace.x, (x, i) => ({x: rect.left + xa._offset + xa.l2p(x),
                                                  y: rect.top + ya._offset + ya.l2p(trace.y[i]),
                                                  id: trace.customdata[i]}));
    let best = null, bestGap = -1;
    for (const p of points) {
        if (p.id === 0) continue;
        const gap = Math.min(...points.filter(q => q !== p).map(q => Math.hypot(q.x - p.x, q.y - p.y)));
        if (gap > bestGap) { best = p; bestGap = gap; }
    }
    return best;
}"""


def check_a_click_on_a_synthetic_dot_selects_that_sequence_and_highlights_it(page) -> None:
    """Defects 1 and 7: Explore opens on the finished run, a click (not only a lasso) picks a sequence, the map
    rings it, and the position table shows every column, the nearest real items included, at 1400 px. How close
    each synthetic sequence comes to a real user: the map's colour bar and the copying table's columns in view,
    and the page under 2,500 px tall."""
    assert "Synthetic sequence #0" in page.locator("h3").all_inner_texts()[0]
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    dot = page.evaluate(FIND_DOT)
    assert dot is not None
    page.mouse.move(dot["x"], dot["y"])
    page.wait_for_timeout(300)
    page.mouse.click(dot["x"], dot["y"])
    heading = f"Synthetic sequence #{dot['id']}"
    page.wait_for_function("(text) => Array.from(document.querySelectorAll('h3')).some(h => "
                           "h.innerText.includes(text))", arg=heading, timeout=30_000)
    wait_until_drawn(page, 2)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.name)")
    assert f"selected #{dot['id']}" in names  # the ring drawn around the chosen dot
    assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData"
                         ".find(t => t.name === 'synthetic').marker.showscale")  # dots coloured by copying, a bar
    for column in ("input p", "nearest real item (not itself)", "similarity"):
        box = page.get_by_role("columnheader", name=column, exact=True).first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1400, column
    page.wait_for_selector('[data-testid="stDataFrame"] [role="columnheader"]', state="attached", timeout=30_000)
    # The copying table is a data grid (a canvas); its accessibility table names the columns drawn in view.
    [copies] = [g for g in page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'),
        grid => ({right: grid.getBoundingClientRect().right,
                  columns: Array.from(grid.querySelectorAll('[role="columnheader"]'), h => h.innerText.trim())}))""")
                if "positions shared" in g["columns"]]
    drawn = copies["columns"]
    assert copies["right"] <= 1400 and page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    for column in ("nearest real user", "positions shared", "longest copied run", "longest run, any user"):
        assert column in drawn, f"{column} is not drawn at 1400 px: {list(drawn)}"
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    assert height <= 2500, f"Explore is {height} px tall"
    page.screenshot(path=str(SHOTS / "explore-click.png"), full_page=True)


# The side-by-side table's default view: in view at 1400 px without scrolling sideways, costs included.
NARROW_COLUMNS = ("method", "budget", "status", "quality vs full", "NDCG@10 (mean ± std)", "making data (s)",
                  "training (s)", "speed-up", "finished")
GRID_COLUMNS = """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).map(grid => {
    // Glide's data grid draws on a canvas; its accessibility table lists the columns it draws in the current
    // scroll position (those at least partly inside the grid) and the rows' cells, but with no boxes of their
    // own: the scroller's widths say whether any column lies beyond view.
    const box = grid.getBoundingClientRect(), scroller = grid.querySelector('.dvn-scroller');
    const headers = Array.from(grid.querySelectorAll('[role="columnheader"]'),
                               h => ({name: h.innerText.trim(), index: Number(h.getAttribute('aria-colindex'))}));
    const rows = Array.from(grid.querySelectorAll('[role="row"]'))
        .filter(row => row.querySelector('[role="gridcell"]'))
        .map(row => Object.fromEntries(Array.from(row.querySelectorAll('[role="gridcell"]'),
                                                  c => [Number(c.getAttribute('aria-colindex')), c.innerText.trim()])));
    return {right: box.right, scrollLeft: scroller ? scroller.scrollLeft : null,
            scrollWidth: scroller ? scroller.scrollWidth : null, clientWidth: scroller ? scroller.clientWidth : null,
            headers, rows};
})"""
CHART_LINES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    annotations: Array.from(gd.querySelectorAll('.annotation-text'), a => a.textContent.trim()),
    yStart: gd._fullLayout.yaxis.range[0]}))"""


def check_compare_shows_the_ratio_to_full_columns_without_horizontal_scrolling(page) -> None:
    """At 1400 px, Compare answers "which budget buys 90% and 95% of full-data quality, and what does a student
    cost there?": the chart of the ratio to full data has its 90% and 95% lines and starts at 0, the table of
    the smallest budgets comes next, and the side-by-side table shows the ratio, NDCG@10 and the three cost
    columns without scrolling sideways, with full data first, then each method in the registry's order by budget."""
    charts = page.evaluate(CHART_LINES)
    assert charts, "Compare draws no chart"
    assert {"90% of full data", "95% of full data"} <= set(charts[0]["annotations"]), charts[0]["annotations"]
    assert charts[0]["yStart"] == 0  # small differences are not blown up
    page.wait_for_selector('[data-testid="stDataFrame"] [role="columnheader"]', state="attached",
                           timeout=30_000)  # the accessibility table has no size of its own
    grids = page.evaluate(GRID_COLUMNS)
    reach = [g for g in grids if any(h["name"] == "smallest budget" for h in g["headers"])]
    [table] = [g for g in grids if any(h["name"] == "status" for h in g["headers"])]
    assert reach and grids.index(reach[0]) < grids.index(table)  # the smallest budgets above every run
    assert table["scrollLeft"] == 0 and table["right"] <= 1400  # the grid itself ends inside the window
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    # Every column fits in the grid: nothing to scroll to sideways (the "more columns" view has).
    assert table["scrollWidth"] <= table["clientWidth"], (table["scrollWidth"], table["clientWidth"])
    headers = {h["name"]: h for h in table["headers"]}
    assert list(headers) == list(NARROW_COLUMNS), f"not all drawn at 1400 px: {list(headers)}"
    # Rows in order: full data first, then the registry's methods, each by budget.
    method, budget = (str(headers[name]["index"]) for name in ("method", "budget"))  # a row's keys: its colindex
    keys = [(method_rank(FULL if row[method] == "full data" else row[method]),
             -1.0 if row[budget] == "all" else float(row[budget])) for row in table["rows"] if method in row]
    assert keys and keys == sorted(keys), keys
    if not os.environ.get("FOSTER_BROWSER_RUNS_DIR"):  # the tiny job: foster and random at budget 5
        assert [row[method] for row in table["rows"]] == ["full data", "random", "foster"]
    page.screenshot(path=str(SHOTS / "compare-1400.png"), full_page=True)


def check_distill_draws_the_holdout_quality_of_s_against_teacher(page) -> None:
    """Distill's quality chart in a real browser: the checkpoints of the synthetic data, their start and
    teacher's line, on an axis from 0; the job's runs in a selector (the finished job has three: foster,
    random and the full-data reference), opened on foster's, whose charts stay drawn."""
    if os.environ.get("FOSTER_BROWSER_RUNS_DIR"):
        return  # the given run store may hold no holdout scores
    wait_until_drawn(page, 2)
    charts = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .filter(gd => (gd._fullLayout.title.text || '').includes('Quality of the synthetic data'))  // wrapped in <b>
        .map(gd => ({names: gd._fullData.map(t => t.name), yrange: gd._fullLayout.yaxis.range}))""")
    assert charts, "no quality chart"
    names = charts[0]["names"]
    assert "checkpoints of the synthetic data" in names and "kept" in names, names
    assert any(n.startswith("teacher ") for n in names) and any(n.startswith("start ") for n in names), names
    assert charts[0]["yrange"][0] == 0, charts[0]["yrange"]
    # Run ids carry their method's name: the loss curves drawn are foster's, under the job's run selector.
    titles = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'), "
                           "gd => gd._fullLayout.title.text || '')")
    assert any("Loss terms of run" in t and "-foster-" in t for t in titles), titles
    assert page.get_by_text("Charts of run").count() >= 1


PAGE_CHECKS = {"distill": check_distill_draws_the_holdout_quality_of_s_against_teacher,
               "explore": check_a_click_on_a_synthetic_dot_selects_that_sequence_and_highlights_it,
               "compare": check_compare_shows_the_ratio_to_full_columns_without_horizontal_scrolling}


def test_distill_keeps_fosters_charts_while_a_later_run_of_the_same_job_works(app_url, browser):
    """Runs last in the module, after the page tour: a hand-made job whose foster run has finished and whose
    random run is training its student (this test process plays its worker). Distill, reloaded, still draws
    foster's loss curves and its quality chart, and says the later run is at work."""
    if os.environ.get("FOSTER_BROWSER_RUNS_DIR"):
        pytest.skip("a given run store is not written to")
    job, foster, random_run = working_job(STUDIO["root"])
    try:
        with browser_page(browser, 2000) as page:
            page.goto(f"{app_url}/distill", wait_until="domcontentloaded")
            # A running job reruns the page every 2 s, so the page is never idle for long: wait for the two
            # charts themselves (generously: CI is a busy 2-core machine), not for a quiet moment.
            page.wait_for_function(
                """(run) => {
                    const titles = Array.from(document.querySelectorAll('.js-plotly-plot'),
                                              gd => (gd._fullLayout && gd._fullLayout.title.text) || '');
                    return titles.some(t => t.includes('Loss terms of run ' + run))
                        && titles.some(t => t.includes('Quality of the synthetic data'));
                }""", arg=foster.id, timeout=180_000, polling=500)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert "random n=5" in page.locator('[data-testid="stMain"]').inner_text()
    finally:
        job.update(status="finished", pid=None)
