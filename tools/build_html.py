"""Build a static HTML rendering of the course: every notebook of nbs/ (tutorials and experiments included) as one
HTML page with its outputs, links between notebooks rewritten from `.ipynb` to `.html`, a navigation bar (course
index, previous, next) at the top and the bottom of each page, a list of every page in reading order on the index
page, and MathJax served from the built folder (copied from the `jupyter-server-mathjax` package, so TeX renders
offline). A reader without Jupyter opens `_html/index.html`.

    python tools/build_html.py --execute       # the course with every figure: runs what is not run yet -> _html/
    python tools/build_html.py                 # only what is already executed (stored or cached outputs)
    python tools/build_html.py --out site      # elsewhere

Executed notebooks live in `_executed/` (a mirror of nbs/, git-ignored), each keyed by the hash of its notebook and
of the package code (`jrs_nb/**/*.py`, the shipped weights): a page shows its executed copy when that key still
matches, otherwise the notebook's stored outputs. `--execute` first runs every notebook without a current copy,
`--jobs` at a time, exactly as `nbdev-test` runs it (nbdev's `test_nb`: the same skipped `#| slow` / `#| cuda`
cells, cell timeout and working folder), and fails when one fails; `--flags slow` runs the slow cells too (their
figures; minutes more: they generate a cohort and train a small network). `python tools/build_html.py --run NB` executes
one notebook into the cache: `tests/test_notebooks.py` runs every notebook that way, so after the test suite
the build needs no execution. The experiment notebooks (`nbs/experiments/`, the papermill templates that
`jrs-nb reproduce` fills in and runs: they train networks) are never executed here.

nbdev directives (`#| export`, ...) are stripped and `#| hide` cells left out. After writing, every relative link
and image of every page is checked: a dangling one fails the build (exit 1, listing them) and the previous output
folder is left as it was."""
from __future__ import annotations
import argparse, hashlib, html, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CACHE = ROOT / "_executed"   # executed copies of the notebooks (git-ignored)
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
DIRECTIVE = re.compile(r"^\s*#\|\s*(\S+)")
URL_ATTR = re.compile(r"""(\b(?:href|src)=)(["'])(.*?)\2""", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/|//)", re.I)  # http:, data:, mailto:, in-page, absolute


def course_notebooks(nbs: Path = NBS) -> list[Path]:
    "The course in reading order: index, glossary, the numbered notebooks, then each subfolder (tutorials, experiments)."
    ok = lambda p: ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_")
    first = {"index.ipynb": 0, "glossary.ipynb": 1}
    top = sorted((p for p in nbs.glob("*.ipynb") if ok(p)), key=lambda p: (first.get(p.name, 2), p.name))
    subs = sorted(p for p in nbs.glob("*/**/*.ipynb") if ok(p))
    return top + sorted(subs, key=lambda p: (p.parent.name != "tutorials", str(p)))


# ---- executed copies (the cache) ----

def code_key(root: Path = ROOT) -> str:
    "Hash of what a notebook's outputs depend on besides the notebook: the package code and the shipped weights."
    h, pkg = hashlib.sha256(), root / "jrs_nb"
    files = [f for f in sorted(pkg.rglob("*")) if f.is_file() and "__pycache__" not in f.parts
             and (f.suffix == ".py" or "weights" in f.relative_to(pkg).parts)]
    for f in files: h.update(f.relative_to(root).as_posix().encode()); h.update(f.read_bytes())
    return h.hexdigest()[:16]


def exec_key(nb_path: Path, code: str | None = None, flags: tuple = ()) -> str:
    "The key an executed copy of `nb_path` must carry to be current: the notebook's hash, `code_key()`, the flags run."
    key = hashlib.sha256(Path(nb_path).read_bytes()).hexdigest()[:16] + "-" + (code or code_key())
    return key + "".join(f"+{f}" for f in sorted(flags))


def runnable(nb_path: Path, nbs: Path = NBS) -> bool:
    "Whether `--execute` runs a notebook: it has code cells and is not an experiment template (those train networks)."
    if "experiments" in Path(nb_path).relative_to(nbs).parts: return False
    return any(c["cell_type"] == "code" for c in json.loads(Path(nb_path).read_text(encoding="utf-8"))["cells"])


def cached(nb_path: Path, nbs: Path = NBS, cache: Path = CACHE, code: str | None = None, flags: tuple = ()):
    "The current executed copy of a notebook (an nbformat node), or None when there is none or it is stale."
    import nbformat
    c = Path(cache) / Path(nb_path).relative_to(nbs)
    if not c.is_file(): return None
    nb = nbformat.read(c, as_version=4)
    return nb if nb.metadata.get("jrs_executed", {}).get("key") == exec_key(nb_path, code, flags) else None


def execute(nb_path: Path, nbs: Path = NBS, cache: Path = CACHE, flags: tuple = ()) -> tuple[bool, float]:
    """Run a notebook as `nbdev-test` does (nbdev's `test_nb` with the project's skip flags, cell timeout and base
    path; `flags` as `nbdev-test --flags`, e.g. ("slow",)) and, when it succeeds, write it with its outputs to
    `cache` (same relative path as under `nbs`)."""
    import nbdev.test as T
    from fastcore.nbio import write_nb
    from nbdev.config import get_config
    nb_path = Path(nb_path).resolve()
    cfg, key = get_config(ROOT), exec_key(nb_path, flags=flags)   # the project's flags, also for a notebook elsewhere
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    got, real = {}, T.write_nb
    T.write_nb = lambda nb, fn: got.setdefault("nb", nb)   # test_nb(save=True) hands over the executed notebook
    try: ok, secs = T.test_nb(nb_path, skip_flags=skip, force_flags=list(flags), basepath=cfg.config_path, save=True,
                              cell_timeout=cfg.cell_timeout or None)
    finally: T.write_nb = real
    if ok and "nb" in got:
        nb = got["nb"]
        for c in nb["cells"]: c.get("metadata", {}).pop("execution", None)  # execnb's timings: not nbformat
        nb["metadata"]["jrs_executed"] = {"key": key, "seconds": round(secs, 1), "skipped_flags": sorted(set(skip) - set(flags))}
        dst = Path(cache) / nb_path.relative_to(Path(nbs).resolve())
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        write_nb(nb, tmp); tmp.replace(dst)
    return ok, secs


def execute_all(notebooks: list[Path], nbs: Path = NBS, cache: Path = CACHE, jobs: int = 1, quiet: bool = False,
                flags: tuple = ()):
    "Execute (in fresh processes, `jobs` at a time) every notebook that has no current copy; RuntimeError if one fails."
    code = code_key()
    todo = [p for p in notebooks if runnable(p, nbs) and cached(p, nbs, cache, code, flags) is None]
    def run(p):
        t = time.time()
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run", str(Path(p).resolve()),
                            "--nbs", str(Path(nbs).resolve()), "--cache", str(Path(cache).resolve()),
                            "--flags", " ".join(flags)],
                           cwd=ROOT, capture_output=True, text=True)
        if not quiet: print(f"  executed {p.relative_to(nbs)} ({time.time() - t:.0f} s)"
                            + ("" if r.returncode == 0 else " FAILED"), flush=True)
        return p, r
    with ThreadPoolExecutor(max(1, jobs)) as ex: results = list(ex.map(run, todo))
    bad = [(p, r) for p, r in results if r.returncode != 0]
    if bad: raise RuntimeError(f"{len(bad)} notebook(s) failed to execute:\n" + "\n".join(
        f"--- {p.relative_to(nbs)}\n{(r.stdout + r.stderr)[-3000:]}" for p, r in bad))
    return [p for p, _ in results]


