"""The ablation: notebooks/01_train.ipynb once per (configuration, seed), one papermill process per run.

Runs go to OUT/<profile>/<preset>/seed<seed>-<hash>/, where the hash is of the resolved config (data folder aside):
a finished run with the same config is skipped, an unfinished one resumed, and a changed config gets a fresh folder,
never mixed with the old one. A failing run does not stop the others; the summary lists each run's fate.
"""
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cmxl.config import PRESETS, RunConfig, preset
from cmxl.errors import UserError

KERNEL = "cmxl"  # registered by `make setup`: python -m ipykernel install --sys-prefix --name cmxl
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_train.ipynb"

# quick: every preset at laptop-CPU scale. The XL presets keep depth 66: depth is what the ablation is about.
PROFILES = {
    "paper": dict(overrides={}, data="cifar10"),
    "quick": dict(overrides=dict(epochs=2, dim=16, batch_size=64, train_subset=1500, workers=0), data="synthetic"),
}


@dataclass
class Run:
    preset: str
    seed: int
    config: RunConfig
    run_dir: Path
    status: str = "pending"  # done | skipped | failed
    seconds: float = 0.0
    error: str = ""

    @property
    def notebook(self) -> Path:
        return self.run_dir / "01_train.ipynb"


def config_hash(cfg: RunConfig, ignore=("data_dir",)) -> str:
    """Eight hex digits naming a config; the data folder's location does not change what a run computes."""
    values = {k: v for k, v in cfg.to_dict().items() if k not in ignore}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def plan(profile: str, configs: list[str], seeds: list[int], out: Path, data: str | None = None,
         data_dir: str | None = None) -> list[Run]:
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}: use {' or '.join(PROFILES)}")
    spec = PROFILES[profile]
    runs = []
    for name in configs:
        cfg = preset(name, **spec["overrides"], data=data or spec["data"])
        for seed in seeds:
            seeded = replace(cfg, seed=seed, data_dir=str(Path(data_dir or cfg.data_dir).resolve())).validate()
            runs.append(Run(name, seed, seeded, out / profile / name / f"seed{seed}-{config_hash(seeded)}"))
    return runs


def check_kernel(kernel: str = KERNEL) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise UserError(f"Jupyter kernel {kernel!r} is not registered: run `make setup`, or "
                        f"`{sys.executable} -m ipykernel install --sys-prefix --name {kernel}`") from None
    # compare the bin folders, not resolved binaries: every venv's python links to the same base interpreter
    python = Path(spec.argv[0])
    if python.is_absolute() and python.parent != Path(sys.executable).parent:
        raise UserError(f"Jupyter kernel {kernel!r} runs {python}, not this environment's {sys.executable}: "
                        f"re-register it with `{sys.executable} -m ipykernel install --sys-prefix --name {kernel}`")


def _notebook_parameters(run: Run) -> dict:
    """The parameters cell's values that make 01_train.ipynb resolve exactly run.config."""
    cfg, base = run.config, preset(run.preset)
    overrides = {k: v for k, v in cfg.to_dict().items()
                 if v != getattr(base, k) and k not in ("seed", "data", "data_dir")}
    return dict(config=run.preset, overrides=overrides, data=cfg.data, data_dir=cfg.data_dir,
                out_dir=str(run.run_dir.parent.resolve()), run_name=run.run_dir.name, seed=run.seed, resume=True)


def _papermill_command(run: Run, kernel: str) -> list[str]:
    params = _notebook_parameters(run)
    return [sys.executable, "-m", "papermill", str(NOTEBOOK), str(run.notebook), "-k", kernel,
            "-y", json.dumps(params), "--cwd", str(NOTEBOOK.parent), "--no-progress-bar",
            "--log-level", "WARNING", "--stdout-file", "-"]


def _error_line(notebook: Path, stderr: str) -> str:
    """The error a failed run's executed notebook shows (ename: evalue), else papermill's last line."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"{out['ename']}: {out['evalue']}".splitlines()[0]
    except (OSError, ValueError, KeyError):
        pass
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "papermill failed without a message"


def execute(run: Run, kernel: str) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    proc = subprocess.run(_papermill_command(run, kernel), stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    run.seconds = time.monotonic() - start
    if proc.returncode == 0 and (run.run_dir / "metrics.json").exists():
        run.status = "done"
    else:
        run.status, run.error = "failed", _error_line(run.notebook, proc.stderr)


def ablate(profile: str = "paper", configs: list[str] | None = None, seeds: list[int] | None = None,
           out: str | Path = "results", data: str | None = None, data_dir: str | None = None,
           kernel: str = KERNEL) -> list[Run]:
    """Run every (configuration, seed) of the profile; return the runs with their status."""
    out = Path(out)
    runs = plan(profile, configs or list(PRESETS), seeds or [RunConfig.seed], out, data, data_dir)
    check_kernel(kernel)
    started = time.monotonic()
    for i, run in enumerate(runs, 1):
        head = f"[{i}/{len(runs)}] {run.preset} seed {run.seed} -> {run.run_dir}"
        if (run.run_dir / "metrics.json").exists():
            run.status = "skipped"
            print(f"{head}: already finished with this config, skipped", flush=True)
            continue
        resuming = (run.run_dir / "checkpoint.pt").exists()
        print(f"{head}{' (resuming)' if resuming else ''}", flush=True)
        execute(run, kernel)
        print(f"[{i}/{len(runs)}] {run.preset} seed {run.seed}: {run.status} in {run.seconds:.0f} s "
              f"(elapsed {time.monotonic() - started:.0f} s)" + (f": {run.error}" if run.error else ""), flush=True)
    print(summary(runs))
    return runs


def summary(runs: list[Run]) -> str:
    lines = ["", f"{'run':<48} status"]
    for r in runs:
        line = f"{r.preset + ' seed ' + str(r.seed):<48} {r.status}"
        if r.status == "failed":
            line += f"\n    notebook: {r.notebook}\n    error: {r.error}"
        lines.append(line)
    counts = {s: sum(r.status == s for r in runs) for s in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
