"""The weights shipped in the package: they load, they reproduce their recorded validation DSC on a cohort
regenerated from the recorded seed, and the command line accepts `pretrained:NAME`."""
import json, subprocess, sys

import numpy as np, pytest

from jrs_nb.phantom import generate_cohort
from jrs_nb.pretrained import available, pretrained, record
from jrs_nb.validation import pair_dsc
from jrs_nb.checkpoints import WEIGHTS_DIR

NAMES = ("seg", "reg", "jrs_reg", "hard", "crossstitch")
GAN_NAMES = ("reg_cnn", "jrs_cnn", "reg_gan", "jrs_gana", "jrs_ganb")   # the GAN paper's variants

@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    "The cohort the shipped networks were trained and validated on, regenerated from its recorded preset and seed."
    gen = record("crossstitch")["cohort"]["generator"]
    root = tmp_path_factory.mktemp("pretrained") / "cohort"
    generate_cohort(root, gen["preset"], seed=gen["seed"], **gen.get("overrides", {}))
    return root

def test_all_five_ship_within_30_mb():
    "The CS paper's five networks and the GAN paper's five variants, each with its logs and validation record."
    assert set(NAMES) | set(GAN_NAMES) <= set(available())
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.rglob("*") if p.is_file())
    assert total < 30 * 2**20, f"{total / 2**20:.1f} MiB"
    for n in NAMES + GAN_NAMES:
        for f in ("model.pt", "config.json", "log.csv", "val.csv", "validation.json"):
            assert (WEIGHTS_DIR / n / f).exists(), (n, f)
    assert (WEIGHTS_DIR / "crossstitch" / "alphas.jsonl").exists()

@pytest.mark.parametrize("name", ["seg", "crossstitch", "jrs_gana"])
def test_recorded_dsc_reproduces(cohort, name):
    "Two validation pairs: the DSC of the shipped float16 weights matches the record within 0.02."
    rec = {(r["pair"], r["path"]): r for r in record(name)["pairs"]}
    rows = pair_dsc(pretrained(name), cohort, "val", limit=2)
    assert rows
    for r in rows:
        want = rec[(r["pair"], r["path"])]
        for o in ("prostate", "seminal_vesicles", "rectum", "bladder"):
            assert abs(r[o] - want[o]) <= 0.02, (name, r["pair"], r["path"], o, r[o], want[o])

def test_infer_cli_takes_pretrained(cohort, tmp_path):
    out = tmp_path / "pred"
    r = subprocess.run(["jrs-nb", "infer", "--run", "pretrained:crossstitch", "--data",
                        str(cohort), "--out", str(out), "--limit", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    idx = json.loads((out / "predictions.json").read_text())
    assert idx["method"] == "crossstitch" and len(idx["pairs"]) == 1
    r = subprocess.run(["jrs-nb", "infer", "--run", "pretrained:unet3000", "--data",
                        str(cohort), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "crossstitch" in r.stderr and not (tmp_path / "x").exists()
