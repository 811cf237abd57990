"""README.md is generated from nbs/index.ipynb, and CI runs the README's test command."""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, "tools/build_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    blocks = re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 2, blocks
    main_cmd, test_cmd = blocks
    assert main_cmd.startswith("pip install torch==2.13.0") and "jrs-nb" in main_cmd
    assert test_cmd.startswith("pip install torch==2.13.0") and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, "the test command in .ci/run must be the README's test command"


def test_lesson_links_resolve():
    "Every notebook link of index.ipynb (relative to nbs/) and of README.md (relative to the root) names a file."
    import json
    idx = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "index.ipynb").read_text())["cells"])
    for base, text in ((ROOT / "nbs", idx), (ROOT, (ROOT / "README.md").read_text())):
        links = re.findall(r"\]\((?![a-z]+:|#)([^)\s#]+\.ipynb)", text)
        assert any("tutorials/" in l for l in links), "the lessons must be linked"
        missing = [l for l in links if not (base / l).exists()]
        assert not missing, f"links to notebooks that do not exist (relative to {base}): {missing}"
    for nb in ("learning", "crossstitch_tutorial", "gan", "evaluation"):
        assert f"(tutorials/{nb}.ipynb)" in idx, f"index.ipynb does not link the lesson {nb}"


# ---- the README's Python, run as written ----

def _readme_python() -> tuple[list[str], list[str], list[str]]:
    "The README's ```python blocks, its inline calls (`jrs_nb.x(...)`) and its inline dotted names (`jrs_nb.core.X`)."
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", text, re.S)
    spans = re.findall(r"`(jrs_nb(?:\.\w+)+(?:\(.*?\))?)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return blocks, [s for s in spans if s.endswith(")")], [s for s in spans if not s.endswith(")")]


def _run_fresh(code: str) -> subprocess.CompletedProcess:
    "`code` in a fresh interpreter (nothing of jrs_nb imported beforehand), from the repository root."
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_readme_python_blocks_run():
    blocks, calls, names = _readme_python()
    assert blocks and 'jrs_nb.pretrained("crossstitch")' in calls, (blocks, calls)
    for b in blocks:
        r = _run_fresh(b)
        assert r.returncode == 0, f"README block fails:\n{b}\n{r.stderr[-3000:]}"


def test_readme_inline_calls_run_as_written():
    "Each inline call after a bare `import jrs_nb`, as a reader would type it (`jrs_nb.pretrained(\"crossstitch\")`)."
    _, calls, _ = _readme_python()
    for call in calls:
        r = _run_fresh(f"import jrs_nb\nx = {call}\nprint(type(x).__name__)")
        assert r.returncode == 0, f"{call} fails:\n{r.stderr[-3000:]}"


def test_readme_names_exist():
    "Each dotted name the README cites (`jrs_nb.core.MODULE_LAYERS`, `jrs_nb.data.io`) is a module or an attribute of one."
    import importlib
    _, _, names = _readme_python()
    assert "jrs_nb.core.MODULE_LAYERS" in names, names
    for name in names:
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            try: obj = importlib.import_module(".".join(parts[:k])); break
            except ModuleNotFoundError: continue
        for attr in parts[k:]: obj = getattr(obj, attr)
