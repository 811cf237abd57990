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
