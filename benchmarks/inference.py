"""Whole-volume inference: time per volume against the tile size, the cost of the pipeline around the network, and
the network against elastix on the same pair.

    python benchmarks/inference.py [--shape 128 160 192] [--tiles 96 128 160 192 224] [--arch crossstitch]
                                   [--data DEMO_COHORT] [--threads 2] [--device cpu]

Prints three Markdown tables:
1. seconds per volume and microseconds per output voxel for paper-style fixed 96^3 tiles and for balanced tiles of
   each largest size (exact tiling, jrs_nb.inference), with the ratio to the paper-style time (goal: the default
   tile <= 0.7x); --shapes measures several volumes;
2. the pipeline around the network (padding, stitching, largest components, warping the planning labels and image,
   writing NIfTI) against the bare network passes on the same tiles (goal <= 1.2x);
3. with --data (a jrs_nb dataset, e.g. the demo cohort): per pair, network pipeline vs elastix B-spline (100 iterations).
"""
import argparse, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from jrs_nb.core import seed_everything
from jrs_nb.models.jrs import build_model
from jrs_nb.inference import predict_volume, infer_pair, tile_plan
from jrs_nb.predictions import write_prediction


def tile_table(net, f, m, ms, tiles, device, arch) -> dict:
    "Table 1 for one volume: paper-style fixed 96^3 tiles, then balanced tiles of each largest size."
    shape, nvox = f.shape, f.size
    print(f"\n### Exact tiling: {arch}, volume {shape} ({nvox / 1e6:.1f} M voxels), {torch.get_num_threads()} threads, {device}\n")
    print("| tiles | input tile sizes (z, y, x) | tiles | input voxels (M) | network s / volume | us / output voxel | vs fixed 96^3 |")
    print("|---|---|---|---|---|---|---|")
    times = {}
    for label, t, bal in [("96 fixed", 96, False)] + [(f"{t} balanced", t, True) for t in tiles]:
        plans = [tile_plan(n, t, bal) for n in shape]
        ntiles = int(np.prod([len(p[1]) for p in plans]))
        p = predict_volume(net, f, m, ms, tile=t, device=device, balance=bal)
        times[label if not bal else t] = p.seconds
        print(f"| {label} | {tuple(p_[0] for p_ in plans)} | {ntiles} | {ntiles * np.prod([p_[0] for p_ in plans]) / 1e6:.1f} | "
              f"{p.seconds:.1f} | {1e6 * p.seconds / nvox:.2f} | {p.seconds / times['96 fixed']:.2f} |", flush=True)
    best = min((k for k in times if k != "96 fixed"), key=times.get)
    print(f"\nfastest: balanced {best} ({times[best] / times['96 fixed']:.2f}x the time of fixed 96^3 tiles)")
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 160, 192], help="(z, y, x) of the synthetic volume")
    ap.add_argument("--shapes", default="", help="more volumes for table 1 only, e.g. '80x120x160,176x256x256'")
    ap.add_argument("--tiles", type=int, nargs="+", default=[96, 128, 160, 192, 224])
    ap.add_argument("--arch", default="crossstitch")
    ap.add_argument("--data", default=None, help="dataset root for the network-vs-elastix table")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    seed_everything(0)
    net = build_model(a.arch).eval()
    rs = np.random.default_rng(0)
    shapes = [tuple(a.shape)] + [tuple(int(v) for v in x.split("x")) for x in a.shapes.split(",") if x]
    for i, shape in enumerate(shapes):
        vols = [rs.uniform(-1, 1, shape).astype(np.float32), rs.uniform(-1, 1, shape).astype(np.float32),
                rs.integers(0, 5, shape).astype(np.uint8)]
        t = tile_table(net, *vols, a.tiles, a.device, a.arch)
        if i == 0: (f, m, ms), times = vols, t   # the pipeline table uses the first volume
    best = min((k for k in times if k != "96 fixed"), key=times.get)

    # 2. the pipeline around the network, on the best tile
    from jrs_nb.data.dataset import PairVolumes
    pv = PairVolumes(f, m, ms, ms, None, (1., 1., 1.), "bench", "s01", "s00", float(f.min()), float(m.min()))
    pred = infer_pair(net, pv, tile=best, device=a.device)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as td:
        write_prediction(td, "bench", "s01", (1., 1., 1.), seg=pred.seg, warped_labels=pred.warped_labels,
                         dvf=pred.dvf, warped_image=pred.warped_image)
    write = time.perf_counter() - t0
    total = pred.total_seconds + write
    print(f"\n### Pipeline around the network (tile {best})\n")
    print("| network passes s | + pad/stitch/components/warping s | + writing NIfTI s | total s | total / network |")
    print("|---|---|---|---|---|")
    print(f"| {pred.network_seconds:.1f} | {pred.total_seconds - pred.network_seconds:.1f} | {write:.1f} | {total:.1f} | "
          f"{total / pred.network_seconds:.2f} |")

    if a.data:
        from jrs_nb.data.dataset import JRSDataset
        from jrs_nb.baselines.elastix import elastix_register
        from jrs_nb.core import unit_to_hu
        ds = JRSDataset(a.data, "val", load_dvf=False)
        print(f"\n### Network vs elastix on the same pairs ({a.data}, val split)\n")
        print("| pair | shape | spacing | network pipeline s | elastix s | elastix / network |")
        print("|---|---|---|---|---|---|")
        for k in range(min(a.pairs, len(ds))):
            pv = ds[k]
            pr = infer_pair(net, pv, tile=best, device=a.device)
            el = elastix_register(unit_to_hu(pv.fixed), unit_to_hu(pv.moving), pv.spacing)
            print(f"| {pv.patient}/{pv.fixed_scan} | {pv.fixed.shape} | {pv.spacing} | {pr.total_seconds:.1f} | "
                  f"{el.seconds:.1f} | {el.seconds / pr.total_seconds:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
