"""The paper's augmentation pipeline as a few tensor operations over the whole batch, on the training device.

`BatchedAugment(cfg)(images_u8)` stands in for cmxl.augment.train_transform(cfg) applied image by image:
RandomResizedCrop(32, scale=(scale, 1), ratio=(1, 1)) -> RandomHorizontalFlip -> RandAugment(ra_ops, ra_magnitude,
31 bins) -> ColorJitter(jitter, jitter, jitter) -> ToTensor -> Normalize -> RandomErasing(erase_prob, value 0).
Every image still draws its own parameters, from the distributions torchvision's samplers use, but they are drawn
for the whole batch at once, and each op runs once, on the images that drew it: there is no per-image Python loop.
Finding those images reads a few small masks on the host, so on a GPU cmxl augments a large chunk of the epoch per
call (cmxl.loaders.BatchedLoader) rather than each training batch.

Pixels stay float32 holding uint8 values (0..255) until Normalize, and every op quantises where the uint8 kernels
do (blends truncate, resampling rounds), so the results are integer-exact rather than close: every RandAugment and
ColorJitter op gives exactly what torchvision.transforms.v2's uint8 tensor kernel gives (including its nearest
neighbour picks for shear, translate and rotate), and the resized crop gives exactly PIL's bilinear resize (which
torchvision's CPU uint8 resize also reproduces; its float path, used on CUDA, is within one grey level). That is on
the CPU, where it is tested; on CUDA the same float32 arithmetic may round a blend the other way in rare pixels.

The paper runs the PIL kernels, which differ from torchvision's tensor kernels in a few places: PIL's Color and
Contrast use its own rounded integer luma (and Contrast a rounded mean), one grey level off in ~15-20% of pixels;
PIL's nearest-neighbour affine computes in 16.16 fixed point and breaks half-pixel ties the other way, so ~1.5% of
pixels of a shear (~0.1% of a rotation) take a neighbouring pixel; autocontrast scales by 255 / (max - min) where v2
divides by (max - min) / 255, one level off in ~0.3% of pixels. None of these shift the output statistics measurably.
The random streams differ from the paper's: the same seed gives other draws, from the same distributions.

Sections: sampling (functions (n, generator, cfg, device) -> params), the batched ops (pure functions
(images, params) -> images), then the pipeline.
"""
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from cmxl.config import RunConfig
from cmxl.data import CIFAR10_MEAN, CIFAR10_STD

SIZE = 32  # CIFAR images: square, so torchvision's width and height conventions coincide
TRIES = 10  # RandomResizedCrop and RandomErasing each try this many boxes before giving up
CROP_RATIO = (1.0, 1.0)
FLIP_P = 0.5
ERASE_SCALE, ERASE_RATIO = (0.02, 0.33), (0.3, 3.3)
NUM_BINS = 31
RA_OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
          "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")  # torchvision's order: op k is RA_OPS[k]


class Box(NamedTuple):  # (N,) int64 each; an empty box (height 0) leaves its image alone
    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor


class RandAugmentParams(NamedTuple):
    ops: torch.Tensor  # (N, ra_ops) int64: index into RA_OPS, applied in column order
    negate: torch.Tensor  # (N, ra_ops) bool: flip the magnitude's sign; signed ops only, as torchvision


class JitterParams(NamedTuple):
    factors: torch.Tensor  # (N, 3) float32: brightness, contrast, saturation factors
    order: torch.Tensor  # (N, 3) int64: order[:, k] is the adjustment applied k-th (0, 1, 2 as in factors)


def ra_magnitudes(magnitude: int, num_bins: int = NUM_BINS) -> dict[str, tuple[float, bool]]:
    """op -> (magnitude at this bin, signed), as RandAugment._augmentation_space; the same float32 linspace, so the
    values are bit-identical to torchvision's."""
    def bins(end: float, start: float = 0.0) -> float:
        return float(torch.linspace(start, end, num_bins)[magnitude])

    bits = 8 - (torch.arange(num_bins) / ((num_bins - 1) / 4)).round().int()
    shift = bins(150.0 / 331.0 * SIZE)
    return {"Identity": (0.0, False), "ShearX": (bins(0.3), True), "ShearY": (bins(0.3), True),
            "TranslateX": (shift, True), "TranslateY": (shift, True), "Rotate": (bins(30.0), True),
            "Brightness": (bins(0.9), True), "Color": (bins(0.9), True), "Contrast": (bins(0.9), True),
            "Sharpness": (bins(0.9), True), "Posterize": (float(bits[magnitude]), False),
            "Solarize": (bins(0.0, 255.0), False), "AutoContrast": (0.0, False), "Equalize": (0.0, False)}


