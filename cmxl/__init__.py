"""cmxl: a reproduction of "Activations And Augmentations: Pushing The Limits Of Isotropic ConvNets" (Lee et al. 2023).

    import cmxl
    result = cmxl.train(cmxl.preset("CM-XL", epochs=5))
"""
from cmxl.config import PRESETS, RunConfig, parse_overrides, preset
from cmxl.errors import UserError
from cmxl.models import ConvMixer, ConvMixerXL, build_model, count_params
from cmxl.train import RunResult, evaluate, train

__all__ = ["PRESETS", "RunConfig", "parse_overrides", "preset", "UserError", "ConvMixer", "ConvMixerXL",
           "build_model", "count_params", "RunResult", "evaluate", "train"]
__version__ = "0.1.0"
