"""How well the contour QA flag (jrs_nb.qa) predicts a bad contour, and the limits it uses.

    python benchmarks/qa.py --data DEMO_COHORT [--runs pretrained:crossstitch pretrained:hard pretrained:reg
                            pretrained:jrs_reg] [--second-opinion pretrained:seg] [--splits val test]
                            [--bad-mm 2] [--threads 2] [--rows CSV] [--out benchmarks/results/qa_demo0.json]

For every pair of the splits and every shipped network, each organ's exported contour (the registration path, and
for the joint networks also the segmentation path, the other path being the second opinion; a network without a
segmentation path gets the --second-opinion network's labels as its second opinion) gets the QA features of
`jrs_nb.qa.organ_features`; a contour is bad when its MSD to the truth exceeds --bad-mm (or it is empty while the
truth is not). Prints a Markdown table: per feature and organ the ROC AUC, the limit that maximises Youden's J
(sensitivity + specificity - 1) for that feature alone, and the flag's limits: the combination of cuts (or leaving
a feature out) that maximises the J of the flag itself (any feature beyond its limit); then the AUCs on the exported
contours (the registration path), the flag's sensitivity and specificity and the AUC of the combined score
max(feature / limit). Writes the rows (CSV beside --out) and a JSON record with the limits, which
`jrs_nb.qa.QA_LIMITS` must equal (09d_qa checks it).
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


def rows_of_pair(name:str, pred, pv, bad_mm:float, second=None) -> list[dict]:
    "One row per (path, organ): the QA features and whether the contour is bad; `second`: a second opinion's labels."
    paths = [("reg", pred.warped_labels, pred.seg if pred.seg is not None else second),
             ("seg", pred.seg, pred.warped_labels)]
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


def joint_limits(df:pd.DataFrame, features=FEATURES, n:int=40) -> tuple[dict, float]:
    """({feature: limit or None (not used)}, Youden's J) of the flag `any feature > its limit, or empty` that
    separates bad from good contours best: every combination of n quantile cuts per feature, or leaving it out."""
    y, empty = df["bad"].to_numpy(bool), df["empty"].to_numpy(bool)
    vals = {f: np.nan_to_num(df[f].to_numpy(float), nan=-np.inf) for f in features}   # NaN: never beyond a limit
    fin = {f: df[f].to_numpy(float)[np.isfinite(df[f].to_numpy(float))] for f in features}
    cuts = {f: [*(np.unique(np.quantile(fin[f], np.linspace(0.05, 0.99, n))) if fin[f].size else []), np.inf]
            for f in features}   # a feature never measured: only "left out"
    over = {f: np.stack([vals[f] > c for c in cuts[f]]) for f in features}   # (cuts, contours) per feature
    best, flag0 = (None, -1.), np.broadcast_to(empty, y.shape)
    for idx in np.ndindex(*(len(cuts[f]) for f in features)):
        flag = flag0.copy()
        for f, i in zip(features, idx): flag |= over[f][i]
        j = flag[y].mean() + (~flag[~y]).mean() - 1
        if j > best[1]: best = (idx, j)
    lim = {f: (None if np.isinf(cuts[f][i]) else float(cuts[f][i])) for f, i in zip(features, best[0])}
    return lim, float(best[1])


def contour_rows(a) -> list[dict]:
    "The rows of every pair of --splits for every network of --runs."
    torch.set_num_threads(a.threads)
    rows, seconds = [], {}
    second = load_model(a.second_opinion).eval() if a.second_opinion else None
    for spec in a.runs:
        net, name = load_model(spec).eval(), spec.split(":")[-1]
        for split in a.splits:
            ds = JRSDataset(a.data, split, load_dvf=False)
            for k in range(len(ds)):
                pv, key = ds[k], (split, k)
                pred = infer_pair(net, pv, tile=208)
                if second is not None and pred.seg is None and key not in seconds:   # once per pair
                    seconds[key] = infer_pair(second, pv, tile=208).seg
                so = seconds.get(key) if pred.seg is None else None
                rows += [{**r, "split": split} for r in rows_of_pair(name, pred, pv, a.bad_mm, so)]
            print(f"{name} {split}: {len(ds)} pairs", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", nargs="+", default=["pretrained:crossstitch", "pretrained:hard", "pretrained:reg",
                                                  "pretrained:jrs_reg"])
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bad-mm", type=float, default=2.)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--second-opinion", default="pretrained:seg", metavar="RUN",
                    help="a segmentation network whose labels are the second opinion of networks without a "
                    "segmentation path (jrs_nb.inference: `contour` uses pretrained:seg)")
    ap.add_argument("--rows", default=None, metavar="CSV", help="recompute the record from the rows an earlier run "
                    "of the same --runs wrote (no inference)")
    ap.add_argument("--out", default="qa.json")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.rows: df = pd.read_csv(a.rows)   # the rows of an earlier run with the same --runs: the record again
    else:
        df = pd.DataFrame(contour_rows(a))
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out.with_suffix(".csv"), index=False)
    y = df["bad"].to_numpy()
    limits = {f: best_cut(df[f].to_numpy(float), y) for f in FEATURES}   # each feature alone
    flag_limits, flag_j = joint_limits(df)                              # the flag: all features together
    flag_limits = {f: None if v is None else round(v, 3) for f, v in flag_limits.items()}   # as QA_LIMITS holds them
    exported = df[df["path"] == "reg"]                                  # the contours infer exports
    def auc(d, f):
        "ROC AUC of feature f per organ and over all organs of the rows d."
        return {**{o: roc_auc(g[f], g["bad"]) for o, g in d.groupby("organ")}, "all organs": roc_auc(d[f], d["bad"])}
    table = pd.DataFrame({f: {**auc(df, f), "limit alone": limits[f][0], "Youden J": limits[f][1],
                              "flag limit": flag_limits[f]} for f in FEATURES}).T
    used = [f for f in FEATURES if flag_limits[f] is not None]
    combined = np.nanmax(np.stack([df[f].to_numpy(float) / flag_limits[f] for f in used]), axis=0)
    combined = np.where(df["empty"], np.inf, np.nan_to_num(combined, nan=0.))
    flag = combined > 1
    summary = {"bad_mm": a.bad_mm, "contours": int(len(df)), "bad": int(y.sum()),
               "exported_contours": int(len(exported)), "exported_bad": int(exported["bad"].sum()),
               "limits": {f: v for f, v in flag_limits.items() if v is not None},
               "flag_youden_j": round(flag_j, 3),
               "auc": {f: auc(df, f) for f in FEATURES},
               "auc_exported": {f: auc(exported, f) for f in FEATURES},
               "combined_auc": {o: roc_auc(np.where(np.isinf(combined), 1e9, combined)[df.organ == o], y[df.organ == o])
                                for o in sorted(set(df.organ))},
               "flag_sensitivity": float(flag[y].mean()) if y.any() else None,
               "flag_specificity": float((~flag[~y]).mean()) if (~y).any() else None,
               "runs": a.runs, "second_opinion": a.second_opinion, "splits": a.splits, "data": str(a.data)}
    out.write_text(json.dumps(summary, indent=1, default=float))
    print(f"{len(df)} contours, {int(y.sum())} bad (MSD to the truth > {a.bad_mm} mm)\n")
    print(to_markdown(table.astype(float).round(3).rename_axis("feature")))
    print("\nexported contours (registration path): " + "; ".join(
        f"{f} AUC {summary['auc_exported'][f]['all organs']:.3f}" for f in FEATURES))
    print(f"\ncombined score AUC per organ: {summary['combined_auc']}; flag sensitivity "
          f"{summary['flag_sensitivity']}, specificity {summary['flag_specificity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
