"Dataset validation, check-data CLI, lazy pair dataset and patch sampler (jrs_nb.data)."
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from jrs_nb.core import JRSDataError, PairBatch
from jrs_nb.cli import main as cli_main
from jrs_nb.data.io import load_manifest, read_volume, write_volume, write_dvf, read_dvf, resample_to_spacing, MANIFEST
from jrs_nb.data.validate import check_dataset, check_data_cli
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.data.sampling import (PatchDataset, make_loader, collate_pairs, invert_dvf, sample_field, extract_patch,
                                  CENTRE_CLASSES)

SP = (3., 3., 3.)


def scan(root, pid, sid, f="image.nii.gz"): return root / "T" / pid / sid / f


def errors_of(root):
    "Error messages of check_dataset as strings 'path: problem'."
    return [str(e) for e in check_dataset(root).errors]


def assert_reported(root, file, *words):
    "check_dataset reports an error naming `file` and every word; loading the pair raises the same."
    errs = [e for e in errors_of(root) if str(file) in e]
    assert errs, f"no error names {file}: {errors_of(root)}"
    assert any(all(w in e for w in words) for e in errs), errs


# ---------------------------------------------------------------- validation: each bad input


def test_clean_dataset_has_no_errors(toy_root):
    rep = check_dataset(toy_root)
    assert rep.ok and rep.errors == []
    assert len(rep.scans) == 9 and [s.role for s in rep.scans[:3]] == ["planning", "daily", "daily"]
    assert [w.path.endswith(MANIFEST) and "not the 2x2x2 mm the shipped networks" in w.problem for w in rep.warnings] == [True]
    for s in rep.scans:
        assert s.size == (40, 48, 56) and s.spacing == SP and all(v > 0 for v in s.organ_cc.values())


def test_missing_file(toy_copy):
    f = scan(toy_copy, "T_p001", "s00", "labels.nii.gz")      # a planning scan needs its contours
    f.unlink()
    assert_reported(toy_copy, f, "file is missing")
    ds = JRSDataset(toy_copy, "train")
    with pytest.raises(JRSDataError, match=r"T_p001/s00/labels.nii.gz: file is missing"): ds[3]


def test_unlabelled_daily_is_predict_only(toy_copy):
    "A daily scan without labels is no error for check-data ('predict only'); training refuses it."
    scan(toy_copy, "T_p001", "s02", "labels.nii.gz").unlink()
    rep = check_dataset(toy_copy)
    assert rep.ok
    assert [(s.patient, s.scan) for s in rep.scans if s.unlabelled] == [("T_p001", "s02")]
    want = r"T_p001/s02/labels.nii.gz: file is missing: the daily scan is unlabelled"
    with pytest.raises(JRSDataError, match=want):
        JRSDataset(toy_copy, "train")[3]


def test_missing_dvf_when_others_have_one(toy_copy):
    f = scan(toy_copy, "T_p000", "s02", "dvf_to_planning.nii.gz"); f.unlink()
    assert_reported(toy_copy, f, "file is missing", "ground-truth DVF")


def test_missing_scan_folder(toy_copy):
    import shutil
    d = toy_copy / "T" / "T_p002" / "s01"; shutil.rmtree(d)
    assert_reported(toy_copy, d, "scan folder is missing")


def test_fixed_moving_grids_differ(toy_copy):
    f = scan(toy_copy, "T_p000", "s01")
    img, sp, org = read_volume(f)
    for name in ("image.nii.gz", "labels.nii.gz"):               # a consistent scan, but shifted by 6 mm
        a = read_volume(scan(toy_copy, "T_p000", "s01", name))[0]
        write_volume(a, scan(toy_copy, "T_p000", "s01", name), sp, (org[0] + 6, org[1], org[2]))
    phi = read_dvf(scan(toy_copy, "T_p000", "s01", "dvf_to_planning.nii.gz"))
    write_dvf(phi, scan(toy_copy, "T_p000", "s01", "dvf_to_planning.nii.gz"), sp, (org[0] + 6, org[1], org[2]))
    assert_reported(toy_copy, f, "grid differs from the moving (planning) scan", "origin")
    with pytest.raises(JRSDataError, match=r"T_p000/s01/image.nii.gz: grid differs.*origin"):
        JRSDataset(toy_copy, "train")[0]


