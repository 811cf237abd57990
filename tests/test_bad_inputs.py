"""The bad-input table of nbs/tutorials/bad_inputs.ipynb, row by row: each row's command, run on data made here,
exits with the row's code and prints the row's message as one line of its output (paths under the test's folder
read `<tmp>`, DICOM UIDs `<uid>`, the package folder `<jrs_nb>`). The table cannot rot: a changed message fails
its row, a row without a case (or a case without a row) fails `test_every_row_has_a_case`.

To add a row: write a case below (`@case("my-id")`, a function of `ctx` that prepares the bad input and returns
`ctx.run(...)`), add `| my-id | ... |` to the table, run `pytest tests/test_bad_inputs.py -k my-id`: the failure
prints the output lines to copy the message from."""
import contextlib, io, json, re, shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import SimpleITK as sitk

from jrs_nb.cli import main
from jrs_nb.data.io import read_volume, write_volume, load_manifest, LABELS_FILE, IMAGE_FILE
from jrs_nb.data.dicom import default_synonyms_path, write_synonyms, load_synonyms
from jrs_nb.data.dicom_write import write_ct_series, write_rtstruct
from jrs_nb.data.fixtures import make_toy_dataset, pelvis_scan

TABLE_NB = Path(__file__).resolve().parents[1] / "nbs" / "tutorials" / "bad_inputs.ipynb"
SHAPE, SP = (24, 48, 48), (3., 3., 3.)        # a tiny pelvis: 72 x 144 x 144 mm
BED = {1: "CTV_prostatebed", 2: "SV", 3: "Rectum", 4: "Bladder"}


# ---------------------------------------------------------------- the table
def read_table(nb_path=TABLE_NB) -> list[dict]:
    "Rows {id, command, input, exit, message} of the markdown table whose header starts with `| id |`."
    nb = nbformat.read(nb_path, as_version=4)
    rows = []
    for c in nb.cells:
        if c.cell_type != "markdown" or "| id |" not in c.source: continue
        for line in c.source.splitlines():
            if not line.startswith("| ") or line.startswith("| id |") or line.startswith("|---"): continue
            cols = [x.strip().replace("\\|", "|") for x in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            assert len(cols) == 5, f"a row of the bad-input table needs 5 columns: {line}"
            rid, cmd, what, code, msg = cols
            rows.append({"id": rid, "command": cmd.strip("`"), "input": what, "exit": int(code), "message": msg.strip("`")})
    return rows


ROWS = read_table()
CASES = {}


def case(rid):
    def deco(f): CASES[rid] = f; return f
    return deco


# ---------------------------------------------------------------- data made once per module
def write_patient(folder, pid="P1", n_daily=1, names=None, seed=0, extra=None):
    "One patient: a planning CT and `n_daily` daily CTs, each with an RTSTRUCT; returns the CT folders."
    out = []
    for s in range(n_daily + 1):
        hu, lab = pelvis_scan(SHAPE, SP, seed=seed, patient=0, scan=s)
        d = folder / pid / f"CT{s}"
        info = write_ct_series(hu, d, SP, patient_id=pid, date=f"2024030{s + 1}", description=f"scan {s}")
        write_rtstruct(lab, info["files"], d / "RS.dcm", names or BED, (extra or {}).get(s), date=f"2024030{s + 1}")
        out.append(d)
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    "The clean inputs the cases break: a toy dataset, a DICOM export, and that export imported (no pre-alignment)."
    base = tmp_path_factory.mktemp("bad_inputs")
    make_toy_dataset(base / "toy", n_patients=1, n_daily=1, seed=0, n_val=0)
    write_patient(base / "dicom")
    syn = write_synonyms(base / "syn.json"); d = json.loads(syn.read_text())
    d["synonyms"]["prostate"].append("CTV_prostatebed"); syn.write_text(json.dumps(d))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["import-dicom", str(base / "dicom"), str(base / "ds"), "--no-align", "--no-qc", "--spacing", "3",
                     "--split", "test", "--synonyms", str(syn)]) == 0
    return base


