"""Training, readable top to bottom: `train(cfg)` runs one configuration and leaves a complete run folder.

Run folder OUT/NAME/: config.json, history.csv (a row per finished epoch, appended as it goes), checkpoint.pt
(written atomically after every epoch), splits.npz, provenance.json, and, only once the run has finished,
test_predictions.csv and metrics.json. metrics.json is written last: its presence means "finished".
"""
import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cmxl import data as datasets
from cmxl.config import RunConfig
from cmxl.errors import UserError
from cmxl.files import save_torch, write_json, write_text
from cmxl.loaders import BatchedLoader, PaperLoader, eval_batches, to_device_tensors
from cmxl.models import build_model, count_params
from cmxl.provenance import provenance

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds",
                   "images_per_second")
_NONFINITE_CHECK_EVERY = 50  # steps between host reads of the non-finite-loss flag


class NonFiniteLoss(UserError):
    pass


@dataclass
class RunResult:
    name: str
    run_dir: Path
    test_top1: float  # percent, on the test half of the test set
    val_top1: float  # percent, on the validation half, after the last epoch
    params: int
    epochs: int
    wall_seconds: float
    data: str
    synthetic: bool


def lr_at(t: float, epochs: int, lr_max: float) -> float:
    """Triangular schedule at fractional epoch t: 0 -> lr_max at 2/5 -> lr_max/20 at 4/5 -> 0 at the end."""
    return float(np.interp(t, [0, epochs * 2 / 5, epochs * 4 / 5, epochs], [0, lr_max, lr_max / 20, 0]))


