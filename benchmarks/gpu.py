"""GPU benchmark of the five CS networks: paper-preset training speed, the bf16 inference path, whole-volume inference
time, and elastix on the same pair.

    python benchmarks/gpu.py                                  # a CUDA machine, the paper sizes
    python benchmarks/gpu.py --networks crossstitch reg --iters 50 --no-elastix
    python benchmarks/gpu.py --device cpu --quick [--elastix]  # dry run on a CPU (tiny sizes, filters 4,8,8)

Prints four Markdown tables:
1. training iterations / s with the paper preset (`jrs_nb.train.PRESETS['paper']`: 96^3 patches, batch 2 doubled by
   swap = 4 samples, the paper's filters): forward, `jrs_nb.train.network_loss`, backward and a RAdam step on random
   patches, in fp32 and under bf16 autocast, timed over --iters iterations after 3 warm-up ones, with the peak GPU
   memory (`torch.cuda.max_memory_allocated`);
2. the bf16 inference path against fp32 on one 160^3 volume (`jrs_nb.inference.predict_volume`, tile 160): % of
   voxels with the same segmentation argmax, max and mean |difference| of the DVF (mm);
3. inference on a 256^3 volume, fp32 and bf16, tiles 160 and 256: network seconds (`VolumePrediction.seconds`) and
   the whole `predict_volume` call;
4. elastix (itk-elastix B-spline, on the CPU) against the cross-stitch network (`infer_pair`, tile 160) on one
   validation pair of a tiny synthetic demo cohort (`jrs_nb.phantom.generate_cohort`).
The networks are untrained (seeded random weights): the tables measure speed and numerics, not accuracy.
--quick: patches 48^3, volumes 64^3 (tiles 160 and 256 both give one 104^3 tile: timed once), 2 timed iterations, filters
(4, 8, 8), 10 elastix iterations, and no elastix table unless --elastix. On a CPU, torch uses 1 thread unless --threads.
"""
import argparse, sys, tempfile, time

import numpy as np
import torch
import torch.nn.functional as F

from jrs_nb.core import PairBatch, seed_everything, unit_to_hu
from jrs_nb.models.jrs import NETWORKS, build_model
from jrs_nb.train import make_config, network_loss
from jrs_nb.inference import predict_volume, infer_pair, tile_plan

SPACING = (1., 1., 1.)


