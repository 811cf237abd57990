"""Per-patient adaptation: a population network against the same network fine-tuned on the patient's planning scan
and first contoured fractions (Elmahdy et al., ISBI 2020), and elastix, on that patient's later fractions.

    jrs-nb phantom --out ft_cohort --preset demo --seed 1 --n-train 1 --n-val 3 --n-test 3 --daily-a 6 6 --daily-b 6 6
    python benchmarks/finetune.py --data ft_cohort [--run pretrained:reg] [--fractions 1 2] [--iterations N]
                                  [--patients ID ...] [--no-elastix] [--refine N [--only-refine]]
                                  [--out finetune.csv]

For every validation and test patient with at least max(--fractions) + 2 daily scans: the later fractions are the
daily scans after the first max(--fractions); every method is scored on the same later fractions. Fine-tuning on
"planning + k" uses the pairs `jrs-nb finetune` forms from the planning scan and the first k daily scans.

Prints two Markdown tables: mean MSD (mm) per organ and method (and its ratio to the population network), and the
seconds per patient (fine-tuning, inference). The per-organ rows go to --out (CSV), the record the course quotes.
Issue targets: with planning + 2 fractions, mean MSD <= 0.85 x the population network's and no organ worse on
average; fine-tuning one patient <= 5 min on 2 cores.
"""
import argparse, sys, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jrs_nb.core import unit_to_hu
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.data.io import load_manifest
from jrs_nb.deformation import warp_volume
from jrs_nb.inference import infer_pair
from jrs_nb.metrics import evaluate_labels
from jrs_nb.checkpoints import load_model
from jrs_nb.finetune import finetune, FT_ITERATIONS
from jrs_nb.refine import RefineSettings
from jrs_nb.tables import to_markdown


def patients(m, need:int, only=None) -> list[tuple[str, str]]:
    "(patient, split) of the validation and test patients with at least `need` daily scans."
    out = []
    for split in ("val", "test"):
        for p in m.splits.get(split, []):
            daily = [s for s in m.patients[p]["scans"] if s != m.planning(p)]
            if len(daily) >= need and (not only or p in only): out.append((p, split))
    return out


def later_pairs(data, patient:str, split:str, first:int) -> list:
    "The patient's (planning -> daily) pairs after the first `first` daily scans, in scan order."
    ds = JRSDataset(data, split, load_dvf=False)
    idx = [k for k, p in enumerate(ds.pairs) if p["patient"] == patient]
    return [ds[k] for k in idx[first:]]


def score(method:str, path:str, labels:np.ndarray, pv) -> list[dict]:
    res = evaluate_labels(labels, pv.fixed_seg, pv.spacing, empty_gt="nan")
    return [{"method": method, "path": path, "patient": pv.patient, "fraction": pv.fixed_scan, "organ": o,
             "msd": r["msd"], "dsc": r["dsc"]} for o, r in res.items()]


def network_rows(method:str, net, pairs, refine=None) -> tuple[list[dict], float]:
    rows, t0 = [], time.perf_counter()
    for pv in pairs:
        pred = infer_pair(net, pv, tile=208, refine=refine)
        for path, lab in (("reg", pred.warped_labels), ("seg", pred.seg)):
            if lab is not None: rows += score(method, path, lab, pv)
    return rows, time.perf_counter() - t0


def elastix_rows(pairs) -> tuple[list[dict], float]:
    from jrs_nb.baselines.elastix import elastix_register, ElastixConfig
    rows, t0 = [], time.perf_counter()
    for pv in pairs:
        r = elastix_register(unit_to_hu(pv.fixed), unit_to_hu(pv.moving), pv.spacing, ElastixConfig())
        warped = warp_volume(pv.moving_seg, r.dvf, pv.spacing, nearest=True, default=0).astype(np.uint8)
        rows += score("elastix", "-", warped, pv)
    return rows, time.perf_counter() - t0


