"""Run every literate notebook in nbs/ (not nbs/experiments/, which papermill tests run) as `nbdev-test` runs it.

One test per notebook, so a failure names the notebook. Each runs through `python tools/build_html.py --run NB`,
which is nbdev's `test_nb` with the project's flags (cells flagged `#| slow` or `#| cuda` are skipped, as in
`nbdev-test` without flags) and which keeps the executed copy in `_executed/`: the HTML course
(`python tools/build_html.py`) then shows every output without running anything again. A lesson's page, rendered
from that copy, must show its figures."""
import importlib.util, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
             if "experiments" not in p.parts and ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))

_spec = importlib.util.spec_from_file_location("build_html", ROOT / "tools" / "build_html.py")
build_html = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(build_html)


def test_there_are_notebooks():
    assert any(p.name.startswith("00_core") for p in NBS), NBS


def tutorial_figures(nb: Path) -> int:
    "The number of figures of a lesson's HTML page, rendered from its current executed copy as the course build does."
    copy = build_html.cached(nb)
    assert copy is not None, f"{nb.name}: no current executed copy in {build_html.CACHE}"
    pages = [(build_html.html_name(p), p.stem) for p in build_html.course_notebooks()]
    k = [r for r, _ in pages].index(build_html.html_name(nb))
    return build_html.figures(build_html.render(build_html.prepare(copy), pages, k))


@pytest.mark.parametrize("nb", NBS, ids=lambda p: str(p.relative_to(ROOT / "nbs")))
def test_notebook(nb):
    r = subprocess.run([sys.executable, "tools/build_html.py", "--run", str(nb)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "Success" in r.stdout, f"{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
    if nb.parent.name == "tutorials" and build_html.runnable(nb):
        assert tutorial_figures(nb) > 0, f"the lesson {nb.name} has no figure on its HTML page"
