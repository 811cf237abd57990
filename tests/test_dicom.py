"DICOM CT + RTSTRUCT import into the dataset layout, and RTSTRUCT export: the whole round trip on synthetic DICOM."
import json, os, runpy, shutil, sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from jrs_nb.core import JRSDataError, LABELS, ORGANS
from jrs_nb.data.io import load_manifest, read_volume, write_volume, IMAGE_FILE, LABELS_FILE
from jrs_nb.data import dicom_import as dimp
from jrs_nb.data.dicom import find_series, load_synonyms
from jrs_nb.data.raster import sort_slices, read_ct, rasterise_struct
from jrs_nb.data.dicom_import import ImportOptions, import_dicom
from jrs_nb.data.fixtures import write_synthetic_cohort
from jrs_nb.data.rtstruct import export_rtstruct

REPO = Path(__file__).resolve().parents[1]
SHAPE, SPACING = (40, 72, 72), (3., 3., 3.)


def dice(a, b): return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    src = tmp_path_factory.mktemp("dicom")
    return src, write_synthetic_cohort(src, n_patients=2, n_daily=2, seed=0, shape=SHAPE, spacing=SPACING, broken=True)


@pytest.fixture(scope="module")
def imported(cohort, tmp_path_factory):
    "The one import with affine pre-alignment (itk-elastix's first use costs tens of seconds)."
    src, truth = cohort; root = tmp_path_factory.mktemp("ds")
    rep = import_dicom(src, root, ImportOptions(site="clinic", crop_margin_mm=20, seed=0), verbose=False)
    return root, rep, truth


# ---------------------------------------------------------------- the import and its report
def test_import_report_names_each_bad_input(imported):
    root, rep, truth = imported
    assert rep.patients == {"JRS001": "imported", "JRS002": "imported"}
    by = lambda kind: rep.of(kind=kind)
    assert {Path(p.file).name for p in by("unreadable")} >= {"CT.corrupt.dcm", "notes.txt"}
    (dup,) = by("duplicated_slice"); assert dup.file.endswith("CT.dup.dcm") and dup.severity == "warning"
    (miss,) = by("missing_slice"); assert miss.severity == "error" and "gap of 6.00 mm" in miss.message
    assert miss.patient == "JRS001"
    (orph,) = by("rtstruct_without_ct"); assert orph.file.endswith("RS.orphan.dcm") and orph.severity == "error"
    (empty,) = by("empty_roi"); assert "'SV'" in empty.message and empty.patient == "JRS002"
    unknown = by("unknown_roi"); assert unknown and all(p.severity == "info" and "PTV_7800" in p.message for p in unknown)
    (nonax,) = by("non_axial"); assert "ImageOrientationPatient" in nonax.message and nonax.file.endswith("mixed")
    (sev,) = by("several_series"); assert sev.file.endswith("mixed") and "2 CT series" in sev.message
    md = (root / "import_report.md").read_text(); js = json.loads((root / "import_report.json").read_text())
    assert "missing_slice" in md and "CT.corrupt.dcm" in md and len(js["problems"]) == len(rep.problems)


def test_manifest_and_layout(imported):
    root, rep, truth = imported
    m = load_manifest(root)
    assert set(m.patients) == {"JRS001", "JRS002"} and m.spacing == [1., 1., 1.]
    p1 = m.patients["JRS001"]
    assert p1["planning"] == p1["scans"][0] == "plan_" + truth["JRS001"][0]["date"]
    assert len(p1["scans"]) == 2                                        # fx02 (missing slice) was skipped
    assert {p for v in m.splits.values() for p in v} == {"JRS001", "JRS002"}
    for q in m.pairs:
        assert q["moving"] == m.patients[q["patient"]]["planning"] and q["fixed"] != q["moving"]
    for pid, e in m.patients.items():
        shapes = set()
        for sid in e["scans"]:
            d = m.scan_dir(pid, sid); assert (d / "qc.png").stat().st_size > 5000
            img, sp, org = read_volume(d / IMAGE_FILE); shapes.add(img.shape)
            assert img.dtype == np.int16 and img.min() >= -1000 and img.max() <= 1000 and sp == (1., 1., 1.)
            if sid in e["labelled"]:
                lab, sp2, org2 = read_volume(d / LABELS_FILE)
                assert lab.shape == img.shape and org2 == org and set(np.unique(lab)) <= {0, 1, 2, 3, 4}
        assert len(shapes) == 1, "planning and daily scans of a patient must share one grid"
    assert not list(root.rglob(".tmp_*")) and not list(root.rglob(".old_*"))


