"""Data sources, all read into uint8 arrays (N, 32, 32, 3) plus labels, then split like the paper.

Sources (RunConfig.data): `cifar10` / `cifar100` (torchvision's download, our own reader of the pickled batches),
`imagefolder:PATH` (PATH/train/<class>/*, PATH/test/<class>/*) and `synthetic`: a learnable CIFAR-shaped data set that
is written to disk in CIFAR-10's own file format and read back through the same reader as real CIFAR-10, so tests
exercise the real reading path. Synthetic files carry a marker in every batch and a SYNTHETIC file beside them; the
CIFAR reader refuses a marked folder when asked for CIFAR-10 and an unmarked one when asked for synthetic data.

As in the paper's code, the 10,000 test images are halved: the validation half drives the per-epoch curves, the test
half gives the final top-1. We halve by a seeded permutation (the paper's code takes the first and second halves).
"""
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cmxl.config import RunConfig
from cmxl.errors import UserError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the training set, used to normalise
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SYNTHETIC_MARKER = "SYNTHETIC"  # the file beside synthetic batches, and the key inside each of them
_SYNTH_VERSION = 2
_DOWNLOAD_TIMEOUT_S = 20


@dataclass
class Split:
    images: np.ndarray  # uint8, (N, 32, 32, 3), HWC as torchvision's CIFAR10.data
    labels: np.ndarray  # int64, (N,)
    indices: np.ndarray  # positions in the source's own train or test set, saved with the run


@dataclass
class DataSet:
    source: str
    classes: tuple
    train: Split
    val: Split
    test: Split
    synthetic: bool

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load(cfg: RunConfig) -> DataSet:
    """Read the configured source, take the seeded train subset and halve the test set into val and test."""
    source = cfg.data
    if source in ("cifar10", "cifar100"):
        folder = _torchvision_cifar(source, Path(cfg.data_dir))
        train, test, classes = read_cifar(folder, expect_synthetic=False)
    elif source == "synthetic":
        folder = write_synthetic(Path(cfg.data_dir) / "synthetic")
        train, test, classes = read_cifar(folder, expect_synthetic=True)
    elif source.startswith("imagefolder:"):
        root = Path(source.split(":", 1)[1]).expanduser()
        classes = _folder_classes(root / "train")
        train, test = _read_image_folder(root / "train", classes), _read_image_folder(root / "test", classes)
    else:
        raise UserError(f"unknown data source {source!r}: use cifar10, cifar100, imagefolder:PATH or synthetic")
    train_idx = np.arange(len(train[1]))
    if cfg.train_subset:
        if cfg.train_subset > len(train_idx):
            raise UserError(f"train_subset={cfg.train_subset} exceeds the {len(train_idx)} training images")
        train_idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(train_idx))[:cfg.train_subset])
    val_idx, test_idx = split_val_test(len(test[1]), cfg.split_seed)
    take = lambda arrays, idx: Split(arrays[0][idx], arrays[1][idx], idx)
    return DataSet(source, tuple(classes), take(train, train_idx), take(test, val_idx), take(test, test_idx),
                   synthetic=source == "synthetic")


def split_val_test(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


# --- CIFAR: torchvision fetches, we read -----------------------------------------------------------------------------

_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                    meta=("batches.meta", "label_names"), label="labels"),
    "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"],
                     meta=("meta", "fine_label_names"), label="fine_labels"),
}


def _torchvision_cifar(source: str, data_dir: Path) -> Path:
    layout = _CIFAR[source]
    folder = data_dir / layout["folder"]
    if all((folder / f).exists() for f in layout["train"] + layout["test"]):
        return folder
    import torchvision

    dataset = torchvision.datasets.CIFAR10 if source == "cifar10" else torchvision.datasets.CIFAR100
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)  # never hang on a dead network
    try:
        dataset(root=str(data_dir), train=True, download=True)
    except Exception as exc:
        raise UserError(
            f"{source} is not in {folder} and could not be downloaded ({type(exc).__name__}: {str(exc)[:80]}): "
            f"copy the python-version archive's {layout['folder']}/ into {data_dir}/, or use --data imagefolder:PATH "
            f"or --data synthetic") from None
    finally:
        socket.setdefaulttimeout(previous)
    return folder


