"""Real-browser test of the widgets: JupyterLab on 127.0.0.1 + headless Chromium (playwright, system chromium).

Run with `pytest -m browser tests/test_browser.py`; skipped (with the reason) when jupyterlab, playwright or
chromium are missing. Writes a screenshot to $JRS_BROWSER_SHOTS (default: the test's tmp folder)."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("JRS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]

CELLS = [
    "import matplotlib; matplotlib.use('Agg')\n"
    "from jrs_nb.viz import toy_view, toy_alpha_history\n"
    "from jrs_nb.widgets import SliceViewer, DVFInspector, AlphaExplorer, Viewer3D\n"
    "views = [toy_view(seed=0), toy_view(seed=1)]",
    "sv = SliceViewer(views); sv.widget",
    "DVFInspector(views).widget",
    "AlphaExplorer(toy_alpha_history()).widget",
    "Viewer3D(views).widget",
]


def _missing() -> str:
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return "playwright (pip) is not installed"
    if shutil.which("jupyter-lab") is None: return "jupyterlab is not installed"
    if CHROMIUM is None: return "no chromium binary (apt-get install chromium)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    why = _missing()
    if why: pytest.skip(f"browser test needs jupyterlab, playwright and chromium: {why}")
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
                    for c in CELLS],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "widgets.ipynb").write_text(json.dumps(nb))
    port, token = _free_port(), "jrs-browser-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
                             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, up = time.time() + 60, False
        while not up and proc.poll() is None and time.time() < deadline:
            try: urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1); up = True
            except OSError: time.sleep(.5)
        if not up: pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        yield url, token, tmp_path
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()


def test_widgets_render_and_update(lab):
    from playwright.sync_api import sync_playwright
    url, token, tmp = lab
    shots = Path(os.environ.get("JRS_BROWSER_SHOTS", tmp)); shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{url}/lab/tree/widgets.ipynb?token={token}", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            for cls in ("jrs-slice-viewer", "jrs-dvf-inspector", "jrs-alpha-explorer", "jrs-viewer-3d"):
                page.wait_for_selector(f".{cls}", timeout=90_000)
            img = page.locator(".jrs-slice-viewer img.jrs-image")
            img.wait_for(timeout=30_000)
            page.wait_for_function("el => el.naturalWidth > 50", arg=img.element_handle(), timeout=30_000)
            before = img.get_attribute("src")
            readout = page.locator(".jrs-slice-viewer .widget-slider .widget-readout").first
            old = readout.inner_text()
            handle = page.locator(".jrs-slice-viewer .widget-slider .noUi-handle").first
            handle.focus()
            for _ in range(3): page.keyboard.press("ArrowRight")
            page.wait_for_function("([el, s]) => el.getAttribute('src') !== s",
                                   arg=[img.element_handle(), before], timeout=30_000)
            new = readout.inner_text()
            assert int(new) != int(old), (old, new)
            page.wait_for_function("el => el.naturalWidth > 50", arg=img.element_handle(), timeout=30_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.wait_for_timeout(1000)  # the last redraw reaches the page
            if page.get_by_role("button", name="No", exact=True).count(): page.get_by_role("button", name="No", exact=True).click()
            canvas = page.locator(".jrs-viewer-3d canvas")
            canvas.first.wait_for(timeout=60_000)
            n_img = page.locator("img.jrs-image").count()
            page.screenshot(path=str(shots / "widgets_browser.png"), full_page=True)
            page.locator(".jrs-viewer-3d").scroll_into_view_if_needed(); page.wait_for_timeout(2000)
            page.locator(".jrs-viewer-3d").screenshot(path=str(shots / "widgets_browser_3d.png"))
            assert n_img == 3, n_img  # slice viewer, DVF inspector, alpha explorer
            assert canvas.count() >= 1
            assert (shots / "widgets_browser.png").stat().st_size > 10_000
        finally:
            browser.close()
