#!/usr/bin/env python3
"""The Python side of the SAM benchmarks: the same work as bench/SamBench in PyTorch (same wheel).
    sam_peer.py train-vitb SIZE BATCH ITERS THREADS
    sam_peer.py lite-infer WEIGHTS ITERS THREADS
    sam_peer.py train-step WEIGHTS STEPS THREADS   a plain PyTorch fine-tuning loop over LiteMedSAM:
        one fixed batch of 2 images × 5 masks with box prompts, SAM's loss, AdamW, clipping
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from reference_models import build_lite_medsam, vit_sam  # noqa: E402



def lite_medsam(weights):
    net = build_lite_medsam()
    net.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
    return net


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
    net = lite_medsam(weights).eval()
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
elif mode == "train-step":
    weights, steps = sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]))
    net = lite_medsam(weights).train()
    for m in net.modules():  # medcat trains with frozen BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 256, 256, generator=g)
    y, x = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    targets = torch.stack([((x - 60 - 25 * k) ** 2 + (y - 80 - 15 * k) ** 2 < (20 + 3 * k) ** 2).float() for k in range(10)])[:, None]
    boxes = torch.tensor([[40.0 + 25 * k - 3 * k, 60.0 + 15 * k - 3 * k, 80.0 + 28 * k, 100.0 + 18 * k] for k in range(10)])
    index = torch.arange(10) // 5

    def step():
        emb = net.image_encoder(images)[index]
        sparse, dense = net.prompt_encoder(points=None, boxes=boxes, masks=None)
        low, iou = net.mask_decoder(image_embeddings=emb, image_pe=net.prompt_encoder.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
        logits = F.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False)
        p = logits.sigmoid()
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        pt = p * targets + (1 - p) * (1 - targets)
        focal = ((0.25 * targets + 0.75 * (1 - targets)) * (1 - pt) ** 2 * ce).mean()
        dice = (1 - (2 * (p * targets).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + targets.sum((1, 2, 3)) + 1)).mean()
        with torch.no_grad():
            hard = (logits > 0).float()
            inter = (hard * targets).sum((1, 2, 3))
            actual = inter / ((hard + targets).sum((1, 2, 3)) - inter).clamp(min=1)
        loss = 20 * focal + dice + ((iou.reshape(-1) - actual) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"ms_per_step": (time.perf_counter() - t0) / steps * 1000, "threads": torch.get_num_threads()}))