def test_imported_volumes_match_truth(imported):
    root, rep, truth = imported
    rows = {(s["patient"], s["scan"]): s for s in rep.scans}
    for pid in ("JRS001", "JRS002"):
        lab = truth[pid][0]["labels"]; v = np.prod(SPACING) / 1000.
        cc = rows[(pid, load_manifest(root).patients[pid]["planning"])]["organ_cc"]
        for l in ORGANS:   # linear per-organ resampling rounds the corners of 3 mm voxels: thin SVs lose most
            assert cc[LABELS[l]] == pytest.approx((lab == l).sum() * v, rel=0.15 if l == 2 else 0.06), (pid, LABELS[l])


def test_affine_prealignment_recovers_setup_shift(imported):
    root, rep, truth = imported
    m = load_manifest(root)
    errs = []
    for pid, scans in truth.items():
        for s in scans[1:]:
            sid = next((k for k, v in m.patients[pid]["dicom"].items() if v["series_uid"] == s["series_uid"]), None)
            if sid is None: continue                                       # the skipped scan
            T = sitk.ReadTransform(str(m.scan_dir(pid, sid) / "affine_to_planning.tfm"))
            p = np.array([0., 0., 60.])                                    # near the bones, (x, y, z) mm
            errs.append(np.linalg.norm(np.array(T.TransformPoint(p.tolist())) - p - s["setup_shift_zyx"][::-1]))
    assert len(errs) == 3 and max(errs) < 2.0, errs


