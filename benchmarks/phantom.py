"""Synthetic cohort generation speed and size: `python benchmarks/phantom.py [--skip-paper]`.

Prints per-scan generation times (planning, daily) for the demo grid and for one paper-preset patient, the whole demo
cohort time (2 worker processes, as `jrs-nb phantom` does by default), disk sizes, the min Jacobian and the Dice of
the SimpleITK round trip, and the paper cohort size extrapolated from the measured per-scan sizes."""
import argparse, os, sys, tempfile, time
from pathlib import Path
import numpy as np
import SimpleITK as sitk

from jrs_nb import phantom as ph
from jrs_nb.anatomy import grid_origin
from jrs_nb.core import LABELS, ORGANS
from jrs_nb.data.io import write_volume, write_dvf, read_sitk, read_volume, LABELS_FILE, DVF_FILE

def per_scan(cfg, tmp, n_daily=2):
    t = time.time(); P = ph.make_patient(cfg, "A", 0, seed=0); tp = time.time() - t
    td, jac = [], []
    for k in range(1, n_daily + 1):
        t = time.time(); D = ph.make_daily(P, k, cfg); td.append(time.time() - t); jac.append(D.min_jacobian)
    org = grid_origin(cfg.shape, cfg.spacing); d = Path(tmp)
    t = time.time()
    write_volume(P.image, d / "i.nii.gz", cfg.spacing, org); write_volume(P.labels, d / "l.nii.gz", cfg.spacing, org)
    write_dvf(D.dvf, d / "d.nii.gz", cfg.spacing, org); tw = time.time() - t
    sz = {k: (d / f).stat().st_size for k, f in (("image", "i.nii.gz"), ("labels", "l.nii.gz"), ("dvf", "d.nii.gz"))}
    return tp, float(np.mean(td)), tw, sz, min(jac)

def dice_round_trip(m):
    out = {LABELS[k]: [] for k in ORGANS}
    for pid, p in m.patients.items():
        plan = read_sitk(m.scan_dir(pid, "s00") / LABELS_FILE)
        for sid in p["scans"][1:]:
            tx = sitk.DisplacementFieldTransform(sitk.Cast(read_sitk(m.scan_dir(pid, sid) / DVF_FILE), sitk.sitkVectorFloat64))
            w = sitk.GetArrayFromImage(sitk.Resample(plan, plan, tx, sitk.sitkNearestNeighbor, 0))
            daily, _, _ = read_volume(m.scan_dir(pid, sid) / LABELS_FILE)
            for k in ORGANS:
                a, b = w == k, daily == k; out[LABELS[k]].append(2 * (a & b).sum() / (a.sum() + b.sum()))
    return out

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--skip-paper", action="store_true"); a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        demo = ph.cohort_config("demo")
        tp, td, tw, sz, jac = per_scan(demo, tmp)
        rows.append(("demo", demo, tp, td, tw, sz, jac))
        if not a.skip_paper:
            paper = ph.cohort_config("paper")
            rows.append(("paper", paper, *per_scan(paper, tmp, n_daily=1)))
        t = time.time(); m = ph.generate_cohort(Path(tmp) / "demo", "demo", seed=0, workers=2); t_demo = time.time() - t
        demo_bytes = ph._disk_bytes(Path(tmp) / "demo")
        n_scans = sum(len(p["scans"]) for p in m.patients.values())
        dice = dice_round_trip(m)
    print(f"\n{'grid':<7}{'shape':>16}{'voxels':>12}{'planning s':>12}{'daily s':>9}{'write s':>9}"
          f"{'image MB':>10}{'labels MB':>10}{'dvf MB':>8}{'min J':>7}")
    for name, cfg, tp, td, tw, sz, jac in rows:
        print(f"{name:<7}{str(cfg.shape):>16}{np.prod(cfg.shape):>12,}{tp:>12.2f}{td:>9.2f}{tw:>9.2f}"
              f"{sz['image']/1e6:>10.2f}{sz['labels']/1e6:>10.3f}{sz['dvf']/1e6:>8.2f}{jac:>7.3f}")
    print(f"\ndemo cohort: {len(m.patients)} patients, {n_scans} scans, {len(m.pairs)} pairs in {t_demo:.1f} s "
          f"(2 worker processes, {os.cpu_count()} CPUs visible), {demo_bytes/2**20:.1f} MiB on disk, "
          f"min Jacobian {m.generator['min_jacobian']:.3f}")
    print("SimpleITK round-trip Dice (warped planning labels vs daily labels), min / mean over all daily scans:")
    for k, v in dice.items(): print(f"  {k:<18}{min(v):.4f} / {np.mean(v):.4f}")
    for name, cfg, tp, td, tw, sz, jac in rows:
        if name != "paper": continue
        P = ph.COHORT_PRESETS["paper"]; n_a = P.n_train + P.n_val
        n_plan = n_a + P.n_test; n_daily = n_a * np.mean(P.daily_a) + P.n_test * np.mean(P.daily_b)
        size = n_plan * (sz["image"] + sz["labels"]) + n_daily * (sz["image"] + sz["labels"] + sz["dvf"])
        secs = n_plan * tp + n_daily * td + (n_plan + n_daily) * tw
        print(f"paper cohort (EXTRAPOLATED from one patient): {n_plan} planning + {n_daily:.0f} daily scans, "
              f"~{size/2**30:.1f} GiB, ~{secs/60:.0f} min on one process")

if __name__ == "__main__":
    main()
