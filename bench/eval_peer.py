#!/usr/bin/env python3
"""The Python side of the evaluation benchmarks (MONAI 1.4 metrics, LiteMedSAM in PyTorch):
    eval_peer.py metrics N                         Dice, IoU, NSD (2 mm), HD95 of N 256×256 mask pairs
    eval_peer.py lite-eval SA_MED2D_DIR N WEIGHTS [THREADS]
                                                   box-prompt evaluation of the first N images of a
                                                   `medcat export --format sa-med2d` folder, on THREADS
                                                   torch threads (default: torch's, all cores)
Both print one JSON line. lite-eval does what `medcat eval --protocol box` does per image: encode
once, decode every mask's tight box (single and multimask outputs), threshold at the image size,
and score the first output and the best of the three with the four metrics.
"""
import glob
import json
import math
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU, SurfaceDiceMetric  # noqa: E402

warnings.filterwarnings("ignore")
dice_m = DiceMetric(include_background=True, reduction="none")
iou_m = MeanIoU(include_background=True, reduction="none")
nsd_m = SurfaceDiceMetric([2.0], include_background=True, reduction="none")
hd_m = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")


def scores(pred, truth, spacing=(1.0, 1.0)):
    p, t = torch.from_numpy(pred[None, None].astype(np.float32)), torch.from_numpy(truth[None, None].astype(np.float32))
    return [float(dice_m(p, t)), float(iou_m(p, t)), float(nsd_m(p, t, spacing=list(spacing))), float(hd_m(p, t, spacing=list(spacing)))]


def ellipse(n, cx, cy, rx, ry):
    y, x = np.mgrid[0:n, 0:n]
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1


def pair(k, n=256):
    cx, cy, rx, ry = 128 + 20 * math.sin(k), 128 + 20 * math.cos(k), 40 + k % 20, 30 + k % 15
    truth = ellipse(n, cx, cy, rx, ry)
    pred = ellipse(n, cx + (k % 7 - 3), cy + (k % 5 - 2), rx + (k % 3 - 1) * 3, ry - (k % 4 - 2) * 2)
    return pred, truth


mode = sys.argv[1]
if mode == "metrics":
    count = int(sys.argv[2])
    pairs = [pair(k) for k in range(count)]
    sums = np.zeros(4)
    t0 = time.perf_counter()
    for pred, truth in pairs:
        sums += scores(pred, truth)
    seconds = time.perf_counter() - t0
    m = sums / count
    print(json.dumps({"ms_per_mask": seconds / count * 1000, "dice": m[0], "iou": m[1], "nsd": m[2], "hd95": m[3]}))
elif mode == "lite-eval":
    from PIL import Image
    from reference_models import build_lite_medsam
    folder, count, weights = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if len(sys.argv) > 5:
        torch.set_num_threads(int(sys.argv[5]))
    index = {}
    for f in glob.glob(os.path.join(folder, "image2label_*.json")):
        index.update(json.load(open(f)))
    images = sorted(index, key=lambda p: int(p.rsplit("--", 1)[1].split(".")[0]))[:count]
    net = build_lite_medsam()
    net.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
    net.eval()
    masks_done, dice_first = 0, []
    t0 = time.perf_counter()
    with torch.no_grad():
        for path in images:
            pixels = np.asarray(Image.open(os.path.join(folder, path)).convert("L"), dtype=np.float32)
            truths = [np.asarray(Image.open(os.path.join(folder, m)), dtype=np.uint8) > 0 for m in index[path]]
            h, w = pixels.shape
            scale = 256 / max(h, w)
            nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
            x = torch.from_numpy(pixels)[None, None].expand(1, 3, h, w).contiguous()
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
            x = (x - x.min()) / torch.clamp(x.max() - x.min(), min=1e-8)
            x = F.pad(x, (0, 256 - nw, 0, 256 - nh))
            embedding = net.image_encoder(x)
            boxes = []
            for t in truths:
                ys, xs = np.nonzero(t)
                boxes.append([xs.min() * nw / w, ys.min() * nh / h, xs.max() * nw / w, ys.max() * nh / h])
            sparse, dense = net.prompt_encoder(points=None, boxes=torch.tensor(boxes, dtype=torch.float32), masks=None)
            outputs = []
            for multimask in (False, True):
                low, iou = net.mask_decoder(image_embeddings=embedding, image_pe=net.prompt_encoder.get_dense_pe(),
                                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
                up = F.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False)[:, :, :nh, :nw]
                outputs.append((F.interpolate(up, size=(h, w), mode="bilinear", align_corners=False) > 0).numpy())
            for k, t in enumerate(truths):
                first = scores(outputs[0][k, 0], t)
                multi = [scores(outputs[1][k, j], t) for j in range(3)]
                oracle = max(multi, key=lambda s: s[0])  # noqa: F841 (the same work as medcat's oracle output)
                dice_first.append(first[0])
                masks_done += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({"images": len(images), "masks": masks_done, "seconds": seconds, "images_per_s": len(images) / seconds,
                      "box_first_dice": float(np.mean(dice_first)), "threads": torch.get_num_threads()}))
