"benchmarks/qa.py: the flag's limits are chosen together, and a feature that only adds false alarms is left out."
import numpy as np
import pandas as pd
from conftest import load_benchmark

bench = load_benchmark("qa")


def test_joint_limits_keep_the_informative_feature_only():
    rng = np.random.default_rng(0)
    bad = np.r_[np.ones(20, bool), np.zeros(80, bool)]
    df = pd.DataFrame({"bad": bad, "empty": False,
                       "seg_reg_msd": np.where(bad, 3., 1.) + rng.normal(0, .1, 100),   # separates perfectly
                       "log_volume_ratio": rng.uniform(0, 1, 100),                     # noise
                       "shift_mm": np.nan})                                            # never measured
    lim, j = bench.joint_limits(df)
    assert 1.0 < lim["seg_reg_msd"] < 2.8 and lim["log_volume_ratio"] is None and lim["shift_mm"] is None, lim
    assert j > 0.95   # the cuts are quantiles: the best one may flag a good contour or two
