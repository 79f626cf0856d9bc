#!/usr/bin/env python3
"""Reference values for medcat's DICOM tests, computed with pydicom (an implementation independent of
GDCM) from pydicom's own test files. Writes Tests/ImagingTests/Fixtures/dicom-reference.json.

    pip install --target /tmp/pyd pydicom==3.0.1 numpy
    PYTHONPATH=/tmp/pyd python3 tools/make_dicom_fixtures.py .deps/data/pydicom
"""
import json
import sys
from pathlib import Path

import numpy as np
import pydicom

src = Path(sys.argv[1])
out = {}

ct = pydicom.dcmread(src / "CT_small.dcm")
hu = ct.pixel_array.astype(np.float64) * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
out["CT_small"] = {
    "rows": ct.Rows, "columns": ct.Columns,
    "pixel_spacing": [float(v) for v in ct.PixelSpacing],
    "position": [float(v) for v in ct.ImagePositionPatient],
    "hu_min": hu.min(), "hu_max": hu.max(), "hu_sum": hu.sum(), "hu_at_row10_col20": hu[10, 20],
}

mr = pydicom.dcmread(src / "MR_small.dcm").pixel_array.astype(np.float64)
out["MR_small"] = {"sum": mr.sum(), "min": mr.min(), "max": mr.max(), "at_row5_col40": mr[5, 40]}

rgb = pydicom.dcmread(src / "SC_rgb_rle.dcm").pixel_array.astype(np.float64)
out["SC_rgb_rle"] = {"channel_sums": rgb.reshape(-1, 3).sum(axis=0).tolist()}

seg = pydicom.dcmread(src / "liver_1frame.dcm")
mask = seg.pixel_array
rows, cols = np.nonzero(mask)
out["liver_1frame"] = {
    "ones": int(mask.sum()),
    "box": [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())],
    "segment_labels": [s.SegmentLabel for s in seg.SegmentSequence],
    "frame_position": [float(v) for v in seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient],
}

rt = pydicom.dcmread(src / "rtstruct.dcm", force=True)
out["rtstruct"] = {
    "roi_names": [r.ROIName for r in rt.StructureSetROISequence],
    "contours_per_roi": [len(getattr(c, "ContourSequence", [])) for c in rt.ROIContourSequence],
    "first_point": [float(v) for v in rt.ROIContourSequence[0].ContourSequence[0].ContourData[:3]],
}

path = Path(__file__).resolve().parent.parent / "Tests/ImagingTests/Fixtures/dicom-reference.json"
path.write_text(json.dumps(out, indent=2, default=float) + "\n")
print(f"wrote {path}")
