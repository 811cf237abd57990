"""Copy the papermill experiment notebooks (nbs/experiments, the source) into the package (jrs_nb/experiments), so that
a non-editable install (`pip install .`, a wheel) can run `jrs-nb reproduce`. CI runs it and fails on a diff.

    python tools/sync_experiments.py          # copy
    python tools/sync_experiments.py --check  # exit 1 when a copy differs from its source
"""
import shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC, DST = ROOT / "nbs" / "experiments", ROOT / "jrs_nb" / "experiments"
NAMES = ("train.ipynb", "evaluate.ipynb", "report.ipynb")


def stale() -> list[str]:
    return [n for n in NAMES if not (DST / n).exists() or (DST / n).read_bytes() != (SRC / n).read_bytes()]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bad = stale()
    if "--check" in argv:
        for n in bad: print(f"jrs_nb/experiments/{n} differs from nbs/experiments/{n}: run python tools/sync_experiments.py")
        return 1 if bad else 0
    DST.mkdir(exist_ok=True)
    for n in bad: shutil.copyfile(SRC / n, DST / n); print(f"copied nbs/experiments/{n} -> jrs_nb/experiments/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
