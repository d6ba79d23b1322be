import pytest
import timm
import torch
from torch import nn

from cmxl.config import preset
from cmxl.models import ConvMixer, ConvMixerXL, Residual, build_model, count_params


@pytest.mark.parametrize("model, expected", [
    (lambda: ConvMixer(256, 8), 594_186),        # Table 1: 0.59M
    (lambda: ConvMixerXL(256, 66), 4_855_562),   # Table 1: 4.9M
    (lambda: ConvMixer(256, 66), 4_855_562),     # CM-XL-NoSkip: the skips add no parameters
])
def test_exact_parameter_counts(model, expected):
    assert count_params(model()) == expected


@pytest.mark.parametrize("name, expected", [("CM-Vanilla", 594_186), ("CM-XL-NoSkip", 4_855_562),
                                            ("CM-XL", 4_855_562)])
def test_presets_build_the_papers_sizes(name, expected):
    assert count_params(build_model(preset(name))) == expected


def test_layer_order_is_conv_activation_batchnorm():
    m = ConvMixer(16, 2, kernel_size=5, patch_size=2, activation="SiLU")
    assert [type(x) for x in m.stem] == [nn.Conv2d, nn.SiLU, nn.BatchNorm2d]
    assert m.stem[0].kernel_size == (2, 2) and m.stem[0].stride == (2, 2)
    layer = m.blocks[0]
    residual, pointwise, act, bn = layer
    assert isinstance(residual, Residual)
    dw, dw_act, dw_bn = residual.fn
    assert dw.groups == 16 and dw.kernel_size == (5, 5) and dw.padding == "same"
    assert isinstance(dw_act, nn.SiLU) and isinstance(dw_bn, nn.BatchNorm2d)
    assert pointwise.kernel_size == (1, 1) and isinstance(act, nn.SiLU) and isinstance(bn, nn.BatchNorm2d)
    assert len(m.blocks) == 2 and m.head.out_features == 10


def test_xl_groups_layers_into_skip_period_long_skips():
    m = ConvMixerXL(8, 66, skip_period=3)
    assert len(m.blocks) == 3
    assert all(isinstance(g, Residual) and len(g.fn) == 22 for g in m.blocks)


def test_xl_forward_adds_the_group_input_to_its_output():
    torch.manual_seed(0)
    xl = ConvMixerXL(8, 6, skip_period=2).eval()
    x = torch.randn(2, 3, 32, 32)
    h = xl.stem(x)
    for group in xl.blocks:
        inner = h
        for layer in group.fn:
            inner = layer(inner)
        h = inner + h  # the long skip
    assert torch.allclose(xl(x), xl.head(xl.pool(h)), atol=1e-6)
    # and it is not the same function as the network without the long skips
    no_skip = xl.stem(x)
    for group in xl.blocks:
        no_skip = group.fn(no_skip)
    assert not torch.allclose(xl(x), xl.head(xl.pool(no_skip)), atol=1e-3)


def test_depth_not_divisible_by_skip_period_names_both_numbers():
    with pytest.raises(ValueError, match="64.*3"):
        ConvMixerXL(8, 64, skip_period=3)


@pytest.mark.parametrize("name, cls", [("GELU", nn.GELU), ("relu", nn.ReLU), ("SILU", nn.SiLU), ("swish", nn.SiLU),
                                       ("LeakyReLU", nn.LeakyReLU)])
def test_every_activation_case_insensitive(name, cls):
    m = ConvMixer(8, 1, activation=name)
    assert isinstance(m.stem[1], cls)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="GELU, ReLU, SiLU, LeakyReLU"):
        ConvMixer(8, 1, activation="tanh")


def test_timm_registered_variants():
    m = timm.create_model("convmixer_xl_256_66", num_classes=100)
    assert isinstance(m, ConvMixerXL) and m.head.out_features == 100 and isinstance(m.stem[1], nn.SiLU)
    assert count_params(timm.create_model("convmixer_256_8")) == 594_186
    for name in ("convmixer_256_8_relu", "convmixer_256_8_silu", "convmixer_256_66", "convmixer_xl_256_66_gelu"):
        assert name in timm.list_models("convmixer*")
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model("convmixer_256_8", pretrained=True)
