"""Real-browser test of the widgets on trained weights: JupyterLab on 127.0.0.1 + headless Chromium (playwright
driving Debian's chromium).

The shipped cross-stitch network (`pretrained:crossstitch`) predicts one pair of a small synthetic cohort; the
notebook that the browser runs shows that prediction in every widget (slice viewer, DVF inspector, k3d 3D view) and
the network's alpha history in the alpha explorer. In each widget the test moves a control and checks that the
picture changes: a slice slider (slice viewer, DVF inspector), the iteration slider (alpha explorer: the heatmap),
an organ toggle (3D view: the WebGL canvas).

Run with `pytest -m browser tests/test_browser.py` (CI does). Without jupyterlab, playwright or chromium it skips,
naming what is missing, unless `JRS_BROWSER_REQUIRED=1` (set by CI), which turns the skip into a failure. On a
failure the page screenshot, the browser console and the JupyterLab log are saved to a folder named in the failure
message ($JRS_BROWSER_SHOTS, default: the test's tmp folder)."""
import io, json, os, pickle, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("JRS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
NET = "crossstitch"

CELLS = [
    "import pickle, matplotlib; matplotlib.use('Agg')\n"
    "from jrs_nb.widgets import SliceViewer, DVFInspector, AlphaExplorer, Viewer3D\n"
    "views = pickle.loads(open('views.pkl', 'rb').read())  # pretrained:crossstitch on one phantom pair",
    "SliceViewer(views).widget",
    "DVFInspector(views).widget",
    f"AlphaExplorer('pretrained:{NET}').widget",
    "Viewer3D(views, source='seg').widget",
]


def _missing() -> str:
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return "playwright (pip) is not installed"
    if shutil.which("jupyter-lab") is None: return "jupyterlab is not installed"
    if CHROMIUM is None or not os.access(CHROMIUM, os.X_OK): return f"no chromium binary {CHROMIUM or ''} (apt-get install chromium)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _require():
    "Skip (or, with JRS_BROWSER_REQUIRED=1 as in CI, fail) when jupyterlab, playwright or chromium is missing."
    why = _missing()
    if why:
        msg = f"browser test needs jupyterlab, playwright and chromium: {why}"
        if os.environ.get("JRS_BROWSER_REQUIRED") == "1": pytest.fail(msg + " (JRS_BROWSER_REQUIRED=1)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def trained_views():
    "One pair of a one-patient demo-preset cohort (seed 0, smallest field of view), predicted by the shipped network."
    _require()
    import torch
    from jrs_nb.phantom import generate_cohort
    from jrs_nb.data.dataset import JRSDataset
    from jrs_nb.pretrained import pretrained
    from jrs_nb.inference import infer_pair
    from jrs_nb.viz import view_data
    threads = torch.get_num_threads(); torch.set_num_threads(min(4, os.cpu_count() or 1))
    try:
        with tempfile.TemporaryDirectory() as d:
            generate_cohort(Path(d) / "c", "demo", seed=0, n_train=0, n_val=1, n_test=0, daily_a=(1, 1),
                            fov=(160., 176., 176.))
            pair = JRSDataset(Path(d) / "c", "val")[0]
            pred = infer_pair(pretrained(NET), pair)
    finally: torch.set_num_threads(threads)
    v = view_data(pair, pred, name=f"{NET}: {pair.patient} {pair.moving_scan}->{pair.fixed_scan}")
    assert {"gt", "seg", "reg"} <= set(v.contours) and "reg" in v.dvfs
    return [v]


@pytest.fixture
def lab(tmp_path, trained_views):
    _require()
    (tmp_path / "views.pkl").write_bytes(pickle.dumps(trained_views))
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


def _pixels(png: bytes):
    import matplotlib.image as mpimg
    return mpimg.imread(io.BytesIO(png), format="png")


def _move_slider(page, widget: str, key: str, presses: int = 3, nth: int = 0):
    "Press `key` on the nth slider of a widget; wait until the widget's image changes. Returns (old, new) readouts."
    img = page.locator(f".{widget} img.jrs-image")
    page.wait_for_function("el => el.naturalWidth > 50", arg=img.element_handle(), timeout=30_000)
    before = img.get_attribute("src")
    readout = page.locator(f".{widget} .widget-slider .widget-readout").nth(nth)
    old = readout.inner_text()
    handle = page.locator(f".{widget} .widget-slider .noUi-handle").nth(nth)
    handle.scroll_into_view_if_needed(); handle.focus()
    for _ in range(presses): page.keyboard.press(key)
    page.wait_for_function("([el, s]) => el.getAttribute('src') !== s", arg=[img.element_handle(), before],
                           timeout=60_000)
    page.wait_for_function("el => el.naturalWidth > 50", arg=img.element_handle(), timeout=30_000)
    new = readout.inner_text()
    assert new != old, f"{widget}: the slider readout stayed at {old!r}"
    return old, new


def _canvas_png(page) -> bytes:
    page.locator(".jrs-viewer-3d").scroll_into_view_if_needed(); page.wait_for_timeout(1500)
    return page.locator(".jrs-viewer-3d canvas").first.screenshot()


def _run_all(page, tries: int = 4):
    "Run All Cells once the kernel is there. On a loaded machine JupyterLab can take the click before its kernel is"
    "connected and drop it; the first cell's prompt says whether the run started ('[*]' or a number), else retry."
    prompt = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt")
    for k in range(tries):
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.wait_for_function("() => /Idle/.test(document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')"
                               "?.innerText || '')", timeout=120_000)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function("el => /[*0-9]/.test(el.innerText)", arg=prompt.element_handle(), timeout=30_000)
            return
        except Exception:
            if k == tries - 1: raise AssertionError(f"Run All Cells did not start the kernel in {tries} tries")


def _drive(page, url, token, shots: Path) -> dict:
    "Open the notebook, run it, and move a control in every widget. Returns what moved."
    moved = {}
    page.goto(f"{url}/lab/tree/widgets.ipynb?token={token}", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    _run_all(page)
    for cls in ("jrs-slice-viewer", "jrs-dvf-inspector", "jrs-alpha-explorer", "jrs-viewer-3d"):
        page.wait_for_selector(f".{cls}", timeout=240_000)
    if page.get_by_role("button", name="No", exact=True).count():  # JupyterLab's "news?" prompt
        page.get_by_role("button", name="No", exact=True).click()
    assert page.locator("img.jrs-image").count() == 3  # slice viewer, DVF inspector, alpha explorer

    moved["slice viewer: slice"] = _move_slider(page, "jrs-slice-viewer", "ArrowRight")
    moved["DVF inspector: slice"] = _move_slider(page, "jrs-dvf-inspector", "ArrowLeft")
    moved["alpha explorer: iteration (heatmap)"] = _move_slider(page, "jrs-alpha-explorer", "ArrowLeft", presses=5)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    canvas = page.locator(".jrs-viewer-3d canvas")
    canvas.first.wait_for(timeout=60_000)
    before = _canvas_png(page)
    px = _pixels(before)
    assert px[..., :3].std() > 0.01, "the 3D view's canvas is blank"
    page.screenshot(path=str(shots / "widgets_browser.png"), full_page=True)
    (shots / "widgets_browser_3d.png").write_bytes(before)
    toggle = page.locator(".jrs-viewer-3d .widget-checkbox input").nth(3)  # bladder, the largest organ
    toggle.scroll_into_view_if_needed(); toggle.click()
    deadline, after = time.time() + 30, before
    while time.time() < deadline:
        after = _canvas_png(page)
        a, b = _pixels(before), _pixels(after)
        if a.shape != b.shape or abs(a - b).max() > 0.1: break
    else: raise AssertionError("the 3D view did not change when the bladder was hidden")
    (shots / "widgets_browser_3d_no_bladder.png").write_bytes(after)
    moved["3D view: bladder hidden"] = ("shown", "hidden")
    return moved


def test_widgets_render_and_update(lab):
    from playwright.sync_api import sync_playwright
    url, token, tmp = lab
    shots = Path(os.environ.get("JRS_BROWSER_SHOTS", tmp)); shots.mkdir(parents=True, exist_ok=True)
    console = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
            page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
            try:
                moved = _drive(page, url, token, shots)
            except Exception as e:
                fail = shots / "failure"; fail.mkdir(exist_ok=True)
                try: page.screenshot(path=str(fail / "page.png"), full_page=True)
                except Exception as e2: console.append(f"[test] screenshot failed: {e2}")
                (fail / "console.txt").write_text("\n".join(console) + "\n")
                if (tmp / "lab.log").exists(): shutil.copy2(tmp / "lab.log", fail / "lab.log")
                raise AssertionError(f"{type(e).__name__}: {e}\n-> screenshot, browser console and JupyterLab log "
                                     f"saved in {fail}") from e
        finally:
            browser.close()
    assert len(moved) == 4, moved
    assert (shots / "widgets_browser.png").stat().st_size > 10_000
