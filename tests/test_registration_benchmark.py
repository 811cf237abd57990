"benchmarks/registration.py: the field scores are right on known fields, and the script runs end to end."
import numpy as np
import pytest
from conftest import load_benchmark

from jrs_nb.data.dataset import JRSDataset

bench = load_benchmark("registration")


@pytest.fixture(scope="module")
def pair(toy_root):
    ds = JRSDataset(toy_root, "val", load_dvf=True)
    pv = ds[0]
    if pv.dvf is None: pytest.skip("the toy dataset has no true DVF")
    return pv


def test_scores_of_the_truth_and_of_half_of_it(pair):
    s = bench.field_scores(pair.dvf, pair, 0.)
    assert s["body error mm"] == pytest.approx(0, abs=1e-6) and s["cosine"] == pytest.approx(1, abs=1e-6)
    assert s["slope"] == pytest.approx(1, abs=1e-6) and s["fold %"] == 0
    h = bench.field_scores(0.5 * pair.dvf, pair, 0.)
    assert h["slope"] == pytest.approx(0.5, abs=1e-4) and h["cosine"] == pytest.approx(1, abs=1e-4)


def test_script_writes_its_record(toy_root, tmp_path, capsys):
    out = tmp_path / "r.csv"
    rc = bench.main(["--data", str(toy_root), "--runs", "pretrained:reg", "--pairs", "1", "--steps", "3",
                     "--no-elastix", "--threads", "1", "--out", str(out)])
    assert rc == 0
    import pandas as pd
    df = pd.read_csv(out)
    assert list(df.method) == ["zero", "reg", "reg + refine 3"] and np.isfinite(df["body error mm"]).all()
    assert df["identity |phi| mm"].iloc[1:].ge(0).all() and np.isnan(df["identity |phi| mm"].iloc[0])
    assert "| reg + refine 3 |" in capsys.readouterr().out
