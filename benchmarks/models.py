"""Speed and memory of the five JRS networks: one training step and one inference forward.

For each network (seg, reg, jrs_reg, hard, crossstitch, built with `jrs_nb.models.jrs.build_model`):

- **training step** at n=96 and n=64, batch 4: forward + loss + backward, in two flavours
  - *bare*: the network alone (no warping) with a trivial loss (mean of every head), forward + backward;
  - *full*: the real step, `model(fixed, moving, moving_seg)` (warping included) + `losses.jrs_loss` + backward;
  and the ratio full / bare (goal <= 1.30: warping and losses should add at most 30 %); the overhead is also timed
  alone (warping + losses + their backward on detached heads), which is far less noisy than a difference of two
  long steps on a busy machine;
- **inference**: one forward at n=96 and n=192, batch 1, eval mode, `torch.inference_mode`.

Each (network, size, variant) runs in its own child process so that the peak resident memory (`ru_maxrss`) of one
measurement is not polluted by the previous ones; on CUDA the peak is `torch.cuda.max_memory_allocated`. Times are the
best of `--repeats` runs after `--warmup` untimed runs (CPU default 0 warm-up runs: a CPU step has no lazy
initialisation worth excluding at these sizes; CUDA default 1). On CUDA three variants are reported: fp32, bf16 autocast,
and bf16 autocast + channels_last_3d.

On a CPU shared with other work the wall clock mostly measures the neighbours, so CPU runs also report the process CPU
time (all threads) and the full / bare ratio uses CPU time; on CUDA the ratio uses synchronised wall time.

    python benchmarks/models.py --quick            # n=64 only, 1 repeat
    python benchmarks/models.py --device cpu --repeats 2
    python benchmarks/models.py --device cuda --networks crossstitch reg
"""
from __future__ import annotations
import argparse, json, os, platform, resource, subprocess, sys, time
from contextlib import nullcontext

import torch

NETWORKS = ("seg", "reg", "jrs_reg", "hard", "crossstitch")
CUDA_VARIANTS = ("fp32", "bf16", "bf16+cl3d")


# ----------------------------------------------------------------------------------------------------------------------
# synthetic inputs
def synthetic_batch(n:int, batch:int, device, seed:int=0):
    "A seeded PairBatch of smooth random images and block label maps (speed does not depend on the content)."
    from jrs_nb.core import PairBatch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(seed)
    img = lambda: F.avg_pool3d(torch.randn(batch, 1, n, n, n, generator=g), 5, 1, 2).mul(3).clamp(-1, 1)
    seg = torch.zeros(batch, 1, n, n, n, dtype=torch.long); c = n // 2
    seg[:, :, c-10:c+10, c-10:c, c-10:c] = 1; seg[:, :, c-10:c+10, c-10:c, c:c+10] = 2
    seg[:, :, c-10:c+10, c:c+10, c-10:c] = 3; seg[:, :, c-10:c+10, c:c+10, c:c+10] = 4
    return PairBatch(img(), img(), seg, seg.roll(2, 2)).to(device)


# ----------------------------------------------------------------------------------------------------------------------
# the two training steps
def _bare_forward(model, batch):
    "The network without warping: the heads only (monkey-patches JRSNet._pack for this call)."
    from jrs_nb.core import JRSOutput, MultiLevel
    def pack(seg, dvf, moving, moving_seg):
        return MultiLevel(*(JRSOutput(seg=seg[i] if seg is not None else None, dvf=dvf[i] if dvf is not None else None)
                            for i in range(3)))
    model._pack = pack
    try: return model(batch.fixed, batch.moving, batch.moving_seg)
    finally: del model._pack

def bare_step(model, batch, name):
    out = _bare_forward(model, batch)
    loss = sum(t.float().mean() for lv in out for t in (lv.seg, lv.dvf) if t is not None)
    return loss

def full_step(model, batch, name):
    from jrs_nb.losses import jrs_loss
    out = model(batch.fixed, batch.moving, batch.moving_seg)
    loss, _ = jrs_loss(name, out, batch)
    return loss


# ----------------------------------------------------------------------------------------------------------------------
# one measurement (runs in a child process)
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB

class _Meter:
    "Peak memory since the last reset: CUDA allocator peak, or the process's peak RSS on CPU (monotone)."
    def __init__(self, device): self.device = device
    def reset(self):
        if self.device.type == "cuda": torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    def peak_mb(self) -> float:
        if self.device.type == "cuda": return torch.cuda.max_memory_allocated() / 2**20
        return _peak_rss_mb()
    def sync(self):
        if self.device.type == "cuda": torch.cuda.synchronize()

