"""The base network, the cross-stitch unit and the five JRS networks (jrs_nb.models)."""
import pytest
import torch

from jrs_nb.core import JRSOutput, MultiLevel, LEVELS
from jrs_nb.models.unet import UNet, n_params
from jrs_nb.models.crossstitch import CrossStitch, CrossStitchUNet
from jrs_nb.models.jrs import NETWORKS, PAPER_PARAMS, JRSConfig, build_model, build_from_config

torch.set_num_threads(1)
N = 48


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(1, 1, N, N, N, generator=g), torch.randn(1, 1, N, N, N, generator=g),
            torch.randint(0, 5, (1, 1, N, N, N), generator=g))


@pytest.mark.parametrize("name", NETWORKS)
def test_forward_backward_smoke(name, pair):
    fixed, moving, mseg = pair
    torch.manual_seed(0)
    net = build_model(name)
    out = net(fixed, moving, mseg)
    assert type(out) is MultiLevel and all(type(o) is JRSOutput for o in out)
    sizes = {"high": N - 40, "mid": N // 2 - 18, "low": N // 4 - 7}
    has_seg, has_dvf = name in ("seg", "hard", "crossstitch"), name != "seg"
    for lv, o in zip(LEVELS, out):
        m = sizes[lv]
        assert (o.seg is not None) == has_seg and (o.dvf is not None) == has_dvf
        if has_seg: assert o.seg.shape == (1, 5, m, m, m)
        if has_dvf:
            assert o.dvf.shape == (1, 3, m, m, m) and o.warped_image.shape == (1, 1, m, m, m)
            assert o.warped_seg.shape == (1, 5, m, m, m)
    loss = sum((t.float() ** 2).mean() for o in out for t in o if t is not None)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.ndim == 5]
    assert all(g is not None for g in grads) and grads[0].abs().sum() > 0
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", NETWORKS)
def test_param_count_within_10_percent_of_paper(name):
    p = n_params(build_model(name))
    assert abs(p / PAPER_PARAMS - 1) < 0.10, (name, p)


def test_patch_sizes():
    net = UNet(1, heads={"seg": 5}).eval()
    with torch.no_grad():
        for n in (48, 52, 64):
            out = net(torch.zeros(1, 1, n, n, n))["seg"]
            assert [o.shape[2] for o in out] == [n - 40, n // 2 - 18, n // 4 - 7]
    for bad in (44, 50, 66):
        with pytest.raises(ValueError, match="multiple of 4 and >= 48"):
            net(torch.zeros(1, 1, bad, bad, bad))


def test_missing_inputs_are_named(pair):
    fixed, moving, mseg = pair
    with pytest.raises(ValueError, match="needs moving"):
        build_model("reg")(fixed)
    with pytest.raises(ValueError, match="needs moving_seg"):
        build_model("crossstitch")(fixed, moving)
    with pytest.raises(ValueError, match="integer label map"):
        build_model("hard")(fixed, moving, mseg.float())


def test_crossstitch_unit_and_overhead():
    cs = CrossStitch(4, seed=0)
    a = cs.alpha.detach()
    assert a.shape == (4, 2, 2) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, CrossStitch(4, seed=0).alpha.detach())
    xs, xr = torch.randn(1, 4, 2, 2, 2), torch.randn(1, 4, 2, 2, 2)
    s, r = cs(xs, xr)
    assert torch.allclose(s[:, 1], a[1, 0, 0] * xs[:, 1] + a[1, 0, 1] * xr[:, 1])
    assert torch.allclose(r[:, 2], a[2, 1, 0] * xs[:, 2] + a[2, 1, 1] * xr[:, 2])
    net = CrossStitchUNet()
    paths = n_params(UNet(1, (16, 32, 64), {"seg": 5})) + n_params(UNet(6, (16, 32, 64), {"dvf": 3}))
    assert n_params(net) - paths == 576
    assert {k: tuple(v.shape) for k, v in build_model("crossstitch").alphas().items()} == \
        {"x2": (16, 2, 2), "x5": (32, 2, 2), "x8": (64, 2, 2), "x11": (32, 2, 2)}


def test_identity_alphas_make_paths_independent(pair):
    fixed, moving, mseg = pair
    net = build_model("crossstitch").train()
    net.unet.set_identity()
    other_mov, other_seg = torch.randn_like(moving), torch.randint(0, 5, mseg.shape)
    with torch.no_grad():
        a, b = net(fixed, moving, mseg), net(fixed, other_mov, other_seg)
    for oa, ob in zip(a, b):
        assert torch.equal(oa.seg, ob.seg)
        assert not torch.equal(oa.dvf, ob.dvf)
    net2 = build_model("crossstitch").train()  # random alphas: the seg output does depend on the reg inputs
    with torch.no_grad():
        assert not torch.equal(net2(fixed, moving, mseg).high.seg, net2(fixed, other_mov, other_seg).high.seg)


def test_config_round_trip_and_checkpoint(tmp_path):
    net = build_model("hard", spacing=(2., 2., 2.))
    ck = tmp_path / "m.pt"
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict()}, ck)
    d = torch.load(ck, weights_only=True)
    net2 = build_from_config(d["config"]); net2.load_state_dict(d["state_dict"])
    assert net2.config == net.config and net2.config.spacing == (2., 2., 2.)
    with pytest.raises(ValueError, match="choose one of"):
        JRSConfig("vnet")
