import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmxl.config import preset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One synthetic data folder for the whole session (written once, ~15 MB)."""
    from cmxl.data import write_synthetic

    d = tmp_path_factory.mktemp("data")
    write_synthetic(d / "synthetic")
    return d


def tiny(name="CM-Vanilla", data_dir=None, **overrides):
    """A preset shrunk to seconds on a CPU: same recipe, tiny width and depth."""
    base = dict(epochs=2, dim=32, depth=2, batch_size=64, workers=0, data="synthetic")
    if data_dir is not None:
        base["data_dir"] = str(data_dir)
    return preset(name, **(base | overrides))


_ENV = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def run_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    """`python -m cmxl ARGS` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "cmxl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_ENV)


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cmxl", *map(str, args)], env=_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
