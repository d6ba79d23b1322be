import pickle
import shutil
import time

import numpy as np
import pytest
import torchvision
from PIL import Image

from cmxl import data
from cmxl.data import SYNTHETIC_MARKER, load, read_cifar, split_val_test
from cmxl.errors import UserError
from tests.conftest import tiny


def test_synthetic_is_written_in_the_real_cifar10_format(data_dir, monkeypatch):
    folder = data_dir / "synthetic" / "cifar-10-batches-py"
    assert (folder / SYNTHETIC_MARKER).exists()
    # torchvision's own CIFAR10 reader accepts the files once its md5 check (of the real archive) is skipped
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a: True)
    tv = torchvision.datasets.CIFAR10(root=str(data_dir / "synthetic"), train=True, download=False)
    (train_x, train_y), (test_x, test_y), classes = read_cifar(folder, expect_synthetic=True)
    assert np.array_equal(tv.data, train_x) and np.array_equal(tv.targets, train_y)
    assert classes == list(tv.classes) == list(data.CIFAR10_CLASSES)
    assert train_x.shape == (5000, 32, 32, 3) and train_x.dtype == np.uint8 and test_x.shape == (1000, 32, 32, 3)
    assert set(np.unique(train_y)) == set(range(10))


def test_load_synthetic_goes_through_the_cifar_reader(data_dir, monkeypatch):
    calls = []
    real = data.read_cifar
    monkeypatch.setattr(data, "read_cifar", lambda *a, **k: calls.append(a) or real(*a, **k))
    ds = load(tiny(data_dir=data_dir))
    assert calls and ds.synthetic and ds.source == "synthetic"
    assert len(ds.train.labels) == 5000 and len(ds.val.labels) == len(ds.test.labels) == 500


def test_synthetic_files_are_never_read_as_cifar10(data_dir, tmp_path):
    shutil.copytree(data_dir / "synthetic" / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    with pytest.raises(UserError, match="synthetic"):
        load(tiny(data="cifar10", data_dir=tmp_path))


def test_unmarked_folder_is_not_read_as_synthetic(data_dir, tmp_path):
    shutil.copytree(data_dir / "synthetic", tmp_path / "synthetic")
    (tmp_path / "synthetic" / "cifar-10-batches-py" / SYNTHETIC_MARKER).unlink()
    with pytest.raises(UserError, match="not cmxl's synthetic"):
        read_cifar(tmp_path / "synthetic" / "cifar-10-batches-py", expect_synthetic=True)


def test_real_format_cifar_folder_is_read_for_cifar10(data_dir, tmp_path):
    """A folder in CIFAR-10's layout without the marker (as the real download) is read by --data cifar10."""
    src, dst = data_dir / "synthetic" / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py"
    dst.mkdir()
    for f in src.iterdir():
        if f.name == SYNTHETIC_MARKER:
            continue
        obj = pickle.loads(f.read_bytes(), encoding="latin1")
        obj.pop(SYNTHETIC_MARKER, None)
        (dst / f.name).write_bytes(pickle.dumps(obj))
    ds = load(tiny(data="cifar10", data_dir=tmp_path))
    assert not ds.synthetic and len(ds.train.labels) == 5000


def test_split_is_deterministic_disjoint_and_halves_the_test_set():
    a_val, a_test = split_val_test(10_000, 1024)
    b_val, b_test = split_val_test(10_000, 1024)
    c_val, _ = split_val_test(10_000, 7)
    assert np.array_equal(a_val, b_val) and np.array_equal(a_test, b_test)
    assert len(a_val) == len(a_test) == 5000
    assert len(np.intersect1d(a_val, a_test)) == 0 and len(np.union1d(a_val, a_test)) == 10_000
    assert not np.array_equal(a_val, c_val)
    assert not np.array_equal(a_val, np.arange(5000))  # a permutation, not the first half


def test_split_does_not_depend_on_the_training_seed(data_dir):
    a, b = load(tiny(data_dir=data_dir, seed=1)), load(tiny(data_dir=data_dir, seed=2))
    assert np.array_equal(a.test.indices, b.test.indices)


def test_train_subset_is_seeded(data_dir):
    a = load(tiny(data_dir=data_dir, train_subset=300))
    b = load(tiny(data_dir=data_dir, train_subset=300))
    c = load(tiny(data_dir=data_dir, train_subset=300, seed=5))
    assert len(a.train.labels) == 300 and np.array_equal(a.train.indices, b.train.indices)
    assert not np.array_equal(a.train.indices, c.train.indices)
    with pytest.raises(UserError, match="exceeds"):
        load(tiny(data_dir=data_dir, train_subset=10**6))


def _write_folder(root, classes=("cat", "dog"), n=3, size=32):
    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for c in classes:
            (root / part / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / part / c / f"{i}.png")


def test_image_folder(tmp_path):
    _write_folder(tmp_path)
    ds = load(tiny(data=f"imagefolder:{tmp_path}"))
    assert ds.classes == ("cat", "dog") and len(ds.train.labels) == 6 and len(ds.val.labels) == 3
    saved = np.asarray(Image.open(tmp_path / "train" / "dog" / "1.png"))
    assert np.array_equal(ds.train.images[4], saved)


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist"),
    (lambda root: (root / "train").mkdir(parents=True), "no class subfolders"),
    (lambda root: [(root / p / "cat").mkdir(parents=True) for p in ("train", "test")], "holds no images"),
    (lambda root: _write_folder(root, size=64), "is 64x64"),
])
def test_bad_image_folders(tmp_path, make, message):
    root = tmp_path / "imgs"
    make(root)
    with pytest.raises(UserError, match=message):
        load(tiny(data=f"imagefolder:{root}"))


def test_unknown_source():
    with pytest.raises(UserError, match="unknown data source 'mnist'"):
        load(tiny(data="mnist"))


def test_absent_cifar10_offline_fails_fast_naming_the_folder(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load(tiny(data="cifar10", data_dir=tmp_path))
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py" in msg and "imagefolder:" in msg and "synthetic" in msg
