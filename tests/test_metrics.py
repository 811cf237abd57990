"""jrs_nb.metrics against independent implementations (MONAI, SimpleITK, brute force) and jrs_nb.tables against
pandas/scipy on hand-made results. Random masks, anisotropic spacings; no timing assertions (see benchmarks/)."""
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi, stats

from jrs_nb.core import LABELS, ORGANS, ORGAN_NAMES, JRSDataError, array_to_sitk, dvf_to_sitk
from jrs_nb.metrics import (evaluate_labels, surface_distances, surface_voxels, keep_largest_components,
                            jacobian_determinant, dvf_quality, dvf_error)
from jrs_nb.data.fixtures import toy_labels
from jrs_nb.tables import select_paths, summarize, paper_table, write_tables, paper_tables, boxplot_organs

torch = pytest.importorskip("torch")
monai_metrics = pytest.importorskip("monai.metrics")


def random_labels(shape, seed, sigma=2.5):
    "Irregular organs (holes, several components, touching the array border) from smoothed noise."
    r = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    for k in ORGANS:
        f = ndi.gaussian_filter(r.normal(size=shape), sigma)
        lab[f > np.quantile(f, 0.93)] = k
    return lab


def monai_all(pred, gt, spacing):
    oh = lambda l: torch.nn.functional.one_hot(torch.from_numpy(l.astype(np.int64)), 5).permute(3, 0, 1, 2)[None].float()
    P, G = oh(pred), oh(gt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (monai_metrics.compute_dice(P, G, include_background=False)[0].numpy(),
                monai_metrics.compute_average_surface_distance(P, G, symmetric=True, spacing=spacing)[0].numpy(),
                monai_metrics.compute_hausdorff_distance(P, G, percentile=95, directed=False, spacing=spacing)[0].numpy())


CASES = [("toy", (40, 56, 60), (1.5, 0.9, 0.9), 0), ("toy", (36, 50, 44), (2.0, 0.7, 1.1), 3),
         ("random", (30, 40, 36), (1.5, 0.9, 0.9), 1), ("random", (28, 34, 40), (0.8, 1.3, 2.1), 2)]


@pytest.mark.parametrize("kind,shape,spacing,seed", CASES)
def test_against_monai(kind, shape, spacing, seed):
    if kind == "toy": pred, gt = toy_labels(shape, spacing, seed + 1, scale=0.45), toy_labels(shape, spacing, seed, scale=0.45)
    else: pred, gt = random_labels(shape, seed + 10), random_labels(shape, seed)
    ours = evaluate_labels(pred, gt, spacing)
    md, ma, mh = monai_all(pred, gt, spacing)
    for i, k in enumerate(ORGANS):
        o = ours[LABELS[k]]
        assert not o["failed"]
        np.testing.assert_allclose([o["dsc"], o["msd"], o["hd95"]], [md[i], ma[i], mh[i]], rtol=1e-5, atol=1e-5)
    assert 0 < min(o["msd"] for o in ours.values())  # real, non-trivial distances


def _sitk_directed(a, b, spacing):
    A, B = (array_to_sitk(np.pad(m, 1).astype(np.uint8), spacing) for m in (a, b))
    sa = sitk.GetArrayFromImage(sitk.BinaryContour(A, fullyConnected=False)).astype(bool)
    db = sitk.SignedMaurerDistanceMap(sitk.BinaryContour(B, fullyConnected=False), insideIsPositive=False,
                                      squaredDistance=False, useImageSpacing=True)
    return np.sort(np.maximum(sitk.GetArrayFromImage(db)[sa], 0))


@pytest.mark.parametrize("seed,spacing", [(0, (1.5, 0.9, 0.9)), (5, (2.5, 0.6, 1.0))])
def test_against_simpleitk(seed, spacing):
    pred, gt = random_labels((26, 30, 34), seed + 1), random_labels((26, 30, 34), seed)
    ours = evaluate_labels(pred, gt, spacing)
    for k in ORGANS:
        p, g = pred == k, gt == k
        ov = sitk.LabelOverlapMeasuresImageFilter()
        ov.Execute(array_to_sitk(g.astype(np.uint8), spacing), array_to_sitk(p.astype(np.uint8), spacing))
        assert abs(ours[LABELS[k]]["dsc"] - ov.GetDiceCoefficient()) < 1e-9
        dpg, dgp = surface_distances(p, g, spacing)
        np.testing.assert_allclose(np.sort(dpg), _sitk_directed(p, g, spacing), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.sort(dgp), _sitk_directed(g, p, spacing), rtol=1e-5, atol=1e-5)
        pooled = np.concatenate([dpg, dgp])
        assert abs(ours[LABELS[k]]["msd"] - pooled.mean()) < 1e-9
        assert abs(ours[LABELS[k]]["hd95"] - max(np.percentile(dpg, 95), np.percentile(dgp, 95))) < 1e-9


def test_surface_voxels_is_mask_xor_erosion():
    m = random_labels((20, 22, 24), 4) > 0
    np.testing.assert_array_equal(surface_voxels(m), m ^ ndi.binary_erosion(m))


def test_distances_use_spacing():
    a = np.zeros((9, 9, 9), bool); a[2:5, 2:5, 2:5] = True
    b = np.roll(a, 2, axis=0)  # 2 slices along z
    r = evaluate_labels(b.astype(np.uint8), a.astype(np.uint8), (3., 1., 1.), organs=(1,))["prostate"]
    assert r["hd95"] == pytest.approx(6.)


def test_failures_are_counted_not_raised():
    gt = toy_labels((30, 40, 40), (1.5, 0.9, 0.9), 0, scale=0.35)
    pred = np.zeros_like(gt)
    r = evaluate_labels(pred, gt, (1.5, 0.9, 0.9))
    assert all(v["failed"] and np.isnan(v["dsc"]) and np.isnan(v["msd"]) for v in r.values())
    pred = gt.copy(); pred[pred == 2] = 0
    r = evaluate_labels(pred, gt, (1.5, 0.9, 0.9))
    assert [v["failed"] for v in r.values()] == [False, True, False, False]


def test_empty_ground_truth():
    gt = toy_labels((30, 40, 40), (1.5, 0.9, 0.9), 0, scale=0.35); gt[gt == 3] = 0
    with pytest.raises(JRSDataError, match="rectum"): evaluate_labels(gt, gt, (1.5, 0.9, 0.9))
    r = evaluate_labels(gt, gt, (1.5, 0.9, 0.9), empty_gt="nan")
    assert r["rectum"]["gt_empty"] and not r["rectum"]["failed"] and np.isnan(r["rectum"]["msd"])
    assert r["bladder"]["dsc"] == 1.0


def test_keep_largest_components_brute_force():
    lab = random_labels((24, 28, 30), 7, sigma=1.5)
    out = keep_largest_components(lab, min_fraction=0.2)
    full = ndi.generate_binary_structure(3, 3)
    for k in ORGANS:
        cc, n = ndi.label(lab == k, structure=full)
        sizes = np.sort(np.bincount(cc.ravel())[1:])[::-1]
        expect = sizes[0] + (sizes[1] if k == 2 and n > 1 and sizes[1] >= 0.2 * sizes[0] else 0)
        assert n > 2 and (out == k).sum() == expect
        assert np.all(np.isin(out[lab != out], [0]))  # removed voxels become background


def test_jacobian_against_simpleitk():
    sp = (1.7, 0.9, 1.2)
    phi = ndi.gaussian_filter(np.random.default_rng(3).normal(0, 20, (3, 22, 26, 30)), (0, 2, 2, 2)).astype(np.float32)
    det = jacobian_determinant(phi, sp, chunk=5)
    np.testing.assert_allclose(det, jacobian_determinant(phi, sp, chunk=1000), rtol=1e-6, atol=1e-6)
    itk = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(dvf_to_sitk(phi, sp), True))
    np.testing.assert_allclose(det[1:-1, 1:-1, 1:-1], itk[1:-1, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    q = dvf_quality(phi, sp)
    assert q["fold_pct"] == pytest.approx(100 * (det <= 0).mean()) and q["fold_pct"] > 0
    mask = np.zeros(det.shape, bool); mask[5:15, 5:20, 5:25] = True
    assert dvf_quality(phi, sp, mask)["jac_std"] == pytest.approx(det[mask].astype(np.float64).std(), rel=1e-6)


def test_dvf_error():
    r = np.random.default_rng(0)
    true, pred = r.normal(size=(3, 10, 12, 14)), r.normal(size=(3, 10, 12, 14))
    lab = toy_labels((10, 12, 14), (1, 1, 1), 0, scale=0.15, jitter_mm=0)
    body = np.ones(lab.shape, bool); body[0] = False
    e = dvf_error(pred, true, body, lab)
    err = np.linalg.norm(pred - true, axis=0)
    assert e["body"]["mean"] == pytest.approx(err[body].mean(), rel=1e-5)
    assert e["body"]["p95"] == pytest.approx(np.percentile(err[body], 95), rel=1e-5)
    assert e["bladder"]["mean"] == pytest.approx(err[lab == 4].mean(), rel=1e-5)


# ---- tables ----

def hand_results():
    "8 val + 8 test pairs; cs seg path better on val for prostate, reg better on test (choice must come from val)."
    rows = []
    for split in ("val", "test"):
        for i in range(8):
            for organ in ORGAN_NAMES:
                seg = 1.0 + 0.1 * i
                reg = seg + (0.3 if split == "val" else -0.3)
                ref = seg  # the path chosen on val, so the reference on both splits
                vals = {("crossstitch", "seg"): seg, ("crossstitch", "reg"): reg,
                        ("seg", "-"): ref + 0.05 * (i + 1),                       # always worse: p = 2/256
                        ("elastix", "-"): ref + [0.1, -0.2, 0.3, -0.4, 0.15, -0.25, 0.35, -0.05][i]}
                for (m, p), v in vals.items():
                    rows.append(dict(method=m, path=p, split=split, patient=f"p{i // 4}", pair=f"f{i % 4}",
                                     organ=organ, msd=v, dsc=1 - v / 10, failed=False))
    df = pd.DataFrame(rows)
    bad = (df.method == "seg") & (df.split == "test") & (df.organ == "bladder") & (df.pair == "f2") & (df.patient == "p0")
    df.loc[bad, ["msd", "dsc", "failed"]] = [np.nan, np.nan, True]
    return df


def test_path_selection_is_made_on_validation():
    df, choices = select_paths(hand_results(), "msd", "val")
    assert set(choices.loc["crossstitch"]) == {"seg"}
    best = df[(df.method == "crossstitch") & (df.path == "best") & (df.split == "test")]
    seg = df[(df.method == "crossstitch") & (df.path == "seg") & (df.split == "test")]
    key = ["organ", "patient", "pair"]
    np.testing.assert_allclose(best.sort_values(key).msd.values, seg.sort_values(key).msd.values)  # val's choice, although reg wins on test
    _, c2 = select_paths(hand_results(), "dsc", "val")  # higher is better for the DSC: same choice
    assert set(c2.loc["crossstitch"]) == {"seg"}


def test_summary_means_and_wilcoxon_match_scipy():
    df, _ = select_paths(hand_results(), "msd", "val")
    s = summarize(df, "msd", "test")
    get = lambda m, p, o: s[(s.method == m) & (s.path == p) & (s.organ == o)].iloc[0]
    t = df[df.split == "test"]
    ref = t[(t.method == "crossstitch") & (t.path == "best") & (t.organ == "prostate")].msd.values
    for m, p in [("seg", "-"), ("elastix", "-"), ("crossstitch", "reg")]:
        x = t[(t.method == m) & (t.path == p) & (t.organ == "prostate")].msd.values
        row = get(m, p, "prostate")
        assert row["mean"] == pytest.approx(x.mean()) and row["sd"] == pytest.approx(x.std(ddof=1))
        assert row["median"] == pytest.approx(np.median(x))
        assert row["p"] == pytest.approx(stats.wilcoxon(x, ref).pvalue)
    assert get("seg", "-", "prostate")["p"] == pytest.approx(2 / 256) and get("seg", "-", "prostate")["dagger"]
    assert not get("elastix", "-", "prostate")["dagger"]
    # the failed pair is out of the mean and out of the test (7 pairs left)
    b = get("seg", "-", "bladder")
    assert (b["n"], b["failed"]) == (7, 1) and b["p"] == pytest.approx(2 / 2 ** 7)
    x = t[(t.method == "seg") & (t.organ == "bladder")].msd.dropna().values
    assert b["mean"] == pytest.approx(x.mean())


def test_tables_written(tmp_path):
    df = hand_results().assign(hd95=lambda d: 3 * d.msd)
    sums = paper_tables(df, tmp_path)
    assert (tmp_path / "msd_test.md").exists() and (tmp_path / "hd95_val.tex").exists()
    md = (tmp_path / "msd_test.md").read_text()
    assert "| seg |" in md and "†" in md and "[1 failed]" in md
    tab = pd.read_csv(tmp_path / "msd_test.csv", index_col=0)
    assert list(tab.columns) == ["Prostate", "Seminal vesicles", "Rectum", "Bladder"]
    assert list(tab.index) == ["crossstitch (seg)", "crossstitch (reg)", "crossstitch (best)", "seg", "elastix"]
    assert sums["hd95", "test"]["mean"].values == pytest.approx(3 * sums["msd", "test"]["mean"].values, nan_ok=True)
    fig = boxplot_organs(df, "msd", "test")
    assert len(fig.axes) == 4
