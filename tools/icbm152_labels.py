#!/usr/bin/env python3
"""Turns the ICBM152 2009a tissue probability maps into one label map.

nilearn's wheel ships the template as a T1 and one probability map per tissue; medcat ingests an
image with a label map, so this writes that map: 1 = csf (when its map is there), 2 = grey_matter,
3 = white_matter, each voxel taking its most probable tissue when that probability is >= 0.5, else 0.
The geometry is the grey-matter map's header, copied. Needs only python3 and numpy (no nibabel).

Usage: icbm152_labels.py DIR OUT.nii.gz   (DIR holds mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz)
"""
import gzip, os, struct, sys
import numpy as np

DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}
GEOMETRY = [(40, 56, "dim"), (76, 108, "pixdim"), (252, 256, "qform/sform codes"),
            (256, 280, "quatern"), (280, 328, "srow")]


def read_nifti(path):
    """Returns (348-byte header, data as float64 with scl_slope/inter applied, dims)."""
    raw = gzip.open(path).read()
    hdr = raw[:348]
    e = "<" if struct.unpack("<i", hdr[:4])[0] == 348 else ">"
    dim = struct.unpack(e + "8h", hdr[40:56])
    datatype = struct.unpack(e + "h", hdr[70:72])[0]
    vox_offset = int(struct.unpack(e + "f", hdr[108:112])[0])
    slope, inter = struct.unpack(e + "2f", hdr[112:120])
    shape = dim[1:dim[0] + 1]
    data = np.frombuffer(raw, e + DTYPES[datatype], int(np.prod(shape)), vox_offset).astype(np.float64)
    if slope not in (0, 1) or inter != 0:
        data = data * slope + inter
    return hdr, data, shape


def main(src, out):
    name = lambda t: os.path.join(src, f"mni_icbm152_{t}_tal_nlin_sym_09a_converted.nii.gz")
    tissues = [(label, t) for label, t in [(1, "csf"), (2, "gm"), (3, "wm")] if os.path.exists(name(t))]
    hdr, _, shape = read_nifti(name("gm"))
    labels, probs = [], []
    for label, t in tissues:
        h, p, s = read_nifti(name(t))
        assert s == shape and all(h[a:b] == hdr[a:b] for a, b, _ in GEOMETRY), f"{t}: geometry differs"
        if p.max() > 1:  # nilearn's "converted" maps store probability x 255 as uint8; it divides by the max
            p = p / p.max()
        labels.append(label)
        probs.append(p)
    probs = np.stack(probs)
    best = probs.argmax(0)
    out_data = np.where(probs.max(0) >= 0.5, np.array(labels, np.uint8)[best], 0).astype(np.uint8)

    # Same header, as uint8 with no scaling, data right after the header and an empty extension field.
    h = bytearray(hdr)
    e = "<" if struct.unpack("<i", hdr[:4])[0] == 348 else ">"
    struct.pack_into(e + "2h", h, 70, 2, 8)              # datatype uint8, bitpix 8
    struct.pack_into(e + "3f", h, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    with open(out, "wb") as f:
        f.write(gzip.compress(bytes(h) + b"\0" * 4 + out_data.tobytes(), mtime=0))

    # Checks: the map reads back with the T1's dims and affine; per-label counts.
    t1, _, t1_shape = read_nifti(name("t1"))
    back, data, back_shape = read_nifti(out)
    assert back_shape == t1_shape and np.array_equal(data, out_data), "label map does not read back"
    for a, b, what in GEOMETRY:
        assert back[a:b] == t1[a:b], f"label map and T1 differ in {what}"
    counts = np.bincount(out_data, minlength=4)
    names = {0: "background", 1: "csf", 2: "grey_matter", 3: "white_matter"}
    print(f"{out}: dims {shape}, tissues {[t for _, t in tissues]}, same dims and affine as the T1")
    for label in [0] + labels:
        print(f"  {label} {names[label]}: {counts[label]} voxels")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
