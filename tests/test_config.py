import json

import pytest

from cmxl.config import PRESETS, RunConfig, apply_overrides, parse_assignments, preset
from cmxl.errors import UserError
from cmxl.train import lr_at


def test_defaults_are_the_papers_recipe():
    c = RunConfig()
    assert (c.seed, c.batch_size, c.epochs, c.lr_max, c.weight_decay) == (1024, 128, 100, 0.005, 0.01)
    assert (c.dim, c.kernel_size, c.patch_size, c.activation) == (256, 5, 2, "GELU")
    assert (c.augment, c.scale, c.ra_ops, c.ra_magnitude, c.jitter, c.erase_prob) == (True, 0.75, 2, 12, 0.2, 0.2)
    assert (c.clip_grad, c.workers, c.device, c.amp) == (False, 8, "auto", True)


def test_workers_are_capped_to_the_cores():
    import os
    assert RunConfig(workers=10_000).workers_used() == len(os.sched_getaffinity(0))


def test_seven_table1_presets_in_order_with_paper_numbers():
    assert list(PRESETS) == ["CM-Vanilla-NoAug", "CM-Vanilla", "CM-Vanilla-ReLU", "CM-Vanilla-SiLU",
                             "CM-XL-NoSkip", "CM-XL-Skip", "CM-XL"]
    assert PRESETS["CM-XL"].paper_top1 == 94.52 and PRESETS["CM-XL"].paper_params_m == 4.9
    xl = preset("CM-XL")
    assert (xl.depth, xl.inter_block_skip, xl.activation, xl.augment) == (66, True, "SiLU", True)
    noaug = preset("CM-Vanilla-NoAug")
    assert (noaug.depth, noaug.augment, noaug.activation) == (8, False, "GELU")
    noskip = preset("CM-XL-NoSkip")
    assert (noskip.depth, noskip.inter_block_skip, noskip.activation) == (66, False, "GELU")


def test_overrides_are_parsed_to_the_field_type():
    c = preset("CM-Vanilla", **parse_assignments(["epochs=5", "lr_max=1e-3", "augment=false", "activation=silu",
                                                  "device=cpu"]))
    assert (c.epochs, c.lr_max, c.augment, c.activation, c.device) == (5, 0.001, False, "SiLU", "cpu")
    assert preset("CM-Vanilla", epochs=3, lr_max=1).lr_max == 1.0


def test_saved_config_round_trips():
    c = preset("CM-XL", epochs=7)
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("overrides, message", [
    ({"epoch": "5"}, "did you mean epochs"),
    ({"epochs": "five"}, "not a valid int"),
    ({"augment": "maybe"}, "not a boolean"),
    ({"epochs": "0"}, "epochs=0 must be > 0"),
    ({"batch_size": "-1"}, "batch_size=-1 must be > 0"),
    ({"lr_max": "0"}, "lr_max=0.0 must be > 0"),
    ({"activation": "tanh"}, "choose one of GELU, ReLU, SiLU, LeakyReLU"),
    ({"patch_size": "3"}, "patch_size=3 does not divide"),
    ({"aug_backend": "gpu"}, "aug_backend"),
])
def test_bad_overrides_are_one_clear_error(overrides, message):
    with pytest.raises(UserError, match=message):
        preset("CM-Vanilla", **overrides)


def test_depth_not_divisible_by_skip_period_is_rejected_for_xl_only():
    with pytest.raises(UserError, match="depth=64 is not divisible by skip_period=3"):
        preset("CM-XL", depth=64)
    assert preset("CM-XL-NoSkip", depth=64).depth == 64


def test_unknown_preset_suggests_a_close_name():
    with pytest.raises(UserError, match="did you mean CM-XL-Skip"):
        preset("CM-XL-Skp")


def test_malformed_assignment():
    with pytest.raises(UserError, match="not KEY=VALUE"):
        parse_assignments(["epochs5"])


def test_unknown_key_in_apply_overrides():
    with pytest.raises(UserError, match="did you mean dim"):
        apply_overrides(RunConfig(), {"dims": 3})


def test_schedule_values():
    E, lr = 100, 0.005
    assert lr_at(0, E, lr) == 0
    assert lr_at(0.4 * E, E, lr) == pytest.approx(lr)
    assert lr_at(0.8 * E, E, lr) == pytest.approx(lr / 20)
    assert lr_at(E, E, lr) == 0
    assert lr_at(0.2 * E, E, lr) == pytest.approx(lr / 2)  # linear in between
    assert lr_at(0.6 * E, E, lr) == pytest.approx((lr + lr / 20) / 2)
