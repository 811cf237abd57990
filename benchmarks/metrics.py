"""Speed of jrs_nb.metrics.evaluate_labels against MONAI's metrics on a 256 x 256 x 160 pair (DSC + MSD + 95 %HD,
4 organs, anisotropic spacing). Prints a table with both times, the ratio and the largest value difference.

    python benchmarks/metrics.py [--repeats 5] [--threads 1]

MONAI gets its inputs one-hot encoded (B=1, C=5) *outside* the timed region (its most favourable setting; the
one-hot time is printed separately) and `include_background=False`; our timing starts from the two label maps.
Each timing is the best of `--repeats` runs."""
import argparse, time, warnings

import numpy as np
import torch

from jrs_nb.core import LABELS, ORGANS
from jrs_nb.metrics import evaluate_labels
from jrs_nb.data.fixtures import toy_labels


def best_of(f, n):
    ts, out = [], None
    for _ in range(n):
        t = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t)
    return min(ts), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (MONAI); ours is single-threaded")
    ap.add_argument("--shape", type=int, nargs=3, default=(160, 256, 256), help="(D, H, W)")
    ap.add_argument("--spacing", type=float, nargs=3, default=(1.5, 0.9, 0.9), help="(z, y, x) mm")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from monai.metrics import compute_dice, compute_average_surface_distance, compute_hausdorff_distance
    shape, sp = tuple(a.shape), tuple(a.spacing)
    gt, pred = toy_labels(shape, sp, seed=0), toy_labels(shape, sp, seed=1)
    print(f"pair {shape} spacing {sp} mm, organ voxels (gt): "
          + ", ".join(f"{LABELS[k]} {(gt == k).sum()}" for k in ORGANS))

    t_ours, ours = best_of(lambda: evaluate_labels(pred, gt, sp), a.repeats)

    def onehot():
        oh = lambda l: torch.nn.functional.one_hot(torch.from_numpy(l.astype(np.int64)), 5).permute(3, 0, 1, 2)[None].float()
        return oh(pred), oh(gt)
    t_oh, (P, G) = best_of(onehot, a.repeats)

    def monai():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (compute_dice(P, G, include_background=False)[0].numpy(),
                    compute_average_surface_distance(P, G, symmetric=True, spacing=sp)[0].numpy(),
                    compute_hausdorff_distance(P, G, percentile=95, spacing=sp)[0].numpy())
    t_monai, (md, ma, mh) = best_of(monai, a.repeats)

    diff = {"dsc": 0., "msd": 0., "hd95": 0.}
    print(f"\n{'organ':18s} {'DSC':>8s} {'MSD mm':>8s} {'95HD mm':>8s}   |diff| vs MONAI (dsc, msd, hd95)")
    for i, k in enumerate(ORGANS):
        o = ours[LABELS[k]]
        d = (abs(o["dsc"] - float(md[i])), abs(o["msd"] - float(ma[i])), abs(o["hd95"] - float(mh[i])))
        for m, v in zip(diff, d): diff[m] = max(diff[m], v)
        print(f"{LABELS[k]:18s} {o['dsc']:8.4f} {o['msd']:8.4f} {o['hd95']:8.4f}   {d[0]:.1e} {d[1]:.1e} {d[2]:.1e}")
    print(f"\n| what | jrs_nb (s) | MONAI (s) | MONAI / jrs_nb | max abs diff |")
    print(f"|---|---|---|---|---|")
    print(f"| DSC+MSD+95HD, 4 organs, from label maps / one-hot | {t_ours:.3f} | {t_monai:.3f} | "
          f"{t_monai / t_ours:.1f}x | dsc {diff['dsc']:.1e}, msd {diff['msd']:.1e} mm, hd95 {diff['hd95']:.1e} mm |")
    print(f"| same, MONAI incl. one-hot encoding | {t_ours:.3f} | {t_monai + t_oh:.3f} | "
          f"{(t_monai + t_oh) / t_ours:.1f}x | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
