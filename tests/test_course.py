"""The course stands alone: every link between notebooks (or to a repository file) resolves, no text mentions a file
the repository does not have, and every notebook that leans on "the CS paper" / "the GAN paper" cites it.

Scans the markdown cells of nbs/**/*.ipynb and README.md (the checks are plain functions of a text, so the tests
below also run them on a deliberately broken notebook and show that they fail)."""
import functools, html, json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Files that the package *writes* at run time (a run folder, a reproduction, an import): prose may name them although
# the repository does not hold one.
RUN_OUTPUTS = {"report.md", "log.txt", "import_report.md"}
# Names that were never files of this repository but that the course once cited as if they were.
NOT_FILES = re.compile(r"\bSPEC\b")

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FILE = re.compile(r"(?<![\w/.:-])((?:\.\./|\./)?[\w.-]+(?:/[\w.-]+)*\.(?:ipynb|md|py|toml|txt|sh|cfg|yml|yaml))\b")
NOTEBOOK = re.compile(r"(?<![\w/.-])(\d{2}[a-z]?_[A-Za-z][\w.]*[A-Za-z])(\.\*)?(?![\w])")


@functools.lru_cache(maxsize=1)
def repo_files() -> frozenset[str]:
    "Paths of the files git knows (tracked or untracked, not ignored), relative to the repository root."
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: return frozenset(str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts)
    return frozenset(r.stdout.split())


def markdown_of(path: Path) -> str:
    "The markdown a reader sees: all markdown cells of a notebook, or a whole .md file."
    if path.suffix != ".ipynb": return path.read_text(encoding="utf-8")
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def _exists(target: str, base: Path, root: Path, files: set[str]) -> bool:
    p = (base / target).resolve()
    if p.exists(): return True
    try: rel = str(p.relative_to(root.resolve()))
    except ValueError: return False
    return rel in files


def broken_links(text: str, base: Path, root: Path = ROOT, files: set[str] | None = None) -> list[str]:
    "Relative markdown links (`[..](x.ipynb#a)`, images too) whose target does not exist next to `base`."
    files = repo_files() if files is None else files
    bad = []
    for m in LINK.finditer(text):
        t = m.group(1)
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", t, re.I): continue  # http:, mailto:, in-page anchors
        path = t.split("#")[0].split("?")[0]
        if path and not _exists(path, base, root, files): bad.append(f"link ({t})")
    return bad


def missing_mentions(text: str, base: Path, root: Path = ROOT, files: set[str] | None = None) -> list[str]:
    "Mentions of files (`x.ipynb`, `tools/y.py`, `SPEC.md`), notebook names (`05_models.unet`) and never-existing sources."
    files = repo_files() if files is None else files
    names = {Path(f).name for f in files}
    stems = {Path(f).stem for f in files if f.endswith(".ipynb")}
    bad = [f"mention of {m.group(0)!r} (no such file in the repository)" for m in NOT_FILES.finditer(text)]
    for m in FILE.finditer(text):
        f = m.group(1)
        if f in RUN_OUTPUTS or _exists(f, base, root, files) or _exists(f, root, root, files): continue
        if "/" not in f.lstrip("./") and f in names: continue  # a bare file name that the repository has somewhere
        bad.append(f"mention of file {f!r}")
    for m in NOTEBOOK.finditer(text):
        stem, tail = m.group(1).removesuffix(".ipynb"), m.group(2) or ""
        if tail == ".*": ok = any(s.startswith(stem + ".") or s == stem for s in stems)
        else: ok = stem in stems
        if not ok: bad.append(f"mention of notebook {m.group(0)!r}")
    return bad


CITES = {"CS paper": "Beljaards", "GAN paper": "Elmahdy"}

def missing_citations(text: str) -> list[str]:
    "'the CS paper' / 'the GAN paper' used in a notebook that never says which paper that is."
    return [f"uses {k!r} but never cites {v} et al." for k, v in CITES.items() if k in text and v not in text]


def course_pages() -> list[Path]:
    return sorted(p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts) + [ROOT / "README.md"]