def test_image_and_labels_grids_differ(toy_copy):
    f = scan(toy_copy, "T_p000", "s02", "labels.nii.gz")
    write_volume(read_volume(f)[0][:-2], f, SP)
    assert_reported(toy_copy, f, "grid differs from image.nii.gz", "size 38x48x56 vs 40x48x56")


def test_wrong_spacing_offers_resampling(toy_copy):
    f = scan(toy_copy, "T_p001", "s01")
    sitk.WriteImage(resample_to_spacing(f, (2., 2., 2.)), str(f))
    assert_reported(toy_copy, f, "spacing 2x2x2 mm differs from the dataset spacing 3x3x3 mm",
                    "resample_to_spacing(image, spacing=(3.0, 3.0, 3.0))")
    with pytest.raises(JRSDataError, match=r"T_p001/s01/image.nii.gz: spacing 2x2x2 mm .*resample_to_spacing"):
        JRSDataset(toy_copy, "train")[2]


def test_label_value_7(toy_copy):
    f = scan(toy_copy, "T_p002", "s01", "labels.nii.gz")
    lab = read_volume(f)[0]; lab[10, 10, 10] = 7; lab[11, 10, 10] = 7
    write_volume(lab, f, SP)
    assert_reported(toy_copy, f, "label values outside 0-4: [7] (2 voxels)")
    with pytest.raises(JRSDataError, match=r"T_p002/s01/labels.nii.gz: label values outside 0-4"):
        JRSDataset(toy_copy, "val")[0]


def test_nan_intensity(toy_copy):
    f = scan(toy_copy, "T_p000", "s00")
    im = read_volume(f)[0].astype(np.float32); im[5, 6, 7] = np.nan
    write_volume(im, f, SP)
    assert_reported(toy_copy, f, "1 non-finite intensities", "(5, 6, 7)")
    with pytest.raises(JRSDataError, match=r"T_p000/s00/image.nii.gz: 1 non-finite"):
        JRSDataset(toy_copy, "train")[0]


def test_empty_organ_in_planning_labels_is_error_in_daily_a_warning(toy_copy):
    for sid in ("s00", "s01"):                                    # remove the seminal vesicles
        f = scan(toy_copy, "T_p001", sid, "labels.nii.gz")
        lab = read_volume(f)[0]; lab[lab == 2] = 0; write_volume(lab, f, SP)
    rep = check_dataset(toy_copy)
    plan = scan(toy_copy, "T_p001", "s00", "labels.nii.gz")
    daily = scan(toy_copy, "T_p001", "s01", "labels.nii.gz")
    (e,) = rep.errors
    assert str(e).startswith(f"{plan}: organ 'seminal_vesicles' (label 2) is empty in the planning labels; if it is "
                             "really absent") and "declare it absent in manifest.json" in str(e)
    assert any(str(daily) in str(w) and "empty in the daily labels" in str(w) for w in rep.warnings)


def test_dvf_of_wrong_shape(toy_copy):
    f = scan(toy_copy, "T_p000", "s02", "dvf_to_planning.nii.gz")
    write_dvf(np.zeros((3, 40, 48, 50), np.float32), f, SP)
    assert_reported(toy_copy, f, "DVF of the wrong shape", "(3, 40x48x50)", "(3, 40x48x56)")


def test_manifest_not_json(toy_copy):
    (toy_copy / MANIFEST).write_text('{"patients": ')
    assert_reported(toy_copy, toy_copy / MANIFEST, "manifest does not parse as JSON")
    with pytest.raises(JRSDataError, match=r"manifest.json: manifest does not parse as JSON"): JRSDataset(toy_copy)


def test_unknown_split(toy_copy):
    d = json.loads((toy_copy / MANIFEST).read_text()); d["pairs"][0]["split"] = "training"
    (toy_copy / MANIFEST).write_text(json.dumps(d))
    assert_reported(toy_copy, toy_copy / MANIFEST, "pair 0 names split 'training', which the manifest does not define")
    with pytest.raises(JRSDataError, match=r"manifest.json: pair 0 names split 'training', which the manifest"):
        JRSDataset(toy_copy, "train")


