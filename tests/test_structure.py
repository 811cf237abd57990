"""The package's shape (issue 13): every module sits in one layer of `jrs_nb.core.MODULE_LAYERS` and imports only
from its own or lower layers (top-level and function-level imports, relative and absolute), no import cycle, no module
over 500 lines, no function over 60 lines."""
import ast, importlib.util
from pathlib import Path

import pytest

from jrs_nb.core import MODULE_LAYERS

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("structure", ROOT / "tools" / "structure.py")
structure = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(structure)

MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 60


def short(mod:str) -> str:
    "'jrs_nb.data.io' -> 'data.io'; the package itself ('jrs_nb', its __init__) -> '__init__'."
    return "__init__" if mod == "jrs_nb" else mod.removeprefix("jrs_nb.")


def imports_of(name:str, path:Path) -> set[str]:
    "The jrs_nb modules `name` imports anywhere in its file (short names, as in MODULE_LAYERS)."
    mods = structure.modules()
    pkg = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import): targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(pkg[:len(pkg) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]   # `from jrs_nb.data import io` names a module
        else: continue
        for t in targets:
            if t == "jrs_nb" or t in mods: out.add(short(t))
    return out - {short(name)}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {short(n): imports_of(n, f) for n, f in structure.modules().items()}


def layer_of() -> dict[str, int]:
    return {m: i for i, layer in enumerate(MODULE_LAYERS) for m in layer}


def test_every_module_is_in_the_layer_table(graph):
    missing = sorted(set(graph) - set(layer_of()))
    assert not missing, f"modules missing from jrs_nb.core.MODULE_LAYERS (add each to its layer): {missing}"
    stale = sorted(set(layer_of()) - set(graph))
    assert not stale, f"MODULE_LAYERS names modules that do not exist: {stale}"


def test_no_upward_import(graph):
    lay = layer_of()
    bad = [f"{m} (layer {lay[m]}) imports {t} (layer {lay[t]})" for m, ts in graph.items() for t in sorted(ts)
           if m in lay and t in lay and lay[t] > lay[m]]
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)


def test_no_import_cycle(graph):
    state, stack, cycles = {}, [], []
    def visit(m):
        state[m] = "open"; stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open": cycles.append(stack[stack.index(t):] + [t])
            elif t not in state: visit(t)
        stack.pop(); state[m] = "done"
    for m in sorted(graph):
        if m not in state: visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_module_sizes():
    big = {short(n): len(f.read_text().splitlines()) for n, f in structure.modules().items()}
    big = {m: n for m, n in big.items() if n > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_function_lengths():
    long = [f"{m}.{fn}: {n} lines" for m, fn, n in structure.long_functions(MAX_FUNCTION_LINES)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


_cs = importlib.util.spec_from_file_location("cell_stats", ROOT / "tools" / "cell_stats.py")
cell_stats = importlib.util.module_from_spec(_cs); _cs.loader.exec_module(cell_stats)


def test_export_cells_are_readable():
    "Issue 24: every export cell under 40 lines, no line over 100 characters, no `;`-joined statements, and a check."
    bad = []
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells = cell_stats.notebook_cells(nb)
        bad += [f"{nb.name}: an export cell of {c['lines']} lines" for c in cells if c["lines"] >= cell_stats.BIG]
        bad += [f"{nb.name}: {c['long']} lines over {cell_stats.LONG} characters" for c in cells if c["long"]]
        bad += [f"{nb.name}: {c['joined']} ;-joined lines" for c in cells if c["joined"]]
        if unchecked := sum(not c["checked"] for c in cells):
            bad.append(f"{nb.name}: {unchecked} export cells without a check under them")
    assert not bad, "\n".join(bad)
