"""Spatial transformer and layers (jrs_nb.layers): identity, translation, SimpleITK agreement, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jrs_nb.core import LEVELS, crop_to_level
from jrs_nb.layers import (ConvBlock, DownConv, center_crop, upsample2, warp, warp_labels, warp_label_probs, level_shape, sample_points,
                           random_smooth_dvf, sitk_warp)

torch.set_num_threads(1)


def smooth_image(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(1, 1, 6, 6, 6, generator=g), size=shape, mode="trilinear", align_corners=True)


def test_block_sizes_and_init():
    x = torch.randn(1, 3, 20, 20, 20)
    assert ConvBlock(3, 4)(x).shape == (1, 4, 18, 18, 18)
    assert DownConv(3, 4)(x).shape == (1, 4, 10, 10, 10)
    w = ConvBlock(16, 64)[0].weight
    assert abs(w.std().item() - 0.02) < 2e-3
    assert upsample2(torch.ones(1, 1, 2, 3, 4)).shape == (1, 1, 4, 6, 8)
    assert center_crop(torch.zeros(1, 1, 10, 10, 10), (6, 6, 6)).shape == (1, 1, 6, 6, 6)


@pytest.mark.parametrize("level", [*LEVELS, "input"])
def test_identity_returns_cropped_patch(level):
    mov = torch.randn(2, 2, 48, 52, 56)
    zero = torch.zeros(2, 3, *level_shape(mov.shape[2:], level))
    want = mov if level == "input" else crop_to_level(mov, level)
    assert (warp(mov, zero, level) - want).abs().max() < 5e-5
    assert torch.equal(warp(mov, zero, level, mode="nearest"), want)


def test_integer_translation_is_a_shift():
    mov = torch.randn(1, 1, 48, 48, 48)
    sp = (2., 1.5, 1.)
    dvf = torch.tensor([-4., 3., 5.]).view(1, 3, 1, 1, 1).expand(1, 3, 8, 8, 8).contiguous()  # voxels (-2, 2, 5)
    assert (warp(mov, dvf, "high", sp) - mov[:, :, 18:26, 22:30, 25:33]).abs().max() < 5e-5
    lab = torch.randint(0, 5, (1, 1, 48, 48, 48))
    assert torch.equal(warp_labels(lab, dvf, "high", sp), lab[:, :, 18:26, 22:30, 25:33])


@pytest.mark.parametrize("level", LEVELS)
def test_matches_simpleitk_on_smooth_field(level):
    sp = (1.5, 1., 2.)
    mov = smooth_image((48, 56, 52), seed=1)
    phi = random_smooth_dvf(level_shape(mov.shape[2:], level), 8., seed=7)
    ours = warp(mov, phi, level, sp)[0, 0].numpy()
    ref = sitk_warp(mov[0, 0].numpy(), phi[0].numpy(), level, sp)
    pos = (sample_points(mov.shape[2:], level) + phi[0] / torch.tensor(sp).view(3, 1, 1, 1)).numpy()
    inside = np.all((pos >= 0) & (pos <= np.array(mov.shape[2:]).reshape(3, 1, 1, 1) - 1), 0)
    assert inside.sum() > 100
    assert np.abs(ours - ref)[inside].max() < 1e-4
    # and the comparison is not vacuous: the field moved things
    assert np.abs(ours - crop_to_level(mov, level)[0, 0].numpy()).max() > 1e-2


def test_onehot_warp_is_a_distribution_with_gradient():
    lab = torch.randint(0, 5, (1, 1, 48, 48, 48))
    dvf = (random_smooth_dvf((8, 8, 8), 3., seed=3)).requires_grad_()
    p = warp_label_probs(lab, dvf)
    assert p.shape == (1, 5, 8, 8, 8)
    assert torch.allclose(p.sum(1), torch.ones(1, 8, 8, 8), atol=1e-5)
    p[:, 1].sum().backward()
    assert dvf.grad.abs().sum() > 0


def test_border_padding_far_outside():
    mov = torch.arange(48.).view(1, 1, 48, 1, 1).expand(1, 1, 48, 48, 48).contiguous()
    dvf = torch.zeros(1, 3, 8, 8, 8); dvf[:, 0] = 100.
    assert torch.allclose(warp(mov, dvf), torch.full((1, 1, 8, 8, 8), 47.))


def test_wrong_shapes_give_clear_errors():
    mov = torch.randn(1, 1, 48, 48, 48)
    with pytest.raises(ValueError, match=r"the DVF must be \(B,3,d,h,w\)"):
        warp(mov, torch.zeros(1, 3, 9, 9, 9))
    with pytest.raises(ValueError, match=r"the DVF must be \(B,3,d,h,w\)"):
        warp(mov, torch.zeros(1, 3, 8, 8, 8, 1))
    with pytest.raises(ValueError, match="float"):
        warp(mov, torch.zeros(1, 3, 8, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="moving image must be"):
        warp(mov[0], torch.zeros(1, 3, 8, 8, 8))
    with pytest.raises(ValueError, match="integer label map"):
        warp_labels(mov, torch.zeros(1, 3, 8, 8, 8))
