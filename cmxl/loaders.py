"""Batch sources for the training loop: each yields (images, labels) on the training device, one epoch per iteration.

`PaperLoader` (aug_backend=paper) is the paper's path: PIL transforms per image in DataLoader workers.
`BatchedLoader` (aug_backend=batched) keeps the training set on the device as one uint8 tensor and augments it there
with BatchedAugment, a large chunk of the epoch per call. `eval_batches` serves evaluation from device-resident
tensors: ToTensor + Normalize is a per-pixel affine map, so doing it on the whole uint8 tensor is the same arithmetic
without PIL or workers.
"""
import math
import random

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cmxl.augment import BatchedAugment, train_transform
from cmxl.batched import normalize
from cmxl.config import RunConfig
from cmxl.data import Split


class ArrayDataset(Dataset):
    """uint8 HWC images -> PIL -> transform, exactly as torchvision's CIFAR10.__getitem__ does."""

    def __init__(self, split: Split, transform):
        self.images, self.labels, self.transform = split.images, split.labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it so every library is determined
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class PaperLoader:
    def __init__(self, split: Split, cfg: RunConfig, generator: torch.Generator, device: torch.device):
        self.device = device
        self.loader = DataLoader(
            ArrayDataset(split, train_transform(cfg)), batch_size=cfg.batch_size, shuffle=True,
            num_workers=cfg.workers_used(), worker_init_fn=_seed_worker, generator=generator,
            pin_memory=device.type == "cuda")

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


# images augmented per BatchedAugment call: a GPU wants few, large calls (each reads a few masks on the host); a CPU
# wants the chunk to stay in cache: 2048 ran fastest here (2 cores), 512 and 8192 slower
CHUNK = {"cuda": 16384, "cpu": 2048}


class BatchedLoader:
    def __init__(self, split: Split, cfg: RunConfig, generator: torch.Generator, device: torch.device):
        self.images, self.labels = to_device_tensors(split, device)
        self.augment, self.generator, self.batch_size = BatchedAugment(cfg), generator, cfg.batch_size
        self.chunk = max(1, CHUNK.get(device.type, 2048) // cfg.batch_size) * cfg.batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.labels), generator=self.generator, device=self.generator.device)
        order = order.to(self.images.device)
        for start in range(0, len(order), self.chunk):
            index = order[start:start + self.chunk]
            x, y = self.augment(self.images[index], self.generator), self.labels[index]
            for b in range(0, len(index), self.batch_size):
                yield x[b:b + self.batch_size], y[b:b + self.batch_size]


def to_device_tensors(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A split as (uint8 NCHW images, int64 labels) on the device."""
    images = torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous()
    return images.to(device), torch.from_numpy(split.labels).to(device)


def eval_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500):
    for start in range(0, len(labels), batch_size):
        yield normalize(images[start:start + batch_size]), labels[start:start + batch_size]
