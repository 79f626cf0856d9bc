"""Reference values for medcat's segmentation metrics, from MONAI.

Generates mask pairs (overlapping, shifted, tiny, multi-component, border-touching, identical,
disjoint, empty, anisotropic 2D and 3D), scores each with MONAI 1.4's DiceMetric, MeanIoU,
SurfaceDiceMetric (use_subvoxels=False) and HausdorffDistanceMetric(percentile=95), and writes
Tests/EvalTests/Fixtures/metric_cases.json. Tests/EvalTests compares medcat's values with these.

    pip install --target .deps/pymetrics --no-deps monai==1.4.0 scipy numpy
    PYTHONPATH=.deps/pymetrics:.deps/pyref python3 tools/make_metric_fixtures.py

MONAI keeps surface distances in float32. Spacings here are exact binary fractions and the grids
small (distances under 50 mm), so float32 resolves every value to 1e-6 relative (the tests' tolerance).
"""
import json
import math
import os
import warnings

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU, SurfaceDiceMetric
from monai.metrics.utils import get_edge_surface_distance

warnings.filterwarnings("ignore")
rng = np.random.default_rng(20261123)


def ellipse(shape, centre, radii):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1


def blobs(shape, count, radius):
    m = np.zeros(shape, bool)
    for _ in range(count):
        centre = [rng.uniform(0, n) for n in shape]
        radii = [rng.uniform(1, radius) for _ in shape]
        m |= ellipse(shape, centre, radii)
    return m


def reference(pred, truth, spacing, tolerance):
    p = torch.from_numpy(pred[None, None].astype(np.float32))
    t = torch.from_numpy(truth[None, None].astype(np.float32))

    def value(metric, **kw):
        v = float(metric(p, t, **kw).reshape(-1)[0].item())  # the per-case value, before any reduction
        return v if math.isfinite(v) else None

    sp = list(spacing)
    # HausdorffDistanceMetric takes the percentile with torch.quantile in float32, whose rank
    # rounding moves HD95 by up to 1e-5 mm. "hd95" is the same statistic on MONAI's own surface
    # distances with numpy's float64 percentile; "hd95_float32" is MONAI's number.
    hd95 = None
    if pred.any() and truth.any():
        _, distances, _ = get_edge_surface_distance(torch.from_numpy(pred), torch.from_numpy(truth), spacing=sp, symmetric=True)
        hd95 = float(max(np.percentile(d.numpy().astype(np.float64), 95) for d in distances))
    return {
        "hd95": hd95,
        "dice": value(DiceMetric(include_background=True, reduction="none", ignore_empty=True)),
        "iou": value(MeanIoU(include_background=True, reduction="none", ignore_empty=True)),
        "nsd": value(SurfaceDiceMetric([tolerance], include_background=True, reduction="none"), spacing=sp),
        "hd95_float32": value(HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none"), spacing=sp),
    }


def case(name, pred, truth, spacing, tolerance=2.0):
    shape = pred.shape
    size = list(shape) + [1] * (3 - len(shape))
    return {
        "name": name, "size": size, "spacing": list(spacing) + [1.0] * (3 - len(spacing)), "tolerance": tolerance,
        # Flat indices, x fastest, as medcat stores masks.
        "prediction": np.flatnonzero(pred.ravel(order="F")).tolist(),
        "truth": np.flatnonzero(truth.ravel(order="F")).tolist(),
        "monai": reference(pred, truth, spacing, tolerance),
    }


cases = []
s2 = (48, 40)
disk = ellipse(s2, (20, 18), (9, 7))
for spacing in [(1.0, 1.0), (0.5, 1.25), (2.0, 0.75)]:
    tag = "x".join(str(v) for v in spacing)
    cases.append(case(f"shifted ellipse {tag}", ellipse(s2, (23, 16), (9, 8)), disk, spacing))
    cases.append(case(f"shrunk ellipse {tag}", ellipse(s2, (20, 18), (6, 5)), disk, spacing, 1.0))
    cases.append(case(f"multi-component {tag}", blobs(s2, 4, 6), blobs(s2, 3, 7), spacing))
for k in range(6):
    truth = blobs(s2, 1 + k, 8)
    near = np.roll(truth, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1)) | blobs(s2, 1, 4)
    cases.append(case(f"near miss {k}", near, truth, (0.75, 1.0), [1.0, 2.0, 3.0][k % 3]))
tiny_t = np.zeros(s2, bool); tiny_t[10, 12] = True
tiny_p = np.zeros(s2, bool); tiny_p[13, 16] = True
cases.append(case("tiny one-pixel pair", tiny_p, tiny_t, (1.0, 1.0)))
cases.append(case("tiny truth, large prediction", ellipse(s2, (10, 12), (4, 4)), tiny_t, (0.5, 0.5)))
border = np.zeros(s2, bool); border[:12, :] = True
cases.append(case("touching the border", border, ellipse(s2, (3, 20), (10, 25)), (1.0, 1.25)))
cases.append(case("identical", disk, disk.copy(), (1.0, 1.0)))
cases.append(case("disjoint", ellipse(s2, (8, 8), (4, 4)), ellipse(s2, (38, 30), (5, 6)), (1.25, 1.25)))
empty = np.zeros(s2, bool)
cases.append(case("empty prediction", empty, disk, (1.0, 1.0)))
cases.append(case("empty truth", disk, empty.copy(), (1.0, 1.0)))
cases.append(case("both empty", empty, empty.copy(), (1.0, 1.0)))

s3 = (28, 24, 10)
ball = ellipse(s3, (13, 12, 5), (8, 7, 3.5))
cases.append(case("3D shifted ball 0.75x0.75x2.5", ellipse(s3, (15, 11, 5), (8, 8, 3)), ball, (0.75, 0.75, 2.5)))
cases.append(case("3D multi-component 1x1x3", blobs(s3, 3, 6), blobs(s3, 2, 7), (1.0, 1.0, 3.0)))
cases.append(case("3D one slice apart 0.5x0.5x5", ellipse(s3, (13, 12, 6), (6, 6, 1)), ellipse(s3, (13, 12, 4), (6, 6, 1)), (0.5, 0.5, 5.0)))

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "EvalTests", "Fixtures", "metric_cases.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump({"generator": "tools/make_metric_fixtures.py", "monai": __import__("monai").__version__, "cases": cases}, f)
print(f"{len(cases)} cases → {os.path.normpath(out)}")