# ---------------------------------------------------------------------------------------------------------- sampling
# Each sampler draws on `generator`'s device (or `device` with the default generator when there is none). Parameters
# torchvision draws only on some branch (a position after a successful try, a sign for signed ops) are drawn for
# every image here and ignored where unused: the distribution of what is used is the same.

def _draw_device(generator: Optional[torch.Generator], device) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def _box_tries(n, generator, device, scale, ratio) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, TRIES) candidate sides (round(sqrt(area * r)), round(sqrt(area / r))): area a uniform fraction in `scale`
    of the image, log r uniform in log(ratio), as RandomResizedCrop and RandomErasing draw them."""
    u = torch.rand(n, TRIES, 2, generator=generator, device=device)
    area = SIZE * SIZE * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(lo + (hi - lo) * u[..., 1])
    # torch.round, like Python's round, rounds half to even
    return torch.sqrt(area * r).round().long(), torch.sqrt(area / r).round().long()


def _first_valid(valid: torch.Tensor, *sides: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(found (N,), then each side at the first valid try (N,)); argmax returns the first maximum."""
    k = valid.byte().argmax(1, keepdim=True)
    return (valid.any(1), *(s.gather(1, k).squeeze(1) for s in sides))


def _place(n, generator, device, height, width) -> Box:
    """A uniform integer position for each box, as torch.randint(0, SIZE - side + 1)."""
    u = torch.rand(n, 2, generator=generator, device=device)
    free_h, free_w = SIZE - height, SIZE - width
    top = torch.minimum((u[:, 0] * (free_h + 1)).long(), free_h)  # the minimum guards float rounding up to the edge
    left = torch.minimum((u[:, 1] * (free_w + 1)).long(), free_w)
    return Box(top, left, height, width)


def sample_crop(n: int, generator: Optional[torch.Generator], cfg: RunConfig, device="cpu") -> Box:
    """RandomResizedCrop.get_params(scale=(cfg.scale, 1), ratio=(1, 1)): the first of TRIES boxes that fits."""
    dev = _draw_device(generator, device)
    w, h = _box_tries(n, generator, dev, (cfg.scale, 1.0), CROP_RATIO)
    found, h, w = _first_valid((w > 0) & (w <= SIZE) & (h > 0) & (h <= SIZE), h, w)
    # torchvision's fallback is a central crop of the allowed ratio: for a square image and ratio 1, the whole image
    h, w = torch.where(found, h, SIZE), torch.where(found, w, SIZE)
    return _place(n, generator, dev, h, w)


def sample_flip(n: int, generator: Optional[torch.Generator], cfg: RunConfig, device="cpu") -> torch.Tensor:
    """(N,) bool: RandomHorizontalFlip's torch.rand(1) < 0.5. The paper fixes p, so cfg goes unused; it keeps the
    samplers' signature uniform."""
    return torch.rand(n, generator=generator, device=_draw_device(generator, device)) < FLIP_P


def sample_rand_augment(n: int, generator: Optional[torch.Generator], cfg: RunConfig,
                        device="cpu") -> RandAugmentParams:
    """Per slot, an op uniform over the 14 and a sign (torch.randint(2) == 1 negates) for the signed ones."""
    dev = _draw_device(generator, device)
    ops = torch.randint(len(RA_OPS), (n, cfg.ra_ops), generator=generator, device=dev)
    return RandAugmentParams(ops, torch.rand(n, cfg.ra_ops, generator=generator, device=dev) < 0.5)