def html_name(nb: Path, nbs: Path = NBS) -> Path:
    "Where a notebook's page goes, relative to the output folder."
    return nb.relative_to(nbs).with_suffix(".html")


def _directives(src: str) -> set[str]:
    return {m.group(1) for line in src.splitlines() if (m := DIRECTIVE.match(line))}


def prepare(nb):
    "Drop `#| hide` cells and nbdev directive lines; drop code cells left empty."
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            d = _directives(c.source)
            if "hide" in d or "exporti" in d: continue
            c.source = "\n".join(l for l in c.source.splitlines() if not DIRECTIVE.match(l)).strip("\n")
            if not c.source.strip() and not c.get("outputs"): continue
        cells.append(c)
    nb.cells = cells
    return nb


def title_of(nb, default: str) -> str:
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.M)
            if m: return m.group(1).strip()
    return default


def rewrite_links(page: str) -> str:
    "Relative links to notebooks (`x.ipynb`, `../x.ipynb#a`) point to their pages (`x.html`, `../x.html#a`)."
    def fix(m):
        url = html.unescape(m.group(3))
        if EXTERNAL.match(url): return m.group(0)
        path, sep, frag = url.partition("#")
        if path.endswith(".ipynb"): url = path[:-len(".ipynb")] + ".html" + sep + frag
        return f"{m.group(1)}{m.group(2)}{html.escape(url, quote=True)}{m.group(2)}"
    return URL_ATTR.sub(fix, page)