def test_requesting_a_split_that_does_not_exist(toy_root):
    with pytest.raises(JRSDataError, match=r"manifest.json: split 'validation' does not exist; the manifest has"):
        JRSDataset(toy_root, "validation")


def test_unknown_patient_and_scan(toy_copy):
    d = json.loads((toy_copy / MANIFEST).read_text())
    d["pairs"][1]["patient"] = "T_p099"; d["pairs"][2]["fixed"] = "s09"; d["splits"]["val"].append("X_p001")
    (toy_copy / MANIFEST).write_text(json.dumps(d))
    for words in (["pair 1 names unknown patient 'T_p099'"], ["pair 2 names scan 's09' (fixed)"],
                  ["split 'val' names unknown patient 'X_p001'"]):
        assert_reported(toy_copy, toy_copy / MANIFEST, *words)
    with pytest.raises(JRSDataError, match=r"manifest.json: .*unknown patient 'T_p099'"): JRSDataset(toy_copy)


def test_all_problems_collected_not_just_the_first(toy_copy):
    (scan(toy_copy, "T_p000", "s00", "labels.nii.gz")).unlink()
    f = scan(toy_copy, "T_p002", "s02", "labels.nii.gz"); lab = read_volume(f)[0]; lab[0, 0, 0] = 9; write_volume(lab, f, SP)
    errs = errors_of(toy_copy)
    assert len(errs) == 2 and "[9]" in errs[1]
    assert "T_p000/s00/labels.nii.gz: file is missing" in errs[0]


# ---------------------------------------------------------------- check-data CLI


def test_check_data_cli_ok(toy_root, capsys):
    assert cli_main(["check-data", str(toy_root)]) == 0
    out = capsys.readouterr().out
    head = next(l for l in out.splitlines() if l.startswith("patient"))
    for col in ("scan", "role", "size (z,y,x)", "spacing mm", "HU range", "prost cc", "SV cc", "rect cc", "blad cc", "status"):
        assert col in head
    rows = [l.split() for l in out.splitlines() if l.startswith("T_p")]
    assert len(rows) == 9 and rows[0][:5] == ["T_p000", "s00", "planning", "40x48x56", "3x3x3"]
    assert all(r[-1] == "ok" for r in rows) and "0 errors, 1 warning: OK" in out


