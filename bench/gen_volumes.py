#!/usr/bin/env python3
"""Synthesises a KiTS19-style CT dataset for the ingest benchmark.

    python3 bench/gen_volumes.py OUT_DIR [--count 200] [--size 512] [--slices 100] [--jobs 2] [--seed 0]

Writes OUT_DIR/KiTS19/case_NNNNN/imaging.nii.gz (int16 Hounsfield units) and segmentation.nii.gz
(uint8: 0 background, 1 kidney, 2 kidney_tumor), NIfTI-1 with qform and sform, voxel arrays in (x, y, z)
order stored LAS (x towards the patient's left, y anterior, z superior, as dcm2niix often writes CT), so
readers that reorient to LPS or RAS both have an axis to flip.

Each case is drawn from its own random stream (seed, case index), so no two cases are identical:
  * air (-1000 HU) outside an elliptical body, subcutaneous fat (-100), soft tissue (40), liver (75),
    spleen (100), aorta (250), vertebral body (700) with a posterior process (450), bowel gas (-900),
    kidneys (170, label 1, left and right), a tumour (90, label 2) on one kidney, and Gaussian noise
    (sigma 20 HU) everywhere;
  * a speck of label 2 (fewer than 1000 voxels, but a central slice of more than 100 pixels) in the
    liver, which MedSAM's 3D rule (cc3d.dust threshold 1000, 26-connectivity) removes and its 2D rule
    alone would not.
Geometry is in fractions of the grid, so `--size 128 --slices 20` gives a small version of the same body
(with minimum sizes in voxels so that kidneys and tumour still pass the 1000-voxel rule). The field of view
is about 410 mm in-plane and 250 mm along z whatever the grid (0.8 x 0.8 x 2.5 mm at 512 x 512 x 100).

Files are gzip level 1 (nibabel's default level 9 is several times slower for little gain) and written
through a temporary name, so a case whose two files exist is complete and is skipped on the next run.
"""
import argparse
import gzip
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".deps" / "py"))

import numpy as np  # noqa: E402
import nibabel as nib  # noqa: E402

FOV_XY_MM = 409.6  # 0.8 mm at 512 px
FOV_Z_MM = 250.0  # 2.5 mm at 100 slices


def ellipsoid(shape, center, semi, rotation=0.0):
    """Bounding-box slices and boolean mask of an ellipsoid (semi-axes in voxels, rotated in-plane)."""
    lo = [max(0, int(np.floor(c - r - 1))) for c, r in zip(center, (max(semi[0], semi[1]),) * 2 + (semi[2],))]
    hi = [min(n, int(np.ceil(c + r + 2))) for c, r, n in
          zip(center, (max(semi[0], semi[1]),) * 2 + (semi[2],), shape)]
    if any(h <= l for l, h in zip(lo, hi)):
        return None, None
    x = np.arange(lo[0], hi[0], dtype=np.float32)[:, None, None] - center[0]
    y = np.arange(lo[1], hi[1], dtype=np.float32)[None, :, None] - center[1]
    z = np.arange(lo[2], hi[2], dtype=np.float32)[None, None, :] - center[2]
    c, s = np.cos(rotation), np.sin(rotation)
    u, v = c * x + s * y, -s * x + c * y
    mask = (u / semi[0]) ** 2 + (v / semi[1]) ** 2 + (z / semi[2]) ** 2 <= 1.0
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])), mask


def paint(arr, shape_args, value):
    box, mask = ellipsoid(arr.shape, *shape_args)
    if box is not None:
        arr[box][mask] = value
    return box, mask


