"""The paper's augmentation pipeline, built from the config's values, behind two backends.

Training (augment on): RandomResizedCrop(32, scale=(scale, 1), ratio=(1, 1)) -> RandomHorizontalFlip ->
RandAugment(ra_ops, ra_magnitude) -> ColorJitter(jitter, jitter, jitter) -> ToTensor -> Normalize(CIFAR-10 mean/std)
-> RandomErasing(erase_prob). Augment off, and evaluation: ToTensor -> Normalize.

`paper` (aug_backend=paper, the default): torchvision's PIL transforms, applied per image in DataLoader workers, as
the paper's code does. `batched` (aug_backend=batched): `BatchedAugment(cfg)(uint8_images, generator)`, the same
pipeline as a few tensor operations over a whole batch on the training device (cmxl/batched.py).
"""
from torchvision import transforms as T

from cmxl.batched import BatchedAugment
from cmxl.config import RunConfig
from cmxl.data import CIFAR10_MEAN, CIFAR10_STD

__all__ = ["BatchedAugment", "eval_transform", "train_transform"]


def eval_transform() -> T.Compose:
    return T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


def train_transform(cfg: RunConfig) -> T.Compose:
    if not cfg.augment:
        return eval_transform()
    return T.Compose([
        T.RandomResizedCrop(32, scale=(cfg.scale, 1.0), ratio=(1.0, 1.0)),
        T.RandomHorizontalFlip(p=0.5),
        T.RandAugment(num_ops=cfg.ra_ops, magnitude=cfg.ra_magnitude),
        T.ColorJitter(cfg.jitter, cfg.jitter, cfg.jitter),
        T.ToTensor(),
        T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        T.RandomErasing(p=cfg.erase_prob),
    ])