def volumes(shape, seed:int=0):
    "Smooth random images in [-1, 1] and label maps 0..4 of three random boxes per organ; moving = fixed shifted."
    rs, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    seg = np.zeros(shape, np.uint8)
    for organ in range(1, 5):
        for _ in range(3):
            size = [int(rs.integers(max(s // 10, 2), s // 4 + 1)) for s in shape]
            lo = [int(rs.integers(s // 4, 3 * s // 4 - z + 1)) for s, z in zip(shape, size)]
            seg[tuple(slice(l, l + z) for l, z in zip(lo, size))] = organ
    mseg = np.roll(seg, tuple(int(v) for v in rs.integers(-4, 5, 3)), axis=(0, 1, 2))
    def img(s):
        noise = F.avg_pool3d(torch.randn(1, 1, *shape, generator=g), 5, 1, 2)[0, 0].numpy() * 3
        return np.clip(noise * 0.3 - 0.2 + 0.15 * s, -1, 1).astype(np.float32)
    return img(seg), img(mseg), seg, mseg


def train_batch(n:int, pairs:int, swap:bool, seed:int=0) -> PairBatch:
    "`pairs` random (fixed, moving) patch pairs, doubled by swapping fixed and moving like `collate_pairs`."
    vs = [volumes((n, n, n), seed + k) for k in range(pairs)]
    st = lambda i, dt: torch.from_numpy(np.stack([v[i] for v in vs]))[:, None].to(dt)
    fx, mv, fs, ms = st(0, torch.float32), st(1, torch.float32), st(2, torch.int64), st(3, torch.int64)
    if not swap: return PairBatch(fx, mv, fs, ms, None)
    return PairBatch(torch.cat([fx, mv]), torch.cat([mv, fx]), torch.cat([fs, ms]), torch.cat([ms, fs]), None)


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def train_speed(name:str, a, dev, amp:bool) -> tuple[float, float, int]:
    "(iterations / s, peak GPU MiB or nan, parameters) of the paper-preset training step of one network."
    cfg = make_config("paper", arch=name, data="x", out="y", **({"patch": 48, "filters": "4,8,8"} if a.quick else {}))
    seed_everything(0)
    net = build_model(name, spacing=SPACING, **({"filters": cfg.filter_tuple} if cfg.filter_tuple else {})).to(dev).train()
    opt = torch.optim.RAdam(net.parameters(), lr=cfg.learning_rate)
    b = train_batch(cfg.patch, cfg.batch, cfg.swap).to(dev)
    def step():
        with torch.autocast(dev.type, torch.bfloat16, enabled=amp):
            o = net(b.fixed, b.moving, b.moving_seg)
        loss, _ = network_loss(cfg, o, b, SPACING)   # outside autocast, as in jrs_nb.train.train
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(3): step()
    sync(dev)
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(a.iters): step()
    sync(dev); dt = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else float("nan")
    params = sum(p.numel() for p in net.parameters())
    del net, opt, b
    if dev.type == "cuda": torch.cuda.empty_cache()
    return a.iters / dt, peak, params


def predict(net, vols, tile, dev, amp):
    "predict_volume as infer_pair calls it (the seg network gets no moving inputs); returns (prediction, call s)."
    f, m, _, ms = vols
    moving = (m, ms) if net.config.name != "seg" else (None, None)
    t = time.perf_counter()
    p = predict_volume(net, f, *moving, tile=tile, device=dev, amp=amp)
    return p, time.perf_counter() - t


def fmt(x, spec=".2f"): return "–" if x is None or x != x else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and filters (4, 8, 8): a dry run on a CPU")
    ap.add_argument("--elastix", action=argparse.BooleanOptionalAction, default=None,
                    help="the elastix table (default: on, off with --quick)")
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    ap.add_argument("--iters", type=int, default=0, help="timed training iterations (default 20, --quick 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 1 on a CPU, else PyTorch's)")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --quick for a dry run", file=sys.stderr); return 2
    if a.threads or dev.type == "cpu": torch.set_num_threads(a.threads or 1)
    a.iters = a.iters or (2 if a.quick else 20)
    elastix = a.elastix if a.elastix is not None else not a.quick
    n2, n3, filt = (64, 64, {"filters": (4, 8, 8)}) if a.quick else (160, 256, {})
    amps = ((False, "fp32"), (True, "bf16"))
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"# GPU benchmark{' (--quick dry run)' if a.quick else ''}\n\ndevice: {name}; torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if dev.type == "cuda" else ""), flush=True)

    # 1. training speed
    patch = 48 if a.quick else 96
    print(f"\n### 1. Training iterations / s (paper preset: {patch}^3 patches, 2 pairs x swap = 4 samples, "
          f"network_loss + RAdam, {a.iters} iterations after 3 warm-up)\n")
    print("| network | parameters | fp32 it/s | bf16 it/s | bf16 / fp32 | fp32 peak MiB | bf16 peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for arch in a.networks:
        (s32, m32, p), (s16, m16, _) = (train_speed(arch, a, dev, amp) for amp, _ in amps)
        print(f"| {arch} | {p:,} | {s32:.2f} | {s16:.2f} | {s16 / s32:.2f} | {fmt(m32, '.0f')} | {fmt(m16, '.0f')} |", flush=True)

    seed_everything(0)
    nets = {arch: build_model(arch, spacing=SPACING, **filt).eval() for arch in a.networks}

    # 2. bf16 against fp32 at inference
    vols = volumes((n2,) * 3, seed=1)
    print(f"\n### 2. bf16 against fp32 at inference ({n2}^3 volume, tile 160, predict_volume)\n")
    print("| network | seg argmax equal % | DVF max abs diff mm | DVF mean abs diff mm | fp32 DVF max abs mm |")
    print("|---|---|---|---|---|")
    for arch, net in nets.items():
        (p32, _), (p16, _) = (predict(net, vols, 160, dev, amp) for amp, _ in amps)
        eq = 100 * float(np.mean(p32.seg == p16.seg)) if p32.seg is not None else None
        d = np.abs(p32.dvf - p16.dvf) if p32.dvf is not None else None
        print(f"| {arch} | {fmt(eq, '.3f')} | {fmt(d.max() if d is not None else None, '.3g')} | "
              f"{fmt(d.mean() if d is not None else None, '.3g')} | "
              f"{fmt(np.abs(p32.dvf).max() if d is not None else None, '.3g')} |", flush=True)

    # 3. inference time on a big volume
    vols = volumes((n3,) * 3, seed=2)
    print(f"\n### 3. Inference time, {n3}^3 volume (network s = tiles through the network; call s = whole predict_volume)\n")
    print("| network | tile | tiles used | fp32 network s | fp32 call s | bf16 network s | bf16 call s |")
    print("|---|---|---|---|---|---|---|")
    for arch, net in nets.items():
        plans = {}
        for tile in (160, 256):
            t, origins = tile_plan(n3, tile); used = f"{len(origins) ** 3} x {t}^3"
            if used in plans:   # a small volume: both tiles give the same tiling, hence the same measurement
                print(f"| {arch} | {tile} | {used} | same tiles as tile {plans[used]} | | | |"); continue
            plans[used], row = tile, []
            for amp, _ in amps:
                if dev.type == "cuda": predict(net, vols, tile, dev, amp)   # warm-up: CUDA context, kernels
                p, call = predict(net, vols, tile, dev, amp)
                row += [f"{p.seconds:.2f}", f"{call:.2f}"]
            print(f"| {arch} | {tile} | {used} | {' | '.join(row)} |", flush=True)

    # 4. elastix against the network on one pair of a synthetic cohort
    if not elastix:
        print("\n### 4. elastix: skipped (--quick; add --elastix to run it)"); return 0
    import itk
    from jrs_nb.phantom import generate_cohort
    from jrs_nb.data.dataset import JRSDataset
    from jrs_nb.baselines.elastix import ElastixConfig, elastix_register
    ecfg = ElastixConfig(iterations=10 if a.quick else 100)
    with tempfile.TemporaryDirectory() as td:
        generate_cohort(td, "demo", seed=0, n_train=1, n_val=1, n_test=1, daily_a=(1, 1), daily_b=(1, 1))
        pv = JRSDataset(td, "val", load_dvf=False)[0]
    seed_everything(0)
    cs = build_model("crossstitch", spacing=pv.spacing, **filt).eval()
    print(f"\n### 4. elastix against the cross-stitch network (demo cohort val pair {pv.patient}/{pv.fixed_scan}, "
          f"{pv.fixed.shape} voxels @ {pv.spacing} mm)\n")
    print("| method | runs on | network s | total s |")
    print("|---|---|---|---|")
    t = time.perf_counter()
    r = elastix_register(unit_to_hu(pv.fixed), unit_to_hu(pv.moving), pv.spacing, ecfg)
    print(f"| elastix B-spline ({ecfg.iterations} it x {ecfg.resolutions} resolutions) | CPU "
          f"({itk.MultiThreaderBase.GetGlobalDefaultNumberOfThreads()} ITK threads) | – | "
          f"{r.seconds:.2f} ({time.perf_counter() - t:.2f} with resampling) |", flush=True)
    for amp, label in amps:
        if dev.type == "cuda": infer_pair(cs, pv, tile=160, device=dev, amp=amp)   # warm-up
        p = infer_pair(cs, pv, tile=160, device=dev, amp=amp)
        print(f"| crossstitch {label}, tile 160, infer_pair | {name} | {p.network_seconds:.2f} | {p.total_seconds:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
