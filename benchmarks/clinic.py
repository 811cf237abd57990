"""Adapting to a new clinic (CS paper, section 4, its two remedies): a population network trained further either on
a few site-B patients' contoured scans, or on site-A-like patients with synthetic larger bladder motion; scored on
site-B patients left out of training and, for what it costs, on site-A patients.

    jrs-nb phantom --out ft_cohort --preset demo --seed 1 --n-train 1 --n-val 3 --n-test 3 --daily-a 6 6 --daily-b 6 6
    python benchmarks/clinic.py --data ft_cohort [--run pretrained:jrs_reg] [--train-patients B_p000 B_p001]
                                [--iterations 200] [--site-a-pairs 2] [--no-elastix] [--out clinic.csv]
    jrs-nb phantom --out wide --preset demo --seed 2 --n-train 2 --n-val 0 --n-test 0 --daily-a 6 6 --bladder-a 0.5 2
    python benchmarks/clinic.py --data ft_cohort --synthetic wide [--iterations 200] [--out clinic_synthetic.csv]

Remedy "site B" (default): fine-tunes --run (`jrs_nb.finetune`, its learning rate and losses) on the pairs of every
--train-patients patient (planning -> each daily scan, and earlier -> later daily scan, as `jrs-nb finetune` forms
them for one patient), with the unsupervised losses only (a clinic has no true motion). Remedy "synthetic"
(--synthetic DATA): the same training on every training patient of DATA, with the term on the true DVF as well
(--dvf-weight, default the run's own; then on the planning -> daily pairs only, whose true DVF is known), a site-A
cohort whose bladder fills and empties beyond site A's protocol range (`jrs-nb phantom --bladder-a`); no site-B scan
is used, and the same site-B patients as in the first remedy are scored. Then scores the population and the trained
network (the registration path's contours: MSD per organ) on every pair of the scored site-B (test) patients, and on
the first --site-a-pairs pairs of each site-A validation patient; elastix beside them on the site-B pairs. Prints a
Markdown table (mean MSD per site, method and organ) and the training time; the per-organ rows go to --out (CSV),
the record the course quotes. Issue target: site-B bladder MSD at or below elastix's, site A no more than 5 % worse.
"""
import argparse, sys, tempfile, time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from finetune import network_rows, elastix_rows   # benchmarks/finetune.py: the per-patient experiment's scoring

from jrs_nb.checkpoints import load_model
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.data.io import load_manifest
from jrs_nb.finetune import finetune_pairs, load_source, finetune_config, finetune_state, FT_LR_FACTOR
from jrs_nb.finetune import _steps
from jrs_nb.tables import to_markdown
from jrs_nb.train import finish_run


def site_pairs(data, split:str, patients, limit:int|None=None) -> list:
    "The (planning -> daily) pairs of `patients` in `split`, the first `limit` of each."
    ds = JRSDataset(data, split, load_dvf=False)
    out = []
    for pid in patients:
        out += [ds[k] for k in [k for k, p in enumerate(ds.pairs) if p["patient"] == pid][:limit]]
    return out


def finetune_clinic(a, data, patients:list, split:str, out:Path) -> float:
    "Fine-tune --run on all contoured scans of `patients` (of `split` in `data`) into `out`; seconds."
    src, ck = load_source(a.run)
    m = load_manifest(data)
    pairs = [p for pid in patients for p in finetune_pairs(m, pid, m.patients[pid]["scans"])]
    dvf_w = (ck.get("train_config") or {}).get("dvf_weight", 0.) if a.dvf_weight is None else a.dvf_weight
    dvf_w = dvf_w if a.synthetic else 0.
    if dvf_w:   # the true DVF is known from the planning scan only: planning -> daily pairs
        pairs = [p for p in pairs if p["moving"] == m.planning(p["patient"])]
    cfg = finetune_config(ck, data, out, a.iterations, threads=a.threads, dvf_weight=dvf_w)
    t0 = time.perf_counter()
    s = finetune_state(cfg, ck, pairs, split)
    _steps(s)
    finish_run(s, cfg.iterations, None)
    print(f"fine-tuned on {len(pairs)} pairs of {', '.join(patients)}: {cfg.iterations} iterations, "
          f"lr {cfg.lr:g}, dvf_weight {cfg.dvf_weight:g}", file=sys.stderr, flush=True)
    return time.perf_counter() - t0


