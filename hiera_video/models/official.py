"""The official Hiera's configuration, translated both ways: its `config.json` (constructor arguments,
defaults of the image Hiera-B) -> ours, and our model's arguments -> what config.json may hold (the
rest goes to hiera_video.json); which arguments make an MAE, and the classifier on an MAE's encoder."""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

import torch

from ..errors import CheckpointError
from .hiera import Hiera
from .mae import MaskedAutoencoderHiera

logger = logging.getLogger("hiera_video")

# The official `hiera.Hiera` constructor defaults (image Hiera-B). Its config.json files list only the
# arguments that were passed, so the rest must be filled from these, not from our video defaults.
OFFICIAL_DEFAULTS: dict[str, Any] = dict(
    input_size=[224, 224], in_chans=3, embed_dim=96, num_heads=1, num_classes=1000, stages=[2, 3, 16, 3],
    q_pool=3, q_stride=[2, 2], mask_unit_size=[8, 8], mask_unit_attn=[True, True, False, False], dim_mul=2.0,
    head_mul=2.0, patch_kernel=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], mlp_ratio=4.0,
    drop_path_rate=0.0, head_dropout=0.0, head_init_scale=0.001, sep_pos_embed=False)

# The official MAE's extra constructor arguments (its other arguments are `hiera.Hiera`'s).
OFFICIAL_MAE_ARGS = ("decoder_embed_dim", "decoder_depth", "decoder_num_heads")

# Our constructor arguments that the official constructor lacks, with the value its code hard-wires
# (None: the argument changes no weight and no output of `forward`, only our training defaults).
FIXED_IN_OFFICIAL: dict[str, Any] = {"layer_norm_eps": 1e-6, "mask_ratio": None, "norm_pix_loss": None}

# The file beside config.json + model.safetensors that holds what the official config cannot.
EXTRA_FILE = "hiera_video.json"
EXTRA_FORMAT = "hiera-video-hf/1"

MAE_ARGS = ("decoder_embed_dim", "decoder_depth", "decoder_num_heads", "mask_ratio", "norm_pix_loss")

def constructor_args(cls: type) -> set[str]:
    """The keyword arguments a model class takes (its `**kwargs` aside)."""
    return set(inspect.signature(cls).parameters) - {"kwargs"}


def is_mae_config(config: dict[str, Any] | None) -> bool:
    return bool(config) and any(k in config for k in MAE_ARGS)

def encoder_config(config: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of an MAE -> those of a classifier with the same encoder: no decoder,
    Q-pooling at every stage transition, no classifier until one is asked for."""
    kwargs = {k: v for k, v in config.items() if k not in MAE_ARGS}
    kwargs["q_pool"] = len(kwargs["stages"]) - 1
    kwargs["num_classes"] = 0
    return kwargs

def official_config_to_kwargs(config: dict[str, Any], source: str) -> dict[str, Any]:
    """An official `config.json` -> our constructor arguments (`Hiera`, or `MaskedAutoencoderHiera`
    for an MAE: its decoder arguments kept)."""
    config = dict(config)
    norm = config.pop("norm_layer", "LayerNorm")
    if norm != "LayerNorm":
        raise CheckpointError(f"{source}: norm_layer={norm!r} is not supported (only LayerNorm)")
    kwargs = {**OFFICIAL_DEFAULTS, **config}
    valid = constructor_args(Hiera)
    if is_mae_config(config):
        kwargs["num_classes"] = 0  # the official MAE deletes its head
        # The official constructor's default decoder (the paper's video decoder has 8 heads; the
        # count does not change the weights).
        kwargs = {"decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16, **kwargs}
        valid |= constructor_args(MaskedAutoencoderHiera)
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise CheckpointError(f"{source}: config keys {unknown} are not Hiera arguments (valid: {sorted(valid)})")
    return kwargs

def split_config(model: torch.nn.Module, allow_non_official: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's constructor arguments -> (config.json: official arguments only, ours: the rest).

    Raises `CheckpointError` for a model the official code does not have (a subclass with a head of its
    own, such as the AVA detector) and, unless `allow_non_official`, for a value it cannot express
    (naming the key and both values)."""
    name = getattr(model, "name", None) or type(model).__name__
    if isinstance(model, Hiera) and type(model) not in (Hiera, MaskedAutoencoderHiera):
        raise CheckpointError(f"{name}: a {type(model).__name__} is not an official Hiera model, so it has no "
                              f"official config.json; save it with hiera_video.save_model(model, 'x.safetensors')")
    if not isinstance(model, Hiera):
        raise CheckpointError(f"save_pretrained takes a hiera_video Hiera or MaskedAutoencoderHiera, "
                              f"got {type(model).__name__}")
    config = dict(model.config)
    is_mae = isinstance(model, MaskedAutoencoderHiera)
    official_keys = list(OFFICIAL_DEFAULTS) + (list(OFFICIAL_MAE_ARGS) if is_mae else [])
    # Every argument is written, defaults included: the official defaults (image Hiera-B) are not ours.
    official = {k: config.pop(k) for k in official_keys if k in config}
    if is_mae:
        official.pop("num_classes", None)  # the official MAE deletes its head; no classifier to size
    missing = [k for k in official_keys if k not in official and k != "num_classes"]
    if missing:
        raise CheckpointError(f"{name}: model.config lacks the official arguments {missing}")
    unknown = sorted(set(config) - set(FIXED_IN_OFFICIAL))
    if unknown:
        raise CheckpointError(f"{name}: model.config has arguments {unknown} that neither the official Hiera "
                              f"nor hiera_video.json knows")
    differ = {k: v for k, v in config.items() if FIXED_IN_OFFICIAL[k] is not None and v != FIXED_IN_OFFICIAL[k]}
    if differ:
        what = ", ".join(f"{k}={v!r} (the official code always uses {FIXED_IN_OFFICIAL[k]!r})"
                         for k, v in differ.items())
        if not allow_non_official:
            raise CheckpointError(f"{name}: {what}: the official Hiera cannot express this, so "
                                  f"hiera.Hiera.from_pretrained would build a different model from the folder. "
                                  f"Pass allow_non_official=True to write it to {EXTRA_FILE} only (hiera_video "
                                  f"rebuilds the model exactly; the official code will not)")
        logger.warning("%s: %s is written to %s only; the official code will load the folder as a different "
                       "model", name, what, EXTRA_FILE)
    return _jsonable(official), _jsonable(config)

def _jsonable(value: Any) -> Any:
    """Tuples -> lists, recursively, and a check that the result is plain JSON (naming the value)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"config value {value!r} is not representable in JSON")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"config value {value!r} ({type(value).__name__}) is not plain JSON")
