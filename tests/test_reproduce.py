"""`jrs-nb reproduce` end to end on the smoke preset (tiny cohort, all five CS networks, elastix, report), a failing
run recorded while the rest go on, resume that re-executes only what failed (and what reads it), the GAN family, and
a bad data root on the command line. The unit tests (plan, parameters cells, bookkeeping) are in 12_reproduce."""
import json, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from jrs_nb.reproduce import read_status, STATUS_FILE
from jrs_nb.models.jrs import NETWORKS as CS_ARCHS
from jrs_nb.train import GAN_ARCHS


def _reproduce(root, *extra):
    return subprocess.run([sys.executable, "-c", "import sys; from jrs_nb.cli import main; sys.exit(main(sys.argv[1:]))",
                           "reproduce", "--preset", "smoke", "--out", str(root), "--jobs", "2", *extra],
                          capture_output=True, text=True, timeout=900)


def _finished(root):
    return {f.parent.name: json.loads(f.read_text()).get("finished") for f in Path(root).glob(f"*/{STATUS_FILE}")}


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    "A smoke reproduction whose hard-sharing run fails (a corrupt checkpoint in its folder), then the rerun."
    root = tmp_path_factory.mktemp("repro") / "out"
    (root / "train_hard").mkdir(parents=True)
    (root / "train_hard" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    first = _reproduce(root)
    state = {"first": first, "status1": {n: read_status(root / n) for n in _finished(root)}, "finished1": _finished(root),
             "results1": pd.read_csv(root / "evaluate" / "results.csv") if (root / "evaluate" / "results.csv").exists() else None}
    (root / "train_hard" / "checkpoint.pt").unlink()
    state["second"] = _reproduce(root)
    state["finished2"] = _finished(root)
    return root, state


def test_failed_run_is_recorded_and_the_rest_go_on(repro):
    root, s = repro
    assert s["first"].returncode == 1, s["first"].stdout[-3000:] + s["first"].stderr[-3000:]
    st = s["status1"]
    assert st["train_hard"]["status"] == "failed" and "checkpoint" in st["train_hard"]["error"], st["train_hard"]
    for n in ["cohort", "elastix", "evaluate", "report"] + [f"train_{a}" for a in CS_ARCHS if a != "hard"]:
        assert st[n]["status"] == "done", (n, st[n].get("error"))
    assert "train_hard: FAILED" in s["first"].stdout and "report:" in s["first"].stdout
    assert set(s["results1"]["method"]) == {"seg", "reg", "jrs_reg", "crossstitch", "elastix", "unwarped"}


def test_rerun_reexecutes_only_the_failed_run_and_its_readers(repro):
    root, s = repro
    assert s["second"].returncode == 0, s["second"].stdout[-3000:] + s["second"].stderr[-3000:]
    f1, f2 = s["finished1"], s["finished2"]
    rerun = {n for n in f2 if f2[n] != f1.get(n)}
    assert rerun == {"train_hard", "evaluate", "report"}, rerun
    assert s["second"].stdout.count("done earlier, skipped") == 6, s["second"].stdout   # cohort, 4 networks, elastix
    assert all(read_status(root / n)["status"] == "done" for n in f2)


def test_report_has_the_tables_and_numbers(repro):
    root, _ = repro
    res = pd.read_csv(root / "evaluate" / "results.csv")
    assert set(res["method"]) == set(CS_ARCHS) | {"elastix", "unwarped"}
    assert set(res["split"]) == {"val", "test"}
    # elastix registers the tiny phantom well; the 4-iteration networks are untrained but their DVF path is scored
    el = res[(res["method"] == "elastix") & (res["split"] == "val")]
    assert el["dsc"].mean() > 0.6, el["dsc"].mean()
    assert res[(res["method"] == "crossstitch") & (res["path"] == "reg")]["msd"].notna().all()
    md = (root / "report" / "report.md").read_text()
    for needle in ("MSD (mm), validation", "MSD (mm), independent test", "DSC, validation", "95%HD (mm), independent test",
                   "published val (HMC), seg path", "Verdict", "Per-organ path choice", "DVF: error against the ground truth",
                   "Run times", "Cross-stitch alphas", "quartile_contours.png", "train_hard"):
        assert needle in md, needle
    html = (root / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "<table" in html and "figures/" not in html
    v = json.loads((root / "report" / "verdict.json").read_text())["verdict"]
    assert len(v) == 4 and all(x["outcome"] in ("reproduced", "partly", "not reproduced", "not tested") for x in v)
    assert (root / "train_crossstitch" / "train.ipynb").exists() and (root / "train_crossstitch" / "losses.png").exists()
    summ = json.loads((root / "train_seg" / "summary.json").read_text())
    assert summ["iterations"] == 4 and summ["finished"]


def test_include_gan_runs_the_gan_family_end_to_end(tmp_path):
    "--include-gan adds the five GAN-paper variants (critics included) to the runs, the evaluation and the report."
    root = tmp_path / "gan"
    r = _reproduce(root, "--archs", "crossstitch", "--include-gan")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "10/10 steps done" in r.stdout, r.stdout[-2000:]
    res = pd.read_csv(root / "evaluate" / "results.csv")
    assert set(res["method"]) == {"crossstitch", "elastix", "unwarped", *GAN_ARCHS}
    for a in ("reg_gan", "jrs_gana", "jrs_ganb"):   # the critic was trained: its loss is in the log
        assert "critic" in pd.read_csv(root / f"train_{a}" / "log.csv").columns, a
    md = (root / "report" / "report.md").read_text()
    assert all(f"| {a} |" in md for a in GAN_ARCHS)
    v = json.loads((root / "report" / "verdict.json").read_text())["verdict"]
    assert [x["outcome"] for x in v][:3] == ["not tested"] * 3   # one CS network ranks nothing
    assert v[3]["outcome"] in ("reproduced", "partly", "not reproduced")   # ... but meets elastix


def test_bad_data_root_fails_fast_naming_it(tmp_path):
    import subprocess
    r = subprocess.run(["jrs-nb", "reproduce", "--preset", "smoke", "--data", str(tmp_path / "nowhere"),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nowhere" in r.stderr and "not a folder" in r.stderr
    assert not (tmp_path / "out").exists()
