import json

import pytest

from cmxl.cli import main
from tests.conftest import run_cli

@pytest.mark.parametrize("args, message", [
    (["train", "--config", "CM-Vanila"], "unknown preset 'CM-Vanila': did you mean CM-Vanilla"),
    (["train", "--config", "CM-XL", "--set", "epoch=5"], "unknown config key 'epoch': did you mean epochs"),
    (["train", "--config", "CM-XL", "--set", "epochs"], "--set 'epochs' is not KEY=VALUE"),
    (["train", "--config", "CM-XL", "--set", "dim=wide"], "dim='wide' is not a valid int"),
    (["train", "--config", "CM-XL", "--set", "epochs=0"], "epochs=0 must be > 0"),
    (["train", "--config", "CM-XL", "--set", "batch_size=0"], "batch_size=0 must be > 0"),
    (["train", "--config", "CM-XL", "--set", "lr_max=-1"], "lr_max=-1.0 must be > 0"),
    (["train", "--config", "CM-XL", "--set", "activation=mish"], "activation 'mish' is unknown"),
    (["train", "--config", "CM-XL", "--set", "depth=65"], "depth=65 is not divisible by skip_period=3"),
    (["train", "--config", "CM-XL", "--set", "patch_size=5"], "patch_size=5 does not divide"),
    (["train", "--config", "CM-XL", "--data", "mnist"], "unknown data source 'mnist'"),
    (["train", "--config", "CM-XL", "--data", "imagefolder:/nonexistent/x"], "does not exist"),
    (["train"], "the following arguments are required: --config"),
    (["evaluate", "/nonexistent/checkpoint.pt"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_no_run(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] == "train":
        args = args + ["--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cmxl: error: ") and message in err
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.rglob("config.json"))


def test_empty_image_folder(tmp_path, capsys):
    for part in ("train", "test"):
        (tmp_path / "imgs" / part / "cat").mkdir(parents=True)
    assert main(["train", "--config", "CM-Vanilla", "--data", f"imagefolder:{tmp_path / 'imgs'}",
                 "--out", str(tmp_path)]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_absent_cifar10_offline_from_a_real_process(tmp_path):
    """No network here (nor in CI): the real download attempt fails fast, one line, exit 2, no traceback."""
    r = run_cli("train", "--config", "CM-Vanilla", "--data-dir", tmp_path / "data", "--out", tmp_path / "out",
                timeout=60)
    if r.returncode == 0:
        pytest.skip("this machine can download CIFAR-10")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "cifar-10-batches-py" in r.stderr and not (tmp_path / "out").exists()


def test_train_then_evaluate_from_the_command_line(data_dir, tmp_path):
    r = run_cli("train", "--config", "CM-XL", "--set", "epochs=1", "dim=8", "--set", "depth=3", "workers=0",
                "--data", "synthetic", "--data-dir", data_dir, "--out", tmp_path, "--name", "xl")
    assert r.returncode == 0, r.stderr
    assert "epoch   1/1" in r.stdout and "SYNTHETIC" in r.stdout
    cfg = json.loads((tmp_path / "xl" / "config.json").read_text())
    assert (cfg["preset"], cfg["epochs"], cfg["dim"], cfg["depth"], cfg["inter_block_skip"]) == ("CM-XL", 1, 8, 3, True)
    metrics = json.loads((tmp_path / "xl" / "metrics.json").read_text())
    e = run_cli("evaluate", tmp_path / "xl" / "checkpoint.pt")
    assert e.returncode == 0 and f"{metrics['test_top1']:.2f}%" in e.stdout


def test_configs_lists_presets_with_paper_numbers(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert "CM-XL " in out and "94.52%" in out and "88.54%" in out and "lr_max" in out
