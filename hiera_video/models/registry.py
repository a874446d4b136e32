"""The named model variants, each spelled out once (grep a name and find its definition), and what
their official checkpoints were trained with (`PRETRAINED[name][tag]`).

A variant is a function of a few constructor arguments, registered with `@register_model`; the MAE
variant `mae_X` pretrains the encoder of classifier `X` (Q-pooling at the first two transitions, the
paper's decoder). `tags=` names the checkpoints a variant can download; their URLs follow the official
file names (`{name}.pth`, and `mae_{name}.pth` for a classifier's MAE weights).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from typing import Any, Callable

import torch

from ..data.lists import read_classes
from .hiera import Hiera
from .mae import MaskedAutoencoderHiera
from .pretrained_cfg import make_pretrained_cfg

_MODELS: dict[str, Callable[..., Hiera]] = {}
PRETRAINED: dict[str, dict[str, dict[str, Any]]] = {}

# Input statistics shared by every official Hiera checkpoint (video and image).
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
_URL = "https://dl.fbaipublicfiles.com/hiera/{}.pth"
# Checkpoint tags -> what the weights were trained with; "file" names the official file ({name}: the variant).
_CLIP = dict(mean=MEAN, std=STD, num_frames=16, sampling_rate=4, crop_size=224)
_IMG = dict(mean=MEAN, std=STD, crop_size=224)
K400 = {"mae_k400_ft_k400": dict(file="{name}", num_classes=400, labels="kinetics400", **_CLIP),
        "mae_k400": dict(file="mae_{name}", num_classes=0, **_CLIP)}
K400_MAE = {"mae_k400": dict(file="{name}", num_classes=0, **_CLIP)}
IN1K = {"mae_in1k_ft_in1k": dict(file="{name}", num_classes=1000, **_IMG),
        "mae_in1k": dict(file="mae_{name}", num_classes=0, **_IMG)}
IN1K_MAE = {"mae_in1k": dict(file="{name}", num_classes=0, **_IMG)}


def register_model(fn: Callable[..., Hiera] | None = None, *, tags: dict[str, dict] | None = None):
    """Register `fn` under its name (`@register_model`, or `@register_model(tags=...)` with its
    downloadable checkpoints)."""
    def register(fn):
        _MODELS[fn.__name__] = fn
        if tags:
            PRETRAINED[fn.__name__] = {tag: {"url": _URL.format(meta["file"].format(name=fn.__name__)),
                                             **{k: v for k, v in meta.items() if k != "file"}}
                                       for tag, meta in tags.items()}
        return fn
    return register if fn is None else register(fn)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def unknown_model(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_MODELS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} (hiera_video.list_models() lists all {len(_MODELS)})")


def build_variant(name: str, **overrides) -> Hiera:
    if name not in _MODELS:
        raise unknown_model(name)
    model = _MODELS[name](**overrides)
    model.name = name
    return model


@functools.lru_cache(maxsize=None)
def _config(name: str) -> dict[str, Any]:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return dict(build_variant(name).config)


def variant_config(name: str) -> dict[str, Any]:
    """The full constructor arguments of a registered variant, without building it."""
    return dict(_config(name))


def model_geometry(name: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(patch_stride, mask_unit_size) of a registered video model, without building it; None for image
    models. Unknown names raise naming the closest ones."""
    config = variant_config(name)
    if len(config["patch_stride"]) != 3:
        return None
    return tuple(config["patch_stride"]), tuple(config["mask_unit_size"])


def tag_pretrained_cfg(name: str, tag: str) -> dict[str, Any]:
    """`PRETRAINED[name][tag]` in the `pretrained_cfg` schema (class names read from its label set);
    `{}` when the model has no such tag."""
    entry = PRETRAINED.get(name, {}).get(tag)
    if entry is None:
        return {}
    classes = read_classes(entry["labels"]) if entry.get("labels") else None
    keys = ("mean", "std", "num_frames", "sampling_rate", "crop_size", "url")
    return make_pretrained_cfg({k: entry[k] for k in keys if k in entry}, f"PRETRAINED[{name!r}][{tag!r}]",
                               classes=classes, tag=tag)


