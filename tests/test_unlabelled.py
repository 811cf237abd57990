"""Unlabelled daily scans are first-class (issue 23): a daily scan without contours is "predict
only" in check-data, contoured by infer (by every network, `seg` included), and skipped, with the
reason, by evaluate, which adds the unwarped planning contours as a baseline row."""
import pandas as pd
import pytest

from jrs_nb.core import ORGAN_NAMES
from jrs_nb.data.io import load_manifest, LABELS_FILE
from jrs_nb.predictions import load_index, read_prediction

from conftest import run_cli as run


@pytest.mark.parametrize("net", ["seg", "reg"])
def test_unlabelled_daily_predicted_not_scored(toy_copy, tmp_path, net):
    m = load_manifest(toy_copy)
    p0, p1 = m.split_pairs("val")
    (m.scan_dir(p0["patient"], p0["fixed"]) / LABELS_FILE).unlink()   # nobody has contoured it
    key, key1 = f"{p0['patient']}/{p0['fixed']}", f"{p1['patient']}/{p1['fixed']}"
    code, out = run("check-data", toy_copy)
    assert code == 0 and f"PREDICT ONLY  {key}: " in out and "NOT usable" not in out, out
    pred = tmp_path / "pred"
    code, out = run("infer", "--run", f"pretrained:{net}", "--data", toy_copy, "--out", pred)
    assert code == 0, out
    idx = load_index(pred)
    assert sorted(idx["pairs"]) == sorted([key, key1])
    assert idx["pairs"][key]["unlabelled"] and "unlabelled" not in idx["pairs"][key1]
    kind = "seg" if net == "seg" else "warped_labels"
    assert read_prediction(pred, p0["patient"], p0["fixed"], kind).max() > 0   # contoured
    code, out = run("evaluate", "--pred", pred, "--out", tmp_path / "eval")
    want = f"skipped 1 pair(s), not scored (no daily contours):\n  {key}: daily scan unlabelled"
    assert code == 0 and want in out, out
    assert out.startswith("1 pairs, "), out   # the labelled pair is scored
    # the planning contours as they are: the baseline row, scored on the labelled pair only
    res = pd.read_csv(tmp_path / "eval" / "results.csv")
    unw = res[res.method == "unwarped"]
    assert list(unw.pair.unique()) == [key1] and sorted(unw.organ) == sorted(ORGAN_NAMES), unw
    assert "unwarped" in out   # in the MSD table printed
