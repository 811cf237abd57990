"""`jrs-nb contour` (issue 23) end to end on a DICOM case written by the package's own writer: a
planning CT + RTSTRUCT and a daily CT alone in, a daily RTSTRUCT out that rt-utils reads back on the
daily CT, with every organ of the planning contours."""
import numpy as np
import pydicom
import pytest

from jrs_nb.data.dicom_write import write_ct_series, write_rtstruct
from jrs_nb.data.fixtures import pelvis_scan

from conftest import run_cli as run

SHAPE, SP = (24, 48, 48), (3., 3., 3.)
NAMES = {1: "CTV_prostate", 2: "SV", 3: "Rectum", 4: "Blaas"}    # the clinic's own ROI names


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    "(planning folder, daily folder, daily truth labels, planning labels, daily series UID)."
    d = tmp_path_factory.mktemp("contour")
    labs, uid = [], None
    for s in (0, 1):
        hu, lab = pelvis_scan(SHAPE, SP, seed=0, patient=0, scan=s)
        info = write_ct_series(hu, d / f"CT{s}", SP, patient_id="P1", date=f"2024030{s + 1}")
        if s == 0: write_rtstruct(lab, info["files"], d / "CT0" / "RS.dcm", NAMES, date="20240301")
        labs.append(lab)
        uid = info["series_uid"]
    return d / "CT0", d / "CT1", labs[1], labs[0], uid


def dice(a, b): return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_contour_writes_a_daily_rtstruct(case, tmp_path):
    from rt_utils import RTStructBuilder
    plan, daily, truth, unwarped, uid = case
    code, out = run("contour", "--planning", plan, "--daily", daily, "--out", tmp_path / "out",
                    "--run", "pretrained:reg", "--no-align")
    assert code == 0, out
    (rs,) = (tmp_path / "out").glob("RS.*.dcm")
    ds = pydicom.dcmread(rs)
    ref = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert ref.RTReferencedSeriesSequence[0].SeriesInstanceUID == uid     # the daily CT
    assert ds.ApprovalStatus == "UNAPPROVED"
    rt = RTStructBuilder.create_from(str(daily), str(rs))
    assert sorted(rt.get_roi_names()) == sorted(NAMES.values())   # every organ, the clinic's names
    got = {l: rt.get_roi_mask_by_name(n).transpose(2, 0, 1) for l, n in NAMES.items()}
    score = {n: (round(dice(got[l], truth == l), 3), round(dice(unwarped == l, truth == l), 3))
             for l, n in NAMES.items()}
    print("DSC (contour, unwarped planning contours):", score)
    assert all(m.any() for m in got.values()), score
    assert all(c >= u - 0.02 for c, u in score.values()), score   # not worse than no registration
    # the one-page QA report beside the RTSTRUCT: a PNG, and an HTML page that embeds it
    png, page = tmp_path / "out" / "qa.png", tmp_path / "out" / "qa.html"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote the QA report {png}" in out, out
    assert "data:image/png;base64," in page.read_text()
    # refusals: an earlier run in --out, another patient's daily CT
    code, out = run("contour", "--planning", plan, "--daily", daily, "--out", tmp_path / "out",
                    "--run", "pretrained:reg", "--no-align")
    assert code == 2 and "holds an earlier jrs-nb contour run (work/)" in out, out


def test_contour_default_network_gets_a_second_opinion(case, tmp_path):
    "The default network (one path) is checked against the shipped seg network: the QA has the paths' disagreement."
    import json
    plan, daily, truth, unwarped, uid = case
    code, out = run("contour", "--planning", plan, "--daily", daily, "--out", tmp_path / "out", "--no-align")
    assert code == 0 and "of pretrained:jrs_reg" in out, out
    (rs,) = (tmp_path / "out").glob("RS.*.dcm")
    idx = json.loads((tmp_path / "out" / "work" / "predictions" / "predictions.json").read_text())
    assert idx["second_opinion"] == "pretrained:seg" and idx["method"] == "jrs_reg"
    assert idx["refine_steps"] == 20   # refined by default: with it the contours beat elastix's (08a_refine)
    (pair,) = idx["pairs"].values()
    assert any(q["seg_reg_msd"] is not None for q in pair["qa"].values()), pair["qa"]   # (an organ seg misses: None)
