"""How fast the networks learn on 2 CPU cores: minutes of training to reach the learning targets, from whole-volume
validation DSC logged during training.

    python benchmarks/learning.py                       # train seg, reg, crossstitch with the cpu preset (about 40 min)
    python benchmarks/learning.py --runs repro_cpu      # read the runs of `jrs-nb reproduce --preset cpu` instead
    python benchmarks/learning.py --runs pretrained     # read the runs shipped in the package

Targets (per network, whole-volume validation DSC averaged over the validation pairs of each evaluation):
- segmentation path: bladder >= 0.85, rectum >= 0.80, prostate >= 0.75, seminal vesicles >= 0.50;
- registration path: better than the identity (the unwarped planning contours) on every organ and a mean DSC gain
  >= 0.05 over it (the MSD target, <= 0.8x the identity's, needs surface distances: the evaluation step reports it);
- cross-stitch: both paths; and how far the alphas moved (mean |delta alpha| per unit).
Time is training wall time (`elapsed` in val.csv: validation excluded); a warm-started joint network (the cpu preset's
jrs_reg, hard, crossstitch) also needs the single-task runs it starts from: their minutes are a column of their own.
Prints a Markdown table."""
import argparse, json, sys, tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from jrs_nb.data.dataset import JRSDataset
from jrs_nb.metrics import evaluate_labels
from jrs_nb.train import read_curves, make_config, preset_settings
from jrs_nb.models.jrs import WARM_START, SINGLE_TASK
from jrs_nb.checkpoints import resolve_run, PRETRAINED
from jrs_nb.validation import train_with_validation

SEG_TARGET = {"prostate": 0.75, "seminal_vesicles": 0.50, "rectum": 0.80, "bladder": 0.85}
REG_GAIN, ORGANS = 0.05, tuple(SEG_TARGET)

def identity_dsc(data, pairs) -> dict:
    "Mean DSC of the unwarped planning contours over the validation pairs named in val.csv."
    ds = JRSDataset(data, "val", load_dvf=False); keys = {f"{p['patient']}/{p['fixed']}": k for k, p in enumerate(ds.pairs)}
    rows = [evaluate_labels(ds[keys[p]].moving_seg, ds[keys[p]].fixed_seg, ds[keys[p]].spacing) for p in pairs if p in keys]
    return {o: float(np.mean([r[o]["dsc"] for r in rows])) for o in ORGANS}

def first_reach(val:pd.DataFrame, path:str, ok) -> tuple:
    "(minutes, iteration) of the first evaluation of `path` meeting `ok`, else (None, None)."
    for _, r in val[val.path == path].sort_values("iteration").iterrows():
        if ok({o: r[f"dsc_{o}"] for o in ORGANS}): return round(r.elapsed / 60, 1), int(r.iteration)
    return None, None

def alpha_move(run:Path) -> str:
    f = run / "alphas.jsonl"
    if not f.exists(): return ""
    recs = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
    return ", ".join(f"{k} {np.abs(np.array(recs[-1]['alphas'][k]) - np.array(recs[0]['alphas'][k])).mean():.3f}" for k in recs[0]["alphas"])

def start_minutes(run:Path) -> float:
    "Training minutes of the single-task runs a warm-started network started from (0 for a network from scratch)."
    t = json.loads((run / "config.json").read_text())["train"]
    if not t.get("warm_start"): return 0.
    srcs = [t.get(f"init_{n}") for n in WARM_START.get(t["arch"], ())]
    return sum(read_curves(s)[0].elapsed.iloc[-1] / 60 for s in srcs if s)

