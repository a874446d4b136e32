"""Video transforms in plain torch: resizing, cropping, flipping, RandAugment, normalisation and
random erasing.

Per-clip CPU transforms (DataLoader workers) take a uint8 clip `[C, T, H, W]` and apply one set of
parameters to every frame; batch transforms (training device) take a float batch `[B, C, T, H, W]`.
Every random draw comes from the `generator` argument (the global torch RNG when None), never from
Python's `random` or numpy, so seeding torch makes a run reproducible and resumable.
Letters in shape comments: B batch, C channels, T frames, H/W height/width.
Details: docs/data.md (hiera_video/data/transforms.py).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Size2 = int | tuple[int, int]


def _check_clip(clip: torch.Tensor, name: str = "clip", min_dims: int = 3) -> None:
    if not isinstance(clip, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(clip).__name__}")
    if clip.dim() < min_dims:
        raise ValueError(f"{name} must have at least {min_dims} dims, got shape {tuple(clip.shape)}")


def _pair(size: Size2, name: str = "size") -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}")
    return h, w


# ----------------------------------------------------------------------------------------------------
# Resizing and cropping
# ----------------------------------------------------------------------------------------------------


def resize(clip: torch.Tensor, size: Size2, antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of the last two dims to `size` ((h, w), or an int for a square).

    A uint8 clip [C, T, H, W] uses PyTorch's native uint8 kernel (4x faster than a float round trip,
    within one grey level of it); other uint8 shapes go through float32 and come back rounded and
    clamped; float stays in its dtype. Antialiasing is used only when a side shrinks. Returns the input
    itself if it is already that size.
    """
    _check_clip(clip)
    h, w = _pair(size)
    H, W = clip.shape[-2:]
    if (H, W) == (h, w):
        return clip
    antialias = antialias and (h < H or w < W)
    if clip.dtype == torch.uint8 and clip.dim() == 4:
        # [C, T, H, W] -> [T, C, H, W]: frames are the batch. A clip that views decoded [T, H, W, C]
        # memory is then already channels-last, the layout the uint8 kernel is fastest on.
        out = F.interpolate(clip.transpose(0, 1), size=(h, w), mode="bilinear", align_corners=False,
                            antialias=antialias)
        return out.transpose(0, 1)
    lead = clip.shape[:-2]
    x = clip.float() if clip.dtype == torch.uint8 else clip
    # [..., H, W] -> [1, N, H, W]: interpolate wants 4-D; every leading index is an independent image
    x = x.reshape(1, -1, H, W)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
    x = x.reshape(*lead, h, w)
    if clip.dtype == torch.uint8:
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x


def resize_short_side(clip: torch.Tensor, size: int, antialias: bool = True) -> torch.Tensor:
    """Resize so that the short side is `size`, keeping the aspect ratio (long side rounded half up)."""
    _check_clip(clip)
    if not (isinstance(size, int) and size > 0):
        raise ValueError(f"size must be a positive int, got {size!r}")
    H, W = clip.shape[-2:]
    # round half up in integers: floor(long * size / short + 1/2)
    if H <= W:
        h, w = size, (2 * W * size + H) // (2 * H)
    else:
        h, w = (2 * H * size + W) // (2 * W), size
    return resize(clip, (h, w), antialias=antialias)