# ------------------------------------------------------------------------------------------------
# Video: 16x224 clips, 2x4x4-pixel tokens (8x56x56), 2x32x32-pixel mask units, separable position
# embeddings. Sizes as in the paper (Table 11) and the official code.
# ------------------------------------------------------------------------------------------------
VIDEO = dict(input_size=(16, 224, 224), q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8), patch_kernel=(3, 7, 7),
             patch_stride=(2, 4, 4), patch_padding=(1, 3, 3), sep_pos_embed=True)
IMAGE = dict(input_size=(224, 224), q_stride=(2, 2), mask_unit_size=(8, 8), patch_kernel=(7, 7),
             patch_stride=(4, 4), patch_padding=(3, 3), sep_pos_embed=False)
TINY = dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2))
SMALL = dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2))
BASE = dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3))
BASE_PLUS = dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3))
LARGE = dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4))
HUGE = dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4))
# The small CPU models (not in the paper): one encoder, three clip geometries.
CPU = dict(embed_dim=32, num_heads=1, stages=(1, 1, 2, 1))
# MAE: Q-pooling at the first two transitions, the paper's decoder (8 blocks of width 512; 8 heads for
# video, the official 16 for images) and mask ratio (video 0.9, images 0.6).
MAE_VIDEO = dict(q_pool=2, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=8, mask_ratio=0.9)
MAE_IMAGE = dict(q_pool=2, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mask_ratio=0.6)
MAE_CPU = dict(q_pool=2, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4, mask_ratio=0.9)


def _video(size: dict, kw: dict, **more) -> Hiera:
    return Hiera(**{**VIDEO, "num_classes": 400, **size, **more, **kw})


def _image(size: dict, kw: dict) -> Hiera:
    return Hiera(**{**IMAGE, "num_classes": 1000, **size, **kw})


def _mae(geometry: dict, size: dict, decoder: dict, kw: dict, **more) -> MaskedAutoencoderHiera:
    return MaskedAutoencoderHiera(**{**geometry, **size, **more, **decoder, **kw})


@register_model(tags=K400)
def hiera_base_16x224(**kw) -> Hiera:
    """Hiera-B, video (paper architecture; official checkpoints load)."""
    return _video(BASE, kw)


@register_model(tags=K400)
def hiera_base_plus_16x224(**kw) -> Hiera:
    """Hiera-B+, video (paper architecture; official checkpoints load)."""
    return _video(BASE_PLUS, kw)


@register_model(tags=K400)
def hiera_large_16x224(**kw) -> Hiera:
    """Hiera-L, video (paper architecture; official checkpoints load)."""
    return _video(LARGE, kw)


@register_model(tags=K400)
def hiera_huge_16x224(**kw) -> Hiera:
    """Hiera-H, video (paper architecture; official checkpoints load)."""
    return _video(HUGE, kw)


@register_model
def hiera_tiny_16x128(**kw) -> Hiera:
    """Not in the paper: a small video Hiera for CPU demos (16 frames of 128x128; 1.3 M params, 0.9 GFLOPs)."""
    return _video(CPU, kw, input_size=(16, 128, 128))


@register_model
def hiera_tiny_8x64(**kw) -> Hiera:
    """Not in the paper: the `./run.sh` demo model, which trains on the synthetic set on 2 CPU cores (8
    frames of 64x64; 1.3 M params, 0.1 GFLOPs)."""
    return _video(CPU, kw, input_size=(8, 64, 64))


