"""Named model variants, their pretrained-weight metadata, and `create_model`.

A variant is a few lines of constructor arguments. What a checkpoint was trained with (URL, input
normalisation, frames and sampling stride, label set) is data beside it: `PRETRAINED[name][tag]`.
"""

from __future__ import annotations

import difflib
import logging
import os
from typing import Any, Callable

from .hiera import Hiera
from .mae import MaskedAutoencoderHiera

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


_VIDEO_SIZES = ("base", "base_plus", "large", "huge")
_IMAGE_SIZES = ("tiny", "small", "base", "base_plus", "large", "huge")
PRETRAINED: dict[str, dict[str, dict[str, Any]]] = {
    **{f"hiera_{s}_16x224": _video_tags(s) for s in _VIDEO_SIZES},
    **{f"hiera_{s}_224": _image_tags(s) for s in _IMAGE_SIZES},
    # The MAE models themselves (encoder + decoder), e.g. to continue pretraining.
    **{f"mae_hiera_{s}_16x224": {"mae_k400": _video_tags(s)["mae_k400"]} for s in _VIDEO_SIZES},
    **{f"mae_hiera_{s}_224": {"mae_in1k": _image_tags(s)["mae_in1k"]} for s in _IMAGE_SIZES},
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


# name -> full constructor arguments of each classifier variant (MAE variants derive from them).
_ARCHS: dict[str, dict[str, Any]] = {}


def _variant(name: str, defaults: dict, doc: str | None = None, **arch) -> None:
    _ARCHS[name] = {**defaults, **arch}

    def build(**kw) -> Hiera:
        return Hiera(**{**_ARCHS[name], **kw})
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc or f"Hiera {name} (paper architecture; official checkpoints load)."
    register_model(build)


for _size, _arch in [("base", dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3))),
                     ("base_plus", dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3))),
                     ("large", dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4))),
                     ("huge", dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)))]:
    _variant(f"hiera_{_size}_16x224", _VIDEO, **_arch)
_variant("hiera_tiny_16x128", _VIDEO, "Not in the paper: a small video Hiera for CPU demos (16 frames of "
         "128x128; 1.3 M params, 0.9 GFLOPs).", input_size=(16, 128, 128), embed_dim=32, num_heads=1,
         stages=(1, 1, 2, 1))
_variant("hiera_tiny_8x64", _VIDEO, "Not in the paper: the `./run.sh` demo model, which trains on the "
         "synthetic set on 2 CPU cores (8 frames of 64x64; 1.3 M params, 0.1 GFLOPs).", input_size=(8, 64, 64),
         embed_dim=32, num_heads=1, stages=(1, 1, 2, 1))
_variant("hiera_tiny_16x64", _VIDEO, "Not in the paper: the geometry of the small-scale MAE recipe (16x4 clips of "
         "64x64: 8x2x2 = 32 mask units, so a 0.9 mask ratio keeps 3; 1.3 M params, 0.2 GFLOPs).",
         input_size=(16, 64, 64), embed_dim=32, num_heads=1, stages=(1, 1, 2, 1))
_variant("hiera_test_8x64", _VIDEO, "Not in the paper: the reference-fixture geometry (8 frames of 64x64, "
         "4x2x2 mask units), for tests.", input_size=(8, 64, 64), embed_dim=16, num_heads=1, stages=(1, 2, 3, 1))
for _size, _arch in [("tiny", dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2))),
                     ("small", dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2))),
                     ("base", dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3))),
                     ("base_plus", dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3))),
                     ("large", dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4))),
                     ("huge", dict(embed_dim=256, num_heads=4, stages=(2, 6, 36, 4)))]:
    _variant(f"hiera_{_size}_224", _IMAGE, **_arch)


# MAE pretraining models: the encoder of the classifier of the same name, Q-pooling at the first two
# transitions only, with the paper's decoder (8 blocks of width 512; 8 heads for video, the official
# 16 for images) and mask ratio (video 0.9, images 0.6).
_MAE_VIDEO = dict(q_pool=2, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=8, mask_ratio=0.9)
_MAE_IMAGE = dict(q_pool=2, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mask_ratio=0.6)


