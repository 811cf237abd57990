"""Write README.md from nbs/index.ipynb (nbdev_readme needs quarto, which is not available offline).

Markdown cells are copied as they are, except that relative links to notebooks (`tutorials/x.ipynb`, written
relative to nbs/ where index.ipynb lives) get the `nbs/` prefix so that they resolve from the repository root; code
cells (if any) become python blocks. `python tools/build_readme.py --check`
exits 1 when README.md is out of date."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def relink(md:str) -> str:
    "Relative notebook links of index.ipynb (relative to nbs/) made relative to the repository root."
    return re.sub(r"\]\((?![a-z]+:|#|/)([^)\s]+\.ipynb(?:#[^)\s]*)?)\)", r"](nbs/\1)", md)


def render() -> str:
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    parts = ["<!-- generated from nbs/index.ipynb by tools/build_readme.py: edit the notebook, not this file -->"]
    for c in nb["cells"]:
        src = "".join(c["source"]).strip()
        if not src or src.startswith("#|"): continue
        parts.append(relink(src) if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    txt, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        ok = readme.exists() and readme.read_text() == txt
        print("README.md is up to date" if ok else "README.md is out of date: run python tools/build_readme.py")
        sys.exit(0 if ok else 1)
    readme.write_text(txt)
    print(f"wrote {readme}")