@register_model
def hiera_tiny_16x64(**kw) -> Hiera:
    """Not in the paper: the geometry of the small-scale MAE recipe (16x4 clips of 64x64: 8x2x2 = 32 mask
    units, so a 0.9 mask ratio keeps 3; 1.3 M params, 0.2 GFLOPs)."""
    return _video(CPU, kw, input_size=(16, 64, 64))


@register_model
def hiera_test_8x64(**kw) -> Hiera:
    """Not in the paper: the reference-fixture geometry (8 frames of 64x64, 4x2x2 mask units), for tests."""
    return _video(dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1)), kw, input_size=(8, 64, 64))


@register_model(tags=IN1K)
def hiera_tiny_224(**kw) -> Hiera:
    """Hiera-T, image (paper architecture; official checkpoints load)."""
    return _image(TINY, kw)


@register_model(tags=IN1K)
def hiera_small_224(**kw) -> Hiera:
    """Hiera-S, image (paper architecture; official checkpoints load)."""
    return _image(SMALL, kw)


@register_model(tags=IN1K)
def hiera_base_224(**kw) -> Hiera:
    """Hiera-B, image (paper architecture; official checkpoints load)."""
    return _image(BASE, kw)


@register_model(tags=IN1K)
def hiera_base_plus_224(**kw) -> Hiera:
    """Hiera-B+, image (paper architecture; official checkpoints load)."""
    return _image(BASE_PLUS, kw)


@register_model(tags=IN1K)
def hiera_large_224(**kw) -> Hiera:
    """Hiera-L, image (paper architecture; official checkpoints load)."""
    return _image(LARGE, kw)


@register_model(tags=IN1K)
def hiera_huge_224(**kw) -> Hiera:
    """Hiera-H, image (paper architecture; official checkpoints load)."""
    return _image(HUGE, kw)


# MAE pretraining models: each the encoder of the classifier of the same name without `mae_`.
@register_model(tags=K400_MAE)
def mae_hiera_base_16x224(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, BASE, MAE_VIDEO, kw)


@register_model(tags=K400_MAE)
def mae_hiera_base_plus_16x224(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, BASE_PLUS, MAE_VIDEO, kw)


@register_model(tags=K400_MAE)
def mae_hiera_large_16x224(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, LARGE, MAE_VIDEO, kw)


@register_model(tags=K400_MAE)
def mae_hiera_huge_16x224(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, HUGE, MAE_VIDEO, kw)


@register_model
def mae_hiera_tiny_8x64(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, CPU, MAE_CPU, kw, input_size=(8, 64, 64))


@register_model
def mae_hiera_tiny_16x64(**kw) -> MaskedAutoencoderHiera:
    return _mae(VIDEO, CPU, MAE_CPU, kw, input_size=(16, 64, 64))


@register_model
def mae_hiera_test_8x64(**kw) -> MaskedAutoencoderHiera:
    """The reference fixtures' MAE (its decoder is the fixtures')."""
    return _mae(VIDEO, dict(embed_dim=16, num_heads=1, stages=(1, 2, 3, 1)), {**MAE_CPU, "decoder_embed_dim": 32,
                "decoder_num_heads": 2}, kw, input_size=(8, 64, 64))


@register_model(tags=IN1K_MAE)
def mae_hiera_tiny_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, TINY, MAE_IMAGE, kw)


@register_model(tags=IN1K_MAE)
def mae_hiera_small_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, SMALL, MAE_IMAGE, kw)


@register_model(tags=IN1K_MAE)
def mae_hiera_base_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, BASE, MAE_IMAGE, kw)


@register_model(tags=IN1K_MAE)
def mae_hiera_base_plus_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, BASE_PLUS, MAE_IMAGE, kw)


@register_model(tags=IN1K_MAE)
def mae_hiera_large_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, LARGE, MAE_IMAGE, kw)


@register_model(tags=IN1K_MAE)
def mae_hiera_huge_224(**kw) -> MaskedAutoencoderHiera:
    return _mae(IMAGE, HUGE, MAE_IMAGE, kw)
