"""`jrs-nb finetune`: the fine-tuned run changes the weights, keeps the architecture and spacing,
loads where a run loads; bad input is refused with a clear message (exit 2), writes nothing."""
import json

import pytest
import torch

from jrs_nb.cli import main
from jrs_nb.checkpoints import load_model
from jrs_nb.data.io import LABELS_FILE, load_manifest
from jrs_nb.finetune import finetune
from jrs_nb.train import make_config, train


@pytest.fixture(scope="module")
def pop(toy_root, tmp_path_factory):
    "A smoke-sized population run on the toy training split."
    out = tmp_path_factory.mktemp("pop") / "run"
    cfg = make_config("smoke", arch="hard", data=str(toy_root), out=str(out), iterations=2,
                      val_pairs=0, threads=1)
    train(cfg, progress=False)
    return out


def _args(run, data, out, *extra, patient="T_p002", scans=("s01", "s02")):
    return ["finetune", "--run", str(run), "--data", str(data), "--patient", patient,
            "--scans", *scans, "--out", str(out), "--iterations", "2", "--threads", "1", *extra]


def test_finetune_changes_weights_keeps_architecture_and_spacing(pop, toy_root, tmp_path):
    out = tmp_path / "ft"
    s = finetune(pop, toy_root, "T_p002", ["s01", "s02"], out, iterations=2, threads=1)
    a, b = load_model(pop), load_model(out)
    assert a.config.to_dict() == b.config.to_dict()
    assert tuple(b.config.spacing) == (3., 3., 3.)
    assert any(not torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert s["finetune"]["pairs"] == ["s00->s01", "s00->s02", "s01->s02"]
    for f in ("model.pt", "config.json", "log.csv", "summary.json"): assert (out / f).exists(), f
    assert json.loads((out / "config.json").read_text())["model"] == a.config.to_dict()


def test_finetuned_run_works_with_infer(pop, toy_root, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(_args(pop, toy_root, out, scans=("s01",))) == 0
    assert "fine-tuned on T_p002 (s00->s01)" in capsys.readouterr().out
    pred = tmp_path / "pred"
    assert main(["infer", "--run", str(out), "--data", str(toy_root), "--out", str(pred),
                 "--limit", "1"]) == 0
    assert (pred / "predictions.json").exists()


def test_infer_patients(pop, toy_root, tmp_path, capsys):
    pred = tmp_path / "pred"
    base = ["infer", "--run", str(pop), "--data", str(toy_root), "--split", "train"]
    assert main(base + ["--out", str(pred), "--patients", "T_p001"]) == 0
    idx = json.loads((pred / "predictions.json").read_text())
    assert {p["patient"] for p in idx["pairs"].values()} == {"T_p001"}, idx["pairs"]
    assert main(base + ["--out", str(tmp_path / "p2"), "--patients", "T_p002"]) == 2
    assert "has no pair of patient(s) T_p002" in capsys.readouterr().err


def _drop_labels(root):
    (load_manifest(root).scan_dir("T_p002", "s02") / LABELS_FILE).unlink()


BAD = {  # name -> (argument changes, message)
    "patient": (dict(patient="T_p999"), "no patient 'T_p999'"),
    "scan": (dict(scans=("s07",)), "has no scan 's07'"),
    "uncontoured": (dict(), "has no contours, it cannot be fine-tuned on"),
    "spacing": (dict(run="pretrained:reg"), "the run was trained on [2.0, 2.0, 2.0] mm voxels"),
    "iterations": (dict(extra=("--iterations", "0")), "iterations must be >= 1"),
}

@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_refused_writes_nothing(name, pop, toy_copy, tmp_path, capsys):
    kw, msg = BAD[name]
    if name == "uncontoured": _drop_labels(toy_copy)
    out = tmp_path / "ft"
    argv = _args(kw.get("run", pop), toy_copy, out, *kw.get("extra", ()),
                 **{k: v for k, v in kw.items() if k in ("patient", "scans")})
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jrs-nb finetune: error:") and msg in err, err
    assert not out.exists()


def test_out_holding_a_run_refused_unless_overwrite(pop, toy_root, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(_args(pop, toy_root, out, scans=("s01",))) == 0
    before = (out / "model.pt").read_bytes()
    assert main(_args(pop, toy_root, out, scans=("s01",))) == 2
    assert "already holds a run (model.pt" in capsys.readouterr().err
    assert (out / "model.pt").read_bytes() == before
    assert main(_args(pop, toy_root, pop, scans=("s01",), *())) == 2
    assert "is the run being fine-tuned" in capsys.readouterr().err
    assert main(_args(pop, toy_root, out, "--overwrite", scans=("s01",), )) == 0