def row(name:str, run:Path, data) -> dict:
    log, val = read_curves(run)
    last = val[val.iteration == val.iteration.max()]
    out = {"network": name, "iterations": int(log.iteration.max()), "training min": round(log.elapsed.iloc[-1] / 60, 1),
           "+ min of the runs it starts from": round(start_minutes(run), 1)}
    if "seg" in set(val.path):
        m, it = first_reach(val, "seg", lambda d: all(d[o] >= t for o, t in SEG_TARGET.items()))
        fin = last[last.path == "seg"].iloc[0]
        out.update({"seg: min to targets": m if m is not None else "not reached", "seg: final DSC (P/SV/R/B)":
                    " / ".join(f"{fin[f'dsc_{o}']:.2f}" for o in ORGANS)})
    if "reg" in set(val.path):
        ident = identity_dsc(data, sorted(set(pd.read_csv(run / "val.csv").pair)))
        ok = lambda d: all(d[o] > ident[o] for o in ORGANS) and np.mean([d[o] - ident[o] for o in ORGANS]) >= REG_GAIN
        m, it = first_reach(val, "reg", ok)
        fin = last[last.path == "reg"].iloc[0]
        out.update({"reg: min to targets": m if m is not None else "not reached", "reg: final DSC (P/SV/R/B)":
                    " / ".join(f"{fin[f'dsc_{o}']:.2f}" for o in ORGANS),
                    "identity DSC": " / ".join(f"{ident[o]:.2f}" for o in ORGANS)})
    if (run / "validation.json").exists():   # shipped runs: the float16 weights on every validation pair
        out.update(final_on_all_pairs(json.loads((run / "validation.json").read_text()), data))
    out["mean |delta alpha| per unit"] = alpha_move(run)
    return out

def final_on_all_pairs(rec:dict, data) -> dict:
    "Targets met by the final weights on all validation pairs of `validation.json` (the training runs validate on 2)."
    df = pd.DataFrame(rec["pairs"]); pairs = sorted(set(df.pair)); out = {"all val pairs": len(pairs)}
    means = df.groupby("path")[list(ORGANS)].mean()
    if "seg" in means.index:
        d = means.loc["seg"]; out["seg, all pairs: targets met"] = all(d[o] >= t for o, t in SEG_TARGET.items())
    if "reg" in means.index:
        d, ident = means.loc["reg"], identity_dsc(data, pairs)
        gain = float(np.mean([d[o] - ident[o] for o in ORGANS]))
        out["reg, all pairs: gain over identity"] = round(gain, 3)
        out["reg, all pairs: targets met"] = bool(all(d[o] > ident[o] for o in ORGANS) and gain >= REG_GAIN)
    return out

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=None, help="a reproduction folder (train_NAME runs) or 'pretrained'; default: train now")
    ap.add_argument("--archs", nargs="+", default=["seg", "reg", "crossstitch"])
    ap.add_argument("--data", default=None, help="the cohort the runs validated on (default: the one in their config)")
    a = ap.parse_args(argv)
    if a.runs is None:
        from jrs_nb.phantom import generate_cohort
        work = Path(tempfile.mkdtemp()); data = work / "cohort"; generate_cohort(data, "demo", seed=0)
        starts = [s for n in a.archs if preset_settings("cpu", n).get("warm_start") for s in WARM_START.get(n, ())]
        runs = {n: work / f"train_{n}" for n in dict.fromkeys([s for s in SINGLE_TASK if s in starts] + a.archs)}
        for n, r in runs.items():   # the single-task runs first: the joint networks start from them (warm start)
            init = {f"init_{s}": str(runs[s]) for s in WARM_START.get(n, ()) if preset_settings("cpu", n).get("warm_start")}
            train_with_validation(make_config("cpu", arch=n, data=str(data), out=str(r), **init), progress=False)
    elif a.runs == "pretrained": runs = {n: resolve_run(f"{PRETRAINED}{n}") for n in a.archs}
    else: runs = {n: Path(a.runs) / f"train_{n}" for n in a.archs}
    rows = []
    for n, r in runs.items():
        data = a.data or json.loads((r / "config.json").read_text())["train"]["data"]
        if not Path(data).exists():
            print(f"learning.py: error: the cohort {data} of {r} is gone: pass --data (jrs-nb phantom --preset demo --seed 0)", file=sys.stderr); return 2
        rows.append(row(n, r, data))
    print(f"\n### Learning on the demo cohort (cpu preset): minutes of training to the targets\n")
    df = pd.DataFrame(rows).astype(object).fillna("")
    print("| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns))
    for _, r in df.iterrows(): print("| " + " | ".join(str(v) for v in r.values) + " |")
    return 0

if __name__ == "__main__":
    sys.exit(main())
