"benchmarks/finetune.py (the per-patient experiment) runs end to end on small data and writes its record."
import pandas as pd
import pytest
from conftest import load_benchmark

from jrs_nb.data.fixtures import make_toy_dataset
from jrs_nb.train import make_config, train

bench = load_benchmark("finetune")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    "2 patients x (planning + 3 daily scans), one of them in validation; a smoke `hard` run trained on it."
    root = tmp_path_factory.mktemp("ftb") / "toy"
    make_toy_dataset(root, n_patients=2, n_daily=3, n_val=1, seed=1)
    run = root.parent / "run"
    train(make_config("smoke", arch="hard", data=str(root), out=str(run), iterations=2, val_pairs=0, threads=1),
          progress=False)
    return root, run


def test_per_patient_experiment_writes_its_record(cohort, tmp_path, capsys):
    root, run = cohort
    out = tmp_path / "ft.csv"
    assert bench.main(["--data", str(root), "--run", str(run), "--fractions", "1", "--iterations", "2",
                       "--threads", "1", "--no-elastix", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df.method) == {"population", "planning + 1"} and set(df.path) == {"reg", "seg"}
    assert set(df.fraction) == {"s02", "s03"}          # the later fractions: after the one fine-tuned on
    assert df.msd.notna().any()
    t = pd.read_csv(tmp_path / "ft_times.csv")
    assert (t.loc[t.method == "planning + 1", "finetune s"] > 0).all()
    out = capsys.readouterr().out
    assert "| planning + 1 (reg) |" in out and "| planning + 1 (seg) |" in out and "| population (reg) |" in out


def test_too_few_fractions_refused(cohort, tmp_path, capsys):
    root, run = cohort
    assert bench.main(["--data", str(root), "--run", str(run), "--fractions", "2", "--no-elastix",
                       "--out", str(tmp_path / "x.csv")]) == 2
    assert "no validation or test patient has 4 daily scans" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_refine_only_adds_its_rows_to_the_record(cohort, tmp_path):
    "--refine N --only-refine measures the refined population network and keeps the record's other methods."
    root, run = cohort
    out = tmp_path / "ft.csv"
    common = ["--data", str(root), "--run", str(run), "--fractions", "1", "--threads", "1", "--no-elastix",
              "--out", str(out)]
    assert bench.main(common + ["--iterations", "2"]) == 0
    before = pd.read_csv(out)
    assert bench.main(common + ["--refine", "2", "--only-refine"]) == 0
    df = pd.read_csv(out)
    assert set(df.method) == {"population", "planning + 1", "population + refine 2"}
    pd.testing.assert_frame_equal(df[df.method != "population + refine 2"].reset_index(drop=True), before)
    assert set(df[df.method == "population + refine 2"].fraction) == {"s02", "s03"}
    t = pd.read_csv(tmp_path / "ft_times.csv")
    assert set(t.method) == {"population", "planning + 1", "population + refine 2"}
