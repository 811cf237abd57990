"`jrs-nb infer --refine N`: test-time refinement through the command line, on the toy dataset."
import json

import numpy as np
import SimpleITK as sitk

from jrs_nb.cli import main


def test_infer_refine_records_steps_and_changes_the_field(toy_root, tmp_path):
    plain, refined = tmp_path / "plain", tmp_path / "refined"
    base = ["infer", "--run", "pretrained:reg", "--data", str(toy_root), "--limit", "1", "--split", "train"]
    assert main(base + ["--out", str(plain)]) == 0
    assert main(base + ["--out", str(refined), "--refine", "5"]) == 0
    idx = json.loads((refined / "predictions.json").read_text())
    assert idx["refine_steps"] == 5 and "refine_steps" not in json.loads((plain / "predictions.json").read_text())
    (key, entry), = idx["pairs"].items()
    read = lambda root: sitk.GetArrayFromImage(sitk.ReadImage(str(root / key / "dvf.nii")))
    a, b = read(plain), read(refined)
    assert a.shape == b.shape and np.isfinite(b).all() and np.abs(a - b).max() > 1e-3


def test_infer_refine_out_of_range_is_refused(toy_root, tmp_path, capsys):
    out = tmp_path / "p"
    rc = main(["infer", "--run", "pretrained:reg", "--data", str(toy_root), "--out", str(out), "--refine", "-1"])
    assert rc == 2 and "refinement steps must lie in [0, 10000]" in capsys.readouterr().err
    assert not (out / "predictions.json").exists()
