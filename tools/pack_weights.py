"""Ship the networks of a `cpu` reproduction inside the package (jrs_nb/weights/NAME).

    jrs-nb reproduce --preset cpu --out repro_cpu
    python tools/pack_weights.py repro_cpu

Each `repro_cpu/train_NAME` run is packed by `jrs_nb.pretrained.pack_run`: float16 weights, its config and logs, and
the whole-volume validation DSC of the float16 weights on the cohort it was trained on. Exits non-zero, writing
nothing, when a run is missing or unfinished."""
import argparse, sys, time
from pathlib import Path

from jrs_nb.core import JRSDataError
from jrs_nb.checkpoints import WEIGHTS_DIR
from jrs_nb.pretrained import pack_run

NAMES = ("seg", "reg", "jrs_reg", "hard", "crossstitch")

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reproduction", help="a finished `jrs-nb reproduce --preset cpu` folder")
    ap.add_argument("--names", nargs="+", default=list(NAMES))
    ap.add_argument("--dest", default=str(WEIGHTS_DIR))
    a = ap.parse_args(argv)
    root = Path(a.reproduction)
    runs = {n: root / f"train_{n}" for n in a.names}
    missing = [str(r) for r in runs.values() if not (r / "model.pt").exists()]
    if missing:
        print(f"pack_weights: error: no finished run (model.pt) in {', '.join(missing)}", file=sys.stderr); return 2
    for n, r in runs.items():
        t0 = time.time()
        try: rec = pack_run(r, Path(a.dest) / n)
        except (ValueError, JRSDataError) as e:
            print(f"pack_weights: error: {n}: {e}", file=sys.stderr); return 2
        size = (Path(a.dest) / n / "model.pt").stat().st_size / 2**20
        print(f"{n}: {rec['iterations']} iterations, {size:.2f} MiB, {len(rec['pairs'])} validation rows, {time.time() - t0:.0f} s")
    return 0

if __name__ == "__main__":
    sys.exit(main())
