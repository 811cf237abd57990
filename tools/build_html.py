"""Build a static HTML rendering of the course: every notebook of nbs/ (tutorials and experiments included) as one
HTML page with its stored outputs, links between notebooks rewritten from `.ipynb` to `.html`, and a navigation bar
(course index, previous, next). A reader without Jupyter opens `_html/index.html`.

    python tools/build_html.py                 # -> _html/
    python tools/build_html.py --out site      # elsewhere

Notebooks are not executed (the stored outputs are shown); nbdev directives (`#| export`, ...) are stripped and
`#| hide` cells left out. After writing, every relative link and image of every page is checked: a dangling one
fails the build (exit 1, listing them) and the previous output folder is left as it was."""
from __future__ import annotations
import argparse, html, re, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
DIRECTIVE = re.compile(r"^\s*#\|\s*(\S+)")
URL_ATTR = re.compile(r"""(\b(?:href|src)=)(["'])(.*?)\2""", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/|//)", re.I)  # http:, data:, mailto:, in-page, absolute


def course_notebooks(nbs: Path = NBS) -> list[Path]:
    "The course in reading order: index, the numbered notebooks, then each subfolder (tutorials, experiments)."
    ok = lambda p: ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_")
    top = sorted(p for p in nbs.glob("*.ipynb") if ok(p))
    top = sorted(top, key=lambda p: p.name != "index.ipynb")
    subs = sorted(p for p in nbs.glob("*/**/*.ipynb") if ok(p))
    return top + sorted(subs, key=lambda p: (p.parent.name != "tutorials", str(p)))


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


def nav_bar(rel: Path, pages: list[tuple[Path, str]], k: int) -> str:
    "Links to the course index and the previous / next page, relative to page `rel`."
    up = "../" * (len(rel.parts) - 1)
    link = lambda j, label: (f'<a href="{up}{pages[j][0].as_posix()}">{label}: {html.escape(pages[j][1])}</a>'
                             if 0 <= j < len(pages) else "")
    items = [f'<a href="{up}index.html">Course index</a>', link(k - 1, "previous"), link(k + 1, "next")]
    return ('<nav class="jrs-nav" style="font:14px sans-serif;padding:8px 16px;border-bottom:1px solid #ccc;'
            'display:flex;gap:24px">' + "".join(i for i in items if i) + "</nav>")


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


def build(out: Path = ROOT / "_html", nbs: Path = NBS, notebooks: list[Path] | None = None, quiet: bool = False) -> list[Path]:
    "Render the course into `out`; returns the pages written. Raises RuntimeError (out untouched) on dangling links."
    import nbformat
    from nbconvert import HTMLExporter
    nbs, out = Path(nbs), Path(out)
    notebooks = course_notebooks(nbs) if notebooks is None else [Path(p) for p in notebooks]
    if not notebooks: raise RuntimeError(f"{nbs}: no notebooks to render")
    tmp = out.with_name(f".{out.name}.tmp"); shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    try:
        books = []
        for p in notebooks:
            try: nb = nbformat.read(p, as_version=4)
            except Exception as e: raise RuntimeError(f"{p}: not a readable notebook ({e})") from e
            books.append((p, prepare(nb)))
        pages = [(html_name(p, nbs), title_of(nb, p.stem)) for p, nb in books]
        exporter = HTMLExporter(template_name="lab")
        for k, (p, nb) in enumerate(books):
            rel, title = pages[k]
            nb.metadata["title"] = title
            body, _ = exporter.from_notebook_node(nb)
            body = rewrite_links(body)
            body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav_bar(rel, pages, k), body, count=1)
            dst = tmp / rel; dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(body, encoding="utf-8")
            _copy_assets(p, nb, nbs, tmp)
            if not quiet: print(f"  {rel}", flush=True)
        bad = check_links(tmp)
        if bad: raise RuntimeError(f"{len(bad)} dangling link(s) in the rendered course:\n  " + "\n  ".join(bad))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True); raise
    shutil.rmtree(out, ignore_errors=True); tmp.rename(out)
    return [out / r for r, _ in pages]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "_html"), help="output folder (replaced on success; default: _html)")
    ap.add_argument("--nbs", default=str(NBS), help="the notebooks folder (default: nbs)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    try: pages = build(Path(a.out), Path(a.nbs), quiet=a.quiet)
    except RuntimeError as e:
        print(f"build_html: {e}", file=sys.stderr); return 1
    print(f"{len(pages)} pages in {a.out} (open {Path(a.out) / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
