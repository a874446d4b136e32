"""Fitting a checkpoint's weights to a model: `adapt_state_dict`, the one pure filter (strip wrapper
prefixes, drop MAE decoder weights, drop a classifier of the wrong size, interpolate position
embeddings to the model's frames and resolution, fail on anything else with the key and both shapes),
and `load_pretrained`, which loads the result and logs every tensor left at its initial value."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CheckpointError
from .checkpoints import Checkpoint, read_checkpoint, strip_prefixes

logger = logging.getLogger("hiera_video")

# Weights of the official MAE that a classifier does not have.
_MAE_ONLY = ("decoder_", "mask_token", "multi_scale_fusion_heads.", "encoder_norm.")

_HEAD = ("head.projection.weight", "head.projection.bias")

def _grid_of(config: dict[str, Any] | None) -> list[int] | None:
    if not config:
        return None
    return [i // s for i, s in zip(config["input_size"], config["patch_stride"])]

def _interp_spatial(pe: torch.Tensor, old_hw: tuple[int, ...], new_hw: tuple[int, ...]) -> torch.Tensor:
    """[1, h*w, C] -> [1, h'*w', C], bicubic as in MAE-style finetuning at another resolution."""
    C = pe.shape[-1]
    x = pe.reshape(1, *old_hw, C).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=new_hw, mode="bicubic", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(1, -1, C).to(pe.dtype)

def _interp_temporal(pe: torch.Tensor, new_t: int) -> torch.Tensor:
    """[1, t, C] -> [1, t', C], linear."""
    x = F.interpolate(pe.transpose(1, 2).float(), size=new_t, mode="linear", align_corners=False)
    return x.transpose(1, 2).to(pe.dtype)

def _square(n: int, key: str, source: str) -> tuple[int, int]:
    side = math.isqrt(n)
    if side * side != n:
        raise CheckpointError(f"{source}: cannot tell the token grid of {key!r} ({n} positions, not square) "
                              f"without the checkpoint's config; pass a checkpoint with config.json")
    return side, side

def adapt_state_dict(sd: dict[str, torch.Tensor], model: torch.nn.Module, ckpt_config: dict | None = None,
                     source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], list[str]]:
    """Turn a checkpoint state dict into one for `model` (a `Hiera`). Pure: `sd` is not modified.

    Returns the adapted state dict and human-readable notes of everything changed. Raises
    `CheckpointError` naming the key and both shapes when a tensor cannot be reconciled.
    """
    sd = strip_prefixes(dict(sd))
    target = model.state_dict()
    notes: list[str] = []

    mae_keys = [k for k in sd if k.startswith(_MAE_ONLY) and k not in target]
    if mae_keys:
        for k in mae_keys:
            del sd[k]
        notes.append(f"dropped {len(mae_keys)} MAE decoder tensors (decoder_*, mask_token, "
                     f"multi_scale_fusion_heads, encoder_norm)")

    if any(k in sd for k in _HEAD):
        old = sd["head.projection.weight"].shape[0] if "head.projection.weight" in sd else None
        new = target["head.projection.weight"].shape[0] if "head.projection.weight" in target else 0
        if old == 0 and "head.projection.weight" not in target:  # an empty head (the official num_classes=0)
            for k in _HEAD:
                sd.pop(k, None)
        elif old != new:
            for k in _HEAD:
                sd.pop(k, None)
            notes.append(f"classifier re-initialised: checkpoint has {old} classes, model has {new}")

    grid = list(model.tokens_spatial_shape)
    old_grid = _grid_of(ckpt_config)
    if "pos_embed_spatial" in sd and "pos_embed_spatial" in target:
        pe = sd["pos_embed_spatial"]
        if pe.shape != target["pos_embed_spatial"].shape and pe.shape[-1] == target["pos_embed_spatial"].shape[-1]:
            old_hw = tuple(old_grid[1:]) if old_grid else _square(pe.shape[1], "pos_embed_spatial", source)
            if math.prod(old_hw) != pe.shape[1]:
                old_hw = _square(pe.shape[1], "pos_embed_spatial", source)
            sd["pos_embed_spatial"] = _interp_spatial(pe, old_hw, tuple(grid[1:]))
            notes.append(f"pos_embed_spatial interpolated from {list(old_hw)} to {grid[1:]} tokens")
    if "pos_embed_temporal" in sd and "pos_embed_temporal" in target:
        pe = sd["pos_embed_temporal"]
        if pe.shape != target["pos_embed_temporal"].shape and pe.shape[-1] == target["pos_embed_temporal"].shape[-1]:
            sd["pos_embed_temporal"] = _interp_temporal(pe, grid[0])
            notes.append(f"pos_embed_temporal interpolated from {pe.shape[1]} to {grid[0]} time steps")
    if "pos_embed" in sd and "pos_embed" in target:
        pe = sd["pos_embed"]
        if pe.shape != target["pos_embed"].shape and pe.shape[-1] == target["pos_embed"].shape[-1]:
            if len(grid) != 2 and not old_grid:
                raise CheckpointError(f"{source}: key 'pos_embed' has shape {list(pe.shape)}, model expects "
                                      f"{list(target['pos_embed'].shape)}; a joint video position embedding "
                                      f"needs the checkpoint's config to be resized")
            if len(grid) == 2:
                old_hw = tuple(old_grid) if old_grid else _square(pe.shape[1], "pos_embed", source)
                sd["pos_embed"] = _interp_spatial(pe, old_hw, tuple(grid))
            else:  # [1, t*h*w, C] -> trilinear
                C = pe.shape[-1]
                x = pe.reshape(1, *old_grid, C).permute(0, 4, 1, 2, 3).float()
                x = F.interpolate(x, size=tuple(grid), mode="trilinear", align_corners=False)
                sd["pos_embed"] = x.permute(0, 2, 3, 4, 1).reshape(1, -1, C).to(pe.dtype)
            notes.append(f"pos_embed interpolated from {old_grid or list(old_hw)} to {grid} tokens")

    bad = [(k, list(v.shape), list(target[k].shape)) for k, v in sd.items() if k in target and v.shape != target[k].shape]
    if bad:
        lines = "\n".join(f"  {k}: checkpoint {a}, model {b}" for k, a, b in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise CheckpointError(f"{source}: {len(bad)} tensors do not fit the model{_describe(sd)}:\n{lines}{more}")
    return sd, notes

def _describe(sd: dict[str, torch.Tensor]) -> str:
    """A hint at what model a state dict belongs to, for error messages."""
    w = sd.get("patch_embed.proj.weight")
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    if w is None:
        return ""
    kind = "video" if w.dim() == 5 else "image"
    return f" (the checkpoint looks like a {kind} Hiera with embed_dim {w.shape[0]} and {depth} blocks)"

@dataclass
class LoadReport:
    notes: list[str]
    missing: list[str]  # model tensors left at their initial values
    unexpected: list[str]

def load_pretrained(model: torch.nn.Module, checkpoint: Checkpoint | str | os.PathLike,
                    strict: bool = True) -> LoadReport:
    """Load a checkpoint into `model`, adapting it with `adapt_state_dict`.

    Only the classifier and the final norm may be missing (re-initialised head, or an MAE encoder), and
    tensors under the model's `fresh_prefixes` (a detection head on a backbone checkpoint);
    with `strict`, any other missing or unexpected tensor is an error listing them. Everything left
    at its initial value is logged, so no weight is silently skipped.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    sd, notes = adapt_state_dict(ckpt.state_dict, model, ckpt.model_config, ckpt.source)
    result = model.load_state_dict(sd, strict=False)
    fresh = tuple(getattr(model, "fresh_prefixes", ()))  # e.g. a detection head on a backbone checkpoint
    allowed_missing = {"norm.weight", "norm.bias", *_HEAD} | {k for k in result.missing_keys if k.startswith(fresh)}
    missing = [k for k in result.missing_keys if k not in allowed_missing]
    if strict and (missing or result.unexpected_keys):
        raise CheckpointError(
            f"{ckpt.source}: does not match the model{_describe(ckpt.state_dict)}: "
            f"missing {missing[:10]}{' ...' if len(missing) > 10 else ''} "
            f"({len(missing)}), unexpected {result.unexpected_keys[:10]}"
            f"{' ...' if len(result.unexpected_keys) > 10 else ''} ({len(result.unexpected_keys)})")
    left = [k for k in result.missing_keys if k in allowed_missing]
    if left:
        notes.append(f"left at initial values: {left}")
    logger.info("loaded %s (%s format, %d tensors)", ckpt.source, ckpt.format, len(sd))
    for note in notes:
        (logger.warning if note.startswith("classifier") else logger.info)("%s: %s", ckpt.source, note)
    return LoadReport(notes, list(result.missing_keys), list(result.unexpected_keys))