def read_cifar(folder: Path, expect_synthetic: bool):
    """Read CIFAR pickled batches from folder -> (train, test, classes), each split an (images, labels) pair.

    The real files are Python 2 pickles; latin1 decoding (as torchvision does) turns their keys into str."""
    folder = Path(folder)
    marked = (folder / SYNTHETIC_MARKER).exists()
    if marked != expect_synthetic:
        what = "synthetic stand-in data" if marked else "not cmxl's synthetic data"
        raise UserError(f"{folder} holds {what}; refusing to read it as {'synthetic' if expect_synthetic else 'CIFAR'}: "
                        f"point --data-dir at the real data set")
    layout = _CIFAR["cifar10"] if (folder / "batches.meta").exists() else _CIFAR["cifar100"]
    meta_file, meta_key = layout["meta"]
    with open(folder / meta_file, "rb") as f:
        classes = list(pickle.load(f, encoding="latin1")[meta_key])

    def read(names):
        images, labels = [], []
        for name in names:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            if (SYNTHETIC_MARKER in batch) != expect_synthetic:
                raise UserError(f"{folder / name} does not match the rest of {folder}: re-create the data folder")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[layout["label"]], dtype=np.int64))
        return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)

    return read(layout["train"]), read(layout["test"]), classes


# --- Synthetic: learnable, deterministic, written in CIFAR-10's format ----------------------------------------------

def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n CIFAR-shaped images in 10 classes. Each class is a smooth colour pattern; each image a shifted, flipped,
    noisy copy of its class pattern, so a small ConvMixer learns it within an epoch while it is far from trivial
    for a linear model on raw pixels."""
    patterns_rng = np.random.default_rng(12345)  # the same classes for every split
    coarse = patterns_rng.uniform(0, 255, size=(10, 3, 4, 4))
    patterns = np.kron(coarse, np.ones((1, 1, 12, 12)))[:, :, :40, :40]  # (10, 3, 40, 40) blocky textures
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    dy, dx = rng.integers(0, 9, size=(2, n))
    flip = rng.random(n) < 0.5
    out = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i in range(n):
        img = patterns[labels[i], :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        img = img[:, :, ::-1] if flip[i] else img
        noisy = 0.3 * img + 0.7 * rng.uniform(0, 255, size=img.shape) + rng.uniform(-40, 40)
        out[i] = np.clip(noisy, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return out, labels.astype(np.int64)


def write_synthetic(root: Path, n_train_batch: int = 1000, n_test: int = 1000) -> Path:
    """Write (once) 5 train batches and a test batch in CIFAR-10's pickle format under root/cifar-10-batches-py."""
    folder = Path(root) / _CIFAR["cifar10"]["folder"]
    marker = folder / SYNTHETIC_MARKER
    if marker.exists() and marker.read_text().strip() == f"cmxl synthetic v{_SYNTH_VERSION}":
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"cmxl synthetic v{_SYNTH_VERSION}\n")
    names = _CIFAR["cifar10"]["train"] + _CIFAR["cifar10"]["test"]
    for seed, name in enumerate(names):
        images, labels = synthetic_images(n_test if name == "test_batch" else n_train_batch, seed)
        batch = {"batch_label": "SYNTHETIC - not CIFAR-10", SYNTHETIC_MARKER: True, "labels": labels.tolist(),
                 "data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
                 "filenames": [f"synthetic_{seed}_{i}.png" for i in range(len(images))]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, f)
    return folder


# --- Image folders -----------------------------------------------------------------------------------------------

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def _folder_classes(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist: imagefolder:PATH needs PATH/train/<class>/ and "
                        f"PATH/test/<class>/")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"image folder {folder} has no class subfolders: put images in {folder}/<class>/")
    return classes


def _read_image_folder(folder: Path, classes: list[str]):
    found = _folder_classes(folder)
    if found != classes:
        raise UserError(f"{folder} has classes {found}, but the train folder has {classes}: make them match")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES):
            with Image.open(path) as img:
                if img.size != (32, 32):
                    raise UserError(f"{path} is {img.size[0]}x{img.size[1]}: cmxl trains on 32x32 images; resize them")
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    if not images:
        raise UserError(f"image folder {folder} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
    return np.stack(images), np.asarray(labels, dtype=np.int64)