def _mae_variant(classifier: str, mae_defaults: dict, **decoder) -> None:
    def build(**kw) -> MaskedAutoencoderHiera:
        arch = {k: v for k, v in _ARCHS[classifier].items() if k != "num_classes"}
        return MaskedAutoencoderHiera(**{**arch, **mae_defaults, **decoder, **kw})
    build.__name__ = build.__qualname__ = f"mae_{classifier}"
    build.__doc__ = f"MAE pretraining model whose encoder is `{classifier}`'s."
    register_model(build)


for _size in _VIDEO_SIZES:
    _mae_variant(f"hiera_{_size}_16x224", _MAE_VIDEO)
for _size in _IMAGE_SIZES:
    _mae_variant(f"hiera_{_size}_224", _MAE_IMAGE)
# CPU demo and tests: small decoders for the tiny encoders (the test one is the fixtures' decoder).
_mae_variant("hiera_tiny_8x64", _MAE_VIDEO, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4)
_mae_variant("hiera_tiny_16x64", _MAE_VIDEO, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4)
_mae_variant("hiera_test_8x64", _MAE_VIDEO, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=2)


def create_ava_model(name: str, pretrained=None, **overrides):
    """An AVA detector (`HieraAVA`: the backbone of classifier `name` plus the RoI head), its backbone
    optionally initialised from any checkpoint `create_model` takes (a Kinetics-finetuned classifier:
    its head is dropped; the RoI head starts fresh, logged)."""
    from .checkpoints import Checkpoint, encoder_config, is_mae_config, load_pretrained, read_checkpoint
    from .detection import HieraAVA

    if name not in _ARCHS:
        raise _unknown(name)
    model = HieraAVA(**{**_ARCHS[name], **overrides})
    model.name = name
    if pretrained is not None:
        meta = None
        if isinstance(pretrained, Checkpoint):
            ckpt = pretrained
        else:
            source, meta = _resolve_pretrained(name, pretrained)
            ckpt = read_checkpoint(source)
        if is_mae_config(ckpt.model_config):  # adapt_state_dict needs the encoder's geometry only
            ckpt.model_config = encoder_config(ckpt.model_config)
        model.pretrained_cfg = _model_pretrained_cfg(model, ckpt, meta)
        load_pretrained(model, ckpt)
    else:
        model.pretrained_cfg = {}
    return model