def make_case(index, seed, nx, ny, nz):
    rng = np.random.default_rng([seed, index])
    j = lambda scale: 1.0 + rng.uniform(-scale, scale)  # noqa: E731  (multiplicative jitter)
    img = np.full((nx, ny, nz), -1000, dtype=np.int16, order="F")
    seg = np.zeros((nx, ny, nz), dtype=np.uint8, order="F")

    # Body: elliptical cross-section slowly varying along z. x increases to the patient's left, y anterior.
    cx, cy = nx * (0.5 + rng.uniform(-0.03, 0.03)), ny * (0.5 + rng.uniform(-0.03, 0.03))
    ax, ay = 0.40 * nx * j(0.06), 0.30 * ny * j(0.08)
    phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.06)
    xs = (np.arange(nx, dtype=np.float32)[:, None] - cx)
    ys = (np.arange(ny, dtype=np.float32)[None, :] - cy)
    fat = 0.06 * j(0.3)
    for k in range(nz):
        f = 1.0 + amp * np.sin(2 * np.pi * k / nz + phase)
        r2 = (xs / (ax * f)) ** 2 + (ys / (ay * f)) ** 2
        plane = img[:, :, k]
        plane[r2 <= 1.0] = -100
        plane[r2 <= (1.0 - fat) ** 2] = 40

    # Spine (posterior midline) and aorta: cylinders through the whole volume.
    sx, sy, sr = cx, cy - 0.62 * ay, 0.055 * nx * j(0.1)
    paint(img, ((sx, sy - 1.1 * sr, nz / 2), (0.35 * sr, 0.9 * sr, nz)), 450)
    paint(img, ((sx, sy, nz / 2), (sr, 0.85 * sr, nz)), 700)
    paint(img, ((cx + 0.05 * ax, sy + 1.5 * sr, nz / 2), (0.022 * nx, 0.022 * nx, nz)), 250)
    # Liver (patient's right = low x), spleen (left), bowel gas (anterior).
    liver = (cx - 0.42 * ax, cy + 0.05 * ay, nz * rng.uniform(0.6, 0.75))
    paint(img, (liver, (0.38 * ax * j(0.1), 0.6 * ay * j(0.1), 0.32 * nz * j(0.1)), rng.uniform(-0.3, 0.3)), 75)
    paint(img, ((cx + 0.62 * ax, cy - 0.2 * ay, nz * rng.uniform(0.55, 0.7)),
                (0.16 * ax * j(0.15), 0.28 * ay * j(0.15), 0.14 * nz * j(0.15)), rng.uniform(-0.5, 0.5)), 100)
    for _ in range(3):
        paint(img, ((cx + rng.uniform(-0.3, 0.3) * ax, cy + rng.uniform(0.3, 0.65) * ay, nz * rng.uniform(0.1, 0.6)),
                    (0.03 * nx * j(0.4), 0.025 * ny * j(0.4), 0.06 * nz * j(0.4)), rng.uniform(0, np.pi)), -900)

    # Kidneys (label 1): posterior, either side of the spine; the right one sits a little lower.
    kidneys = []
    for side, zc in ((-1, 0.45), (+1, 0.52)):
        center = (cx + side * 0.42 * ax * j(0.05), cy - 0.38 * ay * j(0.08), nz * (zc + rng.uniform(-0.05, 0.05)))
        semi = (max(0.06 * nx * j(0.12), 10.0), max(0.075 * ny * j(0.12), 12.0), max(0.22 * nz * j(0.12), 4.0))
        rot = side * rng.uniform(0.2, 0.5)
        box, mask = paint(img, (center, semi, rot), 170)
        seg[box][mask] = 1
        kidneys.append((center, semi, rot))

    # Tumour (label 2): an ellipsoid on the surface of one kidney.
    (kc, ks, _) = kidneys[rng.integers(2)]
    angle = rng.uniform(0, 2 * np.pi)
    tc = (kc[0] + 0.8 * ks[0] * np.cos(angle), kc[1] + 0.8 * ks[1] * np.sin(angle), kc[2] + rng.uniform(-0.5, 0.5) * ks[2])
    tsemi = (max(ks[0] * rng.uniform(0.4, 0.8), 9.5), max(ks[1] * rng.uniform(0.4, 0.8), 9.5), max(ks[2] * rng.uniform(0.3, 0.6), 3.2))
    box, mask = paint(img, (tc, tsemi, rng.uniform(0, np.pi)), 90)
    seg[box][mask] = 2

    # Speck of label 2 in the anterior liver: about 250 voxels over 3 slices, about 150 px in its central slice.
    spc = (liver[0] + rng.uniform(-0.1, 0.1) * ax, cy + 0.55 * ay, nz * rng.uniform(0.25, 0.75))
    box, mask = paint(img, (spc, (7.0, 7.0, 1.2)), 80)
    seg[box][mask] = 2

    noise = rng.standard_normal((nz, ny, nx), dtype=np.float32).T  # (x, y, z) in Fortran order, like img
    noise *= 20.0
    img += np.rint(noise).astype(np.int16)
    return img, seg


def affine_for(nx, ny, nz):
    sx, sz = FOV_XY_MM / nx, FOV_Z_MM / nz
    # LAS: x towards the patient's left (RAS -x), y anterior, z superior. Origin puts the centre near 0.
    return np.array([[-sx, 0, 0, sx * (nx - 1) / 2],
                     [0, sx, 0, -sx * (ny - 1) / 2],
                     [0, 0, sz, -sz * (nz - 1) / 2],
                     [0, 0, 0, 1]], dtype=np.float64)


def write_nifti(path, arr, affine):
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as gz:
        img.to_file_map({"image": nib.FileHolder(fileobj=gz)})
    os.replace(tmp, path)


def generate(task):
    out, index, seed, nx, ny, nz = task
    case = out / f"case_{index:05d}"
    image_path, seg_path = case / "imaging.nii.gz", case / "segmentation.nii.gz"
    if image_path.exists() and seg_path.exists():
        return index, False, 0.0
    t0 = time.perf_counter()
    case.mkdir(parents=True, exist_ok=True)
    img, seg = make_case(index, seed, nx, ny, nz)
    affine = affine_for(nx, ny, nz)
    write_nifti(seg_path, seg, affine)
    write_nifti(image_path, img, affine)  # imaging last: its presence marks a complete case with the check above
    return index, True, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--size", type=int, default=512, help="in-plane voxels (size x size)")
    p.add_argument("--slices", type=int, default=100)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    out = a.out_dir / "KiTS19"
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(out, i, a.seed, a.size, a.size, a.slices) for i in range(a.count)]
    t0 = time.perf_counter()
    made = 0
    busy = 0.0
    if a.jobs <= 1:
        results = map(generate, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(a.jobs)
        results = pool.imap_unordered(generate, tasks)
    for n, (_, new, seconds) in enumerate(results, 1):
        made += new
        busy += seconds
        if new and (made % 10 == 0):
            print(f"gen_volumes: {n}/{a.count} cases ({made} new)", file=sys.stderr, flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    elapsed = time.perf_counter() - t0
    per = f", {busy / made:.2f} s per volume per worker" if made else ""
    print(f"gen_volumes: {made} new, {a.count - made} existing cases ({a.size}x{a.size}x{a.slices}) in {out}: "
          f"{elapsed:.1f} s with {a.jobs} job(s){per}")


if __name__ == "__main__":
    main()
