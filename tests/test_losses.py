"""Losses: checks beyond the notebook (MONAI on more cases, axes, precision, real networks, the benchmark's step)."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from jrs_nb.core import LEVELS, JRSOutput, MultiLevel, PairBatch, crop_to_level, level_size
from jrs_nb.losses import (CS_WEIGHTS, LOSS_TERMS, bending_energy, bending_terms, box_sum, dice_loss, dice_per_organ,
                           gan_generator_loss, jrs_loss, local_ncc, ncc_loss)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")  # inside MONAI
monai_losses = pytest.importorskip("monai.losses")


def _smooth(t, k=5): return F.avg_pool3d(t, k, 1, k // 2)


def _batch(n=48, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    fixed = (3 * _smooth(torch.randn(B, 1, n, n, n, generator=g))).clamp(-1, 1)
    seg = torch.zeros(B, 1, n, n, n, dtype=torch.long); c = n // 2
    seg[:, :, c-7:c+7, c-7:c, c-7:c] = 1; seg[:, :, c-7:c+7, c-7:c, c:c+7] = 2
    seg[:, :, c-7:c+7, c:c+7, c-7:c] = 3; seg[:, :, c-7:c+7, c:c+7, c:c+7] = 4
    return PairBatch(fixed, fixed.roll(2, 4), seg, seg.roll(2, 4))


# --- MONAI, more cases than the notebook ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,shape", [(0, (1, 9, 10, 11)), (1, (3, 16, 12, 20)), (2, (2, 30, 30, 30))])
def test_dice_matches_monai(seed, shape):
    g = torch.Generator().manual_seed(seed)
    B, *sp = shape
    probs = torch.softmax(2 * torch.randn(B, 5, *sp, generator=g), 1)
    labels = torch.randint(0, 5, (B, 1, *sp), generator=g)
    labels[0][labels[0] == 2] = 0  # an organ absent from one sample
    ref = monai_losses.DiceLoss(include_background=False, to_onehot_y=True, softmax=False, smooth_nr=1e-7, smooth_dr=1e-7)
    assert abs(dice_loss(probs, labels).item() - ref(probs, labels).item()) < 1e-6
    ref_b = monai_losses.DiceLoss(include_background=False, to_onehot_y=True, smooth_nr=1e-7, smooth_dr=1e-7, batch=True)
    assert abs(dice_loss(probs, labels, batch=True).item() - ref_b(probs, labels).item()) < 1e-6
    # softmax applied by MONAI on logits == our softmax of logits
    logits = torch.randn(B, 5, *sp, generator=g)
    ref_s = monai_losses.DiceLoss(include_background=False, to_onehot_y=True, softmax=True, smooth_nr=1e-7, smooth_dr=1e-7)
    assert abs(dice_loss(logits.softmax(1), labels).item() - ref_s(logits, labels).item()) < 1e-6


@pytest.mark.parametrize("seed,shape", [(0, (1, 20, 20, 20)), (1, (2, 18, 26, 22))])
def test_ncc_squared_matches_monai_in_the_interior(seed, shape):
    g = torch.Generator().manual_seed(seed)
    B, *sp = shape
    a = _smooth(torch.randn(B, 1, *sp, generator=g)); b = 0.5 * a + _smooth(torch.randn(B, 1, *sp, generator=g)) + 0.3
    ref = monai_losses.LocalNormalizedCrossCorrelationLoss(3, 9, "rectangular", "none", 0., 1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mon = -ref(a, b)
    ours = local_ncc(a, b) ** 2
    inner = (..., slice(4, -4), slice(4, -4), slice(4, -4))
    assert (ours[inner] - mon[inner]).abs().max() < 1e-5
    # at the border the windows differ (ours truncated, MONAI zero-padded): not equal there, and ours is offset invariant
    assert (ours - mon).abs().max() > 1e-3
    assert (local_ncc(a, b) - local_ncc(a + 5, b - 2)).abs().max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_bending_energy_matches_monai_and_scales_with_spacing(seed):
    g = torch.Generator().manual_seed(seed)
    dvf = 4 * _smooth(torch.randn(2, 3, 14, 17, 20, generator=g))
    ref = monai_losses.BendingEnergyLoss()(dvf).item()
    assert abs(bending_energy(dvf).item() - ref) < 1e-6 * max(1, ref)
    assert abs(bending_energy(dvf, (3., 3., 3.)).item() * 81 - ref) < 1e-6 * max(1, ref)


# --- bending energy: axes and spacing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_bending_energy_only_from_the_varying_axis(axis):
    sp = (1.5, 0.8, 2.5)
    shape = (7, 8, 9)
    coord = torch.arange(shape[axis], dtype=torch.float64) * sp[axis]
    view = [1, 1, 1]; view[axis] = -1
    f = (0.5 * coord ** 3).view(*view).expand(*shape)            # f''' = 3 coord: varies, not constant
    dvf = torch.stack([f, 2 * f, -f])[None]                      # (1,3,D,H,W), components scaled 1, 2, -1
    terms = {k: v.mean().item() for k, v in bending_terms(dvf, sp).items()}
    name = "zyx"[axis] * 2
    assert terms[name] > 0
    assert all(abs(v) < 1e-12 for k, v in terms.items() if k != name), terms
    # exact value: second derivative of 0.5 c^3 is 3 c (the central difference is exact for cubics)
    c = coord[1:-1]
    expect = ((3 * c) ** 2).mean().item() * (1 + 4 + 1) / 3
    assert abs(terms[name] - expect) < 1e-9 * expect


def test_bending_energy_rejects_channels_last():
    with pytest.raises(ValueError, match="channels-first"):
        bending_energy(torch.zeros(1, 10, 10, 10, 3))
    with pytest.raises(ValueError, match="spacing"):
        bending_energy(torch.zeros(1, 3, 5, 5, 5), (1., 1.))


# --- NCC properties ---------------------------------------------------------------------------------------------------
def test_box_sum_equals_dense_ones_convolution():
    x = torch.rand(2, 2, 13, 11, 12, dtype=torch.float64)
    dense = F.conv3d(F.pad(x, (4,) * 6).view(4, 1, 21, 19, 20), torch.ones(1, 1, 9, 9, 9, dtype=torch.float64))
    assert torch.allclose(box_sum(x, 9), dense.view(2, 2, 13, 11, 12), atol=1e-10)


def test_ncc_in_range_and_bf16_safe():
    g = torch.Generator().manual_seed(0)
    a = _smooth(torch.randn(2, 1, 24, 24, 24, generator=g)); b = _smooth(torch.randn(2, 1, 24, 24, 24, generator=g))
    cc = local_ncc(a, b)
    assert cc.dtype == torch.float32 and cc.abs().max() <= 1 + 1e-4
    lo = local_ncc(a.bfloat16(), b.bfloat16())
    assert lo.dtype == torch.float32 and (lo - cc).abs().mean() < 0.05  # computed in float32 from bf16 inputs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(ncc_loss(a, b)) and ncc_loss(a, b).dtype == torch.float32


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


# --- the loss sets on hand-made and on real network outputs -------------------------------------------------------
def _fake_output(batch, noise, seed=0):
    g = torch.Generator().manual_seed(seed); lv = []
    for l in LEVELS:
        f, s = crop_to_level(batch.fixed, l), crop_to_level(batch.fixed_seg, l)
        oh = F.one_hot(s[:, 0], 5).permute(0, 4, 1, 2, 3).float()
        lv.append(JRSOutput(seg=(10 * oh + noise * torch.randn(oh.shape, generator=g)).requires_grad_(),
                            dvf=(noise * torch.randn(f.shape[0], 3, *f.shape[2:], generator=g)).requires_grad_(),
                            warped_image=(f + noise * torch.randn(f.shape, generator=g)).requires_grad_(),
                            warped_seg=(oh + noise * torch.rand(oh.shape, generator=g)).softmax(1).requires_grad_()))
    return MultiLevel(*lv)


@pytest.mark.parametrize("name", list(LOSS_TERMS))
def test_jrs_loss_terms_and_gradients(name):
    b = _batch()
    out = _fake_output(b, 0.7)
    total, logs = jrs_loss(name, out, b)
    assert set(logs) == {f"{l}/{t}" for l in LEVELS for t in LOSS_TERMS[name]} | set(LOSS_TERMS[name]) | {"total"}
    assert abs(logs["total"] - sum(CS_WEIGHTS[t] * logs[t] for t in LOSS_TERMS[name])) < 1e-5
    assert abs(logs["total"] - total.item()) < 1e-5
    total.backward()
    used = {"dice_seg": "seg", "ncc": "warped_image", "bending": "dvf", "dice_warp": "warped_seg"}
    for lv in out:
        for t, field in used.items():
            grad = getattr(lv, field).grad
            if t in LOSS_TERMS[name]: assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
            else: assert grad is None
    # better outputs give a lower loss
    assert jrs_loss(name, _fake_output(b, 0.1), b)[0].item() < total.item()


def test_gan_generator_loss_formula():
    b = _batch()
    out = _fake_output(b, 0.5)
    scores = torch.tensor([[0.2], [0.6]])
    total, logs = gan_generator_loss(out, b, scores)
    expect = logs["dice_warp"] + logs["ncc"] + 1.0 * logs["bending"] + 0.01 * (-0.4)
    assert abs(total.item() - expect) < 1e-5 and abs(logs["total"] - expect) < 1e-5
    t2, l2 = gan_generator_loss(out, b, dice=False)
    assert "dice_warp" not in l2 and abs(t2.item() - (l2["ncc"] + l2["bending"])) < 1e-5


@pytest.mark.parametrize("name", ["jrs_reg", "crossstitch"])
def test_jrs_loss_on_real_networks(name):
    jrs = pytest.importorskip("jrs_nb.models.jrs")
    torch.manual_seed(0)
    model = jrs.build_model(name)
    b = _batch(n=48, B=1)
    out = model(b.fixed, b.moving, b.moving_seg)
    for l in LEVELS:
        n = level_size(48, l)
        for t in (getattr(out, l).seg, getattr(out, l).dvf):
            if t is not None: assert t.shape[2:] == (n, n, n)
    total, logs = jrs_loss(name, out, b)
    assert torch.isfinite(total) and 0 < logs["total"] < 10
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


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
