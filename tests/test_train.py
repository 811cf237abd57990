"""Training end to end: a real kill and resume gives the uninterrupted result, torchrun data parallel on CPU (gloo),
the GAN family, and clear errors on the command line."""
import json, os, signal, subprocess, sys, time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from jrs_nb.data.fixtures import make_toy_dataset
from jrs_nb.train import make_config, train
from jrs_nb.checkpoints import load_model, load_checkpoint


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy") / "data"
    make_toy_dataset(root, n_patients=3, n_daily=2)
    return root


def _same_weights(a, b):
    sa, sb = load_model(a).state_dict(), load_model(b).state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_after_sigkill_equals_straight_run(toy, tmp_path):
    cfg = make_config("smoke", arch="hard", data=str(toy), out=str(tmp_path / "straight"), iterations=6, ckpt_every=1,
                      val_pairs=0, threads=1)
    train(cfg, progress=False)
    killed = tmp_path / "killed"
    cmd = ["jrs-nb", "train", "--arch", "hard", "--preset", "smoke", "--data", str(toy), "--out", str(killed),
           "--iterations", "6", "--ckpt-every", "1", "--val-pairs", "0", "--threads", "1", "--quiet"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ck, t0, it = killed / "checkpoint.pt", time.time(), 0
    while time.time() - t0 < 300 and p.poll() is None:
        if ck.exists():
            try: it = load_checkpoint(ck)["iteration"]
            except Exception: it = 0   # being replaced right now
            if it >= 2: break
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before it could be killed"
    p.send_signal(signal.SIGKILL); p.wait()
    it = load_checkpoint(ck)["iteration"]
    assert 2 <= it < 6, it
    assert not (killed / "model.pt").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(ck)["iteration"] == 6
    assert _same_weights(tmp_path / "straight", killed), f"killed at {it} and resumed: weights differ"
    log = pd.read_csv(killed / "log.csv")
    assert log["iteration"].tolist() == [1, 2, 3, 4, 5, 6]


def test_torchrun_two_processes_gloo(toy, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["torchrun", "--nproc_per_node", "2", "--no-python", "jrs-nb", "train", "--arch", "crossstitch",
                        "--preset", "smoke", "--data", str(toy), "--out", str(out), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["world_size"] == 2 and s["finished"] and s["iterations"] == 4
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 4
    assert len(pd.read_csv(out / "log.csv")) == 4            # rank 0 logs once per iteration
    assert r.stdout.count("iterations") == 1                  # and only rank 0 prints


def test_gan_family_smoke(toy, tmp_path):
    s = train(make_config("smoke", arch="jrs_gana", data=str(toy), out=str(tmp_path / "gan"), iterations=2,
                          val_pairs=0), progress=False)
    assert s["finished"] and "critic" in s["final"] and "adversarial" in s["final"]
    log = pd.read_csv(tmp_path / "gan" / "log.csv")
    assert {"critic", "adversarial", "ncc", "dice_warp", "bending"} <= set(log.columns)


def test_cli_errors(toy, tmp_path):
    r = subprocess.run(["jrs-nb", "train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--preset", "smoke"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "nowhere" in r.stderr and "not a folder" in r.stderr
    r = subprocess.run(["jrs-nb", "train", "--data", str(toy), "--out", str(tmp_path / "o"), "--preset", "smoke", "--patch", "50"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "multiple of 4" in r.stderr