def sample_jitter(n: int, generator: Optional[torch.Generator], cfg: RunConfig, device="cpu") -> JitterParams:
    """ColorJitter.get_params: each factor uniform in [max(0, 1 - j), 1 + j], applied in the order of randperm(4).
    Hue (index 3) is None, so only the relative order of the other three matters, and that order, of a uniform
    permutation of four, is a uniform permutation of three: drawn here as the argsort of three uniforms."""
    dev = _draw_device(generator, device)
    lo, hi = max(0.0, 1.0 - cfg.jitter), 1.0 + cfg.jitter
    factors = lo + (hi - lo) * torch.rand(n, 3, generator=generator, device=dev)
    return JitterParams(factors, torch.rand(n, 3, generator=generator, device=dev).argsort(1))


def sample_erase(n: int, generator: Optional[torch.Generator], cfg: RunConfig, device="cpu") -> Box:
    """RandomErasing: with probability erase_prob, the first of TRIES boxes with both sides below the image's
    (note h = round(sqrt(area * r)) here, the other way round from the crop); an empty box otherwise."""
    dev = _draw_device(generator, device)
    erase = torch.rand(n, generator=generator, device=dev) < cfg.erase_prob
    h, w = _box_tries(n, generator, dev, ERASE_SCALE, ERASE_RATIO)
    found, h, w = _first_valid((h < SIZE) & (w < SIZE), h, w)
    keep = erase & found
    return _place(n, generator, dev, torch.where(keep, h, 0), torch.where(keep, w, 0))


# ------------------------------------------------------------------------------------------------------ batched ops
# Images are (N, C, H, W) float32 with uint8 values; per-image parameters are (N,) tensors (or plain numbers).

def _per_image(v, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)


def _resample_matrix(start: torch.Tensor, length: torch.Tensor, flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(N, SIZE, SIZE) matrices R with out = R @ row: linear resampling of each image's span start .. start + length
    - 1 to the full size, bilinear with align_corners=False, as PIL's filter when enlarging. Output o reads
    c = (o + 0.5) * length / SIZE - 0.5, clamped into the span; c is a multiple of 1 / (2 * SIZE), so for uint8
    values the weighted sum is exact in float32. A flip after the resize is the same matrix with its rows reversed."""
    n, device = len(start), start.device
    o = torch.arange(SIZE, device=device, dtype=torch.float32) + 0.5
    start, length = start.float()[:, None], length.float()[:, None]
    c = torch.minimum((o * length / SIZE - 0.5).clamp(min=0), length - 1) + start  # (N, SIZE)
    i0 = c.floor()
    frac = c - i0
    i0 = i0.long()
    i1 = (i0 + 1).clamp(max=SIZE - 1)  # where i0 is the last column frac is 0
    r = torch.zeros(n, SIZE, SIZE, device=device)
    r.scatter_add_(2, i0[..., None], (1 - frac)[..., None]).scatter_add_(2, i1[..., None], frac[..., None])
    if flip is not None:
        r = torch.where(flip[:, None, None], r.flip(1), r)
    return r


def resized_crop(x: torch.Tensor, box: Box, flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Crop each image to its box and resize it back to the full size with PIL's bilinear resampling, the paper's:
    two separable passes, horizontal first, each rounded to integers (half up) as PIL stores the intermediate image
    in uint8; `flip` (N,) bool then mirrors the chosen images (RandomHorizontalFlip) at no extra cost. Each pass is
    one batched matrix product. PIL's filter, like torchvision's antialiased one, is plain bilinear interpolation when
    enlarging (the crop is never larger than the image). torchvision's tensor path interpolates both axes before one
    rounding (half to even), so it differs from this (and from PIL) by one grey level in places."""
    cols = _resample_matrix(box.left, box.width, flip)[:, None]  # (N, 1, SIZE, SIZE)
    rows = _resample_matrix(box.top, box.height)[:, None]
    x = torch.matmul(x, cols.transpose(-1, -2)).add_(0.5).floor_()
    return torch.matmul(rows, x).add_(0.5).floor_()


def inverse_affine(angle=0.0, translate=(0.0, 0.0), shear=(0.0, 0.0), center=(0.0, 0.0)) -> torch.Tensor:
    """torchvision's _get_inverse_affine_matrix at scale 1, batched: (N, 2, 3) float64 maps from output to input
    pixel coordinates measured from the image centre. Angles in degrees; each argument a number or an (N,) tensor."""
    values = (angle, *translate, *shear, *center)
    device = next((v.device for v in values if torch.is_tensor(v)), None)
    angle, tx, ty, sx, sy, cx, cy = torch.broadcast_tensors(
        *(torch.as_tensor(v, dtype=torch.float64, device=device) for v in values))
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(sx), torch.deg2rad(sy)
    # rotation-shear [[a, b], [c, d]] (determinant 1), inverted, then the inverse translation and the centre shift
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = m0 * (-cx - tx) + m1 * (-cy - ty) + cx
    m5 = m3 * (-cx - tx) + m4 * (-cy - ty) + cy
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=-1).reshape(-1, 2, 3)


