#!/usr/bin/env python3
"""The Python side of the SAM benchmarks: the same work as bench/SamBench in PyTorch (same wheel).
    sam_peer.py train-vitb SIZE BATCH ITERS THREADS
    sam_peer.py lite-infer WEIGHTS ITERS THREADS
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_models import build_lite_medsam, vit_sam  # noqa: E402

mode = sys.argv[1]
if mode == "train-vitb":
    size, batch, iters = (int(a) for a in sys.argv[2:5])
    torch.set_num_threads(int(sys.argv[5]))
    torch.manual_seed(1)
    sam = vit_sam(768, 12, 12, [2, 5, 8, 11], size)
    images = torch.randn(batch, 3, size, size)
    boxes = torch.tensor([[size * 0.2, size * 0.25, size * 0.7, size * 0.8]] * batch)

    def step():
        emb = sam.image_encoder(images)
        sparse, dense = sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        masks, iou = sam.mask_decoder(image_embeddings=emb, image_pe=sam.prompt_encoder.get_dense_pe(),
                                      sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                      multimask_output=False)
        (masks.sigmoid().mean() + iou.mean()).backward()
        sam.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    print(json.dumps({"ms_per_iter": (time.perf_counter() - t0) / iters * 1000, "threads": torch.get_num_threads()}))
elif mode == "lite-infer":
    weights, iters = sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]))
    net = build_lite_medsam()
    net.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
    net.eval()
    h, w = 217, 181
    pixels = (torch.arange(h * w) * 7919 % 256).float().reshape(h, w)

    def infer():
        with torch.no_grad():
            scale = 256 / max(h, w)
            nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
            x = pixels[None, None].expand(1, 3, h, w).contiguous()
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
            x = (x - x.min()) / torch.clamp(x.max() - x.min(), min=1e-8)
            x = F.pad(x, (0, 256 - nw, 0, 256 - nh))
            box = torch.tensor([[40 * nw / w, 50 * nh / h, 140 * nw / w, 160 * nh / h]])
            logits = net(x, box)
            up = F.interpolate(logits, size=(256, 256), mode="bilinear", align_corners=False)[:, :, :nh, :nw]
            up = F.interpolate(up, size=(h, w), mode="bilinear", align_corners=False)
            (up > 0).sum().item()

    infer()
    t0 = time.perf_counter()
    for _ in range(iters):
        infer()
    print(json.dumps({"images_per_s": iters / (time.perf_counter() - t0), "threads": torch.get_num_threads()}))
