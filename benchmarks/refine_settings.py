"""Test-time refinement settings compared on whole volumes: where the objective is computed (work grid, box) and
how large the Adam step is, on the validation pairs of a generated cohort (which knows the true DVF).

    python benchmarks/refine_settings.py --data DEMO_COHORT [--run pretrained:jrs_reg] [--pairs 6] [--threads 2]
                                         [--out refine_settings.csv]

Every variant starts from the same network field of each pair. `--variants K [K ...]` measures only the
variants whose names contain one of the strings K, and `--update` then replaces just those rows (and the network's)
in an existing --out record, keeping the others: the variants measured earlier with the same code and weights. Prints a Markdown table, one row per variant
(means over the pairs): mean |phi - phi_true| in the body (mm), cosine to the truth, % folding body voxels, MSD
per organ of the warped planning contours and their mean, seconds of refinement per pair. The per-pair rows go to
--out (CSV), the record 08a_refine quotes. elastix on the same pairs is in `benchmarks/registration.py`'s record.
"""
import argparse, sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from registration import field_scores   # the same scores as the registration record
from jrs_nb.checkpoints import load_model
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.inference import infer_pair
from jrs_nb.refine import RefineSettings, refine_dvf
from jrs_nb.tables import to_markdown

VARIANTS = {   # name -> RefineSettings overrides; the last one is the default
    "4 mm grid, whole scan, step 0.5 mm, 100 steps (the first settings)":
        dict(work_mm=4., roi_mm=0., lr=0.5, steps=100),
    "4 mm grid, whole scan, step 0.05 mm, 100 steps": dict(work_mm=4., roi_mm=0., lr=0.05, steps=100),
    "2 mm grid, whole scan, step 0.05 mm, 50 steps": dict(roi_mm=0., lr=0.05, steps=50),
    "3 mm grid, contours' box + 30 mm, step 0.05 mm, 50 steps": dict(work_mm=3., lr=0.05, steps=50),
    "2 mm grid, contours' box + 15 mm, step 0.05 mm, 30 steps": dict(roi_mm=15., lr=0.05, steps=30),
    "2 mm grid, contours' box + 30 mm, step 0.05 mm, 50 steps": dict(lr=0.05, steps=50),
    "2 mm grid, contours' box + 30 mm, step 0.1 mm, 30 steps": dict(lr=0.1, steps=30),
    "2 mm grid, contours' box + 30 mm, step 0.2 mm, 20 steps (default)": {},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a generated cohort (true DVFs): jrs-nb phantom --out DIR")
    ap.add_argument("--run", default="pretrained:jrs_reg")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="refine_settings.csv")
    ap.add_argument("--variants", nargs="+", default=None, help="only the variants whose names contain one of these")
    ap.add_argument("--update", action="store_true", help="replace only the measured rows of an existing --out")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ds = JRSDataset(a.data, "val", load_dvf=True)
    if len(ds) == 0 or ds[0].dvf is None:
        print(f"refine_settings: error: {a.data} has no validation pairs with a true DVF", file=sys.stderr)
        return 2
    net, rows = load_model(a.run).eval(), []
    todo = {k: v for k, v in VARIANTS.items() if not a.variants or any(x in k for x in a.variants)}
    if not todo:
        print(f"refine_settings: error: no variant matches {a.variants}", file=sys.stderr)
        return 2
    for k in range(min(a.pairs, len(ds))):
        pv = ds[k]
        p = infer_pair(net, pv, tile=208)
        rows.append({"method": "network alone", "pair": f"{pv.patient}/{pv.fixed_scan}",
                     **field_scores(p.dvf, pv, 0.), "steps": 0})
        for name, kw in todo.items():
            r = refine_dvf(pv.fixed, pv.moving, p.dvf, pv.spacing, pv.moving_seg,
                           settings=RefineSettings(**kw))
            rows.append({"method": name, "pair": rows[-1]["pair"], **field_scores(r.dvf, pv, r.seconds),
                         "steps": r.steps})
            print(f"{name} {rows[-1]['pair']}: error {rows[-1]['body error mm']:.2f} mm, MSD mean "
                  f"{rows[-1]['MSD mean']:.2f} mm, {r.seconds:.1f} s", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    if a.update and Path(a.out).exists():
        old = pd.read_csv(a.out)
        df = pd.concat([old[~old["method"].isin(set(df["method"]))], df], ignore_index=True)
        order = ["network alone", *VARIANTS]
        df = df[df["method"].isin(order)].sort_values("method", key=lambda m: m.map(order.index), kind="stable")
    df.to_csv(a.out, index=False)
    print(f"{min(a.pairs, len(ds))} validation pairs of {a.data}, refined from {a.run}, {a.threads} threads\n")
    print(to_markdown(df.drop(columns="pair").groupby("method", sort=False).mean().round(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
