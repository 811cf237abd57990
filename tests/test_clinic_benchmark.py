"benchmarks/clinic.py (the per-clinic experiment) runs end to end on small data and writes its record."
import pandas as pd
import pytest
from conftest import load_benchmark

from jrs_nb.data.fixtures import make_toy_dataset
from jrs_nb.data.io import load_manifest
from jrs_nb.train import make_config, train

bench = load_benchmark("clinic")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    "4 patients x (planning + 2 daily scans): 1 training, 1 validation, 2 test; a smoke `reg` run trained on it."
    root = tmp_path_factory.mktemp("clinic") / "toy"
    make_toy_dataset(root, n_patients=4, n_daily=2, n_val=1, n_test=2, seed=2)
    run = root.parent / "run"
    train(make_config("smoke", arch="reg", data=str(root), out=str(run), iterations=2, val_pairs=0, threads=1),
          progress=False)
    return root, run, load_manifest(root)


def test_per_clinic_experiment_writes_its_record(cohort, tmp_path, capsys):
    root, run, m = cohort
    first, held = m.splits["test"]
    out = tmp_path / "clinic.csv"
    assert bench.main(["--data", str(root), "--run", str(run), "--train-patients", first, "--iterations", "2",
                       "--site-a-pairs", "1", "--threads", "1", "--no-elastix", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df.method) == {"population", "fine-tuned on site B"} and set(df.site) == {"A", "B"}
    assert set(df[df.site == "B"].patient) == {held}                  # scored on the patient left out only
    assert len(df[(df.site == "A") & (df.method == "population")].fraction.unique()) == 1   # --site-a-pairs 1
    assert df.msd.notna().any() and (df["finetune s"] > 0).all()
    printed = capsys.readouterr().out
    assert "| site B: fine-tuned on site B |" in printed and "| site A: population |" in printed


def test_train_patient_outside_site_b_refused(cohort, tmp_path, capsys):
    root, run, m = cohort
    assert bench.main(["--data", str(root), "--run", str(run), "--train-patients", m.splits["val"][0],
                       "--no-elastix", "--out", str(tmp_path / "x.csv")]) == 2
    assert "are not site-B test patients" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def wide_cohort(root, bladder):
    "A toy cohort standing for site-A patients whose bladder range is `bladder` (as `jrs-nb phantom --bladder-a`)."
    m = make_toy_dataset(root, n_patients=2, n_daily=2, n_val=0, n_test=0, seed=5)
    m.sites = {"A": {"bladder_factor": list(bladder)}}
    m.save(root)
    return root


def test_synthetic_remedy_trains_on_the_wide_cohort_and_scores_the_same_patients(cohort, tmp_path, capsys):
    root, run, m = cohort
    first, held = m.splits["test"]
    wide = wide_cohort(tmp_path / "wide", (0.5, 2.0))
    out = tmp_path / "synthetic.csv"
    assert bench.main(["--data", str(root), "--run", str(run), "--train-patients", first, "--synthetic", str(wide),
                       "--iterations", "2", "--site-a-pairs", "1", "--threads", "1", "--no-elastix",
                       "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df.method) == {"population", "trained with larger bladder motion"}
    assert set(df[df.site == "B"].patient) == {held}                  # the same patients as the other remedy
    assert set(df["train patients"].iloc[0].split()) == set(load_manifest(wide).splits["train"])
    assert df["train data"].iloc[0] == "wide" and df.msd.notna().any()
    assert "| site B: trained with larger bladder motion |" in capsys.readouterr().out


def test_synthetic_remedy_refuses_a_protocol_range_cohort(cohort, tmp_path):
    root, run, m = cohort
    narrow = wide_cohort(tmp_path / "narrow", (0.8, 1.25))
    with pytest.raises(SystemExit, match="filling protocol's, no larger motion"):
        bench.main(["--data", str(root), "--run", str(run), "--synthetic", str(narrow), "--no-elastix",
                    "--out", str(tmp_path / "x.csv")])
    assert not (tmp_path / "x.csv").exists()
