#!/usr/bin/env python3
"""SAM-Med2D's training data pipeline, re-created for the loader benchmark:
    loader_peer.py SA_MED2D_DIR SPLIT BATCHES   → one JSON line (samples/s)

It follows SAM-Med2D's TrainingDataset (DataLoader.py) and helpers (utils.py) step by step on a
folder in the SA-Med2D-20M layout (`medcat export --format sa-med2d`): per image, read it as 3
channels and normalise with SAM's mean/std; draw mask_num=5 masks with replacement; for each,
read it, resize image and mask to 256 (nearest, as train_transforms does for images not smaller
than 256) and convert to CHW tensors, take the box of the largest component with SAM-Med2D's
noise, and one random foreground point; stack; batch 2 with torch's DataLoader (shuffle, no
worker processes: one core). OpenCV, albumentations and scikit-image are replaced by Pillow,
numpy and scipy.ndimage doing the same operations.
"""
import json
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

MEAN, STD = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])


def resize_nearest(a, size):
    h, w = a.shape[:2]
    return a[(np.arange(size) * h // size)[:, None], (np.arange(size) * w // size)[None, :]]


def box_from_mask(mask, std=0.1, max_pixel=5):
    labels, count = ndimage.label(mask)
    if count == 0:
        return torch.zeros(1, 4)
    areas = np.bincount(labels.ravel())[1:]
    sl = ndimage.find_objects(labels)[int(np.argmax(areas))]
    y0, x0, y1, x1 = sl[0].start, sl[1].start, sl[0].stop, sl[1].stop
    noise_std = min(x1 - x0, y1 - y0) * std
    max_noise = min(max_pixel, int(noise_std * 5))
    if max_noise > 0:
        dx, dy = np.random.randint(-max_noise, max_noise), np.random.randint(-max_noise, max_noise)
        x0, y0, x1, y1 = x0 + dx, y0 + dy, x1 + dx, y1 + dy
    return torch.as_tensor([[x0, y0, x1, y1]], dtype=torch.float)


def random_point(mask):
    fg = np.argwhere(mask == 1)[:, ::-1]
    if len(fg) == 0:
        bg = np.argwhere(mask == 0)[:, ::-1]
        return torch.as_tensor([bg[np.random.randint(len(bg))].tolist()], dtype=torch.float), torch.as_tensor([0], dtype=torch.int)
    return torch.as_tensor([fg[np.random.randint(len(fg))].tolist()], dtype=torch.float), torch.as_tensor([1], dtype=torch.int)


class TrainingDataset(Dataset):
    def __init__(self, folder, split, size=256, mask_num=5):
        index = json.load(open(os.path.join(folder, f"image2label_{split}.json")))
        self.folder, self.size, self.mask_num = folder, size, mask_num
        self.images, self.labels = list(index.keys()), list(index.values())

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = np.asarray(Image.open(os.path.join(self.folder, self.images[i])).convert("RGB"), dtype=np.float64)[:, :, ::-1]
        image = (image - MEAN) / STD
        masks, boxes, coords, labels = [], [], [], []
        for m in random.choices(self.labels[i], k=self.mask_num):
            mask = np.asarray(Image.open(os.path.join(self.folder, m)), dtype=np.float64)
            if mask.max() == 255:
                mask = mask / 255
            image_tensor = torch.from_numpy(np.ascontiguousarray(resize_nearest(image, self.size).transpose(2, 0, 1)))
            mask_tensor = torch.from_numpy(np.ascontiguousarray(resize_nearest(mask, self.size))).to(torch.int64)
            boxes.append(box_from_mask(mask_tensor.numpy()))
            c, lab = random_point(mask_tensor.numpy())
            masks.append(mask_tensor); coords.append(c); labels.append(lab)
        return {"image": image_tensor.unsqueeze(0), "label": torch.stack(masks).unsqueeze(1), "boxes": torch.stack(boxes),
                "point_coords": torch.stack(coords), "point_labels": torch.stack(labels)}


folder, split, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
random.seed(0); np.random.seed(0); torch.manual_seed(0)
loader = DataLoader(TrainingDataset(folder, split), batch_size=2, shuffle=True, num_workers=0)
samples, done = 0, 0
t0 = time.perf_counter()
while done < batches:
    for batch in loader:
        batch = {k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()}  # SAM-Med2D's stack_dict_batched
        samples += batch["image"].shape[0]
        done += 1
        if done == batches:
            break
seconds = time.perf_counter() - t0
print(json.dumps({"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds}))
