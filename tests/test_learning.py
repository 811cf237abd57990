"""Tests that fail when learning breaks: overfit one pair, and whole volumes agree with patches.

Each network trains for a few dozen iterations on the single training pair of a tiny 4 mm cohort, with the CPU
recipe of `train.PRESETS` (window, Dice + cross-entropy, pooled Dice, lr 1e-2). The thresholds were measured here
(see the closing comments); they sit well below what the runs reach and well above what an untrained network gets."""
import numpy as np, pytest, torch

from jrs_nb.phantom import generate_cohort
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.data.sampling import PatchDataset, collate_pairs
from jrs_nb.train import make_config, train, load_model, read_curves
from jrs_nb.inference import predict_volume, CROP
from jrs_nb.metrics import evaluate_labels
from jrs_nb.pretrained import pair_dsc

ONE_PAIR = dict(fov=(160., 176., 176.), spacing=4., n_train=1, n_val=1, n_test=1, daily_a=(1, 1), daily_b=(1, 1))

@pytest.fixture(scope="module")
def one_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_pair") / "cohort"
    generate_cohort(root, "demo", seed=0, **ONE_PAIR)
    return root

@pytest.fixture(scope="module")
def overfit(one_pair, tmp_path_factory):
    "arch -> run folder trained on the one pair with the `overfit` preset (trained once per module)."
    runs = {}
    def get(arch):
        if arch not in runs:
            out = tmp_path_factory.mktemp(f"overfit_{arch}")
            train(make_config("overfit", arch=arch, data=str(one_pair), out=str(out)), progress=False)
            runs[arch] = out
        return runs[arch]
    return get

@pytest.mark.parametrize("arch", ["seg", "reg", "crossstitch"])
def test_overfit_one_pair(one_pair, overfit, arch):
    run = overfit(arch)
    log, _ = read_curves(run)
    dsc = {r["path"]: r for r in pair_dsc(load_model(run), one_pair, "train")}
    first, last = log.total.iloc[:2].mean(), log.total.iloc[-2:].mean()
    assert last < first * LOSS_DROP[arch], f"{arch}: loss {first:.3f} -> {last:.3f}"
    pv = JRSDataset(one_pair, "train", load_dvf=False)[0]
    ident = evaluate_labels(pv.moving_seg, pv.fixed_seg, pv.spacing)
    if "seg" in dsc:
        m = np.mean([dsc["seg"][o] for o in ("prostate", "bladder", "rectum")])
        assert m > SEG_DSC[arch], f"{arch}: seg path DSC {dsc['seg']}"
    if "reg" in dsc:
        gain = np.mean([dsc["reg"][o] - ident[o]["dsc"] for o in ident])
        assert gain > REG_GAIN[arch], f"{arch}: reg path DSC {dsc['reg']} vs identity {[(o, round(r['dsc'], 3)) for o, r in ident.items()]}"

def test_whole_volume_agrees_with_patches(one_pair, overfit):
    "The tiled whole-volume prediction of a trained network equals its output on training patches where both exist."
    net = load_model(overfit("crossstitch"))
    pv = JRSDataset(one_pair, "train", load_dvf=False)[0]
    ds = PatchDataset(JRSDataset(one_pair, "train", load_dvf=False), 48, seed=5, length=4)
    whole = predict_volume(net, pv.fixed, pv.moving, pv.moving_seg, tile=96)
    for i in range(len(ds)):
        p = ds[i]; b = collate_pairs([p])
        with torch.no_grad(): o = net(b.fixed, b.moving, b.moving_seg).high
        start = [c - 24 + CROP for c in p.centre]             # first output voxel of the patch, in volume coordinates
        sl = tuple(slice(max(s, 0), min(s + 8, n)) for s, n in zip(start, pv.fixed.shape))   # 8^3 output of a 48^3 patch
        if any(s.stop - s.start < 8 for s in sl): continue     # patch sticks out of the volume: padding differs
        seg_p = o.seg[0].argmax(0).numpy()[tuple(slice(0, 8) for _ in range(3))]
        dvf_p = o.dvf[0].numpy()
        np.testing.assert_array_equal(seg_p, whole.seg[sl])
        np.testing.assert_allclose(dvf_p, whole.dvf[(slice(None), *sl)], atol=1e-4)
