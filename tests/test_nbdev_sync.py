"""The notebooks are the source of truth: exporting them must reproduce jrs_nb/ exactly, and they must be clean.

Runs `nbdev-export` and `nbdev-clean` on a copy of the project, so a user's working tree is never touched, and
compares the result with the files as they are."""
import filecmp, shutil, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree(d: Path):
    return {p.relative_to(d) for p in d.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


def test_export_and_clean_leave_no_diff(tmp_path):
    work = tmp_path / "proj"
    work.mkdir()
    shutil.copy(ROOT / "pyproject.toml", work)
    for d in ("nbs", "jrs_nb"):
        shutil.copytree(ROOT / d, work / d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for cmd in (["nbdev-export"], ["nbdev-clean"]):
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd[0]} failed: {r.stderr[-3000:]}"
    changed = []
    for d in ("nbs", "jrs_nb"):
        before, after = _tree(ROOT / d), _tree(work / d)
        changed += [f"{d}/{p} (new)" for p in sorted(after - before)]
        changed += [f"{d}/{p} (removed)" for p in sorted(before - after)]
        changed += [f"{d}/{p}" for p in sorted(before & after) if not filecmp.cmp(ROOT / d / p, work / d / p, shallow=False)]
    if not filecmp.cmp(ROOT / "pyproject.toml", work / "pyproject.toml", shallow=False): changed.append("pyproject.toml")
    assert not changed, ("nbdev-export / nbdev-clean would change these files; run both and commit:\n  "
                         + "\n  ".join(changed))


def test_packaged_experiment_notebooks_match_their_source():
    "jrs_nb/experiments (what a wheel ships for `jrs-nb reproduce`) must equal nbs/experiments."
    r = subprocess.run(["python", str(ROOT / "tools" / "sync_experiments.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_experiments_dir_falls_back_to_the_packaged_copy(tmp_path, monkeypatch):
    "Without a checkout's nbs/ (a wheel install), the runner finds the notebooks shipped inside the package."
    import jrs_nb, jrs_nb.reproduce as rep
    pkg = tmp_path / "site" / "jrs_nb"
    shutil.copytree(ROOT / "jrs_nb" / "experiments", pkg / "experiments")
    (pkg / "__init__.py").write_text("")
    monkeypatch.delenv("JRS_NB_EXPERIMENTS", raising=False)
    monkeypatch.setattr(jrs_nb, "__file__", str(pkg / "__init__.py"))
    assert rep.experiments_dir() == (pkg / "experiments").resolve()
    shutil.rmtree(pkg / "experiments")
    try: rep.experiments_dir()
    except FileNotFoundError as e: assert "JRS_NB_EXPERIMENTS" in str(e) and "train.ipynb" in str(e)
    else: raise AssertionError("experiments_dir should fail when no notebooks exist")
