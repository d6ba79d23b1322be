"""The paper's augmentation pipeline, built from the config's values.

Training (augment on): RandomResizedCrop(32, scale=(scale, 1), ratio=(1, 1)) -> RandomHorizontalFlip ->
RandAugment(ra_ops, ra_magnitude) -> ColorJitter(jitter, jitter, jitter) -> ToTensor -> Normalize(CIFAR-10 mean/std)
-> RandomErasing(erase_prob). Augment off, and evaluation: ToTensor -> Normalize.

These are torchvision's PIL transforms, applied per image in DataLoader workers (the `paper` backend).
"""
from torchvision import transforms as T

from cmxl.config import RunConfig

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


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
