"""Export-cell statistics of the course's notebooks (issue 24, point 4): how long the exported cells are, how many
have a check right under them, and how readable their lines are.

    python tools/cell_stats.py            # totals over nbs/**/*.ipynb
    python tools/cell_stats.py --per-nb   # and one line per notebook

An export cell is a code cell with a `#| export` or `#| exports` directive. Its lines are the source lines other than
the `#|` directives. A cell "has a check" when the next code cell (markdown between them is allowed) is not an export
cell. A line is "long" when it has more than 100 characters, and "joined" when a `;` outside strings and comments
joins two statements on it."""
from __future__ import annotations
import argparse, io, json, statistics, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONG, BIG = 100, 40


def directives(src:str) -> set[str]:
    "The `#|` directive words of a cell ('export', 'hide', ...)."
    out = set()
    for ln in src.splitlines():
        s = ln.strip()
        if s.startswith("#|"): out.update(s[2:].split()[:1])
    return out


def is_export(cell:dict) -> bool:
    return cell["cell_type"] == "code" and bool(directives("".join(cell["source"])) & {"export", "exports"})


def joined_lines(src:str) -> set[int]:
    "Line numbers (1-based) on which a `;` operator token joins statements."
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return {i + 1 for i, ln in enumerate(src.splitlines()) if ";" in ln.split("#")[0]}
    return {t.start[0] for t in toks if t.type == tokenize.OP and t.string == ";"}


def notebook_cells(path:Path) -> list[dict]:
    "One record per export cell of a notebook: lines, long lines, joined lines, whether a check follows."
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    out = []
    for i, c in enumerate(code):
        if not is_export(c): continue
        src = "".join(c["source"])
        body = [ln for ln in src.splitlines() if not ln.strip().startswith("#|")]
        checked = i + 1 < len(code) and not is_export(code[i + 1])
        out.append({"lines": len(body), "long": sum(len(ln) > LONG for ln in body),
                    "joined": len(joined_lines(src)), "checked": checked})
    return out


def summary(cells:list[dict]) -> dict:
    n_lines = sum(c["lines"] for c in cells) or 1
    return {"export cells": len(cells),
            "median lines": statistics.median([c["lines"] for c in cells]) if cells else 0,
            f">= {BIG} lines": sum(c["lines"] >= BIG for c in cells),
            "without a check": sum(not c["checked"] for c in cells),
            f"lines > {LONG} chars": f"{100 * sum(c['long'] for c in cells) / n_lines:.1f} %",
            "lines with ;-joined statements": f"{100 * sum(c['joined'] for c in cells) / n_lines:.1f} %",
            "exported lines": sum(c["lines"] for c in cells)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-nb", action="store_true", help="one line per notebook as well")
    p.add_argument("--nbs", default=str(ROOT / "nbs"), help="the notebook folder")
    a = p.parse_args(argv)
    every = []
    for f in sorted(Path(a.nbs).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in f.parts: continue
        cells = notebook_cells(f)
        every += cells
        if a.per_nb and cells:
            s = summary(cells)
            print(f"{str(f.relative_to(a.nbs)):40s} " + ", ".join(f"{k} {v}" for k, v in s.items()))
    for k, v in summary(every).items(): print(f"{k}: {v}")


if __name__ == "__main__": main()