# RandAugment's geometric ops as inverse matrices of their signed magnitude m, with _apply_op's arguments: shears
# about the top-left corner with angle atan(m), translations by int(m) pixels, rotations by m degrees about the centre
_CORNER = (-SIZE / 2, -SIZE / 2)  # pixel (0, 0) measured from the centre
GEOMETRIC = {
    "ShearX": lambda m: inverse_affine(shear=(torch.rad2deg(torch.atan(m)), 0.0), center=_CORNER),
    "ShearY": lambda m: inverse_affine(shear=(0.0, torch.rad2deg(torch.atan(m))), center=_CORNER),
    "TranslateX": lambda m: inverse_affine(translate=(m.trunc(), 0.0)),
    "TranslateY": lambda m: inverse_affine(translate=(0.0, m.trunc())),
    "Rotate": lambda m: inverse_affine(angle=-m),  # F.rotate turns counter-clockwise, affine's angle clockwise
}


def affine_nearest(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample each image through its (N, 2, 3) inverse matrix with nearest neighbours, 0 outside: the grid is
    built exactly as torchvision.transforms.v2's _affine_grid (float32, then normalised), so the picks match."""
    n, _, h, w = x.shape
    base = torch.ones(h, w, 3, device=x.device, dtype=x.dtype)
    base[..., 0] = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=x.device)
    base[..., 1] = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=x.device)[:, None]
    theta = matrix.to(device=x.device, dtype=x.dtype).transpose(1, 2)
    theta = theta / torch.tensor([0.5 * w, 0.5 * h], device=x.device, dtype=x.dtype)
    grid = base.reshape(1, h * w, 3).expand(n, -1, -1).bmm(theta).reshape(n, h, w, 2)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    # torchvision's luma for uint8 images, floored, in its operation order so the floor lands on the same side
    r, g, b = x.unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1).floor_()


