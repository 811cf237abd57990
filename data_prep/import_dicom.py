#!/usr/bin/env python
"""Import clinical DICOM (CT series + RTSTRUCT) into a jrs_nb dataset.

    python data_prep/import_dicom.py DICOM_DIR DATASET_ROOT [--crop-margin 50 | --no-crop] ...
    python data_prep/import_dicom.py --write-synonyms my_rois.json   # editable ROI synonym table

All the work is done by `jrs_nb.data.dicom_import.import_dicom_cli` (notebook nbs/02d_data.dicom_import.ipynb).
"""
import sys

from jrs_nb.data.dicom_import import import_dicom_cli

if __name__ == "__main__":
    sys.exit(import_dicom_cli(sys.argv[1:]))
