"Numbers the README and the course quote from benchmark records: each must equal its record (rounded as quoted)."
import json, pathlib

import pandas as pd
import pytest

from jrs_nb.models.jrs import NETWORKS
from jrs_nb.refine import RefineSettings

ROOT = pathlib.Path(__file__).parents[1]
STEPS = RefineSettings().steps   # the default refinement: what the README quotes
README = (ROOT / "README.md").read_text()


def means(csv:str) -> pd.DataFrame:
    return pd.read_csv(ROOT / "benchmarks" / "results" / csv).drop(columns="pair").groupby("method").mean()


@pytest.mark.parametrize("method,label", [("zero", "unwarped planning contours"), ("reg_voxel", "`reg_voxel` (the"),
                                          ("reg", "`reg` (shipped"), ("jrs_reg", "`jrs_reg` (and"),
                                          ("crossstitch", "`crossstitch` (cross-stitch"), ("hard", "`hard` (one"),
                                          (f"reg + refine {STEPS}", "`reg` + test-time refinement"),
                                          (f"jrs_reg + refine {STEPS}", "`jrs_reg` + test-time"),
                                          (f"crossstitch + refine {STEPS}", "`crossstitch` + test-time"),
                                          (f"jrs_reg (one pass) + refine {STEPS}", "one network pass"),
                                          ("elastix", "elastix (B-spline")])
def test_readme_registration_table_is_the_record(method, label):
    r = means("registration_shipped_demo0.csv").loc[method]
    row = next(l for l in README.splitlines() if l.startswith("|") and label in l)
    msd = " / ".join(f"{r[f'MSD {o}']:.2f}" for o in ("prostate", "seminal_vesicles", "rectum", "bladder"))
    assert f"| {r['body error mm']:.2f} |" in row and msd in row, (row, r)
    assert (f"| {r['cosine']:.2f} |" in row) or (method == "zero" and "| 0 |" in row), row
    assert f"| {r['MSD mean']:.2f} | {r['s/pair']:.1f} |" in row, (row, r)
    if r.notna()["identity |phi| mm"]: assert row.endswith(f"| {r['identity |phi| mm']:.2f} |"), row


def test_readme_qa_numbers_are_the_record():
    rec = json.loads((ROOT / "benchmarks" / "results" / "qa_demo0.json").read_text())
    text = " ".join(README.split())
    assert f"catches {100 * rec['flag_sensitivity']:.0f} %" in text
    assert f"flags {100 * (1 - rec['flag_specificity']):.0f} % of the good ones" in text
    assert f"ROC AUC {rec['auc_exported']['log_volume_ratio']['all organs']:.2f}" in text


def test_contour_default_is_the_best_measured_network():
    from jrs_nb.inference import CONTOUR_RUN
    t = means("registration_shipped_demo0.csv")
    t = t[[m in NETWORKS for m in t.index]]          # the networks alone: no refinement, no baseline
    best = t["MSD mean"].idxmin()
    assert CONTOUR_RUN == f"pretrained:{best}", (CONTOUR_RUN, t["MSD mean"].round(3).to_dict())


