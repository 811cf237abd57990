"""The README's main command, timed: `jrs-nb reproduce --preset demo` on this machine, its wall time, its peak memory
and the numbers its report quotes (mean MSD of every registration path and of the unwarped contours, per network).

    python benchmarks/demo.py [--out demo_run] [--record benchmarks/results/demo_reproduction.json]

Runs the command in a fresh process (as a user would, after installation), then reads the run's evaluation table.
Prints a Markdown table and writes the JSON record the README quotes (tests/test_records.py checks it). Exits
non-zero, writing no record, when the reproduction fails.
"""
import argparse, json, resource, subprocess, sys, time
from pathlib import Path

import pandas as pd

from jrs_nb.tables import to_markdown


def run(out:Path) -> tuple[int, float, float]:
    "(exit code, seconds, peak memory GB of the command and its children)."
    t0 = time.perf_counter()
    cmd = "import sys; from jrs_nb.cli import main; sys.exit(main())"
    rc = subprocess.call([sys.executable, "-c", cmd, "reproduce", "--preset", "demo", "--out", str(out)])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20   # kB -> GB (Linux)
    return rc, time.perf_counter() - t0, peak


def msd_table(out:Path) -> pd.DataFrame:
    "Mean MSD (mm) over organs and validation pairs of each method's registration path (and the unwarped row)."
    res = pd.read_csv(next(out.glob("evaluate*/results.csv")))
    val = res[(res["split"] == "val") & (res["path"].isin(["reg", "-"]))]
    return val.groupby(["method", "path"])["msd"].mean().round(3).to_frame("MSD mean mm")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo_run", help="the reproduction folder (removed first when it exists)")
    ap.add_argument("--record", default="benchmarks/results/demo_reproduction.json")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    rc, sec, peak = run(out)
    if rc != 0:
        print(f"demo: error: jrs-nb reproduce --preset demo exited {rc}; no record written", file=sys.stderr)
        return 1
    t = msd_table(out)
    rec = {"command": "jrs-nb reproduce --preset demo", "seconds": round(sec, 1), "peak_gb": round(peak, 2),
           "msd_val": {f"{m} {p}": v for (m, p), v in t["MSD mean mm"].items()}}
    Path(a.record).parent.mkdir(parents=True, exist_ok=True)
    Path(a.record).write_text(json.dumps(rec, indent=1) + "\n")
    print(f"jrs-nb reproduce --preset demo: {int(sec // 60)} min {sec % 60:.0f} s, peak {peak:.2f} GB\n")
    print(to_markdown(t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