def nav_bar(rel: Path, pages: list[tuple[Path, str]], k: int, where: str = "top") -> str:
    "Links to the course index, its list of pages and the previous / next page, relative to page `rel`."
    up = "../" * (len(rel.parts) - 1)
    link = lambda j, label: (f'<a href="{up}{pages[j][0].as_posix()}">{label}: {html.escape(pages[j][1])}</a>'
                             if 0 <= j < len(pages) else "")
    items = [f'<a href="{up}index.html">Course index</a>', f'<a href="{up}index.html#course-pages">All pages</a>',
             link(k - 1, "previous"), link(k + 1, "next")]
    line = "border-bottom" if where == "top" else "border-top"
    return (f'<nav class="jrs-nav jrs-nav-{where}" style="font:14px sans-serif;padding:8px 16px;{line}:1px solid #ccc;'
            'display:flex;flex-wrap:wrap;gap:24px">' + "".join(i for i in items if i) + "</nav>")


def contents(pages: list[tuple[Path, str]]) -> str:
    "The list of every page in reading order (it goes on the index page, whose links are relative to the root)."
    rows = "".join(f'<li><a href="{r.as_posix()}">{html.escape(t)}</a> <code>{html.escape(r.with_suffix("").as_posix())}'
                   f"</code></li>" for r, t in pages[1:])
    return ('<section id="course-pages" class="jrs-contents" style="font:15px sans-serif;padding:8px 32px">'
            "<h2>The course, page by page</h2><ol>" + rows + "</ol></section>")


def mathjax_dir() -> Path:
    "MathJax 2 as the `jupyter-server-mathjax` package ships it (a dev dependency), copied into every built course."
    try: import jupyter_server_mathjax
    except ImportError as e: raise RuntimeError("MathJax for offline math: pip install jupyter-server-mathjax") from e
    return Path(jupyter_server_mathjax.__file__).parent / "static"


# MathJax 2 reads `window.MathJax` as its configuration; the package has the STIX-Web fonts only
MATHJAX_FONTS = ('<script>window.MathJax = {"HTML-CSS": {availableFonts: [], preferredFont: null, '
                 'webFont: "STIX-Web", imageFont: null}, SVG: {font: "STIX-Web"}};</script>')


def check_links(out: Path) -> list[str]:
    "Relative links and images of every page that do not resolve to a file under `out` (anchors not checked)."
    bad, root = [], out.resolve()
    for page in sorted(out.rglob("*.html")):
        for m in URL_ATTR.finditer(page.read_text(encoding="utf-8")):
            url = html.unescape(m.group(3))
            if EXTERNAL.match(url) or not url.partition("#")[0]: continue
            target = (page.parent / url.partition("#")[0].partition("?")[0]).resolve()
            if not (target.is_file() and target.is_relative_to(root)):
                bad.append(f"{page.relative_to(out)}: {m.group(1)}{url} does not resolve")
    return bad


def _copy_assets(nb_path: Path, nb, nbs: Path, tmp: Path):
    "Copy files that markdown cells link or show (images, data files) next to the page, when they exist under nbs/."
    for c in nb.cells:
        if c.cell_type != "markdown": continue
        for m in re.finditer(r"\]\(\s*<?([^)\s>]+)", c.source):
            url = m.group(1).partition("#")[0]
            if not url or EXTERNAL.match(url) or url.endswith(".ipynb"): continue
            src = (nb_path.parent / url).resolve()
            if src.is_file() and src.is_relative_to(nbs.resolve()):
                dst = tmp / src.relative_to(nbs.resolve()); dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


def render(nb, pages: list[tuple[Path, str]], k: int, exporter=None) -> str:
    """Page `k` of a course (`pages`: (path relative to the output folder, title) in reading order) from its prepared
    notebook: nbconvert's lab template, links to .html, MathJax from the built folder, navigation at the top and the
    bottom, and on the index page (k = 0) the list of all pages."""
    if exporter is None:
        from nbconvert import HTMLExporter
        exporter = HTMLExporter(template_name="lab")
    rel, title = pages[k]
    up = "../" * (len(rel.parts) - 1)
    nb.metadata["title"] = title
    exporter.mathjax_url = f"{up}mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    body, _ = exporter.from_notebook_node(nb)
    body = rewrite_links(body)
    mj = f'<script src="{exporter.mathjax_url}">'
    body = body.replace(mj, MATHJAX_FONTS + mj, 1)
    tail = (contents(pages) if k == 0 else "") + nav_bar(rel, pages, k, "bottom")
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav_bar(rel, pages, k), body, count=1)
    return re.sub(r"(</body>)", lambda m: tail + m.group(1), body, count=1)


