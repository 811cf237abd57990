"""Organs declared absent (issue 12, point 2), end to end on generated data: the manifest declaration, import-dicom
(prostate bed, missing contours), check-data, the patch batches, the masked losses, train, infer, evaluate and
export-rtstruct."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch

from jrs_nb.cli import main as cli_main
from jrs_nb.core import LEVELS, JRSOutput, MultiLevel, PairBatch, crop_to_level, level_size
from jrs_nb.data.io import load_manifest, read_volume, write_volume, LABELS_FILE, IMAGE_FILE
from jrs_nb.data.validate import check_dataset, check_data_cli
from jrs_nb.data.dicom import load_synonyms, is_prostate_bed
from jrs_nb.data.dicom_import import import_dicom, ImportOptions
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.data.sampling import PatchDataset, collate_pairs
from jrs_nb.data.dicom_write import write_ct_series, write_rtstruct
from jrs_nb.data.fixtures import pelvis_scan
from jrs_nb.data.rtstruct import export_rtstruct
from jrs_nb.predictions import read_prediction
from jrs_nb.train import make_config, network_loss

torch.set_num_threads(1)
SV_GONE = "post-prostatectomy: prostate bed, no seminal vesicles"


def _drop(root, pid, organ=2):
    "Remove one organ from every scan of a toy patient."
    m = load_manifest(root)
    for sid in m.patients[pid]["scans"]:
        f = m.scan_dir(pid, sid) / LABELS_FILE; lab, sp, org = read_volume(f); lab[lab == organ] = 0
        write_volume(lab, f, sp, org)
    return m


def _declare(root, pid, organ="seminal_vesicles", reason=SV_GONE):
    m = load_manifest(root)
    for sid in m.patients[pid]["scans"]: m.declare_absent(pid, sid, organ, reason)
    m.save()


# ---------------------------------------------------------------- synonyms and import-dicom
def test_prostate_bed_synonyms_map_to_the_prostate_label():
    rm = load_synonyms()
    for n in ("prostate bed", "Prostate_Bed", "prostatic fossa", "CTV_prostatebed", "CTV_PB", "Prostaatloge"):
        assert rm.organ(n) == "prostate" and is_prostate_bed(n), n
    assert rm.organ("CTV_prostate") == "prostate" and not is_prostate_bed("CTV_prostate")
    assert rm.rank("Prostate") < rm.rank("CTV_prostatebed")        # a real prostate wins over a bed


@pytest.fixture(scope="module")
def bed_import(tmp_path_factory):
    """A post-prostatectomy patient (prostate bed, no SV ROI) and a patient whose planning RTSTRUCT has no rectum,
    written as DICOM, imported at 3 mm without pre-alignment."""
    src, root = tmp_path_factory.mktemp("dicom"), tmp_path_factory.mktemp("ds") / "ds"
    shape, sp = (30, 64, 64), (3., 3., 3.)
    for p, (pid, bed) in enumerate((("PB001", True), ("RX002", False))):
        for s in range(2):
            hu, lab = pelvis_scan(shape, sp, seed=3, patient=p, scan=s)
            names = {1: "CTV_prostatebed" if s == 0 else "Prostatic fossa"} if bed else {}
            if bed: lab[lab == 2] = 0                               # no seminal vesicles after a prostatectomy
            if not bed and s == 0: lab[lab == 3] = 0                # the planning RTSTRUCT has no rectum
            d = src / pid / f"CT{s}"
            info = write_ct_series(hu, d, sp, patient_id=pid, date=f"2024030{s + 1}")
            write_rtstruct(lab, info["files"], d / "RS.dcm", names, date=f"2024030{s + 1}", time="120000")
    return src, root


def test_import_declares_absent_organs_and_says_so(bed_import, capsys):
    src, root = bed_import
    rep = import_dicom(src, root, ImportOptions(spacing=3., align=False, qc=False, crop_margin_mm=20,
                                                split={"PB001": "train", "RX002": "val"}))
    out = capsys.readouterr().out
    assert rep.patients == {"PB001": "imported", "RX002": "imported"}
    m = load_manifest(root)
    pb, rx = m.patients["PB001"], m.patients["RX002"]
    plan, fx = pb["scans"]
    # post-prostatectomy: the bed is the prostate label, SVs absent on every scan, the reason names the bed ROI
    assert pb["dicom"][plan]["prostate_bed"] == "CTV_prostatebed" and pb["dicom"][fx]["prostate_bed"] == "Prostatic fossa"
    assert pb["dicom"][plan]["roi_mapping"]["CTV_prostatebed"] == "prostate"
    for sid in (plan, fx):
        why = m.absent("PB001", sid)["seminal_vesicles"]
        assert why.startswith("post-prostatectomy") and "prostate bed" in why, why
        assert set(m.absent("PB001", sid)) == {"seminal_vesicles"}
        lab = read_volume(m.scan_dir("PB001", sid) / LABELS_FILE)[0]
        assert (lab == 1).sum() > 100 and not (lab == 2).any()
    # a missing rectum contour is not "absent" (issue 23): a warning, no declaration
    rplan, rfx = rx["scans"]
    assert m.absent("RX002", rplan) == {} and m.absent("RX002", rfx) == {}
    (w,) = rep.of(kind="organ_missing")
    assert (w.patient, w.scan) == ("RX002", rplan) and w.message.startswith("rectum not contoured")
    # said on the console and in the report
    assert f"PB001/{plan}: seminal_vesicles declared absent in manifest.json (post-prostatectomy" in out
    assert f"PB001/{plan}: ROI 'CTV_prostatebed' is a prostate bed: imported as the prostate label" in out
    assert "rectum declared absent" not in out and "[warning] organ_missing: " in out
    assert len(rep.of(kind="absent_organ")) == 2 and len(rep.of(kind="prostate_bed")) == 2
    # check-data: the declared absence is a fact; the undeclared empty planning rectum an error
    cr = check_dataset(root)
    assert {(s.patient, s.scan): set(s.absent) for s in cr.scans if s.absent} == \
        {("PB001", plan): {"seminal_vesicles"}, ("PB001", fx): {"seminal_vesicles"}}
    (e,) = cr.errors
    assert f"RX002/{rplan}/labels.nii.gz" in e.path and "'rectum' (label 3) is empty" in e.problem
    assert check_data_cli([str(root)]) == 1
    text = capsys.readouterr().out
    assert f"ABSENT  PB001/{plan}: seminal_vesicles: post-prostatectomy" in text
    assert "1 error" in text


# ---------------------------------------------------------------- check-data on a toy dataset
def test_check_data_absent_is_a_fact_undeclared_empty_stays_an_error(toy_copy, capsys):
    _drop(toy_copy, "T_p001")
    rep = check_dataset(toy_copy)
    assert len(rep.errors) == 1 and "'seminal_vesicles' (label 2) is empty in the planning labels" in str(rep.errors[0])
    assert "declare it absent" in str(rep.errors[0])
    assert check_data_cli([str(toy_copy)]) == 1
    _declare(toy_copy, "T_p001")
    capsys.readouterr()
    assert check_data_cli([str(toy_copy)]) == 0
    out = capsys.readouterr().out
    assert f"ABSENT  T_p001/s00: seminal_vesicles: {SV_GONE}" in out
    row = next(l.split() for l in out.splitlines() if l.split()[:2] == ["T_p001", "s00"])
    assert row[-4] == "absent" and row[-1] == "ok", row            # the SV column of the table, status ok
    # the same organ declared absent while its voxels are there: an error naming the file
    m = load_manifest(toy_copy); m.declare_absent("T_p000", "s01", "bladder", "not contoured"); m.save()
    (e,) = check_dataset(toy_copy).errors
    assert "T_p000/s01/labels.nii.gz" in str(e) and "declared absent" in str(e) and "remove the voxels or the declaration" in str(e)


# ---------------------------------------------------------------- batches and losses
def test_patches_carry_the_declarations_and_swap_them(toy_copy):
    _drop(toy_copy, "T_p000"); _declare(toy_copy, "T_p000")
    m = load_manifest(toy_copy)
    s = m.patients["T_p000"]["scans"][1]; m.patients["T_p000"]["absent"][s]["rectum"] = "not contoured"
    f = m.scan_dir("T_p000", s) / LABELS_FILE; lab, sp, org = read_volume(f); lab[lab == 3] = 0; write_volume(lab, f, sp, org)
    m.save()
    ds = PatchDataset(JRSDataset(toy_copy, "train"), 48, seed=0)
    items = [ds[i] for i in range(len(ds))]
    b = collate_pairs(items)
    for it, fa, ma in zip(items, b.fixed_absent, b.moving_absent):
        pv = ds.volumes[it.pair]
        want_f = [o in pv.fixed_absent for o in ("prostate", "seminal_vesicles", "rectum", "bladder")]
        assert fa.tolist() == want_f and ma.tolist() == [False, pv.patient == "T_p000", False, False]
    assert b.fixed_absent.any() and not b.fixed_absent[:, [0, 3]].any()
    bs = collate_pairs(items, swap=True)
    assert torch.equal(bs.fixed_absent, torch.cat([b.fixed_absent, b.moving_absent]))
    assert torch.equal(bs.moving_absent, torch.cat([b.moving_absent, b.fixed_absent]))


def _loss_grads(absent:bool, batch_dice:bool):
    "Gradients of the training loss (crossstitch + cross-entropy) on (q, warped SV channel) of sample 0."
    n, g = 48, torch.Generator().manual_seed(0)
    seg = torch.zeros(2, 1, n, n, n, dtype=torch.long); c = n // 2
    seg[:, :, c-7:c+7, c-7:c, c-7:c] = 1; seg[:, :, c-7:c+7, c-7:c, c:c+7] = 2
    seg[:, :, c-7:c+7, c:c+7, c-7:c] = 3; seg[:, :, c-7:c+7, c:c+7, c:c+7] = 4
    seg[0][seg[0] == 2] = 0                                         # sample 0 has no seminal vesicles
    fixed = torch.randn(2, 1, n, n, n, generator=g)
    ab = torch.tensor([[False, True, False, False], [False, False, False, False]])
    b = PairBatch(fixed, fixed.roll(1, 2), seg, seg.roll(1, 2), None, ab if absent else None, ab if absent else None)
    lv, qs, ws = [], [], []
    for l in LEVELS:
        k = level_size(n, l)
        logits = torch.randn(2, 5, k, k, k, generator=g)
        q = torch.full((k, k, k), 0.3, requires_grad=True)         # how sample 0 splits p_bg + p_SV between them
        s = logits[0, 0].exp() + logits[0, 2].exp()
        z0 = torch.stack([(q * s).log(), logits[0, 1], ((1 - q) * s).log(), logits[0, 3], logits[0, 4]])
        w = torch.rand(2, 5, k, k, k, generator=g).softmax(1).requires_grad_()
        lv.append(JRSOutput(seg=torch.cat([z0[None], logits[1:]]), dvf=torch.zeros(2, 3, k, k, k, requires_grad=True),
                            warped_image=crop_to_level(fixed, l).clone().requires_grad_(), warped_seg=w))
        qs.append(q); ws.append(w)
    cfg = replace(make_config("smoke", arch="crossstitch"), batch_dice=batch_dice, ce=1.)
    loss, logs = network_loss(cfg, MultiLevel(*lv), b, (1., 1., 1.))
    loss.backward()
    return max(q.grad.abs().max().item() for q in qs), max(w.grad[0, 2].abs().max().item() for w in ws), logs


@pytest.mark.parametrize("batch_dice", [False, True])
def test_a_masked_organ_contributes_no_gradient(batch_dice):
    dq, dw, logs = _loss_grads(True, batch_dice)
    dq0, dw0, logs0 = _loss_grads(False, batch_dice)
    assert dw == 0. and dq < 1e-7, (dq, dw)                         # absent: no gradient at all
    assert dq0 > 1e-5, dq0                                          # not declared: the empty SV is learnt as background
    if batch_dice: assert dw0 > 1e-6, dw0   # (a per-sample Dice of an empty target is ~0 whatever the output: tiny gradient)
    assert logs["dice_warp"] < logs0["dice_warp"]                   # the absent SV's Dice of 0 no longer counts


# ---------------------------------------------------------------- train -> infer -> evaluate -> export
def test_train_infer_evaluate_export_with_an_absent_organ(toy_copy, tmp_path, capsys):
    data, run, pred, ev = toy_copy, tmp_path / "run", tmp_path / "pred", tmp_path / "eval"
    for pid in ("T_p000", "T_p002"): _drop(data, pid)              # T_p000 trains, T_p002 validates
    args = ["train", "--arch", "crossstitch", "--preset", "smoke", "--data", str(data), "--out", str(run), "--quiet",
            "--device", "cpu"]
    assert cli_main(args) == 2                                      # undeclared: refused, with the reason
    assert "'seminal_vesicles' (label 2) is empty in the planning labels" in capsys.readouterr().err
    for pid in ("T_p000", "T_p002"): _declare(data, pid)
    assert cli_main(args) == 0 and (run / "model.pt").exists()
    assert cli_main(["infer", "--run", str(run), "--data", str(data), "--out", str(pred), "--tile", "96", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"seminal_vesicles absent ({SV_GONE}): not predicted" in out
    idx = json.loads((pred / "predictions.json").read_text())
    assert len(idx["pairs"]) == 2 and all(p["absent"] == {"seminal_vesicles": SV_GONE} for p in idx["pairs"].values())
    for p in idx["pairs"].values():
        for kind in ("seg", "warped_labels"): assert not (read_prediction(pred, p["patient"], p["fixed"], kind) == 2).any()
    # evaluate: the SV column says "absent" with the reason, one console line per pair and path
    assert cli_main(["evaluate", "--pred", str(pred), "--out", str(ev), "--reference", "crossstitch"]) == 0
    out = capsys.readouterr().out
    assert f"T_p002/s01: seminal_vesicles absent, not scored ({SV_GONE})" in out
    res = pd.read_csv(ev / "results.csv", keep_default_na=False)
    sv = res[res.organ == "seminal_vesicles"]
    assert len(sv) == 6 and (sv["absent"] == SV_GONE).all() and sv["gt_empty"].astype(str).eq("True").all()
    assert sorted(set(sv.method)) == ["crossstitch", "unwarped"]   # 2 pairs x (seg, reg) + the unwarped row
    assert (res[res.organ != "seminal_vesicles"]["absent"] == "").all()
    table = (ev / "dsc_val.md").read_text()
    assert "| Seminal vesicles |" in table and f"absent: {SV_GONE}" in table
    # export-rtstruct: a daily CT as DICOM; SV voxels painted into the prediction are never written
    img, sp, org = read_volume(data / "T/T_p002/s01" / IMAGE_FILE)
    ct = tmp_path / "ct"; write_ct_series(img, ct, sp, origin=org, patient_id="T_p002")
    lab = read_volume(data / "T/T_p002/s01" / LABELS_FILE)[0]
    seg_file = pred / "T_p002/s01/seg.nii.gz"
    fake = lab.copy(); fake[20, 20:24, 26:30] = 2; write_volume(fake, seg_file, sp, org)
    assert cli_main(["export-rtstruct", str(seg_file), str(ct), str(tmp_path / "RS.seg.dcm")]) == 0
    out = capsys.readouterr().out
    assert f"seminal_vesicles: absent ({SV_GONE}): not written (16 voxels of it in the label map dropped)" in out
    names = [r.ROIName for r in pydicom.dcmread(tmp_path / "RS.seg.dcm").StructureSetROISequence]
    assert names == ["Prostate", "Rectum", "Bladder"]
    # the dataset's own labels (manifest declaration), and an organ declared on the command line
    assert cli_main(["export-rtstruct", str(data / "T/T_p002/s01" / LABELS_FILE), str(ct), str(tmp_path / "RS.gt.dcm"),
                     "--absent", "rectum=not wanted in this plan"]) == 0
    out = capsys.readouterr().out
    assert "rectum: absent (not wanted in this plan): not written" in out and "seminal_vesicles: absent" in out
    names = [r.ROIName for r in pydicom.dcmread(tmp_path / "RS.gt.dcm").StructureSetROISequence]
    assert names == ["Prostate", "Bladder"]
    n = export_rtstruct(data / "T/T_p002/s01" / LABELS_FILE, ct, tmp_path / "RS.api.dcm")
    assert set(n) == {"prostate", "rectum", "bladder"}              # the Python API honours the manifest too


def test_evaluate_reg_path_of_an_organ_absent_in_the_planning_scan(toy_copy, tmp_path):
    "The warped planning labels cannot hold an organ the planning scan lacks: 'absent in the planning scan', not a failure."
    from jrs_nb.evaluation import evaluate_predictions, evaluate
    from jrs_nb.predictions import write_prediction, save_index, pair_key
    m = load_manifest(toy_copy)
    f = m.scan_dir("T_p002", "s00") / LABELS_FILE; lab, sp, org = read_volume(f); lab[lab == 3] = 0; write_volume(lab, f, sp, org)
    m.declare_absent("T_p002", "s00", "rectum", "not contoured on the planning CT"); m.save()
    assert check_dataset(toy_copy).ok
    idx = {"method": "identity", "data": str(toy_copy), "split": "val", "pairs": {}}
    for p in m.split_pairs("val"):
        files = write_prediction(tmp_path / "pred", p["patient"], p["fixed"], sp, org, warped_labels=lab)
        idx["pairs"][pair_key(p["patient"], p["fixed"])] = {**p, "files": files, "seconds": 0.}
    save_index(tmp_path / "pred", idx)
    res, _ = evaluate_predictions(tmp_path / "pred")
    rect = res[res.organ == "rectum"]
    assert len(rect) == 2 and not rect["failed"].any() and rect["dsc"].isna().all()
    assert (rect["absent"] == "absent in the planning scan (not contoured on the planning CT)").all()
    assert res[res.organ != "rectum"]["dsc"].notna().all()
    r = evaluate([tmp_path / "pred"], tmp_path / "eval")
    assert len(r["absent"]) == 2 and r["results"] == 12   # identity's 6 and the unwarped row's 6
    assert "absent: absent in the planning scan" in (tmp_path / "eval" / "dsc_val.md").read_text()
