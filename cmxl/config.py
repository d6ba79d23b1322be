"""Every hyperparameter of a run, in one dataclass, with the paper's values as defaults.

The paper (Lee, Gupta, Sharma 2023, Section 3) and its public train.py fix the recipe; where the text and the code
disagree we follow the text (README lists each difference). A run saves its resolved RunConfig as config.json, and
that file alone is enough to run it again.
"""
import difflib
import json
import os
from dataclasses import asdict, dataclass, fields, replace

from cmxl.errors import UserError

ACTIVATIONS = ("GELU", "ReLU", "SiLU", "LeakyReLU")
AUG_BACKENDS = ("paper", "batched")
AMP_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class RunConfig:
    preset: str = "custom"  # which Table 1 row this started from; names the default run folder
    # optimisation: AdamW with the triangular one-cycle schedule, set every iteration
    epochs: int = 100
    batch_size: int = 128  # the text says 128; train.py's default is 64
    lr_max: float = 0.005
    weight_decay: float = 0.01
    clip_grad: bool = False  # clip the gradient norm at 1.0 (train.py's --clip-norm)
    # model
    dim: int = 256
    depth: int = 8
    kernel_size: int = 5
    patch_size: int = 2
    activation: str = "GELU"
    inter_block_skip: bool = False  # ConvMixer-XL: an identity skip around each of skip_period groups of layers
    skip_period: int = 3
    # augmentation (the paper's pipeline; see cmxl/augment.py)
    augment: bool = True
    scale: float = 0.75  # RandomResizedCrop scale lower bound
    ra_ops: int = 2
    ra_magnitude: int = 12
    jitter: float = 0.2
    erase_prob: float = 0.2
    aug_backend: str = "paper"  # paper: PIL transforms in DataLoader workers; batched: tensor ops on the device
    # data
    data: str = "cifar10"  # cifar10 | cifar100 | imagefolder:PATH | synthetic
    data_dir: str = "./data"
    train_subset: int = 0  # train on a seeded subset of this many images; 0 = all
    split_seed: int = 1024  # the test set's validation/test halves; fixed apart from seed so seeds share a test set
    # runtime
    seed: int = 1024  # the text says 1024; train.py hard-codes 1204
    workers: int = 8  # DataLoader workers, capped to the cores available
    device: str = "auto"  # auto = CUDA when present, else CPU
    amp: bool = True  # autocast to amp_dtype on CUDA; on the CPU only with bfloat16 (float16 there is slow)
    amp_dtype: str = "float16"  # float16 with a GradScaler, as train.py; bfloat16 (the fast path) needs no scaler
    channels_last: bool = True  # memory layout only; 1.76x the NCHW training speed of ConvMixer-256/8 on our CPU
    compile: bool = False  # torch.compile the model: faster steps after a compile of minutes

    def validate(self) -> "RunConfig":
        """Raise UserError naming the first bad value and how to fix it; return self when all is well."""
        for key in ("epochs", "batch_size", "lr_max", "dim", "depth", "kernel_size", "patch_size", "skip_period"):
            if getattr(self, key) <= 0:
                raise UserError(f"{key}={getattr(self, key)} must be > 0: use --set {key}=<positive number>")
        if self.weight_decay < 0:
            raise UserError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.train_subset < 0 or self.workers < 0:
            raise UserError("train_subset and workers must be >= 0 (train_subset=0 means the whole training set)")
        if not 0 < self.scale <= 1:
            raise UserError(f"scale={self.scale} must be in (0, 1]: it is RandomResizedCrop's smallest area fraction")
        if not 0 <= self.erase_prob <= 1:
            raise UserError(f"erase_prob={self.erase_prob} must be a probability in [0, 1]")
        if not 0 <= self.ra_magnitude <= 30 or self.ra_ops < 0:
            raise UserError(f"ra_magnitude={self.ra_magnitude} must be in 0..30 and ra_ops={self.ra_ops} >= 0")
        if self.jitter < 0:
            raise UserError(f"jitter={self.jitter} must be >= 0")
        canonical_activation(self.activation)
        if self.inter_block_skip and self.depth % self.skip_period:
            raise UserError(f"depth={self.depth} is not divisible by skip_period={self.skip_period}: "
                            f"the inter-block skips need equal groups; pick a depth that is a multiple of it")
        if 32 % self.patch_size:
            raise UserError(f"patch_size={self.patch_size} does not divide the 32-pixel image: use 1, 2, 4, 8, 16 or 32")
        if self.aug_backend not in AUG_BACKENDS:
            raise UserError(f"aug_backend={self.aug_backend!r} is unknown: choose one of {', '.join(AUG_BACKENDS)}")
        if self.amp_dtype not in AMP_DTYPES:
            raise UserError(f"amp_dtype={self.amp_dtype!r} is unknown: choose one of {', '.join(AMP_DTYPES)}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise UserError(f"device={self.device!r} is unknown: use auto, cpu or cuda[:N]")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise UserError(_unknown_key_message(key))
        return cls(**values)

    def workers_used(self) -> int:
        return min(self.workers, len(os.sched_getaffinity(0)))


def canonical_activation(name: str) -> str:
    """Case-insensitive activation name -> its canonical spelling ('silu' -> 'SiLU'); 'Swish' is SiLU."""
    lookup = {a.lower(): a for a in ACTIVATIONS} | {"swish": "SiLU"}
    if str(name).lower() not in lookup:
        raise UserError(f"activation {name!r} is unknown: choose one of {', '.join(ACTIVATIONS)}")
    return lookup[str(name).lower()]


@dataclass(frozen=True)
class Preset:
    """A row of Table 1: its settings and what the paper reported for it."""
    name: str
    overrides: dict
    paper_params_m: float
    paper_top1: float  # percent


_XL = dict(depth=66, inter_block_skip=True)
PRESETS = {p.name: p for p in (
    Preset("CM-Vanilla-NoAug", dict(augment=False), 0.59, 88.54),
    Preset("CM-Vanilla", {}, 0.59, 93.78),
    Preset("CM-Vanilla-ReLU", dict(activation="ReLU"), 0.59, 93.84),
    Preset("CM-Vanilla-SiLU", dict(activation="SiLU"), 0.59, 93.72),
    Preset("CM-XL-NoSkip", dict(depth=66), 4.9, 48.68),
    Preset("CM-XL-Skip", _XL, 4.9, 94.22),
    Preset("CM-XL", _XL | dict(activation="SiLU"), 4.9, 94.52),
)}


def preset(name: str, **overrides) -> RunConfig:
    """The named Table 1 configuration with overrides applied (values already typed, or strings to parse)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"unknown preset {name!r}: {hint}`cmxl configs` lists them ({', '.join(PRESETS)})")
    cfg = RunConfig(preset=name, **PRESETS[name].overrides)
    return apply_overrides(cfg, overrides).validate()


def apply_overrides(cfg: RunConfig, overrides: dict) -> RunConfig:
    types = {f.name: f.type for f in fields(RunConfig)}
    typed = {}
    for key, value in overrides.items():
        if key not in types:
            raise UserError(_unknown_key_message(key))
        typed[key] = parse_value(key, value, types[key])
    if "activation" in typed:
        typed["activation"] = canonical_activation(typed["activation"])
    return replace(cfg, **typed)


def parse_overrides(overrides, **explicit) -> dict:
    """Notebook parameters -> preset() overrides: a dict or a JSON string (as `papermill -p overrides '{...}'`
    passes it), with explicit keyword values (the notebook's own `seed`) taking precedence."""
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides or "{}")
        except json.JSONDecodeError as exc:
            raise UserError(f"overrides {overrides!r} is not JSON ({exc.msg}): write it like '{{\"epochs\": 5}}'") from None
    if not isinstance(overrides, dict):
        raise UserError(f"overrides must be a dict of config keys, got {type(overrides).__name__}")
    return {**overrides, **explicit}


def parse_assignments(pairs: list[str]) -> dict:
    """['epochs=5', 'dim=64'] -> {'epochs': '5', 'dim': '64'} (typed later, by apply_overrides)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {pair!r} is not KEY=VALUE: write it like --set epochs=5 dim=64")
        out[key.strip()] = value.strip()
    return out


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_value(key: str, value, typ):
    typ = {"int": int, "float": float, "bool": bool, "str": str}.get(typ, typ)
    if not isinstance(value, str):
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
            return value
        raise UserError(f"{key}={value!r} should be of type {typ.__name__}")
    if typ is bool:
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise UserError(f"{key}={value!r} is not a boolean: use true or false")
    try:
        return typ(value)
    except ValueError:
        example = RunConfig.__dataclass_fields__[key].default
        raise UserError(f"{key}={value!r} is not a valid {typ.__name__}: e.g. --set {key}={example}") from None


def _unknown_key_message(key: str) -> str:
    names = [f.name for f in fields(RunConfig)]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown config key {key!r}: {hint}`cmxl configs` shows every key"