def test_check_data_cli_errors(toy_copy, capsys, tmp_path):
    f = scan(toy_copy, "T_p001", "s02", "labels.nii.gz")
    lab = read_volume(f)[0]; lab[1, 1, 1] = 7; write_volume(lab, f, SP)
    assert check_data_cli([str(toy_copy), "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    row = next(l for l in out.splitlines() if l.startswith("T_p001") and " s02 " in l)
    assert row.split()[-2:] == ["1", "error"]
    assert f"ERROR   {f}: label values outside 0-4: [7]" in out and "NOT usable" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["ok"] is False and len(r["scans"]) == 9 and r["problems"][-1]["path"] == str(f)


def test_check_data_cli_bad_arguments(tmp_path, capsys):
    assert check_data_cli([]) == 2                                  # no ROOT
    assert check_data_cli(["--no-such-option", str(tmp_path)]) == 2
    assert check_data_cli([str(tmp_path / "nowhere")]) == 2         # not a folder
    assert "not a folder" in capsys.readouterr().err
    assert check_data_cli([str(tmp_path)]) == 1                      # a folder without manifest.json: a data error


# ---------------------------------------------------------------- lazy dataset


def test_dataset_items_and_cache(toy_root):
    ds = JRSDataset(toy_root, "train", cache_size=3)
    assert len(ds) == 4 and len(JRSDataset(toy_root, "val")) == 2
    pv = ds[0]
    assert pv.fixed.dtype == np.float32 and pv.fixed.shape == (40, 48, 56) and -1 <= pv.fixed.min() < pv.fixed.max() <= 1
    assert pv.fixed_seg.dtype == np.uint8 and pv.dvf.shape == (3, 40, 48, 56) and pv.spacing == SP
    assert (pv.patient, pv.moving_scan, pv.fixed_scan) == ("T_p000", "s00", "s01")
    raw = read_volume(scan(toy_root, "T_p000", "s01"))[0]
    np.testing.assert_allclose(pv.fixed, np.clip(raw, -1000, 1000) / 1000., atol=1e-6)
    ds[1]; ds[2]                                                   # planning s00 read once for pairs 0, 1
    assert (ds.cache.misses, ds.cache.hits) == (5, 1)
    assert JRSDataset(toy_root, "train", load_dvf=False)[0].dvf is None


# ---------------------------------------------------------------- sampler


def test_patch_shapes_and_batch(toy_root):
    dl = make_loader(toy_root, "train", n=48, batch_size=2, seed=0, length=4)
    bs = list(dl)
    assert len(bs) == 2
    b = bs[0]
    assert isinstance(b, PairBatch)
    assert b.fixed.shape == b.moving.shape == (2, 1, 48, 48, 48) and b.fixed.dtype == torch.float32
    assert b.fixed_seg.shape == (2, 1, 48, 48, 48) and b.fixed_seg.dtype == b.moving_seg.dtype == torch.int64
    assert b.dvf.shape == (2, 3, 48, 48, 48) and b.dvf.dtype == torch.float32
    assert PatchDataset(JRSDataset(toy_root, "train"), n=64)[0].fixed.shape == (1, 64, 64, 64)
    with pytest.raises(ValueError, match="multiple of 4"): PatchDataset(JRSDataset(toy_root, "train"), n=47)
    b2 = next(iter(make_loader(toy_root, "train", n=48, batch_size=2, length=2, load_dvf=False)))
    assert b2.dvf is None


def test_centre_class_balance(toy_root):
    ds = PatchDataset(JRSDataset(toy_root, "train", load_dvf=False), n=48, seed=3, length=1200, patches_per_pair=300)
    items = [ds[i] for i in range(1200)]
    frac = np.bincount([it.cls for it in items], minlength=3) / len(items)
    assert np.all(np.abs(frac - 1 / 3) < 0.045), frac             # ~1/3 each (sd of a fraction: 0.014)
    for it in items[:300]:                                        # the centre voxel (fixed labels) is of its class
        lab = int(it.fixed_seg[0, 24, 24, 24])
        assert lab in {"oar": (3, 4), "target": (1, 2), "torso": (0,)}[CENTRE_CLASSES[it.cls]]
        if CENTRE_CLASSES[it.cls] == "torso": assert it.fixed[0, 24, 24, 24] > -0.5   # inside the body
    assert len({it.pair for it in items}) == 4


def test_padding_with_minimum_at_border(toy_root):
    ds = PatchDataset(JRSDataset(toy_root, "train"), n=64, seed=0, length=50)
    pv = ds.volumes[0]
    # a 64^3 patch never fits in the 40 x 48 x 56 volume: every patch is padded
    for i in range(10):
        it = ds[i]
        pvi = ds.volumes[it.pair]
        s = [c - 32 for c in it.centre]
        inside = np.zeros((64,) * 3, bool)
        inside[max(0, -s[0]):40 - s[0], max(0, -s[1]):48 - s[1], max(0, -s[2]):56 - s[2]] = True
        assert 0 < inside.sum() < 64 ** 3
        assert np.all(it.fixed[0][~inside] == pvi.fixed_min) and np.all(it.moving[0][~inside] == pvi.moving_min)
        assert np.all(it.fixed_seg[0][~inside] == 0) and np.all(it.dvf[:, ~inside] == 0)
        z0, y0, x0 = max(0, s[0]), max(0, s[1]), max(0, s[2])
        assert it.fixed[0, z0 - s[0], y0 - s[1], x0 - s[2]] == pvi.fixed[z0, y0, x0]
    assert pv.fixed_min == pv.fixed.min() and pv.fixed_min < -0.99
    v = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    p = extract_patch(v, (-1, -1, -1), 4, pad=v.min())
    assert p[0].max() == 0 and p[1:, 1:, 1:].tolist() == v.tolist()


def _batches(root, workers, seed, swap=False):
    return list(make_loader(root, "train", n=48, batch_size=2, seed=seed, workers=workers, length=6, swap=swap))


def test_determinism_across_workers_and_seeds(toy_root):
    a0, a2 = _batches(toy_root, 0, seed=5), _batches(toy_root, 2, seed=5)
    assert len(a0) == len(a2) == 3
    for x, y in zip(a0, a2):
        for t, u in zip(x, y): assert torch.equal(t, u)          # bit-identical with 0 and 2 workers
    again = _batches(toy_root, 0, seed=5)
    assert all(torch.equal(x.fixed, y.fixed) for x, y in zip(a0, again))
    other = _batches(toy_root, 0, seed=6)
    assert not all(torch.equal(x.fixed, y.fixed) for x, y in zip(a0, other))
    ds = PatchDataset(JRSDataset(toy_root, "train"), n=48, seed=5, length=6)
    c0 = [ds[i].centre for i in range(6)]; ds.set_epoch(1)
    assert [ds[i].centre for i in range(6)] != c0                 # a new epoch, new patches


def test_swap_doubles_batch_with_inverse_dvf(toy_root):
    b, s = _batches(toy_root, 0, seed=1)[0], _batches(toy_root, 0, seed=1, swap=True)[0]
    assert s.fixed.shape[0] == s.dvf.shape[0] == 4
    assert torch.equal(s.fixed[:2], b.fixed) and torch.equal(s.moving[:2], b.moving) and torch.equal(s.dvf[:2], b.dvf)
    assert torch.equal(s.fixed[2:], b.moving) and torch.equal(s.moving[2:], b.fixed)
    assert torch.equal(s.fixed_seg[2:], b.moving_seg) and torch.equal(s.moving_seg[2:], b.fixed_seg)
    phi, psi = s.dvf[:2], s.dvf[2:]
    assert phi.abs().amax() > 1.0                                  # a real deformation, not ~0
    assert (psi + phi).abs().max() > 0.01                          # and the inverse is not simply -phi
    # psi is the inverse: psi(y) + phi(y + psi(y)) ~ 0 and phi(x) + psi(x + phi(x)) ~ 0 in the interior, i.e. away
    # from the patch border and from the zero padding beyond the volume (margin 3 voxels > max|phi| / 3 mm + 1)
    ds = PatchDataset(JRSDataset(toy_root, "train"), n=48, seed=1, length=6)
    items = [ds[i] for i in range(2)]
    s2 = collate_pairs(items, swap=True)
    assert torch.equal(s2.dvf, s.dvf)
    r1 = (psi + sample_field(phi, psi, SP)).abs().amax(1)
    r2 = (phi + sample_field(psi, phi, SP)).abs().amax(1)
    for b, it in enumerate(items):
        st = [c - 24 for c in it.centre]
        sl = tuple(slice(max(3, 3 - s0), min(45, size - 3 - s0)) for s0, size in zip(st, (40, 48, 56)))
        assert r1[b][sl].numel() > 1000
        assert r1[b][sl].max() < 0.05 and r2[b][sl].max() < 0.1, (r1[b][sl].max(), r2[b][sl].max())


def test_inverse_dvf_analytic():
    # phi = a rigid shift (dz, dy, dx) = (2, -1, 0.5) mm at spacing (2, 1, 1): the inverse is the opposite shift
    phi = torch.tensor([2., -1., .5]).view(1, 3, 1, 1, 1).expand(1, 3, 20, 20, 20).contiguous()
    psi = invert_dvf(phi, (2., 1., 1.))
    torch.testing.assert_close(psi[..., 3:-3, 3:-3, 3:-3], -phi[..., 3:-3, 3:-3, 3:-3])
    # a smooth non-uniform field with spacing: sampling uses mm -> voxels per axis
    z = torch.arange(24.).view(1, 1, 24, 1, 1).expand(1, 1, 24, 24, 24)
    phi = torch.cat([1.5 * torch.sin(z / 5.), torch.zeros(1, 2, 24, 24, 24)], 1)
    psi = invert_dvf(phi, (1.5, 1., 1.), iterations=15)
    res = (psi + sample_field(phi, psi, (1.5, 1., 1.)))[..., 3:-3, :, :]
    assert res.abs().max() < 1e-3
    with pytest.raises(ValueError, match=r"\(B,3,D,H,W\)"): invert_dvf(torch.zeros(1, 2, 4, 4, 4))
