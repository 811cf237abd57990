"""How well the contour QA flag (jrs_nb.qa) predicts a bad contour, and the limits it uses.

    python benchmarks/qa.py --data DEMO_COHORT [--runs pretrained:crossstitch pretrained:hard pretrained:reg]
                            [--splits val test] [--bad-mm 2] [--threads 2] [--out benchmarks/results/qa_demo0.json]

For every pair of the splits and every shipped network, each organ's exported contour (the registration path, and
for the joint networks also the segmentation path, the other path being the second opinion) gets the QA features of
`jrs_nb.qa.organ_features`; a contour is bad when its MSD to the truth exceeds --bad-mm (or it is empty while the
truth is not). Prints a Markdown table: per feature and organ the ROC AUC, and the limit that maximises Youden's J
(sensitivity + specificity - 1) over all organs; then the flag's sensitivity and specificity with those limits and
the AUC of the combined score max(feature / limit). Writes the rows (CSV beside --out) and a JSON record with the
limits, which `jrs_nb.qa.QA_LIMITS` must equal (tests/test_qa_record.py checks it).
"""
import argparse, json, sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jrs_nb.checkpoints import load_model
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.inference import infer_pair
from jrs_nb.metrics import evaluate_labels
from jrs_nb.qa import organ_features, roc_auc
from jrs_nb.tables import to_markdown

FEATURES = ("seg_reg_msd", "log_volume_ratio", "shift_mm")


def rows_of_pair(name:str, pred, pv, bad_mm:float) -> list[dict]:
    "One row per (path, organ): the QA features and whether the contour is bad."
    paths = [("reg", pred.warped_labels, pred.seg), ("seg", pred.seg, pred.warped_labels)]
    rows = []
    for path, contour, other in paths:
        if contour is None: continue
        feats = organ_features(contour, pv.moving_seg, pv.spacing, other)
        truth = evaluate_labels(contour, pv.fixed_seg, pv.spacing, empty_gt="nan")
        for organ, f in feats.items():
            t = truth[organ]
            if t["gt_empty"]: continue
            ratio = f["volume_ratio"]
            rows.append({"network": name, "path": path, "pair": f"{pv.patient}/{pv.fixed_scan}", "organ": organ,
                         "seg_reg_msd": f["seg_reg_msd"], "shift_mm": f["shift_mm"],
                         "log_volume_ratio": abs(np.log(ratio)) if ratio > 0 else np.nan, "empty": f["empty"],
                         "msd_truth": t["msd"], "bad": bool(t["failed"] or t["msd"] > bad_mm)})
    return rows


def best_cut(score:np.ndarray, bad:np.ndarray) -> tuple[float, float]:
    "(limit, Youden's J): the cut `score > limit` that maximises sensitivity + specificity - 1."
    keep = np.isfinite(score)
    s, y = score[keep], bad[keep]
    best = (float("nan"), -1.)
    for c in np.unique(s):
        j = (s[y] > c).mean() + (s[~y] <= c).mean() - 1 if y.any() and (~y).any() else -1.
        if j > best[1]: best = (float(c), float(j))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", nargs="+", default=["pretrained:crossstitch", "pretrained:hard", "pretrained:reg"])
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bad-mm", type=float, default=2.)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="qa.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for spec in a.runs:
        net, name = load_model(spec).eval(), spec.split(":")[-1]
        for split in a.splits:
            ds = JRSDataset(a.data, split, load_dvf=False)
            for k in range(len(ds)):
                pv = ds[k]
                rows += [{**r, "split": split} for r in rows_of_pair(name, infer_pair(net, pv, tile=208), pv, a.bad_mm)]
            print(f"{name} {split}: {len(ds)} pairs", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    y = df["bad"].to_numpy()
    limits = {f: best_cut(df[f].to_numpy(float), y) for f in FEATURES}
    table = pd.DataFrame({f: {**{o: roc_auc(g[f], g["bad"]) for o, g in df.groupby("organ")},
                              "all organs": roc_auc(df[f], df["bad"]), "limit": limits[f][0], "Youden J": limits[f][1]}
                          for f in FEATURES}).T.round(3)
    combined = np.nanmax(np.stack([df[f].to_numpy(float) / limits[f][0] for f in FEATURES]), axis=0)
    combined = np.where(df["empty"], np.inf, np.nan_to_num(combined, nan=0.))
    flag = combined > 1
    summary = {"bad_mm": a.bad_mm, "contours": int(len(df)), "bad": int(y.sum()),
               "limits": {f: round(limits[f][0], 3) for f in FEATURES},
               "auc": {f: table.loc[f].drop(["limit", "Youden J"]).to_dict() for f in FEATURES},
               "combined_auc": {o: roc_auc(np.where(np.isinf(combined), 1e9, combined)[df.organ == o], y[df.organ == o])
                                for o in sorted(set(df.organ))},
               "flag_sensitivity": float(flag[y].mean()) if y.any() else None,
               "flag_specificity": float((~flag[~y]).mean()) if (~y).any() else None,
               "runs": a.runs, "splits": a.splits, "data": str(a.data)}
    out.write_text(json.dumps(summary, indent=1, default=float))
    print(f"{len(df)} contours, {int(y.sum())} bad (MSD to the truth > {a.bad_mm} mm)\n")
    print(to_markdown(table.rename_axis("feature")))
    print(f"\ncombined score AUC per organ: {summary['combined_auc']}; flag sensitivity "
          f"{summary['flag_sensitivity']}, specificity {summary['flag_specificity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
