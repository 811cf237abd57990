#!/usr/bin/env python
"""Write predicted daily contours (a label NIfTI from `jrs-nb infer`) as a DICOM RTSTRUCT referencing the daily CT.

    python data_prep/export_rtstruct.py PRED.nii.gz DAILY_CT_DIR OUT.dcm [--transform <scan>/affine_to_planning.tfm]

Labels from a dataset scan folder, or from a predictions folder of that dataset, get the import's pre-alignment
applied without --transform.

All the work is done by `jrs_nb.data.rtstruct.export_rtstruct_cli` (notebook nbs/02e_data.rtstruct.ipynb).
"""
import sys

from jrs_nb.data.rtstruct import export_rtstruct_cli

if __name__ == "__main__":
    sys.exit(export_rtstruct_cli(sys.argv[1:]))
