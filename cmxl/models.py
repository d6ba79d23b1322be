"""ConvMixer and ConvMixer-XL, as in the paper, plus their timm registrations.

Every conv is followed by activation *then* BatchNorm (the paper's order, and the original ConvMixer's). ConvMixer-XL
is the same stack of layers with one extra identity skip around each of `skip_period` equal groups of layers: with
depth 66 and skip_period 3, each long skip spans 22 layers. The skips add no parameters, so CM-XL and CM-XL-NoSkip
both have 4,855,562.
"""
import torch
from torch import nn
from timm.models import register_model

from cmxl.config import RunConfig, canonical_activation
from cmxl.errors import UserError

_ACTIVATION_MODULES = {"GELU": nn.GELU, "ReLU": nn.ReLU, "SiLU": nn.SiLU, "LeakyReLU": nn.LeakyReLU}


def make_activation(name: str) -> nn.Module:
    return _ACTIVATION_MODULES[canonical_activation(name)]()


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


def mixer_layer(dim: int, kernel_size: int, activation: str) -> nn.Sequential:
    """One ConvMixer layer: residual depthwise conv (spatial mixing), then pointwise conv (channel mixing)."""
    return nn.Sequential(
        Residual(nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same"),
            make_activation(activation),
            nn.BatchNorm2d(dim),
        )),
        nn.Conv2d(dim, dim, kernel_size=1),
        make_activation(activation),
        nn.BatchNorm2d(dim),
    )


class ConvMixer(nn.Module):
    def __init__(self, dim: int, depth: int, kernel_size: int = 5, patch_size: int = 2, num_classes: int = 10,
                 activation: str = "GELU"):
        super().__init__()
        self.num_classes, self.num_features = num_classes, dim
        self.stem = nn.Sequential(
            nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size),
            make_activation(activation),
            nn.BatchNorm2d(dim),
        )
        self.blocks = self.arrange([mixer_layer(dim, kernel_size, activation) for _ in range(depth)])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        self.head = nn.Linear(dim, num_classes)

    def arrange(self, layers: list[nn.Module]) -> nn.Sequential:
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ConvMixerXL(ConvMixer):
    def __init__(self, dim: int, depth: int, kernel_size: int = 5, patch_size: int = 2, num_classes: int = 10,
                 activation: str = "GELU", skip_period: int = 3):
        if skip_period <= 0 or depth % skip_period:
            raise UserError(f"ConvMixerXL: depth {depth} is not divisible by skip_period {skip_period}")
        self.skip_period = skip_period
        super().__init__(dim, depth, kernel_size, patch_size, num_classes, activation)

    def arrange(self, layers: list[nn.Module]) -> nn.Sequential:
        span = len(layers) // self.skip_period
        return nn.Sequential(*[Residual(nn.Sequential(*layers[g * span:(g + 1) * span]))
                               for g in range(self.skip_period)])


def build_model(cfg: RunConfig, num_classes: int = 10) -> ConvMixer:
    common = dict(dim=cfg.dim, depth=cfg.depth, kernel_size=cfg.kernel_size, patch_size=cfg.patch_size,
                  num_classes=num_classes, activation=cfg.activation)
    if cfg.inter_block_skip:
        return ConvMixerXL(**common, skip_period=cfg.skip_period)
    return ConvMixer(**common)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# timm registrations: timm.create_model("convmixer_xl_256_66", num_classes=100). No pretrained weights ship with cmxl.
def _variant(cls, pretrained: bool, **kwargs) -> ConvMixer:
    if pretrained:
        raise UserError("cmxl ships no pretrained weights: create the model with pretrained=False and train it")
    for timm_only in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(timm_only, None)
    return cls(**kwargs)


@register_model
def convmixer_256_8(pretrained: bool = False, **kwargs) -> ConvMixer:
    """CM-Vanilla (GELU)."""
    return _variant(ConvMixer, pretrained, **{"dim": 256, "depth": 8, **kwargs})


@register_model
def convmixer_256_8_relu(pretrained: bool = False, **kwargs) -> ConvMixer:
    """CM-Vanilla-ReLU."""
    return _variant(ConvMixer, pretrained, **{"dim": 256, "depth": 8, "activation": "ReLU", **kwargs})


@register_model
def convmixer_256_8_silu(pretrained: bool = False, **kwargs) -> ConvMixer:
    """CM-Vanilla-SiLU."""
    return _variant(ConvMixer, pretrained, **{"dim": 256, "depth": 8, "activation": "SiLU", **kwargs})


@register_model
def convmixer_256_66(pretrained: bool = False, **kwargs) -> ConvMixer:
    """CM-XL-NoSkip: 66 layers, GELU, no inter-block skip."""
    return _variant(ConvMixer, pretrained, **{"dim": 256, "depth": 66, **kwargs})


@register_model
def convmixer_xl_256_66_gelu(pretrained: bool = False, **kwargs) -> ConvMixerXL:
    """CM-XL-Skip: 66 layers, GELU, inter-block skips every 22 layers."""
    return _variant(ConvMixerXL, pretrained, **{"dim": 256, "depth": 66, **kwargs})


@register_model
def convmixer_xl_256_66(pretrained: bool = False, **kwargs) -> ConvMixerXL:
    """CM-XL, the paper's best: 66 layers, SiLU, inter-block skips every 22 layers."""
    return _variant(ConvMixerXL, pretrained, **{"dim": 256, "depth": 66, "activation": "SiLU", **kwargs})
