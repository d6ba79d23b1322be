"""The user's path end to end: quick ablation through papermill, then the table and figures notebooks."""
import ast
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cmxl.ablation import check_kernel, config_hash, plan
from cmxl.config import PRESETS
from cmxl.errors import UserError
from tests.conftest import ROOT, run_cli

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def quick(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    r = run_cli("ablate", "--profile", "quick", "--data-dir", data_dir, "--out", out, timeout=1200)
    return out, r


def _papermill(notebook: str, out: Path, **params) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / notebook), str(out), "-k", "cmxl",
            "--cwd", str(ROOT / "notebooks"), "-y", json.dumps(params)]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def test_quick_ablation_runs_every_preset_through_the_notebook(quick):
    out, r = quick
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "7 done, 0 skipped, 0 failed" in r.stdout
    assert "[7/7] CM-XL seed 1024" in r.stdout and "epoch   2/2" in r.stdout  # progress and per-epoch lines
    for name in PRESETS:
        (run_dir,) = (out / "quick" / name).iterdir()
        assert (run_dir / "metrics.json").exists()
        executed = json.loads((run_dir / "01_train.ipynb").read_text())
        text = json.dumps(executed["cells"])
        assert "epoch   2/2" in text and "image/png" in text  # printed epochs and the curves plot
    xl = json.loads(next((out / "quick" / "CM-XL").glob("*/config.json")).read_text())
    assert (xl["depth"], xl["inter_block_skip"], xl["data"], xl["epochs"]) == (66, True, "synthetic", 2)


def test_second_ablate_skips_every_finished_run(quick, data_dir):
    out, _ = quick
    r = run_cli("ablate", "--profile", "quick", "--data-dir", data_dir, "--out", out, timeout=300)
    assert r.returncode == 0 and "0 done, 7 skipped, 0 failed" in r.stdout
    assert r.stdout.count("already finished with this config, skipped") == 7


def test_table_notebook_builds_table1_from_saved_runs(quick, tmp_path):
    out, _ = quick
    r = _papermill("02_table1.ipynb", tmp_path / "table.ipynb", results_dir=str(out), profile="quick")
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "table1.csv") as f:
        header = f.readline()
        rows = list(csv.DictReader(f))
    assert "synthetic" in header and "NOT the paper's protocol" in header and "quick" in header
    assert [row["name"] for row in rows] == list(PRESETS)
    for row, (name, spec) in zip(rows, PRESETS.items()):
        assert 0 <= float(row["top1_mean"]) <= 100 and row["n"] == "1"
        assert float(row["paper_top1"]) == spec.paper_top1
    md = (out / "table1.md").read_text()
    assert "| CM-XL | SiLU | 66 | Yes | Yes |" in md and "94.52" in md and "NOT the paper's protocol" in md
    assert r"\begin{tabular}" in (out / "table1.tex").read_text()


def test_figures_notebook_renders_figures_3_to_6(quick, tmp_path):
    out, _ = quick
    figures = tmp_path / "figures"
    r = _papermill("03_figures.ipynb", tmp_path / "figs.ipynb", results_dir=str(out), profile="quick",
                   figures_dir=str(figures))
    assert r.returncode == 0, r.stderr[-2000:]
    for stem in ("fig3_val_accuracy", "fig4_val_accuracy_zoom", "fig5_correct", "fig6_misclassified"):
        png, pdf = figures / f"{stem}.png", figures / f"{stem}.pdf"
        with Image.open(png) as img:
            assert img.format == "PNG" and 800 <= img.width <= 3000 and 600 <= img.height <= 3000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    assert "image/png" in (tmp_path / "figs.ipynb").read_text()


def test_missing_configuration_shows_as_missing(tmp_path):
    from cmxl.report import table1
    rows = table1(tmp_path, "quick").rows
    assert all(r["n"] == 0 and r["top1_mean"] is None for r in rows)
    from cmxl.report import Table1
    assert "| missing |" in Table1("h", rows).markdown()


def test_one_failing_run_does_not_stop_the_others(data_dir, tmp_path):
    (bad, good) = plan("quick", ["CM-Vanilla", "CM-Vanilla-ReLU"], [1024], tmp_path, data_dir=str(data_dir))
    bad.run_dir.mkdir(parents=True)  # an unfinished run whose checkpoint is corrupt: resuming it fails
    (bad.run_dir / "config.json").write_text(json.dumps(bad.config.to_dict()))
    (bad.run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    r = run_cli("ablate", "--profile", "quick", "--configs", "CM-Vanilla,CM-Vanilla-ReLU", "--data-dir", data_dir,
                "--out", tmp_path, timeout=600)
    assert r.returncode == 1
    assert "1 done, 0 skipped, 1 failed" in r.stdout
    assert f"notebook: {bad.notebook}" in r.stdout and "error: UnpicklingError" in r.stdout
    assert (good.run_dir / "metrics.json").exists() and not (bad.run_dir / "metrics.json").exists()


def test_changed_config_gets_a_fresh_folder_and_data_location_does_not(tmp_path):
    (a,) = plan("quick", ["CM-XL"], [1024], tmp_path, data_dir="/x")
    (b,) = plan("quick", ["CM-XL"], [1024], tmp_path, data_dir="/y")
    (c,) = plan("quick", ["CM-XL"], [1025], tmp_path)
    (d,) = plan("paper", ["CM-XL"], [1024], tmp_path)
    assert a.run_dir == b.run_dir
    assert len({a.run_dir, c.run_dir, d.run_dir}) == 3
    assert config_hash(a.config) != config_hash(d.config)


def test_unknown_kernel_is_a_clear_error():
    with pytest.raises(UserError, match="make setup"):
        check_kernel("no-such-kernel")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stripped_and_have_one_plain_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    for stmt in ast.parse("".join(params[0]["source"])).body:  # only NAME = literal
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
        ast.literal_eval(stmt.value)


def test_train_notebook_parameters():
    nb = json.loads((ROOT / "notebooks" / "01_train.ipynb").read_text())
    (params,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    names = [s.targets[0].id for s in ast.parse("".join(params["source"])).body]
    assert names == ["config", "overrides", "data", "data_dir", "out_dir", "run_name", "seed", "resume"]
