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

    python benchmarks/inference.py --flops [--threads 2]
    python benchmarks/inference.py --clinical [--clinical-shape 160 256 256] [--threads 2]

--flops: FLOPs per output voxel of each of the five networks (paper filters, counted on the convolutions of one
  208^3 tile), the seconds of that tile with and without the channels-last copy `predict_volume` makes on the CPU,
  the achieved GFLOP/s and its share of this CPU's FP32 peak (cores x clock x FLOP/cycle from /proc/cpuinfo: 2 FMA
  units of 8 lanes with AVX2, 16 with AVX-512; an estimate).
--clinical: the full-size cross-stitch network on a cropped 1 mm pelvis volume (default 160x256x256) through
  `infer_pair` in a child process: seconds and peak resident memory (goal <= 60 s and <= 3 GB on 2 cores).
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


def conv_flops(net, n:int) -> tuple[float, int]:
    "(FLOPs of the convolutions of one forward pass on an n^3 tile, high-resolution output voxels)."
    total = [0.]
    def hook(mod, inp, out):
        k = int(np.prod(mod.kernel_size)) * mod.in_channels // mod.groups
        total[0] += 2. * out.numel() * k
    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    x = torch.zeros(1, 1, n, n, n)
    with torch.inference_mode(): out = net(x, x, torch.zeros(1, 1, n, n, n, dtype=torch.long)).high
    for h in hs: h.remove()
    t = out.seg if out.seg is not None else out.dvf
    return total[0], int(np.prod(t.shape[2:]))


def cpu_peak_gflops(threads:int) -> tuple[float, str]:
    "Estimated FP32 peak of `threads` cores: cores x MHz x FLOP/cycle (2 FMA units x lanes x 2)."
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((l.split(":")[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    mhz = next((float(l.split(":")[1]) for l in info.splitlines() if l.startswith("cpu MHz")), float("nan"))
    lanes, isa = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    per_cycle = 2 * lanes * 2 if "fma" in flags or lanes == 16 else lanes * 2
    return threads * mhz / 1e3 * per_cycle, f"{threads} cores x {mhz / 1e3:.2f} GHz x {per_cycle} FLOP/cycle ({isa})"


def flops_table(threads:int, n:int=208, networks=None):
    from jrs_nb.models.jrs import NETWORKS
    from jrs_nb.inference import CROP
    peak, how = cpu_peak_gflops(threads)
    print(f"\n### FLOPs and achieved throughput: one {n}^3 tile, paper filters, {threads} threads; peak ~{peak:.0f} GFLOP/s ({how})\n")
    print("| network | GFLOP per tile | kFLOP per output voxel | s (NCDHW) | s (channels-last) | GFLOP/s (channels-last) | % of peak |")
    print("|---|---|---|---|---|---|---|")
    rs = np.random.default_rng(0)
    v = (n - 2 * CROP,) * 3   # the volume one n^3 tile covers (predict_volume pads by CROP)
    f, m = (rs.uniform(-1, 1, v).astype(np.float32) for _ in range(2)); ms = rs.integers(0, 5, v).astype(np.uint8)
    for name in networks or NETWORKS:
        net = build_model(name).eval()
        fl, vox = conv_flops(net, n)
        secs = {cl: min(predict_volume(net, f, m, ms, tile=n, device="cpu", channels_last=cl).seconds for _ in range(2))
                for cl in (False, True)}
        g = fl / secs[True] / 1e9
        print(f"| {name} | {fl / 1e9:.0f} | {fl / vox / 1e3:.0f} | {secs[False]:.1f} | {secs[True]:.1f} | {g:.1f} | {100 * g / peak:.0f} % |", flush=True)


CLINICAL = """
import resource, sys, time, numpy as np, torch
from jrs_nb.models.jrs import build_model
from jrs_nb.inference import infer_pair
from jrs_nb.data.dataset import PairVolumes
shape = tuple(int(v) for v in sys.argv[1:4]); torch.set_num_threads(int(sys.argv[4]) or torch.get_num_threads()); tile = int(sys.argv[5])
rs = np.random.default_rng(0)
f, m = (rs.uniform(-0.2, 0.2, shape).astype(np.float32) for _ in range(2)); lab = rs.integers(0, 5, shape).astype(np.uint8)
net = build_model("crossstitch", spacing=(1., 1., 1.)).eval()
pv = PairVolumes(f, m, lab, lab, None, (1., 1., 1.), "bench", "s01", "s00", float(f.min()), float(m.min()))
t = time.perf_counter(); p = infer_pair(net, pv, tile=tile); t = time.perf_counter() - t
print(t, p.network_seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def clinical_table(shape, threads:int, tiles=(208,)):
    import subprocess
    from jrs_nb.inference import DEFAULT_TILE
    print(f"\n### A cropped 1 mm pelvis: full-size cross-stitch network, {shape}, {threads or torch.get_num_threads()} threads\n")
    print("| volume | voxels (M) | largest tile | infer_pair s | network s | peak memory GiB | goal |")
    print("|---|---|---|---|---|---|---|")
    for tile in tiles: _clinical_row(shape, threads, tile)


def _clinical_row(shape, threads:int, tile:int):
    import subprocess
    r = subprocess.run([sys.executable, "-c", CLINICAL, *map(str, shape), str(threads), str(tile)], capture_output=True, text=True)
    if r.returncode: sys.exit(f"clinical benchmark failed:\n{r.stderr}")
    total, net_s, gib = (float(v) for v in r.stdout.split()[-3:])
    print(f"| {'x'.join(map(str, shape))} | {np.prod(shape) / 1e6:.1f} | {tile} | {total:.1f} | {net_s:.1f} | {gib:.2f} | "
          f"<= 60 s, <= 3 GB |", flush=True)


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
    ap.add_argument("--flops", action="store_true", help="only the FLOPs / throughput table")
    ap.add_argument("--clinical", action="store_true", help="only the cropped 1 mm pelvis table")
    ap.add_argument("--clinical-shape", type=int, nargs=3, default=[160, 256, 256])
    ap.add_argument("--networks", nargs="+", default=None, help="--flops: these networks only (default: all five)")
    ap.add_argument("--clinical-tiles", type=int, nargs="+", default=[176, 208, 144])
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    if a.flops or a.clinical:
        if a.flops: flops_table(torch.get_num_threads(), networks=a.networks)
        if a.clinical: clinical_table(tuple(a.clinical_shape), a.threads, a.clinical_tiles)
        return 0
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
