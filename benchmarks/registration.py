"""Registration against the truth: the shipped networks' DVFs, the same with test-time refinement, elastix and the
zero field, on the whole volumes of the validation pairs of a generated cohort (which knows the true DVF).

    python benchmarks/registration.py --data DEMO_COHORT [--runs pretrained:reg pretrained:crossstitch RUN_DIR ...]
                                      [--pairs 6] [--threads 2] [--steps N] [--bending 5 [20 ...]] [--no-refine]
                                      [--no-elastix] [--no-alone] [--one-pass] [--update [--drop REGEX]]
                                      [--out registration.csv]

--runs takes shipped networks (pretrained:NAME) or run folders of `jrs-nb train` (e.g. the deformation-model
variants: `jrs-nb train --arch reg --preset cpu --dvf-model coarse --bending 5 ...`).

Prints a Markdown table, one row per method (means over the pairs): mean |phi - phi_true| in the body (mm), the
least-squares slope and the cosine of the field onto the truth in the body, % of body voxels that fold (det J <= 0),
MSD per organ (mm) of the warped planning contours and their mean, seconds per pair, and (networks, refinement)
the mean |phi| in mm when the planning scan is registered to itself, where the right answer is no motion. The per-pair rows go to
--out (CSV), the record the course quotes. Issue targets: a network field with cosine >= 0.8 and body error <= 1.3
mm; with refinement, a lower MSD than elastix on every organ at <= 1/3 of its time per pair; identical inputs
give mean |phi| <= 0.05 mm.
"""
import argparse, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jrs_nb.core import unit_to_hu
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.deformation import warp_volume
from jrs_nb.core import body_mask
from jrs_nb.inference import infer_pair
from jrs_nb.metrics import dvf_error, dvf_quality, evaluate_labels
from jrs_nb.checkpoints import load_model
from jrs_nb.refine import RefineSettings
from jrs_nb.tables import to_markdown


def field_scores(dvf:np.ndarray, pv, seconds:float) -> dict:
    "Field error, slope, cosine and folding in the body; MSD per organ of the warped planning contours."
    body = body_mask(unit_to_hu(pv.fixed))
    e = dvf_error(dvf, pv.dvf, body)["body"]   # mean |error|, slope and cosine onto the truth (jrs_nb.metrics)
    row = {"body error mm": e["mean"], "slope": np.nan_to_num(e["slope"]), "cosine": np.nan_to_num(e["cosine"]),
           "fold %": dvf_quality(dvf, pv.spacing, body)["fold_pct"]}
    warped = warp_volume(pv.moving_seg, dvf, pv.spacing, nearest=True, default=0).astype(np.uint8)
    res = evaluate_labels(warped, pv.fixed_seg, pv.spacing, empty_gt="nan")
    row.update({f"MSD {o}": r["msd"] for o, r in res.items()})
    row["MSD mean"] = float(np.mean([r["msd"] for r in res.values()]))
    return {**row, "s/pair": seconds}


def methods(a):
    "(name, function pair -> (dvf, seconds)) for every method measured."
    if a.zero: yield "zero", lambda pv: (np.zeros_like(pv.dvf), 0.)
    for spec in a.runs:
        net, arch = load_model(spec).eval(), spec.split(":")[-1].rstrip("/").split("/")[-1]
        if a.one_pass and net.config.symmetric:   # the pair only, not also the reversed pair
            net.config.symmetric, arch = False, f"{arch} (one pass)"
        def run(pv, net=net, st=None):
            p = infer_pair(net, pv, tile=208, refine=st)
            return p.dvf, p.total_seconds
        if a.alone: yield arch, run
        for be in a.bending if a.refine else ():
            st = RefineSettings(steps=a.steps, bending=be)
            tag = f" (bending {be:g})" if len(a.bending) > 1 else ""
            yield f"{arch} + refine {a.steps}{tag}", lambda pv, run=run, st=st: run(pv, st=st)
    if a.elastix:
        from jrs_nb.baselines.elastix import elastix_register, ElastixConfig
        def elx(pv):
            r = elastix_register(unit_to_hu(pv.fixed), unit_to_hu(pv.moving), pv.spacing, ElastixConfig())
            return r.dvf, r.seconds
        yield "elastix", elx


