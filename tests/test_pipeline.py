"""The command-line chain of issue 4 on a toy dataset: train -> infer -> elastix -> evaluate, and the files and numbers
each step leaves behind."""
import json, subprocess

import pandas as pd
import pytest

from jrs_nb.data.fixtures import make_toy_dataset


def run(*args, cwd=None):
    r = subprocess.run(["jrs-nb", *map(str, args)], capture_output=True, text=True, timeout=900, cwd=cwd)
    assert r.returncode == 0, f"jrs-nb {' '.join(map(str, args))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r.stdout


def test_train_infer_elastix_evaluate(tmp_path):
    data = tmp_path / "toy"
    make_toy_dataset(data, n_patients=3, n_daily=2)
    run("train", "--arch", "hard", "--preset", "smoke", "--data", data, "--out", tmp_path / "run", "--quiet")
    out = run("infer", "--run", tmp_path / "run", "--data", data, "--out", tmp_path / "pred", "--tile", "96")
    assert "2 pairs" in out
    idx = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert idx["method"] == "hard" and len(idx["pairs"]) == 2
    assert all(set(p["files"]) == {"seg", "warped_labels", "dvf", "warped_image"} for p in idx["pairs"].values())
    run("elastix", "--data", data, "--out", tmp_path / "elx", "--iterations", "20", "--resolutions", "2")
    out = run("evaluate", "--pred", tmp_path / "pred", tmp_path / "elx", "--out", tmp_path / "eval", "--reference", "hard")
    assert "MSD (val)" in out
    res = pd.read_csv(tmp_path / "eval" / "results.csv")
    assert set(zip(res["method"], res["path"])) == {("hard", "seg"), ("hard", "reg"), ("elastix", "-"),
                                                      ("unwarped", "-")}   # the planning contours as they are
    assert len(res[res.method == "elastix"]) == 2 * 4                     # 2 pairs x 4 organs
    el = res[res.method == "elastix"]
    assert el["dsc"].between(0, 1).all() and (el["msd"] >= 0).all()
    pairs = pd.read_csv(tmp_path / "eval" / "pairs.csv")
    assert {"fold_pct", "jac_std", "dvf_err_mean_body", "dvf_err_p95_prostate", "seconds"} <= set(pairs.columns)
    assert (pairs["seconds"] > 0).all()
    for f in ("msd_val.md", "msd_val.tex", "dsc_val.csv", "box_msd_val.png", "path_choices.csv"):
        assert (tmp_path / "eval" / f).exists(), f


def test_evaluate_rejects_a_folder_without_predictions(tmp_path):
    r = subprocess.run(["jrs-nb", "evaluate", "--pred", str(tmp_path), "--out", str(tmp_path / "e")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a predictions folder" in r.stderr