def _timed(run, repeats:int, meter:_Meter) -> tuple[list[float], list[float]]:
    "Wall-clock and process-CPU seconds of `repeats` calls of `run`."
    meter.sync(); meter.reset(); ts, cs = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        run(); meter.sync()
        ts.append(time.perf_counter() - t); cs.append(time.process_time() - c)
    return ts, cs

def measure(name:str, n:int, batch:int, device:str, variant:str, mode:str, repeats:int, warmup:int, seed:int=0) -> dict:
    "Time and peak memory of `mode` ('train' or 'infer') for one network, size and variant."
    from jrs_nb.core import get_device, seed_everything
    from jrs_nb.models.jrs import build_model
    from jrs_nb.losses import jrs_loss
    dev = get_device(device); seed_everything(seed)
    meter = _Meter(dev)
    model = build_model(name).to(dev)
    cl = "cl3d" in variant
    if cl: model = model.to(memory_format=torch.channels_last_3d)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if "bf16" in variant else nullcontext()
    b = synthetic_batch(n, batch, dev, seed)
    if cl: b = b._replace(fixed=b.fixed.contiguous(memory_format=torch.channels_last_3d),
                          moving=b.moving.contiguous(memory_format=torch.channels_last_3d))
    res = dict(network=name, n=n, batch=batch, device=dev.type, variant=variant, mode=mode, repeats=repeats)
    meter.reset(); base = _peak_rss_mb()
    if mode == "infer":
        model.eval()
        def run():
            with torch.inference_mode(), amp: model(b.fixed, b.moving, b.moving_seg)
        for _ in range(warmup): run()
        ts, cs = _timed(run, repeats, meter)
        res.update(time_s=min(ts), cpu_s=min(cs), peak_mb=meter.peak_mb(), rss_before_mb=base)
        return res
    model.train()
    for step_name, step in (("bare", bare_step), ("full", full_step)):  # bare first: on CPU the RSS peak is monotone
        def run():
            model.zero_grad(set_to_none=True)
            with amp: loss = step(model, b, name)
            loss.backward()
        for _ in range(warmup): run()
        ts, cs = _timed(run, repeats, meter)
        res[f"{step_name}_s"], res[f"{step_name}_cpu_s"], res[f"{step_name}_peak_mb"] = min(ts), min(cs), meter.peak_mb()
    # the overhead alone, without the network: warping + losses + their backward on detached heads
    with torch.no_grad(), amp: heads = _bare_forward(model, b)
    def overhead():
        leaf = lambda t: None if t is None else t.detach().requires_grad_()
        seg = [leaf(lv.seg) for lv in heads] if heads.high.seg is not None else None
        dvf = [leaf(lv.dvf) for lv in heads] if heads.high.dvf is not None else None
        with amp:
            out = model._pack(seg, dvf, b.moving if dvf else None, b.moving_seg if dvf else None)
            loss, _ = jrs_loss(name, out, b)
        loss.backward()
    ts, cs = _timed(overhead, repeats, meter)
    res["overhead_s"], res["overhead_cpu_s"] = min(ts), min(cs)
    # on a shared CPU the wall clock mostly measures the neighbours: the ratio uses process CPU time there
    key = "_s" if dev.type == "cuda" else "_cpu_s"
    res["ratio"] = res["full" + key] / res["bare" + key]; res["rss_before_mb"] = base
    res["ratio_est"] = 1 + res["overhead" + key] / res["bare" + key]
    return res


# ----------------------------------------------------------------------------------------------------------------------
# driver
def _child(args) -> int:
    name, n, batch, variant, mode = args.child.split(",")
    if args.threads: torch.set_num_threads(args.threads)
    print(json.dumps(measure(name, int(n), int(batch), args.device, variant, mode, args.repeats, args.warmup)))
    return 0

def _spawn(args, name, n, batch, variant, mode) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{name},{n},{batch},{variant},{mode}",
           "--device", args.device, "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    if args.threads: cmd += ["--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        return dict(network=name, n=n, batch=batch, variant=variant, mode=mode, error=p.stderr.strip().splitlines()[-1])
    return json.loads(p.stdout.strip().splitlines()[-1])

def _fmt(x, f="{:.2f}"): return "-" if x is None else f.format(x)

