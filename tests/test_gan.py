"""JRS-GAN pieces (jrs_nb.models.gan): critic, real-triple synthesiser, WGAN losses, clipping, schedule."""
import pytest
import torch

from jrs_nb.core import one_hot, crop_to_level
from jrs_nb.models.gan import (PatchCritic, critic_input, synthesize_real, critic_loss, generator_adv_loss,
                               clip_weights_, critic_steps, Triple, VARIANTS)
from jrs_nb.models.jrs import build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("variant,channels", [("none", 2), ("a", 3), ("b", 2)])
def test_critic_variants(variant, channels):
    f, w = torch.randn(2, 1, 8, 8, 8), torch.randn(2, 1, 8, 8, 8)
    seg = one_hot(torch.randint(0, 5, (2, 1, 8, 8, 8)))
    assert critic_input(f, w, seg, variant).shape == (2, channels, 8, 8, 8)
    c = PatchCritic(variant, padding="same")
    assert c.body[0][0].in_channels == channels
    assert c(f, w, seg).shape == (2, 1, 2, 2, 2)


def test_critic_valid_sizes():
    c = PatchCritic("a", filters=(4, 8, 8))
    x = torch.randn(1, 1, 56, 56, 56)
    assert c(x, x, one_hot(torch.zeros(1, 1, 56, 56, 56, dtype=torch.long))).shape == (1, 1, 7, 7, 7)
    y = torch.randn(1, 1, 24, 24, 24)
    with pytest.raises(ValueError, match="padding='same'"):
        c(y, y, one_hot(torch.zeros(1, 1, 24, 24, 24, dtype=torch.long)))


def test_variant_b_masks_the_images():
    f, w = torch.ones(1, 1, 4, 4, 4), torch.ones(1, 1, 4, 4, 4)
    lab = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long); lab[..., :2] = 3
    x = critic_input(f, w, one_hot(lab), "b")
    assert torch.equal(x[:, 0], (lab[:, 0] > 0).float()) and torch.equal(x[:, 1], x[:, 0])


def test_synthesiser_deformation_is_small_and_seeded():
    n = 48
    ramp = (torch.arange(n, dtype=torch.float32) * 0.01).view(1, 1, n, 1, 1).expand(2, 1, n, n, n).contiguous()
    seg = torch.randint(0, 5, (2, 1, n, n, n))
    t = synthesize_real(ramp, seg, seed=4, noise_sd=0, smooth_sd=0, log_gamma=0)
    assert isinstance(t, Triple)
    d = (t.warped - t.fixed).abs().amax(dim=(1, 2, 3, 4))
    assert (d > 1e-5).all() and (d < 0.01 * 0.5).all()           # 0 < |dz| < 0.5 mm
    assert torch.equal(t.fixed, crop_to_level(ramp)) and torch.equal(t.seg, one_hot(crop_to_level(seg)))
    a, b = synthesize_real(ramp, seg, seed=4), synthesize_real(ramp, seg, seed=4)
    assert torch.equal(a.warped, b.warped)
    assert not torch.equal(a.warped, synthesize_real(ramp, seg, seed=5).warped)


def test_synthesiser_noise_and_gamma():
    n = 64
    z = torch.zeros(1, 1, n, n, n); lab = torch.zeros(1, 1, n, n, n, dtype=torch.long)
    t = synthesize_real(z, lab, seed=0, smooth_sd=0, log_gamma=0, max_mm=0)
    assert abs(t.warped.std().item() - 0.04) < 2e-3
    img = torch.rand(1, 1, n, n, n) * 2 - 1
    gammas = set()
    for s in range(6):
        g = synthesize_real(img, lab, seed=s, noise_sd=0, smooth_sd=0, max_mm=0)
        x, y = (t_.flatten().double() for t_ in (g.fixed, g.warped))
        u, v = (x + 1) / 2, (y + 1) / 2
        m = (u > 0.05) & (u < 0.95)
        gam = (v[m].log() / u[m].log())
        assert gam.std() < 1e-3                                        # one gamma per item
        gammas.add(round(gam.mean().item(), 4))
        assert abs(torch.log(gam.mean()).item()) <= 0.4 + 1e-4         # log gamma in [-0.4, 0.4]
    assert len(gammas) == 6


def test_wgan_losses_clipping_schedule():
    assert critic_loss(torch.tensor([3., 5.]), torch.tensor([1., 1.])).item() == -3.
    assert generator_adv_loss(torch.tensor([2., 4.])).item() == -3.
    c = PatchCritic("a", padding="same")
    with torch.no_grad():
        for p in c.parameters(): p.fill_(0.5)
    clip_weights_(c)
    assert all(p.abs().max() <= 0.01 for p in c.parameters())
    assert [critic_steps(i) for i in (0, 24, 25, 26, 10_000)] == [100, 100, 5, 5, 5]


def test_adversarial_gradient_reaches_generator():
    torch.manual_seed(0)
    n = 48
    fixed, moving = torch.randn(1, 1, n, n, n), torch.randn(1, 1, n, n, n)
    fseg, mseg = torch.randint(0, 5, (1, 1, n, n, n)), torch.randint(0, 5, (1, 1, n, n, n))
    gen, critic = build_model("jrs_reg"), PatchCritic("a", filters=(8, 8, 8), padding="same")
    real = synthesize_real(fixed, fseg, seed=0)
    out = gen(fixed, moving, mseg).high
    fake = Triple(crop_to_level(fixed), out.warped_image, out.warped_seg)
    ld = critic_loss(critic(*real), critic(*(t.detach() for t in fake)))
    ld.backward()
    assert gen.unet.enc1[0][0].weight.grad is None                   # the critic step does not touch the generator
    generator_adv_loss(critic(*fake)).backward()
    assert gen.unet.enc1[0][0].weight.grad.abs().sum() > 0
