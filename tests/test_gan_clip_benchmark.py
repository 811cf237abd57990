"benchmarks/gan_clip.py: its table from the log lines, and out-of-range arguments refused before any training."
import subprocess, sys
from pathlib import Path

import pandas as pd
from conftest import load_benchmark

ROOT = Path(__file__).parents[1]
gan_clip = load_benchmark("gan_clip")


def test_summary_is_per_clip_means():
    df = pd.DataFrame({"clip": [0.01, 0.01, 0.05, 0.05], "critic": [1e-6, -3e-6, 0.1, -0.3],
                       "adversarial": [2e-7, -2e-7, 0.05, 0.15], "total": [0.4, 0.5, 0.4, 0.6]})
    t = gan_clip.summary(df)
    assert list(t.index) == [0.01, 0.05]
    assert abs(t.loc[0.05, "mean |critic loss|"] - 0.2) < 1e-12 and abs(t.loc[0.01, "mean |critic loss|"] - 2e-6) < 1e-15
    assert abs(t.loc[0.05, "weighted term"] - 0.01 * 0.1) < 1e-12 and abs(t.loc[0.05, "mean total"] - 0.5) < 1e-12


def test_bad_arguments_are_refused(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gan_clip.py"), "--data", str(tmp_path),
                        "--clips", "0", "--out", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert r.returncode == 2 and "--clips" in r.stderr and not (tmp_path / "x.csv").exists()