def _merge(old:pd.DataFrame, new:pd.DataFrame, drop:str|None) -> pd.DataFrame:
    "The old record without the methods measured now (nor those matching `drop`), and the new rows after each network."
    keep = old[~old["method"].isin(set(new["method"]))]
    if drop: keep = keep[~keep["method"].str.contains(drop, regex=True)]
    out, order = pd.concat([keep, new], ignore_index=True), []
    for m in [*keep["method"].unique(), *new["method"].unique()]:   # a network's refined rows follow it
        if m in order: continue
        base = m.split(" + ")[0]
        at = max((i for i, o in enumerate(order) if o.split(" + ")[0] == base), default=len(order) - 1)
        order.insert(at + 1, m)
    order = [m for m in order if m != "elastix"] + (["elastix"] if "elastix" in order else [])
    return out.sort_values("method", key=lambda c: c.map(order.index), kind="stable")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a generated cohort (true DVFs): jrs-nb phantom --out DIR")
    ap.add_argument("--runs", nargs="+", default=["pretrained:reg", "pretrained:crossstitch"])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=RefineSettings().steps)
    ap.add_argument("--bending", type=float, nargs="+", default=[RefineSettings().bending],
                    help="refinement bending weight(s): one row per value")
    ap.add_argument("--elastix", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--zero", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--identity", action=argparse.BooleanOptionalAction, default=True,
                    help="also run each network on the planning scan against itself (column identity |phi| mm)")
    ap.add_argument("--one-pass", action="store_true", help="run symmetric networks on the pair only, not "
                    "also on the reversed pair (half the network time; identical inputs then give some motion)")
    ap.add_argument("--alone", action=argparse.BooleanOptionalAction, default=True,
                    help="the networks' own rows (--no-alone: only their refined rows)")
    ap.add_argument("--update", action="store_true", help="replace only the methods measured now in an "
                    "existing --out record, keep its other rows (measured earlier with the same code and weights)")
    ap.add_argument("--drop", default=None, help="with --update: also drop the old rows whose method matches "
                    "this regular expression (e.g. refinement rows of earlier settings)")
    ap.add_argument("--split", default="val", help="the split whose pairs are measured (val; test: site B)")
    ap.add_argument("--out", default="registration.csv")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ds = JRSDataset(a.data, a.split, load_dvf=True)
    if len(ds) == 0 or ds[0].dvf is None:
        print(f"registration: error: {a.data} has no {a.split} pairs with a true DVF", file=sys.stderr)
        return 2
    pairs = [ds[k] for k in range(min(a.pairs, len(ds)))]
    rows = []
    for name, fn in methods(a):
        for pv in pairs:
            dvf, sec = fn(pv)
            rows.append({"method": name, "pair": f"{pv.patient}/{pv.fixed_scan}", **field_scores(dvf, pv, sec)})
            if a.identity and name not in ("zero", "elastix"):   # the planning scan against itself: no motion
                same = pv._replace(fixed=pv.moving, fixed_seg=pv.moving_seg, dvf=np.zeros_like(pv.dvf))
                rows[-1]["identity |phi| mm"] = float(np.linalg.norm(fn(same)[0], axis=0).mean())
            print(f"{name} {rows[-1]['pair']}: error {rows[-1]['body error mm']:.2f} mm, "
                  f"MSD mean {rows[-1]['MSD mean']:.2f} mm, {sec:.1f} s", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    if a.update and Path(a.out).exists():
        df = _merge(pd.read_csv(a.out), df, a.drop)
    df.to_csv(a.out, index=False)
    table = df.drop(columns="pair").groupby("method", sort=False).mean().round(3)
    print(f"{len(pairs)} {a.split} pairs of {a.data}, {a.threads} threads\n")
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