def pick_device(cfg: RunConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={cfg.device} but no CUDA device is available: use --set device=auto or cpu")
    return torch.device(cfg.device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state(loader_gen: torch.Generator) -> dict:
    return dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate(),
                loader=loader_gen.get_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def _set_rng_state(state: dict, loader_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    loader_gen.set_state(state["loader"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """The state of one run: model, optimiser, scaler, data and RNG. `fit` runs the remaining epochs."""

    def __init__(self, cfg: RunConfig, dataset: datasets.DataSet, run_dir: Path):
        self.cfg, self.dataset, self.run_dir = cfg, dataset, run_dir
        self.device = pick_device(cfg)
        seed_everything(cfg.seed)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = build_model(cfg, dataset.num_classes).to(self.device, memory_format=self.memory_format)
        self.forward = torch.compile(self.model) if cfg.compile else self.model  # shares the model's parameters
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr_max, weight_decay=cfg.weight_decay)
        self.amp_dtype = getattr(torch, cfg.amp_dtype)
        # float16 autocast is a CUDA thing; bfloat16 also runs on CPUs (fast where they have AMX or AVX512-BF16)
        self.use_amp = cfg.amp and (self.device.type == "cuda" or self.amp_dtype == torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        if cfg.aug_backend == "batched":  # the data, its permutation and its augmentation all live on the device
            self.loader_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
            self.train_batches = BatchedLoader(dataset.train, cfg, self.loader_gen, self.device)
        else:  # DataLoader shuffling and worker seeds come from a CPU generator
            self.loader_gen = torch.Generator().manual_seed(cfg.seed)
            self.train_batches = PaperLoader(dataset.train, cfg, self.loader_gen, self.device)
        self.val = to_device_tensors(dataset.val, self.device)
        self.epoch, self.history, self.wall_seconds = 0, [], 0.0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    # --- checkpoints ---
    def save_checkpoint(self, path: Path) -> None:
        save_torch(path, dict(model=self.model.state_dict(), optimizer=self.opt.state_dict(),
                              scaler=self.scaler.state_dict(), epoch=self.epoch, history=self.history,
                              wall_seconds=self.wall_seconds,
                              rng=_rng_state(self.loader_gen), config=self.cfg.to_dict()))

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.history, self.wall_seconds = state["epoch"], state["history"], state["wall_seconds"]
        _set_rng_state(state["rng"], self.loader_gen)

    # --- one step, one epoch ---
    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step at learning rate lr; returns the (device) loss and logits."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.forward(x.contiguous(memory_format=self.memory_format))
            loss = F.cross_entropy(out, y)
        self.scaler.scale(loss).backward()
        if self.cfg.clip_grad:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss, out

    def train_epoch(self, progress: bool) -> dict:
        cfg, steps = self.cfg, len(self.train_batches)
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        first_bad = torch.full((), -1, device=self.device, dtype=torch.long)
        seen, start = 0, time.perf_counter()
        batches = self.train_batches
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, total=steps, leave=False, desc=f"epoch {self.epoch + 1}")
        for step, (x, y) in enumerate(batches):
            lr = lr_at(self.epoch + (step + 1) / steps, cfg.epochs, cfg.lr_max)
            loss, out = self.train_step(x, y, lr)
            # sums stay on the device: no host synchronisation per step
            loss_sum += loss.detach().float() * y.size(0)
            correct += (out.argmax(1) == y).sum()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), step, first_bad)
            seen += y.size(0)
            if (step + 1) % _NONFINITE_CHECK_EVERY == 0 or step + 1 == steps:
                self._stop_if_nonfinite(int(first_bad))
        seconds = time.perf_counter() - start
        return dict(train_loss=loss_sum.item() / seen, train_acc=100 * correct.item() / seen, lr=lr,
                    epoch_seconds=seconds, images_per_second=seen / seconds)

    def _stop_if_nonfinite(self, step: int) -> None:
        if step >= 0:
            raise NonFiniteLoss(f"loss became NaN or infinite at epoch {self.epoch + 1}, step {step + 1}; the history "
                                f"so far is in {self.run_dir}: lower lr_max or set clip_grad=true")

    @torch.no_grad()
    def predict(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Mean loss and softmax probabilities over a device-resident split."""
        self.model.eval()
        loss_sum, probs = torch.zeros((), device=self.device), []
        for x, y in eval_batches(images, labels):
            with self.autocast():
                out = self.forward(x.contiguous(memory_format=self.memory_format))
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")  # on the device: one read per split
            probs.append(out.float().softmax(1))
        return loss_sum.item() / len(labels), torch.cat(probs)

    def evaluate_split(self, images, labels) -> tuple[float, float, torch.Tensor]:
        loss, probs = self.predict(images, labels)
        return loss, 100 * (probs.argmax(1) == labels).float().mean().item(), probs

    def fit(self, progress: bool, on_epoch=None) -> None:
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            row = self.train_epoch(progress)
            val_loss, val_acc, _ = self.evaluate_split(*self.val)
            self.wall_seconds += time.perf_counter() - start
            self.epoch += 1
            row = dict(epoch=self.epoch, val_loss=val_loss, val_acc=val_acc, **row)
            self.history.append({k: row[k] for k in HISTORY_COLUMNS})
            if on_epoch:
                on_epoch(self.history[-1])
            self.save_checkpoint(self.run_dir / "checkpoint.pt")


def _write_history(path: Path, rows: list[dict]) -> None:
    lines = [",".join(HISTORY_COLUMNS)] + [",".join(_fmt(r[k]) for k in HISTORY_COLUMNS) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def _append_history(path: Path, row: dict) -> None:
    with open(path, "a", newline="") as f:
        f.write(",".join(_fmt(row[k]) for k in HISTORY_COLUMNS) + "\n")
        f.flush()


def _fmt(v) -> str:
    return str(v) if isinstance(v, int) else repr(float(v))


def epoch_line(row: dict, epochs: int) -> str:
    return (f"epoch {row['epoch']:>3}/{epochs}  train_loss {row['train_loss']:.4f}  train_acc {row['train_acc']:6.2f}%  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:6.2f}%  lr {row['lr']:.6f}  "
            f"{row['epoch_seconds']:6.1f} s  {row['images_per_second']:7.0f} img/s")


def resolve(config: RunConfig, data: str | None = None, data_dir: str | None = None) -> RunConfig:
    """The config this run uses: data source and folder from the arguments when given."""
    return replace(config, data=data or config.data, data_dir=str(data_dir or config.data_dir)).validate()


def prepare_run_dir(run_dir: Path, cfg: RunConfig, resume: bool) -> bool:
    """Check the run folder against cfg; return True when it already holds this finished run (resume only)."""
    saved = run_dir / "config.json"
    if not saved.exists():
        return False
    if not resume:
        raise UserError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --name/--out")
    if json.loads(saved.read_text()) != cfg.to_dict():
        raise UserError(f"{run_dir} holds a run with a different config: choose another --name, or delete the folder")
    return (run_dir / "metrics.json").exists()


def load_result(run_dir: Path) -> RunResult:
    m = json.loads((Path(run_dir) / "metrics.json").read_text())
    return RunResult(m["name"], Path(run_dir), m["test_top1"], m["val_top1"], m["params"], m["epochs"],
                     m["wall_seconds"], m["data"], m["synthetic"])


def train(config: RunConfig, data: str | None = None, data_dir: str | None = None, out_dir: str = "results",
          name: str | None = None, resume: bool = False, progress: bool | None = None) -> RunResult:
    """Train one configuration; return its final numbers. Resume continues a killed run from its last epoch."""
    cfg = resolve(config, data, data_dir)
    name = name or cfg.preset
    run_dir = Path(out_dir) / name
    dataset = datasets.load(cfg)  # fails on missing data before anything is written
    if prepare_run_dir(run_dir, cfg, resume):
        print(f"{run_dir} already holds this finished run: nothing to do")
        return load_result(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, dataset, run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    started = time.time()
    if resume and checkpoint.exists():
        trainer.load_checkpoint(checkpoint)
        print(f"resuming {run_dir} after epoch {trainer.epoch}")
    else:
        write_json(run_dir / "config.json", cfg.to_dict())
        np.savez_compressed(run_dir / "splits.npz", train=dataset.train.indices, val=dataset.val.indices,
                            test=dataset.test.indices)
    _write_history(run_dir / "history.csv", trainer.history)
    write_json(run_dir / "provenance.json", provenance(trainer.device, started))
    params = count_params(trainer.model)
    label = " [SYNTHETIC data: not CIFAR-10]" if dataset.synthetic else ""
    print(f"{name}: {params:,} parameters, {len(dataset.train.labels)} train images from {cfg.data}, "
          f"{cfg.epochs} epochs on {trainer.device}{label}")

    def on_epoch(row):
        _append_history(run_dir / "history.csv", row)
        print(epoch_line(row, cfg.epochs), flush=True)

    interactive = sys.stderr.isatty() if progress is None else progress
    trainer.fit(interactive, on_epoch)
    return _finish(trainer, run_dir, name, params, started)


def _finish(trainer: Trainer, run_dir: Path, name: str, params: int, started: float) -> RunResult:
    ds = trainer.dataset
    images, labels = to_device_tensors(ds.test, trainer.device)
    _, test_top1, probs = trainer.evaluate_split(images, labels)
    conf, pred = probs.max(1)
    rows = ["index,label,predicted,confidence"] + [
        f"{i},{y},{p},{c:.6f}" for i, y, p, c in zip(ds.test.indices.tolist(), ds.test.labels.tolist(),
                                                     pred.tolist(), conf.tolist())]
    write_text(run_dir / "test_predictions.csv", "\n".join(rows) + "\n")
    result = RunResult(name, run_dir, test_top1, trainer.history[-1]["val_acc"], params, trainer.cfg.epochs,
                       trainer.wall_seconds, trainer.cfg.data, ds.synthetic)
    write_json(run_dir / "provenance.json", provenance(trainer.device, started, ended=time.time()))
    metrics = dict(name=name, test_top1=test_top1, val_top1=result.val_top1, params=params, epochs=result.epochs,
                   wall_seconds=result.wall_seconds, data=result.data, synthetic=ds.synthetic,
                   classes=list(ds.classes), test_images=len(labels))
    write_json(run_dir / "metrics.json", metrics)
    print(f"{name}: test top-1 {test_top1:.2f}%  (val {result.val_top1:.2f}%)  in {result.wall_seconds:.0f} s"
          + (" [SYNTHETIC data]" if ds.synthetic else ""))
    return result


def evaluate(checkpoint: str | Path, data: str | None = None, data_dir: str | None = None) -> float:
    """Test top-1 (percent) of a saved checkpoint, on the test half its run used; no training."""
    path = Path(checkpoint)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: pass a run folder's checkpoint.pt")
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = resolve(RunConfig.from_dict(state["config"]), data, data_dir)
    trainer = Trainer(cfg, datasets.load(cfg), path.parent)
    trainer.model.load_state_dict(state["model"])
    return trainer.evaluate_split(*to_device_tensors(trainer.dataset.test, trainer.device))[1]