# ---------------------------------------------------------------- export and the round trip
def test_export_reimport_roundtrip(imported, tmp_path):
    "Daily labels of the dataset -> RTSTRUCT on the daily CT -> re-import: the same masks."
    root, rep, truth = imported
    m = load_manifest(root); pid = "JRS002"; plan = m.patients[pid]["planning"]; t = truth[pid][2]
    sid = next(k for k, v in m.patients[pid]["dicom"].items() if v["series_uid"] == t["series_uid"])
    d, info = m.scan_dir(pid, sid), m.patients[pid]["dicom"][sid]
    src = tmp_path / "src"
    shutil.copytree(info["folder"], src / "daily", ignore=shutil.ignore_patterns("RS*"))
    shutil.copytree(m.patients[pid]["dicom"][plan]["folder"], src / "plan")
    n = export_rtstruct(d / LABELS_FILE, src / "daily", src / "daily" / "RS.pred.dcm", d / "affine_to_planning.tfm")
    assert n["prostate"] > 0 and n["bladder"] > 0
    ds = pydicom.dcmread(src / "daily" / "RS.pred.dcm")
    refs = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == info["series_uid"] and ds.Modality == "RTSTRUCT"
    names = [r.ROIName for r in ds.StructureSetROISequence]
    clinic = {o: n for n, o in info["roi_mapping"].items() if o in LABELS.values()}   # this scan's own ROI names
    assert names == [clinic[LABELS[l]] for l in ORGANS] == ["Prostate", "SeminalVesicles", "Rectum", "Bladder"]
    assert [int(c) for c in ds.ROIContourSequence[0].ROIDisplayColor] == [230, 51, 51]
    # on the daily CT grid: what was exported is what the original RTSTRUCT held
    img = read_ct(sort_slices(find_series(src / "daily")))
    masks, mapping = rasterise_struct(src / "daily" / "RS.pred.dcm", img)
    gt = t["labels"]
    native = {LABELS[l]: dice(masks[l], gt == l) for l in ORGANS if (gt == l).any()}
    assert min(native.values()) >= 0.95, native
    # rt-utils reads back the same masks as our rasteriser
    from rt_utils import RTStructBuilder
    rs = RTStructBuilder.create_from(str(src / "daily"), str(src / "daily" / "RS.pred.dcm"))
    assert dice(rs.get_roi_mask_by_name("Bladder").transpose(2, 0, 1), masks[4]) > 0.99
    # the whole loop: re-import the planning CT + the daily CT with the exported RTSTRUCT, once a
    # reviewer has approved it (an unapproved export of jrs_nb is never taken as ground truth)
    ds.ApprovalStatus = "APPROVED"
    ds.save_as(src / "daily" / "RS.pred.dcm")
    root2 = tmp_path / "ds2"
    rep2 = import_dicom(src, root2, ImportOptions(site="clinic", crop_margin_mm=20), verbose=False)
    assert rep2.patients == {pid: "imported"}
    m2 = load_manifest(root2); sid2 = next(k for k, v in m2.patients[pid]["dicom"].items() if v["series_uid"] == t["series_uid"])
    a, _, oa = read_volume(d / LABELS_FILE); b, _, ob = read_volume(m2.scan_dir(pid, sid2) / LABELS_FILE)
    off = np.round(np.subtract(ob, oa)).astype(int)                    # same 1 mm lattice, crop may differ
    lo, hi = np.maximum(0, off), np.minimum(a.shape, off + np.array(b.shape))
    A = a[tuple(slice(l, h) for l, h in zip(lo, hi))]; B = b[tuple(slice(l - o, h - o) for l, h, o in zip(lo, hi, off))]
    loop = {LABELS[l]: dice(A == l, B == l) for l in ORGANS if (a == l).any()}
    assert min(loop.values()) >= 0.95, loop
    print("round-trip Dice on the daily CT grid:", native, "\non the dataset grid:", loop)