def model_geometry(name: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(patch_stride, mask_unit_size) of a registered video model (an `mae_` name: its encoder's),
    without building it; None for image models. Unknown names raise naming the closest ones."""
    if name not in _MODELS:
        raise _unknown(name)
    arch = _ARCHS.get(name[len("mae_"):] if name.startswith("mae_") else name)
    if arch is None or len(arch["patch_stride"]) != 3:
        return None
    return tuple(arch["patch_stride"]), tuple(arch["mask_unit_size"])


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_MODELS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} (hiera_video.list_models() lists all {len(_MODELS)})")


def tag_pretrained_cfg(name: str, tag: str) -> dict[str, Any]:
    """`PRETRAINED[name][tag]` in the `pretrained_cfg` schema (class names read from its label set);
    `{}` when the model has no such tag."""
    from .checkpoints import make_pretrained_cfg

    entry = PRETRAINED.get(name, {}).get(tag)
    if entry is None:
        return {}
    classes = None
    if entry.get("labels"):
        from ..data.lists import read_classes
        classes = read_classes(entry["labels"])
    keys = ("mean", "std", "num_frames", "sampling_rate", "crop_size", "url")
    return make_pretrained_cfg({k: entry[k] for k in keys if k in entry}, f"PRETRAINED[{name!r}][{tag!r}]",
                               classes=classes, tag=tag)


def _resolve_pretrained(name: str | None, pretrained: str) -> tuple[str, dict | None]:
    """-> (what `read_checkpoint` reads, the tag's pretrained_cfg or None). In this order: `hf-hub:` is
    the Hub; a URL stays; an existing local path wins; a tag of the model (e.g. 'mae_k400_ft_k400')
    becomes its URL; `owner/name` (not file-like) is the Hub; anything else is a path (not found)."""
    from . import hub

    if pretrained.startswith(hub.HUB_PREFIX):
        return pretrained, None
    if pretrained.startswith(("http://", "https://", "file://")):
        return pretrained, None
    # os.path, not Path: Path("./runs/x") prints as "runs/x", which would then read as a Hub id.
    local = os.path.expanduser(pretrained)
    if os.path.exists(local):
        return local, None
    tags = PRETRAINED.get(name or "", {})
    if pretrained in tags:
        return tags[pretrained]["url"], tag_pretrained_cfg(name, pretrained)
    if hub.is_hub_id(pretrained):  # read_checkpoint tries the Hub, and names both if that fails too
        return pretrained, None
    if "/" in pretrained or "\\" in pretrained or "." in pretrained:
        return local, None
    options = ", ".join(tags) if tags else "none for this model"
    raise FileNotFoundError(f"pretrained={pretrained!r} is neither an existing file or folder, a Hugging Face "
                            f"Hub id (owner/name), nor a checkpoint tag of {name!r} (tags: {options})")


def create_model(name: str | None = None, pretrained=None, num_classes: int | None = None,
                 **overrides) -> Hiera:
    """Build a registered Hiera (classifier, or MAE for `mae_*` names), optionally initialised from a
    checkpoint. A classifier built from an MAE checkpoint gets every encoder weight; its final norm
    and head start fresh (logged).

    name: a registered variant (`list_models()`); may be None when `pretrained` is a checkpoint
        that records its own configuration (this project's checkpoints, Hugging Face folders).
    pretrained: a local path (official `.pth`, HF folder with config.json + model.safetensors, this
        project's checkpoint, a plain state dict or `.safetensors` file), a tag of the variant
        (`PRETRAINED[name]`), which is downloaded once to the torch hub cache, a Hugging Face Hub id
        (`hf-hub:owner/name[@revision]`, or `owner/name` when no such local path exists; needs
        huggingface_hub), or a `Checkpoint` already read with `read_checkpoint`.
    num_classes: classifier size; by default the checkpoint's, else the variant's. When it differs
        from the checkpoint's, the head is re-initialised (and logged). With `name=None` and an MAE
        checkpoint, giving it builds a classifier on the MAE's encoder instead of the MAE.
    overrides: any `Hiera` constructor argument, e.g. `input_size=(32, 224, 224)`, `drop_path_rate=0.2`;
        position embeddings are interpolated when frames or resolution differ from the checkpoint.

    A model built from a checkpoint has `model.pretrained_cfg`: what the weights were trained with, in
    the schema of `checkpoints.PRETRAINED_CFG_KEYS` (class names, mean/std, frames, stride, crop), from the
    checkpoint itself or the tag's metadata; class names are dropped when the head was resized. A model
    built without one has `{}`.

    Works under `with torch.device("meta"):` (without `pretrained`) for shape and size inspection.
    """
    from .checkpoints import Checkpoint, encoder_config, is_mae_config, load_pretrained, read_checkpoint

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
        if "ava_num_classes" in ckpt.model_config:  # an AVA detector (task ava)
            from .detection import HieraAVA
            model = HieraAVA(**{**ckpt.model_config, **overrides})
        elif is_mae_config(ckpt.model_config) and "num_classes" not in overrides:
            model = MaskedAutoencoderHiera(**{**ckpt.model_config, **overrides})
        else:  # a classifier, or the encoder of an MAE checkpoint as one (num_classes given)
            config = encoder_config(ckpt.model_config) if is_mae_config(ckpt.model_config) else ckpt.model_config
            model = Hiera(**{**config, **overrides})
        model.name = ckpt.model_name or "hiera"
    else:
        model = _MODELS[name](**overrides)
        model.name = name
    model.pretrained_cfg = _model_pretrained_cfg(model, ckpt, meta)
    if ckpt is not None:
        load_pretrained(model, ckpt)
    return model


def _model_pretrained_cfg(model, ckpt, meta: dict | None) -> dict[str, Any]:
    """The checkpoint's pretrained_cfg over the tag's; class names only if they fit the model's outputs."""
    from .checkpoints import make_pretrained_cfg

    if ckpt is None:
        return {}
    known = {k: v for k, v in (ckpt.pretrained_cfg or {}).items() if v is not None}
    cfg = make_pretrained_cfg({**(meta or {}), **known}, ckpt.source)
    outputs = model.config.get("ava_num_classes", getattr(model, "num_classes", 0))
    if cfg["classes"] is not None and len(cfg["classes"]) != outputs:
        logger.info("%s: class names dropped from pretrained_cfg (%d names, the model has %d outputs)",
                    ckpt.source, len(cfg["classes"]), outputs)
        cfg["classes"] = None
    return cfg