def _nb_text(rel:str) -> str:
    "The markdown of a notebook, as one string."
    nb = json.loads((ROOT / "nbs" / rel).read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_refine_and_lesson_prose_quote_the_registration_record():
    t = means("registration_demo0.csv")
    sweep = [t.loc[f"reg_voxel + refine 100 (bending {b})"] for b in ("0.5", "5", "20")]
    md = " ".join(_nb_text("08a_refine.ipynb").split())
    for col in ("MSD mean", "body error mm", "fold %"):
        assert " / ".join(f"{r[col]:.2f}" for r in sweep) in md, col
    lesson = " ".join(_nb_text("tutorials/learning.ipynb").split())
    assert f"the cosine is {t.loc['reg_voxel', 'cosine']:.2f}" in lesson
    assert f"{t.loc['reg_voxel', 'body error mm']:.2f} against {t.loc['zero', 'body error mm']:.2f} mm" in lesson


def test_refine_settings_table_is_the_record():
    "08a_refine's table of refinement settings: every row equals its record's means."
    t = means("refine_settings_demo0.csv")
    md = _nb_text("08a_refine.ipynb")
    for method, r in t.iterrows():
        row = next((l for l in md.splitlines() if l.startswith(f"| {method} |")), None)
        assert row is not None, method
        msd = " / ".join(f"{r[f'MSD {o}']:.2f}" for o in ("prostate", "seminal_vesicles", "rectum", "bladder"))
        cells = [f"{r['body error mm']:.2f}", f"{r['cosine']:.2f}", f"{r['fold %']:.2f}", msd,
                 f"{r['MSD mean']:.2f}", f"{r['s/pair']:.1f}"]
        assert row == f"| {method} | " + " | ".join(cells) + " |", (row, cells)
    e = means("registration_shipped_demo0.csv").loc["elastix"]
    quote = (f"body error {e['body error mm']:.2f} mm, cosine {e['cosine']:.2f}, MSD "
             + " / ".join(f"{e[f'MSD {o}']:.2f}" for o in ("prostate", "seminal_vesicles", "rectum", "bladder"))
             + f" mm, {e['s/pair']:.1f} s per pair")
    assert quote in " ".join(md.split()), quote


def test_qa_prose_quotes_its_record():
    rec = json.loads((ROOT / "benchmarks" / "results" / "qa_demo0.json").read_text())
    md = " ".join(_nb_text("09d_qa.ipynb").split())
    auc, c = rec["auc"], rec["combined_auc"]
    assert f"{rec['contours']} contours" in md and f"{rec['bad']} of them bad" in md
    assert f"On the {rec['exported_contours']} contours" in md and f"{rec['exported_bad']} of them bad" in md
    v, d = auc["log_volume_ratio"], auc["seg_reg_msd"]
    assert f"(ROC AUC {v['all organs']:.2f} over all organs, {v['prostate']:.2f} on the prostate)" in md
    assert f"({d['all organs']:.2f}; {d['bladder']:.2f} on the bladder, but {d['rectum']:.2f} on the rectum)" in md
    assert f"carries nothing ({auc['shift_mm']['all organs']:.2f})" in md
    assert f"the volume ratio reaches {rec['auc_exported']['log_volume_ratio']['all organs']:.2f}" in md
    assert f"catches {100 * rec['flag_sensitivity']:.0f} %" in md
    assert f"leaves {100 * rec['flag_specificity']:.0f} % of the good ones" in md
    assert (f"{c['prostate']:.2f} on the prostate and {c['seminal_vesicles']:.2f} on the seminal vesicles, "
            f"{c['bladder']:.2f} on the bladder and {c['rectum']:.2f} on the rectum") in md
    assert set(rec["limits"]) == {"log_volume_ratio", "shift_mm"} and "leaves the paths' disagreement out" in md


def test_pelvis_rules_prose_quotes_its_record():
    "01c_data.pelvis quotes the margins of the male-pelvis rules on the demo cohort (benchmarks/pelvis.py)."
    import nbformat
    rec = json.loads((ROOT / "benchmarks" / "results" / "pelvis_demo0.json").read_text())
    nb = nbformat.read(ROOT / "nbs" / "01c_data.pelvis.ipynb", as_version=4)
    text = " ".join(" ".join(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    r = rec["ranges"]
    assert rec["broken"] == [] and f"all {rec['scans']} labelled scans" in text
    for k in ("bladder cranial of prostate", "rectum posterior of bladder", "rectum posterior of prostate",
              "seminal_vesicles cranial of prostate"):
        assert f"{r[k][0]:.1f}-{r[k][1]:.1f} mm" in text, k
    far = max(v[1] for k, v in r.items() if k.endswith("to prostate"))
    assert f"more than {far:.1f} mm from the prostate" in text


def test_readme_demo_numbers_are_the_record():
    "The README's main command: its time, memory and the registration paths' MSD come from benchmarks/demo.py's record."
    rec = json.loads((ROOT / "benchmarks" / "results" / "demo_reproduction.json").read_text())
    s = rec["seconds"]
    text = " ".join(README.split())
    assert f"{int(s // 60)} min {s % 60:.0f} s after installation, {rec['peak_gb']:.2f} GB" in text
    m = rec["msd_val"]
    reg = [v for k, v in m.items() if k.split()[0] in ("reg", "jrs_reg", "hard", "crossstitch")]
    assert f"(mean MSD {min(reg):.2f}-{max(reg):.2f} mm against {m['unwarped -']:.2f}; elastix {m['elastix -']:.2f})" in text


def test_readme_finetune_numbers_are_the_record():
    "The per-patient fine-tuning numbers of the README come from benchmarks/finetune.py's record."
    df = pd.read_csv(ROOT / "benchmarks" / "results" / "finetune_reg_cohort1.csv")
    mean = df.groupby(["method", "patient", "organ"])["msd"].mean().groupby(["method", "organ"]).mean() \
             .groupby("method").mean()
    r1, r2 = (mean[k] / mean["population"] for k in ("planning + 1", "planning + 2"))
    times = pd.read_csv(ROOT / "benchmarks" / "results" / "finetune_reg_cohort1_times.csv")
    ft = times[times["finetune s"] > 0].groupby("method")["finetune s"].mean()
    text = " ".join(README.split())
    assert f"{r1:.2f}x the population network's mean MSD with planning + 1 fraction, {r2:.2f}x with planning + 2" in text
    assert f"{ft.min():.0f}-{ft.max():.0f} s per patient" in text
    rf = mean[f"population + refine {STEPS}"] / mean["population"]
    assert f"(`--refine {STEPS}`, no training) did: {rf:.2f}x, every organ better" in text
    el, refined = mean["elastix"], mean[f"population + refine {STEPS}"]
    assert f"elastix is still ahead (mean MSD {el:.2f} against {refined:.2f} mm)" in text


def test_symmetric_evaluation_prose_quotes_the_one_pass_record():
    "README and 05b quote the networks evaluated in one pass (before `JRSConfig.symmetric`) from their record."
    one = means("registration_onepass_demo0.csv")
    quote = ", ".join(f"`{m}` {one.loc[m, 'MSD mean']:.2f}" for m in ("reg", "jrs_reg", "crossstitch", "hard"))
    assert quote in " ".join(README.split()), quote
    assert f"{one.loc['reg', 'identity |phi| mm']:.2f} mm on average in one pass" in " ".join(_nb_text("05b_models.jrs.ipynb").split())
    two = means("registration_shipped_demo0.csv")
    for m in ("reg", "jrs_reg", "crossstitch", "hard"):
        assert two.loc[m, "identity |phi| mm"] <= 0.05 and two.loc[m, "MSD mean"] < one.loc[m, "MSD mean"], m


def test_readme_clinic_numbers_are_the_record():
    "The per-clinic experiment (benchmarks/clinic.py): README quotes site-B bladder and site-A mean MSD from its record."
    df = pd.read_csv(ROOT / "benchmarks" / "results" / "clinic_jrs_reg_cohort1.csv")
    t = df.groupby(["site", "method", "organ"])["msd"].mean().unstack("organ")
    pop, ft = "population", "fine-tuned on site B"
    bl = [f"{t.loc[('B', m), 'bladder']:.2f}" for m in (pop, ft, "elastix")]
    a = [f"{t.loc[('A', m)].mean():.2f}" for m in (pop, ft)]
    text = " ".join(README.split())
    assert f"site-B bladder from {bl[0]} to {bl[1]} mm MSD (elastix {bl[2]})" in text, bl
    assert f"on site A ({a[0]} -> {a[1]} mm)" in text, a


def test_readme_demo_ranking_is_the_record():
    "The demo report's ranking the README quotes: each network's mean validation MSD from benchmarks/demo.py's record."
    m = json.loads((ROOT / "benchmarks" / "results" / "demo_reproduction.json").read_text())["msd_val"]
    q = lambda k: f"{m[k]:.2f}"
    want = (f"elastix {q('elastix -')} mm, jrs_reg {q('jrs_reg -')}, reg {q('reg -')}, cross-stitch "
            f"{q('crossstitch reg')}, hard {q('hard reg')}, the unwarped contours {q('unwarped -')}, seg {q('seg -')}")
    assert want in " ".join(README.split()), want


def test_readme_synthetic_remedy_numbers_are_the_records():
    "The first per-clinic remedy (benchmarks/clinic.py --synthetic): site-B bladder MSD and site-A cost from its records."
    text = " ".join(README.split())
    for rec, (bladder, cost) in {"clinic_synthetic_jrs_reg_cohort1.csv": ("2.60", "1.01"),
                                 "clinic_synthetic_sup_jrs_reg_cohort1.csv": ("2.33", "1.12")}.items():
        df = pd.read_csv(ROOT / "benchmarks" / "results" / rec)
        t = df.groupby(["site", "method", "organ"])["msd"].mean().unstack("organ")
        m = "trained with larger bladder motion"
        got = (f"{t.loc[('B', m), 'bladder']:.2f}", f"{t.loc[('A', m)].mean() / t.loc[('A', 'population')].mean():.2f}")
        assert got == (bladder, cost), (rec, got)
        assert f"{bladder} mm" in text and f"{cost}x" in text and rec in text.replace("`benchmarks/results/", "`")


GAN_FAMILY = ("reg_cnn", "jrs_cnn", "reg_gan", "jrs_gana", "jrs_ganb")


def test_gan_family_numbers_are_the_records():
    "README, 09b and the GAN lesson quote the shipped GAN runs (summary.json, log.csv) and their registration record."
    from jrs_nb.checkpoints import WEIGHTS_DIR
    from jrs_nb.train import GAN_CPU
    summ = {a: json.loads((WEIGHTS_DIR / a / "summary.json").read_text()) for a in GAN_FAMILY}
    its = GAN_CPU["iterations"]
    assert {s["iterations"] for s in summ.values()} == {its}
    minutes = sum(s["training_seconds"] for s in summ.values()) / 60
    readme = " ".join(README.split())
    assert f"for {its} iterations each ({minutes:.0f} minutes for the five on 2 cores" in readme, minutes
    assert f"for {its} iterations" in " ".join(_nb_text("09b_pretrained.ipynb").split())
    lesson = " ".join(_nb_text("tutorials/gan.ipynb").split())
    t = means("registration_gan_demo0.csv")
    gain = {k: [t.loc[c, k] - t.loc[g, k] for g, c in (("reg_cnn", "reg"), ("jrs_cnn", "jrs_reg"))]
            for k in ("body error mm", "MSD mean")}
    quote = (f"body error {min(gain['body error mm']):.3f}-{max(gain['body error mm']):.3f} mm lower, mean MSD "
             f"{min(gain['MSD mean']):.3f}-{max(gain['MSD mean']):.3f} mm")
    assert quote in lesson, quote
    totals = pd.concat([pd.read_csv(WEIGHTS_DIR / a / "log.csv")["total"] for a in ("reg_gan", "jrs_gana", "jrs_ganb")])
    assert f"a generator loss of {totals.min():.2f}-{totals.max():.2f}" in lesson, (totals.min(), totals.max())
    fold = means("registration_shipped_demo0.csv").loc["reg_voxel", "fold %"]
    assert f"{fold:.2f} % of the body" in lesson, fold
    assert f"for {its} iterations with RMSProp at 1e-4" in lesson


def test_gan_clipping_prose_quotes_its_record():
    "08_train's reason for clipping the GAN critic at 0.05 comes from benchmarks/gan_clip.py's record."
    from jrs_nb.train import GAN_CPU
    df = pd.read_csv(ROOT / "benchmarks" / "results" / "gan_clip_demo0.csv")
    crit = df.assign(c=df["critic"].abs()).groupby("clip")["c"].mean()
    assert set(crit.index) >= {0.01, GAN_CPU["clip"]}
    md = " ".join(_nb_text("08_train.ipynb").split())
    quote = (f"mean |critic loss| was {crit[0.01]:.1g} at 0.01 and {crit[GAN_CPU['clip']]:.2f} at "
             f"{GAN_CPU['clip']:g}")
    assert quote in md, quote