def train_table(rows) -> str:
    cpu = bool(rows) and rows[0].get("device") == "cpu"
    mem = "peak RSS MB (bare / full)" if cpu else "peak alloc MB (bare / full)"
    t = "s wall (CPU)" if cpu else "s"
    out = [f"| network | n | batch | variant | bare fwd+bwd {t} | full step {t} | full / bare{' (CPU time)' if cpu else ''} | warp+losses alone {t} | 1 + alone / bare | {mem} |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = (lambda r, k: f"{r[k + '_s']:.2f} ({r[k + '_cpu_s']:.2f})") if cpu else (lambda r, k: f"{r[k + '_s']:.4f}")
    for r in rows:
        if "error" in r: out.append(f"| {r['network']} | {r['n']} | {r['batch']} | {r['variant']} | error: {r['error']} | | | | | |"); continue
        out.append(f"| {r['network']} | {r['n']} | {r['batch']} | {r['variant']} | {fmt(r, 'bare')} | {fmt(r, 'full')} | "
                   f"{r['ratio']:.3f} | {fmt(r, 'overhead')} | {r['ratio_est']:.3f} | {r['bare_peak_mb']:.0f} / {r['full_peak_mb']:.0f} |")
    return "\n".join(out)

def infer_table(rows) -> str:
    cpu = bool(rows) and rows[0].get("device") == "cpu"
    mem = "peak RSS MB" if cpu else "peak alloc MB"
    out = [f"| network | n | batch | variant | inference forward s{' wall (CPU)' if cpu else ''} | {mem} |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r: out.append(f"| {r['network']} | {r['n']} | {r['batch']} | {r['variant']} | error: {r['error']} | |"); continue
        t = f"{r['time_s']:.2f} ({r['cpu_s']:.2f})" if cpu else f"{r['time_s']:.4f}"
        out.append(f"| {r['network']} | {r['n']} | {r['batch']} | {r['variant']} | {t} | {r['peak_mb']:.0f} |")
    return "\n".join(out)

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n=64 only (training and inference), 1 repeat")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default: CUDA when available)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement, best kept (default 3, quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1 on CUDA, 0 on CPU)")
    p.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    p.add_argument("--batch", type=int, default=4, help="training batch size (default 4)")
    p.add_argument("--variants", nargs="+", default=None, choices=("fp32",) + CUDA_VARIANTS[1:],
                   help="CUDA variants (default all three; CPU: fp32 only)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads in the children (0: torch default)")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None: args.repeats = 1 if args.quick else 3
    from jrs_nb.core import get_device
    dev = get_device(args.device); args.device = str(dev)
    if args.warmup is None: args.warmup = 1 if dev.type == "cuda" else 0
    if args.child: return _child(args)
    variants = args.variants or (list(CUDA_VARIANTS) if dev.type == "cuda" else ["fp32"])
    if dev.type != "cuda": variants = ["fp32"]
    train_sizes, infer_sizes = ((64,), (64,)) if args.quick else ((96, 64), (96, 192))
    print(f"# jrs_nb model benchmark: {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, best of {args.repeats}, "
          f"warm-up {args.warmup}{', QUICK' if args.quick else ''}\n", flush=True)
    train, infer = [], []
    for n in train_sizes:
        for v in variants:
            for name in args.networks:
                train.append(_spawn(args, name, n, args.batch, v, "train"))
                print(train_table(train[-1:]).splitlines()[-1], flush=True)
    for n in infer_sizes:
        for v in variants:
            for name in args.networks:
                infer.append(_spawn(args, name, n, 1, v, "infer"))
                print(infer_table(infer[-1:]).splitlines()[-1], flush=True)
    print("\n## Training step (forward + loss + backward)\n\n" + train_table(train))
    print("\n## Inference forward (eval, inference_mode)\n\n" + infer_table(infer))
    ok = [r["ratio"] for r in train if "ratio" in r]; est = [r["ratio_est"] for r in train if "ratio" in r]
    if ok: print(f"\nfull / bare step ratio: max {max(ok):.3f}, mean {sum(ok)/len(ok):.3f}; from the overhead timed alone: "
                 f"max {max(est):.3f}, mean {sum(est)/len(est):.3f} (goal <= 1.30)")
    if args.json:
        with open(args.json, "w") as f: json.dump(dict(train=train, infer=infer), f, indent=1)
    return 0

if __name__ == "__main__":
    sys.exit(main())