PAGES = course_pages()
_id = lambda p: str(p.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_links_resolve(page):
    bad = broken_links(markdown_of(page), page.parent)
    assert not bad, f"{_id(page)}: dangling " + "; ".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_mentioned_files_exist(page):
    bad = missing_mentions(markdown_of(page), page.parent)
    assert not bad, f"{_id(page)}: " + "; ".join(bad)


@pytest.mark.parametrize("page", [p for p in PAGES if p.parent == ROOT / "nbs"], ids=_id)
def test_papers_are_cited(page):
    bad = missing_citations(markdown_of(page))
    assert not bad, f"{_id(page)}: " + "; ".join(bad)


def test_code_cites_no_missing_source():
    "No file of the repository (code, notebooks, docs) points readers at a source that is not there."
    me = Path(__file__).resolve()
    bad = [f"{f}: {m.group(0)!r}" for f in sorted(repo_files())
           if f.endswith((".py", ".ipynb", ".md", ".toml", ".txt", ".json", ".cfg")) and (ROOT / f).resolve() != me
           and (ROOT / f).is_file() for m in NOT_FILES.finditer((ROOT / f).read_text(encoding="utf-8", errors="replace"))]
    assert not bad, bad


def test_checks_catch_broken_notebook(tmp_path):
    "A deliberately broken notebook, next to copies of two real ones: every kind of dangling reference is reported."
    nbs = tmp_path / "nbs"; nbs.mkdir()
    for name in ("05_models.unet.ipynb", "09_predictions.ipynb"): (nbs / name).write_text("{}")
    files = {f"nbs/{p.name}" for p in nbs.iterdir()}
    md = ("The base network (see `04_models.unet`) is in [the unet notebook](04_models.unet.ipynb); predictions in\n"
          "[08_predictions](08_predictions.ipynb#saving), see SPEC section 2 and the spec file SPEC.md, "
          "and tools/missing.py. ![fig](figs/none.png)\n")
    good = "See [05_models.unet](05_models.unet.ipynb), `09_predictions`, the `05_models.*` notebooks and https://x.org/a.md."
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": md}], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    (nbs / "broken.ipynb").write_text(json.dumps(nb))
    text = markdown_of(nbs / "broken.ipynb")
    links = broken_links(text, nbs, tmp_path, files)
    assert links == ["link (04_models.unet.ipynb)", "link (08_predictions.ipynb#saving)", "link (figs/none.png)"], links
    ment = missing_mentions(text, nbs, tmp_path, files)
    for needle in ("'SPEC'", "'SPEC.md'", "'tools/missing.py'", "'04_models.unet'", "'08_predictions.ipynb'"):
        assert any(needle in b for b in ment), (needle, ment)
    assert broken_links(good, nbs, tmp_path, files) == [] and missing_mentions(good, nbs, tmp_path, files) == []
    assert missing_citations("as the CS paper says") and not missing_citations("the CS paper (Beljaards et al.)")


# ---- the static HTML rendering (tools/build_html.py) ----

def _build_html():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_html", ROOT / "tools" / "build_html.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _nb(tmp: Path, rel: str, *cells):
    import nbformat
    from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell
    nb = new_notebook(cells=[new_markdown_cell(s[3:]) if s.startswith("md:") else new_code_cell(s) for s in cells])
    p = tmp / rel; p.parent.mkdir(parents=True, exist_ok=True); nbformat.write(nb, p)
    return p


def test_html_links_are_rewritten_and_checked(tmp_path):
    "A three-page course: .ipynb links (with anchors, across folders) become .html links that resolve; a dangling one fails."
    bh = _build_html()
    nbs = tmp_path / "nbs"
    _nb(nbs, "index.ipynb", "md:# Home\n\nStart at [core](00_core.ipynb#axis-order), then [the tutorial](tutorials/t.ipynb).")
    _nb(nbs, "00_core.ipynb", "md:# Core\n\n## Axis order\n\n![a figure](img/fig.png) [home](index.ipynb)",
        "#| export\nX = 1", "#| hide\nSECRET_TEST_CELL = 2", "print(X)")
    (nbs / "img").mkdir(); (nbs / "img" / "fig.png").write_bytes(b"\x89PNG fake")
    _nb(nbs, "tutorials/t.ipynb", "md:# Tutorial\n\nBack to [core](../00_core.ipynb), see https://example.org/x.ipynb.")
    out = tmp_path / "site"
    pages = bh.build(out, nbs, quiet=True)
    assert sorted(p.relative_to(out).as_posix() for p in pages) == ["00_core.html", "index.html", "tutorials/t.html"]
    home, core, tut = ((out / r).read_text() for r in ("index.html", "00_core.html", "tutorials/t.html"))
    assert 'href="00_core.html#axis-order"' in home and 'href="tutorials/t.html"' in home
    assert 'href="../00_core.html"' in tut and 'href="../index.html"' in tut and "https://example.org/x.ipynb" in tut
    assert ".ipynb\"" not in home + core.replace("x.ipynb", "")
    text = html.unescape(re.sub(r"<[^>]+>", "", core))
    assert "SECRET_TEST_CELL" not in text and "#| export" not in text and "X = 1" in text and "print(X)" in text
    assert (out / "img" / "fig.png").exists() and bh.check_links(out) == []
    # navigation at the top and the bottom; the index lists every page in reading order; MathJax from the built folder
    for page in (home, core, tut):
        assert page.count('class="jrs-nav jrs-nav-top"') == 1 and page.count('class="jrs-nav jrs-nav-bottom"') == 1
    assert 'previous: Core</a>' in tut and 'next: Tutorial</a>' in core and 'previous: Home</a>' in core
    toc = home.split('id="course-pages"')[1]
    assert toc.index('href="00_core.html"') < toc.index('href="tutorials/t.html"')
    assert '<script src="mathjax/MathJax.js?config=' in home and '<script src="../mathjax/MathJax.js?config=' in tut
    assert (out / "mathjax" / "MathJax.js").is_file() and "cdnjs.cloudflare.com/ajax/libs/mathjax" not in home + tut
    # a dangling link: the build fails, names it, and leaves the previous rendering as it was
    _nb(nbs, "tutorials/t.ipynb", "md:# Tutorial\n\nSee [the old notebook](../08_predictions.ipynb).")
    with pytest.raises(RuntimeError, match=r"tutorials/t.html: href=../08_predictions.html does not resolve"):
        bh.build(out, nbs, quiet=True)
    assert 'href="../00_core.html"' in (out / "tutorials" / "t.html").read_text()
    assert not (tmp_path / ".site.tmp").exists()


def test_html_execute_keeps_current_copies(tmp_path):
    "`--execute` runs a notebook once (`#| slow` cells skipped unless `--flags slow`); its page shows the figure; an edit makes the copy stale."
    bh = _build_html()
    nbs, cache, out = tmp_path / "nbs", tmp_path / "cache", tmp_path / "site"
    _nb(nbs, "index.ipynb", "md:# Home\n\nThe [lesson](tutorials/t.ipynb).")
    plot = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()"
    t = _nb(nbs, "tutorials/t.ipynb", "md:# Lesson\n\n$x^2$", plot, "#| slow\n" + plot)
    assert bh.cached(t, nbs, cache) is None
    bh.build(out, nbs, quiet=True, execute=True, cache=cache)
    copy = bh.cached(t, nbs, cache)
    assert copy is not None and bh.figures((out / "tutorials" / "t.html").read_text()) == 1
    assert bh.build(out, nbs, quiet=True, cache=cache) and bh.cached(t, nbs, cache) is not None
    assert bh.execute_all([nbs / "index.ipynb", t], nbs, cache, quiet=True) == []   # nothing left to run
    bh.build(out, nbs, quiet=True, execute=True, cache=cache, flags=("slow",))      # --flags slow: the slow figure too
    assert bh.figures((out / "tutorials" / "t.html").read_text()) == 2 and bh.cached(t, nbs, cache, flags=("slow",))
    _nb(nbs, "tutorials/t.ipynb", "md:# Lesson, edited", plot)
    assert bh.cached(t, nbs, cache) is None
    bh.build(out, nbs, quiet=True, cache=cache)   # no execution: the stored outputs (none)
    assert bh.figures((out / "tutorials" / "t.html").read_text()) == 0


@pytest.mark.slow
def test_html_course_builds(tmp_path):
    "The whole course renders with one command, one page per notebook, and every link between pages resolves."
    out = tmp_path / "html"
    r = subprocess.run([sys.executable, "tools/build_html.py", "--out", str(out), "-q"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    nbs = [p for p in course_pages() if p.suffix == ".ipynb"]
    for p in nbs: assert (out / p.relative_to(ROOT / "nbs")).with_suffix(".html").is_file(), p
    assert _build_html().check_links(out) == []
    home = (out / "index.html").read_text()
    assert 'href="00_core.html"' in home and "Course index" in home
    # the index links every page, in reading order, and every page has previous / next at its top and bottom
    order = [_build_html().html_name(p).as_posix() for p in _build_html().course_notebooks()]
    toc = re.findall(r'<li><a href="([^"]+)"', home.split('id="course-pages"')[1])
    assert toc == order[1:], (toc, order)
    table = home.split("The course, page by page")[0]
    for rel in order[1:]:
        if not rel.startswith("experiments/"): assert f'href="{rel}"' in table, f"the index text does not link {rel}"
    for k, rel in enumerate(order):
        page = (out / rel).read_text()
        for where in ("top", "bottom"):
            bar = page.split(f'class="jrs-nav jrs-nav-{where}"')[1].split("</nav>")[0]
            assert (k == 0 or "previous: " in bar) and (k == len(order) - 1 or "next: " in bar), (rel, where)


def test_index_numbers_are_the_shipped_ones():
    "The DSC table of 'Why joint should help' (index.ipynb) is the mean of the shipped networks' validation.json."
    import statistics
    text = markdown_of(ROOT / "nbs" / "index.ipynb").split("## Why joint should help")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \|(.*)\|$", text, re.M))
    assert set(rows) == {"seg", "reg", "jrs_reg", "hard", "crossstitch"}, rows
    organs = ("prostate", "seminal_vesicles", "rectum", "bladder")
    for name, cells in rows.items():
        rec = json.loads((ROOT / "jrs_nb" / "weights" / name / "validation.json").read_text())["pairs"]
        for path, cell in zip(("seg", "reg"), cells.split("|")):
            pairs = [r for r in rec if r["path"] == path]
            want = " / ".join(f"{statistics.mean(r[o] for r in pairs):.2f}" for o in organs) if pairs else ""
            assert cell.strip() == want, (name, path, cell.strip(), want)


def _shipped_mean(name: str, path: str) -> str:
    "'0.88 / 0.58 / 0.88 / 0.94': a shipped network's mean validation DSC per organ for one output path."
    import statistics
    rec = json.loads((ROOT / "jrs_nb" / "weights" / name / "validation.json").read_text())["pairs"]
    pairs = [r for r in rec if r["path"] == path]
    return " / ".join(f"{statistics.mean(r[o] for r in pairs):.2f}" for o in ("prostate", "seminal_vesicles", "rectum", "bladder"))


def test_index_prose_numbers_are_the_shipped_ones():
    "The prose of index.ipynb quotes the shipped networks' validation DSC and iterations as their records have them."
    text = " ".join(markdown_of(ROOT / "nbs" / "index.ipynb").split())
    learned = text.split("What they learned")[1].split("for the unwarped planning contours")[0]
    seg_part, reg_part = learned.split("segmentation paths ")[1].split("; registration paths ")
    names = {"seg": "seg", "reg": "reg", "jrs_reg": "jrs_reg", "hard": "hard", "cross-stitch": "crossstitch"}
    for part, path, want in ((seg_part, "seg", {"seg", "hard", "crossstitch"}),
                             (reg_part, "reg", {"reg", "jrs_reg", "hard", "crossstitch"})):
        quoted = {names[n]: v for n, v in re.findall(r"(jrs_reg|cross-stitch|hard|seg|reg) (\d\.\d\d(?: / \d\.\d\d){3})", part)}
        assert set(quoted) == want, (path, quoted)
        for name, value in quoted.items(): assert value == _shipped_mean(name, path), (name, path, value)
    it = {n: json.loads((ROOT / "jrs_nb" / "weights" / n / "validation.json").read_text())["iterations"]
          for n in ("seg", "reg", "jrs_reg", "hard", "crossstitch")}
    assert it["jrs_reg"] == it["crossstitch"], it
    sentence = (f"`seg` {it['seg']} and `reg` {it['reg']} iterations from scratch, then `jrs_reg` and `crossstitch` "
                f"{it['jrs_reg']} and `hard` {it['hard']} iterations")
    assert sentence in text, sentence
    lo, hi = min(it.values()), max(it.values())
    assert f"{lo}-{hi} CPU iterations each" in text, (lo, hi)


def test_index_presets_and_cohort_are_the_code_ones():
    "The index's training presets (iterations) and validation-pair count are those of the code and the shipped record."
    from jrs_nb.train import PRESETS
    text = " ".join(markdown_of(ROOT / "nbs" / "index.ipynb").split())
    assert f"`demo` ({PRESETS['demo']['iterations']} iterations" in text
    rec = json.loads((ROOT / "jrs_nb" / "weights" / "crossstitch" / "validation.json").read_text())
    cfg = rec["cohort"]["generator"]["config"]
    n_val = cfg["n_val"] * cfg["daily_a"][1]
    assert cfg["daily_a"][0] == cfg["daily_a"][1] and n_val == len({r["pair"] for r in rec["pairs"]}), (cfg, n_val)
    assert f"DSC, {n_val} validation pairs" in text and f"DSC over the {n_val} validation pairs" in text