def one_patient(a, m, patient:str, split:str, tmp:Path) -> tuple[list[dict], list[dict]]:
    "Rows (per organ) and timings of every method on one patient's later fractions."
    first = max(a.fractions)
    pairs = later_pairs(a.data, patient, split, first)
    daily = [s for s in m.patients[patient]["scans"] if s != m.planning(patient)]
    rows, times = [], []
    if a.refine:   # no training: the population network's field refined on each later fraction
        name = f"population + refine {a.refine}"
        rows, sec = network_rows(name, load_model(a.run), pairs, RefineSettings(steps=a.refine))
        times.append({"patient": patient, "method": name, "finetune s": 0., "inference s": sec})
        if a.only_refine: return rows, times
    r, sec = network_rows("population", load_model(a.run), pairs)
    rows += r
    times.append({"patient": patient, "method": "population", "finetune s": 0., "inference s": sec})
    for k in a.fractions:
        name, out = f"planning + {k}", tmp / f"{patient}_{k}"
        t0 = time.perf_counter()
        finetune(a.run, a.data, patient, [m.planning(patient), *daily[:k]], out, iterations=a.iterations,
                 threads=a.threads)
        ft = time.perf_counter() - t0
        r, sec = network_rows(name, load_model(out), pairs)
        rows += r
        times.append({"patient": patient, "method": name, "finetune s": ft, "inference s": sec})
    if a.elastix:
        r, sec = elastix_rows(pairs)
        rows += r
        times.append({"patient": patient, "method": "elastix", "finetune s": 0., "inference s": sec})
    return rows, times


def tables(df:pd.DataFrame, times:pd.DataFrame) -> str:
    "The MSD table (per method, path and organ; means over the patients' mean) and the time table."
    per_patient = df.groupby(["method", "path", "patient", "organ"], sort=False)["msd"].mean()
    t = per_patient.groupby(["method", "path", "organ"], sort=False).mean().unstack("organ")
    t["mean"] = t.mean(axis=1)
    for path in ("reg", "seg"):
        if ("population", path) in t.index:
            base = t.loc[("population", path), "mean"]
            t.loc[t.index.get_level_values("path") == path, "x population"] = \
                t.loc[t.index.get_level_values("path") == path, "mean"] / base
    t.index = [m if path == "-" else f"{m} ({path})" for m, path in t.index]
    tt = times.groupby("method", sort=False)[["finetune s", "inference s"]].mean()
    return to_markdown(t.round(3)) + "\n\nseconds per patient\n\n" + to_markdown(tt.round(1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a cohort with >= max(--fractions) + 2 daily scans per patient")
    ap.add_argument("--run", default="pretrained:reg", help="the population network (run folder or pretrained:NAME)")
    ap.add_argument("--fractions", type=int, nargs="+", default=[1, 2], help="first fractions to fine-tune on")
    ap.add_argument("--iterations", type=int, default=FT_ITERATIONS)
    ap.add_argument("--patients", nargs="+", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--elastix", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--refine", type=int, default=0, metavar="N",
                    help="also the population network with N steps of test-time refinement per fraction")
    ap.add_argument("--only-refine", action="store_true", help="with --refine: measure only that method and "
                    "replace its rows in an existing --out record (and its _times file), keeping the others")
    ap.add_argument("--out", default="finetune.csv")
    a = ap.parse_args(argv)
    if min(a.fractions) < 1:
        print("finetune: error: --fractions must be >= 1 (the planning scan alone forms no pair)", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    m = load_manifest(a.data)
    todo = patients(m, max(a.fractions) + 2, a.patients)
    if not todo:
        print(f"finetune: error: {a.data}: no validation or test patient has {max(a.fractions) + 2} daily scans "
              "(generate more with jrs-nb phantom --daily-a MIN MAX --daily-b MIN MAX)", file=sys.stderr)
        return 2
    rows, times = [], []
    with tempfile.TemporaryDirectory() as td:
        for p, split in todo:
            r, t = one_patient(a, m, p, split, Path(td))
            rows += r
            times += t
            print(f"{p}: " + ", ".join(f"{x['method']} {x['finetune s']:.0f} s" for x in t), file=sys.stderr,
                  flush=True)
    df, tdf = pd.DataFrame(rows), pd.DataFrame(times)
    tpath = Path(a.out).with_name(Path(a.out).stem + "_times.csv")
    if a.only_refine and Path(a.out).exists() and tpath.exists():   # the other methods: measured earlier
        old, told = pd.read_csv(a.out), pd.read_csv(tpath)
        df = pd.concat([old[~old["method"].isin(set(df["method"]))], df], ignore_index=True)
        tdf = pd.concat([told[~told["method"].isin(set(tdf["method"]))], tdf], ignore_index=True)
    df.to_csv(a.out, index=False)
    tdf.to_csv(tpath, index=False)
    print(f"{len(todo)} patients of {a.data}, run {a.run}, {a.iterations} iterations, {a.threads} threads\n")
    print(tables(df, tdf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
