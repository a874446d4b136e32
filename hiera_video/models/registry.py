"""Named model variants, their pretrained-weight metadata, and `create_model`.

A variant is a few lines of constructor arguments. What a checkpoint was trained with (URL, input
normalisation, frames and sampling stride, label set) is data beside it: `PRETRAINED[name][tag]`.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any, Callable

from .hiera import Hiera

logger = logging.getLogger("hiera_video")

_MODELS: dict[str, Callable[..., Hiera]] = {}

# Input statistics shared by every official Hiera checkpoint (video and image).
MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
_URL = "https://dl.fbaipublicfiles.com/hiera/{}.pth"


def _video_tags(size: str) -> dict[str, dict[str, Any]]:
    common = dict(mean=MEAN, std=STD, num_frames=16, sampling_rate=4, crop_size=224)
    return {
        "mae_k400_ft_k400": dict(url=_URL.format(f"hiera_{size}_16x224"), num_classes=400,
                                 labels="kinetics400", **common),
        "mae_k400": dict(url=_URL.format(f"mae_hiera_{size}_16x224"), num_classes=0, **common),
    }


def _image_tags(size: str) -> dict[str, dict[str, Any]]:
    common = dict(mean=MEAN, std=STD, crop_size=224)
    return {
        "mae_in1k_ft_in1k": dict(url=_URL.format(f"hiera_{size}_224"), num_classes=1000, **common),
        "mae_in1k": dict(url=_URL.format(f"mae_hiera_{size}_224"), num_classes=0, **common),
    }


PRETRAINED: dict[str, dict[str, dict[str, Any]]] = {
    **{f"hiera_{s}_16x224": _video_tags(s) for s in ("base", "base_plus", "large", "huge")},
    **{f"hiera_{s}_224": _image_tags(s) for s in ("tiny", "small", "base", "base_plus", "large", "huge")},
}
DEFAULT_TAG = {"video": "mae_k400_ft_k400", "image": "mae_in1k_ft_in1k"}


def register_model(fn: Callable[..., Hiera]) -> Callable[..., Hiera]:
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    import fnmatch
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


# Video: 16x224 clips, 2x4x4-pixel tokens (8x56x56), 2x32x32-pixel mask units, separable position
# embeddings.
_VIDEO = dict(input_size=(16, 224, 224), q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8), patch_kernel=(3, 7, 7),
              patch_stride=(2, 4, 4), patch_padding=(1, 3, 3), sep_pos_embed=True, num_classes=400)
_IMAGE = dict(input_size=(224, 224), q_stride=(2, 2), mask_unit_size=(8, 8), patch_kernel=(7, 7),
              patch_stride=(4, 4), patch_padding=(3, 3), sep_pos_embed=False, num_classes=1000)


def _build(defaults: dict, arch: dict, overrides: dict) -> Hiera:
    return Hiera(**{**defaults, **arch, **overrides})


@register_model
def hiera_base_16x224(**kw) -> Hiera:
    return _build(_VIDEO, dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), kw)


@register_model
def hiera_base_plus_16x224(**kw) -> Hiera:
    return _build(_VIDEO, dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), kw)


@register_model
def hiera_large_16x224(**kw) -> Hiera:
    return _build(_VIDEO, dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), kw)


@register_model
def hiera_huge_16x224(**kw) -> Hiera:
    return _build(_VIDEO, dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), kw)


@register_model
def hiera_tiny_16x128(**kw) -> Hiera:
    """Not in the paper: a small video Hiera for CPU demos (16 frames of 128x128; 1.3 M params, 0.9 GFLOPs)."""
    return _build(_VIDEO, dict(input_size=(16, 128, 128), embed_dim=32, num_heads=1, stages=(1, 1, 2, 1)), kw)


@register_model
def hiera_tiny_8x64(**kw) -> Hiera:
    """Not in the paper: the `./run.sh` demo model, which trains on the synthetic set on 2 CPU cores
    (8 frames of 64x64; 1.3 M params, 0.1 GFLOPs)."""
    return _build(_VIDEO, dict(input_size=(8, 64, 64), embed_dim=32, num_heads=1, stages=(1, 1, 2, 1)), kw)


@register_model
def hiera_test_8x64(**kw) -> Hiera:
    """Not in the paper: the reference-fixture geometry (8 frames of 64x64, 4x2x2 mask units), for tests."""
    return _build(_VIDEO, dict(input_size=(8, 64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 3, 1)), kw)


@register_model
def hiera_tiny_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)), kw)


@register_model
def hiera_small_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2)), kw)


@register_model
def hiera_base_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)), kw)


@register_model
def hiera_base_plus_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3)), kw)


@register_model
def hiera_large_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4)), kw)


@register_model
def hiera_huge_224(**kw) -> Hiera:
    return _build(_IMAGE, dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)), kw)


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_MODELS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} (hiera_video.list_models() lists all {len(_MODELS)})")


def _resolve_pretrained(name: str | None, pretrained: str) -> tuple[str, dict | None]:
    """A local path or URL stays as it is; a tag of the model (e.g. 'mae_k400_ft_k400') becomes its URL."""
    if pretrained.startswith(("http://", "https://", "file://")):
        return pretrained, None
    if Path(pretrained).expanduser().exists() or "/" in pretrained or "\\" in pretrained or "." in pretrained:
        return str(Path(pretrained).expanduser()), None
    tags = PRETRAINED.get(name or "", {})
    if pretrained in tags:
        return tags[pretrained]["url"], tags[pretrained]
    options = ", ".join(tags) if tags else "none for this model"
    raise FileNotFoundError(f"pretrained={pretrained!r} is neither an existing file or folder nor a "
                            f"checkpoint tag of {name!r} (tags: {options})")


def create_model(name: str | None = None, pretrained=None, num_classes: int | None = None,
                 **overrides) -> Hiera:
    """Build a registered Hiera, optionally initialised from a checkpoint.

    name: a registered variant (`list_models()`); may be None when `pretrained` is a checkpoint
        that records its own configuration (this project's checkpoints, Hugging Face folders).
    pretrained: a local path (official `.pth`, HF folder with config.json + model.safetensors, this
        project's checkpoint, a plain state dict or `.safetensors` file), a tag of the variant
        (`PRETRAINED[name]`), which is downloaded once to the torch hub cache, or a `Checkpoint`
        already read with `read_checkpoint`.
    num_classes: classifier size; by default the checkpoint's, else the variant's. When it differs
        from the checkpoint's, the head is re-initialised (and logged).
    overrides: any `Hiera` constructor argument, e.g. `input_size=(32, 224, 224)`, `drop_path_rate=0.2`;
        position embeddings are interpolated when frames or resolution differ from the checkpoint.

    Works under `with torch.device("meta"):` (without `pretrained`) for shape and size inspection.
    """
    from .checkpoints import Checkpoint, load_pretrained, read_checkpoint

    if name is not None and name not in _MODELS:
        raise _unknown(name)
    ckpt = None
    meta: dict | None = None
    if pretrained is not None:
        if isinstance(pretrained, Checkpoint):  # already read, e.g. to look at its metadata first
            ckpt = pretrained
        else:
            source, meta = _resolve_pretrained(name, pretrained)
            ckpt = read_checkpoint(source)
        if num_classes is None and "num_classes" not in overrides:
            head = ckpt.state_dict.get("head.projection.weight")
            if head is not None:
                num_classes = head.shape[0]
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if name is None:
        if ckpt is None or ckpt.model_config is None:
            raise ValueError("create_model needs a model name unless `pretrained` is a checkpoint that "
                             "records its configuration (this project's, or a folder with config.json); "
                             f"choose one of {list_models('hiera_*16x224')}")
        model = Hiera(**{**ckpt.model_config, **overrides})
        model.name = ckpt.model_name or "hiera"
    else:
        model = _MODELS[name](**overrides)
        model.name = name
    model.pretrained_cfg = meta or {}
    if ckpt is not None:
        load_pretrained(model, ckpt)
    return model
