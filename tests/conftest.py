"Shared fixtures: a small toy dataset in the real jrs_nb layout (jrs_nb.data.fixtures.make_toy_dataset)."
import contextlib, io, shutil
import pytest
import torch

from jrs_nb.cli import main
from jrs_nb.data.fixtures import make_toy_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    "A clean toy dataset (3 patients x (1 planning + 2 daily), 40x48x56 at 3 mm), built once per session: do not modify."
    root = tmp_path_factory.mktemp("toy") / "toy"
    make_toy_dataset(root, n_patients=3, n_daily=2, seed=0)
    return root


@pytest.fixture
def toy_copy(toy_root, tmp_path):
    "A private copy of the toy dataset that a test may break."
    dst = tmp_path / "toy"
    shutil.copytree(toy_root, dst)
    return dst


def run_cli(*argv):
    "(exit code, stdout + stderr) of `jrs-nb ARGV`, in this process (`from conftest import run_cli`)."
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


def load_benchmark(name:str):
    "The script benchmarks/NAME.py as a module (`from conftest import load_benchmark`)."
    import importlib.util, pathlib
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
