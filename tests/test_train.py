import csv
import json
import signal
import time
from dataclasses import replace

import pytest
import torch

import importlib

from cmxl.config import RunConfig
from cmxl.errors import UserError
from cmxl.train import HISTORY_COLUMNS, NonFiniteLoss, evaluate, train
from tests.conftest import run_cli, start_cli, tiny


def _history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train(tiny(data_dir=data_dir), out_dir=out, progress=False)


def test_tiny_run_clearly_beats_chance(finished):
    assert finished.test_top1 > 40  # chance is 10% on the 10 synthetic classes
    assert finished.val_top1 > 40 and finished.epochs == 2 and finished.synthetic


def test_run_folder_holds_every_artifact(finished):
    d = finished.run_dir
    assert d.name == "CM-Vanilla"
    for f in ("config.json", "history.csv", "metrics.json", "test_predictions.csv", "provenance.json",
              "checkpoint.pt", "splits.npz"):
        assert (d / f).is_file(), f
    rows = _history(d)
    assert list(rows[0]) == list(HISTORY_COLUMNS) and [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[-1]["lr"]) == 0.0 and float(rows[0]["images_per_second"]) > 0
    m = json.loads((d / "metrics.json").read_text())
    assert {"test_top1", "val_top1", "params", "epochs", "wall_seconds"} <= set(m)
    assert m["synthetic"] is True and m["data"] == "synthetic" and m["test_top1"] == finished.test_top1
    with open(d / "test_predictions.csv") as f:
        preds = list(csv.DictReader(f))
    assert list(preds[0]) == ["index", "label", "predicted", "confidence"] and len(preds) == 500
    acc = 100 * sum(p["label"] == p["predicted"] for p in preds) / len(preds)
    assert acc == pytest.approx(m["test_top1"])
    prov = json.loads((d / "provenance.json").read_text())
    assert {"git_commit", "git_dirty", "packages", "torch", "device_name", "host", "started", "ended"} <= set(prov)
    assert json.loads((d / "config.json").read_text())["data"] == "synthetic"


def test_evaluate_checkpoint_gives_the_test_top1(finished):
    assert evaluate(finished.run_dir / "checkpoint.pt") == pytest.approx(finished.test_top1)


def test_existing_run_needs_resume_and_finished_run_is_not_redone(finished, capsys):
    saved = RunConfig.from_dict(json.loads((finished.run_dir / "config.json").read_text()))
    out = finished.run_dir.parent
    with pytest.raises(UserError, match="--resume"):
        train(saved, out_dir=out, progress=False)
    again = train(saved, out_dir=out, resume=True, progress=False)
    assert again.test_top1 == finished.test_top1 and "nothing to do" in capsys.readouterr().out
    with pytest.raises(UserError, match="different config"):
        train(replace(saved, epochs=3), out_dir=out, resume=True, progress=False)


@pytest.mark.parametrize("backend, workers", [("paper", 0), ("paper", 2), ("batched", 0)])
def test_resume_after_sigkill_equals_an_uninterrupted_run(backend, workers, data_dir, tmp_path):
    args = ["train", "--config", "CM-Vanilla", "--set", "epochs=4", "dim=16", "depth=2", "batch_size=100",
            "train_subset=1500", f"workers={workers}", f"aug_backend={backend}", "--data", "synthetic",
            "--data-dir", data_dir, "--out", tmp_path]
    reference = run_cli(*args, "--name", "straight")
    assert reference.returncode == 0, reference.stderr

    proc = start_cli(*args, "--name", "killed")
    killed = tmp_path / "killed"
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    assert len(_history(killed)) < 4

    resumed = run_cli(*args, "--name", "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    timing = {"epoch_seconds", "images_per_second"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    assert strip(_history(killed)) == strip(_history(tmp_path / "straight"))
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("killed", "straight"))
    assert a["test_top1"] == b["test_top1"]
    assert (killed / "test_predictions.csv").read_text() == (tmp_path / "straight" / "test_predictions.csv").read_text()


class _NaNAfter(torch.nn.Module):
    """Wraps a model so its training output turns NaN from the n-th training forward pass on."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                out = out * float("nan")
        return out


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_history(data_dir, tmp_path, monkeypatch):
    train_module = importlib.import_module("cmxl.train")  # cmxl.train is also the function
    real = train_module.build_model
    steps_per_epoch = 5000 // 250
    monkeypatch.setattr(train_module, "build_model",
                        lambda cfg, n: _NaNAfter(real(cfg, n), steps_per_epoch + 3))
    with pytest.raises(NonFiniteLoss, match="epoch 2, step 3"):
        train(tiny(data_dir=data_dir, epochs=3, batch_size=250), out_dir=tmp_path, name="nan", progress=False)
    assert len(_history(tmp_path / "nan")) == 1
    assert not (tmp_path / "nan" / "metrics.json").exists()