class Ctx:
    def __init__(self, made, tmp):
        self.made, self.tmp = made, tmp

    def copy(self, name):
        "A private copy of one of the clean inputs (toy, dicom, ds, syn.json), under <tmp>."
        src, dst = self.made / name, self.tmp / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        return dst

    def run(self, *argv):
        "(exit code, stdout + stderr) of `jrs-nb ARGV`."
        self.command = f"jrs-nb {argv[0]}"; out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main([str(a) for a in argv])
        return code, out.getvalue()

    def normalise(self, text):
        for p, tok in ((self.tmp.resolve(), "<tmp>"), (self.tmp, "<tmp>"), (default_synonyms_path().parent, "<jrs_nb>")):
            text = text.replace(str(p), tok)
        return re.sub(r"\b\d+(?:\.\d+){4,}\b", "<uid>", text)


@pytest.fixture
def ctx(made, tmp_path): return Ctx(made, tmp_path)


def _edit_labels(path, f):
    lab, sp, org = read_volume(path); lab = f(lab.copy()); write_volume(lab.astype(np.uint8), path, sp, org)


DAILY = "toy/T/T_p000/s01"
PLAN = "toy/T/T_p000/s00"


# ---------------------------------------------------------------- check-data
@case("check-missing-file")
def _(ctx):
    root = ctx.copy("toy")
    (ctx.tmp / PLAN / LABELS_FILE).unlink()
    return ctx.run("check-data", root)

@case("check-unlabelled-daily")
def _(ctx):
    root = ctx.copy("toy"); (ctx.tmp / DAILY / LABELS_FILE).unlink()
    return ctx.run("check-data", root)

@case("check-nan")
def _(ctx):
    root = ctx.copy("toy"); p = ctx.tmp / DAILY / IMAGE_FILE
    img, sp, org = read_volume(p); img = img.astype(np.float32); img[20, 24, 28] = np.nan; write_volume(img, p, sp, org)
    return ctx.run("check-data", root)

@case("check-grid")
def _(ctx):
    root = ctx.copy("toy"); p = ctx.tmp / DAILY / LABELS_FILE
    lab, sp, org = read_volume(p); write_volume(lab, p, sp, (org[0] + 6, org[1], org[2]))
    return ctx.run("check-data", root)

@case("check-label-values")
def _(ctx):
    root = ctx.copy("toy")
    def f(l): l[0, 0, 0] = 7; return l
    _edit_labels(ctx.tmp / DAILY / LABELS_FILE, f)
    return ctx.run("check-data", root)

@case("check-organ-outside-body")
def _(ctx):
    root = ctx.copy("toy")
    def f(l): l[l == 2] = 0; l[:2, :2, :2] = 2; return l     # 8 voxels of "seminal vesicles" in a corner
    _edit_labels(ctx.tmp / PLAN / LABELS_FILE, f)
    return ctx.run("check-data", root)

@case("check-implausible-volume")
def _(ctx):
    root = ctx.copy("toy")
    def f(l): l[l == 2] = 0; l[np.argwhere(l == 1)[0][0], 20:22, 26:28] = 2; return l   # 4 voxels (0.1 cc) in the body
    _edit_labels(ctx.tmp / PLAN / LABELS_FILE, f)
    return ctx.run("check-data", root)

@case("check-spacing-advice")
def _(ctx): return ctx.run("check-data", ctx.copy("toy"))   # 3 mm voxels; the shipped networks run at 2 mm

@case("check-no-manifest")
def _(ctx):
    (ctx.tmp / "empty").mkdir(); return ctx.run("check-data", ctx.tmp / "empty")

@case("check-not-a-folder")
def _(ctx): return ctx.run("check-data", ctx.tmp / "nowhere")


# ---------------------------------------------------------------- import-dicom
IMPORT = ("--no-align", "--no-qc", "--spacing", "3")

@case("import-missing-folder")
def _(ctx): return ctx.run("import-dicom", ctx.tmp / "nowhere", ctx.tmp / "ds", *IMPORT)

