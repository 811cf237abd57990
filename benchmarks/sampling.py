"""Patch sampler throughput: patch pairs per second at n = 96 and 64 with 0 and 2 DataLoader workers.

    python benchmarks/sampling.py [--root DATASET] [--batches 20] [--swap]

Without --root, or with a --root that does not exist yet, it writes a toy dataset at a realistic size (1 mm,
160 x 224 x 288 voxels, 2 patients x (1 planning + 2 daily)) and reports its generation time per scan (a temporary
folder is removed afterwards, a named one kept). Per configuration it reports the cold start (a fresh loader whose
workers read the volumes themselves: time to the first batch) and the steady state (scans preloaded in the main
process and shared with the forked workers; pairs per second over --batches batches).
"""
import argparse, shutil, tempfile, time
from pathlib import Path

import torch

from jrs_nb.data.fixtures import make_toy_dataset
from jrs_nb.data.sampling import make_loader


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="existing dataset root (default: a toy dataset in a temporary folder)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--batches", type=int, default=20, help="timed batches per configuration (after the first)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--swap", action="store_true", help="also time swap=True (inverse DVF, doubled batch)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tmp = None
    if a.root is None or not Path(a.root).exists():
        if a.root is None: tmp = Path(tempfile.mkdtemp()); root = tmp / "toy"
        else: root = Path(a.root)
        t = time.perf_counter()
        m = make_toy_dataset(root, n_patients=2, n_daily=2, shape=(160, 224, 288), spacing=(1., 1., 1.), n_val=0)
        dt = time.perf_counter() - t; n_scans = sum(len(p["scans"]) for p in m.patients.values())
        size = sum(f.stat().st_size for f in root.rglob("*.nii.gz")) / 2**20
        print(f"toy dataset 160x224x288 @ 1 mm: {n_scans} scans in {dt:.1f} s ({dt / n_scans:.1f} s per scan), {size:.0f} MiB")
    else:
        root = Path(a.root)
    print(f"\n{'n':>4} {'workers':>7} {'swap':>5} {'cold first batch s':>18} {'pairs/s':>8} {'batches/s':>9}")
    for n in (96, 64):
        for workers in (0, 2):
            for swap in ((False, True) if a.swap else (False,)):
                length = a.batch_size * (a.batches + 1 + 2 * workers)
                kw = dict(n=n, batch_size=a.batch_size, seed=0, workers=workers, swap=swap, length=length, cache_size=16)
                t0 = time.perf_counter(); next(iter(make_loader(root, a.split, **kw))); cold = time.perf_counter() - t0
                dl = make_loader(root, a.split, preload=True, **kw)
                it = iter(dl); next(it); t1 = time.perf_counter()
                k = 0
                for k, _ in enumerate(it, 1):
                    if k == a.batches: break
                t2 = time.perf_counter()
                print(f"{n:>4} {workers:>7} {str(swap):>5} {cold:>18.2f} {k * a.batch_size / (t2 - t1):>8.1f} "
                      f"{k / (t2 - t1):>9.2f}", flush=True)
                del it, dl
    if tmp is not None: shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
