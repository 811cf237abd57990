"""The margins of the male-pelvis rules (jrs_nb.data.validate.pelvis_problems) on a cohort's contours.

    python benchmarks/pelvis.py --data DEMO_COHORT [--out benchmarks/results/pelvis_demo0.json]

For every labelled scan: each organ's volume, and for each rule of PELVIS_ORDER the distance in mm by which the
first organ's centre lies on the required side of the second's (positive: the rule holds), and each organ's centre
distance to the prostate's (at most PELVIS_NEAR_MM). Prints the range of each over the cohort and the scans that
break a rule; writes a JSON record (the ranges 01c_data.pelvis quotes).
"""
import argparse, json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from jrs_nb.core import LABELS, ORGANS
from jrs_nb.data.io import load_manifest, read_volume, LABELS_FILE
from jrs_nb.data.validate import PELVIS_ORDER, PELVIS_NEAR_MM, pelvis_problems


def measure(lab, sp, absent) -> dict:
    "One scan's rule margins (mm), centre distances to the prostate (mm) and volumes (cc)."
    vox, c, out = float(np.prod(sp)) / 1000., {}, {}
    for l in ORGANS:
        o = LABELS[l]
        if (lab == l).any() and o not in absent:
            c[o] = np.asarray(ndi.center_of_mass(lab == l)) * np.asarray(sp, float)
            out[f"{o}_cc"] = float((lab == l).sum() * vox)
    for a, b, ax, side in PELVIS_ORDER:
        if a in c and b in c: out[f"{a} {side} of {b}"] = float(c[a][ax] - c[b][ax])
    for o in c:
        if o != "prostate" and "prostate" in c:
            out[f"{o} to prostate"] = float(np.linalg.norm(c[o] - c["prostate"]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="benchmarks/results/pelvis_demo0.json")
    a = ap.parse_args(argv)
    m, rows, broken = load_manifest(a.data), [], []
    for pid, e in m.patients.items():
        for sid in e["scans"]:
            f = m.scan_dir(pid, sid) / LABELS_FILE
            if not f.exists(): continue
            lab, sp, _ = read_volume(f)
            rows.append(measure(lab, sp, m.absent(pid, sid)))
            if p := pelvis_problems(lab, sp, m.absent(pid, sid)): broken.append(f"{pid}/{sid}: {p}")
    keys = sorted({k for r in rows for k in r})
    rng = {k: [round(min(r[k] for r in rows if k in r), 1), round(max(r[k] for r in rows if k in r), 1)]
           for k in keys}
    for k, (lo, hi) in rng.items(): print(f"{k:40s} {lo:8.1f} .. {hi:8.1f}")
    print(f"{len(rows)} labelled scans, {len(broken)} break a rule (near: {PELVIS_NEAR_MM:g} mm)")
    for b in broken: print(" ", b)
    rec = {"data": str(a.data), "scans": len(rows), "broken": broken, "ranges": rng}
    Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    main()
