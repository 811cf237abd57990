"""Losses beyond the notebook's unit tests (06_losses): NCC steering an optimisation, and the benchmark script's step."""
import pytest
import torch
import torch.nn.functional as F

from jrs_nb.losses import ncc_loss

torch.set_num_threads(1)


def _smooth(t, k=5): return F.avg_pool3d(t, k, 1, k // 2)


def test_ncc_drives_a_translation_the_right_way():
    "Gradient descent on 1 - NCC over a constant DVF recovers a 2-voxel x shift (with the layers' warp)."
    warp = pytest.importorskip("jrs_nb.layers").warp
    g = torch.Generator().manual_seed(0)
    moving = _smooth(torch.randn(1, 1, 32, 32, 32, generator=g), 7) * 5
    fixed = moving.roll(-2, 4)  # fixed(x) = moving(x + 2 voxels in x): phi = (0, 0, +2)
    shift = torch.zeros(1, 3, 1, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.1)
    for _ in range(80):
        opt.zero_grad()
        w = warp(moving, shift.expand(1, 3, 32, 32, 32), "input")
        loss = ncc_loss(w[..., 4:-4, 4:-4, 4:-4], fixed[..., 4:-4, 4:-4, 4:-4])
        loss.backward(); opt.step()
    assert torch.allclose(shift.detach().flatten(), torch.tensor([0., 0., 2.]), atol=0.15), shift.flatten()


def test_benchmark_step_runs():
    "The benchmark's measurement (bare and full steps) runs on a tiny case; no timing assertion."
    pytest.importorskip("jrs_nb.models.jrs")
    import importlib.util, pathlib
    spec = importlib.util.spec_from_file_location("bench_models", pathlib.Path(__file__).parents[1] / "benchmarks" / "models.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    r = bench.measure("reg", 48, 1, "cpu", "fp32", "train", repeats=1, warmup=0)
    assert r["bare_s"] > 0 and r["full_s"] > 0 and r["full_peak_mb"] > 0 and r["ratio"] > 0
    r = bench.measure("seg", 48, 1, "cpu", "fp32", "infer", repeats=1, warmup=0)
    assert r["time_s"] > 0
