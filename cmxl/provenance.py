"""Where and with what a run was made: enough to tell two runs' circumstances apart."""
import os
import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

_PACKAGES = ("cmxl", "torch", "torchvision", "timm", "numpy", "pillow")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def provenance(device: torch.device, started: float, ended: float | None = None) -> dict:
    status = _git("status", "--porcelain")
    return dict(
        git_commit=_git("rev-parse", "HEAD"),
        git_dirty=None if status is None else bool(status),
        packages={name: _version(name) for name in _PACKAGES},
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda if torch.cuda.is_available() else None,
        device=str(device),
        device_name=device_name(device),
        host=socket.gethostname(),
        cpu_count=len(os.sched_getaffinity(0)),
        started=_stamp(started),
        ended=_stamp(ended) if ended else None,
    )