def crop(clip: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The box `[..., top:top + height, left:left + width]`, as a view (no copy)."""
    _check_clip(clip)
    H, W = clip.shape[-2:]
    if height <= 0 or width <= 0:
        raise ValueError(f"crop size must be positive, got height={height}, width={width}")
    if top < 0 or left < 0 or top + height > H or left + width > W:
        raise ValueError(f"crop box (top={top}, left={left}, height={height}, width={width}) does not fit "
                         f"in the clip of size (H={H}, W={W})")
    return clip[..., top:top + height, left:left + width]


def _centre_offset(full: int, part: int) -> int:
    # ceil, as PySlowFast's uniform_crop (used by MAE-ST, whose video recipe Hiera follows)
    return (full - part + 1) // 2


def center_crop(clip: torch.Tensor, size: Size2) -> torch.Tensor:
    """The centred `size` box (offsets rounded up when the margin is odd, as PySlowFast)."""
    _check_clip(clip)
    h, w = _pair(size)
    H, W = clip.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"center_crop size (h={h}, w={w}) is larger than the clip (H={H}, W={W})")
    return crop(clip, _centre_offset(H, h), _centre_offset(W, w), h, w)


def random_resized_crop_params(height: int, width: int, scale: tuple[float, float] = (0.08, 1.0),
                               ratio: tuple[float, float] = (3 / 4, 4 / 3),
                               generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """Inception-style crop box `(top, left, h, w)` for an image of `height` x `width`.

    torchvision's algorithm: up to 10 attempts with the area fraction uniform in `scale` and the
    aspect ratio w/h log-uniform in `ratio`; if none fits, a centre crop with the ratio clamped to
    `ratio` (the whole image when its own ratio is inside).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    if not 0 <= scale[0] <= scale[1]:
        raise ValueError(f"scale must be (min, max) with 0 <= min <= max, got {scale!r}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio!r}")
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    # One draw for all attempts: per attempt (area, log-ratio, top, left) uniforms.
    u = torch.rand(10, 4, generator=generator, dtype=torch.float64).tolist()
    for ua, ur, ut, ul in u:
        target_area = area * (scale[0] + (scale[1] - scale[0]) * ua)
        aspect = math.exp(log_lo + (log_hi - log_lo) * ur)
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(ut * (height - h + 1)), height - h)
            left = min(int(ul * (width - w + 1)), width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, max(1, int(round(width / ratio[0])))
    elif in_ratio > ratio[1]:
        h, w = height, max(1, int(round(height * ratio[1])))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(clip: torch.Tensor, size: Size2, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """One random box for the whole clip, then resize to `size`: [C, T, H, W] -> [C, T, h, w]."""
    _check_clip(clip)
    out = _pair(size)
    top, left, h, w = random_resized_crop_params(clip.shape[-2], clip.shape[-1], scale, ratio, generator)
    # crop first so that the resize only touches the kept pixels
    return resize(crop(clip, top, left, h, w), out)


def hflip(clip: torch.Tensor) -> torch.Tensor:
    """Mirror the width axis (the last dim) only."""
    _check_clip(clip)
    return clip.flip(-1)


def random_hflip(clip: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """`hflip` with probability `p`, one decision for the whole clip; otherwise the input itself."""
    _check_clip(clip)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if torch.rand((), generator=generator).item() < p:
        return clip.flip(-1)
    return clip


def three_crop_offsets(height: int, width: int, crop_size: int) -> list[tuple[int, int]]:
    """`(top, left)` of three `crop_size` squares along the long side, for test-time spatial views.

    Meant for a clip whose short side was resized to `crop_size`: left/centre/right for landscape,
    top/centre/bottom for portrait, three identical centre crops for a square. On the short side the
    crop is centred (offset 0 when it equals `crop_size`).
    """
    if not (isinstance(crop_size, int) and crop_size > 0):
        raise ValueError(f"crop_size must be a positive int, got {crop_size!r}")
    if crop_size > height or crop_size > width:
        raise ValueError(f"crop_size {crop_size} is larger than the image (height={height}, width={width})")
    if width > height:
        top = _centre_offset(height, crop_size)
        return [(top, 0), (top, _centre_offset(width, crop_size)), (top, width - crop_size)]
    if height > width:
        left = _centre_offset(width, crop_size)
        return [(0, left), (_centre_offset(height, crop_size), left), (height - crop_size, left)]
    centre = _centre_offset(height, crop_size)
    return [(centre, centre)] * 3


def spatial_crops(clip: torch.Tensor, crop_size: int, num_crops: int) -> list[torch.Tensor]:
    """Test-time spatial views of a clip whose short side is already `crop_size`: 1 = the centre crop,
    3 = `three_crop_offsets`. Returns a list of views `[C, T, crop_size, crop_size]`."""
    _check_clip(clip)
    if num_crops == 1:
        return [center_crop(clip, crop_size)]
    if num_crops == 3:
        offsets = three_crop_offsets(clip.shape[-2], clip.shape[-1], crop_size)
        return [crop(clip, top, left, crop_size, crop_size) for top, left in offsets]
    raise ValueError(f"num_crops must be 1 or 3, got {num_crops!r}")


# ----------------------------------------------------------------------------------------------------
# RandAugment
# ----------------------------------------------------------------------------------------------------
# Each op takes a uint8 clip [C, T, H, W] and returns one. Per-frame statistics (grayscale mean,
# min/max, histograms) are taken per frame: that is what applying the PIL op to each frame with
# shared parameters gives (VideoMAE/MAE-ST's video RandAugment), and it is one reduction over H, W.

_MAX_LEVEL = 10.0


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Round half up and saturate a float tensor into uint8 (in place on x, which is a temporary)."""
    return x.add_(0.5).clamp_(0, 255).to(torch.uint8)


def _blend(x: torch.Tensor, degenerate: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's Image.blend(degenerate, x, factor), rounded rather than truncated. Factor 1 returns x
    exactly (PIL does too)."""
    if factor == 1.0:
        return x
    return _to_uint8(torch.lerp(degenerate, x.float(), factor))


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """PIL's convert("L") on uint8 RGB: [3, T, H, W] -> [1, T, H, W] float, rounded to integers."""
    r, g, b = x.float().unbind(0)
    return r.mul_(0.299).add_(g, alpha=0.587).add_(b, alpha=0.114).round_().unsqueeze(0)


def _auto_contrast(x: torch.Tensor) -> torch.Tensor:
    """PIL ImageOps.autocontrast (cutoff 0): stretch each frame's channel to [0, 255]."""
    lo = x.amin(dim=(-2, -1), keepdim=True).float()  # [C, T, 1, 1]
    hi = x.amax(dim=(-2, -1), keepdim=True).float()
    flat = hi <= lo  # PIL leaves a constant channel as it is
    scale = torch.where(flat, 1.0, 255.0 / (hi - lo).clamp(min=1.0))
    # PIL floors (x - lo) * scale. Where that is an integer k, float error may land just below k; a
    # non-integer is at least 1/255 from the next integer, so +1e-3 fixes the first and spares the second.
    offset = torch.where(flat, 0.0, -lo * scale) + 1e-3
    return x.float().mul_(scale).add_(offset).clamp_(0, 255).to(torch.uint8)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL ImageOps.equalize per channel of each frame, all histograms in one bincount."""
    C, T, H, W = x.shape
    R = C * T
    rows = torch.arange(R, device=x.device).unsqueeze(1) * 256
    idx = x.reshape(R, H * W).long().add_(rows)  # [R, H*W] indices into R stacked 256-bin histograms
    hist = torch.bincount(idx.view(-1), minlength=R * 256).view(R, 256)
    # PIL: step = (pixels - count of the last non-empty bin) // 256; lut = (step // 2 + cdf_before) // step
    last = 255 - (hist.flip(1) > 0).long().argmax(1, keepdim=True)
    step = (H * W - hist.gather(1, last)) // 256  # [R, 1]
    cdf_before = hist.cumsum(1) - hist
    lut = ((step // 2 + cdf_before) // step.clamp(min=1)).clamp_(0, 255)
    identity = torch.arange(256, device=x.device).expand(R, 256)
    lut = torch.where(step > 0, lut, identity).to(torch.uint8)
    return torch.take(lut, idx).view(C, T, H, W)


def _invert(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def _posterize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the top `bits` bits (0 bits gives black, as PIL)."""
    return x & ((0xFF << (8 - bits)) & 0xFF)


def _solarize(x: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the pixels >= threshold."""
    if threshold > 255:
        return x
    # 255 - x == x ^ 255 on uint8, and xor with a 0/255 mask is much cheaper than torch.where
    return x ^ (x >= threshold).to(torch.uint8).mul_(255)


def _solarize_add(x: torch.Tensor, add: int) -> torch.Tensor:
    """timm's solarize_add: add to the pixels below 128. No saturation is needed for add <= 128
    (127 + 128 = 255), which RandAugment's clipped magnitude guarantees (add <= 110)."""
    if not 0 <= add <= 128:
        raise ValueError(f"solarize_add needs 0 <= add <= 128, got {add}")
    # pixels below 128 are those with the top bit clear
    return x + ((x >> 7) ^ 1).mul_(add)


def _color(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ImageEnhance.Color: blend with the grayscale image."""
    return x if factor == 1.0 else _blend(x, _grayscale(x), factor)


def _contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ImageEnhance.Contrast: blend with the frame's mean gray level (rounded, as PIL)."""
    if factor == 1.0:
        return x
    mean = (_grayscale(x).mean(dim=(-2, -1), keepdim=True) + 0.5).floor_()  # [1, T, 1, 1]
    return _blend(x, mean, factor)


def _brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ImageEnhance.Brightness: blend with black."""
    return x if factor == 1.0 else _to_uint8(x.float().mul_(factor))


def _sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ImageEnhance.Sharpness: blend with PIL's SMOOTH filter [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13,
    whose border pixels are the input's."""
    H, W = x.shape[-2:]
    if factor == 1.0 or H < 3 or W < 3:
        return x
    # The 3x3 sum as two separable box sums plus 4x the centre, in int16 (at most 13 * 255 = 3315):
    # several times faster than a float conv2d on the CPU.
    xi = x.to(torch.int16)
    rows = xi[..., :-2, :] + xi[..., 1:-1, :] + xi[..., 2:, :]  # [C, T, H-2, W]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]  # [C, T, H-2, W-2]
    smooth = box.add_(xi[..., 1:-1, 1:-1], alpha=4).float().mul_(1.0 / 13).round_()
    # the border of the degenerate image is x itself, so only the interior changes
    out = x.clone()
    out[..., 1:-1, 1:-1] = _blend(x[..., 1:-1, 1:-1], smooth, factor)
    return out


def _affine(x: torch.Tensor, matrix: Sequence[float], fill: Sequence[int], interpolation: str) -> torch.Tensor:
    """PIL's Image.transform(AFFINE, matrix): output pixel (u, v) reads input (a u + b v + c, d u + e v + f),
    pixel coordinates with the origin at the top-left corner and pixel centres at +0.5; outside is `fill`.

    One sampling grid for the clip: channels and frames all ride in grid_sample's channel dim.
    """
    C, T, H, W = x.shape
    a, b, c, d, e, f = matrix
    # the same map in affine_grid's normalised coordinates (align_corners=False: n = 2 u / W - 1)
    theta = torch.tensor([[a, b * H / W, a + b * H / W + 2 * c / W - 1],
                          [d * W / H, e, d * W / H + e + 2 * f / H - 1]], dtype=torch.float32, device=x.device)
    grid = F.affine_grid(theta.unsqueeze(0), [1, C * T, H, W], align_corners=False)
    fill_t = torch.tensor(fill, dtype=torch.float32, device=x.device).view(C, 1, 1, 1)
    # zero padding of (x - fill) is padding with fill, and bilinear blends edges into it like PIL
    xf = x.float().sub_(fill_t).view(1, C * T, H, W)
    out = F.grid_sample(xf, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return _to_uint8(out.view(C, T, H, W).add_(fill_t))


def _rotate(x: torch.Tensor, degrees: float, fill: Sequence[int], interpolation: str) -> torch.Tensor:
    """PIL's Image.rotate about the image centre; positive degrees turn counter-clockwise."""
    H, W = x.shape[-2:]
    cx, cy = W / 2.0, H / 2.0
    angle = -math.radians(degrees)
    a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    c = a * -cx + b * -cy + cx
    f = d * -cx + e * -cy + cy
    return _affine(x, (a, b, c, d, e, f), fill, interpolation)


def _shear_x(x, factor, fill, interpolation):
    return _affine(x, (1.0, factor, 0.0, 0.0, 1.0, 0.0), fill, interpolation)


def _shear_y(x, factor, fill, interpolation):
    return _affine(x, (1.0, 0.0, 0.0, factor, 1.0, 0.0), fill, interpolation)


def _translate_x_rel(x, pct, fill, interpolation):
    return _affine(x, (1.0, 0.0, pct * x.shape[-1], 0.0, 1.0, 0.0), fill, interpolation)


def _translate_y_rel(x, pct, fill, interpolation):
    return _affine(x, (1.0, 0.0, 0.0, 0.0, 1.0, pct * x.shape[-2]), fill, interpolation)


def _signed(v: float, negate: bool) -> float:
    return -v if negate else v


def _enhance_factor(m: float, negate: bool) -> float:
    return max(0.1, 1.0 + _signed(m / _MAX_LEVEL * 0.9, negate))


# name -> (op, whether it is geometric, level -> argument); the "increasing" set of timm's `inc1`.
_OPS: dict[str, tuple[Callable, bool, Callable[[float, bool], float] | None]] = {
    "AutoContrast": (_auto_contrast, False, None),
    "Equalize": (_equalize, False, None),
    "Invert": (_invert, False, None),
    "Rotate": (_rotate, True, lambda m, neg: _signed(m / _MAX_LEVEL * 30.0, neg)),
    "PosterizeIncreasing": (_posterize, False, lambda m, neg: 4 - int(m / _MAX_LEVEL * 4)),
    "SolarizeIncreasing": (_solarize, False, lambda m, neg: 256 - int(m / _MAX_LEVEL * 256)),
    "SolarizeAdd": (_solarize_add, False, lambda m, neg: int(m / _MAX_LEVEL * 110)),
    "ColorIncreasing": (_color, False, _enhance_factor),
    "ContrastIncreasing": (_contrast, False, _enhance_factor),
    "BrightnessIncreasing": (_brightness, False, _enhance_factor),
    "SharpnessIncreasing": (_sharpness, False, _enhance_factor),
    "ShearX": (_shear_x, True, lambda m, neg: _signed(m / _MAX_LEVEL * 0.3, neg)),
    "ShearY": (_shear_y, True, lambda m, neg: _signed(m / _MAX_LEVEL * 0.3, neg)),
    "TranslateXRel": (_translate_x_rel, True, lambda m, neg: _signed(m / _MAX_LEVEL * 0.45, neg)),
    "TranslateYRel": (_translate_y_rel, True, lambda m, neg: _signed(m / _MAX_LEVEL * 0.45, neg)),
}


class RandAugment:
    """timm's RandAugment `rand-m{magnitude}-n{num_ops}-mstd{magnitude_std}-inc1` for uint8 clips
    `[C, T, H, W]`, with one draw of ops, magnitudes and signs per clip shared by all frames.

    Per clip: `num_ops` ops chosen uniformly with replacement from `OP_NAMES`; each is applied with
    probability `prob`, at a magnitude drawn from Normal(magnitude, magnitude_std) (uniform in
    [0, magnitude] when magnitude_std is inf) clipped to [0, 10]; signed ops (rotate, shear, translate,
    the enhance ops) negate their argument with probability 0.5. Geometric ops pad with `fill` (timm's
    `img_mean`; the default is the ImageNet mean in 0..255, as VideoMAE) and interpolate bilinearly
    (`interpolation="nearest"` is also accepted; timm picks bilinear or bicubic at random).

    The Hiera paper lists RandAug (7, 0.5) for Kinetics and (9, 0.5) for SSv2: (magnitude,
    magnitude_std) in timm notation. MAE-ST's finetuning policy `rand-m7-mstd0.5-inc1` names no `n`,
    so it has timm's default of 2 ops, our default here. MAE-ST applies it to the decoded frames
    before the random resized crop (ClipDataset's `randaug_order`).

    Statistics-based ops (AutoContrast, Equalize, Contrast) use each frame's own statistics, as
    applying the PIL op frame by frame with shared parameters does. Blends round to nearest where
    PIL truncates. When no op changes the clip, the input itself is returned.
    """

    OP_NAMES: tuple[str, ...] = tuple(_OPS)

    def __init__(self, magnitude: float = 7, num_ops: int = 2, magnitude_std: float = 0.5, prob: float = 0.5,
                 fill: Sequence[int] = (124, 116, 104), interpolation: str = "bilinear"):
        if not 0 <= magnitude <= _MAX_LEVEL:
            raise ValueError(f"magnitude must be in [0, {_MAX_LEVEL:g}], got {magnitude!r}")
        if not (isinstance(num_ops, int) and num_ops >= 0):
            raise ValueError(f"num_ops must be a non-negative int, got {num_ops!r}")
        if not magnitude_std >= 0:
            raise ValueError(f"magnitude_std must be >= 0, got {magnitude_std!r}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}")
        if len(fill) != 3 or not all(0 <= v <= 255 for v in fill):
            raise ValueError(f"fill must be 3 values in [0, 255] (RGB), got {fill!r}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.magnitude, self.num_ops, self.magnitude_std, self.prob = magnitude, num_ops, magnitude_std, prob
        self.fill, self.interpolation = tuple(int(v) for v in fill), interpolation

    def __repr__(self) -> str:
        return (f"RandAugment(magnitude={self.magnitude}, num_ops={self.num_ops}, "
                f"magnitude_std={self.magnitude_std}, prob={self.prob}, fill={self.fill})")

    @staticmethod
    def _check(clip: torch.Tensor) -> None:
        if not isinstance(clip, torch.Tensor) or clip.dtype != torch.uint8:
            dtype = clip.dtype if isinstance(clip, torch.Tensor) else type(clip).__name__
            raise ValueError(f"RandAugment expects a uint8 clip [C, T, H, W], got dtype {dtype}")
        if clip.dim() != 4 or clip.shape[0] != 3:
            raise ValueError(f"RandAugment expects an RGB clip [3, T, H, W], got shape {tuple(clip.shape)}")

    def apply_op(self, clip: torch.Tensor, name: str, magnitude: float, negate: bool = False) -> torch.Tensor:
        """Apply one op at a given magnitude (clipped to [0, 10]) and sign, with no randomness."""
        self._check(clip)
        if name not in _OPS:
            raise ValueError(f"unknown RandAugment op {name!r}; choose one of {list(_OPS)}")
        fn, geometric, level_fn = _OPS[name]
        # the clip also keeps SolarizeAdd's add <= 110, so 127 + add cannot pass 255
        magnitude = min(max(float(magnitude), 0.0), _MAX_LEVEL)
        args = () if level_fn is None else (level_fn(magnitude, negate),)
        if geometric:
            return fn(clip.contiguous(), *args, self.fill, self.interpolation)
        return fn(clip, *args)

    def __call__(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self._check(clip)
        n = self.num_ops
        if n == 0:
            return clip
        # A fixed number of draws per clip, whatever gets applied (so the generator's state after a clip
        # does not depend on the clip): per op (op, apply?, sign, uniform magnitude) uniforms and a normal.
        u = torch.rand(n, 4, generator=generator, dtype=torch.float64).tolist()
        z = torch.randn(n, generator=generator, dtype=torch.float64).tolist()
        for (u_op, u_apply, u_sign, u_mag), z_mag in zip(u, z):
            if u_apply >= self.prob:
                continue
            name = self.OP_NAMES[min(int(u_op * len(self.OP_NAMES)), len(self.OP_NAMES) - 1)]
            if self.magnitude_std == math.inf:  # timm's mstd=inf: uniform in [0, magnitude]
                magnitude = self.magnitude * u_mag
            else:
                magnitude = self.magnitude + self.magnitude_std * z_mag
            clip = self.apply_op(clip, name, magnitude, negate=u_sign > 0.5)
        return clip


# ----------------------------------------------------------------------------------------------------
# Batch transforms (training device)
# ----------------------------------------------------------------------------------------------------


def normalize(x: torch.Tensor, mean: Sequence[float] = (0.45, 0.45, 0.45),
              std: Sequence[float] = (0.225, 0.225, 0.225), dtype: torch.dtype | None = None) -> torch.Tensor:
    """(x - mean) / std per channel for a clip `[C, T, H, W]` or batch `[B, C, T, H, W]` (channel dim -4).

    uint8 is scaled by 1/255 first. The result is `dtype` if given, else float32 for uint8 input and
    the input's dtype for float input.
    """
    _check_clip(x, "x", min_dims=4)
    C = x.shape[-4]
    if len(mean) != C or len(std) != C:
        raise ValueError(f"mean and std need one value per channel (C={C}), got mean={tuple(mean)}, "
                         f"std={tuple(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {tuple(std)}")
    if dtype is None:
        dtype = torch.float32 if x.dtype == torch.uint8 else x.dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    # fold the 1/255 into mean and std: one subtract and one divide over the tensor
    m = torch.tensor([v * scale for v in mean], dtype=dtype, device=x.device).view(C, 1, 1, 1)
    s = torch.tensor([v * scale for v in std], dtype=dtype, device=x.device).view(C, 1, 1, 1)
    y = x.to(dtype)
    y = y - m if y is x else y.sub_(m)  # never write into the caller's tensor
    return y.div_(s)


def random_erasing(batch: torch.Tensor, prob: float = 0.25, scale: tuple[float, float] = (0.02, 1 / 3),
                   ratio: tuple[float, float] = (0.3, 3.3),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """timm's RandomErasing (mode='pixel', count 1) on a normalised batch `[B, C, T, H, W]`, out of place.

    Each sample, with probability `prob`, gets one box of standard-normal noise (fresh per pixel,
    channel and frame) at the same place in every frame (PySlowFast's `cube` erasing). The box is
    sampled as timm: area fraction uniform in `scale`, aspect h/w log-uniform in `ratio`, up to 10
    attempts; a sample whose attempts all fail is left as is.
    """
    if not isinstance(batch, torch.Tensor) or batch.dim() != 5 or not batch.is_floating_point():
        raise ValueError(f"random_erasing expects a float batch [B, C, T, H, W], got {batch.dtype} "
                         f"shape {tuple(batch.shape)}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    if not 0 <= scale[0] <= scale[1]:
        raise ValueError(f"scale must be (min, max) with 0 <= min <= max, got {scale!r}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio!r}")
    B, C, T, H, W = batch.shape
    out = batch.clone()
    if prob == 0.0:
        return out
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    # All box parameters in one draw on the CPU side (no device syncs): per sample an apply uniform,
    # then (area, log-aspect, top, left) uniforms for each of 10 attempts.
    dev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(B, 41, generator=generator, dtype=torch.float64, device=dev).tolist()
    noise_dev = generator.device if generator is not None else batch.device
    for i, row in enumerate(u):
        if row[0] >= prob:
            continue
        for k in range(10):
            ua, ur, ut, ul = row[1 + 4 * k: 5 + 4 * k]
            target_area = H * W * (scale[0] + (scale[1] - scale[0]) * ua)
            aspect = math.exp(log_lo + (log_hi - log_lo) * ur)
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if 0 < h < H and 0 < w < W:
                top = min(int(ut * (H - h + 1)), H - h)
                left = min(int(ul * (W - w + 1)), W - w)
                noise = torch.randn(C, T, h, w, generator=generator, dtype=batch.dtype, device=noise_dev)
                out[i, :, :, top:top + h, left:left + w] = noise.to(batch.device)
                break
    return out