@case("import-corrupt-dicom")
def _(ctx):
    src = ctx.copy("dicom"); (src / "P1" / "CT0" / "CT.corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)))
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-rtstruct-without-ct")
def _(ctx):
    src = ctx.copy("dicom"); hu, lab = pelvis_scan(SHAPE, SP, seed=5)
    info = write_ct_series(hu, ctx.tmp / "other_ct", SP, patient_id="P1")
    write_rtstruct(lab, info["files"], src / "P1" / "RS.orphan.dcm")           # its CT is not in the export
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-no-known-organ")
def _(ctx):
    write_patient(ctx.tmp / "src", "B1", 0, {1: "Breast_L", 2: "Heart", 3: "Lung_L", 4: "Lung_R"})
    return ctx.run("import-dicom", ctx.tmp / "src", ctx.tmp / "ds", *IMPORT)

@case("import-unknown-roi-names")
def _(ctx): return CASES["import-no-known-organ"](ctx)

@case("import-keep-unlabelled")
def _(ctx):
    write_patient(ctx.tmp / "src", "B1", 0, {1: "Breast_L", 2: "Heart", 3: "Lung_L", 4: "Lung_R"})
    return ctx.run("import-dicom", ctx.tmp / "src", ctx.tmp / "ds", *IMPORT, "--keep-unlabelled")

@case("import-missing-slice")
def _(ctx):
    src = ctx.copy("dicom"); sorted((src / "P1" / "CT1").glob("CT.*.dcm"))[12].unlink()
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-only-scan-fails")
def _(ctx):
    src = ctx.copy("dicom"); shutil.rmtree(src / "P1" / "CT1"); sorted((src / "P1" / "CT0").glob("CT.*.dcm"))[12].unlink()
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-planning-fails")
def _(ctx):
    src = ctx.copy("dicom"); sorted((src / "P1" / "CT0").glob("CT.*.dcm"))[12].unlink()
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

def test_no_planning_note_without_another_scan(ctx):
    "The only scan failing does not claim that 'the next usable scan becomes the planning scan'."
    code, out = CASES["import-only-scan-fails"](ctx)
    assert code == 1 and "next usable scan" not in out and "becomes the planning scan" not in out, out

@case("import-error-exit")
def _(ctx): return CASES["import-missing-slice"](ctx)

def _reimport(ctx, ct):
    "The clean dataset's P1 imported again from an export whose CT folder `ct` lost a slice."
    root, src = ctx.copy("ds"), ctx.copy("dicom")
    sorted((src / "P1" / ct).glob("CT.*.dcm"))[12].unlink()
    return ctx.run("import-dicom", src, root, *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-reimport-keeps-scan")
def _(ctx): return _reimport(ctx, "CT1")

@case("import-reimport-planning-lost")
def _(ctx): return _reimport(ctx, "CT0")

def test_a_reimport_deletes_no_scan(ctx):
    "A scan that fails now keeps its earlier import and pair; a lost planning scan: all kept."
    def volumes(root): return {p.relative_to(root) for p in (root / "clinic").rglob("*.nii.gz")}
    before = load_manifest(ctx.made / "ds")
    files = volumes(ctx.made / "ds")
    for ct in ("CT1", "CT0"):
        assert _reimport(ctx, ct)[0] == 1
        m = load_manifest(ctx.tmp / "ds")
        assert m.patients["P1"]["scans"] == before.patients["P1"]["scans"]
        assert m.pairs == before.pairs and volumes(ctx.tmp / "ds") == files
        for d in ("ds", "dicom", "syn.json"):
            (shutil.rmtree if (ctx.tmp / d).is_dir() else Path.unlink)(ctx.tmp / d)

@case("import-rtstruct-slices-missing")
def _(ctx):
    src = ctx.copy("dicom")
    for f in sorted((src / "P1" / "CT1").glob("CT.*.dcm"))[-2:]: f.unlink()    # the export lost the top two slices
    return ctx.run("import-dicom", src, ctx.tmp / "ds", *IMPORT, "--synonyms", ctx.copy("syn.json"))

@case("import-overlapping-rois")
def _(ctx):
    hu, lab = pelvis_scan(SHAPE, SP, seed=0)
    blad = (lab == 4) | (lab == 1)                           # a bladder contour that swallows the prostate
    info = write_ct_series(hu, ctx.tmp / "src" / "P1" / "CT0", SP, patient_id="P1", date="20240301")
    write_rtstruct(np.where(lab == 4, 0, lab), info["files"], ctx.tmp / "src" / "P1" / "CT0" / "RS.dcm",
                   {1: "Prostate", 2: "SV", 3: "Rectum"}, {"Bladder": blad})
    return ctx.run("import-dicom", ctx.tmp / "src", ctx.tmp / "ds", *IMPORT)

@case("import-own-rtstruct")
def _(ctx):
    root, d, ct, _ = _daily(ctx)
    _edit_labels(d / LABELS_FILE, lambda l: np.where(l == 3, 0, l))   # a prediction, no rectum
    out = ct / "RS.jrs.dcm"                                          # the newest RTSTRUCT
    assert ctx.run("export-rtstruct", d / LABELS_FILE, ct, out, "--allow-missing", "rectum")[0] == 0
    return ctx.run("import-dicom", ctx.tmp / "dicom", ctx.tmp / "ds2", *IMPORT, "--synonyms",
                   ctx.copy("syn.json"))

def test_own_rtstruct_is_not_ground_truth(ctx):
    assert CASES["import-own-rtstruct"](ctx)[0] == 0
    m = load_manifest(ctx.tmp / "ds2")
    sid = m.patients["P1"]["scans"][1]
    assert Path(m.patients["P1"]["dicom"][sid]["rtstruct"]).name == "RS.dcm"
    assert (read_volume(m.scan_dir("P1", sid) / LABELS_FILE)[0] == 3).any()   # the clinic's rectum

@case("import-roi-typo")
def _(ctx):
    write_patient(ctx.tmp / "src", "P1", 1, {1: "Prostate", 2: "SV", 3: "Rectum", 4: "Blader"})
    return ctx.run("import-dicom", ctx.tmp / "src", ctx.tmp / "ds", *IMPORT)

@case("import-empty-roi")
def _(ctx):
    for s, empty in ((0, ()), (1, (4,))):        # the daily: a template's empty bladder ROI
        hu, lab = pelvis_scan(SHAPE, SP, seed=0, patient=0, scan=s)
        d = ctx.tmp / "src" / "P1" / f"CT{s}"
        info = write_ct_series(hu, d, SP, patient_id="P1", date=f"2024030{s + 1}")
        write_rtstruct(lab, info["files"], d / "RS.dcm", empty=empty, date=f"2024030{s + 1}")
    return ctx.run("import-dicom", ctx.tmp / "src", ctx.tmp / "ds", *IMPORT)

def test_a_missing_organ_is_never_declared_absent(ctx):
    "A misspelled ROI or an empty one: no declaration in the manifest (a warning says what to do)."
    for rid in ("import-roi-typo", "import-empty-roi"):
        assert CASES[rid](ctx)[0] == 0
        m = load_manifest(ctx.tmp / "ds")
        assert not any(m.absent("P1", s) for s in m.patients["P1"]["scans"]), rid
        shutil.rmtree(ctx.tmp / "src")
        shutil.rmtree(ctx.tmp / "ds")

@case("import-split-moved")
def _(ctx):
    root = ctx.copy("ds")    # P1 was imported into 'test'
    return ctx.run("import-dicom", ctx.copy("dicom"), root, *IMPORT, "--synonyms", ctx.copy("syn.json"), "--split", "val")

@case("import-split-kept")
def _(ctx):
    root = ctx.copy("ds")
    return ctx.run("import-dicom", ctx.copy("dicom"), root, *IMPORT, "--synonyms", ctx.copy("syn.json"),
                   "--split", "train=0.5,val=0.5")

@case("import-bad-spacing")
def _(ctx): return ctx.run("import-dicom", ctx.tmp, ctx.tmp / "ds", "--spacing", "0")

@case("import-bad-split")
def _(ctx): return ctx.run("import-dicom", ctx.tmp, ctx.tmp / "ds", "--split", "train=0.7,vali=0.3")


# ---------------------------------------------------------------- export-rtstruct
def _daily(ctx):
    "(dataset root, daily scan folder, daily CT folder, planning CT folder), private copies."
    root, src = ctx.copy("ds"), ctx.copy("dicom")
    m = load_manifest(root); sid = m.patients["P1"]["scans"][1]
    return root, m.scan_dir("P1", sid), src / "P1" / "CT1", src / "P1" / "CT0"

@case("export-missing-file")
def _(ctx):
    root, d, ct, _ = _daily(ctx); return ctx.run("export-rtstruct", d / "pred.nii.gz", ct, ctx.tmp / "RS.dcm")

@case("export-all-background")
def _(ctx):
    root, d, ct, _ = _daily(ctx); _edit_labels(d / LABELS_FILE, lambda l: l * 0)
    return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm")

@case("export-label-values")
def _(ctx):
    root, d, ct, _ = _daily(ctx)
    def f(l): l[0, 0, 0] = 7; return l
    _edit_labels(d / LABELS_FILE, f)
    return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm")

@case("export-no-overlap")
def _(ctx):
    root, d, ct, _ = _daily(ctx); lab, sp, org = read_volume(d / LABELS_FILE)
    write_volume(lab, ctx.tmp / "pred.nii.gz", sp, (org[0] + 500, org[1], org[2]))   # 50 cm above the CT
    return ctx.run("export-rtstruct", ctx.tmp / "pred.nii.gz", ct, ctx.tmp / "RS.dcm", "--no-transform")

def _copied_out(ctx, *extra):
    "The daily scan's labels copied out of the dataset (no way to find its pre-alignment), exported."
    root, d, ct, _ = _daily(ctx); shutil.copy(d / LABELS_FILE, ctx.tmp / "pred.nii.gz")
    return ctx.run("export-rtstruct", ctx.tmp / "pred.nii.gz", ct, ctx.tmp / "RS.dcm", *extra)

@case("export-label-file-elsewhere")
def _(ctx): return _copied_out(ctx)

@case("export-no-transform")
def _(ctx): return _copied_out(ctx, "--no-transform")

def _seg_of_bed(ctx, with_reg):
    "A segmentation path's output (seg.nii.gz) for P1, whose prostate is a bed, in a predictions folder."
    root, d, ct, _ = _daily(ctx); lab, sp, org = read_volume(d / LABELS_FILE)
    out = ctx.tmp / "pred" / "P1" / d.name; out.mkdir(parents=True)
    (ctx.tmp / "pred" / "predictions.json").write_text(json.dumps({"data": str(root), "pairs": {}}))
    write_volume(np.roll(lab, 3, axis=1).astype(np.uint8), out / "seg.nii.gz", sp, org)   # a "prostate" elsewhere
    if with_reg: write_volume(lab, out / "warped_labels.nii.gz", sp, org)
    return ctx.run("export-rtstruct", out / "seg.nii.gz", ct, ctx.tmp / "RS.dcm")

@case("export-seg-bed-refused")
def _(ctx): return _seg_of_bed(ctx, False)

@case("export-seg-bed-registration")
def _(ctx): return _seg_of_bed(ctx, True)

@case("export-applies-recorded-transform")
def _(ctx):
    root, d, ct, _ = _daily(ctx); t = sitk.TranslationTransform(3, (1.5, -2., 3.))
    sitk.WriteTransform(t, str(d / "affine_to_planning.tfm"))
    return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm")

@case("export-transform-missing")
def _(ctx):
    root, d, ct, _ = _daily(ctx); m = json.loads((root / "manifest.json").read_text())
    m["patients"]["P1"]["dicom"][d.name]["affine"] = {"shift_mm": 3.0}        # the import pre-aligned this scan
    (root / "manifest.json").write_text(json.dumps(m))
    return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm")

@case("export-wrong-ct")
def _(ctx):
    root, d, ct, plan_ct = _daily(ctx); return ctx.run("export-rtstruct", d / LABELS_FILE, plan_ct, ctx.tmp / "RS.dcm")

@case("export-roi-names")
def _(ctx):
    root, d, ct, _ = _daily(ctx); return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm")

def _no_rectum(ctx, *extra):
    "A prediction without the rectum, in the daily scan's folder, exported onto the daily CT."
    root, d, ct, _ = _daily(ctx)
    lab, sp, org = read_volume(d / LABELS_FILE)
    write_volume(np.where(lab == 3, 0, lab).astype(np.uint8), d / "pred.nii.gz", sp, org)
    return ctx.run("export-rtstruct", d / "pred.nii.gz", ct, ctx.tmp / "RS.dcm", *extra)

@case("export-organ-missing")
def _(ctx): return _no_rectum(ctx)

@case("export-allow-missing")
def _(ctx): return _no_rectum(ctx, "--allow-missing", "rectum")

@case("export-bad-roi-name")
def _(ctx):
    root, d, ct, _ = _daily(ctx)
    return ctx.run("export-rtstruct", d / LABELS_FILE, ct, ctx.tmp / "RS.dcm", "--roi-name", "9=Femur")


# ---------------------------------------------------------------- infer
@case("infer-spacing-refused")
def _(ctx):
    root = ctx.copy("toy")   # 3 mm voxels; the shipped networks were trained on 2 mm
    return ctx.run("infer", "--run", "pretrained:reg", "--data", root, "--out", ctx.tmp / "pred", "--split", "train",
                   "--no-resample")

def _infer(ctx, root, *extra, run="pretrained:seg", out="pred"):
    return ctx.run("infer", "--run", run, "--data", root, "--out", ctx.tmp / out, *extra)

@case("infer-unlabelled-daily")
def _(ctx):
    root = ctx.copy("toy")
    (ctx.tmp / DAILY / LABELS_FILE).unlink()
    return _infer(ctx, root, "--split", "train")

@case("infer-planning-unlabelled")
def _(ctx):
    root = ctx.copy("toy")
    (ctx.tmp / PLAN / LABELS_FILE).unlink()    # the only pair's planning scan has no contours
    return _infer(ctx, root, "--split", "train")

@case("infer-not-a-pelvis")
def _(ctx):
    root = ctx.copy("toy")
    _edit_labels(ctx.tmp / PLAN / LABELS_FILE, lambda l: np.flip(l, 0))   # head and feet swapped
    return _infer(ctx, root, "--split", "train")

@case("infer-empty-split")
def _(ctx): return _infer(ctx, ctx.copy("toy"), "--split", "val")   # one patient, in train

@case("infer-unwritable-out")
def _(ctx):
    root = ctx.copy("toy")
    (ctx.tmp / "afile").write_text("")
    return _infer(ctx, root, "--split", "train", out="afile/pred")

def _two_runs(ctx, *extra):
    "pretrained:reg's predictions in <tmp>/pred, then pretrained:seg into the same folder."
    root = ctx.copy("toy")
    assert _infer(ctx, root, "--split", "train", run="pretrained:reg")[0] == 0
    return _infer(ctx, root, "--split", "train", *extra)

@case("infer-other-run")
def _(ctx): return _two_runs(ctx)

@case("infer-overwrite")
def _(ctx): return _two_runs(ctx, "--overwrite")

@case("evaluate-nothing-to-score")
def _(ctx):
    assert CASES["infer-unlabelled-daily"](ctx)[0] == 0
    return ctx.run("evaluate", "--pred", ctx.tmp / "pred", "--out", ctx.tmp / "eval")

@case("infer-spacing-resampled")
def _(ctx):
    root = ctx.copy("toy")
    return ctx.run("infer", "--run", "pretrained:reg", "--data", root, "--out", ctx.tmp / "pred", "--split", "train")


# ---------------------------------------------------------------- contour
@case("contour-other-patient")
def _(ctx):
    (plan,) = write_patient(ctx.tmp / "src", "P1", 0)
    (daily,) = write_patient(ctx.tmp / "src", "P2", 0)
    return ctx.run("contour", "--planning", plan, "--daily", daily, "--out", ctx.tmp / "out")

@case("contour-seg-bed")
def _(ctx):
    plan, daily = write_patient(ctx.tmp / "src", "P1", 1, BED)   # a prostate bed (default synonyms)
    (daily / "RS.dcm").unlink()                                   # the daily CT alone
    return ctx.run("contour", "--planning", plan, "--daily", daily, "--out", ctx.tmp / "out",
                   "--run", "pretrained:seg", "--no-align")

@case("contour-not-a-pelvis")
def _(ctx):
    for s in (0, 1):
        hu, lab = pelvis_scan(SHAPE, SP, seed=0, patient=0, scan=s)
        info = write_ct_series(hu, ctx.tmp / "src" / f"CT{s}", SP, patient_id="P1", date=f"2024030{s + 1}")
        if s == 0:   # contours upside down: the "bladder" below the "prostate"
            write_rtstruct(np.ascontiguousarray(np.flip(lab, 0)), info["files"], ctx.tmp / "src" / "CT0" / "RS.dcm")
    return ctx.run("contour", "--planning", ctx.tmp / "src" / "CT0", "--daily", ctx.tmp / "src" / "CT1",
                   "--out", ctx.tmp / "out", "--no-align")


# ---------------------------------------------------------------- the tests
def test_every_row_has_a_case():
    ids = [r["id"] for r in ROWS]
    assert len(ids) >= 20 and len(set(ids)) == len(ids), ids
    assert set(ids) == set(CASES), (f"rows without a case: {sorted(set(ids) - set(CASES))}; "
                                    f"cases without a row: {sorted(set(CASES) - set(ids))}")


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_row(row, ctx):
    code, out = CASES[row["id"]](ctx)
    lines = [l.strip() for l in ctx.normalise(out).splitlines()]
    assert ctx.command == row["command"], (ctx.command, row["command"])
    if row["command"] == "jrs-nb export-rtstruct" and code != 0:
        assert not (ctx.tmp / "RS.dcm").exists(), "a refused export wrote a file"
    assert row["message"] in lines and code == row["exit"], (
        f"\nexit {code} (table: {row['exit']}); the table's message:\n  {row['message']}\nthe output:\n  "
        + "\n  ".join(lines))


def test_what_the_import_cases_leave_on_disk(ctx):
    "The split move is in the manifest; a skipped patient leaves nothing; a kept unlabelled one has no labels file."
    assert CASES["import-split-moved"](ctx)[0] == 0
    m = load_manifest(ctx.tmp / "ds")
    assert m.splits["val"] == ["P1"] and "P1" not in m.splits["test"] and {q["split"] for q in m.pairs} == {"val"}
    assert CASES["import-no-known-organ"](ctx)[0] == 1           # into the same dataset, which holds P1
    ds = ctx.tmp / "ds"
    assert not (ds / "clinic" / "B1").exists() and "B1" not in json.loads((ds / "manifest.json").read_text())["patients"]
    shutil.rmtree(ctx.tmp / "src"); shutil.rmtree(ds)
    assert CASES["import-keep-unlabelled"](ctx)[0] == 0
    m = load_manifest(ds); (sid,) = m.patients["B1"]["scans"]
    assert (m.scan_dir("B1", sid) / IMAGE_FILE).exists() and not (m.scan_dir("B1", sid) / LABELS_FILE).exists()


def test_infer_read_only_out_refused_before_work(ctx, monkeypatch):
    "A folder the user may not write (faked: root writes anywhere) is refused before any work."
    import jrs_nb.inference as inf
    root = ctx.copy("toy")
    (ctx.tmp / "ro").mkdir()
    monkeypatch.setattr(inf.os, "access", lambda p, mode: Path(p) != ctx.tmp / "ro")
    def no_model(*a, **k): raise AssertionError("the model was loaded")
    monkeypatch.setattr(inf, "load_model", no_model)
    code, out = _infer(ctx, root, "--split", "train", out="ro/pred")
    lines = ctx.normalise(out).strip().splitlines()
    want = ("jrs-nb infer: error: <tmp>/ro/pred: cannot write the predictions there (Permission "
            "denied: <tmp>/ro): choose a writable --out")
    assert code == 2 and lines == [want], out
    assert not (ctx.tmp / "ro" / "pred").exists()
