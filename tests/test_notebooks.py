"""Run every literate notebook in nbs/ (not nbs/experiments/, which papermill tests run) with nbdev-test.

One test per notebook, so a failure names the notebook. Cells flagged `#| slow` or `#| cuda` are skipped, as in
`nbdev-test` without flags."""
import subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
             if "experiments" not in p.parts and ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))


def test_there_are_notebooks():
    assert any(p.name.startswith("00_core") for p in NBS), NBS


@pytest.mark.parametrize("nb", NBS, ids=lambda p: str(p.relative_to(ROOT / "nbs")))
def test_notebook(nb):
    r = subprocess.run(["nbdev-test", str(nb)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "Success" in r.stdout, f"{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
