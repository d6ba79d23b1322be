"""The fast path (aug_backend=batched, channels_last, compile) trains like the paper path, without per-step syncs."""
import os
import sys

import pytest
import torch

from cmxl import data as datasets
from cmxl.config import PRESETS, preset
from cmxl.loaders import BatchedLoader
from cmxl.train import Trainer, train
from tests.conftest import tiny


@pytest.mark.parametrize("backend", ["paper", "batched"])
@pytest.mark.parametrize("name", list(PRESETS))
def test_both_backends_train_every_preset(name, backend, data_dir, tmp_path):
    depth = preset(name).depth  # the preset's own: 66 for the XL rows
    cfg = tiny(name, data_dir=data_dir, epochs=1, dim=8, depth=depth, train_subset=256, aug_backend=backend)
    result = train(cfg, out_dir=tmp_path, progress=False)
    assert 0 <= result.test_top1 <= 100 and (tmp_path / name / "metrics.json").exists()


def test_batched_backend_learns(data_dir, tmp_path):
    result = train(tiny(data_dir=data_dir, aug_backend="batched"), out_dir=tmp_path, progress=False)
    assert result.test_top1 > 40  # chance is 10%


def test_batched_loader_covers_the_epoch_once_in_a_seeded_order(data_dir):
    split = datasets.load(tiny(data_dir=data_dir, train_subset=1000)).train
    cfg = tiny(data_dir=data_dir, batch_size=96, augment=False)
    epochs = []
    for seed in (1, 1, 2):
        loader = BatchedLoader(split, cfg, torch.Generator().manual_seed(seed), torch.device("cpu"))
        labels = torch.cat([y for _, y in loader])
        assert len(loader) == 11 and sorted(labels.tolist()) == sorted(split.labels.tolist())
        epochs.append(labels)
    assert torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0], epochs[2])


def test_no_host_synchronisation_per_step(data_dir, tmp_path, monkeypatch):
    """Loss and accuracy sums stay on the device: the host reads tensors a few times an epoch, not every step."""
    cfg = tiny(data_dir=data_dir, epochs=1, batch_size=16, train_subset=1600, aug_backend="batched")
    trainer = Trainer(cfg, datasets.load(cfg), tmp_path)
    trainer.train_epoch(progress=False)  # the first builds BatchedAugment's lookup tables once, on the CPU
    reads = []

    def spy(name, real):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename  # cmxl's own reads; torch's CPU step counters aren't syncs
            if f"{os.sep}cmxl{os.sep}" in caller:
                reads.append(f"{name} at {caller}:{sys._getframe(1).f_lineno}")
            return real(self, *args, **kwargs)
        return read

    for name in ("item", "__int__", "__float__", "__bool__", "tolist", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, spy(name, getattr(torch.Tensor, name)))
    steps = len(trainer.train_batches)
    trainer.train_epoch(progress=False)
    assert steps == 100 and len(reads) <= 10, reads  # a non-finite check every 50 steps, the sums at the end


def test_compile_smoke(data_dir, tmp_path):
    """torch.compile on the CPU (minutes on a big model; seconds on this one)."""
    cfg = tiny(data_dir=data_dir, epochs=1, dim=8, depth=1, train_subset=256, aug_backend="batched", compile=True)
    result = train(cfg, out_dir=tmp_path, progress=False)
    assert 0 <= result.test_top1 <= 100


def test_channels_last_changes_layout_not_results(data_dir, tmp_path):
    a = train(tiny(data_dir=data_dir, epochs=1, train_subset=512, channels_last=True), out_dir=tmp_path, name="cl",
              progress=False)
    b = train(tiny(data_dir=data_dir, epochs=1, train_subset=512, channels_last=False), out_dir=tmp_path,
              name="nchw", progress=False)
    assert abs(a.test_top1 - b.test_top1) <= 2.0  # float summation order differs, the computation does not