def synthetic_patients(data) -> list:
    "The training patients of a --synthetic cohort; refuses one without, or without a wider bladder range."
    m = load_manifest(data)
    pts = m.splits.get("train", [])
    if not pts: raise SystemExit(f"clinic: error: {data}: no training patients to train on")
    lo, hi = ((m.sites or {}).get("A") or {}).get("bladder_factor") or (0.8, 1.25)
    if lo >= 0.8 and hi <= 1.25:
        raise SystemExit(f"clinic: error: {data}: site A's bladder range {lo}-{hi} is the filling protocol's, "
                         "no larger motion: generate the cohort with `jrs-nb phantom --bladder-a LO HI`")
    return pts


def table(df:pd.DataFrame) -> str:
    "Mean MSD per (site, method) and organ, with the mean over organs and its ratio to the population network."
    t = df.groupby(["site", "method", "organ"], sort=False)["msd"].mean().unstack("organ")
    t["mean"] = t.mean(axis=1)
    for site in t.index.get_level_values("site").unique():
        rows = t.index.get_level_values("site") == site
        t.loc[rows, "x population"] = t.loc[rows, "mean"] / t.loc[(site, "population"), "mean"]
    t.index = [f"site {s}: {m}" for s, m in t.index]
    return to_markdown(t.round(3))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a cohort with several site-B (test) patients")
    ap.add_argument("--run", default="pretrained:jrs_reg", help="the population network")
    ap.add_argument("--train-patients", nargs="+", default=["B_p000", "B_p001"], help="site-B patients to train on")
    ap.add_argument("--synthetic", metavar="DATA",
                    help="the other remedy: train on this site-A cohort with larger bladder motion instead")
    ap.add_argument("--dvf-weight", type=float, help="with --synthetic: weight of the term on the cohort's true "
                    "DVF (default: the run's own; site B is trained without, as a clinic has no true motion)")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--site-a-pairs", type=int, default=2, help="pairs per site-A validation patient")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--elastix", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", default="clinic.csv")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = load_manifest(a.data)
    test, val = m.splits.get("test", []), m.splits.get("val", [])
    if a.synthetic:
        train, method = synthetic_patients(a.synthetic), "trained with larger bladder motion"
    elif miss := [p for p in a.train_patients if p not in test]:
        print(f"clinic: error: {a.data}: {miss} are not site-B test patients ({test})", file=sys.stderr)
        return 2
    else: train, method = a.train_patients, "fine-tuned on site B"
    held = [p for p in test if p not in a.train_patients]   # both remedies score the same site-B patients
    if not held or not val:
        print(f"clinic: error: {a.data}: needs a site-B patient left out of --train-patients and a site-A "
              "validation patient", file=sys.stderr)
        return 2
    sites = {"B": site_pairs(a.data, "test", held), "A": site_pairs(a.data, "val", val, a.site_a_pairs)}
    rows = []
    with tempfile.TemporaryDirectory() as td:
        secs = finetune_clinic(a, a.synthetic or a.data, train, "train" if a.synthetic else "test", Path(td))
        nets = {"population": load_model(a.run), method: load_model(td)}
        for site, pairs in sites.items():
            for name, net in nets.items():
                rows += [{**r, "site": site} for r in network_rows(name, net, pairs)[0]]
            if a.elastix and site == "B":
                rows += [{**r, "site": site} for r in elastix_rows(pairs)[0]]
            print(f"site {site}: {len(pairs)} pairs scored", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    df["finetune s"], df["train patients"], df["iterations"] = round(secs, 1), " ".join(train), a.iterations
    df["train data"] = Path(a.synthetic).name if a.synthetic else "site B"
    df.to_csv(a.out, index=False)
    where = f"synthetic site-A patients of {a.synthetic}" if a.synthetic else "site-B patients"
    print(f"{a.run} fine-tuned on {where} {', '.join(train)} ({a.iterations} iterations at "
          f"{FT_LR_FACTOR} x its learning rate, {secs:.0f} s on {a.threads} threads); scored on site-B patients "
          f"{', '.join(held)} ({len(sites['B'])} pairs) and site-A patients {', '.join(val)} "
          f"({len(sites['A'])} pairs)\n")
    print(table(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