def _weights(ratio, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # torchvision gets 1 - ratio from the Python float (float64) and only then rounds both to float32; 1 - ratio
    # in float32 can differ by an ulp (ratio = 1 + a float32 magnitude), enough to move a truncation
    ratio = torch.as_tensor(ratio, dtype=torch.float64, device=x.device)
    return _per_image(ratio, x), _per_image(1 - ratio, x)


def _blend(x: torch.Tensor, other: torch.Tensor, ratio) -> torch.Tensor:
    # torchvision computes x * r, then adds other * (1 - r) in one fused multiply-add (add_ with alpha); addcmul
    # rounds the same way, so the truncation below agrees even where the blend lands on an integer
    keep, mix = _weights(ratio, x)
    return torch.addcmul(x * keep, other, mix).clamp_(0, 255).floor_()  # uint8 kernels truncate


def adjust_brightness(x: torch.Tensor, factor) -> torch.Tensor:
    return (x * _per_image(factor, x)).clamp_(0, 255).floor_()


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    return _blend(x, _gray(x), factor)


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_sharpness(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend the interior with a 3x3 smoothing (1s around a 5, over 13, rounded); the border pixels stay.

    The smoothing is an integer sum S over 13, and S / 13 is never within 1/26 of a half, so rounding it after exact
    integer adds gives what torchvision's float conv2d rounds to, at a fraction of the cost on the CPU."""
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    inner = x[..., 1:-1, 1:-1]
    blurred = ((rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:] + 4 * inner) / 13).round_()
    out = x.clone()
    out[..., 1:-1, 1:-1] = torch.addcmul(inner, blurred - inner, _weights(factor, x)[1])  # as _blend
    return out.clamp_(0, 255).floor_()


def posterize(x: torch.Tensor, bits) -> torch.Tensor:
    step = torch.exp2(8 - _per_image(bits, x))  # keeping the top `bits` bits = flooring to a multiple of 2**(8-bits)
    return (x / step).floor_() * step


def solarize(x: torch.Tensor, threshold) -> torch.Tensor:
    return torch.where(x >= _per_image(threshold, x), 255 - x, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel to 0..255; constant channels stay."""
    lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    flat = hi == lo
    scale = torch.where(flat, 1.0, (hi - lo) * (1.0 / 255))  # torchvision multiplies by 1/255 rather than divide
    return ((x - torch.where(flat, 0.0, lo)) / scale).clamp_(0, 255).floor_()


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Per channel, PIL's equalisation (as torchvision ports it): lut[k] = (cum[k-1] + step // 2) // step with
    step = (pixels below the channel's maximum) // 255; channels where step is 0 stay."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).long()
    # one bincount over all channels at once, each channel's values offset into its own 256 bins (without weights
    # it is deterministic on CUDA too)
    offset = 256 * torch.arange(n * c, device=x.device)[:, None]
    hist = torch.bincount((flat + offset).reshape(-1), minlength=n * c * 256).reshape(n * c, 256)
    below_max = h * w - hist.gather(1, flat.amax(1, keepdim=True))
    step = below_max // 255
    lut = ((hist.cumsum(1)[:, :-1] + step // 2) // step.clamp(min=1)).clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], dim=1).to(x.dtype)
    out = torch.where(step > 0, lut.gather(1, flat), flat.to(x.dtype))
    return out.reshape_as(x)


# RandAugment's pixel ops, with _apply_op's arguments from the signed magnitude m
PIXEL = {
    "Brightness": lambda x, m: adjust_brightness(x, 1 + m),
    "Color": lambda x, m: adjust_saturation(x, 1 + m),
    "Contrast": lambda x, m: adjust_contrast(x, 1 + m),
    "Sharpness": lambda x, m: adjust_sharpness(x, 1 + m),
    "Posterize": lambda x, m: posterize(x, m.trunc()),
    "Solarize": lambda x, m: solarize(x, m),
    "AutoContrast": lambda x, m: autocontrast(x),
    "Equalize": lambda x, m: equalize(x),
}


def ra_tables(magnitude: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RandAugment at one magnitude bin as lookup tables indexed [op, negate]: the signed magnitude (14, 2) and the
    inverse matrix (14, 2, 2, 3), the identity for non-geometric ops. The magnitude is fixed by the config, so every
    image's parameters are one gather from these rather than per-image trigonometry on the device."""
    table = ra_magnitudes(magnitude)
    magnitudes = torch.tensor([[m, -m if signed else m] for m, signed in (table[op] for op in RA_OPS)],
                              dtype=torch.float64)
    matrices = torch.eye(2, 3, dtype=torch.float64).repeat(len(RA_OPS), 2, 1, 1)
    for name, make in GEOMETRIC.items():
        matrices[RA_OPS.index(name)] = make(magnitudes[RA_OPS.index(name)])
    return magnitudes, matrices


def _apply_chosen(x: torch.Tensor, chosen: torch.Tensor, fn, *params: torch.Tensor) -> torch.Tensor:
    """x with fn applied, in place, to the images where `chosen` (N,) is true; fn sees only those images and their
    params. Finding them (nonzero) reads `chosen` on the host, which is why cmxl augments whole chunks of an epoch
    at a time on a GPU, not one training batch: the few reads per chunk cost nothing, and each op does only the
    work of the images that drew it (a batch-wide op kept by torch.where would do 14 times the work)."""
    index = chosen.nonzero().squeeze(1)
    if len(index):
        x[index] = fn(x[index], *(p[index] for p in params))
    return x


_GEOMETRIC_IDS = torch.tensor([RA_OPS.index(name) for name in GEOMETRIC])


def rand_augment(x: torch.Tensor, params: RandAugmentParams, magnitudes: torch.Tensor,
                 matrices: torch.Tensor) -> torch.Tensor:
    """Apply each slot's op to each image, with the tables of ra_tables (on x's device): per slot, the images that
    drew a geometric op share one nearest-neighbour grid_sample, and each pixel op runs on the images that drew it."""
    x = x.clone()
    for slot in range(params.ops.shape[1]):
        op, negate = params.ops[:, slot], params.negate[:, slot].long()
        m = magnitudes[op, negate]
        geometric = torch.isin(op, _GEOMETRIC_IDS.to(op.device))
        x = _apply_chosen(x, geometric, affine_nearest, matrices[op, negate])
        for name, apply in PIXEL.items():
            x = _apply_chosen(x, op == RA_OPS.index(name), apply, m)
    return x


_JITTER_ORDERS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def _jitter_in_order(x: torch.Tensor, factors: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    adjust = (adjust_brightness, adjust_contrast, adjust_saturation)  # ColorJitter's fn_id 0, 1, 2
    for i in order:
        x = adjust[i](x, factors[:, i])
    return x


def color_jitter(x: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """Brightness, contrast and saturation, each image in its own order: the images that drew each of the 6 orders
    are adjusted together."""
    x = x.clone()
    orders = _JITTER_ORDERS.to(params.order.device)
    drawn = (params.order[:, None, :] == orders[None]).all(-1)  # (N, 6): which order each image drew
    for k, order in enumerate(_JITTER_ORDERS.tolist()):
        x = _apply_chosen(x, drawn[:, k], lambda imgs, f, order=tuple(order): _jitter_in_order(imgs, f, order),
                          params.factors)
    return x


def normalize(x: torch.Tensor) -> torch.Tensor:
    """0..255 -> ToTensor then Normalize(CIFAR-10 mean, std), the same arithmetic as cmxl.loaders.normalize."""
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=x.device).reshape(1, 3, 1, 1)
    return x.float().div(255).sub_(mean).div_(std)  # ToTensor, then Normalize, in the same order


def erase(x: torch.Tensor, box: Box) -> torch.Tensor:
    """Set each image's box to 0 (after Normalize, as the paper's RandomErasing(value=0))."""
    rows = torch.arange(x.shape[-2], device=x.device)
    cols = torch.arange(x.shape[-1], device=x.device)

    def inside(index, start, length):  # (N, len(index))
        return (index >= start[:, None]) & (index < (start + length)[:, None])

    mask = inside(rows, box.top, box.height)[:, :, None] & inside(cols, box.left, box.width)[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)


# --------------------------------------------------------------------------------------------------------- pipeline

def _to(params, device):
    if torch.is_tensor(params):
        return params.to(device, non_blocking=True)
    return type(params)(*(t.to(device, non_blocking=True) for t in params))


class BatchedAugment:
    """The paper's training augmentation for a uint8 (N, 3, 32, 32) batch on any device -> float32, normalised.

    Parameters are drawn with `generator` on its own device (with the default generator on the images' device
    when there is none) and moved to the images' device: a CPU generator gives the same draws whether the images
    are on the CPU or a GPU (at the cost of a few small copies), a CUDA generator keeps everything on the GPU. The
    same generator state gives the same batch. With cfg.augment off, only ToTensor + Normalize.
    """

    def __init__(self, config: RunConfig):
        self.cfg = config
        self._tables = {}  # device -> ra_tables on it, copied once

    def _ra_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._tables:
            self._tables[device] = tuple(t.to(device) for t in ra_tables(self.cfg.ra_magnitude))
        return self._tables[device]

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, SIZE, SIZE):
            raise ValueError(f"BatchedAugment takes uint8 images of shape (N, 3, {SIZE}, {SIZE}), "
                             f"got {images.dtype} {tuple(images.shape)}")
        if not self.cfg.augment:
            return normalize(images)
        n, device = len(images), images.device
        draw = dict(n=n, generator=generator, cfg=self.cfg, device=device)
        crop, flip, ra, jitter, erased = (_to(sample(**draw), device) for sample in (
            sample_crop, sample_flip, sample_rand_augment, sample_jitter, sample_erase))
        x = resized_crop(images.float(), crop, flip)
        x = rand_augment(x, ra, *self._ra_tables(device))
        x = color_jitter(x, jitter)
        return erase(normalize(x), erased)
