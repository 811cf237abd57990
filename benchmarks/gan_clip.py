"""The critic's weight clipping under the `cpu` preset: how large the critic's scores, and so the generator's
adversarial term, are in the first generator iterations of `jrs_gana` continuing the shipped `jrs_reg`, per clip.

    python benchmarks/gan_clip.py --data DEMO_COHORT [--clips 0.01 0.05] [--iterations 12] [--out gan_clip.csv]

Prints a Markdown table (per clip: mean |critic loss|, mean |adversarial term| and the mean weighted term
0.01 x adversarial, over the logged iterations) and writes the per-iteration log lines to --out (CSV), the record
`train.GAN_CPU`'s clipping quotes. A collapsed critic (scores ~1e-6) gives the generator no signal.
"""
import argparse, sys, tempfile
from pathlib import Path

import pandas as pd
import torch

from jrs_nb.losses import GAN_WEIGHTS
from jrs_nb.tables import to_markdown
from jrs_nb.train import make_config, train


def run(data:str, clip:float, iterations:int, arch:str="jrs_gana") -> pd.DataFrame:
    "The log lines (one per iteration) of `arch` continuing its shipped generator with critic clipping `clip`."
    gen = "reg" if arch.startswith("reg") else "jrs_reg"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config("cpu", arch=arch, data=data, out=str(Path(tmp) / "run"), iterations=iterations,
                          init_reg=f"pretrained:{gen}", val_pairs=0, log_every=1, bn_recalibrate=0, clip=clip)
        train(cfg, progress=False)
        log = pd.read_csv(Path(tmp) / "run" / "log.csv")
    return log[["iteration", "critic", "adversarial", "total"]].assign(arch=arch, clip=clip)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the demo cohort: jrs-nb phantom --out DIR --preset demo --seed 0")
    ap.add_argument("--clips", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--iterations", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="gan_clip.csv")
    a = ap.parse_args(argv)
    if a.iterations < 1 or any(not 0 < c <= 1 for c in a.clips):
        ap.error("--iterations must be >= 1 and every --clips value in (0, 1]")
    torch.set_num_threads(a.threads)
    df = pd.concat([run(a.data, c, a.iterations) for c in a.clips], ignore_index=True)
    df.to_csv(a.out, index=False)
    print(f"jrs_gana from pretrained:jrs_reg, {a.iterations} iterations, {a.data}\n")
    print(to_markdown(summary(df).map(lambda v: float(f"{v:.3g}"))))
    return 0


def summary(df:pd.DataFrame) -> pd.DataFrame:
    "Per clip: mean |critic loss|, mean |adversarial|, mean total loss and the weighted adversarial term."
    t = df.groupby("clip").agg(**{"mean |critic loss|": ("critic", lambda s: s.abs().mean()),
                                  "mean |adversarial|": ("adversarial", lambda s: s.abs().mean()),
                                  "mean total": ("total", "mean")})
    t["weighted term"] = GAN_WEIGHTS["adversarial"] * t["mean |adversarial|"]
    return t


if __name__ == "__main__":
    sys.exit(main())