def build(out: Path = ROOT / "_html", nbs: Path = NBS, notebooks: list[Path] | None = None, quiet: bool = False,
          execute: bool = False, cache: Path | None = None, jobs: int = 1, flags: tuple = ()) -> list[Path]:
    """Render the course into `out`; returns the pages written. A page shows the notebook's current executed copy from
    `cache` (default: `_executed/` for the project's own nbs/) when there is one, else its stored outputs; `execute`
    first runs the notebooks that have none. Raises RuntimeError (out untouched) on dangling links or a failed run."""
    import nbformat
    from nbconvert import HTMLExporter
    nbs, out = Path(nbs), Path(out)
    if cache is None and nbs.resolve() == NBS.resolve(): cache = CACHE
    notebooks = course_notebooks(nbs) if notebooks is None else [Path(p) for p in notebooks]
    if not notebooks: raise RuntimeError(f"{nbs}: no notebooks to render")
    if execute:
        if cache is None: raise RuntimeError("execute needs a cache folder for the executed copies")
        execute_all(notebooks, nbs, cache, jobs, quiet, flags)
    mathjax = mathjax_dir()
    tmp = out.with_name(f".{out.name}.tmp"); shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    try:
        books, code = [], code_key()
        for p in notebooks:
            try: nb = (cache is not None and cached(p, nbs, cache, code, flags)) or nbformat.read(p, as_version=4)
            except Exception as e: raise RuntimeError(f"{p}: not a readable notebook ({e})") from e
            books.append((p, prepare(nb)))
        pages = [(html_name(p, nbs), title_of(nb, p.stem)) for p, nb in books]
        exporter = HTMLExporter(template_name="lab")
        for k, (p, nb) in enumerate(books):
            rel = pages[k][0]
            body = render(nb, pages, k, exporter)
            dst = tmp / rel; dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(body, encoding="utf-8")
            _copy_assets(p, nb, nbs, tmp)
            if not quiet: print(f"  {rel}  ({figures(body)} figures)", flush=True)
        shutil.copytree(mathjax, tmp / "mathjax")
        bad = check_links(tmp)
        if bad: raise RuntimeError(f"{len(bad)} dangling link(s) in the rendered course:\n  " + "\n  ".join(bad))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True); raise
    shutil.rmtree(out, ignore_errors=True); tmp.rename(out)
    return [out / r for r, _ in pages]


def figures(page: str) -> int:
    "The number of images (`<img>`) of a rendered page."
    return len(re.findall(r"<img\b", page, re.I))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "_html"), help="output folder (replaced on success; default: _html)")
    ap.add_argument("--nbs", default=str(NBS), help="the notebooks folder (default: nbs)")
    ap.add_argument("--cache", default=None, help="folder of the executed copies (default: _executed for nbs/)")
    ap.add_argument("--execute", action="store_true", help="first execute every notebook without a current copy")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks executed at once (default 1)")
    ap.add_argument("--flags", default="", help="space-separated flags of cells to run that nbdev-test skips "
                    "(as nbdev-test --flags; e.g. 'slow': the figures of the slow cells too, minutes more)")
    ap.add_argument("--run", metavar="NB", help="only execute notebook NB into the cache (as nbdev-test runs it)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    nbs, flags = Path(a.nbs), tuple(a.flags.split())
    cache = Path(a.cache) if a.cache else (CACHE if nbs.resolve() == NBS.resolve() else None)
    if a.run:
        if cache is None: ap.error("--run needs --cache for a notebooks folder other than nbs/")
        ok, secs = execute(Path(a.run), nbs, cache, flags)
        print(f"Success. ({secs:.0f} s)" if ok else f"{a.run} failed ({secs:.0f} s)")
        return 0 if ok else 1
    t = time.time()
    try: pages = build(Path(a.out), nbs, quiet=a.quiet, execute=a.execute, cache=cache, jobs=a.jobs, flags=flags)
    except RuntimeError as e:
        print(f"build_html: {e}", file=sys.stderr); return 1
    print(f"{len(pages)} pages in {a.out} (open {Path(a.out) / 'index.html'}), {time.time() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
