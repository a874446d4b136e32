"""Reading, adapting and writing checkpoints.

Accepted inputs (all read without executing pickled code: a checkpoint is untrusted input):
  * official `.pth`: `{"model_state": state_dict}` (classifier or MAE);
  * a Hugging Face-style folder: `config.json` (the official constructor's arguments) + `model.safetensors`,
    plus, when `save_pretrained` wrote it, `hiera_video.json` (our extra arguments and `pretrained_cfg`);
  * a Hugging Face Hub id, `hf-hub:owner/name[@revision]` or a bare `owner/name` that is no local path
    (downloaded with the optional `huggingface_hub`; see `hub.py`);
  * this project's checkpoints: `{"model": state_dict, "model_config": {...}, "model_name": ...}`;
  * a plain state dict (`.pt`/`.pth`/`.bin`) or a `.safetensors` file;
  * an `http(s)://` or `file://` URL of any of the above files (cached by torch.hub).

`adapt_state_dict` is the one pure filter that turns any of them into a state dict for a given model:
strip wrapper prefixes, drop MAE decoder weights, drop a classifier of the wrong size, interpolate
position embeddings to the model's frames and resolution, and fail on anything else with the key and
both shapes.

Every `Checkpoint` also carries `pretrained_cfg`, what the weights were trained with (class names, input
normalisation, frames, stride, crop: the `PRETRAINED_CFG_KEYS` schema), from whichever place the format
keeps it; `create_model` hands it on to the model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import fileio
from ..errors import CheckpointError

logger = logging.getLogger("hiera_video")

FORMAT = "hiera-video/1"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile
# Weights of the official MAE that a classifier does not have.
_MAE_ONLY = ("decoder_", "mask_token", "multi_scale_fusion_heads.", "encoder_norm.")
_HEAD = ("head.projection.weight", "head.projection.bias")

# The official `hiera.Hiera` constructor defaults (image Hiera-B). Its config.json files list only the
# arguments that were passed, so the rest must be filled from these, not from our video defaults.
OFFICIAL_DEFAULTS: dict[str, Any] = dict(
    input_size=[224, 224], in_chans=3, embed_dim=96, num_heads=1, num_classes=1000, stages=[2, 3, 16, 3],
    q_pool=3, q_stride=[2, 2], mask_unit_size=[8, 8], mask_unit_attn=[True, True, False, False], dim_mul=2.0,
    head_mul=2.0, patch_kernel=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], mlp_ratio=4.0,
    drop_path_rate=0.0, head_dropout=0.0, head_init_scale=0.001, sep_pos_embed=False)


# The one schema of `pretrained_cfg` (on checkpoints and models): a key is present only when known, except
# `classes`, which is always there (None when unknown). Values are plain JSON (lists, not tuples).
PRETRAINED_CFG_KEYS = ("classes", "mean", "std", "num_frames", "sampling_rate", "target_fps", "sampling_mode",
                       "crop_size", "test_short_side", "tag", "url", "hub_id")
_CFG_INTS = ("num_frames", "sampling_rate", "crop_size", "test_short_side")
# The file beside config.json + model.safetensors that holds what the official config cannot.
EXTRA_FILE = "hiera_video.json"
EXTRA_FORMAT = "hiera-video-hf/1"


@dataclass
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    source: str
    format: str  # "official", "hf-folder", "hiera-video", "state-dict", "safetensors"
    model_config: dict[str, Any] | None = None  # Hiera constructor arguments, when the file records them
    model_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pretrained_cfg: dict[str, Any] = field(default_factory=lambda: {"classes": None})


def make_pretrained_cfg(values: dict[str, Any] | None = None, source: str = "pretrained_cfg",
                        **more: Any) -> dict[str, Any]:
    """`values` (and `more`) -> a `pretrained_cfg` in the one schema (see `PRETRAINED_CFG_KEYS`): tuples
    become lists, None values are dropped (except `classes`), unknown keys are kept as they are. A value
    of the wrong kind raises naming `source` and the key."""
    out: dict[str, Any] = {"classes": None}
    for key, value in {**(values or {}), **more}.items():
        if value is None:
            continue
        try:
            if key == "classes":
                if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                    raise TypeError("a list of class names")
                value = list(value)
            elif key in ("mean", "std"):
                value = [float(v) for v in value]
                if len(value) not in (1, 3):
                    raise TypeError("1 or 3 numbers")
            elif key in _CFG_INTS:
                if isinstance(value, bool) or int(value) != value:
                    raise TypeError("an integer")
                value = int(value)
            elif key == "target_fps":
                value = float(value)
            elif isinstance(value, tuple):
                value = list(value)
        except (TypeError, ValueError) as e:
            expected = e if isinstance(e, TypeError) else "valid"
            raise CheckpointError(f"{source}: {key}={value!r} is not {expected}") from None
        out[key] = value
    return out


def _cfg_from_extra(extra: dict[str, Any], source: str) -> dict[str, Any]:
    """This project's checkpoints keep how clips were made in `extra["data"]` and the names in
    `extra["classes"]` (see engine/train.py `_checkpoint_info`)."""
    data = extra.get("data") if isinstance(extra.get("data"), dict) else {}
    cfg = {k: v for k, v in data.items() if k in PRETRAINED_CFG_KEYS}
    if isinstance(extra.get("pretrained_cfg"), dict):
        cfg.update(extra["pretrained_cfg"])
    if isinstance(extra.get("classes"), list):
        cfg["classes"] = extra["classes"]
    return make_pretrained_cfg(cfg, source)


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
def _harmless_globals() -> list:
    """Classes that training scripts commonly store beside the weights (MAE-style `args`, numpy
    scalars) and that unpickle into plain data. Allowing them keeps `weights_only=True`: nothing
    else in a file is ever constructed, let alone executed."""
    import argparse

    import numpy as np
    core = getattr(np, "_core", None) or np.core
    found = [argparse.Namespace, np.dtype, core.multiarray.scalar]
    found += [getattr(np.dtypes, n) for n in dir(getattr(np, "dtypes", object)) if n.endswith("DType")]
    return found


def torch_load_untrusted(path: str | os.PathLike, allowed: list | None = None) -> Any:
    """`torch.load(path, weights_only=True)` with errors that say what is wrong: a file that would
    construct an object (a pickle of code) names the refused global and is never loaded; a damaged
    or foreign file says so. torch's own advice to retry with unpickling switched on is never shown."""
    try:
        with torch.serialization.safe_globals(_harmless_globals() if allowed is None else allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(e)
        if refused is None:  # not a pickle of objects: a damaged or foreign file
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({_reason(e)})") from None
        raise CheckpointError(
            f"{path}: not a plain checkpoint: it asks to construct {refused}, which was refused (a checkpoint "
            f"is untrusted input and is read with torch.load(weights_only=True); nothing in it was run). "
            f"If you made the file yourself, save its tensors with torch.save(state_dict) or safetensors.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None


_torch_load = torch_load_untrusted


def _refused_global(e: Exception) -> str | None:
    """The global torch's weights-only unpickler refused (its wording changes across versions:
    "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y whose module x is blocked")."""
    m = re.search(r"unsupported global:?\s+(?:GLOBAL\s+)?([\w.]+)", str(e), flags=re.IGNORECASE)
    return m.group(1) if m else None


def _reason(e: Exception) -> str:
    """The informative line of torch.load's long weights_only message (never its advice)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line and "Please file an issue" not in line
             and not line.startswith("Check the documentation")]
    line = next((line for line in lines if "nsupported" in line), lines[0] if lines else type(e).__name__)
    return line.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")


def _load_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None


def _download(url: str) -> Any:
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True, progress=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{url}: refused to unpickle non-tensor objects ({e})") from None
    except OSError as e:  # URLError is an OSError
        raise CheckpointError(f"could not download {url} ({e}); download it where there is network access "
                              f"and pass the local path as `pretrained`") from None


MAE_ARGS = ("decoder_embed_dim", "decoder_depth", "decoder_num_heads", "mask_ratio", "norm_pix_loss")


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
    from .hiera import Hiera
    from .mae import MaskedAutoencoderHiera
    import inspect

    config = dict(config)
    norm = config.pop("norm_layer", "LayerNorm")
    if norm != "LayerNorm":
        raise CheckpointError(f"{source}: norm_layer={norm!r} is not supported (only LayerNorm)")
    kwargs = {**OFFICIAL_DEFAULTS, **config}
    valid = set(inspect.signature(Hiera).parameters)
    if is_mae_config(config):
        kwargs["num_classes"] = 0  # the official MAE deletes its head
        # The official constructor's default decoder (the paper's video decoder has 8 heads; the
        # count does not change the weights).
        kwargs = {"decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16, **kwargs}
        valid |= set(inspect.signature(MaskedAutoencoderHiera).parameters) - {"kwargs"}
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise CheckpointError(f"{source}: config keys {unknown} are not Hiera arguments (valid: {sorted(valid)})")
    return kwargs


def _unwrap(obj: Any, source: str) -> Checkpoint:
    """Find the state dict inside whatever `torch.load` returned."""
    if isinstance(obj, dict) and "model_state" in obj:
        return Checkpoint(_strip_prefixes(obj["model_state"]), source, "official")
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        cfg = obj.get("model_config")
        fmt = "hiera-video" if obj.get("format") == FORMAT else "state-dict"
        extra = {k: v for k, v in obj.items() if k not in ("model", "model_config", "model_name", "format")}
        return Checkpoint(_strip_prefixes(obj["model"]), source, fmt, cfg, obj.get("model_name"), extra)
    for key in ("state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return Checkpoint(_strip_prefixes(obj[key]), source, "state-dict")
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return Checkpoint(_strip_prefixes(obj), source, "state-dict")
    keys = list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{source}: no state dict found (looked for 'model_state', 'model', 'state_dict', "
                          f"'module', or a dict of tensors); top-level keys: {keys}")


def _strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read any accepted checkpoint (see the module docstring) into a `Checkpoint`. An existing local
    path always wins over a Hub id of the same spelling; `hf-hub:` always means the Hub."""
    from . import hub

    source = str(path)
    if source.startswith(("http://", "https://", "file://")):
        ckpt = _unwrap(_download(source), source)
        ckpt.pretrained_cfg = _cfg_from_extra(ckpt.extra, source)
        return ckpt
    p = Path(source).expanduser()
    if source.startswith(hub.HUB_PREFIX) or (not p.exists() and hub.is_hub_id(source)):
        repo_id, revision = hub.parse_hub_id(source)
        try:
            folder = hub.download(repo_id, revision)
        except (CheckpointError, ImportError) as e:
            if source.startswith(hub.HUB_PREFIX):
                raise
            # A bare owner/name is just as likely a mistyped local path: say both.
            raise CheckpointError(f"checkpoint not found: {source} is no local file or folder, and as a "
                                  f"Hugging Face Hub id: {e}") from None
        ckpt = read_checkpoint(folder)
        ckpt.source = f"{hub.HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")
        ckpt.pretrained_cfg = make_pretrained_cfg({**hub.hub_pretrained_cfg(repo_id), **{
            k: v for k, v in ckpt.pretrained_cfg.items() if v is not None}}, ckpt.source)
        return ckpt
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {source}")
    if p.is_dir():
        weights = [p / n for n in ("model.safetensors", "pytorch_model.bin") if (p / n).exists()]
        if not weights:
            raise CheckpointError(f"{source}: folder has no model.safetensors or pytorch_model.bin")
        if weights[0].suffix == ".safetensors":
            sd, _ = _load_safetensors(str(weights[0]))
            ckpt = Checkpoint(_strip_prefixes(sd), source, "hf-folder")
        else:
            ckpt = _unwrap(_torch_load(str(weights[0])), source)
            ckpt.format = "hf-folder"
        if any(k.startswith(("hiera.", "embeddings.")) for k in ckpt.state_dict):
            raise CheckpointError(f"{source}: this is a `transformers` HieraModel checkpoint (keys like "
                                  f"{next(iter(ckpt.state_dict))!r}); use the official-format weights "
                                  f"(facebook/hiera_*_16x224.*, or the .pth files)")
        cfg_file = p / "config.json"
        if cfg_file.exists():
            ckpt.model_config = official_config_to_kwargs(_read_json(cfg_file), str(cfg_file))
        if (p / EXTRA_FILE).exists():
            _apply_extra_file(ckpt, p / EXTRA_FILE)
        return ckpt
    if p.suffix == ".safetensors":
        sd, meta = _load_safetensors(str(p))
        ckpt = Checkpoint(_strip_prefixes(sd), source, "safetensors")
        if "model_config" in meta:  # written by save_model(..., safetensors): every value is JSON
            ckpt.model_config = json.loads(meta["model_config"])
            ckpt.model_name = meta.get("model_name") or None
            for k, v in meta.items():
                if k not in ("format", "model_config", "model_name"):
                    try:
                        ckpt.extra[k] = json.loads(v)
                    except ValueError:
                        ckpt.extra[k] = v
            ckpt.pretrained_cfg = _cfg_from_extra(ckpt.extra, source)
        return ckpt
    ckpt = _unwrap(_torch_load(str(p)), source)
    ckpt.pretrained_cfg = _cfg_from_extra(ckpt.extra, source)
    return ckpt


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def _apply_extra_file(ckpt: Checkpoint, path: Path) -> None:
    """`hiera_video.json` (written by `save_pretrained`): our constructor arguments that config.json
    cannot hold, the model name and `pretrained_cfg`."""
    from .hiera import Hiera
    from .mae import MaskedAutoencoderHiera
    import inspect

    extra = _read_json(path)
    if not isinstance(extra, dict) or extra.get("format") != EXTRA_FORMAT:
        found = extra.get("format") if isinstance(extra, dict) else type(extra).__name__
        raise CheckpointError(f"{path}: not a {EXTRA_FORMAT} file (format: {found!r})")
    args = extra.get("model_config") or {}
    valid = set(inspect.signature(Hiera).parameters) | set(inspect.signature(MaskedAutoencoderHiera).parameters)
    valid -= {"kwargs"}
    unknown = sorted(set(args) - valid)
    if unknown:
        raise CheckpointError(f"{path}: model_config keys {unknown} are not Hiera arguments")
    if args:
        if ckpt.model_config is None:
            raise CheckpointError(f"{path}: has model_config but the folder has no config.json")
        ckpt.model_config.update(args)
    ckpt.model_name = extra.get("model_name") or ckpt.model_name
    ckpt.pretrained_cfg = make_pretrained_cfg(extra.get("pretrained_cfg"), f"{path}: pretrained_cfg")


# ------------------------------------------------------------------------------------------------
# Adapting
# ------------------------------------------------------------------------------------------------
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
    sd = _strip_prefixes(dict(sd))
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


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a nested checkpoint object (what a write of it needs, roughly)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename: a reader (or a run
    killed mid-write) sees the old file or the new one, never half of one. A full disk raises
    `DiskFullError` naming the path and the size, and leaves no temporary file."""
    with fileio.atomic_path(path, needed=tensor_bytes(obj), durable=True) as tmp:
        with fileio.open_for_write(tmp) as f:
            torch.save(obj, f)


def save_model(model: torch.nn.Module, path: str | os.PathLike, state_dict: dict | None = None,
               **extra: Any) -> None:
    """Write weights plus the model's configuration, enough for `create_model(pretrained=path)` to
    rebuild it alone. `.safetensors` paths get the config in the file's metadata; anything else is a
    torch file `{"format", "model", "model_config", "model_name", **extra}` (extra: plain values only).
    `state_dict` replaces the model's own (e.g. EMA weights, or one gathered from FSDP shards)."""
    sd = {k: v.detach().cpu().contiguous() for k, v in (state_dict or model.state_dict()).items()}
    name = getattr(model, "name", None)
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save
        meta = {"format": FORMAT, "model_config": json.dumps(model.config), "model_name": name or ""}
        meta.update({k: json.dumps(v) for k, v in extra.items()})
        payload = save(sd, metadata=meta)
        with fileio.atomic_path(path, needed=len(payload), durable=True) as tmp:
            with fileio.open_for_write(tmp) as f:
                f.write(payload)
        return
    atomic_save({"format": FORMAT, "model": sd, "model_config": dict(model.config), "model_name": name, **extra}, path)