def test_export_applies_the_recorded_transform(imported, tmp_path):
    "Dataset labels of a pre-aligned daily scan: without --transform the export finds the import's transform itself."
    root, rep, truth = imported
    m = load_manifest(root); pid = "JRS001"; sid = m.patients[pid]["scans"][1]; d = m.scan_dir(pid, sid)
    info = m.patients[pid]["dicom"][sid]; t = next(s for s in truth[pid] if s["series_uid"] == info["series_uid"])
    assert np.linalg.norm(t["setup_shift_zyx"]) > 3                    # forgetting the transform would matter
    ct = tmp_path / "ct"; shutil.copytree(info["folder"], ct, ignore=shutil.ignore_patterns("RS*", "CT.dup.dcm"))
    notes = []
    auto = export_rtstruct(d / LABELS_FILE, ct, tmp_path / "auto.dcm", notes=notes)
    given = export_rtstruct(d / LABELS_FILE, ct, tmp_path / "given.dcm", d / "affine_to_planning.tfm")
    none = export_rtstruct(d / LABELS_FILE, ct, tmp_path / "none.dcm", sitk.TranslationTransform(3))   # identity: the old mistake
    assert auto == given and auto != none and "affine_to_planning.tfm" in notes[0]
    img = read_ct(sort_slices(find_series(ct)))
    dsc = {k: dice(rasterise_struct(tmp_path / f"{k}.dcm", img)[0][1], t["labels"] == 1) for k in ("auto", "none")}
    assert dsc["auto"] > 0.9 and dsc["auto"] > dsc["none"] + 0.03, dsc
    # the same labels reached through a predictions folder that names the dataset
    pred = tmp_path / "pred"; (pred / pid / sid).mkdir(parents=True)
    shutil.copy(d / LABELS_FILE, pred / pid / sid / "seg.nii.gz")
    (pred / "predictions.json").write_text(json.dumps({"data": str(root), "pairs": {}}))
    assert export_rtstruct(pred / pid / sid / "seg.nii.gz", ct, tmp_path / "p.dcm") == auto
    # the transform file gone while the manifest records a pre-alignment: refused, nothing written
    copy = tmp_path / "ds"; shutil.copytree(root, copy)
    (copy / "clinic" / pid / sid / "affine_to_planning.tfm").unlink()
    with pytest.raises(JRSDataError, match="pre-aligned scan .* is missing"):
        export_rtstruct(copy / "clinic" / pid / sid / LABELS_FILE, ct, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_outputs_respect_the_umask(cohort, tmp_path):
    "Files of an import and of an export are readable by others under umask 022 (not 0600 / 0700)."
    import stat
    src, truth = cohort; old = os.umask(0o022)
    try:
        root = tmp_path / "ds"
        import_dicom(src, root, ImportOptions(align=False, spacing=3.0), patients=["JRS002"], verbose=False)
        m = load_manifest(root); d = m.scan_dir("JRS002", m.patients["JRS002"]["scans"][0])
        ct = m.patients["JRS002"]["dicom"][d.name]["folder"]
        export_rtstruct(d / LABELS_FILE, ct, tmp_path / "out" / "RS.dcm")
    finally: os.umask(old)
    paths = list(root.rglob("*")) + [tmp_path / "out", tmp_path / "out" / "RS.dcm"]
    modes = {p.relative_to(tmp_path): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}
    assert {v for p, v in modes.items() if (tmp_path / p).is_file()} == {"0o644"}, modes
    assert {v for p, v in modes.items() if (tmp_path / p).is_dir()} == {"0o755"}, modes
    assert any(str(p).endswith("qc.png") for p in modes) and not list(root.rglob(".tmp_*"))


def test_export_errors(imported, tmp_path):
    root, rep, truth = imported
    m = load_manifest(root); pid = "JRS001"; sid = m.patients[pid]["scans"][1]
    bad = tmp_path / "bad.nii.gz"; write_volume(np.full((4, 4, 4), 7, np.uint8), bad)
    with pytest.raises(JRSDataError, match="0..4"):
        export_rtstruct(bad, m.patients[pid]["dicom"][sid]["folder"], tmp_path / "x.dcm")
    with pytest.raises(JRSDataError, match="holds no other CT series"):   # the dataset's labels know their CT
        export_rtstruct(m.scan_dir(pid, sid) / LABELS_FILE, tmp_path, tmp_path / "x.dcm")
    shutil.copy(m.scan_dir(pid, sid) / LABELS_FILE, tmp_path / "pred.nii.gz")     # labels from elsewhere
    with pytest.raises(JRSDataError, match="found 0"):
        export_rtstruct(tmp_path / "pred.nii.gz", tmp_path, tmp_path / "x.dcm", no_transform=True)
    assert not (tmp_path / "x.dcm").exists()


def test_failure_in_one_patient_keeps_the_others(cohort, tmp_path, monkeypatch):
    src, truth = cohort
    root = tmp_path / "ds"; opts = ImportOptions(align=False, qc=False, spacing=2.0)   # 2 mm: fast
    rep = import_dicom(src, root, opts, patients=["JRS001"], verbose=False)
    before = {p: p.stat().st_mtime_ns for p in (root / "clinic" / "JRS001").rglob("*.nii.gz")}
    real = dimp.write_volume
    def failing(arr, path, *a, **k):   # the daily scan's labels cannot be written
        if Path(path).name == LABELS_FILE and Path(path).parent.name.startswith("fx"): raise OSError("disk full (simulated)")
        return real(arr, path, *a, **k)
    monkeypatch.setattr(dimp, "write_volume", failing)
    rep2 = import_dicom(src, root, opts, verbose=False)          # both patients: each fails half-way
    assert all(v.startswith("failed") for v in rep2.patients.values()) and "disk full" in rep2.patients["JRS002"]
    assert {p: p.stat().st_mtime_ns for p in (root / "clinic" / "JRS001").rglob("*.nii.gz")} == before
    assert not (root / "clinic" / "JRS002").exists() and not list(root.rglob(".tmp_*"))
    assert set(load_manifest(root).patients) == {"JRS001"}


# ---------------------------------------------------------------- command-line scripts
def _run_script(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name] + [str(a) for a in argv])
    with pytest.raises(SystemExit) as e: runpy.run_path(str(REPO / "data_prep" / name), run_name="__main__")
    return e.value.code


