#!/usr/bin/env python3
"""Peer for the ingest benchmark: MedSAM's pre_CT_MR.py re-created with nibabel, numpy, scipy.ndimage
and Pillow (no cc3d, SimpleITK or scikit-image), single process.

    python3 bench/reference_ingest.py IN_DIR OUT_DIR [--size 256] [--window 400] [--level 40]

For each case folder (sorted) under IN_DIR/KiTS19 with imaging.nii.gz and segmentation.nii.gz:
  1. load both with nibabel, reorient to LPS (the orientation SimpleITK, which MedSAM reads with, and medcat
     use) and transpose to (z, y, x), SimpleITK's array order;
  2. remove 3D connected components of fewer than 1000 voxels per label, 26-connected
     (cc3d.dust(threshold=1000, connectivity=26));
  3. on each slice with a label, remove 2D components of fewer than 100 pixels per label, 8-connected
     (cc3d.dust(threshold=100, connectivity=8)); slices left without labels are dropped;
  4. CT window as MedSAM: clip to [level - width/2, level + width/2], then (x - min) / (max - min) * 255
     with the clipped volume's min and max, truncated to uint8;
  5. resize the slice so that its longest physical side is --size (Pillow bilinear on the uint8 slice), pad
     with zeros right and bottom to size x size; per label a binary mask resized with Pillow nearest, its
     area and inclusive bounding box [x0, y0, x1, y1]; empty masks dropped (and a slice with none);
  6. save OUT_DIR/imgs/CT_kits19_<case>-<zzz>.npy (uint8 size x size), OUT_DIR/gts/<same name> (uint8 label
     map size x size) and a line per slice in OUT_DIR/index.jsonl; zzz is the slice's index in the volume.
Prints one JSON line: {"volumes", "slices", "masks", "seconds", "slices_per_s"}; the time covers the whole
loop (reading, processing, writing), not interpreter start-up or imports.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".deps" / "py"))

import numpy as np  # noqa: E402
import nibabel as nib  # noqa: E402
from nibabel import orientations  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

VOXEL_NUM_THRE3D = 1000
VOXEL_NUM_THRE2D = 100
STRUCT_3D = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
STRUCT_2D = np.ones((3, 3), dtype=bool)  # 8-connectivity
LPS = orientations.axcodes2ornt(("L", "P", "S"))


def load_lps(path):
    """Voxels in (z, y, x) order, LPS (x towards the patient's left, y posterior, z superior), and the
    (x, y, z) spacing in mm."""
    img = nib.load(str(path))
    ornt = orientations.ornt_transform(orientations.io_orientation(img.affine), LPS)
    data = orientations.apply_orientation(np.asanyarray(img.dataobj), ornt)
    affine = img.affine @ orientations.inv_ornt_aff(ornt, img.shape[:3])
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return np.ascontiguousarray(data.T), spacing


def dust(labels, threshold, structure):
    """cc3d.dust for a multi-label array: zero the components (per label value) smaller than threshold.
    Works in place and returns labels. Each label is labelled within its bounding box, which gives the same
    components as labelling the whole array."""
    for value in np.unique(labels):
        if value == 0:
            continue
        binary = labels == value
        box = tuple(slice(idx.min(), idx.max() + 1) for idx in
                    (np.flatnonzero(binary.any(axis=tuple(a for a in range(binary.ndim) if a != d)))
                     for d in range(binary.ndim)))
        sub = binary[box]
        comp, n = ndimage.label(sub, structure=structure)
        sizes = np.bincount(comp.ravel())
        small = sizes < threshold
        small[0] = False
        if small.any():
            labels[box][small[comp]] = 0
    return labels


def ingest_case(case_dir, case, args, imgs_dir, gts_dir, index):
    gt, spacing = load_lps(case_dir / "segmentation.nii.gz")
    gt = gt.astype(np.uint8, copy=False)
    dust(gt, VOXEL_NUM_THRE3D, STRUCT_3D)
    z_index = np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))
    for z in z_index:
        dust(gt[z], VOXEL_NUM_THRE2D, STRUCT_2D)
    z_index = np.flatnonzero(gt.reshape(gt.shape[0], -1).any(axis=1))
    if len(z_index) == 0:
        return 0, 0

    image, _ = load_lps(case_dir / "imaging.nii.gz")
    lower, upper = args.level - args.window / 2, args.level + args.window / 2
    # min and max of np.clip(image, lower, upper), without materialising the clipped volume.
    vmin, vmax = float(np.clip(image.min(), lower, upper)), float(np.clip(image.max(), lower, upper))
    span = vmax - vmin

    rows, cols = gt.shape[1], gt.shape[2]
    width, height = cols * spacing[0], rows * spacing[1]
    scale = args.size / max(width, height)
    cw = max(1, min(args.size, int(math.floor(width * scale + 0.5))))
    ch = max(1, min(args.size, int(math.floor(height * scale + 0.5))))

    slices = masks_total = 0
    for z in z_index:
        gt_i = gt[z]
        label_out = np.zeros((args.size, args.size), dtype=np.uint8)
        masks = []
        for value in np.unique(gt_i):
            if value == 0:
                continue
            m = Image.fromarray((gt_i == value).view(np.uint8)).resize((cw, ch), Image.NEAREST)
            m = np.asarray(m)
            ys, xs = np.nonzero(m)
            if len(xs) == 0:
                continue
            label_out[:ch, :cw][m != 0] = value
            masks.append({"label": int(value), "area": int(len(xs)),
                          "bbox": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]})
        if not masks:
            continue
        clipped = np.clip(image[z], lower, upper)
        u8 = np.uint8((clipped - vmin) / span * 255.0) if span > 0 else np.zeros(clipped.shape, np.uint8)
        resized = np.asarray(Image.fromarray(u8).resize((cw, ch), Image.BILINEAR))
        img_out = np.zeros((args.size, args.size), dtype=np.uint8)
        img_out[:ch, :cw] = resized
        name = f"CT_kits19_{case}-{z:03d}.npy"
        np.save(imgs_dir / name, img_out)
        np.save(gts_dir / name, label_out)
        index.write(json.dumps({"case": case, "slice": int(z), "masks": masks}) + "\n")
        slices += 1
        masks_total += len(masks)
    return slices, masks_total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("in_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--window", type=float, default=400)
    p.add_argument("--level", type=float, default=40)
    args = p.parse_args()
    root = args.in_dir / "KiTS19"
    cases = sorted(d for d in root.iterdir()
                   if (d / "imaging.nii.gz").exists() and (d / "segmentation.nii.gz").exists())
    imgs_dir, gts_dir = args.out_dir / "imgs", args.out_dir / "gts"
    imgs_dir.mkdir(parents=True, exist_ok=True)
    gts_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    volumes = slices = masks = 0
    with open(args.out_dir / "index.jsonl", "w") as index:
        for case_dir in cases:
            s, m = ingest_case(case_dir, case_dir.name, args, imgs_dir, gts_dir, index)
            volumes += 1
            slices += s
            masks += m
    seconds = time.perf_counter() - start
    print(json.dumps({"volumes": volumes, "slices": slices, "masks": masks, "seconds": round(seconds, 3),
                      "slices_per_s": round(slices / seconds, 2) if seconds > 0 else 0.0}))


if __name__ == "__main__":
    main()
