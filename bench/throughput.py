"""Throughput, side by side in one run on one machine: the paper's pipeline against cmxl's fast path.

    python bench/throughput.py [--full] [--json PATH] [--data SOURCE --data-dir DIR]

augment: images/s of the paper's PIL pipeline in DataLoader workers (1 worker, and one per core) against
         BatchedAugment on the training device (GPU when present, else CPU), over the same images.
train:   images/s of training steps at batch 128 for ConvMixer-256/8 and ConvMixer-XL-256/66:
         reference = the paper's recipe (PIL DataLoader with a worker per core, eager, NCHW; float16 AMP on CUDA as
         its code, float32 on the CPU), cmxl = the fast path (batched augmentation on the device, channels_last,
         bfloat16 autocast on CUDA; --compile adds torch.compile). Both run cmxl's own Trainer.train_step.

Machines are noisy: only ratios measured in the same run mean anything. The JSON (keys are a contract) goes to
--json PATH, else bench/results/<hardware>.json.
"""
import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cmxl import data as datasets  # noqa: E402
from cmxl.augment import BatchedAugment, train_transform  # noqa: E402
from cmxl.config import RunConfig, preset  # noqa: E402
from cmxl.files import write_text  # noqa: E402
from cmxl.loaders import CHUNK, ArrayDataset, to_device_tensors  # noqa: E402
from cmxl.train import Trainer  # noqa: E402

CORES = len(os.sched_getaffinity(0))
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# (warm-up steps, measured steps) per model; XL-256/66 takes tens of seconds a step on a 2-core CPU
STEPS = {"short": {"convmixer_256_8": (2, 5), "convmixer_xl_256_66": (1, 2)},
         "full": {"convmixer_256_8": (5, 30), "convmixer_xl_256_66": (3, 10)}}
if DEVICE.type == "cuda":
    STEPS = {"short": {"convmixer_256_8": (30, 200), "convmixer_xl_256_66": (20, 100)},
             "full": {"convmixer_256_8": (50, 1000), "convmixer_xl_256_66": (30, 400)}}
MODELS = {"convmixer_256_8": "CM-Vanilla", "convmixer_xl_256_66": "CM-XL"}


def hardware() -> str:
    if DEVICE.type == "cuda":
        return f"{torch.cuda.get_device_name()} (+ {CORES} CPU cores)"
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor() or platform.machine())
    return f"{model}, {CORES} cores"


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def paper_augment_ips(split, workers: int, images: int) -> float:
    loader = DataLoader(ArrayDataset(split, train_transform(RunConfig())), batch_size=128, shuffle=True,
                        num_workers=workers, persistent_workers=True)
    batches = images // 128
    for epoch in range(2):  # the first epoch starts the workers
        start, seen = time.perf_counter(), 0
        for i, (x, _) in enumerate(loader):
            seen += len(x)
            if i + 1 == batches:
                break
    return seen / (time.perf_counter() - start)


def batched_augment_ips(split, images: int) -> float:
    aug, (x, _) = BatchedAugment(RunConfig()), to_device_tensors(split, DEVICE)
    chunk = CHUNK[DEVICE.type]  # as cmxl.loaders.BatchedLoader augments
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    aug(x[:chunk], gen)
    sync()
    start, seen = time.perf_counter(), 0
    while seen < images:
        index = torch.randint(len(x), (chunk,), generator=gen, device=DEVICE)
        aug(x[index], gen)
        seen += chunk
    sync()
    return seen / (time.perf_counter() - start)


def train_ips(cfg: RunConfig, dataset, warmup: int, measured: int) -> float:
    """Images/s of cfg's training steps, timed after warm-up steps (worker start, cuDNN autotune, compile)."""
    n = (warmup + measured) * 128  # tiled when the data set is smaller: speed does not depend on the content
    tile = lambda a: np.resize(a, (n, *a.shape[1:]))
    subset = replace(dataset, train=datasets.Split(tile(dataset.train.images), tile(dataset.train.labels),
                                                   np.arange(n)))
    trainer = Trainer(cfg, subset, Path("."))
    trainer.model.train()
    seen, start = 0, None
    for step, (x, y) in enumerate(trainer.train_batches):
        if step == warmup:
            sync()
            start = time.perf_counter()
        trainer.train_step(x, y, cfg.lr_max)
        seen += len(y) if step >= warmup else 0
    sync()
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="longer measurements")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/<hardware>.json)")
    parser.add_argument("--data", default="synthetic", help="images to use (default synthetic; e.g. imagefolder:PATH)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--compile", action="store_true", help="add torch.compile to cmxl's fast path")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    length = "full" if args.full else "short"
    dataset = datasets.load(RunConfig(data=args.data, data_dir=args.data_dir))
    print(f"hardware: {hardware()} | device: {DEVICE} | data: {args.data} | torch {torch.__version__} | {length}")

    aug_images = (20_000 if args.full else 5_000) * (20 if DEVICE.type == "cuda" else 1)
    augment = {"paper_1_worker": paper_augment_ips(dataset.train, 1, min(aug_images, 20_000)),
               "paper_all_workers": paper_augment_ips(dataset.train, CORES, min(aug_images, 40_000)),
               "batched": batched_augment_ips(dataset.train, aug_images)}
    print(f"augment  paper 1 worker {augment['paper_1_worker']:9.0f} img/s | paper {CORES} workers "
          f"{augment['paper_all_workers']:9.0f} img/s | batched {augment['batched']:9.0f} img/s")

    fast = dict(aug_backend="batched", channels_last=True, amp_dtype="bfloat16", compile=args.compile)
    paper = dict(aug_backend="paper", channels_last=False, amp_dtype="float16", compile=False, workers=CORES)
    train = {}
    for key, name in MODELS.items():
        warmup, measured = STEPS[length][key]
        common = dict(data=args.data, data_dir=args.data_dir, device=str(DEVICE))
        train[key] = {"reference": train_ips(preset(name, **common, **paper), dataset, warmup, measured),
                      "cmxl": train_ips(preset(name, **common, **fast), dataset, warmup, measured)}
        print(f"train    {key:<20} reference {train[key]['reference']:8.1f} img/s | cmxl {train[key]['cmxl']:8.1f} "
              f"img/s | x{train[key]['cmxl'] / train[key]['reference']:.2f}", flush=True)

    per_core = augment["paper_1_worker"]
    print(f"\nratios (same run): batched augmentation = {augment['batched'] / per_core:.1f}x the PIL pipeline's img/s "
          f"per core (1 worker), {augment['batched'] / augment['paper_all_workers']:.1f}x all {CORES} workers; "
          + "; ".join(f"{k} training x{v['cmxl'] / v['reference']:.2f}" for k, v in train.items()))
    result = {"hardware": hardware(), "cores": CORES, "device": str(DEVICE), "augment": augment, "train": train,
              "torch": torch.__version__, "data": args.data, "length": length, "compile": args.compile,
              "date": time.strftime("%Y-%m-%d")}
    slug = re.sub(r"[^A-Za-z0-9]+", "-", hardware()).strip("-").lower()
    path = args.json or Path(__file__).parent / "results" / f"{slug}.json"
    write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
