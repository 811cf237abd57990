"""Size and shape of the package: module line counts, functions over a limit, exported cells over a limit.

    python tools/structure.py            # table of modules, then functions > 60 lines and exported cells >= 60 lines
"""
from __future__ import annotations
import ast, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG, NBS = ROOT / "jrs_nb", ROOT / "nbs"


def modules() -> dict[str, Path]:
    "Module name -> file, generated `_modidx.py` and empty `__init__.py` aside."
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "_modidx.py" or (f.name == "__init__.py" and not f.read_text().strip()): continue
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def long_functions(limit:int=60) -> list[tuple[str, str, int]]:
    "(module, function, lines) for every function or method longer than `limit` lines."
    out = []
    for name, f in modules().items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit: out.append((name, node.name, n))
    return out


def long_cells(limit:int=60) -> list[tuple[str, int, int]]:
    "(notebook, cell index, lines) for exported cells of `limit` lines or more."
    out = []
    for nb in sorted(NBS.rglob("*.ipynb")):
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(c["source"])
            if c["cell_type"] == "code" and src.lstrip().startswith("#| export"):
                n = len(src.splitlines())
                if n >= limit: out.append((str(nb.relative_to(ROOT)), i, n))
    return out


if __name__ == "__main__":
    mods = modules()
    for name, f in mods.items(): print(f"{len(f.read_text().splitlines()):5d}  {name}")
    print(f"{sum(len(f.read_text().splitlines()) for f in mods.values()):5d}  total ({len(mods)} modules)\n")
    for m, fn, n in long_functions(): print(f"function {m}.{fn}: {n} lines")
    for nb, i, n in long_cells(): print(f"exported cell {nb}[{i}]: {n} lines")
    sys.exit(0)