def test_data_prep_scripts(cohort, imported, tmp_path, monkeypatch, capsys):
    src, truth = cohort; root, rep, _ = imported
    assert _run_script("import_dicom.py", ["--write-synonyms", tmp_path / "syn.json"], monkeypatch) == 0
    assert load_synonyms(tmp_path / "syn.json").organ("Zaadblaasjes") == "seminal_vesicles"
    code = _run_script("import_dicom.py", [src / "JRS002", tmp_path / "ds", "--no-align", "--no-qc", "--split", "test", "--spacing", "2",
                                           "--synonyms", tmp_path / "syn.json", "--site", "emc"], monkeypatch)
    assert code == 1                  # JRS002 is imported, but its coronal MPR is skipped with an [error]
    assert "1 error(s): what they name is not in the dataset (exit 1)" in capsys.readouterr().out
    m = load_manifest(tmp_path / "ds"); assert m.splits["test"] == ["JRS002"] and m.patients["JRS002"]["site"] == "emc"
    man = load_manifest(root); sid = man.patients["JRS002"]["scans"][1]; d = man.scan_dir("JRS002", sid)
    ct = man.patients["JRS002"]["dicom"][sid]["folder"]
    # this daily RTSTRUCT's SV ROI is empty: not "absent", so the export needs the user's word
    code = _run_script("export_rtstruct.py", [d / LABELS_FILE, ct, tmp_path / "RS.out.dcm", "--transform",
                                              d / "affine_to_planning.tfm", "--allow-missing",
                                              "seminal_vesicles"], monkeypatch)
    assert code == 0 and pydicom.dcmread(tmp_path / "RS.out.dcm").Modality == "RTSTRUCT"
    assert _run_script("import_dicom.py", [tmp_path / "nowhere", tmp_path / "ds3"], monkeypatch) == 2
    assert "does not exist" in capsys.readouterr().err


def test_import_crops_to_the_organs_by_default(tmp_path):
    "import-dicom crops to the organs + 50 mm unless --no-crop; every organ voxel is kept (issue 23)."
    from conftest import run_cli
    write_synthetic_cohort(tmp_path / "src", n_patients=1, n_daily=1, seed=0, shape=(30, 100, 100),
                           spacing=(3., 3., 3.))
    shapes, cc = {}, {}
    for name, extra in (("crop", ()), ("whole", ("--no-crop",))):
        code, out = run_cli("import-dicom", tmp_path / "src", tmp_path / name, "--spacing", "3", "--no-align",
                            "--no-qc", *extra)
        assert code == 0, out
        m = load_manifest(tmp_path / name); pid = next(iter(m.patients))
        lab = read_volume(m.scan_dir(pid, m.planning(pid)) / LABELS_FILE)[0]
        shapes[name], cc[name] = lab.shape, np.bincount(lab.ravel(), minlength=5)[1:]
    assert shapes["whole"] == (30, 100, 100), shapes
    assert np.prod(shapes["crop"]) < 0.5 * np.prod(shapes["whole"]), shapes
    assert (cc["crop"] == cc["whole"]).all(), cc   # the organs whole
